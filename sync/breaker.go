package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	gosync "sync"
	"syscall"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"

	"github.com/tofu-oci-mirror/tofu-oci-mirror/manifest"
)

// ErrTargetDown marks items not attempted because the target had already
// proved unreachable in this run.
var ErrTargetDown = errors.New("target unreachable: not attempted")

// breaker stops a run from trying, item after item, a registry that is
// gone: each call would wait out regclient's growing backoff, so hundreds
// of versions would take hours to fail. After the first call that finds
// the registry unreachable, calls in flight are cancelled and every later
// call fails at once.
type breaker struct {
	Publisher
	mu      gosync.Mutex
	down    error
	tripped context.Context
	tripNow context.CancelFunc
}

func newBreaker(p Publisher) *breaker {
	b := &breaker{Publisher: p}
	b.tripped, b.tripNow = context.WithCancel(context.Background())
	return b
}

// join ties a call's context to the breaker, so tripping cancels it.
func (b *breaker) join(ctx context.Context) (context.Context, func()) {
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

func (b *breaker) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down != nil {
		return fmt.Errorf("%w (%v)", ErrTargetDown, b.down)
	}
	return nil
}

// note records an unreachable target and trips; a call cancelled by the
// trip reports the breaker's error rather than a bare "context canceled".
func (b *breaker) note(err error) error {
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
		if down := b.check(); down != nil {
			return down
		}
	}
	return err
}

func (b *breaker) BlobExists(ctx context.Context, repo string, d descriptor.Descriptor) (descriptor.Descriptor, bool, error) {
	if err := b.check(); err != nil {
		return d, false, err
	}
	ctx, done := b.join(ctx)
	defer done()
	got, ok, err := b.Publisher.BlobExists(ctx, repo, d)
	return got, ok, b.note(err)
}

func (b *breaker) PutBlob(ctx context.Context, repo string, d descriptor.Descriptor, rdr io.Reader) error {
	if err := b.check(); err != nil {
		return err
	}
	ctx, done := b.join(ctx)
	defer done()
	return b.note(b.Publisher.PutBlob(ctx, repo, d, rdr))
}

func (b *breaker) PutManifest(ctx context.Context, repo string, a manifest.Artifact, tag string) error {
	if err := b.check(); err != nil {
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
