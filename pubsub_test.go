package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/synckairos/synckairos"
)

const waitLimit = 10 * time.Second

// collector gathers what a subscription delivers.
type collector[T any] struct {
	mu    sync.Mutex
	items []T
	added chan struct{}
}

func newCollector[T any]() *collector[T] {
	return &collector[T]{added: make(chan struct{}, 1)}
}

func (c *collector[T]) add(v T) {
	c.mu.Lock()
	c.items = append(c.items, v)
	c.mu.Unlock()
	select {
	case c.added <- struct{}{}:
	default:
	}
}

// waitFor waits until n items have arrived and returns them all.
func (c *collector[T]) waitFor(t *testing.T, n int) []T {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		c.mu.Lock()
		if len(c.items) >= n {
			items := append([]T(nil), c.items...)
			c.mu.Unlock()
			return items
		}
		got := len(c.items)
		c.mu.Unlock()
		select {
		case <-c.added:
		case <-deadline:
			t.Fatalf("%d of %d items arrived within %v", got, n, waitLimit)
		}
	}
}

// settle waits until nothing has arrived for a while.
func (c *collector[T]) settle() {
	for n := -1; ; {
		c.mu.Lock()
		now := len(c.items)
		c.mu.Unlock()
		if now == n {
			return
		}
		n = now
		time.Sleep(100 * time.Millisecond)
	}
}

// quiet asserts that nothing more than n items arrive within a short while.
func (c *collector[T]) quiet(t *testing.T, n int) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) != n {
		t.Fatalf("%d items arrived, want %d: %+v", len(c.items), n, c.items[n:])
	}
}

func TestSubscribeToUpdatesAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		a, other := b.newManager(nil), b.newManager(nil)
		ctx := context.Background()
		events := newCollector[synckairos.SessionEvent]()
		sub, err := other.SubscribeToUpdates(ctx, events.add)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()

		created := mustCreate(t, a, newState("ev", 2))
		next := created.Clone()
		next.Status = synckairos.StatusRunning
		next.ActiveParticipantID = "p0"
		started := next.UpdatedAt
		next.CycleStartedAt, next.SessionStartedAt = &started, &started
		updated, err := a.UpdateSession(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.UpdateSession(ctx, next); err == nil {
			t.Fatal("stale update succeeded")
		}
		if err := a.DeleteSession(ctx, "ev"); err != nil {
			t.Fatal(err)
		}
		want := []synckairos.SessionEvent{
			{Kind: synckairos.ChangeCreated, SessionID: "ev", Life: created.Life, Version: 1, State: created, Transition: created.LastTransition},
			{Kind: synckairos.ChangeUpdated, SessionID: "ev", Life: created.Life, Version: 2, State: updated, Transition: updated.LastTransition},
			{Kind: synckairos.ChangeDeleted, SessionID: "ev", Life: created.Life, Version: 3,
				Transition: &synckairos.Transition{Type: synckairos.EventSessionDeleted, Version: 3}},
		}
		if diff := cmp.Diff(want, events.waitFor(t, 3)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		events.quiet(t, 3)
	})
}

