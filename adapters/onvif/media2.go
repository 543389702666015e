package onvif

import (
	"context"
	"encoding/xml"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
)

// Media2 (the media service of ONVIF Profile T, namespace nsMedia2) is
// used in place of Media1 when the camera lists it: cameras that encode
// H.265 report those encoders only there. The model is the same either
// way; only the calls differ:
//
//	profiles          GetProfiles (Type All)           tr2:Profiles/tr2:Configurations/{VideoSource,VideoEncoder,PTZ}
//	stream URI        GetStreamUri (Protocol RTSP)     tr2:Uri
//	snapshot URI      GetSnapshotUri                   tr2:Uri
//	encoder settings  GetVideoEncoderConfigurations    tr2:Configurations (GovLength as an attribute)
//	frame rate, rate  SetVideoEncoderConfiguration     tr2:Configuration, as the camera sent it but the rates
//
// A camera that lists Media2 but answers its GetProfiles with a SOAP fault
// is served through Media1 when it has that.

// nsMedia2 is the namespace of the Media2 service.
const nsMedia2 = "http://www.onvif.org/ver20/media/wsdl"

// The requests. Package soap declares no prefix for Media2 and derives no
// action for it: each request declares tr2 itself, and call2 names the
// action.
type (
	media2GetProfiles struct {
		XMLName struct{} `xml:"tr2:GetProfiles"`
		NS      string   `xml:"xmlns:tr2,attr"`
		Type    []string `xml:"tr2:Type"`
	}
	media2GetStreamURI struct {
		XMLName      struct{} `xml:"tr2:GetStreamUri"`
		NS           string   `xml:"xmlns:tr2,attr"`
		Protocol     string   `xml:"tr2:Protocol"`
		ProfileToken string   `xml:"tr2:ProfileToken"`
	}
	media2GetSnapshotURI struct {
		XMLName      struct{} `xml:"tr2:GetSnapshotUri"`
		NS           string   `xml:"xmlns:tr2,attr"`
		ProfileToken string   `xml:"tr2:ProfileToken"`
	}
	media2GetVideoEncoderConfigurations struct {
		XMLName            struct{} `xml:"tr2:GetVideoEncoderConfigurations"`
		NS                 string   `xml:"xmlns:tr2,attr"`
		ConfigurationToken string   `xml:"tr2:ConfigurationToken,omitempty"`
		ProfileToken       string   `xml:"tr2:ProfileToken,omitempty"`
	}
	media2SetVideoEncoderConfiguration struct {
		XMLName       struct{} `xml:"tr2:SetVideoEncoderConfiguration"`
		NS            string   `xml:"xmlns:tr2,attr"`
		Configuration rawConfig2
	}
	rawConfig2 struct {
		XMLName struct{}   `xml:"tr2:Configuration"`
		Token   string     `xml:"token,attr"`
		Attrs   []xml.Attr `xml:",any,attr"`
		Inner   string     `xml:",innerxml"`
	}
)

// The responses, matched by local name.
type (
	profiles2Response struct {
		Profiles []profile2XML `xml:"Profiles"`
	}
	profile2XML struct {
		Token          string `xml:"token,attr"`
		Name           string `xml:"Name"`
		Configurations struct {
			VideoSource *struct {
				Token       string `xml:"token,attr"`
				SourceToken string `xml:"SourceToken"`
			} `xml:"VideoSource"`
			VideoEncoder *encoder2XML `xml:"VideoEncoder"`
			PTZ          *struct {
				Token     string `xml:"token,attr"`
				NodeToken string `xml:"NodeToken"`
			} `xml:"PTZ"`
		} `xml:"Configurations"`
	}
	// encoder2XML is a VideoEncoderConfiguration2. Its GovLength and
	// Profile are attributes, kept with any others to be sent back.
	encoder2XML struct {
		Token      string     `xml:"token,attr"`
		Attrs      []xml.Attr `xml:",any,attr"`
		Encoding   string     `xml:"Encoding"`
		Quality    string     `xml:"Quality"`
		Resolution struct {
			Width  int `xml:"Width"`
			Height int `xml:"Height"`
		} `xml:"Resolution"`
		RateControl *struct {
			FrameRateLimit string `xml:"FrameRateLimit"` // xs:float here
			BitrateLimit   int    `xml:"BitrateLimit"`
		} `xml:"RateControl"`
		Inner string `xml:",innerxml"`
	}
	encoders2Response struct {
		Configurations []encoder2XML `xml:"Configurations"`
	}
	media2URIResponse struct {
		URI string `xml:"Uri"`
	}
)

