package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/synckairos/synckairos"
)

// DefaultRetryBase is the wait before the second attempt of a failed job;
// each later attempt waits twice as long (2 s, 4 s, 8 s, 16 s).
const DefaultRetryBase = 2 * time.Second

// WorkerConfig configures a Worker. A nil *WorkerConfig gives the defaults.
type WorkerConfig struct {
	// OnFailure is told of events that will not reach Postgres: those of a
	// job that failed its last attempt, or that can never succeed (a state
	// snapshot that does not decode, a constraint violation). They are also
	// logged at error level. Each is told once, but for a row Postgres
	// refuses in a job that also fails for another reason, which may be
	// told again at its next attempt. Defaults to nil: logging only.
	OnFailure func(ctx context.Context, events []Event, err error)

	// RetryBase is the wait before the second attempt of a failed job; each
	// later attempt waits twice as long. Defaults to DefaultRetryBase.
	RetryBase time.Duration

	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// Telemetry turns on the worker's metrics and a span per job
	// (docs/TELEMETRY.md); the relay takes the Manager's. Defaults to nil:
	// none, at no cost.
	Telemetry *synckairos.Telemetry

	// Test holds settings for tests only.
	Test WorkerTestConfig
}

// WorkerTestConfig holds settings for tests of the worker.
type WorkerTestConfig struct {
	// BeforeWrite, when set, runs before each attempt's transaction; an
	// error from it fails the attempt as a database error would.
	BeforeWrite func(attempt int) error
}

// ErrVersionTaken reports events whose (session_id, life, version) row
// holds an event of another time: a version committed twice, as when a
// Redis failover lost a write that the audit trail had already recorded and
// the session committed that version again. The row keeps the first.
var ErrVersionTaken = errors.New("audit: (session_id, life, version) already recorded with another event")

// Worker writes audit events to Postgres: a row of sync_events per event,
// idempotent on (session_id, life, version), and the latest state of each
// session's current life to sync_sessions and sync_participants, in one
// transaction per job. An event Postgres refuses (a constraint or a data
// error) is reported to OnFailure alone: the job's other events are written.
// Register it in the host's River client:
//
//	workers := river.NewWorkers()
//	river.AddWorker(workers, audit.NewWorker(pool, nil))
type Worker struct {
	river.WorkerDefaults[BatchArgs]
	pool *pgxpool.Pool
	cfg  WorkerConfig
	tel  *workerTelemetry
}

// NewWorker returns a Worker that writes through pool. It panics on a nil
// pool, as River's AddWorker does on a nil worker: a program that cannot
// run. A RetryBase below zero is taken as the default.
func NewWorker(pool *pgxpool.Pool, cfg *WorkerConfig) *Worker {
	if pool == nil {
		panic("audit: NewWorker: nil pool")
	}
	var c WorkerConfig
	if cfg != nil {
		c = *cfg
	}
	c.RetryBase = cmp.Or(max(c.RetryBase, 0), DefaultRetryBase)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	w := &Worker{pool: pool, cfg: c}
	tel, err := newWorkerTelemetry(c.Telemetry)
	if err != nil {
		c.Logger.Warn("synckairos: audit worker cannot make its instruments; it reports none", "err", err)
	}
	w.tel = tel
	return w
}

// NextRetry backs off exponentially from RetryBase.
func (w *Worker) NextRetry(job *river.Job[BatchArgs]) time.Time {
	return time.Now().Add(w.cfg.RetryBase << min(max(job.Attempt-1, 0), 20))
}

// Work writes one batch.
func (w *Worker) Work(ctx context.Context, job *river.Job[BatchArgs]) (err error) {
	ctx, span := w.tel.job(ctx, len(job.Args.Events), job.Attempt)
	defer func() { w.tel.jobDone(span, err) }()
	rows, bad := decodeEvents(job.Args.Events)
	if job.Attempt == 1 { // decoding fails the same way every attempt: told once
		for _, b := range bad {
			w.fail(ctx, []Event{b.event}, b.err)
		}
	}
	err = w.write(ctx, job.Attempt, rows)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("audit: write %d events: %w", len(rows), err)
	if permanent(err) {
		// Some event is one Postgres refuses: write the others one by one,
		// and report only those refused.
		return w.writeEach(ctx, job, rows)
	}
	if job.Attempt >= job.MaxAttempts {
		w.fail(ctx, eventsOf(rows), fmt.Errorf("after %d attempts: %w", job.Attempt, err))
	}
	return err
}

