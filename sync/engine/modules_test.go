package engine_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testgit"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/modsource"
)

// moduleWorld is a test upstream serving the module protocol, a git server
// behind it, and counters for what a run fetched.
type moduleWorld struct {
	h   *harness
	git *testgit.Server

	mu      sync.Mutex
	gitCmds int

	netSHA string // the commit v1.1.0 points at, by SHA
}

func (w *moduleWorld) gitHook([]string) {
	w.mu.Lock()
	w.gitCmds++
	w.mu.Unlock()
}

func (w *moduleWorld) gitCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gitCmds
}

// tgz builds a .tar.gz the way `git archive` does: a pax global header
// first, then the tree.
func tgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "0123abcd"}}); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}
		if link, target, ok := strings.Cut(n, " -> "); ok {
			h = &tar.Header{Name: link, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, files[n]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, body := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// newModuleWorld serves three modules:
//   - example/net/aws from git: 1.0.0 by annotated tag, 1.1.0 by commit
//     SHA, 1.2.0 by branch with a //subdir;
//   - example/tarball/aws 2.0.0: a .tar.gz behind a 204 with a relative
//     X-Terraform-Get;
//   - example/zipped/aws 3.0.0: a .zip behind a JSON location.
func newModuleWorld(t *testing.T) *moduleWorld {
	w := &moduleWorld{h: newHarness(t), git: testgit.New(t)}
	repo := w.git.NewRepo("terraform-aws-net")
	repo.Write(map[string]string{
		"main.tf": `module "vpc" {
  source  = "terraform-aws-modules/vpc/aws" # not in the plan: a warning
  version = "~> 5.0"
}

module "storage" {
  source = "example/tarball/aws" # in the plan: fine
}

module "local" {
  source = "./modules/sub"
}
`,
		"outputs.tf":                "output \"name\" { value = \"net-1\" }\n",
		"modules/sub/main.tf":       "output \"sub\" { value = \"sub\" }\n",
		"scripts/check.sh*":         "#!/bin/sh\nexit 0\n",
		"versions.tf -> outputs.tf": "",
	})
	repo.Commit("first")
	repo.Tag("v1.0.0", true)
	repo.Write(map[string]string{"outputs.tf": "output \"name\" { value = \"net-1.1\" }\n"})
	w.netSHA = repo.Commit("second")
	repo.Write(map[string]string{"outputs.tf": "output \"name\" { value = \"net-1.2\" }\n"})
	repo.Commit("third")

	up := w.h.up
	up.AddModule("example", "net", "aws", "1.0.0", "git::"+repo.URL+"?ref=v1.0.0")
	up.AddModule("example", "net", "aws", "1.1.0", "git::"+repo.URL+"?ref="+w.netSHA)
	up.AddModule("example", "net", "aws", "1.2.0", "git::"+repo.URL+"//modules/sub?ref=main")
	up.AddModule("example", "net", "aws", "0.9.0", "git::"+repo.URL+"?ref=v0.9.0") // outside the constraint

	up.AddModule("example", "tarball", "aws", "2.0.0", "/archives/tarball-2.0.0.tar.gz")
	up.SetModuleDownloadStyle("example", "tarball", "aws", testupstream.ModuleDownloadHeader)
	up.ServeArchive("/archives/tarball-2.0.0.tar.gz", tgz(t, map[string]string{
		"main.tf":             "variable \"size\" { default = 1 }\n",
		"outputs.tf":          "output \"size\" { value = var.size }\n",
		"link.tf -> main.tf":  "",
		"examples/basic/x.tf": "module \"t\" {\n  source = \"example/tarball/aws\"\n}\n",
	}))

	up.AddModule("example", "zipped", "aws", "3.0.0", up.URL+"/archives/zipped-3.0.0.zip")
	up.ServeArchive("/archives/zipped-3.0.0.zip", zipArchive(t, map[string]string{
		"main.tf":    "output \"z\" { value = 3 }\n",
		"sub/sub.tf": "# sub\n",
	}))
	return w
}

const threeModules = `
modules:
  - source: example/net/aws
    versions: ">= 1.0.0"
  - source: example/tarball/aws
    versions: "~> 2.0"
  - source: example/zipped/aws
    versions: "= 3.0.0"
`

// run plans and executes cfg against h's registry with a module fetcher
// that counts git commands.
func (w *moduleWorld) run(h *harness, cfg *config.Config) (*engine.Plan, *item.Run) {
	h.t.Helper()
	up, tg := h.clients(cfg)
	p := engine.New(up, tg, nil).Plan(context.Background(), cfg, tg.String())
	fetcher := modsource.New(modsource.WithHTTPFetcher(up), modsource.WithGitHook(w.gitHook), modsource.WithTempDir(h.t.TempDir()))
	res := engine.New(up, tg, tg, engine.WithSpoolDir(h.t.TempDir()), engine.WithModuleFetcher(fetcher)).Execute(context.Background(), p)
	return p, res
}

func moduleStates(p *engine.Plan) []string {
	var out []string
	for _, mp := range p.Modules {
		for _, v := range mp.Versions {
			line := fmt.Sprintf("%s %s %s %s", strings.TrimPrefix(mp.Address, "registry.opentofu.org/"), v.Version, v.State, v.OCISource)
			if v.Err != nil {
				line += " error"
			}
			out = append(out, line)
		}
	}
	return out
}

// items flattens module results to "address version state source".
func items(res *item.Run) map[string]item.Result {
	out := map[string]item.Result{}
	for _, it := range res.Items {
		if it.Kind == "module" {
			out[strings.TrimPrefix(it.Address, "registry.opentofu.org/")+" "+it.Version] = it
		}
	}
	return out
}

// readModule reads a module version back with an independent client and
// checks OpenTofu's contract: an image manifest with artifactType
// modulepkg, the empty config, and exactly one archive/zip layer holding
// a zip with sorted entries and no .git. It returns entry name -> mode and
// the manifest's annotations.
func (h *harness) readModule(repo, tag string) (map[string]fs.FileMode, map[string]string) {
	h.t.Helper()
	rc, ctx := h.reg.Client(), context.Background()
	r, raw := h.manifestAt(repo, tag)
	var img struct {
		MediaType    string                  `json:"mediaType"`
		ArtifactType string                  `json:"artifactType"`
		Config       descriptor.Descriptor   `json:"config"`
		Layers       []descriptor.Descriptor `json:"layers"`
		Annotations  map[string]string       `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &img); err != nil {
		h.t.Fatal(err)
	}
	if img.MediaType != mediatype.OCI1Manifest || img.ArtifactType != "application/vnd.opentofu.modulepkg" ||
		img.Config.Digest != descriptor.EmptyDigest || img.Config.MediaType != mediatype.OCI1Empty ||
		len(img.Layers) != 1 || img.Layers[0].MediaType != "archive/zip" {
		h.t.Fatalf("%s:%s breaks the module contract: %s", repo, tag, raw)
	}
	br, err := rc.BlobGet(ctx, r, img.Layers[0])
	if err != nil {
		h.t.Fatal(err)
	}
	defer br.Close()
	data, err := io.ReadAll(br)
	if err != nil {
		h.t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		h.t.Fatal(err)
	}
	entries := map[string]fs.FileMode{}
	prev := ""
	for _, f := range zr.File {
		if f.Name <= prev {
			h.t.Fatalf("%s:%s: zip entries not sorted: %q after %q", repo, tag, f.Name, prev)
		}
		prev = f.Name
		if f.Name == ".git/" || strings.HasPrefix(f.Name, ".git/") || strings.Contains(f.Name, "/.git/") {
			h.t.Fatalf("%s:%s: zip holds %s", repo, tag, f.Name)
		}
		entries[f.Name] = f.Mode()
	}
	return entries, img.Annotations
}

func TestModulesSyncTwice(t *testing.T) {
	w := newModuleWorld(t)
	h := w.h
	cfg := h.config(threeModules)
	reg := h.registry

	// Planning alone fetches no package and runs no git.
	up, tg := h.clients(cfg)
	plan := engine.New(up, tg, nil).Plan(context.Background(), cfg, tg.String())
	if err := plan.Errors(); err != nil {
		t.Fatal(err)
	}
	assertLines(t, moduleStates(plan),
		"example/net/aws 1.0.0 missing oci://"+reg+"/opentofu-modules/example/net/aws?tag=1.0.0",
		"example/net/aws 1.1.0 missing oci://"+reg+"/opentofu-modules/example/net/aws?tag=1.1.0",
		"example/net/aws 1.2.0 missing oci://"+reg+"/opentofu-modules/example/net/aws//modules/sub?tag=1.2.0",
		"example/tarball/aws 2.0.0 missing oci://"+reg+"/opentofu-modules/example/tarball/aws?tag=2.0.0",
		"example/zipped/aws 3.0.0 missing oci://"+reg+"/opentofu-modules/example/zipped/aws?tag=3.0.0",
	)
	if plan.Pending() != 5 {
		t.Fatalf("pending = %d", plan.Pending())
	}
	if c := h.up.Counts(); c.Archive != 0 || len(w.git.Requests()) != 0 || w.gitCount() != 0 {
		t.Fatalf("plan fetched: %+v, git requests %d, git commands %d", c, len(w.git.Requests()), w.gitCount())
	}

	_, res := w.run(h, cfg)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	got := items(res)
	for key, want := range map[string]string{
		"example/net/aws 1.0.0":     "oci://" + reg + "/opentofu-modules/example/net/aws?tag=1.0.0",
		"example/net/aws 1.1.0":     "oci://" + reg + "/opentofu-modules/example/net/aws?tag=1.1.0",
		"example/net/aws 1.2.0":     "oci://" + reg + "/opentofu-modules/example/net/aws//modules/sub?tag=1.2.0",
		"example/tarball/aws 2.0.0": "oci://" + reg + "/opentofu-modules/example/tarball/aws?tag=2.0.0",
		"example/zipped/aws 3.0.0":  "oci://" + reg + "/opentofu-modules/example/zipped/aws?tag=3.0.0",
	} {
		it := got[key]
		if it.State != item.Done || it.Source != want || it.Digest == "" {
			t.Errorf("%s: %+v, want done with source %s", key, it, want)
		}
	}
	if ws := got["example/net/aws 1.0.0"].Warnings; len(ws) != 1 || !strings.Contains(ws[0], "registry.opentofu.org/terraform-aws-modules/vpc/aws") {
		t.Errorf("net 1.0.0 warnings %q, want one for the vpc module only", ws)
	}
	if ws := got["example/tarball/aws 2.0.0"].Warnings; len(ws) != 0 {
		t.Errorf("tarball warnings %q: it only uses itself", ws)
	}
	if got["example/tarball/aws 2.0.0"].Downloaded == 0 || got["example/zipped/aws 3.0.0"].Downloaded == 0 {
		t.Error("archive downloads not counted")
	}
	if line := engine.ModuleSourceLine(got["example/net/aws 1.2.0"].Source); line != `source = "oci://`+reg+`/opentofu-modules/example/net/aws//modules/sub?tag=1.2.0"` {
		t.Errorf("source line %s", line)
	}

	// What OpenTofu would download.
	entries, ann := h.readModule("opentofu-modules/example/net/aws", "1.0.0")
	for name, mode := range map[string]fs.FileMode{"main.tf": 0o644, "scripts/check.sh": 0o755, "modules/sub/main.tf": 0o644, "versions.tf": 0o644, "modules/": fs.ModeDir | 0o755} {
		if entries[name] != mode {
			t.Errorf("net 1.0.0: %s mode %v, want %v (entries %v)", name, entries[name], mode, entries)
		}
	}
	if ann[manifest.ModuleDependenciesAnnotation] != "registry.opentofu.org/example/tarball/aws,registry.opentofu.org/terraform-aws-modules/vpc/aws" {
		t.Errorf("net 1.0.0 annotations %v", ann)
	}
	if _, ann := h.readModule("opentofu-modules/example/net/aws", "1.2.0"); ann[manifest.ModuleSubdirAnnotation] != "modules/sub" {
		t.Errorf("net 1.2.0 annotations %v", ann)
	}
	if entries, _ := h.readModule("opentofu-modules/example/tarball/aws", "2.0.0"); len(entries) != 6 || entries["link.tf"] != 0o644 {
		t.Errorf("tarball entries %v", entries)
	}
	h.readModule("opentofu-modules/example/zipped/aws", "3.0.0")
	first := got

	// The second run downloads nothing, clones nothing, pushes nothing.
	h.up.ResetCounts()
	h.reg.ResetCounts()
	w.git.ResetRequests()
	gitBefore := w.gitCount()
	plan2, res2 := w.run(h, cfg)
	if err := res2.Err(); err != nil {
		t.Fatal(err)
	}
	if plan2.Pending() != 0 || res2.Count(item.Unchanged) != 5 {
		t.Fatalf("second run: pending %d, unchanged %d", plan2.Pending(), res2.Count(item.Unchanged))
	}
	if c := h.up.Counts(); c.Archive != 0 || c.ModuleDownload != 0 {
		t.Errorf("second run asked upstream for packages: %+v", c)
	}
	if n := len(w.git.Requests()); n != 0 || w.gitCount() != gitBefore {
		t.Errorf("second run ran git: %d requests, %d commands", n, w.gitCount()-gitBefore)
	}
	if c := h.reg.Counts(); c.Pushes() != 0 {
		t.Errorf("second run pushed: %+v", c)
	}
	got2 := items(res2)
	for key, it := range first {
		if got2[key].Source != it.Source || got2[key].Digest != it.Digest {
			t.Errorf("%s: second run says %s %s, first %s %s", key, got2[key].Source, got2[key].Digest, it.Source, it.Digest)
		}
	}
	// Recorded dependencies reach the plan of complete versions.
	for _, mp := range plan2.Modules {
		if mp.Address != "registry.opentofu.org/example/net/aws" {
			continue
		}
		for _, v := range mp.Versions {
			if !slices.Equal(v.MissingDependencies, []string{"registry.opentofu.org/terraform-aws-modules/vpc/aws"}) {
				t.Errorf("net %s missing dependencies %q", v.Version, v.MissingDependencies)
			}
		}
		if want := "1.0.0, 1.1.0, 1.2.0 use registry module registry.opentofu.org/terraform-aws-modules/vpc/aws, which is not in the plan: add it to mirror it"; !slices.Equal(mp.Warnings, []string{want}) {
			t.Errorf("net warnings %q, want %q", mp.Warnings, want)
		}
	}

	// A fresh sync into another registry, with fresh clones, gives the same digests.
	h2 := &harness{t: t, up: h.up, reg: testregistry.New(t)}
	h2.registry = h2.reg.Host
	_, res3 := w.run(h2, h2.config(threeModules))
	if err := res3.Err(); err != nil {
		t.Fatal(err)
	}
	for key, it := range items(res3) {
		if it.State != item.Done || it.Digest != first[key].Digest {
			t.Errorf("%s: %s in the second registry, %s in the first", key, it.Digest, first[key].Digest)
		}
	}
}

func TestModuleFailuresAreIsolated(t *testing.T) {
	w := newModuleWorld(t)
	h := w.h
	up := h.up
	// 1.0.0 escapes the package root; 1.1.0 is fine; 1.2.0 lives in S3;
	// 1.3.0's archive is gone.
	up.AddModule("example", "evil", "aws", "1.0.0", "./evil-1.0.0.tar.gz")
	up.ServeArchive("/v1/modules/example/evil/aws/1.0.0/evil-1.0.0.tar.gz", tgz(t, map[string]string{
		"main.tf":          "# fine\n",
		"../../outside.tf": "# escapes\n",
	}))
	up.AddModule("example", "evil", "aws", "1.1.0", up.URL+"/archives/evil-1.1.0.tar.gz")
	up.ServeArchive("/archives/evil-1.1.0.tar.gz", tgz(t, map[string]string{"main.tf": "# fine\n"}))
	up.AddModule("example", "evil", "aws", "1.2.0", "s3::https://s3.amazonaws.com/bucket/evil-1.2.0.zip")
	up.AddModule("example", "evil", "aws", "1.3.0", "git::"+w.git.URL+"/gone.git?ref=v1.3.0")

	cfg := h.config(threeModules + `
  - source: example/evil/aws
    versions: ">= 1.0.0"
`)
	plan, res := w.run(h, cfg)
	if err := plan.Errors(); !errors.Is(err, modsource.ErrUnsupportedSource) || !strings.Contains(err.Error(), "example/evil/aws 1.2.0") {
		t.Fatalf("plan errors: %v", err)
	}
	if plan.Pending() != 8 {
		t.Errorf("pending %d, want 8 (the S3 version cannot be done)", plan.Pending())
	}
	got := items(res)
	for key, want := range map[string]error{
		"example/evil/aws 1.0.0": manifest.ErrUnsafePath,
		"example/evil/aws 1.2.0": modsource.ErrUnsupportedSource,
		"example/evil/aws 1.3.0": modsource.ErrGit,
	} {
		it := got[key]
		if it.State != item.Failed || !errors.Is(it.Err, want) || it.Source != "" || !strings.Contains(it.ErrorText(), key) {
			t.Errorf("%s: %s %v, want failed with %v", key, it.State, it.Err, want)
		}
	}
	if res.Count(item.Done) != 6 || res.Count(item.Failed) != 3 {
		t.Fatalf("done %d, failed %d", res.Count(item.Done), res.Count(item.Failed))
	}
	if tags := h.tags("opentofu-modules/example/evil/aws"); !slices.Equal(tags, []string{"1.1.0"}) {
		t.Fatalf("evil tags %q: failed versions must not be tagged", tags)
	}
}

func TestModuleTagConflict(t *testing.T) {
	w := newModuleWorld(t)
	h := w.h
	cfg := h.config(threeModules)
	_, tg := h.clients(cfg)
	ctx := context.Background()
	// Something else already owns zipped:3.0.0: a provider platform manifest.
	const repo = "opentofu-modules/example/zipped/aws"
	blob := []byte("not a module")
	zd, err := manifest.BlobDescriptor(manifest.ZipLayerMediaType, fmt.Sprintf("%x", sha256.Sum256(blob)), int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		d    descriptor.Descriptor
		data []byte
	}{{manifest.EmptyConfig(), descriptor.EmptyData}, {zd, blob}} {
		if err := tg.PutBlob(ctx, repo, b.d, bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	foreign, err := manifest.ProviderTarget(zd, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.PutManifest(ctx, repo, foreign, "3.0.0"); err != nil {
		t.Fatal(err)
	}

	plan, res := w.run(h, cfg)
	if plan.Conflicts() != 1 {
		t.Fatalf("conflicts = %d: %v", plan.Conflicts(), moduleStates(plan))
	}
	it := items(res)["example/zipped/aws 3.0.0"]
	if it.State != item.Conflicted || !errors.Is(it.Err, item.ErrConflict) {
		t.Fatalf("zipped: %+v", it)
	}
	if _, d, err := tg.Manifest(ctx, repo, "3.0.0"); err != nil || d.Digest != foreign.Descriptor.Digest {
		t.Fatalf("the foreign tag was touched: %v %v", d.Digest, err)
	}
	if res.Count(item.Done) != 4 {
		t.Fatalf("done = %d, want the other 4", res.Count(item.Done))
	}
}

func TestModulePlanForLayoutTarget(t *testing.T) {
	w := newModuleWorld(t)
	h := w.h
	h.registry = "oci-layout:" + t.TempDir()
	cfg := h.config(threeModules)
	up, tg := h.clients(cfg)
	plan := engine.New(up, tg, nil).Plan(context.Background(), cfg, tg.String())
	if got := plan.Modules[0].Versions[2].OCISource; got != "oci://REGISTRY/opentofu-modules/example/net/aws//modules/sub?tag=1.2.0" {
		t.Fatalf("layout source %s", got)
	}
	res := engine.New(up, tg, tg, engine.WithSpoolDir(t.TempDir())).Execute(context.Background(), plan)
	if err := res.Err(); err != nil {
		t.Fatalf("default module fetcher: %v", err)
	}
	if res.Count(item.Done) != 5 {
		t.Fatalf("done = %d", res.Count(item.Done))
	}
}
