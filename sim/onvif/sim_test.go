package onvif_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/use-go/onvif/device"
	"github.com/use-go/onvif/ptz"
	"github.com/use-go/onvif/xsd"
	tt "github.com/use-go/onvif/xsd/onvif"

	"github.com/osapgw/osapgw/adapters/onvif/soap"
	sim "github.com/osapgw/osapgw/sim/onvif"
	"github.com/osapgw/osapgw/sim/onvif/onviftest"
)

func start(t *testing.T, cfg sim.Config) (*sim.Camera, *soap.Client) {
	t.Helper()
	cam := onviftest.Start(t, cfg)
	c := soap.New(soap.Options{Username: cfg.User, Password: cfg.Password, Timeout: 5 * time.Second})
	t.Cleanup(c.Close)
	return cam, c
}

func ptzURL(cam *sim.Camera) string {
	u := cam.URL()
	return u[:len(u)-len("device_service")] + "ptz_service"
}

func TestContinuousMoveStopsAtTimeout(t *testing.T) {
	cam, c := start(t, sim.Config{User: "u", Password: "p"})
	req := ptz.ContinuousMove{ProfileToken: "profile_1", Timeout: xsd.Duration("PT0.2S"),
		Velocity: tt.PTZSpeed{PanTilt: tt.Vector2D{X: 1, Y: -1}}}
	if err := c.Call(context.Background(), ptzURL(cam), req, nil); err != nil {
		t.Fatal(err)
	}
	// Wait until the move has ended (it may not be observed mid-way on a
	// loaded machine), then check where it ended.
	for deadline := time.Now().Add(10 * time.Second); ; {
		p1, _, _ := cam.PTZPosition()
		time.Sleep(300 * time.Millisecond)
		p2, _, _ := cam.PTZPosition()
		if p1 == p2 && p1 > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pan %v, then %v: the head has not come to rest 10 s after a 0.2 s move", p1, p2)
		}
	}
	pan, tilt, _ := cam.PTZPosition()
	if pan < 0.19 || pan > 0.21 || tilt > -0.19 || tilt < -0.21 {
		t.Errorf("after a 0.2s move at full speed: pan %v tilt %v, want ±0.2", pan, tilt)
	}
}

func TestFaultSwitches(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		check  func(error) bool
	}{
		{name: "none", check: func(err error) bool { return err == nil }},
		{name: "soap fault", faults: sim.Faults{SOAPFault: true}, check: func(err error) bool {
			var f *soap.Fault
			return errors.As(err, &f) && f.Code == "env:Receiver"
		}},
		{name: "401", faults: sim.Faults{Unauthorized: true}, check: func(err error) bool { return errors.Is(err, soap.ErrUnauthorized) }},
		{name: "malformed", faults: sim.Faults{Malformed: true}, check: func(err error) bool { return errors.Is(err, soap.ErrMalformed) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cam, c := start(t, sim.Config{User: "u", Password: "p"})
			cam.SetFaults(tc.faults)
			var info device.GetDeviceInformationResponse
			err := c.Call(context.Background(), cam.URL(), device.GetDeviceInformation{}, &info)
			if !tc.check(err) {
				t.Errorf("Call = %v (%T)", err, err)
			}
		})
	}
}

func TestSlowAnswerEndsWithRequest(t *testing.T) {
	cam, c := start(t, sim.Config{User: "u", Password: "p"})
	cam.SetFaults(sim.Faults{Slow: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Call(ctx, cam.URL(), device.GetDeviceInformation{}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want DeadlineExceeded", err)
	}
}
