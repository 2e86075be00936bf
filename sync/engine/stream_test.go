package engine_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/ref"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testregistry"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/internal/testupstream"
)

// These tests check that a package goes up while it comes down, and what
// that must never cost: a blob of unconfirmed bytes, or a second download.

const onePlatform = `
platforms: [linux_amd64]
providers:
  - source: acme/widget
    versions: "1.0.0"
`

const widgetZip = "/files/acme/widget/1.0.0/terraform-provider-widget_1.0.0_linux_amd64.zip"

// blobUploads watches a registry's blob upload requests (POST, PATCH,
// PUT under /blobs/uploads/) for one digest's upload: it notes when the
// registry first reads a byte of it, and can fail the first n of them
// with 500 after reading part of the body.
type blobUploads struct {
	digest string // sha256:hex; "" until set

	mu      sync.Mutex
	started chan struct{} // closed at the first body byte read
	once    sync.Once
	fail    int // uploads still to fail
	failed  int
	seen    int // upload requests with a body
	whole   int // of them, bodies the registry read to their end
}

func (b *blobUploads) uploads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen
}

func newBlobUploads() *blobUploads { return &blobUploads{started: make(chan struct{})} }

func (b *blobUploads) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b.mu.Lock()
		watch := b.digest != "" && strings.Contains(req.URL.Path, "/blobs/uploads/") && req.ContentLength != 0 &&
			(req.Method == http.MethodPut || req.Method == http.MethodPatch) &&
			(req.Method == http.MethodPatch || req.URL.Query().Get("digest") == b.digest)
		fail := watch && b.fail > 0
		if watch {
			b.seen++
		}
		if fail {
			b.fail--
			b.failed++
		}
		b.mu.Unlock()
		if !watch {
			next.ServeHTTP(w, req)
			return
		}
		req.Body = &firstByte{ReadCloser: req.Body, seen: func() { b.once.Do(func() { close(b.started) }) }, want: req.ContentLength,
			whole: func() { b.mu.Lock(); b.whole++; b.mu.Unlock() }}
		if fail {
			_, _ = io.CopyN(io.Discard, req.Body, 1000)
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, req)
	})
}

type firstByte struct {
	io.ReadCloser
	seen  func()
	whole func()
	want  int64 // Content-Length
	got   int64
}

func (f *firstByte) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 {
		f.seen()
	}
	f.got += int64(n)
	if err == io.EOF && f.got == f.want {
		f.whole()
	}
	return n, err
}

// holdHalfway serves a zip's first half, then waits until started closes
// (or a deadline passes, which it reports on late) before the rest.
func holdHalfway(started <-chan struct{}, late *atomic.Bool) testupstream.Misbehavior {
	return func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		honest.ServeHTTP(&halfway{ResponseWriter: w, wait: func() {
			_ = http.NewResponseController(w).Flush()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				late.Store(true)
			case <-r.Context().Done():
			}
		}}, r)
	}
}

type halfway struct {
	http.ResponseWriter
	wait    func()
	written int64
	size    int64
	waited  bool
}

func (h *halfway) Write(p []byte) (int, error) {
	if h.size == 0 {
		h.size, _ = parseLength(h.Header().Get("Content-Length"))
	}
	if h.waited || h.size == 0 {
		return h.ResponseWriter.Write(p)
	}
	if half := h.size/2 - h.written; int64(len(p)) > half {
		n, err := h.ResponseWriter.Write(p[:half])
		h.written += int64(n)
		if err != nil {
			return n, err
		}
		h.waited = true
		h.wait()
		m, err := h.ResponseWriter.Write(p[half:])
		return n + m, err
	}
	n, err := h.ResponseWriter.Write(p)
	h.written += int64(n)
	return n, err
}

