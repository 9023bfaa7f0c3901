package synckairos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// expirerBatch bounds the due sessions taken from one partition per poll,
// and expirerWorkers the expiries applied at once by one node's poll.
const (
	expirerBatch   = 256
	expirerWorkers = 32
)

// expirerRegroup is how often the expirer learns again which node serves
// which partition; after a failed poll, it does so sooner, but not more
// often than expirerRegroupAfterFailure.
const (
	expirerRegroup             = 5 * time.Second
	expirerRegroupAfterFailure = 100 * time.Millisecond
)

// RunExpirer applies the expiries of running sessions on time, until ctx is
// done; it then returns ctx's error. Every write of a running session records
// its next deadline in its partition's deadline index, in the same script;
// RunExpirer polls the indexes every Config.ExpirerInterval and applies each
// due expiry through the normal compare-and-set, published and audited like
// any change. Any number of instances may run it: each expiry happens
// exactly once, as the compare-and-set lets one writer win and the others
// then find nothing due.
//
// Partitions are independent: on Redis Cluster the partitions of each master
// are polled on their own, so that one whose node is down or failing over
// (which may hold its poll for up to Config.CallTimeout) delays none of the
// others' expiries.
func (m *Manager) RunExpirer(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	e := &expirer{m: m, busy: make(map[int]bool)}
	defer e.wg.Wait()
	t := time.NewTicker(m.cfg.ExpirerInterval)
	defer t.Stop()
	for {
		e.tick(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if m.closed.Load() {
			return ErrClosed
		}
	}
}

// expirer is one RunExpirer: the partitions grouped by node, and those whose
// poll is under way.
type expirer struct {
	m          *Manager
	mu         sync.Mutex
	groups     [][]int // the partitions by node; nil until first known
	groupedAt  time.Time
	regrouping bool         // a NodeGroups call is under way
	busy       map[int]bool // partitions being polled
	stale      bool         // a poll failed: group again
	wg         sync.WaitGroup
}

// tick starts a poll of every node's partitions not being polled already.
func (e *expirer) tick(ctx context.Context) {
	m := e.m
	e.mu.Lock()
	if e.groups == nil {
		e.groups = [][]int{allPartitions(m.layout.Partitions())}
	}
	since := time.Since(e.groupedAt)
	if !e.regrouping && (e.groupedAt.IsZero() || since >= expirerRegroup || (e.stale && since >= expirerRegroupAfterFailure)) {
		// Apart from the polls: the node asked may be the one that is down.
		e.regrouping, e.stale = true, false
		e.wg.Go(func() {
			groups, err := m.store.NodeGroups(ctx)
			e.mu.Lock()
			defer e.mu.Unlock()
			e.regrouping = false
			if err != nil {
				e.stale, e.groupedAt = true, time.Now() // try again, not at once
				return
			}
			e.groups, e.groupedAt = groups, time.Now()
		})
	}
	groups := e.groups
	e.mu.Unlock()
	now, err := m.now(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Warn("synckairos: expirer poll failed", "err", err)
		}
		return
	}
	for _, g := range groups {
		e.mu.Lock()
		parts := make([]int, 0, len(g))
		for _, p := range g {
			if !e.busy[p] {
				e.busy[p] = true
				parts = append(parts, p)
			}
		}
		e.mu.Unlock()
		if len(parts) == 0 {
			continue
		}
		e.wg.Go(func() { e.poll(ctx, parts, now) })
	}
}

// poll applies every expiry due at now in partitions, which one node serves.
func (e *expirer) poll(ctx context.Context, parts []int, now time.Time) {
	defer func() {
		e.mu.Lock()
		for _, p := range parts {
			delete(e.busy, p)
		}
		e.mu.Unlock()
	}()
	var due []string
	for _, d := range e.m.store.DueIn(ctx, parts, now, expirerBatch, e.m.cfg.CallTimeout) {
		if d.Err != nil {
			if ctx.Err() == nil {
				e.m.cfg.Logger.Warn("synckairos: expirer poll failed", "partition", d.Partition, "err", d.Err)
				e.mu.Lock()
				e.stale = true
				e.mu.Unlock()
			}
			continue
		}
		due = append(due, d.IDs...)
	}
	e.expire(ctx, due)
}

// expire applies the expiries of the sessions due, a few at once.
func (e *expirer) expire(ctx context.Context, due []string) {
	if len(due) == 0 {
		return
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(expirerWorkers, len(due)) {
		wg.Go(func() {
			for id := range work {
				if err := e.m.expireOne(ctx, id); err != nil && ctx.Err() == nil {
					e.m.cfg.Logger.Warn("synckairos: expiry failed", "session_id", id, "err", err)
				}
			}
		})
	}
	for _, id := range due {
		work <- id
	}
	close(work)
	wg.Wait()
}

func allPartitions(n int) []int {
	all := make([]int, n)
	for p := range all {
		all[p] = p
	}
	return all
}

// expireOne applies a session's due expiries; a session no longer due (it
// switched, paused or was expired by another instance) is left alone.
func (m *Manager) expireOne(ctx context.Context, id string) error {
	_, _, err := m.mutate(ctx, id, false, func(s *State, now time.Time) (bool, error) { return s.expireDue(now), nil })
	if errors.Is(err, ErrSessionNotFound) {
		// Gone (deleted, or expired by its TTL): drop its index entry.
		if err := m.store.Forget(ctx, id); err != nil {
			return fmt.Errorf("synckairos: forget deadline of %q: %w", id, err)
		}
		return nil
	}
	return err
}
