package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/synckairos/synckairos"
)

// RecoverSession restores a session missing from Redis from its latest
// state snapshot in sync_events, at the version of its latest recorded event,
// and returns it. It writes only if Redis holds no version as new (see
// Manager.RestoreSession), atomically; otherwise it returns the
// *synckairos.ConflictError carrying what Redis holds. It returns
// synckairos.ErrSessionNotFound if no snapshot is recorded.
//
// Events still in an outbox are not in Postgres yet: recover after the relay
// has caught up (Relay.Stats). A session deleted with DeleteSession is
// restored too, at the version of its deletion, so that its next change
// takes the next version and its own row.
func RecoverSession(ctx context.Context, m *synckairos.Manager, pool *pgxpool.Pool, id string) (*synckairos.State, error) {
	var version int64
	var snapshot []byte
	err := pool.QueryRow(ctx, `
		SELECT (SELECT max(version) FROM sync_events WHERE session_id = $1 AND life = e.life), state_snapshot::text
		FROM sync_events e
		WHERE session_id = $1 AND state_snapshot IS NOT NULL
		ORDER BY life DESC, version DESC
		LIMIT 1`, id).Scan(&version, &snapshot)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q has no snapshot in sync_events", synckairos.ErrSessionNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: recover session %q: %w", id, err)
	}
	s := new(synckairos.State)
	if err := s.UnmarshalJSON(snapshot); err != nil {
		return nil, fmt.Errorf("%w: snapshot of session %q: %v", synckairos.ErrCorruptState, id, err)
	}
	s.Version = version
	return m.RestoreSession(ctx, s)
}

// RecoveryReport says what RecoverAll did.
type RecoveryReport struct {
	// Restored lists the sessions written back to Redis; Paused those of
	// them that were running, and come back paused.
	Restored, Paused []string
	// Skipped lists the sessions Redis holds already, at the version
	// recorded or a newer one (or that another instance restored first).
	Skipped []string
}

// RecoverAll writes back to Redis every session that the audit trail shows
// unfinished (pending, running or paused, not deleted) in its current life,
// from its latest recorded state: after Redis lost its data (a restart
// without persistence). Run it once the relays have moved what the outboxes
// held, which is gone with Redis anyway.
//
// The clocks across the outage: a session that was running comes back
// paused as of its last recorded event, in a second write audited as
// session_paused. The outage is nobody's move: charging it would flag
// players for the server's fault, as FIDE's rules for a clock that fails
// have the arbiter restore the times. The turn in progress keeps what it
// had used up to that event; the host resumes the game (ResumeSession) when
// the players are back. Time between the last recorded event and the
// outage is lost to the clocks, as a write that never reached the trail is.
//
// It is idempotent and safe to run from several instances at once: each
// write is a compare-and-set on the version, so a session is restored and
// paused once, and one that Redis holds at the recorded version or a newer
// one is left alone.
func RecoverAll(ctx context.Context, m *synckairos.Manager, pool *pgxpool.Pool) (*RecoveryReport, error) {
	rows, err := pool.Query(ctx, `
		SELECT e.session_id, e.version, e.state_snapshot::text
		FROM sync_sessions s
		JOIN sync_events e ON e.session_id = s.session_id AND e.life = s.life AND e.version = s.last_version
		WHERE s.deleted_at IS NULL AND s.final_status IN ('pending', 'running', 'paused')
			AND e.state_snapshot IS NOT NULL
		ORDER BY e.session_id`)
	if err != nil {
		return nil, fmt.Errorf("audit: recover all: %w", err)
	}
	type latest struct {
		id       string
		version  int64
		snapshot []byte
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (latest, error) {
		var l latest
		err := row.Scan(&l.id, &l.version, &l.snapshot)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: recover all: %w", err)
	}
	report := &RecoveryReport{}
	for _, l := range found {
		s := new(synckairos.State)
		if err := s.UnmarshalJSON(l.snapshot); err != nil {
			return report, fmt.Errorf("%w: snapshot of session %q: %v", synckairos.ErrCorruptState, l.id, err)
		}
		s.Version = l.version
		restored, err := m.RestoreSession(ctx, s)
		if errors.Is(err, synckairos.ErrVersionConflict) {
			report.Skipped = append(report.Skipped, l.id)
			continue
		}
		if err != nil {
			return report, fmt.Errorf("audit: recover session %q: %w", l.id, err)
		}
		report.Restored = append(report.Restored, l.id)
		if restored.Status != synckairos.StatusRunning {
			continue
		}
		paused := restored.Clone()
		at := restored.UpdatedAt
		if t := restored.LastTransition; t != nil {
			at = t.At
		}
		if err := paused.Pause(at); err != nil {
			return report, fmt.Errorf("audit: recover session %q: pause as of %s: %w", l.id, at.Format(time.RFC3339Nano), err)
		}
		if _, err := m.UpdateSession(ctx, paused); errors.Is(err, synckairos.ErrVersionConflict) {
			continue // another instance paused it, or the game went on
		} else if err != nil {
			return report, fmt.Errorf("audit: recover session %q: pause: %w", l.id, err)
		}
		report.Paused = append(report.Paused, l.id)
	}
	return report, nil
}
