package synckairos

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Transition is what one committed change did: its type and its facts. The
// Manager stores it with the state it writes (State.LastTransition), so that
// subscribers, the audit outbox and the audit rows all carry it, and none of
// them has to compare states to learn that black flagged.
//
// For any session, the running time charged is exactly the session's running
// time by the server clock, in whole milliseconds: the Used of every
// transition add up to it. The banks keep the account: over any sequence of
// transitions, what the banks lost equals the Used of every transition less
// their Increment, Refund, Added, Compensation, Credit and Transferred, where a
// participant's bank counts its overtime too (its byo-yomi periods, the
// Canadian block that follows its main time).
type Transition struct {
	// Type names the change: one of the audit event types EventSessionCreated,
	// EventSessionUpdated, EventSessionStarted, EventCycleSwitched,
	// EventSessionPaused, EventSessionResumed, EventSessionCompleted,
	// EventSessionCancelled, EventTimeAdded, EventParticipantExpired,
	// EventCycleExpired, EventSessionExpired or EventSessionAborted.
	Type string
	// Version is the version the change committed.
	Version int64
	// At is the server time at which the change took effect: the time of the
	// call, or, for an expiry, the deadline at which the time ran out.
	At time.Time
	// From is the participant whose turn the change ended: the one who
	// switched, whose time ran out, or whose turn a complete or cancel
	// charged.
	From string
	// To is the participant whose turn the change started: the next to move
	// after a switch, the first after a start, the next after an expiry the
	// session went on from.
	To string
	// Used is the running time the change charged: the time of the turn it
	// ended, or, when the change applied expiries that had fallen due before
	// it (a chain of forfeited turns), of every turn it ended. Paused time is
	// never in it.
	Used time.Duration
	// Increment is what the change credited to From's bank as increment.
	Increment time.Duration
	// Refund is the delay the change credited back to the bank that ran: the
	// Bronstein refund, or the part of the turn a simple delay kept off it.
	Refund time.Duration
	// Participant is the participant whose bank AddTime changed.
	Participant string
	// Added is the time AddTime added to Participant's bank (negative when
	// it took time).
	Added time.Duration
	// Compensation is the lag compensation the change credited: the part of
	// From's turn its bank was not charged for (State.Lag).
	Compensation time.Duration
	// Credit is what From's time control credited back at the end of its
	// turn: the part of a byo-yomi period a move was made in (the period is
	// kept whole), what a new Canadian block added to what was left of the
	// old one, the time of a stage the move began, or the whole of an
	// untimed turn.
	Credit time.Duration
	// PeriodsUsed is the number of byo-yomi periods From's turn used up.
	PeriodsUsed int
	// Transferred is, in an hourglass session, what the switch moved to
	// To's bank: the time From's bank ran.
	Transferred time.Duration
	// Expired lists, in order, the participants whose time ran out in this
	// change; in ModePerGroup, every member of a group that ran out.
	Expired []string
}

// The transitions of the engine, as pure functions of a state, a time and
// the caller's inputs. The Manager's StartSession, SwitchCycle, … apply them
// through the compare-and-set; a MutateSession callback may call them to
// commit a transition together with the host's own change, in one write:
//
//	m.MutateSession(ctx, id, func(s *synckairos.State) error {
//		now, err := m.Now(ctx)
//		if err != nil {
//			return err
//		}
//		if err := s.Complete(now); err != nil {
//			return err
//		}
//		s.Metadata = map[string]string{"result": "1-0", "reason": "resignation"}
//		return nil
//	})
//
// Each takes now in whole milliseconds, and never earlier than the state's
// last transition or the start of its running cycle, so that an instance
// whose clock is a little behind another's charges nothing twice.
//
// One write commits one transition: a state that holds a transition made
// for its next version (LastTransition.Version == Version+1) refuses
// another. When the session's time ran out before now, a transition is not
// made: the expiries are applied instead, as of their deadlines, as the
// expirer would, and stand in LastTransition as the change to write; Switch
// is then refused (a late switch never rescues a flagged player), and the
// others return ErrTimeRanOut, after which the Manager writes the expiries
// and applies the transition again to the state they leave. Any other
// refusal leaves the state as it was.

