package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

// The conformance suite: every test runs on the fake and on the real Redis.

func newState(id string, participants int) *synckairos.State {
	s := &synckairos.State{
		SessionID:    id,
		Mode:         synckairos.ModePerParticipant,
		Increment:    2 * time.Second,
		Status:       synckairos.StatusPending,
		Participants: make([]synckairos.Participant, participants),
		Metadata:     map[string]string{"table": "7"},
	}
	for i := range s.Participants {
		s.Participants[i] = synckairos.Participant{ID: fmt.Sprintf("p%d", i), TotalTime: 3 * time.Minute}
	}
	return s
}

func mustCreate(t *testing.T, m *synckairos.Manager, s *synckairos.State) *synckairos.State {
	t.Helper()
	got, err := m.CreateSession(context.Background(), s)
	if err != nil {
		t.Fatalf("CreateSession(%q): %v", s.SessionID, err)
	}
	return got
}

func mustGet(t *testing.T, m *synckairos.Manager, id string) *synckairos.State {
	t.Helper()
	got, err := m.GetSession(context.Background(), id)
	if err != nil {
		t.Fatalf("GetSession(%q): %v", id, err)
	}
	return got
}

func TestCreateAndGet(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		in := newState("game-1", 2)
		in.ActiveParticipantID = "p1"
		before := in.Clone()
		created := mustCreate(t, m, in)
		if diff := cmp.Diff(before, in); diff != "" {
			t.Errorf("CreateSession modified its argument (-before +after):\n%s", diff)
		}
		if created.Version != 1 || created.Status != synckairos.StatusPending {
			t.Errorf("created at version %d, status %q; want 1, pending", created.Version, created.Status)
		}
		if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
			t.Errorf("CreatedAt %v, UpdatedAt %v; want both set and equal", created.CreatedAt, created.UpdatedAt)
		}
		if b.fake != nil && !created.CreatedAt.Equal(b.fake.Now()) {
			t.Errorf("CreatedAt %v, want the fake clock's %v", created.CreatedAt, b.fake.Now())
		}
		want := in.Clone()
		want.Status, want.Version, want.Life = synckairos.StatusPending, 1, created.Life
		want.CreatedAt, want.UpdatedAt = created.CreatedAt, created.UpdatedAt
		want.LastTransition = &synckairos.Transition{Type: synckairos.EventSessionCreated, Version: 1, At: created.CreatedAt}
		want.Participants[0].Index, want.Participants[1].Index = 0, 1
		want.Participants[1].IsActive = true
		if diff := cmp.Diff(want, created); diff != "" {
			t.Errorf("created state (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(created, mustGet(t, m, "game-1")); diff != "" {
			t.Errorf("GetSession differs from what CreateSession returned (-created +got):\n%s", diff)
		}
		// Another instance reads the same state.
		if diff := cmp.Diff(created, mustGet(t, b.newManager(nil), "game-1")); diff != "" {
			t.Errorf("second Manager reads (-created +got):\n%s", diff)
		}
	})
}

func TestCreateExisting(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		first := mustCreate(t, m, newState("dup", 2))
		other := newState("dup", 3)
		if _, err := m.CreateSession(context.Background(), other); !errors.Is(err, synckairos.ErrSessionExists) {
			t.Fatalf("second CreateSession: %v, want ErrSessionExists", err)
		}
		if diff := cmp.Diff(first, mustGet(t, m, "dup")); diff != "" {
			t.Errorf("refused create changed the session (-first +now):\n%s", diff)
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		if _, err := m.GetSession(ctx, "nope"); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Errorf("GetSession: %v, want ErrSessionNotFound", err)
		}
		s := newState("nope", 2)
		s.Version = 1
		if _, err := m.UpdateSession(ctx, s); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Errorf("UpdateSession: %v, want ErrSessionNotFound", err)
		}
		if err := m.DeleteSession(ctx, "nope"); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Errorf("DeleteSession: %v, want ErrSessionNotFound", err)
		}
		if _, err := m.MutateSession(ctx, "nope", func(*synckairos.State) error { return nil }); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Errorf("MutateSession: %v, want ErrSessionNotFound", err)
		}
		if n := keyCount(t, b); n != 0 {
			t.Errorf("%d keys written", n)
		}
	})
}

