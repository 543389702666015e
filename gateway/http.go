package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/osapgw/osapgw/bridge"
	"github.com/osapgw/osapgw/internal/version"
	"github.com/osapgw/osapgw/upstream"
)

// Status is the JSON document of /status, which `osapgw status` prints.
type Status struct {
	Version  string                `json:"version"`
	Upstream upstream.State        `json:"upstream"`
	Outbox   OutboxStatus          `json:"outbox"`
	Devices  []bridge.DeviceStatus `json:"devices"`
}

// OutboxStatus is the outbox part of Status.
type OutboxStatus struct {
	Events        int     `json:"events"`
	Bytes         int64   `json:"bytes"`
	OldestAgeSecs float64 `json:"oldest_age_seconds"`
	Dropped       uint64  `json:"dropped"`
	// Pictures and PictureBytes describe the picture spool;
	// PicturesDropped counts pictures dropped by its bound.
	Pictures        int    `json:"pictures"`
	PictureBytes    int64  `json:"picture_bytes"`
	PicturesDropped uint64 `json:"pictures_dropped"`
	// DiskFull says the store's latest append was refused for lack of
	// space (events are being lost); NoSpaceErrors counts the store's
	// writes refused so since the daemon started.
	DiskFull      bool   `json:"disk_full"`
	NoSpaceErrors uint64 `json:"no_space_errors"`
}

// Status returns what /status shows.
func (g *Gateway) Status() Status {
	st := g.store.Stats()
	var age float64
	if !st.Oldest.IsZero() {
		age = time.Since(st.Oldest).Seconds()
	}
	return Status{
		Version:  version.Version,
		Upstream: g.session.State(),
		Outbox: OutboxStatus{Events: st.Count, Bytes: st.Bytes, OldestAgeSecs: age, Dropped: st.Dropped,
			Pictures: st.Pictures, PictureBytes: st.PictureBytes, PicturesDropped: st.PicturesDropped,
			DiskFull: st.DiskFull, NoSpaceErrors: st.NoSpace},
		Devices: g.bridge.Devices(),
	}
}

// Handler serves /metrics, /healthz, /readyz and /status.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !g.session.Connected() {
			http.Error(w, "upstream not registered: "+g.session.State().State, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	// Profiles, for an operator chasing CPU or memory on a box; the
	// endpoint listens on 127.0.0.1 unless configured otherwise.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(g.Status())
	})
	return mux
}

// registerMetrics adds the store's and the session's gauges, read when
// scraped.
func (g *Gateway) registerMetrics(reg prometheus.Registerer) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		gauge("osapgw_outbox_events", "Events waiting in the outbox for the platform's PUBACK.", func() float64 { return float64(g.store.Stats().Count) }),
		gauge("osapgw_outbox_bytes", "Bytes of the events waiting in the outbox.", func() float64 { return float64(g.store.Stats().Bytes) }),
		gauge("osapgw_outbox_oldest_age_seconds", "Age of the oldest event waiting in the outbox.", func() float64 {
			if o := g.store.Stats().Oldest; !o.IsZero() {
				return time.Since(o).Seconds()
			}
			return 0
		}),
		counter("osapgw_store_corruptions_total", "Damaged store files moved aside and damaged records removed.", func() float64 { return float64(g.store.Stats().Corruptions) }),
		counter("osapgw_outbox_dropped_total", "Events dropped from the outbox because it was full or they were too old.", func() float64 { return float64(g.store.Stats().Dropped) }),
		counter("osapgw_store_no_space_errors_total", "Store writes (appends, acknowledgements, values, pictures) refused because its file system was full, since the daemon started.", func() float64 { return float64(g.store.Stats().NoSpace) }),
		gauge("osapgw_store_disk_full", "1 when the store's latest append was refused because its file system was full: events are being lost.", func() float64 {
			if g.store.Stats().DiskFull {
				return 1
			}
			return 0
		}),
		gauge("osapgw_pictures_spooled", "Pictures kept in the spool until their events are acknowledged.", func() float64 { return float64(g.store.Stats().Pictures) }),
		gauge("osapgw_pictures_spooled_bytes", "Bytes of the pictures in the spool (counted against store.max_bytes with the outbox).", func() float64 { return float64(g.store.Stats().PictureBytes) }),
		counter("osapgw_pictures_dropped_total", "Pictures dropped from the spool to keep within store.max_bytes; their events went with picture_error.", func() float64 { return float64(g.store.Stats().PicturesDropped) }),
		gauge("osapgw_upstream_connected", "1 when the gateway is registered with the platform's DAS.", func() float64 {
			if g.session.Connected() {
				return 1
			}
			return 0
		}),
		counter("osapgw_upstream_reconnects_total", "Connections to the DAS after the first one.", func() float64 { return float64(g.session.State().Reconnects) }),
		counter("osapgw_upstream_auth_failures_total", "Failed authentications with the LBS and logins refused by the DAS.", func() float64 { return float64(g.session.State().AuthFailures) }),
	)
}
