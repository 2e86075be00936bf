package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"

	"github.com/opencontainers/go-digest"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/config"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/upstream"
)

// The seed corpora under testdata/fuzz are written by TestWriteFuzzSeeds
// when this variable is 1: real bundles from the real exporter, and hostile
// variants of them. `go test` runs every seed as a regular test.
const writeSeedsEnv = "TOFU_OCI_MIRROR_WRITE_FUZZ_SEEDS"

// Seed files the fuzz targets also build their starting state from.
const (
	seedBase = "valid-base" // acme/widget 1.0.0 for linux_amd64 only
	seedFull = "valid-full" // widget 1.0.0 for both platforms and 1.1.0 for linux_amd64, no baseline
	seedDiff = "valid-diff" // the same plan exported against the inventory of seedBase
)

// fuzzPlanBody is the plan the seeds were exported from and are imported with.
const fuzzPlanBody = `platforms: [linux_amd64, darwin_arm64]
providers:
  - source: acme/widget
    versions: ">= 1.0.0"
`

const fuzzBasePlanBody = `platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: "1.0.0"
`

// fuzzConfig parses a plan for a registry nobody talks to (import only
// maps identities to repositories with it) and the given upstream section.
func fuzzConfig(tb testing.TB, upstreamYAML, body string) *config.Config {
	tb.Helper()
	cfg, err := config.Parse("mirror.yaml", []byte("version: 1\ntarget:\n  registry: \"127.0.0.1:1\"\n  insecure: true\n"+upstreamYAML+body))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

func corpusPath(target, name string) string { return filepath.Join("testdata", "fuzz", target, name) }

// readCorpusBytes reads a one-[]byte corpus file in go test's format.
func readCorpusBytes(tb testing.TB, target, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(corpusPath(target, name))
	if err != nil {
		tb.Fatalf("%v (regenerate the seeds: %s=1 go test -run TestWriteFuzzSeeds ./sync/bundle/)", err, writeSeedsEnv)
	}
	header, value, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	if !ok || header != "go test fuzz v1" || !strings.HasPrefix(value, "[]byte(") || !strings.HasSuffix(value, ")") {
		tb.Fatalf("%s: not a one-[]byte corpus file", corpusPath(target, name))
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(value, "[]byte("), ")"))
	if err != nil {
		tb.Fatalf("%s: %v", corpusPath(target, name), err)
	}
	return []byte(s)
}