func TestUpdateIncrementsVersion(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		s := mustCreate(t, m, newState("upd", 2))
		if b.fake != nil {
			b.fake.Advance(1500 * time.Millisecond)
		}
		for want := int64(2); want <= 4; want++ {
			in := s.Clone()
			in.Participants[0].CycleCount++
			in.Metadata["move"] = fmt.Sprint(want)
			next, err := m.UpdateSession(context.Background(), in)
			if err != nil {
				t.Fatalf("UpdateSession at version %d: %v", s.Version, err)
			}
			if next.Version != want {
				t.Fatalf("version %d, want %d", next.Version, want)
			}
			if in.Version != want-1 {
				t.Fatalf("UpdateSession modified its argument's version to %d", in.Version)
			}
			if next.UpdatedAt.Before(s.UpdatedAt) || !next.CreatedAt.Equal(s.CreatedAt) {
				t.Fatalf("times: created %v→%v, updated %v→%v", s.CreatedAt, next.CreatedAt, s.UpdatedAt, next.UpdatedAt)
			}
			if diff := cmp.Diff(next, mustGet(t, m, "upd")); diff != "" {
				t.Fatalf("GetSession differs from UpdateSession's result (-updated +got):\n%s", diff)
			}
			s = next
		}
		if b.fake != nil && !s.UpdatedAt.Equal(synckairostest.Epoch.Add(1500*time.Millisecond)) {
			t.Errorf("UpdatedAt %v, want the fake clock's time", s.UpdatedAt)
		}
		if s.Participants[0].CycleCount != 3 {
			t.Errorf("CycleCount %d, want 3", s.Participants[0].CycleCount)
		}
	})
}

func TestConflictCarriesCurrentState(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		a, other := b.newManager(nil), b.newManager(nil)
		ctx := context.Background()
		s := mustCreate(t, a, newState("cas", 2))

		winner := s.Clone()
		winner.Metadata["by"] = "other"
		won, err := other.UpdateSession(ctx, winner)
		if err != nil {
			t.Fatal(err)
		}
		loser := s.Clone()
		loser.Metadata["by"] = "a"
		_, err = a.UpdateSession(ctx, loser)
		if !errors.Is(err, synckairos.ErrVersionConflict) {
			t.Fatalf("stale UpdateSession: %v, want ErrVersionConflict", err)
		}
		var conflict *synckairos.ConflictError
		if !errors.As(err, &conflict) {
			t.Fatalf("error %T is not a *ConflictError", err)
		}
		if conflict.SessionID != "cas" || conflict.Expected != 1 || conflict.Actual != 2 {
			t.Errorf("conflict %+v, want session cas, expected 1, actual 2", conflict)
		}
		if diff := cmp.Diff(won, conflict.Current); diff != "" {
			t.Errorf("conflict's current state (-stored +carried):\n%s", diff)
		}
		if diff := cmp.Diff(won, mustGet(t, a, "cas")); diff != "" {
			t.Errorf("refused update changed the session (-before +after):\n%s", diff)
		}
		// The carried state is good for an immediate retry.
		retry := conflict.Current.Clone()
		retry.Metadata["by"] = "a"
		if got, err := a.UpdateSession(ctx, retry); err != nil || got.Version != 3 {
			t.Fatalf("retry from carried state: %v, %v", got, err)
		}
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		s := mustCreate(t, m, newState("del", 2))
		if err := m.DeleteSession(ctx, "del"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.GetSession(ctx, "del"); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Errorf("GetSession after delete: %v", err)
		}
		if _, err := m.UpdateSession(ctx, s); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Errorf("UpdateSession after delete: %v", err)
		}
		if err := m.DeleteSession(ctx, "del"); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Errorf("second DeleteSession: %v", err)
		}
		// The ID is free again.
		if got := mustCreate(t, m, newState("del", 2)); got.Version != 1 {
			t.Errorf("recreated at version %d", got.Version)
		}
	})
}

