package engine_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// Load test knobs. `make test` runs the default (300 versions x 4
// platforms of small packages, and a short larger-package run for the
// memory comparison); set them for bigger runs.
const (
	loadVersionsEnv         = "TOFU_OCI_MIRROR_LOAD_VERSIONS"       // provider versions in the main run (default 300)
	loadLargeEnv            = "TOFU_OCI_MIRROR_LOAD_LARGE_SIZE"     // package size of the larger run, bytes (default 8 MiB)
	loadLargeCountEnv       = "TOFU_OCI_MIRROR_LOAD_LARGE_VERSIONS" // provider versions of the larger run (default 4)
	loadShardsEnv           = "TOFU_OCI_MIRROR_LOAD_SHARDS"         // processes of the main runs, --shard k/N at once (default 1: unsharded)
	loadSmallSize           = 1 << 10
	loadConcurrency         = 8
	loadVersionsPerProvider = 12
)

var loadPlatforms = []string{"linux_amd64", "linux_arm64", "darwin_arm64", "windows_amd64"}

func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// buildCLI builds the tofu-oci-mirror binary, so its own memory can be
// measured apart from the test servers running in this process.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tofu-oci-mirror")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/tofu-oci-mirror/tofu-oci-mirror/cmd/tofu-oci-mirror")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// loadRun is one sync of the CLI and what it cost.
type loadRun struct {
	wall      time.Duration
	maxRSS    int64 // KiB, the child's peak resident set, as its report gives it
	done      int
	unchanged int
	failed    int
	zips      int // provider packages downloaded from the upstream
	pushes    int // write requests to the registry
}

type loadWorld struct {
	t        *testing.T
	bin      string
	up       *testupstream.Server
	reg      *testregistry.Registry
	dir      string
	plan     string
	versions int
}