// at returns the time a transition at now takes effect.
func (s *State) at(now time.Time) time.Time {
	t := msTime(now)
	if s.CycleStartedAt != nil && t.Before(*s.CycleStartedAt) {
		t = s.CycleStartedAt.UTC()
	}
	if l := s.LastTransition; l != nil && t.Before(l.At) {
		t = l.At.UTC()
	}
	return t
}

// step runs one transition of type typ at now: op checks before it changes
// anything, and fills in the facts.
func (s *State) step(now time.Time, typ string, op func(at time.Time, t *Transition) error) error {
	if l := s.LastTransition; l != nil && l.Version == s.Version+1 {
		return invalid("last_transition", "the state holds a %s for version %d already; one write commits one transition", l.Type, l.Version)
	}
	at := s.at(now)
	// A switch may come within the flag grace: its own check applies the
	// expiry if its lag does not bring it back before the deadline.
	if t := s.settleAfter(at, typ == EventCycleSwitched); t != nil {
		s.LastTransition = t
		return fmt.Errorf("%w: %s ran out at %s, before the %s at %s", ErrTimeRanOut,
			strings.Join(t.Expired, ", "), t.At.Format(jsonTimeLayout), typ, at.Format(jsonTimeLayout))
	}
	t := &Transition{Type: typ, At: at}
	if err := op(at, t); err != nil {
		return err
	}
	t.Version = s.Version + 1
	s.LastTransition = t
	return nil
}

// expireDue applies the expiries due at now, flag grace past, and reports
// whether there were any; their facts are then in LastTransition.
func (s *State) expireDue(now time.Time) bool {
	t := s.settleAfter(s.at(now), true)
	if t == nil {
		return false
	}
	s.LastTransition = t
	return true
}

// settleAfter applies, as of their deadlines, the expiries due at now, and
// returns their facts, or nil when none was due; with grace, an expiry is
// due only once the flag grace after its deadline has passed.
func (s *State) settleAfter(now time.Time, grace bool) *Transition {
	return s.settleFrom(now, grace, false)
}

// settleFrom is settleAfter; with graceAfterFirst, the running turn's
// expiry is applied at its deadline and only the turns after it wait out
// their grace (a switch too late for its lag: the next to move may yet
// send a lagged move of its own).
func (s *State) settleFrom(now time.Time, grace, graceAfterFirst bool) *Transition {
	var t *Transition
	n := len(s.Participants)
	// At most every participant runs out once, but in ModePerCycle, where
	// turns are forfeited round after round: there whole rounds are applied
	// at once, after the first.
	for i := 0; i < 4*n+4; i++ {
		d, ok := s.Deadline()
		if ok && (grace || graceAfterFirst && i > 0) {
			d = d.Add(s.grace())
		}
		if !ok || d.After(now) {
			break
		}
		if grace || graceAfterFirst {
			d, _ = s.Deadline() // time ran out at the deadline itself
		}
		if t == nil {
			t = &Transition{}
		}
		if s.Mode == ModePerCycle && i == n {
			s.forfeitRounds(now.Sub(d), t)
			continue
		}
		s.expire(d, t)
		t.Version = s.Version + 1
	}
	return t
}

// forfeitRounds applies at once the whole rounds of forfeited turns that fit
// in late, the time past the running turn's deadline: each participant
// forfeits the same number of turns, the same TimePerCycle each.
func (s *State) forfeitRounds(late time.Duration, t *Transition) {
	round := time.Duration(len(s.Participants)) * s.TimePerCycle
	r := int64(late / round)
	if r == 0 {
		return
	}
	for i := range s.Participants {
		s.Participants[i].CycleCount += int(r)
		s.Participants[i].TimeUsed += time.Duration(r) * s.TimePerCycle
	}
	s.Turn += r * int64(len(s.Participants))
	start := s.CycleStartedAt.Add(time.Duration(r) * round)
	s.CycleStartedAt = &start
	t.Used += time.Duration(r) * round
	t.At = start
}

