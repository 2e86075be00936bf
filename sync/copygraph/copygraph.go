// Package copygraph is the one way content reaches a target: children
// before the manifests that reference them, the tag last, and "already
// there" counted as success. Sync publishes each provider and module
// version through it and import publishes a bundle through it, so both
// keep the same guarantees: a manifest is pushed only after every child it
// names landed, and nothing is pushed twice to one repository in a run.
package copygraph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/sched"
	"github.com/tofu-oci-mirror/tofu-oci-mirror/sync/target"
)

// Source opens a blob's content from its start; it is called once per
// upload, and a reader that is an io.Closer is closed after it. Return an
// io.ReaderAt or a [target.Reopener] so a failed upload can be retried
// from the beginning.
type Source func() (io.Reader, error)

// Copier pushes blobs and manifests into a [target.Publisher]. The zero
// value is not usable; see [New]. It is safe for concurrent use.
type Copier struct {
	pub   target.Publisher
	limit *sched.Limit // nil: callers bound their own concurrency

	mu   sync.Mutex
	jobs map[key]*job
	bg   sync.WaitGroup
}

type key struct {
	repo   string
	digest digest.Digest
}

// job is one push, or one check that found the content there; done closes
// when it ended, err says how.
type job struct {
	done     chan struct{}
	err      error
	uploaded int64
}

// New returns a Copier writing to pub. With limit, every network call it
// makes holds one of limit's slots (manifests take theirs only once their
// children landed, so waiting never holds a slot); without, callers bound
// concurrency themselves.
func New(pub target.Publisher, limit *sched.Limit) *Copier {
	return &Copier{pub: pub, limit: limit, jobs: map[key]*job{}}
}

// start registers the push of k, unless one is registered already: first
// reports whether the caller must run it (and then finish it).
func (c *Copier) start(k key) (j *job, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if j, ok := c.jobs[k]; ok {
		return j, false
	}
	j = &job{done: make(chan struct{})}
	c.jobs[k] = j
	return j, true
}

// finish ends j. A failed push is forgotten, so a later call tries again
// (the registry may have recovered); calls already waiting share the error.
func (c *Copier) finish(k key, j *job, uploaded int64, err error) {
	j.uploaded, j.err = uploaded, err
	if err != nil {
		c.mu.Lock()
		if c.jobs[k] == j {
			delete(c.jobs, k)
		}
		c.mu.Unlock()
	}
	close(j.done)
}

func (c *Copier) wait(ctx context.Context, j *job) error {
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Copier) slot(ctx context.Context) (func(), error) {
	if c.limit == nil {
		return func() {}, nil
	}
	if err := c.limit.Acquire(ctx); err != nil {
		return nil, err
	}
	return c.limit.Release, nil
}

// Blob makes sure repo holds d: it asks the target first (unless known is
// true, meaning the caller just learnt it is missing) and uploads from src
// only when it is missing. A second call for the same repository and
// digest waits for the first and shares its outcome (reporting 0 bytes
// uploaded). It returns the bytes this call uploaded.
func (c *Copier) Blob(ctx context.Context, repo string, d descriptor.Descriptor, src Source, knownMissing bool) (int64, error) {
	j, first := c.start(key{repo, d.Digest})
	if !first {
		return 0, c.wait(ctx, j)
	}
	n, err := c.pushBlob(ctx, repo, d, src, knownMissing)
	c.finish(key{repo, d.Digest}, j, n, err)
	return n, err
}

func (c *Copier) pushBlob(ctx context.Context, repo string, d descriptor.Descriptor, src Source, knownMissing bool) (int64, error) {
	release, err := c.slot(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	if !knownMissing {
		if _, exists, err := c.pub.BlobExists(ctx, repo, d); err != nil || exists {
			return 0, err
		}
	}
	r, err := src()
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if closer, ok := r.(io.Closer); ok {
		defer closer.Close()
	}
	if err := c.pub.PutBlob(ctx, repo, d, r); err != nil {
		return 0, err
	}
	return d.Size, nil
}

// Bytes is a [Source] of data held in memory.
func Bytes(data []byte) Source {
	return func() (io.Reader, error) { return bytes.NewReader(data), nil }
}

// File is a [Source] reading f (or a section of it) from offset 0 each time.
func File(f io.ReaderAt, size int64) Source {
	return func() (io.Reader, error) { return io.NewSectionReader(f, 0, size), nil }
}

// Manifest pushes a by digest once every child it names that this Copier
// is pushing to repo has landed; a child that failed fails it too. Pushing
// a manifest the registry already has is harmless and costs what asking
// would, so it never asks first.
func (c *Copier) Manifest(ctx context.Context, repo string, a manifest.Artifact) error {
	j, first := c.start(key{repo, a.Descriptor.Digest})
	if !first {
		return c.wait(ctx, j)
	}
	err := c.pushManifest(ctx, repo, a, c.childJobs(repo, a))
	c.finish(key{repo, a.Descriptor.Digest}, j, 0, err)
	return err
}

// childJob is a push of one of a manifest's children by this Copier.
type childJob struct {
	digest digest.Digest
	job    *job
}

// childJobs are the pushes of a's children this Copier has registered for
// repo now. Taken when the manifest is registered, not when its goroutine
// runs: a child that failed (and was forgotten, see finish) in between
// must still fail the manifest. A manifest that does not parse has none;
// pushManifest reports it.
func (c *Copier) childJobs(repo string, a manifest.Artifact) []childJob {
	children, err := manifest.Successors(a.Raw)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []childJob
	for _, ch := range children {
		if j := c.jobs[key{repo, ch.Digest}]; j != nil {
			out = append(out, childJob{ch.Digest, j})
		}
		// else not ours to push: the caller knows the target has it
	}
	return out
}

func (c *Copier) pushManifest(ctx context.Context, repo string, a manifest.Artifact, kids []childJob) error {
	if _, err := manifest.Successors(a.Raw); err != nil {
		return fmt.Errorf("manifest %s: %w", a.Descriptor.Digest, err)
	}
	for _, ch := range kids {
		if err := c.wait(ctx, ch.job); err != nil {
			return fmt.Errorf("manifest %s: child %s: %w", a.Descriptor.Digest, ch.digest, err)
		}
	}
	release, err := c.slot(ctx)
	if err != nil {
		return err
	}
	defer release()
	return c.pub.PutManifest(ctx, repo, a, "")
}

// Tag points tag at a, which must already be in repo: the last step of
// publishing a version, after which OpenTofu can see it.
func (c *Copier) Tag(ctx context.Context, repo string, a manifest.Artifact, tag string) error {
	if tag == "" {
		return errors.New("copygraph: empty tag")
	}
	release, err := c.slot(ctx)
	if err != nil {
		return err
	}
	defer release()
	return c.pub.PutManifest(ctx, repo, a, tag)
}

// GoBlob is [Copier.Blob] in the background: the push is registered before
// GoBlob returns, so a manifest pushed afterwards waits for it. done, if
// not nil, receives the outcome; [Copier.Wait] waits for all of them.
func (c *Copier) GoBlob(ctx context.Context, repo string, d descriptor.Descriptor, src Source, knownMissing bool, done func(uploaded int64, err error)) {
	j, first := c.start(key{repo, d.Digest})
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		var n int64
		var err error
		if first {
			n, err = c.pushBlob(ctx, repo, d, src, knownMissing)
			c.finish(key{repo, d.Digest}, j, n, err)
		} else {
			err = c.wait(ctx, j)
		}
		if done != nil {
			done(n, err)
		}
	}()
}

// GoManifest is [Copier.Manifest] in the background, registered before it
// returns (see [Copier.GoBlob]).
func (c *Copier) GoManifest(ctx context.Context, repo string, a manifest.Artifact, done func(err error)) {
	j, first := c.start(key{repo, a.Descriptor.Digest})
	var kids []childJob
	if first {
		kids = c.childJobs(repo, a)
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		var err error
		if first {
			err = c.pushManifest(ctx, repo, a, kids)
			c.finish(key{repo, a.Descriptor.Digest}, j, 0, err)
		} else {
			err = c.wait(ctx, j)
		}
		if done != nil {
			done(err)
		}
	}()
}

// Wait returns once every background push has ended.
func (c *Copier) Wait() { c.bg.Wait() }
