package audit

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// Retention: every version stores a whole snapshot, so the trail grows with
// every move. Prune removes what is older than a cutoff, in small batches
// that each lock few rows for a short time, so that the relay's inserts go
// on meanwhile; RetentionJob runs it as a River periodic job.

// DefaultPruneBatch is how many rows one Prune statement removes.
const DefaultPruneBatch = 5000

// PruneOptions configure Prune. A nil *PruneOptions gives the defaults.
type PruneOptions struct {
	// Batch is how many rows one statement removes, in a transaction of its
	// own. Defaults to DefaultPruneBatch.
	Batch int
	// Pause is how long Prune waits between batches, to leave the database
	// to the relay's inserts. Defaults to 0.
	Pause time.Duration
}

// PruneResult counts what Prune removed.
type PruneResult struct {
	Events, Sessions, Participants int64
}

// Prune removes from the audit trail the events committed before cutoff,
// and the sessions (with their participants) whose newest event is older:
// batch by batch, until none is left or ctx is done. It never removes an
// event of a session that has one at or after cutoff from sync_sessions.
func Prune(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time, opts *PruneOptions) (PruneResult, error) {
	var o PruneOptions
	if opts != nil {
		o = *opts
	}
	o.Batch = cmp.Or(o.Batch, DefaultPruneBatch)
	var res PruneResult
	if o.Batch < 1 || o.Pause < 0 {
		return res, fmt.Errorf("audit: prune: Batch %d, Pause %v: want a positive batch", o.Batch, o.Pause)
	}
	// Oldest first, each batch starting where the last ended: the rows a
	// batch removed stay in the index until a vacuum, and a scan from the
	// start would step over them all again.
	from := time.Time{}
	for {
		var n int64
		var last *time.Time
		err := pool.QueryRow(ctx, `
			WITH doomed AS (
				SELECT id FROM sync_events WHERE "timestamp" >= $1 AND "timestamp" < $2 ORDER BY "timestamp" LIMIT $3),
			gone AS (
				DELETE FROM sync_events e USING doomed d WHERE e.id = d.id RETURNING e."timestamp")
			SELECT count(*), max("timestamp") FROM gone`, from, cutoff, o.Batch).Scan(&n, &last)
		if err != nil {
			return res, fmt.Errorf("audit: prune events before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		res.Events += n
		if n < int64(o.Batch) || last == nil {
			break
		}
		from = *last
		if !sleep(ctx, o.Pause) {
			return res, ctx.Err()
		}
	}
	for {
		var sessions, participants int64
		err := pool.QueryRow(ctx, `
			WITH gone AS (
				DELETE FROM sync_sessions WHERE session_id IN (
					SELECT session_id FROM sync_sessions WHERE updated_at < $1 LIMIT $2)
				RETURNING session_id),
			parts AS (
				DELETE FROM sync_participants p USING gone g WHERE p.session_id = g.session_id
				RETURNING 1)
			SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM parts)`, cutoff, o.Batch).Scan(&sessions, &participants)
		if err != nil {
			return res, fmt.Errorf("audit: prune sessions before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		res.Sessions += sessions
		res.Participants += participants
		if sessions < int64(o.Batch) {
			return res, nil
		}
		if !sleep(ctx, o.Pause) {
			return res, ctx.Err()
		}
	}
}

// RetentionJobKind is the River kind of the retention job.
const RetentionJobKind = "synckairos_audit_retention"

// RetentionArgs is the River job that prunes the audit trail of what is
// older than MaxAge.
type RetentionArgs struct {
	MaxAge time.Duration `json:"max_age"`
}

// Kind returns RetentionJobKind.
func (RetentionArgs) Kind() string { return RetentionJobKind }

// InsertOpts gives the job three attempts. (River's leader alone inserts
// periodic jobs: instances that all register RetentionJob run it once per
// interval.)
func (RetentionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3}
}

// RetentionWorker works RetentionArgs jobs with Prune. Register it in the
// River client beside the Worker, with RetentionJob as a periodic job:
//
//	river.AddWorker(workers, audit.NewRetentionWorker(pool, nil))
//	riverConfig.PeriodicJobs = []*river.PeriodicJob{audit.RetentionJob(time.Hour, 90*24*time.Hour)}
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	pool   *pgxpool.Pool
	opts   PruneOptions
	logger *slog.Logger
}

// NewRetentionWorker returns a RetentionWorker pruning through pool with
// opts (nil: the defaults).
func NewRetentionWorker(pool *pgxpool.Pool, opts *PruneOptions) *RetentionWorker {
	w := &RetentionWorker{pool: pool, logger: slog.Default()}
	if opts != nil {
		w.opts = *opts
	}
	return w
}

// Timeout lets a retention job run as long as it needs: it works in small
// batches, and a job cut short by River's JobTimeout would leave the rest
// for the next.
func (w *RetentionWorker) Timeout(*river.Job[RetentionArgs]) time.Duration { return -1 }

// Work prunes what is older than the job's MaxAge.
func (w *RetentionWorker) Work(ctx context.Context, job *river.Job[RetentionArgs]) error {
	if job.Args.MaxAge <= 0 {
		return river.JobCancel(fmt.Errorf("audit: retention: MaxAge %v, want a positive age", job.Args.MaxAge))
	}
	cutoff := time.Now().Add(-job.Args.MaxAge)
	res, err := Prune(ctx, w.pool, cutoff, &w.opts)
	w.logger.Info("synckairos: audit retention", "before", cutoff, "events", res.Events, "sessions", res.Sessions, "err", err)
	return err
}

// RetentionJob returns the River periodic job that prunes the trail of what
// is older than maxAge, every interval (and once at start).
func RetentionJob(interval, maxAge time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return RetentionArgs{MaxAge: maxAge}, nil
	}, &river.PeriodicJobOpts{RunOnStart: true})
}
