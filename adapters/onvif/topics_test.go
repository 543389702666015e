package onvif

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/adapters"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

func TestClassifyVendorTopics(t *testing.T) {
	hikRule := map[string]string{"VideoSourceConfigurationToken": "VideoSourceConfig_1", "VideoAnalyticsConfigurationToken": "VideoAnalyticsConfig_1", "Rule": "MyMotionDetectorRule"}
	tests := []struct {
		name       string
		topic      string
		source     map[string]string
		data       map[string]string
		wantEvent  string
		wantParams map[string]any
	}{
		{name: "core motion alarm", topic: "tns1:VideoSource/MotionAlarm", source: map[string]string{"Source": "VideoSource_1"}, data: map[string]string{"State": "true"},
			wantEvent: EventMotion, wantParams: map[string]any{"state": true, "source": "VideoSource_1"}},
		{name: "cell motion with its rule", topic: "tns1:RuleEngine/CellMotionDetector/Motion", source: hikRule, data: map[string]string{"IsMotion": "false"},
			wantEvent: EventMotion, wantParams: map[string]any{"state": false, "source": "VideoSourceConfig_1", "rule": "MyMotionDetectorRule"}},
		{name: "Axis motion detection", topic: "tns1:VideoAnalytics/tnsaxis:MotionDetection", source: map[string]string{"VideoSourceConfigurationToken": "0"}, data: map[string]string{"active": "1"},
			wantEvent: EventMotion, wantParams: map[string]any{"state": true, "source": "0"}},
		{name: "Axis VMD3 under a wildcard", topic: "tns1:RuleEngine/tnsaxis:VMD3/vmd3_video_1", source: map[string]string{"areaid": "0"}, data: map[string]string{"active": "0"},
			wantEvent: EventMotion, wantParams: map[string]any{"state": false}},
		{name: "Hanwha motion", topic: "tns1:VideoAnalytics/tnssamsung:MotionDetection", source: map[string]string{"VideoSourceToken": "85a5"}, data: map[string]string{"State": "true"},
			wantEvent: EventMotion, wantParams: map[string]any{"state": true, "source": "85a5"}},
		{name: "Hanwha tampering", topic: "tns1:VideoAnalytics/tnssamsung:Tampering", source: map[string]string{"VideoSourceToken": "85a5"}, data: map[string]string{"State": "false"},
			wantEvent: EventTamper, wantParams: map[string]any{"state": false, "source": "85a5"}},
		{name: "scene change", topic: "tns1:VideoSource/GlobalSceneChange/ImagingService", source: map[string]string{"Source": "vs1"}, data: map[string]string{"State": "true"},
			wantEvent: EventTamper, wantParams: map[string]any{"state": true, "source": "vs1"}},
		{name: "line crossing pulse", topic: "tns1:RuleEngine/LineDetector/Crossed", source: map[string]string{"VideoSourceConfigurationToken": "vsc", "Rule": "Gate"}, data: map[string]string{"ObjectId": "15"},
			wantEvent: EventLineCrossing, wantParams: map[string]any{"source": "vsc", "rule": "Gate"}},
		{name: "TP-Link line cross", topic: "tns1:RuleEngine/CellMotionDetector/LineCross", source: map[string]string{"VideoSourceConfigurationToken": "vsc", "Rule": "MyLineCrossDetectorRule"}, data: map[string]string{"IsLineCross": "true"},
			wantEvent: EventLineCrossing, wantParams: map[string]any{"state": true, "source": "vsc", "rule": "MyLineCrossDetectorRule"}},
		{name: "Axis cross line detection", topic: "tns1:RuleEngine/tnsaxis:CrossLineDetection/linetouched", data: map[string]string{"active": "1"},
			wantEvent: EventLineCrossing, wantParams: map[string]any{"state": true}},
		{name: "field detector", topic: "tns1:RuleEngine/FieldDetector/ObjectsInside", source: map[string]string{"VideoSourceConfigurationToken": "vsc", "Rule": "Yard"}, data: map[string]string{"IsInside": "true"},
			wantEvent: EventIntrusion, wantParams: map[string]any{"state": true, "source": "vsc", "rule": "Yard"}},
		{name: "Hikvision alarm input", topic: "tns1:Device/Trigger/tnshik:AlarmIn", source: map[string]string{"InputToken": "AlarmIn_1"}, data: map[string]string{"State": "true"},
			wantEvent: EventDigitalInput, wantParams: map[string]any{"state": true, "input": "AlarmIn_1"}},
		{name: "Axis port", topic: "tns1:Device/tnsaxis:IO/Port", source: map[string]string{"port": "1"}, data: map[string]string{"state": "1"},
			wantEvent: EventDigitalInput, wantParams: map[string]any{"state": true, "input": "1"}},
		{name: "signal loss", topic: "tns1:VideoSource/SignalLoss", source: map[string]string{"Source": "vs1"}, data: map[string]string{"State": "false"},
			wantEvent: EventVideoLoss, wantParams: map[string]any{"state": false, "source": "vs1"}},
		{name: "unknown topic", topic: "tns1:Monitoring/ProcessorUsage", data: map[string]string{"Value": "12"},
			wantEvent: EventGeneric, wantParams: map[string]any{"topic": "Monitoring/ProcessorUsage", "data": map[string]any{"Value": "12"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Notification{Topic: normalizeTopic(tt.topic), Operation: "Changed", Source: tt.source, Data: tt.data}
			ev, params := classify(n)
			if ev != tt.wantEvent {
				t.Errorf("classify(%q) event = %q, want %q", tt.topic, ev, tt.wantEvent)
			}
			if diff := cmp.Diff(tt.wantParams, params); diff != "" {
				t.Errorf("classify(%q) params (-want +got):\n%s", tt.topic, diff)
			}
		})
	}
}

func TestEventMapOverrides(t *testing.T) {
	m := newEventMap(map[string]string{
		"tns1:RuleEngine/MyRuleDetector/PeopleDetect":  "intrusion",
		"RuleEngine/tnsvendor:Fence/*":                 "line_crossing",
		"VideoSource/GlobalSceneChange/*":              "onvif.event",
		"VideoSource/GlobalSceneChange/ImagingService": "tamper",
	})
	tests := []struct{ topic, want string }{
		{"RuleEngine/MyRuleDetector/PeopleDetect", EventIntrusion},
		{"RuleEngine/Fence", EventLineCrossing},
		{"RuleEngine/Fence/North/Crossed", EventLineCrossing},
		{"RuleEngine/FenceX", EventGeneric},
		{"VideoSource/GlobalSceneChange/AnalyticsService", EventGeneric}, // the configured wildcard wins over the built-in one
		{"VideoSource/GlobalSceneChange/ImagingService", EventTamper},    // an exact pattern before a wildcard
		{"VideoSource/MotionAlarm", EventMotion},                         // the built-ins still apply
	}
	for _, tt := range tests {
		if got := m.lookup(tt.topic); got != tt.want {
			t.Errorf("lookup(%q) = %q, want %q", tt.topic, got, tt.want)
		}
	}
}

func TestEventMapConfig(t *testing.T) {
	const base = "url = \"http://127.0.0.1:1/onvif/device_service\"\n"
	tests := []struct {
		name    string
		conf    string
		wantErr string // "" for a valid configuration
	}{
		{name: "a table of topics", conf: base + "[event_map]\n\"tns1:RuleEngine/MyRule\" = \"motion\"\n\"RuleEngine/Fence/*\" = \"intrusion\"\n"},
		{name: "an inline table", conf: base + "event_map = {\"tns1:RuleEngine/MyRule\" = \"line_crossing\"}\n"},
		{name: "an unknown event", conf: base + "[event_map]\n\"tns1:RuleEngine/MyRule\" = \"person\"\n",
			wantErr: `device "cam-x": event_map: topic "tns1:RuleEngine/MyRule": event "person" is not one of motion, tamper, line_crossing, intrusion, digital_input, video_loss, onvif.event`},
		{name: "a star inside the topic", conf: base + "[event_map]\n\"RuleEngine/*/Motion\" = \"motion\"\n",
			wantErr: `device "cam-x": event_map: topic "RuleEngine/*/Motion": * stands only as the last segment`},
		{name: "an empty topic", conf: base + "[event_map]\n\"\" = \"motion\"\n", wantErr: `event_map: topic "": empty`},
		{name: "a value that is not a string", conf: base + "[event_map]\n\"RuleEngine/MyRule\" = 3\n", wantErr: "event_map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("cam-x", adapters.TOMLDecoder(tt.conf), envNone)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New = %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
			var fe *adapters.FieldError
			if strings.HasPrefix(tt.wantErr, "device") && (!errors.As(err, &fe) || fe.Key != "event_map") {
				t.Errorf("New = %#v, want a FieldError at key event_map", err)
			}
		})
	}
}

