package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
	"github.com/synckairos/synckairos/internal/testenv"
)

// The example runs: a game, its spans and metrics printed.
func TestExample(t *testing.T) {
	t.Setenv("SYNCKAIROS_REDIS_URL", "")
	main()
}

// metrics reads a ManualReader's metrics.
type metrics struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	rm     metricdata.ResourceMetrics
}

func (m *metrics) collect() {
	m.t.Helper()
	if err := m.reader.Collect(context.Background(), &m.rm); err != nil {
		m.t.Fatal(err)
	}
}

func (m *metrics) find(name string) (metricdata.Metrics, bool) {
	for _, sm := range m.rm.ScopeMetrics {
		for _, x := range sm.Metrics {
			if x.Name == name {
				return x, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// value sums the points of an integer sum or gauge whose attributes include
// attrs.
func (m *metrics) value(name string, attrs ...attribute.KeyValue) int64 {
	x, ok := m.find(name)
	if !ok {
		return 0
	}
	match := func(set attribute.Set) bool {
		for _, a := range attrs {
			if v, ok := set.Value(a.Key); !ok || v != a.Value {
				return false
			}
		}
		return true
	}
	var n int64
	switch d := x.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				n += p.Value
			}
		}
	default:
		m.t.Fatalf("%s: %T", name, x.Data)
	}
	return n
}

// eventually collects until cond holds.
func (m *metrics) eventually(what string, cond func() bool) {
	m.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m.collect()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("never: %s", what)
		}
	}
}

func op(s string) attribute.KeyValue      { return attribute.String("synckairos.operation", s) }
func outcome(s string) attribute.KeyValue { return attribute.String("synckairos.outcome", s) }
func transition(s string) attribute.KeyValue {
	return attribute.String("synckairos.transition", s)
}

