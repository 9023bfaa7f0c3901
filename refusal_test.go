package synckairos_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// States that cannot be right are refused, naming the field, with nothing
// written.
func TestCreateRefusesWhatCannotBeRight(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	chess := func(edit func(s *synckairos.State)) *synckairos.State {
		s := &synckairos.State{SessionID: "x", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")}
		edit(s)
		return s
	}
	for _, c := range []struct {
		name, field string
		state       *synckairos.State
	}{
		{"delay without its mode", "delay_mode", chess(func(s *synckairos.State) { s.Delay = 5 * time.Second })},
		{"delay mode without a delay", "delay_ms", chess(func(s *synckairos.State) { s.DelayMode = synckairos.DelaySimple })},
		{"increment in global", "increment_ms", &synckairos.State{SessionID: "x", Mode: synckairos.ModeGlobal, TotalTime: time.Minute,
			Increment: time.Second, Participants: players(0, "a", "b")}},
		{"delay in per_group", "delay_ms", &synckairos.State{SessionID: "x", Mode: synckairos.ModePerGroup, Delay: time.Second,
			DelayMode: synckairos.DelayBronstein, Groups: []synckairos.Group{{ID: "g", TotalTime: time.Minute}},
			Participants: []synckairos.Participant{{ID: "a", GroupID: "g"}}}},
		{"increment in per_cycle", "increment_ms", &synckairos.State{SessionID: "x", Mode: synckairos.ModePerCycle,
			TimePerCycle: time.Second, Increment: time.Second, Participants: players(0, "a")}},
		{"max time in per_participant", "max_time_ms", chess(func(s *synckairos.State) { s.MaxTime = time.Hour })},
		{"stages in global", "stages", &synckairos.State{SessionID: "x", Mode: synckairos.ModeGlobal, TotalTime: time.Minute,
			Stages: []synckairos.Stage{{Moves: 40, Time: time.Minute}}, Participants: players(0, "a", "b")}},
		{"an hourglass in per_group", "hourglass", &synckairos.State{SessionID: "x", Mode: synckairos.ModePerGroup, Hourglass: true,
			Groups: []synckairos.Group{{ID: "g", TotalTime: time.Minute}}, Participants: []synckairos.Participant{{ID: "a", GroupID: "g"}}}},
		{"a participant's control in per_cycle", "participants[0].control", &synckairos.State{SessionID: "x", Mode: synckairos.ModePerCycle,
			TimePerCycle: time.Second, Participants: []synckairos.Participant{{ID: "a", Control: &synckairos.ParticipantControl{}}}}},
		{"a starter who has expired", "active_participant_id", chess(func(s *synckairos.State) {
			s.ActiveParticipantID = "a"
			s.Participants[0].HasExpired = true
		})},
		{"overtime in global", "overtime", &synckairos.State{SessionID: "x", Mode: synckairos.ModeGlobal, TotalTime: time.Minute,
			Overtime: &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 3, Period: time.Second}, Participants: players(0, "a", "b")}},
		{"lag compensation in per_cycle", "lag", &synckairos.State{SessionID: "x", Mode: synckairos.ModePerCycle, TimePerCycle: time.Second,
			Lag: &synckairos.LagCompensation{Max: time.Second}, Participants: players(0, "a")}},
		{"delay with overtime", "overtime", chess(func(s *synckairos.State) {
			s.Delay, s.DelayMode = time.Second, synckairos.DelaySimple
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 10, Period: time.Minute}
		})},
		{"byo-yomi with neither main time nor periods", "participants[1].total_time_ms", chess(func(s *synckairos.State) {
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 3, Period: time.Second}
			s.Participants[0].Periods = 3
			s.Participants[1].TotalTime = 0
		})},
		{"session bank in per_participant", "total_time_ms", chess(func(s *synckairos.State) { s.TotalTime = time.Hour })},
		{"participant banks in global", "participants[0].total_time_ms", &synckairos.State{SessionID: "x", Mode: synckairos.ModeGlobal,
			TotalTime: time.Minute, Participants: players(time.Minute, "a", "b")}},
		{"zero starting bank", "participants[1].total_time_ms", chess(func(s *synckairos.State) { s.Participants[1].TotalTime = 0 })},
		{"zero global bank", "total_time_ms", &synckairos.State{SessionID: "x", Mode: synckairos.ModeGlobal, Participants: players(0, "a")}},
		{"running without an active participant", "active_participant_id", chess(func(s *synckairos.State) {
			s.Status, s.CycleStartedAt = synckairos.StatusRunning, &now
		})},
		{"running without a cycle start", "cycle_started_at", chess(func(s *synckairos.State) {
			s.Status, s.ActiveParticipantID = synckairos.StatusRunning, "a"
		})},
		{"running on an expired participant", "active_participant_id", chess(func(s *synckairos.State) {
			s.Status, s.ActiveParticipantID, s.CycleStartedAt = synckairos.StatusRunning, "a", &now
			s.Participants[0].HasExpired = true
		})},
		{"paused without a turn", "active_participant_id", chess(func(s *synckairos.State) { s.Status = synckairos.StatusPaused })},
		{"finished with an active participant", "active_participant_id", chess(func(s *synckairos.State) {
			s.Status, s.ActiveParticipantID = synckairos.StatusCompleted, "a"
		})},
		{"data that is not JSON", "data", chess(func(s *synckairos.State) { s.Data = json.RawMessage(`{"board":`) })},
		{"data with a NUL", "data", chess(func(s *synckairos.State) { s.Data = json.RawMessage(`{"a":"x\u0000y"}`) })},
		{"data not UTF-8", "data", chess(func(s *synckairos.State) { s.Data = json.RawMessage("\"\xff\"") })},
		{"metadata with a NUL", "metadata", chess(func(s *synckairos.State) { s.Metadata = map[string]string{"k": "a\x00b"} })},
		{"continue in global", "on_expiry", &synckairos.State{SessionID: "x", Mode: synckairos.ModeGlobal, TotalTime: time.Minute,
			OnExpiry: synckairos.ExpiryContinue, Participants: players(0, "a", "b")}},
		{"a group outside per_group", "participants[0].group_id", chess(func(s *synckairos.State) { s.Participants[0].GroupID = "g" })},
		{"a group without members", "groups[1]", &synckairos.State{SessionID: "x", Mode: synckairos.ModePerGroup,
			Groups:       []synckairos.Group{{ID: "g", TotalTime: time.Minute}, {ID: "empty", TotalTime: time.Minute}},
			Participants: []synckairos.Participant{{ID: "a", GroupID: "g"}}}},
		{"data too large", "data", chess(func(s *synckairos.State) {
			s.Data = json.RawMessage(`"` + strings.Repeat("x", synckairos.MaxDataBytes) + `"`)
		})},
		{"unknown transition type", "last_transition.type", chess(func(s *synckairos.State) {
			s.LastTransition = &synckairos.Transition{Type: "teleported"}
		})},
	} {
		if c.state.Status == "" {
			c.state.Status = synckairos.StatusPending
		}
		err := c.state.Validate()
		var se *synckairos.StateError
		if !errors.As(err, &se) || se.Field != c.field {
			t.Errorf("%s: %v, want a *StateError on %s", c.name, err, c.field)
		}
	}
	// Through the Manager: refused, nothing written.
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		if _, err := m.CreateSession(ctx, chess(func(s *synckairos.State) { s.Delay = time.Second })); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Fatalf("create with a delay and no mode: %v", err)
		}
		if _, err := m.GetSession(ctx, "x"); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Fatalf("a refused create wrote: %v", err)
		}
		s := mustCreate(t, m, chess(func(*synckairos.State) {}))
		bad := s.Clone()
		bad.Status = synckairos.StatusRunning
		bad.ActiveParticipantID = "a"
		if _, err := m.UpdateSession(ctx, bad); !errors.Is(err, synckairos.ErrInvalidState) || !strings.Contains(err.Error(), "cycle_started_at") {
			t.Fatalf("update to running without a cycle start: %v", err)
		}
		if got := mustGet(t, m, "x"); got.Version != 1 {
			t.Fatalf("a refused update wrote v%d", got.Version)
		}
	})
}

