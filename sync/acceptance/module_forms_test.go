package acceptance

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testgit"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testtools"
)

// formPackage is the module package every form serves: an executable, a
// nested module and a file in a subdirectory the //subdir cases select.
var formPackage = []formFile{
	{"main.tf", "output \"text\" {\n  value = \"" + moduleOutput + "\"\n}\n", false},
	{"scripts/run.sh", "#!/bin/sh\necho hi\n", true},
	{"modules/a/main.tf", "output \"text\" {\n  value = \"from modules/a\"\n}\n", false},
	{"modules/a/README.md", "# a\n", false},
}

type formFile struct {
	name, body string
	exec       bool
}

// TestAcceptanceModuleSourceForms is the differential test of every
// module location form OpenTofu accepts from a registry: for each, the
// real tofu installs the module straight from the test upstream (archives
// over HTTPS, git over git http-backend), and again from the oci:// copy
// we mirrored; both installed trees must be the same (names, bytes,
// executable bits; .git/ aside). Forms OpenTofu refuses must fail both in
// tofu and in our sync, with a reason naming the form.
func TestAcceptanceModuleSourceForms(t *testing.T) {
	t.Parallel()
	pinned := testtools.Tofus(t)
	w := newWorldUsing(t, pinned[0])
	git := testgit.New(t)

	repo := git.NewRepo("acme/greeting")
	files := map[string]string{}
	for _, f := range formPackage {
		name := f.name
		if f.exec {
			name += "*"
		}
		files[name] = f.body
	}
	repo.Write(files)
	sha := repo.Commit("release 1.0.0")
	repo.Tag("v1.0.0", true)
	repo.Git("branch", "release")
	// Later work on main must not leak into the tag, branch or SHA.
	repo.Write(map[string]string{"main.tf": "# moved on\n"})
	repo.Commit("later")
	repo.Git("push", "-q", repo.GitDir, "main", "release", "v1.0.0")
	// github.com/acme/greeting reaches the test server through git's own
	// url.insteadOf, which both tofu's git and ours read from the environment.
	gitEnv := []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=url." + git.URL + "/.insteadOf", "GIT_CONFIG_VALUE_0=https://github.com/"}

	up := w.up.URL
	w.up.ServeArchive("/a/p.zip", formZip(t))
	tarball := formTar(t)
	gz := gzipped(t, tarball)
	xzd := compressed(t, tarball, "xz", "-c")
	bz := compressed(t, tarball, "bzip2", "-c")
	for p, b := range map[string][]byte{"/a/p.tar.gz": gz, "/a/p.tgz": gz, "/a/p.tar.xz": xzd, "/a/p.txz": xzd,
		"/a/p.tar.bz2": bz, "/a/p.tar.tbz2": bz, "/a/zipblob": formZip(t), "/a/bzblob": bz, "/a/p.tar": tarball, "/a/p.tbz2": bz} {
		w.up.ServeArchive(p, b)
	}
	w.up.ServeTerraformGet("/a/redirect", up+"/a/p.tar.xz")
	w.up.ServeTerraformGet("/a/redirect-subdir", up+"/a/p.zip//modules/a")
	w.up.ServeArchive("/a/page", []byte(`<!DOCTYPE html><html><head><title>greeting</title><meta name="terraform-get" content="`+up+`/a/p.tar.bz2"></head><body></body></html>`))

	accepted := []struct{ name, location string }{
		{"git-tag", "git::" + repo.URL + "?ref=v1.0.0"},
		{"git-branch", "git::" + repo.URL + "?ref=release"},
		{"git-sha", "git::" + repo.URL + "?ref=" + sha},
		{"git-subdir-ref", "git::" + repo.URL + "//modules/a?ref=v1.0.0"},
		{"github-shorthand", "github.com/acme/greeting?ref=v1.0.0"},
		{"git-github-shorthand", "git::github.com/acme/greeting//modules/a?ref=" + sha},
		{"zip", up + "/a/p.zip"},
		{"tar-gz", up + "/a/p.tar.gz"},
		{"tgz", up + "/a/p.tgz//modules/a"},
		{"tar-xz", up + "/a/p.tar.xz"},
		{"txz", up + "/a/p.txz"},
		{"tar-bz2", up + "/a/p.tar.bz2"},
		{"tar-tbz2", up + "/a/p.tar.tbz2"},
		{"archive-zip", up + "/a/zipblob?archive=zip"},
		{"archive-tar-bz2", up + "/a/bzblob?archive=tar.bz2"},
		{"x-terraform-get", up + "/a/redirect"},
		{"x-terraform-get-subdir", up + "/a/redirect-subdir"},
		{"meta-terraform-get", up + "/a/page"},
		{"relative-location", "../../../../../../a/p.tgz"},
	}
	refused := []struct{ name, location, reason string }{
		{"git-ref-subdir", "git::" + repo.URL + "?ref=v1.0.0//modules/a", "put //subdir before the ?"},
		{"plain-tar", up + "/a/p.tar", "names no archive format OpenTofu unpacks"},
		{"tbz2", up + "/a/p.tbz2", "names no archive format OpenTofu unpacks"},
	}
	var modules []string
	for _, f := range accepted {
		w.up.AddModule("acme", f.name, "null", "1.0.0", f.location)
		modules = append(modules, f.name)
	}
	plan := w.writeFormsPlan("forms.yaml", modules)
	w.mustMirror(2, gitEnv, "plan", "-c", plan, "--detailed-exitcode")
	run := w.mustMirror(0, gitEnv, "sync", "-c", plan, "--no-progress")

	upstreamRC, emptyRC := w.moduleCLIConfigs()

	// Both pinned OpenTofu lines (1.10, the oldest with oci://, and 1.12)
	// install each form from upstream; the oci:// copy must match both.
	tofus := map[string]string{}
	for _, b := range pinned {
		tofus["tofu-"+b.Version] = b.Path
	}
	for _, f := range accepted {
		t.Run(f.name, func(t *testing.T) {
			ws := w.sub(t)
			m := regexp.MustCompile(`source = "(oci://[^"]*/acme/` + regexp.QuoteMeta(f.name) + `/null[^"]*)"`).FindStringSubmatch(run.stdout)
			if m == nil {
				t.Fatalf("sync printed no oci:// source for acme/%s/null:\n%s", f.name, run.stdout)
			}
			mirrored := treeOf(t, ws.installModule(fmt.Sprintf("source = %q", m[1]), emptyRC, nil))
			for label, bin := range tofus {
				wv := *ws
				wv.tofu = bin
				direct := treeOf(t, wv.installModule(fmt.Sprintf("source  = %q\n  version = \"1.0.0\"", "acme/"+f.name+"/null"), upstreamRC, gitEnv))
				if len(direct) == 0 {
					t.Fatalf("%s installed an empty package from upstream", label)
				}
				if !slices.Equal(direct, mirrored) {
					t.Fatalf("trees differ:\n%s from upstream:\n%s\nfrom oci://:\n%s", label, strings.Join(direct, "\n"), strings.Join(mirrored, "\n"))
				}
			}
		})
	}

	for _, f := range refused {
		t.Run("refused/"+f.name, func(t *testing.T) {
			ws := w.sub(t)
			w.up.AddModule("acme", f.name, "null", "1.0.0", f.location)
			for label, bin := range tofus {
				dir := t.TempDir()
				writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf("module \"m\" {\n  source  = %q\n  version = \"1.0.0\"\n}\n", "acme/"+f.name+"/null"))
				if out, err := testtools.RunTofuErr(t, bin, dir, append(ws.tofuEnv(upstreamRC), gitEnv...), "init", "-input=false", "-no-color"); err == nil {
					t.Fatalf("%s installed %s, which we refuse:\n%s", label, f.location, out)
				}
			}
			p := ws.writeFormsPlan("refused-"+f.name+".yaml", []string{f.name})
			r := ws.mirror(gitEnv, "sync", "-c", p, "--no-progress")
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, f.reason) {
				t.Fatalf("want a failure saying %q:\n%s", f.reason, r)
			}
		})
	}
}

