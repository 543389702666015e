package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/profiles"
)

// benchProfile is the 60-point profile of issue 13's benchmark, a user
// profile in testdata/profiles (no embedded profile has 60 points).
const benchProfile = "bench-meter-60"

func benchProfilesDir(b *testing.B) string {
	dir, err := filepath.Abs(filepath.Join("testdata", "profiles"))
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// profileSite returns the [profiles] section and n [[device]] blocks of
// benchProfile on consecutive ports from base: each naming the profile
// (form "profile"), or the same site written out point by point, with
// the profile's class, manufacturer and model ("inline").
func profileSite(b *testing.B, base, n int, form string) string {
	dir := benchProfilesDir(b)
	cat, err := profiles.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	p, err := cat.Lookup(benchProfile)
	if err != nil {
		b.Fatal(err)
	}
	mp, err := modbus.DecodeProfile(p)
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n[profiles]\ndir = %q\n", dir)
	for i := range n {
		fmt.Fprintf(&sb, "\n[[device]]\nid = \"meter-%03d\"\nkind = \"modbus\"\nurl = \"tcp://127.0.0.1:%d\"\nunit = 1\npoll = \"1s\"\ntimeout = \"2s\"\n", i, base+i)
		if form == "profile" {
			fmt.Fprintf(&sb, "profile = %q\n", benchProfile)
			continue
		}
		fmt.Fprintf(&sb, "class = %q\nmanufacturer = %q\nmodel = %q\n", p.Class, p.Manufacturer, p.Model)
		for _, a := range mp.Points() {
			fmt.Fprintf(&sb, "[[device.attribute]]\nname = %q\ntable = %q\naddress = %d\ntype = %q\norder = %q\nunit = %q\n", a.Name, a.Table, *a.Address, a.Type, a.Order, a.Unit)
			if a.Description != "" {
				fmt.Fprintf(&sb, "description = %q\n", a.Description)
			}
		}
	}
	return sb.String()
}

// BenchmarkProfileSite is issue 13's benchmark through the whole
// gateway: 100 simulated meters of one 60-point profile (devsim
// --profile, one port each), polled every second, every change published
// to the platform emulator; 30 s window. Reports the gateway's RSS and
// CPU with the devices naming the profile ("profile": its points are
// compiled once and shared) and with the same site written out point by
// point ("inline"), and the configuration's size.
func BenchmarkProfileSite(b *testing.B) {
	for _, form := range []string{"profile", "inline"} {
		b.Run(form, func(b *testing.B) {
			for b.Loop() {
				s := newSite(b, "-no-fsync", "-log-level", "warn")
				base := freeRange(b, 100)
				start(b, "devsim", "modbus", "-listen", fmt.Sprintf("127.0.0.1:%d", base), "-count", "100",
					"-profiles-dir", benchProfilesDir(b), "-profile", benchProfile)
				waitListening(b, fmt.Sprintf("127.0.0.1:%d", base+99))
				site := profileSite(b, base, 100, form)
				s.writeConfig(site)
				s.startGateway()
				s.devID()
				waitFor(s.t, "100 meters online", 60*time.Second, func() bool {
					n := 0
					for _, d := range s.gatewayStatus().Devices {
						if d.State == "online" {
							n++
						}
					}
					return n == 100
				})
				time.Sleep(5 * time.Second)
				rss, core := measure(b, s, 30*time.Second)
				b.ReportMetric(float64(rss)/(1<<20), "RSS_MB")
				b.ReportMetric(core*100, "CPU_%")
				b.ReportMetric(float64(strings.Count(site, "\n")), "config_lines")
			}
		})
	}
}

// BenchmarkProfileSiteCheck times `osapgw check` of the 100-meter site of
// BenchmarkProfileSite, in both forms (the process, from start to exit).
// Target: under 200 ms for the profile form. Run it with -benchtime 20x.
func BenchmarkProfileSiteCheck(b *testing.B) {
	for _, form := range []string{"profile", "inline"} {
		b.Run(form, func(b *testing.B) {
			s := &site{t: b, dir: b.TempDir(), lbs: "127.0.0.1:1", gwHTTP: "127.0.0.1:0"}
			write(b, filepath.Join(s.dir, "code"), vcode+"\n", 0o600)
			s.writeConfig(profileSite(b, 30000, 100, form))
			fi, err := os.Stat(s.cfgPath)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if out, err := exec.Command(bin.osapgw, "check", "-c", s.cfgPath).CombinedOutput(); err != nil {
					b.Fatalf("osapgw check: %v\n%s", err, out)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/check")
			b.ReportMetric(float64(fi.Size())/1024, "config_KiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}
