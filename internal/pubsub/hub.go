// Package pubsub multiplexes the subscriptions of one synckairos Manager over
// dedicated Redis connections, and hands each message to its subscriber's
// own goroutine through a bounded queue.
//
// Why not one rueidis Receive per subscription: two local subscriptions to
// one channel on one client are not independent (an unsubscribe ends both,
// and each sees the other's confirmations), and a callback that blocks stalls
// the connection. Here a connection's reader only routes messages into
// queues; it never waits for a subscriber. A subscriber that falls behind, or
// a connection that is lost, costs the subscriber its backlog and gives it
// one resync signal, never a silent gap.
//
// Classic channels and patterns share one connection. On Redis Cluster,
// sharded channels (SSUBSCRIBE) live on the node that owns their hash slot,
// so they get one connection per slot: a "shard", named by a key in that slot.
package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/slots"
)

// Kind tells the kinds of subscription apart.
type Kind int

// The kinds of subscription.
const (
	Channel Kind = iota // SUBSCRIBE
	Pattern             // PSUBSCRIBE
	Sharded             // SSUBSCRIBE, Redis 7 sharded pub/sub
)

// Topic names what to subscribe to.
type Topic struct {
	Kind Kind
	Name string
	// Shard is, for a Sharded topic, a key in the hash slot of Name (its
	// hash tag, such as "{p03}"): topics of one shard share a connection to
	// the node owning the slot. Empty for the other kinds.
	Shard string
}

type topicKey struct {
	kind Kind
	name string
}

type topic struct {
	subs  map[*Sub]struct{}
	ready chan struct{} // closed at the first confirmation, or with err
	err   error         // why the subscription failed, set before ready closes
	// want is the count of SUBSCRIBEs for the key on the connection at this
	// topic's own; confirmations before it belong to an earlier topic.
	want      int
	confirmed uint64 // connection generation of the last confirmation; 0: none
}

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("pubsub: closed")

// Reconnection backoff of the supervisor: short, so that the subscriptions
// of a node that failed over come back soon after its replica answers (an
// attempt costs one connection to a node that may be down).
const (
	reconnectMin = 50 * time.Millisecond
	reconnectMax = 150 * time.Millisecond
)

// Hub holds the subscriptions of one Manager.
type Hub struct {
	client rueidis.Client
	log    *slog.Logger

	name string // of its connections: synckairos-pubsub-<random>-<shard generation>

	mu     sync.Mutex
	runs   map[string]*run // by shard ("": classic channels and patterns)
	closed bool

	drops, resyncs, reconnects atomic.Int64 // for Stats
}

// Stats are a hub's figures, for telemetry.
type Stats struct {
	Queued     int   // messages waiting in the subscriptions' queues
	Drops      int64 // messages dropped for a resync, since the hub began
	Resyncs    int64 // resyncs told to subscribers
	Reconnects int64 // connections made again after one was lost or moved
}

// Stats returns the hub's figures.
func (h *Hub) Stats() Stats {
	st := Stats{Drops: h.drops.Load(), Resyncs: h.resyncs.Load(), Reconnects: h.reconnects.Load()}
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[*Sub]struct{})
	for _, r := range h.runs {
		for _, t := range r.topics {
			for s := range t.subs {
				if _, ok := seen[s]; !ok {
					seen[s] = struct{}{}
					st.Queued += len(s.queue)
				}
			}
		}
	}
	return st
}

// run is one life of a shard's connection: from the first subscription of
// the shard to the removal of its last. Its supervisor goroutine owns the
// dedicated connection, replaces it after a failure, and sends every
// (un)subscribe.
type run struct {
	hub   *Hub
	shard string
	done  chan struct{} // closed when the supervisor has returned
	wake  chan struct{} // cap 1: ops waiting, reconnect wanted, or stopped

	// Guarded by hub.mu.
	topics     map[topicKey]*topic
	client     rueidis.DedicatedClient // nil while (re)connecting
	gen        uint64                  // generation of client, from 1
	clientName string
	sent       map[topicKey]int // SUBSCRIBEs sent per key on client
	acked      map[topicKey]int // their confirmations
	unsent     map[topicKey]int // SUNSUBSCRIBEs sent per key on client
	unacked    map[topicKey]int // sunsubscribe notices received
	ops        []op
	reconnect  bool // the server moved a slot away: replace the connection
	held       bool // a connection was lost: subscribers wait for a resync
	stopped    bool
}

