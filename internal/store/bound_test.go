package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The call timeout's bound: shared by calls with no context of their own,
// the caller's when its deadline comes first, the caller's cancellation
// kept otherwise.
func TestBound(t *testing.T) {
	t.Parallel()
	s := &Store{callTimeout: time.Second}

	// No context of its own: a shared one, bounded by the timeout rounded
	// up by at most a 64th.
	start := time.Now()
	a, cancel := s.bound(context.Background())
	cancel()
	b, cancel := s.bound(context.TODO())
	cancel()
	if a != b {
		t.Error("two calls in the same grain got different contexts")
	}
	d, ok := a.Deadline()
	if !ok || d.Before(start.Add(time.Second)) || d.After(time.Now().Add(time.Second+time.Second/64)) {
		t.Errorf("deadline %v after the call, want within [1 s, 1 s + 1/64 s]", d.Sub(start))
	}
	// A caller's deadline within the timeout: its context as it is.
	ctx, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer stop()
	if got, cancel := s.bound(ctx); got != ctx {
		t.Error("a deadline within the timeout was bounded again")
	} else {
		cancel()
	}

	// A caller's context that can be cancelled: bounded, and still ended
	// by the caller.
	ctx, stop = context.WithCancel(context.Background())
	got, cancel := s.bound(ctx)
	defer cancel()
	if d, ok := got.Deadline(); !ok || d.After(time.Now().Add(time.Second)) {
		t.Errorf("deadline %v, %v", d, ok)
	}
	stop()
	<-got.Done()
	if !errors.Is(got.Err(), context.Canceled) {
		t.Errorf("err %v after the caller's cancel", got.Err())
	}

	// Calls under one parent (a worker's context) share a context derived
	// from it, with its values, ended by its cancellation; a call under
	// another within the grain gets a bound of its own. A minute's timeout:
	// a grain of ~0.94 s holds the calls below.
	w := &Store{callTimeout: time.Minute}
	type key struct{}
	worker, stopWorker := context.WithCancel(context.WithValue(context.Background(), key{}, "w"))
	first, cancel := w.bound(worker)
	cancel()
	second, cancel := w.bound(worker)
	cancel()
	if first != second || first.Value(key{}) != "w" || first.Err() != nil {
		t.Errorf("calls under the same parent: %v and %v (value %v, err %v), want one shared context", first, second, first.Value(key{}), first.Err())
	}
	if d, ok := first.Deadline(); !ok || d.After(time.Now().Add(time.Minute+time.Minute/64)) {
		t.Errorf("shared deadline %v, %v", d, ok)
	}
	other, cancel := w.bound(context.Background())
	cancel()
	if other == first || !errors.Is(other.Err(), context.Canceled) {
		t.Error("a call under another parent within the grain did not get a bound of its own")
	}
	stopWorker()
	<-first.Done()
	if !errors.Is(first.Err(), context.Canceled) {
		t.Errorf("err %v after the parent's cancel", first.Err())
	}

	// A context of a type that does not compare (a struct holding a map):
	// never kept, never compared, bounded call by call.
	odd := mapContext{Context: context.Background(), m: map[string]int{}}
	for range 3 {
		got, cancel := s.bound(odd)
		if _, ok := got.Deadline(); !ok {
			t.Error("a context of a type that does not compare was not bounded")
		}
		cancel()
		if got.Err() == nil {
			t.Error("a context of a type that does not compare shared a bound")
		}
	}

	// A longer timeout set since: a new shared context.
	s.SetCallTimeout(time.Minute)
	c, cancel := s.bound(context.Background())
	cancel()
	if d, _ := c.Deadline(); c == a || d.Before(time.Now().Add(time.Minute)) {
		t.Errorf("after SetCallTimeout(1m) the deadline is %v away", time.Until(d))
	}
}

// mapContext is a context of a type that == cannot compare.
type mapContext struct {
	context.Context
	m map[string]int
}

// A call with no context of its own, or under a parent that made the call
// before, allocates nothing for its bound (but a new shared context every
// 64th of the timeout). Not in parallel: AllocsPerRun counts the whole
// process's allocations.
func TestBoundAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	worker, stop := context.WithCancel(context.Background())
	defer stop()
	for _, ctx := range []context.Context{context.Background(), worker} {
		s := &Store{callTimeout: time.Second}
		if n := testing.AllocsPerRun(1000, func() {
			_, cancel := s.bound(ctx)
			cancel()
		}); n > 0.1 {
			t.Errorf("%.2f allocations per bound under %v", n, ctx)
		}
	}
}
