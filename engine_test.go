package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

// engineManager returns a Manager on the backend whose clock the test moves:
// the fake's own clock, or, on the real Redis, a test clock (Redis TTLs then
// keep real time, which the scenarios do not depend on).
func engineManager(t *testing.T, b *backend, cfg *synckairos.Config) (*synckairos.Manager, *synckairostest.Clock) {
	t.Helper()
	var c synckairos.Config
	if cfg != nil {
		c = *cfg
	}
	if b.fake != nil {
		return b.newManager(&c), b.fake.Clock
	}
	clock := synckairostest.NewClock(synckairostest.Epoch)
	c.Test.Clock = clock
	return b.newManager(&c), clock
}

func players(bank time.Duration, ids ...string) []synckairos.Participant {
	ps := make([]synckairos.Participant, len(ids))
	for i, id := range ids {
		ps[i] = synckairos.Participant{ID: id, TotalTime: bank}
	}
	return ps
}

func bankOf(t *testing.T, s *synckairos.State, id string) time.Duration {
	t.Helper()
	p := s.Participant(id)
	if p == nil {
		t.Fatalf("no participant %q", id)
	}
	return p.TotalTime
}

func TestChessGame3Plus2(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "chess", Mode: synckairos.ModePerParticipant,
			Increment: 2 * time.Second, Participants: players(3*time.Minute, "white", "black")})
		s, err := m.StartSession(ctx, "chess")
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != synckairos.StatusRunning || s.ActiveParticipantID != "white" || !s.SessionStartedAt.Equal(clock.Now()) {
			t.Fatalf("started: %+v", s)
		}
		clock.Advance(10 * time.Second)
		if got := s.RemainingAt(clock.Now()); got != 170*time.Second {
			t.Fatalf("white's clock after 10s: %v", got)
		}
		r, err := m.SwitchCycle(ctx, "chess", &synckairos.SwitchOptions{From: "white"})
		if err != nil {
			t.Fatal(err)
		}
		if r.From != "white" || r.To != "black" || r.Used != 10*time.Second || bankOf(t, r.State, "white") != 172*time.Second {
			t.Fatalf("after white's move: %+v, white %v", r, bankOf(t, r.State, "white"))
		}
		clock.Advance(20 * time.Second)
		r, err = m.SwitchCycle(ctx, "chess", &synckairos.SwitchOptions{From: "black"})
		if err != nil {
			t.Fatal(err)
		}
		if bankOf(t, r.State, "black") != 162*time.Second || r.State.Participants[1].CycleCount != 1 {
			t.Fatalf("after black's move: black %v", bankOf(t, r.State, "black"))
		}
		// The same "black moved" again: refused, nothing changes.
		version := r.State.Version
		if _, err := m.SwitchCycle(ctx, "chess", &synckairos.SwitchOptions{From: "black"}); !errors.Is(err, synckairos.ErrNotActive) {
			t.Fatalf("duplicate switch: %v", err)
		}
		if got := mustGet(t, m, "chess"); got.Version != version || got.ActiveParticipantID != "white" {
			t.Fatalf("duplicate switch changed the session: v%d, %s active", got.Version, got.ActiveParticipantID)
		}

		// Paused time is never charged.
		clock.Advance(5 * time.Second)
		s, err = m.PauseSession(ctx, "chess")
		if err != nil {
			t.Fatal(err)
		}
		before := s.RemainingAt(clock.Now())
		clock.Advance(30 * time.Minute) // within the paused key's TTL
		if got := s.RemainingAt(clock.Now()); got != before || got != 167*time.Second {
			t.Fatalf("paused clock moved: %v → %v", before, got)
		}
		if _, err := m.ResumeSession(ctx, "chess"); err != nil {
			t.Fatal(err)
		}

		// White lets the flag fall; a late switch does not rescue it.
		clock.Advance(167*time.Second + 3*time.Second)
		_, err = m.SwitchCycle(ctx, "chess", &synckairos.SwitchOptions{From: "white"})
		if !errors.Is(err, synckairos.ErrInvalidTransition) {
			t.Fatalf("late switch: %v", err)
		}
		s = mustGet(t, m, "chess")
		white := s.Participant("white")
		flagAt := clock.Now().Add(-3 * time.Second)
		if s.Status != synckairos.StatusExpired || !white.HasExpired || white.TotalTime != 0 ||
			!s.SessionCompletedAt.Equal(flagAt) || s.ActiveParticipantID != "" || s.Version != version+3 {
			t.Fatalf("after the flag: %s, white %+v, completed %v (want %v), v%d", s.Status, white, s.SessionCompletedAt, flagAt, s.Version)
		}
		if bankOf(t, s, "black") != 162*time.Second {
			t.Fatalf("black's bank %v", bankOf(t, s, "black"))
		}
		for _, call := range []func() error{
			func() error { _, err := m.StartSession(ctx, "chess"); return err },
			func() error { _, err := m.PauseSession(ctx, "chess"); return err },
			func() error { _, err := m.ResumeSession(ctx, "chess"); return err },
			func() error { _, err := m.CompleteSession(ctx, "chess"); return err },
			func() error { _, err := m.CancelSession(ctx, "chess"); return err },
			func() error { _, err := m.AddTime(ctx, "chess", "white", time.Minute); return err },
		} {
			if err := call(); !errors.Is(err, synckairos.ErrInvalidTransition) || !strings.Contains(err.Error(), "expired") {
				t.Errorf("transition on an expired session: %v", err)
			}
		}
	})
}

