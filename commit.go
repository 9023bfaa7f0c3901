package synckairos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/synckairos/synckairos/internal/store"
)

// The one place a change is committed: every write of a session goes
// through commit, one run of the write script, whose outcomes are mapped
// here once.

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

// write stores next, a validated copy, at expected+1 as of now, as the
// change next.LastTransition names when it was made for that version, or
// else as an update.
func (m *Manager) write(ctx context.Context, expected int64, next *State, now time.Time) (*State, error) {
	next.Version = expected + 1
	if t := next.LastTransition; t == nil || t.Version != next.Version {
		next.LastTransition = &Transition{Type: EventSessionUpdated, Version: next.Version, At: now}
	}
	next.UpdatedAt = now
	if next.LastTransition.At.After(now) {
		next.UpdatedAt = next.LastTransition.At
	}
	next.normalize()
	flat, start := m.cfg.MessageFormat == 3, plainStart
	if flat {
		start = flatStart // stored as its own message
	}
	b := next.appendJSONFrom(nil, start)
	deadline, _ := next.expiresAt()
	return m.commit(ctx, store.Write{Op: "update", Flat: flat, SessionID: next.SessionID, Expected: expected, State: b,
		EventType: next.LastTransition.Type, At: next.UpdatedAt, Deadline: deadline, Life: next.Life, Status: string(next.Status)}, next, expected)
}

// written returns the state of a committed write, or, when the Manager
// waits for replicas and too few acknowledged it, a *ReplicationError
// carrying that state.
func (m *Manager) written(ctx context.Context, id string, s *State, r store.Result) (*State, error) {
	if m.cfg.WaitReplicas == 0 || r.Replicas >= int64(m.cfg.WaitReplicas) {
		return s, nil
	}
	m.tel.shortfall(ctx)
	return nil, &ReplicationError{SessionID: id, Version: r.Version, Replicas: r.Replicas, Wanted: m.cfg.WaitReplicas, State: s}
}

// prepare checks a state given for a write at an existing version (want
// says which) and returns a copy to write, with the time of the write.
func (m *Manager) prepare(ctx context.Context, s *State, want string) (*State, time.Time, error) {
	if err := m.check(); err != nil {
		return nil, time.Time{}, err
	}
	if s == nil {
		return nil, time.Time{}, invalid("state", "nil")
	}
	if s.Version < 1 {
		return nil, time.Time{}, invalid("version", "%d; want %s, at least 1", s.Version, want)
	}
	if err := s.Validate(); err != nil {
		return nil, time.Time{}, err
	}
	now, err := m.now(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	return s.Clone(), now, nil
}

// conflict returns the *ConflictError of a refused write based on version
// expected of life, carrying the stored state the script returned.
func conflict(id string, life, expected int64, r store.Result) error {
	current, err := decodeState(id, r.Version, r.State)
	if err != nil {
		return err
	}
	return &ConflictError{SessionID: id, Life: life, Expected: expected, Actual: r.Version, Current: current}
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
