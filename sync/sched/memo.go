package sched

import (
	"context"
	"errors"
	"sync"
)

// Memo computes each key's value once, however many goroutines ask for it
// at the same time: the first caller computes, the others wait for its
// answer. A computation that failed is forgotten, so a later call tries
// again; one cut short by its caller's cancellation is retried by a waiter
// whose own context is still alive. The zero value is ready to use.
type Memo[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*memoEntry[V]
}

type memoEntry[V any] struct {
	ready chan struct{}
	v     V
	err   error
}

// Get returns the value of k, computing it with compute when no caller
// has yet, or waiting for the caller that is. ctx bounds the wait.
func (m *Memo[K, V]) Get(ctx context.Context, k K, compute func() (V, error)) (V, error) {
	for {
		m.mu.Lock()
		if m.m == nil {
			m.m = map[K]*memoEntry[V]{}
		}
		e, ok := m.m[k]
		if !ok {
			e = &memoEntry[V]{ready: make(chan struct{})}
			m.m[k] = e
			m.mu.Unlock()
			e.v, e.err = compute()
			if e.err != nil {
				m.mu.Lock()
				delete(m.m, k)
				m.mu.Unlock()
			}
			close(e.ready)
			return e.v, e.err
		}
		m.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
		// Another caller's cancellation is not our failure: try ourselves.
		if e.err != nil && (errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			continue
		}
		return e.v, e.err
	}
}
