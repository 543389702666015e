package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/osap"
)

func TestDownlinkReplyCodes(t *testing.T) {
	h := newHarness(t, Config{RequestTimeout: 100 * time.Millisecond}, "boiler-1", "slow", "broken", "locked")
	h.devs["locked"].setErr = fmt.Errorf("camera %q: %w: not authorized (HTTP 401, digest)", "locked", adapters.ErrUnauthorized)
	h.devs["slow"].block = true
	h.devs["broken"].setErr = errors.New("illegal data address (register 40010)")
	h.devs["broken"].getBad = map[string]string{"temperature": "exception 2 (illegal data address)"}
	h.connect()
	tests := []struct {
		name     string
		typ      string
		dev      string
		body     string
		wantCode int
		wantBody string
	}{
		{"set ok", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"setpoint":42}}`, 0, ""},
		{"unknown device", osap.TypeAttributeSet, "nope", `{"resource":"main","values":{"setpoint":42}}`, 404, ""},
		{"unknown resource", osap.TypeAttributeSet, "boiler-1", `{"resource":"aux","values":{"setpoint":42}}`, 404, ""},
		{"unknown attribute", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"colour":1}}`, 404, ""},
		{"not writable", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"temperature":1}}`, 409, ""},
		{"wrong type", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"setpoint":"hot"}}`, 400, ""},
		{"out of range", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","values":{"setpoint":400}}`, 400, ""},
		{"malformed body", osap.TypeAttributeSet, "boiler-1", `{"resource":"main","valeurs":{}}`, 400, ""},
		{"device timeout", osap.TypeAttributeSet, "slow", `{"resource":"main","values":{"setpoint":1}}`, 408, ""},
		{"device error", osap.TypeAttributeSet, "broken", `{"resource":"main","values":{"setpoint":1}}`, 500, ""},
		{"credentials refused", osap.TypeAttributeSet, "locked", `{"resource":"main","values":{"setpoint":1}}`, 401, ""},
		{"get", osap.TypeAttributeGet, "boiler-1", `{"resource":"main","names":["temperature"]}`, 0, `{"values":{"temperature":{"v":21.5,"ts":1000,"q":"good"}}}`},
		{"get unknown", osap.TypeAttributeGet, "boiler-1", `{"resource":"main","names":["colour"]}`, 404, ""},
		{"get a bad point", osap.TypeAttributeGet, "broken", `{"resource":"main","names":["temperature"]}`, 500,
			`{"values":{"temperature":{"ts":1000,"q":"bad","err":"exception 2 (illegal data address)"}}}`},
		{"get all with a bad point", osap.TypeAttributeGet, "broken", `{"resource":"main"}`, 500,
			`{"values":{"setpoint":{"v":42,"ts":1000,"q":"good"},"temperature":{"ts":1000,"q":"bad","err":"exception 2 (illegal data address)"}}}`},
		{"get a good point beside a bad one", osap.TypeAttributeGet, "broken", `{"resource":"main","names":["setpoint"]}`, 0, `{"values":{"setpoint":{"v":42,"ts":1000,"q":"good"}}}`},
		{"invoke", osap.TypeOperationInvoke, "boiler-1", `{"resource":"main","operation":"reset","input":{"mode":2}}`, 0, `{"output":{"mode":2,"ok":true}}`},
		{"invoke missing input", osap.TypeOperationInvoke, "boiler-1", `{"resource":"main","operation":"reset"}`, 400, ""},
		{"invoke unknown op", osap.TypeOperationInvoke, "boiler-1", `{"resource":"main","operation":"explode"}`, 404, ""},
		{"unknown type", "attribute.frobnicate", "boiler-1", `{}`, 400, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("req-%d", i)
			h.b.Downlink(osap.Message{Header: osap.Header{ID: id, Type: tt.typ, Dev: tt.dev}, Body: json.RawMessage(tt.body)})
			reply := h.replyTo(t, id)
			if reply.h.Code != tt.wantCode {
				t.Errorf("reply code = %d (%s), want %d", reply.h.Code, reply.h.Msg, tt.wantCode)
			}
			if tt.wantCode != 0 && reply.h.Msg == "" {
				t.Errorf("error reply has no message")
			}
			if tt.wantCode == 500 && tt.typ == osap.TypeAttributeGet && reply.h.Msg != `attribute "temperature": exception 2 (illegal data address)` {
				t.Errorf("reply msg = %q, want the bad attribute and its reason", reply.h.Msg)
			}
			if tt.wantBody != "" && string(reply.body) != tt.wantBody {
				t.Errorf("reply body = %s, want %s", reply.body, tt.wantBody)
			}
			if reply.kind != osap.KindReply || reply.h.Dev != tt.dev {
				t.Errorf("reply sent on %q for dev %q", reply.kind, reply.h.Dev)
			}
		})
	}
	h.devs["boiler-1"].mu.Lock()
	got := h.devs["boiler-1"].set["setpoint"].V
	h.devs["boiler-1"].mu.Unlock()
	if got != 42.0 {
		t.Errorf("adapter got setpoint %v (%T), want 42.0", got, got)
	}
	// An offline device answers 503 without being asked.
	h.b.Status("boiler-1", false, errors.New("no answer"))
	h.b.Downlink(osap.Message{Header: osap.Header{ID: "off", Type: osap.TypeAttributeGet, Dev: "boiler-1"}, Body: json.RawMessage(`{"resource":"main"}`)})
	if r := h.replyTo(t, "off"); r.h.Code != 503 {
		t.Errorf("offline device reply code = %d, want 503", r.h.Code)
	}
}

