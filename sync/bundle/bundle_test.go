package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/engine"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

type world struct {
	t  *testing.T
	up *testupstream.Server
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, up: testupstream.New(t)}
	w.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	w.up.AddProvider("acme", "widget", "1.1.0", "linux_amd64", "darwin_arm64")
	w.up.AddProvider("acme", "gadget", "2.0.0", "linux_amd64")
	return w
}

// config renders a plan for a registry; template lets two sides lay out repositories differently.
func (w *world) config(reg *testregistry.Registry, template, body string) *config.Config {
	w.t.Helper()
	svc := w.up.Services()
	host := "127.0.0.1:1" // export never talks to a registry
	if reg != nil {
		host = reg.Host
	}
	yaml := fmt.Sprintf(`version: 1
target:
  registry: %q
  insecure: true
  providers_repository: %q
upstream:
  ca_file: %q
  hosts:
    registry.opentofu.org:
      services:
        providers.v1: %q
platforms: [linux_amd64, darwin_arm64]
%s`, host, template, w.up.CAFile, svc["providers.v1"], body)
	cfg, err := config.Parse("mirror.yaml", []byte(yaml))
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

const planA = `providers:
  - source: acme/widget
    versions: "1.0.0"
  - source: acme/gadget
    versions: "2.0.0"
`
const planAB = `providers:
  - source: acme/widget
    versions: ">= 1.0.0"
  - source: acme/gadget
    versions: "2.0.0"
`

const defaultTemplate = "opentofu-providers/${namespace}/${type}"

func (w *world) client(cfg *config.Config) *upstream.Client {
	hosts := map[string]map[string]string{}
	for h, o := range cfg.Upstream.Hosts {
		hosts[h] = o.Services
	}
	up, err := upstream.New(upstream.WithCAFile(cfg.Upstream.CAFile), upstream.WithHostServices(hosts))
	if err != nil {
		w.t.Fatal(err)
	}
	return up
}

func openTarget(t *testing.T, cfg *config.Config) *target.Target {
	tg, err := target.Open(cfg.Target)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func (w *world) sync(cfg *config.Config) {
	w.t.Helper()
	up, tg := w.client(cfg), openTarget(w.t, cfg)
	res := engine.New(up, tg, tg).Execute(context.Background(), engine.New(up, tg, nil).Plan(context.Background(), cfg, ""))
	if err := res.Err(); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) inventory(cfg *config.Config) *bundle.Inventory {
	w.t.Helper()
	inv, err := bundle.TakeInventory(context.Background(), cfg, openTarget(w.t, cfg), "inside", "test")
	if err != nil {
		w.t.Fatal(err)
	}
	return inv
}

// export writes a bundle of cfg against inv and returns its bytes.
func (w *world) export(cfg *config.Config, inv *bundle.Inventory) (*bundle.Exported, []byte) {
	w.t.Helper()
	up := w.client(cfg)
	exp, err := bundle.Export(context.Background(), cfg, inv, bundle.ExportOptions{
		ToolVersion: "test", PlanFile: []byte("plan"), StageDir: w.t.TempDir(),
		Upstream: up,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := exp.Result.Err(); err != nil {
		w.t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := exp.WriteTar(&buf); err != nil {
		w.t.Fatal(err)
	}
	return exp, buf.Bytes()
}

func importBytes(t *testing.T, cfg *config.Config, data []byte) (*item.Run, error) {
	return bundle.Import(context.Background(), cfg, openTarget(t, cfg), bytes.NewReader(data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir()}))
}

// tagDigests lists "repo:tag digest" for every version tag of cfg's providers.
func tagDigests(t *testing.T, reg *testregistry.Registry, repos ...string) []string {
	t.Helper()
	rc := reg.Client()
	var out []string
	for _, repo := range repos {
		r, _ := ref.New(reg.Host + "/" + repo)
		tl, err := rc.TagList(context.Background(), r)
		if err != nil {
			continue
		}
		tags, _ := tl.GetTags()
		for _, tag := range tags {
			if strings.HasPrefix(tag, "sha256-") {
				continue
			}
			m, err := rc.ManifestHead(context.Background(), r.SetTag(tag))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tag+" "+m.GetDescriptor().Digest.String())
		}
	}
	sort.Strings(out)
	return out
}

var repos = []string{"opentofu-providers/acme/widget", "opentofu-providers/acme/gadget"}

func TestRoundTripMatchesDirectSync(t *testing.T) {
	w := newWorld(t)
	a, b := testregistry.New(t), testregistry.New(t)
	w.sync(w.config(a, defaultTemplate, planAB))
	exp, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	if len(exp.Metadata.Artifacts) != 3 {
		t.Fatalf("want 3 artifacts, got %d", len(exp.Metadata.Artifacts))
	}
	res, err := importBytes(t, w.config(b, defaultTemplate, planAB), data)
	if err != nil || res.Count(item.Done) != 3 {
		t.Fatalf("import: %v %+v", err, res.Items)
	}
	da, db := tagDigests(t, a, repos...), tagDigests(t, b, repos...)
	if strings.Join(da, "\n") != strings.Join(db, "\n") || len(da) != 3 {
		t.Fatalf("direct sync and bundle differ:\n%v\n%v", da, db)
	}
	// The provenance referrer travelled too (regclient's tag fallback on this registry).
	r, _ := ref.New(b.Host + "/opentofu-providers/acme/widget")
	tl, _ := b.Client().TagList(context.Background(), r)
	tags, _ := tl.GetTags()
	if !strings.Contains(strings.Join(tags, ","), "sha256-") {
		t.Fatalf("no provenance referrer in B: %v", tags)
	}

	// The importing side lays repositories out its own way.
	c := testregistry.New(t)
	if _, err := importBytes(t, w.config(c, "mirror/${hostname}/${namespace}/${type}", planAB), data); err != nil {
		t.Fatal(err)
	}
	dc := tagDigests(t, c, "mirror/registry.opentofu.org/acme/widget", "mirror/registry.opentofu.org/acme/gadget")
	if strings.Join(dc, "\n") != strings.Join(da, "\n") {
		t.Fatalf("other layout differs:\n%v\n%v", dc, da)
	}

	// Importing the same bundle again is a no-op.
	b.ResetCounts()
	res, err = importBytes(t, w.config(b, defaultTemplate, planAB), data)
	if err != nil || res.Count(item.Unchanged) != 3 || b.Counts().Pushes() != 0 {
		t.Fatalf("second import: %v unchanged=%d pushes=%d", err, res.Count(item.Unchanged), b.Counts().Pushes())
	}
}

func TestDifferentialExportCarriesOnlyWhatTheInsideLacks(t *testing.T) {
	w := newWorld(t)
	inside := testregistry.New(t)
	w.sync(w.config(inside, defaultTemplate, planA))
	inv := w.inventory(w.config(inside, defaultTemplate, planA))

	full, fullData := w.export(w.config(nil, defaultTemplate, planAB), nil)
	diff, diffData := w.export(w.config(nil, defaultTemplate, planAB), inv)
	if len(diff.Metadata.Artifacts) != 1 || diff.Metadata.Artifacts[0].Version != "1.1.0" {
		t.Fatalf("differential bundle holds %+v", diff.Metadata.Artifacts)
	}
	// Exactly 1.1.0's two zips travel; nothing of 1.0.0 or gadget.
	var zips []string
	for _, b := range diff.Metadata.Artifacts[0].Blobs {
		if b.Inside && b.MediaType == "archive/zip" {
			zips = append(zips, b.Digest.Encoded())
		}
	}
	sort.Strings(zips)
	want := []string{w.up.ZipSHA256("acme", "widget", "1.1.0", "darwin_arm64"), w.up.ZipSHA256("acme", "widget", "1.1.0", "linux_amd64")}
	sort.Strings(want)
	if strings.Join(zips, ",") != strings.Join(want, ",") {
		t.Fatalf("zips in bundle %v, want %v", zips, want)
	}
	names := tarNames(t, diffData)
	for _, n := range names {
		if strings.Contains(n, w.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64")) {
			t.Fatalf("1.0.0 zip shipped again")
		}
	}
	if len(diffData) >= len(fullData) || len(names) >= len(tarNames(t, fullData)) {
		t.Fatalf("differential bundle (%d bytes) not smaller than full (%d)", len(diffData), len(fullData))
	}
	t.Logf("full bundle %d bytes (%d artifacts), differential %d bytes", len(fullData), len(full.Metadata.Artifacts), len(diffData))

	res, err := importBytes(t, w.config(inside, defaultTemplate, planAB), diffData)
	if err != nil || res.Count(item.Done) != 1 {
		t.Fatalf("import: %v %+v", err, res.Items)
	}
	direct := testregistry.New(t)
	w.sync(w.config(direct, defaultTemplate, planAB))
	if a, b := tagDigests(t, inside, repos...), tagDigests(t, direct, repos...); strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("inside after import differs from direct sync:\n%v\n%v", a, b)
	}
}

func TestAddingAPlatformShipsOnlyThatPlatform(t *testing.T) {
	w := newWorld(t)
	inside := testregistry.New(t)
	linuxOnly := strings.Replace(planA, `versions: "1.0.0"`, "versions: \"1.0.0\"\n    platforms: [linux_amd64]", 1)
	w.sync(w.config(inside, defaultTemplate, linuxOnly))
	inv := w.inventory(w.config(inside, defaultTemplate, linuxOnly))
	exp, data := w.export(w.config(nil, defaultTemplate, planA), inv)
	if len(exp.Metadata.Artifacts) != 1 {
		t.Fatalf("artifacts %+v", exp.Metadata.Artifacts)
	}
	var expected int
	for _, b := range exp.Metadata.Artifacts[0].Blobs {
		if !b.Inside {
			expected++
		}
	}
	if expected == 0 {
		t.Fatal("the updated index should expect the linux platform to be present")
	}
	if _, err := importBytes(t, w.config(inside, defaultTemplate, planA), data); err != nil {
		t.Fatal(err)
	}
	// Into an empty registry the same bundle must be refused: its base is missing.
	empty := testregistry.New(t)
	_, err := importBytes(t, w.config(empty, defaultTemplate, planA), data)
	if !errors.Is(err, bundle.ErrBaseMissing) || !strings.Contains(err.Error(), "provider registry.opentofu.org/acme/widget 1.0.0 needs") {
		t.Fatalf("want base-missing naming the artifact, got %v", err)
	}
	if empty.Counts().Pushes() != 0 {
		t.Fatalf("pushed %d times before refusing", empty.Counts().Pushes())
	}
}

func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	for _, e := range tarEntries(t, data) {
		names = append(names, e.hdr.Name)
	}
	return names
}

// rewrite copies a bundle tar, letting edit change each entry.
func rewrite(t *testing.T, data []byte, edit func(h *tar.Header, body []byte) (*tar.Header, []byte)) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, e := range tarEntries(t, data) {
		h, body := edit(e.hdr, e.body)
		if h == nil {
			continue
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	_ = tw.Close()
	return out.Bytes()
}

func TestImportRefusesDamagedBundlesAndTagsNothing(t *testing.T) {
	w := newWorld(t)
	_, good := w.export(w.config(nil, defaultTemplate, planAB), nil)
	zip := "blobs/sha256/" + w.up.ZipSHA256("acme", "widget", "1.1.0", "linux_amd64")
	cases := []struct {
		name string
		data []byte
		want error
		text string
	}{
		{"corrupted byte", rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == zip {
				b = append([]byte(nil), b...)
				b[len(b)/2] ^= 0xff
			}
			return h, b
		}), bundle.ErrCorrupt, zip},
		{"truncated", good[:len(good)*2/3], bundle.ErrCorrupt, "truncated"},
		{"dot-dot path", rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == zip {
				h.Name = "blobs/../../etc/passwd"
			}
			return h, b
		}), bundle.ErrUnsafeEntry, "blobs/../../etc/passwd"},
		{"absolute path", rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == zip {
				h.Name = "/" + zip
			}
			return h, b
		}), bundle.ErrUnsafeEntry, "/" + zip},
		{"symlink", rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == zip {
				return &tar.Header{Name: zip, Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil
			}
			return h, b
		}), bundle.ErrUnsafeEntry, "not a regular file"},
		{"unknown format version", rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == bundle.MetadataFile {
				b = bytes.Replace(b, []byte(`"format_version": 1`), []byte(`"format_version": 99`), 1)
			}
			return h, b
		}), bundle.ErrFormat, "format version 99"},
		{"not a bundle", []byte("hello"), bundle.ErrCorrupt, "first entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := testregistry.New(t)
			_, err := importBytes(t, w.config(reg, defaultTemplate, planAB), c.data)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.want, c.text)
			}
			if tags := tagDigests(t, reg, repos...); len(tags) != 0 {
				t.Fatalf("tagged after a refused import: %v", tags)
			}
		})
	}
}

