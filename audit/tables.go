package audit

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synckairos/synckairos"
)

// writeRows writes one batch in tx: each statement takes the whole batch as
// arrays, so a batch costs three round trips whatever its size. It returns
// the events whose (session_id, version) row already holds another event:
// an earlier life of a reused session ID.
func writeRows(ctx context.Context, tx pgx.Tx, rows []row) (collided []Event, err error) {
	if len(rows) == 0 {
		return nil, nil
	}
	if collided, err = insertEvents(ctx, tx, rows); err != nil {
		return nil, err
	}
	latest := latestPerSession(rows)
	if err := upsertSessions(ctx, tx, latest); err != nil {
		return nil, err
	}
	return collided, upsertParticipants(ctx, tx, latest)
}

// insertEvents inserts the rows, skipping those already there. A row already
// there with the same commit time is this event, relayed twice; with another
// it is a collision, returned.
func insertEvents(ctx context.Context, tx pgx.Tx, rows []row) ([]Event, error) {
	n := len(rows)
	var (
		sessionIDs   = make([]string, n)
		versions     = make([]int64, n)
		types        = make([]string, n)
		participants = make([]*string, n)
		groups       = make([]*string, n)
		remaining    = make([]*int64, n)
		elapsed      = make([]*int64, n)
		timestamps   = make([]time.Time, n)
		snapshots    = make([]*string, n)
		metadata     = make([]*string, n)
	)
	for i, r := range rows {
		sessionIDs[i], versions[i], types[i], timestamps[i] = r.SessionID, r.Version, r.Type, r.Timestamp
		if r.state == nil {
			continue
		}
		s := r.state
		snapshots[i] = &r.State
		if len(s.Metadata) > 0 {
			b, _ := json.Marshal(s.Metadata)
			md := string(b)
			metadata[i] = &md
		}
		if p := s.Participant(s.ActiveParticipantID); p != nil {
			participants[i] = &p.ID
			if p.GroupID != "" {
				groups[i] = &p.GroupID
			}
		}
		rem, el := timeFigures(s, r.Timestamp)
		remaining[i], elapsed[i] = rem, el
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO sync_events (session_id, version, event_type, participant_id, group_id,
			time_remaining_ms, time_elapsed_ms, "timestamp", state_snapshot, metadata)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
			$6::bigint[], $7::bigint[], $8::timestamptz[], $9::text[]::jsonb[], $10::text[]::jsonb[])
		ON CONFLICT (session_id, version) DO NOTHING`,
		sessionIDs, versions, types, participants, groups, remaining, elapsed, timestamps, snapshots, metadata)
	if err != nil || tag.RowsAffected() == int64(n) {
		return nil, err
	}
	// Some rows were there already: tell duplicates from collisions.
	found, err := tx.Query(ctx, `
		SELECT e.session_id, e.version FROM sync_events e
		JOIN unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS b(session_id, version, ts)
			ON e.session_id = b.session_id AND e.version = b.version
		WHERE e."timestamp" <> b.ts`, sessionIDs, versions, timestamps)
	if err != nil {
		return nil, err
	}
	type key struct {
		id string
		v  int64
	}
	clash := map[key]bool{}
	for found.Next() {
		var k key
		if err := found.Scan(&k.id, &k.v); err != nil {
			found.Close()
			return nil, err
		}
		clash[k] = true
	}
	found.Close()
	if err := found.Err(); err != nil {
		return nil, err
	}
	var collided []Event
	for _, r := range rows {
		if clash[key{r.SessionID, r.Version}] {
			collided = append(collided, r.Event)
		}
	}
	return collided, nil
}

// timeFigures returns, in milliseconds as of at, the time left on the
// running bank and the session's running time; the first is nil where no
// bank runs (no active participant, or a stopwatch without a maximum).
func timeFigures(s *synckairos.State, at time.Time) (remaining, elapsed *int64) {
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	elapsed = ms(s.ElapsedAt(at))
	bankless := s.Mode == synckairos.ModeCountUp && s.MaxTime == 0
	if s.ActiveParticipantID != "" && !bankless {
		remaining = ms(s.RemainingAt(at))
	}
	return remaining, elapsed
}

// latestPerSession returns, per session, its newest event of the batch and
// its newest event with a state (the same one unless the newest is a
// deletion).
type latest struct {
	newest    row
	withState *row
}

func latestPerSession(rows []row) map[string]*latest {
	out := make(map[string]*latest)
	for _, r := range rows {
		l := out[r.SessionID]
		if l == nil {
			l = &latest{newest: r}
			out[r.SessionID] = l
		} else if r.Version > l.newest.Version {
			l.newest = r
		}
		if r.state != nil && (l.withState == nil || r.Version > l.withState.Version) {
			rc := r
			l.withState = &rc
		}
	}
	return out
}

func upsertSessions(ctx context.Context, tx pgx.Tx, sessions map[string]*latest) error {
	var (
		ids, modes, statuses           []string
		perCycle, increments, maxTimes []int64
		created, updated               []time.Time
		started, completed             []*time.Time
		versions                       []int64
		metadata                       []*string
		delIDs                         []string
		delVersions                    []int64
		delAt                          []time.Time
	)
	for id, l := range sessions {
		if r := l.withState; r != nil {
			s := r.state
			ids = append(ids, id)
			modes = append(modes, string(s.Mode))
			statuses = append(statuses, string(s.Status))
			perCycle = append(perCycle, s.TimePerCycle.Milliseconds())
			increments = append(increments, s.Increment.Milliseconds())
			maxTimes = append(maxTimes, s.MaxTime.Milliseconds())
			created = append(created, s.CreatedAt)
			updated = append(updated, r.Timestamp)
			started = append(started, s.SessionStartedAt)
			completed = append(completed, s.SessionCompletedAt)
			versions = append(versions, r.Version)
			var md *string
			if len(s.Metadata) > 0 {
				b, _ := json.Marshal(s.Metadata)
				v := string(b)
				md = &v
			}
			metadata = append(metadata, md)
		}
		if l.newest.state == nil {
			delIDs = append(delIDs, id)
			delVersions = append(delVersions, l.newest.Version)
			delAt = append(delAt, l.newest.Timestamp)
		}
	}
	// Jobs run concurrently, so a session's events may land out of order:
	// the descriptive columns follow the newest state (state_version), the
	// deletion the newest event (last_version).
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO sync_sessions AS s (session_id, mode, final_status, time_per_cycle_ms, increment_ms, max_time_ms,
				created_at, updated_at, started_at, completed_at, last_version, metadata, state_version)
			SELECT *, v FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
				$7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::text[]::jsonb[])
				AS u(sid, mode, status, per_cycle, inc, max_time, created, updated, started, completed, v, md)
			ON CONFLICT (session_id) DO UPDATE SET
				mode = EXCLUDED.mode, time_per_cycle_ms = EXCLUDED.time_per_cycle_ms, increment_ms = EXCLUDED.increment_ms,
				max_time_ms = EXCLUDED.max_time_ms, created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
				completed_at = EXCLUDED.completed_at, metadata = EXCLUDED.metadata, state_version = EXCLUDED.state_version,
				final_status = CASE WHEN s.last_version > EXCLUDED.last_version AND s.deleted_at IS NOT NULL
					THEN s.final_status ELSE EXCLUDED.final_status END,
				deleted_at = CASE WHEN s.last_version > EXCLUDED.last_version THEN s.deleted_at END,
				updated_at = greatest(s.updated_at, EXCLUDED.updated_at),
				last_version = greatest(s.last_version, EXCLUDED.last_version)
			WHERE s.state_version < EXCLUDED.state_version`,
			ids, modes, statuses, perCycle, increments, maxTimes, created, updated, started, completed, versions, metadata); err != nil {
			return err
		}
	}
	if len(delIDs) > 0 {
		// A deletion that lands before the session's states leaves a row
		// for them to fill in.
		if _, err := tx.Exec(ctx, `
			INSERT INTO sync_sessions AS s (session_id, mode, final_status, created_at, updated_at, last_version, deleted_at)
			SELECT sid, '', 'deleted', at, at, v, at
			FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS d(sid, v, at)
			ON CONFLICT (session_id) DO UPDATE SET
				deleted_at = EXCLUDED.deleted_at, updated_at = EXCLUDED.updated_at,
				final_status = 'deleted', last_version = EXCLUDED.last_version
			WHERE s.last_version < EXCLUDED.last_version`,
			delIDs, delVersions, delAt); err != nil {
			return err
		}
	}
	return nil
}

