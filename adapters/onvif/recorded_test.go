package onvif

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/use-go/onvif/device"
	"github.com/use-go/onvif/media"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/adapters/onvif/soap"
	"github.com/osapgw/osapgw/classes"
)

// recorded reads a file of testdata/recorded, rendering the doT template
// markers some of them carry with fixed values (conditional blocks kept).
func recorded(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "recorded", name))
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(
		"{{=it.hostname}}", "192.168.68.111", "{{=it.port}}", "80", "{{=it.pullPointUrl}}", "/onvif/subscription?Idx=5",
		"{{=new Date(Date.now()+5000).toISOString()}}", "2024-05-01T10:00:05.000Z",
		"{{=new Date().toISOString()}}", "2024-05-01T10:00:00.000Z",
	)
	s := r.Replace(string(b))
	s = regexp.MustCompile(`\{\{\?[^}]*\}\}`).ReplaceAllString(s, "")
	return []byte(s)
}

func decodeRecorded(t *testing.T, name string, v any) {
	t.Helper()
	fault, err := soap.Decode(recorded(t, name), v)
	if err != nil || fault != nil {
		t.Fatalf("Decode(%s) = %v, %v", name, fault, err)
	}
}

func TestRecordedDeviceInformation(t *testing.T) {
	// The library's response type serves here: its fields carry no prefix.
	var got device.GetDeviceInformationResponse
	decodeRecorded(t, "GetDeviceInformation.xml", &got)
	want := device.GetDeviceInformationResponse{Manufacturer: "Mockup Manufacturer", Model: "Mockup Model", FirmwareVersion: "Mockup_15_14_13", SerialNumber: "00000000", HardwareId: "MOCKUP"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetDeviceInformation (-want +got):\n%s", diff)
	}
}

func TestRecordedProfiles(t *testing.T) {
	var pr profilesResponse
	decodeRecorded(t, "GetProfiles.xml", &pr)
	got := pr.profiles()
	if len(got) == 0 {
		t.Fatal("no profiles")
	}
	p := got[0]
	p.Enc.inner = ""
	want := profile{Token: "main", Name: "main", VSCToken: "vscfg0", SourceToken: "vidsrc0", PTZNode: "default",
		Enc: encoder{Token: "main", Encoding: "H264", Width: 1920, Height: 1080, Quality: 8, FrameRate: 5, Bitrate: 1000, RateCtl: true, GOP: 30, schemaPref: "tt"}}
	if diff := cmp.Diff(want, p, cmp.AllowUnexported(encoder{})); diff != "" {
		t.Errorf("first profile (-want +got):\n%s", diff)
	}
	// The library's own type reads the profile's name but not the
	// encoder's resolution (its fields are named "onvif:Resolution"): the
	// reason this package has its own.
	var lib media.GetProfilesResponse
	decodeRecorded(t, "GetProfiles.xml", &lib)
	if len(lib.Profiles) == 0 || lib.Profiles[0].VideoEncoderConfiguration.Resolution.Width != 0 {
		t.Logf("use-go/onvif now parses the resolution: its types may serve here")
	}
	// Rewriting the rates keeps the rest of what the camera sent.
	raw := got[0].Enc.withRates(12, 2048)
	if !strings.Contains(raw, "<tt:FrameRateLimit>12</tt:FrameRateLimit>") || !strings.Contains(raw, "<tt:BitrateLimit>2048</tt:BitrateLimit>") ||
		!strings.Contains(raw, "<tt:GovLength>30</tt:GovLength>") {
		t.Errorf("withRates gave %s", raw)
	}
}

