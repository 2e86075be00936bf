package faulttest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
)

// cliPackage is the command TestMain builds; the tests run it as a user's
// cron job would, and kill it.
const cliPackage = "github.com/tofu-oci-mirror/tofu-oci-mirror/cmd/tofu-oci-mirror"

var mirrorBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tofu-oci-mirror-faulttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest: temp dir for the CLI:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	mirrorBin = filepath.Join(dir, "tofu-oci-mirror")
	if out, err := exec.Command("go", "build", "-o", mirrorBin, cliPackage).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faulttest: go build %s: %v\n%s", cliPackage, err, out)
		return 1
	}
	return m.Run()
}

var (
	platforms = []string{"darwin_arm64", "linux_amd64", "windows_amd64"}
	repos     = []string{"opentofu-providers/acme/widget", "opentofu-providers/acme/gadget"}
)

// scene is a test upstream with two providers, three versions each on
// three platforms (18 packages), and a directory for plans and bundles.
type scene struct {
	t   *testing.T
	up  *testupstream.Server
	dir string
	key *testpgp.Key // signs the scene's bundles; its plans trust it
}

func newScene(t *testing.T) *scene {
	t.Helper()
	s := &scene{t: t, up: testupstream.New(t, testupstream.WithPackageSize(64<<10)), dir: t.TempDir()}
	s.key = testpgp.New(t, "bundle signer", "").Write(t, t.TempDir(), "bundle-signer")
	for _, typ := range []string{"widget", "gadget"} {
		for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
			s.up.AddProvider("acme", typ, v, platforms...)
		}
	}
	return s
}