// TestDedupAcrossTopics replays what a Hikvision camera sends: each
// motion change under two topics, with different tokens of one video
// source, both placed on video/1.
func TestDedupAcrossTopics(t *testing.T) {
	alarm := func(op, state string) Notification {
		return Notification{Topic: "VideoSource/MotionAlarm", Operation: op, Source: map[string]string{"Source": "VideoSource_1"}, Data: map[string]string{"State": state}}
	}
	cell := func(op, state string) Notification {
		return Notification{Topic: "RuleEngine/CellMotionDetector/Motion", Operation: op,
			Source: map[string]string{"VideoSourceConfigurationToken": "VideoSourceConfig_1", "Rule": "MyMotionDetectorRule"}, Data: map[string]string{"IsMotion": state}}
	}
	line := func(rule string) Notification {
		return Notification{Topic: "RuleEngine/LineDetector/Crossed", Source: map[string]string{"Rule": rule}, Data: map[string]string{"ObjectId": "1"}}
	}
	field := func(rule, state string) Notification {
		return Notification{Topic: "RuleEngine/FieldDetector/ObjectsInside", Operation: "Changed", Source: map[string]string{"Rule": rule}, Data: map[string]string{"IsInside": state}}
	}
	steps := []struct {
		n    Notification
		want bool
	}{
		{alarm("Initialized", "false"), true},
		{cell("Initialized", "false"), false},
		{alarm("Changed", "true"), true},
		{cell("Changed", "true"), false},
		{alarm("Changed", "false"), false}, // the cell detector still sees motion
		{cell("Changed", "false"), true},
		{alarm("Initialized", "false"), false}, // resent on a new subscription
		{cell("Initialized", "false"), false},
		{line("Gate"), true},
		{line("Gate"), true}, // pulses are all reported
		{field("Yard", "true"), true},
		{field("Yard", "true"), false},
		{field("Drive", "true"), true}, // another rule is another group
		{field("Yard", "false"), true},
	}
	d := newDedup()
	for i, s := range steps {
		ev, params := classify(s.n)
		if got := d.keep(s.n, ev, "video/1", params); got != s.want {
			t.Errorf("step %d: keep(%s %s %v) = %v, want %v", i, s.n.Operation, s.n.Topic, s.n.Data, got, s.want)
		}
	}
}

