package synckairos_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// A move and its clock are one write: one version, one event and one
// outbox entry, carrying the host's change and the transition's facts.
func TestMoveCommittedWithItsClock(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, &synckairos.Config{Audit: true})
		ctx := context.Background()
		events := newCollector[synckairos.SessionEvent]()
		sub, err := b.newManager(nil).SubscribeToUpdates(ctx, events.add)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		mustCreate(t, m, &synckairos.State{SessionID: "move", Mode: synckairos.ModePerParticipant, Increment: 2 * time.Second,
			Participants: players(3*time.Minute, "white", "black"), Metadata: map[string]string{"board": "start"}})
		if _, err := m.StartSession(ctx, "move"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(7 * time.Second)
		calls := 0
		r, err := m.SwitchCycle(ctx, "move", &synckairos.SwitchOptions{From: "white", Turn: 1, Edit: func(s *synckairos.State) error {
			calls++
			if s.ActiveParticipantID != "black" || s.Turn != 2 {
				t.Errorf("Edit sees the switch not made: %s active, turn %d", s.ActiveParticipantID, s.Turn)
			}
			s.Metadata["board"] = "e4"
			s.Data = json.RawMessage(`{ "moves": [ "e4" ] }`)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		s := r.State
		tr := s.LastTransition
		if calls != 1 || s.Version != 3 || s.Metadata["board"] != "e4" || tr.Type != synckairos.EventCycleSwitched ||
			tr.From != "white" || tr.To != "black" || tr.Used != 7*time.Second || tr.Increment != 2*time.Second || tr.Version != 3 {
			t.Fatalf("switch with a move: v%d, metadata %v, transition %v", s.Version, s.Metadata, tr)
		}
		if string(s.Data) != `{"moves":["e4"]}` || string(mustGet(t, m, "move").Data) != string(s.Data) {
			t.Fatalf("the host's data: %s", s.Data)
		}
		if r.From != "white" || r.To != "black" || r.Used != 7*time.Second {
			t.Fatalf("SwitchResult %+v", r)
		}

		// An edit that fails refuses the switch, and writes nothing.
		refused := errors.New("illegal move")
		if _, err := m.SwitchCycle(ctx, "move", &synckairos.SwitchOptions{Edit: func(*synckairos.State) error { return refused }}); err != refused {
			t.Fatalf("switch with a refused edit: %v", err)
		}

		// Black flags: the expirer's write says so.
		runExpirer(t, m)
		clock.Advance(4 * time.Minute)
		expired := waitVersion(t, m, "move", 4)
		if tr := expired.LastTransition; tr.Type != synckairos.EventSessionExpired || tr.From != "black" ||
			!slices.Equal(tr.Expired, []string{"black"}) || tr.Used != 3*time.Minute || !tr.At.Equal(*expired.SessionCompletedAt) {
			t.Fatalf("the flag: %v", tr)
		}

		// Subscribers hear each change once, with its type and facts.
		got := events.waitFor(t, 4)
		var types []string
		for _, ev := range got {
			types = append(types, ev.Transition.Type)
			if ev.Transition.Version != ev.Version {
				t.Errorf("event v%d carries the transition of v%d", ev.Version, ev.Transition.Version)
			}
		}
		want := []string{synckairos.EventSessionCreated, synckairos.EventSessionStarted, synckairos.EventCycleSwitched, synckairos.EventSessionExpired}
		if !slices.Equal(types, want) {
			t.Fatalf("event types %q, want %q", types, want)
		}
		if ev := got[2]; ev.Transition.Used != 7*time.Second || ev.State.Metadata["board"] != "e4" {
			t.Fatalf("the move's event: %v, metadata %v", ev.Transition, ev.State.Metadata)
		}

		// The outbox has one entry per version, typed as its transition.
		layout := b.keys(t)
		entries, err := b.raw.Do(ctx, b.raw.B().Xrange().Key(layout.Outbox(layout.Partition("move"))).Start("-").End("+").Build()).AsXRange()
		if err != nil {
			t.Fatal(err)
		}
		types = types[:0]
		for _, e := range entries {
			types = append(types, e.FieldValues["type"])
		}
		if !slices.Equal(types, want) {
			t.Fatalf("outbox types %q, want %q", types, want)
		}

		// A deletion's event names its type too.
		if err := m.DeleteSession(ctx, "move"); err != nil {
			t.Fatal(err)
		}
		if ev := events.waitFor(t, 5)[4]; ev.Kind != synckairos.ChangeDeleted || ev.Transition.Type != synckairos.EventSessionDeleted {
			t.Fatalf("deletion event %+v", ev)
		}
	})
}

// The State's transitions are pure: a MutateSession callback commits one
// with the host's change, and the write carries the transition.
func TestTransitionsInsideMutateSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "resign", Mode: synckairos.ModePerParticipant,
			Participants: players(time.Minute, "white", "black")})
		if _, err := m.StartSession(ctx, "resign"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(1500 * time.Millisecond)
		s, err := m.MutateSession(ctx, "resign", func(s *synckairos.State) error {
			now, err := m.Now(ctx)
			if err != nil {
				return err
			}
			if err := s.Complete(now); err != nil {
				return err
			}
			s.Metadata = map[string]string{"result": "0-1"}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if tr := s.LastTransition; s.Version != 3 || s.Status != synckairos.StatusCompleted || tr.Type != synckairos.EventSessionCompleted ||
			tr.Used != 1500*time.Millisecond || tr.From != "white" || s.Metadata["result"] != "0-1" {
			t.Fatalf("completed with a result: v%d %s %v %v", s.Version, s.Status, tr, s.Metadata)
		}
		// A plain change is an update.
		s, err = m.MutateSession(ctx, "resign", func(s *synckairos.State) error { s.Metadata["note"] = "gg"; return nil })
		if err != nil || s.LastTransition.Type != synckairos.EventSessionUpdated || s.LastTransition.Version != 4 {
			t.Fatalf("plain update: %v, %v", s.LastTransition, err)
		}
		// UpdateSession commits a transition made on the state it is given.
		mustCreate(t, m, &synckairos.State{SessionID: "cas", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
		read := mustGet(t, m, "cas")
		if err := read.Start(clock.Now()); err != nil {
			t.Fatal(err)
		}
		s, err = m.UpdateSession(ctx, read)
		if err != nil || s.LastTransition.Type != synckairos.EventSessionStarted || s.Status != synckairos.StatusRunning {
			t.Fatalf("UpdateSession of a started state: %v, %v", s, err)
		}
	})
}