// Refused transitions give their errors, carry the current state, and
// leave the version where it was.
func TestRefusedTransitions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Increment: 2 * time.Second,
			OnExpiry: synckairos.ExpiryContinue, Participants: players(time.Minute, "a", "b", "c")})
		s, err := m.StartSession(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		version := s.Version
		unchanged := func(what string) {
			t.Helper()
			if got := mustGet(t, m, "g"); got.Version != version {
				t.Errorf("%s wrote v%d over v%d", what, got.Version, version)
			}
		}
		current := func(what string, got *synckairos.State) {
			t.Helper()
			if got == nil || got.Version != version {
				t.Errorf("%s: carried state %v, want v%d", what, got, version)
			}
		}

		// Unknown participants, wherever they are named.
		for what, call := range map[string]func() error{
			"switch from":  func() error { _, err := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "z"}); return err },
			"switch to":    func() error { _, err := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{To: "z"}); return err },
			"add time to":  func() error { _, err := m.AddTime(ctx, "g", "z", time.Second); return err },
			"switch to me": func() error { _, err := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{To: "a"}); return err },
		} {
			err := call()
			want := synckairos.ErrParticipantNotFound
			if what == "switch to me" {
				want = synckairos.ErrInvalidState // the turn passes to another
			}
			if !errors.Is(err, want) {
				t.Errorf("%s: %v, want %v", what, err, want)
			}
			unchanged(what)
		}

		// Not your turn, and a turn that ended: distinct, with the state.
		_, err = m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "b"})
		var te *synckairos.TurnError
		if !errors.As(err, &te) || !errors.Is(err, synckairos.ErrNotActive) || errors.Is(err, synckairos.ErrTurnEnded) || te.Active != "a" {
			t.Fatalf("switch by b on a's turn: %v", err)
		}
		current("not your turn", te.Current)
		unchanged("not your turn")

		clock.Advance(time.Second)
		r, err := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "a", Turn: 1})
		if err != nil {
			t.Fatal(err)
		}
		version = r.State.Version
		for _, from := range []string{"a", ""} { // the same move again, from a retry or another instance
			_, err = m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: from, Turn: 1})
			if !errors.As(err, &te) || !errors.Is(err, synckairos.ErrTurnEnded) || errors.Is(err, synckairos.ErrNotActive) {
				t.Fatalf("duplicate of turn 1 (from %q): %v", from, err)
			}
			current("duplicate", te.Current)
			unchanged("duplicate")
		}
		if _, err := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{Turn: 9}); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Errorf("switch naming a turn not started: %v", err)
		}

		// A transition the status does not allow carries the state.
		_, err = m.ResumeSession(ctx, "g")
		var tre *synckairos.TransitionError
		if !errors.As(err, &tre) {
			t.Fatalf("resume of a running session: %v", err)
		}
		current("resume", tre.Current)

		// b runs out; the session goes on with c and a. Time cannot be
		// added to b, whose time ran out.
		clock.Advance(time.Minute)
		r, err = m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "b", Turn: 2})
		if !errors.As(err, &te) || !errors.Is(err, synckairos.ErrNotActive) || r == nil {
			t.Fatalf("b's late switch: %v, %v", r, err)
		}
		s = r.State
		tr := s.LastTransition
		if tr.Type != synckairos.EventParticipantExpired || tr.From != "b" || tr.To != "c" || len(tr.Expired) != 1 ||
			tr.Expired[0] != "b" || tr.Used != time.Minute || s.Turn != 3 || te.Current != s {
			t.Fatalf("the expiry written for b's late switch: %v, turn %d", tr, s.Turn)
		}
		version = s.Version
		if _, err := m.AddTime(ctx, "g", "b", time.Minute); !errors.Is(err, synckairos.ErrInvalidState) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("time added to an expired participant: %v", err)
		}
		unchanged("time added to b")
	})
}

