package engine_test

import (
	"testing"
)

// TestNewestSelectsOnlyTheNewestVersions: "newest: 2" plans and copies only
// the two highest versions meeting the constraint; when upstream releases
// another, the next plan moves the window (the older tag stays for prune),
// and verify checks only the versions the plan keeps.
func TestNewestSelectsOnlyTheNewestVersions(t *testing.T) {
	h := newHarness(t)
	for _, v := range []string{"0.9.0", "1.0.0", "1.1.0", "1.2.0", "2.0.0-rc1"} {
		h.up.AddProvider("acme", "widget", v, "linux_amd64")
	}
	plan := `
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
    newest: 2
`
	cfg := h.config(plan)
	assertLines(t, states(h.plan(cfg)),
		"acme/widget 1.1.0 missing +linux_amd64",
		"acme/widget 1.2.0 missing +linux_amd64",
	)
	h.mustSync(cfg)
	assertLines(t, h.tags("opentofu-providers/acme/widget"), "1.1.0", "1.2.0")

	h.up.AddProvider("acme", "widget", "1.3.0", "linux_amd64")
	assertLines(t, states(h.plan(cfg)),
		"acme/widget 1.2.0 complete",
		"acme/widget 1.3.0 missing +linux_amd64",
	)
	h.mustSync(cfg)
	assertLines(t, h.tags("opentofu-providers/acme/widget"), "1.1.0", "1.2.0", "1.3.0")

	rep := h.verify(cfg, false)
	if rep.Checked != 2 || len(rep.Problems) != 0 {
		t.Fatalf("verify checked %d (want the 2 kept), problems %v", rep.Checked, findings(rep.Problems))
	}
	// Without newest, verify checks every tagged version again.
	all := h.config(`
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`)
	if rep := h.verify(all, false); rep.Checked != 3 {
		t.Fatalf("verify without newest checked %d, want 3", rep.Checked)
	}
}

// TestNewestForModules: the same rule for a module entry.
func TestNewestForModules(t *testing.T) {
	w := newModuleWorld(t)
	cfg := w.h.config(`
modules:
  - source: example/net/aws
    versions: ">= 1.0.0"
    newest: 1
`)
	p, res := w.run(w.h, cfg)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if len(p.Modules) != 1 || len(p.Modules[0].Versions) != 1 || p.Modules[0].Versions[0].Version != "1.2.0" {
		t.Fatalf("plan: %v", moduleStates(p))
	}
	assertLines(t, w.h.tags("opentofu-modules/example/net/aws"), "1.2.0")
}
