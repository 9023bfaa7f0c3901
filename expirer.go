package synckairos

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The expirer's rhythm.
const (
	// expirerHeartbeat is how often a running expirer says so, in the
	// sorted set <prefix>expirers, and learns who else runs.
	expirerHeartbeat = time.Second
	// expirerMemberTTL is how long an expirer that stopped saying so counts
	// as running; one that could not say so for that long acts alone.
	expirerMemberTTL = 3 * time.Second
	// expirerBackupStep is how late the k-th backup of a partition applies
	// an expiry its owner has not: k × expirerBackupStep after it is due.
	expirerBackupStep = 250 * time.Millisecond
	// Every expirerSafetyPoll an expirer looks in expirerSafetyParts of the
	// partitions it owns, in turn, for deadlines overdue by expirerOverdue
	// that it never heard of.
	expirerSafetyPoll  = time.Second
	expirerSafetyParts = 4
	expirerOverdue     = time.Second
	// expirerMaxSleep bounds a sleep on the Redis clock.
	expirerMaxSleep = time.Second
	// expirerRegroup is how often the expirer learns again which node serves
	// which partition.
	expirerRegroup = 5 * time.Second
	// expirerLaneWorkers is how many expiries of one node are applied at
	// once; expirerRetry how soon a failed one is tried again.
	expirerLaneWorkers = 16
	expirerRetry       = 100 * time.Millisecond
)

// RunExpirer applies the expiries of running sessions on time, until ctx is
// done; it then returns ctx's error. Any number of instances may run it:
// each expiry is applied once, through the normal compare-and-set,
// published and audited like any change.
//
// It sleeps until the next deadline it knows of. It learns the deadlines
// from the partitions' deadline indexes when it starts (and after a gap in
// its subscription), and then from the changes every instance publishes,
// through the Manager's subscription to them; it sends Redis nothing while
// no clock runs out but a heartbeat a second (three commands) and a look
// for overdue deadlines in four of its partitions (four).
//
// The instances running it share the work without racing for it: each
// partition has an owner among them (by rendezvous hashing over the ones
// whose heartbeat is recent), which applies its expiries when due; the
// others stand by, the k-th applying an expiry still due k × 250 ms after
// its deadline, which a live owner never leaves. An instance that stops
// leaves at once; one that dies is replaced after three seconds.
//
// Partitions are independent: on Redis Cluster the expiries of each master
// are applied on their own, so that one whose node is down or failing over
// delays none of the others'.
//
// What it holds: the deadline of every running session (some 100 bytes
// each), and a subscription to the changes, shared with the Manager's
// other subscriptions (on Redis Cluster, a connection per partition).
func (m *Manager) RunExpirer(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	e := newExpirer(m)
	return e.run(ctx)
}

// expirer is one RunExpirer.
type expirer struct {
	m  *Manager
	id string // its name among the running expirers

	mu       sync.Mutex
	entries  map[string]*expiry // the running sessions it knows of
	queue    expiryQueue        // entries by wake time
	members  []string           // the running expirers, itself included
	memberAt time.Time          // when members was last learned
	lanes    map[int]*lane      // the lane of each partition (its node's)
	stale    []bool             // partitions whose deadlines to load again
	kick     chan struct{}      // something changed: look again
	lastNow  time.Time          // the server time the scheduler last read

	safetyNext int    // the partition the next safety poll starts at
	seq        uint64 // counts the changes heard
	wg         sync.WaitGroup
}

// expiry is a running session the expirer knows of.
type expiry struct {
	id        string
	partition int
	life      int64     // of the state it was learned from (0: from an index)
	version   int64     // of that state
	seq       uint64    // when it was learned from a change: e.seq then
	none      bool      // a change heard while it was applied left no deadline
	at        time.Time // when its time runs out (its flag grace included)
	wake      time.Time // when this expirer applies it: at, later for a backup
	index     int       // in the queue; -1 when not in it
	inflight  bool
}

func newExpirer(m *Manager) *expirer {
	var r [8]byte
	_, _ = rand.Read(r[:])
	e := &expirer{
		m:       m,
		id:      hex.EncodeToString(r[:]),
		entries: make(map[string]*expiry),
		kick:    make(chan struct{}, 1),
		stale:   make([]bool, m.layout.Partitions()),
	}
	for p := range e.stale {
		e.stale[p] = true
	}
	return e
}

