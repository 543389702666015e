package onvif

import (
	"encoding/xml"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The response types below stand where github.com/use-go/onvif's cannot
// parse what cameras send: its schema types name their elements
// "onvif:Resolution", which encoding/xml never matches against
// <tt:Resolution>, and several of its lists are single values
// (GetPresetsResponse.Preset, GetNodesResponse.PTZNode). Elements are
// matched by local name, whatever prefix a camera uses.

type capabilitiesResponse struct {
	Capabilities struct {
		Device    xaddr `xml:"Device"`
		Events    xaddr `xml:"Events"`
		Media     xaddr `xml:"Media"`
		PTZ       xaddr `xml:"PTZ"`
		Imaging   xaddr `xml:"Imaging"`
		Extension struct {
			Media2 xaddr `xml:"Media2"` // some cameras list Media2 here too
		} `xml:"Extension"`
	} `xml:"Capabilities"`
}

type xaddr struct {
	XAddr string `xml:"XAddr"`
}

type servicesResponse struct {
	Service []struct {
		Namespace string `xml:"Namespace"`
		XAddr     string `xml:"XAddr"`
	} `xml:"Service"`
}

type dateTimeResponse struct {
	SystemDateAndTime struct {
		UTCDateTime struct {
			Time struct {
				Hour   int `xml:"Hour"`
				Minute int `xml:"Minute"`
				Second int `xml:"Second"`
			} `xml:"Time"`
			Date struct {
				Year  int `xml:"Year"`
				Month int `xml:"Month"`
				Day   int `xml:"Day"`
			} `xml:"Date"`
		} `xml:"UTCDateTime"`
	} `xml:"SystemDateAndTime"`
}

// time returns the camera's UTC time, and false when it reported none.
func (r *dateTimeResponse) time() (time.Time, bool) {
	u := r.SystemDateAndTime.UTCDateTime
	if u.Date.Year == 0 || u.Date.Month == 0 || u.Date.Day == 0 {
		return time.Time{}, false
	}
	return time.Date(u.Date.Year, time.Month(u.Date.Month), u.Date.Day, u.Time.Hour, u.Time.Minute, u.Time.Second, 0, time.UTC), true
}

type profilesResponse struct {
	Profiles []profileXML `xml:"Profiles"`
}

type profileXML struct {
	Token                    string `xml:"token,attr"`
	Name                     string `xml:"Name"`
	VideoSourceConfiguration *struct {
		Token       string `xml:"token,attr"`
		SourceToken string `xml:"SourceToken"`
	} `xml:"VideoSourceConfiguration"`
	VideoEncoderConfiguration *encoderXML `xml:"VideoEncoderConfiguration"`
	PTZConfiguration          *struct {
		Token     string `xml:"token,attr"`
		NodeToken string `xml:"NodeToken"`
	} `xml:"PTZConfiguration"`
}

type encoderXML struct {
	Token      string  `xml:"token,attr"`
	Name       string  `xml:"Name"`
	Encoding   string  `xml:"Encoding"`
	Quality    float64 `xml:"Quality"`
	Resolution struct {
		Width  int `xml:"Width"`
		Height int `xml:"Height"`
	} `xml:"Resolution"`
	RateControl *struct {
		FrameRateLimit   int `xml:"FrameRateLimit"`
		EncodingInterval int `xml:"EncodingInterval"`
		BitrateLimit     int `xml:"BitrateLimit"`
	} `xml:"RateControl"`
	Inner string `xml:",innerxml"`
}

type mediaURIResponse struct {
	MediaUri struct {
		Uri string `xml:"Uri"`
	} `xml:"MediaUri"`
}

type nodesResponse struct {
	PTZNode []struct {
		Token string `xml:"token,attr"`
		Name  string `xml:"Name"`
	} `xml:"PTZNode"`
}

type vectorXML struct {
	PanTilt *struct {
		X float64 `xml:"x,attr"`
		Y float64 `xml:"y,attr"`
	} `xml:"PanTilt"`
	Zoom *struct {
		X float64 `xml:"x,attr"`
	} `xml:"Zoom"`
}

type presetsResponse struct {
	Preset []struct {
		Token string `xml:"token,attr"`
		Name  string `xml:"Name"`
	} `xml:"Preset"`
}

type statusResponse struct {
	PTZStatus struct {
		Position   vectorXML `xml:"Position"`
		MoveStatus struct {
			PanTilt string `xml:"PanTilt"`
			Zoom    string `xml:"Zoom"`
		} `xml:"MoveStatus"`
	} `xml:"PTZStatus"`
}

type setPresetResponse struct {
	PresetToken string `xml:"PresetToken"`
}

// profile is one media profile as the adapter keeps it.
type profile struct {
	Token       string
	Name        string
	VSCToken    string // video source configuration
	SourceToken string // video source
	PTZNode     string
	Enc         encoder
	StreamURI   string
	SnapshotURI string
}

// encoder is a profile's video encoder configuration.
type encoder struct {
	Token      string
	Encoding   string
	Width      int
	Height     int
	Quality    float64
	FrameRate  int
	Bitrate    int // kbit/s
	RateCtl    bool
	GOP        int // group of pictures (GovLength); 0 unknown
	inner      string
	schemaPref string
	attrs      []xml.Attr // Media2: the configuration's attributes (GovLength, Profile) to send back
}

// profiles converts a GetProfiles response.
func (r *profilesResponse) profiles() []profile {
	out := make([]profile, 0, len(r.Profiles))
	for _, p := range r.Profiles {
		pr := profile{Token: p.Token, Name: strings.TrimSpace(p.Name)}
		if v := p.VideoSourceConfiguration; v != nil {
			pr.VSCToken, pr.SourceToken = v.Token, strings.TrimSpace(v.SourceToken)
		}
		if z := p.PTZConfiguration; z != nil {
			pr.PTZNode = strings.TrimSpace(z.NodeToken)
		}
		if e := p.VideoEncoderConfiguration; e != nil {
			pr.Enc = encoder{Token: e.Token, Encoding: strings.TrimSpace(e.Encoding), Width: e.Resolution.Width,
				Height: e.Resolution.Height, Quality: e.Quality, GOP: govLength(e.Inner), inner: e.Inner, schemaPref: prefixOf(e.Inner, "Name")}
			if rc := e.RateControl; rc != nil {
				pr.Enc.RateCtl, pr.Enc.FrameRate, pr.Enc.Bitrate = true, rc.FrameRateLimit, rc.BitrateLimit
			}
		}
		out = append(out, pr)
	}
	return out
}

// prefixOf finds the namespace prefix used on element local in raw XML.
func prefixOf(raw, local string) string {
	m := regexp.MustCompile(`<([A-Za-z_][\w.-]*):` + local + `[\s>]`).FindStringSubmatch(raw)
	if m == nil {
		return ""
	}
	return m[1]
}

// withRates rewrites an encoder configuration's inner XML with a new frame
// rate and bitrate, keeping everything else the camera sent.
func (e *encoder) withRates(frame, bitrate int) string {
	s := e.inner
	s = replaceText(s, "FrameRateLimit", strconv.Itoa(frame))
	s = replaceText(s, "BitrateLimit", strconv.Itoa(bitrate))
	return s
}

func replaceText(raw, local, value string) string {
	re := regexp.MustCompile(`(<(?:[\w.-]+:)?` + local + `>)[^<]*(</)`)
	return re.ReplaceAllString(raw, "${1}"+value+"${2}")
}

// rewriteHost replaces the scheme and host:port of addr with those of
// base, keeping addr's path and query. Empty or unparseable addresses come
// back unchanged.
func rewriteHost(addr string, base *url.URL) string {
	u, err := url.Parse(strings.TrimSpace(addr))
	if err != nil || u.Host == "" {
		return strings.TrimSpace(addr)
	}
	u.Scheme, u.Host = base.Scheme, base.Host
	return u.String()
}

// firstAddr takes the first of a space-separated list of addresses.
func firstAddr(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// services are the addresses of a camera's services.
type services struct {
	Device, Media, PTZ, Events string
	Media2                     string // the Media2 service; used in place of Media when set
}

// merge fills the addresses s lacks from o.
func (s services) merge(o services) services {
	for _, f := range []struct {
		dst *string
		src string
	}{{&s.Device, o.Device}, {&s.Media, o.Media}, {&s.PTZ, o.PTZ}, {&s.Events, o.Events}, {&s.Media2, o.Media2}} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
	return s
}

// fromCapabilities reads service addresses from GetCapabilities.
func (r *capabilitiesResponse) services() services {
	c := r.Capabilities
	return services{Device: firstAddr(c.Device.XAddr), Media: firstAddr(c.Media.XAddr), PTZ: firstAddr(c.PTZ.XAddr), Events: firstAddr(c.Events.XAddr),
		Media2: firstAddr(c.Extension.Media2.XAddr)}
}

// services reads service addresses from GetServices.
func (r *servicesResponse) services() services {
	var s services
	for _, v := range r.Service {
		ns, addr := strings.TrimSpace(v.Namespace), firstAddr(v.XAddr)
		switch ns {
		case "http://www.onvif.org/ver10/device/wsdl":
			s.Device = addr
		case "http://www.onvif.org/ver10/media/wsdl":
			s.Media = addr
		case nsMedia2:
			s.Media2 = addr
		case "http://www.onvif.org/ver20/ptz/wsdl":
			s.PTZ = addr
		case "http://www.onvif.org/ver10/events/wsdl":
			s.Events = addr
		}
	}
	return s
}
