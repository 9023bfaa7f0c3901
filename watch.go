package synckairos

import (
	"context"
	"sync"
)

// DefaultWatchBuffer is the number of changes a Watch holds for its reader
// by default.
const DefaultWatchBuffer = 16

// WatchEvent is a change of a watched session.
type WatchEvent struct {
	// State is the session's state after the change; nil when the session
	// was deleted, and on a resync. It is shared with the session's other
	// watchers: read it, do not change it.
	State *State
	// Deleted says the session was deleted.
	Deleted bool
	// Life and Version are the life of the session the change belongs to
	// and the version it committed (for a deletion, the version after the
	// last stored one); 0 on a resync. Lives only grow: a change of an
	// earlier life than one already seen is stale.
	Life, Version int64
	// Resync says changes may have been missed (the reader fell behind the
	// buffer, or the Manager's subscription reconnected): read the session
	// again (Manager.GetSession).
	Resync bool
}

// Watch is the changes of one session, for one reader. Many Watches of
// many sessions share the Manager's one subscription to the changes: a
// Watch is a small queue, no connection and no goroutine of its own.
type Watch struct {
	hub    *watchHub
	id     string
	max    int
	mu     sync.Mutex
	queue  []WatchEvent
	resync bool
	closed bool
	ready  chan struct{} // something to read
	stop   func() bool   // stops the close at the end of the context
	notify func()        // called when there is something to read, or on Close
}

// WatchSession starts watching a session's changes; read them with Next.
// A change committed after WatchSession returned is never missed: it
// reaches Next, or Next says to resync. buffer bounds the changes held for
// a reader that falls behind (0: DefaultWatchBuffer); beyond, they are
// dropped for one resync. Close the Watch when done; it also ends with
// ctx.
func (m *Manager) WatchSession(ctx context.Context, sessionID string, buffer int) (*Watch, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if err := validateID("session_id", sessionID); err != nil {
		return nil, err
	}
	if buffer <= 0 {
		buffer = DefaultWatchBuffer
	}
	w := &Watch{hub: &m.watches, id: sessionID, max: buffer, ready: make(chan struct{}, 1)}
	if err := m.watches.add(ctx, m, w); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, w.Close)
	w.mu.Lock()
	w.stop = stop
	w.mu.Unlock()
	return w, nil
}

// Next returns the session's next change, waiting for it until ctx is
// done. After Close it returns ErrClosed.
func (w *Watch) Next(ctx context.Context) (WatchEvent, error) {
	for {
		w.mu.Lock()
		switch {
		case w.closed:
			w.mu.Unlock()
			return WatchEvent{}, ErrClosed
		case w.resync:
			w.resync, w.queue = false, w.queue[:0]
			w.mu.Unlock()
			return WatchEvent{Resync: true}, nil
		case len(w.queue) > 0:
			ev := w.queue[0]
			w.queue[0] = WatchEvent{}
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return ev, nil
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return WatchEvent{}, ctx.Err()
		case <-w.ready:
		}
	}
}

// TryNext returns the session's next change if one is waiting, without
// waiting; ok is false when none is. After Close it returns ErrClosed.
func (w *Watch) TryNext() (ev WatchEvent, ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return WatchEvent{}, false, ErrClosed
	case w.resync:
		w.resync, w.queue = false, w.queue[:0]
		return WatchEvent{Resync: true}, true, nil
	case len(w.queue) > 0:
		ev = w.queue[0]
		w.queue[0] = WatchEvent{}
		w.queue = w.queue[1:]
		return ev, true, nil
	}
	return WatchEvent{}, false, nil
}

// Pending reports whether TryNext has something to return (a change, a
// resync, or ErrClosed).
func (w *Watch) Pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed || w.resync || len(w.queue) > 0
}

// Notify sets f to be called, with no lock held, whenever the Watch gets
// something to read and when it closes: for a server that reads many
// Watches with TryNext from a few goroutines instead of a goroutine each.
// f must not block.
func (w *Watch) Notify(f func()) {
	w.mu.Lock()
	w.notify = f
	w.mu.Unlock()
}

// Close stops the Watch. It is idempotent.
func (w *Watch) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.queue = nil
	stop, notify := w.stop, w.notify
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	w.hub.remove(w)
	w.signal()
	if notify != nil {
		notify()
	}
}

func (w *Watch) push(ev WatchEvent) {
	w.mu.Lock()
	switch {
	case w.closed:
	case ev.Resync || len(w.queue) >= w.max:
		w.resync, w.queue = true, w.queue[:0]
	default:
		w.queue = append(w.queue, ev)
	}
	notify := w.notify
	w.mu.Unlock()
	w.signal()
	if notify != nil {
		notify()
	}
}

func (w *Watch) signal() {
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// watchHub is the Manager's watches, by session, fed by one subscription
// to the changes while any watch runs.
type watchHub struct {
	mu      sync.Mutex
	byID    map[string]map[*Watch]struct{}
	count   int
	sub     *Subscription
	stopSub context.CancelFunc
}

func (h *watchHub) add(ctx context.Context, m *Manager, w *Watch) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sub == nil {
		subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		sub, err := m.SubscribeToUpdates(subCtx, h.deliver)
		if err != nil {
			cancel()
			return err
		}
		h.sub, h.stopSub = sub, cancel
	}
	if h.byID == nil {
		h.byID = map[string]map[*Watch]struct{}{}
	}
	set := h.byID[w.id]
	if set == nil {
		set = map[*Watch]struct{}{}
		h.byID[w.id] = set
	}
	set[w] = struct{}{}
	h.count++
	return nil
}

func (h *watchHub) remove(w *Watch) {
	h.mu.Lock()
	set := h.byID[w.id]
	if _, ok := set[w]; !ok {
		h.mu.Unlock()
		return
	}
	delete(set, w)
	if len(set) == 0 {
		delete(h.byID, w.id)
	}
	h.count--
	var sub *Subscription
	var stop context.CancelFunc
	if h.count == 0 && h.sub != nil {
		sub, stop, h.sub, h.stopSub = h.sub, h.stopSub, nil, nil
	}
	h.mu.Unlock()
	if sub != nil {
		stop()
		sub.Close()
	}
}

// deliver hands a change to the watches of its session; a resync to all.
func (h *watchHub) deliver(ev SessionEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev.Kind == ChangeResync {
		for _, set := range h.byID {
			for w := range set {
				w.push(WatchEvent{Resync: true})
			}
		}
		return
	}
	for w := range h.byID[ev.SessionID] {
		w.push(WatchEvent{State: ev.State, Deleted: ev.Kind == ChangeDeleted, Life: ev.Life, Version: ev.Version})
	}
}

// close ends every watch, for Manager.Close.
func (h *watchHub) close() {
	h.mu.Lock()
	var all []*Watch
	for _, set := range h.byID {
		for w := range set {
			all = append(all, w)
		}
	}
	h.mu.Unlock()
	for _, w := range all {
		w.Close()
	}
}

// watchers returns the number of open watches.
func (h *watchHub) watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}