func TestUpdatesArriveInOrder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		a, other := b.newManager(nil), b.newManager(nil)
		ctx := context.Background()
		events := newCollector[synckairos.SessionEvent]()
		sub, err := other.SubscribeToUpdates(ctx, events.add)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		const sessions, updates = 5, 40
		var wg sync.WaitGroup
		for i := range sessions {
			id := fmt.Sprint("o", i)
			mustCreate(t, a, newState(id, 1))
			wg.Go(func() {
				for range updates {
					if _, err := a.MutateSession(ctx, id, func(s *synckairos.State) error {
						s.Participants[0].CycleCount++
						return nil
					}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		last := map[string]int64{}
		for _, ev := range events.waitFor(t, sessions*(updates+1)) {
			if ev.Kind == synckairos.ChangeResync {
				t.Fatal("unexpected resync")
			}
			if ev.Version != last[ev.SessionID]+1 {
				t.Fatalf("%s: version %d after %d", ev.SessionID, ev.Version, last[ev.SessionID])
			}
			if ev.State.Participants[0].CycleCount != int(ev.Version-1) {
				t.Fatalf("%s v%d carries count %d", ev.SessionID, ev.Version, ev.State.Participants[0].CycleCount)
			}
			last[ev.SessionID] = ev.Version
		}
	})
}

func TestBroadcasts(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		a, other := b.newManager(nil), b.newManager(nil)
		ctx := context.Background()
		all := newCollector[synckairos.Broadcast]()
		one := newCollector[synckairos.Broadcast]()
		subAll, err := other.SubscribeToBroadcasts(ctx, all.add)
		if err != nil {
			t.Fatal(err)
		}
		defer subAll.Close()
		subOne, err := other.SubscribeToSessionBroadcasts(ctx, "room-1", one.add)
		if err != nil {
			t.Fatal(err)
		}
		defer subOne.Close()

		binary := []byte{0, 1, 2, 0xff, '\n'}
		for _, m := range []struct {
			id      string
			payload []byte
		}{{"room-1", []byte("hello")}, {"room-2", []byte("other room")}, {"room-1", binary}, {"room-*", []byte("star")}} {
			if err := a.BroadcastToSession(ctx, m.id, m.payload); err != nil {
				t.Fatal(err)
			}
		}
		wantAll := []synckairos.Broadcast{
			{SessionID: "room-1", Payload: []byte("hello")},
			{SessionID: "room-2", Payload: []byte("other room")},
			{SessionID: "room-1", Payload: binary},
			{SessionID: "room-*", Payload: []byte("star")},
		}
		// Each session's broadcasts arrive in order; on Redis Cluster those of
		// different sessions, which leave from different nodes, need not.
		gotAll := all.waitFor(t, 4)
		bySession := func(bs []synckairos.Broadcast) map[string][]synckairos.Broadcast {
			m := map[string][]synckairos.Broadcast{}
			for _, b := range bs {
				m[b.SessionID] = append(m[b.SessionID], b)
			}
			return m
		}
		if diff := cmp.Diff(bySession(wantAll), bySession(gotAll)); diff != "" {
			t.Errorf("pattern subscriber, by session (-want +got):\n%s", diff)
		}
		if b.name != "cluster" {
			if diff := cmp.Diff(wantAll, gotAll); diff != "" {
				t.Errorf("pattern subscriber (-want +got):\n%s", diff)
			}
		}
		wantOne := []synckairos.Broadcast{wantAll[0], wantAll[2]}
		if diff := cmp.Diff(wantOne, one.waitFor(t, 2)); diff != "" {
			t.Errorf("session subscriber (-want +got):\n%s", diff)
		}
		one.quiet(t, 2)

		if err := a.BroadcastToSession(ctx, "", []byte("x")); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Errorf("broadcast without session: %v", err)
		}
		if err := a.BroadcastToSession(ctx, "r", make([]byte, synckairos.MaxBroadcastBytes+1)); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Errorf("oversized broadcast: %v", err)
		}
	})
}

// Two subscriptions to one channel on one Manager are independent: closing
// one leaves the other whole, and neither sees a false resync.
func TestSubscriptionsToOneChannelAreIndependent(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		first, second := newCollector[synckairos.SessionEvent](), newCollector[synckairos.SessionEvent]()
		s1, err := m.SubscribeToUpdates(ctx, first.add)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := m.SubscribeToUpdates(ctx, second.add)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		mustCreate(t, m, newState("ind", 1))
		first.waitFor(t, 1)
		second.waitFor(t, 1)
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s1.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		// A third subscriber comes and goes.
		s3, err := m.SubscribeToUpdates(ctx, func(synckairos.SessionEvent) {})
		if err != nil {
			t.Fatal(err)
		}
		s3.Close()
		if err := m.DeleteSession(ctx, "ind"); err != nil {
			t.Fatal(err)
		}
		got := second.waitFor(t, 2)
		if got[1].Kind != synckairos.ChangeDeleted {
			t.Fatalf("second subscriber got %+v", got)
		}
		second.quiet(t, 2)
		first.quiet(t, 1)
	})
}

// A callback that blocks stalls neither the client nor other subscribers; when
// it falls more than the buffer behind, it loses the backlog and gets one
// resync, then every later event.
func TestSlowSubscriberGetsResync(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		const buffer = 4
		m := b.newManager(&synckairos.Config{SubscriptionBuffer: buffer})
		ctx := context.Background()
		release := make(chan struct{})
		var releaseOnce sync.Once
		unblock := func() { releaseOnce.Do(func() { close(release) }) }
		defer unblock() // before sub.Close, which waits for the callback
		slow := newCollector[synckairos.SessionEvent]()
		var once sync.Once
		sub, err := m.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
			once.Do(func() { <-release }) // blocks on the first event
			slow.add(ev)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		// Another instance, with the default buffer, watches the same writes.
		fast := newCollector[synckairos.SessionEvent]()
		fastSub, err := b.newManager(nil).SubscribeToUpdates(ctx, fast.add)
		if err != nil {
			t.Fatal(err)
		}
		defer fastSub.Close()

		// While the slow callback is blocked, writes on the same client go
		// through, and the other subscriber sees every one.
		s := mustCreate(t, m, newState("slow", 1))
		const writes = 50
		for range writes {
			var err error
			if s, err = m.UpdateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		fast.waitFor(t, writes+1)
		unblock()

		// Let the slow subscriber work off what it kept, then write once
		// more: that last event arrives like any other.
		slow.settle()
		if s, err = m.UpdateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		var got []synckairos.SessionEvent
		for n := 1; len(got) == 0 || got[len(got)-1].Version != s.Version; n++ {
			got = slow.waitFor(t, n)
		}
		// Each overflow cost the backlog and gave a resync instead: never a
		// silent gap. How many overflows the burst caused depends on
		// scheduling, but it caused at least one.
		resyncs := 0
		for i, ev := range got {
			if ev.Kind == synckairos.ChangeResync {
				resyncs++
				continue
			}
			if i > 0 && got[i-1].Kind != synckairos.ChangeResync && ev.Version != got[i-1].Version+1 {
				t.Fatalf("gap without resync: v%d after v%d", ev.Version, got[i-1].Version)
			}
		}
		if resyncs == 0 {
			t.Fatalf("%d events and no resync for a buffer of %d", len(got), buffer)
		}
	})
}

