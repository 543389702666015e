package packaging

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/osapgw/osapgw/internal/testenv"
)

// The versions of the two builds the tests make: the first is inspected
// and installed, the second is the upgrade.
const (
	gitVersion1 = "v0.0.1"
	debVersion1 = "0.0.1"
	gitVersion2 = "v0.0.2"
	debVersion2 = "0.0.2"
)

// repoRoot is the repository, one level up from this package.
var repoRoot = func() string {
	abs, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return abs
}()

// workDir holds the builds of this test run; removed by TestMain.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "osapgw-packaging-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// debArch is a Debian architecture with what its binaries must be.
type debArch struct {
	name    string
	machine elf.Machine
	class   elf.Class
	qemu    string // binfmt_misc entry that runs it on another host, "" for the host's
}

var allArches = []debArch{
	{name: "amd64", machine: elf.EM_X86_64, class: elf.ELFCLASS64},
	{name: "arm64", machine: elf.EM_AARCH64, class: elf.ELFCLASS64, qemu: "qemu-aarch64"},
	{name: "armhf", machine: elf.EM_ARM, class: elf.ELFCLASS32, qemu: "qemu-arm"},
}

// arches returns the architectures to check (OSAPGW_DEB_ARCHES, default all).
func arches(t *testing.T) []debArch {
	t.Helper()
	want := strings.Fields(os.Getenv("OSAPGW_DEB_ARCHES"))
	if len(want) == 0 {
		return allArches
	}
	var out []debArch
	for _, name := range want {
		i := slices.IndexFunc(allArches, func(a debArch) bool { return a.name == name })
		if i < 0 {
			t.Fatalf("OSAPGW_DEB_ARCHES: unknown architecture %q (want amd64, arm64 or armhf)", name)
		}
		out = append(out, allArches[i])
	}
	return out
}

// needTools skips the test when a program is missing.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testenv.Missing(t, "%s is not installed (scripts/test-deps.sh installs it)", n)
		}
	}
}

// goTool returns the go command that runs this test, so make builds with
// the same toolchain.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// hasPlatform reports whether the repository has the osap-platform command,
// which make deb packages only when it exists.
func hasPlatform() bool {
	m, _ := filepath.Glob(filepath.Join(repoRoot, "cmd", "osap-platform", "*.go"))
	return len(m) > 0
}

// build is one `make deb` into its own directory.
type build struct {
	once sync.Once
	dir  string
	err  error
}

var builds = map[string]*build{debVersion1: {}, debVersion2: {}}

