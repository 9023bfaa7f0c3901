package synckairos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
)

// The benchmarks run on the real Redis, each operation beside a raw rueidis
// GET of a value of the same size on the same client, so that the overhead
// reads as a ratio of medians:
//
//	go test -run '^$' -bench . -count 5
//
// Each reports p50-ns and p99-ns, the median and 99th percentile latency of
// one call (ns/op is the mean).

var benchSizes = []int{2, 1000}

func BenchmarkGetSession(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("participants=%d", n), func(b *testing.B) {
			m, client, state := benchSetup(b, n)
			ctx := context.Background()
			b.Run("raw-GET", func(b *testing.B) { benchRawGet(b, client, state) })
			b.Run("GetSession", func(b *testing.B) {
				measure(b, func() {
					if _, err := m.GetSession(ctx, state.SessionID); err != nil {
						b.Fatal(err)
					}
				})
			})
		})
	}
}

func BenchmarkUpdateSession(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("participants=%d", n), func(b *testing.B) {
			m, client, state := benchSetup(b, n)
			ctx := context.Background()
			b.Run("raw-GET", func(b *testing.B) { benchRawGet(b, client, state) })
			b.Run("UpdateSession", func(b *testing.B) {
				measure(b, func() {
					next := state.Clone()
					next.Participants[0].CycleCount++
					var err error
					if state, err = m.UpdateSession(ctx, next); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run("MutateSession", func(b *testing.B) {
				measure(b, func() {
					if _, err := m.MutateSession(ctx, state.SessionID, func(s *synckairos.State) error {
						s.Participants[0].CycleCount++
						return nil
					}); err != nil {
						b.Fatal(err)
					}
				})
			})
		})
	}
}

// benchSetup returns a Manager on the real Redis, its client, and a stored
// session of n participants.
func benchSetup(b *testing.B, n int) (*synckairos.Manager, rueidis.Client, *synckairos.State) {
	client := newRedisClient(b)
	prefix := testPrefix(b)
	b.Cleanup(func() { deletePrefix(b, client, prefix) })
	m, err := synckairos.New(client, &synckairos.Config{KeyPrefix: prefix})
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
	return m, client, state
}

// benchRawGet measures a plain GET of a value as large as state's JSON form.
func benchRawGet(b *testing.B, client rueidis.Client, state *synckairos.State) {
	value, err := json.Marshal(state)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	key := testPrefix(b) + "raw"
	if err := client.Do(ctx, client.B().Set().Key(key).Value(string(value)).Build()).Error(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Do(ctx, client.B().Del().Key(key).Build()) })
	b.ReportMetric(float64(len(value)), "bytes")
	measure(b, func() {
		if _, err := client.Do(ctx, client.B().Get().Key(key).Build()).AsBytes(); err != nil {
			b.Fatal(err)
		}
	})
}

// measure runs op b.N times and reports its latency percentiles.
func measure(b *testing.B, op func()) {
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		op()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
