package onvif

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/osapgw/osapgw/internal/testenv"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

func TestParseProbeMatches(t *testing.T) {
	match := func(ep, scopes, xaddrs string) string {
		return `<d:ProbeMatch><a:EndpointReference><a:Address>` + ep + `</a:Address></a:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>` + scopes + `</d:Scopes><d:XAddrs>` + xaddrs + `</d:XAddrs></d:ProbeMatch>`
	}
	env := func(body string) []byte {
		return []byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Body><d:ProbeMatches>` + body + `</d:ProbeMatches></s:Body></s:Envelope>`)
	}
	tests := []struct {
		name    string
		data    []byte
		want    []Found
		wantErr bool
	}{
		{
			name: "recorded", data: recorded(t, "Probe.xml"),
			want: []Found{{Endpoint: "uuid:c9790c3a-701b-464d-a189-0060351c8ada", XAddrs: []string{"SERVICE_URI"},
				Types: []string{"dn:NetworkVideoTransmitter", "tds:Device"},
				Scopes: []string{"onvif://www.onvif.org/Profile/Streaming", "onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/type/audio_encoder",
					"onvif://www.onvif.org/type/ptz", "onvif://www.onvif.org/hardware/HD_PREDATOR", "onvif://www.onvif.org/name/PREDATOR", "onvif://www.onvif.org/location/"},
				Name: "PREDATOR", Hardware: "HD_PREDATOR"}},
		},
		{
			name: "two cameras, escaped name, two addresses",
			data: env(match("urn:uuid:1", "onvif://www.onvif.org/name/Front%20Door onvif://www.onvif.org/location/country/fr", "http://10.0.0.2/onvif/device_service https://10.0.0.2/onvif/device_service") +
				match("urn:uuid:2", "", "http://10.0.0.3/onvif/device_service")),
			want: []Found{
				{Endpoint: "urn:uuid:1", XAddrs: []string{"http://10.0.0.2/onvif/device_service", "https://10.0.0.2/onvif/device_service"}, Types: []string{"dn:NetworkVideoTransmitter"},
					Scopes: []string{"onvif://www.onvif.org/name/Front%20Door", "onvif://www.onvif.org/location/country/fr"}, Name: "Front Door", Location: "country/fr"},
				{Endpoint: "urn:uuid:2", XAddrs: []string{"http://10.0.0.3/onvif/device_service"}, Types: []string{"dn:NetworkVideoTransmitter"}},
			},
		},
		{name: "no matches", data: env("")},
		{name: "empty match", data: env(match("", "", "")), wantErr: true},
		{name: "garbage", data: []byte("<<<"), wantErr: true},
		{name: "fault", data: recorded(t, "Error.xml"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProbeMatches(tt.data)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseProbeMatches = %v, %v; want error %v", got, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseProbeMatches (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseProbeMatches(f *testing.F) {
	f.Add(recorded(f, "Probe.xml"))
	f.Add([]byte(`<s:Envelope xmlns:s="x"><s:Body><ProbeMatches><ProbeMatch><XAddrs>a b</XAddrs><Scopes>onvif://www.onvif.org/name/%zz</Scopes></ProbeMatch></ProbeMatches></s:Body></s:Envelope>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		found, err := ParseProbeMatches(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteTOML(&b, found); err != nil {
			t.Fatal(err)
		}
		var conf struct{ Device []map[string]any }
		if _, err := toml.Decode(b.String(), &conf); err != nil {
			t.Fatalf("WriteTOML wrote TOML that does not parse: %v\n%s", err, b.String())
		}
		if len(conf.Device) != len(found) {
			t.Fatalf("%d blocks for %d cameras", len(conf.Device), len(found))
		}
	})
}

