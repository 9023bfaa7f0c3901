package synckairos

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// Mode is how a session's time is kept.
type Mode string

// The modes of a session.
const (
	// ModePerParticipant gives every participant a bank of its own that runs
	// while it is active: a chess clock.
	ModePerParticipant Mode = "per_participant"
	// ModePerCycle gives every turn the same TimePerCycle.
	ModePerCycle Mode = "per_cycle"
	// ModePerGroup lets participants with the same GroupID share one bank.
	ModePerGroup Mode = "per_group"
	// ModeGlobal runs one bank, TotalTime, for the whole session.
	ModeGlobal Mode = "global"
	// ModeCountUp is a stopwatch, bounded by MaxTime when that is set.
	ModeCountUp Mode = "count_up"
)

var modes = []Mode{ModePerParticipant, ModePerCycle, ModePerGroup, ModeGlobal, ModeCountUp}

// Status is where a session is in its lifecycle.
type Status string

// The statuses of a session.
const (
	StatusPending   Status = "pending"   // created, not started
	StatusRunning   Status = "running"   // a clock is running
	StatusPaused    Status = "paused"    // every clock is stopped
	StatusExpired   Status = "expired"   // finished: time ran out
	StatusCompleted Status = "completed" // finished by the host
	StatusCancelled Status = "cancelled" // abandoned by the host
)

var statuses = []Status{StatusPending, StatusRunning, StatusPaused, StatusExpired, StatusCompleted, StatusCancelled}

// Participant is one player, team member or seat of a session.
type Participant struct {
	// ID identifies the participant within its session.
	ID string
	// Index is the participant's position in State.Participants, the
	// rotation order. The Manager sets it on every write.
	Index int
	// GroupID names the participant's group in ModePerGroup.
	GroupID string
	// TotalTime is the participant's bank as of the last cycle boundary.
	TotalTime time.Duration
	// TimeUsed is the running time of the participant's completed cycles:
	// how long its turns took, delays and increments aside (the time its
	// bank was charged is TimeUsed less the refunds and the delays that
	// kept a turn off the bank; Transition has each turn's parts).
	TimeUsed time.Duration
	// CycleCount is the number of cycles (turns) the participant completed.
	CycleCount int
	// IsActive reports whether it is the participant's turn. The Manager
	// sets it from State.ActiveParticipantID on every write, which is the
	// field to change.
	IsActive bool
	// HasExpired reports whether the participant ran out of time.
	HasExpired bool
	// Periods is, with byo-yomi (State.Overtime), the number of periods the
	// participant has left. CreateSession sets it to the overtime's Periods
	// when it is zero.
	Periods int
	// BlockMoves is, with Canadian overtime, the number of moves the
	// participant has still to make in its running block; zero while it is
	// in its main time.
	BlockMoves int
	// Stage is the number of State.Stages the participant has begun: 0 in
	// the first stage.
	Stage int
	// Control is the participant's own increment and delay, in place of
	// the session's; nil for the session's.
	Control *ParticipantControl
	// LagQuota is, with lag compensation (State.Lag), the time left to
	// compensate the participant's lag with. CreateSession sets it to the
	// compensation's Initial when it is zero.
	LagQuota time.Duration
}

// Group is the shared bank of the participants with its ID as GroupID, in
// ModePerGroup.
type Group struct {
	ID string
	// TotalTime is the group's bank as of the last cycle boundary.
	TotalTime time.Duration
	// TimeUsed is the time the group's members spent in completed cycles.
	TimeUsed   time.Duration
	HasExpired bool
}

// DelayMode is the kind of delay of a ModePerParticipant session.
type DelayMode string

// The delay modes.
const (
	DelayNone      DelayMode = ""          // no delay
	DelayBronstein DelayMode = "bronstein" // the time a turn used is refunded after it, up to Delay
	DelaySimple    DelayMode = "simple"    // a turn's bank starts running after Delay
)

// ExpiryAction is what happens when time runs out.
type ExpiryAction string

// The expiry actions.
const (
	// ExpiryDefault is each mode's default: ExpiryContinue for
	// ModePerCycle (the turn is forfeited), ExpiryEndSession for the others.
	ExpiryDefault ExpiryAction = ""
	// ExpiryEndSession ends the session, as expired.
	ExpiryEndSession ExpiryAction = "end_session"
	// ExpiryContinue goes on: in ModePerCycle with the next participant; in
	// ModePerParticipant and ModePerGroup the expired participant (or
	// group) is skipped while at least two others remain.
	ExpiryContinue ExpiryAction = "continue"
)

