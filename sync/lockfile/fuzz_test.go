package lockfile

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it never panics, refuses with
// ErrSyntax, or returns a file whose rendering parses back to the same
// rendering (what we write, we and OpenTofu read).
func FuzzParse(f *testing.F) {
	f.Add([]byte(tofuWritten))
	f.Add([]byte("provider \"registry.opentofu.org/a/b\" {\n  version = \"1.0.0\"\n  constraints = \">= 1.0.0, < 2.0.0\"\n}\n"))
	f.Add([]byte("module \"x\" {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, err := Parse(data, "fuzz.hcl")
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		out := lf.Bytes()
		again, err := Parse(out, "rendered.hcl")
		if err != nil {
			t.Fatalf("our rendering does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(again.Bytes(), out) {
			t.Fatalf("rendering is not stable:\n%s\nthen:\n%s", out, again.Bytes())
		}
	})
}

// FuzzEntryPath: a path entryPath accepts stays inside the package
// directory on every system, whatever the zip says.
func FuzzEntryPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/../../b", "/a", "C:a", `a\b`, "./a", "a//b", ".", "a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := entryPath(name)
		if err != nil {
			if !errors.Is(err, ErrUnsafeArchive) {
				t.Fatalf("error %v does not wrap ErrUnsafeArchive", err)
			}
			return
		}
		root := filepath.FromSlash("/pkg")
		full := filepath.Join(root, filepath.FromSlash(p))
		if !strings.HasPrefix(full, root+string(filepath.Separator)) {
			t.Fatalf("entryPath(%q) = %q lands at %s, outside %s", name, p, full, root)
		}
		if strings.ContainsAny(p, "\\\x00\n") || strings.HasPrefix(p, "/") {
			t.Fatalf("entryPath(%q) = %q", name, p)
		}
	})
}
