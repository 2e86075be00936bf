package modsource_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

func TestRegistryAddress(t *testing.T) {
	for in, want := range map[string]string{
		"terraform-aws-modules/vpc/aws":                       "registry.opentofu.org/terraform-aws-modules/vpc/aws",
		"terraform-aws-modules/iam/aws//modules/iam-role":     "registry.opentofu.org/terraform-aws-modules/iam/aws",
		"app.terraform.io/example-corp/k8s-cluster/azurerm":   "app.terraform.io/example-corp/k8s-cluster/azurerm",
		"registry.terraform.io/Azure/network/azurerm":         "registry.terraform.io/Azure/network/azurerm",
		"localhost:8443/ns/name/system":                       "", // no dot: not a module registry host to OpenTofu
		"./modules/x":                                         "",
		"../x":                                                "",
		"/abs/x/y":                                            "",
		"github.com/hashicorp/example":                        "",
		"github.com/hashicorp/example/modules":                "",
		"bitbucket.org/org/repo/x":                            "",
		"git::https://example.com/vpc.git":                    "",
		"git@github.com:org/repo.git":                         "",
		"https://example.com/vpc-module.zip":                  "",
		"oci://registry.example.com/modules/vpc?tag=1.0.0":    "",
		"s3::https://s3.amazonaws.com/bucket/vpc.zip":         "",
		"hashicorp/consul/aws?ref=v1":                         "",
		"ns/name":                                             "",
		"a/b/c/d/e":                                           "",
		"ns/name/AWS":                                         "",
		"terraform-aws-modules/vpc/aws/extra":                 "", // registry-address/v2 wants a dot in a registry host; tofu 1.12.6 refuses this source
		"example.com/terraform-aws-modules/vpc/aws//sub/path": "example.com/terraform-aws-modules/vpc/aws",
	} {
		a, ok := modsource.RegistryAddress(in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("RegistryAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegistryDependencies(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"main.tf": `
# module "commented" { source = "a/b/c" }
// module "commented2" { source = "a/b/d" }
/* module "block" {
  source = "a/b/e"
} */
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.0"

  tags = {
    source = "not/a/module"
  }
  name = "${var.prefix}-vpc"
  description = <<-EOT
    module "heredoc" {
      source = "h/e/re"
    }
    EOT
}

module "local" {
  source = "./modules/local"
}

module "git" {
  source = "git::https://example.com/x.git?ref=v1"
}

module "dynamic" {
  source = "${var.ns}/name/aws"
}

module "iam" { source = "terraform-aws-modules/iam/aws//modules/iam-role" }

resource "x" "y" {
  source = "q/r/s"
}

locals {
  m = { source = "t/u/v" }
}
`,
		"nested/other.tofu": "module \"consul\" {\n  source = \"app.terraform.io/corp/consul/aws\"\n}\n",
		"nested/README.md":  "module \"doc\" {\n  source = \"d/o/c\"\n}\n",
		"nested/x.tf.json":  `{"module":{"j":{"source":"j/s/on"}}}`,
		".git/config.tf":    "module \"hidden\" {\n  source = \"g/i/t\"\n}\n",
		"escaped.tf":        "module \"esc\" {\n  source = \"ns/na\\u006de/aws\" # HCL escapes\n}\nmodule \"after\" {\n  source = \"ns/after/aws\"\n}\n",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deps, err := modsource.RegistryDependencies(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range deps {
		got = append(got, fmt.Sprintf("%s:%d %s", d.File, d.Line, d.Address))
	}
	want := []string{
		"escaped.tf:2 registry.opentofu.org/ns/name/aws",
		"escaped.tf:5 registry.opentofu.org/ns/after/aws",
		"main.tf:8 registry.opentofu.org/terraform-aws-modules/vpc/aws",
		"main.tf:34 registry.opentofu.org/terraform-aws-modules/iam/aws",
		"nested/other.tofu:2 app.terraform.io/corp/consul/aws",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if a := modsource.SortedAddresses(append(deps, deps[0])); len(a) != 5 || a[0] != "app.terraform.io/corp/consul/aws" {
		t.Fatalf("SortedAddresses = %q", a)
	}
}
