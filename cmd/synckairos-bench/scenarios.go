package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
)

// bench holds what every scenario shares: the options, the Redis client of
// the measured Manager and of the references, and the run's key prefix.
type bench struct {
	o      *options
	client rueidis.Client
	prefix string
	mode   string // "single server" or "cluster"
	seq    atomic.Int64
	tel    *synckairos.Telemetry // the scenario's, with -metrics
}

func newBench(ctx context.Context, o *options) (*bench, error) {
	client, err := dial(ctx, o.redisURL, o.flushDelay, o.multiplex)
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, client: client, prefix: fmt.Sprintf("synckairos-bench:%d:", time.Now().UnixNano()), mode: "single server"}
	if client.Mode() == rueidis.ClientModeCluster {
		b.mode = "Redis Cluster"
	}
	return b, nil
}

// dial connects a client as an application would: client-side caching off,
// auto-pipelining on (the rueidis default), with flushDelay as
// MaxFlushDelay and multiplex as PipelineMultiplex.
func dial(ctx context.Context, url string, flushDelay time.Duration, multiplex int) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	opt.MaxFlushDelay = flushDelay
	opt.PipelineMultiplex = multiplex
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", url, err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis %s: %w", url, err)
	}
	return client, nil
}

func (b *bench) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.deletePrefix(ctx)
	b.client.Close()
}

// deletePrefix removes every key of the run, on every node.
func (b *bench) deletePrefix(ctx context.Context) {
	for _, node := range b.client.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(b.prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				break
			}
			cmds := make(rueidis.Commands, 0, len(e.Elements))
			for _, k := range e.Elements {
				cmds = append(cmds, node.B().Unlink().Key(k).Build())
			}
			node.DoMulti(ctx, cmds...)
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
}

// manager returns a Manager of the run's prefix on client, closed with the
// scenario.
func (b *bench) manager(client rueidis.Client, cfg synckairos.Config) (*synckairos.Manager, error) {
	cfg.KeyPrefix = b.prefix
	cfg.Telemetry = b.tel
	return synckairos.New(client, &cfg)
}

func (b *bench) scenario(ctx context.Context, name string) (*Result, error) {
	for _, s := range scenarios {
		if s.name == name {
			reader := b.scenarioTelemetry()
			r, err := s.run(b, ctx)
			if err != nil || reader == nil {
				return r, err
			}
			if r.Metrics, err = readMetrics(ctx, reader); err != nil {
				return nil, fmt.Errorf("reading the metrics: %w", err)
			}
			return r, nil
		}
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// newState returns a pending per-participant session, each participant with
// total on the clock.
func newState(id string, participants int, total time.Duration) *synckairos.State {
	s := &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Increment: 2 * time.Second,
		Participants: make([]synckairos.Participant, participants), Metadata: map[string]string{"n": "0"}}
	for i := range s.Participants {
		s.Participants[i] = synckairos.Participant{ID: "p" + strconv.Itoa(i), TotalTime: total}
	}
	return s
}

// managerWith returns a Manager of cfg on the run's client with n sessions
// created by createSessions; the caller closes the Manager.
func (b *bench) managerWith(ctx context.Context, cfg synckairos.Config, tag string, n int, total func(i int) time.Duration, start bool) (*synckairos.Manager, []*synckairos.State, error) {
	m, err := b.manager(b.client, cfg)
	if err != nil {
		return nil, nil, err
	}
	states, err := b.createSessions(ctx, m, tag, n, total, start)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, states, nil
}

func hours(h time.Duration) func(int) time.Duration {
	return func(int) time.Duration { return h * time.Hour }
}

// createSessions creates n sessions (started when start is set) from 32
// goroutines, and returns their stored states.
func (b *bench) createSessions(ctx context.Context, m *synckairos.Manager, tag string, n int, total func(i int) time.Duration, start bool) ([]*synckairos.State, error) {
	states := make([]*synckairos.State, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	const workers = 32
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				s, err := m.CreateSession(ctx, newState(fmt.Sprintf("%s-%d", tag, i), b.o.participants, total(i)))
				if err == nil && start {
					s, err = m.StartSession(ctx, s.SessionID)
				}
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
				states[i] = s
			}
		})
	}
	wg.Wait()
	return states, first
}

// rawGet returns the reference operation: a raw GET, on the measured
// client, of a value as large as state's JSON.
func (b *bench) rawGet(ctx context.Context, state *synckairos.State) (op, int, error) {
	value, err := state.MarshalJSON()
	if err != nil {
		return nil, 0, err
	}
	key := b.prefix + "raw:" + strconv.FormatInt(b.seq.Add(1), 10)
	if err := b.client.Do(ctx, b.client.B().Set().Key(key).Value(rueidis.BinaryString(value)).Build()).Error(); err != nil {
		return nil, 0, err
	}
	get := b.client.B().Get().Key(key).Build().Pin()
	return func(ctx context.Context, _ int) error {
		return b.client.Do(ctx, get).Error()
	}, len(value), nil
}

// pair measures op against the raw GET reference, alternating, with conc
// workers for the run's duration.
func (b *bench) pair(ctx context.Context, label string, conc int, state *synckairos.State, name string, target op, pace ...*pacer) (Stats, Stats, int, error) {
	ref, size, err := b.rawGet(ctx, state)
	if err != nil {
		return Stats{}, Stats{}, 0, err
	}
	refM := &measured{name: fmt.Sprintf("raw GET (%d B)", size)}
	opM := &measured{name: name}
	var pc *pacer
	if len(pace) > 0 {
		pc = pace[0]
	}
	alternate(ctx, b.o.progress, label, b.o.duration, conc, 4, refM, opM, ref, target, pc)
	return opM.stats(), refM.stats(), size, nil
}

func (b *bench) params(sessions, conc int, extra ...any) map[string]any {
	p := map[string]any{"sessions": sessions, "concurrency": conc, "participants": b.o.participants, "duration": b.o.duration.String()}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i].(string)] = extra[i+1]
	}
	return p
}

func (b *bench) get(ctx context.Context) (*Result, error) {
	n, conc := cmp.Or(b.o.sessions, 1000), cmp.Or(b.o.concurrency, 64)
	m, states, err := b.managerWith(ctx, synckairos.Config{}, "get", n, hours(1), true)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	opStats, refStats, _, err := b.pair(ctx, "get", conc, states[0], "GetSession", func(ctx context.Context, _ int) error {
		_, err := m.GetSession(ctx, states[rand.IntN(n)].SessionID)
		return err
	})
	if err != nil {
		return nil, err
	}
	r := &Result{Scenario: "get", Params: b.params(n, conc), Op: opStats, LostUpdates: -1}
	r.withReference(refStats)
	return r, nil
}

// owned splits n sessions among conc workers: worker w owns w, w+conc, ...
type owned struct {
	states [][]*synckairos.State
	next   []int
	done   [][]int64 // successful writes per owned session
}

func own(states []*synckairos.State, conc int) *owned {
	o := &owned{states: make([][]*synckairos.State, conc), next: make([]int, conc), done: make([][]int64, conc)}
	for i, s := range states {
		o.states[i%conc] = append(o.states[i%conc], s)
		o.done[i%conc] = append(o.done[i%conc], 0)
	}
	return o
}

// update writes worker w's next session with one more cycle of its first
// participant, and counts the write.
func (o *owned) update(ctx context.Context, m *synckairos.Manager, w int) error {
	i := o.next[w] % len(o.states[w])
	o.next[w]++
	next := o.states[w][i].Clone()
	next.Participants[0].CycleCount++
	stored, err := m.UpdateSession(ctx, next)
	if err != nil {
		return err
	}
	o.states[w][i] = stored
	o.done[w][i]++
	return nil
}

// lost compares the writes each session took with its stored version: the
// version counts every committed change, so any difference is a lost
// update. base is the version each session had before the scenario.
func lost(ctx context.Context, m *synckairos.Manager, o *owned, base int64) (int64, error) {
	var missing int64
	for w := range o.states {
		for i, s := range o.states[w] {
			stored, err := m.GetSession(ctx, s.SessionID)
			if err != nil {
				return 0, err
			}
			missing += base + o.done[w][i] - stored.Version
		}
	}
	return missing, nil
}

