package onvif

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
)

// Notification is one message of a PullMessages response.
type Notification struct {
	// Topic is the topic without namespace prefixes
	// ("VideoSource/MotionAlarm").
	Topic string
	// Operation is the property operation: "Initialized", "Changed",
	// "Deleted", or "" for plain events.
	Operation string
	// Source and Data are the SimpleItems of the message.
	Source map[string]string
	Data   map[string]string
	// UTC is the message's UtcTime by the camera's clock (zero when
	// absent or unreadable).
	UTC time.Time
}

// PullResult is a parsed PullMessagesResponse.
type PullResult struct {
	// Current and Termination are the camera's times; Termination is when
	// the subscription ends unless renewed.
	Current, Termination time.Time
	Messages             []Notification
}

type pullXML struct {
	CurrentTime         string `xml:"CurrentTime"`
	TerminationTime     string `xml:"TerminationTime"`
	NotificationMessage []struct {
		Topic   string `xml:"Topic"`
		Message struct {
			Message struct {
				UtcTime           string  `xml:"UtcTime,attr"`
				PropertyOperation string  `xml:"PropertyOperation,attr"`
				Source            itemXML `xml:"Source"`
				Data              itemXML `xml:"Data"`
			} `xml:"Message"`
		} `xml:"Message"`
	} `xml:"NotificationMessage"`
}

