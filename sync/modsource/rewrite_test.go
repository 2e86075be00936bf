package modsource_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

const rewriteMain = `# The VPC, pinned loosely.
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws" # from the registry
  version = "~> 5.0"

  name = "main"   # odd spacing survives
}

/* a block comment */
module "sg" {
  source = "registry.example.com/acme/sg/aws//modules/http"
}

module "local" {
  source = "./modules/local"
}

module "git" {
  source = "git::https://example.com/r.git?ref=v1"
}

module "dynamic" {
  source  = "acme/${var.kind}/aws"
}

locals {
  x = <<EOT
module "not_a_block" {
  source = "acme/heredoc/aws"
}
EOT
}
`

const rewriteWant = `# The VPC, pinned loosely.
module "vpc" {
  source  = "oci://mirror.example/m/terraform-aws-modules/vpc/aws?tag=5.8.1" # from the registry

  name = "main"   # odd spacing survives
}

/* a block comment */
module "sg" {
  source = "oci://mirror.example/m/acme/sg/aws//pkg/modules/http?tag=2.0.0"
}

module "local" {
  source = "./modules/local"
}

module "git" {
  source = "git::https://example.com/r.git?ref=v1"
}

module "dynamic" {
  source  = "acme/${var.kind}/aws"
}

locals {
  x = <<EOT
module "not_a_block" {
  source = "acme/heredoc/aws"
}
EOT
}
`

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRewriteRegistrySources(t *testing.T) {
	unchanged := "module \"x\" {\n  source = \"./x\"\n}\n"
	dir := writeTree(t, map[string]string{
		"main.tf":               rewriteMain,
		"nested/extra.tofu":     "module \"inner\" {\n  source = \"acme/missing/aws\"\n  version = \">= 9\"\n}\n",
		"unchanged.tf":          unchanged,
		"json.tf.json":          "{\n  \"module\": {\n    \"j\": {\n      \"source\": \"acme/vpc/aws\",\n      \"version\": \"1.0.0\"\n    }\n  }\n}\n",
		"broken.tf":             "module \"b\" {\n  source = \"acme/b/aws\"\n",
		".git/config.tf":        "module \"g\" {\n  source = \"acme/g/aws\"\n}\n",
		"modules/local/main.tf": "variable \"v\" {}\n",
	})
	var asked []string
	resolve := func(addr, constraint string) (string, error) {
		asked = append(asked, addr+" "+constraint)
		switch addr {
		case "registry.opentofu.org/terraform-aws-modules/vpc/aws":
			return "oci://mirror.example/m/terraform-aws-modules/vpc/aws?tag=5.8.1", nil
		case "registry.example.com/acme/sg/aws":
			return "oci://mirror.example/m/acme/sg/aws//pkg?tag=2.0.0", nil
		}
		return "", errors.New("no mirrored version meets the constraint")
	}
	rewrites, problems, err := modsource.RewriteRegistrySources(dir, resolve)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != rewriteWant {
		t.Fatalf("main.tf rewritten to\n%s\nwant\n%s", got, rewriteWant)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "main.tf")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "unchanged.tf")); string(b) != unchanged {
		t.Errorf("unchanged.tf changed:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".git/config.tf")); !strings.Contains(string(b), `"acme/g/aws"`) {
		t.Errorf(".git was rewritten:\n%s", b)
	}
	wantRewrites := []modsource.Rewrite{
		{File: "main.tf", Line: 3, Module: "vpc", Address: "registry.opentofu.org/terraform-aws-modules/vpc/aws", Constraint: "~> 5.0",
			From: "terraform-aws-modules/vpc/aws", To: "oci://mirror.example/m/terraform-aws-modules/vpc/aws?tag=5.8.1"},
		{File: "main.tf", Line: 11, Module: "sg", Address: "registry.example.com/acme/sg/aws",
			From: "registry.example.com/acme/sg/aws//modules/http", To: "oci://mirror.example/m/acme/sg/aws//pkg/modules/http?tag=2.0.0"},
	}
	if len(rewrites) != len(wantRewrites) {
		t.Fatalf("rewrites %+v", rewrites)
	}
	for i := range rewrites {
		if rewrites[i] != wantRewrites[i] {
			t.Errorf("rewrite %d = %+v\nwant %+v", i, rewrites[i], wantRewrites[i])
		}
	}
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.Error())
	}
	wantProblems := []string{
		"broken.tf: cannot parse",
		`json.tf.json:4: module "j": registry source "acme/vpc/aws" is in JSON syntax`,
		`main.tf:19: module "git": source "git::https://example.com/r.git?ref=v1" is fetched from outside the air gap`,
		`main.tf:23: module "dynamic": source is not a literal string`,
		`nested/extra.tofu:2: module "inner": acme/missing/aws: no mirrored version meets the constraint`,
	}
	if len(msgs) != len(wantProblems) {
		t.Fatalf("problems:\n%s", strings.Join(msgs, "\n"))
	}
	for i, w := range wantProblems {
		if !strings.HasPrefix(msgs[i], w) {
			t.Errorf("problem %d = %q, want prefix %q", i, msgs[i], w)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nested/extra.tofu")); !strings.Contains(string(b), `version = ">= 9"`) {
		t.Errorf("a block resolve refused was changed:\n%s", b)
	}
	if want := "registry.opentofu.org/acme/missing/aws >= 9"; !strings.Contains(strings.Join(asked, "\n"), want) {
		t.Errorf("resolve asked %v, want %q among them", asked, want)
	}

	// Rewriting again is a no-op: oci:// sources are not registry addresses.
	again, problems2, err := modsource.RewriteRegistrySources(dir, resolve)
	if err != nil || len(again) != 0 || len(problems2) != len(problems) {
		t.Fatalf("second pass: %+v, %v, %v", again, problems2, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "main.tf")); string(b) != rewriteWant {
		t.Errorf("second pass changed main.tf:\n%s", b)
	}
}

// TestRewriteDeterministic rewrites two copies of a package and packs
// them: the same bytes, so the mirrored digest is stable from run to run.
// It also covers a version argument before source, with a comment.
func TestRewriteDeterministic(t *testing.T) {
	files := map[string]string{"main.tf": "module \"a\" {\n  version = \"1.2.0\" # pinned\n  source  = \"acme/a/null\"\n  count   = 1\n}\n"}
	resolve := func(addr, constraint string) (string, error) {
		if addr != "registry.opentofu.org/acme/a/null" || constraint != "1.2.0" {
			return "", errors.New("unexpected " + addr + " " + constraint)
		}
		return "oci://r.example/m/acme/a/null?tag=1.2.0", nil
	}
	var digests []string
	for range 2 {
		dir := writeTree(t, files)
		if _, problems, err := modsource.RewriteRegistrySources(dir, resolve); err != nil || len(problems) != 0 {
			t.Fatalf("problems %v, err %v", problems, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "main.tf"))
		if want := "module \"a\" {\n  source  = \"oci://r.example/m/acme/a/null?tag=1.2.0\"\n  count   = 1\n}\n"; string(b) != want {
			t.Fatalf("main.tf:\n%s\nwant\n%s", b, want)
		}
		var buf bytes.Buffer
		info, err := manifest.WriteModuleZip(&buf, dir)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, info.Descriptor.Digest.String())
	}
	if digests[0] != digests[1] {
		t.Fatalf("digests differ: %v", digests)
	}
}
