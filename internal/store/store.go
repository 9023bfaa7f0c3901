// Package store runs the Redis commands and the write script of synckairos.
// It moves bytes and versions; encoding, validation and errors for users are
// the root package's.
package store

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/keys"
	"github.com/synckairos/synckairos/internal/slots"
)

//go:embed write.lua
var writeSource string

//go:embed broadcast.lua
var broadcastSource string

var broadcastScript = rueidis.NewLuaScript(broadcastSource)

// Broadcast publishes payload on a session's broadcast channel.
func (s *Store) Broadcast(ctx context.Context, id string, payload []byte) error {
	sharded := ""
	if s.sharded {
		sharded = s.layout.SessionBroadcast(id)
	}
	bounded, cancel := s.bound(ctx)
	defer cancel()
	return s.timedOut(ctx, bounded, broadcastScript.Exec(bounded, s.client, []string{s.layout.Session(id)},
		[]string{s.layout.Broadcast(id), rueidis.BinaryString(payload), sharded}).Error())
}

// The write script is not idempotent (it bumps a version and publishes), so
// it is not marked retryable: a write lost in flight is reported, not resent.
var writeScript = rueidis.NewLuaScript(writeSource)

// writeSHA is the SHA-1 by which EVALSHA names the write script.
var writeSHA = func() string {
	sum := sha1.Sum([]byte(writeSource))
	return hex.EncodeToString(sum[:])
}()

// Outcome is what a write did.
type Outcome int

// The outcomes of the write script; the numbers are the script's.
const (
	NotFound Outcome = 0
	Written  Outcome = 1
	Conflict Outcome = 2
	Exists   Outcome = 3
	Corrupt  Outcome = 4
)

// ErrWrongType reports a key of the layout that holds something other than a
// session hash.
var ErrWrongType = errors.New("key holds a value of the wrong type")

// ErrTimeout reports a call that the node of its partition did not answer:
// not within the store's call timeout, or not at all.
var ErrTimeout = errors.New("no answer from the node")

// SetCallTimeout bounds every call of the store (0: unbounded): a node that
// does not answer in time fails the call with ErrTimeout, rather than
// holding it, retried by the client, until the caller's deadline.
func (s *Store) SetCallTimeout(d time.Duration) { s.callTimeout = d }

// bound returns ctx bounded by the call timeout. A context whose own
// deadline comes first is bound enough. Otherwise calls share bounded
// contexts: one is made at most once a grain (a 64th of the timeout, at
// least 1 ms), derived from the context of the call that makes it, and the
// calls under that same context within the grain share it. It has the
// parent's values and ends with it, or at the timeout rounded up by at most
// the grain: such calls cost no allocation for their bound. That is what a
// worker's or a connection's context making call after call gets, and
// calls with no context of their own (context.Background or TODO). A call
// under another context within the grain (a request's, say), or under a
// context of a type that == cannot compare, gets a bound of its own,
// cancelled on return. Shared bounds are never cancelled (calls may still
// use them): making them at most once a grain keeps those alive few.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := s.callTimeout
	if timeout <= 0 {
		return ctx, noCancel
	}
	want := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && !d.After(want) {
		return ctx, noCancel
	}
	if ctx == context.TODO() {
		ctx = context.Background() // the same: no values, no end
	}
	grain := max(timeout/64, time.Millisecond)
	b := s.shared.Load()
	fresh := b != nil && !b.deadline.Before(want) // made within the grain
	// (Comparing ctx with a kept parent is safe: only parents of types that
	// compare are kept, and contexts of different types are merely unequal.)
	if fresh && b.parent == ctx && b.deadline.Sub(want) <= grain {
		return b.ctx, noCancel
	}
	if fresh || !reflect.TypeOf(ctx).Comparable() {
		return context.WithDeadline(ctx, want)
	}
	nb := &sharedBound{parent: ctx, deadline: want.Add(grain)}
	nb.ctx, nb.cancel = context.WithDeadline(ctx, nb.deadline)
	s.shared.Store(nb)
	return nb.ctx, noCancel
}

// sharedBound is a bounded context that calls under the same parent share.
type sharedBound struct {
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelFunc // kept, not called: the context ends at its deadline or with its parent
	deadline time.Time
}

func noCancel() {}