func TestTransitionErrorsNameBothStatuses(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, _ := engineManager(t, b, nil)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "t", Mode: synckairos.ModeGlobal, TotalTime: time.Minute, Participants: players(0, "a", "b")})
		_, err := m.ResumeSession(ctx, "t")
		var te *synckairos.TransitionError
		if !errors.As(err, &te) || te.Status != synckairos.StatusPending || !strings.Contains(err.Error(), "pending") || !strings.Contains(err.Error(), "paused") {
			t.Fatalf("resume of a pending session: %v", err)
		}
		if _, err := m.SwitchCycle(ctx, "t", nil); !errors.Is(err, synckairos.ErrInvalidTransition) {
			t.Fatalf("switch of a pending session: %v", err)
		}
		if _, err := m.StartSession(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.StartSession(ctx, "t"); !errors.Is(err, synckairos.ErrInvalidTransition) || !strings.Contains(err.Error(), "running") {
			t.Fatalf("start of a running session: %v", err)
		}
		if _, err := m.PauseSession(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SwitchCycle(ctx, "t", nil); !errors.Is(err, synckairos.ErrInvalidTransition) {
			t.Fatalf("switch of a paused session: %v", err)
		}
		if got := mustGet(t, m, "t"); got.Version != 3 {
			t.Fatalf("refused transitions wrote: v%d", got.Version)
		}
	})
}

func TestDelays(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		for _, mode := range []synckairos.DelayMode{synckairos.DelaySimple, synckairos.DelayBronstein} {
			id := string(mode)
			mustCreate(t, m, &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Delay: 5 * time.Second,
				DelayMode: mode, Participants: players(time.Minute, "a", "b")})
			s, err := m.StartSession(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(3 * time.Second)
			want := map[synckairos.DelayMode]time.Duration{synckairos.DelaySimple: time.Minute, synckairos.DelayBronstein: 57 * time.Second}
			if got := s.RemainingAt(clock.Now()); got != want[mode] {
				t.Errorf("%s: remaining after 3s of a 5s delay: %v, want %v", mode, got, want[mode])
			}
			r, err := m.SwitchCycle(ctx, id, nil) // a's turn: 3s, within the delay
			if err != nil {
				t.Fatal(err)
			}
			if got := bankOf(t, r.State, "a"); got != time.Minute {
				t.Errorf("%s: a's bank after a 3s turn: %v", mode, got)
			}
			clock.Advance(8 * time.Second)
			if r, err = m.SwitchCycle(ctx, id, nil); err != nil { // b's turn: 8s
				t.Fatal(err)
			}
			if got := bankOf(t, r.State, "b"); got != 57*time.Second {
				t.Errorf("%s: b's bank after an 8s turn: %v, want 57s", mode, got)
			}
			// The deadline counts the delay in for a simple delay only.
			d, _ := r.State.Deadline()
			wantD := map[synckairos.DelayMode]time.Duration{synckairos.DelaySimple: 65 * time.Second, synckairos.DelayBronstein: time.Minute}
			if got := d.Sub(clock.Now()); got != wantD[mode] {
				t.Errorf("%s: deadline in %v, want %v", mode, got, wantD[mode])
			}
		}
	})
}

