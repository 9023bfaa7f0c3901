package synckairos

import (
	"fmt"
	"time"
)

// OvertimeKind names what follows a participant's main time.
type OvertimeKind string

// The kinds of overtime.
const (
	// OvertimeByoYomi is Japanese byo-yomi: after the main time, Periods
	// periods of Period each. A move made within a period keeps it (the
	// next turn has the whole period again); a turn that overruns a period
	// uses it up and runs on in the next; the last one running out is a
	// flag.
	OvertimeByoYomi OvertimeKind = "byoyomi"
	// OvertimeCanadian is Canadian overtime: after the main time, Moves
	// moves within a block of Period; once they are made, a new block of
	// Period for Moves moves begins (what was left of the old one is lost);
	// the block running out is a flag.
	OvertimeCanadian OvertimeKind = "canadian"
)

// Overtime is what follows the main time of every participant of a
// ModePerParticipant session (State.Overtime): byo-yomi or Canadian
// overtime. A session with overtime has no increment and no delay.
type Overtime struct {
	Kind OvertimeKind
	// Periods is the number of byo-yomi periods (1 to MaxPeriods); zero
	// for Canadian overtime.
	Periods int
	// Moves is the number of moves of a Canadian block (1 to MaxPeriods);
	// zero for byo-yomi.
	Moves int
	// Period is the length of a byo-yomi period or a Canadian block.
	Period time.Duration
}

// MaxPeriods bounds Overtime.Periods and Overtime.Moves.
const MaxPeriods = 1000

// LagCompensation is the lag compensation of a ModePerParticipant session
// (State.Lag), after lichess's: each participant has a quota of time
// (Participant.LagQuota) that pays for the network lag its moves report
// (SwitchOptions.Lag), never more than the lag itself nor than the quota.
// The quota starts at Initial, and each move adds Gain to it, less what the
// move was compensated, up to Max: a steady lag below Gain is always
// compensated whole; a longer one, or a player faking lag, soon runs the
// quota dry.
//
// Grace lets a move be accepted after the mover's deadline when its
// reported lag, compensated, brings it back before the deadline: the expiry
// is applied min(Grace, the mover's quota) after the deadline, and the
// expirer waits for it. A switch arriving later than that is too late
// whatever lag it reports.
//
// lichess's numbers, for a game of an estimated T = base + 40 × increment:
// Gain = min(1 s, 0.4 % of T + 150 ms) (3+2: 1 s; 1+0: 390 ms), Initial =
// 3 × Gain, Max = 7 × Gain, and a grace of the quota up to 2 s. See
// docs/CONTROLS.md for how to choose them.
type LagCompensation struct {
	Gain    time.Duration
	Initial time.Duration
	Max     time.Duration
	Grace   time.Duration
}

// MaxLagQuota bounds LagCompensation.Max.
const MaxLagQuota = time.Minute

// reserve returns the time p has beyond its bank TotalTime before it runs
// out: its byo-yomi periods, or the Canadian block that follows its main
// time.
func (s *State) reserve(p *Participant) time.Duration {
	if s.Mode != ModePerParticipant {
		return 0
	}
	ov := s.Overtime
	if ov == nil {
		var r time.Duration // the stages by time to come
		for k := p.Stage; k < len(s.Stages) && s.Stages[k].Moves == 0; k++ {
			r += s.Stages[k].Time
		}
		return r
	}
	switch ov.Kind {
	case OvertimeByoYomi:
		return time.Duration(p.Periods) * ov.Period
	case OvertimeCanadian:
		if p.BlockMoves == 0 { // in main time: a whole block follows it
			return ov.Period
		}
	}
	return 0
}

// grace returns how long after the running turn's deadline its expiry is
// applied: min(Lag.Grace, the mover's quota); zero without lag
// compensation.
func (s *State) grace() time.Duration {
	if s.Lag == nil || s.Lag.Grace == 0 || s.untimed() {
		return 0
	}
	p := s.Participant(s.ActiveParticipantID)
	if p == nil {
		return 0
	}
	return min(s.Lag.Grace, p.LagQuota)
}

