package synckairos

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Finish is a session that finished, as a FinishHandler gets it.
type Finish struct {
	SessionID string
	Life      int64
	// Version is the version of the write that finished the session.
	Version int64
	// State is the state the session finished in: State.Status says how,
	// State.LastTransition has the facts (who ran out, the time used).
	State *State
	// Attempt counts the calls of the handler for this finish, from 1: more
	// after an error, or after a takeover from an instance that died.
	Attempt int
	// Delivery counts the finishers this finish was given to, from 1: more
	// after a takeover.
	Delivery int
}

// Key returns the finish's idempotency key, "life/version/sessionID": the
// same on every call and every instance for one finish, and different for
// every other (a reused session ID has another life).
func (f Finish) Key() string {
	return strconv.FormatInt(f.Life, 10) + "/" + strconv.FormatInt(f.Version, 10) + "/" + f.SessionID
}

// FinishHandler does the host's end-of-game work for one finished session:
// results, ratings, payouts, notifications. It returns nil once the work
// is done; an error has it called again, after a backoff.
type FinishHandler func(ctx context.Context, f Finish) error

// The defaults of FinisherConfig.
const (
	DefaultClaimAfter        = 10 * time.Second
	DefaultFinishAttempts    = 5
	DefaultFinishDeliveries  = 3
	DefaultFinishBackoff     = 100 * time.Millisecond
	DefaultFinishConcurrency = 16
)

// finisherGroup is the consumer group of the finish streams.
const finisherGroup = "synckairos-finishers"

// finisherBlock is how long one read of a finish stream waits for entries.
const finisherBlock = 2 * time.Second

// FinisherConfig configures RunFinisher. The zero value, and a nil
// *FinisherConfig, give the defaults.
type FinisherConfig struct {
	// Consumer names this finisher in the finish streams' consumer group;
	// defaults to the host name, process ID and a random suffix. Two
	// finishers running at once must not share a name.
	Consumer string
	// ClaimAfter is how long a finish may stay with a finisher that neither
	// completes it nor says it still has it before another takes it over: a
	// finisher that dies is replaced within 1.5 × ClaimAfter. A live
	// finisher keeps its finishes, waiting or being handled, however long
	// (it says so every ClaimAfter/3). Defaults to DefaultClaimAfter.
	ClaimAfter time.Duration
	// MaxAttempts bounds the calls of the handler for one finish on one
	// finisher; after the last error, OnGiveUp gets it. Defaults to
	// DefaultFinishAttempts.
	MaxAttempts int
	// MaxDeliveries bounds the finishers one finish is given to; beyond,
	// OnGiveUp gets it with ErrFinishUndeliverable. Defaults to
	// DefaultFinishDeliveries.
	MaxDeliveries int
	// Backoff is the wait before the second call after an error, doubled
	// for each call after it, up to ClaimAfter/3. Defaults to
	// DefaultFinishBackoff.
	Backoff time.Duration
	// Concurrency bounds the handler calls at once. Defaults to
	// DefaultFinishConcurrency.
	Concurrency int
	// OnGiveUp is told of a finish the finisher gives up on (the handler's
	// last error, ErrFinishUndeliverable, or a malformed entry); the finish
	// is then dropped. Defaults to logging it at error level.
	OnGiveUp func(f Finish, err error)
}

// RunFinisher runs handler once for each session that finishes (expired,
// completed or cancelled), until ctx is done; it then returns ctx's error.
// It needs Config.QueueFinishes on every Manager that writes: the write that
// finishes a session appends it to its partition's finish stream, in the
// same atomic step, and RunFinisher reads the streams through a consumer
// group, so that any number of instances may run it and each finish goes to
// one of them, within milliseconds.
//
// Once. A finish is done when its handler returns nil: it is then removed.
// A handler error is retried, MaxAttempts calls in all, with a backoff,
// then given to OnGiveUp. If the finisher holding a finish dies (or its
// context ends) before the handler returned, another running RunFinisher
// takes it over after ClaimAfter. The one duplicate this leaves: a finisher
// that dies after its handler returned nil and before it removed the
// finish (a Redis round trip) has it run again elsewhere. Finish.Key is the
// same for both calls; make the handler's effect idempotent on it (an
// INSERT … ON CONFLICT DO NOTHING, a SET NX) where a duplicate matters.
func (m *Manager) RunFinisher(ctx context.Context, handler FinishHandler, cfg *FinisherConfig) error {
	if err := m.check(); err != nil {
		return err
	}
	if handler == nil {
		return errors.New("synckairos: RunFinisher: nil handler")
	}
	f := newFinisher(m, handler, cfg)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // Close stops it
		select {
		case <-m.closing:
			stop()
		case <-ctx.Done():
		}
	}()
	work := make(chan finishEntry)
	var wg sync.WaitGroup
	for range f.cfg.Concurrency {
		wg.Go(func() {
			for e := range work {
				f.handle(ctx, e)
			}
		})
	}
	var readers sync.WaitGroup
	for p := range m.layout.Partitions() {
		readers.Go(func() { f.read(ctx, p, work) })
	}
	readers.Go(func() { f.claim(ctx, work) })
	readers.Go(func() { f.keep(ctx) })
	readers.Wait()
	close(work)
	wg.Wait()
	if m.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

