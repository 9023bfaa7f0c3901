package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// The pipeline benchmarks need Redis and Postgres:
//
//	go test -run '^$' -bench . -benchtime 40000x -count 5 ./audit
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
