package modbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"

	"github.com/osapgw/osapgw/adapters"
)

// Backoff bounds of a link whose transport fails. A serial port is
// reopened sooner than a TCP peer is reconnected: opening a device node
// costs nothing on the bus and nothing to a peer, and a USB adapter
// plugged back in should be used again within seconds.
const (
	minBackoff       = 200 * time.Millisecond
	maxBackoff       = 30 * time.Second
	maxSerialBackoff = 2 * time.Second
)

// errLinkDown is returned for requests refused while a failed link waits
// before reconnecting. It wraps adapters.ErrOffline.
var errLinkDown = fmt.Errorf("link down: %w", adapters.ErrOffline)

// handler is what the link needs of goburrow's client handlers.
type handler interface {
	modbus.ClientHandler
	Connect() error
	Close() error
}

// newHandler builds the handler for l: goburrow's TCP handler with no idle
// timer (the link closes it itself), or goburrow's RTU or ASCII framing on
// our serial transport. It returns the handler and functions to set the
// unit and, on TCP, the timeout of the next request. A serial port's
// timeout is fixed when it opens.
func newHandler(l link, timeout time.Duration) (handler, func(byte), func(time.Duration)) {
	if l.serial() {
		h, setUnit := newSerialHandler(l, timeout)
		return h, setUnit, func(time.Duration) {}
	}
	h := modbus.NewTCPClientHandler(l.Address)
	h.Timeout, h.IdleTimeout = timeout, 0
	return h, func(u byte) { h.SlaveId = u }, func(d time.Duration) { h.Timeout = d }
}

// errNotSent is wrapped by the error of sharedLink.do when the caller's
// context ended before the request reached the wire: the request was
// never sent and never will be.
var errNotSent = errors.New("request not sent")

// errUnanswered is wrapped by the error of sharedLink.do when the caller's
// context ended while the request was on the wire: the unit may have
// carried it out.
var errUnanswered = errors.New("request sent, no answer before its deadline")

// Job states: a job handed to the link is queued until the link puts it
// on the wire (sent) or its caller gives up on it (abandoned); whichever
// moves it out of queued first decides, so an abandoned job is never sent.
const (
	jobQueued int32 = iota
	jobSent
	jobAbandoned
)

// job is one request to run on a link for a unit. Its caller's context
// stays with the caller (see sharedLink.do); state is how the caller and
// the link agree on whether the request still goes out.
type job struct {
	unit    byte
	timeout time.Duration
	do      func(modbus.Client) ([]byte, error)
	done    chan result
	state   atomic.Int32
}

type result struct {
	b   []byte
	err error
}

// Pool shares links between devices: devices whose URL and serial settings
// are equal use one link, owned by one goroutine that serializes their
// requests. A link starts at the first Acquire and stops (closing its
// connection or port) when the last holder releases it.
type Pool struct {
	mu    sync.Mutex
	links map[string]*sharedLink
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{links: map[string]*sharedLink{}} }

// defaultPool is the pool adapters use unless given another.
var defaultPool = NewPool()

// Len returns the number of running links.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Requests returns the number of requests sent so far on the links
// running now.
func (p *Pool) Requests() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, sl := range p.links {
		n += sl.Requests()
	}
	return n
}

// acquire returns the running link for l, starting it if needed. The caller
// must call release exactly once. delay is the pause between requests; the
// largest asked for by any holder applies.
func (p *Pool) acquire(l link, delay time.Duration) *sharedLink {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := l.key()
	sl := p.links[key]
	if sl == nil {
		ctx, cancel := context.WithCancel(context.Background())
		sl = &sharedLink{
			key: key, link: l, jobs: make(chan *job), cancel: cancel, stopped: make(chan struct{}),
		}
		p.links[key] = sl
		go sl.run(ctx)
	}
	sl.refs++
	if delay > sl.delay() {
		sl.setDelay(delay)
	}
	return sl
}

// release drops one reference to sl, and stops it (waiting for its
// goroutine) when it was the last.
func (p *Pool) release(sl *sharedLink) {
	p.mu.Lock()
	sl.refs--
	last := sl.refs == 0
	if last {
		delete(p.links, sl.key)
	}
	p.mu.Unlock()
	if last {
		sl.cancel()
		<-sl.stopped
	}
}

// sharedLink is one physical link and the goroutine that owns it.
type sharedLink struct {
	key     string
	link    link
	jobs    chan *job
	cancel  context.CancelFunc
	stopped chan struct{}
	refs    int // guarded by Pool.mu

	mu       sync.Mutex
	reqDelay time.Duration
	requests uint64
}

func (sl *sharedLink) delay() time.Duration {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.reqDelay
}

func (sl *sharedLink) setDelay(d time.Duration) {
	sl.mu.Lock()
	sl.reqDelay = d
	sl.mu.Unlock()
}

// Requests returns the number of requests sent on the link.
func (sl *sharedLink) Requests() uint64 {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.requests
}

// do runs fn for unit on the link and returns its response. It returns
// errLinkDown while the link backs off, and otherwise what the request
// returned. If ctx ends first, the error wraps ctx.Err() and either
// errNotSent (the request was never sent: a request whose caller gave up
// is skipped, even one already handed to the link and waiting for the
// bus) or errUnanswered (it was on the wire: the unit may have carried it
// out).
func (sl *sharedLink) do(ctx context.Context, unit byte, timeout time.Duration, fn func(modbus.Client) ([]byte, error)) ([]byte, error) {
	// A caller whose ctx has ended hands nothing over. A job handed over
	// is sent only if the link claims it before the caller abandons it
	// (see job.state); once sent it runs to its end, bounded by timeout.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	j := &job{unit: unit, timeout: timeout, do: fn, done: make(chan result, 1)}
	select {
	case sl.jobs <- j:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errNotSent, ctx.Err())
	case <-sl.stopped:
		return nil, errLinkDown
	}
	select {
	case r := <-j.done:
		return r.b, r.err
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			// The link skips it when its turn comes.
			return nil, fmt.Errorf("%w: %w", errNotSent, ctx.Err())
		}
		// The link finishes the request (bounded by its timeout) and
		// drops the answer into the buffered channel.
		return nil, fmt.Errorf("%w: %w", errUnanswered, ctx.Err())
	}
}

