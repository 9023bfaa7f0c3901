package synckairos

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/synckairos/synckairos/internal/pubsub"
)

// Telemetry reports a Manager's work through OpenTelemetry: metrics, and a
// span per call. Its instruments are listed in docs/TELEMETRY.md. The
// Manager uses only the OpenTelemetry API; the host brings the SDK and its
// exporters. Without a Telemetry (Config.Telemetry nil, the default) the
// Manager reports nothing and costs nothing for it.
type Telemetry struct {
	// MeterProvider receives the metrics; nil: none.
	MeterProvider metric.MeterProvider
	// TracerProvider receives a span per Manager call, as a child of the
	// span in the call's context (a host using rueidisotel sees the Redis
	// calls inside it); nil: none.
	TracerProvider trace.TracerProvider
	// OmitSessionID leaves the session ID out of spans' attributes (it is
	// the attribute synckairos.session.id otherwise), where a tracing
	// backend charges by distinct values. Metrics never carry it.
	OmitSessionID bool
}

// InstrumentationName is the name of the meter and tracer of the Manager;
// package audit's are InstrumentationName + "/audit".
const InstrumentationName = "github.com/synckairos/synckairos"

// The attributes of the metrics and spans.
const (
	attrOperation  = attribute.Key("synckairos.operation")
	attrOutcome    = attribute.Key("synckairos.outcome")
	attrTransition = attribute.Key("synckairos.transition")
	attrSessionID  = attribute.Key("synckairos.session.id")
)

// The outcomes of a write (the attribute synckairos.outcome of
// synckairos.writes).
const (
	outcomeWritten        = "written"
	outcomeConflict       = "conflict"
	outcomeNotFound       = "not_found"
	outcomeExists         = "exists"
	outcomeRefused        = "refused"
	outcomeNotReplicated  = "not_replicated"
	outcomeUnavailable    = "unavailable"
	outcomeCanceled       = "canceled"
	outcomeError          = "error"
	outcomeFinishDone     = "done"
	outcomeFinishFailed   = "failed"
	outcomeFinishGaveUp   = "gave_up"
	outcomeFinishTakeover = "taken_over"
)

// telemetry is a Manager's instruments; nil when the Manager has none.
type telemetry struct {
	tracer        trace.Tracer // nil: no spans
	meter         metric.Meter // nil: no metrics
	omitSessionID bool

	writes        metric.Int64Counter
	transitions   metric.Int64Counter
	attempts      metric.Int64Counter
	shortfalls    metric.Int64Counter
	expiries      metric.Int64Counter
	lateness      metric.Float64Histogram
	expirerChecks metric.Int64Counter
	indexReads    metric.Int64Counter
	finishes      metric.Int64Counter

	unobserve func() // takes the Manager out of its observed instruments

	// The measurement options of each attribute set, made once.
	opts sync.Map // optKey → metric.MeasurementOption
}

// optKey names an attribute set of the Manager's metrics: up to two of its
// attributes' values.
type optKey struct {
	k1, v1, k2, v2 string
}

