package acceptance

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
)

// TestAcceptanceModuleDependenciesRewrite is module_dependencies: rewrite
// end to end. acme/app/null calls the registry module acme/greeting/null
// (~> 1.0, so 1.1.0 and not 2.0.0) from its root and, through a local
// module, a //subdir of it; the plan names only acme/app/null. After sync
// and with the upstream stopped, the real tofu installs and applies the
// app from oci:// alone, and again inside an air gap from a signed bundle.
// Import admits only what the inside's plan selects, and which modules a
// package calls is in the packages, not the plan: the inside's plan lists
// the dependency too (acme/greeting/null ~> 1.0), and the bundle carries
// each version once.
func TestAcceptanceModuleDependenciesRewrite(t *testing.T) {
	eachTofu(t, moduleDependenciesRewriteScenario)
}

func moduleDependenciesRewriteScenario(t *testing.T) {
	w := newWorld(t)
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		path := "/archives/greeting-" + v + ".tar.gz"
		w.up.AddModule("acme", "greeting", "null", v, path)
		w.up.ServeArchive(path, moduleTgz(t, map[string]string{
			"main.tf":           "output \"text\" {\n  value = \"greeting " + v + "\"\n}\n",
			"modules/x/main.tf": "output \"text\" {\n  value = \"x " + v + "\"\n}\n",
		}))
	}
	w.up.AddModule("acme", "app", "null", "1.0.0", "/archives/app-1.0.0.tar.gz")
	w.up.ServeArchive("/archives/app-1.0.0.tar.gz", moduleTgz(t, map[string]string{
		"main.tf": `# The app greets through the registry module.
module "greeting" {
  source  = "acme/greeting/null"   # from the registry
  version = "~> 1.0"
}

module "local" {
  source = "./modules/local"
}

output "text" {
  value = "${module.greeting.text} / ${module.local.text}"
}
`,
		"modules/local/main.tf": `module "x" {
  source  = "registry.opentofu.org/acme/greeting/null//modules/x"
  version = "1.0.0"
}

output "text" {
  value = module.x.text
}
`,
	}))

	plan := w.writeDepsPlan(w.reg, "deps.yaml")
	w.mustMirror(2, nil, "plan", "-c", plan, "--detailed-exitcode")
	run := w.mustMirror(0, nil, "sync", "-c", plan, "--no-progress")
	for _, tag := range []string{"1.1.0", "1.0.0"} {
		want := fmt.Sprintf("oci://%s/opentofu-modules/acme/greeting/null?tag=%s", w.reg.Host, tag)
		if !strings.Contains(run.stdout, want) {
			t.Fatalf("sync does not report the dependency %s:\n%s", want, run)
		}
	}
	if strings.Contains(run.stdout+run.stderr, "greeting/null?tag=2.0.0") {
		t.Fatalf("2.0.0 is outside ~> 1.0 but was mirrored:\n%s", run)
	}
	w.mustMirror(0, nil, "plan", "-c", plan, "--detailed-exitcode")

	// Across the air gap: export with the inside's plan (its registry is
	// what the rewritten sources name), import, apply there.
	inside := w.sub(t)
	inside.reg = testregistry.New(t, testregistry.WithTLS())
	inside.dir = t.TempDir()
	inside.caBundle = filepath.Join(inside.dir, "ca-bundle.pem")
	writeFile(t, inside.caBundle, string(inside.reg.CACertPEM))
	insidePlan := inside.writeModulesPlan(inside.reg, "inside.yaml", "module_dependencies: rewrite\n",
		"  - source: acme/app/null\n    versions: \"1.0.0\"\n  - source: acme/greeting/null\n    versions: \"~> 1.0\"\n")
	bundle := filepath.Join(t.TempDir(), "bundle.tar")
	exp := w.mustMirror(0, nil, "export", "-c", insidePlan, "--output", bundle, "--no-progress", "--sign-key", w.bundleKey.PrivateFile)
	// app 1.0.0, greeting 1.0.0 and 1.1.0: each once, though the plan
	// lists greeting and the app's rewrite calls it.
	if !strings.Contains(exp.stdout, "Export: 3 artifacts in the bundle") {
		t.Fatalf("want 3 artifacts exported:\n%s", exp)
	}

	// The same bundle into a plan that lists only the app: the dependency
	// versions are refused, by name, before anything is pushed.
	narrow := w.sub(t)
	narrow.reg = testregistry.New(t, testregistry.WithTLS())
	narrow.dir = t.TempDir()
	narrowPlan := narrow.writeDepsPlan(narrow.reg, "narrow.yaml")
	refused := narrow.mirror(nil, "import", "-c", narrowPlan, bundle, "--no-progress")
	if refused.code == 0 || !strings.Contains(refused.stdout+refused.stderr, "module registry.opentofu.org/acme/greeting/null 1.1.0: ") ||
		!strings.Contains(refused.stdout+refused.stderr, "has no module entry for it") {
		t.Fatalf("import into a plan without the dependency: want a refusal naming it:\n%s", refused)
	}

	w.up.Stop()
	want := "greeting 1.1.0 / x 1.0.0"
	w.applyApp(fmt.Sprintf("oci://%s/opentofu-modules/acme/app/null?tag=1.0.0", w.reg.Host), want)

	inside.mustMirror(0, nil, "import", "-c", insidePlan, bundle, "--no-progress")
	inside.applyApp(fmt.Sprintf("oci://%s/opentofu-modules/acme/app/null?tag=1.0.0", inside.reg.Host), want)
}

// writeDepsPlan writes a plan mirroring acme/app/null 1.0.0 into reg with
// module_dependencies: rewrite.
func (w *world) writeDepsPlan(reg *testregistry.Registry, file string) string {
	w.t.Helper()
	return w.writeModulesPlan(reg, file, "module_dependencies: rewrite\n", "  - source: acme/app/null\n    versions: \"1.0.0\"\n")
}

// applyApp runs tofu init and apply on a root module calling source, with
// no way to any upstream, and checks the output.
func (w *world) applyApp(source, want string) {
	w.t.Helper()
	dir := w.t.TempDir()
	writeFile(w.t, filepath.Join(dir, "main.tf"), fmt.Sprintf("module \"app\" {\n  source = %q\n}\n\noutput \"text\" {\n  value = module.app.text\n}\n", source))
	_, cliConfig := w.moduleCLIConfigs()
	w.runTofu(dir, cliConfig, "init", "-input=false")
	w.runTofu(dir, cliConfig, "apply", "-auto-approve", "-input=false")
	if got := w.runTofu(dir, cliConfig, "output", "-raw", "text"); got != want {
		w.t.Fatalf("output %q, want %q", got, want)
	}
}
