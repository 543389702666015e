package platform

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/google/go-cmp/cmp"
	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/internal/testpki"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

// waitLimit bounds every wait in these tests so that a bug fails the test
// instead of hanging it; nothing here asserts on speed.
const waitLimit = 20 * time.Second

// fakeKeys is a KeySource over a map.
type fakeKeys struct {
	mu    sync.Mutex
	suite osap.Suite
	keys  map[string][][]byte
}

func newFakeKeys() *fakeKeys {
	return &fakeKeys{suite: osap.SuiteAESGCM, keys: map[string][][]byte{}}
}

func (f *fakeKeys) SessionKeys(devID string) (osap.Suite, [][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[devID]
	if !ok {
		return 0, nil, fmt.Errorf("device %q: unknown", devID)
	}
	return f.suite, k, nil
}

// add gives devID a fresh session key and returns it.
func (f *fakeKeys) add(devID string) []byte {
	k := make([]byte, osap.KeySize)
	rand.Read(k)
	f.mu.Lock()
	f.keys[devID] = append([][]byte{k}, f.keys[devID]...)
	f.mu.Unlock()
	return k
}

func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runningDAS is a DAS serving in the background of a test.
type runningDAS struct {
	*DAS
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
}

func newDAS(t *testing.T, cfg DASConfig) *DAS {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	d, err := NewDAS(cfg)
	if err != nil {
		t.Fatalf("NewDAS: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// serve runs d.Serve until stop (or the test's end).
func serve(t *testing.T, d *DAS) *runningDAS {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningDAS{DAS: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Serve(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	for deadline := time.Now().Add(waitLimit); !d.Serving(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("DAS not serving")
		}
	}
	return r
}

func (r *runningDAS) stop(t *testing.T) {
	r.stopOnce.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// testDevice is a gateway played by a paho client.
type testDevice struct {
	t      *testing.T
	id     string
	ci     *osap.Cipher
	client paho.Client
	down   chan osap.Message
	lost   chan error
	tls    *tls.Config // for mqtts
	will   string      // will topic, if any
	// answer, when set, builds the reply to a downlink request.
	answer func(osap.Message) (code int, msg string, body any)
}

func password(t *testing.T, ci *osap.Cipher, devID string, at time.Time) string {
	t.Helper()
	pw, err := ci.LoginPassword(rand.Reader, devID, at)
	if err != nil {
		t.Fatalf("LoginPassword: %v", err)
	}
	return pw
}

func newDevice(t *testing.T, id string, key []byte) *testDevice {
	t.Helper()
	ci, err := osap.NewCipher(osap.SuiteAESGCM, key)
	if err != nil {
		t.Fatal(err)
	}
	return &testDevice{t: t, id: id, ci: ci, down: make(chan osap.Message, 64), lost: make(chan error, 1)}
}

// connect logs in with client id clientID (usually the DevID), user name
// td.id and password pw; it returns the CONNECT error.
func (td *testDevice) connect(url, clientID, pw string) error {
	opts := paho.NewClientOptions().AddBroker(url).
		SetClientID(clientID).SetUsername(td.id).SetPassword(pw).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).
		SetProtocolVersion(4).SetKeepAlive(30 * time.Second).SetConnectTimeout(waitLimit).
		SetOrderMatters(false).SetTLSConfig(td.tls).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case td.lost <- err:
			default:
			}
		})
	if td.will != "" {
		opts.SetWill(td.will, "x", 1, false)
	}
	td.client = paho.NewClient(opts)
	tok := td.client.Connect()
	if !tok.WaitTimeout(waitLimit) {
		td.t.Fatal("CONNECT: no answer")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	td.t.Cleanup(func() { td.client.Disconnect(50) })
	return nil
}

// login connects with a fresh password.
func (td *testDevice) login(d *DAS) {
	td.t.Helper()
	if err := td.connect(d.URL(), td.id, password(td.t, td.ci, td.id, time.Now())); err != nil {
		td.t.Fatalf("connect %s: %v", td.id, err)
	}
}

// subscribe subscribes to the device's down topics; requests are answered
// with td.answer when set, and every message goes to td.down.
func (td *testDevice) subscribe() {
	td.t.Helper()
	tok := td.client.Subscribe(osap.DownFilter(td.id), 1, func(c paho.Client, m paho.Message) {
		msg, err := td.ci.OpenMessage(m.Topic(), m.Payload())
		if err != nil {
			td.t.Errorf("open downlink on %s: %v", m.Topic(), err)
			return
		}
		if td.answer != nil && msg.Type != osap.TypeTopoReply {
			code, text, body := td.answer(msg)
			topic := osap.Topic(td.id, osap.DirUp, osap.KindReply)
			p, err := td.ci.SealMessage(rand.Reader, topic, osap.Header{ID: msg.ID, TS: time.Now().UnixMilli(), Type: osap.TypeReply, Dev: msg.Dev, Code: code, Msg: text}, body)
			if err != nil {
				td.t.Error(err)
				return
			}
			c.Publish(topic, 1, false, p) // not waited for: this is paho's delivery goroutine
		}
		td.down <- msg
	})
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		td.t.Fatalf("subscribe: %v", tok.Error())
	}
}

// publish seals and publishes at QoS 1 and waits for the PUBACK.
func (td *testDevice) publish(kind string, h osap.Header, body any) {
	td.t.Helper()
	if h.TS == 0 {
		h.TS = time.Now().UnixMilli()
	}
	topic := osap.Topic(td.id, osap.DirUp, kind)
	p, err := td.ci.SealMessage(rand.Reader, topic, h, body)
	if err != nil {
		td.t.Fatal(err)
	}
	tok := td.client.Publish(topic, 1, false, p)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		td.t.Fatalf("publish %s on %s: no PUBACK (%v)", h.Type, topic, tok.Error())
	}
}

// event publishes an event.report with id.
func (td *testDevice) event(id, dev string) {
	td.t.Helper()
	td.publish(osap.KindEvent, osap.Header{ID: id, Type: osap.TypeEventReport, Dev: dev},
		osap.EventReport{Resource: "video/1", Event: "motion", Params: json.RawMessage(`{"state":true}`), TS: 1764150000000})
}

func (td *testDevice) waitLost() {
	td.t.Helper()
	select {
	case <-td.lost:
	case <-time.After(waitLimit):
		td.t.Fatal("the DAS did not close the connection")
	}
}

func (td *testDevice) recv() osap.Message {
	td.t.Helper()
	select {
	case m := <-td.down:
		return m
	case <-time.After(waitLimit):
		td.t.Fatal("no downlink message")
	}
	return osap.Message{}
}

func TestLogin(t *testing.T) {
	leaktest.Check(t)
	now := time.Unix(1764150000, 0)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys, Now: func() time.Time { return now }}))
	wrong := make([]byte, osap.KeySize)

	tests := []struct {
		name     string
		devID    string
		clientID string // default devID
		register bool   // give devID a session key
		key      []byte // seal the password with this key instead of the device's
		will     string
		at       time.Time
		want     error
	}{
		{name: "good", devID: "gw-good", register: true, at: now},
		{name: "299 s old", devID: "gw-old-ok", register: true, at: now.Add(-299 * time.Second)},
		{name: "299 s ahead", devID: "gw-ahead-ok", register: true, at: now.Add(299 * time.Second)},
		{name: "stale", devID: "gw-stale", register: true, at: now.Add(-301 * time.Second), want: packets.ErrorRefusedBadUsernameOrPassword},
		{name: "future", devID: "gw-future", register: true, at: now.Add(301 * time.Second), want: packets.ErrorRefusedBadUsernameOrPassword},
		{name: "wrong key", devID: "gw-wrong", register: true, key: wrong, at: now, want: packets.ErrorRefusedBadUsernameOrPassword},
		{name: "unknown DevID", devID: "gw-unknown", at: now, want: packets.ErrorRefusedNotAuthorised},
		{name: "client id is not the user name", devID: "gw-mismatch", clientID: "gw-other", register: true, at: now, want: packets.ErrorRefusedNotAuthorised},
		{name: "will on its status topic", devID: "gw-will", register: true, at: now, will: "osap/v1/gw-will/up/status"},
		{name: "will on another topic", devID: "gw-will-bad", register: true, at: now, will: "osap/v1/gw-other/down/attribute", want: packets.ErrorRefusedNotAuthorised},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := wrong
			if tt.register {
				key = keys.add(tt.devID)
			}
			if tt.key != nil {
				key = tt.key
			}
			td := newDevice(t, tt.devID, key)
			td.will = tt.will
			clientID := tt.clientID
			if clientID == "" {
				clientID = tt.devID
			}
			err := td.connect(d.URL(), clientID, password(t, td.ci, tt.devID, tt.at))
			if !errors.Is(err, tt.want) {
				t.Fatalf("connect = %v, want %v", err, tt.want)
			}
			if err != nil {
				if _, err := d.Device(tt.devID); !errors.Is(err, ErrDeviceNotFound) {
					t.Errorf("Device(%q) after a refused login = %v, want ErrDeviceNotFound", tt.devID, err)
				}
				return
			}
			// A PUBACK means the connection is established (packets are
			// read only after that).
			td.publish(osap.KindStatus, osap.Header{ID: "s1", Type: osap.TypeStatus}, osap.Status{Online: true})
			if got := d.Registered(); got != 1 {
				t.Errorf("Registered() = %d, want 1", got)
			}
			info, err := d.Device(tt.devID)
			if err != nil || !info.Online || info.Suite != "aes-128-gcm" {
				t.Errorf("Device(%q) = %+v, %v; want online with aes-128-gcm", tt.devID, info, err)
			}
			td.client.Disconnect(50)
			waitFor(t, "the DAS to see the disconnect", func() bool { return d.Registered() == 0 })
		})
	}
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
	}
}

