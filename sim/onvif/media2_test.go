package onvif_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/use-go/onvif/device"
	"github.com/use-go/onvif/media"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
	sim "github.com/osapgw/osapgw/sim/onvif"
)

type getServicesResponse struct {
	Service []struct {
		Namespace string `xml:"Namespace"`
		XAddr     string `xml:"XAddr"`
	} `xml:"Service"`
}

// media2GetProfiles is Media2's GetProfiles, its prefix declared on it.
type media2GetProfiles struct {
	XMLName struct{} `xml:"tr2:GetProfiles"`
	NS      string   `xml:"xmlns:tr2,attr"`
	Type    []string `xml:"tr2:Type"`
}

const nsMedia2 = "http://www.onvif.org/ver20/media/wsdl"

func TestMediaModes(t *testing.T) {
	tests := []struct {
		media        sim.Media
		want1, want2 bool
	}{
		{sim.Media1, true, false},
		{sim.Media2, false, true},
		{sim.MediaBoth, true, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.media), func(t *testing.T) {
			cam, c := start(t, sim.Config{User: "u", Password: "p", Media: tt.media})
			ctx := context.Background()
			var s getServicesResponse
			if err := c.Call(ctx, cam.URL(), device.GetServices{}, &s); err != nil {
				t.Fatal(err)
			}
			addr := map[string]string{}
			for _, v := range s.Service {
				addr[v.Namespace] = v.XAddr
			}
			m1, m2 := addr["http://www.onvif.org/ver10/media/wsdl"], addr[nsMedia2]
			if (m1 != "") != tt.want1 || (m2 != "") != tt.want2 {
				t.Fatalf("GetServices lists Media1 %q, Media2 %q; want Media1 %v, Media2 %v", m1, m2, tt.want1, tt.want2)
			}
			// Each service answers only when offered, with a fault otherwise.
			base := strings.TrimSuffix(cam.URL(), "device_service")
			var p1 struct {
				Profiles []struct {
					Token string `xml:"token,attr"`
				} `xml:"Profiles"`
			}
			err := c.Call(ctx, base+"media_service", media.GetProfiles{}, &p1)
			if ok := err == nil && len(p1.Profiles) == 2; ok != tt.want1 {
				t.Errorf("Media1 GetProfiles = %d profiles, %v", len(p1.Profiles), err)
			}
			var f *soap.Fault
			if !tt.want1 && !errors.As(err, &f) {
				t.Errorf("Media1 GetProfiles on a Media2-only camera = %v, want a fault", err)
			}
			var p2 struct {
				Profiles []struct {
					Token          string `xml:"token,attr"`
					Configurations struct {
						VideoEncoder *struct {
							GovLength string `xml:"GovLength,attr"`
							Encoding  string `xml:"Encoding"`
						} `xml:"VideoEncoder"`
					} `xml:"Configurations"`
				} `xml:"Profiles"`
			}
			err = c.Do(ctx, soap.Request{URL: base + "media2_service", Body: media2GetProfiles{NS: nsMedia2, Type: []string{"All"}}, Action: nsMedia2 + "/GetProfiles"}, &p2)
			if !tt.want2 {
				if !errors.As(err, &f) {
					t.Errorf("Media2 GetProfiles on a Media1-only camera = %v, want a fault", err)
				}
				return
			}
			if err != nil || len(p2.Profiles) != 2 || p2.Profiles[0].Configurations.VideoEncoder == nil {
				t.Fatalf("Media2 GetProfiles = %+v, %v", p2, err)
			}
			if e := p2.Profiles[0].Configurations.VideoEncoder; e.Encoding != "H265" || e.GovLength != "50" {
				t.Errorf("profile 1 encoder = %+v, want H265 with GovLength 50", e)
			}
			// Without Type, profiles come without their configurations.
			p2.Profiles = nil
			if err := c.Do(ctx, soap.Request{URL: base + "media2_service", Body: media2GetProfiles{NS: nsMedia2}, Action: nsMedia2 + "/GetProfiles"}, &p2); err != nil || len(p2.Profiles) != 2 || p2.Profiles[0].Configurations.VideoEncoder != nil {
				t.Errorf("Media2 GetProfiles without Type = %+v, %v", p2, err)
			}
		})
	}
}