// encoder converts a Media2 encoder configuration.
func (e *encoder2XML) encoder() encoder {
	out := encoder{Token: e.Token, Encoding: strings.TrimSpace(e.Encoding), Width: e.Resolution.Width, Height: e.Resolution.Height,
		inner: e.Inner, schemaPref: prefixOf(e.Inner, "Name")}
	out.Quality, _ = strconv.ParseFloat(strings.TrimSpace(e.Quality), 64)
	for _, a := range e.Attrs {
		if a.Name.Space != "" || a.Name.Local == "token" {
			continue
		}
		out.attrs = append(out.attrs, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
		if a.Name.Local == "GovLength" {
			out.GOP, _ = strconv.Atoi(strings.TrimSpace(a.Value))
		}
	}
	if rc := e.RateControl; rc != nil {
		f, _ := strconv.ParseFloat(strings.TrimSpace(rc.FrameRateLimit), 64)
		out.RateCtl, out.FrameRate, out.Bitrate = true, int(math.Round(f)), rc.BitrateLimit
	}
	return out
}

// profiles converts a Media2 GetProfiles response.
func (r *profiles2Response) profiles() []profile {
	out := make([]profile, 0, len(r.Profiles))
	for _, p := range r.Profiles {
		pr := profile{Token: p.Token, Name: strings.TrimSpace(p.Name)}
		c := p.Configurations
		if v := c.VideoSource; v != nil {
			pr.VSCToken, pr.SourceToken = v.Token, strings.TrimSpace(v.SourceToken)
		}
		if z := c.PTZ; z != nil {
			pr.PTZNode = strings.TrimSpace(z.NodeToken)
		}
		if e := c.VideoEncoder; e != nil {
			pr.Enc = e.encoder()
		}
		out = append(out, pr)
	}
	return out
}

// govLength reads the GovLength element of a Media1 encoder configuration
// (in its H264 or MPEG4 part); 0 when it has none.
func govLength(raw string) int {
	m := govLengthRE.FindStringSubmatch(raw)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var govLengthRE = regexp.MustCompile(`<(?:[\w.-]+:)?GovLength>\s*(\d+)\s*<`)

// call2 calls a Media2 operation, naming its action.
func (k *camera) call2(ctx context.Context, name string, req, resp any) error {
	if k.svc.Media2 == "" {
		return &callError{Call: "Media2 " + name, Err: errNoService}
	}
	if err := k.c.Do(ctx, soap.Request{URL: k.svc.Media2, Body: req, Action: nsMedia2 + "/" + name}, resp); err != nil {
		return &callError{Call: "Media2 " + name, Err: err}
	}
	return nil
}

// media2Profiles reads the profiles, with their stream and snapshot URIs,
// through Media2. It returns nil and no error when the camera has no
// Media2, or when it refuses Media2's GetProfiles with a fault and has
// Media1 (the camera is then served through Media1).
func (k *camera) media2Profiles(ctx context.Context, rewrite bool) ([]profile, error) {
	if k.svc.Media2 == "" {
		return nil, nil
	}
	var pr profiles2Response
	if err := k.call2(ctx, "GetProfiles", media2GetProfiles{NS: nsMedia2, Type: []string{"All"}}, &pr); err != nil {
		if isFault(err) && !errors.Is(err, soap.ErrUnauthorized) && k.svc.Media != "" {
			k.svc.Media2 = ""
			return nil, nil
		}
		return nil, err
	}
	profiles := pr.profiles()
	for i := range profiles {
		p := &profiles[i]
		if p.Enc.Token == "" {
			continue
		}
		var su media2URIResponse
		if err := k.call2(ctx, "GetStreamUri", media2GetStreamURI{NS: nsMedia2, Protocol: "RTSP", ProfileToken: p.Token}, &su); err != nil {
			return nil, err
		}
		p.StreamURI = strings.TrimSpace(su.URI)
		var sn media2URIResponse
		if err := k.call2(ctx, "GetSnapshotUri", media2GetSnapshotURI{NS: nsMedia2, ProfileToken: p.Token}, &sn); err == nil {
			p.SnapshotURI = strings.TrimSpace(sn.URI)
			if rewrite {
				p.SnapshotURI = rewriteHost(p.SnapshotURI, k.base)
			}
		} else if !isFault(err) {
			return nil, err
		}
	}
	return profiles, nil
}

// readEncoders2 reads every encoder configuration through Media2 and
// records those of the known profiles.
func (k *camera) readEncoders2(ctx context.Context) error {
	var r encoders2Response
	if err := k.call2(ctx, "GetVideoEncoderConfigurations", media2GetVideoEncoderConfigurations{NS: nsMedia2}, &r); err != nil {
		return err
	}
	byToken := make(map[string]encoder, len(r.Configurations))
	for _, e := range r.Configurations {
		byToken[e.Token] = e.encoder()
	}
	var fresh []profile
	for _, p := range k.profiles {
		if e, ok := byToken[p.Enc.Token]; ok && p.Enc.Token != "" {
			fresh = append(fresh, profile{Token: p.Token, Enc: e})
		}
	}
	k.updateEncoders(fresh)
	return nil
}

// setEncoder2 writes an encoder's frame rate and bitrate through Media2,
// keeping the rest of the configuration as the camera sent it.
func (k *camera) setEncoder2(ctx context.Context, e encoder, frame, bitrate int) error {
	req := media2SetVideoEncoderConfiguration{NS: nsMedia2, Configuration: rawConfig2{Token: e.Token, Inner: e.withRates(frame, bitrate)}}
	req.Configuration.Attrs = append(req.Configuration.Attrs, e.attrs...)
	pref := e.schemaPref
	if pref == "" {
		pref = "tt"
	}
	req.Configuration.Attrs = append(req.Configuration.Attrs, xmlnsAttr(pref, soap.Namespaces["tt"]))
	return k.call2(ctx, "SetVideoEncoderConfiguration", req, nil)
}