func TestLoginReplay(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys}))
	td := newDevice(t, "gw-replay", keys.add("gw-replay"))
	pw := password(t, td.ci, td.id, time.Now())
	if err := td.connect(d.URL(), td.id, pw); err != nil {
		t.Fatalf("first connect: %v", err)
	}
	td.client.Disconnect(50)
	if err := td.connect(d.URL(), td.id, pw); !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
		t.Fatalf("connect with the same password = %v, want %v", err, packets.ErrorRefusedBadUsernameOrPassword)
	}
	if err := td.connect(d.URL(), td.id, password(t, td.ci, td.id, time.Now())); err != nil {
		t.Fatalf("connect with a new password: %v", err)
	}
}

func TestReplayCachePruned(t *testing.T) {
	keys := newFakeKeys()
	now := time.Unix(1764150000, 0)
	d := newDAS(t, DASConfig{Keys: keys, Now: func() time.Time { return now }})
	var n1, n2 [osap.NonceSize]byte
	n2[0] = 1
	if !d.freshNonce("gw", n1, now, now) || d.freshNonce("gw", n1, now, now) {
		t.Fatal("first use of a nonce refused or second use accepted")
	}
	later := now.Add(osap.LoginMaxAge + time.Second)
	if !d.freshNonce("gw", n2, later, later) {
		t.Fatal("new nonce refused")
	}
	if d.replay.kept("gw", n1) {
		t.Errorf("nonce seen %v ago still in the replay cache", later.Sub(now))
	}
}

