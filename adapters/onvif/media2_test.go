package onvif

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/adapters/onvif/soap"
	"github.com/osapgw/osapgw/classes"
	"github.com/osapgw/osapgw/model"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

// modelShape lists a model's resources with their attributes (name, type,
// writable) and operations: what must not depend on the media service.
func modelShape(d model.Device) []string {
	var out []string
	for _, r := range d.Resources {
		for _, ar := range r.Areas {
			for _, at := range ar.Attributes {
				out = append(out, r.Name+" "+at.Name+" "+string(at.Type)+map[bool]string{true: " writable"}[at.Writable])
			}
			for _, op := range ar.Operations {
				out = append(out, r.Name+" "+op.Name+"()")
			}
		}
	}
	return out
}

// TestMediaServices runs the adapter against simulated cameras offering
// Media1, Media2 or both: the model is the same, the values come through
// the service the camera has (Media2 when it has both), and frame_rate
// writes go through it.
func TestMediaServices(t *testing.T) {
	tests := []struct {
		name       string
		media      sim.Media
		wantMedia2 bool
		encoding   string // of video/1: H.265 shows only through Media2
	}{
		{name: "Media1 only", media: sim.Media1, encoding: "H264"},
		{name: "Media2 only", media: sim.Media2, wantMedia2: true, encoding: "H265"},
		{name: "both", media: sim.MediaBoth, wantMedia2: true, encoding: "H265"},
	}
	var shape []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", Profiles: 2, Media: tt.media})
			a := newAdapter(t, "cam1", cam.URL(), "")
			ctx := context.Background()
			dev, err := a.Describe(ctx)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if err := dev.Validate(); err != nil {
				t.Fatalf("model does not validate: %v", err)
			}
			got := modelShape(dev)
			if shape == nil {
				shape = got
			} else if diff := cmp.Diff(shape, got); diff != "" {
				t.Errorf("model differs from the first mode's (-first +this):\n%s", diff)
			}
			if !strings.Contains(strings.Join(got, "\n"), "video/1 gop int") {
				t.Errorf("model has no video/1 gop attribute:\n%s", strings.Join(got, "\n"))
			}
			if n := cam.Calls("tr2:GetProfiles"); (n > 0) != tt.wantMedia2 {
				t.Errorf("Media2 GetProfiles called %d times, want Media2 used: %v", n, tt.wantMedia2)
			}
			for i, want := range []map[string]any{
				{"profile": "profile_1", "encoding": tt.encoding, "resolution": "1920x1080", "frame_rate": int64(25), "bitrate": int64(4096), "gop": int64(50)},
				{"profile": "profile_2", "encoding": "H264", "resolution": "960x540", "frame_rate": int64(25), "bitrate": int64(2048), "gop": int64(50)},
			} {
				res := "video/" + string(rune('1'+i))
				vals, err := a.Get(ctx, res, nil)
				if err != nil {
					t.Fatalf("Get(%s): %v", res, err)
				}
				for k, w := range want {
					if g := vals[k].V; g != w {
						t.Errorf("%s %s = %v (%T), want %v", res, k, g, g, w)
					}
				}
				if u, _ := vals["stream_uri"].V.(string); u != "rtsp://127.0.0.1:554/stream"+string(rune('1'+i)) {
					t.Errorf("%s stream_uri = %q", res, u)
				}
				if u, _ := vals["snapshot_uri"].V.(string); !strings.HasSuffix(u, "/snapshot.jpg") {
					t.Errorf("%s snapshot_uri = %q", res, u)
				}
			}
			if _, ok := dev.Resource("ptz/1"); !ok {
				t.Errorf("no ptz/1: the profile's PTZ configuration was not linked")
			}
			sets := cam.Calls("tr2:SetVideoEncoderConfiguration")
			if err := a.Set(ctx, "video/1", map[string]model.Value{"frame_rate": {V: int64(12)}}); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if n := cam.Calls("tr2:SetVideoEncoderConfiguration") - sets; (n == 1) != tt.wantMedia2 {
				t.Errorf("Media2 SetVideoEncoderConfiguration called %d times, want Media2 used: %v", n, tt.wantMedia2)
			}
			vals, err := a.Get(ctx, "video/1", []string{"frame_rate", "bitrate", "encoding"})
			if err != nil {
				t.Fatal(err)
			}
			if vals["frame_rate"].V != int64(12) || vals["bitrate"].V != int64(4096) || vals["encoding"].V != tt.encoding {
				t.Errorf("after Set: %v", vals)
			}
		})
	}
}

