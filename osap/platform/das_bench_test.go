package platform

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/osapgw/osapgw/osap"
)

// BenchmarkDASIngest measures how many sealed event.report messages per
// second the DAS takes in from one device publishing at QoS 1 on loopback:
// open, deduplicate, store (with fsync in the "file" case), PUBACK. The
// device pipelines its publishes and waits for every PUBACK.
func BenchmarkDASIngest(b *testing.B) {
	for _, bc := range []struct {
		name    string
		state   bool
		devices int
	}{
		{name: "file", state: true, devices: 1},
		{name: "memory", state: false, devices: 1},
		{name: "file-8devices", state: true, devices: 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			keys := newFakeKeys()
			cfg := DASConfig{Keys: keys}
			if bc.state {
				cfg.StateDir = b.TempDir()
			}
			d := benchDAS(b, cfg)
			type gw struct {
				id       string
				c        paho.Client
				topic    string
				payloads [][]byte
			}
			gws := make([]*gw, bc.devices)
			at := time.Now()
			for k := range gws {
				g := &gw{id: "gw-bench-" + strconv.Itoa(k)}
				g.topic = osap.Topic(g.id, osap.DirUp, osap.KindEvent)
				ci, err := osap.NewCipher(osap.SuiteAESGCM, keys.add(g.id))
				if err != nil {
					b.Fatal(err)
				}
				pw, err := ci.LoginPassword(rand.Reader, g.id, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				opts := paho.NewClientOptions().AddBroker(d.URL()).SetClientID(g.id).SetUsername(g.id).
					SetPassword(pw).SetCleanSession(false).SetAutoReconnect(false).SetProtocolVersion(4)
				g.c = paho.NewClient(opts)
				if tok := g.c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
					b.Fatalf("connect: %v", tok.Error())
				}
				defer g.c.Disconnect(50)
				n := b.N / bc.devices
				if k < b.N%bc.devices {
					n++
				}
				for i := range n {
					ev := osap.EventReport{Resource: "video/1", Event: "motion", Params: json.RawMessage(`{"state":` + strconv.FormatBool(i%2 == 0) + `}`), TS: at.UnixMilli()}
					p, err := ci.SealMessage(rand.Reader, g.topic, osap.Header{ID: strconv.Itoa(i + 1), TS: at.UnixMilli(), Type: osap.TypeEventReport, Dev: "cam-1"}, ev)
					if err != nil {
						b.Fatal(err)
					}
					g.payloads = append(g.payloads, p)
				}
				gws[k] = g
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			errs := make(chan error, bc.devices)
			for _, g := range gws {
				wg.Add(1)
				go func() {
					defer wg.Done()
					toks := make([]paho.Token, len(g.payloads))
					for i, p := range g.payloads {
						toks[i] = g.c.Publish(g.topic, 1, false, p)
					}
					for _, tok := range toks {
						if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
							errs <- fmt.Errorf("%s: publish: %v", g.id, tok.Error())
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			total := 0
			for _, g := range gws {
				total += d.events.Len(g.id)
			}
			if total != b.N {
				b.Fatalf("stored %d events, want %d", total, b.N)
			}
		})
	}
}

// benchDAS serves a DAS for the benchmark's duration.
func benchDAS(b *testing.B, cfg DASConfig) *DAS {
	b.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = testLogger(b)
	d, err := NewDAS(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		d.Close()
	})
	for deadline := time.Now().Add(waitLimit); !d.Serving(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("DAS not serving")
		}
	}
	return d
}
