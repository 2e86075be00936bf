package config

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	good := map[string]Platform{
		"linux_amd64":   {"linux", "amd64"},
		"darwin_arm64":  {"darwin", "arm64"},
		"windows_386":   {"windows", "386"},
		"freebsd_arm":   {"freebsd", "arm"},
		"solaris_sparc": {"solaris", "sparc"},
	}
	for s, want := range good {
		t.Run(s, func(t *testing.T) {
			got, err := ParsePlatform(s)
			if err != nil || got != want {
				t.Fatalf("ParsePlatform(%q) = %+v, %v; want %+v", s, got, err, want)
			}
			if got.String() != s {
				t.Errorf("String() = %q; want %q", got.String(), s)
			}
		})
	}
	for _, s := range []string{"", "linux", "linux-amd64", "Linux_amd64", "linux_AMD64", "linux_amd64_v2", "_amd64", "linux_", "linux amd64", " linux_amd64", "linux/amd64"} {
		t.Run("bad "+s, func(t *testing.T) {
			if _, err := ParsePlatform(s); !errors.Is(err, ErrInvalidPlatform) {
				t.Errorf("ParsePlatform(%q) = %v; want ErrInvalidPlatform", s, err)
			}
		})
	}
}

func TestParseProviderAddr(t *testing.T) {
	good := []struct {
		in   string
		want ProviderAddr
		str  string
	}{
		{"hashicorp/aws", ProviderAddr{DefaultHostname, "hashicorp", "aws"}, "registry.opentofu.org/hashicorp/aws"},
		{"HashiCorp/AWS", ProviderAddr{DefaultHostname, "hashicorp", "aws"}, "registry.opentofu.org/hashicorp/aws"},
		{"registry.opentofu.org/hashicorp/aws", ProviderAddr{DefaultHostname, "hashicorp", "aws"}, "registry.opentofu.org/hashicorp/aws"},
		{"Example.COM:8443/my-org/cloud-stack2", ProviderAddr{"example.com:8443", "my-org", "cloud-stack2"}, "example.com:8443/my-org/cloud-stack2"},
		{"localhost/1password/op", ProviderAddr{"localhost", "1password", "op"}, "localhost/1password/op"},
		{"127.0.0.1:5000/a/b", ProviderAddr{"127.0.0.1:5000", "a", "b"}, "127.0.0.1:5000/a/b"},
		// OpenTofu's rules (registry-address/v2), where a home-made parser
		// differed: types may start with a digit, Unicode parts are fine
		// (an OCI repository template refuses them later), IDN hostnames
		// are written in Unicode and compared in punycode.
		{"hashicorp/1aws", ProviderAddr{DefaultHostname, "hashicorp", "1aws"}, "registry.opentofu.org/hashicorp/1aws"},
		{"hashicorp/ümlaut", ProviderAddr{DefaultHostname, "hashicorp", "ümlaut"}, "registry.opentofu.org/hashicorp/ümlaut"},
		{"ex\u00e4mple.com/a/b", ProviderAddr{"xn--exmple-cua.com", "a", "b"}, "xn--exmple-cua.com/a/b"},
		{"xn--exmple-cua.com/a/b", ProviderAddr{"xn--exmple-cua.com", "a", "b"}, "xn--exmple-cua.com/a/b"},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseProviderAddr(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseProviderAddr(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q; want %q", got.String(), tt.str)
			}
		})
	}
	bad := []string{
		"", "aws", "a/b/c/d", "/aws", "hashicorp/", "//", "hashi_corp/aws", "hashi.corp/aws",
		"hashicorp/-aws", "hashicorp/aws-", "hashi--corp/aws", "-hashicorp/aws",
		"hashicorp/terraform-provider-aws", "hashicorp/terraform-aws", "hashicorp/aws cli",
		"bad_host/hashicorp/aws", "host:65536/a/b", "host:/a/b",
		"-host.example/a/b", "host..example/a/b",
		"hashicorp/opentofu-aws", "hashicorp/opentofu-provider-aws", "-/aws",
	}
	for _, s := range bad {
		t.Run("bad "+s, func(t *testing.T) {
			if a, err := ParseProviderAddr(s); !errors.Is(err, ErrInvalidProviderAddr) {
				t.Errorf("ParseProviderAddr(%q) = %+v, %v; want ErrInvalidProviderAddr", s, a, err)
			}
		})
	}
}

func TestParseModuleAddr(t *testing.T) {
	good := []struct {
		in   string
		want ModuleAddr
		str  string
	}{
		{"terraform-aws-modules/vpc/aws", ModuleAddr{DefaultHostname, "terraform-aws-modules", "vpc", "aws"}, "registry.opentofu.org/terraform-aws-modules/vpc/aws"},
		{"Azure/Network/azurerm", ModuleAddr{DefaultHostname, "Azure", "Network", "azurerm"}, "registry.opentofu.org/Azure/Network/azurerm"},
		{"Registry.Example:8443/my_org/net-work/aws2", ModuleAddr{"registry.example:8443", "my_org", "net-work", "aws2"}, "registry.example:8443/my_org/net-work/aws2"},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseModuleAddr(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseModuleAddr(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q; want %q", got.String(), tt.str)
			}
		})
	}
	bad := []string{
		"", "vpc/aws", "a/b/c/d/e", "/vpc/aws", "a//aws", "a/b/", "a/b/AWS", "a/b/aws-x",
		"a_/b/c", "_a/b/c", "a/-b/c", "a.b/c/d", "bad_host/a/b/c", "a/b/c//sub",
		"a/" + strings.Repeat("b", 65) + "/c", "a/b/" + strings.Repeat("c", 65),
		"github.com/a/b/c", "bitbucket.org/a/b/c", "localhost/a/b/c",
	}
	for _, s := range bad {
		t.Run("bad "+s, func(t *testing.T) {
			if a, err := ParseModuleAddr(s); !errors.Is(err, ErrInvalidModuleAddr) {
				t.Errorf("ParseModuleAddr(%q) = %+v, %v; want ErrInvalidModuleAddr", s, a, err)
			}
		})
	}
}

func TestAddrStringWithoutHostname(t *testing.T) {
	if got := (ProviderAddr{Namespace: "hashicorp", Type: "null"}).String(); got != "registry.opentofu.org/hashicorp/null" {
		t.Errorf("ProviderAddr.String() = %q", got)
	}
	if got := (ModuleAddr{Namespace: "a", Name: "b", System: "c"}).String(); got != "registry.opentofu.org/a/b/c" {
		t.Errorf("ModuleAddr.String() = %q", got)
	}
}

func TestParseHostname(t *testing.T) {
	long := ""
	for len(long) < 250 {
		long += "abcdefghij."
	}
	for _, s := range []string{"", "a b", "a_b", "-a", "a-", "a..b", "a.", ".a", "a:0", "a:65536", "a:08", "https://a", "a/b", "user@a", long + "com"} {
		if _, err := parseHostname(s); !errors.Is(err, ErrInvalidHostname) {
			t.Errorf("parseHostname(%q) = %v; want ErrInvalidHostname", s, err)
		}
	}
	for in, want := range map[string]string{"A.Example:65535": "a.example:65535", "xn--bcher-kva.example": "xn--bcher-kva.example", "localhost": "localhost"} {
		if got, err := parseHostname(in); err != nil || got != want {
			t.Errorf("parseHostname(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