// timedOut turns an error of a call made under bounded into ErrTimeout when
// the call timeout, not the caller's context, ended it, or when no node
// answered at all (a connection refused or lost: not a Redis reply).
func (s *Store) timedOut(ctx, bounded context.Context, err error) error {
	return timedOut(ctx, bounded, s.callTimeout, err)
}

// timedOut is Store.timedOut for a call bounded by timeout.
func timedOut(ctx, bounded context.Context, timeout time.Duration, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	if errors.Is(bounded.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%v): %v", ErrTimeout, timeout, err)
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return err
}

// unreachable reports errors of a node that cannot be reached: a network
// error, a connection closed by the peer, a slot that no node serves.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, rueidis.ErrNoSlot) || errors.Is(err, rueidis.ErrNoAddr)
}

// Result is the outcome of one write.
type Result struct {
	Outcome Outcome
	// Version is the version written (Written) or found (Conflict).
	Version int64
	// State is the stored state on Conflict.
	State string
	// Replicas is, when the store waits for replicas, how many acknowledged
	// the write.
	Replicas int64
	// Life is the life of the session written (Written): for a create, the
	// one the script gave it.
	Life int64
}

// Store reads and writes sessions under one key layout.
type Store struct {
	client rueidis.Client
	layout keys.Layout
	ttl    time.Duration
	audit  bool
	// finishes makes updates that finish a session append it to the
	// partition's finish stream.
	finishes bool
	// sharded publishes changes and broadcasts on the partitions' sharded
	// channels (Redis Cluster) rather than on one classic channel.
	sharded bool
	// waitReplicas, above 0, follows every write with WAIT for that many
	// replicas, for up to waitTimeout.
	waitReplicas int64
	waitTimeout  time.Duration
	callTimeout  time.Duration
	shared       atomic.Pointer[sharedBound] // see bound
	// owners holds, by partition, the master serving the partition's slot
	// and its client, for writes that wait for replicas on a cluster;
	// replaced whole, never changed in place; nil: to be asked.
	mu     sync.Mutex
	owners []owner
	// alone holds the masters whose last wait found no replica, until when
	// their writes wait briefly (WaitBrieflyWhenAlone).
	briefWhenAlone bool
	alone          map[string]time.Time
	// loaded holds the nodes known to hold the write script, for writes
	// that wait for replicas ("": the single server).
	loaded map[string]struct{}
}

// WaitForReplicas makes every later write wait until n replicas have
// acknowledged it, for up to timeout (Redis WAIT). n = 0 turns it off.
func (s *Store) WaitForReplicas(n int, timeout time.Duration) {
	s.waitReplicas, s.waitTimeout = int64(n), timeout
}

// WaitBrieflyWhenAlone makes the writes to a master whose last wait found no
// replica at all, within the full timeout, wait only a millisecond for the
// next second: a master that a failover left without a replica costs
// writes no latency, and they still report their replicas (0).
func (s *Store) WaitBrieflyWhenAlone(on bool) { s.briefWhenAlone = on }

// aloneRecheck is how long a master found without a replica is waited for
// briefly before a write waits the full timeout again, to find out.
const aloneRecheck = time.Second

// waitFor returns the WAIT timeout of a write to node.
func (s *Store) waitFor(node string) time.Duration {
	if s.briefWhenAlone {
		s.mu.Lock()
		until, alone := s.alone[node]
		s.mu.Unlock()
		if alone && time.Now().Before(until) {
			return time.Millisecond
		}
	}
	return s.waitTimeout
}

// waited records what a WAIT of timeout on node found.
func (s *Store) waited(node string, timeout time.Duration, replicas int64) {
	if !s.briefWhenAlone {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case replicas > 0:
		delete(s.alone, node)
	case timeout == s.waitTimeout:
		if s.alone == nil {
			s.alone = make(map[string]time.Time)
		}
		s.alone[node] = time.Now().Add(aloneRecheck)
	}
}

// New returns a Store. ttl is the expiry set by every write; audit makes
// every write append its event to its partition's outbox. On a Redis
// Cluster client, changes go to the partitions' sharded channels.
func New(client rueidis.Client, layout keys.Layout, ttl time.Duration, audit bool) *Store {
	sharded := client.Mode() == rueidis.ClientModeCluster
	return &Store{client: client, layout: layout, ttl: ttl, audit: audit, sharded: sharded}
}

// QueueFinishes makes every update that finishes a session append it to
// its partition's finish stream.
func (s *Store) QueueFinishes(on bool) { s.finishes = on }