func TestTopicACL(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys}))
	keys.add("gw-b")
	td := newDevice(t, "gw-a", keys.add("gw-a"))
	td.login(d.DAS)

	// Subscriptions: only its own down topics.
	for filter, want := range map[string]byte{
		osap.DownFilter("gw-a"):          1,
		"osap/v1/gw-a/down/attribute":    1,
		osap.DownFilter("gw-b"):          0x80,
		"osap/v1/+/down/#":               0x80,
		"osap/v1/gw-a/up/#":              0x80,
		"#":                              0x80,
		"osap/v1/gw-b/down/attribute":    0x80,
		"osap/v1/gw-a/down-and-more/#":   0x80,
		"osap/v1/gw-a/down/":             0x80,
		"$SYS/broker/clients/connected":  0x80,
		"osap/v1/gw-a/downstream/attrib": 0x80,
	} {
		tok := td.client.Subscribe(filter, 1, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(waitLimit) {
			t.Fatalf("subscribe %q: no SUBACK", filter)
		}
		if got := tok.(*paho.SubscribeToken).Result()[filter]; got != want {
			t.Errorf("subscribe %q: SUBACK %#x, want %#x", filter, got, want)
		}
	}

	// Publishing to another DevID's topic closes the connection and stores
	// nothing.
	topic := osap.Topic("gw-b", osap.DirUp, osap.KindEvent)
	p, err := td.ci.SealMessage(rand.Reader, topic, osap.Header{ID: "1", Type: osap.TypeEventReport}, osap.EventReport{Resource: "r", Event: "e"})
	if err != nil {
		t.Fatal(err)
	}
	td.client.Publish(topic, 1, false, p)
	td.waitLost()
	for _, id := range []string{"gw-a", "gw-b"} {
		if got := d.Events(id, 0, 0); len(got) != 0 {
			t.Errorf("Events(%q) = %v, want none", id, got)
		}
	}
	if _, err := d.Device("gw-b"); !errors.Is(err, ErrDeviceNotFound) {
		t.Errorf("Device(gw-b) = %v, want ErrDeviceNotFound", err)
	}

	// Publishing to its own down topic is refused as well.
	td2 := newDevice(t, "gw-a", td.ci2key(keys))
	td2.login(d.DAS)
	td2.client.Publish(osap.Topic("gw-a", osap.DirDown, osap.KindAttribute), 1, false, []byte("x"))
	td2.waitLost()
}

