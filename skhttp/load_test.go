package skhttp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/ssewatch"
	"github.com/synckairos/synckairos/skhttp"
)

func init() {
	if ssewatch.IsChild() { // the watchers' process of TestManyWatchers
		os.Exit(ssewatch.Main())
	}
}

// Many watchers of many sessions on one instance (SKHTTP_WATCHERS, 1,000
// by default; 10,000 for BENCHMARKS.md), in a process of their own on
// loopback: every change reaches each watcher of its session; the delay
// from the write to a watcher and the server's memory per watcher are
// reported.
func TestManyWatchers(t *testing.T) {
	watchers, _ := strconv.Atoi(os.Getenv("SKHTTP_WATCHERS"))
	if watchers == 0 {
		watchers = 1000
	}
	sessions := max(watchers/10, 1)
	redisURL := os.Getenv("SYNCKAIROS_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	var r [4]byte
	rand.Read(r[:])
	prefix := "sktest:watchers:" + hex.EncodeToString(r[:]) + ":"
	ctx := context.Background()
	m, err := synckairos.Dial(ctx, redisURL, &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		if os.Getenv("SYNCKAIROS_REQUIRE_SERVICES") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer m.Close()
	writer, err := synckairos.Dial(ctx, redisURL, &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	for i := range sessions {
		if _, err := writer.CreateSession(ctx, &synckairos.State{SessionID: fmt.Sprint("s-", i), Mode: synckairos.ModePerParticipant,
			Participants: []synckairos.Participant{{ID: "a", TotalTime: time.Hour}, {ID: "b", TotalTime: time.Hour}}}); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for i := range sessions {
			writer.DeleteSession(context.Background(), fmt.Sprint("s-", i))
		}
	}()
	mux := http.NewServeMux()
	mux.Handle("GET /games/{id}/clock", skhttp.Stream(m, nil))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	watch, err := ssewatch.Start(srv.URL, "/games/s-%d/clock", watchers, sessions)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Kill()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perWatcher := (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / float64(watchers)
	t.Logf("%d watchers of %d sessions connected: server memory %.1f KiB per watcher (heap in use and stacks), %d goroutines more",
		watchers, sessions, perWatcher/1024, runtime.NumGoroutine()-goroutines)

	// The writes: 2 changes of each session, spread over 2 seconds.
	changes := 2 * sessions
	tick := time.NewTicker(2 * time.Second / time.Duration(changes))
	for i := range changes {
		<-tick.C
		id := fmt.Sprint("s-", i%sessions)
		if _, err := writer.MutateSession(ctx, id, func(s *synckairos.State) error {
			s.Metadata = map[string]string{"n": fmt.Sprint(i)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	time.Sleep(time.Second) // the last deliveries
	delays, err := watch.Delays()
	if err != nil {
		t.Fatal(err)
	}
	want := changes * 10
	slices.Sort(delays)
	if len(delays) != want {
		t.Errorf("%d deliveries, want %d (each change to the 10 watchers of its session)", len(delays), want)
	}
	if len(delays) == 0 {
		return
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	t.Logf("%d deliveries, write → watcher: p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(delays),
		ms(delays[len(delays)/2]), ms(delays[len(delays)*99/100]), ms(delays[len(delays)-1]))
}