// runExpirer runs RunExpirer until the test ends.
func runExpirer(t *testing.T, m *synckairos.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.RunExpirer(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("RunExpirer: %v", err)
		}
	})
}

// waitVersion waits until the session reaches version v.
func waitVersion(t *testing.T, m *synckairos.Manager, id string, v int64) *synckairos.State {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := mustGet(t, m, id)
		if s.Version >= v {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at v%d, want v%d", id, s.Version, v)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTurnTimerForfeitsTurns(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		runExpirer(t, m)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "turns", Mode: synckairos.ModePerCycle, TimePerCycle: 30 * time.Second,
			Participants: players(0, "a", "b", "c")})
		start := clock.Now()
		if _, err := m.StartSession(ctx, "turns"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(31 * time.Second)
		s := waitVersion(t, m, "turns", 3)
		if s.ActiveParticipantID != "b" || !s.CycleStartedAt.Equal(start.Add(30*time.Second)) ||
			s.Participants[0].TimeUsed != 30*time.Second || s.Participants[0].CycleCount != 1 || s.Status != synckairos.StatusRunning {
			t.Fatalf("after a's forfeited turn: %+v", s)
		}
		if got := s.RemainingAt(clock.Now()); got != 29*time.Second {
			t.Fatalf("b's turn: %v left", got)
		}

		// With OnExpiry end_session, the first forfeit ends the session.
		mustCreate(t, m, &synckairos.State{SessionID: "strict", Mode: synckairos.ModePerCycle, TimePerCycle: 10 * time.Second,
			OnExpiry: synckairos.ExpiryEndSession, Participants: players(0, "a", "b")})
		if _, err := m.StartSession(ctx, "strict"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(11 * time.Second)
		if s := waitVersion(t, m, "strict", 3); s.Status != synckairos.StatusExpired {
			t.Fatalf("strict turn timer: %s", s.Status)
		}
	})
}

func TestGlobalCountdownAndStopwatch(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		runExpirer(t, m)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "global", Mode: synckairos.ModeGlobal, TotalTime: time.Minute, Participants: players(0, "a", "b")})
		start := clock.Now()
		if _, err := m.StartSession(ctx, "global"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(20 * time.Second)
		r, err := m.SwitchCycle(ctx, "global", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.State.TotalTime != 40*time.Second || r.State.ActiveParticipantID != "b" {
			t.Fatalf("after a switch: %v, %s", r.State.TotalTime, r.State.ActiveParticipantID)
		}
		clock.Advance(41 * time.Second)
		s := waitVersion(t, m, "global", 4)
		if s.Status != synckairos.StatusExpired || !s.SessionCompletedAt.Equal(start.Add(time.Minute)) || s.TotalTime != 0 {
			t.Fatalf("global countdown: %s at %v", s.Status, s.SessionCompletedAt)
		}

		mustCreate(t, m, &synckairos.State{SessionID: "watch", Mode: synckairos.ModeCountUp, MaxTime: 10 * time.Second, Participants: players(0, "a")})
		if _, err := m.StartSession(ctx, "watch"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(4 * time.Second)
		s, err = m.PauseSession(ctx, "watch")
		if err != nil {
			t.Fatal(err)
		}
		if s.ElapsedAt(clock.Now()) != 4*time.Second || s.RemainingAt(clock.Now()) != 6*time.Second {
			t.Fatalf("stopwatch: elapsed %v, remaining %v", s.ElapsedAt(clock.Now()), s.RemainingAt(clock.Now()))
		}
		clock.Advance(100 * time.Second)
		if _, err := m.ResumeSession(ctx, "watch"); err != nil {
			t.Fatal(err)
		}
		resumed := clock.Now()
		clock.Advance(7 * time.Second)
		s = waitVersion(t, m, "watch", 5)
		if s.Status != synckairos.StatusExpired || !s.SessionCompletedAt.Equal(resumed.Add(6*time.Second)) {
			t.Fatalf("stopwatch at its maximum: %s at %v", s.Status, s.SessionCompletedAt)
		}
	})
}

