package synckairos

import (
	"context"
	"errors"
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
	// EventSessionAborted is a session cancelled because an untimed first
	// move was not made within State.FirstMoveTimeout.
	EventSessionAborted = "session_aborted"
)

// transitionTypes are the types a Transition may have.
var transitionTypes = []string{
	EventSessionCreated, EventSessionUpdated, EventSessionStarted, EventCycleSwitched, EventSessionPaused,
	EventSessionResumed, EventSessionCompleted, EventSessionCancelled, EventTimeAdded, EventParticipantExpired,
	EventCycleExpired, EventSessionExpired, EventSessionAborted,
}

// SwitchResult is the outcome of SwitchCycle.
type SwitchResult struct {
	State *State
	// From is the participant whose turn ended, To the one whose turn began.
	From, To string
	// Used is how long From's turn took.
	Used time.Duration
}

// transition applies op, one of the State's transitions, to the session
// through the compare-and-set of MutateSession, then the host's edit, if
// any. Expiries that fell due before the call are written first, alone, as
// the expirer would; op is then applied to the state they leave (a switch
// is refused). When op is refused after expiries were written, the written
// state comes back with op's error. Every refusal carries the current state.
func (m *Manager) transition(ctx context.Context, name, id string, held *State, op func(s *State, now time.Time) error, edit func(*State) error) (_ *State, err error) {
	ctx, c := m.tel.start(ctx, name, id, true)
	defer c.end(&err)
	var opErr error
	wrote := false
	for {
		s, written, err := m.mutate(ctx, id, held, edit != nil, func(s *State, now time.Time) (bool, error) {
			before := s.LastTransition
			if opErr = op(s, now); opErr != nil {
				return s.LastTransition != before, nil // the expiries alone, if any
			}
			if edit != nil {
				if err := edit(s); err != nil {
					return false, err
				}
			}
			return true, nil
		})
		held = nil // a second round (after expiries) reads what they left
		switch {
		case err != nil:
			return nil, err
		case opErr == nil:
			return s, nil
		case errors.Is(opErr, ErrTimeRanOut) && written:
			wrote = true
			continue // the expiries are written: now the transition
		}
		return refused(opErr, s, written || wrote)
	}
}

// refused returns a refusal carrying the current state s, and s when the
// call wrote it (expiries applied on the way).
func refused(opErr error, s *State, written bool) (*State, error) {
	var te *TransitionError
	var ue *TurnError
	switch {
	case errors.As(opErr, &te):
		te.Current = s
	case errors.As(opErr, &ue):
		ue.Current = s
	}
	if written {
		return s, opErr
	}
	return nil, opErr
}

// StartSession starts a pending session: the first participant that has not
// expired becomes active and its clock runs. See State.Start.
func (m *Manager) StartSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, "StartSession", id, nil, (*State).Start, nil)
}

// SwitchCycle ends the active participant's turn and starts the next one's,
// with the host's change of opts.Edit, if any, in the same write. The turn's
// time is charged to its bank, with the mode's increment and delay. See
// State.Switch and SwitchOptions.
//
// A switch that comes after the active participant's time ran out does not
// rescue it: the expiry is applied as of its deadline and written, and the
// switch is refused with a *TransitionError (ErrInvalidTransition), or a
// *TurnError (ErrNotActive) if the turn passed on; the SwitchResult then
// carries the written state. A switch refused for any other reason writes
// nothing and returns a nil result; its error carries the current state
// (TransitionError.Current, TurnError.Current).
func (m *Manager) SwitchCycle(ctx context.Context, id string, opts *SwitchOptions) (*SwitchResult, error) {
	var edit func(*State) error
	var held *State
	if opts != nil {
		edit, held = opts.Edit, opts.Current
	}
	s, err := m.transition(ctx, "SwitchCycle", id, held, func(s *State, now time.Time) error { return s.Switch(now, opts) }, edit)
	if s == nil {
		return nil, err
	}
	res := &SwitchResult{State: s}
	if t := s.LastTransition; err == nil && t != nil {
		res.From, res.To, res.Used = t.From, t.To, t.Used
	}
	return res, err
}

// PauseSession stops every clock of a running session; paused time is never
// charged.
func (m *Manager) PauseSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, "PauseSession", id, nil, (*State).Pause, nil)
}

// ResumeSession restarts the clocks of a paused session where they stopped.
func (m *Manager) ResumeSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, "ResumeSession", id, nil, (*State).Resume, nil)
}

// CompleteSession finishes a running or paused session; the running turn is
// charged, without increment.
func (m *Manager) CompleteSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, "CompleteSession", id, nil, (*State).Complete, nil)
}

// CancelSession abandons a session that has not finished.
func (m *Manager) CancelSession(ctx context.Context, id string) (*State, error) {
	return m.transition(ctx, "CancelSession", id, nil, (*State).Cancel, nil)
}

// AddTime adds d (or, negative, takes it) to the bank that participantID
// draws on. See State.AddTime.
func (m *Manager) AddTime(ctx context.Context, id, participantID string, d time.Duration) (*State, error) {
	return m.transition(ctx, "AddTime", id, nil, func(s *State, now time.Time) error { return s.AddTime(now, participantID, d) }, nil)
}
