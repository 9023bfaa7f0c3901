package synckairos

import (
	"context"
	"errors"
	"fmt"

	"github.com/synckairos/synckairos/internal/store"
)

// CreateSession stores a new session at Version 1 and announces it. Status
// defaults to StatusPending; Version, CreatedAt and UpdatedAt are set by the
// Manager, and s itself is not modified. It returns the stored state, or
// ErrSessionExists if the ID is taken, or a *StateError if s is invalid.
func (m *Manager) CreateSession(ctx context.Context, s *State) (_ *State, err error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, invalid("state", "nil")
	}
	ctx, c := m.tel.start(ctx, "CreateSession", s.SessionID, true)
	defer c.end(&err)
	next := s.Clone()
	if next.Status == "" {
		next.Status = StatusPending
	}
	if next.Status == StatusPending {
		next.initControls()
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	now, err := m.now(ctx)
	if err != nil {
		return nil, err
	}
	next.Version = 1
	next.CreatedAt = now
	next.UpdatedAt = now
	next.LastTransition = &Transition{Type: EventSessionCreated, Version: 1, At: now}
	next.Life = 0 // a placeholder digit for the script's
	next.normalize()
	b := next.appendJSON(nil)
	deadline, _ := next.expiresAt()
	return m.commit(ctx, store.Write{Op: "create", SessionID: next.SessionID, State: b, EventType: EventSessionCreated,
		At: now, Deadline: deadline, LifeAt: lifeOffset(b), Status: string(next.Status)}, next, 0)
}

// GetSession returns the stored state of a session, or ErrSessionNotFound.
func (m *Manager) GetSession(ctx context.Context, id string) (_ *State, err error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := validateID("session_id", id); err != nil {
		return nil, err
	}
	ctx, c := m.tel.start(ctx, "GetSession", id, false)
	defer c.end(&err)
	version, b, found, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, m.storeError("get", id, err)
	}
	if !found {
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	return decodeState(id, version, b)
}

// DeleteSession removes a session and announces it, or returns
// ErrSessionNotFound.
func (m *Manager) DeleteSession(ctx context.Context, id string) (err error) {
	if err := m.check(); err != nil {
		return err
	}
	if err := validateID("session_id", id); err != nil {
		return err
	}
	ctx, c := m.tel.start(ctx, "DeleteSession", id, true)
	defer c.end(&err)
	now, err := m.now(ctx)
	if err != nil {
		return err
	}
	_, err = m.commit(ctx, store.Write{Op: "delete", SessionID: id, EventType: EventSessionDeleted, At: now}, nil, 0)
	return err
}

// commit runs one write of the script, the one place a change is
// committed, and maps its outcome. next is the state written (nil for a
// deletion); based is the version the write was based on, which a
// conflict reports.
func (m *Manager) commit(ctx context.Context, w store.Write, next *State, based int64) (*State, error) {
	r, err := m.store.Write(ctx, w)
	if err != nil {
		return nil, m.storeError(w.Op, w.SessionID, err)
	}
	switch r.Outcome {
	case store.Written:
		if w.Op == "create" {
			next.Life = r.Life
		}
		if w.EventType != "" { // (a restore commits no new version)
			m.tel.committed(ctx, w.EventType)
		}
		return m.written(ctx, w.SessionID, next, r)
	case store.Exists:
		return nil, fmt.Errorf("%w: %q", ErrSessionExists, w.SessionID)
	case store.NotFound:
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, w.SessionID)
	case store.Conflict:
		return nil, conflict(w.SessionID, w.Life, based, r)
	}
	return nil, unexpected(w.Op, w.SessionID, r)
}

// decodeState decodes stored bytes; version is the stored version, which is
// authoritative.
func decodeState(id string, version int64, b []byte) (*State, error) {
	s := new(State)
	if err := s.UnmarshalJSON(b); err != nil {
		return nil, corrupt(id, err)
	}
	if s.SessionID != id {
		return nil, corrupt(id, fmt.Errorf("stored state names session %q", s.SessionID))
	}
	s.Version = version
	return s, nil
}

func (m *Manager) storeError(op, id string, err error) error {
	if errors.Is(err, store.ErrWrongType) {
		return corrupt(id, err)
	}
	if errors.Is(err, store.ErrTimeout) {
		return &UnavailableError{SessionID: id, Partition: m.layout.Partition(id), Op: op, Err: err}
	}
	return fmt.Errorf("synckairos: %s session %q: %w", op, id, err)
}

func unexpected(op, id string, r store.Result) error {
	return fmt.Errorf("synckairos: %s session %q: unexpected script outcome %d", op, id, r.Outcome)
}

// RestoreSession writes s at s.Version, as it stands, if Redis holds no
// version of the session at least as new: for restoring lost sessions from a
// backup or the audit trail (see audit.RecoverSession). It is announced as
// ChangeRestored and writes no audit event, since it commits no new version.
// It returns a *ConflictError carrying the stored state if Redis already has
// s.Version or a newer one.
func (m *Manager) RestoreSession(ctx context.Context, s *State) (_ *State, err error) {
	if s != nil {
		var c call
		ctx, c = m.tel.start(ctx, "RestoreSession", s.SessionID, true)
		defer c.end(&err)
	}
	next, now, err := m.prepare(ctx, s, "the version to restore at")
	if err != nil {
		return nil, err
	}
	next.normalize()
	deadline, _ := next.expiresAt()
	return m.commit(ctx, store.Write{Op: "restore", SessionID: next.SessionID, Expected: next.Version,
		State: next.appendJSON(nil), At: now, Deadline: deadline, Life: next.Life, Status: string(next.Status)}, next, next.Version-1)
}
