package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// Breaker stops a run from trying, item after item, a registry that is
// gone: each call would wait out regclient's growing backoff, so hundreds
// of versions would take hours to fail. After the first call that finds
// the registry unreachable, calls in flight are cancelled and every later
// call fails at once. The zero value is not usable; see [NewBreaker].
type Breaker struct {
	Publisher
	mu      sync.Mutex
	down    error
	tripped context.Context
	tripNow context.CancelFunc
}

// NewBreaker guards p for one run.
func NewBreaker(p Publisher) *Breaker {
	b := &Breaker{Publisher: p}
	b.tripped, b.tripNow = context.WithCancel(context.Background())
	return b
}

// join ties a call's context to the breaker, so tripping cancels it.
func (b *Breaker) join(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.tripped, cancel)
	return ctx, func() { stop(); cancel() }
}

// unreachable reports whether err means the registry cannot be reached at
// all, as opposed to refusing one request.
func unreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, errs.ErrBackoffLimit)
}

// Check fails with [ErrTargetDown] once the target proved unreachable, so
// work that would only end at the registry is not even started.
func (b *Breaker) Check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down != nil {
		return fmt.Errorf("%w (%v)", ErrTargetDown, b.down)
	}
	return nil
}

// note records an unreachable target and trips; a call cancelled by the
// trip reports the breaker's error rather than a bare "context canceled".
func (b *Breaker) note(err error) error {
	if err == nil {
		return nil
	}
	if unreachable(err) {
		b.mu.Lock()
		if b.down == nil {
			b.down = err
			b.tripNow()
		}
		b.mu.Unlock()
		return err
	}
	if b.tripped.Err() != nil {
		if down := b.Check(); down != nil {
			return down
		}
	}
	return err
}

func (b *Breaker) BlobExists(ctx context.Context, repo string, d descriptor.Descriptor) (descriptor.Descriptor, bool, error) {
	if err := b.Check(); err != nil {
		return d, false, err
	}
	ctx, done := b.join(ctx)
	defer done()
	got, ok, err := b.Publisher.BlobExists(ctx, repo, d)
	return got, ok, b.note(err)
}

func (b *Breaker) PutBlob(ctx context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error {
	if err := b.Check(); err != nil {
		return err
	}
	ctx, done := b.join(ctx)
	defer done()
	return b.note(b.Publisher.PutBlob(ctx, repo, d, rdr))
}

func (b *Breaker) PutManifest(ctx context.Context, repo string, a manifest.Artifact, tag string) error {
	if err := b.Check(); err != nil {
		return err
	}
	if tag != "" {
		// A tag PUT is a version's last, short step: let one in flight
		// finish, so an item is reported done exactly when it is tagged.
		return b.note(b.Publisher.PutManifest(ctx, repo, a, tag))
	}
	ctx, done := b.join(ctx)
	defer done()
	return b.note(b.Publisher.PutManifest(ctx, repo, a, tag))
}
