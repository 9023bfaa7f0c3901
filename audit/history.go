package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/synckairos/synckairos"
)

// Reader reads the audit trail back: the lives of a session ID, a life's
// history page by page, and the state at a version or at a time. It reads
// the tables that docs/AUDIT.md documents, through pool.
type Reader struct {
	pool *pgxpool.Pool
}

// NewReader returns a Reader of the trail in pool's database (the schema of
// its search_path).
func NewReader(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

// Life is one life of a session ID: from its create to its deletion, or to
// now.
type Life struct {
	SessionID string
	// Life is the life's number (synckairos.State.Life); 0 for the events
	// recorded before lives were.
	Life int64
	// First and Last are the times of its first and last recorded events.
	First, Last time.Time
	// LastVersion is the newest version recorded; Events the number of
	// versions recorded.
	LastVersion int64
	Events      int64
	// Deleted reports that the life ended with DeleteSession.
	Deleted bool
}

// Lives returns the lives of a session ID recorded in the trail, oldest
// first.
func (r *Reader) Lives(ctx context.Context, sessionID string) ([]Life, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT life, min("timestamp"), max("timestamp"), max(version), count(*),
			bool_or(event_type = 'session_deleted')
		FROM sync_events WHERE session_id = $1
		GROUP BY life ORDER BY life`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("audit: lives of %q: %w", sessionID, err)
	}
	lives, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Life, error) {
		l := Life{SessionID: sessionID}
		err := row.Scan(&l.Life, &l.First, &l.Last, &l.LastVersion, &l.Events, &l.Deleted)
		l.First, l.Last = l.First.UTC(), l.Last.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: lives of %q: %w", sessionID, err)
	}
	return lives, nil
}

// Record is one committed version of a session, as the trail holds it.
type Record struct {
	SessionID string
	Life      int64
	Version   int64
	// Type is the event type (the transition's).
	Type string
	// Timestamp is the server time of the commit; RecordedAt when the row
	// was written.
	Timestamp, RecordedAt time.Time
	// Transition is what the change did, from the row's columns (the
	// transitions' facts since migration 002); nil for rows written before.
	Transition *synckairos.Transition
	// State is the state at Version; nil for a deletion, or with
	// HistoryOptions.WithoutStates.
	State *synckairos.State
}

// Default and largest page of History.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

// HistoryOptions choose a page of History. A nil *HistoryOptions gives the
// current life's oldest DefaultHistoryLimit versions.
type HistoryOptions struct {
	// Life is the life to read; 0 is the current one (the largest).
	Life int64
	// NewestFirst orders the page by version descending.
	NewestFirst bool
	// After, when set, is a cursor: the page starts after this version (or,
	// NewestFirst, before it). HistoryPage.Next is the next page's.
	After int64
	// Limit is the most records in the page, 1 to MaxHistoryLimit. Defaults
	// to DefaultHistoryLimit.
	Limit int
	// WithoutStates leaves the snapshots out (Record.State nil): the facts
	// alone, for a move list.
	WithoutStates bool
}

// HistoryPage is a page of a life's history.
type HistoryPage struct {
	// Life is the life read.
	Life    int64
	Records []Record
	// Next, when there is more, is the options of the next page; nil at
	// the end.
	Next *HistoryOptions
}

// History returns a page of the history of one life of a session ID: its
// committed versions in order, each with its transition's facts and,
// unless left out, its state. It returns synckairos.ErrSessionNotFound when
// the trail has no event of the ID (or of the life asked for).
func (r *Reader) History(ctx context.Context, sessionID string, opts *HistoryOptions) (*HistoryPage, error) {
	var o HistoryOptions
	if opts != nil {
		o = *opts
	}
	o.Limit = cmp.Or(o.Limit, DefaultHistoryLimit)
	if o.Limit < 1 || o.Limit > MaxHistoryLimit || o.After < 0 || o.Life < 0 {
		return nil, fmt.Errorf("audit: history of %q: Limit %d, After %d, Life %d: want a limit of 1 to %d and no negative cursor or life",
			sessionID, o.Limit, o.After, o.Life, MaxHistoryLimit)
	}
	life, err := r.life(ctx, sessionID, o.Life)
	if err != nil {
		return nil, err
	}
	order, cond := "ASC", "version > $3"
	if o.NewestFirst {
		order, cond = "DESC", "($3::bigint = 0 OR version < $3)"
	}
	snapshot := "state_snapshot::text"
	if o.WithoutStates {
		snapshot = "NULL::text"
	}
	rows, err := r.pool.Query(ctx, `
		SELECT version, event_type, "timestamp", recorded_at, `+snapshot+`,
			turn, from_participant, to_participant, used_ms, increment_ms, refund_ms, added_to, added_ms, expired
		FROM sync_events
		WHERE session_id = $1 AND life = $2 AND `+cond+`
		ORDER BY version `+order+`
		LIMIT $4`, sessionID, life, o.After, o.Limit+1)
	if err != nil {
		return nil, fmt.Errorf("audit: history of %q: %w", sessionID, err)
	}
	records, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) {
		return scanRecord(sessionID, life, row)
	})
	if err != nil {
		return nil, fmt.Errorf("audit: history of %q: %w", sessionID, err)
	}
	page := &HistoryPage{Life: life, Records: records}
	if len(records) > o.Limit {
		page.Records = records[:o.Limit]
		next := o
		next.Life, next.After = life, page.Records[o.Limit-1].Version
		page.Next = &next
	}
	return page, nil
}

func scanRecord(sessionID string, life int64, row pgx.CollectableRow) (Record, error) {
	rec := Record{SessionID: sessionID, Life: life}
	var snapshot *string
	var turn, used, inc, refund, added *int64
	var from, to, addedTo *string
	var expired []string
	if err := row.Scan(&rec.Version, &rec.Type, &rec.Timestamp, &rec.RecordedAt, &snapshot,
		&turn, &from, &to, &used, &inc, &refund, &addedTo, &added, &expired); err != nil {
		return rec, err
	}
	rec.Timestamp, rec.RecordedAt = rec.Timestamp.UTC(), rec.RecordedAt.UTC()
	if turn != nil { // written with its facts (migration 002 and later)
		ms := func(v *int64) time.Duration {
			if v == nil {
				return 0
			}
			return time.Duration(*v) * time.Millisecond
		}
		str := func(v *string) string {
			if v == nil {
				return ""
			}
			return *v
		}
		rec.Transition = &synckairos.Transition{Type: rec.Type, Version: rec.Version, At: rec.Timestamp,
			From: str(from), To: str(to), Used: ms(used), Increment: ms(inc), Refund: ms(refund),
			Participant: str(addedTo), Added: ms(added), Expired: expired}
	}
	if snapshot != nil {
		s := new(synckairos.State)
		if err := s.UnmarshalJSON([]byte(*snapshot)); err != nil {
			return rec, fmt.Errorf("%w: snapshot of %q life %d v%d: %v", synckairos.ErrCorruptState, sessionID, life, rec.Version, err)
		}
		s.Version = rec.Version
		rec.State = s
		if t := s.LastTransition; t != nil && t.Version == rec.Version {
			rec.Transition = t // exact, with its own time
		}
	}
	return rec, nil
}

// life returns life, or when it is 0 the current life of sessionID.
func (r *Reader) life(ctx context.Context, sessionID string, life int64) (int64, error) {
	var found *int64
	err := r.pool.QueryRow(ctx, `
		SELECT max(life) FROM sync_events WHERE session_id = $1 AND ($2::bigint = 0 OR life = $2)`, sessionID, life).Scan(&found)
	if err != nil {
		return 0, fmt.Errorf("audit: lives of %q: %w", sessionID, err)
	}
	if found == nil {
		what := "no event"
		if life != 0 {
			what = fmt.Sprintf("no event of life %d", life)
		}
		return 0, fmt.Errorf("%w: the audit trail has %s of %q", synckairos.ErrSessionNotFound, what, sessionID)
	}
	return *found, nil
}

// ErrNoState is returned by StateAt and StateAtTime for a version or time
// at which the life had no state: before its create, or at its deletion.
var ErrNoState = errors.New("audit: no state recorded there")

// StateAt returns the state of a life of a session ID at a version: 0 for
// the newest recorded, life 0 for the current life.
func (r *Reader) StateAt(ctx context.Context, sessionID string, life, version int64) (*synckairos.State, error) {
	return r.stateWhere(ctx, sessionID, life, "($3::bigint = 0 OR version = $3)", version)
}

// StateAtTime returns the state of a life of a session ID as of a time: the
// newest version committed at or before at (life 0: the current life).
// Remaining times at that instant are the state's RemainingAt(at).
func (r *Reader) StateAtTime(ctx context.Context, sessionID string, life int64, at time.Time) (*synckairos.State, error) {
	return r.stateWhere(ctx, sessionID, life, `"timestamp" <= $3`, at)
}

func (r *Reader) stateWhere(ctx context.Context, sessionID string, life int64, cond string, arg any) (*synckairos.State, error) {
	l, err := r.life(ctx, sessionID, life)
	if err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, `
		SELECT version, event_type, "timestamp", recorded_at, state_snapshot::text,
			turn, from_participant, to_participant, used_ms, increment_ms, refund_ms, added_to, added_ms, expired
		FROM sync_events
		WHERE session_id = $1 AND life = $2 AND `+cond+`
		ORDER BY version DESC LIMIT 1`, sessionID, l, arg)
	if err != nil {
		return nil, fmt.Errorf("audit: state of %q: %w", sessionID, err)
	}
	records, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) {
		return scanRecord(sessionID, l, row)
	})
	if err != nil {
		return nil, fmt.Errorf("audit: state of %q: %w", sessionID, err)
	}
	if len(records) == 0 || records[0].State == nil {
		where := strings.TrimSpace(fmt.Sprint(arg))
		return nil, fmt.Errorf("%w: session %q life %d at %s", ErrNoState, sessionID, l, where)
	}
	return records[0].State, nil
}