// expire applies the running cycle's expiry at its deadline at.
func (s *State) expire(at time.Time, t *Transition) {
	p := s.Participant(s.ActiveParticipantID)
	t.At, t.From, t.To = at, p.ID, ""
	if s.Mode == ModePerParticipant && s.untimed() {
		// An untimed first move not made in time: the game nobody
		// started is aborted.
		s.endTurn(at, false, t)
		s.finish(StatusCancelled, at)
		t.Type = EventSessionAborted
		return
	}
	s.endTurn(at, false, t)
	switch s.Mode {
	case ModePerCycle:
		t.addExpired(p.ID, len(s.Participants))
		if s.OnExpiry == ExpiryEndSession {
			s.finish(StatusExpired, at)
			t.Type = EventSessionExpired
			return
		}
		s.nextTurn(s.nextAfter(p.ID), at)
		t.Type, t.To = EventCycleExpired, s.ActiveParticipantID
	case ModePerParticipant, ModePerGroup:
		for _, id := range s.flag(p) {
			t.addExpired(id, len(s.Participants))
		}
		if s.OnExpiry == ExpiryContinue {
			if next := s.nextAfter(p.ID); next != "" && s.contenders() >= 2 {
				s.nextTurn(next, at)
				t.Type, t.To = EventParticipantExpired, next
				return
			}
		}
		s.finish(StatusExpired, at)
		t.Type = EventSessionExpired
	default: // ModeGlobal, ModeCountUp
		t.addExpired(p.ID, len(s.Participants))
		s.finish(StatusExpired, at)
		t.Type = EventSessionExpired
	}
}

// addExpired appends id to Expired once; n, the number of participants,
// bounds the list, which stops growing once it holds everyone.
func (t *Transition) addExpired(id string, n int) {
	if len(t.Expired) < n && !slices.Contains(t.Expired, id) {
		t.Expired = append(t.Expired, id)
	}
}

// flag marks a participant out of time: itself, or its whole group. It
// returns the participants it marked.
func (s *State) flag(p *Participant) []string {
	if s.Mode != ModePerGroup {
		// The bank keeps what the turn left: nothing, but when a per-move
		// maximum ran out first.
		p.HasExpired = true
		return []string{p.ID}
	}
	if g := s.group(p.GroupID); g != nil {
		g.TotalTime, g.HasExpired = 0, true
	}
	var ids []string
	for i := range s.Participants {
		if s.Participants[i].GroupID == p.GroupID {
			s.Participants[i].HasExpired = true
			ids = append(ids, s.Participants[i].ID)
		}
	}
	return ids
}

// contenders counts the participants (ModePerParticipant) or groups
// (ModePerGroup) not expired.
func (s *State) contenders() int {
	if s.Mode == ModePerGroup {
		n := 0
		for _, g := range s.Groups {
			if !g.HasExpired {
				n++
			}
		}
		return n
	}
	n := 0
	for _, p := range s.Participants {
		if !p.HasExpired {
			n++
		}
	}
	return n
}

// nextAfter returns the participant after id in rotation that has not
// expired, or "".
func (s *State) nextAfter(id string) string {
	i := slices.IndexFunc(s.Participants, func(p Participant) bool { return p.ID == id })
	for k := 1; k <= len(s.Participants); k++ {
		p := s.Participants[(i+k)%len(s.Participants)]
		if !p.HasExpired {
			return p.ID
		}
	}
	return ""
}

// endTurn ends the running turn at at and charges its time to the active
// participant and the bank it draws on. A completed turn earns the increment
// and the Bronstein refund; a turn that ran out, or that a complete or
// cancel ended, earns neither. The facts go into t.
func (s *State) endTurn(at time.Time, completed bool, t *Transition) {
	s.endTurnCompensated(at, completed, 0, t)
}

