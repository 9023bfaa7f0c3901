package synckairos_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// Every validation rule, on create and on update, on both backends: the
// error names the field, and nothing is written.
func TestValidationRules(t *testing.T) {
	t.Parallel()
	type rule struct {
		name  string
		field string
		edit  func(s *synckairos.State)
	}
	bigMeta := map[string]string{}
	for i := range synckairos.MaxMetadataKeys + 1 {
		bigMeta[strings.Repeat("k", i+1)] = "v"
	}
	rules := []rule{
		{"empty session ID", "session_id", func(s *synckairos.State) { s.SessionID = "" }},
		{"long session ID", "session_id", func(s *synckairos.State) { s.SessionID = strings.Repeat("x", synckairos.MaxSessionIDBytes+1) }},
		{"non-printable session ID", "session_id", func(s *synckairos.State) { s.SessionID = "a\nb" }},
		{"invalid UTF-8 session ID", "session_id", func(s *synckairos.State) { s.SessionID = "a\xffb" }},
		{"no participants", "participants", func(s *synckairos.State) { s.Participants = nil }},
		{"too many participants", "participants", func(s *synckairos.State) {
			s.Participants = newState(s.SessionID, synckairos.MaxParticipants+1).Participants
		}},
		{"empty participant ID", "participants[1].participant_id", func(s *synckairos.State) { s.Participants[1].ID = "" }},
		{"duplicate participant ID", "participants[1].participant_id", func(s *synckairos.State) { s.Participants[1].ID = s.Participants[0].ID }},
		{"non-printable participant ID", "participants[0].participant_id", func(s *synckairos.State) { s.Participants[0].ID = "\x00" }},
		{"non-printable group ID", "participants[0].group_id", func(s *synckairos.State) { s.Participants[0].GroupID = "\t" }},
		{"negative participant bank", "participants[1].total_time_ms", func(s *synckairos.State) { s.Participants[1].TotalTime = -time.Second }},
		{"participant bank over MaxBank", "participants[0].total_time_ms", func(s *synckairos.State) { s.Participants[0].TotalTime = synckairos.MaxBank + time.Hour }},
		{"negative time used", "participants[0].time_used_ms", func(s *synckairos.State) { s.Participants[0].TimeUsed = -1 }},
		{"negative cycle count", "participants[0].cycle_count", func(s *synckairos.State) { s.Participants[0].CycleCount = -1 }},
		{"unknown mode", "mode", func(s *synckairos.State) { s.Mode = "blitz" }},
		{"empty mode", "mode", func(s *synckairos.State) { s.Mode = "" }},
		{"unknown status", "status", func(s *synckairos.State) { s.Status = "done" }},
		{"negative total time", "total_time_ms", func(s *synckairos.State) { s.TotalTime = -time.Millisecond }},
		{"total time over MaxBank", "total_time_ms", func(s *synckairos.State) { s.TotalTime = synckairos.MaxBank + time.Millisecond }},
		{"negative time per cycle", "time_per_cycle_ms", func(s *synckairos.State) { s.TimePerCycle = -time.Second }},
		{"negative increment", "increment_ms", func(s *synckairos.State) { s.Increment = -time.Second }},
		{"max time over MaxBank", "max_time_ms", func(s *synckairos.State) { s.MaxTime = 2 * synckairos.MaxBank }},
		{"unknown active participant", "active_participant_id", func(s *synckairos.State) { s.ActiveParticipantID = "ghost" }},
		{"time before 1970", "cycle_started_at", func(s *synckairos.State) {
			t := time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)
			s.CycleStartedAt = &t
		}},
		{"too many metadata keys", "metadata", func(s *synckairos.State) { s.Metadata = bigMeta }},
		{"metadata too large", "metadata", func(s *synckairos.State) {
			s.Metadata = map[string]string{"blob": strings.Repeat("x", synckairos.MaxMetadataBytes)}
		}},
		{"empty metadata key", "metadata", func(s *synckairos.State) { s.Metadata = map[string]string{"": "x"} }},
		{"invalid UTF-8 metadata", "metadata", func(s *synckairos.State) { s.Metadata = map[string]string{"k": "\xff"} }},
		{"overtime with an increment", "overtime", func(s *synckairos.State) {
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 5, Period: 30 * time.Second}
		}},
		{"unknown overtime", "overtime.kind", func(s *synckairos.State) {
			s.Increment, s.Overtime = 0, &synckairos.Overtime{Kind: "korean", Periods: 5, Period: 30 * time.Second}
		}},
		{"byo-yomi without periods", "overtime", func(s *synckairos.State) {
			s.Increment, s.Overtime = 0, &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Period: 30 * time.Second}
		}},
		{"Canadian block with periods", "overtime", func(s *synckairos.State) {
			s.Increment, s.Overtime = 0, &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 20, Periods: 2, Period: time.Minute}
		}},
		{"overtime period of zero", "overtime.period_ms", func(s *synckairos.State) {
			s.Increment, s.Overtime = 0, &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 20}
		}},
		{"periods without byo-yomi", "participants[0].periods", func(s *synckairos.State) { s.Participants[0].Periods = 2 }},
		{"block moves without a Canadian block", "participants[1].block_moves", func(s *synckairos.State) { s.Participants[1].BlockMoves = 2 }},
		{"lag quota without lag compensation", "participants[0].lag_quota_ms", func(s *synckairos.State) { s.Participants[0].LagQuota = time.Second }},
		{"lag quota above the maximum", "participants[0].lag_quota_ms", func(s *synckairos.State) {
			s.Lag = &synckairos.LagCompensation{Gain: 100 * time.Millisecond, Max: 700 * time.Millisecond}
			s.Participants[0].LagQuota = time.Second
		}},
		{"lag compensation without a maximum", "lag.max_ms", func(s *synckairos.State) {
			s.Lag = &synckairos.LagCompensation{Gain: 100 * time.Millisecond}
		}},
		{"a stage of no time", "stages[0].time_ms", func(s *synckairos.State) { s.Stages = []synckairos.Stage{{Moves: 40}} }},
		{"stages by moves out of order", "stages[1].moves", func(s *synckairos.State) {
			s.Stages = []synckairos.Stage{{Moves: 40, Time: time.Minute}, {Moves: 30, Time: time.Minute}}
		}},
		{"a stage by moves after one by time", "stages[1].moves", func(s *synckairos.State) {
			s.Stages = []synckairos.Stage{{Time: time.Minute}, {Moves: 30, Time: time.Minute}}
		}},
		{"stages with overtime", "stages", func(s *synckairos.State) {
			s.Increment = 0
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 5, Period: 30 * time.Second}
			s.Stages = []synckairos.Stage{{Moves: 40, Time: time.Minute}}
		}},
		{"a participant beyond the stages", "participants[0].stage", func(s *synckairos.State) { s.Participants[0].Stage = 1 }},
		{"hourglass with an increment", "hourglass", func(s *synckairos.State) { s.Hourglass = true }},
		{"a negative bank cap", "bank_cap_ms", func(s *synckairos.State) { s.BankCap = -time.Second }},
		{"a per-move maximum over MaxBank", "move_limit_ms", func(s *synckairos.State) { s.MoveLimit = synckairos.MaxBank + time.Hour }},
		{"a first-move timeout without untimed moves", "first_move_timeout_ms", func(s *synckairos.State) { s.FirstMoveTimeout = time.Minute }},
		{"more untimed moves than two rounds", "untimed_moves", func(s *synckairos.State) { s.UntimedMoves = 7 }},
		{"a participant's delay without a delay mode", "participants[1].control.delay_ms", func(s *synckairos.State) {
			s.Participants[1].Control = &synckairos.ParticipantControl{Delay: time.Second}
		}},
		{"a participant's negative increment", "participants[1].control.increment_ms", func(s *synckairos.State) {
			s.Participants[1].Control = &synckairos.ParticipantControl{Increment: -time.Second}
		}},
		{"initial lag quota above the maximum", "lag", func(s *synckairos.State) {
			s.Lag = &synckairos.LagCompensation{Gain: 100 * time.Millisecond, Initial: time.Second, Max: 700 * time.Millisecond}
		}},
	}
	check := func(t *testing.T, what string, err error, r rule) {
		t.Helper()
		var se *synckairos.StateError
		if !errors.As(err, &se) || !errors.Is(err, synckairos.ErrInvalidState) {
			t.Errorf("%s with %s: %v, want a *StateError matching ErrInvalidState", what, r.name, err)
			return
		}
		if se.Field != r.field {
			t.Errorf("%s with %s: field %q, want %q (%v)", what, r.name, se.Field, r.field, err)
		}
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		ctx := context.Background()
		base := mustCreate(t, m, newState("valid", 3))
		for _, r := range rules {
			s := newState("fresh", 3)
			r.edit(s)
			_, err := m.CreateSession(ctx, s)
			check(t, "CreateSession", err, r)

			s = base.Clone()
			r.edit(s)
			_, err = m.UpdateSession(ctx, s)
			check(t, "UpdateSession", err, r)

			if r.field != "session_id" {
				_, err = m.MutateSession(ctx, "valid", func(s *synckairos.State) error { r.edit(s); return nil })
				check(t, "MutateSession", err, r)
			}
		}
		if got := mustGet(t, m, "valid"); got.Version != 1 {
			t.Errorf("refused updates moved the session to version %d", got.Version)
		}
		if n := keyCount(t, b); n != 1 {
			t.Errorf("%d keys stored, want only the valid session's", n)
		}
		// Lookups check IDs too, before touching Redis.
		for _, id := range []string{"", "a\x00"} {
			if _, err := m.GetSession(ctx, id); !errors.Is(err, synckairos.ErrInvalidState) {
				t.Errorf("GetSession(%q): %v, want ErrInvalidState", id, err)
			}
			if err := m.DeleteSession(ctx, id); !errors.Is(err, synckairos.ErrInvalidState) {
				t.Errorf("DeleteSession(%q): %v, want ErrInvalidState", id, err)
			}
		}
		if _, err := m.CreateSession(ctx, nil); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Errorf("CreateSession(nil): %v", err)
		}
		if _, err := m.UpdateSession(ctx, nil); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Errorf("UpdateSession(nil): %v", err)
		}
		unread := newState("valid", 3)
		if _, err := m.UpdateSession(ctx, unread); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Errorf("UpdateSession at version 0: %v, want ErrInvalidState", err)
		}
	})
}

func TestValidationLimitsAreInclusive(t *testing.T) {
	t.Parallel()
	s := newState(strings.Repeat("x", synckairos.MaxSessionIDBytes), synckairos.MaxParticipants)
	s.Participants[0].TotalTime = synckairos.MaxBank
	s.Increment = synckairos.MaxBank
	s.Metadata = map[string]string{"blob": strings.Repeat("x", synckairos.MaxMetadataBytes-4)}
	s.SessionID = "ünïcode id with spaces"
	if err := s.Validate(); err != nil {
		t.Fatalf("a state at every limit: %v", err)
	}
}

func TestStateErrorMessage(t *testing.T) {
	t.Parallel()
	s := newState("m", 2)
	s.Participants[1].TotalTime = synckairos.MaxBank + time.Hour
	err := s.Validate()
	want := "synckairos: invalid state: participants[1].total_time_ms: 8761h0m0s, want at most 8760h0m0s"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}
