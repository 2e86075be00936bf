package main

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// TestPruneCommand: the listing exits 2 with --detailed-exitcode and
// deletes nothing; a registry forbidding deletes is named as such; a plan
// without entries is refused; the run lock is taken.
func TestPruneCommand(t *testing.T) {
	e := newCLIEnv(t)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		e.up.AddProvider("acme", "widget", v, "linux_amd64")
	}
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress")
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n    newest: 1\n")

	out, _ := e.mustRun(exitPending, "prune", "-c", e.plan, "--detailed-exitcode")
	if !strings.Contains(out, "1.0.0") || !strings.Contains(out, "1 to delete") || !strings.Contains(out, "--apply") {
		t.Fatalf("listing:\n%s", out)
	}
	// This registry has deletes disabled.
	code, out, errOut := e.run("prune", "-c", e.plan, "--apply")
	if code != exitFailed || !strings.Contains(errOut, "forbids deletes") || !strings.Contains(errOut, "storage.delete.enabled") {
		t.Fatalf("apply without deletes: exit %d\n%s\n%s", code, out, errOut)
	}
	e.mustRun(exitOK, "plan", "-c", e.plan, "--detailed-exitcode") // 1.1.0 untouched

	f, err := os.OpenFile(e.plan+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := e.run("prune", "-c", e.plan); code != exitLocked {
		t.Fatalf("prune with the lock held: exit %d", code)
	}
	_ = f.Close()

	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\n")
	if code, _, errOut := e.run("prune", "-c", e.plan, "--apply"); code != exitFailed || !strings.Contains(errOut, "no provider or module entries") {
		t.Fatalf("empty plan: exit %d %s", code, errOut)
	}

	// With deletes enabled, --apply deletes and says where blob space goes.
	d := newCLIEnv(t)
	d.reg = testregistry.New(t, testregistry.WithDelete())
	d.up = e.up
	d.writePlan(d.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	d.mustRun(exitOK, "sync", "-c", d.plan, "--no-progress")
	d.writePlan(d.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n    newest: 1\n")
	out, _ = d.mustRun(exitOK, "prune", "-c", d.plan, "--apply", "--detailed-exitcode")
	if !strings.Contains(out, "1 deleted") || !strings.Contains(out, "garbage collection") {
		t.Fatalf("apply:\n%s", out)
	}
	d.mustRun(exitOK, "prune", "-c", d.plan, "--detailed-exitcode")
	d.mustRun(exitOK, "verify", "-c", d.plan)
}
