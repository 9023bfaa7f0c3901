package synckairos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/clock"
	"github.com/synckairos/synckairos/internal/keylock"
	"github.com/synckairos/synckairos/internal/keys"
	"github.com/synckairos/synckairos/internal/pubsub"
	"github.com/synckairos/synckairos/internal/store"
)

// Defaults of Config.
const (
	// DefaultKeyPrefix starts every key and channel name of the library.
	DefaultKeyPrefix = "synckairos:"
	// DefaultSessionTTL is how long a session outlives its last write.
	DefaultSessionTTL = time.Hour
	// DefaultPartitions is the number of partitions sessions are spread over.
	DefaultPartitions = 16
	// DefaultMaxAttempts is how many compare-and-set attempts MutateSession
	// makes before it returns the conflict.
	DefaultMaxAttempts = 5
	// DefaultSubscriptionBuffer is how many messages a subscription holds
	// for a callback that has not caught up.
	DefaultSubscriptionBuffer = 1024
	// DefaultExpirerInterval is how often RunExpirer reads a
	// Config.Test.Clock.
	DefaultExpirerInterval = 5 * time.Millisecond
	// DefaultWaitTimeout is how long a write waits for Config.WaitReplicas.
	DefaultWaitTimeout = 500 * time.Millisecond
	// DefaultCallTimeout bounds each Redis call of the Manager.
	DefaultCallTimeout = time.Second
	// DefaultMessageFormat is the format of the change messages a Manager
	// publishes (Config.MessageFormat).
	DefaultMessageFormat = 2
	// DefaultDecodeCacheBytes bounds the decoded states a Manager keeps to
	// read them again without decoding (Config.DecodeCacheBytes).
	DefaultDecodeCacheBytes = 4 << 20

	// MaxPartitions bounds Config.Partitions: Redis Cluster's slot count.
	MaxPartitions = 16384
)

// clockRecalibration is how often the Redis clock offset is measured again.
const clockRecalibration = time.Minute

// KeyLayout is how the keys of a Manager's partitions are named, and so on
// which Redis Cluster slots its partitions sit.
type KeyLayout int

// The key layouts.
const (
	// LayoutDefault follows the layout the prefix's sessions are stored in,
	// as its layout record <prefix>layout says; for a prefix without one,
	// LayoutTags if it holds keys of that layout (a deployment made before
	// layouts could be chosen: New finds them with EXISTS on each
	// partition's index keys and SCAN of every master, once per prefix), and
	// LayoutSpread otherwise. The choice is written to the record, which
	// every later Manager of the prefix follows: stored sessions never move.
	LayoutDefault KeyLayout = iota
	// LayoutTags tags partition NN's keys "{pNN}", for every prefix: the 16
	// partitions of the default put 7, 4 and 5 on the masters of a 3-master
	// cluster, and every prefix uses the same 16 slots. It is the layout of
	// every deployment made before layouts could be chosen.
	LayoutTags
	// LayoutSpread gives the partitions tags whose slots are evenly spaced
	// over the slot space, at an offset of the prefix's own: with masters
	// serving equal ranges of slots each serves an equal number of
	// partitions (±1: 5 or 6 of 16 on 3 masters), and different prefixes
	// use different slots. It is what LayoutDefault gives a new prefix.
	LayoutSpread
)