func writeCorpusBytes(tb testing.TB, target, name string, data []byte) {
	tb.Helper()
	p := corpusPath(target, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("go test fuzz v1\n[]byte("+strconv.Quote(string(data))+")\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// importFuzz imports inputs into copies of a target that already holds
// the seedBase bundle, and checks what a hostile bundle must never do.
type importFuzz struct {
	cfg  *config.Config
	base *memTarget
	tail []byte // every tar entry of seedFull after its metadata, and the trailer
}

func newImportFuzz(tb testing.TB) *importFuzz {
	tb.Helper()
	h := &importFuzz{cfg: fuzzConfig(tb, "", fuzzPlanBody), base: newMemTarget()}
	seed := readCorpusBytes(tb, "FuzzImportBundle", seedBase)
	res, err := bundle.Import(context.Background(), h.cfg, h.base, bytes.NewReader(seed), signed(tb, seed, bundle.ImportOptions{SpoolDir: tb.TempDir()}))
	if err != nil || res.Count(item.Done) != 1 {
		tb.Fatalf("importing the base seed: %v %+v", err, res)
	}
	h.base.tagged, h.base.writes = nil, 0
	entries := tarEntries(tb, readCorpusBytes(tb, "FuzzImportBundle", seedFull))
	h.tail = buildTar(tb, entries[1:])
	return h
}

// withMetadata puts meta in place of seedFull's metadata.
func (h *importFuzz) withMetadata(meta []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: bundle.MetadataFile, Mode: 0o644, Size: int64(len(meta)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(meta)
	_ = tw.Flush() // pads the entry; no trailer, the tail follows
	buf.Write(h.tail)
	return buf.Bytes()
}

// importErrors are the errors Import may answer hostile input with: the
// package's sentinels, or the target refusing a push.
var importErrors = []error{bundle.ErrFormat, bundle.ErrCorrupt, bundle.ErrUnsafeEntry, bundle.ErrBaseMissing,
	bundle.ErrMissingPart, bundle.ErrProvenance, bundle.ErrNotInPlan, bundle.ErrUnsafeModule, errRefused}

// allocBudget bounds what importing n bytes may allocate in all: the
// metadata limit plus generous per-byte overhead, far below anything a
// claimed size (up to 2^63) would cost if it were believed.
func allocBudget(n int) uint64 { return 96<<20 + 2048*uint64(n) }

// check imports data twice, into two copies of the base: streamed (as
// from stdin) and from a file (uploads read the file by offset and verify
// as they go); each must keep every property.
func (h *importFuzz) check(t *testing.T, data []byte) {
	h.checkFrom(t, data, func() io.Reader { return bytes.NewReader(data) })
	path := filepath.Join(t.TempDir(), "bundle.tar")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h.checkFrom(t, data, func() io.Reader {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		return f
	})
}

func (h *importFuzz) checkFrom(t *testing.T, data []byte, open func() io.Reader) {
	tg := h.base.clone()
	spool := t.TempDir()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := bundle.Import(context.Background(), h.cfg, tg, open(), signed(t, data, bundle.ImportOptions{SpoolDir: spool, Concurrency: 2}))
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > allocBudget(len(data)) {
		t.Fatalf("importing %d bytes allocated %d bytes", len(data), grew)
	}
	if left, _ := os.ReadDir(spool); len(left) > 0 {
		t.Fatalf("spool files left behind: %v (err %v)", left, err)
	}
	if res == nil {
		t.Fatalf("nil result (err %v)", err)
	}
	if err != nil {
		if len(tg.tagged) > 0 {
			t.Fatalf("Import returned %v but tagged %v", err, tg.tagged)
		}
		classified := false
		for _, e := range importErrors {
			classified = classified || errors.Is(err, e)
		}
		if !classified {
			t.Fatalf("error matches none of the package's sentinel errors: %v", err)
		}
		for _, it := range res.Items {
			if it.State == item.Done {
				t.Fatalf("Import returned %v but reports %s %s done", err, it.Address, it.Version)
			}
		}
		return
	}
	// Tags written and items reported done must agree. A bundle may list
	// one version twice; then the last copy wins the tag.
	done := map[string][]string{} // "repo:tag" -> digests of the items done
	settled := len(res.Items) > 0
	for _, it := range res.Items {
		switch it.State {
		case item.Done:
			key := it.Repository + ":" + it.Tag
			done[key] = append(done[key], it.Digest)
			if missing := tg.closureMissing(it.Repository, it.Tag); len(missing) > 0 {
				t.Fatalf("%s tagged without %v", key, missing)
			}
		case item.Unchanged:
		case item.Failed, item.Conflicted:
			settled = false
			if it.ErrorText() == "" {
				t.Fatalf("%s %s %s without an error", it.Address, it.Version, it.State)
			}
		default:
			t.Fatalf("%s %s: unknown state %q", it.Address, it.Version, it.State)
		}
	}
	tagged := map[string]bool{}
	for _, key := range tg.tagged {
		tagged[key] = true
		if len(done[key]) == 0 {
			t.Fatalf("%s tagged but no item reports it done: %+v", key, res.Items)
		}
	}
	for key, digests := range done {
		if !tagged[key] {
			t.Fatalf("%s reported done but never tagged", key)
		}
		repo, tag, _ := strings.Cut(key, ":")
		_, desc, err := tg.Manifest(context.Background(), repo, tag)
		if err != nil || desc.Digest.String() != digests[len(digests)-1] {
			t.Fatalf("%s holds %s (%v), the last item done for it says %s", key, desc.Digest, err, digests[len(digests)-1])
		}
		settled = settled && len(digests) == 1
	}
	if !settled {
		return
	}
	// A bundle that went in completely goes in again as a no-op.
	writes, tags := tg.writes, len(tg.tagged)
	res, err = bundle.Import(context.Background(), h.cfg, tg, open(), signed(t, data, bundle.ImportOptions{SpoolDir: spool, Concurrency: 2}))
	if err != nil || tg.writes != writes || len(tg.tagged) != tags || res.Count(item.Unchanged) != len(res.Items) {
		t.Fatalf("second import of the same bundle: %v, %d pushes, %d tags, %+v", err, tg.writes-writes, len(tg.tagged)-tags, res.Items)
	}
}

// FuzzImportBundle feeds arbitrary bytes to Import as a bundle tar. It must
// never panic, never tag anything when it returns an error, never tag a
// version whose content is incomplete, never allocate what a size field
// claims, and never leave spool files behind.
func FuzzImportBundle(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("hello"))
	// Hostile variants of the committed valid bundle, derived here rather
	// than committed: each is as large as the bundle.
	hostile := hostileSeeds(f, readCorpusBytes(f, "FuzzImportBundle", seedFull))
	names := make([]string, 0, len(hostile))
	for name := range hostile {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f.Add(hostile[name])
	}
	h := newImportFuzz(f)
	f.Fuzz(func(t *testing.T, data []byte) { h.check(t, data) })
}

// FuzzImportMetadata replaces the metadata of a valid bundle with arbitrary
// bytes (which FuzzImportBundle can only reach without changing their
// length) and checks the same properties.
func FuzzImportMetadata(f *testing.F) {
	for _, meta := range hostileMetadata(f, readCorpusBytes(f, "FuzzImportBundle", seedFull)) {
		f.Add(meta)
	}
	h := newImportFuzz(f)
	f.Fuzz(func(t *testing.T, meta []byte) { h.check(t, h.withMetadata(meta)) })
}

// Fixture files next to the part manifest FuzzOpenParts writes.
var partFixtures = map[string]string{
	"b.tar.000": "the first part of a bundle\n",
	"b.tar.001": "and the second\n",
	"b.tar.002": "",
}

// outsideFixture sits in the parent directory: no part manifest may reach it.
const outsideFixture = "outside the bundle directory\n"

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// FuzzOpenParts feeds arbitrary part manifests to OpenBundle. It must
// never panic, fail only with the package's errors, and read successfully
// only the concatenation of the listed parts, each exactly as listed, all
// from the manifest's own directory.
func FuzzOpenParts(f *testing.F) {
	root := f.TempDir()
	dir := filepath.Join(root, "bundle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "outside"), []byte(outsideFixture), 0o644); err != nil {
		f.Fatal(err)
	}
	for name, content := range partFixtures {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	manifestPath := filepath.Join(dir, "b.tar"+bundle.PartsSuffix)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(manifestPath, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := bundle.OpenBundle(manifestPath)
		if err != nil {
			if !errors.Is(err, bundle.ErrFormat) && !errors.Is(err, bundle.ErrCorrupt) && !errors.Is(err, bundle.ErrMissingPart) && !errors.Is(err, bundle.ErrUnsafeEntry) {
				t.Fatalf("OpenBundle: unclassified error %v", err)
			}
			return
		}
		defer r.Close()
		got, err := io.ReadAll(io.LimitReader(r, 64<<20))
		var ps bundle.Parts
		if jerr := json.Unmarshal(raw, &ps); jerr != nil {
			t.Fatalf("OpenBundle accepted a manifest that is not JSON: %v", jerr)
		}
		if ps.Format != bundle.PartsFormat || ps.FormatVersion != bundle.BundleFormatVersion {
			t.Fatalf("OpenBundle accepted format %q version %d", ps.Format, ps.FormatVersion)
		}
		var want strings.Builder
		valid := true
		for _, p := range ps.Parts {
			content, ok := partFixtures[p.Name]
			if p.Name == filepath.Base(manifestPath) {
				content, ok = string(raw), true
			}
			if !ok {
				t.Fatalf("OpenBundle accepted part %q, which is not a file of the bundle directory", p.Name)
			}
			valid = valid && int64(len(content)) == p.Size && sha256Hex(content) == p.SHA256
			want.WriteString(content)
		}
		switch {
		case err != nil && !errors.Is(err, bundle.ErrCorrupt) && !errors.Is(err, bundle.ErrMissingPart):
			t.Fatalf("reading: unclassified error %v", err)
		case err != nil && valid:
			t.Fatalf("reading parts that match their manifest failed: %v", err)
		case err == nil && !valid:
			t.Fatalf("read parts that do not match their manifest without an error: %q", got)
		case err == nil && string(got) != want.String():
			t.Fatalf("read %q, want %q", got, want.String())
		}
	})
}

func partsSeeds() [][]byte {
	part := func(name, content string) bundle.Part {
		return bundle.Part{Name: name, Size: int64(len(content)), SHA256: sha256Hex(content)}
	}
	manifest := func(format string, version int, parts ...bundle.Part) []byte {
		raw, _ := json.Marshal(bundle.Parts{Format: format, FormatVersion: version, Parts: parts})
		return raw
	}
	p0, p1, p2 := part("b.tar.000", partFixtures["b.tar.000"]), part("b.tar.001", partFixtures["b.tar.001"]), part("b.tar.002", "")
	badSum, badSize := p1, p1
	badSum.SHA256 = sha256Hex("something else")
	badSize.Size = 1 << 40
	v := bundle.BundleFormatVersion
	return [][]byte{
		manifest(bundle.PartsFormat, v, p0, p1, p2),
		manifest(bundle.PartsFormat, v, p1, p0, p0),
		manifest(bundle.PartsFormat, v),
		manifest(bundle.PartsFormat, v, p0, badSum),
		manifest(bundle.PartsFormat, v, p0, badSize),
		manifest(bundle.PartsFormat, v, part("../outside", outsideFixture)),
		manifest(bundle.PartsFormat, v, part(".", ""), part("", "")),
		manifest(bundle.PartsFormat, v, part("/etc/hostname", "")),
		manifest(bundle.PartsFormat, v, part("b.tar.999", "")),
		manifest(bundle.PartsFormat, v+1, p0),
		manifest("something-else", v, p0),
		[]byte(`{"format":"tofu-oci-mirror-bundle-parts","format_version":1,"parts":[{"name":"b.tar.000","size":-1}]}`),
		[]byte(`{"parts":null}`),
		[]byte(`[]`),
		[]byte(``),
	}
}

// tarEntry is one entry of a tar, read whole (seeds are small).
type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

func tarEntries(tb testing.TB, data []byte) []tarEntry {
	tb.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, tarEntry{h, body})
	}
}

func buildTar(tb testing.TB, entries []tarEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := *e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// truncatedHuge writes entries, then a header claiming size bytes followed
// by only body: what a hostile or cut-off file looks like.
func truncatedHuge(tb testing.TB, entries []tarEntry, name string, size int64, body []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := *e.hdr
		h.Size = int64(len(e.body))
		if err := tw.WriteHeader(&h); err != nil {
			tb.Fatal(err)
		}
		_, _ = tw.Write(e.body)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		tb.Fatal(err)
	}
	_, _ = tw.Write(body)
	return buf.Bytes() // no Close: the entry never ends
}

func metadataOf(tb testing.TB, entries []tarEntry) *bundle.Metadata {
	tb.Helper()
	var m bundle.Metadata
	if err := json.Unmarshal(entries[0].body, &m); err != nil {
		tb.Fatal(err)
	}
	return &m
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// withEdits copies entries, replacing the metadata with meta and applying edit to each other entry.
func withEdits(entries []tarEntry, meta []byte, edit func(i int, e tarEntry) []tarEntry) []tarEntry {
	out := []tarEntry{{entries[0].hdr, meta}}
	for i, e := range entries[1:] {
		out = append(out, edit(i+1, e)...)
	}
	return out
}

func keep(_ int, e tarEntry) []tarEntry { return []tarEntry{e} }

// blobEntry finds the first entry of a blob the metadata lists with this media type.
func blobEntry(tb testing.TB, entries []tarEntry, meta *bundle.Metadata, mediaType string) (int, string) {
	tb.Helper()
	for _, a := range meta.Artifacts {
		for _, b := range a.Blobs {
			if b.MediaType != mediaType || !b.Inside {
				continue
			}
			for i, e := range entries {
				if e.hdr.Name == "blobs/sha256/"+b.Digest.Encoded() {
					return i, b.Digest.String()
				}
			}
		}
	}
	tb.Fatalf("no %s blob in the bundle", mediaType)
	return 0, ""
}

// setBlobSize changes the size every artifact lists for blob d.
func setBlobSize(meta *bundle.Metadata, d string, size int64) {
	for i := range meta.Artifacts {
		for j := range meta.Artifacts[i].Blobs {
			if meta.Artifacts[i].Blobs[j].Digest.String() == d {
				meta.Artifacts[i].Blobs[j].Size = size
			}
		}
	}
}

func cloneMeta(tb testing.TB, m *bundle.Metadata) *bundle.Metadata {
	tb.Helper()
	var c bundle.Metadata
	if err := json.Unmarshal(mustJSON(tb, m), &c); err != nil {
		tb.Fatal(err)
	}
	return &c
}

// exportSeeds exports seedBase, seedFull and seedDiff with the real
// exporter from a test upstream with small packages.
func exportSeeds(t *testing.T) map[string][]byte {
	up := testupstream.New(t, testupstream.WithPackageSize(64))
	up.AddProvider("acme", "widget", "1.0.0", "linux_amd64", "darwin_arm64")
	up.AddProvider("acme", "widget", "1.1.0", "linux_amd64")
	upstreamYAML := fmt.Sprintf("upstream:\n  ca_file: %q\n  hosts:\n    registry.opentofu.org:\n      services:\n        providers.v1: %q\n",
		up.CAFile, up.Services()["providers.v1"])
	export := func(body string, inv *bundle.Inventory) []byte {
		cfg := fuzzConfig(t, upstreamYAML, body)
		hosts := map[string]map[string]string{}
		for h, o := range cfg.Upstream.Hosts {
			hosts[h] = o.Services
		}
		client, err := upstream.New(upstream.WithCAFile(cfg.Upstream.CAFile), upstream.WithHostServices(hosts))
		if err != nil {
			t.Fatal(err)
		}
		exp, err := bundle.Export(context.Background(), cfg, inv, bundle.ExportOptions{
			ToolVersion: "fuzz-seed", PlanFile: []byte(body), StageDir: t.TempDir(),
			Upstream: client,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Result.Err(); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := exp.WriteTar(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	seeds := map[string][]byte{seedBase: export(fuzzBasePlanBody, nil), seedFull: export(fuzzPlanBody, nil)}
	base := newMemTarget()
	cfg := fuzzConfig(t, "", fuzzPlanBody)
	if _, err := bundle.Import(context.Background(), cfg, base, bytes.NewReader(seeds[seedBase]), signed(t, seeds[seedBase], bundle.ImportOptions{SpoolDir: t.TempDir()})); err != nil {
		t.Fatal(err)
	}
	inv, err := bundle.TakeInventory(context.Background(), cfg, base, "inside", "fuzz-seed")
	if err != nil {
		t.Fatal(err)
	}
	seeds[seedDiff] = export(fuzzPlanBody, inv)
	return seeds
}

// hostileSeeds derives damaged and hostile bundles from a valid one.
func hostileSeeds(t testing.TB, full []byte) map[string][]byte {
	entries := tarEntries(t, full)
	meta := metadataOf(t, entries)
	zipIdx, zipDigest := blobEntry(t, entries, meta, manifest.ZipLayerMediaType)
	sumsIdx, sumsDigest := blobEntry(t, entries, meta, manifest.SHA256SUMSMediaType)
	out := map[string][]byte{}
	rewrite := func(name string, edit func(i int, e tarEntry) []tarEntry) {
		out[name] = buildTar(t, withEdits(entries, entries[0].body, edit))
	}
	rewrite("flipped-zip-byte", func(i int, e tarEntry) []tarEntry {
		if i == zipIdx {
			b := append([]byte(nil), e.body...)
			b[len(b)/2] ^= 0xff
			e.body = b
		}
		return []tarEntry{e}
	})
	rewrite("dotdot-path", func(i int, e tarEntry) []tarEntry {
		if i == zipIdx {
			h := *e.hdr
			h.Name = "blobs/../../etc/passwd"
			e.hdr = &h
		}
		return []tarEntry{e}
	})
	rewrite("absolute-path", func(i int, e tarEntry) []tarEntry {
		if i == zipIdx {
			h := *e.hdr
			h.Name = "/" + h.Name
			e.hdr = &h
		}
		return []tarEntry{e}
	})
	for name, typ := range map[string]byte{"symlink": tar.TypeSymlink, "hardlink": tar.TypeLink} {
		rewrite(name, func(i int, e tarEntry) []tarEntry {
			if i == zipIdx {
				return []tarEntry{{&tar.Header{Name: e.hdr.Name, Typeflag: typ, Linkname: "/etc/passwd"}, nil}}
			}
			return []tarEntry{e}
		})
	}
	rewrite("duplicate-entry", func(i int, e tarEntry) []tarEntry {
		if i == zipIdx {
			return []tarEntry{e, e}
		}
		return []tarEntry{e}
	})
	rewrite("missing-entry", func(i int, e tarEntry) []tarEntry {
		if i == zipIdx {
			return nil
		}
		return []tarEntry{e}
	})
	rewrite("unlisted-entry", func(i int, e tarEntry) []tarEntry {
		if i == 1 {
			extra := []byte("not in the metadata")
			sum := sha256.Sum256(extra)
			return []tarEntry{e, {&tar.Header{Name: "blobs/sha256/" + hex.EncodeToString(sum[:]), Mode: 0o644, Typeflag: tar.TypeReg}, extra}}
		}
		return []tarEntry{e}
	})
	out["metadata-not-first"] = buildTar(t, append([]tarEntry{entries[1], entries[0]}, entries[2:]...))
	out["truncated-two-thirds"] = full[:len(full)*2/3]
	out["truncated-in-metadata"] = full[:700]
	out["no-trailer"] = full[:len(full)-1024]

	// Sizes that must never be believed.
	huge := cloneMeta(t, meta)
	setBlobSize(huge, zipDigest, 1<<40)
	out["huge-claimed-blob"] = truncatedHuge(t, withEdits(entries[:zipIdx], mustJSON(t, huge), keep), entries[zipIdx].hdr.Name, 1<<40, entries[zipIdx].body)
	huge = cloneMeta(t, meta)
	setBlobSize(huge, sumsDigest, 3<<20)
	out["large-claimed-provenance"] = truncatedHuge(t, withEdits(entries[:sumsIdx], mustJSON(t, huge), keep), entries[sumsIdx].hdr.Name, 3<<20, entries[sumsIdx].body)
	huge = cloneMeta(t, meta)
	huge.Artifacts[0].Manifest.Size = 1 << 40
	setBlobSize(huge, huge.Artifacts[0].Manifest.Digest.String(), 1<<40)
	out["huge-claimed-manifest"] = buildTar(t, withEdits(entries, mustJSON(t, huge), keep))
	out["huge-claimed-metadata"] = truncatedHuge(t, nil, bundle.MetadataFile, 1<<40, entries[0].body[:512])
	out["large-claimed-metadata"] = truncatedHuge(t, nil, bundle.MetadataFile, 60<<20, entries[0].body[:512])
	out["max-int64-entry"] = truncatedHuge(t, entries[:1], entries[zipIdx].hdr.Name, 1<<62, nil)

	// Metadata that lies about what is inside.
	edit := func(name string, change func(m *bundle.Metadata)) {
		m := cloneMeta(t, meta)
		change(m)
		out[name] = buildTar(t, withEdits(entries, mustJSON(t, m), keep))
	}
	edit("no-artifacts", func(m *bundle.Metadata) { m.Artifacts = nil })
	edit("format-version-99", func(m *bundle.Metadata) { m.FormatVersion = 99 })
	edit("address-escapes", func(m *bundle.Metadata) { m.Artifacts[0].Address = "../../etc/passwd" })
	edit("tag-mismatch", func(m *bundle.Metadata) { m.Artifacts[0].Tag = "latest" })
	edit("unknown-kind", func(m *bundle.Metadata) { m.Artifacts[0].Kind = "plugin" })
	edit("as-module", func(m *bundle.Metadata) {
		m.Artifacts[0].Kind, m.Artifacts[0].Address = "module", "registry.opentofu.org/acme/widget/aws"
	})
	edit("duplicate-artifact", func(m *bundle.Metadata) { m.Artifacts = append(m.Artifacts, m.Artifacts...) })
	edit("same-version-two-manifests", func(m *bundle.Metadata) {
		if len(m.Artifacts) > 1 {
			other := m.Artifacts[1]
			other.Address, other.Version, other.Tag = m.Artifacts[0].Address, m.Artifacts[0].Version, m.Artifacts[0].Tag
			m.Artifacts = append(m.Artifacts, other)
		}
	})
	edit("no-provenance", func(m *bundle.Metadata) {
		for i := range m.Artifacts {
			m.Artifacts[i].Provenance = nil
		}
	})
	edit("manifest-not-flagged", func(m *bundle.Metadata) {
		for i := range m.Artifacts[0].Blobs {
			m.Artifacts[0].Blobs[i].Manifest = false
		}
	})
	edit("blob-said-outside", func(m *bundle.Metadata) {
		for i := range m.Artifacts[0].Blobs {
			m.Artifacts[0].Blobs[i].Inside = false
		}
	})
	edit("negative-size", func(m *bundle.Metadata) { setBlobSize(m, zipDigest, -1) })
	edit("sha512-digest", func(m *bundle.Metadata) {
		m.Artifacts[0].Blobs[0].Digest = digest.Digest("sha512:" + strings.Repeat("ab", 64))
	})
	edit("bad-digest", func(m *bundle.Metadata) { m.Artifacts[0].Blobs[0].Digest = "sha256:zz" })
	return out
}

// hostileMetadata are metadata documents for FuzzImportMetadata, made from
// the valid full bundle's.
func hostileMetadata(t testing.TB, full []byte) [][]byte {
	many := metadataOf(t, tarEntries(t, full))
	for len(many.Artifacts) < 200 {
		many.Artifacts = append(many.Artifacts, many.Artifacts...)
	}
	return [][]byte{
		mustJSON(t, many),
		[]byte(`{"format":"tofu-oci-mirror-bundle","format_version":1,"artifacts":[{},{},{}]}`),
		[]byte(`null`),
	}
}

// TestWriteFuzzSeeds regenerates the committed seed corpora with the real
// exporter. It runs only when asked: the committed seeds are what
// `go test` replays.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv(writeSeedsEnv) != "1" {
		t.Skipf("set %s=1 to regenerate testdata/fuzz", writeSeedsEnv)
	}
	seeds := exportSeeds(t)
	for _, target := range []string{"FuzzImportBundle", "FuzzImportMetadata", "FuzzOpenParts"} {
		if err := os.RemoveAll(filepath.Join("testdata", "fuzz", target)); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range seeds {
		writeCorpusBytes(t, "FuzzImportBundle", name, data)
	}
	for name, data := range seeds {
		writeCorpusBytes(t, "FuzzImportMetadata", name, tarEntries(t, data)[0].body)
	}
	for i, raw := range partsSeeds() {
		writeCorpusBytes(t, "FuzzOpenParts", fmt.Sprintf("seed-%02d", i), raw)
	}
}

// TestFuzzSeedsStillImport makes sure the committed valid seeds are still
// bundles this version imports, so the fuzzers start from real ones.
func TestFuzzSeedsStillImport(t *testing.T) {
	h := newImportFuzz(t)
	for _, c := range []struct {
		seed      string
		done, unc int
	}{{seedFull, 2, 0}, {seedDiff, 2, 0}, {seedBase, 0, 1}} {
		t.Run(c.seed, func(t *testing.T) {
			tg := h.base.clone()
			seed := readCorpusBytes(t, "FuzzImportBundle", c.seed)
			res, err := bundle.Import(context.Background(), h.cfg, tg, bytes.NewReader(seed), signed(t, seed, bundle.ImportOptions{SpoolDir: t.TempDir()}))
			if err != nil || res.Count(item.Done) != c.done || res.Count(item.Unchanged) != c.unc {
				t.Fatalf("%v %+v", err, res.Items)
			}
			sort.Strings(tg.tagged)
			t.Logf("tagged %v", tg.tagged)
		})
	}
}