// expiresAt returns when the running turn's expiry is applied: its
// deadline, plus the flag grace. The deadline index holds it.
func (s *State) expiresAt() (time.Time, bool) {
	d, ok := s.Deadline()
	if !ok {
		return d, false
	}
	return d.Add(s.grace()), true
}

// compensation returns what a move that ran e and reports lag is
// compensated: min(lag, the mover's quota, e).
func (s *State) compensation(lag, e time.Duration) time.Duration {
	if s.Lag == nil || lag <= 0 || s.untimed() {
		return 0
	}
	p := s.Participant(s.ActiveParticipantID)
	if p == nil {
		return 0
	}
	return max(min(lag, p.LagQuota, e), 0)
}

// chargeParticipant charges run, the compensated running time of p's turn
// (ModePerParticipant), to p's bank and overtime, with the delay's refund;
// completed says the turn ended in a move. The facts go into t.
func (s *State) chargeParticipant(p *Participant, run time.Duration, completed bool, t *Transition) {
	refund := time.Duration(0)
	if s.DelayMode == DelaySimple || (completed && s.DelayMode == DelayBronstein) {
		refund = min(run, s.delayOf(p))
	}
	t.Refund += refund
	ov := s.Overtime
	if ov == nil {
		// A simple delay runs before the bank; a Bronstein refund comes
		// after the move, once the bank has run (into the stages by time
		// that follow it, when it ran out).
		charge := run
		if s.DelayMode == DelaySimple {
			charge -= refund
		}
		p.TotalTime -= charge
		for p.TotalTime < 0 && p.Stage < len(s.Stages) && s.Stages[p.Stage].Moves == 0 {
			p.TotalTime += s.Stages[p.Stage].Time
			p.Stage++
		}
		p.TotalTime = max(p.TotalTime, 0)
		if s.DelayMode != DelaySimple {
			p.TotalTime += refund
		}
		return
	}
	switch ov.Kind {
	case OvertimeByoYomi:
		if run < p.TotalTime {
			p.TotalTime -= run
			return
		}
		over := run - p.TotalTime // the part of the turn past the main time
		p.TotalTime = 0
		used := int(over / ov.Period)
		if used >= p.Periods { // ran out
			t.PeriodsUsed += p.Periods
			p.Periods = 0
			return
		}
		p.Periods -= used
		t.PeriodsUsed += used
		t.Credit += over - time.Duration(used)*ov.Period // the period is kept, whole
	case OvertimeCanadian:
		var left time.Duration // of the running block, after the turn
		if p.BlockMoves == 0 {
			if run <= p.TotalTime { // a move as the main time ends is in it
				p.TotalTime -= run
				return
			}
			// The main time ran out during the turn: the first block began
			// then, with this move its first.
			left = p.TotalTime + ov.Period - run
			p.BlockMoves = ov.Moves
		} else {
			left = p.TotalTime - run
		}
		if left <= 0 { // ran out
			p.TotalTime = 0
			return
		}
		if completed {
			if p.BlockMoves--; p.BlockMoves == 0 { // the block is done: a new one
				t.Credit += ov.Period - left
				left, p.BlockMoves = ov.Period, ov.Moves
			}
		}
		p.TotalTime = left
	}
}

