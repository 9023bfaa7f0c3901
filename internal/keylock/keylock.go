// Package keylock serializes work per key within one process.
package keylock

import (
	"context"
	"sync"
)

// Map holds one lock per key in use; a key's entry exists only while some
// caller holds or awaits its lock.
type Map struct {
	mu    sync.Mutex
	locks map[string]*entry
}

type entry struct {
	sem  chan struct{} // holds a token while locked
	refs int           // holders and waiters
}

// Lock locks key, waiting until it is free or ctx is done. On success the
// caller must call the returned unlock exactly once.
func (m *Map) Lock(ctx context.Context, key string) (unlock func(), err error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]*entry)
	}
	e := m.locks[key]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		m.locks[key] = e
	}
	e.refs++
	m.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
		return func() {
			<-e.sem
			m.release(key, e)
		}, nil
	case <-ctx.Done():
		m.release(key, e)
		return nil, ctx.Err()
	}
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