// newTelemetry returns the instruments of t, nil when t turns nothing on.
func newTelemetry(m *Manager, t *Telemetry) (*telemetry, error) {
	if t == nil || t.MeterProvider == nil && t.TracerProvider == nil {
		return nil, nil
	}
	tel := &telemetry{omitSessionID: t.OmitSessionID}
	if t.TracerProvider != nil {
		tel.tracer = t.TracerProvider.Tracer(InstrumentationName)
	}
	if t.MeterProvider == nil {
		return tel, nil
	}
	mt := t.MeterProvider.Meter(InstrumentationName)
	tel.meter = mt
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := mt.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	tel.writes = counter("synckairos.writes", "{write}", "Manager calls that write, by operation and outcome.")
	tel.transitions = counter("synckairos.transitions", "{transition}", "Committed changes, by transition type.")
	tel.attempts = counter("synckairos.mutate.attempts", "{attempt}", "Compare-and-set attempts of MutateSession and the calls built on it (the transitions, the expirer).")
	tel.shortfalls = counter("synckairos.replication.shortfalls", "{write}", "Writes acknowledged by fewer replicas than Config.WaitReplicas.")
	tel.expiries = counter("synckairos.expirer.expiries", "{expiry}", "Expiries written by this Manager's expirer.")
	tel.expirerChecks = counter("synckairos.expirer.checks", "{session}", "Sessions the expirer read to apply their due expiries.")
	tel.indexReads = counter("synckairos.expirer.index_reads", "{partition}", "Deadline indexes the expirer read (loads and safety polls).")
	tel.finishes = counter("synckairos.finisher.runs", "{finish}", "Finish handler runs by outcome: done, failed (retried), gave_up; and finishes taken_over from a finisher that stopped.")
	var err error
	tel.lateness, err = mt.Float64Histogram("synckairos.expirer.lateness", metric.WithUnit("s"),
		metric.WithDescription("Time from a deadline to the write of its expiry."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	errs = append(errs, err)

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if tel.unobserve, err = observe(m, t.MeterProvider, mt); err != nil {
		return nil, err
	}
	return tel, nil
}

// The observed instruments are read, at collection, from what the Managers
// keep anyway. Those of one meter provider report the process: the sum over
// its Managers (a gauge observed by each would hide the others'), with the
// counts of those closed kept, so that the counters never go back.

// observedGroup is the Managers of one meter provider.
type observedGroup struct {
	mu       sync.Mutex
	managers map[*Manager]struct{}
	retired  pubsub.Stats // the counters of the group's closed Managers
	reg      metric.Registration
	// The instruments, made with the group's first Manager's meter.
	queued, watchers           metric.Int64ObservableGauge
	drops, resyncs, reconnects metric.Int64ObservableCounter
}

var observedGroups struct {
	mu     sync.Mutex
	groups map[any]*observedGroup
}

// observe adds m to the group of mp, and returns the function that takes
// it out.
func observe(m *Manager, mp metric.MeterProvider, mt metric.Meter) (func(), error) {
	var key any = m // a provider that cannot be a map key: a group of its own
	if t := reflect.TypeOf(mp); t != nil && t.Comparable() {
		key = mp
	}
	observedGroups.mu.Lock()
	defer observedGroups.mu.Unlock()
	if observedGroups.groups == nil {
		observedGroups.groups = map[any]*observedGroup{}
	}
	g := observedGroups.groups[key]
	if g == nil {
		g = &observedGroup{managers: map[*Manager]struct{}{}}
		var errs [5]error
		g.queued, errs[0] = mt.Int64ObservableGauge("synckairos.subscription.queue", metric.WithUnit("{message}"),
			metric.WithDescription("Messages waiting in the subscriptions' queues."))
		g.drops, errs[1] = mt.Int64ObservableCounter("synckairos.subscription.drops", metric.WithUnit("{message}"),
			metric.WithDescription("Messages dropped for a resync: behind a subscriber's buffer, while a connection was lost, or as a subscription closed."))
		g.resyncs, errs[2] = mt.Int64ObservableCounter("synckairos.subscription.resyncs", metric.WithUnit("{resync}"),
			metric.WithDescription("Resyncs told to subscribers."))
		g.reconnects, errs[3] = mt.Int64ObservableCounter("synckairos.subscription.reconnects", metric.WithUnit("{connection}"),
			metric.WithDescription("Subscription connections made again after one was lost or moved."))
		g.watchers, errs[4] = mt.Int64ObservableGauge("synckairos.watchers", metric.WithUnit("{watcher}"),
			metric.WithDescription("Open watches (WatchSession)."))
		if err := errors.Join(errs[:]...); err != nil {
			return nil, err
		}
		observedGroups.groups[key] = g
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.managers) == 0 {
		reg, err := mt.RegisterCallback(g.observe, g.queued, g.drops, g.resyncs, g.reconnects, g.watchers)
		if err != nil {
			return nil, err
		}
		g.reg = reg
	}
	g.managers[m] = struct{}{}
	return func() { g.remove(m) }, nil
}

func (g *observedGroup) observe(_ context.Context, o metric.Observer) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	total, watchers := g.retired, 0
	for m := range g.managers {
		st := m.hub.Stats()
		total.Queued += st.Queued
		total.Drops += st.Drops
		total.Resyncs += st.Resyncs
		total.Reconnects += st.Reconnects
		watchers += m.watches.watchers()
	}
	o.ObserveInt64(g.queued, int64(total.Queued))
	o.ObserveInt64(g.drops, total.Drops)
	o.ObserveInt64(g.resyncs, total.Resyncs)
	o.ObserveInt64(g.reconnects, total.Reconnects)
	o.ObserveInt64(g.watchers, int64(watchers))
	return nil
}

// remove takes m out of the group, keeping its counts.
func (g *observedGroup) remove(m *Manager) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.managers[m]; !ok {
		return
	}
	st := m.hub.Stats()
	g.retired.Drops += st.Drops
	g.retired.Resyncs += st.Resyncs
	g.retired.Reconnects += st.Reconnects
	delete(g.managers, m)
	if len(g.managers) == 0 && g.reg != nil {
		_ = g.reg.Unregister()
		g.reg = nil
	}
}

// close takes the Manager out of its observed instruments.
func (t *telemetry) close() {
	if t != nil && t.unobserve != nil {
		t.unobserve()
	}
}

