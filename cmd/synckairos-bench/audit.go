package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
)

// audit runs the whole audit pipeline (outbox, relay, River, worker,
// Postgres) in a schema of its own while writers commit updates for the
// run's duration, then waits for every commit's row. It reports the rows
// landed per second (from the first commit to the last row) and the lag
// from each commit (its Redis server time) to its row (recorded_at), next
// to the writers' own UpdateSession figures.
func (b *bench) audit(ctx context.Context) (*Result, error) {
	n, conc := cmp.Or(b.o.sessions, 208), cmp.Or(b.o.concurrency, 16)
	n = max(n, conc)
	schema := fmt.Sprintf("synckairos_bench_%d", time.Now().UnixNano())
	pool, drop, err := openSchema(ctx, b.o.postgresURL, schema)
	if err != nil {
		return nil, err
	}
	defer drop()
	if err := audit.Migrate(ctx, pool); err != nil {
		return nil, err
	}
	if err := audit.MigrateRiver(ctx, pool, schema); err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	workers := river.NewWorkers()
	river.AddWorker(workers, audit.NewWorker(pool, &audit.WorkerConfig{Logger: logger, Telemetry: b.tel}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:  schema,
		Logger:  logger,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
		// How soon River picks up a job bounds the lag (see BENCHMARKS.md).
		FetchCooldown:     b.o.riverFetch,
		FetchPollInterval: max(b.o.riverFetch, time.Millisecond) * 5,
	})
	if err != nil {
		return nil, err
	}
	if err := rc.Start(ctx); err != nil {
		return nil, err
	}
	defer rc.Stop(context.WithoutCancel(ctx))

	start := time.Now()
	m, states, err := b.managerWith(ctx, synckairos.Config{Audit: true}, "audit", n, hours(1), false)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	relay, err := audit.NewRelay(m, rc, pool, &audit.RelayConfig{Logger: logger})
	if err != nil {
		return nil, err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	startRelay := func() { go func() { defer close(relayDone); relay.Run(relayCtx) }() }
	defer func() { stopRelay(); <-relayDone }()
	if !b.o.auditDrain {
		startRelay()
	}

	o := own(states, conc)
	writes := &measured{name: "UpdateSession (audited)"}
	p := &progress{w: b.o.progress, label: "audit: writing", begun: time.Now(), total: b.o.duration}
	stopProgress := p.start(ctx)
	runRound(ctx, b.o.duration, conc, writes, func(ctx context.Context, w int) error {
		return o.update(ctx, m, w)
	}, p, newPacer(b.o.rate, conc))
	stopProgress()
	committed := int64(n) + int64(writes.hist.Count())
	writersDone := time.Now()
	if b.o.auditDrain {
		startRelay() // the whole run's commits wait in the outboxes
	}
	var rowsAtStop int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&rowsAtStop); err != nil {
		return nil, err
	}

	// Every commit's row.
	p = &progress{w: b.o.progress, label: "audit: draining", begun: time.Now(), total: 2 * time.Minute}
	stopProgress = p.start(ctx)
	var rows int64
	for limit := time.Now().Add(2 * time.Minute); ; {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&rows); err != nil {
			stopProgress()
			return nil, err
		}
		p.ops.Store(uint64(rows))
		if rows >= committed || time.Now().After(limit) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopProgress()

	var last time.Time
	var p50, p90, p99, maxLag float64
	if err := pool.QueryRow(ctx, `
		SELECT max(recorded_at),
			1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY recorded_at - "timestamp")),
			1000 * extract(epoch FROM percentile_cont(0.9) WITHIN GROUP (ORDER BY recorded_at - "timestamp")),
			1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY recorded_at - "timestamp")),
			1000 * extract(epoch FROM max(recorded_at - "timestamp"))
		FROM sync_events`).Scan(&last, &p50, &p90, &p99, &maxLag); err != nil {
		return nil, err
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	lag := Stats{Name: "commit → row (lag)", Ops: uint64(rows), P50: ms(p50), P90: ms(p90), P99: ms(p99), Max: ms(maxLag),
		PerSecond: float64(rows) / last.Sub(start).Seconds()}
	r := &Result{Scenario: "audit", Params: b.params(n, conc, "rate", b.o.rate, "river_workers", 10), Op: lag,
		LostUpdates: committed - rows}
	r.withReference(writes.stats())
	r.RatioP50 = 0 // a lag over a write latency says nothing
	drain := "-"
	if b.o.auditDrain {
		r.Extra = map[string]any{"committed": committed, "rows": rows,
			"events/s draining the whole backlog (relay started after the writers)": fmt.Sprintf("%.0f (%d rows in %v)",
				float64(rows)/last.Sub(writersDone).Seconds(), rows, last.Sub(writersDone).Round(time.Millisecond))}
		return r, nil
	}
	if rows > rowsAtStop && last.After(writersDone) {
		drain = fmt.Sprintf("%.0f (%d rows in %v)", float64(rows-rowsAtStop)/last.Sub(writersDone).Seconds(),
			rows-rowsAtStop, last.Sub(writersDone).Round(time.Millisecond))
	}
	r.Extra = map[string]any{
		"committed": committed,
		"rows":      rows,
		"events/s overall (first commit to last row)":    fmt.Sprintf("%.0f", lag.PerSecond),
		"events/s while writing":                         fmt.Sprintf("%.0f", float64(rowsAtStop)/writersDone.Sub(start).Seconds()),
		"events/s draining the backlog, writers stopped": drain,
	}
	return r, nil
}

// openSchema creates schema and returns a pool whose connections use it,
// and a function that drops the schema and closes the pool.
func openSchema(ctx context.Context, url, schema string) (*pgxpool.Pool, func(), error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres %s: %w", url, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, nil, err
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		drop()
		return nil, nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		drop()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); drop() }, nil
}