func TestExpiredParticipantsAreSkipped(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "skip", Mode: synckairos.ModePerParticipant, OnExpiry: synckairos.ExpiryContinue,
			Participants: players(10*time.Second, "a", "b", "c")})
		if _, err := m.StartSession(ctx, "skip"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(12 * time.Second) // a flags at 10s; b has run 2s
		s, err := m.PauseSession(ctx, "skip")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Participant("a").HasExpired || s.ActiveParticipantID != "b" || s.RemainingAt(clock.Now()) != 8*time.Second {
			t.Fatalf("after a's flag: active %s, remaining %v", s.ActiveParticipantID, s.RemainingAt(clock.Now()))
		}
		if _, err := m.ResumeSession(ctx, "skip"); err != nil {
			t.Fatal(err)
		}
		r, err := m.SwitchCycle(ctx, "skip", nil)
		if err != nil || r.To != "c" {
			t.Fatalf("switch skips a: %+v %v", r, err)
		}
		clock.Advance(11 * time.Second) // c flags: only b remains
		_, err = m.SwitchCycle(ctx, "skip", nil)
		if !errors.Is(err, synckairos.ErrInvalidTransition) {
			t.Fatalf("switch after the last but one flag: %v", err)
		}
		if s := mustGet(t, m, "skip"); s.Status != synckairos.StatusExpired {
			t.Fatalf("with one player left: %s", s.Status)
		}
	})
}

func TestGroupsShareABank(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		ps := players(0, "a1", "b1", "a2", "b2")
		for i := range ps {
			ps[i].GroupID = []string{"A", "B"}[i%2]
		}
		mustCreate(t, m, &synckairos.State{SessionID: "teams", Mode: synckairos.ModePerGroup, Participants: ps,
			Groups: []synckairos.Group{{ID: "A", TotalTime: time.Minute}, {ID: "B", TotalTime: time.Minute}}})
		if _, err := m.StartSession(ctx, "teams"); err != nil {
			t.Fatal(err)
		}
		for _, step := range []time.Duration{5 * time.Second, 7 * time.Second, 11 * time.Second} {
			clock.Advance(step)
			if _, err := m.SwitchCycle(ctx, "teams", nil); err != nil {
				t.Fatal(err)
			}
		}
		s := mustGet(t, m, "teams")
		// A played 5s + 11s, B 7s.
		if s.Groups[0].TotalTime != 44*time.Second || s.Groups[1].TotalTime != 53*time.Second || s.ActiveParticipantID != "b2" {
			t.Fatalf("group banks %v, %v; %s active", s.Groups[0].TotalTime, s.Groups[1].TotalTime, s.ActiveParticipantID)
		}
		if got, _ := s.ParticipantRemainingAt("a1", clock.Now()); got != 44*time.Second {
			t.Fatalf("a1 draws on A: %v", got)
		}
	})
}

func TestAddTime(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "add", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
		if _, err := m.StartSession(ctx, "add"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(50 * time.Second)
		s, err := m.AddTime(ctx, "add", "a", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RemainingAt(clock.Now()); got != 40*time.Second {
			t.Fatalf("after adding 30s: %v", got)
		}
		if d, _ := s.Deadline(); !d.Equal(clock.Now().Add(40 * time.Second)) {
			t.Fatalf("deadline %v", d)
		}
		if _, err := m.AddTime(ctx, "add", "a", -50*time.Second); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Fatalf("taking more than is left: %v", err)
		}
		if _, err := m.AddTime(ctx, "add", "nobody", time.Second); !errors.Is(err, synckairos.ErrParticipantNotFound) {
			t.Fatalf("unknown participant: %v", err)
		}
	})
}

