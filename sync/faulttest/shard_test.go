package faulttest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
)

// fleetProviders are the providers of the sharded scene; with four shards
// they spread over at least three (asserted below, so a change of hash
// cannot make the test trivial).
var fleetProviders = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}

// fleetPlan writes a plan for the fleet scene targeting reg.
func fleetPlan(t *testing.T, up *testupstream.Server, reg *testregistry.Registry) string {
	t.Helper()
	var body strings.Builder
	fmt.Fprintf(&body, `version: 1
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
`, reg.Host, up.CAFile, up.Services()["providers.v1"], strings.Join(platforms, ", "))
	for _, p := range fleetProviders {
		fmt.Fprintf(&body, "  - source: acme/%s\n    versions: \">= 1.0.0\"\n", p)
	}
	path := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(path, []byte(body.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runBinary runs the real CLI to its end and returns its exit code and output.
func runBinary(ctx context.Context, dir string, args ...string) (int, string, time.Duration) {
	cmd := exec.CommandContext(ctx, mirrorBin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "TMPDIR=" + dir, "PATH=" + os.Getenv("PATH")}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		out.WriteString(err.Error())
	}
	return code, out.String(), time.Since(start)
}

// TestFourShardsEqualOneRun: four processes of the real binary, --shard
// 0/4 .. 3/4, run at the same time against one registry (one plan file,
// so four lock files side by side); the registry ends with exactly the
// tags and digests one unsharded run writes into a second registry, every
// version complete, and no blob was uploaded twice.
func TestFourShardsEqualOneRun(t *testing.T) {
	up := testupstream.New(t, testupstream.WithPackageSize(32<<10))
	var repos []string
	used := map[int]bool{}
	for _, p := range fleetProviders {
		for _, v := range []string{"1.0.0", "1.1.0"} {
			up.AddProvider("acme", p, v, platforms...)
		}
		repos = append(repos, "opentofu-providers/acme/"+p)
		used[config.ShardOf("registry.opentofu.org/acme/"+p, 4)] = true
	}
	if len(used) < 3 {
		t.Fatalf("the fleet's providers fall into only %d of 4 shards", len(used))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	reference := testregistry.New(t)
	code, out, took := runBinary(ctx, t.TempDir(), "sync", "-c", fleetPlan(t, up, reference), "--no-progress")
	if code != 0 {
		t.Fatalf("unsharded sync: exit %d\n%s", code, out)
	}
	t.Logf("one unsharded run: %s", took.Round(time.Millisecond))

	faults := &faulttest.RegistryFaults{}
	sharded := testregistry.New(t, testregistry.WithMiddleware(faults.Middleware))
	plan := fleetPlan(t, up, sharded)
	var wg sync.WaitGroup
	codes, outs, tooks := make([]int, 4), make([]string, 4), make([]time.Duration, 4)
	start := time.Now()
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[k], outs[k], tooks[k] = runBinary(ctx, t.TempDir(), "sync", "-c", plan, "--shard", fmt.Sprintf("%d/4", k), "--no-progress")
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	for k := range 4 {
		if codes[k] != 0 {
			t.Fatalf("shard %d/4: exit %d\n%s", k, codes[k], outs[k])
		}
	}
	t.Logf("four shards at once: %s wall; per shard %v", wall.Round(time.Millisecond), tooks)
	for k := range 4 {
		if _, err := os.Stat(fmt.Sprintf("%s.shard-%d-of-4.lock", plan, k)); err != nil {
			t.Errorf("shard %d took no lock of its own: %v", k, err)
		}
	}

	seen := map[string]bool{}
	for _, b := range faults.Stored() {
		if seen[b] {
			t.Errorf("blob %s uploaded twice", b)
		}
		seen[b] = true
	}
	for _, repo := range repos {
		if _, err := faulttest.CompleteProviderVersions(ctx, sharded.Client(), sharded.Host, repo, platforms); err != nil {
			t.Error(err)
		}
	}
	want, err := faulttest.TagDigests(ctx, reference.Client(), reference.Host, repos...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := faulttest.TagDigests(ctx, sharded.Client(), sharded.Host, repos...)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 2*len(fleetProviders) {
		t.Fatalf("the reference holds only %d tags", len(want))
	}
	assertSameState(t, got, want)

	// Each shard's plan is now a no-op, and so is the whole plan.
	for k := range 4 {
		if code, out, _ := runBinary(ctx, t.TempDir(), "plan", "-c", plan, "--shard", fmt.Sprintf("%d/4", k), "--detailed-exitcode"); code != 0 {
			t.Errorf("plan of shard %d after the sharded sync: exit %d\n%s", k, code, out)
		}
	}
	if code, out, _ := runBinary(ctx, t.TempDir(), "verify", "-c", plan); code != 0 {
		t.Errorf("verify of the whole plan: exit %d\n%s", code, out)
	}
}
