package acceptance

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// TestAcceptanceBundle carries a provider across an air gap: exported on
// the connected side (which never sees the inside registry), imported into
// a second TLS registry with no upstream access, and installed from there
// by OpenTofu with a lock file made against the upstream. A direct sync of
// the same plan into the first registry yields the same digests.
func TestAcceptanceBundle(t *testing.T) { eachTofu(t, scenarioBundle) }

func scenarioBundle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const version = "1.0.0"
	other := otherPlatform()
	w.addEcho(version, other)
	work := w.workDir(version)
	w.runTofu(work, w.upstreamCLIConfig(), "providers", "lock", "-platform="+currentPlatform, "-platform="+other)

	// The operator exports the provider keys once on the connected side,
	// reviews them and carries them across: the inside pins them.
	keys := filepath.Join(t.TempDir(), "provider-keys")
	w.mustMirror(0, nil, "keys", "export", "-c", w.writePlan("= "+version, currentPlatform, other), keys)

	// The inside: its own registry, its own plan file and CA bundle.
	inside := w.sub(t)
	inside.trust = fmt.Sprintf("  provider_keys: %q\n", keys)
	inside.reg = testregistry.New(t, testregistry.WithTLS())
	inside.dir = t.TempDir()
	inside.caBundle = filepath.Join(inside.dir, "ca-bundle.pem")
	writeFile(t, inside.caBundle, string(inside.reg.CACertPEM))
	insidePlan := inside.writePlan("= "+version, currentPlatform, other)

	inv := filepath.Join(inside.dir, "inventory.json")
	inside.mustMirror(0, nil, "inventory", "-c", insidePlan, "--output", inv)

	// The connected side plans against the inventory, not a registry.
	outside := w.sub(t)
	outside.dir = t.TempDir()
	outsidePlan := outside.writePlan("= "+version, currentPlatform, other)
	bundle := filepath.Join(outside.dir, "bundle.tar")
	exp := outside.mustMirror(0, nil, "export", "-c", outsidePlan, "--baseline", inv, "--output", bundle, "--max-part-size", "8MiB", "--no-progress", "--sign-key", outside.bundleKey.PrivateFile)
	if !strings.Contains(exp.stdout, "Export: 1 artifacts") {
		t.Fatalf("export summary: %s", exp)
	}

	// Inside: import needs no upstream; it must not even ask.
	upBefore := w.up.Counts()
	inside.mustMirror(0, nil, "import", "-c", insidePlan, outside.dir, "--no-progress")
	if w.up.Counts() != upBefore {
		t.Fatal("import talked to the upstream")
	}
	inside.mustMirror(0, nil, "plan", "-c", insidePlan, "--detailed-exitcode", "--log-level", "error")
	again := inside.mustMirror(0, nil, "import", "-c", insidePlan, bundle+".parts.json", "--no-progress")
	if !strings.Contains(again.stdout, "0 copied, 1 unchanged") {
		t.Fatalf("second import was not a no-op: %s", again)
	}

	// OpenTofu installs from the inside registry and the lock file verifies.
	cliConfig := inside.mirrorCLIConfig(insidePlan, "")
	out := inside.initAndApply(work, cliConfig)
	if want := fmt.Sprintf("Installed %s v%s", source, version); !strings.Contains(out, want) {
		t.Fatalf("tofu init output lacks %q:\n%s", want, out)
	}
	inside.assertInstalled(work, version)

	// The same plan synced directly gives the same tags and digests.
	w.sync(w.writePlan("= "+version, currentPlatform, other))
	direct, carried := w.tagDigest(repository, version), inside.tagDigest(repository, version)
	if direct != carried {
		t.Fatalf("direct sync %s, bundle %s", direct, carried)
	}
	if !slices.Contains(inside.tags(repository), version) {
		t.Fatalf("inside tags: %v", inside.tags(repository))
	}
}

// repository is where the default template puts acme/echo.
const repository = "opentofu-providers/" + namespace + "/" + ptype

// tagDigest reads the manifest digest behind a version tag.
func (w *world) tagDigest(repo, tag string) string {
	w.t.Helper()
	r, err := ref.New(w.reg.Host + "/" + repo + ":" + tag)
	if err != nil {
		w.t.Fatal(err)
	}
	m, err := w.reg.Client().ManifestHead(context.Background(), r, regclient.WithManifestRequireDigest())
	if err != nil {
		w.t.Fatalf("%s:%s: %v", repo, tag, err)
	}
	return m.GetDescriptor().Digest.String()
}