// Config configures a Manager. The zero value, and a nil *Config, give the
// defaults.
type Config struct {
	// KeyPrefix starts every Redis key and channel of the Manager, so that
	// several applications can share one Redis. It must not contain '{' or
	// '}', which would break the partition hash tags. Defaults to
	// DefaultKeyPrefix.
	KeyPrefix string

	// SessionTTL is how long a session is kept after its last write: every
	// write sets the key's expiry to it again. At least one second. Defaults
	// to DefaultSessionTTL.
	SessionTTL time.Duration

	// Partitions is the number of partitions sessions are spread over; on
	// Redis Cluster each partition is one hash slot. It is part of the stored
	// layout, recorded with Layout: changing it would move every session to
	// another key, so New refuses a Partitions other than the recorded one
	// (delete <prefix>layout only for a prefix that holds nothing). 1 to
	// MaxPartitions. Defaults to DefaultPartitions.
	Partitions int

	// Layout chooses the hash tags of the partitions' keys, part of the
	// stored layout like Partitions. The first Manager of a prefix records
	// the layout and Partitions in the key <prefix>layout; a Manager whose
	// Layout or Partitions contradicts the record is refused by New, as it
	// would not see the stored sessions. Setting Layout skips the search
	// LayoutDefault makes for a new prefix. Defaults to LayoutDefault.
	Layout KeyLayout

	// MaxAttempts is how many compare-and-set attempts MutateSession makes
	// before it returns the *ConflictError. Defaults to DefaultMaxAttempts.
	MaxAttempts int

	// SubscriptionBuffer is how many messages each subscription holds for
	// its callback. When a callback falls further behind, the backlog is
	// dropped and the callback gets one resync event instead. Defaults to
	// DefaultSubscriptionBuffer.
	SubscriptionBuffer int

	// ExpirerInterval is, with a Config.Test.Clock, how often RunExpirer
	// reads the clock, which a test moves by hand. (On the Redis clock it
	// sleeps until the next deadline it knows of.) Defaults to
	// DefaultExpirerInterval.
	ExpirerInterval time.Duration

	// Audit makes every write append its event, in the same atomic step, to
	// its partition's outbox stream, from which the relay of package audit
	// moves it to Postgres. Run a relay whenever Audit is on: the outboxes
	// grow until one does. Defaults to false.
	Audit bool

	// QueueFinishes makes every write that finishes a session (to expired,
	// completed or cancelled) append it, in the same atomic step, to its
	// partition's finish stream, from which RunFinisher runs the host's
	// handler once for it. Run RunFinisher whenever it is on: the streams
	// grow until one does. Off, finishing costs nothing more. Defaults to
	// false.
	QueueFinishes bool

	// WaitReplicas, above 0, makes every write wait until at least this
	// many replicas of its master have acknowledged it (Redis WAIT), for up
	// to WaitTimeout. Redis replicates asynchronously: without it, a write
	// acknowledged by a master that fails before replicating it is lost when
	// a replica takes over. With it, a write acknowledged by fewer replicas
	// in time returns a *ReplicationError (ErrNotReplicated) holding the
	// committed state: it stands, but is not known to be safe. It narrows
	// the window; it does not make Redis strongly consistent. It costs a
	// round of replication per write and a pooled connection per write in
	// flight (BENCHMARKS.md). Defaults to 0: no waiting.
	WaitReplicas int

	// WaitTimeout bounds the wait of WaitReplicas. Defaults to
	// DefaultWaitTimeout.
	WaitTimeout time.Duration

	// WaitBrieflyWhenAlone: after a write found no replica of its master
	// acknowledging within WaitTimeout, the writes to that master wait only
	// a millisecond for the next second, then one waits in full again to
	// find out. A master that a failover left without a replica then costs
	// writes no latency instead of WaitTimeout each; they still return
	// *ReplicationError with Replicas 0, which is the alert. Defaults to
	// false: every write waits up to WaitTimeout.
	WaitBrieflyWhenAlone bool

	// CallTimeout bounds each Redis call the Manager makes for a session: a
	// call that the node of the session's partition does not answer in time
	// (it is down, or failing over) fails with an *UnavailableError
	// (ErrUnavailable), rather than being retried by the client until the
	// caller's deadline. A write that fails so may have been committed: read
	// the session before doing it again (a switch naming its Turn may simply
	// be sent again). It must exceed WaitTimeout when WaitReplicas is set.
	// It bounds the Manager's calls only as far as the client lets a
	// context end them: rueidis waits for a connection it is dialling
	// whatever the context says, so keep the client's Dialer.Timeout and
	// ConnWriteTimeout at or below CallTimeout for the bound to hold while
	// a node hangs.
	// A call whose context has an earlier deadline keeps that one. Calls
	// under one context within a 64th of CallTimeout (or 1 ms, whichever is
	// more) share a bound derived from it, made by the first of them (no
	// allocation per call: a worker's or a connection's context making call
	// after call, or context.Background), so theirs is CallTimeout rounded
	// up by at most that much; they still end when their context does. A
	// call under another context in the meantime (a request's) gets a
	// bound of its own.
	// Defaults to DefaultCallTimeout, or WaitTimeout plus 500 ms if that is
	// more.
	CallTimeout time.Duration

	// MessageFormat is the format of the change messages the Manager
	// publishes (docs/WIRE.md). 2, the default, is read by every release.
	// In 3, an update's message is the state it stores, which starts
	// {"format":3,"session_id":, and the write script publishes that
	// string as it is rather than building a message around it: 12–14%
	// fewer of Redis's instructions per switch (with the audit on and
	// off), and less to decode for subscribers. Creates, restores and
	// deletes still publish format 2. Releases before the one that brought
	// it cannot read format 3: their subscriptions, watches and expirers
	// log each such message as malformed, skip it and hear no updates. Set
	// 3 only once every reader of the updates channel reads it: every
	// instance on this release or a later one, and any program of your
	// own that reads the channel (docs/WIRE.md).
	MessageFormat int

	// DecodeCacheBytes bounds the memory with which the Manager's reads of
	// a session (GetSession, and the reads of MutateSession, of the
	// transitions such as SwitchCycle when they are not given the current
	// state, and of the expirer) skip decoding a stored state they decoded
	// before. Every read still asks Redis: when Redis returns the very
	// bytes last read for the session, and they had been read once before,
	// the read returns a copy of the state decoded then (State.Clone),
	// which costs several times less than decoding them. A stored form
	// read once, as by a read, modify and write cycle, is kept without its
	// decoded state. Entries are counted at about their stored size, plus
	// their decoded state's; the bound is shared among 16 shards, and an
	// entry over a shard's share is not kept (so values under 16 keep
	// nothing). When entries would exceed it, some are dropped at random.
	// Defaults to DefaultDecodeCacheBytes; negative: none kept.
	DecodeCacheBytes int

	// Logger receives the Manager's logs. Defaults to slog.Default().
	Logger *slog.Logger

	// Telemetry turns on OpenTelemetry metrics and spans (see Telemetry
	// and docs/TELEMETRY.md). Defaults to nil: none, at no cost.
	Telemetry *Telemetry

	// Test holds settings for tests only.
	Test TestConfig
}

