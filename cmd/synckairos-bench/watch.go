package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/skhttp"
)

// watchClientEnv, set to a stream URL, makes this program the watchers of
// the watch scenario: they run in a process of their own, so that the
// server's memory is the server's, and neither process holds both ends of
// every connection.
const watchClientEnv = "SYNCKAIROS_BENCH_WATCH_CLIENT"

func init() {
	if base := os.Getenv(watchClientEnv); base != "" {
		os.Exit(watchClient(base))
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
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), watchClientEnv+"=http://"+ln.Addr().String(),
		fmt.Sprint("SYNCKAIROS_BENCH_WATCHERS=", watchers), fmt.Sprint("SYNCKAIROS_BENCH_SESSIONS=", n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		return nil, fmt.Errorf("the watchers: %q, %v", line, err)
	}
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
	stdin.Close()
	var delays []int64
	if err := json.NewDecoder(out).Decode(&delays); err != nil {
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

// watchClient opens the watchers, says "ready" on stdout once each has its
// first view, records each later view's delay from its write, and prints
// the delays (µs) as JSON once stdin closes.
func watchClient(base string) int {
	watchers, _ := strconv.Atoi(os.Getenv("SYNCKAIROS_BENCH_WATCHERS"))
	sessions, _ := strconv.Atoi(os.Getenv("SYNCKAIROS_BENCH_SESSIONS"))
	var mu sync.Mutex
	var delays []int64
	var ready atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: watchers}}
	for i := range watchers {
		go func() {
			res, err := client.Get(fmt.Sprintf("%s/games/watch-%d/clock", base, i%sessions))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			first := true
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				if first {
					first = false
					ready.Add(1)
					continue
				}
				var v struct {
					LastTransition struct{ At time.Time } `json:"last_transition"`
				}
				if json.Unmarshal([]byte(data), &v) == nil {
					d := time.Since(v.LastTransition.At).Microseconds()
					mu.Lock()
					delays = append(delays, d)
					mu.Unlock()
				}
			}
		}()
	}
	for deadline := time.Now().Add(time.Minute); ready.Load() < int64(watchers); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "%d of %d watchers ready after a minute\n", ready.Load(), watchers)
			return 1
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	mu.Lock()
	defer mu.Unlock()
	if err := json.NewEncoder(os.Stdout).Encode(delays); err != nil {
		return 1
	}
	return 0
}
