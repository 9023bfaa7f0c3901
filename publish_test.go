package synckairos_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
)

// published is a change announcement as the write script sends it.
type published struct {
	Kind      string            `json:"kind"`
	SessionID string            `json:"session_id"`
	Version   int64             `json:"version"`
	State     *synckairos.State `json:"state"`
}

// Every committed write is published on <prefix>session-updates (on Redis
// Cluster: on its partition's sharded channel) by the same script that writes
// it; refused writes publish nothing.
func TestWritesArePublished(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		messages := subscribe(t, b, b.updatesChannel(t, "pub"))

		created := mustCreate(t, m, newState("pub", 2))
		if _, err := m.CreateSession(ctx, newState("pub", 2)); err == nil {
			t.Fatal("duplicate create succeeded")
		}
		next := created.Clone()
		next.Status = synckairos.StatusRunning
		next.ActiveParticipantID = "p0"
		started := next.UpdatedAt
		next.CycleStartedAt, next.SessionStartedAt = &started, &started
		updated, err := m.UpdateSession(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.UpdateSession(ctx, next); err == nil {
			t.Fatal("stale update succeeded")
		}
		if err := m.DeleteSession(ctx, "pub"); err != nil {
			t.Fatal(err)
		}
		want := []published{
			{"created", "pub", 1, created},
			{"updated", "pub", 2, updated},
			{"deleted", "pub", 3, nil},
		}
		for i, w := range want {
			select {
			case raw := <-messages:
				var got published
				if err := json.Unmarshal([]byte(raw), &got); err != nil {
					t.Fatalf("message %d %q: %v", i, raw, err)
				}
				if diff := cmp.Diff(w, got); diff != "" {
					t.Errorf("message %d (-want +got):\n%s", i, diff)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("message %d (%s) never arrived", i, w.Kind)
			}
		}
		select {
		case raw := <-messages:
			t.Errorf("unexpected message %s", raw)
		case <-time.After(50 * time.Millisecond):
		}
	})
}

// subscribe returns the messages of channel, once Redis has confirmed the
// subscription. On a cluster the channel is a sharded one.
func subscribe(t *testing.T, b *backend, channel string) <-chan string {
	t.Helper()
	// A client of its own: in RESP2 a subscribed connection takes no commands.
	var client rueidis.Client
	if b.fake != nil {
		c, err := b.fake.Server().NewClient()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		client = c
	} else {
		client = newClientAt(t, b.url)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cmd := client.B().Subscribe().Channel(channel).Build()
		if b.name == "cluster" {
			cmd = client.B().Ssubscribe().Channel(channel).Build()
		}
		client.Receive(ctx, cmd, func(msg rueidis.PubSubMessage) {
			out <- msg.Message
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	// PUBSUB NUMSUB counts one node's subscribers: ask every node.
	for deadline := time.Now().Add(5 * time.Second); ; {
		subscribers := int64(0)
		for _, node := range b.raw.Nodes() {
			numsub := node.B().PubsubNumsub().Channel(channel).Build()
			if b.name == "cluster" {
				numsub = node.B().PubsubShardnumsub().Channel(channel).Build()
			}
			if n, err := node.Do(ctx, numsub).AsIntMap(); err == nil {
				subscribers += n[channel]
			}
		}
		if subscribers == 1 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription to %s not confirmed: %d subscribers", channel, subscribers)
		}
		time.Sleep(time.Millisecond)
	}
}
