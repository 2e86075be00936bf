package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tofuWritten is a lock file as tofu 1.12 writes it (from the acceptance
// oracle, with a second provider added by `tofu providers lock`).
const tofuWritten = `# This file is maintained automatically by "tofu init".
# Manual edits may be lost in future updates.

provider "example.com/zeta/alpha" {
  version = "0.1.0"
  hashes = [
    "zh:0000000000000000000000000000000000000000000000000000000000000000",
  ]
}

provider "registry.opentofu.org/acme/echo" {
  version     = "1.1.0"
  constraints = "~> 1.0"
  hashes = [
    "h1:kEkd6XDG6Fv9tJO+Hv5gc5uDkIoDN4Qg1Vmi1l2Q1mY=",
    "h1:z9Fv89dnjsKQJdH0S51q5ezaUtfmffoeYJzXxeymqbY=",
    "zh:b2f86a2c3d6c0c039d7c233141a7beaf0bf192d5aff2bd649bc0419fe76d86c5",
    "zh:c405ebd9ad50fb6a3beb22a9516889015d9144b027da990b0dea4b0d6610f24c",
  ]
}

provider "registry.opentofu.org/hashicorp/null" {
  version = "3.2.4"
}
`

// TestRoundTrip: a file OpenTofu wrote comes back byte for byte.
func TestRoundTrip(t *testing.T) {
	f, err := Parse([]byte(tofuWritten), "test.lock.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.Bytes()); got != tofuWritten {
		t.Fatalf("rewritten:\n%s\nwant:\n%s", got, tofuWritten)
	}
	p := f.Providers["registry.opentofu.org/acme/echo"]
	if p == nil || p.Version.String() != "1.1.0" || len(p.Hashes) != 4 || ConstraintsString(p.Constraints) != "~> 1.0" {
		t.Fatalf("parsed %+v", p)
	}
}

// TestParseRefuses what OpenTofu refuses, naming file and line.
func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"constraints not normalised", "provider \"registry.opentofu.org/a/b\" {\n  version = \"1.0.0\"\n  constraints = \"~>1.0\"\n}\n", `"~> 1.0"`},
		{"version not normalised", "provider \"registry.opentofu.org/a/b\" {\n  version = \"v1.0.0\"\n}\n", "1.0.0"},
		{"short address", "provider \"a/b\" {\n  version = \"1.0.0\"\n}\n", "registry.opentofu.org/a/b"},
		{"no version", "provider \"registry.opentofu.org/a/b\" {\n}\n", "version"},
		{"empty hashes", "provider \"registry.opentofu.org/a/b\" {\n  version = \"1.0.0\"\n  hashes = []\n}\n", "at least one"},
		{"bad hash", "provider \"registry.opentofu.org/a/b\" {\n  version = \"1.0.0\"\n  hashes = [\"nothash\"]\n}\n", "not a hash"},
		{"duplicate", "provider \"registry.opentofu.org/a/b\" {\n  version = \"1.0.0\"\n}\nprovider \"registry.opentofu.org/a/b\" {\n  version = \"1.0.0\"\n}\n", "duplicate"},
		{"syntax", "provider \"registry.opentofu.org/a/b\" {\n  version = \n}\n", "x.hcl:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "x.hcl")
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "x.hcl:") {
				t.Fatalf("err = %v, want ErrSyntax at x.hcl:LINE mentioning %s", err, tt.want)
			}
		})
	}
}

// TestWriteFile replaces atomically, leaves no temporary file, mode 0644.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	for _, content := range []string{"one\n", "two\n"} {
		if err := WriteFile(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the lock file", len(ents))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode().Perm())
	}
	if err := WriteFile(filepath.Join(dir, "missing", FileName), []byte("x")); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

// TestRead: a missing file is an empty lock, not an error.
func TestRead(t *testing.T) {
	f, err := Read(filepath.Join(t.TempDir(), FileName))
	if err != nil || len(f.Providers) != 0 {
		t.Fatalf("Read of a missing file = %+v, %v", f, err)
	}
}