type op struct {
	subscribe bool
	key       topicKey
}

// NewHub returns a hub that subscribes through client.
func NewHub(client rueidis.Client, log *slog.Logger) *Hub {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return &Hub{client: client, log: log, runs: make(map[string]*run), name: "synckairos-pubsub-" + hex.EncodeToString(r[:])}
}

// Subscribe adds sub, started with Sub.Run, to the subscribers of every topic,
// and returns once Redis has confirmed them all: every message published
// afterwards reaches sub. On error sub is removed again.
func (h *Hub) Subscribe(ctx context.Context, sub *Sub, topics ...Topic) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	waits := make([]*topic, 0, len(topics))
	for _, tp := range topics {
		r := h.runs[tp.Shard]
		if r == nil {
			r = h.start(tp.Shard)
			h.runs[tp.Shard] = r
		}
		key := topicKey{tp.Kind, tp.Name}
		t := r.topics[key]
		if t == nil {
			t = &topic{subs: make(map[*Sub]struct{}), ready: make(chan struct{})}
			r.topics[key] = t
			r.ops = append(r.ops, op{subscribe: true, key: key})
			notify(r.wake)
		}
		t.subs[sub] = struct{}{}
		waits = append(waits, t)
	}
	sub.topics = append(sub.topics, topics...)
	h.mu.Unlock()

	for _, t := range waits {
		select {
		case <-t.ready:
			if t.err != nil {
				h.Remove(sub)
				return t.err
			}
		case <-ctx.Done():
			h.Remove(sub)
			return ctx.Err()
		case <-sub.done: // closed meanwhile: by Hub.Close, or its context ended
			if err := ctx.Err(); err != nil {
				h.Remove(sub)
				return err
			}
			return ErrClosed
		}
	}
	return nil
}

// Remove takes sub off its topics. The last subscriber of a topic
// unsubscribes it; the last subscriber of a shard ends its run, and Remove
// returns once that run's supervisor has released the connection.
func (h *Hub) Remove(sub *Sub) {
	h.mu.Lock()
	var ended []*run
	for _, tp := range sub.topics {
		r := h.runs[tp.Shard]
		if r == nil {
			continue
		}
		key := topicKey{tp.Kind, tp.Name}
		t := r.topics[key]
		if _, ok := t.subsOf()[sub]; !ok {
			continue
		}
		delete(t.subs, sub)
		if len(t.subs) > 0 {
			continue
		}
		delete(r.topics, key)
		if len(r.topics) == 0 {
			r.stopped = true
			delete(h.runs, tp.Shard)
			ended = append(ended, r)
		} else {
			r.ops = append(r.ops, op{key: key})
			r.releaseIfBack() // the topic a held run waited for may be this one
		}
		notify(r.wake)
	}
	sub.topics = nil
	h.mu.Unlock()
	for _, r := range ended {
		<-r.done
	}
}

func (t *topic) subsOf() map[*Sub]struct{} {
	if t == nil {
		return nil
	}
	return t.subs
}

// Close ends every subscription, each subscriber's goroutine included, and
// refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	subs := make(map[*Sub]struct{})
	for _, r := range h.runs {
		for _, t := range r.topics {
			for s := range t.subs {
				subs[s] = struct{}{}
			}
		}
	}
	h.mu.Unlock()
	for s := range subs {
		s.Close()
	}
}

