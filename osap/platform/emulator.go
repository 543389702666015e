package platform

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// EmulatorConfig describes a whole platform emulator: registry, LBS, one or
// more DAS instances sharing one event store, and the HTTP API.
type EmulatorConfig struct {
	// StateDir holds the registry state and the event file; created 0700.
	StateDir string
	// DevicesFile is the registry's TOML file of serial → verification
	// code; empty means devices are added with Registry.Add.
	DevicesFile string
	// LBSListen, DASListen and HTTPListen are TCP addresses; port 0 picks
	// a free port. DASListen defaults to one DAS on 127.0.0.1:0; an empty
	// HTTPListen serves no API.
	LBSListen  string
	DASListen  []string
	HTTPListen string
	// TLS, when set, serves the LBS and the DAS over TLS.
	TLS             *tls.Config
	Suites          osap.SuiteSet
	SessionLifetime time.Duration
	// NoSync stores events without waiting for fsync (see
	// EventStore.SetSync); for benchmarks of the gateway.
	NoSync bool
	// NoPictures turns the picture service (binding 2.7) off: 0xB then
	// carries no picture service URL. Otherwise, when the API is served,
	// the picture service is served on the API listener under
	// PicturePath, keeps pictures in StateDir/pictures, and the LBS
	// announces it.
	NoPictures bool
	// PicturePath is the picture service's base path on the API listener;
	// empty means DefaultPicturePath ("/osap").
	PicturePath string
	// PictureURL is the base URL the LBS announces; empty means
	// http://{API address}{PicturePath} (an unspecified host replaced by
	// 127.0.0.1).
	PictureURL string
	// Now is the clock of the registry (session key lifetimes), the DAS
	// (login freshness) and the picture service (token freshness); nil
	// means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Emulator is a running platform emulator. Its parts are exported for
// tests and the demo, which inspect them directly.
type Emulator struct {
	Registry *Registry
	LBS      *LBS
	DAS      []*DAS
	Events   *EventStore
	// Pictures is the picture service; nil when it is off.
	Pictures *PictureService

	log    *slog.Logger
	lbsLn  net.Listener
	httpLn net.Listener
	api    http.Handler

	dasReq  chan dasRequest // StartDAS and StopDAS to Run, which owns the DAS goroutines
	stopped chan struct{}   // closed when Run returns
}

// dasRequest asks Run to start or stop DAS i; Run closes done when it has.
type dasRequest struct {
	i     int
	start bool
	done  chan struct{}
}

// NewEmulator binds every listener and loads the state; Run serves. It
// returns an error when a part (state directory, registry, event store,
// DAS, LBS or API listener) cannot be set up, having released the others.
func NewEmulator(cfg EmulatorConfig) (*Emulator, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.LBSListen == "" {
		cfg.LBSListen = "127.0.0.1:0"
	}
	if len(cfg.DASListen) == 0 {
		cfg.DASListen = []string{"127.0.0.1:0"}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("emulator state dir: %w", err)
	}
	statePath := filepath.Join(cfg.StateDir, "registry.json")
	var reg *Registry
	var err error
	if cfg.DevicesFile != "" {
		reg, err = LoadRegistry(cfg.DevicesFile, statePath)
	} else {
		reg, err = NewRegistry(statePath)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Now != nil {
		reg.now = cfg.Now
	}
	events, err := OpenEventStore(filepath.Join(cfg.StateDir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	events.SetSync(!cfg.NoSync)
	e := &Emulator{Registry: reg, Events: events, log: log, dasReq: make(chan dasRequest), stopped: make(chan struct{})}
	var services []AccessService
	for i, addr := range cfg.DASListen {
		d, err := NewDAS(DASConfig{Listen: addr, TLS: cfg.TLS, Keys: reg, Events: events, Now: cfg.Now,
			Logger: log.With("component", "das", "das", i)})
		if err != nil {
			e.close()
			return nil, err
		}
		e.DAS = append(e.DAS, d)
		services = append(services, d)
	}
	if cfg.HTTPListen != "" {
		if e.httpLn, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			e.close()
			return nil, fmt.Errorf("api listen: %w", err)
		}
	}
	pictureURL := ""
	apiOpts := []APIOption{WithAPILogger(log.With("component", "api"))}
	if e.httpLn != nil && !cfg.NoPictures {
		path := cfg.PicturePath
		if path == "" {
			path = DefaultPicturePath
		}
		if !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.HasPrefix(path, "/api/") || path == "/api" {
			e.close()
			return nil, fmt.Errorf("picture path %q: want /name, not under /api", path)
		}
		if e.Pictures, err = NewPictureService(PictureServiceConfig{Dir: filepath.Join(cfg.StateDir, "pictures"), Keys: reg, Now: cfg.Now,
			Logger: log.With("component", "pictures")}); err != nil {
			e.close()
			return nil, err
		}
		pictureURL = cfg.PictureURL
		if pictureURL == "" {
			if pictureURL, err = httpURL(e.httpLn.Addr().String(), path); err != nil {
				e.close()
				return nil, err
			}
		}
		apiOpts = append(apiOpts, WithPictures(e.Pictures))
		mux := http.NewServeMux()
		mux.Handle(path+"/", http.StripPrefix(path, e.Pictures))
		mux.Handle("/", NewAPI(e.DAS, apiOpts...))
		e.api = mux
	} else {
		e.api = NewAPI(e.DAS, apiOpts...)
	}
	e.LBS = NewLBS(LBSConfig{Registry: reg, Suites: cfg.Suites, SessionLifetime: cfg.SessionLifetime, DAS: services,
		PictureURL: pictureURL, TLS: cfg.TLS, Logger: log.With("component", "lbs")})
	if e.lbsLn, err = net.Listen("tcp", cfg.LBSListen); err != nil {
		e.close()
		return nil, fmt.Errorf("lbs listen: %w", err)
	}
	return e, nil
}

// httpURL is http://host:port{path} of a bound address, an unspecified
// host replaced by 127.0.0.1.
func httpURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("bound address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// PictureURL is the picture service's base URL as the LBS announces it,
// or "" when the service is off.
func (e *Emulator) PictureURL() string { return e.LBS.cfg.PictureURL }

// LBSAddr is the LBS's host:port.
func (e *Emulator) LBSAddr() string { return e.lbsLn.Addr().String() }

// APIURL is the HTTP API's base URL, or "" when it is not served.
func (e *Emulator) APIURL() string {
	if e.httpLn == nil {
		return ""
	}
	return "http://" + e.httpLn.Addr().String()
}

// API returns the HTTP API handler (served on HTTPListen by Run).
func (e *Emulator) API() http.Handler { return e.api }

// Run serves the LBS, every DAS and the API until ctx ends, then stops
// them, waits for them and releases everything. Meanwhile it starts and
// stops DAS instances for StartDAS and StopDAS. It returns the errors of
// the parts that failed, joined; nil after a clean stop. Call it once.
func (e *Emulator) Run(ctx context.Context) error {
	defer close(e.stopped)
	var wg sync.WaitGroup
	errs := make(chan error, 2+len(e.DAS))

	// Run owns the DAS goroutines: only it starts, stops and waits for them.
	dasStop := make([]context.CancelFunc, len(e.DAS)) // nil: DAS i is stopped
	dasDone := make([]chan struct{}, len(e.DAS))
	startDAS := func(i int) {
		if dasStop[i] != nil {
			return
		}
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		dasStop[i], dasDone[i] = cancel, done
		go func() {
			defer close(done)
			if err := e.DAS[i].Serve(dctx); err != nil {
				e.log.Error("DAS stopped with an error", "das", i, "err", err)
			}
		}()
	}
	stopDAS := func(i int) {
		if dasStop[i] != nil {
			dasStop[i]()
			<-dasDone[i]
			dasStop[i], dasDone[i] = nil, nil
		}
	}
	for i := range e.DAS {
		startDAS(i)
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.LBS.Serve(ctx, e.lbsLn); err != nil {
			errs <- fmt.Errorf("lbs: %w", err)
		}
	}()
	var srv *http.Server
	if e.httpLn != nil {
		srv = &http.Server{Handler: e.api, ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(e.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("api: %w", err)
			}
		}()
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case r := <-e.dasReq:
			if r.start {
				startDAS(r.i)
			} else {
				stopDAS(r.i)
			}
			close(r.done)
		}
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	for i := range e.DAS {
		stopDAS(i) // ctx has stopped them already: wait for them
	}
	wg.Wait()
	close(errs)
	var err error
	for x := range errs {
		err = errors.Join(err, x)
	}
	return errors.Join(err, e.close())
}

// StopDAS stops DAS i (an outage, for the demo and tests) and returns
// once it has stopped: its devices are disconnected and its port refuses
// connections until StartDAS. Run does the work: StopDAS waits for Run to
// take the request, or, once Run's context has ended, for Run to return
// (having stopped every DAS). It returns ctx.Err() if ctx ends first, and
// an error when there is no DAS i.
func (e *Emulator) StopDAS(ctx context.Context, i int) error {
	return e.requestDAS(ctx, i, false)
}

// StartDAS starts DAS i again after StopDAS, on the same address, and
// returns once it is starting; it does nothing when DAS i is running or
// Run's context has ended. Like StopDAS it waits for Run, and returns
// ctx.Err() if ctx ends first and an error when there is no DAS i.
func (e *Emulator) StartDAS(ctx context.Context, i int) error {
	return e.requestDAS(ctx, i, true)
}

func (e *Emulator) requestDAS(ctx context.Context, i int, start bool) error {
	if i < 0 || i >= len(e.DAS) {
		return fmt.Errorf("emulator: no DAS %d (%d configured)", i, len(e.DAS))
	}
	r := dasRequest{i: i, start: start, done: make(chan struct{})}
	select {
	case e.dasReq <- r:
	case <-e.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Emulator) close() error {
	var errs []error
	for _, d := range e.DAS {
		errs = append(errs, d.Close())
	}
	if e.lbsLn != nil {
		e.lbsLn.Close()
	}
	if e.httpLn != nil {
		e.httpLn.Close()
	}
	errs = append(errs, e.Events.Close())
	return errors.Join(errs...)
}
