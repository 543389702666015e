package onvif

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (c *Camera) dispatch(w http.ResponseWriter, r *http.Request, op string, q *reqOp) {
	base := c.advertised()
	switch q.XMLName.Space {
	case nsMedia2:
		if c.cfg.Media == Media1 {
			writeFault(w, http.StatusBadRequest, "env:Sender", "ter:ActionNotSupported", "Media2 is not offered")
			return
		}
		c.media2Op(w, op, q)
		return
	case nsMedia1:
		if c.cfg.Media == Media2 {
			writeFault(w, http.StatusBadRequest, "env:Sender", "ter:ActionNotSupported", "Media1 is not offered")
			return
		}
	}
	switch op {
	case "GetSystemDateAndTime":
		t := c.now().UTC()
		writeOK(w, fmt.Sprintf(`<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
			t.Hour(), t.Minute(), t.Second(), t.Year(), int(t.Month()), t.Day()))
	case "SetSystemDateAndTime":
		writeOK(w, `<tds:SetSystemDateAndTimeResponse/>`)
	case "GetDeviceInformation":
		writeOK(w, fmt.Sprintf(`<tds:GetDeviceInformationResponse><tds:Manufacturer>OSAPGW Simulators</tds:Manufacturer><tds:Model>%s</tds:Model><tds:FirmwareVersion>1.2.3</tds:FirmwareVersion><tds:SerialNumber>%s</tds:SerialNumber><tds:HardwareId>SIM-HW-1</tds:HardwareId></tds:GetDeviceInformationResponse>`, esc(c.cfg.Name), esc(c.cfg.Serial)))
	case "GetCapabilities":
		ptz := ""
		if !c.cfg.NoPTZ {
			ptz = `<tt:PTZ><tt:XAddr>` + base + `/onvif/ptz_service</tt:XAddr></tt:PTZ>`
		}
		media := `<tt:Media><tt:XAddr>` + base + `/onvif/media_service</tt:XAddr></tt:Media>`
		if c.cfg.Media == Media2 {
			media = "" // GetCapabilities has no standard place for Media2
		}
		writeOK(w, `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>`+base+`/onvif/device_service</tt:XAddr></tt:Device><tt:Events><tt:XAddr>`+base+`/onvif/events_service</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport><tt:WSPullPointSupport>true</tt:WSPullPointSupport></tt:Events>`+media+ptz+`</tds:Capabilities></tds:GetCapabilitiesResponse>`)
	case "GetServices":
		s := `<tds:GetServicesResponse>`
		svc := [][2]string{{"http://www.onvif.org/ver10/device/wsdl", "device_service"}, {"http://www.onvif.org/ver10/events/wsdl", "events_service"}}
		if c.cfg.Media != Media2 {
			svc = append(svc, [2]string{nsMedia1, "media_service"})
		}
		if c.cfg.Media != Media1 {
			svc = append(svc, [2]string{nsMedia2, "media2_service"})
		}
		if !c.cfg.NoPTZ {
			svc = append(svc, [2]string{"http://www.onvif.org/ver20/ptz/wsdl", "ptz_service"})
		}
		for _, v := range svc {
			s += `<tds:Service><tds:Namespace>` + v[0] + `</tds:Namespace><tds:XAddr>` + base + `/onvif/` + v[1] + `</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>`
		}
		writeOK(w, s+`</tds:GetServicesResponse>`)
	case "SystemReboot":
		c.mu.Lock()
		c.rebooted++
		c.mu.Unlock()
		writeOK(w, `<tds:SystemRebootResponse><tds:Message>Rebooting in 30 seconds</tds:Message></tds:SystemRebootResponse>`)
	case "GetProfiles":
		writeOK(w, `<trt:GetProfilesResponse>`+c.profilesXML()+`</trt:GetProfilesResponse>`)
	case "GetStreamUri":
		i, ok := c.profileIndex(q.ProfileToken)
		if !ok {
			writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoProfile", "no such profile")
			return
		}
		host := strings.TrimPrefix(base, "http://")
		h, _, _ := strings.Cut(host, ":")
		writeOK(w, fmt.Sprintf(`<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://%s:554/stream%d</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>`, h, i+1))
	case "GetSnapshotUri":
		if _, ok := c.profileIndex(q.ProfileToken); !ok {
			writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoProfile", "no such profile")
			return
		}
		writeOK(w, `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>`+base+`/snapshot.jpg</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>`)
	case "SetVideoEncoderConfiguration":
		c.setEncoder(w, q, `<trt:SetVideoEncoderConfigurationResponse/>`)
	default:
		if strings.HasPrefix(r.URL.Path, "/onvif/ptz_service") && !c.cfg.NoPTZ {
			c.ptzOp(w, op, q)
			return
		}
		c.eventOp(w, r, op, q)
	}
}

func (c *Camera) profilesXML() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for i := 0; i < c.cfg.Profiles; i++ {
		wd, ht := 1920/(i+1), 1080/(i+1)
		fmt.Fprintf(&b, `<trt:Profiles fixed="true" token="profile_%d"><tt:Name>Profile %d</tt:Name><tt:VideoSourceConfiguration token="vsc_1"><tt:Name>vsc</tt:Name><tt:UseCount>%d</tt:UseCount><tt:SourceToken>vs1</tt:SourceToken><tt:Bounds x="0" y="0" width="1920" height="1080"/></tt:VideoSourceConfiguration>`, i+1, i+1, c.cfg.Profiles)
		fmt.Fprintf(&b, `<tt:VideoEncoderConfiguration token="enc_%d"><tt:Name>enc %d</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>%d</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>%d</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>50</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264><tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>`, i+1, i+1, wd, ht, c.frame[i], c.bitrate[i])
		if !c.cfg.NoPTZ && i == 0 {
			b.WriteString(`<tt:PTZConfiguration token="ptzc_1"><tt:Name>ptz</tt:Name><tt:UseCount>1</tt:UseCount><tt:NodeToken>node_1</tt:NodeToken></tt:PTZConfiguration>`)
		}
		b.WriteString(`</trt:Profiles>`)
	}
	return b.String()
}

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

// positionLocked moves the head by its velocity since the last change.
func (c *Camera) positionLocked(now time.Time) (float64, float64, float64) {
	p := &c.ptz
	if !p.until.IsZero() && now.After(p.until) {
		now = p.until
	}
	dt := max(0, now.Sub(p.since).Seconds())
	return clamp(p.pan+p.vpan*dt, -1, 1), clamp(p.tilt+p.vtilt*dt, -1, 1), clamp(p.zoom+p.vzoom*dt, 0, 1)
}

func (c *Camera) settleLocked(now time.Time) {
	c.ptz.pan, c.ptz.tilt, c.ptz.zoom = c.positionLocked(now)
	c.ptz.since = now
	if !c.ptz.until.IsZero() && now.After(c.ptz.until) {
		c.ptz.vpan, c.ptz.vtilt, c.ptz.vzoom, c.ptz.until = 0, 0, 0, time.Time{}
	}
}

func (c *Camera) ptzOp(w http.ResponseWriter, op string, q *reqOp) {
	if op != "GetNodes" && op != "GetNode" && q.ProfileToken != "profile_1" {
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoProfile", "no PTZ on this profile")
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch op {
	case "GetNodes":
		writeOK(w, `<tptz:GetNodesResponse><tptz:PTZNode token="node_1" FixedHomePosition="false"><tt:Name>Head</tt:Name><tt:SupportedPTZSpaces></tt:SupportedPTZSpaces><tt:MaximumNumberOfPresets>16</tt:MaximumNumberOfPresets><tt:HomeSupported>true</tt:HomeSupported></tptz:PTZNode></tptz:GetNodesResponse>`)
	case "GetStatus":
		p, t, z := c.positionLocked(now)
		c.settleLocked(now)
		moving := "IDLE"
		if c.ptz.vpan != 0 || c.ptz.vtilt != 0 || c.ptz.vzoom != 0 {
			moving = "MOVING"
		}
		writeOK(w, fmt.Sprintf(`<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position><tt:PanTilt x="%g" y="%g" space="http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"/><tt:Zoom x="%g" space="http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"/></tt:Position><tt:MoveStatus><tt:PanTilt>%s</tt:PanTilt><tt:Zoom>%s</tt:Zoom></tt:MoveStatus><tt:UtcTime>%s</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>`, p, t, z, moving, moving, now.UTC().Format(tsLayout)))
	case "ContinuousMove":
		c.settleLocked(now)
		if v := q.Velocity.PanTilt; v != nil {
			c.ptz.vpan, c.ptz.vtilt = clamp(v.X, -1, 1), clamp(v.Y, -1, 1)
		}
		if v := q.Velocity.Zoom; v != nil {
			c.ptz.vzoom = clamp(v.X, -1, 1)
		}
		c.ptz.until = time.Time{}
		if d := parseDuration(q.Timeout); d > 0 {
			c.ptz.until = now.Add(d)
		}
		writeOK(w, `<tptz:ContinuousMoveResponse/>`)
	case "Stop":
		c.settleLocked(now)
		c.ptz.vpan, c.ptz.vtilt, c.ptz.vzoom = 0, 0, 0
		writeOK(w, `<tptz:StopResponse/>`)
	case "AbsoluteMove":
		c.settleLocked(now)
		c.ptz.vpan, c.ptz.vtilt, c.ptz.vzoom = 0, 0, 0
		if v := q.Position.PanTilt; v != nil {
			c.ptz.pan, c.ptz.tilt = clamp(v.X, -1, 1), clamp(v.Y, -1, 1)
		}
		if v := q.Position.Zoom; v != nil {
			c.ptz.zoom = clamp(v.X, 0, 1)
		}
		writeOK(w, `<tptz:AbsoluteMoveResponse/>`)
	case "RelativeMove":
		c.settleLocked(now)
		c.ptz.vpan, c.ptz.vtilt, c.ptz.vzoom = 0, 0, 0
		if v := q.Translation.PanTilt; v != nil {
			c.ptz.pan, c.ptz.tilt = clamp(c.ptz.pan+v.X, -1, 1), clamp(c.ptz.tilt+v.Y, -1, 1)
		}
		if v := q.Translation.Zoom; v != nil {
			c.ptz.zoom = clamp(c.ptz.zoom+v.X, 0, 1)
		}
		writeOK(w, `<tptz:RelativeMoveResponse/>`)
	case "GetPresets":
		var b strings.Builder
		for _, p := range c.presets {
			fmt.Fprintf(&b, `<tptz:Preset token="%s"><tt:Name>%s</tt:Name><tt:PTZPosition><tt:PanTilt x="%g" y="%g"/><tt:Zoom x="%g"/></tt:PTZPosition></tptz:Preset>`, esc(p.token), esc(p.name), p.pan, p.tilt, p.zoom)
		}
		writeOK(w, `<tptz:GetPresetsResponse>`+b.String()+`</tptz:GetPresetsResponse>`)
	case "SetPreset":
		p, t, z := c.positionLocked(now)
		tok := q.PresetToken
		if tok == "" {
			tok = strconv.Itoa(len(c.presets) + 1)
		}
		name := q.PresetName
		if name == "" {
			name = "Preset " + tok
		}
		found := false
		for i := range c.presets {
			if c.presets[i].token == tok {
				c.presets[i] = preset{tok, name, p, t, z}
				found = true
			}
		}
		if !found {
			if len(c.presets) >= 16 {
				writeFault(w, http.StatusBadRequest, "env:Receiver", "ter:Action/ter:TooManyPresets", "too many presets")
				return
			}
			c.presets = append(c.presets, preset{tok, name, p, t, z})
		}
		writeOK(w, `<tptz:SetPresetResponse><tptz:PresetToken>`+esc(tok)+`</tptz:PresetToken></tptz:SetPresetResponse>`)
	case "GotoPreset":
		for _, p := range c.presets {
			if p.token == q.PresetToken {
				c.ptz = ptzState{pan: p.pan, tilt: p.tilt, zoom: p.zoom, since: now}
				writeOK(w, `<tptz:GotoPresetResponse/>`)
				return
			}
		}
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:InvalidArgVal/ter:NoToken", "no such preset")
	default:
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:ActionNotSupported", op+" is not supported")
	}
}

// eventOp serves the event service and the subscriptions.
func (c *Camera) eventOp(w http.ResponseWriter, r *http.Request, op string, q *reqOp) {
	now := time.Now()
	switch op {
	case "CreatePullPointSubscription":
		c.mu.Lock()
		c.nextSub++
		id := strconv.Itoa(c.nextSub)
		s := &subscription{id: id, termination: now.Add(c.cfg.SubscriptionTTL), wake: make(chan struct{}, 1)}
		s.queue = append(s.queue, c.motionNotes("Initialized", now)...)
		s.queue = append(s.queue, c.inputNote("Initialized", now))
		c.subs[id] = s
		c.mu.Unlock()
		addr := c.advertised() + "/onvif/subscription/" + id
		writeOK(w, `<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa:Address>`+addr+`</wsa:Address></tev:SubscriptionReference><wsnt:CurrentTime>`+c.now().UTC().Format(tsLayout)+`</wsnt:CurrentTime><wsnt:TerminationTime>`+c.now().Add(c.cfg.SubscriptionTTL).UTC().Format(tsLayout)+`</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>`)
		return
	case "PullMessages", "Renew", "Unsubscribe":
	default:
		writeFault(w, http.StatusBadRequest, "env:Sender", "ter:ActionNotSupported", op+" is not supported")
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/onvif/subscription/")
	c.mu.Lock()
	s, ok := c.subs[id]
	if ok && now.After(s.termination) {
		delete(c.subs, id)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		writeFault(w, http.StatusBadRequest, "env:Sender", "wsrf-rw:ResourceUnknownFault", "no such subscription")
		return
	}
	switch op {
	case "Renew":
		c.mu.Lock()
		s.termination = now.Add(c.cfg.SubscriptionTTL)
		c.mu.Unlock()
		writeOK(w, `<wsnt:RenewResponse><wsnt:TerminationTime>`+c.now().Add(c.cfg.SubscriptionTTL).UTC().Format(tsLayout)+`</wsnt:TerminationTime><wsnt:CurrentTime>`+c.now().UTC().Format(tsLayout)+`</wsnt:CurrentTime></wsnt:RenewResponse>`)
	case "Unsubscribe":
		c.mu.Lock()
		if _, ok := c.subs[id]; ok {
			delete(c.subs, id)
			close(s.wake)
		}
		c.mu.Unlock()
		writeOK(w, `<wsnt:UnsubscribeResponse/>`)
	case "PullMessages":
		timeout := parseDuration(q.Timeout)
		if timeout <= 0 || timeout > 30*time.Second {
			timeout = 10 * time.Second
		}
		limit := q.MessageLimit
		if limit <= 0 {
			limit = 100
		}
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		for {
			c.mu.Lock()
			_, alive := c.subs[id]
			n := len(s.queue)
			c.mu.Unlock()
			if !alive {
				writeFault(w, http.StatusBadRequest, "env:Sender", "wsrf-rw:ResourceUnknownFault", "subscription dropped")
				return
			}
			if n > 0 {
				break
			}
			select {
			case <-s.wake:
				continue
			case <-deadline.C:
			case <-r.Context().Done():
				return
			}
			break
		}
		c.mu.Lock()
		k := min(limit, len(s.queue))
		batch := append([]notification(nil), s.queue[:k]...)
		s.queue = s.queue[k:]
		term := s.termination.Add(c.cfg.ClockSkew)
		c.mu.Unlock()
		var b strings.Builder
		b.WriteString(`<tev:PullMessagesResponse><tev:CurrentTime>` + c.now().UTC().Format(tsLayout) + `</tev:CurrentTime><tev:TerminationTime>` + term.UTC().Format(tsLayout) + `</tev:TerminationTime>`)
		for _, n := range batch {
			b.WriteString(`<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">` + esc(n.topic) + `</wsnt:Topic><wsnt:Message><tt:Message UtcTime="` + n.at.Add(c.cfg.ClockSkew).UTC().Format("2006-01-02T15:04:05.000Z") + `" PropertyOperation="` + n.op + `"><tt:Source>`)
			for _, it := range n.source {
				b.WriteString(`<tt:SimpleItem Name="` + esc(it[0]) + `" Value="` + esc(it[1]) + `"/>`)
			}
			b.WriteString(`</tt:Source><tt:Data>`)
			for _, it := range n.data {
				b.WriteString(`<tt:SimpleItem Name="` + esc(it[0]) + `" Value="` + esc(it[1]) + `"/>`)
			}
			b.WriteString(`</tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>`)
		}
		writeOK(w, b.String()+`</tev:PullMessagesResponse>`)
	}
}

// parseDuration parses the xs:duration forms cameras use (PT10S, PT1M,
// PT1.5S).
func parseDuration(s string) time.Duration {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "PT") {
		return 0
	}
	s = s[2:]
	var d time.Duration
	for s != "" {
		i := strings.IndexAny(s, "HMS")
		if i <= 0 {
			return 0
		}
		f, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0
		}
		unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}[s[i]]
		d += time.Duration(f * float64(unit))
		s = s[i+1:]
	}
	return d
}

// tsLayout is the xs:dateTime form the camera writes (milliseconds, UTC).
const tsLayout = "2006-01-02T15:04:05.000Z07:00"
