package synckairos_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/synckairos/synckairos"
)

// TestMessageFormat3 checks Config.MessageFormat 3: an update's message is
// the state stored, byte for byte, and a Manager of the default format reads
// it, its subscription's events and its reads the same as format 2's; writers
// of both formats take turns on one session.
func TestMessageFormat3(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		flat, plain := b.newManager(&synckairos.Config{MessageFormat: 3}), b.newManager(nil)
		reader := b.newManager(nil)
		raw := subscribe(t, b, b.updatesChannel(t, "f3"))
		events := newCollector[synckairos.SessionEvent]()
		sub, err := reader.SubscribeToUpdates(ctx, events.add)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()

		s := newState("f3", 2)
		s.Data = []byte(`{"moves":["e4"],"note":"é \"q\""}`)
		created := mustCreate(t, flat, s)
		started, err := flat.StartSession(ctx, "f3")
		if err != nil {
			t.Fatal(err)
		}
		switched, err := plain.SwitchCycle(ctx, "f3", nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err := flat.SwitchCycle(ctx, "f3", &synckairos.SwitchOptions{Current: switched.State})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := b.raw.Do(ctx, b.raw.B().Hget().Key(b.sessionKey(t, "f3")).Field("s").Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		if err := flat.DeleteSession(ctx, "f3"); err != nil {
			t.Fatal(err)
		}

		// On the wire: format 2 around the create, the other writer's switch
		// and the delete; the stored state itself for the flat writer's updates.
		var messages []string
		for range 5 {
			select {
			case m := <-raw:
				messages = append(messages, m)
			case <-time.After(waitLimit):
				t.Fatalf("%d of 5 messages", len(messages))
			}
		}
		for i, flatOne := range []bool{false, true, false, true, false} {
			if got := strings.HasPrefix(messages[i], `{"format":3,"session_id":"f3",`); got != flatOne {
				t.Errorf("message %d in format 3: %v, want %v: %.80s", i, got, flatOne, messages[i])
			}
			if !flatOne && !strings.HasPrefix(messages[i], `{"format":2,`) {
				t.Errorf("message %d: %.80s, want format 2", i, messages[i])
			}
		}
		if messages[3] != stored {
			t.Errorf("the flat update's message is not the stored state:\n%s\n%s", messages[3], stored)
		}

		// Read: the same states whoever wrote them, in whichever format.
		want := []synckairos.SessionEvent{
			{Kind: synckairos.ChangeCreated, SessionID: "f3", Life: created.Life, Version: 1, State: created, Transition: created.LastTransition},
			{Kind: synckairos.ChangeUpdated, SessionID: "f3", Life: created.Life, Version: 2, State: started, Transition: started.LastTransition},
			{Kind: synckairos.ChangeUpdated, SessionID: "f3", Life: created.Life, Version: 3, State: switched.State, Transition: switched.State.LastTransition},
			{Kind: synckairos.ChangeUpdated, SessionID: "f3", Life: created.Life, Version: 4, State: again.State, Transition: again.State.LastTransition},
			{Kind: synckairos.ChangeDeleted, SessionID: "f3", Life: created.Life, Version: 5,
				Transition: &synckairos.Transition{Type: synckairos.EventSessionDeleted, Version: 5}},
		}
		if diff := cmp.Diff(want, events.waitFor(t, 5)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		var back synckairos.State
		if err := back.UnmarshalJSON([]byte(stored)); err != nil {
			t.Fatal(err)
		}
		back.Version = again.State.Version
		if diff := cmp.Diff(again.State, &back); diff != "" {
			t.Errorf("the stored state in format 3 read back (-written +read):\n%s", diff)
		}
	})
}
