package lockfile

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"
)

type entry struct {
	name string
	body string
	mode os.FileMode
}

func buildZip(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o755
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unzip extracts as OpenTofu's installer leaves a package on disk, for the
// reference hash.
func unzip(t *testing.T, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHashPackageMatchesDirhash: our h1: of a zip, computed without
// unpacking, is dirhash.HashDir of the unpacked directory (what OpenTofu
// computes after installing), and zh: is the zip's sha256.
func TestHashPackageMatchesDirhash(t *testing.T) {
	data := buildZip(t,
		entry{name: "terraform-provider-echo_v1.0.0", body: "binary"},
		entry{name: "docs/", mode: os.ModeDir | 0o755},
		entry{name: "docs/README.md", body: "read me"},
		entry{name: "LICENSE", body: "MPL", mode: 0o644},
	)
	got, err := HashPackage(bytes.NewReader(data), t.TempDir(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := dirhash.HashDir(unzip(t, data), "", dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	if got.H1 != want {
		t.Fatalf("h1 = %s, dirhash.HashDir of the unpacked zip = %s", got.H1, want)
	}
	sum := sha256.Sum256(data)
	if got.ZH != "zh:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("zh = %s, want the zip's sha256 %x", got.ZH, sum)
	}
}

// TestHashPackageRefusesUnsafe: archives that would escape, link, repeat a
// path or bomb are refused, never hashed.
func TestHashPackageRefusesUnsafe(t *testing.T) {
	bomb := make([]byte, 64<<20) // 64 MiB of zeros deflate to ~64 KiB
	tests := []struct {
		name    string
		entries []entry
		lim     Limits
	}{
		{name: "parent", entries: []entry{{name: "../evil", body: "x"}}},
		{name: "nested parent", entries: []entry{{name: "a/../../evil", body: "x"}}},
		{name: "absolute", entries: []entry{{name: "/etc/passwd", body: "x"}}},
		{name: "drive letter", entries: []entry{{name: "C:evil", body: "x"}}},
		{name: "backslash", entries: []entry{{name: `..\evil`, body: "x"}}},
		{name: "symlink", entries: []entry{{name: "link", body: "/etc/passwd", mode: os.ModeSymlink | 0o777}}},
		{name: "duplicate", entries: []entry{{name: "a", body: "1"}, {name: "./a", body: "2"}}},
		{name: "file and directory", entries: []entry{{name: "a", body: "1"}, {name: "a/b", body: "2"}}},
		{name: "zip bomb ratio", entries: []entry{{name: "zeros", body: string(bomb)}}},
		{name: "unpacked limit", entries: []entry{{name: "a", body: "0123456789"}, {name: "b", body: "0123456789"}}, lim: Limits{MaxUnpackedSize: 15}},
		{name: "too many files", entries: []entry{{name: "a", body: "1"}, {name: "b", body: "2"}}, lim: Limits{MaxFiles: 1}},
		{name: "zip too large", entries: []entry{{name: "a", body: "1"}}, lim: Limits{MaxZipSize: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := HashPackage(bytes.NewReader(buildZip(t, tt.entries...)), t.TempDir(), tt.lim)
			if !errors.Is(err, ErrUnsafeArchive) {
				t.Fatalf("err = %v, want ErrUnsafeArchive", err)
			}
		})
	}
}

// TestHashPackageLeavesNothing: the spool file is gone once hashed.
func TestHashPackageLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := HashPackage(bytes.NewReader(buildZip(t, entry{name: "a", body: "1"})), dir, Limits{}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("spool dir holds %v", ents)
	}
}
