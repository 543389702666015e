package modbus

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/adapters"
)

func adaptersTOML(s string) adapters.Decoder { return adapters.TOMLDecoder(s) }

// envForTest logs to the test's log at debug level.
func envForTest(t testing.TB) adapters.Env {
	return adapters.Env{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b))
	return len(b), nil
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func fmtAny(v any) string { return fmt.Sprint(v) }

func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("replaceOnce: %q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}

func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[name]
}