// validateOvertime refuses an overtime or lag compensation the session
// cannot use, and participants' overtime and quotas out of range.
func (s *State) validateOvertime() error {
	if ov := s.Overtime; ov != nil {
		switch {
		case s.Mode != ModePerParticipant:
			return invalid("overtime", "set, but %s sessions do not use it (it applies to %q)", s.Mode, ModePerParticipant)
		case ov.Kind != OvertimeByoYomi && ov.Kind != OvertimeCanadian:
			return invalid("overtime.kind", "%q is not one of %q, %q", ov.Kind, OvertimeByoYomi, OvertimeCanadian)
		case ov.Period <= 0 || ov.Period > MaxBank || ov.Period != ov.Period.Truncate(time.Millisecond):
			return invalid("overtime.period_ms", "%v, want a whole number of milliseconds above 0 and at most %v", ov.Period, MaxBank)
		case ov.Kind == OvertimeByoYomi && (ov.Periods < 1 || ov.Periods > MaxPeriods || ov.Moves != 0):
			return invalid("overtime", "byo-yomi needs 1 to %d periods and no moves; got %d periods, %d moves", MaxPeriods, ov.Periods, ov.Moves)
		case ov.Kind == OvertimeCanadian && (ov.Moves < 1 || ov.Moves > MaxPeriods || ov.Periods != 0):
			return invalid("overtime", "Canadian overtime needs 1 to %d moves a block and no periods; got %d moves, %d periods", MaxPeriods, ov.Moves, ov.Periods)
		case s.Increment != 0 || s.Delay != 0:
			return invalid("overtime", "%s overtime with an increment or a delay: use one or the other", ov.Kind)
		}
	}
	if l := s.Lag; l != nil {
		switch {
		case s.Mode != ModePerParticipant:
			return invalid("lag", "set, but %s sessions do not use it (it applies to %q)", s.Mode, ModePerParticipant)
		case l.Gain < 0 || l.Initial < 0 || l.Grace < 0:
			return invalid("lag", "negative gain, initial quota or grace")
		case l.Max <= 0 || l.Max > MaxLagQuota:
			return invalid("lag.max_ms", "%v, want above 0 and at most %v", l.Max, MaxLagQuota)
		case l.Initial > l.Max || l.Gain > l.Max:
			return invalid("lag", "the initial quota %v and gain %v must not exceed the maximum %v", l.Initial, l.Gain, l.Max)
		case l.Grace > MaxLagQuota:
			return invalid("lag.grace_ms", "%v, want at most %v (the grace is at most the mover's quota anyway)", l.Grace, MaxLagQuota)
		}
	}
	for i, p := range s.Participants {
		field := func(f string) string { return fmt.Sprintf("participants[%d].%s", i, f) }
		ov := s.Overtime
		switch {
		case p.Periods < 0 || (p.Periods > 0 && (ov == nil || ov.Kind != OvertimeByoYomi)) || (ov != nil && p.Periods > ov.Periods):
			return invalid(field("periods"), "%d, want 0 to the byo-yomi's periods", p.Periods)
		case p.BlockMoves < 0 || (p.BlockMoves > 0 && (ov == nil || ov.Kind != OvertimeCanadian)) || (ov != nil && p.BlockMoves > ov.Moves):
			return invalid(field("block_moves"), "%d, want 0 to the Canadian block's moves", p.BlockMoves)
		case p.LagQuota < 0 || (p.LagQuota > 0 && (s.Lag == nil || p.LagQuota > s.Lag.Max)):
			return invalid(field("lag_quota_ms"), "%v, want 0 to the lag compensation's maximum", p.LagQuota)
		}
	}
	return nil
}

// initControls gives the participants of a new session their overtime
// periods and lag quotas, where unset.
func (s *State) initControls() {
	for i := range s.Participants {
		p := &s.Participants[i]
		if ov := s.Overtime; ov != nil && ov.Kind == OvertimeByoYomi && p.Periods == 0 && !p.HasExpired {
			p.Periods = ov.Periods
		}
		if s.Lag != nil && p.LagQuota == 0 {
			p.LagQuota = s.Lag.Initial
		}
	}
}

