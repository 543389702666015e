package main

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	sim "github.com/osapgw/osapgw/sim/modbus"
)

func TestDiscoverModbus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := sim.NewServer(map[byte]*sim.Sensor{2: sim.NewSensor(time.Hour, 0), 5: sim.NewSensor(time.Hour, 0)})
	go func() { done <- srv.ServeTCP(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), []string{"discover", "modbus", "tcp://" + ln.Addr().String(), "--units", "1-6"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("discover modbus = %d, stderr %q", code, errOut.String())
	}
	if want := "unit 2\tregisters\nunit 5\tregisters\n"; out.String() != want {
		t.Fatalf("stdout = %q, want %q", out.String(), want)
	}
	if code := dispatch(context.Background(), []string{"discover", "modbus"}, &out, &errOut); code != 2 {
		t.Fatalf("discover modbus without URL = %d, want 2", code)
	}
}
