package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
)

// The trail read back: the lives of an ID, a life's history page by page in
// either order with each move's facts, and the state at a version and at a
// time, equal to what the Manager returned then.
func TestReadingTheTrail(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	p.startRelay(t, p.pool, nil)
	ctx := context.Background()
	m := p.m
	if _, err := m.CreateSession(ctx, newState("game", 2)); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteSession(ctx, "game"); err != nil { // a first, short life
		t.Fatal(err)
	}
	first, err := m.CreateSession(ctx, newState("game", 2))
	if err != nil {
		t.Fatal(err)
	}
	states := []*synckairos.State{first}
	s, err := m.StartSession(ctx, "game")
	if err != nil {
		t.Fatal(err)
	}
	states = append(states, s)
	for i := range 5 {
		time.Sleep(2 * time.Millisecond) // a move takes time
		r, err := m.SwitchCycle(ctx, "game", &synckairos.SwitchOptions{From: s.ActiveParticipantID, Turn: s.Turn,
			Edit: func(s *synckairos.State) error { s.Metadata["move"] = string(rune('a' + i)); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		s = r.State
		states = append(states, s)
	}
	if s, err = m.CompleteSession(ctx, "game"); err != nil {
		t.Fatal(err)
	}
	states = append(states, s)
	p.waitRows(t, 2+len(states))

	r := audit.NewReader(p.pool)
	lives, err := r.Lives(ctx, "game")
	if err != nil {
		t.Fatal(err)
	}
	if len(lives) != 2 || !lives[0].Deleted || lives[0].LastVersion != 2 || lives[1].Life != first.Life ||
		lives[1].Deleted || lives[1].LastVersion != int64(len(states)) || lives[1].Events != int64(len(states)) {
		t.Fatalf("lives: %+v", lives)
	}

	// Oldest first, three at a time.
	var got []audit.Record
	opts := &audit.HistoryOptions{Limit: 3}
	for pages := 0; opts != nil; pages++ {
		page, err := r.History(ctx, "game", opts)
		if err != nil {
			t.Fatal(err)
		}
		if page.Life != first.Life || pages > 3 {
			t.Fatalf("page of life %d, page %d", page.Life, pages)
		}
		got = append(got, page.Records...)
		opts = page.Next
	}
	if len(got) != len(states) {
		t.Fatalf("%d records, want %d", len(got), len(states))
	}
	for i, rec := range got {
		want := states[i]
		if rec.Version != want.Version || rec.Type != want.LastTransition.Type ||
			!cmp.Equal(rec.Transition, want.LastTransition) || !cmp.Equal(rec.State, want) {
			t.Errorf("record %d: %+v\nwant the state %+v (diff %s)", i, rec, want, cmp.Diff(want, rec.State))
		}
	}
	if sw := got[3].Transition; sw.Type != synckairos.EventCycleSwitched || sw.From != "p1" || sw.To != "p0" || sw.Used <= 0 || sw.Increment != 2*time.Second {
		t.Errorf("the second move's facts: %v", sw)
	}

	// Newest first, the facts alone.
	page, err := r.History(ctx, "game", &audit.HistoryOptions{NewestFirst: true, WithoutStates: true, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].Version != int64(len(states)) || page.Records[0].State != nil ||
		page.Records[0].Transition.Type != synckairos.EventSessionCompleted || page.Next == nil || page.Next.After != page.Records[1].Version {
		t.Fatalf("newest first: %+v, next %+v", page.Records, page.Next)
	}
	older, err := r.History(ctx, "game", page.Next)
	if err != nil || older.Records[0].Version != page.Records[1].Version-1 {
		t.Fatalf("the next page, newest first: %+v, %v", older, err)
	}
	// The earlier life, by its number.
	early, err := r.History(ctx, "game", &audit.HistoryOptions{Life: lives[0].Life})
	if err != nil || len(early.Records) != 2 || early.Records[1].Type != synckairos.EventSessionDeleted || early.Records[1].State != nil {
		t.Fatalf("the first life: %+v, %v", early, err)
	}

	// States at a version and at a time.
	at3, err := r.StateAt(ctx, "game", 0, 3)
	if err != nil || !cmp.Equal(at3, states[2]) {
		t.Fatalf("state at v3: %v (diff %s)", err, cmp.Diff(states[2], at3))
	}
	newest, err := r.StateAt(ctx, "game", 0, 0)
	if err != nil || newest.Version != int64(len(states)) {
		t.Fatalf("newest state: %v, %v", newest, err)
	}
	when := states[4].LastTransition.At
	atTime, err := r.StateAtTime(ctx, "game", 0, when)
	if err != nil || atTime.Version != states[4].Version {
		t.Fatalf("state at %v: %v, %v", when, atTime, err)
	}
	if _, err := r.StateAt(ctx, "game", lives[0].Life, 2); !errors.Is(err, audit.ErrNoState) {
		t.Fatalf("state at a deletion: %v", err)
	}
	if _, err := r.History(ctx, "nobody", nil); !errors.Is(err, synckairos.ErrSessionNotFound) {
		t.Fatalf("history of an unknown ID: %v", err)
	}
	if _, err := r.History(ctx, "game", &audit.HistoryOptions{Limit: audit.MaxHistoryLimit + 1}); err == nil {
		t.Fatal("a page over the limit was served")
	}
}