// Sharded reports whether changes go to the partitions' sharded channels.
func (s *Store) Sharded() bool { return s.sharded }

// Get returns the version and stored state of a session; found is false
// when it does not exist.
func (s *Store) Get(ctx context.Context, id string) (version int64, state string, found bool, err error) {
	return s.GetKey(ctx, s.layout.Session(id))
}

// GetKey is Get of the session whose key is key (Layout.Session).
func (s *Store) GetKey(ctx context.Context, key string) (version int64, state string, found bool, err error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	cmd := s.client.B().Hmget().Key(key).Field("v", "s").Build()
	vals, err := s.client.Do(bounded, cmd).ToArray()
	if err != nil {
		return 0, "", false, s.timedOut(ctx, bounded, classify(err))
	}
	if len(vals) != 2 {
		return 0, "", false, fmt.Errorf("HMGET returned %d values, want 2", len(vals))
	}
	if vals[0].IsNil() && vals[1].IsNil() {
		return 0, "", false, nil
	}
	version, err = vals[0].AsInt64()
	if err != nil {
		return 0, "", true, fmt.Errorf("%w: version: %v", ErrWrongType, err)
	}
	state, err = vals[1].ToString()
	if err != nil {
		return 0, "", true, fmt.Errorf("%w: state: %v", ErrWrongType, err)
	}
	return version, state, true, nil
}

// Write is one change for the write script.
type Write struct {
	// Op is "create", "update", "delete" or "restore".
	Op string
	// Flat, for an update, says its State is in format 3 (it starts
	// {"format":3,): the script publishes it as it is, as the message.
	Flat      bool
	SessionID string
	// Expected is, for an update, the version the change is based on; for
	// a restore, the version to restore at.
	Expected int64
	// State is the state JSON at the version written (none for a delete).
	State []byte
	// EventType is the audit event type; the outbox entry is written only
	// when the store has audit enabled and EventType is set.
	EventType string
	// At is the server time of the change.
	At time.Time
	// Deadline, when set, is the next time at which the session's clocks
	// run out: the write records it in the partition's deadline index.
	// Unset, the write removes the session from the index.
	Deadline time.Time
	// Life is, for an update or a restore, the life of the state written:
	// the write is refused as a conflict if the session stored is of another
	// life. For a create, the script gives the life and puts it in the state
	// in place of the placeholder digit at byte LifeAt of State.
	Life   int64
	LifeAt int
	// Status is the status of the state written: an update that moves a
	// session into a final one appends it to the partition's finish stream,
	// when the store queues finishes.
	Status string
}

// Write runs the write script. A write that fails with ErrTimeout may have
// been committed.
func (s *Store) Write(ctx context.Context, w Write) (Result, error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	r, err := s.write(bounded, w)
	return r, s.timedOut(ctx, bounded, err)
}