// failingReader stops with an error after n bytes, like a process killed mid-read.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("interrupted")
	}
	if len(b) > f.n {
		b = b[:f.n]
	}
	n, err := f.r.Read(b)
	f.n -= n
	return n, err
}

func TestInterruptedImportResumesWithoutReuploading(t *testing.T) {
	w := newWorld(t)
	_, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	reg := testregistry.New(t)
	cfg := w.config(reg, defaultTemplate, planAB)
	_, err := bundle.Import(context.Background(), cfg, openTarget(t, cfg), &failingReader{r: bytes.NewReader(data), n: len(data) * 3 / 4}, signed(t, data, bundle.ImportOptions{}))
	if err == nil {
		t.Fatal("interrupted import succeeded")
	}
	if tags := tagDigests(t, reg, repos...); len(tags) != 0 {
		t.Fatalf("tags after an interrupted import: %v", tags)
	}
	before := reg.Counts().BlobUploadStart
	reg.ResetCounts()
	res, err := importBytes(t, cfg, data)
	if err != nil || res.Count(item.Done) != 3 {
		t.Fatalf("resumed import: %v", err)
	}
	t.Logf("blob uploads: interrupted run %d, resumed run %d, blobs in bundle %d", before, reg.Counts().BlobUploadStart, totalInsideBlobs(t, data))
	if before == 0 || reg.Counts().BlobUploadStart >= totalInsideBlobs(t, data) {
		t.Fatalf("resumed import re-uploaded everything: first run %d uploads, second %d of %d blobs",
			before, reg.Counts().BlobUploadStart, totalInsideBlobs(t, data))
	}
}

