package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The crash test runs TestCrashChild in a child process (this test binary,
// re-executed with STORE_CRASH_CHILD set to the store's path). The child
// appends, acknowledges and compacts from several goroutines and reports on
// stdout, one line per write(2):
//
//	ready
//	a <token>        about to append the event whose "token" parameter is <token>
//	A <id> <token>   the append of <token> returned <id>: it is durable
//	k <id>           about to acknowledge <id>
//	K <id>           the acknowledgement of <id> is durable
//
// The parent kills it with SIGKILL at a random moment, reopens the store
// and checks: every id reported durable (A) and not being acknowledged is
// there, exactly once, with its token; nothing is there that the child did
// not try to append; ids are in order. Then it starts the next child on the
// same file. STORE_CRASH_WRAPPER, if set, is a program to run the child
// with (e.g. qemu-arm-static).
const crashEnv = "STORE_CRASH_CHILD"

func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestCrash only")
	}
	s, err := Open(path, Options{Logger: quietLogger(t), compactMinBytes: 256 << 10, compactEvery: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		line := fmt.Appendf(nil, format+"\n", args...)
		mu.Lock()
		defer mu.Unlock()
		if _, err := os.Stdout.Write(line); err != nil {
			os.Exit(3)
		}
	}
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(2)
	}
	say("ready")
	pid := os.Getpid()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			pad := strings.Repeat("x", 50*w)
			for i := 0; ; i++ {
				token := fmt.Sprintf("%d.%d.%d.%s", pid, w, i, pad)
				say("a %s", token)
				id, err := s.Append(context.Background(), Event{Dev: "d", Resource: "main", Name: "tick", Params: map[string]any{"token": token}})
				if err != nil {
					fail("append", err)
				}
				say("A %d %s", id, token)
			}
		})
	}
	wg.Go(func() {
		for {
			recs, err := s.Pending(0, 40)
			if err != nil {
				fail("pending", err)
			}
			var ids []uint64
			for i, r := range recs {
				if i%2 == 0 {
					ids = append(ids, r.ID)
					say("k %d", r.ID)
				}
			}
			if err := s.Ack(ids...); err != nil {
				fail("ack", err)
			}
			for _, id := range ids {
				say("K %d", id)
			}
		}
	})
	wg.Go(func() {
		for {
			time.Sleep(30 * time.Millisecond)
			if err := s.Compact(context.Background()); err != nil {
				fail("compact", err)
			}
		}
	})
	wg.Wait()
}

// crashLog is what the parent learnt from the children's reports.
type crashLog struct {
	intended map[string]bool   // a: tokens the children tried to append
	durable  map[string]uint64 // A: token → id
	byID     map[uint64]string // A: id → token
	acking   map[uint64]bool   // k
	acked    map[uint64]bool   // K
	maxID    uint64            // highest A id of the rounds before
}

func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	seed := uint64(time.Now().UnixNano())
	if v := envUint("STORE_SEED"); v != 0 {
		seed = v
	}
	t.Logf("seed %d (rerun with STORE_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	rounds := 25
	if testing.Short() {
		rounds = 20 // the least the issue asks for
	}
	if v := envUint("STORE_CRASH_ROUNDS"); v != 0 {
		rounds = int(v)
	}
	path := newPath(t)
	lg := &crashLog{
		intended: map[string]bool{}, durable: map[string]uint64{}, byID: map[uint64]string{},
		acking: map[uint64]bool{}, acked: map[uint64]bool{},
	}
	totalDurable, totalAcked, midCompaction := 0, 0, 0
	type progress struct {
		i  int
		id uint64
	}
	lastOfWriter := map[string]progress{} // "pid.w" → last reported append
	for round := range rounds {
		delay := time.Duration(rng.IntN(400)) * time.Millisecond
		lines := runCrashChild(t, path, delay)
		if _, err := os.Stat(path + compactSuffix); err == nil {
			midCompaction++
		}
		roundMax := lg.maxID
		for _, l := range lines {
			f := strings.SplitN(l, " ", 3)
			switch {
			case f[0] == "ready":
			case f[0] == "a" && len(f) == 2:
				lg.intended[f[1]] = true
			case f[0] == "A" && len(f) == 3:
				id, _ := strconv.ParseUint(f[1], 10, 64)
				if id <= lg.maxID {
					t.Fatalf("round %d: id %d reported, but round before reported up to %d (seed %d)", round, id, lg.maxID, seed)
				}
				if old, ok := lg.byID[id]; ok {
					t.Fatalf("round %d: id %d reported for %q and %q (seed %d)", round, id, old, f[2], seed)
				}
				lg.durable[f[2]], lg.byID[id] = id, f[2]
				parts := strings.SplitN(f[2], ".", 4)
				i, _ := strconv.Atoi(parts[2])
				w := parts[0] + "." + parts[1]
				if p, ok := lastOfWriter[w]; ok && (i <= p.i || id <= p.id) {
					t.Fatalf("round %d: writer %s: append %d got id %d after append %d got %d (seed %d)", round, w, i, id, p.i, p.id, seed)
				}
				lastOfWriter[w] = progress{i, id}
				roundMax = max(roundMax, id)
				totalDurable++
			case f[0] == "k" && len(f) == 2:
				id, _ := strconv.ParseUint(f[1], 10, 64)
				lg.acking[id] = true
			case f[0] == "K" && len(f) == 2:
				id, _ := strconv.ParseUint(f[1], 10, 64)
				lg.acked[id] = true
				totalAcked++
			default:
				t.Fatalf("round %d: bad line %q from the child", round, l)
			}
		}
		lg.maxID = roundMax
		checkCrashStore(t, path, lg, round, seed)
	}
	t.Logf("%d rounds killed with SIGKILL (%d during a compaction); %d appends and %d acks reported durable, all checked",
		rounds, midCompaction, totalDurable, totalAcked)
}

