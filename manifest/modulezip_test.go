package manifest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// writeTree creates files under dir: a name ending in "/" is a directory,
// "name -> target" a symlink, and a "*" suffix marks an executable file.
// perm is the mode of non-executable files, mtime their timestamp.
func writeTree(t *testing.T, dir string, perm fs.FileMode, mtime time.Time, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if link, target, ok := strings.Cut(name, " -> "); ok {
			p := filepath.Join(dir, filepath.FromSlash(link))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(name, "*")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		default:
			mode := perm
			if strings.HasSuffix(name, "*") {
				mode = 0o750
			}
			if err := os.WriteFile(p, []byte(content), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

var sampleTree = map[string]string{
	"main.tf":                            "module \"x\" {}\n",
	"variables.tf":                       "variable \"a\" {}\n",
	"modules/sub/main.tf":                "output \"o\" { value = 1 }\n",
	"modules/sub/README.md":              strings.Repeat("readme ", 500),
	"scripts/run.sh*":                    "#!/bin/sh\necho hi\n",
	"empty/":                             "",
	"a-b/file":                           "dash sorts before slash",
	".git/HEAD":                          "ref: refs/heads/main\n",
	".git/objects/ab/cdef":               "object",
	"vendor/sub/.git":                    "gitdir: ../../.git/modules/sub\n",
	"vendor/sub/x.tf":                    "# submodule file\n",
	".github/workflows/ci.yml":           "on: push\n",
	"link.tf -> variables.tf":            "",
	"linkdir -> modules/sub":             "",
	"modules/sub/up.tf -> ../../main.tf": "",
}

func zipOf(t *testing.T, root string) ([]byte, ModuleZipInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := WriteModuleZip(&buf, root)
	if err != nil {
		t.Fatal(err)
	}
	if info.Descriptor.Digest != digest.SHA256.FromBytes(buf.Bytes()) || info.Descriptor.Size != int64(buf.Len()) {
		t.Fatalf("descriptor %+v does not describe the %d bytes written", info.Descriptor, buf.Len())
	}
	if info.Descriptor.MediaType != ZipLayerMediaType {
		t.Fatalf("media type %q", info.Descriptor.MediaType)
	}
	return buf.Bytes(), info
}

func TestWriteModuleZipContract(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, 0o644, time.Now(), sampleTree)
	data, info := zipOf(t, root)

	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Comment != "" {
		t.Errorf("comment %q", zr.Comment)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if len(f.Extra) != 0 {
			t.Errorf("%s: extra field %x", f.Name, f.Extra)
		}
		if f.ModifiedDate != zipEpochDate || f.ModifiedTime != zipEpochTime || !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: timestamp %v", f.Name, f.Modified)
		}
		want := fs.FileMode(0o644)
		switch {
		case strings.HasSuffix(f.Name, "/"):
			want = fs.ModeDir | 0o755
		case f.Name == "scripts/run.sh":
			want = 0o755
		}
		if f.Mode() != want {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), want)
		}
	}
	wantNames := []string{
		".github/", ".github/workflows/", ".github/workflows/ci.yml",
		"a-b/", "a-b/file",
		"empty/",
		"link.tf",
		"linkdir/", "linkdir/README.md", "linkdir/main.tf", "linkdir/up.tf",
		"main.tf",
		"modules/", "modules/sub/", "modules/sub/README.md", "modules/sub/main.tf", "modules/sub/up.tf",
		"scripts/", "scripts/run.sh",
		"variables.tf",
		"vendor/", "vendor/sub/", "vendor/sub/x.tf",
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("entries:\n  %s\nwant:\n  %s", strings.Join(names, "\n  "), strings.Join(wantNames, "\n  "))
	}
	if info.Files != 13 || info.Dirs != 10 {
		t.Errorf("counted %d files, %d dirs", info.Files, info.Dirs)
	}
	// Symlinks are stored as their targets' content.
	for name, want := range map[string]string{"link.tf": sampleTree["variables.tf"], "linkdir/main.tf": sampleTree["modules/sub/main.tf"], "modules/sub/up.tf": sampleTree["main.tf"]} {
		f, err := zr.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(f)
		if string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// TestWriteModuleZipDeterministic builds the same content twice with
// different timestamps, permissions and creation order, as two machines
// checking out the same commit would, and wants the same bytes.
func TestWriteModuleZipDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, 0o644, time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), sampleTree)
	writeTree(t, b, 0o600, time.Now(), sampleTree)
	za, ia := zipOf(t, a)
	zb, ib := zipOf(t, b)
	if !bytes.Equal(za, zb) || ia.Descriptor.Digest != ib.Descriptor.Digest || ia.Files != ib.Files {
		t.Fatalf("digests differ: %s vs %s", ia.Descriptor.Digest, ib.Descriptor.Digest)
	}
	zc, _ := zipOf(t, a)
	if !bytes.Equal(za, zc) {
		t.Fatal("two runs over the same tree differ")
	}
}

