package onvif

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
)

// DiscoveryGroup is WS-Discovery's IPv4 multicast address and port.
var DiscoveryGroup = &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}

// Found is a camera that answered a WS-Discovery probe.
type Found struct {
	// Endpoint is the endpoint reference (urn:uuid:...), stable across
	// address changes.
	Endpoint string
	// XAddrs are the device service addresses the camera announces.
	XAddrs []string
	// Types are the announced types (dn:NetworkVideoTransmitter ...).
	Types []string
	// Scopes are all announced scopes.
	Scopes []string
	// Name, Hardware and Location come from the onvif://www.onvif.org/
	// name/, hardware/ and location/ scopes (URL-decoded).
	Name, Hardware, Location string
}

type probeMatchesXML struct {
	ProbeMatch []struct {
		EndpointReference struct {
			Address string `xml:"Address"`
		} `xml:"EndpointReference"`
		Types  string `xml:"Types"`
		Scopes string `xml:"Scopes"`
		XAddrs string `xml:"XAddrs"`
	} `xml:"ProbeMatch"`
}

// ParseProbeMatches parses a ProbeMatches message. It needs no
// credentials: everything comes from the announcement. A SOAP fault is
// returned as a *soap.Fault; anything not a SOAP envelope, as an error
// wrapping soap.ErrMalformed.
func ParseProbeMatches(data []byte) ([]Found, error) {
	var pm probeMatchesXML
	fault, err := soap.Decode(data, &pm)
	if fault != nil {
		return nil, fault
	}
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, m := range pm.ProbeMatch {
		f := Found{Endpoint: strings.TrimSpace(m.EndpointReference.Address), XAddrs: strings.Fields(m.XAddrs),
			Types: strings.Fields(m.Types), Scopes: strings.Fields(m.Scopes)}
		for _, s := range f.Scopes {
			rest, ok := strings.CutPrefix(s, "onvif://www.onvif.org/")
			if !ok {
				continue
			}
			kind, val, _ := strings.Cut(rest, "/")
			if v, err := url.PathUnescape(val); err == nil {
				val = v
			}
			switch strings.ToLower(kind) {
			case "name":
				f.Name = val
			case "hardware":
				f.Hardware = val
			case "location":
				f.Location = val
			}
		}
		if f.Endpoint == "" && len(f.XAddrs) == 0 {
			continue
		}
		out = append(out, f)
	}
	if len(pm.ProbeMatch) > 0 && len(out) == 0 {
		return nil, errors.New("probe matches without endpoint or address")
	}
	return out, nil
}

// probeMessage is a WS-Discovery Probe for ONVIF devices.
func probeMessage(id string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>urn:uuid:` + id + `</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>`)
}

// Discover sends WS-Discovery probes on the interface named iface (the
// system's choice when empty) and collects the cameras that answer within
// timeout, one per endpoint, sorted by address. The probe goes to the
// multicast group with TTL 1: it does not leave the local network. It
// returns an error when the interface does not exist or the probe cannot
// be sent; answers that do not parse are skipped.
func Discover(ctx context.Context, iface string, timeout time.Duration) ([]Found, error) {
	var ifi *net.Interface
	if iface != "" {
		var err error
		if ifi, err = net.InterfaceByName(iface); err != nil {
			return nil, fmt.Errorf("interface %q: %w", iface, err)
		}
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, fmt.Errorf("discovery socket: %w", err)
	}
	defer conn.Close()
	if err := setMulticastInterface(conn, ifi); err != nil {
		return nil, fmt.Errorf("interface %q: %w", iface, err)
	}
	return probe(ctx, conn, DiscoveryGroup, timeout)
}

// probe sends probes to group on conn and gathers ProbeMatches until
// timeout or ctx ends.
func probe(ctx context.Context, conn *net.UDPConn, group *net.UDPAddr, timeout time.Duration) ([]Found, error) {
	id := soap.UUID()
	msg := probeMessage(id)
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	// UDP may drop a probe: send it three times, as WS-Discovery advises.
	for range 3 {
		if _, err := conn.WriteToUDP(msg, group); err != nil {
			return nil, fmt.Errorf("send probe: %w", err)
		}
	}
	seen := map[string]Found{}
	buf := make([]byte, 64<<10)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			break
		}
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return nil, fmt.Errorf("read probe matches: %w", err)
		}
		found, err := ParseProbeMatches(buf[:n])
		if err != nil {
			continue // a stray or broken answer: not a camera we can use
		}
		for _, f := range found {
			key := f.Endpoint
			if key == "" {
				key = strings.Join(f.XAddrs, " ")
			}
			seen[key] = f
		}
	}
	out := make([]Found, 0, len(seen))
	for _, f := range seen {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Join(out[i].XAddrs, " ") < strings.Join(out[j].XAddrs, " ")
	})
	return out, nil
}

// WriteTOML writes a ready-to-paste [[device]] block per camera, without
// credentials (the operator adds username and password_file). It returns
// the first error of w.
func WriteTOML(w io.Writer, cams []Found) error {
	for i, c := range cams {
		addr := ""
		for _, x := range c.XAddrs {
			if u, err := url.Parse(x); err == nil && u.Scheme == "http" || addr == "" {
				addr = x // prefer a plain http address, else the first
			}
		}
		name := c.Name
		if name == "" {
			name = "camera " + strconv.Itoa(i+1)
		}
		id := "cam-" + slug(name)
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "# %s", name)
		if c.Hardware != "" {
			fmt.Fprintf(w, ", hardware %s", c.Hardware)
		}
		if c.Location != "" {
			fmt.Fprintf(w, ", location %s", c.Location)
		}
		fmt.Fprintf(w, "\n# endpoint %s\n[[device]]\nid = %s\nkind = \"onvif\"\nname = %s\nurl = %s\n", c.Endpoint, strconv.Quote(id+"-"+strconv.Itoa(i+1)), strconv.Quote(name), strconv.Quote(addr))
		if _, err := fmt.Fprintf(w, "# username = \"admin\"\n# password_file = \"/etc/osapgw/secrets/%s.password\"\n", id); err != nil {
			return err
		}
	}
	return nil
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
