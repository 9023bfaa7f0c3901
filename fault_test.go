package synckairos_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/testenv"
	"github.com/synckairos/synckairos/synckairostest"
)

// Killing the subscriber's connection while updates flow: the subscription
// reconnects by itself, says Resync, and then delivers every later update.
// Real Redis only: miniredis has no CLIENT KILL.
func TestResyncAfterKilledConnection(t *testing.T) {
	b := newRedisBackend(t)
	subscriber, writer := b.newManager(nil), b.newManager(nil)
	ctx := context.Background()
	events := newCollector[synckairos.SessionEvent]()
	sub, err := subscriber.SubscribeToUpdates(ctx, events.add)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	mustCreate(t, writer, newState("flow", 1))
	writeCtx, stopWriting := context.WithCancel(ctx)
	written := make(chan int64, 1)
	go func() {
		var last int64
		defer func() { written <- last }()
		for writeCtx.Err() == nil {
			s, err := writer.MutateSession(writeCtx, "flow", func(s *synckairos.State) error {
				s.Participants[0].CycleCount++
				return nil
			})
			if err == nil {
				last = s.Version
			}
		}
	}()
	defer stopWriting()

	events.waitFor(t, 20)
	name := synckairos.SubscriberConnName(subscriber)
	if name == "" {
		t.Fatal("no subscriber connection")
	}
	// The connection counts as a pub/sub client, so CLIENT KILL TYPE pubsub
	// would reach it too; killing it by the ID of its name spares other
	// tests' subscribers.
	list, err := b.raw.Do(ctx, b.raw.B().ClientList().TypePubsub().Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") {
			_, rest, _ := strings.Cut(line, "id=") // (RESP3 says "txt:" first)
			idField, _, _ := strings.Cut(rest, " ")
			id, _ = strconv.ParseInt(idField, 10, 64)
		}
	}
	if id == 0 {
		t.Fatalf("connection %s is not among the pub/sub clients:\n%s", name, list)
	}
	if err := b.raw.Do(ctx, b.raw.B().ClientKill().Id(id).Build()).Error(); err != nil {
		t.Fatal(err)
	}

	// Wait for the resync, then for 20 updates after it.
	resyncAt := -1
	for n := 1; resyncAt < 0 || n <= resyncAt+21; n++ {
		got := events.waitFor(t, n)
		if resyncAt < 0 && got[n-1].Kind == synckairos.ChangeResync {
			resyncAt = n - 1
		}
	}
	stopWriting()
	last := <-written
	var got []synckairos.SessionEvent
	for n := resyncAt + 1; len(got) == 0 || got[len(got)-1].Version < last; n++ {
		got = events.waitFor(t, n)
	}
	after := got[resyncAt+1:]
	for i := 1; i < len(after); i++ {
		if after[i].Kind != synckairos.ChangeUpdated || after[i].Version != after[i-1].Version+1 {
			t.Fatalf("after the resync: %s v%d follows v%d", after[i].Kind, after[i].Version, after[i-1].Version)
		}
	}
	if name2 := synckairos.SubscriberConnName(subscriber); name2 == name || name2 == "" {
		t.Errorf("subscriber connection %q after killing %q", name2, name)
	}
	t.Logf("resync after %d events; %d contiguous updates after it, up to v%d", resyncAt, len(after), last)
}

// A subscription that cannot reach Redis fails, rather than waiting forever.
func TestSubscribeWithoutServer(t *testing.T) {
	srv, err := synckairostest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	client, err := srv.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	m, err := synckairos.New(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv.Close()
	done := make(chan error, 1)
	go func() {
		_, err := m.SubscribeToUpdates(context.Background(), func(synckairos.SessionEvent) {})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("subscribed without a server")
		}
	case <-time.After(waitLimit):
		t.Fatal("SubscribeToUpdates without a server did not return")
	}
}

// A subscription's goroutines, and those of its connection, end with it,
// while the host's client stays open.
func TestSubscriptionGoroutinesEnd(t *testing.T) {
	for _, newBackend := range []func(*testing.T) *backend{newFakeBackend, newRedisBackend} {
		b := newBackend(t)
		t.Run(b.name, func(t *testing.T) {
			m := b.newManager(nil)
			ctx := context.Background()
			mustCreate(t, m, newState("leak", 1)) // warms the client up
			before := goleak.IgnoreCurrent()

			events := newCollector[synckairos.SessionEvent]()
			s1, err := m.SubscribeToUpdates(ctx, events.add)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := m.SubscribeToSessionBroadcasts(ctx, "leak", func(synckairos.Broadcast) {})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.DeleteSession(ctx, "leak"); err != nil {
				t.Fatal(err)
			}
			events.waitFor(t, 1)
			s1.Close()
			s2.Close()
			testenv.NoLeaks(t, before)
		})
	}
}
