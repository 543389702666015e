package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/osapgw/osapgw/bridge"
	"github.com/osapgw/osapgw/gateway"
	"github.com/osapgw/osapgw/upstream"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		devs []bridge.DeviceStatus
		want string
	}{
		{name: "all good", devs: []bridge.DeviceStatus{
			{ID: "meter-1", Kind: "modbus", State: "online", LastPoll: now.Add(-time.Second), LastData: now.Add(-time.Second), Reports: 12},
		}, want: `DEVICE   KIND    STATE   LAST POLL  LAST DATA  REPORTS  LAST ERROR
meter-1  modbus  online  1s ago     1s ago     12       -
`},
		{name: "bad points listed with their reasons", devs: []bridge.DeviceStatus{
			{ID: "meter-1", Kind: "modbus", State: "online", LastPoll: now.Add(-time.Second), LastData: now.Add(-time.Second), Reports: 12, BadPoints: []bridge.BadPoint{
				{Resource: "main", Attribute: "energy", Err: "exception 2 (illegal data address)", Since: now.Add(-2 * time.Minute)},
				{Resource: "main", Attribute: "thd", Err: "no answer within 1s", Since: now.Add(-time.Minute)},
			}},
			{ID: "cam-1", Kind: "onvif", State: "offline", LastError: "dial tcp: refused"},
		}, want: `DEVICE   KIND    STATE    LAST POLL  LAST DATA  REPORTS  LAST ERROR
meter-1  modbus  online   1s ago     1s ago     12       -
cam-1    onvif   offline  -          -          0        dial tcp: refused

bad points:
  meter-1  main/energy  exception 2 (illegal data address)  since 2m0s ago
  meter-1  main/thd     no answer within 1s                 since 1m0s ago
`},
		{name: "offline with its reason", devs: []bridge.DeviceStatus{
			{ID: "cam-1", Kind: "onvif", State: "offline", OfflineReason: bridge.ReasonCredentials, LastError: `camera "cam-1": credentials refused`},
			{ID: "cam-2", Kind: "onvif", State: "offline", OfflineReason: bridge.ReasonTimeout, LastError: "device timeout"},
		}, want: `DEVICE  KIND   STATE                          LAST POLL  LAST DATA  REPORTS  LAST ERROR
cam-1   onvif  offline (credentials refused)  -          -          0        camera "cam-1": credentials refused
cam-2   onvif  offline (no answer in time)    -          -          0        device timeout
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			printStatus(&b, gateway.Status{Version: "dev", Upstream: upstream.State{State: "connected", Since: now}, Devices: tt.devs}, now)
			got := b.String()
			const head = "osapgw dev\nupstream  connected since 0s ago (DevID -, 0 reconnects, 0 auth failures)\noutbox    0 events, 0 bytes, oldest 0s, 0 dropped\n\n"
			if diff := cmp.Diff(head+tt.want, got); diff != "" {
				t.Errorf("printStatus mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
