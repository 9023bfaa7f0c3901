// Package keylock serializes work per key within one process.
package keylock

import (
	"context"
	"errors"
	"runtime"
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
	sem  chan struct{} // holds a token while locked
	refs int           // holders and waiters
	// owner is, while the holder is in Guard, its identity: the ID of the
	// OS thread it is locked to (byThread), or its goroutine ID; else 0.
	owner    uint64
	byThread bool
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
	} else if e.owner != 0 && e.owner == self(e.byThread) {
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
// itself. (A Lock from another goroutine that fn waits for is a deadlock it
// cannot tell.)
//
// Go names goroutines only in stack traces, which take a few microseconds
// to read. On Linux, Guard instead locks the goroutine to its OS thread
// while fn runs (runtime.LockOSThread) and knows it by the thread, for
// about 0.25 µs; as a callback that blocks keeps its thread, at most
// MaxPinned Guards of the process do so at once, and the others read their
// goroutine's ID.
func (h *Held) Guard(fn func()) {
	g, byThread := pin()
	h.m.mu.Lock()
	h.e.owner, h.e.byThread = g, byThread
	h.m.mu.Unlock()
	defer func() {
		h.m.mu.Lock()
		h.e.owner, h.e.byThread = 0, false
		h.m.mu.Unlock()
		if byThread {
			unpin()
		}
	}()
	fn()
}

// MaxPinned bounds the Guards that lock their goroutine to its thread at
// once, in the whole process: the extra threads that blocked callbacks can
// hold.
const MaxPinned = 64

var pinned = make(chan struct{}, MaxPinned)

// goid returns the calling goroutine's ID, from the first line of its stack
// trace ("goroutine 42 [running]:").
func goid() uint64 {
	var buf [32]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
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
