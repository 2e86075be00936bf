package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// cliEnv is a test upstream, an in-process registry and a plan file
// pointing at both, driven through the real command line.
type cliEnv struct {
	t    *testing.T
	up   *testupstream.Server
	reg  *testregistry.Registry
	dir  string
	plan string
	// key signs the bundles this world exports (export --sign-key) and
	// is the one its plans trust (trust.bundle_keys).
	key *testpgp.Key
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	e := &cliEnv{t: t, up: testupstream.New(t), reg: testregistry.New(t), dir: t.TempDir()}
	e.plan = filepath.Join(e.dir, "mirror.yaml")
	e.key = testpgp.New(t, "bundle signer", "").Write(t, e.dir, "bundle-signer")
	return e
}

// writePlan writes a plan for registry (a host or oci-layout:PATH) with body appended.
func (e *cliEnv) writePlan(registry, body string) {
	e.t.Helper()
	svc := e.up.Services()
	insecure := !strings.HasPrefix(registry, "oci-layout:")
	yaml := fmt.Sprintf("version: 1\ntarget:\n  registry: %q\n", registry)
	if insecure {
		yaml += "  insecure: true\n"
	}
	yaml += fmt.Sprintf(`upstream:
  ca_file: %q
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: %q
trust:
  bundle_keys: [%q]
%s`, e.up.CAFile, svc["providers.v1"], e.key.PublicFile, body)
	if err := os.WriteFile(e.plan, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// run runs the CLI and returns its exit code, stdout and stderr.
func (e *cliEnv) run(args ...string) (int, string, string) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"tofu-oci-mirror"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (e *cliEnv) mustRun(want int, args ...string) (string, string) {
	e.t.Helper()
	code, out, errOut := e.run(args...)
	if code != want {
		e.t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, out, errOut)
	}
	return out, errOut
}

const widgetPlan = `platforms: [linux_amd64, darwin_arm64]
providers:
  - source: acme/widget
    versions: "~> 1.0"
`

func TestPlanSyncPlanExitCodes(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	e.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	e.writePlan(e.reg.Host, widgetPlan)

	out, _ := e.mustRun(exitPending, "plan", "-c", e.plan, "--detailed-exitcode")
	for _, want := range []string{
		"registry.opentofu.org/acme/widget  1.0.0    missing  +darwin_arm64 +linux_amd64",
		"registry.opentofu.org/acme/widget  1.1.0    missing  +linux_amd64",
		"1.1.0: upstream does not offer [darwin_arm64]",
		"Plan: 2 versions to copy, 0 versions complete, 0 conflicts.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	// Without --detailed-exitcode pending work is not an error.
	e.mustRun(exitOK, "plan", "-c", e.plan)

	out, _ = e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress", "--log-format", "json")
	if !strings.Contains(out, "Sync: 2 copied, 0 unchanged, 0 failed, 0 conflicts") {
		t.Fatalf("sync summary: %s", out)
	}
	e.mustRun(exitOK, "plan", "-c", e.plan, "--detailed-exitcode")
	out, _ = e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress")
	if !strings.Contains(out, "Sync: 0 copied, 2 unchanged, 0 failed") {
		t.Fatalf("second sync summary: %s", out)
	}
}

func TestPlanJSON(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	e.writePlan(e.reg.Host, widgetPlan)
	out, _ := e.mustRun(exitOK, "plan", "--output", "json", "-c", e.plan)
	var plan struct {
		Target    string `json:"target"`
		Providers []struct {
			Address  string `json:"address"`
			Versions []struct {
				Version string   `json:"version"`
				State   string   `json:"state"`
				Add     []string `json:"add"`
			} `json:"versions"`
		} `json:"providers"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan --output json is not JSON: %v\n%s", err, out)
	}
	if plan.Target != e.reg.Host || len(plan.Providers) != 1 || plan.Providers[0].Versions[0].State != "missing" ||
		strings.Join(plan.Providers[0].Versions[0].Add, ",") != "darwin_arm64,linux_amd64" {
		t.Fatalf("unexpected plan: %+v", plan)
	}
}

func TestBadPlanFileNamesEveryProblem(t *testing.T) {
	e := newCLIEnv(t)
	bad := "version: 2\ntarget:\n  registy: x\nproviders:\n  - source: a/b/c/d\n    versions: \">= v1\"\n"
	if err := os.WriteFile(e.plan, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "sync", "tofurc"} {
		code, _, errOut := e.run(cmd, "-c", e.plan)
		if code != exitFailed {
			t.Fatalf("%s: exit %d", cmd, code)
		}
		for _, want := range []string{"mirror.yaml:1:10:", "mirror.yaml:3:3:", "mirror.yaml:5:13:", "mirror.yaml:6:15:"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, errOut)
			}
		}
	}
	code, _, errOut := e.run("plan", "-c", filepath.Join(e.dir, "nope.yaml"))
	if code != exitFailed || !strings.Contains(errOut, "nope.yaml") {
		t.Fatalf("missing file: exit %d: %s", code, errOut)
	}
}

func TestSyncFailureExitsNonZeroAndNamesTheCause(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	e.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	e.up.Tamper("acme", "widget", "1.1.0", "linux_amd64", testupstream.TamperZip)
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	out, errOut := e.mustRun(exitFailed, "sync", "-c", e.plan, "--no-progress")
	if !strings.Contains(out, "Sync: 1 copied, 0 unchanged, 1 failed") {
		t.Fatalf("summary: %s", out)
	}
	if !strings.Contains(errOut, "acme/widget 1.1.0 linux_amd64") || !strings.Contains(errOut, "checksum mismatch") {
		t.Fatalf("stderr does not name the failure:\n%s", errOut)
	}
}

func TestSyncIntoLocalLayoutByDefault(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	svc := e.up.Services()
	// No target at all: the default oci-layout:./mirror beside the plan file.
	plan := fmt.Sprintf("version: 1\nupstream:\n  ca_file: %q\n  hosts:\n    registry.opentofu.org:\n      services:\n        providers.v1: %q\nplatforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \"1.0.0\"\n", e.up.CAFile, svc["providers.v1"])
	if err := os.WriteFile(e.plan, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress")
	index, err := os.ReadFile(filepath.Join(e.dir, "mirror", "opentofu-providers", "acme", "widget", "index.json"))
	if err != nil || !strings.Contains(string(index), `"org.opencontainers.image.ref.name":"1.0.0"`) {
		t.Fatalf("layout index.json: %v %s", err, index)
	}
	e.mustRun(exitOK, "plan", "-c", e.plan, "--detailed-exitcode")
}

func TestTofurc(t *testing.T) {
	e := newCLIEnv(t)
	e.writePlan("registry.example.internal:5000", "platforms: [linux_amd64]\nproviders:\n  - source: hashicorp/random\n    versions: \"~> 3.6\"\n  - source: hashicorp/aws\n    versions: \">= 5.0.0\"\n")
	out, _ := e.mustRun(exitOK, "tofurc", "-c", e.plan)
	for _, want := range []string{
		`repository_template = "registry.example.internal:5000/opentofu-providers/${namespace}/${type}"`,
		`"registry.opentofu.org/hashicorp/aws",`,
		`"registry.opentofu.org/hashicorp/random",`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tofurc lacks %s:\n%s", want, out)
		}
	}
	e.writePlan("oci-layout:"+e.dir, widgetPlan)
	code, _, errOut := e.run("tofurc", "-c", e.plan)
	if code != exitFailed || !strings.Contains(errOut, "OCI layout") {
		t.Fatalf("tofurc on a layout target: exit %d %s", code, errOut)
	}
}

func TestVersionAndUnknownFlag(t *testing.T) {
	e := newCLIEnv(t)
	out, _ := e.mustRun(exitOK, "version")
	if !strings.HasPrefix(out, "tofu-oci-mirror ") {
		t.Fatalf("version: %q", out)
	}
	if code, _, _ := e.run("plan", "--no-such-flag"); code == exitOK {
		t.Fatal("unknown flag accepted")
	}
	if code, _, errOut := e.run("plan", "--log-level", "loud", "-c", e.plan); code != exitFailed || !strings.Contains(errOut, "--log-level") {
		t.Fatalf("bad log level: %d %s", code, errOut)
	}
}