func (e *expirer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		e.wg.Wait()
	}()
	// The changes first, then the indexes: a change published meanwhile is
	// not missed (one read twice is harmless).
	sub, err := e.m.SubscribeToUpdates(ctx, e.heard)
	if err != nil {
		return err
	}
	defer sub.Close()
	e.lanes = map[int]*lane{}
	e.regroup(ctx)
	e.heartbeat(ctx)
	e.wg.Go(func() { every(ctx, expirerHeartbeat, e.heartbeat) })
	e.wg.Go(func() { every(ctx, expirerRegroup, e.regroup) })
	e.wg.Go(func() { every(ctx, expirerSafetyPoll, e.safetyPoll) })
	defer e.leave()
	return e.schedule(ctx)
}

// every runs f every d until ctx is done.
func every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// schedule applies the expiries as they fall due, until ctx is done.
func (e *expirer) schedule(ctx context.Context) error {
	maxSleep := expirerMaxSleep
	if e.m.clock == nil {
		maxSleep = e.m.cfg.ExpirerInterval // a test clock moves by hand
	}
	for {
		e.load(ctx)
		now, err := e.m.now(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.m.cfg.Logger.Warn("synckairos: expirer cannot read the clock", "err", err)
			now = time.Time{}
		}
		sleep := maxSleep
		if !now.IsZero() {
			e.dispatch(ctx, now)
			e.mu.Lock()
			e.lastNow = now
			if len(e.queue) > 0 {
				sleep = min(max(e.queue[0].wake.Sub(now), 0), maxSleep)
			}
			e.mu.Unlock()
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-e.kick:
		case <-t.C:
		}
		t.Stop()
		if e.m.closed.Load() {
			return ErrClosed
		}
	}
}

// dispatch hands the expiries due at now to their nodes' lanes.
func (e *expirer) dispatch(ctx context.Context, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.queue) > 0 && !e.queue[0].wake.After(now) {
		x := heap.Pop(&e.queue).(*expiry)
		x.inflight = true
		e.laneOf(ctx, x.partition).add(x.id)
	}
}

// laneOf returns the lane of a partition's node, starting the lane of a
// partition not yet grouped (a single server: every partition's).
func (e *expirer) laneOf(ctx context.Context, p int) *lane {
	if l := e.lanes[p]; l != nil {
		return l
	}
	l := newLane(ctx, e, &e.wg)
	for q := range e.m.layout.Partitions() {
		if e.lanes[q] == nil {
			e.lanes[q] = l
		}
	}
	return l
}

// regroup gives each node its own lane: the partitions of a node that is
// down then wait for it alone.
func (e *expirer) regroup(ctx context.Context) {
	groups, err := e.m.store.NodeGroups(ctx)
	if err != nil {
		return // keep the lanes as they are
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range groups {
		// The lane of the group's first partition, if it has the group's
		// partitions only; else a new one.
		var l *lane
		if old := e.lanes[g[0]]; old != nil && old.partitions == len(g) {
			l = old
			for _, p := range g {
				if e.lanes[p] != old {
					l = nil
				}
			}
		}
		if l == nil {
			l = newLane(ctx, e, &e.wg)
		}
		l.partitions = len(g)
		for _, p := range g {
			e.lanes[p] = l
		}
	}
}

// done records what applying x's expiries left: the session's state now
// (nil when it is gone) or a failure to try again after.
func (e *expirer) done(id string, s *State, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.entries[id]
	if x == nil {
		return
	}
	x.inflight = false
	switch {
	case err != nil:
		// Again in a moment, by the local clock (a test clock may not
		// move): due at once then.
		time.AfterFunc(expirerRetry, func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			switch {
			case e.entries[id] != x || x.inflight:
			case x.none:
				delete(e.entries, id)
			default:
				x.wake = e.lastNow
				e.push(x)
				e.poke()
			}
		})
	case s == nil:
		delete(e.entries, id)
	default:
		e.learnLocked(id, s, false)
		if e.entries[id] == x { // what a change heard meanwhile said stands
			switch {
			case x.none:
				delete(e.entries, id)
			case x.index < 0:
				e.push(x)
			}
		}
	}
	e.poke()
}

// heard learns from a change published by any instance.
func (e *expirer) heard(ev SessionEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case ev.Kind == ChangeResync:
		for p := range e.stale {
			e.stale[p] = true
		}
	case ev.State == nil:
		if x := e.entries[ev.SessionID]; x != nil && x.inflight {
			x.life, x.version, x.none = ev.Life, ev.Version, true // done drops it
		}
		e.forgetLocked(ev.SessionID)
	default:
		e.learnLocked(ev.SessionID, ev.State, true)
	}
	e.poke()
}