// Reading is what one participant's clock shows at an instant: what a
// client displays, without the rules of the time control.
type Reading struct {
	// Participant is the participant's ID.
	Participant string
	// Running reports whether the participant's clock is running now.
	Running bool
	// Remaining is the time left until the participant runs out, everything
	// included (delay, bank, overtime, stages by time, the per-move maximum);
	// ParticipantRemainingAt leaves a simple delay out. During an untimed
	// first move it stays at what the participant has.
	Remaining time.Duration
	// Main is what is left of the participant's bank, its main time: in
	// ModePerParticipant its own, as the running turn has drawn on it so
	// far (a simple delay draws nothing until it is over); in the other
	// modes, Remaining.
	Main time.Duration
	// Delay is the delay left in the turn in progress (running or paused):
	// the part of a simple delay still to run before the bank does, or the
	// part of a Bronstein delay the move would not yet get back in full.
	// Zero when no turn is in progress.
	Delay time.Duration
	// InOvertime reports whether the main time is used up and the clock
	// runs on its overtime.
	InOvertime bool
	// Period is the time left in the current byo-yomi period or Canadian
	// block (the whole of it while in main time).
	Period time.Duration
	// Periods is the number of byo-yomi periods left, the current one
	// included.
	Periods int
	// BlockMoves is the number of moves left to make in the current
	// Canadian block (the block's Moves while in main time).
	BlockMoves int
	// LagQuota is the participant's lag compensation quota.
	LagQuota time.Duration
	// Stage is the number of State.Stages the participant has begun.
	Stage int
	// Untimed reports whether the running turn is an untimed first move:
	// the bank does not run (Remaining stays), and the session is aborted
	// once the turn has run State.FirstMoveTimeout.
	Untimed bool
	// MoveLeft is the time left of the per-move maximum (State.MoveLimit)
	// in the turn in progress; zero without one or when no turn is.
	MoveLeft time.Duration
	// Expired reports whether the participant ran out of time: as written,
	// or at now, before the expiry is written.
	Expired bool
}

// ReadingAt returns what participantID's clock shows at now. It returns
// ErrParticipantNotFound for an unknown ID.
func (s *State) ReadingAt(participantID string, now time.Time) (Reading, error) {
	p := s.Participant(participantID)
	if p == nil {
		return Reading{}, participantNotFound(s.SessionID, participantID)
	}
	remaining, _ := s.ParticipantRemainingAt(participantID, now)
	active := participantID == s.ActiveParticipantID
	r := Reading{
		Participant: p.ID,
		Running:     active && s.Status == StatusRunning,
		Remaining:   remaining,
		Main:        remaining,
		LagQuota:    p.LagQuota,
		Expired:     p.HasExpired,
		Stage:       p.Stage,
	}
	if s.Mode == ModeGlobal || s.Mode == ModePerCycle || s.Mode == ModeCountUp || s.Mode == ModePerGroup {
		r.Expired = r.Expired || (active && s.Status == StatusRunning && remaining == 0 && s.hasLimit())
		return r, nil
	}
	e := time.Duration(0)
	if active {
		e = s.cycleElapsedAt(now)
		r.Untimed = s.untimed()
		inTurn := (s.Status == StatusRunning || s.Status == StatusPaused) && !r.Untimed
		if d := s.delayOf(p); d > 0 && inTurn {
			r.Delay = max(d-e, 0)
		}
		if s.MoveLimit > 0 && inTurn {
			r.MoveLeft = max(s.MoveLimit-e, 0)
		}
	}
	run := time.Duration(0)
	if active {
		run = s.charged(e)
		if s.DelayMode == DelaySimple && !r.Untimed {
			// The flag falls once the delay and then the bank have run.
			r.Remaining = min(r.Remaining+r.Delay, s.limitLeft(e))
		}
	}
	r.Main = max(p.TotalTime-run, 0)
	if s.Overtime == nil {
		// A bank run out goes on in the stages by time that follow.
		bank := p.TotalTime - run
		for bank < 0 && r.Stage < len(s.Stages) && s.Stages[r.Stage].Moves == 0 {
			bank += s.Stages[r.Stage].Time
			r.Stage++
		}
		r.Main = max(bank, 0)
	}
	if ov := s.Overtime; ov != nil {
		r.Period = ov.Period
		switch ov.Kind {
		case OvertimeByoYomi:
			r.Periods = p.Periods
			if run >= p.TotalTime {
				over := run - p.TotalTime
				used := int(over / ov.Period)
				r.InOvertime = true
				r.Periods = max(p.Periods-used, 0)
				r.Period = 0
				if r.Periods > 0 {
					r.Period = ov.Period - over%ov.Period
				}
			}
		case OvertimeCanadian:
			r.BlockMoves = ov.Moves
			switch {
			case p.BlockMoves > 0:
				r.InOvertime, r.BlockMoves = true, p.BlockMoves
				r.Period = max(p.TotalTime-run, 0)
				r.Main = 0
			case run > p.TotalTime:
				r.InOvertime = true
				r.Period = max(p.TotalTime+ov.Period-run, 0)
			}
		}
	}
	r.Expired = r.Expired || (r.Running && remaining == 0)
	return r, nil
}