func TestRecordedURIsAndPTZ(t *testing.T) {
	var su, sn mediaURIResponse
	decodeRecorded(t, "GetStreamUri.xml", &su)
	decodeRecorded(t, "GetSnapshotUri.xml", &sn)
	if su.MediaUri.Uri != "rtsp://192.168.68.111/h264main" {
		t.Errorf("stream URI = %q", su.MediaUri.Uri)
	}
	if sn.MediaUri.Uri != "http://192.168.68.111/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1" {
		t.Errorf("snapshot URI = %q", sn.MediaUri.Uri)
	}
	var st statusResponse
	decodeRecorded(t, "GetStatus.xml", &st)
	pos := st.PTZStatus.Position
	if pos.PanTilt == nil || pos.PanTilt.X != -0.864665985 || pos.PanTilt.Y != 0.267444015 || pos.Zoom == nil || pos.Zoom.X != 0.211861998 || st.PTZStatus.MoveStatus.PanTilt != "IDLE" {
		t.Errorf("PTZ status = %+v", st.PTZStatus)
	}
	var nodes nodesResponse
	decodeRecorded(t, "GetNodes.xml", &nodes)
	if len(nodes.PTZNode) != 1 || nodes.PTZNode[0].Token != "default" {
		t.Errorf("nodes = %+v", nodes)
	}
	var presets presetsResponse
	decodeRecorded(t, "ptz.GetPresets.xml", &presets)
	if len(presets.Preset) < 9 || presets.Preset[0].Token != "P001" || strings.TrimSpace(presets.Preset[8].Name) != "P009" {
		t.Errorf("presets = %+v", presets.Preset)
	}
}

func TestRecordedCapabilitiesTwoDevices(t *testing.T) {
	tests := []struct {
		file string
		want services
	}{
		{"GetCapabilities.xml", services{Device: "http://192.168.68.111/onvif/services", Media: "http://192.168.68.111/onvif/services", PTZ: "http://192.168.68.111/onvif/services", Events: "http://192.168.68.111/onvif/services"}},
		// The encoder declares utf-16 on ASCII bytes, as it sent them.
		{"GetCapabilitiesEncoder.xml", services{Device: "http://192.168.30.65/onvif/device_service", Media: "http://192.168.30.65/onvif/device_service", PTZ: "http://192.168.30.65/onvif/device_service", Events: "http://192.168.30.65/onvif/event_service"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var c capabilitiesResponse
			decodeRecorded(t, tt.file, &c)
			if diff := cmp.Diff(tt.want, c.services()); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
		})
	}
	var s servicesResponse
	decodeRecorded(t, "GetServices.xml", &s)
	if got := s.services(); got.Media != "http://192.168.68.111/onvif/services" || got.PTZ == "" || got.Events == "" {
		t.Errorf("GetServices = %+v", got)
	}
}

func TestRecordedDateTimeAndFault(t *testing.T) {
	var dt dateTimeResponse
	decodeRecorded(t, "GetSystemDateAndTime.xml", &dt)
	got, ok := dt.time()
	if want := time.Date(2014, 12, 24, 19, 14, 37, 0, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("camera time = %v, want %v", got, want)
	}
	fault, err := soap.Decode(recorded(t, "Error.xml"), nil)
	if err != nil || fault == nil {
		t.Fatalf("Decode(Error.xml) = %v, %v", fault, err)
	}
	if fault.Code != "fault code" || fault.Subcode != "ter:fault subcode/ter:fault subcode" || fault.Reason != "fault reason" || fault.Detail != "fault detail" {
		t.Errorf("fault = %+v", fault)
	}
	if got, want := fault.Error(), "SOAP fault fault code (ter:fault subcode/ter:fault subcode): fault reason: detail: fault detail"; got != want {
		t.Errorf("fault.Error() = %q, want %q", got, want)
	}
}

