package onvif

import (
	"context"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/use-go/onvif/device"
	"github.com/use-go/onvif/media"
	"github.com/use-go/onvif/ptz"
	"github.com/use-go/onvif/xsd"
	tt "github.com/use-go/onvif/xsd/onvif"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
)

// camera is one connection to a camera: its client, service addresses and
// what it reported when connecting.
type camera struct {
	c        *soap.Client
	base     *url.URL
	svc      services
	info     device.GetDeviceInformationResponse
	profiles []profile // fixed once connected, but for their encoders:
	nodes    []ptzNode

	mu  sync.Mutex
	enc map[string]encoder // by profile token, refreshed by reads
}

// encoder returns the last known encoder settings of a profile.
func (k *camera) encoder(token string) encoder {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.enc[token]
}

// updateEncoders records the encoder settings of freshly read profiles
// (those of the profiles known since connecting; others are ignored).
func (k *camera) updateEncoders(fresh []profile) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.enc == nil {
		k.enc = make(map[string]encoder, len(k.profiles))
	}
	for _, p := range fresh {
		for _, known := range k.profiles {
			if known.Token == p.Token {
				k.enc[p.Token] = p.Enc
			}
		}
	}
}

// ptzNode is a PTZ head and the profile through which it is driven.
type ptzNode struct {
	Token   string
	Name    string
	Profile string
}

// callError names the call that failed.
type callError struct {
	Call string
	Err  error
}

func (e *callError) Error() string { return e.Call + ": " + e.Err.Error() }
func (e *callError) Unwrap() error { return e.Err }

func (k *camera) call(ctx context.Context, name, addr string, req, resp any) error {
	if addr == "" {
		return &callError{Call: name, Err: fmt.Errorf("%w: the camera has no service for it", errNoService)}
	}
	if err := k.c.Call(ctx, addr, req, resp); err != nil {
		return &callError{Call: name, Err: err}
	}
	return nil
}

var errNoService = errors.New("service not offered")

// dial connects to a camera: clock, services, information, profiles, PTZ.
// On failure it releases everything it opened.
func dial(ctx context.Context, cfg *Config, password string) (_ *camera, err error) {
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	opts := soap.Options{Username: cfg.Username, Password: password, Timeout: cfg.Timeout, InsecureTLS: cfg.InsecureTLS}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %q holds no PEM certificate", cfg.CAFile)
		}
		opts.RootCAs = pool
	}
	k := &camera{c: soap.New(opts), base: base}
	defer func() {
		if err != nil {
			k.close()
		}
	}()
	dev := cfg.URL
	// The clock first: it needs no credentials, and UsernameToken needs it.
	var dt dateTimeResponse
	if err := k.call(ctx, "GetSystemDateAndTime", dev, device.GetSystemDateAndTime{}, &dt); err != nil {
		return nil, err
	}
	if t, ok := dt.time(); ok {
		k.c.SetClockOffset(clockOffset(t, time.Now()))
	}
	var caps capabilitiesResponse
	if err := k.call(ctx, "GetCapabilities", dev, device.GetCapabilities{Category: "All"}, &caps); err == nil {
		k.svc = caps.services()
	} else if errors.Is(err, soap.ErrUnauthorized) || !isFault(err) {
		return nil, err
	}
	// GetServices too when GetCapabilities does not list Media2, which
	// it has no standard place for; its failure then matters only when
	// there is no Media1 either.
	if k.svc.Media == "" || k.svc.Media2 == "" {
		var s servicesResponse
		if err := k.call(ctx, "GetServices", dev, device.GetServices{IncludeCapability: false}, &s); err == nil {
			k.svc = k.svc.merge(s.services())
		} else if k.svc.Media == "" || ctx.Err() != nil {
			return nil, err
		}
	}
	k.svc.Device = dev
	if cfg.hostRewrite() {
		for _, a := range []*string{&k.svc.Media, &k.svc.Media2, &k.svc.PTZ, &k.svc.Events} {
			*a = rewriteHost(*a, base)
		}
	}
	if err := k.refresh(ctx, cfg.hostRewrite()); err != nil {
		return nil, err
	}
	return k, nil
}

// clockOffset is how far a camera whose clock reads cam is ahead of ours
// (now). The camera gives whole seconds, so an offset within 2s is taken
// as none: within that, it is noise, and UsernameToken tolerates it.
func clockOffset(cam, now time.Time) time.Duration {
	d := cam.Sub(now)
	if d.Abs() <= 2*time.Second {
		return 0
	}
	return d
}

func isFault(err error) bool {
	var f *soap.Fault
	return errors.As(err, &f)
}

