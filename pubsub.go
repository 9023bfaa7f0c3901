package synckairos

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/pubsub"
)

// ChangeKind says what a SessionEvent reports.
type ChangeKind string

// The kinds of SessionEvent.
const (
	ChangeCreated ChangeKind = "created" // a session was created, at Version 1
	ChangeUpdated ChangeKind = "updated" // a session was changed
	ChangeDeleted ChangeKind = "deleted" // a session was deleted; State is nil
	// ChangeRestored: a lost session was written back at Version by
	// RestoreSession.
	ChangeRestored ChangeKind = "restored"
	// ChangeResync says that events may have been lost: the subscription
	// overflowed, or its connection was replaced. SessionID and State are
	// empty. Re-read every session the application holds.
	ChangeResync ChangeKind = "resync"
)

// The names the kinds of SessionEvent had, which shared their Event prefix
// with the audit event types (EventSessionCreated, …).
//
// Deprecated: use ChangeKind and the Change constants.
type EventKind = ChangeKind

// Deprecated: use ChangeCreated, ChangeUpdated, ChangeDeleted,
// ChangeRestored and ChangeResync.
const (
	EventCreated  = ChangeCreated
	EventUpdated  = ChangeUpdated
	EventDeleted  = ChangeDeleted
	EventRestored = ChangeRestored
	EventResync   = ChangeResync
)

// SessionEvent is one committed change of a session, as announced by the
// write that committed it.
type SessionEvent struct {
	Kind      ChangeKind
	SessionID string
	// Life is the life of the session ID the change belongs to (State.Life).
	Life int64
	// Version is the version the change committed. A deletion carries the
	// version after the last stored one.
	Version int64
	// State is the stored state at Version; nil for ChangeDeleted and
	// ChangeResync.
	State *State
	// Transition is what the change did: its type (the audit event type,
	// such as EventCycleSwitched or EventParticipantExpired) and facts. It
	// is State.LastTransition, or for ChangeDeleted a Transition of type
	// EventSessionDeleted; nil for ChangeResync.
	Transition *Transition
}

// Broadcast is one application message published to a session's channel.
type Broadcast struct {
	SessionID string
	Payload   []byte
	// Resync says that broadcasts may have been lost, as ChangeResync does;
	// SessionID and Payload are then empty.
	Resync bool
}

// MaxBroadcastBytes bounds the payload of one broadcast.
const MaxBroadcastBytes = 1 << 20

// Subscription is a running subscription. It ends when the context given to
// the Subscribe call is done or Close is called; its goroutine ends with it.
type Subscription struct {
	sub *pubsub.Sub
}

// Close ends the subscription and returns once its goroutine has ended,
// after the callback call in progress, if any, has returned. Close must not
// be called from the subscription's own callback, which it would wait for:
// cancel the Subscribe context instead. Close is idempotent.
func (s *Subscription) Close() error {
	s.sub.Close()
	return nil
}

// Done is closed when the subscription has ended.
func (s *Subscription) Done() <-chan struct{} { return s.sub.Done() }

// SubscribeToUpdates calls fn with every change committed from now on, by any
// instance, to any session under the Manager's key prefix. It returns once
// Redis has confirmed the subscription, so a change committed after it
// returns is delivered.
//
// fn runs on a goroutine of the subscription, one event at a time, in the
// order Redis delivered them; it never runs on the Redis connection, and a
// slow fn never stalls the client. Up to Config.SubscriptionBuffer events
// wait for fn; past that the backlog is dropped and fn gets one ChangeResync
// instead. A lost connection is re-established by itself, and fn then gets
// ChangeResync: changes published while it was down are gone. Messages on the
// channel that do not decode are logged and skipped.
func (m *Manager) SubscribeToUpdates(ctx context.Context, fn func(SessionEvent)) (*Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("synckairos: SubscribeToUpdates: nil callback")
	}
	deliver := func(msg rueidis.PubSubMessage) {
		ev, err := decodeEvent(msg.Message)
		if err != nil {
			m.cfg.Logger.Warn("synckairos: skipping a malformed message", "channel", msg.Channel, "err", err)
			return
		}
		fn(ev)
	}
	resync := func() { fn(SessionEvent{Kind: ChangeResync}) }
	if !m.store.Sharded() {
		return m.subscribe(ctx, deliver, resync, pubsub.Topic{Kind: pubsub.Channel, Name: m.layout.Updates()})
	}
	// On Redis Cluster every partition publishes on its own sharded channel.
	topics := make([]pubsub.Topic, m.layout.Partitions())
	for p := range topics {
		topics[p] = pubsub.Topic{Kind: pubsub.Sharded, Name: m.layout.PartitionUpdates(p), Shard: m.layout.Tag(p)}
	}
	return m.subscribe(ctx, deliver, resync, topics...)
}

// BroadcastToSession publishes payload on the session's broadcast channel,
// for the subscribers of SubscribeToBroadcasts and SubscribeToSessionBroadcasts on
// every instance. Redis pub/sub delivers it to those subscribed now, at most
// once; nothing is stored. The session need not exist.
func (m *Manager) BroadcastToSession(ctx context.Context, sessionID string, payload []byte) (err error) {
	if err := m.check(); err != nil {
		return err
	}
	if err := validateID("session_id", sessionID); err != nil {
		return err
	}
	ctx, c := m.tel.start(ctx, "BroadcastToSession", sessionID, false)
	defer c.end(&err)
	if len(payload) > MaxBroadcastBytes {
		return invalid("payload", "%d bytes, want at most %d", len(payload), MaxBroadcastBytes)
	}
	if err := m.store.Broadcast(ctx, sessionID, payload); err != nil {
		return m.storeError("broadcast to", sessionID, err)
	}
	return nil
}