func TestRecordedPullMessages(t *testing.T) {
	res, err := ParsePullMessages(recorded(t, "PullMessages.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Termination.Equal(time.Date(2000, 1, 3, 4, 4, 2, 0, time.UTC)) || !res.Current.Equal(time.Date(2000, 1, 3, 3, 58, 33, 0, time.UTC)) {
		t.Errorf("times = %v, %v", res.Current, res.Termination)
	}
	if len(res.Messages) != 2 {
		t.Fatalf("%d messages, want 2", len(res.Messages))
	}
	m := res.Messages[0]
	want := Notification{Topic: "RuleEngine/CellMotionDetector/Motion",
		Source: map[string]string{"VideoSourceConfigurationToken": "000", "VideoAnalyticsConfigurationToken": "000", "Rule": "000"},
		Data:   map[string]string{"IsMotion": "true"}, UTC: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if name, params := classify(m); name != EventMotion || params["state"] != true {
		t.Errorf("classify = %s %v, want motion true", name, params)
	}
	var sub createPullPointResponse
	decodeRecorded(t, "events.CreatePullPointSubscription.xml", &sub)
	if sub.SubscriptionReference.Address != "http://192.168.68.111:80/onvif/subscription?Idx=5" || sub.TerminationTime != "2024-05-01T10:00:05.000Z" {
		t.Errorf("subscription = %+v", sub)
	}
}

// TestRecordedReplay runs the adapter against a server that answers with
// the recorded responses of the gSOAP camera: the camera reports service
// addresses on 192.168.68.111, which host_rewrite maps to the server.
func TestRecordedReplay(t *testing.T) {
	files := map[string]string{
		"GetSystemDateAndTime": "GetSystemDateAndTime.xml", "GetCapabilities": "GetCapabilities.xml",
		"GetDeviceInformation": "GetDeviceInformation.xml", "GetProfiles": "GetProfiles.xml",
		"GetStreamUri": "GetStreamUri.xml", "GetSnapshotUri": "GetSnapshotUri.xml", "GetNodes": "GetNodes.xml",
		"GetStatus": "GetStatus.xml", "GetPresets": "ptz.GetPresets.xml", "SystemReboot": "SystemReboot.xml",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct {
			Body struct {
				Op struct{ XMLName xml.Name } `xml:",any"`
			} `xml:"Body"`
		}
		_ = xml.Unmarshal(body, &env)
		f, ok := files[env.Body.Op.XMLName.Local]
		if !ok {
			w.WriteHeader(500)
			_, _ = w.Write(recorded(t, "Error.xml"))
			return
		}
		_, _ = w.Write(recorded(t, f))
	}))
	defer srv.Close()
	a, err := New("mock", adapters.TOMLDecoder(`url = "`+srv.URL+`/onvif/device_service"`), adapters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dev, err := a.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if dev.Manufacturer != "Mockup Manufacturer" || len(dev.Resources) != 3 {
		t.Errorf("device = %+v", dev)
	}
	// A real camera's video source implements ip-camera/1.
	v1, _ := dev.Resource("video/1")
	if v1.Class != classes.IPCamera.ID {
		t.Errorf("video/1: class = %q, want %q", v1.Class, classes.IPCamera.ID)
	}
	if err := classes.Check(v1); err != nil {
		t.Errorf("video/1: %v", err)
	}
	vals, err := a.Get(ctx, "video/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	if vals["stream_uri"].V != "rtsp://192.168.68.111/h264main" || vals["resolution"].V != "1920x1080" || vals["bitrate"].V != int64(1000) ||
		vals["snapshot_uri"].V != "http://"+u.Host+"/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1" {
		t.Errorf("video/1 = %v", vals)
	}
	pv, err := a.Get(ctx, "ptz/1", []string{"pan", "presets"})
	if err != nil {
		t.Fatal(err)
	}
	if pv["pan"].V != -0.864665985 || len(pv["presets"].V.([]any)) < 9 {
		t.Errorf("ptz/1 = %v", pv)
	}
	if out, err := a.Invoke(ctx, "device", OpReboot, nil); err != nil || out["message"] == "" {
		t.Errorf("reboot = %v, %v", out, err)
	}
	// An operation the recording lacks gets the recorded fault.
	_, err = a.Invoke(ctx, "ptz/1", OpStop, nil)
	var f *soap.Fault
	if !errors.As(err, &f) || f.Reason != "fault reason" || !strings.Contains(err.Error(), `camera "mock"`) || !strings.Contains(err.Error(), "Stop") {
		t.Errorf("stop = %v, want the recorded fault naming camera and call", err)
	}
}

// FuzzParsePullMessages checks the event parser and the topic
// classification from every recorded response: a parsed response has both
// its times; each message's topic is trimmed; classify gives one of the
// mapped events, a generic event its topic, a state only as a bool; and
// dedup takes every message.
func FuzzParsePullMessages(f *testing.F) {
	for _, name := range recordedNames(f) {
		f.Add(recorded(f, name))
	}
	f.Add([]byte(`<e:Envelope xmlns:e="x"><e:Body><r><CurrentTime>2020-01-01T00:00:00Z</CurrentTime><TerminationTime>2020-01-01T00:01:00Z</TerminationTime><NotificationMessage><Topic>a:b/c:d</Topic></NotificationMessage></r></e:Body></e:Envelope>`))
	f.Add([]byte(`<e:Envelope xmlns:e="x"><e:Body><r><CurrentTime>2020-01-01T00:00:00</CurrentTime><TerminationTime>2020-01-01T00:01:00.5</TerminationTime><NotificationMessage><Topic> tns1:RuleEngine/tnsaxis:VMD3/vmd3_video_1 </Topic><Message><Message UtcTime="x" PropertyOperation="Changed"><Source><SimpleItem Name="source" Value="0"/></Source><Data><SimpleItem Name="active" Value="ON"/></Data></Message></Message></NotificationMessage></r></e:Body></e:Envelope>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParsePullMessages(data)
		if err != nil {
			return
		}
		if res.Current.IsZero() || res.Termination.IsZero() {
			t.Fatalf("ParsePullMessages = %+v without its times", res)
		}
		dd := newDedup()
		for _, m := range res.Messages {
			if strings.TrimSpace(m.Topic) != m.Topic {
				t.Fatalf("topic %q not trimmed", m.Topic)
			}
			name, p := classify(m)
			if !slices.Contains(mappedEvents, name) {
				t.Fatalf("classify(%+v) = %q, not a mapped event", m, name)
			}
			if name == EventGeneric && p["topic"] != m.Topic {
				t.Fatalf("classify(%+v) = generic with topic %v", m, p["topic"])
			}
			if s, ok := p["state"]; ok {
				if _, ok := s.(bool); !ok {
					t.Fatalf("classify(%+v) state = %#v, want a bool", m, s)
				}
			}
			dd.keep(m, name, "video/1", p)
		}
	})
}

// recordedNames returns the recorded responses under testdata/recorded,
// relative to it.
func recordedNames(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"*.xml", "*/*/*.xml"} {
		files, err := filepath.Glob(filepath.Join("testdata", "recorded", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			out = append(out, strings.TrimPrefix(filepath.ToSlash(f), "testdata/recorded/"))
		}
	}
	if len(out) < 20 {
		t.Fatalf("%d recorded responses, want at least 20", len(out))
	}
	return out
}

// A camera that names the schema namespace with another prefix gets it
// declared on the configuration sent back.
func TestSetEncoderRequestOtherPrefix(t *testing.T) {
	raw := `<ns2:Name>enc</ns2:Name><ns2:Encoding>H264</ns2:Encoding><ns2:RateControl><ns2:FrameRateLimit>25</ns2:FrameRateLimit><ns2:BitrateLimit>4096</ns2:BitrateLimit></ns2:RateControl>`
	env := `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:ns2="http://www.onvif.org/ver10/schema" xmlns:trt="http://www.onvif.org/ver10/media/wsdl"><e:Body><trt:GetProfilesResponse><trt:Profiles token="p"><ns2:Name>p</ns2:Name><ns2:VideoEncoderConfiguration token="e1">` + raw + `</ns2:VideoEncoderConfiguration></trt:Profiles></trt:GetProfilesResponse></e:Body></e:Envelope>`
	var pr profilesResponse
	if f, err := soap.Decode([]byte(env), &pr); f != nil || err != nil {
		t.Fatal(f, err)
	}
	p := pr.profiles()[0]
	if p.Enc.schemaPref != "ns2" || p.Enc.FrameRate != 25 {
		t.Fatalf("encoder = %+v", p.Enc)
	}
	req := setVideoEncoder{Force: true, Configuration: rawConfig{Token: p.Enc.Token, Inner: p.Enc.withRates(10, 512),
		Attrs: []xml.Attr{xmlnsAttr(p.Enc.schemaPref, soap.Namespaces["tt"])}}}
	out, err := xml.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	// The request, put in an envelope, reads back with the new rates.
	back := `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl"><e:Body>` + string(out) + `</e:Body></e:Envelope>`
	var got struct {
		Configuration struct {
			Token       string `xml:"token,attr"`
			RateControl struct {
				FrameRateLimit int `xml:"http://www.onvif.org/ver10/schema FrameRateLimit"`
				BitrateLimit   int `xml:"http://www.onvif.org/ver10/schema BitrateLimit"`
			} `xml:"http://www.onvif.org/ver10/schema RateControl"`
		} `xml:"Configuration"`
	}
	if f, err := soap.Decode([]byte(back), &got); f != nil || err != nil {
		t.Fatalf("request does not parse: %v %v\n%s", f, err, out)
	}
	if got.Configuration.Token != "e1" || got.Configuration.RateControl.FrameRateLimit != 10 || got.Configuration.RateControl.BitrateLimit != 512 {
		t.Errorf("request = %s", out)
	}
}
