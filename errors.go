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
