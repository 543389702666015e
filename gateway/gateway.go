// Package gateway assembles the osapgw daemon from its parts: the store,
// the OSAP client and upstream session, the bridge with its adapters, and
// the local HTTP endpoint (/metrics, /healthz, /readyz, /status). The
// `osapgw run` command and the demo both run a Gateway.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/osapgw/osapgw/adapters"
	"github.com/osapgw/osapgw/bridge"
	"github.com/osapgw/osapgw/config"
	"github.com/osapgw/osapgw/delivery"
	"github.com/osapgw/osapgw/internal/version"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/store"
	"github.com/osapgw/osapgw/upstream"
)

// Options are what the caller adds to the configuration.
type Options struct {
	// Logger is the root logger (default slog.Default()).
	Logger *slog.Logger
	// Listener, when set, serves HTTP instead of listening on
	// cfg.HTTP.Listen (tests pass a 127.0.0.1:0 listener).
	Listener net.Listener
	// Ready is called once the HTTP endpoint listens and the devices are
	// started (osapgw run sends sd_notify READY=1 from it).
	Ready func()
}

// Gateway is a running osapgw.
type Gateway struct {
	log      *slog.Logger
	opts     Options
	store    *store.Store
	session  *upstream.Session
	bridge   *bridge.Bridge
	registry *prometheus.Registry
	ln       net.Listener

	mu  sync.Mutex
	cfg *config.Config // without its devices: see settings
}

// settings returns cfg without its devices. The gateway keeps it to compare
// a reloaded configuration's settings with; the devices' sections are only
// needed to build their adapters, and each is dropped once built.
func settings(cfg *config.Config) *config.Config {
	c := *cfg
	c.Devices = nil
	return &c
}

