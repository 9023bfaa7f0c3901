package audit_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
)

// The pipeline benchmarks need Redis and Postgres:
//
//	go -C audit test -run '^$' -bench . -benchtime 40000x -count 5 .
//
// BenchmarkAuditThroughput commits b.N updates with no relay running, then
// starts one relay (River: 10 workers) and reports how fast the backlog
// drains into sync_events (events/s, from relay start to the last row
// written). The writers are not running meanwhile, so on a 2-core machine
// they take no CPU from the pipeline.
//
// BenchmarkAuditLag offers a steady load of 2,000 updates/s with the relay
// running and reports the lag from each commit ("timestamp", the Redis
// server time of the write) to its row (recorded_at).

const benchSessions, benchWriters = 208, 16 // sessions: a multiple of writers

// commitUpdates commits n updates from 16 goroutines, each owning its
// sessions, so that UpdateSession never conflicts; perWriter, when set,
// paces each goroutine.
func commitUpdates(b *testing.B, p *pipeline, states []*synckairos.State, n int, perWriter time.Duration) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range benchWriters {
		wg.Go(func() {
			next := time.Now()
			for i := w; i < n; i += benchWriters {
				if perWriter > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(perWriter)
				}
				k := i % len(states)
				s := states[k].Clone()
				s.Participants[0].CycleCount++
				stored, err := p.m.UpdateSession(ctx, s)
				if err != nil {
					b.Error(err)
					return
				}
				states[k] = stored
			}
		})
	}
	wg.Wait()
}

func benchStates(b *testing.B, p *pipeline) []*synckairos.State {
	states := make([]*synckairos.State, benchSessions)
	for i := range states {
		s, err := p.m.CreateSession(context.Background(), newState(fmt.Sprint("b", i), 2))
		if err != nil {
			b.Fatal(err)
		}
		states[i] = s
	}
	return states
}

func BenchmarkAuditThroughput(b *testing.B) {
	p := newPipeline(b, nil)
	ctx := context.Background()
	states := benchStates(b, p)
	commitUpdates(b, p, states, b.N, 0)

	b.ResetTimer()
	start := time.Now()
	p.startRelay(b, p.pool, nil)
	p.waitRows(b, benchSessions+b.N)
	b.StopTimer()
	var last time.Time
	if err := p.pool.QueryRow(ctx, `SELECT max(recorded_at) FROM sync_events`).Scan(&last); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(benchSessions+b.N)/last.Sub(start).Seconds(), "events/s")
}

func BenchmarkAuditLag(b *testing.B) {
	p := newPipeline(b, nil)
	ctx := context.Background()
	states := benchStates(b, p)
	p.startRelay(b, p.pool, nil)
	p.waitRows(b, benchSessions)

	const rate = 2000 // updates/s, over all writers
	b.ResetTimer()
	commitUpdates(b, p, states, b.N, benchWriters*time.Second/rate)
	p.waitRows(b, benchSessions+b.N)
	b.StopTimer()
	var p50, p99 float64
	if err := p.pool.QueryRow(ctx, `
		SELECT 1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY recorded_at - "timestamp")),
			1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY recorded_at - "timestamp"))
		FROM sync_events WHERE event_type = 'session_updated'`).Scan(&p50, &p99); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(p50, "lag-p50-ms")
	b.ReportMetric(p99, "lag-p99-ms")
}

