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
	// Pictures counts events' pictures by result: taken (attached to
	// their event), uploaded, error (the event went with picture_error).
	Pictures *prometheus.CounterVec
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
		Pictures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_pictures_total", Help: "Events' pictures by result: taken, uploaded, error (the event went with picture_error).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.Captured, m.Delivered, m.Lost, m.Pictures)
	}
	return m
}
