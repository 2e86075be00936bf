package config

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// isASCIIWithout reports whether s is printable ASCII without any of the
// bytes in forbidden.
func isASCIIWithout(s, forbidden string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || strings.IndexByte(forbidden, s[i]) >= 0 {
			return false
		}
	}
	return true
}

// addrSeeds are source addresses (good and bad) both address fuzzers start from.
var addrSeeds = []string{
	"hashicorp/aws", "HashiCorp/AWS", "registry.opentofu.org/hashicorp/aws",
	"Example.COM:8443/my-org/cloud-stack2", "localhost/1password/op", "127.0.0.1:5000/a/b",
	"terraform-aws-modules/vpc/aws", "app.terraform.io/Org_1/name-x/aws",
	"registry.opentofu.org/a/b/c", "git::https://example.com/x.git", "a/b//sub",
	"hashicorp/terraform-provider-aws", "host:0/a/b", "host:65536/a/b", "ex\u00e4mple.com/a/b",
	"\u212aubernetes/x", "a/b/c/d/e", "", "/", "x:1/y/z",
}

// FuzzParseProviderAddr checks ParseProviderAddr never panics, refuses
// with ErrInvalidProviderAddr only, and that what it accepts is lower-case
// ASCII (OCI repository names are built from it) and prints to a string
// that parses back to the same address.
func FuzzParseProviderAddr(f *testing.F) {
	for _, s := range addrSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseProviderAddr(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidProviderAddr) {
				t.Fatalf("ParseProviderAddr(%q): error %v does not match ErrInvalidProviderAddr", s, err)
			}
			if a != (ProviderAddr{}) {
				t.Fatalf("ParseProviderAddr(%q): address %+v returned with an error", s, a)
			}
			return
		}
		if a.Hostname == "" || a.Namespace == "" || a.Type == "" {
			t.Fatalf("ParseProviderAddr(%q) = %+v: empty part", s, a)
		}
		// The hostname is ASCII (punycode); namespace and type follow
		// OpenTofu, which allows Unicode letters (OCI repository names
		// refuse them later, in the template check).
		if a.Hostname != strings.ToLower(a.Hostname) || !isASCIIWithout(a.Hostname, "/") {
			t.Fatalf("ParseProviderAddr(%q) = %+v: hostname is not lower-case ASCII", s, a)
		}
		for _, part := range []string{a.Namespace, a.Type} {
			if part != strings.ToLower(part) || strings.Contains(part, "/") || !utf8.ValidString(part) {
				t.Fatalf("ParseProviderAddr(%q) = %+v: part %q is not lower-case without '/'", s, a, part)
			}
		}
		str := a.String()
		again, err := ParseProviderAddr(str)
		if err != nil || again != a {
			t.Fatalf("ParseProviderAddr(%q) = %+v prints as %q, which parses to %+v, %v", s, a, str, again, err)
		}
		if again.String() != str {
			t.Fatalf("%q printed twice differs: %q", str, again.String())
		}
	})
}

// FuzzParseModuleAddr checks ParseModuleAddr never panics, refuses with
// ErrInvalidModuleAddr only, and that what it accepts is ASCII with a
// lower-case hostname and prints to a string that parses back to the same
// address.
func FuzzParseModuleAddr(f *testing.F) {
	for _, s := range addrSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseModuleAddr(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidModuleAddr) {
				t.Fatalf("ParseModuleAddr(%q): error %v does not match ErrInvalidModuleAddr", s, err)
			}
			if a != (ModuleAddr{}) {
				t.Fatalf("ParseModuleAddr(%q): address %+v returned with an error", s, a)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("ParseModuleAddr accepted invalid UTF-8 %q", s)
		}
		if a.Hostname != strings.ToLower(a.Hostname) {
			t.Fatalf("ParseModuleAddr(%q) = %+v: hostname not lower-case", s, a)
		}
		for _, part := range []string{a.Hostname, a.Namespace, a.Name, a.System} {
			if part == "" || !isASCIIWithout(part, "/") {
				t.Fatalf("ParseModuleAddr(%q) = %+v: part %q is empty or not ASCII without '/'", s, a, part)
			}
		}
		str := a.String()
		again, err := ParseModuleAddr(str)
		if err != nil || again != a {
			t.Fatalf("ParseModuleAddr(%q) = %+v prints as %q, which parses to %+v, %v", s, a, str, again, err)
		}
		if again.String() != str {
			t.Fatalf("%q printed twice differs: %q", str, again.String())
		}
	})
}