// newLoadWorld registers versions provider versions (12 per provider) for
// four platforms with packages of size bytes, and a plan naming them all.
func newLoadWorld(t *testing.T, bin string, versions int, size int64) *loadWorld {
	t.Helper()
	w := &loadWorld{t: t, bin: bin, up: testupstream.New(t, testupstream.WithPackageSize(size)),
		reg: testregistry.New(t, testregistry.WithFilesystem(t.TempDir())), dir: t.TempDir(), versions: versions}
	var body strings.Builder
	body.WriteString("platforms: [" + strings.Join(loadPlatforms, ", ") + "]\nproviders:\n")
	for i := 0; i*loadVersionsPerProvider < versions; i++ {
		typ := fmt.Sprintf("load%03d", i)
		for v := 0; v < loadVersionsPerProvider && i*loadVersionsPerProvider+v < versions; v++ {
			w.up.AddProvider("acme", typ, fmt.Sprintf("1.%d.0", v), loadPlatforms...)
		}
		fmt.Fprintf(&body, "  - source: acme/%s\n    versions: \">= 1.0.0\"\n", typ)
	}
	w.plan = filepath.Join(w.dir, "mirror.yaml")
	yaml := fmt.Sprintf("version: 1\ntarget:\n  registry: %q\n  insecure: true\nupstream:\n  ca_file: %q\n  hosts:\n    registry.opentofu.org:\n      services:\n        providers.v1: %q\n%s",
		w.reg.Host, w.up.CAFile, w.up.Services()["providers.v1"], body.String())
	if err := os.WriteFile(w.plan, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// sync runs `tofu-oci-mirror sync` as shards child processes at once
// (--shard k/shards; one unsharded process when shards is 1) and sums
// their reports; maxRSS is the largest process's.
func (w *loadWorld) sync(name string, shards int) loadRun {
	w.t.Helper()
	w.up.ResetCounts()
	w.reg.ResetCounts()
	type result struct {
		out []byte
		err error
	}
	results := make([]result, shards)
	var wg sync.WaitGroup
	start := time.Now()
	for k := range shards {
		spool := filepath.Join(w.dir, fmt.Sprintf("spool-%d", k))
		if err := os.MkdirAll(spool, 0o755); err != nil {
			w.t.Fatal(err)
		}
		args := []string{"sync", "-c", w.plan, "--concurrency", strconv.Itoa(loadConcurrency), "--no-progress",
			"--log-level", "warn", "--spool-dir", spool, "--report", filepath.Join(w.dir, fmt.Sprintf("%s-%d.json", name, k))}
		if shards > 1 {
			args = append(args, "--shard", fmt.Sprintf("%d/%d", k, shards))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command(w.bin, args...).CombinedOutput()
			results[k] = result{out, err}
		}()
	}
	wg.Wait()
	run := loadRun{wall: time.Since(start)}
	for k := range shards {
		if results[k].err != nil {
			w.t.Fatalf("%s shard %d: %v\n%s", name, k, results[k].err, results[k].out)
		}
		var rep struct {
			Summary map[string]int64 `json:"summary"`
			// rusage's maxrss would count this test process too: the child
			// shares its memory between fork and exec.
			PeakRSS int64 `json:"peak_rss_bytes"`
		}
		raw, err := os.ReadFile(filepath.Join(w.dir, fmt.Sprintf("%s-%d.json", name, k)))
		if err != nil || json.Unmarshal(raw, &rep) != nil || rep.PeakRSS == 0 {
			w.t.Fatalf("%s: report: %v\n%s", name, err, raw)
		}
		run.maxRSS = max(run.maxRSS, rep.PeakRSS>>10)
		run.done += int(rep.Summary["done"])
		run.unchanged += int(rep.Summary["unchanged"])
		run.failed += int(rep.Summary["failed"])
		if left, _ := os.ReadDir(filepath.Join(w.dir, fmt.Sprintf("spool-%d", k))); len(left) > 0 {
			w.t.Fatalf("%s: %d spool files left", name, len(left))
		}
	}
	run.zips, run.pushes = w.up.Counts().Zip, w.reg.Counts().Pushes()
	rc, uc := w.reg.Counts(), w.up.Counts()
	w.t.Logf("%s: %d versions x %d platforms in %d process(es): %d done, %d unchanged, %d failed; %d packages downloaded, %d registry writes, %d registry requests, %d upstream versions calls; %s wall, max RSS %.1f MiB",
		name, w.versions, len(loadPlatforms), shards, run.done, run.unchanged, run.failed, run.zips, run.pushes, rc.Total, uc.Versions, run.wall.Round(time.Millisecond), float64(run.maxRSS)/1024)
	return run
}

// TestLoadManyVersions syncs at least 300 provider versions x 4 platforms
// with concurrency 8 into the in-process registry: no errors, a second run
// that downloads and pushes nothing, and a tool whose peak memory does not
// follow the size of the packages it copies.
func TestLoadManyVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	bin := buildCLI(t)
	versions := int(envInt(t, loadVersionsEnv, 300))
	shards := int(envInt(t, loadShardsEnv, 1))

	w := newLoadWorld(t, bin, versions, loadSmallSize)
	first := w.sync("first", shards)
	if first.failed != 0 || first.done != versions || first.zips != versions*len(loadPlatforms) {
		t.Fatalf("first run: %+v, want %d versions done from %d packages", first, versions, versions*len(loadPlatforms))
	}
	second := w.sync("second", shards)
	if second.unchanged != versions || second.done != 0 || second.zips != 0 || second.pushes != 0 {
		t.Fatalf("second run is not a no-op: %+v", second)
	}

	largeSize := envInt(t, loadLargeEnv, 8<<20)
	largeVersions := int(envInt(t, loadLargeCountEnv, 4))
	large := newLoadWorld(t, bin, largeVersions, largeSize).sync("large packages", 1)
	if large.failed != 0 || large.done != largeVersions {
		t.Fatalf("large run: %+v", large)
	}
	// Packages are streamed through a spool file: eight in flight at once
	// must not cost anything like eight packages of memory.
	budget := first.maxRSS + 4*largeSize/1024
	t.Logf("peak RSS: %.1f MiB with %d x %d B packages, %.1f MiB with %d x %d MiB packages",
		float64(first.maxRSS)/1024, versions*len(loadPlatforms), loadSmallSize, float64(large.maxRSS)/1024, largeVersions*len(loadPlatforms), largeSize>>20)
	if large.maxRSS > budget {
		t.Fatalf("peak RSS %d KiB with %d MiB packages exceeds %d KiB (small-package peak + half of the %d packages in flight)",
			large.maxRSS, largeSize>>20, budget, loadConcurrency)
	}
}