func eventsOf(rows []row) []Event {
	events := make([]Event, len(rows))
	for i, r := range rows {
		events[i] = r.Event
	}
	return events
}

// write writes rows in one transaction, and reports the collisions.
func (w *Worker) write(ctx context.Context, attempt int, rows []row) error {
	if w.cfg.Test.BeforeWrite != nil {
		if err := w.cfg.Test.BeforeWrite(attempt); err != nil {
			return err
		}
	}
	var inserted int64
	var collided []Event
	if err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) (err error) {
		inserted, collided, err = writeRows(ctx, tx, rows)
		return err
	}); err != nil {
		return err
	}
	w.tel.wrote(ctx, len(rows), inserted, len(collided))
	if len(collided) > 0 {
		w.fail(ctx, collided, ErrVersionTaken)
	}
	return nil
}

// writeEach writes rows one transaction each, after their batch was refused
// for one of them. Refused events go to OnFailure; a transient error fails
// the job, to be retried (rows written meanwhile are written once).
func (w *Worker) writeEach(ctx context.Context, job *river.Job[BatchArgs], rows []row) error {
	for i, r := range rows {
		err := w.write(ctx, job.Attempt, []row{r})
		switch {
		case err == nil:
		case permanent(err):
			w.fail(ctx, []Event{r.Event}, fmt.Errorf("audit: write %s life %d v%d: %w", r.SessionID, r.Life, r.Version, err))
		default:
			if job.Attempt >= job.MaxAttempts { // those before are written, or told
				w.fail(ctx, eventsOf(rows[i:]), fmt.Errorf("after %d attempts: %w", job.Attempt, err))
			}
			return fmt.Errorf("audit: write %s life %d v%d: %w", r.SessionID, r.Life, r.Version, err)
		}
	}
	return nil
}

func (w *Worker) fail(ctx context.Context, events []Event, err error) {
	if len(events) == 0 {
		return
	}
	w.tel.failed(ctx, len(events))
	w.cfg.Logger.Error("synckairos: audit events will not reach Postgres", "events", len(events),
		"first_session", events[0].SessionID, "first_version", events[0].Version, "err", err)
	if w.cfg.OnFailure != nil {
		w.cfg.OnFailure(ctx, events, err)
	}
}

// permanent reports errors that no retry can mend: constraint violations
// and data exceptions.
func permanent(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	class := pg.Code[:2]
	return class == "22" || class == "23"
}

// row is an event decoded for the tables.
type row struct {
	Event
	state *synckairos.State // nil for a deletion
}

type badEvent struct {
	event Event
	err   error
}

func decodeEvents(events []Event) ([]row, []badEvent) {
	rows := make([]row, 0, len(events))
	var bad []badEvent
	for _, e := range events {
		r := row{Event: e}
		if len(e.State) > 0 {
			s := new(synckairos.State)
			if err := s.UnmarshalJSON([]byte(e.State)); err != nil {
				bad = append(bad, badEvent{e, fmt.Errorf("state snapshot of %s v%d: %w", e.SessionID, e.Version, err)})
				continue
			}
			if s.SessionID != e.SessionID {
				bad = append(bad, badEvent{e, fmt.Errorf("state snapshot of %s v%d names session %q", e.SessionID, e.Version, s.SessionID)})
				continue
			}
			if s.Life != e.Life {
				bad = append(bad, badEvent{e, fmt.Errorf("state snapshot of %s v%d is of life %d, the event of life %d", e.SessionID, e.Version, s.Life, e.Life)})
				continue
			}
			s.Version = e.Version
			r.state = s
		}
		rows = append(rows, r)
	}
	return rows, bad
}
