package synckairos

import (
	"errors"
	"fmt"
)

// The errors of the package, matched with errors.Is; the typed errors
// (*ConflictError, *StateError, *TransitionError, *TurnError,
// *ReplicationError, *UnavailableError, *ControlSyntaxError) carry what the
// caller needs next.
var (
	// ErrSessionNotFound is returned for a session that does not exist.
	ErrSessionNotFound = errors.New("synckairos: session not found")
	// ErrSessionExists is returned by CreateSession for an ID already in use.
	ErrSessionExists = errors.New("synckairos: session already exists")
	// ErrVersionConflict matches every *ConflictError.
	ErrVersionConflict = errors.New("synckairos: version conflict")
	// ErrInvalidState matches every *StateError: a state or input refused
	// before anything was written.
	ErrInvalidState = errors.New("synckairos: invalid state")
	// ErrCorruptState is returned for stored bytes that do not decode.
	ErrCorruptState = errors.New("synckairos: corrupt stored state")
	// ErrInvalidTransition matches every *TransitionError.
	ErrInvalidTransition = errors.New("synckairos: transition not allowed")
	// ErrNotActive matches a *TurnError refusing a switch by a participant
	// whose turn it is not.
	ErrNotActive = errors.New("synckairos: participant is not the active one")
	// ErrTurnEnded matches a *TurnError refusing a switch that names a turn
	// (SwitchOptions.Turn) that has already ended: most often a duplicate of
	// a switch already made.
	ErrTurnEnded = errors.New("synckairos: turn already ended")
	// ErrTimeRanOut is returned by a State's transition other than Switch
	// when the session's time ran out before it: the state then holds the
	// expiries (LastTransition says what ran out) and not the transition.
	// The Manager's calls never return it: they write the expiries, and
	// then make the transition on the state those leave.
	ErrTimeRanOut = errors.New("synckairos: time ran out before the transition")
	// ErrReentrant is returned by a call of the Manager for a session made
	// from inside a MutateSession callback (or a SwitchOptions.Edit) for the
	// same session on the same Manager, which would otherwise wait for
	// itself. Call the State's transitions on the callback's state instead.
	ErrReentrant = errors.New("synckairos: called from inside a MutateSession callback for the same session")
	// ErrParticipantNotFound is returned for a participant ID a session
	// does not have.
	ErrParticipantNotFound = errors.New("synckairos: participant not found")
	// ErrNotReplicated matches every *ReplicationError.
	ErrNotReplicated = errors.New("synckairos: write not acknowledged by enough replicas")
	// ErrUnavailable matches every *UnavailableError.
	ErrUnavailable = errors.New("synckairos: Redis node unavailable")
	// ErrClosed is returned by a Manager's methods after Close.
	ErrClosed = errors.New("synckairos: manager closed")
	// ErrFinishUndeliverable is the error OnGiveUp gets for a finish given
	// to more finishers than FinisherConfig.MaxDeliveries allows: each took
	// it and died (or stopped) before it was done, and it is not given to
	// another.
	ErrFinishUndeliverable = errors.New("synckairos: finish given to too many finishers")
)

// StateError is a validation failure: which field, and what is wrong with it.
// It matches ErrInvalidState.
type StateError struct {
	// Field is the JSON path of the field, such as "participants[2].participant_id".
	Field string
	// Problem says what is wrong and, where there is one, the limit.
	Problem string
}

// Error returns "synckairos: invalid state: <field>: <problem>".
func (e *StateError) Error() string {
	return fmt.Sprintf("synckairos: invalid state: %s: %s", e.Field, e.Problem)
}

// Is reports whether target is ErrInvalidState.
func (e *StateError) Is(target error) bool { return target == ErrInvalidState }

func invalid(field, format string, args ...any) error {
	return &StateError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// corrupt reports stored bytes of a session that do not decode.
func corrupt(sessionID string, cause error) error {
	return fmt.Errorf("%w: session %q: %v", ErrCorruptState, sessionID, cause)
}

// TransitionError is a lifecycle transition refused in the session's
// current status. It matches ErrInvalidTransition.
type TransitionError struct {
	SessionID  string
	Transition string // "start", "switch", "pause", "resume", …
	Status     Status // the session's status
	Allowed    []Status
	// Current is the session's current state, so that a refused call needs
	// no second read; it is nil when the refusal came from a State's
	// transition called directly.
	Current *State
}

// Error names the transition, the status and the statuses it needs.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("synckairos: cannot %s session %q: it is %s, want %q", e.Transition, e.SessionID, e.Status, e.Allowed)
}

