package sync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync"
)

// TestModuleDependenciesRewrite drives module_dependencies: rewrite over a
// real upstream and registry: transitive dependencies within each block's
// constraint (a pre-release only when named exactly), a dependency shared by two
// packages mirrored once, a cycle left as written with a warning (as an
// example directory calling its own package would be), an unmirrorable
// dependency failing its package (which is then not tagged), and a second
// run doing nothing.
func TestModuleDependenciesRewrite(t *testing.T) {
	h := newHarness(t)
	add := func(name, version, mainTF string) {
		path := fmt.Sprintf("/archives/%s-%s.tgz", name, version)
		h.up.AddModule("acme", name, "null", version, path)
		h.up.ServeArchive(path, tgz(t, map[string]string{"main.tf": mainTF}))
	}
	call := func(label, source, version string) string {
		s := fmt.Sprintf("module %q {\n  source = %q\n", label, source)
		if version != "" {
			s += fmt.Sprintf("  version = %q\n", version)
		}
		return s + "}\n"
	}
	add("a", "1.0.0", call("b", "acme/b/null", "~> 1.0")+call("c", "acme/c/null", ""))
	add("b", "1.0.0", "# old\n")
	add("b", "1.5.0", call("c", "acme/c/null", "1.0.0"))
	add("b", "2.0.0", "# outside ~> 1.0\n")
	add("c", "1.0.0", "# leaf\n")
	add("c", "1.1.0-beta", "# a pre-release, never picked without being named\n")
	add("loop1", "1.0.0", call("x", "acme/loop2/null", ""))
	add("loop2", "1.0.0", call("x", "acme/loop1/null", ""))
	add("broken", "1.0.0", call("x", "acme/missing/null", ""))
	add("pre", "1.0.0", call("x", "acme/c/null", "1.1.0-beta"))
	cfg := h.config(`module_dependencies: rewrite
modules:
  - source: acme/a/null
    versions: "1.0.0"
  - source: acme/loop1/null
    versions: "1.0.0"
  - source: acme/broken/null
    versions: "1.0.0"
  - source: acme/pre/null
    versions: "1.0.0"
`)
	_, res := h.sync(cfg)
	got := map[string]int{}
	var lines []string
	for _, it := range res.Items {
		key := strings.TrimPrefix(it.Address, "registry.opentofu.org/acme/") + " " + it.Version + " " + it.State
		got[key]++
		lines = append(lines, key+" "+it.Error+" "+strings.Join(it.Warnings, "; "))
	}
	want := map[string]int{
		"a/null 1.0.0 done": 1, "b/null 1.5.0 done": 1, "c/null 1.0.0 done": 1,
		"loop1/null 1.0.0 done": 1, "loop2/null 1.0.0 done": 1, "broken/null 1.0.0 failed": 1,
		"pre/null 1.0.0 done": 1, "c/null 1.1.0-beta done": 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%q: %d items, want %d\n%s", k, got[k], n, strings.Join(lines, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("unexpected items:\n%s", strings.Join(lines, "\n"))
	}
	joined := strings.Join(lines, "\n")
	for _, s := range []string{`main.tf:2: module "x": acme/loop1/null: dependency cycle: registry.opentofu.org/acme/loop1/null -> registry.opentofu.org/acme/loop2/null -> registry.opentofu.org/acme/loop1/null`,
		"mirrored as a dependency of registry.opentofu.org/acme/a/null -> registry.opentofu.org/acme/b/null"} {
		if !strings.Contains(joined, s) {
			t.Errorf("results lack %q:\n%s", s, joined)
		}
	}
	if tags := h.tags("opentofu-modules/acme/broken/null"); len(tags) != 0 {
		t.Errorf("a package whose dependency failed was tagged: %v", tags)
	}
	for repo, tags := range map[string]string{"a": "1.0.0", "b": "1.5.0", "c": "1.0.0,1.1.0-beta"} {
		if got := strings.Join(h.tags("opentofu-modules/acme/"+repo+"/null"), ","); got != tags {
			t.Errorf("%s tags %q, want %q", repo, got, tags)
		}
	}

	// The next plan shows, without downloading, what a's blocks now call.
	var shown []string
	for _, mp := range h.plan(cfg).Modules {
		for _, v := range mp.Versions {
			if strings.HasSuffix(mp.Address, "/a/null") {
				shown = v.RewrittenDependencies
			}
		}
	}
	wantShown := []string{
		"oci://" + h.reg.Host + "/opentofu-modules/acme/b/null?tag=1.5.0",
		"oci://" + h.reg.Host + "/opentofu-modules/acme/c/null?tag=1.0.0",
	}
	if strings.Join(shown, " ") != strings.Join(wantShown, " ") {
		t.Errorf("plan shows a's rewritten dependencies %v, want %v", shown, wantShown)
	}

	// Again: a is complete, so nothing of it or its dependencies moves.
	_, again := h.sync(cfg)
	for _, it := range again.Items {
		if strings.Contains(it.Address, "/a/") && it.State != "unchanged" || strings.Contains(it.Address, "/c/") || strings.Contains(it.Address, "/b/") {
			t.Errorf("second run: %s %s %s", it.Address, it.Version, it.State)
		}
	}
}

// TestModuleDependenciesCrossCycle: two roots reach the cycle x <-> y from
// both ends at once. Each mirroring may end up waiting for the other's;
// the run must still finish, every package published, the cycle a warning.
func TestModuleDependenciesCrossCycle(t *testing.T) {
	for round := range 5 { // the interleaving differs from run to run
		h := newHarness(t)
		for name, body := range map[string]string{
			"r1": "module \"x\" {\n  source = \"acme/x/null\"\n}\n",
			"r2": "module \"y\" {\n  source = \"acme/y/null\"\n}\n",
			"x":  "module \"y\" {\n  source = \"acme/y/null\"\n}\n",
			"y":  "module \"x\" {\n  source = \"acme/x/null\"\n}\n",
		} {
			path := "/archives/" + name + ".tgz"
			h.up.AddModule("acme", name, "null", "1.0.0", path)
			h.up.ServeArchive(path, tgz(t, map[string]string{"main.tf": body}))
		}
		cfg := h.config("module_dependencies: rewrite\nmodules:\n  - source: acme/r1/null\n    versions: \"1.0.0\"\n  - source: acme/r2/null\n    versions: \"1.0.0\"\n")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		up, tg := h.clients(cfg)
		p := sync.NewPlanner(up, tg).Plan(ctx, cfg, tg.String())
		res := sync.NewExecutor(up, tg, sync.WithSpoolDir(t.TempDir()), sync.WithConcurrency(4)).Execute(ctx, p)
		timedOut := ctx.Err()
		cancel()
		if timedOut != nil {
			t.Fatalf("round %d: the run did not finish: %v", round, timedOut)
		}
		if err := res.Err(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		warned := false
		for _, it := range res.Items {
			warned = warned || strings.Contains(strings.Join(it.Warnings, " "), "dependency cycle")
		}
		if !warned {
			t.Fatalf("round %d: no item warns about the cycle: %+v", round, res.Items)
		}
	}
}