// Junk on the updates channel is skipped; the subscription goes on.
func TestMalformedMessagesAreSkipped(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		events := newCollector[synckairos.SessionEvent]()
		sub, err := m.SubscribeToUpdates(ctx, events.add)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		for _, junk := range []string{"junk", `{"kind":"updated"}`, `{"kind":"exploded","session_id":"x","version":1}`,
			`{"kind":"updated","session_id":"x","version":2,"state":{"session_id":"y"}}`} {
			publish := b.raw.B().Publish().Channel(b.updatesChannel(t, "x")).Message(junk).Build()
			if b.name == "cluster" {
				publish = b.raw.B().Spublish().Channel(b.updatesChannel(t, "x")).Message(junk).Build()
			}
			if err := b.raw.Do(ctx, publish).Error(); err != nil {
				t.Fatal(err)
			}
		}
		mustCreate(t, m, newState("after-junk", 1))
		got := events.waitFor(t, 1)
		if got[0].Kind != synckairos.ChangeCreated || got[0].SessionID != "after-junk" {
			t.Fatalf("first event %+v", got[0])
		}
		events.quiet(t, 1)
	})
}

func TestSubscriptionEnds(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx, cancel := context.WithCancel(context.Background())
		sub, err := m.SubscribeToUpdates(ctx, func(synckairos.SessionEvent) {})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case <-sub.Done():
		case <-time.After(waitLimit):
			t.Fatal("subscription outlived its context")
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}

		// A cancelled context refuses the subscription.
		if _, err := m.SubscribeToUpdates(ctx, func(synckairos.SessionEvent) {}); !errors.Is(err, context.Canceled) {
			t.Fatalf("subscribe with a cancelled context: %v", err)
		}

		// Manager.Close ends the subscriptions left open.
		open, err := m.SubscribeToSessionBroadcasts(context.Background(), "x", func(synckairos.Broadcast) {})
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		select {
		case <-open.Done():
		default:
			t.Fatal("Manager.Close left a subscription running")
		}
		if _, err := m.SubscribeToUpdates(context.Background(), func(synckairos.SessionEvent) {}); !errors.Is(err, synckairos.ErrClosed) {
			t.Fatalf("subscribe after Close: %v", err)
		}
	})
}

// Subscriptions to one channel that come and go while another stays: the
// one that stays receives every message and never a false resync; each one
// that comes receives what is published after it returns.
func TestSubscriptionChurn(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		steady := newCollector[synckairos.Broadcast]()
		s, err := m.SubscribeToSessionBroadcasts(ctx, "churn", steady.add)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var wg sync.WaitGroup
		for g := range 3 {
			wg.Go(func() {
				for i := range 15 {
					// Room for every mark of the test (45), so that the callback
					// never blocks and Close never waits for it.
					got := make(chan []byte, 64)
					sub, err := m.SubscribeToSessionBroadcasts(ctx, "churn", func(bc synckairos.Broadcast) {
						select {
						case got <- bc.Payload:
						default:
							t.Error("more broadcasts than the test sends")
						}
					})
					if err != nil {
						t.Error(err)
						return
					}
					mark := fmt.Sprintf("g%d-%d", g, i)
					if err := m.BroadcastToSession(ctx, "churn", []byte(mark)); err != nil {
						t.Error(err)
					}
					// Our own mark arrives (others' may come first).
					for seen := false; !seen; {
						select {
						case p := <-got:
							seen = string(p) == mark
						case <-time.After(waitLimit):
							t.Errorf("%s never arrived", mark)
							seen = true
						}
					}
					sub.Close()
				}
			})
		}
		wg.Wait()
		for _, bc := range steady.waitFor(t, 45) {
			if bc.Resync {
				t.Fatal("the steady subscriber got a resync")
			}
		}
		steady.quiet(t, 45)
	})
}