// learnLocked records when s's time runs out, or that it does not, unless
// it knows a later state of the session already (a result of its own
// expiry can come back after a change it heard since).
func (e *expirer) learnLocked(id string, s *State, heard bool) {
	x := e.entries[id]
	if x != nil && (s.Life < x.life || s.Life == x.life && s.Version < x.version) {
		return
	}
	at, ok := s.expiresAt()
	if !ok {
		if x != nil && x.inflight {
			// Applied now: done drops it.
			x.life, x.version, x.none = s.Life, s.Version, true
			return
		}
		e.forgetLocked(id)
		return
	}
	x = e.setLocked(id, at)
	x.life, x.version, x.none = s.Life, s.Version, false
	if heard {
		e.seq++
		x.seq = e.seq
	}
}

func (e *expirer) setLocked(id string, at time.Time) *expiry {
	x := e.entries[id]
	if x == nil {
		x = &expiry{id: id, partition: e.m.layout.Partition(id), index: -1}
		e.entries[id] = x
	}
	x.at = at
	x.wake = at.Add(e.delayLocked(x.partition))
	if !x.inflight { // else applied now: done learns what it left
		e.push(x)
	}
	return x
}

func (e *expirer) forgetLocked(id string) {
	x := e.entries[id]
	if x == nil {
		return
	}
	if x.index >= 0 {
		heap.Remove(&e.queue, x.index)
	}
	if !x.inflight {
		delete(e.entries, id)
	}
}

// push puts x in the queue, or moves it to its new wake time.
func (e *expirer) push(x *expiry) {
	if x.index >= 0 {
		heap.Fix(&e.queue, x.index)
		return
	}
	heap.Push(&e.queue, x)
}

func (e *expirer) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// delayLocked returns how long after a deadline of partition p this
// expirer applies it: nothing for its owner, k × expirerBackupStep for its
// k-th backup, nothing when the expirer knows of no others.
func (e *expirer) delayLocked(p int) time.Duration {
	if len(e.members) < 2 || time.Since(e.memberAt) > expirerMemberTTL {
		return 0
	}
	mine := rendezvous(e.id, p)
	rank := 0
	for _, other := range e.members {
		if other != e.id && rendezvous(other, p) > mine {
			rank++
		}
	}
	return time.Duration(rank) * expirerBackupStep
}

func rendezvous(member string, p int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{':'})
	h.Write([]byte(strconv.Itoa(p)))
	return h.Sum64()
}

// heartbeat says this expirer runs, and learns who else does; when they
// change, every wake time follows.
func (e *expirer) heartbeat(ctx context.Context) {
	now, err := e.m.now(ctx)
	if err != nil {
		return
	}
	members, err := e.m.store.Heartbeat(ctx, e.membersKey(), e.id, now, now.Add(expirerMemberTTL))
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && time.Since(e.memberAt) > expirerMemberTTL && len(e.members) > 1 {
			e.members = nil // act alone: better twice than never
			e.rescheduleLocked()
		}
		return
	}
	slices.Sort(members)
	e.memberAt = time.Now()
	if !slices.Equal(members, e.members) {
		e.members = members
		e.rescheduleLocked()
	}
}

func (e *expirer) rescheduleLocked() {
	for _, x := range e.entries {
		x.wake = x.at.Add(e.delayLocked(x.partition))
	}
	heap.Init(&e.queue)
	e.poke()
}

// leave says this expirer stops, so that its partitions go to others at
// once.
func (e *expirer) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), e.m.cfg.CallTimeout)
	defer cancel()
	_ = e.m.store.Leave(ctx, e.membersKey(), e.id)
}

func (e *expirer) membersKey() string { return e.m.cfg.KeyPrefix + "expirers" }

// load reads the deadline indexes of the partitions marked stale, each on
// its own: a node that does not answer holds up only its own.
func (e *expirer) load(ctx context.Context) {
	e.mu.Lock()
	var stale []int
	for p, s := range e.stale {
		if s {
			stale = append(stale, p)
			e.stale[p] = false
		}
	}
	e.mu.Unlock()
	for _, p := range stale {
		e.mu.Lock()
		since := e.seq // changes heard from now on are newer than the index read
		e.mu.Unlock()
		e.wg.Go(func() {
			e.m.tel.indexRead()
			ds, err := e.m.store.Deadlines(ctx, p)
			e.mu.Lock()
			defer e.mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					e.m.cfg.Logger.Warn("synckairos: expirer cannot read a deadline index", "partition", p, "err", err)
					e.stale[p] = true
					go func() { // try again, not at once
						if pause(ctx, expirerRetry) == nil {
							e.poke()
						}
					}()
				}
				return
			}
			for _, d := range ds {
				if x := e.entries[d.ID]; x == nil || !x.inflight && x.seq <= since {
					e.setLocked(d.ID, d.At)
				}
			}
			e.poke()
		})
	}
}

