package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/synckairos/synckairos/audit"
)

// Prune removes what is older than the cutoff, batch by batch, and nothing
// newer; the retention job does the same from River.
func TestPrune(t *testing.T) {
	t.Parallel()
	wo := newWorkerOnly(t)
	ctx := context.Background()
	// event() dates version v at 2026-01-01 plus v seconds.
	var events []audit.Event
	for v := int64(1); v <= 30; v++ {
		events = append(events, event(t, "old", v, nil))
	}
	for v := int64(100); v <= 104; v++ {
		events = append(events, event(t, "new", v, nil))
	}
	if err := wo.work(ctx, events); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Date(2026, 1, 1, 0, 0, 50, 0, time.UTC)
	res, err := audit.Prune(ctx, wo.pool, cutoff, &audit.PruneOptions{Batch: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 30 || res.Sessions != 1 || res.Participants != 2 {
		t.Fatalf("pruned %+v, want 30 events and the old session with its 2 participants", res)
	}
	var left, sessions int
	if err := wo.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_events), (SELECT count(*) FROM sync_sessions)`).
		Scan(&left, &sessions); err != nil {
		t.Fatal(err)
	}
	if left != 5 || sessions != 1 {
		t.Fatalf("left %d events, %d sessions; want 5, 1", left, sessions)
	}
	// The River job, with an age that reaches back before every event.
	w := audit.NewRetentionWorker(wo.pool, nil)
	err = w.Work(ctx, &river.Job[audit.RetentionArgs]{JobRow: &rivertype.JobRow{Attempt: 1},
		Args: audit.RetentionArgs{MaxAge: time.Since(cutoff.Add(time.Minute))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wo.pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("after the job: %d events, %v", left, err)
	}
}