// ConnName returns the client name (CLIENT SETNAME) of the connection
// carrying the classic channels and patterns, or "": fault tests find it
// in CLIENT LIST and kill it; operators see the Manager's subscription
// connections there by their names. (In RESP2 rueidis carries pub/sub on a
// second connection, which this name does not name.)
func (h *Hub) ConnName() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.runs[""]; r != nil {
		return r.clientName
	}
	return ""
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// start begins the run of a shard. It holds h.mu.
func (h *Hub) start(shard string) *run {
	r := &run{
		hub: h, shard: shard, topics: make(map[topicKey]*topic),
		done: make(chan struct{}), wake: make(chan struct{}, 1),
	}
	go r.supervise()
	return r
}

func (r *run) supervise() {
	h := r.hub
	defer close(r.done)
	// The run outlives the Subscribe call that started it, so it has a
	// context of its own, cancelled when the last subscriber leaves.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A connection is closed, not returned to rueidis's pool, when its run
	// ends or it fails: no goroutine of it outlives the subscriptions.
	var conn rueidis.DedicatedClient
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	wait := reconnectMin
	connected := false
	for {
		if conn != nil {
			conn.Close()
		}
		var connErr <-chan error
		var err error
		conn, connErr, err = r.connect(ctx)
		if err != nil {
			h.log.Warn("synckairos: pub/sub connection failed; retrying", "shard", r.shard, "err", err, "retry_in", wait)
			if !clusterMoving(err) {
				// A cluster in the middle of a failover or a slot move
				// is waited for; anything else fails the waiting calls.
				r.failUnconfirmed(fmt.Errorf("pub/sub connection: %w", err))
			}
			if !r.sleep(wait) {
				return
			}
			wait = min(2*wait, reconnectMax)
			continue
		}
		wait = reconnectMin
		if connected {
			h.reconnects.Add(1)
		}
		connected = true
		if !r.serve(ctx, connErr) {
			return
		}
	}
}

// clusterMoving reports an error of a cluster whose slots are moving or
// failing over: retrying later, on a fresh connection, helps.
func clusterMoving(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	if !ok {
		return false
	}
	_, moved := re.IsMoved()
	_, ask := re.IsAsk()
	return moved || ask || re.IsTryAgain() || re.IsClusterDown() || re.IsLoading()
}

// dedicate returns a connection of its own for shard: on a cluster, one to
// the master that serves the shard's slot as the cluster says now (CLUSTER
// SLOTS), since after a failover the client's own map of the slots lags
// behind for a while, and a connection to the old master only fails again.
func (h *Hub) dedicate(ctx context.Context, shard string) rueidis.DedicatedClient {
	if shard != "" && h.client.Mode() == rueidis.ClientModeCluster {
		askCtx, cancel := context.WithTimeout(ctx, time.Second)
		sp, err := slots.Get(askCtx, h.client)
		cancel()
		if err == nil {
			if node := h.client.Nodes()[sp.Owner(slots.Of(shard))]; node != nil {
				c, _ := node.Dedicate()
				return c
			}
		}
	}
	c, _ := h.client.Dedicate()
	return c
}

