package scan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/lockfile"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tree writes a codebase touching every rule the scanner follows.
func tree(t *testing.T) string {
	root := t.TempDir()
	write(t, filepath.Join(root, "app", "main.tf"), `terraform {
  required_providers {
    echo = {
      source  = "acme/echo"
      version = "~> 1.0"
    }
    aws = {
      source                = "hashicorp/aws"
      configuration_aliases = [aws.west]
    }
  }
}

module "local" {
  source = "./mod"
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws//modules/sub"
  version = "~> 5.1"
}

module "git" {
  source = "git::https://example.com/x.git"
}

module "gh" {
  source = "github.com/hashicorp/example"
}

resource "null_resource" "x" {}

resource "aws_instance" "y" {
  provider = aws.west
}

data "terraform_remote_state" "z" {
  backend = "local"
}
`)
	write(t, filepath.Join(root, "app", "mod", "versions.tofu"), `terraform {
  required_providers {
    echo = { source = "acme/echo", version = ">= 1.0.1" }
  }
}
`)
	// Hidden by versions.tofu, as OpenTofu hides it.
	write(t, filepath.Join(root, "app", "mod", "versions.tf"), `terraform {
  required_providers {
    echo = { source = "acme/echo", version = "~> 9.0" }
  }
}
`)
	write(t, filepath.Join(root, "app", "random.tf.json"), `{"terraform": {"required_providers": {"random": {"source": "hashicorp/random", "version": "3.6.3"}}}}`)
	write(t, filepath.Join(root, "app", lockfile.FileName), `provider "registry.opentofu.org/acme/echo" {
  version     = "0.9.0"
  constraints = "~> 0.9"
}
`)
	write(t, filepath.Join(root, "legacy", "main.tf"), `terraform {
  required_providers {
    echo = "~> 2.0"
  }
}
`)
	write(t, filepath.Join(root, "broken", "bad.tf"), "terraform {\n  required_providers {\n    echo = {\n}\n")
	// Never read: tofu init's working copies.
	write(t, filepath.Join(root, "app", ".terraform", "modules", "x", "main.tf"), `terraform {
  required_providers {
    never = { source = "acme/never" }
  }
}
`)
	return root
}

// TestConfiguration merges a root module's and its local modules'
// requirements, with implied and JSON ones, as tofu init loads them.
func TestConfiguration(t *testing.T) {
	f := Configuration(filepath.Join(tree(t), "app"))
	if len(f.Problems) != 0 {
		t.Fatalf("problems: %v", f.Problems)
	}
	reqs, err := f.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for a, c := range reqs {
		got[a] = lockfile.ConstraintsString(c)
	}
	want := map[string]string{
		"registry.opentofu.org/acme/echo":        "~> 1.0, >= 1.0.1",
		"registry.opentofu.org/hashicorp/aws":    "",
		"registry.opentofu.org/hashicorp/null":   "",
		"registry.opentofu.org/hashicorp/random": "3.6.3",
	}
	if len(got) != len(want) {
		t.Fatalf("requirements %v, want %v", got, want)
	}
	for a, c := range want {
		if g, ok := got[a]; !ok || g != c {
			t.Fatalf("requirements %v, want %v", got, want)
		}
	}
	var mods []string
	for _, m := range f.Modules {
		mods = append(mods, m.Addr.String()+" "+m.Version)
	}
	if !slices.Equal(mods, []string{"registry.opentofu.org/terraform-aws-modules/vpc/aws ~> 5.1"}) {
		t.Fatalf("registry module calls %v", mods)
	}
}

// TestWalk goes on past a broken file, names its file and line, skips
// .terraform, and reads lock files.
func TestWalk(t *testing.T) {
	root := tree(t)
	f := Walk(root)
	if len(f.Problems) != 1 || f.Problems[0].File != filepath.Join(root, "broken", "bad.tf") || f.Problems[0].Line == 0 {
		t.Fatalf("problems %v, want one at broken/bad.tf:LINE", f.Problems)
	}
	for _, r := range f.Providers {
		if strings.Contains(r.Address, "never") {
			t.Fatalf("read .terraform: %+v", r)
		}
	}
	if len(f.Locked) != 1 || f.Locked[0].Version.String() != "0.9.0" {
		t.Fatalf("locked %+v", f.Locked)
	}
	var legacy bool
	for _, r := range f.Providers {
		legacy = legacy || (r.Constraints == "~> 2.0" && r.Address == "registry.opentofu.org/hashicorp/echo")
	}
	if !legacy {
		t.Fatalf("legacy string requirement not read: %+v", f.Providers)
	}
}

// TestPlanEntries: the entries are valid plan-file syntax and cover every
// constraint and every locked version.
func TestPlanEntries(t *testing.T) {
	f := Walk(tree(t))
	providers, modules := f.PlanEntries()
	var b strings.Builder
	b.WriteString("version: 1\nplatforms: [linux_amd64]\n")
	if err := WritePlan(&b, providers, modules); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("scan.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("scan output is not a valid plan: %v\n%s", err, b.String())
	}
	got := map[string]string{}
	for _, p := range cfg.Providers {
		got[p.Source.String()] = p.Versions
	}
	want := map[string]string{
		// ~> 1.0, >= 1.0.1 and the locked 0.9.0
		"registry.opentofu.org/acme/echo":        ">= 0.9.0, < 2.0.0",
		"registry.opentofu.org/hashicorp/echo":   ">= 2.0.0, < 3.0.0",
		"registry.opentofu.org/hashicorp/aws":    ">= 0.0.0",
		"registry.opentofu.org/hashicorp/null":   ">= 0.0.0",
		"registry.opentofu.org/hashicorp/random": "3.6.3",
	}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v\n%s", got, want, b.String())
	}
	for s, v := range want {
		if got[s] != v {
			t.Fatalf("entries %v, want %v\n%s", got, want, b.String())
		}
	}
	if len(cfg.Modules) != 1 || cfg.Modules[0].Versions != ">= 5.1.0, < 6.0.0" {
		t.Fatalf("modules %+v\n%s", cfg.Modules, b.String())
	}
}
