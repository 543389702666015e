package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no args", args: nil, wantCode: 2, wantStderr: "usage: osapgw"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStderr: "version"},
		{name: "unknown", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: "osapgw dev"},
		{name: "bad flag", args: []string{"version", "-x"}, wantCode: 2, wantStderr: "usage: osapgw version"},
		{name: "demo", args: []string{"demo"}, wantCode: 2, wantStderr: "this build has no demo; run `make demo`"},
		{name: "demo help", args: []string{"demo", "-h"}, wantCode: 0, wantStderr: "usage: osapgw demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Errorf("dispatch(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", out.String(), tt.wantStdout)
			}
			if !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tt.wantStderr)
			}
		})
	}
}