func (s *Store) write(ctx context.Context, w Write) (Result, error) {
	quotedID, err := json.Marshal(w.SessionID)
	if err != nil {
		return Result{}, err
	}
	eventType := w.EventType
	if !s.audit || w.Op == "restore" {
		eventType = ""
	}
	// A running session's key outlives its clocks by the TTL.
	ttl, deadline := s.ttl, ""
	if !w.Deadline.IsZero() {
		deadline = strconv.FormatInt(w.Deadline.UnixMilli(), 10)
		ttl += max(w.Deadline.Sub(w.At), 0)
	}
	partition := s.layout.Partition(w.SessionID)
	publish, channel := "PUBLISH", s.layout.Updates()
	if s.sharded {
		publish, channel = "SPUBLISH", s.layout.PartitionUpdates(partition)
	}
	keys := []string{s.layout.Session(w.SessionID), s.layout.Outbox(partition), s.layout.Deadlines(partition), s.layout.Lives(partition)}
	if s.finishes {
		// Only then (it tells the script to queue finishes): during a
		// slot's migration, Redis refuses (TRYAGAIN) a script naming a key
		// the importing node does not hold yet.
		keys = append(keys, s.layout.Finished(partition))
	}
	life := strconv.FormatInt(w.Life, 10)
	if w.Op == "create" {
		life = strconv.Itoa(w.LifeAt + 1) // Lua counts from 1
	}
	op := w.Op
	if op == "update" && w.Flat {
		op = "update3"
	}
	args := append(make([]string, 0, 13),
		op, strconv.FormatInt(w.Expected, 10), rueidis.BinaryString(w.State), strconv.FormatInt(ttl.Milliseconds(), 10),
		channel, rueidis.BinaryString(quotedID), deadline, w.SessionID, publish, life, w.Status,
	)
	if eventType != "" {
		args = append(args, eventType, strconv.FormatInt(w.At.UnixMilli(), 10))
	}
	var vals []rueidis.RedisMessage
	var replicas int64
	if s.waitReplicas > 0 {
		vals, replicas, err = s.writeAndWait(ctx, partition, keys, args)
	} else {
		vals, err = writeScript.Exec(ctx, s.client, keys, args).ToArray()
	}
	if err != nil {
		return Result{}, classify(err)
	}
	if len(vals) == 0 {
		return Result{}, errors.New("write script returned nothing")
	}
	code, err := vals[0].AsInt64()
	if err != nil {
		return Result{}, fmt.Errorf("write script: %w", err)
	}
	r := Result{Outcome: Outcome(code), Replicas: replicas}
	switch r.Outcome {
	case Written:
		if len(vals) != 3 {
			return r, fmt.Errorf("write script returned %d values, want 3", len(vals))
		}
		if r.Version, err = vals[1].AsInt64(); err == nil {
			r.Life, err = vals[2].AsInt64()
		}
	case Conflict:
		if len(vals) != 3 || vals[2].IsNil() {
			return r, fmt.Errorf("%w: session hash without its state", ErrWrongType)
		}
		if r.Version, err = vals[1].AsInt64(); err == nil {
			r.State, err = vals[2].ToString()
		}
	case Corrupt:
		return r, fmt.Errorf("%w: session hash without a version", ErrWrongType)
	}
	if err != nil {
		return r, fmt.Errorf("write script: %w", err)
	}
	return r, nil
}

// writeAndWait runs the write script and then WAIT, which counts the
// replicas that have the connection's earlier writes: both must reach the
// node that runs the script, in one pipeline on one of its connections.
func (s *Store) writeAndWait(ctx context.Context, partition int, keys, args []string) ([]rueidis.RedisMessage, int64, error) {
	if !s.sharded {
		// One node: rueidis sends a pipeline holding a blocking command on a
		// pooled connection of its own, so the WAIT blocks no other caller.
		timeout := s.waitFor("")
		vals, replicas, err := s.scriptAndWait(ctx, s.client, "", keys, args, false, timeout)
		if err == nil {
			s.waited("", timeout, replicas)
		}
		return vals, replicas, err
	}
	// A cluster client follows a MOVED or an ASK for the script, but would
	// send the WAIT to the node it first chose, which would then count the
	// replicas of writes it never ran. So the pipeline goes to the node that
	// serves the slot, on that node's own client, which follows nothing: a
	// redirection comes back, before the script ran, and the pipeline goes
	// again to the node it names.
	slot := s.layout.Slot(partition)
	at, err := s.slotOwner(ctx, partition, false)
	if err != nil {
		return nil, 0, err
	}
	asking := false
	for range 50 {
		if at.node == nil {
			// A node the client has no connection to yet (a MOVED to a new
			// master): ask the cluster again, after a moment.
			if err := pause(ctx, 10*time.Millisecond); err != nil {
				return nil, 0, err
			}
			if at, err = s.slotOwner(ctx, partition, true); err != nil {
				return nil, 0, err
			}
			continue
		}
		timeout := s.waitFor(at.addr)
		vals, replicas, err := s.scriptAndWait(ctx, at.node, at.addr, keys, args, asking, timeout)
		if err == nil {
			s.waited(at.addr, timeout, replicas)
		}
		re, ok := rueidis.IsRedisErr(err)
		if !ok {
			if (unreachable(err) || errors.Is(err, rueidis.ErrClosing)) && !errors.Is(err, context.DeadlineExceeded) {
				// The node refused or dropped us, or the client closed its
				// connection to it (gone from the cluster): ask the cluster
				// next time.
				s.forgetOwners()
			}
			return vals, replicas, err
		}
		if to, moved := re.IsMoved(); moved {
			at = s.setSlotOwner(partition, to)
			asking = false
			continue
		}
		if to, ask := re.IsAsk(); ask {
			// The slot is migrating: this key is at the target already.
			at, asking = owner{addr: to, node: s.client.Nodes()[to]}, true
			continue
		}
		if re.IsTryAgain() {
			// The slot is migrating and its keys are on both nodes: the
			// script ran nowhere; wait for the migration to move on.
			if err := pause(ctx, 10*time.Millisecond); err != nil {
				return nil, 0, err
			}
			if at, err = s.slotOwner(ctx, partition, false); err != nil {
				return nil, 0, err
			}
			asking = false
			continue
		}
		return vals, replicas, err
	}
	return nil, 0, fmt.Errorf("write script: slot %d redirected too often", slot)
}

