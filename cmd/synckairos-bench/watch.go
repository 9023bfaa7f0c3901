package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/ssewatch"
	"github.com/synckairos/synckairos/skhttp"
)

func init() {
	if ssewatch.IsChild() { // the watchers' process of the watch scenario
		os.Exit(ssewatch.Main())
	}
}

// watch serves skhttp.Stream from one Manager on loopback to -watchers SSE
// watchers (10 per session) in a child process, updates the sessions at
// -rate for the duration, and measures from each write (its
// last_transition.at) to each watcher's receipt, and the server's memory
// per watcher.
func (b *bench) watch(ctx context.Context) (*Result, error) {
	watchers := cmp.Or(b.o.watchers, 10000)
	n := cmp.Or(b.o.sessions, max(watchers/10, 1))
	m, err := b.manager(b.client, synckairos.Config{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	states, err := b.createSessions(ctx, m, "watch", n, func(int) time.Duration { return time.Hour }, false)
	if err != nil {
		return nil, err
	}
	ref, size, err := b.rawGet(ctx, states[0])
	if err != nil {
		return nil, err
	}
	refM := &measured{name: fmt.Sprintf("raw GET (%d B)", size)}
	runRound(ctx, time.Second, 1, refM, ref, &progress{}, nil)

	mux := http.NewServeMux()
	mux.Handle("GET /games/{id}/clock", skhttp.Stream(m, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	watch, err := ssewatch.Start("http://"+ln.Addr().String(), "/games/watch-%d/clock", watchers, n)
	if err != nil {
		return nil, err
	}
	defer watch.Kill()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perWatcher := (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / float64(watchers)

	// The writes, at -rate (default 1,000/s), to the sessions in turn.
	rate := cmp.Or(b.o.rate, 1000)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	end := time.Now().Add(b.o.duration)
	writes := 0
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		<-tick.C
		if _, err := m.MutateSession(ctx, states[i%n].SessionID, func(s *synckairos.State) error {
			s.Metadata = map[string]string{"n": strconv.Itoa(i)}
			return nil
		}); err != nil {
			tick.Stop()
			return nil, err
		}
		writes++
	}
	tick.Stop()
	time.Sleep(time.Second) // the last deliveries
	delays, err := watch.Delays()
	if err != nil {
		return nil, fmt.Errorf("the watchers' figures: %w", err)
	}
	var h Hist
	for _, us := range delays {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	want := 0 // each write goes to the watchers of its session
	for i := range writes {
		s := i % n
		want += watchers / n
		if s < watchers%n {
			want++
		}
	}
	r := &Result{Scenario: "watch", Params: b.params(n, 1, "watchers", watchers, "rate", rate),
		Op: statsOf("write → SSE watcher", &h, 0, b.o.duration, nil), LostUpdates: int64(want - len(delays))}
	r.withReference(refM.stats())
	r.Extra = map[string]any{
		"writes":                          writes,
		"deliveries":                      len(delays),
		"server memory per watcher (KiB)": fmt.Sprintf("%.1f", perWatcher/1024),
	}
	return r, nil
}