// A Manager call for a session made from inside a MutateSession callback
// for it fails at once, instead of waiting for itself.
func TestReentrantCallsFailAtOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, _ := engineManager(t, b, nil)
		mustCreate(t, m, &synckairos.State{SessionID: "r", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
		mustCreate(t, m, &synckairos.State{SessionID: "other", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var inner error
		_, err := m.MutateSession(ctx, "r", func(s *synckairos.State) error {
			if _, err := m.StartSession(ctx, "other"); err != nil { // another session: fine
				return err
			}
			_, inner = m.StartSession(ctx, "r")
			return inner
		})
		if !errors.Is(inner, synckairos.ErrReentrant) || !errors.Is(err, synckairos.ErrReentrant) || ctx.Err() != nil {
			t.Fatalf("StartSession inside MutateSession: %v, %v", inner, err)
		}
		if _, err := m.StartSession(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		_, err = m.SwitchCycle(ctx, "r", &synckairos.SwitchOptions{Edit: func(*synckairos.State) error {
			_, err := m.MutateSession(ctx, "r", func(*synckairos.State) error { return nil })
			return err
		}})
		if !errors.Is(err, synckairos.ErrReentrant) || ctx.Err() != nil {
			t.Fatalf("MutateSession inside SwitchOptions.Edit: %v", err)
		}
		if got := mustGet(t, m, "r"); got.Version != 2 {
			t.Fatalf("refused calls wrote v%d", got.Version)
		}
	})
}

// Expiries due before a call are written first, alone, as the expirer would:
// a late switch, named or not, is refused and charges nobody else; any other
// transition is then made on the state they leave, in its own version.
func TestExpiriesDueBeforeACallAreTheirOwnWrite(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		mustCreate(t, m, &synckairos.State{SessionID: "turns", Mode: synckairos.ModePerCycle, TimePerCycle: 10 * time.Second,
			Participants: players(0, "a", "b", "c")})
		if _, err := m.StartSession(ctx, "turns"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(15 * time.Second) // a's turn ran out 5 s ago; b's runs
		r, err := m.SwitchCycle(ctx, "turns", nil)
		var te *synckairos.TurnError
		if !errors.As(err, &te) || !errors.Is(err, synckairos.ErrNotActive) || r == nil {
			t.Fatalf("late unnamed switch: %v, %v", r, err)
		}
		s := r.State
		if tr := s.LastTransition; tr.Type != synckairos.EventCycleExpired || tr.From != "a" || tr.To != "b" ||
			s.ActiveParticipantID != "b" || s.Participant("b").CycleCount != 0 || s.Version != 3 {
			t.Fatalf("after the late switch: %v, %s active, b's turns %d, v%d", tr, s.ActiveParticipantID, s.Participant("b").CycleCount, s.Version)
		}

		clock.Advance(12 * time.Second) // b's turn ran out at 20 s; c's has run 7 s
		s, err = m.PauseSession(ctx, "turns")
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != 5 || s.LastTransition.Type != synckairos.EventSessionPaused || s.ActiveParticipantID != "c" ||
			s.CycleElapsed != 7*time.Second {
			t.Fatalf("pause after b's turn ran out: v%d %v, %s active, %v elapsed", s.Version, s.LastTransition, s.ActiveParticipantID, s.CycleElapsed)
		}
		expiry, err := b.newManager(nil).GetSession(ctx, "turns")
		if err != nil || expiry.Version != 5 {
			t.Fatal(expiry, err)
		}
	})
}

// One write commits one transition: a second on the same state is refused,
// and the account of the first is never lost.
func TestOneTransitionPerWrite(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &synckairos.State{SessionID: "x", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusPending, Version: 1,
		Participants: players(time.Minute, "a", "b")}
	if err := s.Start(now); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(now.Add(time.Second)); !errors.Is(err, synckairos.ErrInvalidState) || s.Status != synckairos.StatusRunning {
		t.Fatalf("a second transition on one state: %v, %s", err, s.Status)
	}
}

// A transition never takes effect before the state's last one: a resume
// from an instance whose clock is behind the pause's does not charge the
// difference twice.
func TestTransitionsNeverGoBackInTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &synckairos.State{SessionID: "x", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusPending, Version: 1,
		Participants: players(time.Minute, "a", "b")}
	step := func(f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		s.Version++
	}
	step(func() error { return s.Start(at) })
	step(func() error { return s.Pause(at.Add(10 * time.Second)) })
	step(func() error { return s.Resume(at.Add(9995 * time.Millisecond)) }) // a clock 5 ms behind
	step(func() error { return s.Switch(at.Add(20*time.Second), nil) })
	if used := s.LastTransition.Used; used != 20*time.Second {
		t.Fatalf("the turn charged %v, ran 20s", used)
	}
}