// endTurnCompensated is endTurn for a turn whose bank is charged comp less
// than its running time (lag compensation).
func (s *State) endTurnCompensated(at time.Time, completed bool, comp time.Duration, t *Transition) {
	p := s.Participant(s.ActiveParticipantID)
	if p == nil {
		return
	}
	used := s.cycleElapsedAt(at)
	if l, ok := s.limit(); ok {
		used = min(used, l+comp)
	}
	s.CycleElapsed, s.CycleStartedAt = 0, nil
	p.TimeUsed += used
	t.From = p.ID
	t.Used += used
	t.Compensation += comp
	var bank *time.Duration
	untimed := s.untimed()
	switch s.Mode {
	case ModePerParticipant:
		bank = &p.TotalTime
		if untimed {
			t.Credit += used - comp // an untimed turn draws on no bank
		} else {
			s.chargeParticipant(p, used-comp, completed, t)
		}
	case ModePerGroup:
		if g := s.group(p.GroupID); g != nil {
			bank = &g.TotalTime
			g.TotalTime -= used
			g.TimeUsed += used
		}
	case ModeGlobal:
		s.TotalTime -= used
	}
	if completed || s.Mode == ModePerCycle { // a forfeited turn is a turn too
		p.CycleCount++
	}
	if completed && bank != nil && !untimed {
		inc := s.Increment
		if s.Mode == ModePerParticipant {
			inc = s.incrementOf(p)
		}
		next := min(*bank+inc, MaxBank)
		if s.BankCap > 0 {
			next = min(next, max(*bank, s.BankCap)) // an increment lifts no bank above the cap
		}
		t.Increment += next - *bank
		*bank = next
	}
	if completed && s.Mode == ModePerParticipant {
		s.beginStages(p, t)
	}
}

// nextTurn starts the next turn, id's, at at.
func (s *State) nextTurn(id string, at time.Time) {
	s.Turn++
	s.ActiveParticipantID = id
	s.CycleElapsed = 0
	s.CycleStartedAt = &at
}

func (s *State) finish(st Status, at time.Time) {
	s.Status = st
	s.SessionCompletedAt = &at
	s.ActiveParticipantID = ""
	s.CycleElapsed, s.CycleStartedAt = 0, nil
}

func (s *State) refuse(transition string, allowed ...Status) error {
	if slices.Contains(allowed, s.Status) {
		return nil
	}
	return &TransitionError{SessionID: s.SessionID, Transition: transition, Status: s.Status, Allowed: allowed}
}

// Start starts a pending session at now: the first participant that has not
// expired becomes active and its clock runs.
func (s *State) Start(now time.Time) error {
	return s.step(now, EventSessionStarted, func(at time.Time, t *Transition) error {
		if err := s.refuse("start", StatusPending); err != nil {
			return err
		}
		first := s.ActiveParticipantID // the host's choice
		if first == "" {
			first = s.nextAfter(s.Participants[len(s.Participants)-1].ID)
		}
		if first == "" {
			return invalid("participants", "every participant has expired; none can start")
		}
		if s.Participant(first).HasExpired {
			return invalid("active_participant_id", "participant %q has expired and cannot start", first)
		}
		s.initControls()
		s.Status = StatusRunning
		s.SessionStartedAt = &at
		s.Turn = 0
		s.nextTurn(first, at)
		t.To = first
		return nil
	})
}

// SwitchOptions qualify a switch. A nil *SwitchOptions switches from whoever
// is active to the next in rotation.
type SwitchOptions struct {
	// From, when set, must be the active participant, or the switch is
	// refused with a *TurnError matching ErrNotActive and nothing changes.
	// An ID the session does not have gives ErrParticipantNotFound.
	From string
	// To names the next participant; by default the next in rotation (the
	// order of State.Participants) that has not expired. It may not be the
	// active participant: a turn passes to another.
	To string
	// Turn, when set, is the turn the switch ends (State.Turn as the caller
	// last saw it). A switch naming a turn that has already ended is refused
	// with a *TurnError matching ErrTurnEnded, carrying the current state:
	// a retried or duplicated "I moved" (a client's retry, the same request
	// at two instances) is told apart from "not your turn", and made once.
	Turn int64
	// Lag is the network lag the move reports: how long it took to reach
	// the server, as the host's transport measured it, or as the client
	// said (the host chooses whom to trust). With lag compensation
	// (State.Lag) the mover's bank is not charged for it, up to its quota;
	// without, it is ignored. Not negative.
	Lag time.Duration
	// Edit, when set, is applied by Manager.SwitchCycle to the state the
	// switch writes, after the switch: the host's own change (the move, the
	// board, the score) committed with the clock in one compare-and-set, one
	// version, one event and one audit row. It may change anything but the
	// session ID and Version; an error from it refuses the switch, with
	// nothing written. Like a MutateSession callback, it may be called more
	// than once and must not call the Manager for the same session.
	// State.Switch does not call it.
	Edit func(*State) error
	// Current, when set, is the session's state as the caller holds it
	// (the result of its last call, or its watch): Manager.SwitchCycle
	// switches it without reading the session first, one round trip fewer.
	// If it is not the stored state any more, the write is refused as a
	// conflict, which carries the stored state, and the switch is made on
	// that instead: nothing is lost, a stale state costs a refused write.
	// It must be of the session switched; it is not changed. State.Switch
	// does not use it.
	Current *State
}

// Switch ends the active participant's turn at now and starts the next
// one's. The turn's time is charged to its bank, with the mode's increment
// and delay.
//
// A switch after the active participant's time ran out does not rescue it,
// nor end the turn of whoever the session went on with: the expiry is
// applied as of its deadline, and the switch is refused with a
// *TransitionError (ErrInvalidTransition) if the session ended, or a
// *TurnError (ErrNotActive) if it went on.
func (s *State) Switch(now time.Time, opts *SwitchOptions) error {
	var o SwitchOptions
	if opts != nil {
		o = *opts
	}
	if o.From != "" && s.Participant(o.From) == nil {
		return participantNotFound(s.SessionID, o.From)
	}
	if o.To != "" && s.Participant(o.To) == nil {
		return participantNotFound(s.SessionID, o.To)
	}
	if o.Turn < 0 {
		return invalid("turn", "negative turn %d", o.Turn)
	}
	if o.Lag < 0 {
		return invalid("lag", "negative lag %v", o.Lag)
	}
	// Turns named are checked against the state as it was before any
	// expiry applied now: a turn ended earlier is a duplicate, whatever the
	// session's status since.
	if o.Turn != 0 && o.Turn < s.Turn {
		return &TurnError{Err: ErrTurnEnded, SessionID: s.SessionID, Participant: o.From, Turn: o.Turn}
	}
	if o.Turn > s.Turn {
		return invalid("turn", "turn %d has not started; the session is at turn %d", o.Turn, s.Turn)
	}
	err := s.step(now, EventCycleSwitched, func(at time.Time, t *Transition) error {
		if err := s.refuse("switch", StatusRunning); err != nil {
			return err
		}
		from := s.ActiveParticipantID
		if o.From != "" && o.From != from {
			return &TurnError{Err: ErrNotActive, SessionID: s.SessionID, Participant: o.From, Turn: o.Turn, Active: from}
		}
		to := o.To
		switch {
		case to == "":
			to = s.nextAfter(from)
		case to == from:
			return invalid("to", "%q is the active participant: a switch passes the turn to another", to)
		case s.Participant(to).HasExpired:
			return invalid("to", "participant %q has expired", to)
		}
		e := s.cycleElapsedAt(at)
		comp := s.compensation(o.Lag, e)
		if l, ok := s.limit(); ok && e-comp >= l {
			// Within the flag grace, but the lag it reports does not
			// bring the move back before the deadline: too late.
			s.LastTransition = s.settleFrom(at, false, true)
			return ErrTimeRanOut
		}
		mover := s.Participant(from)
		untimed := s.untimed()
		s.endTurnCompensated(at, true, comp, t)
		if s.Hourglass && !untimed {
			// The time the mover's bank ran goes to the next to move.
			next := s.Participant(to)
			run := min(next.TotalTime+t.Used-comp, MaxBank) - next.TotalTime
			next.TotalTime += run
			t.Transferred = run
		}
		if s.Lag != nil && !untimed {
			mover.LagQuota = min(mover.LagQuota+s.Lag.Gain-comp, s.Lag.Max)
		}
		s.nextTurn(to, at)
		t.To = to
		return nil
	})
	if errors.Is(err, ErrTimeRanOut) {
		// The turn the switch was sent for ended by its expiry, applied
		// now: whoever sent it, the switch is too late.
		if rerr := s.refuse("switch", StatusRunning); rerr != nil {
			return rerr
		}
		return &TurnError{Err: ErrNotActive, SessionID: s.SessionID, Participant: o.From, Turn: o.Turn, Active: s.ActiveParticipantID}
	}
	return err
}

// Pause stops every clock of a running session at now; paused time is never
// charged.
func (s *State) Pause(now time.Time) error {
	return s.step(now, EventSessionPaused, func(at time.Time, _ *Transition) error {
		if err := s.refuse("pause", StatusRunning); err != nil {
			return err
		}
		s.CycleElapsed = s.cycleElapsedAt(at)
		s.CycleStartedAt = nil
		s.Status = StatusPaused
		return nil
	})
}

// Resume restarts the clocks of a paused session at now, where they stopped.
func (s *State) Resume(now time.Time) error {
	return s.step(now, EventSessionResumed, func(at time.Time, t *Transition) error {
		if err := s.refuse("resume", StatusPaused); err != nil {
			return err
		}
		s.Status = StatusRunning
		s.CycleStartedAt = &at
		t.To = s.ActiveParticipantID
		return nil
	})
}

// Complete finishes a running or paused session at now; the running turn is
// charged, without increment.
func (s *State) Complete(now time.Time) error {
	return s.end(now, "complete", StatusCompleted, EventSessionCompleted, StatusRunning, StatusPaused)
}

// Cancel abandons a session that has not finished; a running turn is
// charged, without increment.
func (s *State) Cancel(now time.Time) error {
	return s.end(now, "cancel", StatusCancelled, EventSessionCancelled, StatusPending, StatusRunning, StatusPaused)
}

func (s *State) end(now time.Time, transition string, to Status, typ string, from ...Status) error {
	return s.step(now, typ, func(at time.Time, t *Transition) error {
		if err := s.refuse(transition, from...); err != nil {
			return err
		}
		if s.Status != StatusPending { // a pending session has no turn to charge
			s.endTurn(at, false, t)
		}
		s.finish(to, at)
		return nil
	})
}

// AddTime adds d (or, negative, takes it) at now to the bank that
// participantID draws on: its own, its group's, or, in ModeGlobal, the
// session's. A bank cannot go below what its running turn has used, nor
// above MaxBank. It is refused in ModePerCycle and ModeCountUp, which have
// no banks, for a participant whose time ran out, and on finished sessions.
func (s *State) AddTime(now time.Time, participantID string, d time.Duration) error {
	if s.Participant(participantID) == nil {
		return participantNotFound(s.SessionID, participantID)
	}
	if d != d.Truncate(time.Millisecond) {
		return invalid("d", "%v is not a whole number of milliseconds", d)
	}
	return s.step(now, EventTimeAdded, func(at time.Time, t *Transition) error {
		if err := s.refuse("add time to", StatusPending, StatusRunning, StatusPaused); err != nil {
			return err
		}
		p := s.Participant(participantID)
		if p.HasExpired {
			return invalid("participant_id", "participant %q has expired; time added cannot bring it back", participantID)
		}
		var bank *time.Duration
		switch s.Mode {
		case ModePerParticipant:
			bank = &p.TotalTime
		case ModePerGroup:
			if g := s.group(p.GroupID); g != nil {
				bank = &g.TotalTime
			}
		case ModeGlobal:
			bank = &s.TotalTime
		}
		if bank == nil {
			return invalid("mode", "%s sessions have no bank to add time to", s.Mode)
		}
		// A bank running now must stay above what the turn has used: at
		// it, the time would have run out already.
		floor := time.Duration(0)
		if a := s.Participant(s.ActiveParticipantID); a != nil && (s.Mode == ModeGlobal ||
			(s.Mode == ModePerParticipant && a.ID == p.ID) || (s.Mode == ModePerGroup && a.GroupID == p.GroupID)) {
			floor = s.charged(s.cycleElapsedAt(at))
		}
		// Overtime follows a participant's bank: the bank may be zero
		// where overtime keeps the clock alive.
		reserve := time.Duration(0)
		if s.Mode == ModePerParticipant {
			reserve = s.reserve(p)
		}
		next := *bank + d
		if next < 0 || next+reserve <= floor || next > MaxBank {
			return invalid("d", "the bank would be %v, want above %v and at most %v", next, max(floor-reserve, 0), MaxBank)
		}
		*bank = next
		t.Participant, t.Added = participantID, d
		return nil
	})
}

// String returns a short account of the transition, for logs.
func (t *Transition) String() string {
	return fmt.Sprintf("%s v%d at %s from %q to %q used %v (+%v increment, +%v refund)",
		t.Type, t.Version, t.At.Format(jsonTimeLayout), t.From, t.To, t.Used, t.Increment, t.Refund)
}
