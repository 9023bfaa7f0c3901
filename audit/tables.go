package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synckairos/synckairos"
)

// writeRows writes one batch in tx: each statement takes the whole batch as
// arrays, so a batch costs a few round trips whatever its size. It returns
// the events whose (session_id, life, version) row already holds another
// event: a version committed twice, as after a failover that lost a write.
//
// Rows are written in (session_id, life, version) order, so that concurrent
// jobs holding versions of the same sessions lock their rows in the same
// order and never deadlock each other.
//
// It returns how many events were inserted, and those that collided with
// another event of their version; the rest were there already (relayed
// twice).
func writeRows(ctx context.Context, tx pgx.Tx, rows []row) (inserted int64, collided []Event, err error) {
	if len(rows) == 0 {
		return 0, nil, nil
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.SessionID, b.SessionID), cmp.Compare(a.Life, b.Life), cmp.Compare(a.Version, b.Version))
	})
	if inserted, collided, err = insertEvents(ctx, tx, rows); err != nil {
		return 0, nil, err
	}
	latest := latestPerSession(rows)
	if err := upsertSessions(ctx, tx, latest); err != nil {
		return 0, nil, err
	}
	return inserted, collided, upsertParticipants(ctx, tx, latest)
}

// insertEvents inserts the rows, skipping those already there. A row already
// there with the same commit time is this event, relayed twice; with another
// it is a collision, returned.
func insertEvents(ctx context.Context, tx pgx.Tx, rows []row) (int64, []Event, error) {
	n := len(rows)
	var (
		sessionIDs   = make([]string, n)
		lives        = make([]int64, n)
		versions     = make([]int64, n)
		types        = make([]string, n)
		participants = make([]*string, n)
		groups       = make([]*string, n)
		remaining    = make([]*int64, n)
		elapsed      = make([]*int64, n)
		timestamps   = make([]time.Time, n)
		snapshots    = make([]*string, n)
		metadata     = make([]*string, n)
		turns        = make([]*int64, n)
		froms        = make([]*string, n)
		tos          = make([]*string, n)
		used         = make([]*int64, n)
		increments   = make([]*int64, n)
		refunds      = make([]*int64, n)
		addedTo      = make([]*string, n)
		added        = make([]*int64, n)
		expired      = make([][]string, n)
	)
	for i, r := range rows {
		sessionIDs[i], lives[i], versions[i], types[i], timestamps[i] = r.SessionID, r.Life, r.Version, r.Type, r.Timestamp
		if r.state == nil {
			continue
		}
		s := r.state
		snapshots[i] = &r.State
		metadata[i] = metadataJSON(s.Metadata)
		if p := s.Participant(s.ActiveParticipantID); p != nil {
			participants[i] = &p.ID
			if p.GroupID != "" {
				groups[i] = &p.GroupID
			}
		}
		rem, el := timeFigures(s, r.Timestamp)
		remaining[i], elapsed[i] = rem, el
		turn := s.Turn
		turns[i] = &turn
		if t := s.LastTransition; t != nil && t.Version == r.Version {
			froms[i], tos[i], addedTo[i] = nonEmpty(t.From), nonEmpty(t.To), nonEmpty(t.Participant)
			used[i], increments[i], refunds[i] = millis(t.Used), millis(t.Increment), millis(t.Refund)
			if t.Participant != "" {
				added[i] = millis(t.Added)
			}
			expired[i] = t.Expired
		}
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO sync_events (session_id, life, version, event_type, participant_id, group_id,
			time_remaining_ms, time_elapsed_ms, "timestamp", state_snapshot, metadata,
			turn, from_participant, to_participant, used_ms, increment_ms, refund_ms, added_to, added_ms, expired)
		SELECT u.sid, u.life, u.v, u.type, u.participant, u.grp, u.remaining, u.elapsed, u.ts, u.snapshot, u.md,
			u.turn, u.from_p, u.to_p, u.used, u.inc, u.refund, u.added_to, u.added,
			CASE WHEN x.expired = '{}' THEN NULL ELSE x.expired END
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
			$7::bigint[], $8::bigint[], $9::timestamptz[], $10::text[]::jsonb[], $11::text[]::jsonb[],
			$12::bigint[], $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::text[], $19::bigint[])
			WITH ORDINALITY AS u(sid, life, v, type, participant, grp, remaining, elapsed, ts, snapshot, md,
				turn, from_p, to_p, used, inc, refund, added_to, added, i)
		LEFT JOIN LATERAL (SELECT array(SELECT jsonb_array_elements_text(($20::jsonb)->(u.i::int - 1)))) AS x(expired) ON true
		ORDER BY u.i
		ON CONFLICT (session_id, life, version) DO NOTHING`,
		sessionIDs, lives, versions, types, participants, groups, remaining, elapsed, timestamps, snapshots, metadata,
		turns, froms, tos, used, increments, refunds, addedTo, added, expiredJSON(expired))
	if err != nil {
		return 0, nil, err
	}
	inserted := tag.RowsAffected()
	if inserted == int64(n) {
		return inserted, nil, nil
	}
	// Some rows were there already: tell duplicates from collisions.
	found, err := tx.Query(ctx, `
		SELECT e.session_id, e.life, e.version FROM sync_events e
		JOIN unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS b(session_id, life, version, ts)
			ON e.session_id = b.session_id AND e.life = b.life AND e.version = b.version
		WHERE e."timestamp" <> b.ts`, sessionIDs, lives, versions, timestamps)
	if err != nil {
		return 0, nil, err
	}
	type key struct {
		id      string
		life, v int64
	}
	clash := map[key]bool{}
	for found.Next() {
		var k key
		if err := found.Scan(&k.id, &k.life, &k.v); err != nil {
			found.Close()
			return 0, nil, err
		}
		clash[k] = true
	}
	found.Close()
	if err := found.Err(); err != nil {
		return 0, nil, err
	}
	var collided []Event
	for _, r := range rows {
		if clash[key{r.SessionID, r.Life, r.Version}] {
			collided = append(collided, r.Event)
		}
	}
	return inserted, collided, nil
}

// expiredJSON encodes the lists of expired participants as one JSON array of
// arrays: Postgres arrays of arrays must be rectangular, these are not.
func expiredJSON(lists [][]string) string {
	for i, l := range lists {
		if l == nil {
			lists[i] = []string{}
		}
	}
	b, _ := json.Marshal(lists)
	return string(b)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func millis(d time.Duration) *int64 {
	v := d.Milliseconds()
	return &v
}

func metadataJSON(md map[string]string) *string {
	if len(md) == 0 {
		return nil
	}
	b, _ := json.Marshal(md)
	s := string(b)
	return &s
}

// timeFigures returns, in milliseconds as of at, the time left on the
// running bank and the session's running time; the first is nil where no
// bank runs (no active participant, or a stopwatch without a maximum).
func timeFigures(s *synckairos.State, at time.Time) (remaining, elapsed *int64) {
	elapsed = millis(s.ElapsedAt(at))
	bankless := s.Mode == synckairos.ModeCountUp && s.MaxTime == 0
	if s.ActiveParticipantID != "" && !bankless {
		remaining = millis(s.RemainingAt(at))
	}
	return remaining, elapsed
}

// latest holds, for one session ID, its newest event of the batch and its
// newest event with a state (the same one unless the newest is a deletion),
// newest by (life, version).
type latest struct {
	newest    row
	withState *row
}

func newer(a, b row) bool {
	return a.Life > b.Life || (a.Life == b.Life && a.Version > b.Version)
}

// latestPerSession returns the latest of every session of rows, which are
// sorted, in session order.
func latestPerSession(rows []row) []*latest {
	var out []*latest
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].newest.SessionID != r.SessionID {
			out = append(out, &latest{newest: r})
		}
		l := out[len(out)-1]
		if newer(r, l.newest) {
			l.newest = r
		}
		if r.state != nil && (l.withState == nil || newer(r, *l.withState)) {
			rc := r
			l.withState = &rc
		}
	}
	return out
}

func upsertSessions(ctx context.Context, tx pgx.Tx, sessions []*latest) error {
	var (
		ids, modes, statuses           []string
		perCycle, increments, maxTimes []int64
		created, updated               []time.Time
		started, completed             []*time.Time
		lives, versions                []int64
		metadata                       []*string
		delIDs                         []string
		delLives, delVersions          []int64
		delAt                          []time.Time
	)
	for _, l := range sessions {
		if r := l.withState; r != nil {
			s := r.state
			ids = append(ids, r.SessionID)
			modes = append(modes, string(s.Mode))
			statuses = append(statuses, string(s.Status))
			perCycle = append(perCycle, s.TimePerCycle.Milliseconds())
			increments = append(increments, s.Increment.Milliseconds())
			maxTimes = append(maxTimes, s.MaxTime.Milliseconds())
			created = append(created, s.CreatedAt)
			updated = append(updated, r.Timestamp)
			started = append(started, s.SessionStartedAt)
			completed = append(completed, s.SessionCompletedAt)
			lives = append(lives, r.Life)
			versions = append(versions, r.Version)
			metadata = append(metadata, metadataJSON(s.Metadata))
		}
		if l.newest.state == nil {
			delIDs = append(delIDs, l.newest.SessionID)
			delLives = append(delLives, l.newest.Life)
			delVersions = append(delVersions, l.newest.Version)
			delAt = append(delAt, l.newest.Timestamp)
		}
	}
	// Jobs run concurrently, so a session's events may land out of order:
	// the row follows the newest life; within it, the descriptive columns
	// follow the newest state (state_version), the deletion the newest event
	// (last_version).
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO sync_sessions AS s (session_id, mode, final_status, time_per_cycle_ms, increment_ms, max_time_ms,
				created_at, updated_at, started_at, completed_at, life, last_version, metadata, state_version)
			SELECT *, v FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
				$7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::bigint[],
				$13::text[]::jsonb[])
				AS u(sid, mode, status, per_cycle, inc, max_time, created, updated, started, completed, life, v, md)
			ON CONFLICT (session_id) DO UPDATE SET
				mode = EXCLUDED.mode, time_per_cycle_ms = EXCLUDED.time_per_cycle_ms, increment_ms = EXCLUDED.increment_ms,
				max_time_ms = EXCLUDED.max_time_ms, created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
				completed_at = EXCLUDED.completed_at, metadata = EXCLUDED.metadata, state_version = EXCLUDED.state_version,
				final_status = CASE WHEN s.life = EXCLUDED.life AND s.last_version > EXCLUDED.last_version AND s.deleted_at IS NOT NULL
					THEN s.final_status ELSE EXCLUDED.final_status END,
				deleted_at = CASE WHEN s.life = EXCLUDED.life AND s.last_version > EXCLUDED.last_version THEN s.deleted_at END,
				updated_at = CASE WHEN s.life = EXCLUDED.life THEN greatest(s.updated_at, EXCLUDED.updated_at) ELSE EXCLUDED.updated_at END,
				last_version = CASE WHEN s.life = EXCLUDED.life THEN greatest(s.last_version, EXCLUDED.last_version) ELSE EXCLUDED.last_version END,
				life = EXCLUDED.life
			WHERE s.life < EXCLUDED.life OR (s.life = EXCLUDED.life AND s.state_version < EXCLUDED.state_version)`,
			ids, modes, statuses, perCycle, increments, maxTimes, created, updated, started, completed, lives, versions, metadata); err != nil {
			return err
		}
	}
	if len(delIDs) > 0 {
		// A deletion that lands before the life's states leaves a row for
		// them to fill in.
		if _, err := tx.Exec(ctx, `
			INSERT INTO sync_sessions AS s (session_id, mode, final_status, created_at, updated_at, life, last_version, deleted_at)
			SELECT sid, '', 'deleted', at, at, life, v, at
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS d(sid, life, v, at)
			ON CONFLICT (session_id) DO UPDATE SET
				deleted_at = EXCLUDED.deleted_at, updated_at = EXCLUDED.updated_at,
				final_status = 'deleted', last_version = EXCLUDED.last_version, life = EXCLUDED.life,
				state_version = CASE WHEN s.life = EXCLUDED.life THEN s.state_version ELSE 0 END
			WHERE s.life < EXCLUDED.life OR (s.life = EXCLUDED.life AND s.last_version < EXCLUDED.last_version)`,
			delIDs, delLives, delVersions, delAt); err != nil {
			return err
		}
	}
	return nil
}

