package delivery

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the event stream's Prometheus metrics.
type Metrics struct {
	// Captured counts events stored in the outbox.
	Captured prometheus.Counter
	// Delivered counts events the platform acknowledged (PUBACK).
	Delivered prometheus.Counter
	// Lost counts events that could not be stored, or whose stored record
	// was damaged beyond sending.
	Lost prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Captured: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "osapgw_events_captured_total", Help: "Events stored in the outbox.",
		}),
		Delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "osapgw_events_delivered_total", Help: "Events acknowledged by the platform (PUBACK).",
		}),
		Lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "osapgw_events_lost_total", Help: "Events that could not be stored in the outbox (disk full, store closed), or whose record was damaged.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Captured, m.Delivered, m.Lost)
	}
	return m
}
