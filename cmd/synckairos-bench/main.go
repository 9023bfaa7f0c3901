// Command synckairos-bench puts synckairos under load against a real Redis
// (or Redis Cluster), and Postgres for the audit pipeline, and prints each
// scenario's latency (p50/p90/p99/max, from a histogram) and throughput next
// to a reference measured in the same run on the same client: a raw rueidis
// GET of a value as large as the session's JSON. Lost updates are counted
// from the stored versions, never assumed.
//
//	cd cmd/synckairos-bench
//	go run . -scenarios get,update -duration 10s
//	go run . -format json > figures.json
//	go run . -scenarios switch -metrics   # with the library's OpenTelemetry metrics
//
// It is a module of its own, so that what only it needs (the OpenTelemetry
// SDK) is no dependency of synckairos's users.
//
// Scenarios:
//
//	get               GetSession of random sessions
//	update            UpdateSession, each worker on sessions of its own
//	mutate-contended  MutateSession, many workers on few sessions
//	switch            SwitchCycle over many running sessions
//	pubsub            delivery of each change to N subscribers on other clients
//	expiry            lateness of expiries with many running sessions, one expirer
//	audit             commit to Postgres row through the relay and River
//	watch             write to each of 10,000 SSE watchers (skhttp.Stream, in a process of their own), and the server's memory per watcher
//
// Flags left at 0 take each scenario's default (listed by -h). Keys live
// under a prefix of their own, deleted at the end; the audit scenario uses a
// Postgres schema of its own, dropped at the end.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// options are the command's flags.
type options struct {
	redisURL     string
	postgresURL  string
	scenarios    []string
	duration     time.Duration
	sessions     int
	concurrency  int
	participants int
	subscribers  int
	rate         int
	format       string
	cpuProfile   string
	flushDelay   time.Duration
	multiplex    int
	instances    int
	riverFetch   time.Duration
	auditDrain   bool
	watchers     int
	metrics      bool
	held         bool
	progress     io.Writer
}

// scenarios are the scenarios in the order they run.
var scenarios = []struct {
	name string
	run  func(*bench, context.Context) (*Result, error)
}{
	{"get", (*bench).get},
	{"update", (*bench).update},
	{"mutate-contended", (*bench).mutateContended},
	{"switch", (*bench).switchCycles},
	{"pubsub", (*bench).pubsub},
	{"expiry", (*bench).expiry},
	{"audit", (*bench).audit},
	{"watch", (*bench).watch},
}

func scenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "synckairos-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "synckairos-bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "synckairos-bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "synckairos-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("synckairos-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{progress: stderr}
	var list string
	var quiet bool
	fs.StringVar(&o.redisURL, "redis", cmp.Or(os.Getenv("SYNCKAIROS_REDIS_URL"), "redis://127.0.0.1:6379/0"),
		"Redis URL; a cluster as redis://host1:port1?addr=host2:port2 (default $SYNCKAIROS_REDIS_URL)")
	fs.StringVar(&o.postgresURL, "postgres", cmp.Or(os.Getenv("SYNCKAIROS_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"Postgres URL for the audit scenario (default $SYNCKAIROS_DATABASE_URL)")
	fs.StringVar(&list, "scenarios", strings.Join(scenarioNames(), ","), "comma-separated scenarios to run")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each scenario runs, its reference included")
	fs.IntVar(&o.sessions, "sessions", 0, "sessions (default: get/update/switch 1000, mutate-contended 4, pubsub 100, expiry 10000, audit 208)")
	fs.IntVar(&o.concurrency, "concurrency", 0, "goroutines (default: get/update/switch 64, mutate-contended 50, pubsub 1 writer, audit 16 writers)")
	fs.IntVar(&o.participants, "participants", 2, "participants per session")
	fs.IntVar(&o.instances, "instances", 2, "mutate-contended: Managers, each on a client of its own, sharing the workers (as instances of an application would)")
	fs.BoolVar(&o.auditDrain, "audit-drain", false, "audit: start the relay only once the writers stop, and measure how fast the whole backlog drains")
	fs.DurationVar(&o.riverFetch, "river-fetch", 10*time.Millisecond, "audit: River FetchCooldown of the host's River client (FetchPollInterval is 5 times it)")
	fs.IntVar(&o.watchers, "watchers", 0, "watch: SSE watchers, 10 per session (default 10000)")
	fs.IntVar(&o.subscribers, "subscribers", 4, "pubsub: subscribing Managers, each on a client of its own")
	fs.IntVar(&o.rate, "rate", 0, "pubsub and audit: updates per second over all writers (0: as fast as they go)")
	fs.StringVar(&o.format, "format", "text", "output: text or json")
	fs.BoolVar(&quiet, "quiet", false, "no progress line on stderr")
	fs.DurationVar(&o.flushDelay, "flush-delay", 0, "rueidis ClientOption.MaxFlushDelay of every client: how long the writer waits to batch commands (0: rueidis's default, none)")
	fs.IntVar(&o.multiplex, "multiplex", 0, "rueidis ClientOption.PipelineMultiplex of every client: 2^n pipelined connections per node (0: rueidis's default; -1: one)")
	fs.BoolVar(&o.held, "held", false, "switch: pass each session's state as the worker holds it (SwitchOptions.Current), skipping the read")
	fs.BoolVar(&o.metrics, "metrics", false, "print the library's OpenTelemetry metrics of each scenario (docs/TELEMETRY.md) after its figures")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(scenarioNames(), s) {
			return nil, fmt.Errorf("unknown scenario %q; the scenarios are %s", s, strings.Join(scenarioNames(), ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	switch {
	case o.format != "text" && o.format != "json":
		return nil, fmt.Errorf("-format %q: want text or json", o.format)
	case o.duration < 100*time.Millisecond:
		return nil, fmt.Errorf("-duration %v: want at least 100ms", o.duration)
	case o.sessions < 0 || o.concurrency < 0 || o.participants < 1 || o.subscribers < 1 || o.instances < 1 || o.rate < 0:
		return nil, errors.New("-sessions, -concurrency and -rate must not be negative; -participants, -subscribers and -instances at least 1")
	}
	if quiet {
		o.progress = nil
	}
	return o, nil
}

func run(ctx context.Context, o *options, out io.Writer) error {
	b, err := newBench(ctx, o)
	if err != nil {
		return err
	}
	defer b.close()
	if o.format == "text" {
		fmt.Fprintf(out, "synckairos-bench  redis %s  %s  duration %v per scenario\n\n", o.redisURL, b.mode, o.duration)
	}
	var results []*Result
	for _, name := range o.scenarios {
		r, err := b.scenario(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, r)
		if o.format == "text" {
			r.print(out)
		}
	}
	if o.format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return nil
}

// Result is one scenario's figures.
type Result struct {
	Scenario string         `json:"scenario"`
	Params   map[string]any `json:"params"`
	Op       Stats          `json:"op"`
	// Reference is the raw operation measured in the same run.
	Reference *Stats `json:"reference,omitempty"`
	// RatioP50 is Op.P50 / Reference.P50; RatioThroughput is
	// Op.PerSecond / Reference.PerSecond.
	RatioP50        float64 `json:"ratio_p50,omitempty"`
	RatioThroughput float64 `json:"ratio_throughput,omitempty"`
	// LostUpdates counts committed changes missing from the stored state,
	// or, for pubsub, changes a subscriber never got; -1: not applicable.
	LostUpdates int64          `json:"lost_updates"`
	Extra       map[string]any `json:"extra,omitempty"`
	// Metrics are the library's own (-metrics).
	Metrics []Metric `json:"metrics,omitempty"`
}

func (r *Result) withReference(ref Stats) {
	r.Reference = &ref
	if ref.P50 > 0 {
		r.RatioP50 = float64(r.Op.P50) / float64(ref.P50)
	}
	if ref.PerSecond > 0 {
		r.RatioThroughput = r.Op.PerSecond / ref.PerSecond
	}
}

func (r *Result) print(w io.Writer) {
	var params []string
	for _, k := range slices.Sorted(maps.Keys(r.Params)) {
		params = append(params, fmt.Sprintf("%s=%v", k, r.Params[k]))
	}
	fmt.Fprintf(w, "== %s  %s\n", r.Scenario, strings.Join(params, " "))
	line := func(s Stats) {
		rate := "         -  "
		if s.PerSecond > 0 {
			rate = fmt.Sprintf("%10.0f/s", s.PerSecond)
		}
		fmt.Fprintf(w, "  %-34s %9d ops %s  p50 %9v  p90 %9v  p99 %9v  max %9v  errors %d\n",
			s.Name, s.Ops, rate, round(s.P50), round(s.P90), round(s.P99), round(s.Max), s.Errors)
		if s.FirstErr != "" {
			fmt.Fprintf(w, "  %-34s first error: %s\n", "", s.FirstErr)
		}
	}
	line(r.Op)
	if r.Reference != nil {
		line(*r.Reference)
		var ratios []string
		if r.RatioP50 > 0 {
			ratios = append(ratios, fmt.Sprintf("p50 %.2f×", r.RatioP50))
		}
		if r.RatioThroughput > 0 {
			ratios = append(ratios, fmt.Sprintf("throughput %.2f×", r.RatioThroughput))
		}
		if len(ratios) > 0 {
			fmt.Fprintf(w, "  ratio to the reference: %s\n", strings.Join(ratios, ", "))
		}
	}
	if r.LostUpdates >= 0 {
		fmt.Fprintf(w, "  lost updates: %d\n", r.LostUpdates)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Extra)) {
		fmt.Fprintf(w, "  %s: %v\n", k, r.Extra[k])
	}
	printMetrics(w, r.Metrics)
	fmt.Fprintln(w)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond / 10)
	}
}
