package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is what one measured operation did.
type Stats struct {
	Name      string        `json:"name"`
	Ops       uint64        `json:"ops"`
	Errors    uint64        `json:"errors"`
	PerSecond float64       `json:"per_second"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
	FirstErr  string        `json:"first_error,omitempty"`
}

func statsOf(name string, h *Hist, errs uint64, elapsed time.Duration, firstErr error) Stats {
	s := Stats{Name: name, Ops: h.Count(), Errors: errs, P50: h.Quantile(0.5), P90: h.Quantile(0.9),
		P99: h.Quantile(0.99), Max: h.Max()}
	if elapsed > 0 {
		s.PerSecond = float64(h.Count()) / elapsed.Seconds()
	}
	if firstErr != nil {
		s.FirstErr = firstErr.Error()
	}
	return s
}

// op is one call of a measured operation by worker w.
type op func(ctx context.Context, w int) error

// measured accumulates the rounds of one operation.
type measured struct {
	name    string
	hist    Hist
	errs    uint64
	elapsed time.Duration
	mu      sync.Mutex
	first   error
}

func (m *measured) stats() Stats { return statsOf(m.name, &m.hist, m.errs, m.elapsed, m.first) }

// progress prints a line, rewritten in place, while a scenario runs.
type progress struct {
	w     io.Writer
	label string
	ops   atomic.Uint64
	begun time.Time
	total time.Duration
}

// start runs the progress line until the returned stop is called; stop
// returns once the line is cleared, so that two lines never write at once.
func (p *progress) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	return func() { cancel(); <-done }
}

func (p *progress) run(ctx context.Context) {
	if p.w == nil {
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(p.w, "\r\033[K")
			return
		case <-t.C:
			el := time.Since(p.begun)
			fmt.Fprintf(p.w, "\r\033[K%s  %v/%v  %d ops  %.0f ops/s", p.label, el.Round(time.Second), p.total,
				p.ops.Load(), float64(p.ops.Load())/el.Seconds())
		}
	}
}

// alternate measures op against a reference ref, both with conc workers,
// in rounds that alternate between them (ref, op, ref, op, ...) so that both
// see the machine in the same state; together they take about d.
func alternate(ctx context.Context, out io.Writer, label string, d time.Duration, conc, rounds int, ref, target *measured, refOp, targetOp op, pace *pacer) {
	p := &progress{w: out, label: label, begun: time.Now(), total: d}
	stop := p.start(ctx)
	slice := d / time.Duration(2*rounds)
	for range rounds {
		if ctx.Err() != nil {
			break
		}
		if refOp != nil {
			runRound(ctx, slice, conc, ref, refOp, p, nil)
		}
		runRound(ctx, slice, conc, target, targetOp, p, pace)
	}
	stop()
}

// pacer spaces each worker's calls every interval; the wait is not part
// of the latency measured.
type pacer struct {
	interval time.Duration
	next     []time.Time
}

// newPacer returns a pacer of conc workers sharing rate calls per second, or
// nil for rate 0 (no pacing).
func newPacer(rate, conc int) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{interval: time.Duration(conc) * time.Second / time.Duration(rate), next: make([]time.Time, conc)}
}

func (p *pacer) wait(w int) {
	if p == nil {
		return
	}
	if p.next[w].IsZero() {
		p.next[w] = time.Now()
	}
	time.Sleep(time.Until(p.next[w]))
	p.next[w] = p.next[w].Add(p.interval)
}

// runRound runs conc workers calling fn until d has passed, each paced by
// pace if not nil.
func runRound(ctx context.Context, d time.Duration, conc int, m *measured, fn op, p *progress, pace *pacer) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	hists := make([]Hist, conc)
	errs := make([]uint64, conc)
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			h := &hists[w]
			for n := 0; ; n++ {
				if n%16 == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
					return
				}
				pace.wait(w)
				t0 := time.Now()
				err := fn(ctx, w)
				if err != nil {
					errs[w]++
					m.mu.Lock()
					if m.first == nil {
						m.first = err
					}
					m.mu.Unlock()
					continue
				}
				h.Record(time.Since(t0))
				p.ops.Add(1)
			}
		})
	}
	wg.Wait()
	m.elapsed += time.Since(start)
	for w := range hists {
		m.hist.Merge(&hists[w])
		m.errs += errs[w]
	}
}
