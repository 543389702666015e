package onvif

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
)

// FuzzParseResponses decodes arbitrary envelopes, from every recorded
// response, into each response type of parse.go and media2.go and runs
// their conversions: nothing panics, a GetProfiles response gives one
// profile per Profiles element, service addresses are single and trimmed,
// a host rewritten from a camera's address takes the camera's, and a
// configuration rewritten with new rates reads back with them.
func FuzzParseResponses(f *testing.F) {
	for _, name := range recordedNames(f) {
		f.Add(recorded(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var caps capabilitiesResponse
		var svcs servicesResponse
		if fault, err := soap.Decode(data, &caps); fault == nil && err == nil {
			checkServices(t, caps.services())
		}
		if fault, err := soap.Decode(data, &svcs); fault == nil && err == nil {
			checkServices(t, svcs.services())
		}
		var dt dateTimeResponse
		if fault, err := soap.Decode(data, &dt); fault == nil && err == nil {
			if tm, ok := dt.time(); ok && tm.Location().String() != "UTC" {
				t.Fatalf("camera time %v not in UTC", tm)
			}
		}
		var pr profilesResponse
		if fault, err := soap.Decode(data, &pr); fault == nil && err == nil {
			ps := pr.profiles()
			if len(ps) != len(pr.Profiles) {
				t.Fatalf("%d profiles from %d Profiles elements", len(ps), len(pr.Profiles))
			}
			for _, p := range ps {
				checkRates(t, p.Enc)
			}
		}
		var pr2 profiles2Response
		if fault, err := soap.Decode(data, &pr2); fault == nil && err == nil {
			if ps := pr2.profiles(); len(ps) != len(pr2.Profiles) {
				t.Fatalf("%d Media2 profiles from %d Profiles elements", len(ps), len(pr2.Profiles))
			}
		}
		var enc2 encoders2Response
		if fault, err := soap.Decode(data, &enc2); fault == nil && err == nil {
			for _, e := range enc2.Configurations {
				checkRates(t, e.encoder())
			}
		}
		for _, v := range []any{&mediaURIResponse{}, &media2URIResponse{}, &nodesResponse{}, &presetsResponse{}, &statusResponse{}, &setPresetResponse{}} {
			_, _ = soap.Decode(data, v)
		}
	})
}

func checkServices(t *testing.T, s services) {
	t.Helper()
	base := &url.URL{Scheme: "http", Host: "192.0.2.1:8080"}
	for _, addr := range []string{s.Device, s.Media, s.Media2, s.PTZ, s.Events} {
		if strings.ContainsAny(addr, " \t\r\n") {
			t.Fatalf("service address %q is not one address", addr)
		}
		got := rewriteHost(addr, base)
		if u, err := url.Parse(got); err == nil && u.Host != "" && u.Host != base.Host {
			t.Fatalf("rewriteHost(%q) = %q, not on %s", addr, got, base.Host)
		}
	}
}

// checkRates asserts that an encoder configuration that gives its rates
// as elements reads back, rewritten by withRates, with the new ones.
func checkRates(t *testing.T, e encoder) {
	t.Helper()
	out := e.withRates(7, 321)
	for _, el := range []string{"FrameRateLimit", "BitrateLimit"} {
		if strings.Contains(e.inner, el+">") && replaceText(e.inner, el, "x") != e.inner && !strings.Contains(out, el+">") {
			t.Fatalf("withRates lost %s: %q", el, out)
		}
	}
	if govLength(out) != govLength(e.inner) {
		t.Fatalf("withRates changed GovLength: %q", out)
	}
}

// FuzzEventMap checks the topic mapping of a camera's event_map: a
// pattern that eventMapErrors accepts maps its own topic (or, for "/*",
// any topic beneath it) to its event, whatever the built-in topics say;
// every topic maps to one of the mapped events.
func FuzzEventMap(f *testing.F) {
	f.Add("tns1:RuleEngine/MyRule/*", EventIntrusion, "RuleEngine/MyRule/Inside")
	f.Add("tns1:VideoSource/MotionAlarm", EventTamper, "tns1:VideoSource/MotionAlarm")
	f.Add("RuleEngine/VMD3/*", EventGeneric, "RuleEngine/VMD3/vmd3_video_1")
	f.Add("a//b", EventMotion, "Device/Trigger/DigitalInput")
	f.Add("x:*", "nothing", "*")
	f.Fuzz(func(t *testing.T, pattern, event, topic string) {
		cfg := map[string]string{pattern: event}
		if got := defaultEvents.lookup(normalizeTopic(topic)); !slices.Contains(mappedEvents, got) {
			t.Fatalf("lookup(%q) = %q, not a mapped event", topic, got)
		}
		if len(eventMapErrors(cfg)) > 0 {
			return
		}
		m := newEventMap(cfg)
		p := normalizeTopic(pattern)
		if base, ok := strings.CutSuffix(p, "/*"); ok {
			for _, tp := range []string{base, base + "/x", base + "/" + normalizeTopic(topic)} {
				if got := m.lookup(tp); got != event {
					t.Fatalf("event_map {%q = %q}: lookup(%q) = %q", pattern, event, tp, got)
				}
			}
		} else if got := m.lookup(p); got != event {
			t.Fatalf("event_map {%q = %q}: lookup(%q) = %q", pattern, event, p, got)
		}
		name, _ := m.classify(Notification{Topic: normalizeTopic(topic)})
		if !slices.Contains(mappedEvents, name) {
			t.Fatalf("classify(%q) = %q, not a mapped event", topic, name)
		}
	})
}
