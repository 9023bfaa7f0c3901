package synckairos

import "time"

// The time rules of the modes, as pure functions of a state and a time.
// Nothing ticks: a state holds its banks as of the last cycle boundary, the
// time the running cycle had used before its last resume (CycleElapsed) and
// when it was resumed (CycleStartedAt); the rest is computed.

// cycleElapsedAt returns how long the current cycle has run at now, paused
// time excluded.
func (s *State) cycleElapsedAt(now time.Time) time.Duration {
	e := s.CycleElapsed
	if s.Status == StatusRunning && s.CycleStartedAt != nil {
		e += max(now.Sub(*s.CycleStartedAt), 0)
	}
	return e
}

// charged returns the part of a cycle of length e that runs down the bank
// of the active participant during the cycle: all of it, but for a simple
// delay, and none of an untimed turn.
func (s *State) charged(e time.Duration) time.Duration {
	if s.Mode != ModePerParticipant {
		return e
	}
	if s.untimed() {
		return 0
	}
	if s.DelayMode == DelaySimple {
		if p := s.Participant(s.ActiveParticipantID); p != nil {
			return max(e-s.delayOf(p), 0)
		}
	}
	return e
}

// group returns the group of ID id, or nil.
func (s *State) group(id string) *Group {
	for i := range s.Groups {
		if s.Groups[i].ID == id {
			return &s.Groups[i]
		}
	}
	return nil
}

// usedTotal returns the time of every completed cycle.
func (s *State) usedTotal() time.Duration {
	var t time.Duration
	for _, p := range s.Participants {
		t += p.TimeUsed
	}
	return t
}

// limit returns how long the current cycle may run before time runs out,
// and whether it is bounded at all.
func (s *State) limit() (time.Duration, bool) {
	p := s.Participant(s.ActiveParticipantID)
	switch s.Mode {
	case ModePerParticipant:
		if p == nil {
			return 0, false
		}
		if s.untimed() {
			return s.FirstMoveTimeout, s.FirstMoveTimeout > 0
		}
		l := p.TotalTime + s.reserve(p)
		if s.DelayMode == DelaySimple {
			l += s.delayOf(p)
		}
		if s.MoveLimit > 0 {
			l = min(l, s.MoveLimit)
		}
		return l, true
	case ModePerGroup:
		if p == nil {
			return 0, false
		}
		if g := s.group(p.GroupID); g != nil {
			return g.TotalTime, true
		}
		return 0, false
	case ModeGlobal:
		return s.TotalTime, true
	case ModePerCycle:
		return s.TimePerCycle, s.TimePerCycle > 0
	case ModeCountUp:
		return max(s.MaxTime-s.usedTotal(), 0), s.MaxTime > 0
	}
	return 0, false
}

// Deadline returns when the running session's time next runs out, and
// whether it has such a time: only a running session does, and a stopwatch
// only with a MaxTime.
func (s *State) Deadline() (time.Time, bool) {
	if s.Status != StatusRunning || s.CycleStartedAt == nil {
		return time.Time{}, false
	}
	l, ok := s.limit()
	if !ok {
		return time.Time{}, false
	}
	return s.CycleStartedAt.Add(l - s.CycleElapsed), true
}

// RemainingAt returns the time left at now on the running bank: the active
// participant's (ModePerParticipant, its overtime included: the time until
// it would flag; ClockAt tells the parts apart), its group's (ModePerGroup), the
// session's (ModeGlobal), the turn's (ModePerCycle), or the time to MaxTime
// (ModeCountUp; zero without a MaxTime). It never returns less than zero,
// and zero for a session with no active participant where a bank is one
// participant's.
func (s *State) RemainingAt(now time.Time) time.Duration {
	e := s.cycleElapsedAt(now)
	switch s.Mode {
	case ModePerParticipant:
		p := s.Participant(s.ActiveParticipantID)
		if p == nil {
			return 0
		}
		return s.participantRemaining(p, e)
	case ModePerGroup:
		p := s.Participant(s.ActiveParticipantID)
		if p == nil {
			return 0
		}
		if g := s.group(p.GroupID); g != nil {
			return max(g.TotalTime-e, 0)
		}
		return 0
	case ModeGlobal:
		return max(s.TotalTime-e, 0)
	case ModePerCycle:
		if s.ActiveParticipantID == "" {
			return 0
		}
		return max(s.TimePerCycle-e, 0)
	case ModeCountUp:
		if s.MaxTime == 0 {
			return 0
		}
		return max(s.MaxTime-s.usedTotal()-e, 0)
	}
	return 0
}

// ElapsedAt returns the session's running time at now: every completed
// cycle and the current one, paused time excluded. The current one counts
// up to its deadline: time runs out there, whether or not the expiry has
// been written yet.
func (s *State) ElapsedAt(now time.Time) time.Duration {
	e := s.cycleElapsedAt(now)
	if l, ok := s.limit(); ok && s.ActiveParticipantID != "" {
		e = min(e, l)
	}
	return s.usedTotal() + e
}

// ParticipantRemainingAt returns the time left at now on one participant's
// bank: its own, its group's, the session's, or, in ModePerCycle, its turn's
// (the whole TimePerCycle when it is not its turn). It returns
// ErrParticipantNotFound for an unknown ID.
func (s *State) ParticipantRemainingAt(id string, now time.Time) (time.Duration, error) {
	p := s.Participant(id)
	if p == nil {
		return 0, participantNotFound(s.SessionID, id)
	}
	active := id == s.ActiveParticipantID
	e := s.cycleElapsedAt(now)
	switch s.Mode {
	case ModePerParticipant:
		if !active {
			return p.TotalTime + s.reserve(p), nil
		}
		return s.participantRemaining(p, e), nil
	case ModePerGroup:
		g := s.group(p.GroupID)
		if g == nil {
			return 0, nil
		}
		if a := s.Participant(s.ActiveParticipantID); a != nil && a.GroupID == p.GroupID {
			return max(g.TotalTime-e, 0), nil
		}
		return g.TotalTime, nil
	case ModePerCycle:
		if !active {
			return s.TimePerCycle, nil
		}
		return max(s.TimePerCycle-e, 0), nil
	}
	return s.RemainingAt(now), nil
}

// participantRemaining returns the time the active participant p has left
// after its turn ran e (ModePerParticipant): its bank and overtime less what
// the turn drew on them, and no more than the per-move maximum leaves.
func (s *State) participantRemaining(p *Participant, e time.Duration) time.Duration {
	r := max(p.TotalTime+s.reserve(p)-s.charged(e), 0)
	if s.MoveLimit > 0 && !s.untimed() {
		r = min(r, max(s.MoveLimit-e, 0))
	}
	return r
}
