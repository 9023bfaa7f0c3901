// Package keylock serializes work per key within one process.
package keylock

import (
	"context"
	"errors"
	"sync"
)

// ErrHeldByCaller is returned by Lock when the calling goroutine holds the
// key's lock and is inside Held.Guard: waiting would never end.
var ErrHeldByCaller = errors.New("keylock: lock already held by this goroutine")

// Map holds one lock per key in use; a key's entry exists only while some
// caller holds or awaits its lock.
type Map struct {
	mu    sync.Mutex
	locks map[string]*entry
}

type entry struct {
	sem   chan struct{} // holds a token while locked
	refs  int           // holders and waiters
	owner uint64        // while the holder is in Guard: its identity (see pin), else 0
}

// Held is a lock held.
type Held struct {
	m   *Map
	key string
	e   *entry
}

// Lock locks key, waiting until it is free or ctx is done. On success the
// caller must call Unlock exactly once. A goroutine that holds key's lock
// and is inside its Guard gets ErrHeldByCaller at once.
func (m *Map) Lock(ctx context.Context, key string) (*Held, error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]*entry)
	}
	e := m.locks[key]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		m.locks[key] = e
	} else if e.owner != 0 && e.owner == self() {
		m.mu.Unlock()
		return nil, ErrHeldByCaller
	}
	e.refs++
	m.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
		return &Held{m: m, key: key, e: e}, nil
	case <-ctx.Done():
		m.release(key, e)
		return nil, ctx.Err()
	}
}

// Unlock releases the lock.
func (h *Held) Unlock() {
	<-h.e.sem
	h.m.release(h.key, h.e)
}

// Guard runs fn, code that might call back, such that a Lock of the key
// from fn's goroutine fails with ErrHeldByCaller instead of waiting for
// itself. On Linux the goroutine is locked to its OS thread while fn runs
// (runtime.LockOSThread), which is how it is recognized, for about 0.2 µs;
// elsewhere its goroutine ID is read from a stack trace, for a few
// microseconds.
func (h *Held) Guard(fn func()) {
	g := pin()
	h.m.mu.Lock()
	h.e.owner = g
	h.m.mu.Unlock()
	defer func() {
		h.m.mu.Lock()
		h.e.owner = 0
		h.m.mu.Unlock()
		unpin()
	}()
	fn()
}

func (m *Map) release(key string, e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(m.locks, key)
	}
}

// Len returns the number of keys held or awaited.
func (m *Map) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.locks)
}