// run owns the handler: it serves jobs one at a time until ctx ends, then
// closes the handler. Like Adapter.Run, it waits with one small frame on
// its stack and leaves the work to conn.serve, so that its parked stack
// shrinks to the minimum.
func (sl *sharedLink) run(ctx context.Context) {
	defer close(sl.stopped)
	c := &conn{sl: sl}
	defer c.close()
	for {
		var j *job
		select {
		case <-ctx.Done():
			return
		case j = <-sl.jobs:
		}
		if !c.serve(ctx, j) {
			return
		}
	}
}

// conn is the handler of a link and what the link remembers between
// requests.
type conn struct {
	sl        *sharedLink
	h         handler
	setUnit   func(byte)
	setTime   func(time.Duration)
	client    modbus.Client
	htimeout  time.Duration // a serial port's: the longest asked for
	failures  int
	retryAt   time.Time
	lastEnd   time.Time
	lastError error
	timer     *time.Timer
}

func (c *conn) close() {
	if c.h != nil {
		_ = c.h.Close()
		c.h, c.client = nil, nil
	}
}

// serve runs job j and answers it. It returns false if ctx ended while
// it waited for the bus.
func (c *conn) serve(ctx context.Context, j *job) bool {
	sl := c.sl
	if j.state.Load() == jobAbandoned {
		return true // nobody waits for it: not even a reconnect for it
	}
	now := time.Now()
	if now.Before(c.retryAt) {
		j.done <- result{err: fmt.Errorf("%w: retry in %v after %v", errLinkDown, c.retryAt.Sub(now).Round(time.Millisecond), c.lastError)}
		return true
	}
	// Keep the inter-request delay of the bus.
	if d := sl.delay(); d > 0 && !c.lastEnd.IsZero() {
		if wait := time.Until(c.lastEnd.Add(d)); wait > 0 {
			if c.timer == nil {
				c.timer = time.NewTimer(wait)
			} else {
				c.timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				c.timer.Stop()
				j.done <- result{err: errLinkDown}
				return false
			case <-c.timer.C:
			}
		}
	}
	if c.h != nil && sl.link.serial() && j.timeout > c.htimeout {
		c.close() // reopen the port with the longer timeout
	}
	if c.h == nil {
		if j.timeout > c.htimeout || !sl.link.serial() {
			c.htimeout = j.timeout
		}
		c.h, c.setUnit, c.setTime = newHandler(sl.link, c.htimeout)
		c.client = newPDUClient(c.h)
		if err := c.h.Connect(); err != nil {
			c.close()
			c.failures++
			c.retryAt = time.Now().Add(backoff(c.failures, sl.link.backoffLimit()))
			c.lastError = err
			j.done <- result{err: fmt.Errorf("connect %s: %w", sl.link.Address, errors.Join(errLinkDown, err))}
			return true
		}
	}
	// The caller may have given up while the job waited for the bus (the
	// delay, a reconnect): a request answered as timed out must never be
	// carried out afterwards.
	if !j.state.CompareAndSwap(jobQueued, jobSent) {
		return true
	}
	c.setUnit(j.unit)
	c.setTime(j.timeout)
	b, err := safeDo(j.do, c.client)
	c.lastEnd = time.Now()
	sl.mu.Lock()
	sl.requests++
	sl.mu.Unlock()
	var mbErr *modbus.ModbusError
	switch {
	case err == nil || errors.As(err, &mbErr):
		c.failures = 0
	case isTimeout(err):
		// goburrow's TCP client would pair a late answer with the
		// next request: start over on a fresh connection. No backoff:
		// the unit is at fault, not the link, and the other units on
		// it must go on; the adapter skips a unit that keeps silent.
		c.close()
		err = fmt.Errorf("%w: %v", adapters.ErrTimeout, err)
	default:
		// A broken connection or port, or a garbled answer.
		c.close()
		c.failures++
		c.retryAt = time.Now().Add(backoff(c.failures, sl.link.backoffLimit()))
		c.lastError = err
		err = fmt.Errorf("%w: %v", errLinkDown, err)
	}
	if b != nil {
		b = append([]byte(nil), b...) // goburrow's buffer is reused
	}
	j.done <- result{b: b, err: err}
	return true
}

// backoff returns the wait after n consecutive failures: 200 ms doubling
// up to limit.
func backoff(n int, limit time.Duration) time.Duration {
	d := minBackoff
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// backoffLimit returns the longest wait of l between two failed connects:
// 2 s on a serial port, 30 s on TCP.
func (l link) backoffLimit() time.Duration {
	if l.serial() {
		return maxSerialBackoff
	}
	return maxBackoff
}

// isTimeout reports whether err is a timeout of the network or serial port.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, serial.ErrTimeout)
}

// safeDo runs fn, turning a panic in the Modbus library (a malformed answer
// it did not expect) into an error, so one broken device cannot bring the
// gateway down.
func safeDo(fn func(modbus.Client) ([]byte, error), c modbus.Client) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("modbus: malformed answer: %v", r)
		}
	}()
	return fn(c)
}