func upsertParticipants(ctx context.Context, tx pgx.Tx, sessions []*latest) error {
	var (
		sessionIDs, ids              []string
		indexes, cycles              []int32
		groups                       []*string
		banks, used, lives, versions []int64
		expired                      []bool
		newLifeIDs                   []string
	)
	for _, l := range sessions {
		r := l.withState
		if r == nil {
			continue
		}
		newLifeIDs = append(newLifeIDs, r.SessionID)
		for _, p := range r.state.Participants {
			sessionIDs = append(sessionIDs, r.SessionID)
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
			lives = append(lives, r.Life)
			versions = append(versions, r.Version)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// sync_sessions, written first in this transaction, holds each ID's
	// current life: the participants of an earlier one go, and those of an
	// earlier one landing late are not written.
	if _, err := tx.Exec(ctx, `
		DELETE FROM sync_participants p USING sync_sessions s
		WHERE s.session_id = ANY($1::text[]) AND p.session_id = s.session_id AND p.life < s.life`, newLifeIDs); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO sync_participants AS p (session_id, participant_id, participant_index, group_id,
			total_time_ms, time_used_ms, cycle_count, has_expired, life, version)
		SELECT u.* FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[],
			$7::int[], $8::bool[], $9::bigint[], $10::bigint[]) AS u(sid, pid, idx, grp, bank, used, cycles, expired, life, v)
		JOIN sync_sessions s ON s.session_id = u.sid AND s.life = u.life
		ON CONFLICT (session_id, participant_id) DO UPDATE SET
			participant_index = EXCLUDED.participant_index, group_id = EXCLUDED.group_id,
			total_time_ms = EXCLUDED.total_time_ms, time_used_ms = EXCLUDED.time_used_ms,
			cycle_count = EXCLUDED.cycle_count, has_expired = EXCLUDED.has_expired,
			life = EXCLUDED.life, version = EXCLUDED.version
		WHERE p.life < EXCLUDED.life OR (p.life = EXCLUDED.life AND p.version < EXCLUDED.version)`,
		sessionIDs, ids, indexes, groups, banks, used, cycles, expired, lives, versions)
	return err
}
