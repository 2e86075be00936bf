package faulttest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
)

// peakRSS runs the CLI to completion and returns the peak resident set it
// reports of itself (rusage's maxrss would also count this test process,
// whose memory the child shares between fork and exec).
func peakRSS(t *testing.T, dir string, args ...string) int64 {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(mirrorBin, append(args, "--report", report)...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tofu-oci-mirror %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var rep struct {
		PeakRSS int64 `json:"peak_rss_bytes"`
	}
	raw, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(raw, &rep) != nil || rep.PeakRSS == 0 {
		t.Fatalf("report %s: %v\n%s", report, err, raw)
	}
	return rep.PeakRSS
}

// memoryScene syncs, exports and imports one provider whose package has
// the given size, and returns the peak RSS of each command.
func memoryScene(t *testing.T, size int64) (syncRSS, exportRSS, importRSS int64) {
	up := testupstream.New(t, testupstream.WithPackageSize(size))
	up.AddProvider("acme", "big", "1.0.0", "linux_amd64")
	dir := t.TempDir()
	// The inside pins the provider's key (trust.provider_keys), so the
	// bundle need not be signed.
	keys := filepath.Join(t.TempDir(), "provider-keys")
	if err := os.MkdirAll(filepath.Join(keys, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "acme", up.KeyID+".asc"), []byte(up.ArmoredPublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := func(reg *testregistry.Registry) string {
		p := filepath.Join(t.TempDir(), "mirror.yaml")
		yaml := fmt.Sprintf("version: 1\ntarget:\n  registry: %q\n  insecure: true\nupstream:\n  ca_file: %q\n  hosts:\n    registry.opentofu.org:\n      services:\n        providers.v1: %q\nplatforms: [linux_amd64]\nproviders:\n  - source: acme/big\n    versions: \"1.0.0\"\ntrust:\n  provider_keys: %q\n",
			reg.Host, up.CAFile, up.Services()["providers.v1"], keys)
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Filesystem storage: the in-memory driver copies a blob on every write.
	a, b := testregistry.New(t, testregistry.WithFilesystem(t.TempDir())), testregistry.New(t, testregistry.WithFilesystem(t.TempDir()))
	bundle := filepath.Join(dir, "bundle.tar")
	syncRSS = peakRSS(t, dir, "sync", "-c", plan(a), "--no-progress", "--log-level", "warn")
	exportRSS = peakRSS(t, dir, "export", "-c", plan(a), "--output", bundle, "--no-progress", "--log-level", "warn")
	importRSS = peakRSS(t, dir, "import", "-c", plan(b), bundle, "--no-progress", "--log-level", "warn", "--allow-unsigned-bundle")
	if fi, err := os.Stat(bundle); err != nil || fi.Size() < size {
		t.Fatalf("bundle: %v", err)
	}
	return syncRSS, exportRSS, importRSS
}

// TestMemoryStaysFlatAsPackagesGrow: sync, export and import stream
// packages (hashing as they go, spooling to disk), so a package 16 times
// larger must not raise peak memory; and none comes near 100 MB.
func TestMemoryStaysFlatAsPackagesGrow(t *testing.T) {
	const small, large = 8 << 20, 128 << 20
	s1, e1, i1 := memoryScene(t, small)
	s2, e2, i2 := memoryScene(t, large)
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
	t.Logf("peak RSS with a %d MiB package: sync %s, export %s, import %s", small>>20, mb(s1), mb(e1), mb(i1))
	t.Logf("peak RSS with a %d MiB package: sync %s, export %s, import %s", large>>20, mb(s2), mb(e2), mb(i2))
	for _, c := range []struct {
		name         string
		small, large int64
	}{{"sync", s1, s2}, {"export", e1, e2}, {"import", i1, i2}} {
		if c.large > 100e6 {
			t.Errorf("%s: peak RSS %s with a %d MiB package, want under 100 MB", c.name, mb(c.large), large>>20)
		}
		if c.large-c.small > 16<<20 {
			t.Errorf("%s: peak RSS grew from %s to %s with the package size", c.name, mb(c.small), mb(c.large))
		}
	}
}

// TestSIGTERMStopsCleanly: a terminated sync stops new work, prints its
// summary, exits non-zero, tags nothing half-done, and the next run
// completes the work.
func TestSIGTERMStopsCleanly(t *testing.T) {
	s := newScene(t)
	faults := &faulttest.RegistryFaults{}
	reg := testregistry.New(t, testregistry.WithMiddleware(faults.Middleware))
	plan := s.plan(reg)
	cmd := exec.Command(mirrorBin, "sync", "-c", plan, "--no-progress", "--concurrency", "1")
	cmd.Dir = s.dir
	cmd.Env = []string{"HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	started := make(chan struct{})
	proc := make(chan *os.Process, 1)
	faults.Trigger(func(p faulttest.Progress) bool { return p.Stored >= 5 }, func() {
		p := <-proc
		_ = p.Signal(syscall.SIGTERM)
		close(started)
		time.Sleep(200 * time.Millisecond) // let the signal land before this upload is answered
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc <- cmd.Process
	err := cmd.Wait()
	select {
	case <-started:
	default:
		t.Fatalf("the sync ended before the signal was sent:\n%s", out.String())
	}
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("want exit 1 after SIGTERM, got %v:\n%s", err, out.String())
	}
	for _, want := range []string{"terminated: stopping", "Sync:", "failed", "interrupted"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	ctx := t.Context()
	for _, repo := range repos {
		if _, err := faulttest.CompleteProviderVersions(ctx, reg.Client(), reg.Host, repo, platforms); err != nil {
			t.Fatalf("after SIGTERM, %s: %v", repo, err)
		}
	}
	before := faults.Stored()
	faults.Reset()
	s.mustMirror(faults, "sync", "-c", plan, "--no-progress")
	// Only what was in flight when the signal came (one package, and the
	// 2-byte config a version checks before taking a transfer slot) may
	// have to go again.
	if again := faults.StoredAgain(before); len(again) > 2 {
		t.Fatalf("the run after SIGTERM uploaded again: %v", again)
	}
}