type finisher struct {
	m       *Manager
	handler FinishHandler
	cfg     FinisherConfig
	// inHand holds the finishes given to this finisher and not yet done:
	// waiting for a worker or being handled. The keeper claims them again
	// every ClaimAfter/3, so that no other finisher takes one over while
	// this one lives.
	mu     sync.Mutex
	inHand map[handKey]finishEntry
}

// handKey names a finish stream entry: entry IDs are per stream.
type handKey struct {
	partition int
	id        string
}

// hold records e as in hand, and reports false when it was already (a
// claim of a finish this finisher has).
func (f *finisher) hold(e finishEntry) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := handKey{e.partition, e.id}
	if _, ok := f.inHand[k]; ok {
		return false
	}
	f.inHand[k] = e
	return true
}

func (f *finisher) drop(e finishEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.inHand, handKey{e.partition, e.id})
}

// give hands e to a worker, unless it is in hand already; it reports false
// when ctx ended first.
func (f *finisher) give(ctx context.Context, work chan<- finishEntry, e finishEntry) bool {
	if !f.hold(e) {
		return true
	}
	if e.delivery > 1 { // claimed from another consumer
		f.m.tel.finished(outcomeFinishTakeover)
	}
	select {
	case work <- e:
		return true
	case <-ctx.Done():
		f.drop(e) // another finisher takes it over
		return false
	}
}

// finishEntry is one entry of a finish stream, given to this finisher for
// the delivery-th time.
type finishEntry struct {
	partition int
	id        string
	fields    map[string]string
	delivery  int
}

func newFinisher(m *Manager, handler FinishHandler, c *FinisherConfig) *finisher {
	var cfg FinisherConfig
	if c != nil {
		cfg = *c
	}
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		var r [4]byte
		_, _ = rand.Read(r[:])
		cfg.Consumer = fmt.Sprintf("%s-%d-%s", cmp.Or(host, "host"), os.Getpid(), hex.EncodeToString(r[:]))
	}
	cfg.ClaimAfter = cmp.Or(cfg.ClaimAfter, DefaultClaimAfter)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultFinishAttempts)
	cfg.MaxDeliveries = cmp.Or(cfg.MaxDeliveries, DefaultFinishDeliveries)
	cfg.Backoff = cmp.Or(cfg.Backoff, DefaultFinishBackoff)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultFinishConcurrency)
	if cfg.OnGiveUp == nil {
		logger := m.cfg.Logger
		cfg.OnGiveUp = func(f Finish, err error) {
			logger.Error("synckairos: finish handler gave up", "session_id", f.SessionID, "key", f.Key(), "attempts", f.Attempt, "err", err)
		}
	}
	return &finisher{m: m, handler: handler, cfg: cfg, inHand: map[handKey]finishEntry{}}
}