func (b *bench) update(ctx context.Context) (*Result, error) {
	n, conc := cmp.Or(b.o.sessions, 1000), cmp.Or(b.o.concurrency, 64)
	n = max(n, conc) // every worker owns a session
	m, states, err := b.managerWith(ctx, synckairos.Config{}, "update", n, hours(1), false)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	o := own(states, conc)
	opStats, refStats, _, err := b.pair(ctx, "update", conc, states[0], "UpdateSession", func(ctx context.Context, w int) error {
		return o.update(ctx, m, w)
	})
	if err != nil {
		return nil, err
	}
	r := &Result{Scenario: "update", Params: b.params(n, conc), Op: opStats}
	r.withReference(refStats)
	r.LostUpdates, err = lost(ctx, m, o, 1)
	return r, err
}

func (b *bench) mutateContended(ctx context.Context) (*Result, error) {
	n, conc := cmp.Or(b.o.sessions, 4), cmp.Or(b.o.concurrency, 50)
	m, states, err := b.managerWith(ctx, synckairos.Config{}, "mutate", n, hours(1), false)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	// The workers are spread over instances: Managers on clients of their
	// own, whose writes to one session race through the compare-and-set.
	ms := []*synckairos.Manager{m}
	for range b.o.instances - 1 {
		client, err := dial(ctx, b.o.redisURL, b.o.flushDelay, b.o.multiplex)
		if err != nil {
			return nil, err
		}
		defer client.Close()
		other, err := b.manager(client, synckairos.Config{})
		if err != nil {
			return nil, err
		}
		defer other.Close()
		ms = append(ms, other)
	}
	var committed, refused atomic.Int64
	opStats, refStats, _, err := b.pair(ctx, "mutate-contended", conc, states[0], "MutateSession (contended)", func(ctx context.Context, w int) error {
		_, err := ms[w%len(ms)].MutateSession(ctx, states[w%n].SessionID, func(s *synckairos.State) error {
			k, err := strconv.Atoi(s.Metadata["n"])
			s.Metadata["n"] = strconv.Itoa(k + 1)
			return err
		})
		switch {
		case err == nil:
			committed.Add(1)
		case errors.Is(err, synckairos.ErrVersionConflict):
			refused.Add(1) // told to the caller: out of attempts
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// Every committed increment must be in the counters.
	var stored int64
	for _, s := range states {
		cur, err := m.GetSession(ctx, s.SessionID)
		if err != nil {
			return nil, err
		}
		k, _ := strconv.Atoi(cur.Metadata["n"])
		stored += int64(k)
	}
	r := &Result{Scenario: "mutate-contended", Params: b.params(n, conc, "max_attempts", synckairos.DefaultMaxAttempts, "instances", len(ms)), Op: opStats,
		LostUpdates: committed.Load() - stored}
	r.withReference(refStats)
	total := committed.Load() + refused.Load()
	r.Extra = map[string]any{
		"committed": committed.Load(),
		"refused (ErrVersionConflict after MaxAttempts)": refused.Load(),
		"committed share": fmt.Sprintf("%.2f%%", 100*float64(committed.Load())/float64(max(total, 1))),
	}
	return r, nil
}

func (b *bench) switchCycles(ctx context.Context) (*Result, error) {
	n, conc := cmp.Or(b.o.sessions, 1000), cmp.Or(b.o.concurrency, 64)
	n = max(n, conc)
	m, states, err := b.managerWith(ctx, synckairos.Config{}, "switch", n, hours(24), true)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	o := own(states, conc)
	opStats, refStats, _, err := b.pair(ctx, "switch", conc, states[0], "SwitchCycle", func(ctx context.Context, w int) error {
		i := o.next[w] % len(o.states[w])
		o.next[w]++
		s := o.states[w][i]
		opts := &synckairos.SwitchOptions{From: s.ActiveParticipantID}
		if b.o.held {
			opts.Current = s // the state this worker's last switch returned: no read
		}
		r, err := m.SwitchCycle(ctx, s.SessionID, opts)
		if err != nil {
			return err
		}
		o.states[w][i] = r.State
		o.done[w][i]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := &Result{Scenario: "switch", Params: b.params(n, conc, "held", b.o.held), Op: opStats}
	r.withReference(refStats)
	r.LostUpdates, err = lost(ctx, m, o, 2) // created, started
	return r, err
}

func (b *bench) pubsub(ctx context.Context) (*Result, error) {
	n, conc, subs := cmp.Or(b.o.sessions, 100), cmp.Or(b.o.concurrency, 1), b.o.subscribers
	n = max(n, conc)
	m, states, err := b.managerWith(ctx, synckairos.Config{}, "pubsub", n, hours(1), false)
	if err != nil {
		return nil, err
	}
	defer m.Close()

	// When each version was written, by session index; the subscribers
	// look it up. Written before the write, so never after its delivery.
	index := make(map[string]int, n)
	for i, s := range states {
		index[s.SessionID] = i
	}
	sent := make([]sync.Map, n) // version → time.Time
	type listener struct {
		hist    Hist
		mu      sync.Mutex
		got     int64
		resyncs int64
		unknown int64
		client  rueidis.Client
		manager *synckairos.Manager
		sub     *synckairos.Subscription
	}
	ls := make([]*listener, subs)
	defer func() {
		for _, l := range ls {
			if l == nil {
				continue
			}
			if l.sub != nil {
				l.sub.Close()
			}
			if l.manager != nil {
				l.manager.Close()
			}
			l.client.Close()
		}
	}()
	for i := range ls {
		l := &listener{}
		if l.client, err = dial(ctx, b.o.redisURL, b.o.flushDelay, b.o.multiplex); err != nil {
			return nil, err
		}
		ls[i] = l
		if l.manager, err = b.manager(l.client, synckairos.Config{SubscriptionBuffer: 1 << 16}); err != nil {
			return nil, err
		}
		l.sub, err = l.manager.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
			now := time.Now()
			l.mu.Lock()
			defer l.mu.Unlock()
			if ev.Kind == synckairos.ChangeResync {
				l.resyncs++
				return
			}
			k, ok := index[ev.SessionID]
			if !ok || ev.Kind != synckairos.ChangeUpdated {
				return
			}
			t, ok := sent[k].Load(ev.Version)
			if !ok {
				l.unknown++
				return
			}
			l.got++
			l.hist.Record(now.Sub(t.(time.Time)))
		})
		if err != nil {
			return nil, err
		}
	}

	o := own(states, conc)
	opStats, refStats, _, err := b.pair(ctx, "pubsub", conc, states[0], "UpdateSession (publishing)", func(ctx context.Context, w int) error {
		s := o.states[w][o.next[w]%len(o.states[w])] // the session o.update writes
		sent[index[s.SessionID]].Store(s.Version+1, time.Now())
		return o.update(ctx, m, w)
	}, newPacer(b.o.rate, conc))
	if err != nil {
		return nil, err
	}
	var writes int64
	for _, d := range o.done {
		for _, c := range d {
			writes += c
		}
	}
	// Let the last deliveries arrive.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		all := true
		for _, l := range ls {
			l.mu.Lock()
			all = all && l.got+l.unknown >= writes
			l.mu.Unlock()
		}
		if all {
			break
		}
	}
	var delivery Hist
	var missing, resyncs int64
	for _, l := range ls {
		l.mu.Lock()
		delivery.Merge(&l.hist)
		missing += writes - l.got
		resyncs += l.resyncs
		l.mu.Unlock()
	}
	st := statsOf("delivery, write start → callback", &delivery, 0, 0, nil)
	r := &Result{Scenario: "pubsub", Params: b.params(n, conc, "subscribers", subs, "rate", b.o.rate), Op: st, LostUpdates: missing}
	r.withReference(refStats)
	stored, err := lost(ctx, m, o, 1)
	if err != nil {
		return nil, err
	}
	r.Extra = map[string]any{
		"writes":               fmt.Sprintf("%d (%.0f/s; p50 %v)", writes, opStats.PerSecond, round(opStats.P50)),
		"deliveries":           delivery.Count(),
		"resyncs":              resyncs,
		"lost writes (stored)": stored,
	}
	return r, nil
}
