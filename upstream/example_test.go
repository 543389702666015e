package upstream_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/upstream"
)

// lbs, creds and bridge stand for the LBS client, the store and the bridge.
type lbs struct{}

func (lbs) Authenticate(ctx context.Context, stored *upstream.Credentials) (upstream.Credentials, error) {
	return upstream.Credentials{}, nil
}

type creds struct{}

func (creds) LoadCredentials() (upstream.Credentials, bool, error) {
	return upstream.Credentials{}, false, nil
}
func (creds) SaveCredentials(upstream.Credentials) error { return nil }

type bridge struct{ s *upstream.Session }

// Connected sends the topology and replays the outbox until ctx ends.
func (b *bridge) Connected(ctx context.Context) {
	h := osap.Header{ID: "1", TS: time.Now().UnixMilli(), Type: osap.TypeEventReport, Dev: "cam-1"}
	_ = b.s.Publish(osap.KindEvent, h, map[string]any{"resource": "video/1", "event": "motion"}, 1, func(err error) {
		// nil: acknowledged, delete it from the outbox; else keep it.
	})
	<-ctx.Done()
}
func (b *bridge) Disconnected(err error)  {}
func (b *bridge) Downlink(m osap.Message) {}

// Unreadable answers a downlink that does not decode 400 with its id.
func (b *bridge) Unreadable(h osap.Header, err error) {
	reply := osap.Header{ID: h.ID, TS: time.Now().UnixMilli(), Type: osap.TypeReply, Dev: h.Dev, Code: osap.CodeBadRequest, Msg: err.Error()}
	_ = b.s.Publish(osap.KindReply, reply, nil, 1, func(error) {})
}

func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	b := &bridge{}
	b.s = upstream.New(upstream.Config{Heartbeat: 30 * time.Second, Logger: slog.Default()}, lbs{}, creds{}, b)
	if err := b.s.Run(ctx); err != nil { // until SIGTERM: then {"online":false}, DISCONNECT
		slog.Error("upstream", "err", err)
	}
}
