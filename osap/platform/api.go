package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/osapgw/osapgw/osap"
)

// DefaultRequestTimeout is how long the HTTP API waits for a device's reply
// unless the request says otherwise (?timeout=).
const DefaultRequestTimeout = 10 * time.Second

// maxRequestTimeout bounds ?timeout=.
const maxRequestTimeout = 5 * time.Minute

// maxEventsPage bounds ?limit= of the events endpoint; it is also the
// default.
const maxEventsPage = 1000

// APIOption configures NewAPI.
type APIOption func(*api)

// WithAPILogger sets the logger of the HTTP API (default slog.Default()).
func WithAPILogger(l *slog.Logger) APIOption { return func(a *api) { a.log = l } }

// WithRequestTimeout sets how long set, get and invoke wait for the reply
// when the request gives no ?timeout= (default DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) APIOption { return func(a *api) { a.timeout = d } }

// WithPictures serves the picture service's listing, downloads and test
// fault on the API (see NewAPI).
func WithPictures(p *PictureService) APIOption { return func(a *api) { a.pictures = p } }

type api struct {
	das      []*DAS
	pictures *PictureService
	stores   []*EventStore // distinct event stores of das, in order
	log      *slog.Logger
	timeout  time.Duration
}

// NewAPI returns the emulator's HTTP API over the given DAS instances, for
// tests, the demo and a person on a bench; it is meant for 127.0.0.1 and
// has no authentication. Every answer is JSON; errors are
// {"error":"..."} with a matching status code.
//
//	GET  /api/devices                              every gateway, with sub-device ids and online state
//	GET  /api/devices/{devid}                      one gateway: sub-devices, models, last attributes
//	GET  /api/devices/{devid}/events?after=N&limit=M  stored events with seq > N (limit default and max 1000)
//	POST /api/devices/{devid}/set     {"dev","resource","values":{...}}
//	POST /api/devices/{devid}/get     {"dev","resource","names":[...]}
//	POST /api/devices/{devid}/invoke  {"dev","resource","operation","input":{...}}
//
// With WithPictures, the picture service's (binding 2.7):
//
//	GET    /api/devices/{devid}/pictures       {"devid","pictures":[{"picture","devid","dev","size","sha256","time"}]}
//	GET    /api/devices/{devid}/pictures/{id}  the picture, image/jpeg
//	GET    /api/pictures/fault                 the upload fault in force
//	PUT    /api/pictures/fault                 {"status":503,"retry_after":"5s","delay":"2s","count":3}: refuse
//	                                           (status) or hold (delay) the next count uploads (0: until cleared)
//	DELETE /api/pictures/fault                 uploads are handled again
//
// set, get and invoke send the request to the DAS the gateway is connected
// to and wait for its reply (?timeout=, a Go duration, default 10s), which
// they return as {"id","code","msg","body"}: 200 whatever the reply's code;
// 404 for an unknown gateway, 503 when it is offline, 504 when it does not
// answer in time.
//
// Several DAS instances should share one EventStore; with separate stores,
// sequence numbers are per store and a page may mix them.
func NewAPI(das []*DAS, opts ...APIOption) http.Handler {
	a := &api{das: das, log: slog.Default(), timeout: DefaultRequestTimeout}
	for _, o := range opts {
		o(a)
	}
	seen := map[*EventStore]bool{}
	for _, d := range das {
		if !seen[d.events] {
			seen[d.events] = true
			a.stores = append(a.stores, d.events)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/devices", a.devices)
	mux.HandleFunc("GET /api/devices/{devid}", a.device)
	mux.HandleFunc("GET /api/devices/{devid}/events", a.events)
	mux.HandleFunc("POST /api/devices/{devid}/set", a.set)
	mux.HandleFunc("POST /api/devices/{devid}/get", a.get)
	mux.HandleFunc("POST /api/devices/{devid}/invoke", a.invoke)
	if a.pictures != nil {
		mux.HandleFunc("GET /api/devices/{devid}/pictures", a.pictureList)
		mux.HandleFunc("GET /api/devices/{devid}/pictures/{id}", a.picture)
		mux.HandleFunc("GET /api/pictures/fault", a.pictureFault)
		mux.HandleFunc("PUT /api/pictures/fault", a.setPictureFault)
		mux.HandleFunc("DELETE /api/pictures/fault", a.setPictureFault)
	}
	return mux
}

func (a *api) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		a.log.Error("encode API answer", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (a *api) fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrDeviceNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrDeviceOffline):
		status = http.StatusServiceUnavailable
	case errors.Is(err, ErrInvalidRequest):
		status = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		status = 499 // the client went away; nobody reads this
	}
	if status == http.StatusInternalServerError {
		a.log.Error("API request failed", "err", err)
	}
	a.writeJSON(w, status, map[string]string{"error": err.Error()})
}

