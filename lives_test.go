package synckairos_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// Every create of an ID starts a new life, numbered above the last; a write
// based on an earlier life is refused, even at the same version.
func TestLivesOfAReusedID(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		events := newCollector[synckairos.SessionEvent]()
		sub, err := b.newManager(nil).SubscribeToUpdates(ctx, events.add)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var lives []int64
		var stale *synckairos.State
		for i := range 3 {
			s := mustCreate(t, m, &synckairos.State{SessionID: "table-7", Mode: synckairos.ModePerParticipant,
				Participants: players(time.Minute, "a", "b")})
			if got := mustGet(t, m, "table-7"); got.Life != s.Life || s.Life == 0 {
				t.Fatalf("life %d created, %d stored", s.Life, got.Life)
			}
			if len(lives) > 0 && s.Life <= lives[len(lives)-1] {
				t.Fatalf("life %d after %d", s.Life, lives[len(lives)-1])
			}
			lives = append(lives, s.Life)
			if i == 0 {
				stale = s
			}
			if i < 2 {
				if err := m.DeleteSession(ctx, "table-7"); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The first life's state at version 1, over the third life's version 1.
		next := stale.Clone()
		next.Metadata = map[string]string{"from": "the first life"}
		_, err = m.UpdateSession(ctx, next)
		var conflict *synckairos.ConflictError
		if !errors.As(err, &conflict) || conflict.Current.Life != lives[2] || conflict.Life != lives[0] {
			t.Fatalf("update of an earlier life: %v", err)
		}
		if got := mustGet(t, m, "table-7"); got.Version != 1 || got.Metadata != nil {
			t.Fatalf("an earlier life's update wrote: v%d %v", got.Version, got.Metadata)
		}
		// Every event names its life; deletions too.
		got := events.waitFor(t, 5)
		want := []int64{lives[0], lives[0], lives[1], lives[1], lives[2]}
		for i, ev := range got {
			if ev.Life != want[i] || (ev.State != nil && ev.State.Life != ev.Life) {
				t.Errorf("event %d (%s v%d): life %d, want %d", i, ev.Kind, ev.Version, ev.Life, want[i])
			}
		}
	})
}