func TestTTLSetAndRefreshed(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		const ttl = 10 * time.Minute
		m := b.newManager(&synckairos.Config{SessionTTL: ttl})
		ctx := context.Background()
		s := mustCreate(t, m, newState("ttl", 2))
		key := b.sessionKey(t, "ttl")
		assertTTL(t, b, key, ttl)

		// Shorten the TTL by hand; the next write sets it back.
		if err := b.raw.Do(ctx, b.raw.B().Pexpire().Key(key).Milliseconds(5000).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if _, err := m.UpdateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		assertTTL(t, b, key, ttl)

		if b.fake != nil {
			// On the fake, time moves TTLs: a session untouched for its TTL is gone.
			b.fake.Advance(ttl - time.Second)
			mustGet(t, m, "ttl")
			b.fake.Advance(time.Second)
			if _, err := m.GetSession(ctx, "ttl"); !errors.Is(err, synckairos.ErrSessionNotFound) {
				t.Errorf("GetSession after the TTL: %v, want ErrSessionNotFound", err)
			}
		}
	})
}

func assertTTL(t *testing.T, b *backend, key string, want time.Duration) {
	t.Helper()
	ms, err := b.raw.Do(context.Background(), b.raw.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	got := time.Duration(ms) * time.Millisecond
	// The real server counts down between the write and this read.
	if got > want || got < want-5*time.Second {
		t.Errorf("TTL of %s is %v, want %v", key, got, want)
	}
}

func TestCorruptState(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		r := b.raw
		good := mustCreate(t, m, newState("junk", 2))
		key := b.sessionKey(t, "junk")

		// Bytes that do not decode.
		if err := r.Do(ctx, r.B().Hset().Key(key).FieldValue().FieldValue("s", "{not json").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, err := m.GetSession(ctx, "junk")
		assertCorrupt(t, "GetSession of bad JSON", err, "junk")
		// A conflict that carries the bad bytes reports them too.
		if err := r.Do(ctx, r.B().Hset().Key(key).FieldValue().FieldValue("v", "7").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, err = m.UpdateSession(ctx, good)
		assertCorrupt(t, "conflicting UpdateSession on bad JSON", err, "junk")
		_, err = m.MutateSession(ctx, "junk", func(*synckairos.State) error { return nil })
		assertCorrupt(t, "MutateSession on bad JSON", err, "junk")

		// A key of the wrong type.
		if err := r.Do(ctx, r.B().Set().Key(key).Value("plain string").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, err = m.GetSession(ctx, "junk")
		assertCorrupt(t, "GetSession of a string key", err, "junk")
		_, err = m.UpdateSession(ctx, good)
		assertCorrupt(t, "UpdateSession of a string key", err, "junk")
		assertCorrupt(t, "DeleteSession of a string key", m.DeleteSession(ctx, "junk"), "junk")

		// A hash without its version.
		r.Do(ctx, r.B().Del().Key(key).Build())
		if err := r.Do(ctx, r.B().Hset().Key(key).FieldValue().FieldValue("s", "{}").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, err = m.GetSession(ctx, "junk")
		assertCorrupt(t, "GetSession without version", err, "junk")
		_, err = m.UpdateSession(ctx, good)
		assertCorrupt(t, "UpdateSession without version", err, "junk")

		// State bytes of another session.
		other, _ := good.MarshalJSON()
		r.Do(ctx, r.B().Del().Key(key).Build())
		if err := r.Do(ctx, r.B().Hset().Key(key).FieldValue().FieldValue("v", "1").FieldValue("s", strings.Replace(string(other), `"junk"`, `"elsewhere"`, 1)).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, err = m.GetSession(ctx, "junk")
		assertCorrupt(t, "GetSession of another session's state", err, "junk")
	})
}

func assertCorrupt(t *testing.T, what string, err error, id string) {
	t.Helper()
	if !errors.Is(err, synckairos.ErrCorruptState) {
		t.Errorf("%s: %v, want ErrCorruptState", what, err)
		return
	}
	if !strings.Contains(err.Error(), id) {
		t.Errorf("%s: error %q does not name session %q", what, err, id)
	}
}

func TestMutateSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		mustCreate(t, m, newState("mut", 2))
		got, err := m.MutateSession(ctx, "mut", func(s *synckairos.State) error {
			s.ActiveParticipantID = "p1"
			s.Status = synckairos.StatusPaused
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || !got.Participants[1].IsActive || got.Participants[0].IsActive {
			t.Fatalf("mutated state: version %d, participants %+v", got.Version, got.Participants)
		}
		// The active flag follows ActiveParticipantID.
		got, err = m.MutateSession(ctx, "mut", func(s *synckairos.State) error {
			s.ActiveParticipantID = "p0"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !got.Participants[0].IsActive || got.Participants[1].IsActive {
			t.Fatalf("after switching: participants %+v", got.Participants)
		}

		// An error from fn is returned as it is, and nothing is written.
		stop := errors.New("stop")
		if _, err := m.MutateSession(ctx, "mut", func(s *synckairos.State) error {
			s.Metadata["x"] = "y"
			return stop
		}); err != stop {
			t.Fatalf("MutateSession: %v, want fn's error", err)
		}
		for name, fn := range map[string]func(*synckairos.State){
			"session_id": func(s *synckairos.State) { s.SessionID = "other" },
			"version":    func(s *synckairos.State) { s.Version = 99 },
			"participants[0].participant_id": func(s *synckairos.State) {
				s.Participants[0].ID = ""
			},
		} {
			_, err := m.MutateSession(ctx, "mut", func(s *synckairos.State) error { fn(s); return nil })
			var se *synckairos.StateError
			if !errors.As(err, &se) || se.Field != name {
				t.Errorf("MutateSession changing %s: %v, want a StateError on that field", name, err)
			}
		}
		if v := mustGet(t, m, "mut").Version; v != 3 {
			t.Errorf("version %d after refused mutations, want 3", v)
		}
	})
}

func TestMutateSessionHonoursContext(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(&synckairos.Config{MaxAttempts: 100})
		other := b.newManager(nil)
		mustCreate(t, m, newState("ctx", 2))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// fn loses every race: another writer moves the session each time.
		calls := 0
		_, err := m.MutateSession(ctx, "ctx", func(s *synckairos.State) error {
			calls++
			if _, err := other.MutateSession(context.Background(), "ctx", func(*synckairos.State) error { return nil }); err != nil {
				return err
			}
			if calls == 3 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("MutateSession: %v, want context.Canceled", err)
		}
		if calls != 3 {
			t.Errorf("fn called %d times after cancel at the 3rd", calls)
		}
	})
}

// TestNoLostUpdates is the lost-update test of the issue: 20 goroutines over
// two Managers with separate clients, 200 increments each, on one session.
func TestNoLostUpdates(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		managers := []*synckairos.Manager{b.newManager(nil), b.newManager(nil)}
		mustCreate(t, managers[0], newState("hot", 2))
		const goroutines, calls = 20, 200
		var succeeded, conflicts, other int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := range goroutines {
			m := managers[g%2]
			wg.Go(func() {
				for range calls {
					_, err := m.MutateSession(context.Background(), "hot", func(s *synckairos.State) error {
						s.Participants[0].CycleCount++
						return nil
					})
					mu.Lock()
					switch {
					case err == nil:
						succeeded++
					case errors.Is(err, synckairos.ErrVersionConflict):
						conflicts++
					default:
						other++
						t.Error(err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		got := int64(mustGet(t, managers[1], "hot").Participants[0].CycleCount)
		t.Logf("%s: %d of %d calls succeeded, %d ran out of attempts", b.name, succeeded, goroutines*calls, conflicts)
		if got != succeeded {
			t.Errorf("counter %d, but %d calls succeeded: %d updates lost", got, succeeded, succeeded-got)
		}
		if min := int64(goroutines*calls) * 99 / 100; succeeded < min {
			t.Errorf("%d of %d calls succeeded, want at least %d (99%%)", succeeded, goroutines*calls, min)
		}
	})
}

// TestNoLostUpdatesManySessions spreads 50 goroutines over 100 sessions.
func TestNoLostUpdatesManySessions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		managers := []*synckairos.Manager{b.newManager(nil), b.newManager(nil)}
		const sessions, goroutines, calls = 100, 50, 100
		for i := range sessions {
			mustCreate(t, managers[0], newState(fmt.Sprint("s", i), 1))
		}
		var mu sync.Mutex
		succeeded := make(map[string]int)
		var wg sync.WaitGroup
		for g := range goroutines {
			m := managers[g%2]
			wg.Go(func() {
				for c := range calls {
					id := fmt.Sprint("s", (g*7+c*13)%sessions)
					_, err := m.MutateSession(context.Background(), id, func(s *synckairos.State) error {
						s.Participants[0].CycleCount++
						return nil
					})
					if err != nil && !errors.Is(err, synckairos.ErrVersionConflict) {
						t.Error(err)
					}
					if err == nil {
						mu.Lock()
						succeeded[id]++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for i := range sessions {
			id := fmt.Sprint("s", i)
			total += succeeded[id]
			if got := mustGet(t, managers[1], id).Participants[0].CycleCount; got != succeeded[id] {
				t.Errorf("%s: counter %d, %d calls succeeded", id, got, succeeded[id])
			}
		}
		if total == 0 {
			t.Fatal("no call succeeded")
		}
		t.Logf("%s: %d of %d calls succeeded", b.name, total, goroutines*calls)
	})
}

func TestLargeSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		s := mustCreate(t, m, newState("big", synckairos.MaxParticipants))
		s.ActiveParticipantID = "p999"
		next, err := m.UpdateSession(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if !next.Participants[999].IsActive || next.Participants[999].Index != 999 {
			t.Errorf("last participant: %+v", next.Participants[999])
		}
		if diff := cmp.Diff(next, mustGet(t, m, "big")); diff != "" {
			t.Errorf("(-updated +got):\n%s", diff)
		}
	})
}

func TestClosedManager(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(&synckairos.Config{})
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		ctx := context.Background()
		if _, err := m.CreateSession(ctx, newState("closed", 1)); !errors.Is(err, synckairos.ErrClosed) {
			t.Errorf("CreateSession after Close: %v", err)
		}
		if _, err := m.GetSession(ctx, "closed"); !errors.Is(err, synckairos.ErrClosed) {
			t.Errorf("GetSession after Close: %v", err)
		}
		if _, err := m.MutateSession(ctx, "closed", func(*synckairos.State) error { return nil }); !errors.Is(err, synckairos.ErrClosed) {
			t.Errorf("MutateSession after Close: %v", err)
		}
		if err := m.DeleteSession(ctx, "closed"); !errors.Is(err, synckairos.ErrClosed) {
			t.Errorf("DeleteSession after Close: %v", err)
		}
		if keyCount(t, b) != 0 {
			t.Error("a closed Manager wrote")
		}
	})
}

// keyCount counts the test's keys but the partitions' life counters, which
// a create leaves behind on purpose, and the prefix's layout record.
func keyCount(t *testing.T, b *backend) int {
	t.Helper()
	n := 0
	for _, k := range scanPrefix(t, b.raw, b.prefix) {
		if !strings.HasSuffix(k, ":lives") && k != b.prefix+"layout" {
			n++
		}
	}
	return n
}
