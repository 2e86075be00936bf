package acceptance

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
)

// TestAcceptanceScan: `scan` prints plan entries covering a codebase's
// constraints and lock files; `scan --check` is 0 while the mirror holds
// everything tofu init needs, and 1 naming each locked version, locked
// platform and module version it lacks, and each file that does not parse.
func TestAcceptanceScan(t *testing.T) { eachTofu(t, scenarioScan) }

func scenarioScan(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		w.addEcho(v, otherPlatform())
	}
	// 1.2.0 is also released for windows_amd64, which the plan leaves out.
	w.up.AddProvider(namespace, ptype, "1.2.0", currentPlatform, otherPlatform(), "windows_amd64")
	plan := w.writePlan(">= 1.0.0", currentPlatform, otherPlatform())
	w.sync(plan)
	w.up.AddModule("acme", "greeting", "null", "1.2.0", "/archives/greeting-1.2.0.tar.gz")
	w.up.ServeArchive("/archives/greeting-1.2.0.tar.gz", moduleTgz(t, map[string]string{"main.tf": "# greeting\n"}))
	w.mustMirror(0, nil, "sync", "-c", w.writeModulePlan(w.reg, "~> 1.2"), "--no-progress")

	code := t.TempDir()
	// A team locked against the upstream for two platforms: all mirrored.
	app := filepath.Join(code, "app")
	writeFile(t, filepath.Join(app, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = { source = %q, version = "~> 1.0" }
  }
}
`, source))
	w.runTofu(app, w.upstreamCLIConfig(), "providers", "lock", "-platform="+currentPlatform, "-platform="+otherPlatform())
	writeFile(t, filepath.Join(app, "modules.tf"), `module "greeting" {
  source  = "acme/greeting/null"
  version = "~> 1.2"
}
`)

	check := func(t *testing.T, want int) mirrorRun {
		return w.sub(t).mustMirror(want, nil, "scan", "--check", "-c", plan, code)
	}
	t.Run("all mirrored", func(t *testing.T) {
		run := check(t, 0)
		if !strings.Contains(run.stdout, "0 missing") {
			t.Fatalf("summary lacks 0 missing:\n%s", run.stdout)
		}
	})

	// Another locked 1.2.0 for windows too; a third pins a version never
	// mirrored; a fourth calls a module the mirror lacks; one file is broken.
	win := filepath.Join(code, "win")
	writeFile(t, filepath.Join(win, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = { source = %q, version = "1.2.0" }
  }
}
`, source))
	w.runTofu(win, w.upstreamCLIConfig(), "providers", "lock", "-platform="+currentPlatform, "-platform=windows_amd64")
	old := filepath.Join(code, "old")
	writeFile(t, filepath.Join(old, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    echo = { source = %q }
  }
}

module "net" {
  source  = "acme/net/aws"
  version = "~> 2.1"
}

module "greeting" {
  source  = "acme/greeting/null"
  version = "~> 2.0"
}
`, source))
	writeFile(t, filepath.Join(old, ".terraform.lock.hcl"), fmt.Sprintf(`provider %q {
  version = "0.9.0"
}
`, address))
	writeFile(t, filepath.Join(code, "broken", "main.tf"), "terraform {\n  required_providers {\n    echo = {\n}\n")

	t.Run("missing", func(t *testing.T) {
		run := check(t, 1)
		for _, want := range []string{
			"provider " + address + " 1.2.0 platforms windows_amd64 (locked in " + filepath.Join(win, ".terraform.lock.hcl"),
			"provider " + address + " 0.9.0 (locked in " + filepath.Join(old, ".terraform.lock.hcl"),
			"module registry.opentofu.org/acme/net/aws ~> 2.1 (" + filepath.Join(old, "main.tf") + ":7)",
			"module registry.opentofu.org/acme/greeting/null ~> 2.0 (" + filepath.Join(old, "main.tf") + ":12): no version in the mirror (opentofu-modules/acme/greeting/null) meets it; it holds 1.2.0",
			filepath.Join(code, "broken", "main.tf") + ":",
		} {
			if !strings.Contains(run.stdout+run.stderr, want) {
				t.Fatalf("output lacks %q:\n%s", want, run)
			}
		}
		// app/ locked 1.2.0 for the two mirrored platforms only (its lock
		// has zh: for windows too, from the signed SHA256SUMS): fine.
		if strings.Contains(run.stdout, filepath.Join(app, ".terraform.lock.hcl")) {
			t.Fatalf("reports app/, whose platforms are all mirrored:\n%s", run.stdout)
		}
	})

	t.Run("named platforms", func(t *testing.T) {
		run := w.sub(t).mustMirror(1, nil, "scan", "--check", "-c", plan, "--platform", "windows_amd64", app)
		if !strings.Contains(run.stdout, "1.2.0 platforms windows_amd64") {
			t.Fatalf("output lacks the missing windows_amd64:\n%s", run)
		}
	})

	t.Run("plan entries", func(t *testing.T) {
		run := w.sub(t).mustMirror(1, nil, "scan", code) // 1: the broken file
		cfg, err := config.Parse("scan.yaml", []byte("version: 1\nplatforms: [linux_amd64]\n"+run.stdout))
		if err != nil {
			t.Fatalf("scan output is not a plan: %v\n%s", err, run.stdout)
		}
		if len(cfg.Providers) != 1 || cfg.Providers[0].Source.String() != address {
			t.Fatalf("providers %+v", cfg.Providers)
		}
		// old/ has no constraint: everything from the locked 0.9.0 up.
		if got := cfg.Providers[0].Versions; got != ">= 0.0.0" {
			t.Fatalf("echo versions %q, want >= 0.0.0 (old/ requires it unconstrained)", got)
		}
		mods := map[string]string{}
		for _, m := range cfg.Modules {
			mods[m.Source.String()] = m.Versions
		}
		if len(mods) != 2 || mods["registry.opentofu.org/acme/net/aws"] != ">= 2.1.0, < 3.0.0" || mods["registry.opentofu.org/acme/greeting/null"] != ">= 1.2.0, < 3.0.0" {
			t.Fatalf("modules %+v", cfg.Modules)
		}
	})
}
