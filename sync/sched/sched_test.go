package sched

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEachBoundsConcurrency(t *testing.T) {
	var running, peak, done atomic.Int32
	Each(50, 3, func(int) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		for range 1000 {
			_ = running.Load()
		}
		running.Add(-1)
		done.Add(1)
	})
	if done.Load() != 50 || peak.Load() > 3 {
		t.Fatalf("done %d, peak %d: want 50 tasks, at most 3 at once", done.Load(), peak.Load())
	}
}

func TestMemoComputesOnceAndForgetsFailures(t *testing.T) {
	var m Memo[string, int]
	var calls atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := m.Get(context.Background(), "k", func() (int, error) { calls.Add(1); return 7, nil })
			if v != 7 || err != nil {
				t.Errorf("Get = %d, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("computed %d times, want once", calls.Load())
	}
	boom := errors.New("boom")
	if _, err := m.Get(context.Background(), "bad", func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if v, err := m.Get(context.Background(), "bad", func() (int, error) { return 3, nil }); v != 3 || err != nil {
		t.Fatalf("a failure was remembered: %d, %v", v, err)
	}
}
