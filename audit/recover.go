package audit

import (
	"context"
	"errors"
	"fmt"

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