// connect dedicates a connection, installs the hooks and subscribes every
// topic of the run on it.
func (r *run) connect(ctx context.Context) (rueidis.DedicatedClient, <-chan error, error) {
	h := r.hub
	client := h.dedicate(ctx, r.shard) // released by client.Close
	h.mu.Lock()
	r.gen++
	gen := r.gen
	h.mu.Unlock()
	connErr := client.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage:      func(m rueidis.PubSubMessage) { r.onMessage(gen, m) },
		OnSubscription: func(s rueidis.PubSubSubscription) { r.onSubscription(gen, s) },
	})
	// CLIENT SETNAME checks the connection and names it (CLIENT LIST shows
	// the Manager's subscriptions). On a cluster, the shard's key sends it,
	// and so binds the connection, to the node owning the shard's slot.
	name := h.name + "-" + strconv.FormatUint(gen, 10)
	nameCmd := client.B().ClientSetname().ConnectionName(name).Build()
	if r.shard != "" {
		nameCmd = nameCmd.SetSlot(r.shard)
	}
	if err := client.Do(ctx, nameCmd).Error(); err != nil {
		return client, nil, err
	}

	h.mu.Lock()
	r.client, r.clientName = client, name
	r.sent, r.acked = make(map[topicKey]int), make(map[topicKey]int)
	r.unsent, r.unacked = make(map[topicKey]int), make(map[topicKey]int)
	r.ops = r.ops[:0] // every topic is subscribed below
	r.reconnect = false
	names := make(map[Kind][]string)
	for key, t := range r.topics {
		r.sent[key]++
		t.want = r.sent[key]
		names[key.kind] = append(names[key.kind], key.name)
	}
	h.mu.Unlock()

	var cmds rueidis.Commands
	if n := names[Channel]; len(n) > 0 {
		cmds = append(cmds, client.B().Subscribe().Channel(n...).Build())
	}
	if n := names[Pattern]; len(n) > 0 {
		cmds = append(cmds, client.B().Psubscribe().Pattern(n...).Build())
	}
	if n := names[Sharded]; len(n) > 0 {
		cmds = append(cmds, client.B().Ssubscribe().Channel(n...).Build())
	}
	for _, cmd := range cmds {
		if err := client.Do(ctx, cmd).Error(); err != nil {
			return client, nil, err
		}
	}
	return client, connErr, nil
}

// serve sends the queued (un)subscribes until the connection fails or must
// be replaced (true: reconnect) or the run is stopped (false).
func (r *run) serve(ctx context.Context, connErr <-chan error) bool {
	h := r.hub
	for {
		select {
		case err := <-connErr:
			h.mu.Lock()
			r.client = nil
			stopped := r.stopped
			r.holdResyncs()
			h.mu.Unlock()
			if stopped {
				return false
			}
			h.log.Warn("synckairos: pub/sub connection lost; resubscribing", "shard", r.shard, "err", err)
			return true
		case <-r.wake:
		}
		h.mu.Lock()
		if r.stopped {
			h.mu.Unlock()
			return false
		}
		if r.reconnect {
			r.client = nil
			r.holdResyncs()
			h.mu.Unlock()
			h.log.Warn("synckairos: sharded channels moved to another node; resubscribing", "shard", r.shard)
			return true
		}
		ops := r.ops
		r.ops = nil
		client := r.client
		h.mu.Unlock()
		for _, o := range ops {
			r.send(ctx, client, o)
		}
	}
}

func (r *run) send(ctx context.Context, client rueidis.DedicatedClient, o op) {
	h := r.hub
	h.mu.Lock()
	t := r.topics[o.key]
	if o.subscribe == (t == nil) {
		// Unsubscribed again before its SUBSCRIBE went out, or subscribed
		// again before its UNSUBSCRIBE: the later op decides.
		h.mu.Unlock()
		return
	}
	var cmd rueidis.Completed
	b := client.B()
	switch o.key.kind {
	case Pattern:
		if o.subscribe {
			cmd = b.Psubscribe().Pattern(o.key.name).Build()
		} else {
			cmd = b.Punsubscribe().Pattern(o.key.name).Build()
		}
	case Sharded:
		if o.subscribe {
			cmd = b.Ssubscribe().Channel(o.key.name).Build()
		} else {
			cmd = b.Sunsubscribe().Channel(o.key.name).Build()
			r.unsent[o.key]++
		}
	default:
		if o.subscribe {
			cmd = b.Subscribe().Channel(o.key.name).Build()
		} else {
			cmd = b.Unsubscribe().Channel(o.key.name).Build()
		}
	}
	if o.subscribe {
		r.sent[o.key]++
		t.want = r.sent[o.key]
	}
	h.mu.Unlock()

	err := client.Do(ctx, cmd).Error()
	if err == nil || !o.subscribe {
		return // a failed connection is repaired by the supervisor
	}
	if clusterMoving(err) {
		// The slot is no longer on this connection's node.
		h.mu.Lock()
		r.reconnect = true
		h.mu.Unlock()
		notify(r.wake)
		return
	}
	if _, isRedis := rueidis.IsRedisErr(err); isRedis {
		// Refused by the server (an ACL, say): retrying will not help.
		h.mu.Lock()
		if t := r.topics[o.key]; t != nil && t.confirmed == 0 && t.err == nil {
			t.err = fmt.Errorf("subscribe %s: %w", o.key.name, err)
			close(t.ready)
		}
		h.mu.Unlock()
	}
}

