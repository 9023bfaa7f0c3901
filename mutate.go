package synckairos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/synckairos/synckairos/internal/keylock"
)

// Backoff between MutateSession attempts after the first retry: 10 ms, 20 ms,
// 40 ms, … up to a second, each with ±50% jitter.
const (
	mutateBackoffBase = 10 * time.Millisecond
	mutateBackoffMax  = time.Second
)

// MutateSession applies fn to the current state and stores the result with
// UpdateSession, retrying on conflict up to Config.MaxAttempts attempts.
//
// fn receives a copy it may change freely, except for SessionID and Version;
// it may be called more than once, each time with the then current state, so
// it must not have effects outside that state. An error from fn stops
// MutateSession and is returned as it is, with nothing written. fn may apply
// one of the State's transitions (State.Switch, State.Complete, …, with the
// time from Manager.Now): the write then commits that transition together
// with fn's own change, as one version and one event.
//
// Calls for one session from one Manager take turns, so that they never
// conflict with each other, only with other instances. A call of the Manager
// for the same session from inside fn would wait for itself: it fails at
// once with ErrReentrant. (A call from another goroutine that fn waits for
// is a deadlock that cannot be told; don't.) Keep fn short and free of I/O:
// while it runs, the session's calls from this process wait, and, on Linux,
// its goroutine is locked to its OS thread (up to 64 such callbacks at once
// in a process), which is how a call from inside it is recognized.
//
// The first retry runs at once on the state carried by the conflict, which is
// fresh at that moment. Later retries wait (10 ms, 20 ms, 40 ms, … with
// jitter) and then read the session again, as the carried state went stale
// while waiting. When attempts run out, the last *ConflictError is returned;
// an update is never lost once MutateSession has returned it.
func (m *Manager) MutateSession(ctx context.Context, id string, fn func(*State) error) (_ *State, err error) {
	ctx, c := m.tel.start(ctx, "MutateSession", id, true)
	defer c.end(&err)
	s, _, err := m.mutate(ctx, id, nil, true, func(s *State, _ time.Time) (bool, error) {
		return true, fn(s)
	})
	return s, err
}

// mutate is MutateSession for any change: fn gets the time of the attempt
// and says whether there is anything to write; when there is not, the
// current state is returned, and written is false. known, when set, is the
// state the caller holds, taken for the first attempt instead of reading
// the session (a stale one conflicts, and the conflict carries the stored
// state). hostCode says that fn runs the host's code, which could call the
// Manager for the session again.
func (m *Manager) mutate(ctx context.Context, id string, known *State, hostCode bool, fn func(s *State, now time.Time) (bool, error)) (s *State, written bool, err error) {
	if err := m.check(); err != nil {
		return nil, false, err
	}
	if err := validateID("session_id", id); err != nil {
		return nil, false, err
	}
	// Calls on one session from this process take turns: racing each other
	// through Redis would only make all but one of them conflict. Conflicts
	// with other processes are what the compare-and-set resolves.
	held, err := m.mutating.Lock(ctx, id)
	if errors.Is(err, keylock.ErrHeldByCaller) {
		return nil, false, fmt.Errorf("%w: session %q", ErrReentrant, id)
	}
	if err != nil {
		return nil, false, fmt.Errorf("synckairos: mutate session %q: %w", id, err)
	}
	defer held.Unlock()
	current := known
	if known == nil {
		if current, err = m.GetSession(ctx, id); err != nil {
			return nil, false, err
		}
	} else if known.SessionID != id || known.Version < 1 {
		return nil, false, invalid("current", "the state of session %q at version %d, for a call on session %q", known.SessionID, known.Version, id)
	}
	for attempt := 1; ; attempt++ {
		now, err := m.now(ctx)
		if err != nil {
			return nil, false, err
		}
		next := current.Clone()
		var write bool
		if hostCode {
			// The host's code may call the Manager for this session, which
			// would wait for this call: it fails at once instead.
			held.Guard(func() { write, err = fn(next, now) })
		} else {
			write, err = fn(next, now)
		}
		if (err != nil || !write) && current == known {
			// A refusal, or nothing to write, on the state the caller held:
			// only the stored state may say so. Read it, and try again.
			if current, err = m.GetSession(ctx, id); err != nil {
				return nil, false, err
			}
			attempt--
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if !write {
			return current, false, nil
		}
		if next.SessionID != current.SessionID {
			return nil, false, invalid("session_id", "changed by the mutate function from %q to %q", current.SessionID, next.SessionID)
		}
		if next.Version != current.Version {
			return nil, false, invalid("version", "changed by the mutate function from %d to %d", current.Version, next.Version)
		}
		if next.Life != current.Life {
			return nil, false, invalid("life", "changed by the mutate function from %d to %d", current.Life, next.Life)
		}
		if err := next.Validate(); err != nil {
			return nil, false, err
		}
		m.tel.attempt(ctx)
		stored, err := m.write(ctx, current.Version, next, now)
		var conflict *ConflictError
		if !errors.As(err, &conflict) || attempt >= m.cfg.MaxAttempts {
			return stored, stored != nil || errors.Is(err, ErrNotReplicated), err
		}
		if attempt == 1 {
			current = conflict.Current
			continue
		}
		if err := sleep(ctx, backoff(attempt-1)); err != nil {
			return nil, false, fmt.Errorf("synckairos: mutate session %q: %w", id, err)
		}
		if current, err = m.GetSession(ctx, id); err != nil {
			return nil, false, err
		}
	}
}

// backoff returns the wait before retry n (n ≥ 1) of MutateSession.
func backoff(n int) time.Duration {
	d := mutateBackoffMax
	if n <= 7 {
		d = min(mutateBackoffBase<<(n-1), mutateBackoffMax)
	}
	return d/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
