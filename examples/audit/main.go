// Audit runs the synckairos audit trail end to end: it migrates Postgres,
// starts River with the audit worker and a relay, changes a session, and
// prints the rows of sync_events as they land.
//
//	go -C examples/audit run .
//
// It needs Postgres at SYNCKAIROS_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test), where it works in the schema
// synckairos_example. Redis is the embedded in-process one unless
// SYNCKAIROS_REDIS_URL is set.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
	"github.com/synckairos/synckairos/synckairostest"
)

const schema = "synckairos_example"

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out *os.File) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Postgres: our tables and River's, in the example's schema.
	pool, err := openPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := audit.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := audit.MigrateRiver(ctx, pool, schema); err != nil {
		return err
	}

	// Redis, and a Manager that writes every change to the outbox too.
	m, closeRedis, err := openManager(ctx, logger)
	if err != nil {
		return err
	}
	defer closeRedis()

	// River, run by the host, with the audit worker.
	workers := river.NewWorkers()
	river.AddWorker(workers, audit.NewWorker(pool, &audit.WorkerConfig{
		Logger: logger,
		OnFailure: func(_ context.Context, events []audit.Event, err error) {
			fmt.Fprintf(out, "audit failure for %d events: %v\n", len(events), err)
		},
	}))
	riverClient, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:  schema,
		Logger:  logger,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
		// How soon River picks up the relay's jobs bounds the audit lag.
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		// Below the relay's RescueAfter (15 s), which rescues the jobs of a
		// worker that died.
		JobTimeout: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	if err := riverClient.Start(ctx); err != nil {
		return err
	}
	defer riverClient.Stop(context.WithoutCancel(ctx))

	// The relay, from the outboxes to River.
	relay, err := audit.NewRelay(m, riverClient, pool, &audit.RelayConfig{Logger: logger})
	if err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); relay.Run(relayCtx) }()
	defer func() { stopRelay(); <-relayDone }()

	// Changes: a game created, started, two moves, finished, deleted.
	id := fmt.Sprintf("audit-example-%d", time.Now().UnixNano())
	if _, err := m.CreateSession(ctx, &synckairos.State{
		SessionID: id,
		Mode:      synckairos.ModePerParticipant,
		Increment: 2 * time.Second,
		Participants: []synckairos.Participant{
			{ID: "white", TotalTime: 3 * time.Minute},
			{ID: "black", TotalTime: 3 * time.Minute},
		},
	}); err != nil {
		return err
	}
	s, err := m.StartSession(ctx, id)
	if err != nil {
		return err
	}
	// Two moves, each committed with its clock: one version, one row.
	for _, move := range []string{"e4", "e5"} {
		r, err := m.SwitchCycle(ctx, id, &synckairos.SwitchOptions{
			From: s.ActiveParticipantID,
			Turn: s.Turn,
			Edit: func(s *synckairos.State) error {
				s.Metadata = map[string]string{"last_move": move}
				return nil
			},
		})
		if err != nil {
			return err
		}
		s = r.State
	}
	// White resigns: the game completes with its result, in one write.
	if _, err = m.MutateSession(ctx, id, func(s *synckairos.State) error {
		now, err := m.Now(ctx)
		if err != nil {
			return err
		}
		if err := s.Complete(now); err != nil {
			return err
		}
		s.Metadata["result"] = "0-1"
		return nil
	}); err != nil {
		return err
	}
	if err := m.DeleteSession(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(out, "committed 6 versions of %s; waiting for their rows\n", id)

	// The rows, as they land.
	seen := int64(0)
	for seen < 6 {
		rows, err := pool.Query(ctx, `
			SELECT version, event_type, coalesce(state_snapshot->'last_transition'->>'from', '-'),
				coalesce((state_snapshot->'last_transition'->>'used_ms')::bigint, 0), recorded_at - "timestamp"
			FROM sync_events WHERE session_id = $1 AND version > $2 ORDER BY version`, id, seen)
		if err != nil {
			return err
		}
		for rows.Next() {
			var version, used int64
			var eventType, from string
			var lag time.Duration
			if err := rows.Scan(&version, &eventType, &from, &used, &lag); err != nil {
				return err
			}
			fmt.Fprintf(out, "  v%d %-17s by %-5s used %6d ms  (landed %v after commit)\n",
				version, eventType, from, used, lag.Round(time.Millisecond))
			seen = version
		}
		if err := rows.Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rows did not land: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	var status string
	var last int64
	if err := pool.QueryRow(ctx, `SELECT final_status, last_version FROM sync_sessions WHERE session_id = $1`, id).Scan(&status, &last); err != nil {
		return err
	}
	fmt.Fprintf(out, "sync_sessions: %s at version %d\n", status, last)
	return nil
}

func openPool(ctx context.Context) (*pgxpool.Pool, error) {
	url := cmp.Or(os.Getenv("SYNCKAIROS_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("postgres at %s: %w", url, err)
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	return pgxpool.NewWithConfig(ctx, cfg)
}

func openManager(ctx context.Context, logger *slog.Logger) (*synckairos.Manager, func(), error) {
	cfg := &synckairos.Config{Audit: true, Logger: logger, KeyPrefix: "synckairos-example:"}
	if url := os.Getenv("SYNCKAIROS_REDIS_URL"); url != "" {
		m, err := synckairos.Dial(ctx, url, cfg)
		if err != nil {
			return nil, nil, err
		}
		return m, func() { m.Close() }, nil
	}
	srv, err := synckairostest.NewServer()
	if err != nil {
		return nil, nil, err
	}
	client, err := srv.NewClient()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	m, err := synckairos.New(client, cfg)
	if err != nil {
		client.Close()
		srv.Close()
		return nil, nil, err
	}
	return m, func() { m.Close(); client.Close(); srv.Close() }, nil
}