// hasLimit reports whether the running turn has a deadline.
func (s *State) hasLimit() bool {
	_, ok := s.limit()
	return ok
}

// Stage is a stage of a ModePerParticipant session's time control, after
// the first (State.Stages): FIDE's 90 minutes for 40 moves, then 30 more,
// is a first stage of 90 minutes and a Stage{Moves: 40, Time: 30 min}.
type Stage struct {
	// Moves, above 0, begins the stage once the participant has completed
	// Moves moves in all: its Time is added to the bank with the move that
	// completes them, in the same write (what was left carries over).
	// Zero begins it when the participant's bank runs out, instead of a
	// flag: a stage by time. Stages by time come after every stage by
	// moves.
	Moves int
	// Time is what the stage adds to the participant's bank.
	Time time.Duration
	// Increment is the increment of the moves made in the stage, in place
	// of State.Increment (the first stage's) and of earlier stages'.
	Increment time.Duration
}

// MaxStages bounds State.Stages.
const MaxStages = 16

// ParticipantControl is a participant's own increment and delay, in place
// of the session's (Participant.Control): odds games, lichess's berserk.
// The session's DelayMode applies to the delay.
type ParticipantControl struct {
	Increment time.Duration
	Delay     time.Duration
}

// incrementOf returns the increment of p's moves: its own, its stage's or
// the session's.
func (s *State) incrementOf(p *Participant) time.Duration {
	switch {
	case p.Control != nil:
		return p.Control.Increment
	case p.Stage > 0 && p.Stage <= len(s.Stages):
		return s.Stages[p.Stage-1].Increment
	}
	return s.Increment
}

// delayOf returns the delay of p's turns: its own or the session's.
func (s *State) delayOf(p *Participant) time.Duration {
	if p.Control != nil {
		return p.Control.Delay
	}
	return s.Delay
}

// untimed reports whether the running turn is one of the untimed first
// moves (State.UntimedMoves).
func (s *State) untimed() bool {
	return s.Mode == ModePerParticipant && s.UntimedMoves > 0 && s.Turn >= 1 && s.Turn <= int64(s.UntimedMoves) &&
		(s.Status == StatusRunning || s.Status == StatusPaused)
}

// beginStages begins the stages by moves p's completed moves have reached,
// adding their time to its bank.
//
// The stages by time that follow the last stage by moves become p's to run
// on once it is begun: their time is credited then too, as part of what p
// has.
func (s *State) beginStages(p *Participant, t *Transition) {
	before := p.TotalTime + s.reserve(p)
	for p.Stage < len(s.Stages) && s.Stages[p.Stage].Moves > 0 && p.CycleCount >= s.Stages[p.Stage].Moves {
		p.TotalTime = min(p.TotalTime+s.Stages[p.Stage].Time, MaxBank)
		p.Stage++
	}
	t.Credit += p.TotalTime + s.reserve(p) - before
}

