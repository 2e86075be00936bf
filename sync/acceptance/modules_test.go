package acceptance

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// moduleOutput is what the mirrored module outputs; the root module reads it.
const moduleOutput = "hello from an oci:// module"

// TestAcceptanceModules mirrors a registry module as an OCI module package
// and has the real tofu install it from an oci:// source printed by our
// plan, then the same module carried by a bundle into a second registry.
func TestAcceptanceModules(t *testing.T) { eachTofu(t, scenarioModules) }

func scenarioModules(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.up.AddModule("acme", "greeting", "null", "1.2.0", "/archives/greeting-1.2.0.tar.gz")
	w.up.ServeArchive("/archives/greeting-1.2.0.tar.gz", moduleTgz(t, map[string]string{
		"main.tf":           "output \"text\" {\n  value = \"" + moduleOutput + "\"\n}\n",
		"modules/x/main.tf": "# a nested module keeps its place in the package\n",
	}))

	plan := w.writeModulePlan(w.reg, "~> 1.2")
	w.mustMirror(2, nil, "plan", "-c", plan, "--detailed-exitcode")
	run := w.mustMirror(0, nil, "sync", "-c", plan, "--no-progress")
	line := fmt.Sprintf(`source = "oci://%s/opentofu-modules/acme/greeting/null?tag=1.2.0"`, w.reg.Host)
	if !strings.Contains(run.stdout, line) {
		t.Fatalf("sync output lacks the source line %s:\n%s", line, run)
	}
	w.mustMirror(0, nil, "plan", "-c", plan, "--detailed-exitcode")

	regBefore := w.reg.Counts()
	w.applyModule(line)
	if w.reg.Counts().BlobGet <= regBefore.BlobGet {
		t.Fatal("tofu did not fetch the module package from the registry")
	}

	// Across an air gap: export everything, import into another registry.
	inside := w.sub(t)
	inside.reg = testregistry.New(t, testregistry.WithTLS())
	inside.dir = t.TempDir()
	inside.caBundle = filepath.Join(inside.dir, "ca-bundle.pem")
	writeFile(t, inside.caBundle, string(inside.reg.CACertPEM))
	bundle := filepath.Join(t.TempDir(), "bundle.tar")
	w.mustMirror(0, nil, "export", "-c", plan, "--output", bundle, "--no-progress", "--sign-key", w.bundleKey.PrivateFile)
	insidePlan := inside.writeModulePlan(inside.reg, "~> 1.2")
	inside.mustMirror(0, nil, "import", "-c", insidePlan, bundle, "--no-progress")
	if a, b := w.tagDigest("opentofu-modules/acme/greeting/null", "1.2.0"), inside.tagDigest("opentofu-modules/acme/greeting/null", "1.2.0"); a != b {
		t.Fatalf("module digest after the bundle %s, direct %s", b, a)
	}
	inside.applyModule(strings.Replace(line, w.reg.Host, inside.reg.Host, 1))
}

// writeModulePlan writes a plan mirroring only acme/greeting/null into reg.
func (w *world) writeModulePlan(reg *testregistry.Registry, versions string) string {
	w.t.Helper()
	svc := w.up.Services()
	plan := fmt.Sprintf(`version: 1
target:
  registry: %q
  ca_file: %q
upstream:
  ca_file: %q
  hosts:
    %s:
      services:
        providers.v1: %q
        modules.v1: %q
modules:
  - source: acme/greeting/null
    versions: %q
%s`, reg.Host, reg.CAFile, w.up.CAFile, originHost, svc["providers.v1"], svc["modules.v1"], versions, w.trustSection())
	path := filepath.Join(w.dir, "modules.yaml")
	writeFile(w.t, path, plan)
	return path
}

// applyModule runs tofu init and apply on a root module whose module block
// has sourceLine, with no way to the upstream, and checks its output.
func (w *world) applyModule(sourceLine string) {
	w.t.Helper()
	dir := w.t.TempDir()
	writeFile(w.t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`module "greeting" {
  %s
}

output "text" {
  value = module.greeting.text
}
`, sourceLine))
	cliConfig := filepath.Join(w.t.TempDir(), "empty.tofurc")
	writeFile(w.t, cliConfig, "# no host block: the upstream is out of reach\n")
	upBefore := w.up.Counts()
	w.runTofu(dir, cliConfig, "init", "-input=false")
	w.runTofu(dir, cliConfig, "apply", "-auto-approve", "-input=false")
	if got := w.runTofu(dir, cliConfig, "output", "-raw", "text"); got != moduleOutput {
		w.t.Fatalf("module output %q, want %q", got, moduleOutput)
	}
	if w.up.Counts() != upBefore {
		w.t.Fatal("tofu reached the upstream while installing an oci:// module")
	}
}

// moduleTgz packs files as a module author's release archive.
func moduleTgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