// refresh reads the device information, profiles with their URIs, and PTZ
// nodes.
func (k *camera) refresh(ctx context.Context, rewrite bool) error {
	if err := k.call(ctx, "GetDeviceInformation", k.svc.Device, device.GetDeviceInformation{}, &k.info); err != nil {
		return err
	}
	profiles, err := k.media2Profiles(ctx, rewrite) // nil: through Media1
	if err != nil {
		return err
	}
	if profiles == nil {
		var pr profilesResponse
		if err := k.call(ctx, "GetProfiles", k.svc.Media, media.GetProfiles{}, &pr); err != nil {
			return err
		}
		profiles = pr.profiles()
	}
	for i := range profiles {
		p := &profiles[i]
		if p.Enc.Token == "" || k.svc.Media2 != "" { // Media2's came with their URIs
			continue
		}
		var su mediaURIResponse
		req := media.GetStreamUri{ProfileToken: tt.ReferenceToken(p.Token),
			StreamSetup: tt.StreamSetup{Stream: "RTP-Unicast", Transport: tt.Transport{Protocol: "RTSP"}}}
		if err := k.call(ctx, "GetStreamUri", k.svc.Media, req, &su); err != nil {
			return err
		}
		p.StreamURI = su.MediaUri.Uri
		var sn mediaURIResponse
		if err := k.call(ctx, "GetSnapshotUri", k.svc.Media, media.GetSnapshotUri{ProfileToken: tt.ReferenceToken(p.Token)}, &sn); err == nil {
			p.SnapshotURI = sn.MediaUri.Uri
			if rewrite {
				p.SnapshotURI = rewriteHost(p.SnapshotURI, k.base)
			}
		} else if !isFault(err) {
			return err
		}
	}
	k.profiles = profiles
	k.updateEncoders(profiles)
	k.nodes = nil
	if k.svc.PTZ != "" {
		var nr nodesResponse
		if err := k.call(ctx, "GetNodes", k.svc.PTZ, ptz.GetNodes{}, &nr); err != nil && !isFault(err) {
			return err
		}
		for _, n := range nr.PTZNode {
			node := ptzNode{Token: n.Token, Name: n.Name}
			for _, p := range profiles {
				if p.PTZNode == n.Token {
					node.Profile = p.Token
					break
				}
			}
			if node.Profile != "" {
				k.nodes = append(k.nodes, node)
			}
		}
	}
	return nil
}

func (k *camera) close() { k.c.Close() }

// readEncoders reads the profiles again (Media1) or the encoder
// configurations (Media2) and records their encoders.
func (k *camera) readEncoders(ctx context.Context) error {
	if k.svc.Media2 != "" {
		return k.readEncoders2(ctx)
	}
	var pr profilesResponse
	if err := k.call(ctx, "GetProfiles", k.svc.Media, media.GetProfiles{}, &pr); err != nil {
		return err
	}
	k.updateEncoders(pr.profiles())
	return nil
}

// ptzStatus reads a head's position.
func (k *camera) ptzStatus(ctx context.Context, profileToken string) (statusResponse, error) {
	var st statusResponse
	err := k.call(ctx, "GetStatus", k.svc.PTZ, ptz.GetStatus{ProfileToken: tt.ReferenceToken(profileToken)}, &st)
	return st, err
}

// presets reads a head's presets.
func (k *camera) presets(ctx context.Context, profileToken string) (presetsResponse, error) {
	var pr presetsResponse
	err := k.call(ctx, "GetPresets", k.svc.PTZ, ptz.GetPresets{ProfileToken: tt.ReferenceToken(profileToken)}, &pr)
	return pr, err
}

// The spaces of ONVIF's generic PTZ coordinates, named in every move so
// cameras do not have to guess from an empty attribute.
const (
	spacePosition    = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
	spaceZoomPos     = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
	spaceTranslation = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/TranslationGenericSpace"
	spaceZoomTrans   = "http://www.onvif.org/ver10/tptz/ZoomSpaces/TranslationGenericSpace"
	spaceVelocity    = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"
	spaceZoomVel     = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace"
	spaceSpeed       = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/GenericSpeedSpace"
	spaceZoomSpeed   = "http://www.onvif.org/ver10/tptz/ZoomSpaces/ZoomGenericSpeedSpace"
)

func speed(v float64) tt.PTZSpeed {
	return tt.PTZSpeed{PanTilt: tt.Vector2D{X: v, Y: v, Space: spaceSpeed}, Zoom: tt.Vector1D{X: v, Space: spaceZoomSpeed}}
}

// xsDuration formats d as xs:duration.
func xsDuration(d time.Duration) xsd.Duration {
	return xsd.Duration(fmt.Sprintf("PT%gS", d.Seconds()))
}

// setVideoEncoder writes a profile's frame rate and bitrate, keeping the
// rest of the configuration the camera reported.
type setVideoEncoder struct {
	XMLName       struct{} `xml:"trt:SetVideoEncoderConfiguration"`
	Configuration rawConfig
	Force         bool `xml:"trt:ForcePersistence"`
}

type rawConfig struct {
	XMLName struct{}   `xml:"trt:Configuration"`
	Token   string     `xml:"token,attr"`
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

// setSystemDateAndTime sets the camera's clock to UTC, manually. (The
// library's type always sends an empty time zone, which cameras refuse.)
type setSystemDateAndTime struct {
	XMLName         struct{} `xml:"tds:SetSystemDateAndTime"`
	DateTimeType    string   `xml:"tds:DateTimeType"`
	DaylightSavings bool     `xml:"tds:DaylightSavings"`
	UTCDateTime     struct {
		Time struct {
			Hour   int `xml:"tt:Hour"`
			Minute int `xml:"tt:Minute"`
			Second int `xml:"tt:Second"`
		} `xml:"tt:Time"`
		Date struct {
			Year  int `xml:"tt:Year"`
			Month int `xml:"tt:Month"`
			Day   int `xml:"tt:Day"`
		} `xml:"tt:Date"`
	} `xml:"tds:UTCDateTime"`
}
