/*
Package audit moves every committed version of every synckairos session into
Postgres, exactly once, through River jobs that the host application runs in
its own River client.

With synckairos.Config.Audit on, the Lua script that commits a change also
appends its event to the outbox stream of the session's partition, in the
same atomic step. A Relay reads the outboxes through a Redis consumer group
and inserts River jobs in batches, in one transaction; it acknowledges and
deletes the events only after that transaction has committed, and takes over
the events of a relay that died. The Worker writes each batch in one
transaction: one sync_events row per (session_id, life, version), ignoring
duplicates, and the latest state of each ID's current life to sync_sessions
and sync_participants. So an event survives a Postgres outage (it waits in
its outbox) and a crash anywhere (it is relayed again, and written once).
Every life of a reused session ID (a table, a lobby, a match slot: create,
play, delete or expire, create again) is recorded apart.

# Setting up

	// Schema: ours, and River's (the host's own, shown with our helper).
	if err := audit.Migrate(ctx, pool); err != nil { ... }
	if err := audit.MigrateRiver(ctx, pool, ""); err != nil { ... }

	m, err := synckairos.New(redisClient, &synckairos.Config{Audit: true})

	workers := river.NewWorkers()
	river.AddWorker(workers, audit.NewWorker(pool, &audit.WorkerConfig{
		OnFailure: func(ctx context.Context, events []audit.Event, err error) { ... },
	}))
	riverClient, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
		// How soon River picks up the relay's jobs bounds the audit lag.
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		// Below the relay's RescueAfter (15 s), which rescues the jobs of a
		// worker that died.
		JobTimeout: 10 * time.Second,
	})
	if err := riverClient.Start(ctx); err != nil { ... }

	relay, err := audit.NewRelay(m, riverClient, pool, nil)
	go relay.Run(ctx) // until ctx is done; run one or more per deployment

The host owns the pgx pool, the River client and the Redis client, and stops
and closes them; the relay stops with its context.

River's fetch settings decide the lag. The relay inserts a small job every
poll; River with its defaults (FetchCooldown 100 ms, FetchPollInterval 1 s)
picked them up too slowly to keep up with 2,000 updates/s on a 2-core machine
(lag p50 1.65 s, growing), and with FetchCooldown 10 ms and FetchPollInterval
50 ms kept the lag at p50 38 ms, p99 85 ms (BENCHMARKS.md).

A worker that dies mid-job (a crash, a SIGKILL) leaves its job running in
River's table, and River's own rescuer takes an hour by default and runs
every 30 s. The relay rescues audit jobs running for longer than
RelayConfig.RescueAfter (15 s) itself, so that with the settings above the
events of a crashed worker land within about 20 s (TestCrashedWorkerEvents
measures it).

# Why a relay, not a River periodic job

A periodic job would poll on River's schedule (a second at best) and hold a
River worker slot while it reads Redis. The relay polls every 50 ms by
default, batches across partitions, and shares the outboxes with other relays
through the consumer group, which River's leader-elected periodic jobs would
serialize onto one process.

# Retries and failures

Jobs are tried MaxAttempts (5) times, waiting 2 s, 4 s, 8 s and 16 s. A job
that fails its last attempt, and events that can never be written (a state
snapshot that does not decode, a row Postgres refuses), go to
WorkerConfig.OnFailure and are logged at error level; they are not retried
forever. A row Postgres refuses fails its job's transaction: the worker then
writes the job's events one by one, and reports only those refused.
OnFailure never reports an event that was written.

Concurrent jobs write their rows in (session_id, life, version) order, so
that they lock them in the same order and never deadlock each other.

# Migrations

Migrate applies the numbered files of package migrations and records them in
synckairos_migrations, under an advisory lock; it never drops anything.
Hosts with their own migration tool take migrations.FS instead. River's
tables are the host's: River's CLI (river migrate-up), rivermigrate, or
MigrateRiver.

# Reading the trail

The tables are a stable interface, documented in docs/AUDIT.md of the
repository. A Reader reads them back: the lives of an ID, a life's history
page by page (oldest or newest first) with each move's facts (who moved, the
time used, increment, refund, time added and to whom, who expired), and the
state at a version or at a time:

	r := audit.NewReader(pool)
	page, err := r.History(ctx, "game-42", &audit.HistoryOptions{Limit: 50})
	s, err := r.StateAtTime(ctx, "game-42", 0, at) // life 0: the current one

# Limits

The outboxes grow while no relay runs; Relay.Stats reports their length and
the age of their oldest event. An event Postgres refuses is reported to
OnFailure alone; the synckairos Manager refuses, before committing them,
the states Postgres cannot store (a NUL in metadata or data).

# Retention

Every version stores a whole snapshot, and nothing removes one by itself.
Prune removes the events older than a cutoff, oldest first in batches of
DefaultPruneBatch rows (each in a transaction of its own, locking only the
rows it removes), and the sessions whose newest event is older; RetentionJob
runs it as a River periodic job, worked by a RetentionWorker:

	river.AddWorker(workers, audit.NewRetentionWorker(pool, nil))
	// in the river.Config:
	PeriodicJobs: []*river.PeriodicJob{audit.RetentionJob(time.Hour, 90*24*time.Hour)},

Removing 1,000,000 rows takes about 5 s on a 2-core machine; the relay's
inserts meanwhile wait on no lock, but share the machine
(BenchmarkPruneUnderInserts, BENCHMARKS.md).

# Recovery

RecoverSession writes a session lost from Redis back from its latest
snapshot in sync_events, unless Redis holds a version as new. After Redis
lost everything (a restart without persistence), RecoverAll writes back
every unfinished session of the trail: running games come back paused as of
their last recorded event, so that nobody is charged for the outage; it is
idempotent and may run on several instances at once.
*/
package audit
