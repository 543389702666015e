package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAdapterRoundTrips runs a simulated Modbus sensor and a simulated
// camera (devsim) behind the gateway, and carries out a set and an invoke
// on each through the platform emulator's API.
func TestAdapterRoundTrips(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real processes; skipped with -short")
	}
	s := newSite(t)
	mbPort, camPort := freePort(t), freePort(t)
	start(t, "devsim", "modbus", "-listen", fmt.Sprintf("127.0.0.1:%d", mbPort))
	start(t, "devsim", "onvif", "-listen", fmt.Sprintf("127.0.0.1:%d", camPort), "-user", "admin", "-password", "e2e-pass", "-motion-every", "2s")
	pw := filepath.Join(s.dir, "cam.password")
	write(t, pw, "e2e-pass", 0o600)
	s.writeConfig(fmt.Sprintf(`
[[device]]
id = "boiler-1"
kind = "modbus"
url = "tcp://127.0.0.1:%d"
unit = 1
poll = "500ms"
allow_raw = true

[[device.attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"

[[device.attribute]]
name = "setpoint"
table = "holding"
address = 0
type = "int16"
scale = 0.1
writable = true
min = 5.0
max = 35.0
read_back = true

[[device.attribute]]
name = "mode"
table = "holding"
address = 1
type = "uint16"

[[device.operation]]
name = "set_mode"
  [[device.operation.param]]
  name = "mode"
  type = "int"
  min = 0.0
  max = 3.0
  [[device.operation.write]]
  table = "holding"
  address = 1
  type = "uint16"
  value = "{mode}"

[[device]]
id = "cam-1"
kind = "onvif"
url = "http://127.0.0.1:%d/onvif/device_service"
username = "admin"
password_file = %q
poll = "5s"
events = true
`, mbPort, camPort, pw))
	s.startGateway()
	devID := s.devID()
	waitFor(t, "both sub-devices online with their models", 60*time.Second, func() bool {
		online := map[string]bool{}
		for _, sd := range s.device(devID).SubDevices {
			online[sd.ID] = sd.Online && sd.Model != nil
		}
		return online["boiler-1"] && online["cam-1"]
	})

	tests := []struct {
		name     string
		verb     string
		body     map[string]any
		wantBody string
	}{
		{"modbus set", "set", map[string]any{"dev": "boiler-1", "resource": "main", "values": map[string]any{"setpoint": 23.5}}, ""},
		{"modbus get after set", "get", map[string]any{"dev": "boiler-1", "resource": "main", "names": []string{"setpoint"}}, `"v":23.5`},
		{"modbus invoke", "invoke", map[string]any{"dev": "boiler-1", "resource": "main", "operation": "set_mode", "input": map[string]any{"mode": 2}}, ""},
		{"modbus get after invoke", "get", map[string]any{"dev": "boiler-1", "resource": "main", "names": []string{"mode"}}, `"v":2`},
		{"camera invoke goto_preset", "invoke", map[string]any{"dev": "cam-1", "resource": "ptz/1", "operation": "ptz.goto_preset", "input": map[string]any{"preset": "1"}}, ""},
		{"camera invoke snapshot", "invoke", map[string]any{"dev": "cam-1", "resource": "video/1", "operation": "snapshot"}, `"sha256":`},
		{"camera set frame rate", "set", map[string]any{"dev": "cam-1", "resource": "video/1", "values": map[string]any{"frame_rate": 15}}, ""},
		{"camera get frame rate", "get", map[string]any{"dev": "cam-1", "resource": "video/1", "names": []string{"frame_rate"}}, `"v":15`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := s.request(devID, tt.verb, tt.body)
			if status != 200 || reply.Code != 0 {
				t.Fatalf("POST %s = HTTP %d, reply code %d (%s), want 200 and 0", tt.verb, status, reply.Code, reply.Msg)
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, reply.Body)
			if tt.wantBody != "" && !strings.Contains(compact.String(), tt.wantBody) {
				t.Errorf("reply body = %s, want it to contain %s", compact.String(), tt.wantBody)
			}
		})
	}
	// The examples of the docs, as an integrator would paste them. The
	// operation example moves to preset "3", which the simulated camera
	// has once it is stored.
	if status, reply := s.request(devID, "invoke", map[string]any{"dev": "cam-1", "resource": "ptz/1", "operation": "ptz.set_preset", "input": map[string]any{"name": "Yard", "preset": "3"}}); status != 200 || reply.Code != 0 {
		t.Fatalf("storing preset 3 = HTTP %d, reply code %d (%s)", status, reply.Code, reply.Msg)
	}
	for _, ex := range documentedRequests(t) {
		t.Run("documented "+ex.where, func(t *testing.T) {
			dev := "boiler-1"
			if r, _ := ex.body["resource"].(string); strings.HasPrefix(r, "ptz/") || strings.HasPrefix(r, "video/") {
				dev = "cam-1"
			}
			ex.body["dev"] = dev
			status, reply := s.request(devID, ex.verb, ex.body)
			if status != 200 || reply.Code != 0 {
				t.Fatalf("%s %s on %q = HTTP %d, reply code %d (%s), want 200 and 0", ex.verb, ex.text, dev, status, reply.Code, reply.Msg)
			}
		})
	}
	waitFor(t, "a motion event from the camera at the platform", 30*time.Second, func() bool {
		for _, e := range s.events(devID) {
			if e.Dev == "cam-1" && e.Name == "motion" {
				return true
			}
		}
		return false
	})
}

// TestModbusBadPoint maps a point the simulated sensor does not have
// (input 31-32, past its 32 input registers) into the same read as good
// ones: the platform gets the good values and the bad point with its
// reason, a get of it answers 500, and the gateway's status and metrics
// show it.
func TestModbusBadPoint(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with real processes; skipped with -short")
	}
	s := newSite(t)
	mbPort := freePort(t)
	start(t, "devsim", "modbus", "-listen", fmt.Sprintf("127.0.0.1:%d", mbPort))
	s.writeConfig(fmt.Sprintf(`
[[device]]
id = "meter-1"
kind = "modbus"
url = "tcp://127.0.0.1:%d"
unit = 1
poll = "500ms"
max_gap = 30

[[device.attribute]]
name = "temperature"
table = "input"
address = 0
type = "float32"

[[device.attribute]]
name = "pressure"
table = "input"
address = 4
scale = 0.1

[[device.attribute]]
name = "ghost"
table = "input"
address = 31
type = "float32"
`, mbPort))
	s.startGateway()
	devID := s.devID()
	const exc2 = "exception 2 (illegal data address)"
	waitFor(t, "the platform to hold meter-1's values, ghost bad", 60*time.Second, func() bool {
		for _, sd := range s.device(devID).SubDevices {
			if sd.ID != "meter-1" {
				continue
			}
			main := sd.Attributes["main"]
			return main["ghost"].Err == exc2 && main["temperature"].V != nil && main["pressure"].V != nil
		}
		return false
	})
	compact := func(b []byte) string {
		var c bytes.Buffer
		_ = json.Compact(&c, b)
		return c.String()
	}
	var raw json.RawMessage
	getJSON(t, "http://"+s.api+"/api/devices/"+devID, &raw)
	if want := `"ghost":{"ts":`; !strings.Contains(compact(raw), want) || !strings.Contains(compact(raw), `"q":"bad","err":"`+exc2+`"}`) {
		t.Errorf("platform API device = %s, want ghost bad with no v: %s", compact(raw), exc2)
	}

	status, reply := s.request(devID, "get", map[string]any{"dev": "meter-1", "resource": "main", "names": []string{"ghost"}})
	if status != 200 || reply.Code != 500 || !strings.Contains(reply.Msg, `attribute "ghost": `+exc2) {
		t.Errorf("get ghost = HTTP %d, reply code %d (%s), want 500 naming ghost and %s", status, reply.Code, reply.Msg, exc2)
	}
	status, reply = s.request(devID, "get", map[string]any{"dev": "meter-1", "resource": "main", "names": []string{"pressure"}})
	if status != 200 || reply.Code != 0 || !strings.Contains(compact(reply.Body), `"q":"good"`) {
		t.Errorf("get pressure = HTTP %d, reply code %d (%s) %s, want 0 and a good value", status, reply.Code, reply.Msg, reply.Body)
	}

	var st struct {
		Devices []struct {
			ID        string `json:"id"`
			BadPoints []struct {
				Resource, Attribute, Err string
			} `json:"bad_points"`
		} `json:"devices"`
	}
	getJSON(t, "http://"+s.gwHTTP+"/status", &st)
	if len(st.Devices) != 1 || len(st.Devices[0].BadPoints) != 1 || st.Devices[0].BadPoints[0].Attribute != "ghost" || st.Devices[0].BadPoints[0].Err != exc2 {
		t.Errorf("gateway /status devices = %+v, want meter-1 with ghost bad", st.Devices)
	}
	out, err := runOutput(bin.osapgw, "status", "-addr", s.gwHTTP)
	if err != nil || !strings.Contains(out, "meter-1  main/ghost  "+exc2) {
		t.Errorf("osapgw status = %v\n%s\nwant the bad point listed", err, out)
	}
	resp, err := http.Get("http://" + s.gwHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`osapgw_device_points_bad{device="meter-1"} 1`,
		`osapgw_device_point_errors_total{attribute="ghost",device="meter-1",resource="main"}`,
		`osapgw_device_polls_total{device="meter-1",result="partial"}`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// documentedRequest is a downlink request body found in the docs.
type documentedRequest struct {
	where string // file:line
	text  string
	verb  string // set, get or invoke
	body  map[string]any
}

// documentedRequests collects every downlink request body written in the
// project's docs (README.md, docs/*.md, adapters/*/README.md): each JSON
// object that starts {"resource" and carries an operation (invoke), names
// (get) or values that are plain values (set). Reports, whose values are
// {"v":…} objects, are not requests and are left out.
func documentedRequests(t *testing.T) []documentedRequest {
	t.Helper()
	var files []string
	for _, pat := range []string{"../README.md", "../docs/*.md", "../adapters/*/README.md"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var out []documentedRequest
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		for off := 0; ; {
			at := strings.Index(text[off:], `{"resource"`)
			if at < 0 {
				break
			}
			off += at
			where := fmt.Sprintf("%s:%d", strings.TrimPrefix(f, "../"), strings.Count(text[:off], "\n")+1)
			dec := json.NewDecoder(strings.NewReader(text[off:]))
			var body map[string]any
			if err := dec.Decode(&body); err != nil {
				// An event's parameters written as a placeholder
				// ({"dropped":N}) are prose; a request must be JSON.
				line, _, _ := strings.Cut(text[off:], "\n")
				if strings.Contains(line, `"event":`) {
					off++
					continue
				}
				t.Fatalf("%s: an example request that is not JSON: %v\n%s", where, err, line)
			}
			example := text[off : off+int(dec.InputOffset())]
			off += int(dec.InputOffset())
			verb := ""
			switch {
			case body["operation"] != nil:
				verb = "invoke"
			case body["names"] != nil:
				verb = "get"
			case body["values"] != nil:
				verb = "set"
				for _, v := range body["values"].(map[string]any) {
					if _, report := v.(map[string]any); report {
						verb = ""
					}
				}
			}
			if verb != "" {
				out = append(out, documentedRequest{where: where, text: example, verb: verb, body: body})
			}
		}
	}
	// protocol.md's set, get and invoke, configuration.md's and the two
	// adapter READMEs' examples at the least.
	if len(out) < 8 {
		t.Fatalf("found %d documented requests, want at least 8: %+v", len(out), out)
	}
	return out
}
