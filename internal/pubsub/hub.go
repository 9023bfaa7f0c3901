// Package pubsub multiplexes the subscriptions of one synckairos Manager over
// one dedicated Redis connection, and hands each message to its subscriber's
// own goroutine through a bounded queue.
//
// Why not one rueidis Receive per subscription: two local subscriptions to
// one channel on one client are not independent (an unsubscribe ends both,
// and each sees the other's confirmations), and a callback that blocks stalls
// the connection. Here the connection's reader only routes messages into
// queues; it never waits for a subscriber. A subscriber that falls behind, or
// a connection that is lost, costs the subscriber its backlog and gives it
// one resync signal, never a silent gap.
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Kind tells a channel subscription from a pattern subscription.
type Kind int

// The kinds of subscription.
const (
	Channel Kind = iota // SUBSCRIBE
	Pattern             // PSUBSCRIBE
)

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

// Reconnection backoff of the supervisor.
const (
	reconnectMin = 50 * time.Millisecond
	reconnectMax = 2 * time.Second
)

// Hub holds the subscriptions of one Manager.
type Hub struct {
	client rueidis.Client
	log    *slog.Logger

	mu     sync.Mutex
	topics map[topicKey]*topic
	run    *run // nil while no topic is subscribed
	closed bool
}

// run is one life of the hub's connection: from the first subscription to
// the removal of the last. Its supervisor goroutine owns the dedicated
// connection, replaces it after a failure, and sends every (un)subscribe.
type run struct {
	hub  *Hub
	done chan struct{} // closed when the supervisor has returned
	wake chan struct{} // cap 1: ops waiting, or stopped

	// Guarded by hub.mu.
	client   rueidis.DedicatedClient // nil while (re)connecting
	gen      uint64                  // generation of client, from 1
	clientID int64
	sent     map[topicKey]int // SUBSCRIBEs sent per key on client
	acked    map[topicKey]int // their confirmations
	ops      []op
	stopped  bool
}

type op struct {
	subscribe bool
	key       topicKey
}

// NewHub returns a hub that subscribes through client.
func NewHub(client rueidis.Client, log *slog.Logger) *Hub {
	return &Hub{client: client, log: log, topics: make(map[topicKey]*topic)}
}

// Subscribe adds sub, started with Sub.Run, to the subscribers of (kind,
// name), and returns once Redis has confirmed the subscription: every message
// published afterwards reaches sub. On error sub is removed again.
func (h *Hub) Subscribe(ctx context.Context, kind Kind, name string, sub *Sub) error {
	key := topicKey{kind, name}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	if h.run == nil {
		h.run = h.start()
	}
	t := h.topics[key]
	if t == nil {
		t = &topic{subs: make(map[*Sub]struct{}), ready: make(chan struct{})}
		h.topics[key] = t
		h.run.ops = append(h.run.ops, op{subscribe: true, key: key})
		notify(h.run.wake)
	}
	t.subs[sub] = struct{}{}
	sub.key = key
	h.mu.Unlock()

	select {
	case <-t.ready:
		if t.err != nil {
			h.Remove(sub)
			return t.err
		}
		return nil
	case <-ctx.Done():
		h.Remove(sub)
		return ctx.Err()
	case <-sub.done: // closed meanwhile, by Hub.Close
		return ErrClosed
	}
}