// plan writes a plan file targeting reg and returns its path.
func (s *scene) plan(reg *testregistry.Registry) string {
	s.t.Helper()
	yaml := fmt.Sprintf(`version: 1
target:
  registry: %q
  insecure: true
upstream:
  ca_file: %q
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: %q
platforms: [%s]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
  - source: acme/gadget
    versions: ">= 1.0.0"
trust:
  bundle_keys: [%q]
`, reg.Host, s.up.CAFile, s.up.Services()["providers.v1"], strings.Join(platforms, ", "), s.key.PublicFile)
	path := filepath.Join(s.t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// run is one execution of the CLI.
type run struct {
	args           []string
	code           int
	killed         bool
	stdout, stderr string
	took           time.Duration
	tmp            string // its TMPDIR
}

func (r run) String() string {
	return fmt.Sprintf("tofu-oci-mirror %s: exit %d (killed %v) in %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.killed, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// mirror runs the CLI in an environment of its own. With faults and a
// condition, it SIGKILLs the process the moment the registry sees a write
// that meets cond, before the registry handles it.
func (s *scene) mirror(faults *faulttest.RegistryFaults, cond func(faulttest.Progress) bool, args ...string) run {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 2*time.Minute)
	defer cancel()
	r := run{args: args, tmp: s.t.TempDir()}
	cmd := exec.CommandContext(ctx, mirrorBin, args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"HOME=" + s.t.TempDir(), "TMPDIR=" + r.tmp, "PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	proc := make(chan *os.Process, 1)
	exited := make(chan struct{})
	if cond != nil {
		faults.Trigger(cond, func() {
			if err := (<-proc).Kill(); err != nil {
				s.t.Errorf("SIGKILL: %v", err)
			}
			// The registry handles this request only once the tool is dead.
			<-exited
		})
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", mirrorBin, err)
	}
	proc <- cmd.Process
	err := cmd.Wait()
	close(exited)
	r.took = time.Since(start)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
	default:
		s.t.Fatalf("running %s: %v", mirrorBin, err)
	}
	s.t.Logf("tofu-oci-mirror %s: exit %d (killed %v) in %s", strings.Join(args, " "), r.code, r.killed, r.took.Round(time.Millisecond))
	return r
}

// mustMirror runs the CLI to completion and fails unless it exits 0.
func (s *scene) mustMirror(faults *faulttest.RegistryFaults, args ...string) run {
	s.t.Helper()
	r := s.mirror(faults, nil, args...)
	if r.code != 0 || r.killed {
		s.t.Fatalf("want exit 0:\n%s", r)
	}
	return r
}

// state returns every tag of the scene's repositories with its digest, and
// fails the test if a version tag is visible without all its platforms.
func state(t *testing.T, reg *testregistry.Registry) []string {
	t.Helper()
	ctx := context.Background()
	for _, repo := range repos {
		if _, err := faulttest.CompleteProviderVersions(ctx, reg.Client(), reg.Host, repo, platforms); err != nil {
			t.Error(err)
		}
	}
	got, err := faulttest.TagDigests(ctx, reg.Client(), reg.Host, repos...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func assertSameState(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("final state differs from an uninterrupted run:\ngot:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// leftovers lists what a run left in its TMPDIR.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// killPoints are the moments a run is killed: the registry has just
// received the write request, and handles it only after the tool is dead.
var killPoints = []struct {
	name string
	cond func(faulttest.Progress) bool
}{
	{"after 8 blobs", func(p faulttest.Progress) bool { return p.Stored >= 8 }},
	{"at the second version tag", func(p faulttest.Progress) bool { return p.IsTag && p.TagPuts == 2 }},
}

// killAndRerun kills a run of args against a fresh registry when cond
// holds, checks what OpenTofu could see meanwhile, reruns it to the end
// and returns the final state. The rerun must not upload again a blob the
// registry already held.
func (s *scene) killAndRerun(cond func(faulttest.Progress) bool, args func(plan string) []string) []string {
	s.t.Helper()
	faults := &faulttest.RegistryFaults{}
	reg := testregistry.New(s.t, testregistry.WithMiddleware(faults.Middleware))
	plan := s.plan(reg)
	killed := s.mirror(faults, cond, args(plan)...)
	if !killed.killed {
		s.t.Fatalf("the run ended before the kill: the test proves nothing\n%s", killed)
	}
	before := faults.Stored()
	partial := state(s.t, reg)
	s.t.Logf("killed after %d blobs stored; tags (versions and referrer fallbacks) visible meanwhile: %d; left in TMPDIR: %v", len(before), len(partial), leftovers(s.t, killed.tmp))

	faults.Reset()
	reg.ResetCounts()
	// A killed run leaves its lock file behind; it must not block this one.
	s.mustMirror(faults, args(plan)...)
	for _, d := range faults.StoredAgain(before) {
		s.t.Errorf("the rerun uploaded blob %s again", d)
	}
	if reg.Counts().Pushes() == 0 {
		s.t.Errorf("the rerun wrote nothing: the kill did not interrupt anything")
	}
	return state(s.t, reg)
}

// killAtEachPoint runs args to the end against a reference registry,
// then, for each kill point, kills a run against a fresh registry and
// reruns it: the final state must be the reference's, tag for tag.
func (s *scene) killAtEachPoint(args func(plan string) []string) {
	s.t.Helper()
	reference := testregistry.New(s.t)
	s.mustMirror(nil, args(s.plan(reference))...)
	want := state(s.t, reference)
	if len(want) < 12 {
		s.t.Fatalf("the reference holds only %v", want)
	}
	for _, kp := range killPoints {
		s.t.Run(kp.name, func(t *testing.T) {
			sub := *s
			sub.t = t
			assertSameState(t, sub.killAndRerun(kp.cond, args), want)
		})
	}
}

func TestSIGKILLMidSyncThenRerun(t *testing.T) {
	newScene(t).killAtEachPoint(func(plan string) []string { return []string{"sync", "-c", plan, "--no-progress"} })
}

func TestSIGKILLMidImportThenRerun(t *testing.T) {
	s := newScene(t)
	bundle := filepath.Join(s.dir, "bundle.tar")
	// Export needs no registry; the plan's target is never contacted.
	s.mustMirror(nil, "export", "-c", s.plan(testregistry.New(t)), "-o", bundle, "--no-progress", "--sign-key", s.key.PrivateFile)
	s.killAtEachPoint(func(plan string) []string { return []string{"import", "-c", plan, "--no-progress", bundle} })
}

// TestKilledSyncLeavesNoSpool: a sync killed mid-transfer must not leave
// the packages it was moving in the spool directory, or a cron job killed
// by its timeout on a large provider (150-185 MB a package, --concurrency
// of them at once) fills the disk run after run. Spool files are unlinked
// as soon as they are created; work directories are removed by the next
// run once their owner is dead.
func TestKilledSyncLeavesNoSpool(t *testing.T) {
	s := newScene(t)
	spool := t.TempDir()
	faults := &faulttest.RegistryFaults{}
	reg := testregistry.New(t, testregistry.WithMiddleware(faults.Middleware))
	args := []string{"sync", "-c", s.plan(reg), "--no-progress", "--spool-dir", spool}
	if r := s.mirror(faults, func(p faulttest.Progress) bool { return p.Stored >= 8 }, args...); !r.killed {
		t.Fatalf("not killed:\n%s", r)
	}
	faults.Reset()
	s.mustMirror(faults, args...)
	entries, err := os.ReadDir(spool)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the spool directory after a killed run and a complete one: %s", e.Name())
	}
}
