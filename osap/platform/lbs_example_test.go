package platform_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/osapgw/osapgw/osap"
	"github.com/osapgw/osapgw/osap/platform"
)

type staticDAS string

func (d staticDAS) URL() string     { return string(d) }
func (d staticDAS) Registered() int { return 0 }

// An LBS on loopback and a gateway that runs first authentication, then
// re-authentication with what it stored.
func ExampleClient_Authenticate() {
	reg, _ := platform.NewRegistry("") // in memory
	reg.Add("GW1", "ABCDEF")
	quiet := slog.New(slog.DiscardHandler)
	lbs := platform.NewLBS(platform.LBSConfig{Registry: reg, DAS: []platform.AccessService{staticDAS("mqtt://127.0.0.1:1883")}, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lbs.Serve(ctx, ln) }()
	defer func() { stop(); <-done }()

	c, err := osap.NewClient(osap.ClientConfig{Addr: ln.Addr().String(), Serial: "GW1", VerificationCode: "ABCDEF", Logger: quiet})
	if err != nil {
		panic(err)
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cr, err := c.Authenticate(actx, nil) // nothing stored: first authentication
	if err != nil {
		panic(err)
	}
	fmt.Println("first:", cr.Suite, cr.DASAddress, cr.Lifetime)
	again, err := c.Authenticate(actx, &cr) // re-authentication
	if err != nil {
		panic(err)
	}
	_, keys, _ := reg.SessionKeys(cr.DevID)
	fmt.Println("reauth: same DevID:", again.DevID == cr.DevID, "keys valid on the platform:", len(keys))
	// Output:
	// first: aes-128-gcm mqtt://127.0.0.1:1883 24h0m0s
	// reauth: same DevID: true keys valid on the platform: 2
}
