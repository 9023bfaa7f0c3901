package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/synckairos/synckairos"
)

// expiry starts many running sessions whose clocks run out spread over the
// run's duration, runs one expirer on a Manager of its own, and measures
// from each deadline to the expired event reaching a subscriber on a third
// client, on the Redis-calibrated clock of the subscriber's Manager.
func (b *bench) expiry(ctx context.Context) (*Result, error) {
	n := cmp.Or(b.o.sessions, 10000)
	m, err := b.manager(b.client, synckairos.Config{})
	if err != nil {
		return nil, err
	}
	defer m.Close()

	// The expirer and the subscriber each have a client of their own.
	expClient, err := dial(ctx, b.o.redisURL, b.o.flushDelay, b.o.multiplex)
	if err != nil {
		return nil, err
	}
	defer expClient.Close()
	expirer, err := b.manager(expClient, synckairos.Config{})
	if err != nil {
		return nil, err
	}
	defer expirer.Close()
	subClient, err := dial(ctx, b.o.redisURL, b.o.flushDelay, b.o.multiplex)
	if err != nil {
		return nil, err
	}
	defer subClient.Close()
	listener, err := b.manager(subClient, synckairos.Config{SubscriptionBuffer: 1 << 16})
	if err != nil {
		return nil, err
	}
	defer listener.Close()

	var mu sync.Mutex
	var late Hist
	var resyncs int64
	expired := make(map[string]bool, n)
	sub, err := listener.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
		now, err := listener.Now(ctx)
		mu.Lock()
		defer mu.Unlock()
		if ev.Kind == synckairos.ChangeResync {
			resyncs++
			return
		}
		if err != nil || ev.State == nil || ev.State.Status != synckairos.StatusExpired || ev.State.SessionCompletedAt == nil {
			return
		}
		expired[ev.SessionID] = true
		late.Record(now.Sub(*ev.State.SessionCompletedAt))
	})
	if err != nil {
		return nil, err
	}
	defer sub.Close()

	// The reference: raw GETs, one at a time, for a second.
	ref, size, err := b.rawGet(ctx, newState("ref", b.o.participants, time.Hour))
	if err != nil {
		return nil, err
	}
	refM := &measured{name: fmt.Sprintf("raw GET (%d B)", size)}
	runRound(ctx, time.Second, 1, refM, ref, &progress{}, nil)

	expCtx, stopExpirer := context.WithCancel(ctx)
	expDone := make(chan struct{})
	go func() { defer close(expDone); expirer.RunExpirer(expCtx) }()
	defer func() { stopExpirer(); <-expDone }()

	// Clocks of 2 s plus a share of the duration: the deadlines spread
	// over the run, the first while the last sessions are still starting.
	setup := time.Now()
	if _, err := b.createSessions(ctx, m, "expiry", n, func(i int) time.Duration {
		return 2*time.Second + b.o.duration*time.Duration(i)/time.Duration(n)
	}, true); err != nil {
		return nil, err
	}
	setupTook := time.Since(setup)

	p := &progress{w: b.o.progress, label: "expiry", begun: time.Now(), total: b.o.duration + 2*time.Second}
	stopProgress := p.start(ctx)
	limit := time.Now().Add(b.o.duration + 30*time.Second)
	for {
		mu.Lock()
		got := len(expired)
		mu.Unlock()
		p.ops.Store(uint64(got))
		if got >= n || time.Now().After(limit) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopProgress()

	mu.Lock()
	defer mu.Unlock()
	st := statsOf("deadline → expired event", &late, 0, 0, nil)
	r := &Result{Scenario: "expiry", Params: b.params(n, 1, "expirers", 1),
		Op: st, LostUpdates: int64(n - len(expired))}
	r.withReference(refM.stats())
	r.Extra = map[string]any{
		"expired":                    len(expired),
		"resyncs":                    resyncs,
		"creating and starting took": setupTook.Round(time.Millisecond).String(),
	}
	return r, nil
}