// BenchmarkPruneUnderInserts removes 1,000,000 old rows of sync_events with
// Prune's defaults while, every 10 ms, the relay inserts a River job of 100
// events (insert-…) and the worker writes 100 events to sync_events
// (write-…), and reports how long those took before and during the removal
// (p50, p99, max), and how long the removal took:
//
//	go -C audit test -run '^$' -bench PruneUnderInserts -benchtime 1x .
//
// b.N is not used: one run removes the million rows.
func BenchmarkPruneUnderInserts(b *testing.B) {
	wo := newWorkerOnly(b)
	ctx := context.Background()
	if err := audit.MigrateRiver(ctx, wo.pool, wo.schema); err != nil {
		b.Fatal(err)
	}
	inserter, err := river.NewClient(riverpgxv5.New(wo.pool), &river.Config{Schema: wo.schema})
	if err != nil {
		b.Fatal(err)
	}
	const old = 1_000_000
	snapshot := strings.Repeat(`{"participant_id":"p","total_time_ms":180000,"time_used_ms":0},`, 6)
	if _, err := wo.pool.Exec(ctx, `
		INSERT INTO sync_events (session_id, life, version, event_type, "timestamp", state_snapshot)
		SELECT 'old-' || (g % 20000), 1, g, 'session_updated', '2020-01-01'::timestamptz + g * interval '1 ms',
			('{"session_id":"old","participants":[' || $1 || '{}]}')::jsonb
		FROM generate_series(1, $2::int) g`, snapshot, old); err != nil {
		b.Fatal(err)
	}
	// The setup's own writes flushed first (a checkpoint), so that the
	// removal is measured, not the aftermath of the million inserts.
	if _, err := wo.pool.Exec(ctx, `ANALYZE sync_events`); err != nil {
		b.Fatal(err)
	}
	if _, err := wo.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		b.Logf("no checkpoint (needs a superuser): %v", err)
	}
	// The relay's inserts and the worker's writes, every 10 ms.
	var mu sync.Mutex
	var lat, ins []time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			events := make([]audit.Event, 100)
			for i := range events {
				events[i] = event(b, fmt.Sprint("new-", j, "-", i), 1, nil)
				events[i].Timestamp = time.Now()
			}
			start := time.Now()
			if err := pgx.BeginFunc(ctx, wo.pool, func(tx pgx.Tx) error {
				_, err := inserter.InsertManyFastTx(ctx, tx, []river.InsertManyParams{{Args: audit.BatchArgs{Events: events}}})
				return err
			}); err != nil {
				b.Error(err)
				return
			}
			inserted := time.Since(start)
			start = time.Now()
			if err := wo.work(ctx, events); err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			lat = append(lat, time.Since(start))
			ins = append(ins, inserted)
			mu.Unlock()
		}
	})
	take := func() (writes, inserts []time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		writes, inserts = lat, ins
		lat, ins = nil, nil
		return writes, inserts
	}
	// Whether anything waits on a lock meanwhile: what the removal could
	// hold that an insert would wait for.
	lockWaits := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			var n int
			if err := wo.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err == nil {
				mu.Lock()
				lockWaits += n
				mu.Unlock()
			}
		}
	})
	time.Sleep(2 * time.Second)
	before, insBefore := take()
	b.ResetTimer()
	start := time.Now()
	res, err := audit.Prune(ctx, wo.pool, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), pruneOpts())
	took := time.Since(start)
	b.StopTimer()
	during, insDuring := take()
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	if res.Events != old {
		b.Fatalf("pruned %d events, want %d", res.Events, old)
	}
	pct := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(took.Seconds(), "prune-s")
	b.ReportMetric(pct(insBefore, 0.5), "insert-p50-ms-before")
	b.ReportMetric(pct(insBefore, 1), "insert-max-ms-before")
	b.ReportMetric(pct(insDuring, 0.5), "insert-p50-ms")
	b.ReportMetric(pct(insDuring, 0.99), "insert-p99-ms")
	b.ReportMetric(pct(insDuring, 1), "insert-max-ms")
	b.ReportMetric(pct(before, 0.5), "write-p50-ms-before")
	b.ReportMetric(pct(before, 1), "write-max-ms-before")
	b.ReportMetric(pct(during, 0.5), "write-p50-ms")
	b.ReportMetric(pct(during, 0.99), "write-p99-ms")
	b.ReportMetric(pct(during, 1), "write-max-ms")
	b.ReportMetric(float64(len(during)), "rounds")
	b.ReportMetric(float64(lockWaits), "lock-waits-seen")
}

func pruneOpts() *audit.PruneOptions {
	var o audit.PruneOptions
	fmt.Sscan(os.Getenv("PRUNE_BATCH"), &o.Batch)
	if d, err := time.ParseDuration(os.Getenv("PRUNE_PAUSE")); err == nil {
		o.Pause = d
	}
	return &o
}
