package synckairos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/redis/rueidis"
	"github.com/synckairos/synckairos"
)

// The benchmarks run on the real Redis, each operation beside a raw rueidis
// GET of a value of the same size on the same client, so that the overhead
// reads as a ratio of medians:
//
//	go test -run '^$' -bench . -count 6 -benchtime 5000x

var benchSizes = []int{2, 1000}

// The benchmarks interleave the operation with a raw GET of a value as large
// as the session's JSON, one of each per iteration, so that both see the same
// machine at the same moment. They report the operation's latency (p50-ns,
// p99-ns), the raw GET's (raw-p50-ns) and the ratio of the medians
// (x-raw-p50). ns/op covers both calls.

// forSizes runs one sub-benchmark per session size; op returns the
// operation to measure on a fresh session.
func forSizes(b *testing.B, op func(b *testing.B, m *synckairos.Manager, state *synckairos.State) func()) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("participants=%d", n), func(b *testing.B) {
			m, raw, state := benchSetup(b, redisURL(), n)
			measure(b, raw, op(b, m, state))
		})
	}
}

func BenchmarkGetSession(b *testing.B) {
	forSizes(b, func(b *testing.B, m *synckairos.Manager, state *synckairos.State) func() {
		return func() {
			if _, err := m.GetSession(context.Background(), state.SessionID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUpdateSession(b *testing.B) {
	forSizes(b, func(b *testing.B, m *synckairos.Manager, state *synckairos.State) func() {
		return func() {
			next := state.Clone()
			next.Participants[0].CycleCount++
			var err error
			if state, err = m.UpdateSession(context.Background(), next); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUpdateSessionWait measures the cost of Config.WaitReplicas on the
// local Redis Cluster (one replica per master), against the same update
// without it:
//
//	go test -run '^$' -bench UpdateSessionWait -count 6 -benchtime 5000x .
func BenchmarkUpdateSessionWait(b *testing.B) {
	url := clusterURL(b)
	for _, replicas := range []int{0, 1} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			m, raw, state := benchSetupCfg(b, url, 2, &synckairos.Config{WaitReplicas: replicas, WaitTimeout: time.Second})
			measure(b, raw, func() {
				next := state.Clone()
				next.Participants[0].CycleCount++
				var err error
				if state, err = m.UpdateSession(context.Background(), next); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkMutateSession(b *testing.B) {
	forSizes(b, func(b *testing.B, m *synckairos.Manager, state *synckairos.State) func() {
		return func() {
			if _, err := m.MutateSession(context.Background(), state.SessionID, func(s *synckairos.State) error {
				s.Participants[0].CycleCount++
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSwitchCycleWithMove measures a switch that carries the host's
// move (SwitchOptions.Edit, plus the Turn it ends) against a plain switch,
// alternately in the same iterations, on two sessions:
//
//	go test -run '^$' -bench SwitchCycleWithMove -count 6 -benchtime 5000x .
//
// x-plain-p50 is the ratio of their medians; both are one read and one
// write.
func BenchmarkSwitchCycleWithMove(b *testing.B) {
	m, raw, plain := benchSetup(b, redisURL(), 2)
	ctx := context.Background()
	in := plain.Clone()
	in.SessionID = "bench-move"
	in.Version, in.LastTransition = 0, nil
	moved, err := m.CreateSession(ctx, in)
	if err != nil {
		b.Fatal(err)
	}
	var lat, plainLat, rawLat []time.Duration
	turn := moved.Turn
	switchPlain := func() {
		start := time.Now()
		if _, err := m.SwitchCycle(ctx, plain.SessionID, nil); err != nil {
			b.Fatal(err)
		}
		plainLat = append(plainLat, time.Since(start))
	}
	switchWithMove := func() {
		start := time.Now()
		r, err := m.SwitchCycle(ctx, moved.SessionID, &synckairos.SwitchOptions{Turn: turn, Edit: func(s *synckairos.State) error {
			s.Metadata["last_move"] = "e2e4"
			return nil
		}})
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		turn = r.State.Turn
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		raw.get()
		rawLat = append(rawLat, time.Since(start))
		if i%2 == 0 { // neither always first
			switchPlain()
			switchWithMove()
		} else {
			switchWithMove()
			switchPlain()
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	withMove, plainP50, rawP50 := p50(lat), p50(plainLat), p50(rawLat)
	b.ReportMetric(float64(withMove.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(plainP50.Nanoseconds()), "plain-p50-ns")
	b.ReportMetric(float64(rawP50.Nanoseconds()), "raw-p50-ns")
	b.ReportMetric(float64(withMove)/float64(plainP50), "x-plain-p50")
	b.ReportMetric(float64(withMove)/float64(rawP50), "x-raw-p50")
}

// benchSetup returns a Manager on the real Redis, a raw GET of a value as
// large as its session's JSON on the same client, and the stored session of
// n participants.
func benchSetup(b *testing.B, url string, n int) (*synckairos.Manager, rawGet, *synckairos.State) {
	return benchSetupCfg(b, url, n, &synckairos.Config{})
}

func benchSetupCfg(b testing.TB, url string, n int, cfg *synckairos.Config) (*synckairos.Manager, rawGet, *synckairos.State) {
	client := newClientAt(b, url)
	prefix := testPrefix(b)
	b.Cleanup(func() { deletePrefix(b, client, prefix) })
	c := *cfg
	c.KeyPrefix = prefix
	m, err := synckairos.New(client, &c)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	s := newState("bench", n)
	s.ActiveParticipantID = "p0"
	s.Status = synckairos.StatusRunning
	now := time.Now()
	s.CycleStartedAt, s.SessionStartedAt = &now, &now
	state, err := m.CreateSession(context.Background(), s)
	if err != nil {
		b.Fatal(err)
	}

	value, err := json.Marshal(state)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	key := prefix + "raw"
	if err := client.Do(ctx, client.B().Set().Key(key).Value(string(value)).Build()).Error(); err != nil {
		b.Fatal(err)
	}
	raw := rawGet{bytes: len(value)}
	raw.get = func() {
		if _, err := client.Do(ctx, client.B().Get().Key(key).Build()).AsBytes(); err != nil {
			b.Fatal(err)
		}
	}
	return m, raw, state
}

// rawGet is the reference operation: a GET of a value of the given size.
type rawGet struct {
	get   func()
	bytes int
}

// measure runs op and raw alternately b.N times each and reports both
// latency distributions.
func measure(b *testing.B, raw rawGet, op func()) {
	lat := make([]time.Duration, 0, b.N)
	rawLat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		raw.get()
		mid := time.Now()
		op()
		lat = append(lat, time.Since(mid))
		rawLat = append(rawLat, mid.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(rawLat)
	p50, rawP50 := lat[len(lat)/2], rawLat[len(rawLat)/2]
	b.ReportMetric(float64(p50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(rawP50.Nanoseconds()), "raw-p50-ns")
	b.ReportMetric(float64(p50)/float64(rawP50), "x-raw-p50")
	b.ReportMetric(float64(raw.bytes), "state-bytes")
}

// BenchmarkDeliveryLatency measures from the start of UpdateSession on one
// Manager to the callbacks of SubscribeToUpdates on 1 or 4 other Managers,
// each with its own client, until the last of them has it, one update at a
// time, on the single server and on the local Redis Cluster. The reference,
// in the same iterations: a raw PUBLISH (SPUBLISH on the cluster, to a
// channel in the same slot) of a message of the same size, from a client
// like the writer's, to as many raw subscribers, each on its own client,
// until the last has it. x-raw-delivery-p50 is the ratio of the medians.
// The writer publishes format 2, or format 3 (Config.MessageFormat: the
// state stored is the update's message, and the raw one is as long).
//
//	go test -run '^$' -bench DeliveryLatency -benchtime 3000x -count 5 .
func BenchmarkDeliveryLatency(b *testing.B) {
	for _, backend := range []string{"redis", "cluster"} {
		for _, subscribers := range []int{1, 4} {
			for _, format := range []int{2, 3} {
				b.Run(fmt.Sprintf("backend=%s/subscribers=%d/format=%d", backend, subscribers, format), func(b *testing.B) {
					url := redisURL()
					if backend == "cluster" {
						url = clusterURL(b)
					}
					benchDelivery(b, url, backend == "cluster", subscribers, format)
				})
			}
		}
	}
}

// benchDelivery measures delivery with a writer publishing messages of the
// given format (Config.MessageFormat).
func benchDelivery(b *testing.B, url string, cluster bool, subscribers, format int) {
	writer, _, state := benchSetupCfg(b, url, 2, &synckairos.Config{MessageFormat: format})
	ctx := context.Background()
	arrived := make(chan time.Time, subscribers)
	for range subscribers {
		reader, err := synckairos.New(newClientAt(b, url), &synckairos.Config{KeyPrefix: writer.KeyPrefix()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { reader.Close() })
		sub, err := reader.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
			if ev.Kind == synckairos.ChangeUpdated {
				arrived <- time.Now()
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sub.Close() })
	}

	// The raw reference: a channel in the slot of the session's partition,
	// a message as long as the library's.
	layout := synckairos.KeysOf(writer)
	channel := layout.Updates() + ":raw"
	if cluster {
		channel = layout.PartitionUpdates(layout.Partition(state.SessionID)) + ":raw"
	}
	stateJSON, err := json.Marshal(state)
	if err != nil {
		b.Fatal(err)
	}
	message := strings.Repeat("x", len(stateJSON)+len(`{"format":2,"kind":"updated","session_id":"bench","life":1795924266423474,"version":12,"state":}`))
	if format == 3 { // the state itself
		message = strings.Repeat("x", len(stateJSON)+len(`"format":3,`))
	}
	rawArrived := make(chan time.Time, subscribers)
	for range subscribers {
		c := newClientAt(b, url)
		subscribe := c.B().Subscribe().Channel(channel).Build()
		if cluster {
			subscribe = c.B().Ssubscribe().Channel(channel).Build()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.Receive(ctx, subscribe, func(m rueidis.PubSubMessage) { rawArrived <- time.Now() })
		}()
		b.Cleanup(func() { c.Close(); <-done })
	}
	publisher := newClientAt(b, url)
	publish := func() {
		cmd := publisher.B().Publish().Channel(channel).Message(message).Build()
		if cluster {
			cmd = publisher.B().Spublish().Channel(channel).Message(message).Build()
		}
		if err := publisher.Do(ctx, cmd).Error(); err != nil {
			b.Fatal(err)
		}
	}
	// Every raw subscriber listening: publish until one round reaches all.
	reachesAll := func() bool {
		publish()
		timeout := time.After(100 * time.Millisecond)
		for range subscribers {
			select {
			case <-rawArrived:
			case <-timeout:
				return false
			}
		}
		return true
	}
	for !reachesAll() {
		for len(rawArrived) > 0 {
			<-rawArrived
		}
	}

	last := func(ch chan time.Time) time.Time {
		var t time.Time
		for range subscribers {
			t = <-ch
		}
		return t
	}
	lat := make([]time.Duration, 0, b.N)
	rawLat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		publish()
		rawLat = append(rawLat, last(rawArrived).Sub(start))

		start = time.Now()
		next := state.Clone()
		next.Participants[0].CycleCount++
		if state, err = writer.UpdateSession(ctx, next); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, last(arrived).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(rawLat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "delivery-p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "delivery-p99-ns")
	b.ReportMetric(float64(rawLat[len(rawLat)/2].Nanoseconds()), "raw-delivery-p50-ns")
	b.ReportMetric(float64(lat[len(lat)/2])/float64(rawLat[len(rawLat)/2]), "x-raw-delivery-p50")
}

// BenchmarkExpiryLatency starts 10,000 sessions whose clocks run out over a
// few seconds, runs one expirer, and reports how late each expiry was
// written: UpdatedAt of the expired state minus its deadline
// (SessionCompletedAt), at millisecond resolution. Run it once:
//
//	go test -run '^$' -bench ExpiryLatency -benchtime 1x -count 5 .
func BenchmarkExpiryLatency(b *testing.B) {
	const sessions, writers = 10_000, 16
	for b.Loop() {
		client := newRedisClient(b)
		prefix := testPrefix(b)
		b.Cleanup(func() { deletePrefix(b, client, prefix) })
		m, err := synckairos.New(client, &synckairos.Config{KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := w; i < sessions; i += writers {
					id := fmt.Sprint("x", i)
					// Deadlines 4 to 7 s after each start.
					if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: id, Mode: synckairos.ModeGlobal,
						TotalTime:    4*time.Second + time.Duration(i%3000)*time.Millisecond,
						Participants: []synckairos.Participant{{ID: "a"}, {ID: "b"}}}); err != nil {
						b.Error(err)
						return
					}
					if _, err := m.StartSession(ctx, id); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		expirer, err := synckairos.New(newRedisClient(b), &synckairos.Config{KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); expirer.RunExpirer(runCtx) }()

		lat := make([]time.Duration, 0, sessions)
		for i := range sessions {
			id := fmt.Sprint("x", i)
			for {
				s, err := m.GetSession(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				if s.Status == synckairos.StatusExpired {
					lat = append(lat, s.UpdatedAt.Sub(*s.SessionCompletedAt))
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		stop()
		<-done
		expirer.Close()
		m.Close()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "late-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "late-p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "late-max-ms")
	}
}

// controlStates returns a running 2-participant session of each time
// control: a plain Fischer clock, byo-yomi and Canadian overtime (both in
// overtime, their costlier path), and Fischer with lag compensation.
func controlStates() map[string]*synckairos.State {
	now := time.Now()
	running := func(id string, bank time.Duration, edit func(*synckairos.State)) *synckairos.State {
		s := &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Status: synckairos.StatusRunning,
			Participants: players(bank, "a", "b"), ActiveParticipantID: "a", CycleStartedAt: &now, SessionStartedAt: &now}
		edit(s)
		return s
	}
	return map[string]*synckairos.State{
		"fischer": running("fischer", time.Hour, func(s *synckairos.State) { s.Increment = 2 * time.Second }),
		"byoyomi": running("byoyomi", 0, func(s *synckairos.State) {
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 5, Period: 30 * time.Second}
			s.Participants[0].Periods, s.Participants[1].Periods = 5, 5
		}),
		"canadian": running("canadian", 0, func(s *synckairos.State) {
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 1000, Period: time.Hour}
			s.Participants[0].BlockMoves, s.Participants[1].BlockMoves = 1000, 1000
			s.Participants[0].TotalTime, s.Participants[1].TotalTime = time.Hour, time.Hour
		}),
		"lag": running("lag", time.Hour, func(s *synckairos.State) {
			s.Increment = 2 * time.Second
			s.Lag = &synckairos.LagCompensation{Gain: time.Second, Initial: 3 * time.Second, Max: 7 * time.Second, Grace: 2 * time.Second}
		}),
		"stages": running("stages", time.Hour, func(s *synckairos.State) {
			s.Increment = 2 * time.Second
			s.Stages = []synckairos.Stage{{Moves: 1 << 30, Time: 30 * time.Minute, Increment: 30 * time.Second}, {Time: 5 * time.Minute}}
		}),
		"hourglass": running("hourglass", time.Hour, func(s *synckairos.State) { s.Hourglass = true }),
		"capped": running("capped", time.Hour, func(s *synckairos.State) {
			s.Increment, s.BankCap, s.MoveLimit = 2*time.Second, 2*time.Hour, 72*time.Hour
		}),
		"own": running("own", time.Hour, func(s *synckairos.State) {
			s.Increment, s.Delay, s.DelayMode = 2*time.Second, 5*time.Second, synckairos.DelayBronstein
			s.Participants[0].Control = &synckairos.ParticipantControl{Delay: 2 * time.Second}
		}),
	}
}

var controlNames = []string{"fischer", "byoyomi", "canadian", "lag", "stages", "hourglass", "capped", "own"}

// BenchmarkSwitchControls measures SwitchCycle on the real Redis under each
// time control, in turn in the same loop, against the plain Fischer switch:
// x-fischer-p50 is each control's median over Fischer's.
func BenchmarkSwitchControls(b *testing.B) {
	m, _, _ := benchSetup(b, redisURL(), 2)
	ctx := context.Background()
	states := controlStates()
	for _, name := range controlNames {
		if _, err := m.CreateSession(ctx, states[name]); err != nil {
			b.Fatal(err)
		}
	}
	lat := map[string][]time.Duration{}
	lag := &synckairos.SwitchOptions{Lag: 30 * time.Millisecond}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for k := range controlNames {
			name := controlNames[(i+k)%len(controlNames)] // none always first
			start := time.Now()
			if _, err := m.SwitchCycle(ctx, name, lag); err != nil {
				b.Fatal(err)
			}
			lat[name] = append(lat[name], time.Since(start))
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	fischer := p50(lat["fischer"])
	b.ReportMetric(float64(fischer.Nanoseconds()), "fischer-p50-ns")
	for _, name := range controlNames[1:] {
		b.ReportMetric(float64(p50(lat[name]))/float64(fischer), name+"-x-fischer-p50")
	}
}

// BenchmarkStateSwitch measures the pure transition, State.Switch, under
// each time control: the engine's own cost, without Redis.
func BenchmarkStateSwitch(b *testing.B) {
	for _, name := range controlNames {
		b.Run(name, func(b *testing.B) {
			s := controlStates()[name]
			if err := s.Validate(); err != nil {
				b.Fatal(err)
			}
			now := *s.CycleStartedAt
			opts := &synckairos.SwitchOptions{Lag: 30 * time.Millisecond}
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Second)
				if err := s.Switch(now, opts); err != nil {
					b.Fatal(err)
				}
				s.Version++
			}
		})
	}
}

// BenchmarkTelemetry measures GetSession and SwitchCycle with Telemetry
// off (nil, the default) and with the OpenTelemetry API's no-op providers
// set, so that every instrument and span is called and nothing recorded;
// each beside a raw GET, as the other benchmarks:
//
//	go test -run '^$' -bench Telemetry -count 6 -benchtime 5000x .
//
// The cost with the SDK recording is measured in examples/telemetry.
func BenchmarkTelemetry(b *testing.B) {
	for _, tc := range []struct {
		name string
		tel  *synckairos.Telemetry
	}{
		{"off", nil},
		{"noop", &synckairos.Telemetry{MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()}},
	} {
		b.Run("telemetry="+tc.name+"/call=get", func(b *testing.B) {
			m, raw, state := benchSetupCfg(b, redisURL(), 2, &synckairos.Config{Telemetry: tc.tel})
			b.ReportAllocs()
			measure(b, raw, func() {
				if _, err := m.GetSession(context.Background(), state.SessionID); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("telemetry="+tc.name+"/call=switch", func(b *testing.B) {
			m, raw, state := benchSetupCfg(b, redisURL(), 2, &synckairos.Config{Telemetry: tc.tel})
			b.ReportAllocs()
			measure(b, raw, func() {
				if _, err := m.SwitchCycle(context.Background(), state.SessionID, nil); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
