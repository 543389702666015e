package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/osapgw/osapgw/bridge"
	"github.com/osapgw/osapgw/gateway"
)

func init() {
	commands["status"] = command{summary: "print the running daemon's upstream, outbox and sub-devices", run: runStatus}
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "[-addr HOST:PORT] [-json]", stderr)
	addr := fs.String("addr", "127.0.0.1:9108", "the daemon's HTTP `address` (http.listen)")
	raw := fs.Bool("json", false, "print the JSON document as it is")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*addr+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is osapgw running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: %s", resp.Status)
	}
	if *raw {
		_, err := stdout.Write(body)
		return err
	}
	var st gateway.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decode status: %w", err)
	}
	printStatus(stdout, st, time.Now())
	return nil
}

func printStatus(w io.Writer, st gateway.Status, now time.Time) {
	up := st.Upstream
	fmt.Fprintf(w, "osapgw %s\n", st.Version)
	fmt.Fprintf(w, "upstream  %s since %s (DevID %s, %d reconnects, %d auth failures)\n", up.State, ago(now, up.Since), orDash(up.DevID), up.Reconnects, up.AuthFailures)
	if up.LastError != "" {
		fmt.Fprintf(w, "          last error: %s\n", up.LastError)
	}
	fmt.Fprintf(w, "outbox    %d events, %d bytes, oldest %.0fs, %d dropped\n\n", st.Outbox.Events, st.Outbox.Bytes, st.Outbox.OldestAgeSecs, st.Outbox.Dropped)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tKIND\tSTATE\tLAST POLL\tLAST DATA\tREPORTS\tLAST ERROR")
	for _, d := range st.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Kind, stateText(d), ago(now, d.LastPoll), ago(now, d.LastData), d.Reports, orDash(d.LastError))
	}
	tw.Flush()
	bad := false
	for _, d := range st.Devices {
		for _, p := range d.BadPoints {
			if !bad {
				fmt.Fprintln(w, "\nbad points:")
				bad = true
			}
			fmt.Fprintf(tw, "  %s\t%s/%s\t%s\tsince %s\n", d.ID, p.Resource, p.Attribute, p.Err, ago(now, p.Since))
		}
	}
	tw.Flush()
}

// stateText is a device's state with why it is offline, when it is.
func stateText(d bridge.DeviceStatus) string {
	why, ok := reasonText[d.OfflineReason]
	if !ok {
		why = d.OfflineReason
	}
	if d.State != "offline" || why == "" {
		return d.State
	}
	return d.State + " (" + why + ")"
}

// reasonText says the offline reasons of bridge.DeviceStatus in words.
var reasonText = map[string]string{
	bridge.ReasonUnreachable: "unreachable",
	bridge.ReasonTimeout:     "no answer in time",
	bridge.ReasonCredentials: "credentials refused",
	bridge.ReasonProtocol:    "protocol error",
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
