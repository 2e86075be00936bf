package acceptance

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
)

// tofuAtLeast112 is the newest pinned OpenTofu, which must be 1.12 or
// later: the first with direct registry downloads.
func tofuAtLeast112(t *testing.T) testtools.TofuBinary {
	t.Helper()
	tofus := testtools.Tofus(t)
	newest := tofus[len(tofus)-1]
	if !strings.HasPrefix(newest.Version, "1.1") || newest.Version < "1.12" {
		t.Fatalf("the newest pinned OpenTofu is %s; the direct-download form needs 1.12 or later", newest.Version)
	}
	return newest
}

// TestAcceptanceModuleDirectDownload is the differential test of OpenTofu
// 1.12's direct downloads: the download endpoint answers 200 with a JSON
// location and use_registry_credentials. With false, the relative location
// is resolved against the endpoint and fetched without the registry token
// (although TF_TOKEN_ is set); with true, the token goes along and the
// package answers 401 without it. Both are tar.xz served without an
// extension: unpacked by content. Real tofu 1.12 installing from upstream
// and from our oci:// copy must produce the same trees.
func TestAcceptanceModuleDirectDownload(t *testing.T) {
	t.Parallel()
	w := newWorldUsing(t, tofuAtLeast112(t))
	const token = "registry-secret"
	pkg := compressed(t, formTar(t), "xz", "-c")
	w.up.ServeArchive("/v1/modules/acme/direct-anon/null/1.0.0/package", pkg)
	w.up.AddModuleDirect("acme", "direct-anon", "null", "1.0.0", "package", false)
	w.up.ServeArchive("/private/direct-creds", pkg)
	w.up.RequireToken("/private/direct-creds", token)
	w.up.AddModuleDirect("acme", "direct-creds", "null", "1.0.0", w.up.URL+"/private/direct-creds", true)
	env := []string{"TF_TOKEN_registry_opentofu_org=" + token}

	upstreamRC, emptyRC := w.moduleCLIConfigs()
	plan := w.writeFormsPlan("direct.yaml", []string{"direct-anon", "direct-creds"})
	run := w.mustMirror(0, env, "sync", "-c", plan, "--no-progress")
	for _, name := range []string{"direct-anon", "direct-creds"} {
		t.Run(name, func(t *testing.T) {
			ws := w.sub(t)
			direct := ws.installModule(fmt.Sprintf("source  = %q\n  version = \"1.0.0\"", "acme/"+name+"/null"), upstreamRC, env)
			line := fmt.Sprintf("oci://%s/opentofu-modules/acme/%s/null?tag=1.0.0", w.reg.Host, name)
			if !strings.Contains(run.stdout, line) {
				t.Fatalf("sync output lacks %s:\n%s", line, run)
			}
			mirrored := ws.installModule(fmt.Sprintf("source = %q", line), emptyRC, nil)
			if a, b := treeOf(t, direct), treeOf(t, mirrored); len(a) == 0 || !slices.Equal(a, b) {
				t.Fatalf("trees differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		})
	}
	// Who sent the token where: tofu and we alike, never to the anonymous one.
	var anon, creds, credsWithToken int
	for _, r := range w.up.Requests() {
		switch r.Path {
		case "/v1/modules/acme/direct-anon/null/1.0.0/package":
			anon++
			if r.Authorization != "" {
				t.Errorf("the token went to the anonymous direct download")
			}
		case "/private/direct-creds":
			creds++
			if r.Authorization == "Bearer "+token {
				credsWithToken++
			}
		}
	}
	if anon != 2 || creds != 2 || credsWithToken != 2 {
		t.Errorf("direct downloads: %d anonymous, %d with credentials (%d carrying the token); want 2, 2, 2 (tofu and sync)", anon, creds, credsWithToken)
	}
}
