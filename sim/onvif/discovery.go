package onvif

import (
	"context"
	"crypto/sha1"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DiscoveryGroup is WS-Discovery's IPv4 multicast address and port.
var DiscoveryGroup = &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}

// ListenDiscovery joins the WS-Discovery group on ifi (nil: the system's
// choice). Only tests inside a private network namespace should call it.
// It returns the error of joining the group.
func ListenDiscovery(ifi *net.Interface) (*net.UDPConn, error) {
	return net.ListenMulticastUDP("udp4", ifi, DiscoveryGroup)
}

type probeXML struct {
	Header struct {
		MessageID string `xml:"MessageID"`
	} `xml:"Header"`
	Body struct {
		Probe *struct{} `xml:"Probe"`
	} `xml:"Body"`
}

// EndpointID returns the camera's endpoint reference, derived from its
// serial number.
func (c *Camera) EndpointID() string {
	h := sha1.Sum([]byte(c.cfg.Serial))
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// ServeDiscovery answers WS-Discovery probes arriving on conn with the
// camera's ProbeMatches, until ctx ends; it closes conn. It returns nil
// when ctx ends or conn is closed, and the read error otherwise.
func (c *Camera) ServeDiscovery(ctx context.Context, conn *net.UDPConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		var p probeXML
		if xml.Unmarshal(buf[:n], &p) != nil || p.Body.Probe == nil {
			continue
		}
		scopes := []string{
			"onvif://www.onvif.org/type/video_encoder",
			"onvif://www.onvif.org/Profile/Streaming",
			"onvif://www.onvif.org/name/" + url.PathEscape(c.cfg.Name),
			"onvif://www.onvif.org/hardware/SIM-HW-1",
			"onvif://www.onvif.org/location/" + url.PathEscape("Lab bench"),
		}
		msg := `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action><a:RelatesTo>` +
			esc(p.Header.MessageID) + `</a:RelatesTo></s:Header><s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>` + esc(c.EndpointID()) +
			`</a:Address></a:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types><d:Scopes>` + esc(strings.Join(scopes, " ")) +
			`</d:Scopes><d:XAddrs>` + esc(c.URL()) + `</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>`
		if _, err := conn.WriteToUDP([]byte(msg), from); err != nil && ctx.Err() != nil {
			return nil
		}
	}
}
