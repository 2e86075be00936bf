package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
)

// tofurcPlan writes a plan pushing providers (YAML list items) to a TLS
// registry with the given providers_repository template.
func tofurcPlan(t *testing.T, template, providers string, insecure bool) string {
	t.Helper()
	plan := fmt.Sprintf("version: 1\ntarget:\n  registry: \"registry.example.internal:5000\"\n  insecure: %t\n  providers_repository: %q\nplatforms: [linux_amd64]\nproviders:\n%s", insecure, template, providers)
	path := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const twoHostsThreeNamespaces = `  - source: hashicorp/random
    versions: "~> 3.6"
  - source: hashicorp/aws
    versions: ">= 5.0.0"
  - source: example.com/acme/widget
    versions: "1.0.0"
  - source: example.com/other/widget
    versions: "1.0.0"
`

// TestTofurcAcceptedByTofu is differential: every pinned OpenTofu must load
// what tofurc prints without a CLI configuration problem, for templates
// that leave out the hostname, the namespace, or nothing; and the old
// single-block form must be refused, or the check proves nothing.
func TestTofurcAcceptedByTofu(t *testing.T) {
	tests := []struct {
		name     string
		template string
		plan     string // providers; twoHostsThreeNamespaces when empty
		blocks   int
		includes []string // expected include lists, one per block, joined by " "
	}{
		{
			name: "default template: one block per host", template: "opentofu-providers/${namespace}/${type}", blocks: 2,
			includes: []string{
				`"example.com/acme/widget" "example.com/other/widget"`,
				`"registry.opentofu.org/hashicorp/aws" "registry.opentofu.org/hashicorp/random"`,
			},
		},
		{
			name: "hostname in template: one block", template: "p/${hostname}/${namespace}/${type}", blocks: 1,
			includes: []string{`"example.com/acme/widget" "example.com/other/widget" "registry.opentofu.org/hashicorp/aws" "registry.opentofu.org/hashicorp/random"`},
		},
		{
			name: "no namespace in template: one block per namespace", template: "p/${hostname}/${type}", blocks: 3,
			plan: strings.Replace(twoHostsThreeNamespaces, "other/widget", "other/gadget", 1),
			includes: []string{
				`"example.com/acme/widget"`,
				`"registry.opentofu.org/hashicorp/aws" "registry.opentofu.org/hashicorp/random"`,
				`"example.com/other/gadget"`,
			},
		},
	}
	tofus := testtools.Tofus(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCLIEnv(t)
			if tt.plan == "" {
				tt.plan = twoHostsThreeNamespaces
			}
			out, errOut := e.mustRun(exitOK, "tofurc", "-c", tofurcPlan(t, tt.template, tt.plan, false))
			if strings.Contains(errOut, "plain HTTP") || strings.Contains(out, "plain HTTP") {
				t.Fatalf("secure target, yet tofurc warns about plain HTTP:\n%s\n%s", out, errOut)
			}
			if got := strings.Count(out, "oci_mirror {"); got != tt.blocks {
				t.Fatalf("%d oci_mirror blocks, want %d:\n%s", got, tt.blocks, out)
			}
			if got := includeLists(out); strings.Join(got, "|") != strings.Join(tt.includes, "|") {
				t.Fatalf("include lists\n%q\nwant\n%q\nin:\n%s", got, tt.includes, out)
			}
			for _, tofu := range tofus {
				if problems := tofuCLIConfigProblems(t, tofu, out); problems != "" {
					t.Fatalf("OpenTofu %s refuses the printed configuration:\n%s\nconfiguration:\n%s", tofu.Version, problems, out)
				}
			}
		})
	}
	t.Run("control: one block for two hosts is refused", func(t *testing.T) {
		old := "provider_installation {\n  oci_mirror {\n    repository_template = \"r.example:5000/opentofu-providers/${namespace}/${type}\"\n    include = [\"registry.opentofu.org/a/b\", \"example.com/c/d\"]\n  }\n}\n"
		for _, tofu := range tofus {
			if problems := tofuCLIConfigProblems(t, tofu, old); !strings.Contains(problems, `"hostname"`) {
				t.Fatalf("OpenTofu %s accepted a template without ${hostname} for two hosts:\n%s", tofu.Version, problems)
			}
		}
	})
}

// tofuCLIConfigProblems runs `tofu version` with rc as the CLI configuration
// and returns what tofu says is wrong with it ("" when nothing).
func tofuCLIConfigProblems(t *testing.T, tofu testtools.TofuBinary, rc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cli.tofurc")
	if err := os.WriteFile(path, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := testtools.RunTofu(t, tofu.Path, t.TempDir(), []string{"TF_CLI_CONFIG_FILE=" + path}, "version")
	if !strings.Contains(out, "OpenTofu v"+tofu.Version) {
		t.Fatalf("tofu version printed %q, want OpenTofu v%s", out, tofu.Version)
	}
	if i := strings.Index(out, "problems with the CLI configuration"); i >= 0 {
		return out[i:]
	}
	return ""
}

// includeLists returns each oci_mirror block's include entries joined by
// spaces, in output order.
func includeLists(rc string) []string {
	var out []string
	for _, block := range strings.Split(rc, "oci_mirror {")[1:] {
		_, list, _ := strings.Cut(block, "include")
		list, _, _ = strings.Cut(list, "]")
		var entries []string
		for _, f := range strings.Fields(list) {
			if strings.HasPrefix(f, `"`) {
				entries = append(entries, strings.TrimSuffix(f, ","))
			}
		}
		out = append(out, strings.Join(entries, " "))
	}
	return out
}

// TestTofurcInsecureTarget: an insecure target still gets a configuration,
// with a comment and a warning that OpenTofu will not use plain HTTP.
func TestTofurcInsecureTarget(t *testing.T) {
	e := newCLIEnv(t)
	out, errOut := e.mustRun(exitOK, "tofurc", "-c", tofurcPlan(t, "opentofu-providers/${namespace}/${type}", "  - source: hashicorp/random\n    versions: \"1.0.0\"\n", true))
	if !strings.Contains(out, "# WARNING: target.insecure is true, but OpenTofu never talks plain HTTP to OCI registries") {
		t.Fatalf("tofurc output lacks the plain-HTTP comment:\n%s", out)
	}
	if !strings.Contains(errOut, "level=WARN") || !strings.Contains(errOut, "never talks plain HTTP") {
		t.Fatalf("tofurc logged no plain-HTTP warning:\n%s", errOut)
	}
}
