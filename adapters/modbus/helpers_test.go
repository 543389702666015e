package modbus

import (
	"log/slog"
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
