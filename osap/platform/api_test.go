package platform

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/internal/leaktest"
	"github.com/osapgw/osapgw/model"
	"github.com/osapgw/osapgw/osap"
)

func TestAPI(t *testing.T) {
	leaktest.Check(t)
	keys := newFakeKeys()
	store, err := OpenEventStore("")
	if err != nil {
		t.Fatal(err)
	}
	d1 := serve(t, newDAS(t, DASConfig{Keys: keys, Events: store}))
	d2 := serve(t, newDAS(t, DASConfig{Keys: keys, Events: store}))

	// gw-a on the first DAS answers requests and has a camera and events.
	a := newDevice(t, "gw-a", keys.add("gw-a"))
	a.answer = func(m osap.Message) (int, string, any) {
		switch m.Type {
		case osap.TypeOperationInvoke:
			return osap.CodeOK, "", osap.ReplyBody{Output: map[string]any{"done": true}}
		case osap.TypeAttributeGet:
			return osap.CodeNotFound, "no such resource", nil
		}
		var set osap.AttributeSet
		if err := m.DecodeBody(&set); err != nil {
			return osap.CodeBadRequest, err.Error(), nil
		}
		return osap.CodeOK, "", nil
	}
	a.login(d1.DAS)
	a.subscribe()
	cam := model.Device{ID: "cam-1", Kind: "onvif", Resources: []model.Resource{{Name: "video/1"}}}
	a.publish(osap.KindTopo, osap.Header{ID: "t1", Type: osap.TypeTopoAdd}, osap.TopoAdd{Devices: []model.Device{cam}})
	a.recv()
	for _, id := range []string{"1", "2", "3"} {
		a.event(id, "cam-1")
	}
	// gw-b on the second DAS never answers.
	b := newDevice(t, "gw-b", keys.add("gw-b"))
	b.login(d2.DAS)
	b.subscribe()
	b.event("1", "")
	// gw-c was connected and left.
	c := newDevice(t, "gw-c", keys.add("gw-c"))
	c.login(d1.DAS)
	c.event("1", "")
	c.client.Disconnect(50)

	h := NewAPI([]*DAS{d1.DAS, d2.DAS}, WithAPILogger(testLogger(t)))
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		check  func(t *testing.T, body []byte)
	}{
		{name: "devices", method: "GET", path: "/api/devices", status: 200, check: func(t *testing.T, body []byte) {
			var got struct{ Devices []DeviceInfo }
			mustJSON(t, body, &got)
			if len(got.Devices) != 3 || got.Devices[0].DevID != "gw-a" || !got.Devices[0].Online || got.Devices[0].Events != 3 ||
				got.Devices[1].DAS != d2.URL() || got.Devices[2].DevID != "gw-c" {
				t.Errorf("devices = %+v", got.Devices)
			}
			if len(got.Devices[0].SubDevices) != 1 || got.Devices[0].SubDevices[0].Model != nil {
				t.Errorf("gw-a sub-devices in the list = %+v, want cam-1 without its model", got.Devices[0].SubDevices)
			}
		}},
		{name: "device", method: "GET", path: "/api/devices/gw-a", status: 200, check: func(t *testing.T, body []byte) {
			var got DeviceInfo
			mustJSON(t, body, &got)
			if got.DevID != "gw-a" || len(got.SubDevices) != 1 || got.SubDevices[0].Model == nil || got.SubDevices[0].Model.Kind != "onvif" {
				t.Errorf("device = %+v", got)
			}
		}},
		{name: "unknown device", method: "GET", path: "/api/devices/gw-x", status: 404, check: wantError("not found")},
		{name: "events", method: "GET", path: "/api/devices/gw-a/events?after=0&limit=2", status: 200, check: func(t *testing.T, body []byte) {
			var got EventsPage
			mustJSON(t, body, &got)
			if len(got.Events) != 2 || got.Events[0].ID != "1" || got.Events[1].ID != "2" || got.Next != got.Events[1].Seq {
				t.Errorf("events page = %+v", got)
			}
		}},
		{name: "events after", method: "GET", path: "/api/devices/gw-a/events?after=2", status: 200, check: func(t *testing.T, body []byte) {
			var got EventsPage
			mustJSON(t, body, &got)
			if len(got.Events) != 1 || got.Events[0].ID != "3" || got.Next != 3 {
				t.Errorf("events page = %+v", got)
			}
		}},
		{name: "events none", method: "GET", path: "/api/devices/gw-a/events?after=100", status: 200, check: func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `"events": []`) || !strings.Contains(string(body), `"next": 100`) {
				t.Errorf("empty page = %s", body)
			}
		}},
		{name: "events bad after", method: "GET", path: "/api/devices/gw-a/events?after=x", status: 400, check: wantError("after")},
		{name: "events bad limit", method: "GET", path: "/api/devices/gw-a/events?limit=0", status: 400, check: wantError("limit")},
		{name: "events unknown device", method: "GET", path: "/api/devices/gw-x/events", status: 404, check: wantError("not found")},
		{name: "set", method: "POST", path: "/api/devices/gw-a/set", body: `{"dev":"cam-1","resource":"video/1","values":{"brightness":0.5}}`, status: 200, check: func(t *testing.T, body []byte) {
			var got Reply
			mustJSON(t, body, &got)
			if got.Code != 0 || got.ID == "" {
				t.Errorf("reply = %+v", got)
			}
		}},
		{name: "get", method: "POST", path: "/api/devices/gw-a/get", body: `{"dev":"cam-1","resource":"nope"}`, status: 200, check: func(t *testing.T, body []byte) {
			var got Reply
			mustJSON(t, body, &got)
			if got.Code != osap.CodeNotFound || got.Msg != "no such resource" {
				t.Errorf("reply = %+v, want 404 no such resource", got)
			}
		}},
		{name: "invoke", method: "POST", path: "/api/devices/gw-a/invoke", body: `{"dev":"cam-1","resource":"ptz/1","operation":"goto_preset","input":{"preset":"3"}}`, status: 200, check: func(t *testing.T, body []byte) {
			var got Reply
			mustJSON(t, body, &got)
			var out osap.ReplyBody
			mustJSON(t, got.Body, &out)
			if got.Code != 0 || out.Output["done"] != true {
				t.Errorf("reply = %+v, body %s", got, got.Body)
			}
		}},
		{name: "invoke on the second DAS, no answer", method: "POST", path: "/api/devices/gw-b/invoke?timeout=50ms", body: `{"resource":"r","operation":"o"}`, status: 504, check: wantError("deadline")},
		{name: "invoke offline", method: "POST", path: "/api/devices/gw-c/invoke", body: `{"resource":"r","operation":"o"}`, status: 503, check: wantError("offline")},
		{name: "invoke unknown", method: "POST", path: "/api/devices/gw-x/invoke", body: `{"resource":"r","operation":"o"}`, status: 404, check: wantError("not found")},
		{name: "invoke without operation", method: "POST", path: "/api/devices/gw-a/invoke", body: `{"resource":"r"}`, status: 400, check: wantError("operation")},
		{name: "set unknown field", method: "POST", path: "/api/devices/gw-a/set", body: `{"resource":"r","values":{"a":1},"x":1}`, status: 400, check: wantError("unknown field")},
		{name: "set not JSON", method: "POST", path: "/api/devices/gw-a/set", body: `{`, status: 400, check: wantError("body")},
		{name: "set no values", method: "POST", path: "/api/devices/gw-a/set", body: `{"resource":"r"}`, status: 400, check: wantError("values")},
		{name: "bad timeout", method: "POST", path: "/api/devices/gw-a/set?timeout=forever", body: `{"resource":"r","values":{"a":1}}`, status: 400, check: wantError("timeout")},
		{name: "wrong method", method: "DELETE", path: "/api/devices/gw-a", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.status)
			}
			if tt.status != 405 && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", rec.Header().Get("Content-Type"))
			}
			if tt.check != nil {
				tt.check(t, rec.Body.Bytes())
			}
		})
	}
	// The set reached the device with its values.
	var sawSet bool
	for len(a.down) > 0 {
		m := <-a.down
		if m.Type == osap.TypeAttributeSet && strings.Contains(string(m.Body), `"brightness":0.5`) && m.Dev == "cam-1" {
			sawSet = true
		}
	}
	if !sawSet {
		t.Error("the device never received the attribute.set")
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
}

func wantError(sub string) func(*testing.T, []byte) {
	return func(t *testing.T, body []byte) {
		t.Helper()
		var e struct{ Error string }
		mustJSON(t, body, &e)
		if !strings.Contains(e.Error, sub) {
			t.Errorf("error = %q, want it to contain %q", e.Error, sub)
		}
	}
}

var _ http.Handler = NewAPI(nil)