// scriptAndWait sends the write script and WAIT through c in one pipeline,
// after ASKING if asking, and loads the script where it is missing.
//
// The script goes whole (EVAL) to a node not yet known to hold it, since a
// NOSCRIPT would come back only after the pipeline's WAIT had waited for
// nothing; and a WAIT never waits past what is left of ctx.
func (s *Store) scriptAndWait(ctx context.Context, c rueidis.Client, node string, keys, args []string, asking bool, timeout time.Duration) ([]rueidis.RedisMessage, int64, error) {
	n := int64(len(keys))
	// A command is consumed by the call that sends it: build them per call.
	pipeline := func(script rueidis.Completed) rueidis.Commands {
		wait := timeout
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(d)-50*time.Millisecond)
		}
		cmds := rueidis.Commands{script,
			s.client.B().Wait().Numreplicas(s.waitReplicas).Timeout(max(wait.Milliseconds(), 1)).Build().SetSlot(keys[0])}
		if asking {
			cmds = append(rueidis.Commands{s.client.B().Asking().Build().SetSlot(keys[0])}, cmds...)
		}
		return cmds
	}
	at := 0
	if asking {
		at = 1
	}
	eval := func() []rueidis.RedisResult {
		return c.DoMulti(ctx, pipeline(s.client.B().Eval().Script(writeSource).Numkeys(n).Key(keys...).Arg(args...).Build())...)
	}
	s.mu.Lock()
	_, loaded := s.loaded[node]
	s.mu.Unlock()
	var res []rueidis.RedisResult
	if loaded {
		res = c.DoMulti(ctx, pipeline(s.client.B().Evalsha().Sha1(writeSHA).Numkeys(n).Key(keys...).Arg(args...).Build())...)
		if re, ok := rueidis.IsRedisErr(res[at].Error()); ok && re.IsNoScript() {
			// The node lost its scripts (a restart): the script did not run.
			res = eval()
		}
	} else {
		res = eval()
	}
	vals, err := res[at].ToArray()
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	if s.loaded == nil {
		s.loaded = make(map[string]struct{})
	}
	s.loaded[node] = struct{}{}
	s.mu.Unlock()
	replicas, err := res[at+1].AsInt64()
	if err != nil {
		// The write is committed; only its replication is unknown.
		return vals, 0, nil
	}
	return vals, replicas, nil
}

// owner is the master serving a partition's slot, and the client of that
// node alone (nil when the cluster client has no connection to it).
type owner struct {
	addr string
	node rueidis.Client
}

// slotOwner returns the master serving a partition's slot, from the list
// the store keeps, asked of the cluster when it has none, or fresh is set.
func (s *Store) slotOwner(ctx context.Context, partition int, fresh bool) (owner, error) {
	s.mu.Lock()
	owners := s.owners
	s.mu.Unlock()
	if owners == nil || fresh {
		sp, err := s.slotSpans(ctx)
		if err != nil {
			return owner{}, err
		}
		nodes := s.client.Nodes()
		owners = make([]owner, s.layout.Partitions())
		for p := range owners {
			addr := sp.Owner(s.layout.Slot(p))
			owners[p] = owner{addr: addr, node: nodes[addr]}
		}
		s.mu.Lock()
		s.owners = owners
		s.mu.Unlock()
	}
	if o := owners[partition]; o.addr != "" {
		return o, nil
	}
	return owner{}, fmt.Errorf("%w: slot %d", rueidis.ErrNoSlot, s.layout.Slot(partition))
}

// forgetOwners drops the list of slot owners, to be asked for again.
func (s *Store) forgetOwners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owners = nil
}

