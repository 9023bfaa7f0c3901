package synckairos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// expirerBatch bounds the due sessions taken from one partition per poll,
// and expirerWorkers the expiries applied at once.
const (
	expirerBatch   = 256
	expirerWorkers = 32
)

// RunExpirer applies the expiries of running sessions on time, until ctx is
// done; it then returns ctx's error. Every write of a running session records
// its next deadline in its partition's deadline index, in the same script;
// RunExpirer polls the indexes every Config.ExpirerInterval and applies each
// due expiry through the normal compare-and-set, published and audited like
// any change. Any number of instances may run it: each expiry happens
// exactly once, as the compare-and-set lets one writer win and the others
// then find nothing due.
func (m *Manager) RunExpirer(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	t := time.NewTicker(m.cfg.ExpirerInterval)
	defer t.Stop()
	for {
		if err := m.expireDue(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Logger.Warn("synckairos: expirer poll failed", "err", err)
		}
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

// expireDue applies every expiry due now.
func (m *Manager) expireDue(ctx context.Context) error {
	now, err := m.now(ctx)
	if err != nil {
		return err
	}
	due, err := m.store.Due(ctx, now, expirerBatch)
	if err != nil || len(due) == 0 {
		return err
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(expirerWorkers, len(due)) {
		wg.Go(func() {
			for id := range work {
				if err := m.expireOne(ctx, id); err != nil && ctx.Err() == nil {
					m.cfg.Logger.Warn("synckairos: expiry failed", "session_id", id, "err", err)
				}
			}
		})
	}
	for _, id := range due {
		work <- id
	}
	close(work)
	wg.Wait()
	return nil
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
