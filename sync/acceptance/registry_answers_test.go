package acceptance

import (
	"path/filepath"
	"testing"

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
	plan := w.writePlan("= "+version, currentPlatform)
	// The control: OpenTofu installs straight from such a registry.
	direct := w.workDir(version)
	w.runTofu(direct, w.upstreamCLIConfig(), "init", "-input=false")

	w.sync(plan)
	dir := w.workDir(version)
	w.initAndApply(dir, w.mirrorCLIConfig(plan, ""))
	w.assertInstalled(dir, version)
}