// read reads a partition's finish stream and hands its new entries out,
// until ctx is done.
func (f *finisher) read(ctx context.Context, p int, work chan<- finishEntry) {
	client, stream := f.m.client, f.m.layout.Finished(p)
	backoff := newBackoff()
	grouped := false
	for ctx.Err() == nil && !f.m.closed.Load() {
		if !grouped {
			err := client.Do(ctx, client.B().XgroupCreate().Key(stream).Group(finisherGroup).Id("0").Mkstream().Build()).Error()
			if err != nil && !rueidis.IsRedisBusyGroup(err) {
				f.warn(ctx, "synckairos: finisher cannot create its group", p, err)
				backoff.wait(ctx)
				continue
			}
			grouped = true
		}
		// Bounded by a timer, not a deadline: rueidis waits out a blocking
		// command with a deadline whatever becomes of its context, and a
		// finisher stops at once.
		bounded, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(finisherBlock+f.m.cfg.CallTimeout, cancel)
		res, err := client.Do(bounded, client.B().Xreadgroup().Group(finisherGroup, f.cfg.Consumer).Count(32).
			Block(finisherBlock.Milliseconds()).Streams().Key(stream).Id(">").Build()).AsXRead()
		timer.Stop()
		cancel()
		switch {
		case rueidis.IsRedisNil(err):
			backoff.reset()
			continue
		case err != nil:
			if re, ok := rueidis.IsRedisErr(err); ok && re.Error() != "" && isNoGroup(re) {
				grouped = false // the stream was deleted: group again
			}
			f.warn(ctx, "synckairos: finisher read failed", p, err)
			backoff.wait(ctx)
			continue
		}
		backoff.reset()
		for _, e := range res[stream] {
			if !f.give(ctx, work, finishEntry{partition: p, id: e.ID, fields: e.FieldValues, delivery: 1}) {
				return
			}
		}
	}
}

// claim takes over, every ClaimAfter/2, the finishes other finishers have
// held longer than ClaimAfter without a word.
func (f *finisher) claim(ctx context.Context, work chan<- finishEntry) {
	every(ctx, f.cfg.ClaimAfter/2, func(ctx context.Context) {
		for p := range f.m.layout.Partitions() {
			for _, e := range f.claimed(ctx, p) {
				if !f.give(ctx, work, e) {
					return
				}
			}
		}
	})
}

// claimed claims a partition's finishes idle longer than ClaimAfter, with
// how many times each was delivered.
func (f *finisher) claimed(ctx context.Context, p int) []finishEntry {
	client, stream := f.m.client, f.m.layout.Finished(p)
	bounded, cancel := context.WithTimeout(ctx, f.m.cfg.CallTimeout)
	defer cancel()
	vals, err := client.Do(bounded, client.B().Xautoclaim().Key(stream).Group(finisherGroup).Consumer(f.cfg.Consumer).
		MinIdleTime(strconv.FormatInt(f.cfg.ClaimAfter.Milliseconds(), 10)).Start("0-0").Count(32).Build()).ToArray()
	if err != nil {
		if re, ok := rueidis.IsRedisErr(err); !ok || !isNoGroup(re) { // no group yet: nothing to claim
			f.warn(ctx, "synckairos: finisher claim failed", p, err)
		}
		return nil
	}
	if len(vals) < 2 {
		return nil
	}
	entries, err := vals[1].AsXRange()
	if err != nil || len(entries) == 0 {
		return nil
	}
	// How often each was delivered (the claim counted one more).
	deliveries := map[string]int{}
	pending, err := client.Do(bounded, client.B().Xpending().Key(stream).Group(finisherGroup).Start(entries[0].ID).
		End(entries[len(entries)-1].ID).Count(int64(len(entries))).Consumer(f.cfg.Consumer).Build()).ToArray()
	if err == nil {
		for _, pe := range pending {
			if fs, err := pe.ToArray(); err == nil && len(fs) == 4 {
				id, _ := fs[0].ToString()
				n, _ := fs[3].AsInt64()
				deliveries[id] = int(n)
			}
		}
	}
	out := make([]finishEntry, 0, len(entries))
	for _, e := range entries {
		if e.FieldValues == nil {
			continue // deleted meanwhile
		}
		out = append(out, finishEntry{partition: p, id: e.ID, fields: e.FieldValues, delivery: max(deliveries[e.ID], 2)})
	}
	return out
}

// handle runs the handler for one finish, with retries, and removes it once
// done or given up.
func (f *finisher) handle(ctx context.Context, e finishEntry) {
	defer f.drop(e)
	fin, err := decodeFinish(e)
	if err != nil {
		f.m.tel.finished(outcomeFinishGaveUp)
		f.cfg.OnGiveUp(fin, err)
		f.done(ctx, e)
		return
	}
	if e.delivery > f.cfg.MaxDeliveries {
		f.m.tel.finished(outcomeFinishGaveUp)
		f.cfg.OnGiveUp(fin, fmt.Errorf("%w: %d deliveries", ErrFinishUndeliverable, e.delivery))
		f.done(ctx, e)
		return
	}
	wait := f.cfg.Backoff
	for attempt := 1; ; attempt++ {
		fin.Attempt = attempt
		err = f.call(ctx, fin)
		if err == nil {
			f.m.tel.finished(outcomeFinishDone)
			f.done(ctx, e)
			return
		}
		if ctx.Err() != nil {
			return // stopped: another finisher takes it over
		}
		if attempt >= f.cfg.MaxAttempts {
			f.m.tel.finished(outcomeFinishGaveUp)
			f.cfg.OnGiveUp(fin, err)
			f.done(ctx, e)
			return
		}
		f.m.tel.finished(outcomeFinishFailed)
		if pause(ctx, wait) != nil {
			return
		}
		wait = min(2*wait, f.cfg.ClaimAfter/3)
	}
}

