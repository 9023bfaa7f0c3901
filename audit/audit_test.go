package audit_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
	"github.com/synckairos/synckairos/internal/rediscluster"
	"github.com/synckairos/synckairos/internal/testenv"
	"github.com/synckairos/synckairos/migrations"
)

func newState(id string, participants int) *synckairos.State {
	s := &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Increment: 2 * time.Second,
		Participants: make([]synckairos.Participant, participants), Metadata: map[string]string{"table": "7"}}
	for i := range s.Participants {
		s.Participants[i] = synckairos.Participant{ID: fmt.Sprintf("p%d", i), TotalTime: 3 * time.Minute}
	}
	return s
}

// changes makes creates, updates and deletes over several sessions and
// returns the number of committed versions.
func changes(t *testing.T, m *synckairos.Manager, sessions, updates int, tag string) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for i := range sessions {
		id := fmt.Sprintf("%s-%d", tag, i)
		s, err := m.CreateSession(ctx, newState(id, 2))
		if err != nil {
			t.Fatal(err)
		}
		n++
		for range updates {
			next := s.Clone()
			next.Participants[0].CycleCount++
			next.Status = synckairos.StatusPaused
			next.ActiveParticipantID = "p0"
			if s, err = m.UpdateSession(ctx, next); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if i%3 == 0 {
			if err := m.DeleteSession(ctx, id); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	pool := newPool(t, schema, "")
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := audit.Migrate(ctx, pool); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := audit.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM synckairos_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	if applied != len(ups) {
		t.Fatalf("%d migrations recorded, want %d", applied, len(ups))
	}
	for _, table := range []string{"sync_sessions", "sync_events", "sync_participants"} {
		if _, err := pool.Exec(ctx, "SELECT 1 FROM "+table+" LIMIT 1"); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

// Every committed version becomes exactly one row, and the session and
// participant tables hold the latest state.
func TestEveryVersionBecomesOneRow(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	p.startRelay(t, p.pool, nil)
	n := changes(t, p.m, 12, 5, "s")
	p.waitRows(t, n)
	for k, c := range p.versions(t) {
		if c != 1 {
			t.Errorf("%s: %d rows", k, c)
		}
	}
	ctx := context.Background()
	// s-1 was not deleted: its session row holds its last state.
	var status string
	var version int64
	var deleted *time.Time
	if err := p.pool.QueryRow(ctx, `SELECT final_status, last_version, deleted_at FROM sync_sessions WHERE session_id = 's-1'`).
		Scan(&status, &version, &deleted); err != nil {
		t.Fatal(err)
	}
	if status != "paused" || version != 6 || deleted != nil {
		t.Errorf("s-1: status %s, version %d, deleted %v", status, version, deleted)
	}
	// s-0 was deleted at version 7.
	if err := p.pool.QueryRow(ctx, `SELECT final_status, last_version, deleted_at FROM sync_sessions WHERE session_id = 's-0'`).
		Scan(&status, &version, &deleted); err != nil {
		t.Fatal(err)
	}
	if status != "deleted" || version != 7 || deleted == nil {
		t.Errorf("s-0: status %s, version %d, deleted %v", status, version, deleted)
	}
	var cycles, rows int
	if err := p.pool.QueryRow(ctx, `SELECT cycle_count, (SELECT count(*) FROM sync_participants WHERE session_id = 's-1')
		FROM sync_participants WHERE session_id = 's-1' AND participant_id = 'p0'`).Scan(&cycles, &rows); err != nil {
		t.Fatal(err)
	}
	if cycles != 5 || rows != 2 {
		t.Errorf("s-1 participants: p0 cycle_count %d, %d rows", cycles, rows)
	}
	var types []string
	r, err := p.pool.Query(ctx, `SELECT event_type FROM sync_events WHERE session_id = 's-0' ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	if types, err = pgx.CollectRows(r, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	want := []string{"session_created", "session_updated", "session_updated", "session_updated", "session_updated", "session_updated", "session_deleted"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("s-0 event types (-want +got):\n%s", diff)
	}
	if f := p.failed(); len(f) > 0 {
		t.Errorf("failures: %v", f[0].err)
	}
}

// A relay stopped after committing a batch and before acknowledging it (a
// crash), and another relay taking over: every version still lands once.
func TestRelayCrashAndTakeover(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	crashed := make(chan struct{})
	var once sync.Once
	stopFirst := p.startRelay(t, p.pool, &audit.RelayConfig{
		Consumer: "first",
		Test: audit.RelayTestConfig{AfterCommit: func() error {
			once.Do(func() { close(crashed) })
			return errors.New("crash after commit")
		}},
	})
	n := changes(t, p.m, 10, 4, "c")
	<-crashed
	stopFirst()
	// The first relay's jobs were committed: their rows arrive.
	time.Sleep(200 * time.Millisecond)

	// The second relay takes over what the first read and never acknowledged.
	p.startRelay(t, p.pool, &audit.RelayConfig{Consumer: "second", ClaimAfter: 100 * time.Millisecond})
	p.waitRows(t, n)
	for k, c := range p.versions(t) {
		if c != 1 {
			t.Errorf("%s: %d rows", k, c)
		}
	}
	// And the outboxes are empty; the events relayed twice were
	// duplicates, not collisions.
	waitOutboxEmpty(t, p)
	if f := p.failed(); len(f) > 0 {
		t.Fatalf("failures: %v", f[0].err)
	}
}

func waitOutboxEmpty(t *testing.T, p *pipeline) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		total := int64(0)
		for _, stream := range p.m.OutboxStreams() {
			n, err := p.redis.Do(context.Background(), p.redis.B().Xlen().Key(stream).Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if total == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events left in the outboxes", total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Postgres out of reach of the relay while 1000 updates commit: after it
// returns, all 1000 rows appear, none twice.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	px := newProxy(t, "127.0.0.1:5432")
	relayPool := newPool(t, p.schema, px.addr)
	p.startRelay(t, relayPool, &audit.RelayConfig{PollInterval: 10 * time.Millisecond})

	ctx := context.Background()
	s, err := p.m.CreateSession(ctx, newState("outage", 2))
	if err != nil {
		t.Fatal(err)
	}
	p.waitRows(t, 1)
	px.cut()
	for range 1000 {
		next := s.Clone()
		next.Participants[1].CycleCount++
		if s, err = p.m.UpdateSession(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	var during int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&during); err != nil {
		t.Fatal(err)
	}
	if during != 1 {
		t.Fatalf("%d rows while Postgres was out of reach, want 1", during)
	}
	px.restore(t)
	p.waitRows(t, 1001)
	for k, c := range p.versions(t) {
		if c != 1 {
			t.Errorf("%s: %d rows", k, c)
		}
	}
	waitOutboxEmpty(t, p)
}

// A transient worker failure is retried and succeeds; one that never ends
// reaches the hook after the last attempt.
func TestWorkerRetries(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	failUntil := map[string]int{} // job's first session → attempts that fail
	p := newPipeline(t, &audit.WorkerConfig{Test: audit.WorkerTestConfig{BeforeWrite: func(attempt int) error {
		mu.Lock()
		defer mu.Unlock()
		if attempt <= failUntil["limit"] {
			return fmt.Errorf("injected failure %d", attempt)
		}
		return nil
	}}})
	p.startRelay(t, p.pool, nil)

	mu.Lock()
	failUntil["limit"] = 2
	mu.Unlock()
	n := changes(t, p.m, 1, 3, "transient")
	p.waitRows(t, n)
	if f := p.failed(); len(f) != 0 {
		t.Fatalf("transient failure reached the hook: %v", f[0].err)
	}

	mu.Lock()
	failUntil["limit"] = audit.MaxAttempts
	mu.Unlock()
	changes(t, p.m, 1, 0, "always")
	// The session was created and deleted: both events reach the hook, in
	// one job or two (the relay may read between the two writes), each
	// after the last attempt.
	failed := func() (events []audit.Event) {
		for _, f := range p.failed() {
			if !strings.Contains(f.err.Error(), "after 5 attempts") {
				t.Fatalf("hook got %v", f.err)
			}
			events = append(events, f.events...)
		}
		return events
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(failed()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("a job failing every attempt never reached the hook (%d events did)", len(failed()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Two jobs may fail in either order: their retries back off with jitter.
	events := failed()
	slices.SortFunc(events, func(a, b audit.Event) int { return int(a.Version - b.Version) })
	if len(events) != 2 || events[0].SessionID != "always-0" || events[0].Type != synckairos.EventSessionCreated ||
		events[1].Type != synckairos.EventSessionDeleted {
		t.Fatalf("hook got %+v", events)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(failed()); n != 2 {
		t.Fatalf("hook got %d events in the end", n)
	}
}

// An event whose snapshot does not decode goes to the hook, once; the rest
// of its batch is written.
func TestBadSnapshotGoesToHook(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	ctx := context.Background()
	// An entry no synckairos write would make: valid JSON, not a state.
	if err := p.redis.Do(ctx, p.redis.B().Xadd().Key(p.m.OutboxStreams()[p.m.Partition("good")]).Id("*").FieldValue().
		FieldValue("sid", `"bad"`).FieldValue("v", "1").FieldValue("type", "session_created").
		FieldValue("ts", "1700000000000").FieldValue("state", `{"participants":"nope"}`).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.m.CreateSession(ctx, newState("good", 1)); err != nil {
		t.Fatal(err)
	}
	p.startRelay(t, p.pool, nil)
	p.waitRows(t, 1)
	deadline := time.Now().Add(10 * time.Second)
	for len(p.failed()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	f := p.failed()
	if len(f) != 1 || f[0].events[0].SessionID != "bad" {
		t.Fatalf("failures: %+v", f)
	}
	if v := p.versions(t); v["good v1"] != 1 || len(v) != 1 {
		t.Fatalf("rows: %v", v)
	}
	time.Sleep(200 * time.Millisecond)
	if len(p.failed()) != 1 {
		t.Fatalf("the bad event was retried: %d failures", len(p.failed()))
	}
}

func TestRecoverSession(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	p.startRelay(t, p.pool, nil)
	ctx := context.Background()
	s, err := p.m.CreateSession(ctx, newState("lost", 3))
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		next := s.Clone()
		next.Participants[2].CycleCount++
		if s, err = p.m.UpdateSession(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	p.waitRows(t, 5)

	// Redis still has it: nothing is written.
	var conflict *synckairos.ConflictError
	if _, err := audit.RecoverSession(ctx, p.m, p.pool, "lost"); !errors.As(err, &conflict) {
		t.Fatalf("recover over a live session: %v", err)
	}
	if err := p.redis.Do(ctx, p.redis.B().Del().Key(p.m.SessionKey("lost")).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got, err := audit.RecoverSession(ctx, p.m, p.pool, "lost")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Errorf("recovered (-last +recovered):\n%s", diff)
	}
	stored, err := p.m.GetSession(ctx, "lost")
	if err != nil || stored.Version != 5 {
		t.Fatalf("after recovery: %v, %v", stored, err)
	}
	if _, err := audit.RecoverSession(ctx, p.m, p.pool, "never-existed"); !errors.Is(err, synckairos.ErrSessionNotFound) {
		t.Fatalf("recover of an unknown session: %v", err)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	relay, err := audit.NewRelay(p.m, p.river, p.pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := changes(t, p.m, 4, 2, "st")
	time.Sleep(20 * time.Millisecond)
	st, err := relay.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, ps := range st.Partitions {
		total += ps.Length
	}
	if total != int64(n) || st.OldestUnrelayed <= 0 {
		t.Fatalf("before relaying: %d events in outboxes (want %d), oldest %v", total, n, st.OldestUnrelayed)
	}
	p.startRelay(t, p.pool, nil)
	p.waitRows(t, n)
	waitOutboxEmpty(t, p)
	// River records completions in batches: wait for them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err = relay.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		if st.Jobs["running"] == 0 && st.Jobs["completed"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs after relaying: %v", st.Jobs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.OldestUnrelayed != 0 {
		t.Fatalf("after relaying: oldest %v", st.OldestUnrelayed)
	}
	for _, ps := range st.Partitions {
		if ps.Length != 0 || ps.Pending != 0 {
			t.Errorf("partition %d: %+v", ps.Partition, ps)
		}
	}
}

func TestNewRelayNeedsAudit(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t)
	m, err := synckairos.New(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := audit.NewRelay(m, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "Audit") {
		t.Fatalf("NewRelay on a Manager without Audit: %v", err)
	}
}

// Jobs run concurrently, so a session's events can land out of order: the
// session row still ends as the newest event says.
func TestSessionRowWithEventsOutOfOrder(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	pool := newPool(t, schema, "")
	ctx := context.Background()
	if err := audit.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	w := audit.NewWorker(pool, nil)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	state := func(v int64, status synckairos.Status) audit.Event {
		s := newState("ooo", 2)
		s.Version, s.Status, s.CreatedAt, s.UpdatedAt = v, status, at, at.Add(time.Duration(v)*time.Second)
		b, _ := s.MarshalJSON()
		return audit.Event{SessionID: "ooo", Version: v, Type: synckairos.EventSessionUpdated, Timestamp: s.UpdatedAt, State: string(b)}
	}
	deleted := audit.Event{SessionID: "ooo", Version: 4, Type: synckairos.EventSessionDeleted, Timestamp: at.Add(4 * time.Second)}
	work := func(events ...audit.Event) {
		t.Helper()
		job := &river.Job[audit.BatchArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: audit.MaxAttempts}, Args: audit.BatchArgs{Events: events}}
		if err := w.Work(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	check := func(wantStatus, wantMode string, wantLast int64, wantDeleted bool) {
		t.Helper()
		var status, mode string
		var last int64
		var deletedAt *time.Time
		if err := pool.QueryRow(ctx, `SELECT final_status, mode, last_version, deleted_at FROM sync_sessions WHERE session_id = 'ooo'`).
			Scan(&status, &mode, &last, &deletedAt); err != nil {
			t.Fatal(err)
		}
		if status != wantStatus || mode != wantMode || last != wantLast || (deletedAt != nil) != wantDeleted {
			t.Fatalf("session row: %s, mode %q, last v%d, deleted %v; want %s, %q, v%d, %v", status, mode, last, deletedAt, wantStatus, wantMode, wantLast, wantDeleted)
		}
	}
	work(state(3, synckairos.StatusRunning))
	work(state(2, synckairos.StatusPaused)) // older: changes nothing
	check("running", "per_participant", 3, false)
	work(deleted)
	work(state(1, synckairos.StatusPending), deleted) // a duplicate, and an old state
	check("deleted", "per_participant", 4, true)

	// The other order: the deletion lands first.
	if _, err := pool.Exec(ctx, `DELETE FROM sync_sessions; DELETE FROM sync_events`); err != nil {
		t.Fatal(err)
	}
	work(deleted)
	check("deleted", "", 4, true)
	work(state(1, synckairos.StatusPending), state(3, synckairos.StatusRunning))
	check("deleted", "per_participant", 4, true)
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_events`).Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("%d event rows, %v", rows, err)
	}
}

// A session ID used again and again (a table, a lobby, a match slot): every
// version of every life is one row, told apart by the life; nothing is
// reported as a failure; sync_sessions and sync_participants show the
// current life.
func TestEveryLifeOfAReusedIDIsRecorded(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	p.startRelay(t, p.pool, nil)
	ctx := context.Background()
	const reuses = 200
	var last *synckairos.State
	for i := range reuses {
		s, err := p.m.CreateSession(ctx, newState("table-7", 1+i%3))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if s, err = p.m.StartSession(ctx, "table-7"); err != nil {
				t.Fatal(err)
			}
		}
		last = s
		if i < reuses-1 {
			if err := p.m.DeleteSession(ctx, "table-7"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 100 lives of 3 versions (created, started, deleted), 99 of 2, the
	// last of 1: created.
	n := 100*3 + 99*2 + 1
	p.waitRows(t, n)
	if f := p.failed(); len(f) != 0 {
		t.Fatalf("failures reported: %+v", f)
	}
	var lives, dups int
	if err := p.pool.QueryRow(ctx, `SELECT count(DISTINCT life), count(*) - count(DISTINCT (life, version)) FROM sync_events
		WHERE session_id = 'table-7'`).Scan(&lives, &dups); err != nil {
		t.Fatal(err)
	}
	if lives != reuses || dups != 0 {
		t.Fatalf("%d lives recorded, %d duplicate rows; want %d and 0", lives, dups, reuses)
	}
	var life, version int64
	var status string
	var deleted *time.Time
	if err := p.pool.QueryRow(ctx, `SELECT life, last_version, final_status, deleted_at FROM sync_sessions WHERE session_id = 'table-7'`).
		Scan(&life, &version, &status, &deleted); err != nil {
		t.Fatal(err)
	}
	if life != last.Life || version != 1 || status != "pending" || deleted != nil {
		t.Fatalf("sync_sessions: life %d v%d %s deleted %v; want life %d v1 pending", life, version, status, deleted, last.Life)
	}
	var participants int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM sync_participants WHERE session_id = 'table-7' AND life = $1`, last.Life).
		Scan(&participants); err != nil {
		t.Fatal(err)
	}
	var others int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM sync_participants WHERE session_id = 'table-7' AND life <> $1`, last.Life).
		Scan(&others); err != nil {
		t.Fatal(err)
	}
	if participants != len(last.Participants) || others != 0 {
		t.Fatalf("sync_participants: %d of the current life (want %d), %d of earlier ones", participants, len(last.Participants), others)
	}
}

// The pipeline on a Redis Cluster: the relay reads the outboxes of
// partitions spread over three masters.
func TestEveryVersionBecomesOneRowOnCluster(t *testing.T) {
	t.Parallel()
	c, err := rediscluster.Start(context.Background(), testenv.ClusterMasters())
	if errors.Is(err, rediscluster.ErrNoBinaries) {
		unavailable(t, "Redis Cluster", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	p := newPipelineOn(t, c.URL(), nil)
	p.startRelay(t, p.pool, nil)
	n := changes(t, p.m, 40, 3, "cl")
	p.waitRows(t, n)
	for k, rows := range p.versions(t) {
		if rows != 1 {
			t.Errorf("%s: %d rows", k, rows)
		}
	}
	waitOutboxEmpty(t, p)
}

// Instances starting together may all run MigrateRiver.
func TestMigrateRiverConcurrently(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		schema := newSchema(t)
		pool := newPool(t, schema, "")
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if err := audit.MigrateRiver(context.Background(), pool, schema); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
	}
}

// A migration reverted by hand (its tables dropped, its record left, as the
// down files of earlier versions did) is applied again; one reverted by its
// down file is too.
func TestMigrateDetectsARevertedMigration(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	pool := newPool(t, schema, "")
	ctx := context.Background()
	if err := audit.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	hasLife := func() bool {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'sync_events' AND column_name = 'life')`).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// By hand: the tables go, the records stay.
	if _, err := pool.Exec(ctx, `DROP TABLE sync_participants, sync_events, sync_sessions`); err != nil {
		t.Fatal(err)
	}
	if err := audit.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if !hasLife() {
		t.Fatal("tables dropped by hand were not made again")
	}
	// By the down file of 002.
	down, err := fs.ReadFile(migrations.FS, "002_lives_and_facts.down.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(down)); err != nil {
		t.Fatal(err)
	}
	if hasLife() {
		t.Fatal("the down file left the column")
	}
	if err := audit.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if !hasLife() {
		t.Fatal("002 reverted by its down file was not applied again")
	}
}

// The pipeline with the spread key layout: the relay reads the outboxes the
// Manager's layout names.
func TestEveryVersionBecomesOneRowWithTheSpreadLayout(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	m, err := synckairos.New(p.redis, &synckairos.Config{KeyPrefix: p.prefix, Audit: true, Layout: synckairos.LayoutSpread})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	p.m = m
	p.startRelay(t, p.pool, nil)
	n := changes(t, p.m, 20, 2, "sp")
	p.waitRows(t, n)
	for k, rows := range p.versions(t) {
		if rows != 1 {
			t.Errorf("%s: %d rows", k, rows)
		}
	}
}
