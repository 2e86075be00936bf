package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
)

// Uploads behind a body size limit (nginx client_max_body_size in front of
// Harbor, GitLab or Nexus answers 413 to a monolithic PUT of a large
// package): the blob is uploaded again in chunks below the limit, from a
// fresh reader, and the limit is remembered for the rest of the run so
// later large blobs go in chunks at once.

const (
	// firstChunk is the chunk tried after a 413: nginx's default
	// client_max_body_size (1m) lets it through, and each refusal costs a
	// backoff of regclient's; smaller chunks are tried down to minChunk
	// when chunks are refused too.
	firstChunk = 1 << 20
	minChunk   = 64 << 10
	// blobAttempts bounds PutBlob's own retries of a monolithic upload
	// that failed for another reason than a 413 (regclient retries within
	// one attempt when it may reread the body safely).
	blobAttempts = 3
)

// uploads is what a Target learnt about blob uploads in this run.
type uploads struct {
	rcOpts []regclient.Opt // to build the chunking clients

	mu      sync.Mutex
	limit   int64 // smallest monolithic upload refused with 413; 0: none
	chunk   int64 // chunk size that passed (or is being tried)
	clients map[int64]*regclient.RegClient
}

// chunked returns the chunk size to upload a blob of size with, 0 for a
// monolithic upload.
func (u *uploads) chunked(size int64) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.limit > 0 && size >= u.limit {
		return u.chunk
	}
	return 0
}

// refused records a 413 for a monolithic upload of size (first) or a
// chunked one with chunk (smaller chunks then), and returns the chunk
// size to try next, 0 when there is none left.
func (u *uploads) refused(size, chunk int64) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if chunk == 0 {
		if u.limit == 0 || size < u.limit {
			u.limit = size
		}
		if u.chunk == 0 {
			u.chunk = firstChunk
		}
		for u.chunk > minChunk && u.chunk >= size {
			u.chunk /= 2
		}
		return u.chunk
	}
	if chunk <= minChunk {
		return 0
	}
	if u.chunk >= chunk {
		u.chunk = chunk / 2
	}
	return u.chunk
}

// client is a registry client uploading every blob in chunks of chunk.
func (u *uploads) client(chunk int64) *regclient.RegClient {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.clients == nil {
		u.clients = map[int64]*regclient.RegClient{}
	}
	if c, ok := u.clients[chunk]; ok {
		return c
	}
	c := regclient.New(append(append([]regclient.Opt{}, u.rcOpts...), regclient.WithRegOpts(reg.WithBlobSize(chunk, 1)))...)
	u.clients[chunk] = c
	return c
}

// onceReader reads a section from its start, once: it is no io.Seeker,
// so regclient cannot rewind it. After a refusal net/http may still be
// writing the failed request's body from it (or start to only then), and
// regclient rewinding the same reader (for a retry, or its own chunked
// fallback after a 413) would read it twice at once, a data race that
// corrupts the upload. So regclient returns the error, and PutBlob, which
// then knows what the registry answered (and remembers a 413), starts
// over with a new reader.
type onceReader struct {
	sr *io.SectionReader
}

func newOnceReader(ra io.ReaderAt, size int64) *onceReader {
	return &onceReader{sr: io.NewSectionReader(ra, 0, size)}
}

func (o *onceReader) Read(p []byte) (int, error) { return o.sr.Read(p) }

// Reopener is a blob body [Target.PutBlob] can read again from its
// start: every attempt reads a new reader from Reopen, independent of the
// earlier ones (which net/http may still be reading), and the body itself
// only the first. A body that checks what it hands out (its digest) thus
// checks each attempt from its first byte. Reopen failing ends the
// upload with its error.
type Reopener interface {
	io.Reader
	Reopen() (io.Reader, error)
}

// putBlob uploads d from rdr: monolithic first (unless a 413 taught this
// run that d is too large for that), then, after a 413, in chunks below
// the limit from a fresh reader. rdr must be a [Reopener] or an
// io.ReaderAt to be read more than once; other readers get one attempt.
func (t *Target) putBlob(ctx context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error {
	r, err := t.Ref(repo, "")
	if err != nil {
		return err
	}
	d = descriptor.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
	// body is what the next attempt reads.
	var body io.Reader
	var reopen func() (io.Reader, error)
	switch src := rdr.(type) {
	case Reopener:
		body, reopen = src, src.Reopen
	case io.ReaderAt:
		reopen = func() (io.Reader, error) { return newOnceReader(src, d.Size), nil }
		body, _ = reopen()
	}
	if reopen == nil || t.layout != "" {
		_, err := t.rc.BlobPut(ctx, r, d, rdr)
		return err
	}
	chunk := t.uploads.chunked(d.Size)
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		rc := t.rc
		if chunk > 0 {
			rc = t.uploads.client(chunk)
		}
		if attempt > 1 {
			if body, err = reopen(); err != nil {
				return err
			}
		}
		_, err := rc.BlobPut(ctx, r, d, body)
		if err == nil {
			if chunk > 0 {
				t.logger.Debug("blob uploaded in chunks below the registry's body limit", "repository", repo, "digest", d.Digest, "size", d.Size, "chunk", chunk)
			}
			return nil
		}
		ref := RefusalOf(err)
		if ref.TooLarge() {
			next := t.uploads.refused(d.Size, chunk)
			if next == 0 {
				return fmt.Errorf("%w (chunks of %d bytes were refused too: %s)", err, chunk, hintBodyLimit)
			}
			t.logger.Info("registry refused the upload as too large (413): uploading in chunks", "repository", repo, "digest", d.Digest, "size", d.Size, "chunk", next)
			chunk = next
			continue
		}
		if attempt >= blobAttempts || !retryUpload(ref) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			return err
		}
	}
}

// hintBodyLimit says what to configure when even small chunks are refused.
const hintBodyLimit = "a proxy in front of the registry limits request bodies: raise nginx client_max_body_size (Harbor: its nginx or the ingress annotation nginx.ingress.kubernetes.io/proxy-body-size; GitLab and Nexus: the nginx in front of the registry); tofu-oci-mirror doctor measures the limit"

// retryUpload says whether PutBlob starts a failed upload over: when the
// registry answered 5xx or 429, or regclient gave up only because it may
// not reread the body (a dropped connection); not for refusals, and not
// for a registry that is gone (the [Breaker] then stops the run).
func retryUpload(r Refusal) bool {
	if unreachable(r.Err) {
		return false
	}
	if r.Status >= 500 || r.Status == 429 {
		return true
	}
	return r.Status == 0 && errors.Is(r.Err, errs.ErrNotRetryable)
}