// TestConfig holds Config settings for tests.
type TestConfig struct {
	// Clock replaces the Redis server clock as the source of every time the
	// Manager writes. Defaults to nil: the Redis server clock.
	Clock Clock
}

// Clock tells the time. The synckairostest package has one that tests move
// by hand.
type Clock interface {
	Now() time.Time
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c *Config) WithDefaults() *Config {
	if c == nil {
		c = &Config{}
	}
	d := *c // every setting, the defaults filled in below
	d.KeyPrefix = cmp.Or(c.KeyPrefix, DefaultKeyPrefix)
	d.SessionTTL = cmp.Or(c.SessionTTL, DefaultSessionTTL)
	d.Partitions = cmp.Or(c.Partitions, DefaultPartitions)
	d.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	d.SubscriptionBuffer = cmp.Or(c.SubscriptionBuffer, DefaultSubscriptionBuffer)
	d.ExpirerInterval = cmp.Or(c.ExpirerInterval, DefaultExpirerInterval)
	d.WaitTimeout = cmp.Or(c.WaitTimeout, DefaultWaitTimeout)
	d.CallTimeout = cmp.Or(c.CallTimeout, max(DefaultCallTimeout, d.WaitTimeout+500*time.Millisecond))
	d.MessageFormat = cmp.Or(c.MessageFormat, DefaultMessageFormat)
	d.DecodeCacheBytes = cmp.Or(c.DecodeCacheBytes, DefaultDecodeCacheBytes)
	d.Logger = cmp.Or(c.Logger, slog.Default())
	return &d
}

