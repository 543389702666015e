package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/osap/platform"
)

func TestParseFlags(t *testing.T) {
	defaults := options{
		lbs: "127.0.0.1:7700", das: []string{"127.0.0.1:1883"}, http: "127.0.0.1:7780",
		registry: "devices.toml", state: "osap-platform-state", sessionLifetime: 24 * time.Hour,
		suites: osap.DefaultSuites, logLevel: slog.LevelInfo, picturePath: "/osap",
	}
	tests := []struct {
		name    string
		args    []string
		want    func(o *options)
		wantErr error
		stderr  string
	}{
		{name: "defaults", want: func(*options) {}},
		{name: "several DAS", args: []string{"--das", "127.0.0.1:1883", "--das=127.0.0.1:1884"},
			want: func(o *options) { o.das = []string{"127.0.0.1:1883", "127.0.0.1:1884"} }},
		{name: "legacy suites", args: []string{"--suites", "aes-128-gcm, aes-128-ecb", "--log-level", "debug", "--session-lifetime", "90s"},
			want: func(o *options) {
				o.suites = osap.SuiteSet(osap.SuiteAESGCM | osap.SuiteAESECB)
				o.logLevel = slog.LevelDebug
				o.sessionLifetime = 90 * time.Second
			}},
		{name: "pictures off", args: []string{"--no-pictures"}, want: func(o *options) { o.noPictures = true }},
		{name: "picture fault", args: []string{"--picture-refuse", "503", "--picture-retry-after", "5s", "--picture-delay=1s", "--picture-path", "/p", "--picture-url", "https://gw.example:8443/p"},
			want: func(o *options) {
				o.pictureFault = platform.PictureFault{Status: 503, RetryAfter: 5 * time.Second, Delay: time.Second}
				o.picturePath, o.pictureURL = "/p", "https://gw.example:8443/p"
			}},
		{name: "bad picture status", args: []string{"--picture-refuse", "200"}, wantErr: errUsage, stderr: "--picture-refuse 200"},
		{name: "bad picture path", args: []string{"--picture-path", "osap/"}, wantErr: errUsage, stderr: "--picture-path"},
		{name: "bad picture URL", args: []string{"--picture-url", "ftp://x/y"}, wantErr: errUsage, stderr: "--picture-url"},
		{name: "help", args: []string{"--help"}, wantErr: flag.ErrHelp, stderr: "--session-lifetime DUR"},
		{name: "unknown suite", args: []string{"--suites", "rot13"}, wantErr: errUsage, stderr: `unknown cipher suite "rot13"`},
		{name: "cert without key", args: []string{"--tls-cert", "c.pem"}, wantErr: errUsage, stderr: "go together"},
		{name: "short lifetime", args: []string{"--session-lifetime", "1s"}, wantErr: errUsage, stderr: "--session-lifetime"},
		{name: "bad level", args: []string{"--log-level", "loud"}, wantErr: errUsage, stderr: "--log-level"},
		{name: "stray argument", args: []string{"serve"}, wantErr: errUsage, stderr: `unexpected argument "serve"`},
		{name: "unknown flag", args: []string{"--mqtt", "x"}, wantErr: errUsage, stderr: "-mqtt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseFlags(tt.args, &stderr)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseFlags(%q) error = %v, want %v (stderr %s)", tt.args, err, tt.wantErr, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.stderr)
			}
			if tt.want == nil {
				return
			}
			want := defaults
			want.das = append([]string(nil), defaults.das...)
			tt.want(&want)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(options{})); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7780": true, "[::1]:7780": true, "localhost:7780": true, "127.0.0.2:1": true,
		"0.0.0.0:7780": false, ":7780": false, "192.168.1.10:7780": false, "example.com:80": false, "nonsense": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
