package modsource_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// entry is one archive member: a file (body), a directory (name ending
// in "/"), a symlink (typ tar.TypeSymlink, link) or a hard link
// (tar.TypeLink, link).
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func exe(name, body string) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: 0o755}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeLink, mode: 0o644}
}
func fifo(name string) entry { return entry{name: name, typ: tar.TypeFifo, mode: 0o644} }
func paxGlobal(comment string) entry {
	return entry{name: "pax_global_header", body: comment, typ: tar.TypeXGlobalHeader}
}

func tarBytes(t testing.TB, gz bool, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var gw *gzip.Writer
	tw := tar.NewWriter(&buf)
	if gz {
		gw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(gw)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: time.Unix(0, 0)}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: e.name, PAXRecords: map[string]string{"comment": e.body}}
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if gz {
		if err := gw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func zipBytes(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		body := e.body
		switch e.typ {
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | 0o755)
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			body = e.link
		default:
			h.SetMode(fs.FileMode(e.mode))
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// extract unpacks data into a "pkg" directory of a fresh parent, and fails
// the test if anything appeared next to it.
func extract(t testing.TB, data []byte, limits modsource.Limits) (string, string, error) {
	t.Helper()
	parent := t.TempDir()
	dst := filepath.Join(parent, "pkg")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	format, err := modsource.Extract(bytes.NewReader(data), int64(len(data)), dst, limits)
	des, _ := os.ReadDir(parent)
	if len(des) != 1 {
		t.Fatalf("extraction wrote outside the package: %v", des)
	}
	return dst, format, err
}

// tree lists a directory as "path" (file, with content), "path/" and
// "path -> target" lines.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel+" -> "+target] = ""
		case d.IsDir():
			out[rel+"/"] = ""
		default:
			b, _ := os.ReadFile(p)
			fi, _ := d.Info()
			if fi.Mode().Perm()&0o111 != 0 {
				rel += "*"
			}
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExtract(t *testing.T) {
	members := []entry{
		dir("mod/"), file("mod/main.tf", "# main\n"), exe("mod/run.sh", "#!/bin/sh\n"),
		file("mod/sub/x.tf", "# x\n"), symlink("mod/link.tf", "main.tf"), symlink("mod/sublink", "sub"),
	}
	want := map[string]string{
		"mod/": "", "mod/main.tf": "# main\n", "mod/run.sh*": "#!/bin/sh\n", "mod/sub/": "", "mod/sub/x.tf": "# x\n",
		"mod/link.tf -> main.tf": "", "mod/sublink -> sub": "",
	}
	for _, tc := range []struct {
		name, format string
		data         []byte
	}{
		{"zip", modsource.FormatZip, zipBytes(t, members...)},
		{"tar.gz", modsource.FormatTarGz, tarBytes(t, true, append([]entry{paxGlobal("52 comment=25322b6b")}, members...)...)},
		{"tar", modsource.FormatTar, tarBytes(t, false, members...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, format, err := extract(t, tc.data, modsource.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if format != tc.format {
				t.Errorf("format %q, want %q", format, tc.format)
			}
			got := tree(t, dst)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("tree:\n%v\nwant:\n%v", got, want)
			}
		})
	}
	t.Run("hard link", func(t *testing.T) {
		dst, _, err := extract(t, tarBytes(t, true, file("a.tf", "# a\n"), hardlink("b.tf", "a.tf")), modsource.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got := tree(t, dst); got["b.tf"] != "# a\n" {
			t.Fatalf("tree %v", got)
		}
		a, _ := os.Stat(filepath.Join(dst, "a.tf"))
		b, _ := os.Stat(filepath.Join(dst, "b.tf"))
		if os.SameFile(a, b) {
			t.Fatal("hard link kept as a link, not copied")
		}
	})
}

func TestExtractRefuses(t *testing.T) {
	zeros := strings.Repeat("\x00", 4<<20)
	small := modsource.Limits{MaxUnpackedSize: 1 << 20, MaxEntries: 10}
	for _, tc := range []struct {
		name   string
		data   []byte
		limits modsource.Limits
		want   error
	}{
		{"zip dot-dot", zipBytes(t, file("ok.tf", ""), file("../evil.tf", "x")), small, manifest.ErrUnsafePath},
		{"tar dot-dot", tarBytes(t, true, file("ok.tf", ""), file("../evil.tf", "x")), small, manifest.ErrUnsafePath},
		{"inner dot-dot", tarBytes(t, true, file("a/../../evil.tf", "x")), small, manifest.ErrUnsafePath},
		{"harmless dot-dot", tarBytes(t, true, file("a/../b.tf", "x")), small, manifest.ErrUnsafePath},
		{"backslash dot-dot", zipBytes(t, file("..\\evil.tf", "x")), small, manifest.ErrUnsafePath},
		{"absolute", tarBytes(t, true, file("/etc/evil", "x")), small, manifest.ErrUnsafePath},
		{"drive letter", zipBytes(t, file("C:/evil", "x")), small, manifest.ErrUnsafePath},
		{"symlink out", tarBytes(t, true, symlink("l", "../../etc/passwd")), small, manifest.ErrUnsafePath},
		{"symlink absolute", zipBytes(t, symlink("l", "/etc/passwd")), small, manifest.ErrUnsafePath},
		{"symlink via symlink", tarBytes(t, true, dir("d/e/"), symlink("l", "."), symlink("d/e/x", "../../l/..")), small, manifest.ErrUnsafePath},
		{"symlink under symlink", tarBytes(t, true, dir("sub/"), symlink("l", "sub"), symlink("l/x", "y")), small, manifest.ErrUnsafePath},
		{"file through symlink", tarBytes(t, true, symlink("l", "/tmp"), file("l/x", "y")), small, manifest.ErrUnsafePath},
		{"hard link out", tarBytes(t, true, hardlink("l", "../../etc/passwd")), small, manifest.ErrUnsafePath},
		{"hard link to nothing", tarBytes(t, true, hardlink("l", "missing")), small, modsource.ErrInvalidArchive},
		{"fifo", tarBytes(t, true, fifo("p")), small, modsource.ErrInvalidArchive},
		{"gzip bomb", tarBytes(t, true, file("zeros", zeros)), small, modsource.ErrArchiveTooLarge},
		{"zip bomb", zipBytes(t, file("zeros", zeros)), small, modsource.ErrArchiveTooLarge},
		{"xz bomb", xzBytes(t, tarBytes(t, false, file("zeros", zeros))), small, modsource.ErrArchiveTooLarge},
		{"bzip2 bomb", compressCLI(t, tarBytes(t, false, file("zeros", zeros)), "bzip2", "-c"), small, modsource.ErrArchiveTooLarge},
		{"xz dot-dot", xzBytes(t, tarBytes(t, false, file("../evil.tf", "x"))), small, manifest.ErrUnsafePath},
		{"bzip2 symlink out", compressCLI(t, tarBytes(t, false, symlink("l", "../../etc/passwd")), "bzip2", "-c"), small, manifest.ErrUnsafePath},
		{"truncated xz", xzBytes(t, tarBytes(t, false, file("a.tf", strings.Repeat("abc", 1000))))[:40], small, modsource.ErrInvalidArchive},
		{"corrupt bzip2", append([]byte("BZh91AY&SY"), bytes.Repeat([]byte{0x55}, 64)...), small, modsource.ErrInvalidArchive},
		{"many small", tarBytes(t, true, file("a", zeros[:700<<10]), file("b", zeros[:700<<10])), small, modsource.ErrArchiveTooLarge},
		{"entries", tarBytes(t, true, file("1", ""), file("2", ""), file("3", "")), modsource.Limits{MaxEntries: 2}, modsource.ErrArchiveTooLarge},
		{"zip entries", zipBytes(t, file("1", ""), file("2", ""), file("3", "")), modsource.Limits{MaxEntries: 2}, modsource.ErrArchiveTooLarge},
		{"not an archive", []byte("<html>not found</html>"), small, modsource.ErrInvalidArchive},
		{"empty", nil, small, modsource.ErrInvalidArchive},
		{"truncated gzip", tarBytes(t, true, file("a.tf", strings.Repeat("abc", 1000)))[:60], small, modsource.ErrInvalidArchive},
		{"truncated zip", zipBytes(t, file("a.tf", strings.Repeat("abc", 1000)))[:60], small, modsource.ErrInvalidArchive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := extract(t, tc.data, tc.limits)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzExtractArchive checks, for any input, that extraction never writes
// outside the package, never leaves a symlink resolving outside it, and
// never unpacks more than the limit, whatever error it returns.
func FuzzExtractArchive(f *testing.F) {
	for _, seed := range seedArchives(f) {
		f.Add(seed)
	}
	limits := modsource.Limits{MaxUnpackedSize: 1 << 20, MaxEntries: 100}
	f.Fuzz(func(t *testing.T, data []byte) {
		dst, _, _ := extract(t, data, limits)
		root, err := filepath.EvalSymlinks(dst)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if real, err := filepath.EvalSymlinks(p); err == nil {
					if rel, _ := filepath.Rel(root, real); rel == ".." || strings.HasPrefix(rel, "../") {
						t.Fatalf("symlink %s resolves outside: %s", p, real)
					}
				}
				return nil
			}
			if d.Type().IsRegular() {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				total += fi.Size()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if total > limits.MaxUnpackedSize {
			t.Fatalf("unpacked %d bytes, limit %d", total, limits.MaxUnpackedSize)
		}
	})
}

// seedArchives are the fuzz seeds; testdata/fuzz/FuzzExtractArchive holds
// the same set (regenerate with MODSOURCE_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus).
func seedArchives(t testing.TB) [][]byte {
	return [][]byte{
		zipBytes(t, dir("m/"), file("m/main.tf", "# m\n"), exe("m/x.sh", "#!/bin/sh\n"), symlink("m/l", "main.tf")),
		tarBytes(t, true, paxGlobal("52 comment=abc"), dir("m/"), file("m/main.tf", "# m\n"), hardlink("m/h", "m/main.tf"), symlink("m/l", "main.tf")),
		tarBytes(t, false, file("a.tf", "a"), symlink("b", "a.tf")),
		zipBytes(t, file("../evil", "x")),
		tarBytes(t, true, symlink("l", "."), symlink("d/x", "../l/..")),
		tarBytes(t, true, symlink("l", "/tmp"), file("l/x", "y")),
		xzBytes(t, tarBytes(t, false, dir("m/"), file("m/main.tf", "# m\n"), symlink("m/l", "../../x"))),
		compressCLI(t, tarBytes(t, false, file("a.tf", "a"), hardlink("b", "a.tf"), file("../c", "c")), "bzip2", "-c"),
	}
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("MODSOURCE_WRITE_CORPUS") == "" {
		t.Skip("set MODSOURCE_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzExtractArchive")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzExtractArchive")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, seed := range seedArchives(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// archiveServer serves archives at fixed paths, counting requests.
func archiveServer(t *testing.T, files map[string][]byte) (*httptest.Server, *upstream.Client) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	up, err := upstream.New(upstream.WithRetry(0, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return srv, up
}

func TestFetchArchive(t *testing.T) {
	tgz := tarBytes(t, true, file("main.tf", "# tgz\n"), file("modules/a/a.tf", "# a\n"))
	zipped := zipBytes(t, dir("repo-1.0/"), file("repo-1.0/main.tf", "# zip\n"))
	sum := sha256.Sum256(tgz)
	srv, up := archiveServer(t, map[string][]byte{"/m.tgz": tgz, "/m.zip": zipped, "/download": zipped, "/fake.zip": tgz})
	ctx := context.Background()
	for _, tc := range []struct {
		name, source, file, subdir string
		size                       int
	}{
		{"tgz", srv.URL + "/m.tgz", "main.tf", "", len(tgz)},
		{"tgz subdir", srv.URL + "/m.tgz//modules/a", "modules/a/a.tf", "modules/a", len(tgz)},
		{"zip glob subdir", srv.URL + "/m.zip//*", "repo-1.0/main.tf", "repo-1.0", len(zipped)},
		{"archive param", srv.URL + "/download?archive=zip", "repo-1.0/main.tf", "", len(zipped)},
		{"checksum", srv.URL + "/m.tgz?checksum=sha256:" + hex.EncodeToString(sum[:]), "main.tf", "", len(tgz)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			pkg, err := modsource.New(modsource.WithHTTPFetcher(up)).Fetch(ctx, tc.source, dst)
			if err != nil {
				t.Fatal(err)
			}
			if pkg.Subdir != tc.subdir || pkg.Downloaded != int64(tc.size) || pkg.Commit != "" || pkg.Source.Kind != modsource.KindArchive {
				t.Fatalf("got %+v", pkg)
			}
			if _, err := os.Stat(filepath.Join(dst, tc.file)); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, tc := range []struct {
		name, source string
		opts         []modsource.Option
		want         error
	}{
		{"content differs from the name", srv.URL + "/fake.zip", nil, modsource.ErrInvalidArchive},
		{"bad checksum", srv.URL + "/m.tgz?checksum=sha256:" + strings.Repeat("0", 64), nil, modsource.ErrChecksum},
		{"download too large", srv.URL + "/m.tgz", []modsource.Option{modsource.WithLimits(modsource.Limits{MaxArchiveSize: 10})}, modsource.ErrArchiveTooLarge},
		{"missing", srv.URL + "/nope.zip", nil, upstream.ErrHTTPStatus},
		{"no HTTP fetcher", srv.URL + "/m.tgz", []modsource.Option{modsource.WithHTTPFetcher(nil)}, modsource.ErrUnsupportedSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]modsource.Option{modsource.WithHTTPFetcher(up)}, tc.opts...)
			_, err := modsource.New(opts...).Fetch(ctx, tc.source, t.TempDir())
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