func (c *Config) validate() error {
	switch {
	case strings.ContainsAny(c.KeyPrefix, "{}"):
		return fmt.Errorf("synckairos: Config.KeyPrefix %q contains '{' or '}', which would break the partition hash tags", c.KeyPrefix)
	case c.SessionTTL < time.Second:
		return fmt.Errorf("synckairos: Config.SessionTTL %v is below the minimum of 1s", c.SessionTTL)
	case c.Layout < LayoutDefault || c.Layout > LayoutSpread:
		return fmt.Errorf("synckairos: Config.Layout %d is not one of the layouts", c.Layout)
	case c.Partitions < 1 || c.Partitions > MaxPartitions:
		return fmt.Errorf("synckairos: Config.Partitions %d is outside 1 to %d", c.Partitions, MaxPartitions)
	case c.MaxAttempts < 1:
		return fmt.Errorf("synckairos: Config.MaxAttempts %d is below the minimum of 1", c.MaxAttempts)
	case c.ExpirerInterval < time.Millisecond:
		return fmt.Errorf("synckairos: Config.ExpirerInterval %v is below the minimum of 1ms", c.ExpirerInterval)
	case c.SubscriptionBuffer < 1:
		return fmt.Errorf("synckairos: Config.SubscriptionBuffer %d is below the minimum of 1", c.SubscriptionBuffer)
	case c.WaitReplicas < 0:
		return fmt.Errorf("synckairos: Config.WaitReplicas %d is negative", c.WaitReplicas)
	case c.WaitTimeout < time.Millisecond:
		return fmt.Errorf("synckairos: Config.WaitTimeout %v is below the minimum of 1ms", c.WaitTimeout)
	case c.MessageFormat != 2 && c.MessageFormat != 3:
		return fmt.Errorf("synckairos: Config.MessageFormat %d is not 2 or 3", c.MessageFormat)
	case c.CallTimeout < 10*time.Millisecond:
		return fmt.Errorf("synckairos: Config.CallTimeout %v is below the minimum of 10ms", c.CallTimeout)
	case c.WaitReplicas > 0 && c.CallTimeout <= c.WaitTimeout:
		return fmt.Errorf("synckairos: Config.CallTimeout %v must exceed Config.WaitTimeout %v, or every write that waits the whole WaitTimeout would fail", c.CallTimeout, c.WaitTimeout)
	}
	return nil
}

// Manager keeps sessions in Redis. It holds no session state of its own: any
// number of Managers, in any number of processes, may serve the same
// sessions. (It keeps states it decoded, Config.DecodeCacheBytes, but only
// to copy one when Redis returns the very bytes it was decoded from.) It is
// safe for concurrent use.
type Manager struct {
	client     rueidis.Client
	ownsClient bool
	cfg        *Config
	layout     keys.Layout
	store      *store.Store
	clock      *clock.Redis  // nil when Config.Test.Clock is set
	mutating   keylock.Map   // sessions in MutateSession in this process
	hub        *pubsub.Hub   // subscriptions, over dedicated connections
	decodes    *decodeCache  // states decoded, to read again without decoding
	watches    watchHub      // WatchSession's watches, on one subscription
	tel        *telemetry    // nil without Config.Telemetry
	closing    chan struct{} // closed by Close
	closed     atomic.Bool
}

// New returns a Manager that keeps its sessions through client. cfg may be
// nil for the defaults.
//
// The client belongs to the caller, who closes it after the Manager: Close
// does not. Create it with client-side caching disabled
// (rueidis.ClientOption.DisableCache): session state must be read from
// Redis every time, and the Manager does (Config.DecodeCacheBytes keeps
// decoded states only to skip decoding the same bytes again).
//
// New reads the key layout of the prefix from Redis (a GET of
// <prefix>layout) and, the first time a prefix is used with LayoutDefault,
// looks for sessions stored before layouts could be chosen (see
// Config.Layout): it fails if Redis does not answer, within 30 seconds in
// all. Dial does the same within its context.
func New(client rueidis.Client, cfg *Config) (*Manager, error) {
	if client == nil {
		return nil, errors.New("synckairos: New: nil rueidis client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), layoutResolveTimeout)
	defer cancel()
	return newManager(ctx, client, cfg)
}

func newManager(ctx context.Context, client rueidis.Client, cfg *Config) (*Manager, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, layoutResolveTimeout)
	defer cancel()
	layout, err := resolveLayout(ctx, client, cfg)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		client:  client,
		cfg:     cfg,
		layout:  layout,
		store:   store.New(client, layout, cfg.SessionTTL, cfg.Audit),
		hub:     pubsub.NewHub(client, cfg.Logger),
		decodes: newDecodeCache(cfg.DecodeCacheBytes),

		closing: make(chan struct{}),
	}
	m.store.WaitForReplicas(cfg.WaitReplicas, cfg.WaitTimeout)
	m.store.WaitBrieflyWhenAlone(cfg.WaitBrieflyWhenAlone)
	m.store.SetCallTimeout(cfg.CallTimeout)
	m.store.QueueFinishes(cfg.QueueFinishes)
	if m.tel, err = newTelemetry(m, cfg.Telemetry); err != nil {
		return nil, fmt.Errorf("synckairos: telemetry: %w", err)
	}
	if cfg.Test.Clock == nil {
		m.clock = clock.NewRedis(client, clockRecalibration, func(err error) {
			cfg.Logger.Warn("synckairos: clock recalibration failed; keeping the previous offset", "err", err)
		})
		m.clock.SetTimeout(cfg.CallTimeout)
	}
	return m, nil
}