func upsertParticipants(ctx context.Context, tx pgx.Tx, sessions map[string]*latest) error {
	var (
		sessionIDs, ids       []string
		indexes, cycles       []int32
		groups                []*string
		banks, used, versions []int64
		expired               []bool
	)
	for id, l := range sessions {
		if l.withState == nil {
			continue
		}
		for _, p := range l.withState.state.Participants {
			sessionIDs = append(sessionIDs, id)
			ids = append(ids, p.ID)
			indexes = append(indexes, int32(p.Index))
			var g *string
			if p.GroupID != "" {
				gid := p.GroupID
				g = &gid
			}
			groups = append(groups, g)
			banks = append(banks, p.TotalTime.Milliseconds())
			used = append(used, p.TimeUsed.Milliseconds())
			cycles = append(cycles, int32(p.CycleCount))
			expired = append(expired, p.HasExpired)
			versions = append(versions, l.withState.Version)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO sync_participants AS p (session_id, participant_id, participant_index, group_id,
			total_time_ms, time_used_ms, cycle_count, has_expired, version)
		SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[],
			$7::int[], $8::bool[], $9::bigint[])
		ON CONFLICT (session_id, participant_id) DO UPDATE SET
			participant_index = EXCLUDED.participant_index, group_id = EXCLUDED.group_id,
			total_time_ms = EXCLUDED.total_time_ms, time_used_ms = EXCLUDED.time_used_ms,
			cycle_count = EXCLUDED.cycle_count, has_expired = EXCLUDED.has_expired, version = EXCLUDED.version
		WHERE p.version < EXCLUDED.version`,
		sessionIDs, ids, indexes, groups, banks, used, cycles, expired, versions)
	return err
}