// A running session's key outlives its clocks, and the deadline index
// follows the session.
func TestRunningSessionTTLAndDeadlineIndex(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		const ttl = time.Hour
		m, clock := engineManager(t, b, &synckairos.Config{SessionTTL: ttl})
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "long", Mode: synckairos.ModePerParticipant, Participants: players(2*time.Hour, "a", "b")})
		s, err := m.StartSession(ctx, "long")
		if err != nil {
			t.Fatal(err)
		}
		assertTTL(t, b, b.sessionKey(t, "long"), 3*time.Hour)
		deadlines := b.keys(t).Deadlines(partitionOf("long"))
		score, err := b.raw.Do(ctx, b.raw.B().Zscore().Key(deadlines).Member("long").Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Deadline(); score != d.UnixMilli() || !d.Equal(clock.Now().Add(2*time.Hour)) {
			t.Fatalf("index has %d, deadline %v", score, d)
		}
		if _, err := m.PauseSession(ctx, "long"); err != nil {
			t.Fatal(err)
		}
		assertTTL(t, b, b.sessionKey(t, "long"), ttl)
		if n, _ := b.raw.Do(ctx, b.raw.B().Zcard().Key(deadlines).Build()).AsInt64(); n != 0 {
			t.Fatalf("a paused session stays in the deadline index")
		}
	})
}

// Two expirers racing over 1000 sessions: each expiry happens exactly once.
func TestTwoExpirersExpireEachSessionOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		other := b.newManager(&synckairos.Config{Test: synckairos.TestConfig{Clock: clock}})
		ctx := context.Background()
		const n = 1000
		expiries := newCollector[string]()
		sub, err := other.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
			if ev.Kind == synckairos.ChangeUpdated && ev.State.Status == synckairos.StatusExpired {
				expiries.add(ev.SessionID)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		for i := range n {
			id := fmt.Sprint("race-", i)
			mustCreate(t, m, &synckairos.State{SessionID: id, Mode: synckairos.ModeGlobal,
				TotalTime: time.Duration(1+i%50) * time.Second, Participants: players(0, "a", "b")})
			if _, err := m.StartSession(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		runExpirer(t, m)
		runExpirer(t, other)
		clock.Advance(time.Minute)
		got := expiries.waitFor(t, n)
		expiries.quiet(t, n)
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
		}
		for i := range n {
			id := fmt.Sprint("race-", i)
			if seen[id] != 1 {
				t.Errorf("%s expired %d times", id, seen[id])
			}
			if s := mustGet(t, m, id); s.Version != 3 || s.Status != synckairos.StatusExpired {
				t.Errorf("%s: v%d %s", id, s.Version, s.Status)
			}
		}
	})
}

