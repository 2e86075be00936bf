//go:build knownbug

package faulttest_test

// Reproductions of faults the tool does not handle yet; they fail today.
// Run them with: go test -tags knownbug -run KnownBug ./sync/faulttest/
// Move a test into kill_test.go once its fix lands.

import (
	"os"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/faulttest"
)

// TestKnownBugKilledSyncLeavesNoSpool: a sync killed mid-transfer leaves
// each package it was moving in the spool directory
// (tofu-oci-mirror-*.zip, removed only by a deferred os.Remove in
// sync.Executor.transfer), and no later run removes them. A cron job
// killed by its timeout on a large provider (150-185 MB a package,
// --concurrency of them at once) fills the disk run after run.
func TestKnownBugKilledSyncLeavesNoSpool(t *testing.T) {
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
