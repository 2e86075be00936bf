package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testpgp"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// keys export writes what upstream serves in the provider_keys layout;
// with it pinned, sync and verify accept the provider, and with another
// key pinned for the namespace they refuse it.
func TestKeysExportAndPinnedProviderKeys(t *testing.T) {
	e := newCLIEnv(t)
	e.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	e.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	e.writePlan(e.reg.Host, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	keys := filepath.Join(e.dir, "provider-keys")
	out, _ := e.mustRun(exitOK, "keys", "export", "-c", e.plan, keys)
	file := filepath.Join(keys, "acme", e.up.KeyID+".asc")
	got, err := os.ReadFile(file)
	if err != nil || string(got) != e.up.ArmoredPublicKey {
		t.Fatalf("keys export wrote %s: %v\n%s", file, err, out)
	}
	for _, want := range []string{"acme", e.up.KeyID, "registry.opentofu.org/acme/widget", "1 key written"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys export output lacks %q:\n%s", want, out)
		}
	}

	// Pinned: the connected side accepts only that key.
	pinned := "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n"
	writePinnedPlan(t, e, keys)
	e.mustRun(exitOK, "sync", "-c", e.plan, "--no-progress")
	vout, _ := e.mustRun(exitOK, "verify", "-c", e.plan)
	if strings.Contains(vout, "not pinned") {
		t.Errorf("verify with pinned keys says they are not pinned:\n%s", vout)
	}

	// Another key pinned for acme: sync refuses what upstream signs, and
	// verify refuses what the registry stores.
	other := filepath.Join(e.dir, "other-keys")
	stranger := testpgp.New(t, "stranger", "")
	if err := os.MkdirAll(filepath.Join(other, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "acme", "STRANGER.asc"), []byte(stranger.PublicArmored), 0o644); err != nil {
		t.Fatal(err)
	}
	writePinnedPlan(t, e, other)
	_, errOut := e.mustRun(exitFailed, "verify", "-c", e.plan)
	if !strings.Contains(errOut, "problem") {
		t.Errorf("verify with the wrong key pinned: %s", errOut)
	}
	fresh := testregistry.New(t)
	e2 := &cliEnv{t: t, up: e.up, reg: fresh, dir: t.TempDir(), key: e.key}
	e2.plan = filepath.Join(e2.dir, "mirror.yaml")
	writePinnedPlanFor(t, e2, fresh.Host, other)
	_, errOut = e2.mustRun(exitFailed, "sync", "-c", e2.plan, "--no-progress")
	if !strings.Contains(errOut, "pinned") || !strings.Contains(errOut, "acme/widget") {
		t.Errorf("sync with the wrong key pinned does not say so:\n%s", errOut)
	}
	// Only the empty config blob (two bytes every manifest shares) may go
	// in before a release verifies: no package, no manifest, no tag.
	if c := fresh.Counts(); c.ManifestPut != 0 || c.BlobUploadStart > 1 {
		t.Errorf("sync pushed %d manifests and %d blobs although no release verified", c.ManifestPut, c.BlobUploadStart)
	}

	// Nothing pinned: verify says so.
	e.writePlan(e.reg.Host, pinned)
	vout, _ = e.mustRun(exitOK, "verify", "-c", e.plan)
	if !strings.Contains(vout, "Signing keys: not pinned") {
		t.Errorf("verify without pinned keys does not say so:\n%s", vout)
	}
}

func writePinnedPlan(t *testing.T, e *cliEnv, keys string) {
	writePinnedPlanFor(t, e, e.reg.Host, keys)
}

// writePinnedPlanFor writes e's plan for registry with trust.provider_keys.
func writePinnedPlanFor(t *testing.T, e *cliEnv, registry, keys string) {
	t.Helper()
	e.writePlan(registry, "platforms: [linux_amd64]\nproviders:\n  - source: acme/widget\n    versions: \">= 1.0.0\"\n")
	raw, err := os.ReadFile(e.plan)
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Replace(string(raw), "trust:\n", "trust:\n  provider_keys: \""+keys+"\"\n", 1)
	if err := os.WriteFile(e.plan, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
}
