package acceptance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// The provider every scenario mirrors. Sources without a hostname mean
// registry.opentofu.org, which the test upstream stands in for.
const (
	originHost = "registry.opentofu.org"
	namespace  = "acme"
	ptype      = "echo"
	source     = namespace + "/" + ptype
	address    = originHost + "/" + source
)

// currentPlatform is the OS_ARCH whose zip holds the real echo provider.
var currentPlatform = runtime.GOOS + "_" + runtime.GOARCH

// otherPlatform is a second lock-file platform; its zip is synthetic (signed
// and hashed like the real one, but OpenTofu never runs it here).
func otherPlatform() string {
	if currentPlatform == "darwin_arm64" {
		return "linux_amd64"
	}
	return "darwin_arm64"
}

// world is one scenario's universe: its own test upstream, its own TLS
// registry, its own directories, and the CA bundle OpenTofu trusts.
type world struct {
	t    *testing.T
	up   *testupstream.Server
	reg  *testregistry.Registry
	tofu string
	// dir holds the plan file, the CA bundle and the CLI configs.
	dir string
	// caBundle concatenates the registry's and the upstream's test CAs; it
	// is SSL_CERT_FILE for tofu, which has no other way to trust them.
	caBundle string
	// bundleKey signs the bundles this world exports and is trusted by
	// its plans (trust.bundle_keys); trust is more of the plans' trust
	// section (e.g. provider_keys).
	bundleKey *testpgp.Key
	trust     string
}

// scenarioTofu maps the *testing.T of each eachTofu subtest to the OpenTofu
// binary it runs, so scenario bodies keep calling newWorld(t).
var scenarioTofu sync.Map

// eachTofu runs scenario once per pinned OpenTofu release (oldest with OCI
// support and newest), as parallel subtests named "tofu-VERSION".
func eachTofu(t *testing.T, scenario func(t *testing.T)) {
	t.Helper()
	t.Parallel()
	for _, bin := range testtools.Tofus(t) {
		t.Run("tofu-"+bin.Version, func(t *testing.T) {
			scenarioTofu.Store(t, bin)
			t.Cleanup(func() { scenarioTofu.Delete(t) })
			scenario(t)
		})
	}
}

// newWorld starts an upstream and a TLS registry (plus regOpts) and builds
// the binaries the scenario needs. t must be the one eachTofu passed to the
// scenario: it decides which OpenTofu runs.
func newWorld(t *testing.T, regOpts ...testregistry.Option) *world {
	t.Helper()
	bin, ok := scenarioTofu.Load(t)
	if !ok {
		t.Fatal("newWorld outside eachTofu: run the scenario with eachTofu(t, scenario) so every pinned OpenTofu judges it")
	}
	return newWorldUsing(t, bin.(testtools.TofuBinary), regOpts...)
}

// newWorldUsing is newWorld for a scenario that picks its OpenTofu itself
// (one that compares the pinned versions within one world, or needs one).
func newWorldUsing(t *testing.T, bin testtools.TofuBinary, regOpts ...testregistry.Option) *world {
	t.Helper()
	w := &world{
		t:    t,
		tofu: bin.Path,
		up:   testupstream.New(t),
		reg:  testregistry.New(t, append([]testregistry.Option{testregistry.WithTLS()}, regOpts...)...),
		dir:  t.TempDir(),
	}
	w.caBundle = filepath.Join(w.dir, "ca-bundle.pem")
	writeFile(t, w.caBundle, string(w.reg.CACertPEM)+string(w.up.CACertPEM))
	w.bundleKey = testpgp.New(t, "bundle signer", "").Write(t, t.TempDir(), "bundle-signer")
	return w
}

// trustSection is the plans' trust section: the world's bundle key, and
// w.trust.
func (w *world) trustSection() string {
	return fmt.Sprintf("trust:\n  bundle_keys: [%q]\n%s", w.bundleKey.PublicFile, w.trust)
}