// safetyPoll looks in a few of the partitions this expirer owns, the next
// ones each time, for deadlines it never heard of that are overdue: a
// change whose message was lost without a resync, if one ever is.
func (e *expirer) safetyPoll(ctx context.Context) {
	now, err := e.m.now(ctx)
	if err != nil {
		return
	}
	n := e.m.layout.Partitions()
	for polled, k := 0, 0; polled < expirerSafetyParts && k < n; k++ {
		p := (e.safetyNext + k) % n
		e.mu.Lock()
		owned := e.delayLocked(p) == 0
		e.mu.Unlock()
		if !owned {
			continue
		}
		polled++
		e.safetyNext = p + 1
		e.m.tel.indexRead()
		ids, err := e.m.store.Overdue(ctx, p, now.Add(-expirerOverdue), expirerBatch)
		if err != nil {
			continue
		}
		e.mu.Lock()
		for _, id := range ids {
			if e.entries[id] == nil {
				e.setLocked(id, now.Add(-expirerOverdue))
			}
		}
		e.mu.Unlock()
		e.poke()
	}
}

// expirerBatch bounds the overdue sessions one safety poll takes from a
// partition.
const expirerBatch = 256

// lane applies the expiries of one node's partitions, a few at once.
type lane struct {
	e          *expirer
	partitions int
	mu         sync.Mutex
	ids        []string
	ready      chan struct{}
}

func newLane(ctx context.Context, e *expirer, wg *sync.WaitGroup) *lane {
	l := &lane{e: e, ready: make(chan struct{}, 1)}
	work := make(chan string)
	wg.Go(func() {
		defer close(work)
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.ready:
			}
			for {
				l.mu.Lock()
				if len(l.ids) == 0 {
					l.mu.Unlock()
					break
				}
				id := l.ids[0]
				l.ids = l.ids[1:]
				l.mu.Unlock()
				select {
				case work <- id:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	for range expirerLaneWorkers {
		wg.Go(func() {
			for id := range work {
				s, err := e.m.expireOne(ctx, id)
				if err != nil && ctx.Err() == nil {
					e.m.cfg.Logger.Warn("synckairos: expiry failed", "session_id", id, "err", err)
				}
				if ctx.Err() != nil {
					return
				}
				e.done(id, s, err)
			}
		})
	}
	return l
}

func (l *lane) add(id string) {
	l.mu.Lock()
	l.ids = append(l.ids, id)
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// expiryQueue is a heap of expiries by wake time.
type expiryQueue []*expiry

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].wake.Before(q[j].wake) }
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *expiryQueue) Push(x any) {
	it := x.(*expiry)
	it.index = len(*q)
	*q = append(*q, it)
}
func (q *expiryQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*q = old[:len(old)-1]
	return it
}

// expireOne applies a session's due expiries and returns its state as it
// is now, nil when it is gone; a session no longer due (it switched, paused
// or was expired by another instance) is left alone.
func (m *Manager) expireOne(ctx context.Context, id string) (_ *State, err error) {
	ctx, c := m.tel.start(ctx, "Expire", id, true)
	var written bool
	defer func() {
		c.write = written // a check that wrote nothing is no write
		c.end(&err)
	}()
	m.tel.expirerCheck()
	var lateness time.Duration
	var s *State
	s, written, err = m.mutate(ctx, id, nil, false, func(s *State, now time.Time) (bool, error) {
		// Late from the moment it fell due: the deadline, after its grace.
		if d, ok := s.Deadline(); ok {
			lateness = now.Sub(d.Add(s.grace()))
		}
		return s.expireDue(now), nil
	})
	if written {
		m.tel.expired(ctx, lateness)
	}
	var re *ReplicationError
	switch {
	case errors.Is(err, ErrSessionNotFound):
		// Gone (deleted, or expired by its TTL): drop its index entry.
		if err := m.store.Forget(ctx, id); err != nil {
			return nil, fmt.Errorf("synckairos: forget deadline of %q: %w", id, err)
		}
		return nil, nil
	case errors.As(err, &re):
		return re.State, nil // written; its replication is the writer's concern
	}
	return s, err
}