// ci2key returns the device's current key from keys.
func (td *testDevice) ci2key(keys *fakeKeys) []byte {
	_, k, _ := keys.SessionKeys(td.id)
	return k[0]
}

func TestEventsDeduplicatedAcrossRestart(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	dir := t.TempDir()
	key := keys.add("gw-ev")

	d1 := newDAS(t, DASConfig{Keys: keys, StateDir: dir})
	r1 := serve(t, d1)
	td := newDevice(t, "gw-ev", key)
	td.login(d1)
	for _, id := range []string{"1", "2", "1", "3", "2"} {
		td.event(id, "cam-1")
	}
	wantIDs := func(d *DAS, want ...string) {
		t.Helper()
		var got []string
		for i, ev := range d.Events("gw-ev", 0, 0) {
			got = append(got, ev.ID)
			if ev.Seq != uint64(i+1) {
				t.Errorf("event %s has seq %d, want %d", ev.ID, ev.Seq, i+1)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stored event ids (-want +got):\n%s", diff)
		}
	}
	wantIDs(d1, "1", "2", "3")
	// Each PUBACK came after its event reached the file.
	if raw, err := os.ReadFile(filepath.Join(dir, "events.jsonl")); err != nil || bytes.Count(raw, []byte("\n")) != 3 {
		t.Errorf("event file before the stop: %v\n%s, want 3 lines", err, raw)
	}
	ev := d1.Events("gw-ev", 0, 1)[0]
	if ev.Dev != "cam-1" || ev.Resource != "video/1" || ev.Name != "motion" || ev.Captured.UnixMilli() != 1764150000000 || ev.Received.IsZero() {
		t.Errorf("event = %+v, want cam-1 video/1 motion captured at 1764150000000", ev)
	}
	var rep osap.EventReport
	if err := json.Unmarshal(ev.Body, &rep); err != nil || string(rep.Params) != `{"state":true}` {
		t.Errorf("event body %s: %v", ev.Body, err)
	}

	// The emulator stops and a new one starts on the same state dir.
	r1.stop(t)
	td.waitLost()
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := newDAS(t, DASConfig{Keys: keys, StateDir: dir})
	info, err := d2.Device("gw-ev")
	if err != nil || info.Online || info.Events != 3 {
		t.Fatalf("Device after restart = %+v, %v; want offline with 3 events", info, err)
	}
	serve(t, d2)
	td2 := newDevice(t, "gw-ev", key)
	td2.login(d2)
	for _, id := range []string{"3", "1", "4"} {
		td2.event(id, "cam-1")
	}
	wantIDs(d2, "1", "2", "3", "4")
	if got := d2.Events("gw-ev", 2, 1); len(got) != 1 || got[0].ID != "3" {
		t.Errorf("Events(after 2, limit 1) = %+v, want event 3", got)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(raw, []byte("\n")); n != 4 {
		t.Errorf("event file has %d lines, want 4:\n%s", n, raw)
	}
}

func TestTopology(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys}))
	td := newDevice(t, "gw-topo", keys.add("gw-topo"))
	td.login(d.DAS)
	td.subscribe()

	cam := model.Device{ID: "cam-1", Kind: "onvif", Resources: []model.Resource{{Name: "video/1", Areas: []model.Area{{Name: "imaging",
		Attributes: []model.Attribute{{Name: "brightness", Type: model.TypeFloat, Writable: true}}}}}}}
	bad := model.Device{Kind: "modbus"} // no id
	td.publish(osap.KindTopo, osap.Header{ID: "t1", Type: osap.TypeTopoAdd}, osap.TopoAdd{Devices: []model.Device{cam, bad}})
	reply := td.recv()
	if reply.Type != osap.TypeTopoReply || reply.ID != "t1" || reply.Code != osap.CodeBadRequest || reply.Msg == "" {
		t.Errorf("topo.reply header = %+v, want id t1, code 400 and a message", reply.Header)
	}
	var accepted osap.DeviceList
	if err := reply.DecodeBody(&accepted); err != nil || !cmp.Equal(accepted.Devices, []string{"cam-1"}) {
		t.Errorf("topo.reply body %s, want devices [cam-1]", reply.Body)
	}

	td.publish(osap.KindAttribute, osap.Header{ID: "a1", Type: osap.TypeAttributeReport, Dev: "cam-1"},
		osap.AttributeReport{Resource: "video/1", Values: map[string]model.Value{"brightness": {V: 0.5, At: time.UnixMilli(1764150000000)}}})
	td.publish(osap.KindAttribute, osap.Header{ID: "a2", Type: osap.TypeAttributeReport},
		osap.AttributeReport{Resource: "system", Values: map[string]model.Value{"uptime": {V: int64(42), At: time.UnixMilli(1764150000000)}}})
	info, err := d.Device("gw-topo")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.SubDevices) != 1 || info.SubDevices[0].ID != "cam-1" || !info.SubDevices[0].Online || info.SubDevices[0].Model == nil {
		t.Fatalf("sub-devices = %+v, want cam-1 online with its model", info.SubDevices)
	}
	if diff := cmp.Diff(cam, *info.SubDevices[0].Model); diff != "" {
		t.Errorf("stored model (-want +got):\n%s", diff)
	}
	if got := info.SubDevices[0].Attributes["video/1"]["brightness"]; got.V != 0.5 || got.At.UnixMilli() != 1764150000000 {
		t.Errorf("cam-1 brightness = %+v, want 0.5 at 1764150000000", got)
	}
	if got := info.Attributes["system"]["uptime"]; got.V != int64(42) {
		t.Errorf("gateway uptime = %#v, want 42", got.V)
	}

	// A bad point: kept with its reason, shown by the API without a value.
	td.publish(osap.KindAttribute, osap.Header{ID: "a3", Type: osap.TypeAttributeReport, Dev: "cam-1"},
		osap.AttributeReport{Resource: "video/1", Values: map[string]model.Value{"brightness": model.BadValue(time.UnixMilli(1764150001000), "no answer within 1s")}})
	info, err = d.Device("gw-topo")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.SubDevices[0].Attributes["video/1"]["brightness"]; got.Quality != model.QualityBad || got.Err != "no answer within 1s" || got.V != nil {
		t.Errorf("cam-1 brightness = %+v, want bad: no answer within 1s", got)
	}
	apiJSON, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"brightness":{"ts":1764150001000,"q":"bad","err":"no answer within 1s"}`; !bytes.Contains(apiJSON, []byte(want)) {
		t.Errorf("device info JSON = %s, want it to hold %s", apiJSON, want)
	}

	td.publish(osap.KindTopo, osap.Header{ID: "t2", Type: osap.TypeSubOffline}, osap.DeviceList{Devices: []string{"cam-1"}})
	if info, _ := d.Device("gw-topo"); info.SubDevices[0].Online {
		t.Error("cam-1 online after sub.offline")
	}
	td.publish(osap.KindTopo, osap.Header{ID: "t3", Type: osap.TypeTopoRemove}, osap.DeviceList{Devices: []string{"cam-1"}})
	if info, _ := d.Device("gw-topo"); len(info.SubDevices) != 0 {
		t.Errorf("sub-devices after topo.remove = %+v, want none", info.SubDevices)
	}
	// A message whose type does not belong on the topic is dropped.
	td.publish(osap.KindTopo, osap.Header{ID: "9", Type: osap.TypeEventReport}, osap.EventReport{Resource: "r", Event: "e"})
	if got := d.Events("gw-topo", 0, 0); len(got) != 0 {
		t.Errorf("event.report on the topo topic stored: %+v", got)
	}
}

func TestRequest(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys}))
	td := newDevice(t, "gw-req", keys.add("gw-req"))
	td.answer = func(m osap.Message) (int, string, any) {
		switch m.Type {
		case osap.TypeOperationInvoke:
			var in osap.OperationInvoke
			if err := m.DecodeBody(&in); err != nil {
				return osap.CodeBadRequest, err.Error(), nil
			}
			return osap.CodeOK, "", osap.ReplyBody{Output: map[string]any{"preset": in.Input["preset"], "dev": m.Dev}}
		case osap.TypeAttributeSet:
			return osap.CodeNotWritable, "brightness is read-only", nil
		}
		return osap.CodeBadRequest, "unexpected " + m.Type, nil
	}
	td.login(d.DAS)
	td.subscribe()
	ctx := context.Background()

	reply, err := d.Request(ctx, "gw-req", "cam-1", osap.TypeOperationInvoke,
		osap.OperationInvoke{Resource: "ptz/1", Operation: "goto_preset", Input: map[string]any{"preset": "3"}})
	if err != nil {
		t.Fatalf("Request invoke: %v", err)
	}
	if reply.Type != osap.TypeReply || reply.Code != osap.CodeOK {
		t.Errorf("reply header = %+v, want reply with code 0", reply.Header)
	}
	var out osap.ReplyBody
	if err := reply.DecodeBody(&out); err != nil || out.Output["preset"] != "3" || out.Output["dev"] != "cam-1" {
		t.Errorf("reply body %s (%v), want output preset 3 for cam-1", reply.Body, err)
	}
	sent := td.recv()
	if sent.ID != reply.ID || sent.Dev != "cam-1" {
		t.Errorf("request seen by the device = %+v, reply id %q", sent.Header, reply.ID)
	}

	// RequestRaw sends the body's bytes as they are (the gateway's own
	// tests send garbled ones: gateway.TestGatewayEndToEnd).
	reply, err = d.RequestRaw(ctx, "gw-req", "cam-1", osap.TypeOperationInvoke, []byte(` {"resource":"ptz/1","operation":"goto_preset","input":{"preset":"7"}}`))
	if err != nil || reply.Code != osap.CodeOK || reply.DecodeBody(&out) != nil || out.Output["preset"] != "7" {
		t.Errorf("RequestRaw invoke = %+v %s, %v; want code 0 with preset 7", reply.Header, reply.Body, err)
	}
	if sent := td.recv(); sent.ID != reply.ID || string(sent.Body) != ` {"resource":"ptz/1","operation":"goto_preset","input":{"preset":"7"}}` {
		t.Errorf("RequestRaw: the device got %+v %q, want the body as sent", sent.Header, sent.Body)
	}

	reply, err = d.Request(ctx, "gw-req", "cam-1", osap.TypeAttributeSet, osap.AttributeSet{Resource: "video/1", Values: map[string]any{"brightness": 1}})
	if err != nil || reply.Code != osap.CodeNotWritable || reply.Msg != "brightness is read-only" {
		t.Errorf("Request set = %+v, %v; want code 409 with its message", reply.Header, err)
	}
	td.recv()

	if _, err := d.Request(ctx, "gw-nobody", "", osap.TypeAttributeGet, osap.AttributeGet{Resource: "main"}); !errors.Is(err, ErrDeviceOffline) {
		t.Errorf("Request to an unknown device = %v, want ErrDeviceOffline", err)
	}
	if _, err := d.Request(ctx, "gw-req", "", "topo.reply", nil); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Request of type topo.reply = %v, want ErrInvalidRequest", err)
	}

	// A device that never answers: the caller's context ends the wait.
	td.answer = nil
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := d.Request(short, "gw-req", "", osap.TypeAttributeGet, osap.AttributeGet{Resource: "main"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Request with no answer = %v, want context.DeadlineExceeded", err)
	}
}

func TestServeAgain(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	key := keys.add("gw-out")
	d := newDAS(t, DASConfig{Keys: keys})
	url := d.URL()

	for round := range 3 {
		r := serve(t, d)
		td := newDevice(t, "gw-out", key)
		td.login(d)
		td.event(fmt.Sprint(round+1), "")
		if got := d.Registered(); got != 1 {
			t.Errorf("round %d: Registered() = %d, want 1", round, got)
		}
		if round == 0 {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := d.Serve(ctx); !errors.Is(err, ErrDASRunning) {
				t.Errorf("second Serve while serving = %v, want ErrDASRunning", err)
			}
		}
		r.stop(t)
		td.waitLost()
		if got := d.Registered(); got != 0 {
			t.Errorf("round %d: Registered() after stop = %d, want 0", round, got)
		}
		if info, _ := d.Device("gw-out"); info.Online {
			t.Errorf("round %d: device online after stop", round)
		}
		if d.URL() != url {
			t.Errorf("URL changed from %s to %s", url, d.URL())
		}
	}
	if got := len(d.Events("gw-out", 0, 0)); got != 3 {
		t.Errorf("%d events stored over three rounds, want 3", got)
	}
}

func TestUndecryptableUplinkDropped(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys}))
	td := newDevice(t, "gw-junk", keys.add("gw-junk"))
	td.login(d.DAS)
	topic := osap.Topic(td.id, osap.DirUp, osap.KindEvent)
	// Sealed for another topic: the AAD does not match.
	p, err := td.ci.SealMessage(rand.Reader, osap.Topic(td.id, osap.DirUp, osap.KindStatus), osap.Header{ID: "1", Type: osap.TypeEventReport}, osap.EventReport{Resource: "r", Event: "e"})
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range [][]byte{p, []byte("garbage"), nil} {
		tok := td.client.Publish(topic, 1, false, payload)
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	if got := d.Events(td.id, 0, 0); len(got) != 0 {
		t.Errorf("stored %+v from payloads that do not open", got)
	}
	td.event("1", "")
	if got := d.Events(td.id, 0, 0); len(got) != 1 {
		t.Errorf("stored %d events, want 1", len(got))
	}
}

func TestSilentAndGarbageConnectionsClosed(t *testing.T) {
	leaktest.Check(t)
	d := serve(t, newDAS(t, DASConfig{Keys: newFakeKeys(), ConnectTimeout: 100 * time.Millisecond}))
	for _, tt := range []struct {
		name string
		send []byte
	}{
		{name: "silent"},
		{name: "half a CONNECT", send: []byte{0x10, 0x20, 0x00, 0x04, 'M', 'Q'}},
		{name: "garbage", send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", d.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(waitLimit))
			n, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the DAS kept the connection open (read %d bytes)", n)
			}
		})
	}
	if got := d.Registered(); got != 0 {
		t.Errorf("Registered() = %d, want 0", got)
	}
}

func TestTLS(t *testing.T) {
	leaktest.Check(t)
	cert, pool := testpki.Server(t)
	keys := newFakeKeys()
	d := serve(t, newDAS(t, DASConfig{Keys: keys, TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}))
	if !strings.HasPrefix(d.URL(), "mqtts://127.0.0.1:") {
		t.Fatalf("URL() = %q, want mqtts://127.0.0.1:port", d.URL())
	}
	td := newDevice(t, "gw-tls", keys.add("gw-tls"))
	td.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	td.login(d.DAS)
	td.event("1", "")
	if got := len(d.Events("gw-tls", 0, 0)); got != 1 {
		t.Errorf("%d events stored over TLS, want 1", got)
	}
}

func TestTakeOver(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	key := keys.add("gw-twice")
	d := serve(t, newDAS(t, DASConfig{Keys: keys}))
	first := newDevice(t, "gw-twice", key)
	first.login(d.DAS)
	first.event("1", "")
	second := newDevice(t, "gw-twice", key)
	second.login(d.DAS)
	first.waitLost()
	second.event("2", "")
	if got := d.Registered(); got != 1 {
		t.Errorf("Registered() = %d, want 1", got)
	}
	if got := ids(d.Events("gw-twice", 0, 0)); got != "gw-twice/1 gw-twice/2" {
		t.Errorf("events = %q", got)
	}
	second.client.Disconnect(50)
	waitFor(t, "the DAS to see the disconnect", func() bool { return d.Registered() == 0 })
}
