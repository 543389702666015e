package bridge

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the bridge's Prometheus metrics. Labels are bounded: device
// ids, resources and attributes come from the configuration (or a device's
// model), message types from the binding. The
// event counters are the event stream's (delivery.Metrics).
type Metrics struct {
	DeviceOnline *prometheus.GaugeVec
	// DeviceOfflineReason is 1 for the reason a device is offline and 0
	// for the others (all 0 while it is online).
	DeviceOfflineReason *prometheus.GaugeVec
	DeviceReports       *prometheus.CounterVec
	DeviceErrors        *prometheus.CounterVec
	Polls               *prometheus.CounterVec
	PollDuration        *prometheus.HistogramVec
	PointErrors         *prometheus.CounterVec
	PointsBad           *prometheus.GaugeVec
	MessagesOut         *prometheus.CounterVec
	MessagesIn          *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		DeviceOnline: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "osapgw_device_online", Help: "1 when the sub-device answers, 0 when it is offline.",
		}, []string{"device", "kind"}),
		DeviceOfflineReason: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "osapgw_device_offline_reason", Help: "1 for the reason the sub-device is offline (unreachable, timeout, credentials, protocol), 0 for the others; all 0 while it is online.",
		}, []string{"device", "reason"}),
		DeviceReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_device_reports_total", Help: "Attribute reports received from the sub-device's adapter.",
		}, []string{"device"}),
		DeviceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_device_errors_total", Help: "Errors of the sub-device: failed describes, adapter stops, offline reports.",
		}, []string{"device"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_device_polls_total", Help: "Poll cycles of the sub-device, by result: ok; partial, the device answered but some points were bad; error, it did not answer.",
		}, []string{"device", "result"}),
		PointErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_device_point_errors_total", Help: "Poll cycles in which the point was bad: its read failed, or it was left alone after failing.",
		}, []string{"device", "resource", "attribute"}),
		PointsBad: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "osapgw_device_points_bad", Help: "Points of the sub-device whose last reported value is bad.",
		}, []string{"device"}),
		PollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "osapgw_device_poll_duration_seconds", Help: "How long a poll cycle of the sub-device took.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"device"}),
		MessagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_upstream_messages_out_total", Help: "Business messages handed to the upstream session, by type.",
		}, []string{"type"}),
		MessagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_upstream_messages_in_total", Help: "Downlink business messages received, by type.",
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.DeviceOnline, m.DeviceOfflineReason, m.DeviceReports, m.DeviceErrors, m.Polls, m.PollDuration, m.PointErrors, m.PointsBad, m.MessagesOut, m.MessagesIn)
	}
	return m
}

// forget drops the series of a device taken out of the configuration.
func (m *Metrics) forget(id string) {
	m.DeviceReports.DeleteLabelValues(id)
	m.DeviceErrors.DeleteLabelValues(id)
	m.PollDuration.DeleteLabelValues(id)
	m.PointsBad.DeleteLabelValues(id)
	m.PointErrors.DeletePartialMatch(prometheus.Labels{"device": id})
	m.Polls.DeletePartialMatch(prometheus.Labels{"device": id})
	m.DeviceOnline.DeletePartialMatch(prometheus.Labels{"device": id})
	m.DeviceOfflineReason.DeletePartialMatch(prometheus.Labels{"device": id})
}