func TestWriteTOML(t *testing.T) {
	found := []Found{
		{Endpoint: "urn:uuid:1", XAddrs: []string{"https://10.0.0.2/onvif/device_service", "http://10.0.0.2/onvif/device_service"}, Name: `Front "Door"`, Hardware: "DS-2CD", Location: "gate"},
		{Endpoint: "urn:uuid:2", XAddrs: []string{"http://10.0.0.3/onvif/device_service"}},
	}
	var b bytes.Buffer
	if err := WriteTOML(&b, found); err != nil {
		t.Fatal(err)
	}
	var conf struct{ Device []map[string]any }
	if _, err := toml.Decode(b.String(), &conf); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, b.String())
	}
	if len(conf.Device) != 2 {
		t.Fatalf("%d blocks, want 2:\n%s", len(conf.Device), b.String())
	}
	d := conf.Device[0]
	if d["kind"] != "onvif" || d["url"] != "http://10.0.0.2/onvif/device_service" || d["name"] != `Front "Door"` || d["id"] != "cam-front-door-1" {
		t.Errorf("first block = %v", d)
	}
	if _, ok := d["username"]; ok {
		t.Errorf("block carries credentials: %v", d)
	}
	// The block is accepted by the adapter as it stands.
	block := strings.SplitN(b.String(), "[[device]]\n", 3)[1]
	if _, err := New("x", tomlBlock(block), envNone); err != nil {
		t.Errorf("the adapter refuses the block: %v\n%s", err, block)
	}
}

// TestDiscoverInNamespace sends a real probe, but only inside a private
// network namespace that holds nothing but a loopback interface: the test
// re-executes itself under `unshare -n`, with multicast routed on lo and
// a simulated camera answering there. Where namespaces cannot be made, it
// skips: a probe must never leave for a real network.
func TestDiscoverInNamespace(t *testing.T) {
	if os.Getenv("OSAPGW_ONVIF_NETNS") == "1" {
		discoverInsideNamespace(t)
		return
	}
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	unshare := testenv.LookPath(t, "unshare", "util-linux: without it no private network namespace, so no probe is sent")
	testenv.LookPath(t, "ip", "iproute2, which scripts/test-deps.sh installs: it sets up the namespace's loopback")
	script := `set -e; ip link set lo up; ip link set lo multicast on; ip route add 239.0.0.0/8 dev lo; exec "$0" -test.run '^TestDiscoverInNamespace$' -test.v -test.count=1`
	var lastErr error
	for _, flags := range [][]string{{"-n"}, {"-r", "-n"}} {
		args := append(append([]string{}, flags...), "sh", "-c", script, os.Args[0])
		cmd := exec.Command(unshare, args...)
		cmd.Env = append(os.Environ(), "OSAPGW_ONVIF_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err == nil {
			if !strings.Contains(string(out), "--- PASS: TestDiscoverInNamespace") {
				t.Fatalf("the test in the namespace did not pass:\n%s", out)
			}
			return
		}
		if strings.Contains(string(out), "--- FAIL") {
			t.Fatalf("the test in the namespace failed:\n%s", out)
		}
		lastErr = err
		t.Logf("unshare %v: %v: %s", flags, err, out)
	}
	t.Skipf("cannot make a private network namespace here (%v): no probe sent", lastErr)
}

func discoverInsideNamespace(t *testing.T) {
	// Refuse to probe unless every interface is a loopback one.
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 {
			t.Fatalf("interface %q is not loopback: not a private namespace, refusing to send a probe", ifi.Name)
		}
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	names := []string{"Front Door", "Yard"}
	for i, name := range names {
		cam := onviftest.Start(t, sim.Config{Name: name, Serial: "SER-" + name, User: "admin", Password: "secret"})
		conn, err := sim.ListenDiscovery(lo)
		if err != nil {
			t.Fatalf("responder %d: %v", i, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = cam.ServeDiscovery(ctx, conn) }()
	}
	found, err := Discover(ctx, "lo", 2*time.Second)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if len(found) != 2 {
		t.Fatalf("Discover found %d cameras, want 2: %+v", len(found), found)
	}
	got := map[string]Found{}
	for _, f := range found {
		got[f.Name] = f
	}
	for _, name := range names {
		f, ok := got[name]
		if !ok || f.Hardware != "SIM-HW-1" || f.Location != "Lab bench" || len(f.XAddrs) != 1 || !strings.HasPrefix(f.XAddrs[0], "http://127.0.0.1:") {
			t.Errorf("camera %q: %+v", name, f)
		}
	}
	// The printed block connects, once credentials are added.
	var b bytes.Buffer
	if err := WriteTOML(&b, found[:1]); err != nil {
		t.Fatal(err)
	}
	block := strings.SplitN(b.String(), "[[device]]\n", 2)[1] + "username = \"admin\"\n"
	a, err := New("found", tomlBlock(block), envNone)
	if err != nil {
		t.Fatalf("New from discovered block: %v", err)
	}
	a.password = "secret"
	if _, err := a.Describe(ctx); err != nil {
		t.Errorf("Describe of discovered camera: %v", err)
	}
}
