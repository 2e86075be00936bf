package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/verify"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

func TestVerifyExitCodes(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	e.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64", "darwin_arm64")
	e.writePlan(e.reg.Host, widgetPlan)

	// Nothing synced yet.
	out, _ := e.mustRun(exitFailed, "verify", "-c", e.plan)
	if !strings.Contains(out, "nothing mirrored for registry.opentofu.org/acme/widget") || !strings.Contains(out, "Verify: 0 versions checked, 1 problem.") {
		t.Fatalf("verify of an empty target:\n%s", out)
	}

	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress")
	out, _ = e.mustRun(exitOK, "verify", "-c", e.plan)
	if !strings.Contains(out, "Verify: 2 versions checked, 0 problems.") || strings.Contains(out, "Problems:") {
		t.Fatalf("verify of a clean mirror:\n%s", out)
	}
	e.mustRun(exitOK, "verify", "-c", e.plan, "--deep")

	// Another tool re-tags 1.0.0 with an index that lacks darwin_arm64.
	cfg, err := config.Load(e.plan)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := target.Open(cfg.Target)
	if err != nil {
		t.Fatal(err)
	}
	const repo = "opentofu-providers/acme/widget"
	raw, _, err := tg.Manifest(context.Background(), repo, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	info, err := manifest.ParseProviderIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := manifest.ProviderIndex([]manifest.PlatformManifest{info.Platforms["linux_amd64"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.PutManifest(context.Background(), repo, idx, "1.0.0"); err != nil {
		t.Fatal(err)
	}

	out, errOut := e.mustRun(exitFailed, "verify", "-c", e.plan)
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "missing-platform") {
			line = l
		}
	}
	for _, want := range []string{"registry.opentofu.org/acme/widget", "1.0.0", "darwin_arm64", "wanted platform missing", "run sync"} {
		if !strings.Contains(line, want) {
			t.Errorf("problem line %q lacks %q:\n%s", line, want, out)
		}
	}
	if !strings.Contains(out, "Verify: 2 versions checked, 1 problem.") || !strings.Contains(errOut, "1 problem") {
		t.Fatalf("summary:\n%s\nstderr:\n%s", out, errOut)
	}

	out, _ = e.mustRun(exitFailed, "verify", "-c", e.plan, "--output", "json")
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out)
	}
	if rep.Checked != 2 || len(rep.Problems) != 1 || rep.Problems[0].Code != verify.ProblemMissingPlatform || rep.Problems[0].Platform != "darwin_arm64" {
		t.Fatalf("json report: %+v", rep)
	}
	e.mustRun(exitFailed, "verify", "-c", e.plan, "--output", "yaml")
}