// failUnconfirmed fails the Subscribe calls still waiting: their connection
// could not be made. Confirmed topics wait for the reconnection instead.
func (r *run) failUnconfirmed(err error) {
	h := r.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range r.topics {
		if t.confirmed == 0 && t.err == nil {
			t.err = err
			close(t.ready)
		}
	}
}

// sleep waits d; false if the run was stopped meanwhile.
func (r *run) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-r.wake:
			r.hub.mu.Lock()
			stopped := r.stopped
			r.hub.mu.Unlock()
			if stopped {
				return false
			}
		}
	}
}

// current reports whether callbacks of connection generation gen are still
// wanted. It holds h.mu.
func (r *run) current(gen uint64) bool {
	return r.gen == gen && !r.stopped
}

// onMessage runs on the connection's reader: it only hands the message over.
func (r *run) onMessage(gen uint64, m rueidis.PubSubMessage) {
	key := topicKey{Channel, m.Channel}
	switch {
	case m.Pattern != "":
		key = topicKey{Pattern, m.Pattern}
	case r.shard != "":
		key.kind = Sharded
	}
	h := r.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if !r.current(gen) {
		return
	}
	for s := range r.topics[key].subsOf() {
		s.offer(m)
	}
}

func (r *run) onSubscription(gen uint64, s rueidis.PubSubSubscription) {
	var key topicKey
	switch s.Kind {
	case "subscribe":
		key = topicKey{Channel, s.Channel}
	case "psubscribe":
		key = topicKey{Pattern, s.Channel}
	case "ssubscribe":
		key = topicKey{Sharded, s.Channel}
	case "sunsubscribe":
		r.onSunsubscribe(gen, topicKey{Sharded, s.Channel})
		return
	default:
		return
	}
	h := r.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if !r.current(gen) {
		return
	}
	r.acked[key]++
	t := r.topics[key]
	if t == nil || r.acked[key] < t.want || t.confirmed == gen {
		return
	}
	if t.confirmed == 0 && t.err == nil {
		close(t.ready)
	}
	t.confirmed = gen
	r.releaseIfBack()
}

// holdResyncs tells the subscribers of the run's topics that its connection
// is lost: what is published until it is back is gone. Each gets a resync
// once the run, and every other run of theirs that is down, has subscribed
// again. It holds hub.mu.
func (r *run) holdResyncs() {
	r.held = true
	for _, t := range r.topics {
		for sub := range t.subs {
			sub.holdResync(r)
		}
	}
}

// releaseIfBack releases the subscribers held by a lost connection once
// every topic of the run is confirmed on the current one: after each
// confirmation, first ones included, and after a topic is removed. It holds
// hub.mu.
func (r *run) releaseIfBack() {
	if !r.held {
		return
	}
	for _, t := range r.topics {
		if t.confirmed != r.gen {
			return
		}
	}
	r.held = false
	for _, t := range r.topics {
		for sub := range t.subs {
			sub.releaseResync(r)
		}
	}
}

// onSunsubscribe counts sunsubscribe notices. One that answers no
// SUNSUBSCRIBE of ours is the server's: the slot has moved to another node
// (a resharding, or this node became a replica), and the shard's topics are
// subscribed again on a new connection to the slot's owner.
func (r *run) onSunsubscribe(gen uint64, key topicKey) {
	h := r.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if !r.current(gen) {
		return
	}
	r.unacked[key]++
	if r.unacked[key] > r.unsent[key] {
		r.unacked[key] = r.unsent[key]
		if !r.reconnect {
			r.reconnect = true
			notify(r.wake)
		}
	}
}
