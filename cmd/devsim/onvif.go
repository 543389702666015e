package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sync/errgroup"

	sim "github.com/osapgw/osapgw/sim/onvif"
)

func init() {
	simulators["onvif"] = simulator{summary: "simulated ONVIF cameras (device, media, PTZ, events)", run: runONVIF}
}

// runONVIF serves --count cameras on consecutive ports from --listen.
func runONVIF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devsim onvif", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the first camera; the others take the next ports")
	count := fs.Int("count", 1, "number of cameras")
	user := fs.String("user", "admin", "camera user")
	password := fs.String("password", "admin", "camera password")
	auth := fs.String("auth", "digest", "authentication: digest, digest-sha256, usernametoken, none")
	motion := fs.Duration("motion-every", 0, "toggle each camera's motion alarm at this period (0: never)")
	media := fs.String("media", "both", "media services offered: 1 (Media1, Profile S), 2 (Media2, Profile T: profile 1 in H.265) or both")
	double := fs.Bool("double-motion", false, "report motion under two topics, as Hikvision cameras do")
	snapSize := fs.Int("snapshot-size", 0, "pad each snapshot to at least this many bytes (0: the plain image)")
	unique := fs.Bool("unique-snapshots", false, "make every snapshot differ from the ones before, as a live camera's do")
	snapLog := fs.String("snapshot-log", "", "append the SHA-256 (hex) of every snapshot served to this file, one per line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch sim.Auth(*auth) {
	case sim.AuthDigest, sim.AuthDigestSHA256, sim.AuthUsernameToken, sim.AuthNone:
	default:
		return fmt.Errorf("--auth %q: want digest, digest-sha256, usernametoken or none", *auth)
	}
	switch sim.Media(*media) {
	case sim.Media1, sim.Media2, sim.MediaBoth:
	default:
		return fmt.Errorf("--media %q: want 1, 2 or both", *media)
	}
	if *snapSize < 0 || *snapSize > 64<<20 {
		return fmt.Errorf("--snapshot-size %d: want 0 to 64 MiB", *snapSize)
	}
	var onSnapshot func([32]byte)
	if *snapLog != "" {
		f, err := os.OpenFile(*snapLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("--snapshot-log: %w", err)
		}
		defer f.Close()
		var mu sync.Mutex
		onSnapshot = func(sum [32]byte) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(f, "%x\n", sum)
		}
	}
	if *count < 1 {
		return fmt.Errorf("--count %d: want at least 1", *count)
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--listen: port %q: %w", portStr, err)
	}
	g, ctx := errgroup.WithContext(ctx)
	for i := range *count {
		addr := net.JoinHostPort(host, strconv.Itoa(port+i))
		if port == 0 {
			addr = net.JoinHostPort(host, "0")
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		cam := sim.New(sim.Config{Name: fmt.Sprintf("SimCam %d", i+1), Serial: fmt.Sprintf("SIM-%04d", i+1),
			User: *user, Password: *password, Auth: sim.Auth(*auth), MotionEvery: *motion, Media: sim.Media(*media), DoubleMotion: *double,
			SnapshotSize: *snapSize, UniqueSnapshots: *unique, OnSnapshot: onSnapshot})
		cam.SetBase("http://" + ln.Addr().String())
		fmt.Fprintf(stdout, "camera %d: %s\n", i+1, cam.URL())
		g.Go(func() error { return cam.Serve(ctx, ln) })
	}
	return g.Wait()
}