// TestDownlinkToOfflineDevice checks that a request the device model
// refuses gets its own code (400, 404, 409) even while the device is
// offline: only a request that would reach the device gets 503, which
// tells the platform to try again later.
func TestDownlinkToOfflineDevice(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	h.b.Status("boiler-1", false, errors.New("no answer"))
	tests := []struct {
		name     string
		typ      string
		body     string
		wantCode int
	}{
		{"unknown resource", osap.TypeAttributeSet, `{"resource":"aux","values":{"setpoint":42}}`, 404},
		{"unknown attribute", osap.TypeAttributeGet, `{"resource":"main","names":["colour"]}`, 404},
		{"unknown operation", osap.TypeOperationInvoke, `{"resource":"main","operation":"explode"}`, 404},
		{"not writable", osap.TypeAttributeSet, `{"resource":"main","values":{"temperature":1}}`, 409},
		{"out of range", osap.TypeAttributeSet, `{"resource":"main","values":{"setpoint":400}}`, 400},
		{"malformed body", osap.TypeAttributeGet, `[1]`, 400},
		{"valid set", osap.TypeAttributeSet, `{"resource":"main","values":{"setpoint":42}}`, 503},
		{"valid get", osap.TypeAttributeGet, `{"resource":"main","names":["temperature"]}`, 503},
		{"valid invoke", osap.TypeOperationInvoke, `{"resource":"main","operation":"reset","input":{"mode":2}}`, 503},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("off-%d", i)
			h.b.Downlink(osap.Message{Header: osap.Header{ID: id, Type: tt.typ, Dev: "boiler-1"}, Body: json.RawMessage(tt.body)})
			reply := h.replyTo(t, id)
			if reply.h.Code != tt.wantCode {
				t.Errorf("reply code = %d (%s), want %d", reply.h.Code, reply.h.Msg, tt.wantCode)
			}
		})
	}
	h.devs["boiler-1"].mu.Lock()
	set := h.devs["boiler-1"].set
	h.devs["boiler-1"].mu.Unlock()
	if set != nil {
		t.Errorf("offline adapter was asked to set %v, want not asked", set)
	}
}