// State is the whole state of one session, as stored in Redis.
//
// Times are stored with millisecond precision: the Manager truncates
// durations and times to whole milliseconds before it writes them, and
// returns the state exactly as stored.
type State struct {
	// SessionID identifies the session: non-empty, printable, at most
	// MaxSessionIDBytes.
	SessionID string
	// Life tells apart the lives of a reused session ID: each CreateSession
	// starts a new one, and the Manager gives it a number unique for the ID
	// and larger than that of any earlier life (the Redis server time of the
	// create in microseconds, or more). A write based on a state of another
	// life is refused as a conflict; the audit trail keys its rows by
	// (session ID, life, version). The Manager owns it.
	Life int64
	Mode Mode
	// Status defaults to StatusPending on CreateSession.
	Status Status
	// Version is the number of committed changes. The Manager owns it:
	// CreateSession stores version 1, and each update adds one.
	Version int64
	// Turn is the number of the running turn: 0 before the session starts,
	// 1 for the first turn, and one more for each turn ended by a switch or
	// by its expiry. SwitchOptions.Turn names it, so that a switch is made
	// once however often it is sent. The Manager keeps it.
	Turn int64
	// Participants, in rotation order: 1 to MaxParticipants.
	Participants []Participant
	// ActiveParticipantID names the participant whose turn it is, if any.
	ActiveParticipantID string
	// TotalTime is the session's bank in ModeGlobal.
	TotalTime time.Duration
	// TimePerCycle is the length of a turn in ModePerCycle.
	TimePerCycle time.Duration
	// Increment is added to a participant's bank after each completed turn.
	Increment time.Duration
	// MaxTime bounds a ModeCountUp session; zero means no bound.
	MaxTime time.Duration
	// Delay and DelayMode are the delay of ModePerParticipant: with
	// DelayBronstein the time a turn used is refunded after it, up to Delay;
	// with DelaySimple a turn's bank starts running only after Delay.
	Delay     time.Duration
	DelayMode DelayMode
	// OnExpiry says what happens when a bank or a turn runs out; the zero
	// value is each mode's default (see ExpiryAction).
	OnExpiry ExpiryAction
	// Overtime is what follows every participant's main time in
	// ModePerParticipant: byo-yomi or Canadian overtime; nil for none.
	Overtime *Overtime
	// Lag is the lag compensation of ModePerParticipant, and its flag
	// grace; nil for none.
	Lag *LagCompensation
	// Stages are the stages of ModePerParticipant after the first (the
	// participants' starting banks and Increment): time added after a
	// number of moves, or when a bank runs out.
	Stages []Stage
	// BankCap, above 0, is the most an increment lifts a bank to
	// (ModePerParticipant); a bank above it keeps what it has.
	BankCap time.Duration
	// MoveLimit, above 0, is the most one turn may run, whatever the bank
	// holds (ModePerParticipant; correspondence: days per move): a turn
	// reaching it runs out.
	MoveLimit time.Duration
	// Hourglass makes the time the mover's bank runs go to the bank of the
	// next to move (ModePerParticipant): the sum of the banks never falls.
	Hourglass bool
	// UntimedMoves is the number of turns at the start of the session that
	// run no bank (ModePerParticipant; lichess: 2, each player's first
	// move). FirstMoveTimeout, above 0, bounds each of them: one that runs
	// that long cancels the session, as a transition of type
	// EventSessionAborted.
	UntimedMoves     int
	FirstMoveTimeout time.Duration
	// Groups are the shared banks of ModePerGroup, one per GroupID.
	Groups []Group
	// CycleElapsed is the time the running cycle had run before
	// CycleStartedAt: a cycle paused and resumed keeps what it had used.
	CycleElapsed time.Duration
	// CycleStartedAt is the server time at which the running cycle started.
	CycleStartedAt *time.Time
	// SessionStartedAt is the server time at which the session started.
	SessionStartedAt *time.Time
	// SessionCompletedAt is the server time at which the session finished.
	SessionCompletedAt *time.Time
	// CreatedAt and UpdatedAt are set by the Manager from its clock.
	CreatedAt time.Time
	UpdatedAt time.Time
	// LastTransition is what the change that wrote this version did: its
	// type and facts (who moved, the time used, increment and refund, time
	// added, who expired). The Manager sets it on every write.
	LastTransition *Transition
	// Metadata is the host's own data, stored and returned unchanged: at
	// most MaxMetadataKeys keys and MaxMetadataBytes bytes in all.
	Metadata map[string]string
	// Data is the host's own state of the game as one JSON value (the
	// board, the moves, the score), for what string metadata does not hold
	// well: at most MaxDataBytes, stored compacted, published and audited
	// with the clock. Commit it with the move: SwitchOptions.Edit.
	Data json.RawMessage
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	b := new(stateBlock) // the State with its times, last transition and two participants
	c := &b.state
	*c = *s
	if s.Participants != nil && len(s.Participants) <= len(b.participants) {
		c.Participants = append(b.participants[:0], s.Participants...)
	} else {
		c.Participants = slices.Clone(s.Participants)
	}
	c.Groups = slices.Clone(s.Groups)
	c.CycleStartedAt = cloneTimeInto(&b.times[0], s.CycleStartedAt)
	c.SessionStartedAt = cloneTimeInto(&b.times[1], s.SessionStartedAt)
	c.SessionCompletedAt = cloneTimeInto(&b.times[2], s.SessionCompletedAt)
	if s.Overtime != nil {
		o := *s.Overtime
		c.Overtime = &o
	}
	if s.Lag != nil {
		l := *s.Lag
		c.Lag = &l
	}
	c.Stages = slices.Clone(s.Stages)
	for i := range c.Participants {
		if pc := c.Participants[i].Control; pc != nil {
			own := *pc
			c.Participants[i].Control = &own
		}
	}
	c.Metadata = maps.Clone(s.Metadata)
	c.Data = bytes.Clone(s.Data)
	if s.LastTransition != nil {
		b.transition = *s.LastTransition
		b.transition.Expired = slices.Clone(b.transition.Expired)
		c.LastTransition = &b.transition
	}
	return c
}