// Remove takes sub off its topic. The last subscriber of a topic unsubscribes
// it; the last subscriber of all ends the run, and Remove returns once its
// supervisor has released the connection.
func (h *Hub) Remove(sub *Sub) {
	h.mu.Lock()
	t := h.topics[sub.key]
	if _, ok := t.subsOf()[sub]; !ok {
		h.mu.Unlock()
		return
	}
	delete(t.subs, sub)
	var ended *run
	if len(t.subs) == 0 {
		delete(h.topics, sub.key)
		r := h.run
		if len(h.topics) == 0 {
			r.stopped = true
			h.run, ended = nil, r
		} else {
			r.ops = append(r.ops, op{key: sub.key})
		}
		notify(r.wake)
	}
	h.mu.Unlock()
	if ended != nil {
		<-ended.done
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
	var subs []*Sub
	for _, t := range h.topics {
		for s := range t.subs {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

// ConnID returns the Redis client ID of the subscriber connection, or 0. It
// is for fault tests, which kill that connection. (In RESP2 rueidis carries
// pub/sub on a second connection, which this ID does not name.)
func (h *Hub) ConnID() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run == nil {
		return 0
	}
	return h.run.clientID
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// start begins a run. It holds h.mu.
func (h *Hub) start() *run {
	r := &run{hub: h, done: make(chan struct{}), wake: make(chan struct{}, 1)}
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
	for {
		if conn != nil {
			conn.Close()
		}
		var connErr <-chan error
		var err error
		conn, connErr, err = r.connect(ctx)
		if err != nil {
			h.log.Warn("synckairos: pub/sub connection failed; retrying", "err", err, "retry_in", wait)
			r.failUnconfirmed(fmt.Errorf("pub/sub connection: %w", err))
			if !r.sleep(wait) {
				return
			}
			wait = min(2*wait, reconnectMax)
			continue
		}
		wait = reconnectMin
		if !r.serve(ctx, connErr) {
			return
		}
	}
}

// connect dedicates a connection, installs the hooks and subscribes every
// topic on it.
func (r *run) connect(ctx context.Context) (rueidis.DedicatedClient, <-chan error, error) {
	h := r.hub
	client, _ := h.client.Dedicate() // released by client.Close
	h.mu.Lock()
	r.gen++
	gen := r.gen
	h.mu.Unlock()
	connErr := client.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage:      func(m rueidis.PubSubMessage) { r.onMessage(gen, m) },
		OnSubscription: func(s rueidis.PubSubSubscription) { r.onSubscription(gen, s) },
	})
	// CLIENT ID checks the connection and names it for fault tests; a
	// server without the command (miniredis) leaves the ID at 0.
	id, err := client.Do(ctx, client.B().ClientId().Build()).AsInt64()
	if _, refused := rueidis.IsRedisErr(err); err != nil && !refused {
		return client, nil, err
	}

	h.mu.Lock()
	r.client, r.clientID = client, id
	r.sent, r.acked = make(map[topicKey]int), make(map[topicKey]int)
	r.ops = r.ops[:0] // every topic is subscribed below
	var channels, patterns []string
	for key, t := range h.topics {
		r.sent[key]++
		t.want = r.sent[key]
		if key.kind == Pattern {
			patterns = append(patterns, key.name)
		} else {
			channels = append(channels, key.name)
		}
	}
	h.mu.Unlock()

	if len(channels) > 0 {
		if err := client.Do(ctx, client.B().Subscribe().Channel(channels...).Build()).Error(); err != nil {
			return client, nil, err
		}
	}
	if len(patterns) > 0 {
		if err := client.Do(ctx, client.B().Psubscribe().Pattern(patterns...).Build()).Error(); err != nil {
			return client, nil, err
		}
	}
	return client, connErr, nil
}

// serve sends the queued (un)subscribes until the connection fails (true:
// reconnect) or the run is stopped (false).
func (r *run) serve(ctx context.Context, connErr <-chan error) bool {
	h := r.hub
	for {
		select {
		case err := <-connErr:
			h.mu.Lock()
			r.client = nil
			stopped := r.stopped
			h.mu.Unlock()
			if stopped {
				return false
			}
			h.log.Warn("synckairos: pub/sub connection lost; resubscribing", "err", err)
			return true
		case <-r.wake:
		}
		h.mu.Lock()
		if r.stopped {
			h.mu.Unlock()
			return false
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
	t := h.topics[o.key]
	if o.subscribe == (t == nil) {
		// Unsubscribed again before its SUBSCRIBE went out, or subscribed
		// again before its UNSUBSCRIBE: the later op decides.
		h.mu.Unlock()
		return
	}
	var cmd rueidis.Completed
	switch {
	case o.subscribe && o.key.kind == Pattern:
		cmd = client.B().Psubscribe().Pattern(o.key.name).Build()
	case o.subscribe:
		cmd = client.B().Subscribe().Channel(o.key.name).Build()
	case o.key.kind == Pattern:
		cmd = client.B().Punsubscribe().Pattern(o.key.name).Build()
	default:
		cmd = client.B().Unsubscribe().Channel(o.key.name).Build()
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
	if _, isRedis := rueidis.IsRedisErr(err); isRedis {
		// Refused by the server (an ACL, say): retrying will not help.
		h.mu.Lock()
		if t := h.topics[o.key]; t != nil && t.confirmed == 0 && t.err == nil {
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
	for _, t := range h.topics {
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
	return r.hub.run == r && r.gen == gen && !r.stopped
}

// onMessage runs on the connection's reader: it only hands the message over.
func (r *run) onMessage(gen uint64, m rueidis.PubSubMessage) {
	key := topicKey{Channel, m.Channel}
	if m.Pattern != "" {
		key = topicKey{Pattern, m.Pattern}
	}
	h := r.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if !r.current(gen) {
		return
	}
	for s := range h.topics[key].subsOf() {
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
	t := h.topics[key]
	if t == nil || r.acked[key] < t.want || t.confirmed == gen {
		return
	}
	if t.confirmed == 0 {
		if t.err == nil {
			close(t.ready)
		}
	} else {
		// Subscribed again on a new connection: whatever was published in
		// between is gone.
		for sub := range t.subs {
			sub.markResync()
		}
	}
	t.confirmed = gen
}