// TestDownlinkAfterRun checks that a downlink arriving after Run returned
// (the session may still deliver one while it drains) is answered 503
// without reaching the device, and starts no goroutine that Run, gone,
// would not wait for.
func TestDownlinkAfterRun(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	if err := h.stop(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	h.b.Downlink(osap.Message{Header: osap.Header{ID: "late", Type: osap.TypeAttributeGet, Dev: "boiler-1"}, Body: json.RawMessage(`{"resource":"main","names":["temperature"]}`)})
	reply := h.replyTo(t, "late")
	if reply.h.Code != osap.CodeOffline {
		t.Errorf("reply code = %d (%s), want %d", reply.h.Code, reply.h.Msg, osap.CodeOffline)
	}
	a := h.devs["boiler-1"]
	a.mu.Lock()
	gets := a.gets
	a.mu.Unlock()
	if gets != 0 {
		t.Errorf("adapter Get called %d times after Run returned, want 0", gets)
	}
}

// TestRequestEndsWithItsDevice: a request in progress on a device that is
// taken out of the configuration is cancelled with it, not left running
// against a stopped adapter until its timeout.
func TestRequestEndsWithItsDevice(t *testing.T) {
	h := newHarness(t, Config{RequestTimeout: time.Minute}, "slow")
	h.devs["slow"].block = true
	h.connect()
	h.b.Downlink(osap.Message{Header: osap.Header{ID: "r1", Type: osap.TypeAttributeSet, Dev: "slow"}, Body: json.RawMessage(`{"resource":"main","values":{"setpoint":1}}`)})
	waitFor(t, "the request to reach the adapter", func() bool {
		a := h.devs["slow"]
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.sets == 1
	})
	h.b.Apply(nil)
	reply := h.replyTo(t, "r1")
	if reply.h.Code != osap.CodeOffline {
		t.Fatalf("request on a removed device answered %d (%s), want 503", reply.h.Code, reply.h.Msg)
	}
}

// TestDownlinkBadInput checks that a request the gateway cannot read is
// answered 400 with its id and dev, never dropped (binding 2.4), and
// that the device is not asked: bodies that are not JSON or not valid
// for their type reach Downlink or, when the upstream could not decode
// the message at all, Unreadable.
func TestDownlinkBadInput(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	tests := []struct {
		name       string
		typ        string
		body       string // for Downlink
		unreadable bool   // through Unreadable instead
	}{
		{name: "set body not JSON", typ: osap.TypeAttributeSet, body: `{"resource":"main",`},
		{name: "get body not JSON", typ: osap.TypeAttributeGet, body: `resource=main`},
		{name: "set unknown field", typ: osap.TypeAttributeSet, body: `{"resource":"main","values":{"setpoint":42},"force":true}`},
		{name: "get unknown field", typ: osap.TypeAttributeGet, body: `{"resource":"main","attributes":["temperature"]}`},
		{name: "invoke unknown field", typ: osap.TypeOperationInvoke, body: `{"resource":"main","operation":"reset","params":{"mode":2}}`},
		{name: "set resource not a string", typ: osap.TypeAttributeSet, body: `{"resource":5,"values":{"setpoint":42}}`},
		{name: "set values not an object", typ: osap.TypeAttributeSet, body: `{"resource":"main","values":[42]}`},
		{name: "get names not a list", typ: osap.TypeAttributeGet, body: `{"resource":"main","names":"temperature"}`},
		{name: "invoke input not an object", typ: osap.TypeOperationInvoke, body: `{"resource":"main","operation":"reset","input":[2]}`},
		{name: "set value of the wrong type", typ: osap.TypeAttributeSet, body: `{"resource":"main","values":{"setpoint":"hot"}}`},
		{name: "set no body", typ: osap.TypeAttributeSet, body: ``},
		{name: "get no body", typ: osap.TypeAttributeGet, body: ``},
		{name: "invoke no body", typ: osap.TypeOperationInvoke, body: ``},
		{name: "set empty object", typ: osap.TypeAttributeSet, body: `{}`},
		{name: "get null", typ: osap.TypeAttributeGet, body: `null`},
		{name: "invoke no operation", typ: osap.TypeOperationInvoke, body: `{"resource":"main"}`},
		{name: "set no values", typ: osap.TypeAttributeSet, body: `{"resource":"main","values":{}}`},
		{name: "unreadable set", typ: osap.TypeAttributeSet, unreadable: true},
		{name: "unreadable invoke", typ: osap.TypeOperationInvoke, unreadable: true},
		{name: "unreadable without a type", typ: "", unreadable: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("bad-%d", i)
			hdr := osap.Header{ID: id, Type: tt.typ, Dev: "boiler-1"}
			if tt.unreadable {
				h.b.Unreadable(hdr, fmt.Errorf("%w: %s: application payload is not JSON", osap.ErrMalformed, tt.typ))
			} else {
				h.b.Downlink(osap.Message{Header: hdr, Body: json.RawMessage(tt.body)})
			}
			reply := h.replyTo(t, id)
			if reply.h.Code != osap.CodeBadRequest {
				t.Errorf("reply code = %d (%s), want %d", reply.h.Code, reply.h.Msg, osap.CodeBadRequest)
			}
			if reply.kind != osap.KindReply || reply.h.Type != osap.TypeReply || reply.h.Dev != "boiler-1" || reply.h.Msg == "" {
				t.Errorf("reply = %q %+v, want a reply for dev %q with a message", reply.kind, reply.h, "boiler-1")
			}
		})
	}
	a := h.devs["boiler-1"]
	a.mu.Lock()
	sets, gets := a.sets, a.gets
	a.mu.Unlock()
	if sets != 0 || gets != 0 {
		t.Errorf("adapter asked %d sets and %d gets, want none", sets, gets)
	}
}

// TestUnreadableAnswerNotAnswered checks that an unreadable topo.reply,
// itself an answer, gets no reply.
func TestUnreadableAnswerNotAnswered(t *testing.T) {
	h := newHarness(t, Config{}, "boiler-1")
	h.connect()
	h.b.Unreadable(osap.Header{ID: "tr", Type: osap.TypeTopoReply}, osap.ErrMalformed)
	// Downlinks are handled in order: once the next one is answered, the
	// topo.reply would have been.
	h.b.Unreadable(osap.Header{ID: "next", Type: osap.TypeAttributeGet, Dev: "boiler-1"}, osap.ErrMalformed)
	h.replyTo(t, "next")
	for _, m := range h.up.messages(osap.TypeReply) {
		if m.h.ID == "tr" {
			t.Errorf("unreadable topo.reply answered: %+v", m.h)
		}
	}
}