// debs builds (once per test run) the packages of debVersion1 or
// debVersion2 for the architectures under test and returns the directory
// holding them. OSAPGW_DEB_DIST replaces the first build.
func debs(t *testing.T, debVersion string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("building .debs is slow; skipped under -short")
	}
	if debVersion == debVersion1 {
		if dir := os.Getenv("OSAPGW_DEB_DIST"); dir != "" {
			return dir
		}
	}
	needTools(t, "make", "gzip", "git", "dpkg-deb")
	gitVersion := map[string]string{debVersion1: gitVersion1, debVersion2: gitVersion2}[debVersion]
	b := builds[debVersion]
	names := make([]string, 0, 3)
	for _, a := range arches(t) {
		names = append(names, a.name)
	}
	b.once.Do(func() {
		b.dir = filepath.Join(workDir, "dist-"+debVersion)
		cmd := exec.Command("make", "-C", repoRoot, "deb",
			"GO="+goTool(), "DIST="+b.dir, "VERSION="+gitVersion, "DEB_VERSION="+debVersion,
			"DEB_ARCHES="+strings.Join(names, " "))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("make deb: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// debPath returns the package file of name for arch in dir.
func debPath(t *testing.T, dir, name, version, arch string) string {
	t.Helper()
	if os.Getenv("OSAPGW_DEB_DIST") != "" && version == debVersion1 {
		m, _ := filepath.Glob(filepath.Join(dir, name+"_*_"+arch+".deb"))
		if len(m) != 1 {
			t.Fatalf("OSAPGW_DEB_DIST: want one %s package for %s in %s, found %q", name, arch, dir, m)
		}
		return m[0]
	}
	p := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", name, version, arch))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("package not built: %v", err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// entry is one line of `dpkg-deb -c`.
type entry struct {
	mode  string // "-rwxr-xr-x"
	owner string // "root/root"
}

// contents lists a package's files, keyed by absolute path ("/usr/bin/osapgw").
func contents(t *testing.T, deb string) map[string]entry {
	t.Helper()
	files := map[string]entry{}
	sc := bufio.NewScanner(strings.NewReader(run(t, "dpkg-deb", "-c", deb)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q: want at least 6 fields", sc.Text())
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if path == "" {
			path = "/"
		}
		files[path] = entry{mode: f[0], owner: f[1]}
	}
	return files
}

// packageSpec is what one package must hold.
type packageSpec struct {
	name      string
	depends   string
	files     map[string]entry // regular files, exactly these
	conffiles []string
	unit      string // unit file in the package and its source in the repository
	unitSrc   string
	conf      string // conffile and its source, compared byte for byte
	confSrc   string
	dirs      []string          // directories it must hold (empty ones too)
	same      map[string]string // more files and their sources, compared byte for byte
}

func specs() []packageSpec {
	exe := entry{mode: "-rwxr-xr-x", owner: "root/root"}
	doc := entry{mode: "-rw-r--r--", owner: "root/root"}
	s := []packageSpec{{
		name:    "osapgw",
		depends: "adduser",
		files: map[string]entry{
			"/usr/bin/osapgw":                     exe,
			"/etc/osapgw/osapgw.toml":             {mode: "-rw-r-----", owner: "root/osapgw"},
			"/lib/systemd/system/osapgw.service":  doc,
			"/usr/share/doc/osapgw/copyright":     doc,
			"/usr/share/doc/osapgw/changelog.gz":  doc,
			"/usr/share/man/man1/osapgw.1.gz":     doc,
			"/usr/share/lintian/overrides/osapgw": doc,
			// The user's profiles go there; the sample is not read.
			"/etc/osapgw/profiles.d/example.toml.sample": doc,
		},
		conffiles: []string{"/etc/osapgw/osapgw.toml", "/etc/osapgw/profiles.d/example.toml.sample"},
		unit:      "/lib/systemd/system/osapgw.service",
		unitSrc:   "packaging/osapgw.service",
		conf:      "/etc/osapgw/osapgw.toml",
		confSrc:   "configs/osapgw.toml",
		dirs:      []string{"/etc/osapgw", "/etc/osapgw/profiles.d"},
		same:      map[string]string{"/etc/osapgw/profiles.d/example.toml.sample": "packaging/profiles.d/example.toml.sample"},
	}}
	if hasPlatform() {
		s = append(s, packageSpec{
			name:    "osap-platform",
			depends: "",
			files: map[string]entry{
				"/usr/bin/osap-platform":                     exe,
				"/etc/default/osap-platform":                 doc,
				"/etc/osap-platform/devices.toml":            {mode: "-rw-------", owner: "root/root"},
				"/lib/systemd/system/osap-platform.service":  doc,
				"/usr/share/doc/osap-platform/copyright":     doc,
				"/usr/share/doc/osap-platform/changelog.gz":  doc,
				"/usr/share/man/man1/osap-platform.1.gz":     doc,
				"/usr/share/lintian/overrides/osap-platform": doc,
			},
			conffiles: []string{"/etc/default/osap-platform", "/etc/osap-platform/devices.toml"},
			unit:      "/lib/systemd/system/osap-platform.service",
			unitSrc:   "packaging/osap-platform.service",
			conf:      "/etc/default/osap-platform",
			confSrc:   "packaging/osap-platform.default",
		})
	}
	return s
}

func TestDebPackages(t *testing.T) {
	dir := debs(t, debVersion1)
	if !hasPlatform() {
		t.Log("cmd/osap-platform does not exist yet: only the osapgw package is checked")
	}
	for _, arch := range arches(t) {
		for _, spec := range specs() {
			t.Run(spec.name+"_"+arch.name, func(t *testing.T) {
				deb := debPath(t, dir, spec.name, debVersion1, arch.name)
				checkControl(t, deb, spec, arch)
				checkFiles(t, deb, spec)
				checkExtracted(t, deb, spec, arch)
			})
		}
	}
}

func checkControl(t *testing.T, deb string, spec packageSpec, arch debArch) {
	t.Helper()
	fields := map[string]string{}
	for _, name := range []string{"Package", "Version", "Architecture", "Depends", "Maintainer", "Section", "Priority", "Description"} {
		fields[name] = strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, name))
	}
	want := map[string]string{"Package": spec.name, "Architecture": arch.name, "Depends": spec.depends, "Section": "net", "Priority": "optional"}
	if os.Getenv("OSAPGW_DEB_DIST") == "" {
		want["Version"] = debVersion1
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s: control field %s = %q, want %q", filepath.Base(deb), k, fields[k], v)
		}
	}
	if !regexp.MustCompile(`^.+ <[^@ ]+@[^@ ]+>$`).MatchString(fields["Maintainer"]) {
		t.Errorf("%s: Maintainer = %q, want \"Name <address>\"", filepath.Base(deb), fields["Maintainer"])
	}
	if first, _, _ := strings.Cut(fields["Description"], "\n"); len(first) == 0 || len(first) > 80 {
		t.Errorf("%s: Description synopsis %q, want 1 to 80 characters", filepath.Base(deb), first)
	}
	ctrl := filepath.Join(t.TempDir(), "control")
	run(t, "dpkg-deb", "--control", deb, ctrl)
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil {
		t.Fatalf("%s: conffiles: %v", filepath.Base(deb), err)
	}
	got := strings.Fields(string(conffiles))
	slices.Sort(got)
	if !slices.Equal(got, spec.conffiles) {
		t.Errorf("%s: conffiles = %q, want %q", filepath.Base(deb), got, spec.conffiles)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctrl, script))
		if err != nil {
			t.Errorf("%s: maintainer script: %v", filepath.Base(deb), err)
			continue
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %s has mode %04o, want 0755", filepath.Base(deb), script, fi.Mode().Perm())
		}
	}
}

