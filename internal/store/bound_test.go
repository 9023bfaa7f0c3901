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

	// A longer timeout set since: a new shared context.
	s.SetCallTimeout(time.Minute)
	c, cancel := s.bound(context.Background())
	cancel()
	if d, _ := c.Deadline(); c == a || d.Before(time.Now().Add(time.Minute)) {
		t.Errorf("after SetCallTimeout(1m) the deadline is %v away", time.Until(d))
	}
}

// A call with no context of its own allocates nothing for its bound (but a
// new shared context every 64th of the timeout). Not in parallel:
// AllocsPerRun counts the whole process's allocations.
func TestBoundAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := &Store{callTimeout: time.Second}
	if n := testing.AllocsPerRun(1000, func() {
		_, cancel := s.bound(context.Background())
		cancel()
	}); n > 0.1 {
		t.Errorf("%.2f allocations per bound", n)
	}
}