// call calls the handler, turning a panic into an error.
func (f *finisher) call(ctx context.Context, fin Finish) (err error) {
	ctx, c := f.m.tel.start(ctx, "Finish", fin.SessionID, false)
	defer c.end(&err)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synckairos: finish handler panicked: %v", r)
		}
	}()
	return f.handler(ctx, fin)
}

// keep claims every finish in hand again every ClaimAfter/3, which resets
// its idle time, so that no other finisher takes over a finish this one
// has, waiting for a worker or being handled.
func (f *finisher) keep(ctx context.Context) {
	client := f.m.client
	every(ctx, f.cfg.ClaimAfter/3, func(ctx context.Context) {
		f.mu.Lock()
		byPartition := map[int][]string{}
		for k := range f.inHand {
			byPartition[k.partition] = append(byPartition[k.partition], k.id)
		}
		f.mu.Unlock()
		for p, ids := range byPartition {
			bounded, cancel := context.WithTimeout(ctx, f.m.cfg.CallTimeout)
			err := client.Do(bounded, client.B().Xclaim().Key(f.m.layout.Finished(p)).Group(finisherGroup).Consumer(f.cfg.Consumer).
				MinIdleTime("0").Id(ids...).Justid().Build()).Error()
			cancel()
			if err != nil {
				f.warn(ctx, "synckairos: finisher could not keep its finishes", p, err)
			}
		}
	})
}

// done removes a finish from its stream.
func (f *finisher) done(ctx context.Context, e finishEntry) {
	client, stream := f.m.client, f.m.layout.Finished(e.partition)
	// Removed even when ctx has just ended: the work is done.
	bounded, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.m.cfg.CallTimeout)
	defer cancel()
	for _, r := range client.DoMulti(bounded,
		client.B().Xack().Key(stream).Group(finisherGroup).Id(e.id).Build(),
		client.B().Xdel().Key(stream).Id(e.id).Build()) {
		if err := r.Error(); err != nil {
			f.warn(ctx, "synckairos: finisher could not remove a finish", e.partition, err)
			return
		}
	}
}

func (f *finisher) warn(ctx context.Context, msg string, p int, err error) {
	if ctx.Err() == nil {
		f.m.cfg.Logger.Warn(msg, "partition", p, "err", err)
	}
}

// decodeFinish reads a finish stream entry: sid (the session ID as JSON),
// life, v and state.
func decodeFinish(e finishEntry) (Finish, error) {
	var f Finish
	f.Delivery = e.delivery
	sid := e.fields["sid"]
	d := decoder{data: []byte(sid)}
	id, err := d.string()
	if err != nil {
		return f, fmt.Errorf("synckairos: finish entry %s: session ID %q: %w", e.id, sid, err)
	}
	f.SessionID = id
	if f.Life, err = strconv.ParseInt(e.fields["life"], 10, 64); err != nil {
		return f, fmt.Errorf("synckairos: finish entry %s of %q: life: %w", e.id, id, err)
	}
	if f.Version, err = strconv.ParseInt(e.fields["v"], 10, 64); err != nil {
		return f, fmt.Errorf("synckairos: finish entry %s of %q: version: %w", e.id, id, err)
	}
	s := new(State)
	if err := s.UnmarshalJSON([]byte(e.fields["state"])); err != nil {
		return f, fmt.Errorf("synckairos: finish entry %s of %q: state: %w", e.id, id, err)
	}
	f.State = s
	return f, nil
}

func isNoGroup(re *rueidis.RedisError) bool {
	return len(re.Error()) >= 7 && re.Error()[:7] == "NOGROUP"
}

// retryWait is a growing wait between failed calls: 50 ms, doubling, up to
// 2 s.
type retryWait struct{ d time.Duration }

func newBackoff() *retryWait { return &retryWait{d: 50 * time.Millisecond} }

func (b *retryWait) reset() { b.d = 50 * time.Millisecond }

func (b *retryWait) wait(ctx context.Context) {
	_ = pause(ctx, b.d)
	b.d = min(2*b.d, 2*time.Second)
}

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
