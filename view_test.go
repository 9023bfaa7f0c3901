package synckairos_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// A view says what each clock shows at its server time, in the documented
// JSON form.
func TestViewAt(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	s := &synckairos.State{SessionID: "v", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusPending, Version: 1,
		Participants: players(time.Minute, "white", "black"), Delay: 5 * time.Second, DelayMode: synckairos.DelaySimple,
		Increment: time.Second, Metadata: map[string]string{"opening": "sicilian"}}
	if err := s.Start(start); err != nil {
		t.Fatal(err)
	}
	s.Version++
	b, err := json.Marshal(s.ViewAt(start.Add(7 * time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	ps := got["participants"].([]any)
	white, black := ps[0].(map[string]any), ps[1].(map[string]any)
	for k, want := range map[string]any{"running": true, "remaining_ms": 58000.0, "main_ms": 58000.0, "delay_ms": 0.0, "expired": false} {
		if white[k] != want {
			t.Errorf("white %s = %v, want %v (%s)", k, white[k], want, b)
		}
	}
	for k, want := range map[string]any{"running": false, "remaining_ms": 60000.0, "main_ms": 60000.0} { // a clock not running shows its bank
		if black[k] != want {
			t.Errorf("black %s = %v, want %v (%s)", k, black[k], want, b)
		}
	}
	ctl := got["control"].(map[string]any)
	if got["server_time"] != "2026-05-01T10:00:07Z" || got["deadline"] != "2026-05-01T10:01:05Z" || got["version"] != 2.0 ||
		got["active_participant_id"] != "white" || ctl["delay_ms"] != 5000.0 || ctl["delay_mode"] != "simple" ||
		got["metadata"].(map[string]any)["opening"] != "sicilian" || got["last_transition"].(map[string]any)["type"] != "session_started" {
		t.Errorf("view: %s", b)
	}
	if white["delay_ms"] != 0.0 {
		t.Errorf("the delay ran out at 5 s: %v", white["delay_ms"])
	}
	// At 3 s the delay still runs.
	b, _ = json.Marshal(s.ViewAt(start.Add(3 * time.Second)))
	json.Unmarshal(b, &got)
	white = got["participants"].([]any)[0].(map[string]any)
	if white["delay_ms"] != 2000.0 || white["main_ms"] != 60000.0 || white["remaining_ms"] != 62000.0 {
		t.Errorf("at 3 s: %v", white)
	}
}

// A Watch gets each change of its session, not others'; a reader that
// falls behind its buffer gets one resync; Close and the context end it.
func TestWatchSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		s := mustCreate(t, m, newState("watched", 2))
		mustCreate(t, m, newState("other", 2))
		w, err := m.WatchSession(ctx, "watched", 4)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		next := func() synckairos.WatchEvent {
			t.Helper()
			c, cancel := context.WithTimeout(ctx, waitLimit)
			defer cancel()
			ev, err := w.Next(c)
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}
		if _, err := m.StartSession(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.StartSession(ctx, "watched"); err != nil {
			t.Fatal(err)
		}
		if ev := next(); ev.State == nil || ev.State.SessionID != "watched" || ev.State.Version != 2 {
			t.Fatalf("first event: %+v", ev)
		}
		// Ten changes into a buffer of four: a resync.
		for i := range 10 {
			if _, err := m.MutateSession(ctx, "watched", func(s *synckairos.State) error {
				s.Metadata = map[string]string{"i": string(rune('a' + i))}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, waitLimit, "the changes delivered", func() bool {
			got, _ := m.GetSession(ctx, "watched")
			return got.Version == s.Version+11
		})
		time.Sleep(100 * time.Millisecond) // the last message on its way
		seen := 0
		for {
			ev := next()
			if ev.Resync {
				break
			}
			seen++
			if seen > 4 {
				t.Fatalf("more than the buffer before a resync: %+v", ev)
			}
		}
		if err := m.DeleteSession(ctx, "watched"); err != nil {
			t.Fatal(err)
		}
		for {
			ev := next()
			if ev.Deleted {
				break
			}
		}
		w.Close()
		if _, err := w.Next(ctx); !errors.Is(err, synckairos.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
		// The context ends a watch too.
		c, cancel := context.WithCancel(ctx)
		w2, err := m.WatchSession(c, "other", 0)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		waitFor(t, waitLimit, "the watch closed by its context", func() bool {
			_, err := w2.Next(ctx)
			return errors.Is(err, synckairos.ErrClosed)
		})
	})
}
