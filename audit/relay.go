package audit

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"github.com/riverqueue/river"

	"github.com/synckairos/synckairos"
)

// ConsumerGroup is the Redis consumer group of the relays on every outbox
// stream.
const ConsumerGroup = "synckairos-audit"

// Group is ConsumerGroup.
//
// Deprecated: use ConsumerGroup; a River reader took Group for a job group.
const Group = ConsumerGroup

// Defaults of RelayConfig.
const (
	DefaultBatchSize    = 1000
	DefaultPollInterval = 50 * time.Millisecond
	DefaultClaimAfter   = 30 * time.Second
	DefaultRescueAfter  = 15 * time.Second
)

// RelayConfig configures a Relay. A nil *RelayConfig gives the defaults.
type RelayConfig struct {
	// BatchSize is the most events read from one outbox at a time, and the
	// most put in one job. Defaults to DefaultBatchSize.
	BatchSize int

	// PollInterval is how long the relay waits after finding every outbox
	// empty. Defaults to DefaultPollInterval.
	PollInterval time.Duration

	// ClaimAfter is how long events read by a relay may stay unacknowledged
	// before another relay takes them over, as those of a relay that died.
	// Keep it well above the time a batch takes. Defaults to
	// DefaultClaimAfter.
	ClaimAfter time.Duration

	// RescueAfter is how long an audit job may stay running before the
	// relay makes it available again, as the job of a worker that died:
	// River's own rescuer waits an hour by default (RescueStuckJobsAfter)
	// and runs every 30 s, so a crashed worker's events would wait that
	// long. An audit job takes milliseconds; one still running after this
	// long is rescued even if its worker lives, and is then written twice,
	// once. Keep it above the River client's JobTimeout (10 s in the setup
	// the package doc shows). The relay checks every RescueAfter/3. A
	// negative value leaves stuck jobs to River. Defaults to
	// DefaultRescueAfter.
	RescueAfter time.Duration

	// Consumer names the relay in the consumer groups; a relay restarted
	// under the same name first finishes what it had read. Defaults to
	// host-pid-random.
	Consumer string

	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// Test holds settings for tests only.
	Test RelayTestConfig
}

// RelayTestConfig holds fault injection for tests of the relay.
type RelayTestConfig struct {
	// AfterCommit runs after a batch's jobs are committed and before its
	// events are acknowledged; an error from it abandons the batch there, as
	// a crash would.
	AfterCommit func() error
}

// Relay moves events from the outboxes of a Manager (Config.Audit) into River
// jobs, which the Worker writes to Postgres. Any number of relays, in any
// processes, may run at once: they share the outboxes through a consumer
// group, and take over what a dead relay had read.
//
// An event is acknowledged and deleted from its outbox only after the
// transaction inserting its job has committed. A crash in between makes the
// event relayed twice, which the Worker writes once: every committed version
// becomes exactly one row.
type Relay struct {
	client   rueidis.Client
	outboxes []string // by partition
	now      func(context.Context) (time.Time, error)
	river    *river.Client[pgx.Tx]
	pool     *pgxpool.Pool
	cfg      RelayConfig
	tel      *relayTelemetry
}

// NewRelay returns a relay of m's outboxes that inserts jobs with
// riverClient through pool, the database of the host's River client.
func NewRelay(m *synckairos.Manager, riverClient *river.Client[pgx.Tx], pool *pgxpool.Pool, cfg *RelayConfig) (*Relay, error) {
	mc := m.Config()
	if !mc.Audit {
		return nil, errors.New("audit: NewRelay: the Manager has Config.Audit off, so its writes fill no outbox")
	}
	var c RelayConfig
	if cfg != nil {
		c = *cfg
	}
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.ClaimAfter = cmp.Or(c.ClaimAfter, DefaultClaimAfter)
	c.RescueAfter = cmp.Or(c.RescueAfter, DefaultRescueAfter)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.Consumer == "" {
		host, _ := os.Hostname()
		var r [4]byte
		_, _ = rand.Read(r[:])
		c.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
	}
	if c.BatchSize < 1 || c.PollInterval < 0 || c.ClaimAfter < time.Millisecond {
		return nil, fmt.Errorf("audit: NewRelay: RelayConfig.BatchSize %d, PollInterval %v, ClaimAfter %v: want a positive batch and durations", c.BatchSize, c.PollInterval, c.ClaimAfter)
	}
	tel, err := newRelayTelemetry(mc.Telemetry)
	if err != nil {
		return nil, fmt.Errorf("audit: NewRelay: telemetry: %w", err)
	}
	return &Relay{
		client:   m.Client(),
		outboxes: m.OutboxStreams(),
		now:      m.Now,
		river:    riverClient,
		pool:     pool,
		cfg:      c,
		tel:      tel,
	}, nil
}