// New opens the store and builds every part from cfg, which must have
// passed Check. It connects nowhere yet: Run does. It returns an error
// naming the configuration field at fault (upstream.suites, upstream.lbs,
// upstream.ca_file, store.path); a missing verification code file is not
// one: the gateway then runs unprovisioned.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger
	suites, err := cfg.Upstream.SuiteSet()
	if err != nil {
		return nil, fmt.Errorf("upstream.suites: %w", err)
	}
	addr, useTLS, err := cfg.Upstream.LBSAddress()
	if err != nil {
		return nil, fmt.Errorf("upstream.lbs: %w", err)
	}
	var tlsCfg *tls.Config
	if useTLS || cfg.Upstream.CAFile != "" {
		tlsCfg, err = loadTLS(cfg.Upstream.CAFile)
		if err != nil {
			return nil, err
		}
	}
	lbsTLS := tlsCfg
	if !useTLS {
		lbsTLS = nil
	}
	kept := settings(cfg)
	auth := &provisioned{cfg: kept, base: osap.ClientConfig{
		Addr:           addr,
		TLS:            lbsTLS,
		Serial:         cfg.Gateway.Serial,
		ShareKeyDomain: cfg.Gateway.ShareKeyDomain,
		Suites:         suites,
		AllowLegacy:    cfg.Upstream.AllowLegacyCiphers,
		DeviceInfo:     osap.DeviceInfo{Model: cfg.Gateway.Model, Firmware: version.Version, Kind: "gateway"},
		Logger:         log.With("component", "lbs"),
	}}
	if _, err := auth.client(); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		log.Warn("not provisioned: the gateway runs its devices and keeps their events, and connects to the platform once the verification code file exists",
			"file", cfg.Gateway.VerificationCodeFile)
	}
	st, err := store.Open(cfg.Store.Path, store.Options{
		MaxBytes: int64(cfg.Store.MaxBytes),
		MaxAge:   time.Duration(cfg.Store.MaxAge),
		Logger:   log.With("component", "store"),
	})
	if err != nil {
		return nil, fmt.Errorf("store.path: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := &Gateway{log: log, opts: opts, store: st, registry: reg, cfg: kept}
	pictures := &pictureService{}
	events := delivery.New(delivery.Config{
		Logger:      log.With("component", "delivery"),
		Metrics:     delivery.NewMetrics(reg),
		Pictures:    pictures,
		PictureWait: time.Duration(cfg.Store.PictureWait),
	}, st)
	g.bridge = bridge.New(bridge.Config{
		RequestTimeout: time.Duration(cfg.Upstream.RequestTimeout),
		AttributeQoS:   byte(cfg.Upstream.AttributeQoS),
		Logger:         log.With("component", "bridge"),
		Metrics:        bridge.NewMetrics(reg),
		Pictures:       pictures,
	}, events, st)
	g.session = upstream.New(upstream.Config{
		Heartbeat:    time.Duration(cfg.Upstream.Heartbeat),
		TLS:          tlsCfg,
		AttributeQoS: byte(cfg.Upstream.AttributeQoS),
		Logger:       log.With("component", "upstream"),
	}, auth, credStore{st}, g.bridge)
	g.bridge.SetUpstream(g.session)
	pictures.session = g.session
	g.registerMetrics(reg)
	g.bridge.Apply(specs(cfg, log))
	return g, nil
}

func loadTLS(caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("upstream.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("upstream.ca_file: %s holds no PEM certificate", caFile)
	}
	c.RootCAs = pool
	return c, nil
}

// specs turns the enabled devices of cfg into bridge specs.
func specs(cfg *config.Config, log *slog.Logger) []bridge.Spec {
	cat, err := cfg.LoadProfiles()
	if err != nil {
		log.Warn("user profiles left out: the devices that name them will not start", "dir", cfg.Profiles.Dir, "err", err)
	}
	for _, p := range cat.Profiles() {
		if p.Overrides {
			log.Info("user profile replaces the embedded one", "profile", p.Name, "path", p.Path)
		}
	}
	var out []bridge.Spec
	for _, d := range cfg.Devices {
		if d.Disabled {
			continue
		}
		d := d
		env := adapters.Env{Logger: log.With("device", d.ID, "kind", d.Kind), Profiles: cat}
		out = append(out, bridge.Spec{ID: d.ID, Kind: d.Kind, Name: d.Name, Hash: d.Hash,
			Build: func() (adapters.Adapter, error) { return d.Build(env) }})
	}
	return out
}

// Run serves until ctx ends: HTTP, the devices, the upstream session. On
// the way out the session says goodbye to the platform (status offline,
// DISCONNECT), the devices stop, and the store is closed. It returns an
// error when the HTTP address cannot be bound (http.listen) or a part
// failed, joined with any error closing the store; nil after a clean stop.
func (g *Gateway) Run(ctx context.Context) error {
	ln := g.opts.Listener
	g.mu.Lock()
	listen := g.cfg.HTTP.Listen
	g.mu.Unlock()
	if ln == nil && listen != "off" {
		var err error
		ln, err = net.Listen("tcp", listen)
		if err != nil {
			g.store.Close()
			return fmt.Errorf("http.listen: %w", err)
		}
	}
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 5 * time.Second}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	if ln != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("http: %w", err)
				cancel()
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := g.bridge.Run(ctx); err != nil {
			errs <- fmt.Errorf("bridge: %w", err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		if err := g.session.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("upstream: %w", err)
			cancel()
		}
	}()
	g.log.Info("osapgw running", "version", version.Version, "devices", len(g.bridge.Devices()), "http", addrOf(ln))
	if g.opts.Ready != nil {
		g.opts.Ready()
	}
	<-ctx.Done()
	shutdown, stop := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(shutdown)
	stop()
	wg.Wait()
	close(errs)
	var err error
	for e := range errs {
		err = errors.Join(err, e)
	}
	if cerr := g.store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	g.log.Info("osapgw stopped")
	return err
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

// Addr returns the address the HTTP endpoint listens on, once Run started.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return addrOf(g.ln)
}