// TestRecordedMedia2Axis runs the adapter against the values an AXIS
// camera reported through Media2 (testdata/recorded/media2/axis: a facts
// only recording, see the README there), served over HTTP SOAP: the
// camera lists Media2 and no Media1, refuses GetCapabilities, and has no
// snapshot URI. A frame_rate write sends the configuration back with its
// GovLength and Profile attributes and the new rate.
func TestRecordedMedia2Axis(t *testing.T) {
	files := map[string]string{
		"GetSystemDateAndTime": "GetSystemDateAndTime.xml", "GetDeviceInformation": "GetDeviceInformation.xml",
		"GetServices": "media2/axis/GetServices.xml", "GetProfiles": "media2/axis/GetProfiles.xml",
		"GetStreamUri": "media2/axis/GetStreamUri.xml", "GetVideoEncoderConfigurations": "media2/axis/GetVideoEncoderConfigurations.xml",
	}
	var mu sync.Mutex
	var sets []string // bodies of SetVideoEncoderConfiguration
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct {
			Body struct {
				Op struct{ XMLName xml.Name } `xml:",any"`
			} `xml:"Body"`
		}
		_ = xml.Unmarshal(body, &env)
		op := env.Body.Op.XMLName
		mu.Lock()
		calls = append(calls, map[bool]string{true: "trt:"}[op.Space == "http://www.onvif.org/ver10/media/wsdl"]+op.Local)
		mu.Unlock()
		if op.Space == "http://www.onvif.org/ver10/media/wsdl" {
			w.WriteHeader(500)
			_, _ = w.Write(recorded(t, "Error.xml"))
			return
		}
		if op.Local == "SetVideoEncoderConfiguration" {
			mu.Lock()
			sets = append(sets, string(body))
			mu.Unlock()
			_, _ = w.Write([]byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><tr2:SetVideoEncoderConfigurationResponse xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"/></s:Body></s:Envelope>`))
			return
		}
		f, ok := files[op.Local]
		if !ok {
			w.WriteHeader(500)
			_, _ = w.Write(recorded(t, "Error.xml"))
			return
		}
		_, _ = w.Write(recorded(t, f))
	}))
	defer srv.Close()
	a, err := New("axis", adapters.TOMLDecoder(`url = "`+srv.URL+`/onvif/device_service"`), adapters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev, err := a.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	var names []string
	for _, r := range dev.Resources {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, ","), "device,video/1"; got != want {
		t.Errorf("resources = %s, want %s", got, want)
	}
	v1, _ := dev.Resource("video/1")
	if err := classes.Check(v1); err != nil {
		t.Errorf("video/1: %v", err)
	}
	vals, err := a.Get(ctx, "video/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"profile": "profile_1_h264", "name": "profile_1 h264", "encoding": "H264", "resolution": "2688x1520",
		"width": int64(2688), "height": int64(1520), "frame_rate": int64(30), "bitrate": int64(2147483647), "gop": int64(32), "snapshot_uri": "",
		"stream_uri": "rtsp://192.0.2.10/onvif-media/media.amp?profile=profile_1_h264&sessiontimeout=60&streamtype=unicast"}
	got := map[string]any{}
	for k := range want {
		got[k] = vals[k].V
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("video/1 (-want +got):\n%s", diff)
	}
	if err := a.Set(ctx, "video/1", map[string]model.Value{"frame_rate": {V: int64(15)}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sets) != 1 {
		t.Fatalf("%d SetVideoEncoderConfiguration calls, want 1 (calls: %v)", len(sets), calls)
	}
	var req struct {
		Configuration struct {
			Token       string `xml:"token,attr"`
			GovLength   string `xml:"GovLength,attr"`
			Profile     string `xml:"Profile,attr"`
			Encoding    string `xml:"http://www.onvif.org/ver10/schema Encoding"`
			RateControl struct {
				FrameRateLimit int `xml:"http://www.onvif.org/ver10/schema FrameRateLimit"`
				BitrateLimit   int `xml:"http://www.onvif.org/ver10/schema BitrateLimit"`
			} `xml:"http://www.onvif.org/ver10/schema RateControl"`
		} `xml:"http://www.onvif.org/ver20/media/wsdl Configuration"`
	}
	if f, err := soap.Decode([]byte(sets[0]), &req); f != nil || err != nil {
		t.Fatalf("the request does not parse: %v %v\n%s", f, err, sets[0])
	}
	c := req.Configuration
	if c.Token != "default_1_h264" || c.GovLength != "32" || c.Profile != "Main" || c.Encoding != "H264" ||
		c.RateControl.FrameRateLimit != 15 || c.RateControl.BitrateLimit != 2147483647 {
		t.Errorf("SetVideoEncoderConfiguration sent %+v:\n%s", c, sets[0])
	}
	for _, op := range calls {
		if strings.HasPrefix(op, "trt:") {
			t.Errorf("Media1 call %s to a camera that lists only Media2", op)
		}
	}
}