// validateStages refuses stages, caps, per-move maxima, hourglass,
// participants' own controls and untimed moves the session cannot use.
func (s *State) validateStages() error {
	perParticipant := s.Mode == ModePerParticipant
	for _, c := range []struct {
		field string
		set   bool
	}{
		{"stages", len(s.Stages) > 0},
		{"bank_cap_ms", s.BankCap != 0},
		{"move_limit_ms", s.MoveLimit != 0},
		{"hourglass", s.Hourglass},
		{"untimed_moves", s.UntimedMoves != 0},
		{"first_move_timeout_ms", s.FirstMoveTimeout != 0},
	} {
		if c.set && !perParticipant {
			return invalid(c.field, "set, but %s sessions do not use it (it applies to %q)", s.Mode, ModePerParticipant)
		}
	}
	for _, d := range []struct {
		field string
		value time.Duration
	}{{"bank_cap_ms", s.BankCap}, {"move_limit_ms", s.MoveLimit}, {"first_move_timeout_ms", s.FirstMoveTimeout}} {
		if err := validateBank(d.field, d.value); err != nil {
			return err
		}
	}
	if len(s.Stages) > MaxStages {
		return invalid("stages", "%d stages, want at most %d", len(s.Stages), MaxStages)
	}
	moves := 0
	for i, st := range s.Stages {
		field := func(f string) string { return fmt.Sprintf("stages[%d].%s", i, f) }
		switch {
		case st.Moves < 0:
			return invalid(field("moves"), "negative: %d", st.Moves)
		case st.Moves > 0 && (st.Moves <= moves || (i > 0 && s.Stages[i-1].Moves == 0)):
			return invalid(field("moves"), "%d: stages by moves come first, each after more moves than the last", st.Moves)
		case st.Time <= 0 || st.Time > MaxBank || st.Time != st.Time.Truncate(time.Millisecond):
			return invalid(field("time_ms"), "%v, want a whole number of milliseconds above 0 and at most %v", st.Time, MaxBank)
		}
		if err := validateBank(field("increment_ms"), st.Increment); err != nil {
			return err
		}
		moves = max(moves, st.Moves)
	}
	if s.UntimedMoves < 0 || s.UntimedMoves > len(s.Participants)*2 {
		return invalid("untimed_moves", "%d, want 0 to twice the participants", s.UntimedMoves)
	}
	if s.FirstMoveTimeout != 0 && s.UntimedMoves == 0 {
		return invalid("first_move_timeout_ms", "set without untimed_moves: it bounds the untimed first moves")
	}
	rich := len(s.Stages) > 0 || s.Overtime != nil
	switch {
	case len(s.Stages) > 0 && s.Overtime != nil:
		return invalid("stages", "stages and %s overtime: use one or the other", s.Overtime.Kind)
	case s.Hourglass && (rich || s.Increment != 0 || s.Delay != 0):
		return invalid("hourglass", "an hourglass has no increment, delay, stages or overtime: the mover's time goes to the opponent")
	}
	for i, p := range s.Participants {
		field := func(f string) string { return fmt.Sprintf("participants[%d].%s", i, f) }
		if p.Stage < 0 || p.Stage > len(s.Stages) {
			return invalid(field("stage"), "%d, want 0 to the %d stages", p.Stage, len(s.Stages))
		}
		c := p.Control
		if c == nil {
			continue
		}
		switch {
		case !perParticipant:
			return invalid(field("control"), "set, but %s sessions do not use it (it applies to %q)", s.Mode, ModePerParticipant)
		case rich || s.Hourglass:
			return invalid(field("control"), "a participant's own increment and delay, with stages, overtime or an hourglass: not supported")
		case c.Delay != 0 && s.DelayMode == DelayNone:
			return invalid(field("control.delay_ms"), "a delay needs the session's delay_mode")
		}
		for _, d := range []struct {
			field string
			value time.Duration
		}{{"control.increment_ms", c.Increment}, {"control.delay_ms", c.Delay}} {
			if err := validateBank(field(d.field), d.value); err != nil {
				return err
			}
		}
	}
	return nil
}

// limitLeft returns what is left of the running turn's limit after e, or a
// MaxBank when it has none.
func (s *State) limitLeft(e time.Duration) time.Duration {
	if l, ok := s.limit(); ok {
		return max(l-e, 0)
	}
	return MaxBank
}