func checkFiles(t *testing.T, deb string, spec packageSpec) {
	t.Helper()
	files := contents(t, deb)
	for path, want := range spec.files {
		got, ok := files[path]
		if !ok {
			t.Errorf("%s: %s missing", filepath.Base(deb), path)
			continue
		}
		if got != want {
			t.Errorf("%s: %s is %s %s, want %s %s", filepath.Base(deb), path, got.mode, got.owner, want.mode, want.owner)
		}
	}
	for _, dir := range spec.dirs {
		if e, ok := files[dir]; !ok || e.mode[0] != 'd' {
			t.Errorf("%s: directory %s missing", filepath.Base(deb), dir)
		}
	}
	for path, e := range files {
		if e.mode[0] == 'd' {
			if e.owner != "root/root" || e.mode != "drwxr-xr-x" {
				t.Errorf("%s: directory %s is %s %s, want drwxr-xr-x root/root", filepath.Base(deb), path, e.mode, e.owner)
			}
			continue
		}
		if _, ok := spec.files[path]; !ok {
			t.Errorf("%s: unexpected file %s", filepath.Base(deb), path)
		}
	}
}

// checkExtracted unpacks the package and checks the binary, the docs and
// that the unit and the conffile are the repository's.
func checkExtracted(t *testing.T, deb string, spec packageSpec, arch debArch) {
	t.Helper()
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)

	bin := filepath.Join(root, "usr", "bin", spec.name)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", spec.name, err)
	}
	defer f.Close()
	if f.Machine != arch.machine || f.Class != arch.class {
		t.Errorf("%s for %s is %v %v, want %v %v", spec.name, arch.name, f.Class, f.Machine, arch.class, arch.machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s for %s is dynamically linked (%v), want static", spec.name, arch.name, p.Type)
		}
	}

	pairs := [][2]string{{spec.unit, spec.unitSrc}, {spec.conf, spec.confSrc}}
	for dst, src := range spec.same {
		pairs = append(pairs, [2]string{dst, src})
	}
	for _, pair := range pairs {
		got, err := os.ReadFile(filepath.Join(root, pair[0]))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(repoRoot, pair[1]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s in %s differs from %s", pair[0], filepath.Base(deb), pair[1])
		}
	}

	changelog := gunzip(t, filepath.Join(root, "usr/share/doc", spec.name, "changelog.gz"))
	first, _, _ := strings.Cut(changelog, "\n")
	wantFirst := regexp.MustCompile(`^` + regexp.QuoteMeta(spec.name) + ` \([0-9][A-Za-z0-9.+~]*\) unstable; urgency=medium$`)
	if !wantFirst.MatchString(first) {
		t.Errorf("changelog of %s starts %q, want %q", spec.name, first, wantFirst)
	}
	if os.Getenv("OSAPGW_DEB_DIST") == "" && !strings.Contains(first, "("+debVersion1+")") {
		t.Errorf("changelog of %s starts %q, want version %s", spec.name, first, debVersion1)
	}
	if !regexp.MustCompile(`(?m)^ -- .+ <.+>  \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$`).MatchString(changelog) {
		t.Errorf("changelog of %s has no valid trailer line:\n%s", spec.name, changelog)
	}
	copyright, err := os.ReadFile(filepath.Join(root, "usr/share/doc", spec.name, "copyright"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(copyright, []byte("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")) {
		t.Errorf("copyright of %s is not machine-readable (DEP-5)", spec.name)
	}
	man := gunzip(t, filepath.Join(root, "usr/share/man/man1", spec.name+".1.gz"))
	if !strings.HasPrefix(man, ".TH ") {
		t.Errorf("man page of %s does not start with .TH", spec.name)
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

func TestLintian(t *testing.T) {
	needTools(t, "lintian")
	dir := debs(t, debVersion1)
	var pkgs []string
	for _, arch := range arches(t) {
		for _, spec := range specs() {
			pkgs = append(pkgs, debPath(t, dir, spec.name, debVersion1, arch.name))
		}
	}
	args := append([]string{"--fail-on", "error", "--display-level", ">=warning"}, pkgs...)
	out, err := exec.Command("lintian", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}
}

func TestUnitSecurityExposure(t *testing.T) {
	needTools(t, "systemd-analyze")
	for _, unit := range []string{"osapgw.service", "osap-platform.service"} {
		t.Run(unit, func(t *testing.T) {
			cmd := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", unit)
			cmd.Dir = repoRoot + "/packaging"
			out, err := cmd.CombinedOutput()
			m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\w+)`).FindSubmatch(out)
			if m == nil {
				if err != nil && bytes.Contains(out, []byte("--offline")) {
					t.Skipf("systemd-analyze has no --offline (systemd < 252): %s", out)
				}
				t.Fatalf("systemd-analyze security %s: %v, no exposure level in:\n%s", unit, err, out)
			}
			score, _ := strconv.ParseFloat(string(m[1]), 64)
			t.Logf("%s: exposure %s %s", unit, m[1], m[2])
			if score > 2.0 || string(m[2]) != "OK" {
				t.Errorf("exposure of %s = %s %s, want 2.0 or less, OK", unit, m[1], m[2])
			}
		})
	}
}

// hostBinary builds cmd/osapgw for the host, once.
var hostBinary = sync.OnceValues(func() (string, error) {
	out := filepath.Join(workDir, "host", "osapgw")
	cmd := exec.Command(goTool(), "build", "-o", out, "./cmd/osapgw") // as packaged
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/osapgw: %v\n%s", err, b)
	}
	return out, nil
})

// subcommands lists the commands `osapgw --help` prints.
func subcommands(t *testing.T, bin string) []string {
	t.Helper()
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	var cmds []string
	inList := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "commands:"):
			inList = true
		case inList && strings.HasPrefix(line, "  "):
			cmds = append(cmds, strings.Fields(line)[0])
		case inList && strings.TrimSpace(line) == "" && len(cmds) > 0:
			inList = false
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("osapgw --help lists no commands:\n%s", out)
	}
	return cmds
}

func TestManPageCoversEverySubcommand(t *testing.T) {
	bin, err := hostBinary()
	if err != nil {
		t.Fatal(err)
	}
	man, err := os.ReadFile(filepath.Join(repoRoot, "packaging/man/osapgw.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range subcommands(t, bin) {
		if !regexp.MustCompile(`(?m)^\.SS "` + regexp.QuoteMeta(c) + `[ "]`).Match(man) {
			t.Errorf("packaging/man/osapgw.1 has no .SS section for subcommand %q", c)
		}
		// Every subcommand answers -h, which is the man page's promise.
		if out, err := exec.Command(bin, c, "-h").CombinedOutput(); err != nil {
			t.Errorf("osapgw %s -h: %v\n%s", c, err, out)
		}
	}
}

// hasCommand reports whether bin has the subcommand (its -h succeeds).
func hasCommand(bin, name string) bool {
	return exec.Command(bin, name, "-h").Run() == nil
}

func TestPackagedConfigPassesCheck(t *testing.T) {
	bin, err := hostBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !hasCommand(bin, "check") {
		t.Skip("osapgw has no check command yet: configs/osapgw.toml is not validated")
	}
	conf, err := os.ReadFile(filepath.Join(repoRoot, "configs/osapgw.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The operator's one step: the verification code from the label.
	dir := t.TempDir()
	code := filepath.Join(dir, "verification-code")
	if err := os.WriteFile(code, []byte("ABCDEF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const codeLine = `verification_code_file = "/etc/osapgw/verification-code"`
	if !bytes.Contains(conf, []byte(codeLine)) {
		t.Fatalf("configs/osapgw.toml has no line %s", codeLine)
	}
	conf = bytes.Replace(conf, []byte(codeLine), []byte(`verification_code_file = "`+code+`"`), 1)
	path := filepath.Join(dir, "osapgw.toml")
	if err := os.WriteFile(path, conf, 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "-c", path).CombinedOutput(); err != nil {
		t.Errorf("osapgw check -c configs/osapgw.toml (verification code supplied): %v\n%s", err, out)
	}
}

func TestDebVersion(t *testing.T) {
	tests := []struct {
		name string
		git  string
		want string
	}{
		{name: "release tag", git: "v1.2.3", want: "1.2.3"},
		{name: "tag without v", git: "1.2.3", want: "1.2.3"},
		{name: "pre-release", git: "v1.2.3-rc1", want: "1.2.3~rc1"},
		{name: "commits after tag", git: "v1.2.3-4-gabc1234", want: "1.2.3+4.gabc1234"},
		{name: "dirty", git: "v1.2.3-4-gabc1234-dirty", want: "1.2.3+4.gabc1234.dirty"},
		{name: "commits after pre-release", git: "v2.0.0-beta.1-2-gdeadbee", want: "2.0.0~beta.1+2.gdeadbee"},
		{name: "no tag", git: "82755d4", want: `^0\.0\.0\+[0-9]+\.g82755d4$`},
		{name: "no tag dirty", git: "82755d4-dirty", want: `^0\.0\.0\+[0-9]+\.g82755d4\.dirty$`},
		{name: "not from git", git: "dev", want: "0.0.0~dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command("sh", filepath.Join(repoRoot, "packaging/debversion.sh"), tt.git).Output()
			if err != nil {
				t.Fatalf("debversion.sh %q: %v", tt.git, err)
			}
			got := strings.TrimSpace(string(out))
			if strings.HasPrefix(tt.want, "^") {
				if !regexp.MustCompile(tt.want).MatchString(got) {
					t.Errorf("debversion.sh %q = %q, want a match of %s", tt.git, got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("debversion.sh %q = %q, want %q", tt.git, got, tt.want)
			}
		})
	}
	// The mapping must keep the order of the commits.
	if _, err := exec.LookPath("dpkg"); err == nil {
		ordered := []string{"0.0.0~dev", "0.0.0+12.gabc", "1.2.3~rc1", "1.2.3", "1.2.3+4.gabc1234", "1.2.3+4.gabc1234.dirty", "1.2.4~rc1"}
		for i := 1; i < len(ordered); i++ {
			if err := exec.Command("dpkg", "--compare-versions", ordered[i-1], "lt", ordered[i]).Run(); err != nil {
				t.Errorf("dpkg --compare-versions %s lt %s: false", ordered[i-1], ordered[i])
			}
		}
	}
}