// Dial connects to the Redis at redisURL (redis://host:port/db, see
// rueidis.ParseURL) and returns a Manager that owns its client: Close closes
// it. It is meant for examples and quick starts; applications that already
// hold a rueidis client pass it to New.
func Dial(ctx context.Context, redisURL string, cfg *Config) (*Manager, error) {
	opt, err := rueidis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("synckairos: Dial: %w", err)
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("synckairos: Dial %s: %w", opt.InitAddress, err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("synckairos: Dial %s: %w", opt.InitAddress, err)
	}
	m, err := newManager(ctx, client, cfg)
	if err != nil {
		client.Close()
		return nil, err
	}
	m.ownsClient = true
	return m, nil
}

// Close ends the Manager's subscriptions, waiting for their goroutines, and
// releases the Manager. Later calls of its methods return ErrClosed. It
// closes the rueidis client only if Dial created it. Close is idempotent.
func (m *Manager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	close(m.closing)
	m.decodes.reset()
	m.tel.close()
	m.watches.close()
	m.hub.Close()
	if m.ownsClient {
		m.client.Close()
	}
	return nil
}

// OutboxStreams returns the names of the partitions' audit outbox streams,
// in partition order: for the relay of package audit, and for hosts that
// watch the outboxes.
func (m *Manager) OutboxStreams() []string {
	s := make([]string, m.layout.Partitions())
	for p := range s {
		s[p] = m.layout.Outbox(p)
	}
	return s
}

// SessionKey returns the Redis key that holds a session, under the key
// layout the Manager follows: for operators and tests that look at Redis.
// Read it, never write it: the Manager's writes keep the session's indexes,
// outbox and announcements in step with it.
func (m *Manager) SessionKey(sessionID string) string { return m.layout.Session(sessionID) }

// Partition returns the partition of a session (as in
// UnavailableError.Partition): its audit outbox is OutboxStreams()[Partition].
func (m *Manager) Partition(sessionID string) int { return m.layout.Partition(sessionID) }

// KeyPrefix returns the prefix of the Manager's keys and channels.
func (m *Manager) KeyPrefix() string { return m.cfg.KeyPrefix }

// Config returns the Manager's configuration, defaults filled in.
func (m *Manager) Config() Config { return *m.cfg }

// Client returns the rueidis client the Manager works through.
func (m *Manager) Client() rueidis.Client { return m.client }

// Now returns the Manager's current time: the Redis server time (or the test
// clock), in whole milliseconds. Use it with State.RemainingAt and friends,
// so that every instance computes the same remaining time, and with the
// State's transitions inside a MutateSession callback. Only the Manager's
// first call and a recalibration once a minute talk to Redis.
func (m *Manager) Now(ctx context.Context) (time.Time, error) {
	if err := m.check(); err != nil {
		return time.Time{}, err
	}
	return m.now(ctx)
}

// now returns the time of a change, in whole milliseconds: time is handled
// in the unit it is stored in from the moment it is read, so that what a
// transition charges is exactly what the stored times say.
func (m *Manager) now(ctx context.Context) (time.Time, error) {
	if m.clock == nil {
		return msTime(m.cfg.Test.Clock.Now()), nil
	}
	t, err := m.clock.Now(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("synckairos: %w", err)
	}
	return msTime(t), nil
}

func (m *Manager) check() error {
	if m.closed.Load() {
		return ErrClosed
	}
	return nil
}