// Is reports whether target is ErrInvalidTransition.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// TurnError is a switch refused because of whose turn it is. It matches
// ErrNotActive (SwitchOptions.From is not the active participant) or
// ErrTurnEnded (SwitchOptions.Turn has ended already), and carries the
// current state.
type TurnError struct {
	// Err is ErrNotActive or ErrTurnEnded.
	Err       error
	SessionID string
	// Participant is SwitchOptions.From; Turn is SwitchOptions.Turn.
	Participant string
	Turn        int64
	// Active is the participant whose turn it is, when that is the reason.
	Active string
	// Current is the session's current state; nil when the refusal came
	// from State.Switch called directly.
	Current *State
}

// Error says who asked, for which turn, and why it was refused.
func (e *TurnError) Error() string {
	who := "a switch"
	if e.Participant != "" {
		who = fmt.Sprintf("%q", e.Participant)
	}
	if e.Err == ErrTurnEnded {
		return fmt.Sprintf("%v: %s ends turn %d of session %q, which has ended", e.Err, who, e.Turn, e.SessionID)
	}
	return fmt.Sprintf("%v: %s asked to switch session %q, but %q is active", e.Err, who, e.SessionID, e.Active)
}

// Unwrap returns Err.
func (e *TurnError) Unwrap() error { return e.Err }

func participantNotFound(sessionID, id string) error {
	return fmt.Errorf("%w: %q in session %q", ErrParticipantNotFound, id, sessionID)
}

// ReplicationError reports a write that Redis committed on the master but
// fewer than Config.WaitReplicas replicas acknowledged within
// Config.WaitTimeout: it stands, and is published and audited, but a
// failover before it reaches a replica would lose it. It matches
// ErrNotReplicated.
type ReplicationError struct {
	SessionID string
	Version   int64 // the version committed
	Replicas  int64 // the replicas that acknowledged it
	Wanted    int   // Config.WaitReplicas
	// State is the state committed at Version; nil for a deletion.
	State *State
}

// Error names the session, the version and the replica counts.
func (e *ReplicationError) Error() string {
	return fmt.Sprintf("synckairos: session %q version %d committed but acknowledged by %d of %d replicas", e.SessionID, e.Version, e.Replicas, e.Wanted)
}

// Is reports whether target is ErrNotReplicated.
func (e *ReplicationError) Is(target error) bool { return target == ErrNotReplicated }

// UnavailableError reports a call that the Redis node of the session's
// partition did not answer within Config.CallTimeout: it is down, or its
// replica is taking over. It matches ErrUnavailable, and is never a
// conflict. A write that fails so may have been committed.
type UnavailableError struct {
	SessionID string
	Partition int
	Op        string // "get", "update", "create", …
	Err       error
}

// Error names the session, its partition and the call.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("synckairos: %s session %q: the Redis node of partition %d did not answer: %v", e.Op, e.SessionID, e.Partition, e.Err)
}

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// ConflictError reports a compare-and-set that found another version than
// the one it was given. It matches ErrVersionConflict and carries the current
// state, so that a caller can retry at once without reading again.
type ConflictError struct {
	SessionID string
	// Life is the life of the state the write was based on; Current.Life
	// differs when the session was deleted and created again meanwhile.
	Life int64
	// Expected is the version the write was based on.
	Expected int64
	// Actual is the version stored when the write was refused.
	Actual int64
	// Current is the stored state at Actual.
	Current *State
}

// Error names the session and both versions.
func (e *ConflictError) Error() string {
	if e.Current != nil && e.Current.Life != e.Life {
		return fmt.Sprintf("synckairos: version conflict on session %q: expected version %d of life %d, found version %d of life %d (created again)",
			e.SessionID, e.Expected, e.Life, e.Actual, e.Current.Life)
	}
	return fmt.Sprintf("synckairos: version conflict on session %q: expected version %d, found %d", e.SessionID, e.Expected, e.Actual)
}

// Is reports whether target is ErrVersionConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrVersionConflict }
