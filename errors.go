package synckairos

import (
	"errors"
	"fmt"
)

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

var (
	// ErrInvalidTransition matches every *TransitionError.
	ErrInvalidTransition = errors.New("synckairos: transition not allowed")
	// ErrNotActive is returned by SwitchCycle when SwitchOptions.From is not
	// the active participant: the switch was made already, or by another.
	ErrNotActive = errors.New("synckairos: participant is not the active one")
	// ErrParticipantNotFound is returned for a participant ID a session
	// does not have.
	ErrParticipantNotFound = errors.New("synckairos: participant not found")
)

// TransitionError is a lifecycle transition refused in the session's
// current status. It matches ErrInvalidTransition.
type TransitionError struct {
	SessionID  string
	Transition string // "start", "switch", "pause", "resume", …
	Status     Status // the session's status
	Allowed    []Status
}

// Error names the transition, the status and the statuses it needs.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("synckairos: cannot %s session %q: it is %s, want %q", e.Transition, e.SessionID, e.Status, e.Allowed)
}

// Is reports whether target is ErrInvalidTransition.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

func participantNotFound(sessionID, id string) error {
	return fmt.Errorf("%w: %q in session %q", ErrParticipantNotFound, id, sessionID)
}

// ErrNotReplicated matches every *ReplicationError.
var ErrNotReplicated = errors.New("synckairos: write not acknowledged by enough replicas")

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
