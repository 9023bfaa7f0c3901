package synckairos

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// The audit event types of the engine's transitions.
const (
	EventSessionStarted     = "session_started"
	EventCycleSwitched      = "cycle_switched"
	EventSessionPaused      = "session_paused"
	EventSessionResumed     = "session_resumed"
	EventSessionCompleted   = "session_completed"
	EventSessionCancelled   = "session_cancelled"
	EventTimeAdded          = "time_added"
	EventParticipantExpired = "participant_expired"
	EventCycleExpired       = "cycle_expired"
	EventSessionExpired     = "session_expired"
)

// SwitchOptions qualify a SwitchCycle call. A nil *SwitchOptions switches
// from whoever is active to the next in rotation.
type SwitchOptions struct {
	// From, when set, must be the active participant, or the switch is
	// refused with ErrNotActive and nothing changes: a retried or duplicated
	// "I moved" from a client cannot switch twice.
	From string
	// To names the next participant; by default the next in rotation (the
	// order of State.Participants) that has not expired.
	To string
}

// SwitchResult is the outcome of SwitchCycle.
type SwitchResult struct {
	State *State
	// From is the participant whose turn ended, To the one whose turn began.
	From, To string
	// Used is how long From's turn took.
	Used time.Duration
}

// transition applies one lifecycle step to the session through the
// compare-and-set of MutateSession. apply gets a copy of the state and the
// Manager's now, after any expiry already due has been applied as of its
// deadline; it returns the audit event type of its change, or "" when there
// is nothing to write. An expiry applied on the way is written even when
// apply then refuses: then the written state comes back with apply's error.
func (m *Manager) transition(ctx context.Context, id string, apply func(s *State, now time.Time) (string, error)) (*State, error) {
	var applyErr error
	expired := false
	s, err := m.mutate(ctx, id, func(s *State, now time.Time) (string, error) {
		expiry := s.settle(now)
		event, err := apply(s, now)
		applyErr, expired = err, expiry != ""
		if err != nil {
			return expiry, nil // write the expiry alone, if any
		}
		if event == "" {
			event = expiry
		}
		return event, nil
	})
	switch {
	case err != nil:
		return nil, err
	case applyErr != nil && !expired:
		return nil, applyErr // refused, nothing written
	}
	return s, applyErr
}

// settle applies, as of their deadlines, the expiries due at now, and
// returns the event type of the last, or "".
func (s *State) settle(now time.Time) string {
	event := ""
	for range 100_000 { // a turn timer idle for a day at 1 s per turn
		d, ok := s.Deadline()
		if !ok || d.After(now) {
			break
		}
		event = s.expire(d)
	}
	return event
}

// expire applies the running cycle's expiry at its deadline at.
func (s *State) expire(at time.Time) string {
	p := s.Participant(s.ActiveParticipantID)
	e := s.cycleElapsedAt(at)
	switch s.Mode {
	case ModePerCycle:
		s.endCycle(e, false)
		if s.OnExpiry == ExpiryEndSession {
			s.finish(StatusExpired, at)
			return EventSessionExpired
		}
		s.startCycle(s.nextAfter(p.ID), at)
		return EventCycleExpired
	case ModePerParticipant, ModePerGroup:
		s.endCycle(e, false)
		s.flag(p)
		if s.OnExpiry == ExpiryContinue {
			if next := s.nextAfter(p.ID); next != "" && s.contenders() >= 2 {
				s.startCycle(next, at)
				return EventParticipantExpired
			}
		}
		s.finish(StatusExpired, at)
		return EventSessionExpired
	default: // ModeGlobal, ModeCountUp
		s.endCycle(e, false)
		s.finish(StatusExpired, at)
		return EventSessionExpired
	}
}

// flag marks a participant out of time: itself, or its whole group.
func (s *State) flag(p *Participant) {
	if s.Mode != ModePerGroup {
		p.TotalTime, p.HasExpired = 0, true
		return
	}
	if g := s.group(p.GroupID); g != nil {
		g.TotalTime, g.HasExpired = 0, true
	}
	for i := range s.Participants {
		if s.Participants[i].GroupID == p.GroupID {
			s.Participants[i].HasExpired = true
		}
	}
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

// endCycle charges a cycle of length e to the active participant and its
// bank. A completed turn earns the increment and the Bronstein refund; a
// turn that ran out earns neither.
func (s *State) endCycle(e time.Duration, completed bool) {
	p := s.Participant(s.ActiveParticipantID)
	if p == nil {
		return
	}
	switch s.Mode {
	case ModePerParticipant:
		charged := min(s.charged(e), p.TotalTime)
		if completed && s.DelayMode == DelayBronstein {
			charged -= min(charged, s.Delay)
		}
		p.TotalTime -= charged
		p.TimeUsed += charged
		if completed {
			p.TotalTime = min(p.TotalTime+s.Increment, MaxBank)
		}
	case ModePerGroup:
		if g := s.group(p.GroupID); g != nil {
			charged := min(e, g.TotalTime)
			g.TotalTime -= charged
			g.TimeUsed += charged
			p.TimeUsed += charged
			if completed {
				g.TotalTime = min(g.TotalTime+s.Increment, MaxBank)
			}
		}
	case ModeGlobal:
		charged := min(e, s.TotalTime)
		s.TotalTime -= charged
		p.TimeUsed += charged
	case ModePerCycle:
		if s.TimePerCycle > 0 { // untimed turns, TimePerCycle 0, count all
			e = min(e, s.TimePerCycle)
		}
		p.TimeUsed += e
		p.CycleCount++ // a forfeited turn is a turn too
		s.CycleElapsed, s.CycleStartedAt = 0, nil
		return
	case ModeCountUp:
		if s.MaxTime > 0 {
			e = min(e, max(s.MaxTime-s.usedTotal(), 0))
		}
		p.TimeUsed += e
	}
	if completed {
		p.CycleCount++
	}
	s.CycleElapsed, s.CycleStartedAt = 0, nil
}

func (s *State) startCycle(id string, at time.Time) {
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

// StartSession starts a pending session: the first participant that has not
// expired becomes active and its clock runs.
func (m *Manager) StartSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, id, func(s *State, now time.Time) (string, error) {
		if err := s.refuse("start", StatusPending); err != nil {
			return "", err
		}
		first := s.nextAfter(s.Participants[len(s.Participants)-1].ID)
		if first == "" {
			return "", invalid("participants", "every participant has expired; none can start")
		}
		s.Status = StatusRunning
		s.SessionStartedAt = &now
		s.startCycle(first, now)
		return EventSessionStarted, nil
	})
}

