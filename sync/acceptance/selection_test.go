package acceptance

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
)

// TestAcceptanceVersionSelectionLikeTofu is differential: for each
// constraint, the version real tofu selects straight from the upstream
// must be the newest our plan would mirror (or both select nothing), for
// providers (go-versions rules) and modules (the module installer's).
func TestAcceptanceVersionSelectionLikeTofu(t *testing.T) {
	eachTofu(t, scenarioVersionSelectionLikeTofu)
}

func scenarioVersionSelectionLikeTofu(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, v := range []string{"1.0.0", "1.1.0", "1.1.0+build.5", "1.2.0-beta1", "1.2.0", "1.3.0-rc1"} {
		w.up.AddProvider(namespace, ptype, v, currentPlatform)
	}
	w.up.ServeArchive("/archives/greeting.tar.gz", moduleTgz(t, map[string]string{"main.tf": "# greeting\n"}))
	for _, v := range []string{"1.0.0", "v1.1.0", "1.2.0-beta1", "1.2.0", "v1.3.0-rc1", "2.0.0"} {
		w.up.AddModule("acme", "greeting", "null", v, "/archives/greeting.tar.gz")
	}
	svc := w.up.Services()
	cli := filepath.Join(t.TempDir(), "upstream.tofurc")
	writeFile(t, cli, fmt.Sprintf("host %q {\n  services = {\n    \"providers.v1\" = %q\n    \"modules.v1\" = %q\n  }\n}\n", originHost, svc["providers.v1"], svc["modules.v1"]))

	t.Run("providers", func(t *testing.T) {
		for _, c := range []string{
			"= 1.1.0", "1.1.0+build.5", "!= 1.2.0", "~> 1.1", "~> 1.1.0", ">= 1.0.0",
			"= 1.2.0-beta1", ">= 1.0.0, = 1.2.0-beta1", "~> 1.2.0-beta1", "< 1.3.0-rc1", "= 1.3.0-rc1", "> 5.0.0",
		} {
			t.Run(c, func(t *testing.T) {
				w := w.sub(t)
				dir := w.workDir(c)
				tofuPick := ""
				out, err := testtools.RunTofuErr(t, w.tofu, dir, w.tofuEnv(cli), "providers", "lock", "-platform="+currentPlatform, "-no-color")
				if err == nil {
					tofuPick = readLock(t, dir)[address].Version
				} else if !strings.Contains(out, "no available releases match") {
					t.Fatalf("tofu failed for another reason than no match:\n%s", out)
				}
				w.assertMirrorsTofuPick(c, tofuPick, w.planned(w.writePlan(c, currentPlatform), "providers"))
			})
		}
	})
	t.Run("modules", func(t *testing.T) {
		for _, c := range []string{
			"1.1.0", "v1.1.0", "~> 1.1", "~> 1", "!= 1.2.0", ">= 1.0.0, < 2.0.0",
			"1.2.0-beta1", "= 1.2.0-beta1", "v1.3.0-rc1", ">= 1.2.0-beta1", "> 3.0.0",
		} {
			t.Run(c, func(t *testing.T) {
				w := w.sub(t)
				dir := t.TempDir()
				writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf("module \"greeting\" {\n  source  = \"acme/greeting/null\"\n  version = %q\n}\n", c))
				// The selection is what tofu announces it downloads (the test
				// upstream serves a "v"-listed version's download only under
				// its listed spelling, so that step may fail afterwards).
				out, _ := testtools.RunTofuErr(t, w.tofu, dir, w.tofuEnv(cli), "init", "-backend=false", "-input=false", "-no-color")
				tofuPick := ""
				if m := downloadingRE.FindStringSubmatch(out); m != nil {
					tofuPick = m[1]
				} else if !strings.Contains(out, "Unresolvable module version constraint") {
					t.Fatalf("tofu neither selected a version nor found none matching:\n%s", out)
				}
				w.assertMirrorsTofuPick(c, tofuPick, w.planned(w.writeModulePlan(w.reg, c), "modules"))
			})
		}
	})
}

// planned runs `plan -o json` and returns the versions it lists for the
// one provider or module (kind "providers" or "modules").
func (w *world) planned(plan, kind string) []string {
	w.t.Helper()
	// Exit 1 is fine when the plan is printed: the test upstream answers a
	// "v"-listed module's download only under that spelling, which the
	// plan asks for after selecting.
	run := w.mirror(nil, "plan", "-c", plan, "-o", "json")
	type item struct {
		Versions []struct {
			Version string `json:"version"`
		} `json:"versions"`
	}
	var out struct {
		Providers []item `json:"providers"`
		Modules   []item `json:"modules"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &out); err != nil {
		w.t.Fatalf("plan -o json: %v\n%s", err, run.stdout)
	}
	items := out.Providers
	if kind == "modules" {
		items = out.Modules
	}
	var vs []string
	for _, it := range items {
		for _, v := range it.Versions {
			vs = append(vs, v.Version)
		}
	}
	return vs
}

// assertMirrorsTofuPick checks that what we mirror for constraint c holds
// tofu's pick and nothing of higher precedence (so tofu, installing from
// the mirror, selects the same), and is empty when tofu picks nothing.
func (w *world) assertMirrorsTofuPick(c, tofuPick string, planned []string) {
	w.t.Helper()
	if tofuPick == "" {
		if len(planned) != 0 {
			w.t.Fatalf("constraint %q: tofu selects nothing, we would mirror %v", c, planned)
		}
		return
	}
	pick := version.Must(version.NewVersion(tofuPick))
	found := false
	for _, p := range planned {
		v := version.Must(version.NewVersion(p))
		if v.GreaterThan(pick) {
			w.t.Fatalf("constraint %q: tofu selects %s, but we would also mirror the newer %s, which tofu would then take", c, tofuPick, p)
		}
		found = found || sameVersion(p, tofuPick) && v.Metadata() == pick.Metadata()
	}
	if !found {
		w.t.Fatalf("constraint %q: tofu selects %s, which is not among what we would mirror: %v", c, tofuPick, planned)
	}
}

// downloadingRE finds the module version tofu init selected.
var downloadingRE = regexp.MustCompile(`Downloading \S+ (\S+) for greeting`)

// sameVersion compares module versions as the module installer does
// (go-version, "v" prefix ignored); "" only equals "".
func sameVersion(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	va, errA := version.NewVersion(a)
	vb, errB := version.NewVersion(b)
	return errA == nil && errB == nil && va.Equal(vb)
}
