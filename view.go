package synckairos

import (
	"encoding/json"
	"time"
)

// View is a session as a client displays it, at one server time: for each
// participant what its clock shows then, and how it runs on from there, so
// that a browser shows the right time without the rules of the time
// control. Its JSON form is documented in docs/VIEW.md, and declared for
// TypeScript in skhttp/clock.d.ts.
type View struct {
	SessionID string `json:"session_id"`
	Life      int64  `json:"life"`
	Version   int64  `json:"version"`
	Mode      Mode   `json:"mode"`
	Status    Status `json:"status"`
	Turn      int64  `json:"turn"`
	// ServerTime is the server time the view was taken at: every duration
	// of the view is as of then.
	ServerTime time.Time `json:"server_time"`
	// Active is the participant whose turn it is, if any.
	Active string `json:"active_participant_id"`
	// Deadline is when the running turn's time runs out (its flag grace
	// aside), if it can.
	Deadline *time.Time `json:"deadline"`
	// Participants are the participants' clocks, in rotation order.
	Participants []ParticipantView `json:"participants"`
	// Control is what a client needs of the time control to run the clocks
	// on: the delay and its mode, the overtime.
	Control ViewControl `json:"control"`
	// LastTransition is what the last change did (State.LastTransition).
	LastTransition *Transition `json:"last_transition"`
	// Metadata and Data are the host's, as stored.
	Metadata map[string]string `json:"metadata,omitempty"`
	Data     json.RawMessage   `json:"data,omitempty"`
}

// ViewControl is the part of a time control a client runs clocks with.
type ViewControl struct {
	Increment time.Duration `json:"-"`
	Delay     time.Duration `json:"-"`
	DelayMode DelayMode     `json:"delay_mode"`
	Overtime  *Overtime     `json:"-"`
}

// ParticipantView is one participant's clock at the view's server time.
// Durations are in milliseconds in JSON ("…_ms").
type ParticipantView struct {
	ID string `json:"participant_id"`
	// Running says the clock runs: from ServerTime on, Remaining falls by
	// the time that passes (and Delay first, Main after it, with a simple
	// delay; Period in overtime).
	Running bool `json:"running"`
	Reading
}

// ViewAt returns the session as a client displays it at now, the server
// time (Manager.Now).
func (s *State) ViewAt(now time.Time) *View {
	now = msTime(now)
	v := &View{
		SessionID: s.SessionID, Life: s.Life, Version: s.Version, Mode: s.Mode, Status: s.Status, Turn: s.Turn,
		ServerTime: now, Active: s.ActiveParticipantID, LastTransition: s.LastTransition,
		Control:  ViewControl{Increment: s.Increment, Delay: s.Delay, DelayMode: s.DelayMode, Overtime: s.Overtime},
		Metadata: s.Metadata, Data: s.Data,
	}
	if d, ok := s.Deadline(); ok {
		v.Deadline = &d
	}
	v.Participants = make([]ParticipantView, len(s.Participants))
	for i := range s.Participants {
		r, _ := s.ReadingAt(s.Participants[i].ID, now)
		v.Participants[i] = ParticipantView{ID: r.Participant, Running: r.Running, Reading: r}
	}
	return v
}

// MarshalJSON writes the view's JSON form: durations in whole
// milliseconds.
func (v *View) MarshalJSON() ([]byte, error) {
	type view View // without this method
	return json.Marshal(&struct {
		*view
		Control viewControlJSON `json:"control"`
	}{(*view)(v), viewControlJSON{
		IncrementMs: v.Control.Increment.Milliseconds(), DelayMs: v.Control.Delay.Milliseconds(),
		DelayMode: v.Control.DelayMode, Overtime: overtimeJSONOf(v.Control.Overtime),
	}})
}

type viewControlJSON struct {
	IncrementMs int64         `json:"increment_ms"`
	DelayMs     int64         `json:"delay_ms"`
	DelayMode   DelayMode     `json:"delay_mode"`
	Overtime    *overtimeJSON `json:"overtime"`
}

type overtimeJSON struct {
	Kind     OvertimeKind `json:"kind"`
	Periods  int          `json:"periods"`
	Moves    int          `json:"moves"`
	PeriodMs int64        `json:"period_ms"`
}

func overtimeJSONOf(ov *Overtime) *overtimeJSON {
	if ov == nil {
		return nil
	}
	return &overtimeJSON{Kind: ov.Kind, Periods: ov.Periods, Moves: ov.Moves, PeriodMs: ov.Period.Milliseconds()}
}

// MarshalJSON writes a participant's clock: durations in whole
// milliseconds.
func (p ParticipantView) MarshalJSON() ([]byte, error) {
	r := p.Reading
	return json.Marshal(struct {
		ID          string `json:"participant_id"`
		Running     bool   `json:"running"`
		Expired     bool   `json:"expired"`
		RemainingMs int64  `json:"remaining_ms"`
		MainMs      int64  `json:"main_ms"`
		DelayMs     int64  `json:"delay_ms"`
		InOvertime  bool   `json:"in_overtime"`
		PeriodMs    int64  `json:"period_ms"`
		Periods     int    `json:"periods"`
		BlockMoves  int    `json:"block_moves"`
		Stage       int    `json:"stage"`
		Untimed     bool   `json:"untimed"`
		MoveLeftMs  int64  `json:"move_left_ms"`
		LagQuotaMs  int64  `json:"lag_quota_ms"`
	}{p.ID, p.Running, r.Expired, r.Remaining.Milliseconds(), r.Main.Milliseconds(), r.Delay.Milliseconds(),
		r.InOvertime, r.Period.Milliseconds(), r.Periods, r.BlockMoves, r.Stage, r.Untimed,
		r.MoveLeft.Milliseconds(), r.LagQuota.Milliseconds()})
}