// opt returns the measurement option of the attributes k1=v1 (and k2=v2
// when k2 is set), made once.
func (t *telemetry) opt(k1 attribute.Key, v1 string, k2 attribute.Key, v2 string) metric.MeasurementOption {
	key := optKey{string(k1), v1, string(k2), v2}
	if o, ok := t.opts.Load(key); ok {
		return o.(metric.MeasurementOption)
	}
	attrs := []attribute.KeyValue{k1.String(v1)}
	if k2 != "" {
		attrs = append(attrs, k2.String(v2))
	}
	o := metric.WithAttributeSet(attribute.NewSet(attrs...))
	t.opts.Store(key, o)
	return o
}

// call is one Manager call being reported; the zero call reports nothing.
type call struct {
	t     *telemetry
	ctx   context.Context
	span  trace.Span
	op    string
	write bool
}

// start starts reporting a call of operation op on session id (write: it
// writes, and counts in synckairos.writes).
func (t *telemetry) start(ctx context.Context, op, id string, write bool) (context.Context, call) {
	if t == nil {
		return ctx, call{}
	}
	c := call{t: t, op: op, write: write}
	if t.tracer != nil {
		attrs := []attribute.KeyValue{attrOperation.String(op)}
		if !t.omitSessionID && id != "" {
			attrs = append(attrs, attrSessionID.String(id))
		}
		ctx, c.span = t.tracer.Start(ctx, "synckairos."+op, trace.WithAttributes(attrs...))
	}
	c.ctx = ctx
	return ctx, c
}

// end ends the call with its error. Small, so that it inlines and err does
// not escape when telemetry is off.
func (c call) end(err *error) {
	if c.t == nil {
		return
	}
	if r := recover(); r != nil {
		c.t.finish(c, fmt.Errorf("synckairos: %s panicked: %v", c.op, r))
		panic(r)
	}
	c.t.finish(c, *err)
}

func (t *telemetry) finish(c call, err error) {
	outcome := outcomeOf(err)
	if c.span != nil {
		if err != nil {
			c.span.SetAttributes(attrOutcome.String(outcome))
			if outcome == outcomeError || outcome == outcomeUnavailable || outcome == outcomeNotReplicated {
				c.span.RecordError(err)
				c.span.SetStatus(codes.Error, err.Error())
			}
		}
		c.span.End()
	}
	if c.write && t.writes != nil {
		t.writes.Add(c.ctx, 1, t.opt(attrOperation, c.op, attrOutcome, outcome))
	}
}

// outcomeOf classifies a call's error.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return outcomeWritten
	case errors.Is(err, ErrVersionConflict):
		return outcomeConflict
	case errors.Is(err, ErrSessionNotFound):
		return outcomeNotFound
	case errors.Is(err, ErrSessionExists):
		return outcomeExists
	case errors.Is(err, ErrNotReplicated):
		return outcomeNotReplicated
	case errors.Is(err, ErrUnavailable):
		return outcomeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outcomeCanceled
	case isType[*StateError](err), isType[*TransitionError](err), isType[*TurnError](err), errors.Is(err, ErrInvalidState),
		errors.Is(err, ErrReentrant), errors.Is(err, ErrParticipantNotFound), errors.Is(err, ErrTimeRanOut):
		return outcomeRefused
	}
	return outcomeError
}

func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// committed counts a committed change.
func (t *telemetry) committed(ctx context.Context, typ string) {
	if t != nil && t.transitions != nil {
		t.transitions.Add(ctx, 1, t.opt(attrTransition, typ, "", ""))
	}
}

// attempt counts a compare-and-set attempt.
func (t *telemetry) attempt(ctx context.Context) {
	if t != nil && t.attempts != nil {
		t.attempts.Add(ctx, 1)
	}
}

func (t *telemetry) shortfall(ctx context.Context) {
	if t != nil && t.shortfalls != nil {
		t.shortfalls.Add(ctx, 1)
	}
}

// expired counts an expiry written late by lateness.
func (t *telemetry) expired(ctx context.Context, lateness time.Duration) {
	if t != nil && t.expiries != nil {
		t.expiries.Add(ctx, 1)
		t.lateness.Record(ctx, max(lateness, 0).Seconds())
	}
}

func (t *telemetry) expirerCheck() {
	if t != nil && t.expirerChecks != nil {
		t.expirerChecks.Add(context.Background(), 1)
	}
}

func (t *telemetry) indexRead() {
	if t != nil && t.indexReads != nil {
		t.indexReads.Add(context.Background(), 1)
	}
}

func (t *telemetry) finished(outcome string) {
	if t != nil && t.finishes != nil {
		t.finishes.Add(context.Background(), 1, t.opt(attrOutcome, outcome, "", ""))
	}
}