// Run relays until ctx is done, and then returns ctx's error. Failures of
// Redis or Postgres are logged and retried; nothing is acknowledged that is
// not committed.
func (r *Relay) Run(ctx context.Context) error {
	defer r.tel.observe(r)()
	for {
		if err := r.createGroups(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			r.cfg.Logger.Warn("synckairos: audit relay cannot create its consumer groups; retrying", "err", err)
		}
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
	own := true // first, what this consumer read before and did not acknowledge
	lastClaim, lastRescue := time.Time{}, time.Time{}
	wait := r.cfg.PollInterval
	for ctx.Err() == nil {
		if r.cfg.RescueAfter > 0 && time.Since(lastRescue) >= r.cfg.RescueAfter/3 {
			if n, err := r.rescue(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("synckairos: audit relay cannot rescue stuck jobs", "err", err)
			} else if n > 0 {
				r.cfg.Logger.Warn("synckairos: audit relay rescued jobs stuck running, as of dead workers", "jobs", n)
			}
			lastRescue = time.Now()
		}
		if time.Since(lastClaim) >= r.cfg.ClaimAfter/2 {
			claimed, err := r.claim(ctx)
			if err != nil {
				r.cfg.Logger.Warn("synckairos: audit relay cannot claim idle events", "err", err)
			}
			own = own || claimed
			lastClaim = time.Now()
		}
		batches, err := r.read(ctx, own)
		if err == nil && len(batches) == 0 {
			if !own && !sleep(ctx, r.cfg.PollInterval) {
				break
			}
			own = false
			continue
		}
		if err == nil {
			n := 0
			for _, b := range batches {
				n += len(b.events)
			}
			bctx, span := r.tel.batch(ctx, n)
			err = r.commit(bctx, batches)
			if err == nil {
				err = r.ack(bctx, batches)
			}
			r.tel.batchDone(bctx, span, n, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			r.cfg.Logger.Warn("synckairos: audit relay batch failed; retrying", "err", err, "retry_in", wait)
			own = true
			if !sleep(ctx, wait) {
				break
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		wait = r.cfg.PollInterval
	}
	return ctx.Err()
}

// rescue makes the audit jobs running for longer than RescueAfter available
// again, and returns how many it did. It writes River's job table, in the
// pool's search_path, directly: River offers no call that retries a running
// job.
func (r *Relay) rescue(ctx context.Context) (int64, error) {
	tag, err := r.pool.Exec(ctx, `
		UPDATE river_job SET state = 'available', scheduled_at = now(),
			max_attempts = greatest(max_attempts, attempt + 1)
		WHERE kind = $1 AND state = 'running' AND attempted_at < now() - make_interval(secs => $2)`,
		JobKind, r.cfg.RescueAfter.Seconds())
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// batch is what was read from one outbox.
type batch struct {
	stream string
	ids    []string
	events []Event
}

func (r *Relay) streams() []string { return r.outboxes }

func (r *Relay) createGroups(ctx context.Context) error {
	var cmds rueidis.Commands
	for _, s := range r.streams() {
		cmds = append(cmds, r.client.B().XgroupCreate().Key(s).Group(ConsumerGroup).Id("0").Mkstream().Build())
	}
	for _, res := range r.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil && !rueidis.IsRedisBusyGroup(err) {
			return err
		}
	}
	return nil
}

// claim takes over the events that other consumers read and left
// unacknowledged for ClaimAfter; true if there were any.
func (r *Relay) claim(ctx context.Context) (bool, error) {
	var cmds rueidis.Commands
	idle := strconv.FormatInt(r.cfg.ClaimAfter.Milliseconds(), 10)
	for _, s := range r.streams() {
		cmds = append(cmds, r.client.B().Xautoclaim().Key(s).Group(ConsumerGroup).Consumer(r.cfg.Consumer).
			MinIdleTime(idle).Start("0-0").Count(int64(r.cfg.BatchSize)).Justid().Build())
	}
	claimed := false
	for _, res := range r.client.DoMulti(ctx, cmds...) {
		vals, err := res.ToArray()
		if err != nil {
			return claimed, err
		}
		if len(vals) > 1 {
			if ids, _ := vals[1].ToArray(); len(ids) > 0 {
				claimed = true
			}
		}
	}
	return claimed, nil
}

// read reads up to BatchSize events from every outbox: this consumer's own
// unacknowledged ones when own is set, else new ones.
func (r *Relay) read(ctx context.Context, own bool) ([]batch, error) {
	id := ">"
	if own {
		id = "0"
	}
	streams := r.streams()
	cmds := make(rueidis.Commands, len(streams))
	for i, s := range streams {
		cmds[i] = r.client.B().Xreadgroup().Group(Group, r.cfg.Consumer).Count(int64(r.cfg.BatchSize)).
			Streams().Key(s).Id(id).Build()
	}
	var out []batch
	for i, res := range r.client.DoMulti(ctx, cmds...) {
		entries, err := res.AsXRead()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b := batch{stream: streams[i]}
		for _, e := range entries[streams[i]] {
			b.ids = append(b.ids, e.ID)
			ev, err := parseEntry(e)
			if err != nil {
				// Not written by synckairos: nothing can ever write it.
				r.cfg.Logger.Error("synckairos: dropping a malformed outbox entry", "stream", b.stream, "id", e.ID, "err", err)
				continue
			}
			b.events = append(b.events, ev)
		}
		if len(b.ids) > 0 {
			out = append(out, b)
		}
	}
	return out, nil
}

func parseEntry(e rueidis.XRangeEntry) (Event, error) {
	var ev Event
	f := e.FieldValues
	if err := json.Unmarshal([]byte(f["sid"]), &ev.SessionID); err != nil || ev.SessionID == "" {
		return ev, fmt.Errorf("session ID %q", f["sid"])
	}
	v, err := strconv.ParseInt(f["v"], 10, 64)
	if err != nil || v < 1 {
		return ev, fmt.Errorf("version %q", f["v"])
	}
	ts, err := strconv.ParseInt(f["ts"], 10, 64)
	if err != nil {
		return ev, fmt.Errorf("timestamp %q", f["ts"])
	}
	if l, ok := f["life"]; ok {
		if ev.Life, err = strconv.ParseInt(l, 10, 64); err != nil || ev.Life < 0 {
			return ev, fmt.Errorf("life %q", l)
		}
	}
	ev.Version, ev.Type, ev.Timestamp = v, f["type"], time.UnixMilli(ts).UTC()
	if ev.Type == "" {
		return ev, errors.New("no event type")
	}
	if s := f["state"]; s != "" {
		if !json.Valid([]byte(s)) {
			return ev, errors.New("state is not JSON")
		}
		ev.State = s
	}
	return ev, nil
}

// commit inserts the events of every outbox read, in jobs of up to
// BatchSize events, in one transaction: few large jobs cost River and the
// worker far less than many small ones.
func (r *Relay) commit(ctx context.Context, batches []batch) error {
	var params []river.InsertManyParams
	var events []Event
	for _, b := range batches {
		for _, e := range b.events {
			events = append(events, e)
			if len(events) == r.cfg.BatchSize {
				params = append(params, river.InsertManyParams{Args: BatchArgs{Events: events}})
				events = nil
			}
		}
	}
	if len(events) > 0 {
		params = append(params, river.InsertManyParams{Args: BatchArgs{Events: events}})
	}
	if len(params) > 0 {
		if err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			_, err := r.river.InsertManyFastTx(ctx, tx, params)
			return err
		}); err != nil {
			return fmt.Errorf("insert audit jobs: %w", err)
		}
	}
	if r.cfg.Test.AfterCommit != nil {
		return r.cfg.Test.AfterCommit()
	}
	return nil
}

// ack acknowledges the committed events and deletes them from the outboxes.
func (r *Relay) ack(ctx context.Context, batches []batch) error {
	var cmds rueidis.Commands
	for _, b := range batches {
		cmds = append(cmds,
			r.client.B().Xack().Key(b.stream).Group(ConsumerGroup).Id(b.ids...).Build(),
			r.client.B().Xdel().Key(b.stream).Id(b.ids...).Build())
	}
	for _, res := range r.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("acknowledge audit events: %w", err)
		}
	}
	return nil
}

// isNoGroup reports Redis's NOGROUP error: the consumer group (or its
// stream) does not exist yet. (rueidis has a predicate for BUSYGROUP, none
// for NOGROUP.)
func isNoGroup(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), "NOGROUP")
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
