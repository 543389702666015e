// Command osap-platform is the OSAP platform emulator: the LBS that
// authenticates gateways, one or more DAS (embedded MQTT brokers) they
// connect to, the device registry, and an HTTP API on 127.0.0.1 to watch
// devices, read events, set attributes and invoke operations. Run
// `osap-platform --help` for its flags.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/osap/platform"
)

const helpText = `usage: osap-platform [flags]

osap-platform is the OSAP platform emulator. It runs
  - the LBS (load balancing service): gateways authenticate there (ECDH first
    authentication, re-authentication), get a session key and the address of
    the DAS with the fewest registered devices;
  - one DAS or more (device access service): MQTT 3.1.1 brokers that check
    the login password, keep every gateway to its own topics, open every
    message, keep topology, last attribute values and events (deduplicated
    and stored in the state directory);
  - the picture service (binding 2.7) on the HTTP API's listener under
    /osap, announced to gateways by the LBS (tag 0x0D of 0xB): uploads
    POST /osap/v1/{devid}/pictures, pictures kept in the state directory;
  - an HTTP API, meant for 127.0.0.1, to watch all this and send requests.
It logs each device's connect, authentication result and disconnect.

flags:
  --lbs ADDR                LBS listen address (default 127.0.0.1:7700)
  --das ADDR                DAS listen address; repeat for several DAS
                            (default 127.0.0.1:1883)
  --http ADDR               HTTP API listen address (default 127.0.0.1:7780);
                            the API has no authentication: keep it on loopback
  --registry FILE           the devices the LBS accepts, TOML (default devices.toml):
                              [[device]]
                              serial = "GW2026A0001"
                              verification_code = "ABCDEF"
  --state DIR               state, created 0700 (default osap-platform-state):
                            registry.json (assigned DevIDs, master keys,
                            session keys) and events.jsonl (stored events)
  --tls-cert FILE           certificate (PEM) for the LBS (TLS) and the DAS
  --tls-key FILE            (mqtts); both or neither
  --session-lifetime DUR    session key lifetime (default 24h)
  --suites LIST             cipher suites the LBS accepts, comma separated,
                            from aes-128-gcm, aes-128-cbc-hmac-sha256,
                            aes-128-cbc, aes-128-ecb (the last two are legacy,
                            without integrity)
                            (default aes-128-gcm,aes-128-cbc-hmac-sha256)
  --log-level LEVEL         debug, info, warn or error (default info)
  --no-fsync                store events without waiting for fsync (benchmarks of a gateway;
                            a machine crash can lose acknowledged events)
  --no-pictures             no picture service: 0xB announces none, gateways upload nothing
  --picture-path PATH       the picture service's path on the --http listener (default /osap)
  --picture-url URL         the base URL the LBS announces (default http://{--http}{--picture-path})
  --picture-refuse STATUS   answer every upload with STATUS (400-599), for tests; change it
                            later with PUT /api/pictures/fault
  --picture-retry-after DUR Retry-After sent with --picture-refuse 503 (default 1s)
  --picture-delay DUR       hold every upload this long before answering, for tests
  -h, --help                print this help

HTTP API (JSON; errors are {"error": "..."} with a matching status):
  GET  /api/devices                                  gateways and sub-devices
  GET  /api/devices/{devid}                          models, last attributes
  GET  /api/devices/{devid}/events?after=N&limit=M   events with seq > N
  POST /api/devices/{devid}/set     {"dev":"cam-1","resource":"video/1","values":{"brightness":0.5}}
  POST /api/devices/{devid}/get     {"dev":"cam-1","resource":"video/1","names":["brightness"]}
  POST /api/devices/{devid}/invoke  {"dev":"cam-1","resource":"ptz/1","operation":"goto_preset","input":{"preset":"3"}}
  set, get and invoke wait for the gateway's reply (?timeout=10s by default)
  and return {"id","code","msg","body"}.
  GET  /api/devices/{devid}/pictures        pictures: id, dev, size, sha256, time
  GET  /api/devices/{devid}/pictures/{id}   one picture (image/jpeg)
  PUT  /api/pictures/fault  {"status":503,"retry_after":"5s","delay":"2s","count":3}
                            refuse (status) or hold (delay) the next count uploads
                            (count 0: until changed); GET shows it, DELETE clears it

examples:
  osap-platform --registry devices.toml --state /var/tmp/osap-platform
  osap-platform --das 127.0.0.1:1883 --das 127.0.0.1:1884
  curl -s 127.0.0.1:7780/api/devices
  curl -s -X PUT -d '{"status":503,"retry_after":"10s","count":2}' 127.0.0.1:7780/api/pictures/fault
  curl -s -d '{"dev":"cam-1","resource":"ptz/1","operation":"goto_preset","input":{"preset":"3"}}' \
       127.0.0.1:7780/api/devices/GW-DEVID/invoke
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "osap-platform: %v\n", err)
		os.Exit(1)
	}
}

// errUsage is returned when the flags are wrong; the problem has been
// printed already.
var errUsage = errors.New("usage")

// options are the parsed flags.
type options struct {
	lbs             string
	das             []string
	http            string
	registry        string
	state           string
	tlsCert         string
	tlsKey          string
	sessionLifetime time.Duration
	suites          osap.SuiteSet
	logLevel        slog.Level
	noSync          bool
	noPictures      bool
	picturePath     string
	pictureURL      string
	pictureFault    platform.PictureFault
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parseFlags parses and checks the command line; it opens nothing.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("osap-platform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // the error alone on a bad flag; helpText for --help
	var das listFlag
	var suites, level string
	fs.StringVar(&o.lbs, "lbs", "127.0.0.1:7700", "")
	fs.Var(&das, "das", "")
	fs.StringVar(&o.http, "http", "127.0.0.1:7780", "")
	fs.StringVar(&o.registry, "registry", "devices.toml", "")
	fs.StringVar(&o.state, "state", "osap-platform-state", "")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "")
	fs.StringVar(&o.tlsKey, "tls-key", "", "")
	fs.DurationVar(&o.sessionLifetime, "session-lifetime", platform.DefaultSessionLifetime, "")
	fs.StringVar(&suites, "suites", "aes-128-gcm,aes-128-cbc-hmac-sha256", "")
	fs.StringVar(&level, "log-level", "info", "")
	fs.BoolVar(&o.noSync, "no-fsync", false, "")
	fs.BoolVar(&o.noPictures, "no-pictures", false, "")
	fs.StringVar(&o.picturePath, "picture-path", platform.DefaultPicturePath, "")
	fs.StringVar(&o.pictureURL, "picture-url", "", "")
	fs.IntVar(&o.pictureFault.Status, "picture-refuse", 0, "")
	fs.DurationVar(&o.pictureFault.RetryAfter, "picture-retry-after", 0, "")
	fs.DurationVar(&o.pictureFault.Delay, "picture-delay", 0, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, helpText)
			return o, err
		}
		fmt.Fprintln(stderr, "see osap-platform --help")
		return o, errUsage
	}
	bad := func(format string, a ...any) (options, error) {
		fmt.Fprintf(stderr, "osap-platform: "+format+"\n", a...)
		return o, errUsage
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q (see --help)", fs.Arg(0))
	}
	o.das = das
	if len(o.das) == 0 {
		o.das = []string{"127.0.0.1:1883"}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return bad("--tls-cert and --tls-key go together")
	}
	if o.sessionLifetime < 10*time.Second || o.sessionLifetime > 0xffffffff*time.Second {
		return bad("--session-lifetime %v: want from 10s to 136 years", o.sessionLifetime)
	}
	for _, name := range strings.Split(suites, ",") {
		s, err := osap.ParseSuite(strings.TrimSpace(name))
		if err != nil {
			return bad("--suites: %v", err)
		}
		o.suites |= osap.SuiteSet(s)
	}
	if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
		return bad("--log-level %q: want debug, info, warn or error", level)
	}
	if o.state == "" {
		return bad("--state: a directory is needed")
	}
	if f := o.pictureFault; f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return bad("--picture-refuse %d: want a status from 400 to 599", f.Status)
	}
	if o.pictureFault.RetryAfter < 0 || o.pictureFault.Delay < 0 {
		return bad("--picture-retry-after and --picture-delay cannot be negative")
	}
	if !strings.HasPrefix(o.picturePath, "/") || strings.HasSuffix(o.picturePath, "/") {
		return bad("--picture-path %q: want /name", o.picturePath)
	}
	if o.pictureURL != "" {
		if u, err := url.Parse(o.pictureURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("--picture-url %q: want http(s)://host:port/path", o.pictureURL)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	var tlsCfg *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if !loopback(o.http) {
		log.Warn("the HTTP API has no authentication and listens beyond loopback", "http", o.http)
	}
	// The emulator shares one registry and one event store between the LBS
	// and every DAS, so that a gateway moved from one DAS to another is
	// still deduplicated.
	e, err := platform.NewEmulator(platform.EmulatorConfig{
		StateDir:        o.state,
		DevicesFile:     o.registry,
		LBSListen:       o.lbs,
		DASListen:       o.das,
		HTTPListen:      o.http,
		TLS:             tlsCfg,
		Suites:          o.suites,
		SessionLifetime: o.sessionLifetime,
		NoSync:          o.noSync,
		NoPictures:      o.noPictures,
		PicturePath:     o.picturePath,
		PictureURL:      o.pictureURL,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	if e.Pictures != nil && (o.pictureFault.Status != 0 || o.pictureFault.Delay > 0) {
		e.Pictures.SetFault(o.pictureFault)
		log.Warn("picture uploads are refused or held (--picture-refuse, --picture-delay)",
			"status", o.pictureFault.Status, "delay_seconds", o.pictureFault.Delay.Seconds())
	}
	urls := make([]string, len(e.DAS))
	for i, d := range e.DAS {
		urls[i] = d.URL()
	}
	log.Info("osap-platform ready", "lbs", e.LBSAddr(), "das", strings.Join(urls, ","), "http", e.APIURL(),
		"devices", e.Registry.Len(), "state", o.state, "suites", o.suites.String(), "pictures", e.PictureURL())
	err = e.Run(ctx)
	log.Info("osap-platform stopped")
	return err
}

// loopback reports whether addr (host:port) names a loopback host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