func random() string {
	var r [6]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// A scripted run through every part, on a Redis of the test's own and a
// Postgres schema of its own: each metric has the value the script makes,
// and each call its span, under the host's.
func TestEveryMetricAndSpan(t *testing.T) {
	ctx := context.Background()
	url := testenv.StartRedis(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel := &synckairos.Telemetry{MeterProvider: mp, TracerProvider: tp}
	ms := &metrics{t: t, reader: reader}

	// Postgres: a schema of the test's own, River with the audit worker.
	pool, schema := newDatabase(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, audit.NewWorker(pool, &audit.WorkerConfig{Telemetry: tel, RetryBase: 10 * time.Millisecond,
		OnFailure: func(context.Context, []audit.Event, error) {}}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: schema, Workers: workers, TestOnly: true,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		rc.Stop(stop)
	}()

	prefix := "sktest:otel:" + random() + ":"
	cfg := synckairos.Config{KeyPrefix: prefix, Audit: true, QueueFinishes: true, SubscriptionBuffer: 1, Telemetry: tel}
	a, err := synckairos.New(testenv.RedisClient(t, url), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := synckairos.New(testenv.RedisClient(t, url), &synckairos.Config{KeyPrefix: prefix, Audit: true, QueueFinishes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	players := func(d time.Duration) []synckairos.Participant {
		return []synckairos.Participant{{ID: "white", TotalTime: d}, {ID: "black", TotalTime: d}}
	}
	hostCtx, host := tp.Tracer("host").Start(ctx, "host")
	g1 := &synckairos.State{SessionID: "g1", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute)}
	created, err := a.CreateSession(hostCtx, g1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSession(hostCtx, g1); !errors.Is(err, synckairos.ErrSessionExists) {
		t.Fatal(err)
	}
	if _, err := a.StartSession(hostCtx, "g1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SwitchCycle(hostCtx, "g1", &synckairos.SwitchOptions{From: "white", Turn: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SwitchCycle(hostCtx, "g1", &synckairos.SwitchOptions{From: "white"}); !errors.Is(err, synckairos.ErrNotActive) {
		t.Fatal(err)
	}
	if _, err := a.UpdateSession(hostCtx, created); !errors.Is(err, synckairos.ErrVersionConflict) {
		t.Fatal(err)
	}
	// Another instance writes during the first attempt: a second one.
	calls := 0
	if _, err := a.MutateSession(hostCtx, "g1", func(s *synckairos.State) error {
		if calls++; calls == 1 {
			if _, err := b.MutateSession(ctx, "g1", func(s *synckairos.State) error {
				s.Metadata = map[string]string{"by": "b"}
				return nil
			}); err != nil {
				return err
			}
		}
		s.Metadata = map[string]string{"by": "a"}
		return nil
	}); err != nil || calls != 2 {
		t.Fatalf("%v after %d calls", err, calls)
	}
	if _, err := a.GetSession(hostCtx, "nope"); !errors.Is(err, synckairos.ErrSessionNotFound) {
		t.Fatal(err)
	}
	if _, err := a.CompleteSession(hostCtx, "g1"); err != nil {
		t.Fatal(err)
	}
	host.End()

	ms.collect()
	for _, c := range []struct {
		attrs []attribute.KeyValue
		want  int64
	}{
		{[]attribute.KeyValue{op("CreateSession"), outcome("written")}, 1},
		{[]attribute.KeyValue{op("CreateSession"), outcome("exists")}, 1},
		{[]attribute.KeyValue{op("StartSession"), outcome("written")}, 1},
		{[]attribute.KeyValue{op("SwitchCycle"), outcome("written")}, 1},
		{[]attribute.KeyValue{op("SwitchCycle"), outcome("refused")}, 1},
		{[]attribute.KeyValue{op("UpdateSession"), outcome("conflict")}, 1},
		{[]attribute.KeyValue{op("MutateSession"), outcome("written")}, 1},
		{[]attribute.KeyValue{op("CompleteSession"), outcome("written")}, 1},
		{nil, 8},
	} {
		if got := ms.value("synckairos.writes", c.attrs...); got != c.want {
			t.Errorf("synckairos.writes %v: %d, want %d", c.attrs, got, c.want)
		}
	}
	for typ, want := range map[string]int64{"session_created": 1, "session_started": 1, "cycle_switched": 1,
		"session_updated": 1, "session_completed": 1} {
		if got := ms.value("synckairos.transitions", transition(typ)); got != want {
			t.Errorf("transitions %s: %d, want %d", typ, got, want)
		}
	}
	if got := ms.value("synckairos.transitions"); got != 5 {
		t.Errorf("transitions: %d, want 5", got)
	}
	// start 1, switch 1, the refused switch 0 (nothing to write), mutate 2,
	// complete 1.
	if got := ms.value("synckairos.mutate.attempts"); got != 5 {
		t.Errorf("mutate attempts: %d, want 5", got)
	}

	// An expiry, from the expirer; both finishes, the first run failing.
	g2 := &synckairos.State{SessionID: "g2", Mode: synckairos.ModePerParticipant, Participants: players(100 * time.Millisecond)}
	if _, err := a.CreateSession(ctx, g2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartSession(ctx, "g2"); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopRun(); wg.Wait() }()
	wg.Go(func() { a.RunExpirer(runCtx) })
	var handled atomic.Int64
	wg.Go(func() {
		a.RunFinisher(runCtx, func(ctx context.Context, f synckairos.Finish) error {
			if handled.Add(1) == 1 {
				return errors.New("the first run fails")
			}
			return nil
		}, &synckairos.FinisherConfig{Backoff: 10 * time.Millisecond})
	})
	ms.eventually("the expiry and both finishes", func() bool {
		return ms.value("synckairos.expirer.expiries") == 1 && ms.value("synckairos.finisher.runs", outcome("done")) == 2
	})
	s2, err := a.GetSession(ctx, "g2")
	if err != nil || s2.Status != synckairos.StatusExpired {
		t.Fatalf("g2: %v %v", s2, err)
	}
	if got := ms.value("synckairos.transitions", transition(s2.LastTransition.Type)); got != 1 {
		t.Errorf("transitions %s: %d", s2.LastTransition.Type, got)
	}
	if got := ms.value("synckairos.writes", op("Expire"), outcome("written")); got != 1 {
		t.Errorf("expirer writes: %d", got)
	}
	if got := ms.value("synckairos.finisher.runs", outcome("failed")); got != 1 {
		t.Errorf("failed finishes: %d", got)
	}
	if got := ms.value("synckairos.expirer.checks"); got < 1 {
		t.Errorf("expirer checks: %d", got)
	}
	if got := ms.value("synckairos.expirer.index_reads"); got < int64(synckairos.DefaultPartitions) {
		t.Errorf("deadline index reads: %d, want at least the %d partitions' loads", got, synckairos.DefaultPartitions)
	}
	late, ok := ms.find("synckairos.expirer.lateness")
	if h, isHist := late.Data.(metricdata.Histogram[float64]); !ok || !isHist || len(h.DataPoints) != 1 || h.DataPoints[0].Count != 1 ||
		h.DataPoints[0].Sum > 1 {
		t.Errorf("lateness: %+v", late.Data)
	}

	// Watchers, on two Managers of the provider: the process's sum.
	a2, err := synckairos.New(testenv.RedisClient(t, url), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	w1, err := a.WatchSession(ctx, "g1", 0)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := a2.WatchSession(ctx, "g1", 0)
	if err != nil {
		t.Fatal(err)
	}
	ms.collect()
	if got := ms.value("synckairos.watchers"); got != 2 {
		t.Errorf("watchers: %d, want 2", got)
	}
	w1.Close()
	ms.collect()
	if got := ms.value("synckairos.watchers"); got != 1 {
		t.Errorf("watchers after a Close: %d, want 1", got)
	}
	a2.Close() // its watch ends with it
	ms.collect()
	if got := ms.value("synckairos.watchers"); got != 0 {
		t.Errorf("watchers after the second Manager closed: %d, want 0", got)
	}
	w2.Close()

	// A callback that panics: the call is an error, not a write.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic was swallowed")
			}
		}()
		a.MutateSession(ctx, "g1", func(*synckairos.State) error { panic("the host's bug") })
	}()
	ms.collect()
	if got := ms.value("synckairos.writes", op("MutateSession"), outcome("error")); got != 1 {
		t.Errorf("a panicking MutateSession: %d errors", got)
	}

	// A subscriber stuck in its callback: with a buffer of 1 the changes
	// after the next are dropped, for one resync; the queue shows the one
	// waiting. Then the connection is cut, and made again.
	release, stuck := make(chan struct{}), make(chan struct{}, 1)
	var resynced atomic.Bool
	sub, err := a.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
		if ev.Kind == synckairos.ChangeResync {
			resynced.Store(true)
			return
		}
		select {
		case stuck <- struct{}{}:
		default:
		}
		<-release
	})
	if err != nil {
		t.Fatal(err)
	}
	change := func() {
		t.Helper()
		if _, err := b.MutateSession(ctx, "g1", func(s *synckairos.State) error { s.Metadata = map[string]string{"n": random()}; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	change()
	<-stuck // the callback holds the first change: one more waits, the rest are dropped
	for range 3 {
		change()
	}
	ms.eventually("drops and a waiting message", func() bool {
		return ms.value("synckairos.subscription.drops") >= 1 && ms.value("synckairos.subscription.queue") >= 1
	})
	close(release)
	ms.eventually("a resync", func() bool { return resynced.Load() && ms.value("synckairos.subscription.resyncs") >= 1 })
	sub.Close()
	admin := testenv.RedisClient(t, url)
	if err := admin.Do(ctx, admin.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	ms.eventually("a reconnection", func() bool { return ms.value("synckairos.subscription.reconnects") >= 1 })

	// A write short of its replicas (the test's Redis has none).
	readerC := sdkmetric.NewManualReader()
	c, err := synckairos.New(testenv.RedisClient(t, url), &synckairos.Config{KeyPrefix: "sktest:otel:" + random() + ":", WaitReplicas: 1,
		WaitTimeout: 10 * time.Millisecond, Telemetry: &synckairos.Telemetry{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(readerC))}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateSession(ctx, &synckairos.State{SessionID: "g4", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute)}); !errors.Is(err, synckairos.ErrNotReplicated) {
		t.Fatal(err)
	}
	mc := &metrics{t: t, reader: readerC}
	mc.collect()
	if mc.value("synckairos.replication.shortfalls") != 1 || mc.value("synckairos.writes", outcome("not_replicated")) != 1 {
		t.Errorf("shortfalls %d, not_replicated writes %d", mc.value("synckairos.replication.shortfalls"), mc.value("synckairos.writes", outcome("not_replicated")))
	}

	// The audit pipeline: the outboxes' backlog, then the relay moves it
	// all and the worker writes it.
	relay, err := audit.NewRelay(a, rc, pool, &audit.RelayConfig{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var backlog int64
	for _, stream := range a.OutboxStreams() {
		n, err := admin.Do(ctx, admin.B().Xlen().Key(stream).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		backlog += n
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); relay.Run(relayCtx) }()
	defer func() { stopRelay(); <-relayDone }()
	ms.eventually("the relay's gauges", func() bool {
		_, ok := ms.find("synckairos.audit.outbox.backlog")
		return ok
	})
	if backlog < 10 {
		t.Fatalf("only %d events in the outboxes", backlog)
	}
	ms.eventually("every event moved and written", func() bool {
		return ms.value("synckairos.audit.relay.moved") == backlog && ms.value("synckairos.audit.worker.rows") == backlog
	})
	ms.eventually("empty outboxes and completed jobs", func() bool {
		return ms.value("synckairos.audit.outbox.backlog") == 0 && ms.value("synckairos.audit.outbox.pending") == 0 &&
			ms.value("synckairos.audit.jobs", attribute.String("synckairos.job.state", "completed")) >= 1
	})
	// A job holding an event written already, and one that cannot be.
	var again audit.Event
	var snapshot *string
	if err := pool.QueryRow(ctx, `SELECT session_id, life, version, event_type, "timestamp", state_snapshot::text FROM sync_events
		WHERE session_id = 'g1' AND version = 2`).Scan(&again.SessionID, &again.Life, &again.Version, &again.Type, &again.Timestamp, &snapshot); err != nil {
		t.Fatal(err)
	}
	if snapshot != nil {
		again.State = *snapshot
	}
	bad := audit.Event{SessionID: "bad", Life: 1, Version: 1, Type: "session_updated", Timestamp: time.Now(), State: "{"}
	if _, err := rc.Insert(ctx, audit.BatchArgs{Events: []audit.Event{again, bad}}, nil); err != nil {
		t.Fatal(err)
	}
	ms.eventually("a duplicate and a failure", func() bool {
		return ms.value("synckairos.audit.worker.duplicates") == 1 && ms.value("synckairos.audit.worker.failures") == 1
	})
	if got := ms.value("synckairos.audit.worker.rows"); got != backlog {
		t.Errorf("worker rows after the duplicate: %d, want %d", got, backlog)
	}

	// The spans: the host's calls under its span, with the session ID; the
	// reads a transition makes under it; refusals marked, errors recorded.
	stopRun()
	wg.Wait()
	spans := rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, kv := range s.Attributes() {
			if string(kv.Key) == key {
				return kv.Value.String()
			}
		}
		return ""
	}
	var hostSpan sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "host" {
			hostSpan = s
		}
	}
	if hostSpan == nil {
		t.Fatal("no host span")
	}
	underHost := 0
	for _, s := range spans {
		if s.Parent().SpanID() == hostSpan.SpanContext().SpanID() {
			underHost++
			if attr(s, "synckairos.session.id") == "" || attr(s, "synckairos.operation") == "" {
				t.Errorf("%s: attributes %v", s.Name(), s.Attributes())
			}
		}
	}
	if underHost != 9 { // the host's nine calls
		t.Errorf("%d spans under the host's, want 9", underHost)
	}
	refusals := 0
	for _, s := range byName["synckairos.SwitchCycle"] {
		if attr(s, "synckairos.outcome") == "refused" {
			refusals++
			if s.Status().Code == codes.Error {
				t.Error("a refusal is marked as an error")
			}
		}
	}
	if refusals != 1 {
		t.Errorf("%d SwitchCycle spans say refused, want 1", refusals)
	}
	for _, s := range byName["synckairos.MutateSession"] {
		if attr(s, "synckairos.outcome") == "error" && s.Status().Code != codes.Error {
			t.Error("the panicking MutateSession's span is not an error")
		}
	}
	var readUnderSwitch bool
	for _, g := range byName["synckairos.GetSession"] {
		for _, s := range byName["synckairos.SwitchCycle"] {
			if g.Parent().SpanID() == s.SpanContext().SpanID() {
				readUnderSwitch = true
			}
		}
		if attr(g, "synckairos.session.id") == "nope" && attr(g, "synckairos.outcome") != "not_found" {
			t.Errorf("GetSession of an unknown session: %v", g.Attributes())
		}
	}
	if !readUnderSwitch {
		t.Error("no read under a switch's span")
	}
	if n := len(byName["synckairos.Expire"]); n < 1 {
		t.Error("no expiry span")
	}
	failedRuns := 0
	for _, s := range byName["synckairos.Finish"] {
		if s.Status().Code == codes.Error {
			failedRuns++
		}
	}
	if len(byName["synckairos.Finish"]) != 3 || failedRuns != 1 {
		t.Errorf("finish spans: %d, %d failed; want 3, 1", len(byName["synckairos.Finish"]), failedRuns)
	}
	var relayed int64
	for _, s := range byName["synckairos.audit.relay.batch"] {
		for _, kv := range s.Attributes() {
			if kv.Key == "synckairos.events" {
				relayed += kv.Value.AsInt64()
			}
		}
	}
	if relayed != backlog || len(byName["synckairos.audit.worker.batch"]) < 2 {
		t.Errorf("relay batch spans carry %d events (want %d); %d worker batch spans", relayed, backlog, len(byName["synckairos.audit.worker.batch"]))
	}

	// Without the session ID.
	recD := tracetest.NewSpanRecorder()
	d, err := synckairos.New(testenv.RedisClient(t, url), &synckairos.Config{KeyPrefix: "sktest:otel:" + random() + ":",
		Telemetry: &synckairos.Telemetry{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recD)), OmitSessionID: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.GetSession(ctx, "g5")
	if got := recD.Ended(); len(got) != 1 || attr(got[0], "synckairos.session.id") != "" || attr(got[0], "synckairos.operation") != "GetSession" {
		t.Errorf("OmitSessionID: %d spans, %v", len(got), got[0].Attributes())
	}
}

// newDatabase returns a pool on a schema of the test's own, migrated for
// the audit trail and River.
func newDatabase(t *testing.T) (*pgxpool.Pool, string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.DatabaseURL())
	if err != nil {
		testenv.Unavailable(t, "Postgres at "+testenv.DatabaseURL(), err)
	}
	defer conn.Close(ctx)
	schema := "sktest_" + random()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), testenv.DatabaseURL())
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	cfg, err := pgxpool.ParseConfig(testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := audit.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := audit.MigrateRiver(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	return pool, schema
}