// SwitchCycle ends the active participant's turn and starts the next one's.
// The turn's time is charged to its bank, with the mode's increment and
// delay. A switch that comes after the active participant's time ran out
// does not rescue it: the expiry is applied as of its deadline and written,
// and the switch is refused with ErrInvalidTransition (or ErrNotActive, if
// the turn passed on); the SwitchResult then carries the written state.
func (m *Manager) SwitchCycle(ctx context.Context, id string, opts *SwitchOptions) (*SwitchResult, error) {
	var o SwitchOptions
	if opts != nil {
		o = *opts
	}
	var res SwitchResult
	s, err := m.transition(ctx, id, func(s *State, now time.Time) (string, error) {
		if err := s.refuse("switch", StatusRunning); err != nil {
			return "", err
		}
		from := s.ActiveParticipantID
		if o.From != "" && o.From != from {
			return "", fmt.Errorf("%w: %q asked to switch session %q, but %q is active", ErrNotActive, o.From, s.SessionID, from)
		}
		to := o.To
		if to == "" {
			to = s.nextAfter(from)
		} else if p := s.Participant(to); p == nil {
			return "", participantNotFound(s.SessionID, to)
		} else if p.HasExpired {
			return "", invalid("to", "participant %q has expired", to)
		}
		res.From, res.To, res.Used = from, to, s.cycleElapsedAt(now)
		s.endCycle(res.Used, true)
		s.startCycle(to, now)
		return EventCycleSwitched, nil
	})
	if s == nil {
		return nil, err
	}
	res.State = s
	if err != nil {
		res.From, res.To, res.Used = "", "", 0
	}
	return &res, err
}

// PauseSession stops every clock of a running session; paused time is never
// charged.
func (m *Manager) PauseSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, id, func(s *State, now time.Time) (string, error) {
		if err := s.refuse("pause", StatusRunning); err != nil {
			return "", err
		}
		s.CycleElapsed = s.cycleElapsedAt(now)
		s.CycleStartedAt = nil
		s.Status = StatusPaused
		return EventSessionPaused, nil
	})
}

// ResumeSession restarts the clocks of a paused session where they stopped.
func (m *Manager) ResumeSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, id, func(s *State, now time.Time) (string, error) {
		if err := s.refuse("resume", StatusPaused); err != nil {
			return "", err
		}
		s.Status = StatusRunning
		s.CycleStartedAt = &now
		return EventSessionResumed, nil
	})
}

// CompleteSession finishes a running or paused session; the running turn is
// charged, without increment.
func (m *Manager) CompleteSession(ctx context.Context, id string) (*State, error) {
	return m.end(ctx, id, "complete", StatusCompleted, EventSessionCompleted, StatusRunning, StatusPaused)
}

// CancelSession abandons a session that has not finished.
func (m *Manager) CancelSession(ctx context.Context, id string) (*State, error) {
	return m.end(ctx, id, "cancel", StatusCancelled, EventSessionCancelled, StatusPending, StatusRunning, StatusPaused)
}

func (m *Manager) end(ctx context.Context, id, transition string, to Status, event string, from ...Status) (*State, error) {
	return m.transition(ctx, id, func(s *State, now time.Time) (string, error) {
		if err := s.refuse(transition, from...); err != nil {
			return "", err
		}
		s.endCycle(s.cycleElapsedAt(now), false)
		s.finish(to, now)
		return event, nil
	})
}

// AddTime adds d (or, negative, takes it) to the bank that participantID
// draws on: its own, its group's, or, in ModeGlobal, the session's. A bank
// cannot go below zero or above MaxBank. It is refused in ModePerCycle and
// ModeCountUp, which have no banks, and on finished sessions.
func (m *Manager) AddTime(ctx context.Context, id, participantID string, d time.Duration) (*State, error) {
	return m.transition(ctx, id, func(s *State, now time.Time) (string, error) {
		if err := s.refuse("add time to", StatusPending, StatusRunning, StatusPaused); err != nil {
			return "", err
		}
		p := s.Participant(participantID)
		if p == nil {
			return "", participantNotFound(s.SessionID, participantID)
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
			return "", invalid("mode", "%s sessions have no bank to add time to", s.Mode)
		}
		// A bank running now may not fall below what the turn has used.
		floor := time.Duration(0)
		if a := s.Participant(s.ActiveParticipantID); a != nil && (s.Mode == ModeGlobal ||
			(s.Mode == ModePerParticipant && a.ID == p.ID) || (s.Mode == ModePerGroup && a.GroupID == p.GroupID)) {
			floor = s.charged(s.cycleElapsedAt(now))
		}
		next := *bank + d
		if next < floor || next > MaxBank {
			return "", invalid("d", "the bank would be %v, want %v to %v", next, floor, MaxBank)
		}
		*bank = next
		return EventTimeAdded, nil
	})
}
