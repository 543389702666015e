package onvif

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// The media service namespaces: Media1 (ver10) and Media2 (ver20).
const (
	nsMedia1 = "http://www.onvif.org/ver10/media/wsdl"
	nsMedia2 = "http://www.onvif.org/ver20/media/wsdl"
)

// encoding2 is the encoding of profile i's encoder as Media2 reports it:
// profile 1 is H.265, which Media1 cannot express (it reports H264, as
// many cameras do).
func encoding2(i int) string {
	if i == 0 {
		return "H265"
	}
	return "H264"
}

// media2Op serves an operation of the Media2 service.
func (c *Camera) media2Op(w http.ResponseWriter, op string, q *reqOp) {
	c.mu.Lock()
	c.counts["tr2:"+op]++
	c.mu.Unlock()
	base := c.advertised()
	switch op {
	case "GetProfiles":
		writeOK(w, `<tr2:GetProfilesResponse>`+c.profiles2XML(q.Type)+`</tr2:GetProfilesResponse>`)
	case "GetStreamUri":
		i, ok := c.profileIndex(q.ProfileToken)
		if !ok {
			writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoProfile", "no such profile")
			return
		}
		if p := strings.ToUpper(strings.TrimSpace(q.Protocol)); p != "RTSP" && p != "RTSPUNICAST" {
			writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:InvalidStreamSetup", "protocol "+esc(q.Protocol)+" is not supported")
			return
		}
		host := strings.TrimPrefix(base, "http://")
		h, _, _ := strings.Cut(host, ":")
		writeOK(w, fmt.Sprintf(`<tr2:GetStreamUriResponse><tr2:Uri>rtsp://%s:554/stream%d</tr2:Uri></tr2:GetStreamUriResponse>`, h, i+1))
	case "GetSnapshotUri":
		if _, ok := c.profileIndex(q.ProfileToken); !ok {
			writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoProfile", "no such profile")
			return
		}
		writeOK(w, `<tr2:GetSnapshotUriResponse><tr2:Uri>`+base+`/snapshot.jpg</tr2:Uri></tr2:GetSnapshotUriResponse>`)
	case "GetVideoEncoderConfigurations":
		only := -1
		switch {
		case q.ConfigurationToken != "":
			var i int
			if _, err := fmt.Sscanf(q.ConfigurationToken, "enc_%d", &i); err != nil || i < 1 || i > c.cfg.Profiles {
				writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoConfig", "no such configuration")
				return
			}
			only = i - 1
		case q.ProfileToken != "":
			i, ok := c.profileIndex(q.ProfileToken)
			if !ok {
				writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoProfile", "no such profile")
				return
			}
			only = i
		}
		var b strings.Builder
		c.mu.Lock()
		for i := 0; i < c.cfg.Profiles; i++ {
			if only < 0 || only == i {
				b.WriteString(c.encoder2XMLLocked("Configurations", i))
			}
		}
		c.mu.Unlock()
		writeOK(w, `<tr2:GetVideoEncoderConfigurationsResponse>`+b.String()+`</tr2:GetVideoEncoderConfigurationsResponse>`)
	case "SetVideoEncoderConfiguration":
		c.setEncoder(w, q, `<tr2:SetVideoEncoderConfigurationResponse/>`)
	default:
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:ActionNotSupported", op+" is not supported")
	}
}

// profiles2XML lists the profiles with the configurations of the types
// asked for ("All", or "VideoSource", "VideoEncoder", "PTZ"; none gives
// tokens and names only).
func (c *Camera) profiles2XML(types []string) string {
	want := func(t string) bool { return slices.Contains(types, "All") || slices.Contains(types, t) }
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for i := 0; i < c.cfg.Profiles; i++ {
		fmt.Fprintf(&b, `<tr2:Profiles token="profile_%d" fixed="true"><tr2:Name>Profile %d</tr2:Name><tr2:Configurations>`, i+1, i+1)
		if want("VideoSource") {
			fmt.Fprintf(&b, `<tr2:VideoSource token="vsc_1"><tt:Name>vsc</tt:Name><tt:UseCount>%d</tt:UseCount><tt:SourceToken>vs1</tt:SourceToken><tt:Bounds x="0" y="0" width="1920" height="1080"/></tr2:VideoSource>`, c.cfg.Profiles)
		}
		if want("VideoEncoder") {
			b.WriteString(c.encoder2XMLLocked("VideoEncoder", i))
		}
		if want("PTZ") && !c.cfg.NoPTZ && i == 0 {
			b.WriteString(`<tr2:PTZ token="ptzc_1"><tt:Name>ptz</tt:Name><tt:UseCount>1</tt:UseCount><tt:NodeToken>node_1</tt:NodeToken></tr2:PTZ>`)
		}
		b.WriteString(`</tr2:Configurations></tr2:Profiles>`)
	}
	return b.String()
}

// encoder2XMLLocked is profile i's encoder as a VideoEncoderConfiguration2
// in element tr2:elem.
func (c *Camera) encoder2XMLLocked(elem string, i int) string {
	wd, ht := 1920/(i+1), 1080/(i+1)
	return fmt.Sprintf(`<tr2:%s token="enc_%d" GovLength="50" Profile="Main"><tt:Name>enc %d</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>%s</tt:Encoding><tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>%d</tt:FrameRateLimit><tt:BitrateLimit>%d</tt:BitrateLimit></tt:RateControl><tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:Quality>5</tt:Quality></tr2:%s>`,
		elem, i+1, i+1, encoding2(i), wd, ht, c.frame[i], c.bitrate[i], elem)
}

// setEncoder applies SetVideoEncoderConfiguration, of Media1 or Media2
// (the same token, frame rate and bitrate), and answers ok.
func (c *Camera) setEncoder(w http.ResponseWriter, q *reqOp, ok string) {
	var i int
	if _, err := fmt.Sscanf(q.Configuration.Token, "enc_%d", &i); err != nil || i < 1 || i > c.cfg.Profiles {
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoConfig", "no such configuration")
		return
	}
	fr, br := q.Configuration.RateControl.FrameRateLimit, q.Configuration.RateControl.BitrateLimit
	if fr < 1 || fr > 30 || br < 64 || br > 16384 {
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:ConfigModify", "value out of range")
		return
	}
	c.mu.Lock()
	c.frame[i-1], c.bitrate[i-1] = fr, br
	c.mu.Unlock()
	writeOK(w, ok)
}
