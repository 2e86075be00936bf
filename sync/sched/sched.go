// Package sched is the engine's one way of running work concurrently:
// [Each] for a batch of independent tasks, [Limit] for slots shared by
// tasks of different shapes (a provider's platforms and a module version
// compete for the same transfer slots).
package sched

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Each runs f(0), ..., f(n-1) with at most limit running at once (limit
// below 1 means 1) and returns when all have returned.
func Each(n, limit int, f func(i int)) {
	var g errgroup.Group
	g.SetLimit(max(limit, 1))
	for i := range n {
		g.Go(func() error { f(i); return nil })
	}
	_ = g.Wait()
}

// Limit is a set of slots. The zero value is not usable; see [NewLimit].
type Limit struct{ slots chan struct{} }

// NewLimit returns n slots (n below 1 means 1).
func NewLimit(n int) *Limit { return &Limit{slots: make(chan struct{}, max(n, 1))} }

// Acquire waits for a free slot, or for ctx to end (then it returns the
// context's error and holds nothing).
func (l *Limit) Acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees a slot taken by Acquire.
func (l *Limit) Release() { <-l.slots }
