package audit_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
	"github.com/synckairos/synckairos/internal/testenv"
)

func databaseURL() string { return testenv.DatabaseURL() }

func unavailable(tb testing.TB, what string, err error) { testenv.Unavailable(tb, what, err) }

func randomName() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// newSchema creates a schema of the test's own and drops it at the end.
func newSchema(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		unavailable(tb, "Postgres at "+databaseURL(), err)
	}
	defer conn.Close(ctx)
	schema := "sktest_" + randomName()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), databaseURL())
		if err != nil {
			tb.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Logf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// newPool returns a pool whose connections use schema, through addr
// (host:port) when it is set.
func newPool(tb testing.TB, schema, addr string) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(databaseURL())
	if err != nil {
		tb.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	if addr != "" {
		host, port, _ := net.SplitHostPort(addr)
		cfg.ConnConfig.Host = host
		fmt.Sscan(port, &cfg.ConnConfig.Port)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func newRedisClient(tb testing.TB) rueidis.Client { return testenv.RedisClient(tb, testenv.RedisURL()) }

func newClientAt(tb testing.TB, url string) rueidis.Client { return testenv.RedisClient(tb, url) }

// pipeline is a Manager with Audit on, River with the audit worker, and the
// database, all of one test.
type pipeline struct {
	schema string
	pool   *pgxpool.Pool
	m      *synckairos.Manager
	river  *river.Client[pgx.Tx]
	prefix string
	redis  rueidis.Client

	mu       sync.Mutex
	failures []failure
}

type failure struct {
	events []audit.Event
	err    error
}

func (p *pipeline) onFailure(_ context.Context, events []audit.Event, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = append(p.failures, failure{events, err})
}

func (p *pipeline) failed() []failure {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]failure(nil), p.failures...)
}

func newPipeline(tb testing.TB, workerCfg *audit.WorkerConfig) *pipeline {
	tb.Helper()
	return newPipelineOn(tb, testenv.RedisURL(), workerCfg)
}

// newPipelineOn is newPipeline on the Redis (or Redis Cluster) at url.
func newPipelineOn(tb testing.TB, url string, workerCfg *audit.WorkerConfig) *pipeline {
	tb.Helper()
	ctx := context.Background()
	p := &pipeline{schema: newSchema(tb), redis: newClientAt(tb, url), prefix: "sktest:audit:" + randomName() + ":"}
	p.pool = newPool(tb, p.schema, "")
	if err := audit.Migrate(ctx, p.pool); err != nil {
		tb.Fatal(err)
	}
	if err := audit.MigrateRiver(ctx, p.pool, p.schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { testenv.DeletePrefix(tb, p.redis, p.prefix) })
	m, err := synckairos.New(p.redis, &synckairos.Config{KeyPrefix: p.prefix, Audit: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	p.m = m

	var wc audit.WorkerConfig
	if workerCfg != nil {
		wc = *workerCfg
	}
	wc.OnFailure = p.onFailure
	wc.RetryBase = cmp.Or(wc.RetryBase, 10*time.Millisecond)
	workers := river.NewWorkers()
	river.AddWorker(workers, audit.NewWorker(p.pool, &wc))
	rc, err := river.NewClient(riverpgxv5.New(p.pool), &river.Config{
		Schema:            p.schema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers:           workers,
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		TestOnly:          true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rc.Stop(stopCtx); err != nil {
			tb.Logf("river stop: %v", err)
		}
	})
	p.river = rc
	return p
}

// startRelay runs a relay until the test ends or stop is called.
func (p *pipeline) startRelay(tb testing.TB, pool *pgxpool.Pool, cfg *audit.RelayConfig) (stop func()) {
	tb.Helper()
	relay, err := audit.NewRelay(p.m, p.river, pool, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	tb.Cleanup(stop)
	return stop
}

// waitRows waits until sync_events holds n rows.
func (p *pipeline) waitRows(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int
		if err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM sync_events`).Scan(&got); err != nil {
			tb.Fatal(err)
		}
		if got == n {
			return
		}
		if got > n {
			tb.Fatalf("%d rows in sync_events, want %d", got, n)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d rows in sync_events after 60s", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// versions returns every (session, version) row, counted.
func (p *pipeline) versions(tb testing.TB) map[string]int {
	tb.Helper()
	rows, err := p.pool.Query(context.Background(), `SELECT session_id || ' v' || version FROM sync_events`)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]int)
	for _, k := range keys {
		out[k]++
	}
	return out
}

// proxy is a TCP proxy to Postgres that a test can cut and restore.
type proxy struct {
	target string
	mu     sync.Mutex
	ln     net.Listener
	addr   string
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(tb testing.TB, target string) *proxy {
	p := &proxy{target: target, conns: map[net.Conn]struct{}{}}
	p.open(tb, "127.0.0.1:0")
	tb.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) open(tb testing.TB, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(up, c) })
			p.wg.Go(func() { pipe(c, up) })
		}
	})
}

// cut closes the listener and every connection through it.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// restore listens again on the same address.
func (p *proxy) restore(tb testing.TB) { p.open(tb, p.addr) }
