package delivery

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/osapgw/osapgw/store"
)

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
	// AppendErrors counts events the outbox refused, by reason: no_space
	// (the disk is full), invalid (parameters that do not encode),
	// too_large, closed (the daemon is stopping), other. Each is also
	// counted in Lost.
	AppendErrors *prometheus.CounterVec
}

// appendReason is the AppendErrors label of an append's error.
func appendReason(err error) string {
	switch {
	case errors.Is(err, store.ErrNoSpace):
		return "no_space"
	case errors.Is(err, store.ErrInvalid):
		return "invalid"
	case errors.Is(err, store.ErrTooLarge):
		return "too_large"
	case errors.Is(err, store.ErrClosed):
		return "closed"
	}
	return "other"
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
		AppendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "osapgw_outbox_append_errors_total", Help: "Events the outbox could not store, by reason: no_space (disk full), invalid, too_large, closed, other.",
		}, []string{"reason"}),
	}
	for _, r := range []string{"no_space", "invalid", "too_large", "closed", "other"} {
		m.AppendErrors.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Captured, m.Delivered, m.Lost, m.Pictures, m.AppendErrors)
	}
	return m
}
