package skhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/skhttp"
	"github.com/synckairos/synckairos/synckairostest"
)

// A Feed gives what the stream sends, for another transport: the current
// view, one per change, nothing the watcher has when resuming, "deleted",
// then io.EOF; a Next that times out loses nothing.
func TestFeed(t *testing.T) {
	t.Parallel()
	m, _ := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	if _, err := skhttp.OpenFeed(ctx, m, "nope", "", 0); !errors.Is(err, synckairos.ErrSessionNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
		t.Fatal(err)
	}
	f, err := skhttp.OpenFeed(ctx, m, "g", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next := func(f *skhttp.Feed) skhttp.FeedEvent {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ev, err := f.Next(c)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ev := next(f)
	if ev.Event != skhttp.EventView || version(ev.ID) != "1" || ev.View == nil || ev.View.Status != synckairos.StatusPending {
		t.Fatalf("first: %+v", ev)
	}
	b, _ := json.Marshal(ev)
	if !strings.HasPrefix(string(b), `{"event":"view","id":"`+ev.ID+`","data":{`) || ev.ID != fmt.Sprintf("%d/1", ev.View.Life) {
		t.Fatalf("JSON: %s", b)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = f.Next(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an idle Next: %v", err)
	}
	if _, err := m.StartSession(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if ev := next(f); version(ev.ID) != "2" || ev.View.Status != synckairos.StatusRunning {
		t.Fatalf("after the start: %+v", ev)
	}
	// Resuming at version 2: the next event is version 3.
	r, err := skhttp.OpenFeed(ctx, m, "g", "2", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := m.SwitchCycle(ctx, "g", nil); err != nil {
		t.Fatal(err)
	}
	if ev := next(r); version(ev.ID) != "3" {
		t.Fatalf("resumed: %+v", ev)
	}
	if ev := next(f); version(ev.ID) != "3" {
		t.Fatalf("first feed: %+v", ev)
	}
	if err := m.DeleteSession(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if ev := next(f); ev.Event != skhttp.EventDeleted || ev.View != nil {
		t.Fatalf("after the delete: %+v", ev)
	}
	if b, _ := json.Marshal(skhttp.FeedEvent{Event: skhttp.EventDeleted}); string(b) != `{"event":"deleted"}` {
		t.Fatalf("deleted JSON: %s", b)
	}
	if _, err := f.Next(ctx); err != io.EOF {
		t.Fatalf("after deleted: %v", err)
	}
}

// A feed that fell behind its buffer gets one fresh view, not the changes
// it missed one by one.
func TestFeedResyncs(t *testing.T) {
	t.Parallel()
	m, _ := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
		t.Fatal(err)
	}
	f, err := skhttp.OpenFeed(ctx, m, "g", "1", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A second feed with room for everything: once it has the last change,
	// the Manager's subscription has handed the first all the changes
	// before it (it delivers one change to all its watchers, then the next).
	all, err := skhttp.OpenFeed(ctx, m, "g", "1", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	for range 10 {
		if _, err := m.MutateSession(ctx, "g", func(s *synckairos.State) error {
			s.Metadata = map[string]string{"k": "v"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		ev, err := all.Next(c)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if version(ev.ID) == "11" {
			break
		}
	}
	var ids []string
	for {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		ev, err := f.Next(c)
		cancel()
		if err != nil {
			t.Fatalf("after %v: %v", ids, err)
		}
		ids = append(ids, ev.ID)
		if version(ev.ID) == "11" {
			break
		}
	}
	if len(ids) > 3 {
		t.Fatalf("the feed fell behind a buffer of 2 and got %v", ids)
	}
}

// Resuming names the life as well as the version: a session deleted and
// created again (a new game at the same table) that reached the version
// the watcher had is not skipped; a session deleted while the watcher was
// away gives "deleted", not an error the client cannot tell from a dead
// instance; a bare version, as older clients send, still resumes.
func TestFeedResumesAcrossLives(t *testing.T) {
	t.Parallel()
	m, _ := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	game := func() *synckairos.State {
		if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
			t.Fatal(err)
		}
		s, err := m.StartSession(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := game()
	had := fmt.Sprintf("%d/%d", first.Life, first.Version)
	if err := m.DeleteSession(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	f, err := skhttp.OpenFeed(ctx, m, "g", had, 0)
	if err != nil {
		t.Fatalf("resuming a deleted session: %v", err)
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ev, err := f.Next(c); err != nil || ev.Event != skhttp.EventDeleted {
		t.Fatalf("resuming a deleted session: %+v %v", ev, err)
	}
	f.Close()
	second := game() // the same version, another life
	if second.Version != first.Version || second.Life <= first.Life {
		t.Fatalf("lives %d v%d, %d v%d", first.Life, first.Version, second.Life, second.Version)
	}
	f, err = skhttp.OpenFeed(ctx, m, "g", had, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ev, err := f.Next(c); err != nil || ev.View == nil || ev.View.Life != second.Life {
		t.Fatalf("the new game's view: %+v %v", ev, err)
	}
	// A bare version: the view the watcher has is skipped, the next comes.
	b, err := skhttp.OpenFeed(ctx, m, "g", fmt.Sprint(second.Version), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := m.PauseSession(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if ev, err := b.Next(c); err != nil || ev.ID != fmt.Sprintf("%d/%d", second.Life, second.Version+1) {
		t.Fatalf("resumed by a bare version: %+v %v", ev, err)
	}
}