// sub is w for a subtest: helpers report failures to t.
func (w *world) sub(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

// addEcho publishes version of acme/echo upstream: the real echo provider
// for the current platform and synthetic zips for the others.
func (w *world) addEcho(version string, otherPlatforms ...string) {
	w.t.Helper()
	w.up.AddProviderZip(namespace, ptype, version, currentPlatform, echoZip(w.t, version))
	for _, p := range otherPlatforms {
		w.up.AddProvider(namespace, ptype, version, p)
	}
}

var (
	echoZipsMu sync.Mutex
	echoZips   = map[string][]byte{}
)

// echoZip returns a provider release zip of the echo binary named for
// version, as its author would publish it. Deflating 17 MB takes a moment,
// so zips are shared by the scenarios (read-only).
func echoZip(t *testing.T, version string) []byte {
	t.Helper()
	bin := testtools.EchoProvider(t)
	echoZipsMu.Lock()
	defer echoZipsMu.Unlock()
	if z, ok := echoZips[version]; ok {
		return z
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("reading %s: %v", bin, err)
	}
	z := testupstream.BuildProviderZip(fmt.Sprintf("terraform-provider-%s_v%s", ptype, version), content)
	echoZips[version] = z
	return z
}

// writePlan writes a plan file that mirrors acme/echo (versions, platforms)
// from the test upstream into the TLS registry and returns its path.
func (w *world) writePlan(versions string, platforms ...string) string {
	w.t.Helper()
	svc := w.up.Services()
	quoted := make([]string, len(platforms))
	for i, p := range platforms {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	plan := fmt.Sprintf(`version: 1
target:
  registry: %q
  ca_file: %q
upstream:
  ca_file: %q
  hosts:
    %s:
      services:
        providers.v1: %q
platforms: [%s]
providers:
  - source: %s
    versions: %q
%s`, w.reg.Host, w.reg.CAFile, w.up.CAFile, originHost, svc["providers.v1"], strings.Join(quoted, ", "), source, versions, w.trustSection())
	path := filepath.Join(w.dir, "mirror.yaml")
	writeFile(w.t, path, plan)
	return path
}

// mirrorRun is one execution of our CLI.
type mirrorRun struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r mirrorRun) String() string {
	return fmt.Sprintf("tofu-oci-mirror %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// mirror runs tofu-oci-mirror as a user would, in an environment of its
// own: a fresh HOME (so no ~/.docker/config.json of the machine leaks in),
// PATH and TMPDIR, then env. It fails the test only when the binary cannot
// be started; the exit code is the caller's to check.
func (w *world) mirror(env []string, args ...string) mirrorRun {
	w.t.Helper()
	cmd := exec.CommandContext(w.t.Context(), mirrorBin, args...)
	cmd.Dir = w.dir
	cmd.Env = []string{"HOME=" + w.t.TempDir()}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	run := mirrorRun{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.code = exit.ExitCode()
	case err != nil:
		w.t.Fatalf("running %s: %v", mirrorBin, err)
	}
	w.t.Logf("%s\n(%s)", run, time.Since(start).Round(time.Millisecond))
	return run
}

// mustMirror runs the CLI and fails the test unless it exits with want.
func (w *world) mustMirror(want int, env []string, args ...string) mirrorRun {
	w.t.Helper()
	run := w.mirror(env, args...)
	if run.code != want {
		w.t.Fatalf("want exit %d, got:\n%s", want, run)
	}
	return run
}

// sync mirrors the plan and checks the CLI's exit codes around it: plan
// says work is pending (2), sync succeeds (0), and plan then finds nothing
// to do (0).
func (w *world) sync(plan string, extra ...string) {
	w.t.Helper()
	args := func(cmd string, more ...string) []string {
		return append(append([]string{cmd, "-c", plan}, more...), extra...)
	}
	w.mustMirror(2, nil, args("plan", "--detailed-exitcode")...)
	w.mustMirror(0, nil, args("sync", "--no-progress")...)
	w.mustMirror(0, nil, args("plan", "--detailed-exitcode")...)
}

// mirrorCLIConfig writes, as a user would, the output of `tofu-oci-mirror
// tofurc` (plus extra HCL) as tofu's CLI configuration and returns its path.
// It carries no host block, so tofu has no way to the upstream.
func (w *world) mirrorCLIConfig(plan, extra string) string {
	w.t.Helper()
	rc := w.mustMirror(0, nil, "tofurc", "-c", plan)
	want := fmt.Sprintf("repository_template = %q", w.reg.Host+"/opentofu-providers/${namespace}/${type}")
	if !strings.Contains(rc.stdout, want) || !strings.Contains(rc.stdout, fmt.Sprintf("%q", address)) {
		w.t.Fatalf("tofurc output lacks %s or %q:\n%s", want, address, rc.stdout)
	}
	path := filepath.Join(w.t.TempDir(), "mirror.tofurc")
	writeFile(w.t, path, rc.stdout+extra)
	return path
}

// upstreamCLIConfig writes a CLI configuration that installs from the test
// upstream standing in for registry.opentofu.org.
func (w *world) upstreamCLIConfig() string {
	w.t.Helper()
	path := filepath.Join(w.t.TempDir(), "upstream.tofurc")
	writeFile(w.t, path, fmt.Sprintf(`host %q {
  services = {
    "providers.v1" = %q
  }
}
`, originHost, w.up.Services()["providers.v1"]))
	return path
}

// echoOutput is what the root module outputs; the data source echoes it.
const echoOutput = "hello from the OCI mirror"

// workDir writes a root module requiring acme/echo with constraint and
// reading the echo data source, in a fresh directory.
func (w *world) workDir(constraint string) string {
	w.t.Helper()
	dir := w.t.TempDir()
	writeFile(w.t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = {
      source  = %q
      version = %q
    }
  }
}

data "echo" "greeting" {
  input = %q
}

output "greeting" {
  value = data.echo.greeting.output
}
`, source, constraint, echoOutput))
	return dir
}

// tofuEnv is the environment for tofu with a CLI configuration: only the
// test CAs are trusted.
func (w *world) tofuEnv(cliConfig string) []string {
	return []string{"TF_CLI_CONFIG_FILE=" + cliConfig, "SSL_CERT_FILE=" + w.caBundle}
}

// runTofu runs tofu in dir with cliConfig and fails the test if it fails.
func (w *world) runTofu(dir, cliConfig string, args ...string) string {
	w.t.Helper()
	return testtools.RunTofu(w.t, w.tofu, dir, w.tofuEnv(cliConfig), append(args, "-no-color")...)
}

// initAndApply runs tofu init and apply in dir, checks the data source
// echoed through the installed provider, and returns init's output.
func (w *world) initAndApply(dir, cliConfig string) string {
	w.t.Helper()
	out := w.runTofu(dir, cliConfig, "init", "-input=false")
	w.runTofu(dir, cliConfig, "apply", "-auto-approve", "-input=false")
	got := testtools.RunTofu(w.t, w.tofu, dir, w.tofuEnv(cliConfig), "output", "-raw", "greeting")
	if got != echoOutput {
		w.t.Fatalf("tofu output -raw greeting = %q, want %q", got, echoOutput)
	}
	return out
}

// assertInstalled checks that tofu installed version of acme/echo: the lock
// file records it and the unpacked executable is where tofu keeps it.
func (w *world) assertInstalled(dir, version string) lockedProvider {
	w.t.Helper()
	lock := readLock(w.t, dir)[address]
	if lock.Version != version {
		w.t.Fatalf(".terraform.lock.hcl: %s version %q, want %q", address, lock.Version, version)
	}
	exe := filepath.Join(dir, ".terraform", "providers", originHost, namespace, ptype, version, currentPlatform,
		fmt.Sprintf("terraform-provider-%s_v%s", ptype, version))
	if _, err := os.Stat(exe); err != nil {
		w.t.Fatalf("installed provider executable: %v", err)
	}
	return lock
}

// zh returns the lock-file hash of the upstream's zip for version on
// platform: "zh:" and its sha256.
func (w *world) zh(version, platform string) string {
	return "zh:" + w.up.ZipSHA256(namespace, ptype, version, platform)
}

// lockedProvider is one provider block of a .terraform.lock.hcl.
type lockedProvider struct {
	Version string
	Hashes  []string
}

var (
	lockBlockRE   = regexp.MustCompile(`(?ms)^provider "([^"]+)" \{\n(.*?)^\}`)
	lockVersionRE = regexp.MustCompile(`(?m)^\s*version\s*=\s*"([^"]+)"`)
	lockHashesRE  = regexp.MustCompile(`(?s)hashes\s*=\s*\[(.*?)\]`)
	lockHashRE    = regexp.MustCompile(`"([^"]+)"`)
)

// readLock reads dir/.terraform.lock.hcl, whose layout tofu always writes
// the same way, into provider address -> block.
func readLock(t *testing.T, dir string) map[string]lockedProvider {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".terraform.lock.hcl"))
	if err != nil {
		t.Fatalf("lock file: %v", err)
	}
	out := map[string]lockedProvider{}
	for _, m := range lockBlockRE.FindAllStringSubmatch(string(b), -1) {
		var p lockedProvider
		if v := lockVersionRE.FindStringSubmatch(m[2]); v != nil {
			p.Version = v[1]
		}
		if h := lockHashesRE.FindStringSubmatch(m[2]); h != nil {
			for _, hm := range lockHashRE.FindAllStringSubmatch(h[1], -1) {
				p.Hashes = append(p.Hashes, hm[1])
			}
		}
		out[m[1]] = p
	}
	if len(out) == 0 {
		t.Fatalf("no provider blocks in %s/.terraform.lock.hcl:\n%s", dir, b)
	}
	return out
}

// zhHashes returns the "zh:" entries of hashes, sorted.
func zhHashes(hashes []string) []string {
	var out []string
	for _, h := range hashes {
		if strings.HasPrefix(h, "zh:") {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
