package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// finishes records the finishes a handler got.
type finishes struct {
	mu    sync.Mutex
	calls map[string][]synckairos.Finish
	ch    chan synckairos.Finish
}

func newFinishes() *finishes {
	return &finishes{calls: map[string][]synckairos.Finish{}, ch: make(chan synckairos.Finish, 1000)}
}

func (f *finishes) handler(fail func(synckairos.Finish) error) synckairos.FinishHandler {
	return func(ctx context.Context, fin synckairos.Finish) error {
		f.mu.Lock()
		f.calls[fin.SessionID] = append(f.calls[fin.SessionID], fin)
		f.mu.Unlock()
		if fail != nil {
			if err := fail(fin); err != nil {
				return err
			}
		}
		f.ch <- fin
		return nil
	}
}

// wait returns the next n finishes completed.
func (f *finishes) wait(t *testing.T, n int) []synckairos.Finish {
	t.Helper()
	var got []synckairos.Finish
	timeout := time.After(waitLimit)
	for len(got) < n {
		select {
		case fin := <-f.ch:
			got = append(got, fin)
		case <-timeout:
			t.Fatalf("%d of %d finishes after %v", len(got), n, waitLimit)
		}
	}
	return got
}

func runFinisher(t *testing.T, m *synckairos.Manager, h synckairos.FinishHandler, cfg *synckairos.FinisherConfig) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.RunFinisher(ctx, h, cfg) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if err := <-done; !stopped && !errors.Is(err, context.Canceled) {
			t.Errorf("RunFinisher: %v", err)
		}
	})
	return func() { stopped = true; cancel() }
}