func parseLength(s string) (int64, error) {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, io.ErrUnexpectedEOF
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

func (h *harness) blobExists(repo, dgst string) bool {
	h.t.Helper()
	r, err := ref.New(h.reg.Host + "/" + repo)
	if err != nil {
		h.t.Fatal(err)
	}
	rdr, err := h.reg.Client().BlobHead(context.Background(), r, descriptor.Descriptor{Digest: digest.Digest(dgst)})
	if err != nil {
		return false
	}
	rdr.Close()
	return true
}

func TestUploadStartsBeforeTheDownloadEnds(t *testing.T) {
	watch := newBlobUploads()
	h := newHarness(t, testregistry.WithMiddleware(watch.middleware))
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	watch.digest = "sha256:" + h.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64")
	var late atomic.Bool
	h.up.MisbehaveNext(widgetZip, 1, holdHalfway(watch.started, &late))

	h.mustSync(h.config(onePlatform))
	if late.Load() {
		t.Fatal("the registry received no byte of the package while half of it was still to come: the upload waited for the whole download")
	}
	h.assertOnlyCompleteVersions("opentofu-providers/acme/widget", []string{"linux_amd64"})
	if got := h.up.Counts().Zip; got != 1 {
		t.Fatalf("zip downloaded %d times, want 1", got)
	}
}

func TestTamperedPackageLeavesNoBlobAlthoughItWasStreaming(t *testing.T) {
	watch := newBlobUploads()
	h := newHarness(t, testregistry.WithMiddleware(watch.middleware))
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	watch.digest = "sha256:" + h.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64")
	h.up.Tamper("acme", "widget", "1.0.0", "linux_amd64", testupstream.TamperZip)
	// The flipped byte is in the second half: the upload has started by then.
	var late atomic.Bool
	h.up.MisbehaveNext(widgetZip, 1, holdHalfway(watch.started, &late))
	_, res := h.sync(h.config(onePlatform))
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("sync of a tampered zip: %v, want a checksum mismatch", err)
	}
	repo := "opentofu-providers/acme/widget"
	genuine := "sha256:" + h.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64")
	if h.blobExists(repo, genuine) {
		t.Fatal("the registry holds a blob under the signed digest made of tampered bytes")
	}
	tampered := h.up.Zip("acme", "widget", "1.0.0", "linux_amd64")
	tampered[len(tampered)/2] ^= 0xff
	if h.blobExists(repo, digest.FromBytes(tampered).String()) {
		t.Fatal("the registry holds the tampered bytes as a blob")
	}
	if tags := h.tags(repo); len(tags) != 0 {
		t.Fatalf("tags after a refused package: %v", tags)
	}
	// The registry checks the digest itself; a registry that did not
	// still never got the whole body: its last byte waits for our check.
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if watch.seen == 0 {
		t.Fatal("no upload of the package started: the test no longer streams")
	}
	if watch.whole != 0 {
		t.Fatalf("the registry received %d whole bodies of a package whose check failed", watch.whole)
	}
}

func TestFailedStreamedUploadRetriesFromTheSpool(t *testing.T) {
	watch := newBlobUploads()
	h := newHarness(t, testregistry.WithMiddleware(watch.middleware))
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	watch.digest = "sha256:" + h.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64")
	// More failures than the target's own retries of one upload: the
	// engine's attempt from the spool file is what gets it through.
	watch.fail = 3
	_, res := h.syncWith(h.config(onePlatform), fastRetries(0))
	if err := res.Err(); err != nil {
		t.Fatalf("sync: %v (%d uploads failed on purpose)", err, watch.failed)
	}
	if watch.failed != 3 {
		t.Fatalf("%d uploads failed on purpose, want 3", watch.failed)
	}
	if got := h.up.Counts().Zip; got != 1 {
		t.Fatalf("zip downloaded %d times, want 1: a failed upload must not download again", got)
	}
	h.assertOnlyCompleteVersions("opentofu-providers/acme/widget", []string{"linux_amd64"})
}

func TestDownloadRetryVoidsTheStreamedUpload(t *testing.T) {
	watch := newBlobUploads()
	h := &harness{t: t, up: testupstream.New(t, testupstream.WithPackageSize(512<<10)), reg: testregistry.New(t, testregistry.WithMiddleware(watch.middleware))}
	h.registry = h.reg.Host
	h.up.AddProvider("acme", "widget", "1.0.0", "linux_amd64")
	watch.digest = "sha256:" + h.up.ZipSHA256("acme", "widget", "1.0.0", "linux_amd64")
	// The first download breaks off after 128 KiB, once the registry has
	// received some of them: the download starts over, so what the upload
	// read may not be what comes next.
	drop := testupstream.DropConnection(128 << 10)
	h.up.MisbehaveNext(widgetZip, 1, func(w http.ResponseWriter, r *http.Request, honest http.Handler) {
		drop(&flushThenWait{ResponseWriter: w, wait: watch.started}, r, honest)
	})
	h.mustSync(h.config(onePlatform))
	if got := h.up.Counts().Zip; got != 2 {
		t.Fatalf("zip downloaded %d times, want 2 (the broken download and its retry)", got)
	}
	if got := watch.uploads(); got < 2 {
		t.Fatalf("%d uploads of the package, want the voided one and one from the spool file", got)
	}
	h.assertOnlyCompleteVersions("opentofu-providers/acme/widget", []string{"linux_amd64"})
}

// flushThenWait flushes, then waits for wait (at most 10 s) before the
// misbehavior goes on to drop the connection.
type flushThenWait struct {
	http.ResponseWriter
	wait <-chan struct{}
}

func (f *flushThenWait) Unwrap() http.ResponseWriter { return f.ResponseWriter }

func (f *flushThenWait) FlushError() error {
	err := http.NewResponseController(f.ResponseWriter).Flush()
	select {
	case <-f.wait:
	case <-time.After(10 * time.Second):
	}
	return err
}