// setSlotOwner records a MOVED: the partition's slot is served by addr.
func (s *Store) setSlotOwner(partition int, addr string) owner {
	o := owner{addr: addr, node: s.client.Nodes()[addr]}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owners != nil {
		owners := slices.Clone(s.owners) // readers hold the old list
		owners[partition] = o
		s.owners = owners
	}
	return o
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

func classify(err error) error {
	// Inside a script Redis reports WRONGTYPE within a script error.
	if _, ok := rueidis.IsRedisErr(err); ok && strings.Contains(err.Error(), "WRONGTYPE") {
		return fmt.Errorf("%w: %v", ErrWrongType, err)
	}
	return err
}

// NodeGroups returns the partitions grouped by the node that serves them:
// on Redis Cluster the master of each partition's slot (CLUSTER SLOTS), on a
// single server one group of all.
func (s *Store) NodeGroups(ctx context.Context) ([][]int, error) {
	all := make([]int, s.layout.Partitions())
	for p := range all {
		all[p] = p
	}
	if !s.sharded {
		return [][]int{all}, nil
	}
	spans, err := s.slotSpans(ctx)
	if err != nil {
		return nil, err
	}
	byNode := map[string][]int{}
	var order []string
	for _, p := range all {
		node := spans.Owner(s.layout.Slot(p)) // "": a slot no node serves now
		if _, ok := byNode[node]; !ok {
			order = append(order, node)
		}
		byNode[node] = append(byNode[node], p)
	}
	groups := make([][]int, 0, len(order))
	for _, n := range order {
		groups = append(groups, byNode[n])
	}
	return groups, nil
}

// slotSpans asks the cluster which master serves which slots.
func (s *Store) slotSpans(ctx context.Context) (slots.Spans, error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	sp, err := slots.Get(bounded, s.client)
	return sp, s.timedOut(ctx, bounded, err)
}

// Forget removes a session from its partition's deadline index: for entries
// whose session is gone.
func (s *Store) Forget(ctx context.Context, id string) error {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	return s.timedOut(ctx, bounded, s.client.Do(bounded, s.client.B().Zrem().Key(s.layout.Deadlines(s.layout.Partition(id))).Member(id).Build()).Error())
}

// Deadline is a session's entry in its partition's deadline index.
type Deadline struct {
	ID string
	At time.Time
}

// Deadlines returns the whole deadline index of a partition.
func (s *Store) Deadlines(ctx context.Context, partition int) ([]Deadline, error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	zs, err := s.client.Do(bounded, s.client.B().Zrange().Key(s.layout.Deadlines(partition)).Min("0").Max("-1").Withscores().Build()).AsZScores()
	if err != nil {
		return nil, s.timedOut(ctx, bounded, err)
	}
	out := make([]Deadline, len(zs))
	for i, z := range zs {
		out[i] = Deadline{ID: z.Member, At: time.UnixMilli(int64(z.Score)).UTC()}
	}
	return out, nil
}

// Overdue returns up to limit sessions of a partition whose deadline is at
// or before upTo.
func (s *Store) Overdue(ctx context.Context, partition int, upTo time.Time, limit int) ([]string, error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	ids, err := s.client.Do(bounded, s.client.B().Zrange().Key(s.layout.Deadlines(partition)).Min("-inf").
		Max(strconv.FormatInt(upTo.UnixMilli(), 10)).Byscore().Limit(0, int64(limit)).Build()).AsStrSlice()
	return ids, s.timedOut(ctx, bounded, err)
}

// Heartbeat records that member runs until until, in the sorted set key of
// the running members, drops the members silent since now, and returns the
// members left, all in one round trip.
func (s *Store) Heartbeat(ctx context.Context, key, member string, now, until time.Time) ([]string, error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	res := s.client.DoMulti(bounded,
		s.client.B().Zadd().Key(key).ScoreMember().ScoreMember(float64(until.UnixMilli()), member).Build(),
		s.client.B().Zremrangebyscore().Key(key).Min("-inf").Max("("+strconv.FormatInt(now.UnixMilli(), 10)).Build(),
		s.client.B().Zrange().Key(key).Min("0").Max("-1").Build())
	for _, r := range res[:2] {
		if err := r.Error(); err != nil {
			return nil, s.timedOut(ctx, bounded, err)
		}
	}
	members, err := res[2].AsStrSlice()
	return members, s.timedOut(ctx, bounded, err)
}

// Leave removes member from the sorted set key of the running members.
func (s *Store) Leave(ctx context.Context, key, member string) error {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	return s.timedOut(ctx, bounded, s.client.Do(bounded, s.client.B().Zrem().Key(key).Member(member).Build()).Error())
}