// writeFormsPlan writes a plan mirroring acme/NAME/null 1.0.0 for names.
func (w *world) writeFormsPlan(file string, names []string) string {
	w.t.Helper()
	var mods strings.Builder
	for _, n := range names {
		fmt.Fprintf(&mods, "  - source: acme/%s/null\n    versions: \"1.0.0\"\n", n)
	}
	return w.writeModulesPlan(w.reg, file, "", mods.String())
}

// writeModulesPlan writes file: a plan into reg whose registry.opentofu.org
// is the test upstream, with extraTop lines at the top level, the modules
// list entries given and the world's trust section (its bundle key).
func (w *world) writeModulesPlan(reg *testregistry.Registry, file, extraTop, entries string) string {
	w.t.Helper()
	svc := w.up.Services()
	plan := fmt.Sprintf("version: 1\n%starget:\n  registry: %q\n  ca_file: %q\nupstream:\n  ca_file: %q\n  hosts:\n    %s:\n      services:\n        providers.v1: %q\n        modules.v1: %q\nmodules:\n%s%s",
		extraTop, reg.Host, reg.CAFile, w.up.CAFile, originHost, svc["providers.v1"], svc["modules.v1"], entries, w.trustSection())
	path := filepath.Join(w.dir, file)
	writeFile(w.t, path, plan)
	return path
}

