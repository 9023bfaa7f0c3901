package synckairos

import (
	"context"
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
	kept := m.decodes.lookup(id)
	var key string
	if kept != nil {
		key = kept.key // no key made per read
	} else {
		key = m.layout.Session(id)
	}
	version, stored, found, err := m.store.GetKey(ctx, key)
	if err != nil {
		return nil, m.storeError("get", id, err)
	}
	if !found {
		m.decodes.forget(id)
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	same := kept != nil && kept.version == version && kept.stored == stored
	if same && kept.state != nil {
		return kept.state.Clone(), nil
	}
	s, err := decodeState(id, version, stored)
	if err != nil {
		return nil, err
	}
	if m.decodes.on() {
		e := &decoded{key: key, version: version, stored: stored}
		if same { // read a second time: worth a copy
			e.state = s.Clone()
		}
		m.decodes.keep(id, e)
	}
	return s, nil
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
	m.decodes.forget(id)
	return err
}

// UpdateSession stores s if the stored session is still at s.Version, in one
// atomic step with its announcement, and returns the stored state at
// s.Version+1. UpdatedAt is set by the Manager, and s itself is not modified.
// Its LastTransition is EventSessionUpdated, unless s holds a transition made
// on it by one of the State's transitions (State.Switch, …), which is then
// committed as that transition.
//
// It returns a *ConflictError (errors.Is(err, ErrVersionConflict)) if the
// session has moved on, ErrSessionNotFound if it does not exist, and a
// *StateError if s is invalid. In each case nothing is written.
func (m *Manager) UpdateSession(ctx context.Context, s *State) (_ *State, err error) {
	if s != nil {
		var c call
		ctx, c = m.tel.start(ctx, "UpdateSession", s.SessionID, true)
		defer c.end(&err)
	}
	next, now, err := m.prepare(ctx, s, "the version that was read")
	if err != nil {
		return nil, err
	}
	return m.write(ctx, s.Version, next, now)
}

// decodeState decodes stored bytes; version is the stored version, which is
// authoritative.
func decodeState(id string, version int64, stored string) (*State, error) {
	s, err := decodeStored(stored)
	if err != nil {
		return nil, corrupt(id, err)
	}
	if s.SessionID != id {
		return nil, corrupt(id, fmt.Errorf("stored state names session %q", s.SessionID))
	}
	s.Version = version
	return s, nil
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