func totalInsideBlobs(t *testing.T, data []byte) int {
	n := 0
	for _, name := range tarNames(t, data) {
		if strings.HasPrefix(name, "blobs/") {
			n++
		}
	}
	return n
}

func TestSplitBundleParts(t *testing.T) {
	w := newWorld(t)
	exp, data := w.export(w.config(nil, defaultTemplate, planAB), nil)
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar")
	if err := exp.WriteFile(out, 8<<10); err != nil {
		t.Fatal(err)
	}
	parts, _ := filepath.Glob(out + ".0*")
	if len(parts) < 3 {
		t.Fatalf("want several parts for a %d-byte bundle, got %v", len(data), parts)
	}
	for _, arg := range []string{dir, out + bundle.PartsSuffix, out} {
		reg := testregistry.New(t)
		r, err := bundle.OpenBundle(arg)
		if err != nil {
			t.Fatal(err)
		}
		cfg := w.config(reg, defaultTemplate, planAB)
		res, err := bundle.Import(context.Background(), cfg, openTarget(t, cfg), r, signed(t, data, bundle.ImportOptions{}))
		_ = r.Close()
		if err != nil || res.Count(item.Done) != 3 {
			t.Fatalf("import from %s: %v", arg, err)
		}
	}
	// A corrupt part is named, and nothing is tagged.
	second := parts[1]
	orig, _ := os.ReadFile(second)
	bad := append([]byte(nil), orig...)
	bad[10] ^= 1
	_ = os.WriteFile(second, bad, 0o644)
	reg := testregistry.New(t)
	r, err := bundle.OpenBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := w.config(reg, defaultTemplate, planAB)
	_, err = bundle.Import(context.Background(), cfg, openTarget(t, cfg), r, signed(t, data, bundle.ImportOptions{}))
	_ = r.Close()
	if !errors.Is(err, bundle.ErrCorrupt) || !strings.Contains(err.Error(), "part "+filepath.Base(second)) {
		t.Fatalf("corrupt part: %v", err)
	}
	if tags := tagDigests(t, reg, repos...); len(tags) != 0 {
		t.Fatalf("tagged after corrupt part: %v", tags)
	}
	// A missing part is named before anything is read.
	_ = os.WriteFile(second, orig, 0o644)
	_ = os.Remove(parts[2])
	if _, err := bundle.OpenBundle(dir); !errors.Is(err, bundle.ErrMissingPart) || !strings.Contains(err.Error(), filepath.Base(parts[2])) {
		t.Fatalf("missing part: %v", err)
	}
}

func TestInventoryFormat(t *testing.T) {
	w := newWorld(t)
	reg := testregistry.New(t)
	cfg := w.config(reg, defaultTemplate, planAB)
	w.sync(cfg)
	inv := w.inventory(cfg)
	path := filepath.Join(t.TempDir(), "inventory.json")
	f, _ := os.Create(path)
	if err := bundle.WriteInventory(f, inv); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	got, dgst, err := bundle.ReadInventory(path)
	if err != nil || dgst == "" || len(got.Artifacts) != 2 {
		t.Fatalf("read back: %v %+v", err, got)
	}
	v := got.Artifacts[0].Versions[0]
	if len(v.Platforms) != 2 || v.Platforms["linux_amd64"].Layer.Digest != digest.NewDigestFromEncoded(digest.SHA256, w.up.ZipSHA256("acme", "widget", v.Version, "linux_amd64")) {
		t.Fatalf("inventory version %+v", v)
	}
	raw, _ := os.ReadFile(path)
	_ = os.WriteFile(path, bytes.Replace(raw, []byte(`"format_version": 1`), []byte(`"format_version": 7`), 1), 0o644)
	if _, _, err := bundle.ReadInventory(path); !errors.Is(err, bundle.ErrFormat) {
		t.Fatalf("future inventory accepted: %v", err)
	}
}

func TestImportRefusesRelabelledAndDuplicateArtifacts(t *testing.T) {
	w := newWorld(t)
	_, good := w.export(w.config(nil, defaultTemplate, planAB), nil)
	editMeta := func(edit func(m *bundle.Metadata)) []byte {
		return rewrite(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == bundle.MetadataFile {
				var m bundle.Metadata
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				edit(&m)
				b, _ = json.Marshal(m)
			}
			return h, b
		})
	}
	// An old signed release published under a newer version's tag.
	relabelled := editMeta(func(m *bundle.Metadata) {
		for i := range m.Artifacts {
			if m.Artifacts[i].Address == "registry.opentofu.org/acme/widget" && m.Artifacts[i].Version == "1.0.0" {
				m.Artifacts[i].Version, m.Artifacts[i].Tag = "9.9.9", "9.9.9"
			}
		}
	})
	reg := testregistry.New(t)
	res, err := importBytes(t, w.config(reg, defaultTemplate, planAB), relabelled)
	if err != nil {
		t.Fatal(err)
	}
	failed := res.Err()
	if !errors.Is(failed, bundle.ErrProvenance) || !strings.Contains(failed.Error(), "9.9.9") || !strings.Contains(failed.Error(), "_9.9.9_") {
		t.Fatalf("relabelled version: %v", failed)
	}
	for _, tag := range tagDigests(t, reg, repos...) {
		if strings.HasPrefix(tag, "9.9.9 ") {
			t.Fatal("relabelled version was tagged")
		}
	}
	// Two artifacts claiming one tag.
	dup := editMeta(func(m *bundle.Metadata) {
		m.Artifacts = append(m.Artifacts, m.Artifacts[0])
	})
	reg = testregistry.New(t)
	if _, err := importBytes(t, w.config(reg, defaultTemplate, planAB), dup); !errors.Is(err, bundle.ErrFormat) || !strings.Contains(err.Error(), "both claim") {
		t.Fatalf("duplicate artifact: %v", err)
	}
	if tags := tagDigests(t, reg, repos...); len(tags) != 0 {
		t.Fatalf("tagged after a refused import: %v", tags)
	}
}