type itemXML struct {
	SimpleItem []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:"Value,attr"`
	} `xml:"SimpleItem"`
}

func (x itemXML) m() map[string]string {
	if len(x.SimpleItem) == 0 {
		return nil
	}
	m := make(map[string]string, len(x.SimpleItem))
	for _, it := range x.SimpleItem {
		m[it.Name] = it.Value
	}
	return m
}

// ParsePullMessages parses a PullMessagesResponse envelope. A SOAP fault
// is returned as its *soap.Fault; a body that is not a PullMessages
// response as an error.
func ParsePullMessages(data []byte) (PullResult, error) {
	var x pullXML
	fault, err := soap.Decode(data, &x)
	if fault != nil {
		return PullResult{}, fault
	}
	if err != nil {
		return PullResult{}, err
	}
	return x.result()
}

func (x *pullXML) result() (PullResult, error) {
	var r PullResult
	var err error
	if r.Current, err = parseTime(x.CurrentTime); err != nil {
		return r, fmt.Errorf("CurrentTime: %w", err)
	}
	if r.Termination, err = parseTime(x.TerminationTime); err != nil {
		return r, fmt.Errorf("TerminationTime: %w", err)
	}
	for _, n := range x.NotificationMessage {
		m := n.Message.Message
		utc, _ := parseTime(m.UtcTime)
		r.Messages = append(r.Messages, Notification{Topic: normalizeTopic(n.Topic), Operation: m.PropertyOperation,
			Source: m.Source.m(), Data: m.Data.m(), UTC: utc})
	}
	return r, nil
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time", s)
}

// normalizeTopic drops the namespace prefix of each topic segment:
// "tns1:RuleEngine/tnsaxis:CellMotionDetector/Motion" gives
// "RuleEngine/CellMotionDetector/Motion".
func normalizeTopic(t string) string {
	parts := strings.Split(strings.TrimSpace(t), "/")
	for i, p := range parts {
		if _, local, ok := strings.Cut(p, ":"); ok {
			parts[i] = local
		}
	}
	return strings.Join(parts, "/")
}

// The events a camera reports, by the model name.
const (
	EventMotion       = "motion"
	EventTamper       = "tamper"
	EventDigitalInput = "digital_input"
	EventVideoLoss    = "video_loss"
	EventGeneric      = "onvif.event"
)

// classify maps a notification to a model event and its parameters with
// the built-in topics only.
func classify(n Notification) (string, map[string]any) { return defaultEvents.classify(n) }

// stateKeys are the Data items that carry an event's state, in the
// order they are looked for (matched whatever their case).
var stateKeys = []string{"State", "IsMotion", "IsTamper", "IsInside", "IsLineCross", "IsIntrusion", "LogicalState", "Level", "active"}

// sourceKeys are the Source items that name the video source.
var sourceKeys = []string{"VideoSourceConfigurationToken", "VideoSourceToken", "VideoSource", "Source"}

// classify maps a notification to a model event and its parameters: for
// the mapped events, state (when the Data carries one), and rule and
// source (when the Source names them), or input for a digital input;
// for EventGeneric, the topic and the Source and Data items.
func (m *eventMap) classify(n Notification) (string, map[string]any) {
	name := m.lookup(n.Topic)
	if name == EventGeneric {
		p := map[string]any{"topic": n.Topic}
		if n.Source != nil {
			p["source"] = toAny(n.Source)
		}
		if n.Data != nil {
			p["data"] = toAny(n.Data)
		}
		return name, p
	}
	p := map[string]any{}
	for _, k := range stateKeys {
		if v, ok := item(n.Data, k); ok {
			if b, err := parseBool(v); err == nil {
				p["state"] = b
				break
			}
		}
	}
	if name == EventDigitalInput {
		if v, ok := item(n.Source, "InputToken", "Index", "Port"); ok {
			p["input"] = v
		}
		return name, p
	}
	if v, ok := item(n.Source, sourceKeys...); ok {
		p["source"] = v
	}
	if v, ok := item(n.Source, "Rule"); ok {
		p["rule"] = v
	}
	return name, p
}

// item returns the value of the first of keys that m holds, matching
// the names whatever their case.
func item(m map[string]string, keys ...string) (string, bool) {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v, true
		}
		for name, v := range m {
			if strings.EqualFold(name, k) {
				return v, true
			}
		}
	}
	return "", false
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "active", "on":
		return true, nil
	case "false", "0", "inactive", "off":
		return false, nil
	}
	return strconv.ParseBool(s)
}

// dedup suppresses what is not a transition. A mapped event with a
// state is kept per (event, resource, rule or input) whatever topics
// carry it: a camera that reports motion under two topics (Hikvision:
// VideoSource/MotionAlarm and RuleEngine/CellMotionDetector/Motion, with
// different tokens of the same video source) gives one event when the
// state of any of them turns on, and one when the last of them turns
// off. Other notifications are kept per (topic, source): an
// "Initialized" message whose data did not change is dropped, the rest
// pass.
//
// It is kept by the adapter across connections, so the states a camera
// resends on every new subscription, and when it comes back after an
// outage, are not reported again.
type dedup struct {
	mu   sync.Mutex
	last map[string]string
	// states holds each group's members' states: group (event NUL
	// resource NUL rule or input) → member (topic NUL source items) →
	// state.
	states map[string]map[string]bool
	// rules holds the last rule name any member of a group carried, so
	// that a transition reported by a topic without one (Hikvision's
	// MotionAlarm) still says which rule the camera's detector runs.
	rules map[string]string
}

func newDedup() *dedup {
	return &dedup{last: map[string]string{}, states: map[string]map[string]bool{}, rules: map[string]string{}}
}

// keep reports whether n, classified as event ev with params p on
// resource res, should be reported, and records its state.
func (d *dedup) keep(n Notification, ev, res string, p map[string]any) bool {
	state, ok := p["state"].(bool)
	if ev == EventGeneric || !ok {
		return d.keepData(n)
	}
	var which string
	switch ev {
	case EventLineCrossing, EventIntrusion:
		which, _ = p["rule"].(string)
	case EventDigitalInput:
		which, _ = p["input"].(string)
	}
	group := ev + "\x00" + res + "\x00" + which
	member := n.Topic + "\x00" + flat(n.Source)
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := p["rule"].(string); ok && r != "" {
		d.rules[group] = r
	} else if r := d.rules[group]; r != "" {
		p["rule"] = r
	}
	g, seen := d.states[group]
	if !seen {
		d.states[group] = map[string]bool{member: state}
		return true
	}
	before := anyTrue(g)
	g[member] = state
	return anyTrue(g) != before
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}

// keepData keeps a notification without a state: plain events always,
// properties unless an "Initialized" one repeats the data last seen for
// its (topic, source).
func (d *dedup) keepData(n Notification) bool {
	if n.Operation == "" {
		return true // a plain event, not a property
	}
	key := n.Topic + "\x00" + flat(n.Source)
	data := flat(n.Data)
	d.mu.Lock()
	defer d.mu.Unlock()
	prev, seen := d.last[key]
	d.last[key] = data
	if n.Operation == "Initialized" && seen && prev == data {
		return false
	}
	return true
}

func flat(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + m[k] + "\x00")
	}
	return b.String()
}
