package onvif

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The events a camera's notifications become, by their model name.
const (
	// EventLineCrossing is an object crossing a virtual line (a tripwire
	// rule); cameras send it as a pulse, without a state, or as a
	// property with one.
	EventLineCrossing = "line_crossing"
	// EventIntrusion is an object inside a watched field (intrusion or
	// region rule), with its state.
	EventIntrusion = "intrusion"
)

// mappedEvents are the events a topic can be mapped to (event_map),
// EventGeneric meaning "not mapped: report it as it came".
var mappedEvents = []string{EventMotion, EventTamper, EventLineCrossing, EventIntrusion, EventDigitalInput, EventVideoLoss, EventGeneric}

// topicRule maps a topic, without namespace prefixes, to an event: a
// pattern ending in "/*" matches the topic before it and every topic
// beneath it.
type topicRule struct {
	Pattern string
	Event   string
}

// builtinTopics are the topics mapped when a camera's event_map does not
// say otherwise. Their names come from public material, named beside
// each group (adapters/onvif/README.md has the same table):
//
//   - ONVIF core topics, with the data names seen from real cameras, and
//     Hikvision's alarm input (tns1:Device/Trigger/tnshik:AlarmIn) and
//     TP-Link's CellMotionDetector variants: Home Assistant's onvif
//     integration (home-assistant/core,
//     homeassistant/components/onvif/parsers.py). Hikvision cameras
//     report motion under both VideoSource/MotionAlarm and
//     RuleEngine/CellMotionDetector/Motion, which is why the adapter
//     keeps the state per event and video source, not per topic;
//   - Dahua and Uniview send their tripwire over ONVIF as the core
//     RuleEngine/LineDetector/Crossed (danielwoz/ubiquiti-protect-onvif-
//     event-listener issue 45 for Dahua, home-assistant/core issue 35916
//     for Uniview) and their intrusion rule as the core
//     RuleEngine/FieldDetector/ObjectsInside. Dahua's CrossLineDetection
//     and CrossRegionDetection are codes of its HTTP event API
//     (rroller/dahua), not ONVIF topics;
//   - Axis: the Python library Home Assistant uses for Axis devices
//     (Kane610/axis, axis/models/event.py): VideoAnalytics/MotionDetection,
//     RuleEngine/VMD3/*, Device/IO/Port; and RuleEngine/CrossLineDetection
//     (Axis Cross Line Detection, as a VMS's rule migration names it);
//   - Hanwha (Samsung Wisenet): a Wisenet web client's metadata parser in
//     public code: VideoAnalytics/MotionDetection and VideoAnalytics/
//     Tampering (the tnssamsung prefix), RuleEngine/MotionRegionDetector/
//     Motion, Device/Trigger/DigitalInput.
var builtinTopics = []topicRule{
	// motion
	{"VideoSource/MotionAlarm", EventMotion},
	{"RuleEngine/CellMotionDetector/Motion", EventMotion},
	{"RuleEngine/MotionRegionDetector/Motion", EventMotion}, // Axis, Hanwha
	{"VideoAnalytics/MotionDetection", EventMotion},         // Axis (tnsaxis:), Hanwha (tnssamsung:)
	{"RuleEngine/VMD3/*", EventMotion},                      // Axis VMD3
	// tamper
	{"RuleEngine/TamperDetector/Tamper", EventTamper},
	{"VideoSource/GlobalSceneChange/*", EventTamper},
	{"RuleEngine/CellMotionDetector/Tamper", EventTamper}, // TP-Link
	{"VideoAnalytics/Tampering", EventTamper},             // Hanwha
	// line crossing
	{"RuleEngine/LineDetector/Crossed", EventLineCrossing},         // ONVIF; Hikvision, Dahua, Uniview
	{"RuleEngine/CellMotionDetector/LineCross", EventLineCrossing}, // TP-Link
	{"RuleEngine/CrossLineDetection/*", EventLineCrossing},         // Axis (tnsaxis:)
	// intrusion
	{"RuleEngine/FieldDetector/ObjectsInside", EventIntrusion},  // ONVIF; Hikvision, Dahua, Uniview
	{"RuleEngine/CellMotionDetector/Intrusion", EventIntrusion}, // TP-Link
	// digital input
	{"Device/Trigger/DigitalInput", EventDigitalInput},
	{"Device/IO/VirtualPort", EventDigitalInput},
	{"Device/Trigger/AlarmIn", EventDigitalInput}, // Hikvision (tnshik:)
	{"Device/IO/Port", EventDigitalInput},         // Axis (tnsaxis:)
	// video loss
	{"VideoSource/SignalLoss", EventVideoLoss},
}

// eventMap is a camera's topic mapping: its configured rules, then the
// built-in ones.
type eventMap struct {
	rules []topicRule // configured, by pattern
}

// defaultEvents maps the built-in topics only.
var defaultEvents = &eventMap{}

// newEventMap builds the mapping of a camera's event_map (topic or
// pattern → event), which it must have validated.
func newEventMap(cfg map[string]string) *eventMap {
	m := &eventMap{}
	for topic, ev := range cfg {
		m.rules = append(m.rules, topicRule{Pattern: normalizeTopic(topic), Event: ev})
	}
	sort.Slice(m.rules, func(i, j int) bool { return m.rules[i].Pattern < m.rules[j].Pattern })
	return m
}

// lookup returns the event of a normalized topic: a configured rule
// before a built-in one; within each, an exact pattern before "/*"
// ones, the longest of those first. It returns EventGeneric when none
// matches.
func (m *eventMap) lookup(topic string) string {
	if ev, ok := match(m.rules, topic); ok {
		return ev
	}
	if ev, ok := match(builtinTopics, topic); ok {
		return ev
	}
	return EventGeneric
}

func match(rules []topicRule, topic string) (string, bool) {
	best, found := -1, ""
	for _, r := range rules {
		if r.Pattern == topic {
			return r.Event, true
		}
		if base, ok := strings.CutSuffix(r.Pattern, "/*"); ok && (topic == base || strings.HasPrefix(topic, base+"/")) && len(base) > best {
			best, found = len(base), r.Event
		}
	}
	return found, best >= 0
}

// eventMapErrors checks a camera's event_map: each topic a pattern as
// lookup reads them, each event one of mappedEvents. It returns one error
// per problem, in the order of the topics.
func eventMapErrors(m map[string]string) []error {
	topics := make([]string, 0, len(m))
	for t := range m {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	var errs []error
	for _, t := range topics {
		ev := m[t]
		p := normalizeTopic(t)
		switch {
		case p == "" || p == "*":
			errs = append(errs, fmt.Errorf("event_map: topic %q: empty", t))
		case strings.Contains(strings.TrimSuffix(p, "/*"), "*"):
			errs = append(errs, fmt.Errorf("event_map: topic %q: * stands only as the last segment (\"RuleEngine/MyRule/*\")", t))
		case strings.Contains(p, "//") || strings.HasSuffix(p, "/"):
			errs = append(errs, fmt.Errorf("event_map: topic %q: empty segment", t))
		}
		if !slices.Contains(mappedEvents, ev) {
			errs = append(errs, fmt.Errorf("event_map: topic %q: event %q is not one of %s", t, ev, strings.Join(mappedEvents, ", ")))
		}
	}
	return errs
}