// cloneTimeInto copies *t into *into, or returns nil for a nil t.
func cloneTimeInto(into, t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	*into = *t
	return into
}

// Participant returns the participant with the given ID, or nil.
func (s *State) Participant(id string) *Participant {
	for i := range s.Participants {
		if s.Participants[i].ID == id {
			return &s.Participants[i]
		}
	}
	return nil
}

// normalize brings s to the form in which it is stored: indexes set from
// positions, active flags from ActiveParticipantID, durations and times in
// whole milliseconds, times in UTC. It runs after validation.
func (s *State) normalize() {
	for i := range s.Participants {
		p := &s.Participants[i]
		p.Index = i
		p.IsActive = p.ID == s.ActiveParticipantID && s.ActiveParticipantID != ""
		p.TotalTime = p.TotalTime.Truncate(time.Millisecond)
		p.TimeUsed = p.TimeUsed.Truncate(time.Millisecond)
		p.LagQuota = p.LagQuota.Truncate(time.Millisecond)
		if c := p.Control; c != nil {
			c.Increment, c.Delay = c.Increment.Truncate(time.Millisecond), c.Delay.Truncate(time.Millisecond)
		}
	}
	s.BankCap = s.BankCap.Truncate(time.Millisecond)
	s.MoveLimit = s.MoveLimit.Truncate(time.Millisecond)
	s.FirstMoveTimeout = s.FirstMoveTimeout.Truncate(time.Millisecond)
	for i := range s.Stages {
		s.Stages[i].Increment = s.Stages[i].Increment.Truncate(time.Millisecond)
	}
	if len(s.Stages) == 0 {
		s.Stages = nil
	}
	if l := s.Lag; l != nil {
		for _, d := range []*time.Duration{&l.Gain, &l.Initial, &l.Max, &l.Grace} {
			*d = d.Truncate(time.Millisecond)
		}
	}
	s.TotalTime = s.TotalTime.Truncate(time.Millisecond)
	s.TimePerCycle = s.TimePerCycle.Truncate(time.Millisecond)
	s.Increment = s.Increment.Truncate(time.Millisecond)
	s.MaxTime = s.MaxTime.Truncate(time.Millisecond)
	s.Delay = s.Delay.Truncate(time.Millisecond)
	s.CycleElapsed = s.CycleElapsed.Truncate(time.Millisecond)
	for i := range s.Groups {
		g := &s.Groups[i]
		g.TotalTime = g.TotalTime.Truncate(time.Millisecond)
		g.TimeUsed = g.TimeUsed.Truncate(time.Millisecond)
	}
	if len(s.Groups) == 0 {
		s.Groups = nil
	}
	for _, t := range []*time.Time{s.CycleStartedAt, s.SessionStartedAt, s.SessionCompletedAt, &s.CreatedAt, &s.UpdatedAt} {
		if t != nil {
			*t = msTime(*t)
		}
	}
	if len(s.Metadata) == 0 {
		s.Metadata = nil
	}
	if len(s.Data) > 0 {
		var b bytes.Buffer
		if json.Compact(&b, s.Data) == nil { // valid: Validate ran
			s.Data = b.Bytes()
		}
	}
	if len(s.Data) == 0 || string(s.Data) == "null" {
		s.Data = nil // null is no data, as a read returns it
	}
	if t := s.LastTransition; t != nil {
		t.At = msTime(t.At)
		for _, d := range []*time.Duration{&t.Used, &t.Increment, &t.Refund, &t.Added, &t.Compensation, &t.Credit, &t.Transferred} {
			*d = d.Truncate(time.Millisecond)
		}
		if len(t.Expired) == 0 {
			t.Expired = nil
		}
	}
}

func msTime(t time.Time) time.Time {
	return t.Truncate(time.Millisecond).UTC()
}