// moduleCLIConfigs writes the two CLI configurations of the module
// differentials: one reaching the test upstream's module registry, one
// reaching nothing.
func (w *world) moduleCLIConfigs() (upstreamRC, emptyRC string) {
	w.t.Helper()
	upstreamRC = filepath.Join(w.t.TempDir(), "modules-upstream.tofurc")
	writeFile(w.t, upstreamRC, fmt.Sprintf("host %q {\n  services = {\n    \"modules.v1\" = %q\n  }\n}\n", originHost, w.up.Services()["modules.v1"]))
	emptyRC = filepath.Join(w.t.TempDir(), "empty.tofurc")
	writeFile(w.t, emptyRC, "# no host block: the upstream is out of reach\n")
	return upstreamRC, emptyRC
}

// installModule runs tofu init on a root module calling module "m" with
// the given arguments and returns the directory tofu installed it in.
func (w *world) installModule(args, cliConfig string, env []string) string {
	w.t.Helper()
	dir := w.t.TempDir()
	writeFile(w.t, filepath.Join(dir, "main.tf"), "module \"m\" {\n  "+args+"\n}\n")
	testtools.RunTofu(w.t, w.tofu, dir, append(w.tofuEnv(cliConfig), env...), "init", "-input=false", "-no-color")
	return filepath.Join(dir, ".terraform", "modules", "m")
}

// treeOf lists a directory as sorted "path mode sha256" lines (mode: d,
// x for executable, f, or l -> target), .git/ left out.
func treeOf(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.IsDir():
			out = append(out, rel+" d")
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, rel+" l -> "+target)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			body, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			kind := "f"
			if info.Mode()&0o111 != 0 {
				kind = "x"
			}
			out = append(out, fmt.Sprintf("%s %s %x", rel, kind, sha256.Sum256(body)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func formTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range formPackage {
		mode := int64(0o644)
		if f.exec {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func formZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range formPackage {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		h.SetMode(0o644)
		if f.exec {
			h.SetMode(0o755)
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	if _, err := gw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressed pipes data through a real compressor CLI (xz, bzip2), as a
// module author's release tooling would.
func compressed(t *testing.T, data []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// TestAcceptanceModuleNetrc: an archive behind HTTP basic authentication
// installs with the .netrc login for its host:port, in tofu (go-getter's
// Netrc: true) and in our sync alike, and the trees match; without the
// .netrc both fail.
func TestAcceptanceModuleNetrc(t *testing.T) { eachTofu(t, moduleNetrcScenario) }

func moduleNetrcScenario(t *testing.T) {
	w := newWorld(t)
	w.up.ServeArchive("/private/p.tgz", gzipped(t, formTar(t)))
	w.up.RequireBasicAuth("/private/p.tgz", "alice", "s3cret")
	w.up.AddModule("acme", "private", "null", "1.0.0", w.up.URL+"/private/p.tgz")
	netrc := filepath.Join(w.dir, "netrc")
	writeFile(t, netrc, "machine "+w.up.Host+"\n  login alice\n  password s3cret\n")
	env := []string{"NETRC=" + netrc}

	upstreamRC, emptyRC := w.moduleCLIConfigs()
	plan := w.writeFormsPlan("netrc.yaml", []string{"private"})

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), "module \"m\" {\n  source  = \"acme/private/null\"\n  version = \"1.0.0\"\n}\n")
	if out, err := testtools.RunTofuErr(t, w.tofu, dir, w.tofuEnv(upstreamRC), "init", "-input=false", "-no-color"); err == nil {
		t.Fatalf("tofu installed without credentials:\n%s", out)
	}
	if r := w.mirror(nil, "sync", "-c", plan, "--no-progress"); r.code == 0 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("sync without .netrc: want a 401 failure:\n%s", r)
	}

	direct := w.installModule("source  = \"acme/private/null\"\n  version = \"1.0.0\"", upstreamRC, env)
	run := w.mustMirror(0, env, "sync", "-c", plan, "--no-progress")
	line := fmt.Sprintf("oci://%s/opentofu-modules/acme/private/null?tag=1.0.0", w.reg.Host)
	if !strings.Contains(run.stdout, line) {
		t.Fatalf("sync output lacks %s:\n%s", line, run)
	}
	mirrored := w.installModule(fmt.Sprintf("source = %q", line), emptyRC, nil)
	if a, b := treeOf(t, direct), treeOf(t, mirrored); len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("trees differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}
