package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/bundle"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/item"
)

// A bundle imported from a plain file is uploaded from the file itself,
// each blob verified by the upload reading it (no pass over the tar hashes
// it first). These tests hold that path to what the streaming path
// guarantees: a wrong byte fails the import, tags nothing, and no target,
// not even one that checks nothing itself, is handed a wrong blob whole.

// trustingTarget is a registry that checks nothing: it keeps a blob once
// it received the declared number of bytes, whatever they are, as a
// registry completes an upload once the body's Content-Length arrived.
// It records how many bytes each upload of a digest received.
type trustingTarget struct {
	*memTarget
	mu       sync.Mutex
	received map[digest.Digest][]int64
}

func newTrustingTarget() *trustingTarget {
	return &trustingTarget{memTarget: newMemTarget(), received: map[digest.Digest][]int64{}}
}

func (tt *trustingTarget) PutBlob(_ context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error {
	var got bytes.Buffer
	n, err := io.Copy(&got, io.LimitReader(rdr, d.Size))
	tt.mu.Lock()
	tt.received[d.Digest] = append(tt.received[d.Digest], n)
	tt.mu.Unlock()
	if n < d.Size {
		return errors.Join(errRefused, err, io.ErrUnexpectedEOF)
	}
	tt.memTarget.mu.Lock()
	defer tt.memTarget.mu.Unlock()
	tt.repo(repo, true).blobs[d.Digest] = n
	tt.writes++
	return nil
}

// bundleFile writes data to a file and opens it, as the CLI opens
// `import bundle.tar`.
func bundleFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bundle.tar")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// zipEntry finds the first provider package in a bundle tar: its digest,
// size and the offset of its data.
func zipEntry(t *testing.T, data []byte) (digest.Digest, int64, int64) {
	t.Helper()
	meta := readMeta(t, data)
	zips := map[digest.Digest]bool{}
	for _, a := range meta.Artifacts {
		for _, b := range a.Blobs {
			if b.MediaType == manifest.ZipLayerMediaType && b.Inside {
				zips[b.Digest] = true
			}
		}
	}
	cr := &countingReader{r: bytes.NewReader(data)}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no provider package in the bundle: %v", err)
		}
		d := digest.Digest("sha256:" + strings.TrimPrefix(hdr.Name, "blobs/sha256/"))
		if zips[d] {
			return d, hdr.Size, cr.n
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func readMeta(t *testing.T, data []byte) *bundle.Metadata {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	var meta bundle.Metadata
	raw, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	return &meta
}

// A package whose bytes were changed (same size) fails the import with
// ErrCorrupt naming the entry; the upload reading it is never handed its
// last bytes, so even a registry that checks nothing cannot complete it.
func TestImportFromFileWithheldWrongBlob(t *testing.T) {
	data := readCorpusBytes(t, "FuzzImportBundle", seedFull)
	d, size, off := zipEntry(t, data)
	bad := bytes.Clone(data)
	bad[off+size/2] ^= 0xff
	tg := newTrustingTarget()
	res, err := bundle.Import(context.Background(), fuzzConfig(t, "", fuzzPlanBody), tg, bundleFile(t, bad), signed(t, bad, bundle.ImportOptions{SpoolDir: t.TempDir()}))
	if !errors.Is(err, bundle.ErrCorrupt) || !strings.Contains(err.Error(), "blobs/sha256/"+d.Encoded()) {
		t.Fatalf("got %v, want ErrCorrupt naming the entry", err)
	}
	if len(tg.tagged) != 0 {
		t.Fatalf("tagged %v", tg.tagged)
	}
	if res.Count(item.Done) != 0 {
		t.Fatalf("items done after a refused import: %+v", res.Items)
	}
	got := tg.received[d]
	if len(got) == 0 {
		t.Fatalf("the package was never uploaded: the test proves nothing (received %v)", tg.received)
	}
	for _, n := range got {
		if n >= size {
			t.Fatalf("an upload of the damaged package received %d of %d bytes: the registry could complete it", n, size)
		}
	}
	for _, r := range tg.repos {
		if _, ok := r.blobs[d]; ok {
			t.Fatalf("the damaged package %s was stored", d)
		}
	}

	// The same bundle undamaged: every byte goes through, once per blob.
	tg = newTrustingTarget()
	res, err = bundle.Import(context.Background(), fuzzConfig(t, "", fuzzPlanBody), tg, bundleFile(t, data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir()}))
	if err != nil || res.Count(item.Done) != 2 {
		t.Fatalf("the good bundle: %v %+v", err, res)
	}
	if got := tg.received[d]; len(got) != 1 || got[0] != size {
		t.Fatalf("the package was received as %v, want once whole (%d bytes)", got, size)
	}
}

// A bundle file cut inside a package: ErrCorrupt, nothing tagged.
func TestImportFromFileTruncated(t *testing.T) {
	data := readCorpusBytes(t, "FuzzImportBundle", seedFull)
	_, size, off := zipEntry(t, data)
	tg := newTrustingTarget()
	cut := data[:off+size/2]
	_, err := bundle.Import(context.Background(), fuzzConfig(t, "", fuzzPlanBody), tg, bundleFile(t, cut), signed(t, cut, bundle.ImportOptions{SpoolDir: t.TempDir()}))
	if !errors.Is(err, bundle.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if len(tg.tagged) != 0 {
		t.Fatalf("tagged %v", tg.tagged)
	}
}

// An import interrupted before its tags left every blob in the target;
// the next import finds them there and uploads nothing, but a damaged
// package in its bundle still fails it: the bytes are read and hashed
// even when no upload needs them.
func TestImportFromFileVerifiesBlobsTheTargetHas(t *testing.T) {
	data := readCorpusBytes(t, "FuzzImportBundle", seedFull)
	cfg := fuzzConfig(t, "", fuzzPlanBody)
	tg := newMemTarget()
	if _, err := bundle.Import(context.Background(), cfg, tg, bundleFile(t, data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir()})); err != nil {
		t.Fatal(err)
	}
	for _, r := range tg.repos {
		clear(r.tags) // as if killed before tagging
	}
	tg.tagged = nil
	d, size, off := zipEntry(t, data)
	bad := bytes.Clone(data)
	bad[off+size-1] ^= 0xff
	_, err := bundle.Import(context.Background(), cfg, tg, bundleFile(t, bad), signed(t, bad, bundle.ImportOptions{SpoolDir: t.TempDir()}))
	if !errors.Is(err, bundle.ErrCorrupt) || !strings.Contains(err.Error(), d.Encoded()) {
		t.Fatalf("got %v, want ErrCorrupt naming %s", err, d)
	}
	if len(tg.tagged) != 0 {
		t.Fatalf("tagged %v", tg.tagged)
	}
}

// Behind a proxy's body limit the upload is refused (413) and made again
// in chunks: each attempt reads the file afresh through its own hash, and
// the import completes with the packages intact.
func TestImportFromFileBehindBodyLimit(t *testing.T) {
	w := &world{t: t, up: newUpstreamWithZip(t, 3<<20)}
	_, data := w.export(w.config(nil, defaultTemplate, widgetLinuxPlan), nil)
	limit := &testregistry.BodyLimit{Max: 1 << 20}
	reg := testregistry.New(t, testregistry.WithMiddleware(limit.Middleware()))
	cfg := w.config(reg, defaultTemplate, widgetLinuxPlan)
	res, err := bundle.Import(context.Background(), cfg, openTarget(t, cfg), bundleFile(t, data), signed(t, data, bundle.ImportOptions{SpoolDir: t.TempDir(), Concurrency: 1}))
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("import behind a 1 MiB body limit: %v", err)
	}
	if res.Count(item.Done) != 1 {
		t.Fatalf("done %d, want 1", res.Count(item.Done))
	}
	if limit.Refused() == 0 {
		t.Fatal("no upload was refused: the test proves nothing")
	}
	if c := reg.Counts(); c.BlobUploadPatch < 3 {
		t.Errorf("%d PATCHes, want the package in chunks: %+v", c.BlobUploadPatch, c)
	}
	d, size, _ := zipEntry(t, data)
	r, err := ref.New(reg.Host + "/opentofu-providers/acme/widget")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := reg.Client().BlobGet(context.Background(), r, descriptor.Descriptor{Digest: d, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	got, err := io.ReadAll(blob)
	if err != nil || digest.FromBytes(got) != d {
		t.Fatalf("the registry holds %d bytes with digest %s (%v), want %s", len(got), digest.FromBytes(got), err, d)
	}
}

const widgetLinuxPlan = `providers:
  - source: acme/widget
    versions: "1.0.0"
    platforms: [linux_amd64]
`

// newUpstreamWithZip serves acme/widget 1.0.0 for linux_amd64 with a
// package of size random bytes.
func newUpstreamWithZip(t *testing.T, size int) *testupstream.Server {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	up := testupstream.New(t)
	up.AddProviderZip("acme", "widget", "1.0.0", "linux_amd64", b)
	return up
}
