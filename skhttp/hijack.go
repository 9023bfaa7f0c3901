package skhttp

import (
	"context"
	"net"
	"sync"
	"time"
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
	f    *fleet
	conn net.Conn
	feed *Feed

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
	w.feed.watch.Notify(w.ready)
	if w.feed.watch.Pending() {
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

// watchers returns the watchers of the fleet now.
func (f *fleet) watchers() []*watcher {
	f.mu.Lock()
	defer f.mu.Unlock()
	all := make([]*watcher, 0, len(f.all))
	for w := range f.all {
		all = append(all, w)
	}
	return all
}

// closeAll closes every watcher, for StreamHandler.Close.
func (f *fleet) closeAll() {
	for _, w := range f.watchers() {
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
		for _, w := range f.watchers() {
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
	if !w.drain() {
		w.close()
		return
	}
	w.mu.Lock()
	ping := w.ping
	w.ping = false
	w.mu.Unlock()
	if ping && w.put([]byte(": ping\n\n")) != nil {
		w.close()
		return
	}
	w.mu.Lock()
	w.queued = false
	again := w.ping // a heartbeat asked for while it was being written
	w.mu.Unlock()
	// (drain left nothing in the feed itself: a change since is in its
	// Watch.)
	if again || w.feed.watch.Pending() {
		w.ready()
	}
}

// drain writes the events the feed has now; false ends the stream.
func (w *watcher) drain() bool {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), w.f.h.o.WriteTimeout)
		ev, ok, err := w.feed.next(ctx, false)
		cancel()
		if err != nil || !ok {
			return err == nil
		}
		b, err := sse(ev)
		if err != nil || w.put(b) != nil || ev.Event == EventDeleted {
			return false
		}
	}
}

// put writes b within the write timeout.
func (w *watcher) put(b []byte) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.f.h.o.WriteTimeout))
	_, err := w.conn.Write(b)
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
	w.feed.Close()
	w.conn.Close()
	w.f.remove(w)
}
