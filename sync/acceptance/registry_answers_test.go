package acceptance

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// TestAcceptanceVersionsWithoutPlatforms: a registry whose versions answer
// lists no platforms (OpenTofu ignores the field and asks download per
// platform) is mirrored all the same, and tofu installs from the mirror.
// Before, we mirrored nothing and exited 0.
func TestAcceptanceVersionsWithoutPlatforms(t *testing.T) {
	eachTofu(t, scenarioVersionsWithoutPlatforms)
}

func scenarioVersionsWithoutPlatforms(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.up = testupstream.New(t, testupstream.WithoutPlatformsInVersions())
	w.caBundle = filepath.Join(w.dir, "ca-bundle-noplatforms.pem")
	writeFile(t, w.caBundle, string(w.reg.CACertPEM)+string(w.up.CACertPEM))
	const version = "1.0.0"
	w.addEcho(version)
	// 1.1.0 offers none of the wanted platforms, and 1.0.0 not the other
	// one: both are only found out by asking download, as OpenTofu does.
	w.up.AddProvider(namespace, ptype, "1.1.0", "freebsd_arm")
	plan := w.writePlan(">= "+version, currentPlatform, otherPlatform())
	// The control: OpenTofu installs straight from such a registry.
	direct := w.workDir(version)
	w.runTofu(direct, w.upstreamCLIConfig(), "init", "-input=false")

	planned := w.mustMirror(2, nil, "plan", "-c", plan, "--detailed-exitcode")
	out := planned.stdout + planned.stderr
	for _, want := range []string{
		version + ": upstream does not offer [" + otherPlatform() + "]",
		"1.1.0: upstream does not offer [",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan does not warn %q:\n%s", want, planned)
		}
	}
	w.sync(plan)
	dir := w.workDir(version)
	w.initAndApply(dir, w.mirrorCLIConfig(plan, ""))
	w.assertInstalled(dir, version)
}

// TestAcceptanceIndexEntriesTofuSkips: a version tag whose index also holds
// entries OpenTofu passes over (an os.version entry, another artifact type),
// as other tools may write, is still installable, so it is no conflict:
// plan finds the version complete and tofu installs from it.
func TestAcceptanceIndexEntriesTofuSkips(t *testing.T) { eachTofu(t, scenarioIndexEntriesTofuSkips) }

func scenarioIndexEntriesTofuSkips(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const version = "1.0.0"
	w.addEcho(version)
	plan := w.writePlan("= "+version, currentPlatform)
	w.sync(plan)

	ctx := context.Background()
	rc := w.reg.Client()
	r, err := ref.New(w.reg.Host + "/opentofu-providers/" + source + ":" + version)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := rc.ManifestGet(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawBody()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	entries := doc["manifests"].([]any)
	first := entries[0].(map[string]any)
	withOSVersion := map[string]any{}
	foreign := map[string]any{}
	for k, v := range first {
		withOSVersion[k], foreign[k] = v, v
	}
	withOSVersion["platform"] = map[string]any{"os": "windows", "architecture": "amd64", "os.version": "10.0.17763"}
	foreign["artifactType"] = "application/vnd.example.sbom"
	doc["manifests"] = append(entries, withOSVersion, foreign)
	edited, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.New(manifest.WithRaw(edited))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.ManifestPut(ctx, r, m); err != nil {
		t.Fatal(err)
	}

	run := w.mustMirror(0, nil, "plan", "-c", plan, "--detailed-exitcode")
	if !strings.Contains(run.stdout, "1 version complete, 0 conflicts") {
		t.Fatalf("plan calls an installable tag a conflict:\n%s", run)
	}
	dir := w.workDir(version)
	w.initAndApply(dir, w.mirrorCLIConfig(plan, ""))
	w.assertInstalled(dir, version)
}