// lookup merges what the DAS instances know of devID: the one it is
// connected to wins, else the one that saw it last.
func (a *api) lookup(devID string) (DeviceInfo, *DAS, error) {
	var (
		best    DeviceInfo
		bestDAS *DAS
	)
	for _, d := range a.das {
		info, err := d.Device(devID)
		if err != nil {
			continue
		}
		if bestDAS == nil || (info.Online && !best.Online) || (info.Online == best.Online && lastActive(info).After(lastActive(best))) {
			best, bestDAS = info, d
		}
	}
	if bestDAS == nil {
		return DeviceInfo{}, nil, fmt.Errorf("device %q: %w", devID, ErrDeviceNotFound)
	}
	best.Events = a.eventCount(devID)
	return best, bestDAS, nil
}

func lastActive(di DeviceInfo) time.Time {
	t := di.LastSeen
	if di.DisconnectedAt.After(t) {
		t = di.DisconnectedAt
	}
	return t
}

func (a *api) eventCount(devID string) int {
	n := 0
	for _, s := range a.stores {
		n += s.Len(devID)
	}
	return n
}

func (a *api) devices(w http.ResponseWriter, _ *http.Request) {
	byID := map[string]DeviceInfo{}
	for _, d := range a.das {
		for _, info := range d.Devices() {
			cur, ok := byID[info.DevID]
			if !ok || (info.Online && !cur.Online) || (info.Online == cur.Online && lastActive(info).After(lastActive(cur))) {
				byID[info.DevID] = info
			}
		}
	}
	out := make([]DeviceInfo, 0, len(byID))
	for id, info := range byID {
		info.Events = a.eventCount(id)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DevID < out[j].DevID })
	a.writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (a *api) device(w http.ResponseWriter, r *http.Request) {
	info, _, err := a.lookup(r.PathValue("devid"))
	if err != nil {
		a.fail(w, err)
		return
	}
	a.writeJSON(w, http.StatusOK, info)
}

// EventsPage is the answer of the events endpoint.
type EventsPage struct {
	DevID  string  `json:"devid"`
	Events []Event `json:"events"`
	// Next is the value of ?after= that continues after this page.
	Next uint64 `json:"next"`
}

func (a *api) events(w http.ResponseWriter, r *http.Request) {
	devID := r.PathValue("devid")
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			a.fail(w, fmt.Errorf("%w: after=%q is not a sequence number", ErrInvalidRequest, s))
			return
		}
		after = v
	}
	limit := maxEventsPage
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > maxEventsPage {
			a.fail(w, fmt.Errorf("%w: limit=%q is not a number from 1 to %d", ErrInvalidRequest, s, maxEventsPage))
			return
		}
		limit = v
	}
	if _, _, err := a.lookup(devID); err != nil {
		a.fail(w, err)
		return
	}
	var evs []Event
	for _, s := range a.stores {
		evs = append(evs, s.Events(devID, after, limit)...)
	}
	if len(a.stores) > 1 {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].Received.Before(evs[j].Received) })
		if len(evs) > limit {
			evs = evs[:limit]
		}
	}
	page := EventsPage{DevID: devID, Events: evs, Next: after}
	if evs == nil {
		page.Events = []Event{}
	}
	for _, ev := range evs {
		page.Next = max(page.Next, ev.Seq)
	}
	a.writeJSON(w, http.StatusOK, page)
}

// SetRequest is the body of POST /api/devices/{devid}/set.
type SetRequest struct {
	Dev      string         `json:"dev"`
	Resource string         `json:"resource"`
	Values   map[string]any `json:"values"`
}

// GetRequest is the body of POST /api/devices/{devid}/get.
type GetRequest struct {
	Dev      string   `json:"dev"`
	Resource string   `json:"resource"`
	Names    []string `json:"names,omitempty"`
}

// InvokeRequest is the body of POST /api/devices/{devid}/invoke.
type InvokeRequest struct {
	Dev       string         `json:"dev"`
	Resource  string         `json:"resource"`
	Operation string         `json:"operation"`
	Input     map[string]any `json:"input,omitempty"`
}

