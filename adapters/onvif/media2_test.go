package onvif

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