// runCrashChild runs a child on path, kills it with SIGKILL delay after it
// is ready, and returns its complete report lines.
func runCrashChild(t *testing.T, path string, delay time.Duration) []string {
	t.Helper()
	args := []string{os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1"}
	if w := os.Getenv("STORE_CRASH_WRAPPER"); w != "" {
		args = append([]string{w}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	ready := make(chan struct{})
	readDone := make(chan error, 1)
	go func() { // ends at EOF, when the child is dead; waited for below
		r := bufio.NewReader(out)
		readyOnce := sync.OnceFunc(func() { close(ready) })
		for {
			l, err := r.ReadString('\n')
			if err != nil { // a partial last line is dropped: it was not fully reported
				readDone <- err
				readyOnce()
				return
			}
			l = strings.TrimSuffix(l, "\n")
			if l == "ready" {
				readyOnce()
			}
			lines = append(lines, l)
		}
	}()
	<-ready
	time.Sleep(delay)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-readDone; err != io.EOF {
		t.Fatalf("reading the child's report: %v", err)
	}
	err = cmd.Wait()
	if st, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !st.Signaled() {
		t.Fatalf("child ended by itself (%v) before the kill; stderr:\n%s", err, stderr.String())
	}
	return lines
}

// checkCrashStore opens the store left by a killed child and checks it
// against what the children reported.
func checkCrashStore(t *testing.T, path string, lg *crashLog, round int, seed uint64) {
	t.Helper()
	s, err := Open(path, Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatalf("round %d: reopen after SIGKILL = %v (seed %d)", round, err, seed)
	}
	if c := s.Stats().Corruptions; c != 0 {
		t.Fatalf("round %d: the file was damaged (Corruptions %d) (seed %d)", round, c, seed)
	}
	present := map[uint64]string{}
	seen := map[string]uint64{}
	var after uint64
	for {
		recs, err := s.Pending(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.ID <= after {
				t.Fatalf("round %d: id %d after %d: out of order (seed %d)", round, r.ID, after, seed)
			}
			after = r.ID
			var p struct{ Token string }
			if err := json.Unmarshal(r.Params, &p); err != nil {
				t.Fatalf("round %d: record %d params %q: %v (seed %d)", round, r.ID, r.Params, err, seed)
			}
			tok := p.Token
			if !lg.intended[tok] {
				t.Fatalf("round %d: record %d holds %q, which no child appended (seed %d)", round, r.ID, tok, seed)
			}
			if id, ok := lg.durable[tok]; ok && id != r.ID {
				t.Fatalf("round %d: %q stored as %d, reported as %d (seed %d)", round, tok, r.ID, id, seed)
			}
			if other, ok := seen[tok]; ok {
				t.Fatalf("round %d: %q stored twice, as %d and %d (seed %d)", round, tok, other, r.ID, seed)
			}
			seen[tok] = r.ID
			present[r.ID] = tok
		}
	}
	for id, tok := range lg.byID {
		_, ok := present[id]
		switch {
		case lg.acked[id] && ok:
			t.Fatalf("round %d: id %d (%q) acknowledged durably but still stored (seed %d)", round, id, tok, seed)
		case !lg.acking[id] && !ok:
			t.Fatalf("round %d: id %d (%q) reported durable, never acknowledged, but lost (seed %d)", round, id, tok, seed)
		}
	}
	if st := s.Stats(); st.Count != len(present) {
		t.Fatalf("round %d: Stats().Count = %d, store holds %d (seed %d)", round, st.Count, len(present), seed)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
}