// Reply is the answer of set, get and invoke: the device's reply.
type Reply struct {
	ID   string          `json:"id"`
	Code int             `json:"code"`
	Msg  string          `json:"msg,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

func (a *api) set(w http.ResponseWriter, r *http.Request) {
	var req SetRequest
	if !a.decode(w, r, &req) {
		return
	}
	if req.Resource == "" || len(req.Values) == 0 {
		a.fail(w, fmt.Errorf("%w: set needs a resource and values", ErrInvalidRequest))
		return
	}
	a.request(w, r, req.Dev, osap.TypeAttributeSet, osap.AttributeSet{Resource: req.Resource, Values: req.Values})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	var req GetRequest
	if !a.decode(w, r, &req) {
		return
	}
	if req.Resource == "" {
		a.fail(w, fmt.Errorf("%w: get needs a resource", ErrInvalidRequest))
		return
	}
	a.request(w, r, req.Dev, osap.TypeAttributeGet, osap.AttributeGet{Resource: req.Resource, Names: req.Names})
}

func (a *api) invoke(w http.ResponseWriter, r *http.Request) {
	var req InvokeRequest
	if !a.decode(w, r, &req) {
		return
	}
	if req.Resource == "" || req.Operation == "" {
		a.fail(w, fmt.Errorf("%w: invoke needs a resource and an operation", ErrInvalidRequest))
		return
	}
	a.request(w, r, req.Dev, osap.TypeOperationInvoke, osap.OperationInvoke{Resource: req.Resource, Operation: req.Operation, Input: req.Input})
}

// decode reads a JSON body of at most 1 MiB into v, refusing unknown
// fields; on failure it answers 400 and returns false.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		a.fail(w, fmt.Errorf("%w: body: %v", ErrInvalidRequest, err))
		return false
	}
	if dec.More() {
		a.fail(w, fmt.Errorf("%w: body: trailing data", ErrInvalidRequest))
		return false
	}
	return true
}

func (a *api) request(w http.ResponseWriter, r *http.Request, subDev, typ string, body any) {
	devID := r.PathValue("devid")
	timeout := a.timeout
	if s := r.URL.Query().Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > maxRequestTimeout {
			a.fail(w, fmt.Errorf("%w: timeout=%q is not a duration from 1ns to %v", ErrInvalidRequest, s, maxRequestTimeout))
			return
		}
		timeout = d
	}
	info, d, err := a.lookup(devID)
	if err != nil {
		a.fail(w, err)
		return
	}
	if !info.Online {
		a.fail(w, fmt.Errorf("device %q: %w", devID, ErrDeviceOffline))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	m, err := d.Request(ctx, devID, subDev, typ, body)
	if err != nil {
		a.fail(w, err)
		return
	}
	rep := Reply{ID: m.ID, Code: m.Code, Msg: m.Msg}
	if len(m.Body) > 0 {
		rep.Body = json.RawMessage(bytes.Clone(m.Body))
	}
	a.log.Info("device replied", "devid", devID, "dev", subDev, "type", typ, "id", m.ID, "code", m.Code)
	a.writeJSON(w, http.StatusOK, rep)
}

// PicturesPage is the answer of the picture listing.
type PicturesPage struct {
	DevID    string    `json:"devid"`
	Pictures []Picture `json:"pictures"`
}

func (a *api) pictureList(w http.ResponseWriter, r *http.Request) {
	devID := r.PathValue("devid")
	a.writeJSON(w, http.StatusOK, PicturesPage{DevID: devID, Pictures: a.pictures.Pictures(devID)})
}

func (a *api) picture(w http.ResponseWriter, r *http.Request) {
	a.pictures.serve(w, r, r.PathValue("devid"), r.PathValue("id"))
}

// PictureFaultRequest is the body of PUT /api/pictures/fault and the
// answer of GET: PictureFault with durations as Go duration strings.
type PictureFaultRequest struct {
	Status     int    `json:"status,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	Delay      string `json:"delay,omitempty"`
	Count      int    `json:"count,omitempty"`
}

// Fault returns the PictureFault the request describes, or an error
// naming the field that is wrong.
func (fr PictureFaultRequest) Fault() (PictureFault, error) {
	f := PictureFault{Status: fr.Status, Count: fr.Count}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return f, fmt.Errorf("status %d: want 400 to 599, or 0 for none", f.Status)
	}
	if f.Count < 0 {
		return f, fmt.Errorf("count %d: want 0 or more", f.Count)
	}
	for _, d := range []struct {
		name string
		s    string
		to   *time.Duration
	}{{"retry_after", fr.RetryAfter, &f.RetryAfter}, {"delay", fr.Delay, &f.Delay}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v < 0 || v > maxRequestTimeout {
			return f, fmt.Errorf("%s %q: want a duration from 0 to %v", d.name, d.s, maxRequestTimeout)
		}
		*d.to = v
	}
	return f, nil
}

func faultRequest(f PictureFault) PictureFaultRequest {
	fr := PictureFaultRequest{Status: f.Status, Count: f.Count}
	if f.RetryAfter > 0 {
		fr.RetryAfter = f.RetryAfter.String()
	}
	if f.Delay > 0 {
		fr.Delay = f.Delay.String()
	}
	return fr
}

func (a *api) pictureFault(w http.ResponseWriter, _ *http.Request) {
	a.writeJSON(w, http.StatusOK, faultRequest(a.pictures.Fault()))
}

func (a *api) setPictureFault(w http.ResponseWriter, r *http.Request) {
	var f PictureFault
	if r.Method == http.MethodPut {
		var fr PictureFaultRequest
		if !a.decode(w, r, &fr) {
			return
		}
		var err error
		if f, err = fr.Fault(); err != nil {
			a.fail(w, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
			return
		}
	}
	a.pictures.SetFault(f)
	a.log.Info("picture upload fault set", "status", f.Status, "retry_after_seconds", f.RetryAfter.Seconds(), "delay_seconds", f.Delay.Seconds(), "count", f.Count)
	a.writeJSON(w, http.StatusOK, faultRequest(f))
}
