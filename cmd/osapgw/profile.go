package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/osapgw/osapgw/adapters/modbus"
	"github.com/osapgw/osapgw/config"
	"github.com/osapgw/osapgw/profiles"
)

// profileCommands are the `osapgw profile ...` subcommands.
var profileCommands = map[string]command{
	"list":  {summary: "list the profiles: name, class, manufacturer, model, origin, source", run: runProfileList},
	"show":  {summary: "print a profile's points as a table, or its TOML (-toml)", run: runProfileShow},
	"check": {summary: "check profiles (all, or those named) against their class", run: runProfileCheck},
}

// profileCheckers check a whole profile of a kind.
var profileCheckers = map[string]func(*profiles.Profile) error{"modbus": modbus.CheckProfile}

func init() {
	commands["profile"] = command{summary: "list, show and check device profiles: profile list | show NAME | check [NAME...]", run: runProfile}
}

func runProfile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	names := make([]string, 0, len(profileCommands))
	for n := range profileCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stderr, "usage: osapgw profile %s [flags]\n", strings.Join(names, "|"))
		for _, n := range names {
			fmt.Fprintf(stderr, "  %-6s %s\n", n, profileCommands[n].summary)
		}
		fmt.Fprintf(stderr, "\nProfiles are embedded in osapgw, and read from [profiles] dir of the configuration\n(default %s). docs/profiles.md describes them.\n", profiles.DefaultDir)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := profileCommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "osapgw profile: unknown command %q (one of %s)\n", args[0], strings.Join(names, ", "))
		return errUsage
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

// catalogFlags adds the flags that say where the user's profiles are.
func catalogFlags(fs *flag.FlagSet) func() (*profiles.Catalog, error) {
	path := fs.String("c", defaultConfigPath, "configuration `file` whose [profiles] dir holds the user's profiles (need not exist)")
	dir := fs.String("dir", "", "the user's profiles `directory` (default: the configuration's [profiles] dir, or "+profiles.DefaultDir+")")
	return func() (*profiles.Catalog, error) {
		d := *dir
		if d == "" {
			d = profiles.DefaultDir
			cfg, err := config.Load(*path)
			if cfg != nil {
				d = cfg.Profiles.Dir
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
		return profiles.Load(d)
	}
}

// parseArgsFlags parses flags that may come before or after the names.
func parseArgsFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var names []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return names, nil
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func origin(p *profiles.Profile) string {
	switch {
	case p.Embedded:
		return "embedded"
	case p.Overrides:
		return "user, replaces embedded"
	}
	return "user"
}

func runProfileList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("profile list", "[-c FILE | -dir DIR]", stderr)
	load := catalogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cat, err := load()
	if cat == nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCLASS\tMANUFACTURER\tMODEL\tORIGIN\tSOURCE")
	for _, p := range cat.Profiles() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, orDash(p.Class), orDash(p.Manufacturer), orDash(p.Model), origin(p), p.Source)
	}
	tw.Flush()
	return err // the files that do not parse, after those that do
}

