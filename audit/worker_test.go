package audit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
)

// workerOnly is a migrated schema and a Worker on it, whose failures the
// test reads.
type workerOnly struct {
	*pipeline
	w *audit.Worker
}

func newWorkerOnly(t testing.TB) *workerOnly {
	t.Helper()
	p := &pipeline{schema: newSchema(t)}
	p.pool = newPool(t, p.schema, "")
	if err := audit.Migrate(context.Background(), p.pool); err != nil {
		t.Fatal(err)
	}
	return &workerOnly{pipeline: p, w: audit.NewWorker(p.pool, &audit.WorkerConfig{OnFailure: p.onFailure})}
}

func (wo *workerOnly) work(ctx context.Context, events []audit.Event) error {
	return wo.w.Work(ctx, &river.Job[audit.BatchArgs]{
		JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: audit.MaxAttempts},
		Args:   audit.BatchArgs{Events: events},
	})
}

// event returns the audit event of version v of session id, life 7.
func event(t testing.TB, id string, v int64, metadata map[string]string) audit.Event {
	t.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(v) * time.Second)
	s := &synckairos.State{SessionID: id, Life: 7, Version: v, Mode: synckairos.ModePerParticipant, Status: synckairos.StatusPending,
		Participants: []synckairos.Participant{{ID: "a", TotalTime: time.Minute}, {ID: "b", TotalTime: time.Minute}},
		CreatedAt:    at, UpdatedAt: at, Metadata: metadata,
		LastTransition: &synckairos.Transition{Type: synckairos.EventSessionUpdated, Version: v, At: at}}
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return audit.Event{SessionID: id, Life: 7, Version: v, Type: synckairos.EventSessionUpdated, Timestamp: at, State: string(b)}
}

// Twenty jobs at once, each holding one version of the same hundred
// sessions in its own order: no deadlock, every row within 2 s.
func TestConcurrentJobsDoNotDeadlock(t *testing.T) {
	t.Parallel()
	wo := newWorkerOnly(t)
	ctx := context.Background()
	const jobs, sessions = 20, 100
	batches := make([][]audit.Event, jobs)
	for j := range jobs {
		for i := range sessions {
			batches[j] = append(batches[j], event(t, fmt.Sprint("s-", i), int64(j+1), map[string]string{"k": "v"}))
		}
		rand.Shuffle(len(batches[j]), func(a, b int) { batches[j][a], batches[j][b] = batches[j][b], batches[j][a] })
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	for _, b := range batches {
		wg.Go(func() { errs <- wo.work(ctx, b) })
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("job: %v", err)
		}
	}
	var rows int
	if err := wo.pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != jobs*sessions || len(wo.failed()) != 0 {
		t.Fatalf("%d rows, %d failures", rows, len(wo.failed()))
	}
	if took > 2*time.Second {
		t.Errorf("%d rows took %v, want within 2s", rows, took)
	}
	var last int64
	if err := wo.pool.QueryRow(ctx, `SELECT min(last_version) FROM sync_sessions`).Scan(&last); err != nil || last != jobs {
		t.Fatalf("sync_sessions: oldest last_version %d, want %d (%v)", last, jobs, err)
	}
	t.Logf("%d jobs of %d events at once: %v", jobs, sessions, took)
}

// An event Postgres refuses (a NUL in its metadata, which a Manager refuses
// but an older writer or a hand-made entry may hold) goes to OnFailure
// alone; the job's other events are written.
func TestOneBadEventDoesNotSinkItsJob(t *testing.T) {
	t.Parallel()
	wo := newWorkerOnly(t)
	ctx := context.Background()
	var events []audit.Event
	for i := range 43 {
		md := map[string]string{"k": "v"}
		if i == 20 {
			md["k"] = "bad\x00value"
		}
		events = append(events, event(t, fmt.Sprint("s-", i), 1, md))
	}
	if err := wo.work(ctx, events); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := wo.pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	f := wo.failed()
	if rows != 42 || len(f) != 1 || len(f[0].events) != 1 || f[0].events[0].SessionID != "s-20" || !strings.Contains(f[0].err.Error(), "s-20") {
		t.Fatalf("%d rows; failures %+v", rows, f)
	}
	// Again (a retried job): nothing new, nothing written twice, the bad one
	// reported again.
	if err := wo.work(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := wo.pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&rows); err != nil || rows != 42 {
		t.Fatalf("after a replay: %d rows, %v", rows, err)
	}
	if f := wo.failed(); len(f) != 2 || errors.Is(f[1].err, audit.ErrVersionTaken) {
		t.Fatalf("after a replay: failures %+v", f)
	}
}