// Every way a session finishes gives the handler one finish, with the final
// state and its key; what is not a finish (an update of a finished session,
// a create in a final status, a delete) gives none.
func TestFinishHandlerRunsOncePerFinish(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, &synckairos.Config{QueueFinishes: true})
		ctx := context.Background()
		got := newFinishes()
		runFinisher(t, m, got.handler(nil), nil)
		runExpirer(t, m)
		for _, id := range []string{"completed", "cancelled", "expired", "mutated", "pending-cancelled", "deleted"} {
			mustCreate(t, m, &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
			if id != "pending-cancelled" {
				if _, err := m.StartSession(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
		}
		mustCreate(t, m, &synckairos.State{SessionID: "born-finished", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusCompleted,
			Participants: players(time.Minute, "a", "b")})
		if _, err := m.CompleteSession(ctx, "completed"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.CancelSession(ctx, "cancelled"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.CancelSession(ctx, "pending-cancelled"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.MutateSession(ctx, "mutated", func(s *synckairos.State) error {
			s.Metadata = map[string]string{"result": "1-0"}
			return s.Complete(clock.Now())
		}); err != nil {
			t.Fatal(err)
		}
		if err := m.DeleteSession(ctx, "deleted"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute) // "expired" flags
		fins := got.wait(t, 5)
		// An update of a finished session is no second finish.
		if _, err := m.MutateSession(ctx, "completed", func(s *synckairos.State) error {
			s.Metadata = map[string]string{"note": "annotated"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		status := map[string]synckairos.Status{}
		for _, f := range fins {
			stored := mustGet(t, m, f.SessionID)
			if f.Version != stored.Version && f.SessionID != "completed" || f.Life != stored.Life || f.State.Status != stored.Status ||
				f.Attempt != 1 || f.Delivery != 1 {
				t.Errorf("%s: %+v, stored %s v%d", f.SessionID, f, stored.Status, stored.Version)
			}
			if want := fmt.Sprintf("%d/%d/%s", f.Life, f.Version, f.SessionID); f.Key() != want || f.State.Version != f.Version {
				t.Errorf("%s: key %q, want %q; state v%d", f.SessionID, f.Key(), want, f.State.Version)
			}
			status[f.SessionID] = f.State.Status
		}
		want := map[string]synckairos.Status{"completed": synckairos.StatusCompleted, "cancelled": synckairos.StatusCancelled,
			"expired": synckairos.StatusExpired, "mutated": synckairos.StatusCompleted, "pending-cancelled": synckairos.StatusCancelled}
		if len(status) != len(want) {
			t.Fatalf("finishes of %v, want %v", status, want)
		}
		for id, st := range want {
			if status[id] != st {
				t.Errorf("%s finished %s, want %s", id, status[id], st)
			}
		}
		if s := status["expired"]; s == synckairos.StatusExpired {
			f := fins[0]
			for _, x := range fins {
				if x.SessionID == "expired" {
					f = x
				}
			}
			if tr := f.State.LastTransition; tr.Type != synckairos.EventSessionExpired || tr.From != "a" {
				t.Errorf("the flag's finish: %v", tr)
			}
		}
		// Nothing more comes: a sentinel finish arrives next.
		mustCreate(t, m, &synckairos.State{SessionID: "sentinel", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
		if _, err := m.CancelSession(ctx, "sentinel"); err != nil {
			t.Fatal(err)
		}
		if next := got.wait(t, 1)[0]; next.SessionID != "sentinel" {
			t.Fatalf("after the finishes: %s", next.SessionID)
		}
		got.mu.Lock()
		defer got.mu.Unlock()
		for id, calls := range got.calls {
			if len(calls) != 1 {
				t.Errorf("%s: %d calls", id, len(calls))
			}
		}
	})
}

// A handler error is retried with a backoff; after MaxAttempts the finish
// goes to OnGiveUp and is dropped.
func TestFinishHandlerRetriesThenGivesUp(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(&synckairos.Config{QueueFinishes: true})
		ctx := context.Background()
		got := newFinishes()
		gaveUp := make(chan synckairos.Finish, 10)
		boom := errors.New("payments down")
		runFinisher(t, m, got.handler(func(f synckairos.Finish) error {
			if f.SessionID == "never" || f.Attempt < 3 {
				return boom
			}
			return nil
		}), &synckairos.FinisherConfig{MaxAttempts: 4, Backoff: time.Millisecond, OnGiveUp: func(f synckairos.Finish, err error) {
			if !errors.Is(err, boom) {
				t.Errorf("gave up on %s with %v", f.SessionID, err)
			}
			gaveUp <- f
		}})
		for _, id := range []string{"flaky", "never"} {
			mustCreate(t, m, newState(id, 2))
			if _, err := m.CancelSession(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if f := got.wait(t, 1)[0]; f.SessionID != "flaky" || f.Attempt != 3 {
			t.Fatalf("the flaky finish: %+v", f)
		}
		select {
		case f := <-gaveUp:
			if f.SessionID != "never" || f.Attempt != 4 {
				t.Fatalf("gave up on %+v", f)
			}
		case <-time.After(waitLimit):
			t.Fatal("never gave up")
		}
		// Both are gone from the streams.
		waitFor(t, waitLimit, "the finish streams empty", func() bool {
			for _, stream := range finishStreams(t, m) {
				if n, _ := b.raw.Do(ctx, b.raw.B().Xlen().Key(stream).Build()).AsInt64(); n != 0 {
					return false
				}
			}
			return true
		})
	})
}

// A finisher that stops (or dies) with a finish in hand, its handler
// unreturned, loses it to another finisher after ClaimAfter; a handler that
// is at work longer than ClaimAfter keeps it.
func TestFinishTakenOverFromAStoppedFinisher(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(&synckairos.Config{QueueFinishes: true})
		ctx := context.Background()
		const claimAfter = 300 * time.Millisecond
		stuck := make(chan struct{})
		released := make(chan struct{})
		var once sync.Once
		stopA := runFinisher(t, m, func(ctx context.Context, f synckairos.Finish) error {
			once.Do(func() { close(stuck) })
			<-released // ignores ctx: a process frozen or dead
			return errors.New("too late")
		}, &synckairos.FinisherConfig{Consumer: "a", ClaimAfter: claimAfter})
		var release sync.Once
		t.Cleanup(func() { release.Do(func() { close(released) }) }) // before A's cleanup waits for it
		mustCreate(t, m, newState("held", 2))
		if _, err := m.CancelSession(ctx, "held"); err != nil {
			t.Fatal(err)
		}
		<-stuck
		stopA()
		if b.fake != nil {
			// The fake's Redis counts idle time by the fake clock.
			b.fake.Advance(claimAfter)
		}
		got := newFinishes()
		runFinisher(t, m, got.handler(nil), &synckairos.FinisherConfig{Consumer: "b", ClaimAfter: claimAfter})
		f := got.wait(t, 1)[0]
		release.Do(func() { close(released) })
		if f.SessionID != "held" || f.Delivery != 2 {
			t.Fatalf("taken over: %+v", f)
		}
	})
}

// A handler at work for 3 × ClaimAfter keeps its finish: no other finisher
// takes it over.
func TestFinishKeptByASlowHandler(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(&synckairos.Config{QueueFinishes: true})
		ctx := context.Background()
		const claimAfter = 600 * time.Millisecond
		got := newFinishes()
		handler := got.handler(func(f synckairos.Finish) error {
			time.Sleep(3 * claimAfter)
			return nil
		})
		runFinisher(t, m, handler, &synckairos.FinisherConfig{Consumer: "c", ClaimAfter: claimAfter})
		runFinisher(t, m, handler, &synckairos.FinisherConfig{Consumer: "d", ClaimAfter: claimAfter})
		mustCreate(t, m, newState("slow", 2))
		if _, err := m.CancelSession(ctx, "slow"); err != nil {
			t.Fatal(err)
		}
		got.wait(t, 1)
		time.Sleep(claimAfter) // give a wrongful takeover its chance
		got.mu.Lock()
		defer got.mu.Unlock()
		if calls := got.calls["slow"]; len(calls) != 1 {
			t.Fatalf("the slow finish: %d calls: %+v", len(calls), calls)
		}
	})
}

func finishStreams(t *testing.T, m *synckairos.Manager) []string {
	var s []string
	l := synckairos.KeysOf(m)
	for p := range l.Partitions() {
		s = append(s, l.Finished(p))
	}
	return s
}