// Random sequences of transitions under the fake clock keep the invariants.
func TestEngineProperties(t *testing.T) {
	t.Parallel()
	m, fake := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for seq := range 100 {
		id := fmt.Sprint("prop-", seq)
		n := 2 + rng.IntN(3)
		initial := time.Duration(30+rng.IntN(300)) * time.Second
		mode := []synckairos.Mode{synckairos.ModePerParticipant, synckairos.ModeGlobal}[rng.IntN(2)]
		state := &synckairos.State{SessionID: id, Mode: mode, Participants: players(initial, "p0", "p1", "p2", "p3", "p4")[:n]}
		if mode == synckairos.ModeGlobal {
			state.Participants, state.TotalTime = players(0, "p0", "p1", "p2", "p3", "p4")[:n], initial
		}
		s := mustCreate(t, m, state)
		total := func(s *synckairos.State) time.Duration {
			var t time.Duration
			for _, p := range s.Participants {
				t += p.TimeUsed
				if mode == synckairos.ModePerParticipant {
					t += p.TotalTime
				}
			}
			if mode == synckairos.ModeGlobal {
				t += s.TotalTime
			}
			return t
		}
		initialTotal := total(s)
		version := s.Version
		for step := 0; step < 40 && s.Status != synckairos.StatusExpired && s.Status != synckairos.StatusCompleted; step++ {
			var err error
			var next *synckairos.State
			switch rng.IntN(6) {
			case 0:
				next, err = m.StartSession(ctx, id)
			case 1, 2:
				var r *synckairos.SwitchResult
				if r, err = m.SwitchCycle(ctx, id, nil); r != nil {
					next = r.State
				}
			case 3:
				next, err = m.PauseSession(ctx, id)
			case 4:
				next, err = m.ResumeSession(ctx, id)
			case 5:
				if rng.IntN(8) == 0 {
					next, err = m.CompleteSession(ctx, id)
				}
			}
			if err != nil && !errors.Is(err, synckairos.ErrInvalidTransition) {
				t.Fatal(err)
			}
			if next == nil {
				next = mustGet(t, m, id)
			}
			if next.Version < version {
				t.Fatalf("%s: version went from %d to %d", id, version, next.Version)
			}
			version = next.Version
			s = next
			// Invariants.
			for _, p := range s.Participants {
				if p.TotalTime < 0 || p.TimeUsed < 0 {
					t.Fatalf("%s: negative bank %+v", id, p)
				}
			}
			if s.TotalTime < 0 {
				t.Fatalf("%s: negative session bank", id)
			}
			if got := total(s); got != initialTotal {
				t.Fatalf("%s step %d: used + banks = %v, want %v (%+v)", id, step, got, initialTotal, s)
			}
			active := 0
			for _, p := range s.Participants {
				if p.IsActive {
					active++
				}
			}
			switch {
			case s.Status == synckairos.StatusRunning && (active != 1 || s.ActiveParticipantID == ""):
				t.Fatalf("%s: running with %d active", id, active)
			case (s.Status == synckairos.StatusExpired || s.Status == synckairos.StatusCompleted) && active != 0:
				t.Fatalf("%s: finished with %d active", id, active)
			}
			if s.Status == synckairos.StatusPaused {
				before := s.RemainingAt(fake.Now())
				fake.Advance(time.Duration(rng.IntN(100)) * time.Second)
				if after := s.RemainingAt(fake.Now()); after != before {
					t.Fatalf("%s: paused clock moved from %v to %v", id, before, after)
				}
				continue
			}
			fake.Advance(time.Duration(rng.IntN(60_000)) * time.Millisecond)
		}
	}
}

// A refused transition returns no state; one refused after an expiry it
// wrote returns that state.
func TestRefusedTransitionReturns(t *testing.T) {
	t.Parallel()
	m, fake := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	mustCreate(t, m, &synckairos.State{SessionID: "r", Mode: synckairos.ModeGlobal, TotalTime: time.Second, Participants: players(0, "a", "b")})
	if s, err := m.ResumeSession(ctx, "r"); s != nil || !errors.Is(err, synckairos.ErrInvalidTransition) {
		t.Fatalf("resume of a pending session: %v, %v", s, err)
	}
	if _, err := m.StartSession(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	fake.Advance(2 * time.Second)
	s, err := m.PauseSession(ctx, "r")
	if s == nil || s.Status != synckairos.StatusExpired || s.Version != 3 || !errors.Is(err, synckairos.ErrInvalidTransition) {
		t.Fatalf("pause after the time ran out: %+v, %v", s, err)
	}
}

// Turns without a time limit (TimePerCycle 0) never expire and count in full.
func TestUntimedTurns(t *testing.T) {
	t.Parallel()
	m, fake := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	mustCreate(t, m, &synckairos.State{SessionID: "u", Mode: synckairos.ModePerCycle, Participants: players(0, "a", "b")})
	s, err := m.StartSession(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Deadline(); ok {
		t.Fatal("an untimed turn has a deadline")
	}
	fake.Advance(40 * time.Minute) // within SessionTTL: with no deadline, the key lives that long
	r, err := m.SwitchCycle(ctx, "u", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.State.Participant("a").TimeUsed; got != 40*time.Minute {
		t.Fatalf("a used %v, want 40m", got)
	}
}