// SubscribeToBroadcasts calls fn with every broadcast to any session under
// the Manager's key prefix (a pattern subscription to <prefix>ws:*). Delivery
// works as with SubscribeToUpdates; a lost backlog or connection gives one
// Broadcast with Resync set.
func (m *Manager) SubscribeToBroadcasts(ctx context.Context, fn func(Broadcast)) (*Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("synckairos: SubscribeToBroadcasts: nil callback")
	}
	channelPrefix := m.layout.Broadcast("")
	deliver := func(msg rueidis.PubSubMessage) {
		fn(Broadcast{SessionID: strings.TrimPrefix(msg.Channel, channelPrefix), Payload: []byte(msg.Message)})
	}
	resync := func() { fn(Broadcast{Resync: true}) }
	return m.subscribe(ctx, deliver, resync, pubsub.Topic{Kind: pubsub.Pattern, Name: globEscape(channelPrefix) + "*"})
}

// SubscribeToSessionBroadcasts calls fn with every broadcast to one session. Delivery
// works as with SubscribeToBroadcasts.
func (m *Manager) SubscribeToSessionBroadcasts(ctx context.Context, sessionID string, fn func(Broadcast)) (*Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("synckairos: SubscribeToSessionBroadcasts: nil callback")
	}
	if err := validateID("session_id", sessionID); err != nil {
		return nil, err
	}
	deliver := func(msg rueidis.PubSubMessage) {
		fn(Broadcast{SessionID: sessionID, Payload: []byte(msg.Message)})
	}
	resync := func() { fn(Broadcast{Resync: true}) }
	topic := pubsub.Topic{Kind: pubsub.Channel, Name: m.layout.Broadcast(sessionID)}
	if m.store.Sharded() {
		topic = pubsub.Topic{Kind: pubsub.Sharded, Name: m.layout.SessionBroadcast(sessionID), Shard: m.layout.Tag(m.layout.Partition(sessionID))}
	}
	return m.subscribe(ctx, deliver, resync, topic)
}

func (m *Manager) subscribe(ctx context.Context, deliver func(rueidis.PubSubMessage), resync func(), topics ...pubsub.Topic) (*Subscription, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub := m.hub.NewSub(m.cfg.SubscriptionBuffer, deliver, resync)
	go sub.Run(ctx)
	if err := m.hub.Subscribe(ctx, sub, topics...); err != nil {
		sub.Close()
		if err == pubsub.ErrClosed {
			return nil, ErrClosed
		}
		name := topics[0].Name
		if len(topics) > 1 {
			name = fmt.Sprintf("%s and %d more channels", name, len(topics)-1)
		}
		return nil, fmt.Errorf("synckairos: subscribe to %s: %w", name, err)
	}
	return &Subscription{sub: sub}, nil
}

// globEscape escapes the glob characters of s for a pattern (PSUBSCRIBE,
// SCAN MATCH), so
// that a key prefix is matched literally.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// decodeEvent decodes a message of the updates channel, as the write script
// builds it.
func decodeEvent(msg string) (SessionEvent, error) {
	d := stringDecoder(msg)
	var ev SessionEvent
	var kind string
	var err error
	if strings.HasPrefix(msg, flatStart) {
		// Format 3: an update's message is its stored state.
		kind = string(ChangeUpdated)
		if ev.State, err = d.blockState(); err == nil {
			ev.SessionID, ev.Version, ev.Life = ev.State.SessionID, ev.State.Version, ev.State.Life
		}
	} else {
		err = decodeEnvelope(&d, &ev, &kind)
	}
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return SessionEvent{}, err
	}
	ev.Kind = ChangeKind(kind)
	switch {
	case ev.Kind != ChangeCreated && ev.Kind != ChangeUpdated && ev.Kind != ChangeDeleted && ev.Kind != ChangeRestored:
		return SessionEvent{}, fmt.Errorf("unknown kind %q", kind)
	case ev.SessionID == "" || ev.Version < 1:
		return SessionEvent{}, fmt.Errorf("no session ID or version")
	case ev.Kind != ChangeDeleted && (ev.State == nil || ev.State.SessionID != ev.SessionID):
		return SessionEvent{}, fmt.Errorf("%s event without the state of session %q", kind, ev.SessionID)
	}
	if ev.State != nil {
		ev.State.Version = ev.Version
		ev.Transition = ev.State.LastTransition
	}
	if ev.Transition == nil {
		// A deletion, or a state written before transitions were recorded.
		typ := EventSessionUpdated
		switch ev.Kind {
		case ChangeCreated:
			typ = EventSessionCreated
		case ChangeDeleted:
			typ = EventSessionDeleted
		}
		ev.Transition = &Transition{Type: typ, Version: ev.Version}
	}
	return ev, nil
}

// decodeEnvelope reads a message of format 1 or 2: the change's kind,
// session, version and life, and the state under "state".
func decodeEnvelope(d *decoder, ev *SessionEvent, kind *string) error {
	return d.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "kind":
			*kind, err = d.string()
		case "session_id":
			ev.SessionID, err = d.string()
		case "version":
			ev.Version, err = d.int()
		case "life":
			ev.Life, err = d.int()
		case "state":
			if d.null() {
				return nil
			}
			ev.State, err = d.blockState()
		default:
			err = d.skip()
		}
		return err
	})
}

// SubscribeToSession is SubscribeToSessionBroadcasts: it delivers the
// session's broadcasts only, not its changes (WatchSession has those).
//
// Deprecated: use SubscribeToSessionBroadcasts, whose name says what it
// delivers.
func (m *Manager) SubscribeToSession(ctx context.Context, sessionID string, fn func(Broadcast)) (*Subscription, error) {
	return m.SubscribeToSessionBroadcasts(ctx, sessionID, fn)
}
