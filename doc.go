/*
Package synckairos keeps server-authoritative session timers — chess and game
clocks, turn timers, synchronized countdowns and stopwatches — in Redis, so
that any number of stateless instances of an application share them.

Redis is the truth: a [Manager] holds no session state of its own (the
decoded states it keeps, [Config.DecodeCacheBytes], stand only for the bytes
Redis returns to each read), and every change is one atomic compare-and-set
on the session's version, done by a Lua script that also publishes the
change. No update is ever lost: a write based
on a stale version is refused with the current state.

# Connecting

A [Manager] works through a rueidis client that the application creates, with
client-side caching disabled, and closes after the Manager:

	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  []string{"127.0.0.1:6379"},
		DisableCache: true,
	})
	if err != nil { ... }
	defer client.Close()

	m, err := synckairos.New(client, nil) // nil: every Config default
	if err != nil { ... }
	defer m.Close()

[Dial] does both from a Redis URL, for examples and quick starts; its Manager
owns its client. Without a Redis server, the synckairostest package runs the
library on an in-process fake.

Under load, let the client batch its writes: with many goroutines calling the
Manager, rueidis otherwise spends much of its CPU in one write system call
per small batch. rueidis.ClientOption.MaxFlushDelay (tens of microseconds)
trades up to that delay on a lone call for far fewer system calls; the load
tool's -flush-delay flag measures it on your machine (BENCHMARKS.md in the
repository has ours).

# Sessions

A [State] is the whole of one session: its mode, status, participants with
their banks, and the server times at which the running cycle and the session
started. Remaining time is not stored; it is computed from those times and
the Redis server clock ([Manager.Now]), so nothing ticks.

	s, err := m.CreateSession(ctx, &synckairos.State{
		SessionID: "game-42",
		Mode:      synckairos.ModePerParticipant,
		Increment: 2 * time.Second,
		Participants: []synckairos.Participant{
			{ID: "white", TotalTime: 3 * time.Minute},
			{ID: "black", TotalTime: 3 * time.Minute},
		},
	})

Every state is validated before anything is written (*[StateError] names the
field and the limit), and is stored with millisecond precision. What cannot
be right is refused: a time control the mode does not use (an Increment in
[ModeGlobal], a Delay outside [ModePerParticipant], a Delay without its
[DelayMode]), a status without what it needs (running without an active
participant or a cycle start), a timed session whose starting bank is zero.

# Clocks

The engine runs a session's clocks by the rules of its [Mode], each transition
a pure function of the state and the Redis server time, applied through the
compare-and-set below, so that it is exact under concurrency and the same on
every instance:

	m.StartSession(ctx, "game-42")
	m.SwitchCycle(ctx, "game-42", &synckairos.SwitchOptions{From: "white", Turn: 1})
	m.PauseSession(ctx, "game-42") // and ResumeSession, CompleteSession, CancelSession, AddTime

	now, _ := m.Now(ctx)
	left := s.RemainingAt(now) // the running bank; ParticipantRemainingAt for any player

Time is exact to the millisecond: a transition takes the time in whole
milliseconds from the moment it is read, and never earlier than the
session's last transition, so what the banks are charged over a whole
session is exactly the session's running time by the server clock, on any
number of instances. [Transition.Used], Increment, Refund, Added, Compensation
and Credit keep the account.

[ModePerParticipant] runs the active player's bank, with a Fischer Increment
after each completed turn and a Bronstein or simple Delay; [ModePerCycle] gives
each turn TimePerCycle; [ModePerGroup] shares one bank per [Group]; [ModeGlobal]
runs one bank for the session; [ModeCountUp] is a stopwatch up to MaxTime.
OnExpiry chooses what running out does. Paused time is never charged.

ModePerParticipant also runs what go and shogi servers and lichess run: an
[Overtime] after the main time (byo-yomi: Periods periods of Period, a move
within one keeps it; Canadian: Moves moves within a block of Period), and
lag compensation ([State.Lag], after lichess's lag tracker): a switch reports
the lag its move met ([SwitchOptions.Lag]), which a per-player quota pays
for, and a flag grace lets a lagged move that arrives just after the
deadline count if its lag brings it back before. [State.ReadingAt] tells what
a clock shows (main time, period, periods or moves left, delay left, quota);
docs/CONTROLS.md compares the controls with FIDE, US Chess, lichess and go
servers.

A transition that comes after a deadline has passed first writes the
expiry, as of the deadline and as a version of its own, as the expirer
would: a late switch never rescues a flagged player (it is refused), and a
pause or a resignation then applies to the state the expiry left.
Every write of a running session records its next deadline in its
partition's deadline index, and RunExpirer, which any number of instances
may run, applies the expiries on time, each exactly once. It sleeps until
the next deadline it knows of (it hears every change the instances
publish), sending Redis a few commands a second while idle, and the
instances running it share the partitions rather than race for each
deadline (rendezvous hashing over a heartbeat; the others stand by). A running
session's key lives at least until its deadline plus [Config.SessionTTL]; one
with no deadline (untimed turns, a stopwatch without MaxTime), like a paused
one, lives Config.SessionTTL after its last write.

A transition not allowed in the session's status fails with a
*[TransitionError] ([ErrInvalidTransition]) and changes nothing, with one
exception: when the session's time ran out before the call, the expiry is
written anyway, and the call returns the written state along with its error.
Every refusal carries the current state ([TransitionError.Current],
[TurnError.Current]), so a refused move needs no second read.

# A move is one write

A game server commits the move (the board, the score, its own fields) and
the clock switch as one compare-and-set: one version, one event, one audit
row. [SwitchOptions.Edit] applies the host's change to the state the switch
writes, and [SwitchOptions.Turn] names the turn the move ends, so that a
retried or duplicated "I moved" is refused with [ErrTurnEnded] (a *[TurnError]
with the current state), told apart from "not your turn" ([ErrNotActive]):

	r, err := m.SwitchCycle(ctx, "game-42", &synckairos.SwitchOptions{
		From: "white",
		Turn: seen.Turn, // the turn the client saw
		Edit: func(s *synckairos.State) error {
			s.Metadata["fen"] = fen // the move, in the same write
			return nil
		},
	})

A caller that holds the session's state (the result of its last call, or
its watch) passes it as [SwitchOptions.Current]: the switch is made without
reading the session first; a stale state costs a refused write, and the
switch is then made on the stored state the conflict carries.

Every transition is also a pure method of [State] (Start, Switch, Pause,
Resume, Complete, Cancel, AddTime) taking the time, so that a MutateSession
callback can commit any of them with the host's change, using [Manager.Now]:

	m.MutateSession(ctx, "game-42", func(s *synckairos.State) error {
		now, err := m.Now(ctx)
		if err != nil {
			return err
		}
		if err := s.Complete(now); err != nil { // white resigns
			return err
		}
		s.Metadata["result"] = "0-1"
		return nil
	})

Inside such a callback (or an Edit), a call of the [Manager] for the same
session fails at once with [ErrReentrant] rather than waiting for itself.

Each write records what it did in [State.LastTransition]: its type (the audit
event type, such as [EventCycleSwitched] or [EventParticipantExpired]) and its
facts: who ended the turn and who is next, the time the turn used, the
increment and refund given, the time added and to whom, who expired.
Subscribers get it as [SessionEvent.Transition], the outbox and the audit
rows with the state: nobody compares states to learn that black flagged.

# Compare-and-set

UpdateSession writes a state only if the stored session is still at the
state's Version; otherwise it returns a *[ConflictError] that carries the
current state. MutateSession does the read, the change and the retries:

	s, err = m.MutateSession(ctx, "game-42", func(s *synckairos.State) error {
		s.Metadata = map[string]string{"opening": "sicilian"}
		return nil
	})

Its first retry runs at once on the state carried by the conflict; later ones
back off (10 ms, 20 ms, 40 ms, … with jitter) and read afresh, up to
[Config.MaxAttempts] attempts. Calls on one session within one process take
turns, so they conflict only with other processes.

Every read asks Redis. A read that gets the very bytes the Manager decoded
for the session before returns a copy of that state instead of decoding
them again ([Config.DecodeCacheBytes]): each State returned is the caller's
own to change.

# Subscriptions

The script that commits a change also publishes it, so every instance can
follow every session without polling:

	sub, err := m.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
		switch ev.Kind {
		case synckairos.ChangeResync:
			// Events may have been lost: re-read the sessions you hold.
		default:
			// ev.SessionID is at ev.Version; ev.State is nil for ChangeDeleted.
		}
	})
	defer sub.Close()

Applications broadcast their own messages to a session's channel with
BroadcastToSession, and receive them with SubscribeToBroadcasts (every
session) or SubscribeToSessionBroadcasts (one).

The contract of every subscription:

  - Subscribe returns once Redis has confirmed the subscription: anything
    published after it returns is delivered.
  - The callback runs on the subscription's own goroutine, one message at a
    time, in the order Redis delivered them. It never runs on the Redis
    connection, so a slow callback never stalls the client.
  - Up to [Config.SubscriptionBuffer] messages wait for a slow callback. Past
    that the backlog is dropped and the callback gets one resync
    ([ChangeResync], or a [Broadcast] with Resync set) in its place.
  - Redis pub/sub keeps nothing for a disconnected subscriber. When the
    connection is lost, the subscription reconnects by itself and, once
    subscribed again, delivers a resync: what was published in between is
    gone, and the application re-reads what it holds. Versions tell which
    later events it has already seen.
  - A message that does not decode is logged and skipped.
  - The subscription ends when its context is done or Close is called, and its
    goroutine ends with it. [Manager.Close] ends every subscription.

All subscriptions of a [Manager] share one dedicated Redis connection taken from
its client.

The updates channel is <prefix>session-updates; its messages are JSON:

	{"format":2,"kind":"updated","session_id":"game-42","version":3,"state":{...}}

kind is "created", "updated", "deleted" or "restored"; a deletion carries no
state and the version after the last one. The state carries the change's
last_transition. With [Config.MessageFormat] 3, an update's message is the
state itself, as stored, starting {"format":3,"session_id": (12–14% fewer
instructions for Redis per switch); every release since that setting reads
all three formats, earlier ones only formats 1 and 2. docs/WIRE.md in the repository documents the formats and
their versions for readers in other languages. Broadcasts go to
<prefix>ws:<sessionID>.

# Clocks in the browser

[State.ViewAt] gives a session as a client displays it (a [View]: each clock
at a server time, and how it runs on), and WatchSession a session's
changes, many watches sharing the [Manager]'s one subscription. Package
skhttp serves them: a Server-Sent Events stream per session, a time
endpoint for clock offset estimation, an error-to-status mapping for the
host's command endpoints, and clock.js, a small JavaScript clock that
shows the right time from them. See docs/VIEW.md.

# Game over, once

Every instance hears a session end; the host's end-of-game work (results,
ratings, payouts) should run once. With [Config.QueueFinishes], the write
that finishes a session (expired, completed or cancelled: the status
before was not final) appends it to its partition's finish stream, in the
same atomic step, and RunFinisher, which any number of instances may run,
calls the handler for each finish on one of them:

	m.RunFinisher(ctx, func(ctx context.Context, f synckairos.Finish) error {
		return results.Record(ctx, f.Key(), f.State) // idempotent on f.Key()
	}, nil)

A handler error is retried with a backoff, [FinisherConfig.MaxAttempts] calls
in all, then given to OnGiveUp. A finisher that dies holding a finish
loses it to another after [FinisherConfig.ClaimAfter] (default 10 s). The one
duplicate left: a finisher killed after its handler returned nil and before
it removed the finish; [Finish.Key] ("life/version/sessionID") is the same for
both calls. It needs only Redis; unused, it costs nothing. On the fake
(synckairostest), ClaimAfter is counted by the fake clock, like TTLs.

# Telemetry

With [Config.Telemetry] set, the [Manager] reports through OpenTelemetry: a span
per call (a child of the span in the call's context), and metrics of its
writes and their outcomes, transitions, retries, the expirer's expiries and
their lateness, subscriptions' drops, resyncs and reconnections, watchers,
finish-handler runs, and in package audit the relay's and worker's work. It
uses the OpenTelemetry API only; the host brings the SDK. Nil, the default,
reports nothing at no cost. docs/TELEMETRY.md lists every instrument.

# Audit trail

With [Config.Audit] on, the script that commits a change also appends it to its
partition's outbox stream, and package audit moves it from there into
Postgres through River jobs: every committed version becomes exactly one row
of sync_events. See package audit.

# Keys

Sessions are spread over [Config.Partitions] partitions by a stable hash of
their ID, and the keys of one partition share a hash tag, so that the library
runs unchanged on Redis Cluster: a session is stored at
<prefix><tag>:s:<sessionID> as a hash of its version ("v") and its JSON
state ("s"), and expires [Config.SessionTTL] after its last write
([Manager.SessionKey] names it). The tags are those of the prefix's layout,
recorded in <prefix>layout by its first [Manager]: "{pNN}" for partition NN
in the [LayoutTags] of deployments made before layouts could be chosen;
short tags on evenly spaced slots in the [LayoutSpread] every new prefix
gets. See [Config.Layout].

# Redis Cluster

The key layout keeps every script's keys in one hash slot, so the library
runs unchanged on Redis Cluster (Redis 7 or later). Give [Dial] every node,
or any of them, in one URL, redis://host1:port1?addr=host2:port2&addr=host3:port3,
or pass [New] a rueidis client created with their addresses (a client in
rueidis.ClientModeCluster is what tells the [Manager] it is on a cluster).

Choose Partitions several times the number of masters, so that partitions,
and sessions with them, spread over every master. A new prefix gets the
spread layout ([LayoutSpread]): its partitions sit on evenly spaced slots, at
an offset of the key prefix's own, so that masters serving equal ranges of
slots serve equal numbers of partitions (5 or 6 of the default 16 on 3
masters; sessions within ±15% of even), and two applications with
different prefixes use different slots. A prefix that holds sessions of
the layout of earlier versions, [LayoutTags] ("{pNN}" for every prefix,
which puts 7, 4 and 5 of 16 on 3 masters), keeps it: New finds them once
and records the choice, and stored sessions never move. Layout and
Partitions are fixed at first deploy; New refuses a Manager contradicting
the record. A partition is one hash slot, so resharding moves whole
partitions.

Pub/sub on a cluster. Classic PUBLISH is broadcast to every node, so its
cost grows with the cluster. There, every change is published on its
partition's sharded channel, <prefix><tag>:updates, by SPUBLISH from the
write script (the channel shares the partition's hash slot), and
SubscribeToUpdates listens on every partition's channel, each on a
connection to the node that owns it: one connection per partition and
Manager while it subscribes, which is one more reason to keep Partitions in
the tens, not the thousands. SubscribeToSessionBroadcasts listens on the session's
sharded channel <prefix><tag>:ws:<id>. SubscribeToBroadcasts is a pattern
subscription, which sharded pub/sub has not: it stays classic, so
BroadcastToSession publishes each broadcast twice on a cluster, classically
on <prefix>ws:<id> and on the sharded channel. A single server and the fake
use the one channel <prefix>session-updates. Each session's messages keep
their order everywhere; the messages of different sessions may interleave
differently on different subscribers. When a slot moves (a failover or a
resharding), the subscriptions of its partition move to the new owner and
their subscribers get a resync event.

Failover. Redis replicates asynchronously: a write the master acknowledged
and had not yet sent to its replica is lost when the replica takes over.
The session then goes back to the version before it, the subscribers
have had the lost change published, and the audit trail may hold it (the
audit Worker reports the version committed again with other content as
ErrVersionTaken). [Config.WaitReplicas] makes every write wait, with Redis
WAIT, until that many replicas have it, and report a *[ReplicationError] when
they did not in time; it narrows the window (a replica can still fail
with its master) and adds a replica's round trip to every write. Writes to the partitions of a failed master fail until its
replica has taken over, a few seconds after the cluster's node timeout;
subscriptions, the relay and the expirer carry on by themselves.

A dead node. Each Redis call of the Manager is bounded by
[Config.CallTimeout] (1 s by default): a call on a session whose node is down
fails then with an *[UnavailableError] ([ErrUnavailable]), distinct from a
conflict, instead of being retried by the client until the caller's
deadline; a write that fails so may have been committed (a switch naming
its Turn may be sent again). The expirer applies each master's expiries on
their own, so that one node down delays none of the other masters'
expiries. Run the cluster
with cluster-require-full-coverage no: with Redis's default, every master
refuses all commands (CLUSTERDOWN) from the moment a master is marked
failed until its replica has taken over.

WaitReplicas after a failover. The promoted replica is a master without a
replica of its own until one is attached: every write to its partitions then
waits the whole WaitTimeout and returns a *ReplicationError with Replicas 0,
its state committed. Keep WaitTimeout short (it is added to such writes'
latency), attach a replica to the new master (redis-cli --cluster
add-node … --cluster-slave, or restart the failed node, which rejoins as a
replica), and watch for [ErrNotReplicated] with Replicas 0: it says that a
master runs without a replica. [Config.WaitBrieflyWhenAlone] spares such
writes the wait: after one found no replica within WaitTimeout, the writes
to that master wait a millisecond for the next second (and still report
Replicas 0), then one waits in full again to find out.

WaitReplicas counts where the write ran: the script and its WAIT go to the
master that serves the slot, on that node's own connection, following a
MOVED or an ASK together (tested across a slot moved behind the client's
back and a slot migrating). A subscriber gets one resync per failover, once
every shard it lost is subscribed again.

# Errors

Errors match these sentinels with errors.Is: [ErrSessionNotFound],
[ErrSessionExists], [ErrVersionConflict], [ErrInvalidState],
[ErrCorruptState], [ErrInvalidTransition], [ErrNotActive], [ErrTurnEnded],
[ErrParticipantNotFound], [ErrTimeRanOut] (the pure State transitions
only), [ErrReentrant], [ErrUnavailable], [ErrNotReplicated], [ErrClosed]
and [ErrFinishUndeliverable] (given to FinisherConfig.OnGiveUp). The
typed errors, with errors.As, carry what the caller needs next:
*[ConflictError] (the current state), *[StateError] (the field and the
limit), *[TransitionError] and *[TurnError] (the current state),
*[UnavailableError] (the partition and the call), *[ReplicationError] (the
committed state) and *[ControlSyntaxError] (the byte offset in a time
control's notation). Stored bytes that do not decode give ErrCorruptState
with the session ID, never a panic.
*/
package synckairos
