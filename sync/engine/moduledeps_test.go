package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
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
		key := strings.TrimPrefix(it.Address, "registry.opentofu.org/acme/") + " " + it.Version + " " + string(it.State)
		got[key]++
		lines = append(lines, key+" "+it.ErrorText()+" "+strings.Join(it.Warnings, "; "))
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
		if strings.Contains(it.Address, "/a/") && it.State != item.Unchanged || strings.Contains(it.Address, "/c/") || strings.Contains(it.Address, "/b/") {
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
		eng := engine.New(up, tg, tg, engine.WithSpoolDir(t.TempDir()), engine.WithConcurrency(4))
		res := eng.Execute(ctx, eng.Plan(ctx, cfg, tg.String()))
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

// TestModuleDependenciesInPlanMirroredOnce: a calls c, and the plan lists
// c too. Whichever gets there first (a's rewrite or c's own item)
// publishes c, and the run reports it once, as the plan's item: a bundle
// exported from it holds c once. One transfer slot must not deadlock a
// holding it while c's item waits for it.
func TestModuleDependenciesInPlanMirroredOnce(t *testing.T) {
	for _, concurrency := range []int{1, 4, 4, 4} {
		h := newHarness(t)
		for name, body := range map[string]string{
			"a": "module \"c\" {\n  source  = \"acme/c/null\"\n  version = \"1.0.0\"\n}\n",
			"c": "# leaf\n",
		} {
			path := "/archives/" + name + ".tgz"
			h.up.AddModule("acme", name, "null", "1.0.0", path)
			h.up.ServeArchive(path, tgz(t, map[string]string{"main.tf": body}))
		}
		cfg := h.config("module_dependencies: rewrite\nmodules:\n  - source: acme/a/null\n    versions: \"1.0.0\"\n  - source: acme/c/null\n    versions: \"1.0.0\"\n")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		up, tg := h.clients(cfg)
		eng := engine.New(up, tg, tg, engine.WithSpoolDir(t.TempDir()), engine.WithConcurrency(concurrency))
		res := eng.Execute(ctx, eng.Plan(ctx, cfg, tg.String()))
		timedOut := ctx.Err()
		cancel()
		if timedOut != nil {
			t.Fatalf("concurrency %d: the run did not finish: %v", concurrency, timedOut)
		}
		if err := res.Err(); err != nil {
			t.Fatalf("concurrency %d: %v", concurrency, err)
		}
		var lines []string
		for _, it := range res.Items {
			lines = append(lines, fmt.Sprintf("%s %s %s %s [%s]", it.Address, it.Version, it.State, it.Digest, strings.Join(it.Warnings, "; ")))
		}
		if len(res.Items) != 2 {
			t.Fatalf("concurrency %d: %d items, want a and c once each:\n%s", concurrency, len(res.Items), strings.Join(lines, "\n"))
		}
		for _, it := range res.Items {
			if it.State != item.Done || it.Digest == "" || !strings.HasPrefix(it.Source, "oci://") {
				t.Errorf("concurrency %d: %s", concurrency, strings.Join(lines, "\n"))
			}
			if strings.Contains(strings.Join(it.Warnings, " "), "mirrored as a dependency") {
				t.Errorf("concurrency %d: the plan's own c is reported as a dependency: %s", concurrency, strings.Join(lines, "\n"))
			}
		}
		if got := strings.Join(h.tags("opentofu-modules/acme/c/null"), ","); got != "1.0.0" {
			t.Errorf("c tags %q", got)
		}
		_, ann := h.readModule("opentofu-modules/acme/a/null", "1.0.0")
		if got, want := ann[manifest.ModuleRewrittenAnnotation], "oci://"+h.reg.Host+"/opentofu-modules/acme/c/null?tag=1.0.0"; got != want {
			t.Errorf("a's blocks were rewritten to %q, want %q", got, want)
		}
	}
}
