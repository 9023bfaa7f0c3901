package audit_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
	"github.com/synckairos/synckairos/internal/testenv"
)

// The events of a job whose worker process was killed mid-job land within
// 30 s, with the settings the package doc shows: the relay rescues the job
// River would leave running for an hour.
//
// A second process (this test binary, as TestCrashingWorker) takes the job
// in a River client of its own and hangs in it; it is killed with SIGKILL;
// then this process starts the audit worker.
func TestCrashedWorkerEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	pool := newPool(t, schema, "")
	if err := audit.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := audit.MigrateRiver(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	redis := newRedisClient(t)
	prefix := "sktest:crash:" + randomName() + ":"
	t.Cleanup(func() { testenv.DeletePrefix(t, redis, prefix) })
	m, err := synckairos.New(redis, &synckairos.Config{KeyPrefix: prefix, Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	// The crashing worker: started first, so that it takes the job.
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashingWorker$", "-test.v")
	cmd.Env = append(os.Environ(), "SYNCKAIROS_CRASHING_WORKER_SCHEMA="+schema)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	working := make(chan struct{})
	go func() {
		scan := bufio.NewScanner(out)
		for scan.Scan() {
			if strings.Contains(scan.Text(), "crashing worker: working") {
				close(working)
			}
		}
	}()

	// Events, relayed into a job by an insert-only River client.
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := audit.NewRelay(m, inserter, pool, nil) // the documented settings
	if err != nil {
		t.Fatal(err)
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); relay.Run(relayCtx) }()
	t.Cleanup(func() { stopRelay(); <-relayDone })
	for i := range 5 {
		if _, err := m.CreateSession(ctx, newState("crash-"+string(rune('a'+i)), 2)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-working:
	case <-time.After(30 * time.Second):
		t.Fatal("the crashing worker never took the job")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()

	// The audit worker, as the package doc sets it up.
	workers := river.NewWorkers()
	river.AddWorker(workers, audit.NewWorker(pool, nil))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:            schema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		JobTimeout:        10 * time.Second,
		TestOnly:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rc.Stop(stopCtx)
	})
	for {
		var rows int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows == 5 {
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("%d of 5 events in Postgres 30 s after the worker died", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the events of the killed worker's job landed %v after the kill", time.Since(killed).Round(time.Millisecond))
}

// TestCrashingWorker is the second process of TestCrashedWorkerEvents: a
// River client whose audit worker takes a job and hangs in it until the
// process is killed.
func TestCrashingWorker(t *testing.T) {
	t.Parallel()
	schema := os.Getenv("SYNCKAIROS_CRASHING_WORKER_SCHEMA")
	if schema == "" {
		t.Skip("the second process of TestCrashedWorkerEvents")
	}
	ctx := context.Background()
	pool := newPool(t, schema, "")
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[audit.BatchArgs]) error {
		os.Stdout.WriteString("crashing worker: working\n")
		time.Sleep(2 * time.Minute) // until killed (or the test is long gone)
		return nil
	}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:            schema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		JobTimeout:        -1, // hangs, as a worker whose process is gone would
		TestOnly:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute) // until killed (or the test is long gone)
}