// Reload applies a new configuration that passed Check: devices whose
// section changed restart, new ones start, removed ones stop; the upstream
// session and the outbox are untouched. Settings outside [[device]] need a
// restart, which Reload logs.
func (g *Gateway) Reload(cfg *config.Config) {
	g.mu.Lock()
	old := g.cfg
	g.cfg = settings(cfg)
	g.mu.Unlock()
	if old.Gateway != cfg.Gateway || !reflect.DeepEqual(old.Upstream, cfg.Upstream) || old.Store != cfg.Store || old.HTTP != cfg.HTTP || old.Log != cfg.Log {
		g.log.Warn("reload: only [[device]] changes take effect now; restart osapgw for the other settings")
	}
	g.bridge.Apply(specs(cfg, g.log))
	g.log.Info("configuration reloaded", "devices", len(cfg.Devices))
}

// credStore keeps the upstream credentials in the store.
type credStore struct{ st *store.Store }

func (c credStore) LoadCredentials() (osap.Credentials, bool, error) {
	sc, ok, err := c.st.LoadCredentials()
	if err != nil || !ok {
		return osap.Credentials{}, ok, err
	}
	return osap.Credentials{DevID: sc.DevID, MasterKey: sc.MasterKey, Suite: osap.Suite(sc.Suite), SessionKey: sc.SessionKey,
		Lifetime: sc.Lifetime, SessionExpiry: sc.SessionExpiry, DASAddress: sc.DASAddress, PictureURL: sc.PictureURL}, true, nil
}

func (c credStore) SaveCredentials(cr osap.Credentials) error {
	return c.st.SaveCredentials(store.Credentials{DevID: cr.DevID, MasterKey: cr.MasterKey, Suite: uint8(cr.Suite), SessionKey: cr.SessionKey,
		Lifetime: cr.Lifetime, SessionExpiry: cr.SessionExpiry, DASAddress: cr.DASAddress, PictureURL: cr.PictureURL})
}

// provisioned authenticates with the LBS once the box is provisioned: it
// reads the verification code at each authentication, so a code file
// written after the daemon started is picked up at the next attempt, and
// a missing one fails the attempt without dialling anywhere.
type provisioned struct {
	cfg  *config.Config
	base osap.ClientConfig

	mu   sync.Mutex
	code string
	c    *osap.Client
}

func (p *provisioned) client() (*osap.Client, error) {
	code, err := p.cfg.VerificationCode()
	if err != nil {
		return nil, fmt.Errorf("not provisioned: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c != nil && code == p.code {
		return p.c, nil
	}
	cc := p.base
	cc.VerificationCode = code
	c, err := osap.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("osap client: %w", err)
	}
	p.code, p.c = code, c
	return c, nil
}

// Authenticate implements upstream.Authenticator.
func (p *provisioned) Authenticate(ctx context.Context, stored *osap.Credentials) (osap.Credentials, error) {
	c, err := p.client()
	if err != nil {
		return osap.Credentials{}, err
	}
	return c.Authenticate(ctx, stored)
}

// pictureService uploads events' and operations' pictures to the
// platform's picture service (binding 2.7) through the upstream session.
// New sets session once it is built, before anything runs.
type pictureService struct {
	session *upstream.Session
}

// UploadPicture implements delivery.PictureUploader over the session's
// picture service, translating upstream's errors into delivery's: no
// service offered is delivery.ErrNoPictureService, a refusal for good
// (4xx, or a picture the service can never take) is
// delivery.ErrPictureRefused; anything else (ctx ended) is retried by the
// stream.
func (p *pictureService) UploadPicture(ctx context.Context, dev string, body io.ReadSeeker, size int64, sum [sha256.Size]byte) (string, error) {
	id, err := p.session.UploadPicture(ctx, dev, body, size, sum)
	switch {
	case errors.Is(err, upstream.ErrNoPictureService):
		return "", fmt.Errorf("%w: %w", delivery.ErrNoPictureService, err)
	case errors.Is(err, upstream.ErrPictureRefused):
		return "", fmt.Errorf("%w: %w", delivery.ErrPictureRefused, err)
	}
	return id, err
}
