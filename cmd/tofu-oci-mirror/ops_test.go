package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

func TestRunLock(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \"1.0.0\"\n")

	// Another run holds the lock: exit 3 at once, nothing pushed.
	f, err := os.OpenFile(e.plan+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("4242\n")
	for _, cmd := range []string{"sync", "import"} {
		code, _, errOut := e.run(cmd, "-c", e.plan, "bundle.tar")
		if code != exitLocked || !strings.Contains(errOut, "another run holds the lock") || !strings.Contains(errOut, "pid 4242") {
			t.Fatalf("%s with the lock held: exit %d: %s", cmd, code, errOut)
		}
	}
	if e.reg.Counts().Pushes() != 0 {
		t.Fatal("pushed while the lock was held")
	}
	// A lock file left behind by a dead run (no flock held) does not block.
	_ = f.Close()
	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress")
	// --lock-file moves it.
	other := filepath.Join(e.dir, "custom.lock")
	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress", "--lock-file", other)
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("--lock-file not used: %v", err)
	}
}

func TestReportAndMetrics(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	e.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	report, prom := filepath.Join(e.dir, "report.json"), filepath.Join(e.dir, "mirror.prom")
	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress", "--report", report, "--metrics-file", prom)

	var rep struct {
		Command string           `json:"command"`
		Success bool             `json:"success"`
		Summary map[string]int64 `json:"summary"`
		Items   []struct {
			Address, Version, Action, State string
			Uploaded                        int64 `json:"bytes_uploaded"`
		} `json:"items"`
	}
	raw, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(raw, &rep) != nil {
		t.Fatalf("report: %v\n%s", err, raw)
	}
	if rep.Command != "sync" || !rep.Success || rep.Summary["done"] != 2 || len(rep.Items) != 2 || rep.Items[0].State != "done" || rep.Items[0].Uploaded == 0 {
		t.Fatalf("report content: %s", raw)
	}
	m, _ := os.ReadFile(prom)
	for _, want := range []string{
		`tofu_oci_mirror_items{command="sync",state="done"} 2`,
		`tofu_oci_mirror_last_run_success{command="sync"} 1`,
		`# TYPE tofu_oci_mirror_last_success_timestamp_seconds gauge`,
	} {
		if !strings.Contains(string(m), want) {
			t.Fatalf("metrics lack %q:\n%s", want, m)
		}
	}
	lastOK := previousValue(prom, `tofu_oci_mirror_last_success_timestamp_seconds{command="sync"}`)

	// A failing run reports the failure and keeps the last success time.
	e.up.AddProvider("acme", "widget", "1.2.0", "linux_amd64")
	e.up.Tamper("acme", "widget", "1.2.0", "linux_amd64", testupstream.TamperZip)
	e.mustRun(exitFailed, "sync", "-c", e.plan, "--no-progress", "--report", report, "--metrics-file", prom)
	raw, _ = os.ReadFile(report)
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Success || rep.Summary["failed"] != 1 || rep.Summary["unchanged"] != 2 {
		t.Fatalf("failed-run report: %s", raw)
	}
	m, _ = os.ReadFile(prom)
	if !strings.Contains(string(m), `tofu_oci_mirror_last_run_success{command="sync"} 0`) ||
		previousValue(prom, `tofu_oci_mirror_last_success_timestamp_seconds{command="sync"}`) != lastOK || lastOK == "" {
		t.Fatalf("metrics after a failure:\n%s", m)
	}
	leftovers, _ := filepath.Glob(filepath.Join(e.dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temp files left: %v", leftovers)
	}
}

func TestBundleFlowThroughTheCLI(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress") // the inside has 1.0.0

	inv := filepath.Join(e.dir, "inventory.json")
	e.mustRun(exitOK, "inventory", "-c", e.plan, "--output", inv)
	e.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	parts := filepath.Join(e.dir, "out")
	if err := os.Mkdir(parts, 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := e.mustRun(exitOK, "export", "-c", e.plan, "--baseline", inv, "--output", filepath.Join(parts, "bundle.tar"), "--max-part-size", "4KiB", "--no-progress", "--sign-key", e.key.PrivateFile)
	if !strings.Contains(out, "Export: 1 artifacts in the bundle") || !strings.Contains(out, "1 already inside") {
		t.Fatalf("export summary: %s", out)
	}
	out, _ = e.mustRun(exitOK, "import", "-c", e.plan, parts, "--no-progress")
	if !strings.Contains(out, "Import: 1 copied") {
		t.Fatalf("import summary: %s", out)
	}
	e.mustRun(exitOK, "plan", "-c", e.plan, "--detailed-exitcode")

	// stdout streaming: export - | import -
	fresh := testregistry.New(t)
	e2 := &cliEnv{t: t, up: e.up, reg: fresh, dir: t.TempDir(), key: e.key}
	e2.plan = filepath.Join(e2.dir, "mirror.yaml")
	e2.writePlan(fresh.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	stdin := filepath.Join(e2.dir, "bundle.tar")
	tarOut, _ := e2.mustRun(exitOK, "export", "-c", e2.plan, "--output", "-", "--no-progress", "--sign-key", e.key.PrivateFile, "--signature-output", stdin+".sig")
	if err := os.WriteFile(stdin, []byte(tarOut), 0o644); err != nil {
		t.Fatal(err)
	}
	e2.mustRun(exitOK, "import", "-c", e2.plan, stdin, "--no-progress")
	e2.mustRun(exitOK, "plan", "-c", e2.plan, "--detailed-exitcode")

	if code, _, errOut := e.run("export", "-c", e.plan, "--output", "-", "--max-part-size", "1MB"); code != exitFailed || !strings.Contains(errOut, "--max-part-size") {
		t.Fatalf("parts to stdout accepted: %d %s", code, errOut)
	}
	if code, _, errOut := e.run("export", "-c", e.plan, "--output", "x", "--max-part-size", "lots"); code != exitFailed || !strings.Contains(errOut, "lots") {
		t.Fatalf("bad size accepted: %d %s", code, errOut)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "100": 100, "4KiB": 4096, "700MB": 700e6, "4GiB": 4 << 30, "2g": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "MB", "1.5GB", "x"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