func TestEventsDoubleMotionLineAndIntrusion(t *testing.T) {
	cam := onviftest.Start(t, sim.Config{User: "admin", Password: "secret", DoubleMotion: true})
	a := newAdapter(t, "cam1", cam.URL(), "")
	rec := newRecorder()
	runAdapter(t, a, rec)
	rec.waitFor(t, "initial states", func() bool {
		return countEvents(rec.events, "video/1", EventMotion, false) == 1 && countEvents(rec.events, "device", EventDigitalInput, false) == 1
	})
	cam.SetMotion(true)
	rec.waitFor(t, "motion", func() bool { return countEvents(rec.events, "video/1", EventMotion, true) == 1 })
	cam.CrossLine("Gate line", 7)
	rec.waitFor(t, "line crossing", func() bool { return countEvents(rec.events, "video/1", EventLineCrossing, nil) == 1 })
	cam.SetMotion(false)
	cam.SetIntrusion("Yard", true)
	cam.SetIntrusion("Yard", true)
	cam.SetIntrusion("Yard", false)
	cam.CrossLine("Gate line", 8)
	rec.waitFor(t, "the second line crossing", func() bool { return countEvents(rec.events, "video/1", EventLineCrossing, nil) == 2 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	// Each notification of the camera came in order, so once the last
	// crossing is here every duplicate would be too.
	var got []string
	for _, e := range rec.events {
		if e.Resource == "video/1" {
			got = append(got, e.Event+" "+fmtParams(e.Params))
		}
	}
	want := []string{
		"motion source=vs1 state=false",
		// MotionAlarm carries no rule: the one the cell detector named
		// when it said its initial state is kept with the group.
		"motion rule=MyMotionDetectorRule source=vs1 state=true",
		"line_crossing rule=Gate line source=vsc_1",
		"motion rule=MyMotionDetectorRule source=vsc_1 state=false",
		"intrusion rule=Yard source=vsc_1 state=true",
		"intrusion rule=Yard source=vsc_1 state=false",
		"line_crossing rule=Gate line source=vsc_1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events of video/1 (-want +got):\n%s", diff)
	}
}

// fmtParams writes params as sorted key=value pairs.
func fmtParams(p map[string]any) string {
	var keys []string
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
	}
	return strings.Join(parts, " ")
}