func runProfileShow(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("profile show", "NAME [-toml] [-c FILE | -dir DIR]", stderr)
	load := catalogFlags(fs)
	asTOML := fs.Bool("toml", false, "print the profile's file as it is")
	names, err := parseArgsFlags(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		fs.Usage()
		return errUsage
	}
	cat, err := load()
	if cat == nil {
		return err
	}
	p, err := cat.Lookup(names[0])
	if err != nil {
		return err
	}
	if *asTOML {
		_, err := io.WriteString(stdout, p.Text())
		return err
	}
	fmt.Fprintf(stdout, "%s: %s %s", p.Name, orDash(p.Manufacturer), orDash(p.Model))
	if p.Description != "" {
		fmt.Fprintf(stdout, ", %s", p.Description)
	}
	fmt.Fprintf(stdout, "\nclass   %s\nsource  %s\nfile    %s (%s)\n", orDash(p.Class), p.Source, p.Path, origin(p))
	if p.Kind != "modbus" {
		fmt.Fprintf(stdout, "kind    %s\n", p.Kind)
		return nil
	}
	mp, err := modbus.DecodeProfile(p)
	if err != nil {
		return err
	}
	if l := mp.Link; l != (modbus.ProfileLink{}) {
		fmt.Fprintf(stdout, "link    %s\n", linkText(l))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nATTRIBUTE\tTABLE\tADDRESS\tTYPE\tORDER\tSCALE\tUNIT\tRESOURCE/AREA\tACCESS")
	for _, a := range mp.Points() {
		addr := "-"
		if a.Address != nil {
			addr = strconv.Itoa(*a.Address)
			if a.Bit != nil {
				addr += "." + strconv.Itoa(*a.Bit)
			}
		}
		typ := orDash(a.Type)
		if a.Length > 0 {
			typ += "[" + strconv.Itoa(a.Length) + "]"
		}
		scale := "-"
		if a.Scale != nil {
			scale = strconv.FormatFloat(*a.Scale, 'g', -1, 64)
		}
		if a.Offset != 0 {
			scale += fmt.Sprintf(" %+g", a.Offset)
		}
		res, area := a.Resource, a.Area
		if res == "" {
			res = modbus.DefaultResource
		}
		if area == "" {
			area = modbus.DefaultArea
		}
		rw := "r"
		if a.Writable {
			rw = "rw"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, orDash(a.Table), addr, typ, orDash(a.Order), scale, orDash(a.Unit), res+"/"+area, rw)
	}
	if len(mp.Events) > 0 {
		fmt.Fprintln(tw, "\nEVENT\tATTRIBUTE\tRULE")
		for _, e := range mp.Events {
			rule := "on change"
			switch {
			case e.Above != nil:
				rule = fmt.Sprintf("above %g", *e.Above)
			case e.Below != nil:
				rule = fmt.Sprintf("below %g", *e.Below)
			}
			if e.Hysteresis != 0 {
				rule += fmt.Sprintf(", hysteresis %g", e.Hysteresis)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Attribute, rule)
		}
	}
	if len(mp.Operations) > 0 {
		fmt.Fprintln(tw, "\nOPERATION\tWRITES")
		for _, o := range mp.Operations {
			var ws []string
			for _, w := range o.Writes {
				addr := "-"
				if w.Address != nil {
					addr = strconv.Itoa(*w.Address)
				}
				ws = append(ws, fmt.Sprintf("%s %s %s = %v", w.Table, addr, orDash(w.Type), w.Value))
			}
			fmt.Fprintf(tw, "%s\t%s\n", o.Name, strings.Join(ws, "; "))
		}
	}
	if len(mp.Identity) > 0 {
		fmt.Fprintln(tw, "\nIDENTITY\tADDRESS\tTYPE\tVALUE")
		for _, id := range mp.Identity {
			addr := "-"
			if id.Address != nil {
				addr = strconv.Itoa(*id.Address)
			}
			val := fmt.Sprint(id.Value)
			if id.Value == nil {
				val = fmt.Sprint(id.Values)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id.Table, addr, orDash(id.Type), val)
		}
	}
	return tw.Flush()
}

// linkText writes a profile's [link] as its keys.
func linkText(l modbus.ProfileLink) string {
	var parts []string
	add := func(key string, v any, set bool) {
		if set {
			parts = append(parts, fmt.Sprintf("%s %v", key, v))
		}
	}
	if l.Unit != nil {
		add("unit", *l.Unit, true)
	}
	add("baud", l.Baud, l.Baud != 0)
	add("data_bits", l.DataBits, l.DataBits != 0)
	add("parity", l.Parity, l.Parity != "")
	add("stop_bits", l.StopBits, l.StopBits != 0)
	add("timeout", time.Duration(l.Timeout), l.Timeout != 0)
	add("request_delay", time.Duration(l.RequestDelay), l.RequestDelay != 0)
	add("max_registers", l.MaxRegisters, l.MaxRegisters != 0)
	if l.MaxGap != nil {
		add("max_gap", *l.MaxGap, true)
	}
	return strings.Join(parts, ", ")
}

func runProfileCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("profile check", "[NAME...] [-c FILE | -dir DIR]", stderr)
	load := catalogFlags(fs)
	names, err := parseArgsFlags(fs, args)
	if err != nil {
		return err
	}
	cat, loadErr := load()
	if cat == nil {
		return loadErr
	}
	var list []*profiles.Profile
	if len(names) == 0 {
		list = cat.Profiles()
	}
	var problems []error
	if loadErr != nil {
		problems = append(problems, loadErr)
	}
	for _, n := range names {
		p, err := cat.Lookup(n)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		list = append(list, p)
	}
	bad := 0
	for _, p := range list {
		check, ok := profileCheckers[p.Kind]
		if !ok {
			problems = append(problems, fmt.Errorf("%s: kind %q: no such kind in this build", p.Path, p.Kind))
			bad++
			continue
		}
		if err := check(p); err != nil {
			problems = append(problems, err)
			bad++
			continue
		}
		fmt.Fprintf(stdout, "ok  %s (%s)\n", p.Name, orDash(p.Class))
	}
	if len(problems) > 0 {
		for _, e := range problems {
			for _, line := range strings.Split(e.Error(), "\n") {
				fmt.Fprintf(stderr, "  %s\n", line)
			}
		}
		return fmt.Errorf("%d of %d profiles do not pass", bad, len(list))
	}
	return nil
}
