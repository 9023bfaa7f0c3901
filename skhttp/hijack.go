package skhttp

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/synckairos/synckairos"
)

// The streams of HTTP/1.x watchers leave net/http once their headers are
// written (Hijack): a watcher is then its connection, its Watch and a few
// fields, and a pool of goroutines, started when there is something to
// write and ending when there is not, writes every watcher's events, so
// that a watcher costs no buffer and no goroutine of its own while it
// waits but the one blocked reading its connection, which sees the client
// go. (net/http holds two goroutines and two 4 KiB buffers for each open
// request.)

// maxWriters bounds the goroutines writing to hijacked watchers at once: a
// watcher that does not read holds one for up to WriteTimeout, and the
// others go on with the rest.
const maxWriters = 1024

// fleet is the hijacked watchers of one Stream handler.
type fleet struct {
	h       *stream
	mu      sync.Mutex
	all     map[*watcher]struct{}
	queue   []*watcher
	writers int
	beat    chan struct{} // closed to stop the heartbeat, when no watcher is left
}

// watcher is one hijacked stream.
type watcher struct {
	f        *fleet
	id       string
	conn     net.Conn
	watch    *synckairos.Watch
	sent     int64
	sentLife int64

	mu     sync.Mutex
	queued bool // in the queue, or being written
	ping   bool // a heartbeat is due
	done   bool
}

func (f *fleet) add(w *watcher) {
	f.mu.Lock()
	if f.all == nil {
		f.all = map[*watcher]struct{}{}
	}
	f.all[w] = struct{}{}
	if f.beat == nil {
		f.beat = make(chan struct{})
		go f.heartbeat(f.beat)
	}
	f.mu.Unlock()
	w.watch.Notify(w.ready)
	if w.watch.Pending() {
		w.ready()
	}
	// A client says nothing after its request: a read returns when it
	// goes away (or breaks the protocol), and the watcher closes at once.
	go func() {
		var b [1]byte
		_, _ = w.conn.Read(b[:])
		w.close()
	}()
}

// closeAll closes every watcher, for StreamHandler.Close.
func (f *fleet) closeAll() {
	f.mu.Lock()
	all := make([]*watcher, 0, len(f.all))
	for w := range f.all {
		all = append(all, w)
	}
	f.mu.Unlock()
	for _, w := range all {
		w.close()
	}
}

func (f *fleet) remove(w *watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.all, w)
	if len(f.all) == 0 && f.beat != nil {
		close(f.beat)
		f.beat = nil
	}
}

// heartbeat asks every watcher for a comment line every Heartbeat, until
// stop closes.
func (f *fleet) heartbeat(stop chan struct{}) {
	t := time.NewTicker(f.h.o.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		f.mu.Lock()
		all := make([]*watcher, 0, len(f.all))
		for w := range f.all {
			all = append(all, w)
		}
		f.mu.Unlock()
		for _, w := range all {
			w.mu.Lock()
			w.ping = true
			w.mu.Unlock()
			w.ready()
		}
	}
}

// ready queues w to be written, starting a writer when fewer than
// maxWriters run.
func (w *watcher) ready() {
	w.mu.Lock()
	if w.done || w.queued {
		w.mu.Unlock()
		return
	}
	w.queued = true
	w.mu.Unlock()
	f := w.f
	f.mu.Lock()
	f.queue = append(f.queue, w)
	start := f.writers < maxWriters
	if start {
		f.writers++
	}
	f.mu.Unlock()
	if start {
		go f.write()
	}
}

// write writes the queued watchers until none is left.
func (f *fleet) write() {
	for {
		f.mu.Lock()
		if len(f.queue) == 0 {
			f.writers--
			f.mu.Unlock()
			return
		}
		w := f.queue[0]
		f.queue[0] = nil
		f.queue = f.queue[1:]
		f.mu.Unlock()
		w.serve()
	}
}

// serve writes what w has to say, and closes it when it is over.
func (w *watcher) serve() {
	for {
		ev, ok, err := w.watch.TryNext()
		if err != nil {
			w.close()
			return
		}
		if !ok {
			break
		}
		if !w.event(ev) {
			w.close()
			return
		}
	}
	w.mu.Lock()
	ping := w.ping
	w.ping = false
	w.mu.Unlock()
	if ping && w.put(": ping\n\n") != nil {
		w.close()
		return
	}
	w.mu.Lock()
	w.queued = false
	again := w.ping // a heartbeat asked for while it was being written
	w.mu.Unlock()
	if again || w.watch.Pending() { // or a change
		w.ready()
	}
}

// event writes one change; false ends the stream.
func (w *watcher) event(ev synckairos.WatchEvent) bool {
	ctx, cancel := context.WithTimeout(context.Background(), w.f.h.o.WriteTimeout)
	defer cancel()
	m := w.f.h.m
	switch {
	case ev.Resync:
		s, err := m.GetSession(ctx, w.id)
		if errors.Is(err, synckairos.ErrSessionNotFound) {
			_ = w.put("event: deleted\ndata: {}\n\n")
			return false
		}
		return err == nil && w.send(ctx, s) == nil
	case ev.Deleted:
		_ = w.put("event: deleted\ndata: {}\n\n")
		return false
	}
	return w.send(ctx, ev.State) == nil
}

func (w *watcher) send(ctx context.Context, s *synckairos.State) error {
	b, ok, err := view(ctx, w.f.h.m, s, &w.sent, &w.sentLife)
	if err != nil || !ok {
		return err
	}
	return w.put(string(b))
}

// put writes s within the write timeout.
func (w *watcher) put(s string) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.f.h.o.WriteTimeout))
	_, err := w.conn.Write([]byte(s))
	return err
}

func (w *watcher) close() {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return
	}
	w.done = true
	w.mu.Unlock()
	w.watch.Close()
	w.conn.Close()
	w.f.remove(w)
}

// view returns the event of s's view, unless the watcher has it (sent and
// sentLife say what it has), and records it as sent.
func view(ctx context.Context, m *synckairos.Manager, s *synckairos.State, sent, sentLife *int64) ([]byte, bool, error) {
	if s.Version == *sent && (*sentLife < 0 || s.Life == *sentLife) || s.Life == *sentLife && s.Version < *sent {
		return nil, false, nil // the watcher has it, or a newer one
	}
	now, err := m.Now(ctx)
	if err != nil {
		return nil, false, err
	}
	b, err := json.Marshal(s.ViewAt(now))
	if err != nil {
		return nil, false, err
	}
	*sent, *sentLife = s.Version, s.Life
	return []byte("id: " + strconv.FormatInt(s.Version, 10) + "\nevent: view\ndata: " + string(b) + "\n\n"), true, nil
}