// TestWriteModuleZipGolden pins the bytes of a small package. It changes
// only if the format rules change or Go's compress/flate does: either way
// every mirrored module would get new digests, which must be a decision.
func TestWriteModuleZipGolden(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, 0o644, time.Now(), map[string]string{
		"main.tf":        "output \"hello\" { value = \"world\" }\n",
		"modules/x/x.tf": "variable \"x\" {}\n",
		"bin/tool*":      "#!/bin/sh\n",
	})
	_, info := zipOf(t, root)
	const want = "sha256:be4146cf813bbc7c10bbe8522a67d490ad24d63cd175c0c8c3ac7be8a879f854"
	if got := info.Descriptor.Digest.String(); got != want {
		t.Fatalf("digest %s, want %s (size %d)", got, want, info.Descriptor.Size)
	}
}

func TestWriteModuleZipRefuses(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(outside, "in")
	for _, tc := range []struct {
		name   string
		files  map[string]string
		unsafe bool
	}{
		{"relative escape", map[string]string{"main.tf": "", "x.tf -> ../secret": ""}, true},
		{"dangling escape", map[string]string{"main.tf": "", "x.tf -> ../../nowhere": ""}, true},
		{"absolute inside", map[string]string{"main.tf": "", "x.tf -> " + filepath.Join(inside, "pkg", "main.tf"): ""}, true},
		{"absolute escape", map[string]string{"main.tf": "", "x.tf -> " + filepath.Join(outside, "secret"): ""}, true},
		{"dir escape", map[string]string{"main.tf": "", "d -> " + outside: ""}, true},
		{"loop", map[string]string{"sub/main.tf": "", "sub/loop -> ..": ""}, true},
		{"self loop", map[string]string{"main.tf": "", "here -> .": ""}, true},
		{"dangling", map[string]string{"main.tf": "", "x.tf -> nowhere.tf": ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(inside, "pkg")
			t.Cleanup(func() { _ = os.RemoveAll(inside) })
			writeTree(t, root, 0o644, time.Now(), tc.files)
			_, err := WriteModuleZip(io.Discard, root)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrUnsafePath) != tc.unsafe {
				t.Fatalf("errors.Is(ErrUnsafePath) = %v: %v", !tc.unsafe, err)
			}
			if !strings.Contains(err.Error(), root) {
				t.Errorf("error does not name the package: %v", err)
			}
		})
	}
}

func TestModulePackageAnnotated(t *testing.T) {
	z := zipDesc("zip")
	plain, err := ModulePackage(z)
	if err != nil {
		t.Fatal(err)
	}
	same, err := ModulePackageAnnotated(z, ModulePackageInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Raw, same.Raw) {
		t.Fatal("zero info must give ModulePackage's bytes")
	}
	info := ModulePackageInfo{Subdir: "modules/x", Dependencies: []string{"registry.opentofu.org/b/c/aws", "registry.opentofu.org/a/b/aws", "registry.opentofu.org/b/c/aws"}}
	a, err := ModulePackageAnnotated(z, info)
	if err != nil {
		t.Fatal(err)
	}
	if a.Descriptor.Digest != digest.SHA256.FromBytes(a.Raw) || a.Descriptor.ArtifactType != ModulePackageArtifactType {
		t.Fatal("descriptor does not describe raw bytes")
	}
	layer, err := ModulePackageLayer(a.Raw)
	if err != nil || layer.Digest != z.Digest {
		t.Fatalf("ModulePackageLayer: %v %v", layer, err)
	}
	var m struct {
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(a.Raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != ModulePackageArtifactType || m.Annotations[ModuleDependenciesAnnotation] != "registry.opentofu.org/a/b/aws,registry.opentofu.org/b/c/aws" {
		t.Fatalf("manifest %s", a.Raw)
	}
	got := ModulePackageInfoOf(a.Raw)
	if got.Subdir != "modules/x" || !slices.Equal(got.Dependencies, []string{"registry.opentofu.org/a/b/aws", "registry.opentofu.org/b/c/aws"}) {
		t.Fatalf("read back %+v", got)
	}
	if got := ModulePackageInfoOf(plain.Raw); got.Subdir != "" || got.Dependencies != nil {
		t.Fatalf("plain manifest read back %+v", got)
	}
}
