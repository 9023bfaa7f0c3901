package audit

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/synckairos/synckairos"
)

// instrumentationName is the name of the audit pipeline's meter and tracer.
const instrumentationName = synckairos.InstrumentationName + "/audit"

// statsTimeout bounds the Stats call of one metrics collection.
const statsTimeout = 5 * time.Second

// relayTelemetry is a relay's instruments; nil when it has none.
type relayTelemetry struct {
	tracer trace.Tracer // nil: no spans
	meter  metric.Meter // nil: no metrics
	moved  metric.Int64Counter
	// Observed from Relay.Stats at collection.
	backlog, pending, jobs metric.Int64ObservableGauge
	oldest                 metric.Float64ObservableGauge
}

func newRelayTelemetry(t *synckairos.Telemetry) (*relayTelemetry, error) {
	if t == nil || t.MeterProvider == nil && t.TracerProvider == nil {
		return nil, nil
	}
	rt := &relayTelemetry{}
	if t.TracerProvider != nil {
		rt.tracer = t.TracerProvider.Tracer(instrumentationName)
	}
	if t.MeterProvider == nil {
		return rt, nil
	}
	mt := t.MeterProvider.Meter(instrumentationName)
	rt.meter = mt
	var errs [5]error
	rt.moved, errs[0] = mt.Int64Counter("synckairos.audit.relay.moved", metric.WithUnit("{event}"),
		metric.WithDescription("Events moved from the outboxes into committed River jobs (and acknowledged)."))
	rt.backlog, errs[1] = mt.Int64ObservableGauge("synckairos.audit.outbox.backlog", metric.WithUnit("{event}"),
		metric.WithDescription("Events in the outboxes: not yet relayed, or relayed and not yet acknowledged."))
	rt.pending, errs[2] = mt.Int64ObservableGauge("synckairos.audit.outbox.pending", metric.WithUnit("{event}"),
		metric.WithDescription("Events a relay has read and not acknowledged."))
	rt.oldest, errs[3] = mt.Float64ObservableGauge("synckairos.audit.outbox.oldest_age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event in the outboxes."))
	rt.jobs, errs[4] = mt.Int64ObservableGauge("synckairos.audit.jobs", metric.WithUnit("{job}"),
		metric.WithDescription("Audit jobs in River, by state."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return rt, nil
}

// observe registers the observed instruments of r until the returned
// function is called.
func (rt *relayTelemetry) observe(r *Relay) func() {
	if rt == nil || rt.meter == nil {
		return func() {}
	}
	reg, err := rt.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, statsTimeout)
		defer cancel()
		st, err := r.Stats(ctx)
		if err != nil {
			return err
		}
		var backlog, pending int64
		for _, p := range st.Partitions {
			backlog += p.Length
			pending += p.Pending
		}
		o.ObserveInt64(rt.backlog, backlog)
		o.ObserveInt64(rt.pending, pending)
		o.ObserveFloat64(rt.oldest, st.OldestUnrelayed.Seconds())
		for state, n := range st.Jobs {
			o.ObserveInt64(rt.jobs, n, metric.WithAttributes(attribute.String("synckairos.job.state", state)))
		}
		return nil
	}, rt.backlog, rt.pending, rt.oldest, rt.jobs)
	if err != nil {
		r.cfg.Logger.Warn("synckairos: audit relay cannot register its metrics", "err", err)
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// batch starts the span of a relay batch of n events.
func (rt *relayTelemetry) batch(ctx context.Context, n int) (context.Context, trace.Span) {
	if rt == nil || rt.tracer == nil {
		return ctx, nil
	}
	return rt.tracer.Start(ctx, "synckairos.audit.relay.batch", trace.WithAttributes(attribute.Int("synckairos.events", n)))
}

// batchDone ends a batch of n events.
func (rt *relayTelemetry) batchDone(ctx context.Context, span trace.Span, n int, err error) {
	if rt == nil {
		return
	}
	if span != nil {
		endSpan(span, err)
	}
	if err == nil && rt.moved != nil {
		rt.moved.Add(ctx, int64(n))
	}
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// workerTelemetry is a worker's instruments; nil when it has none.
type workerTelemetry struct {
	tracer                    trace.Tracer
	rows, duplicates, failing metric.Int64Counter
}

func newWorkerTelemetry(t *synckairos.Telemetry) (*workerTelemetry, error) {
	if t == nil || t.MeterProvider == nil && t.TracerProvider == nil {
		return nil, nil
	}
	wt := &workerTelemetry{}
	if t.TracerProvider != nil {
		wt.tracer = t.TracerProvider.Tracer(instrumentationName)
	}
	if t.MeterProvider == nil {
		return wt, nil
	}
	mt := t.MeterProvider.Meter(instrumentationName)
	var errs [3]error
	wt.rows, errs[0] = mt.Int64Counter("synckairos.audit.worker.rows", metric.WithUnit("{event}"),
		metric.WithDescription("Events written to sync_events."))
	wt.duplicates, errs[1] = mt.Int64Counter("synckairos.audit.worker.duplicates", metric.WithUnit("{event}"),
		metric.WithDescription("Events already in sync_events (relayed twice), ignored."))
	wt.failing, errs[2] = mt.Int64Counter("synckairos.audit.worker.failures", metric.WithUnit("{event}"),
		metric.WithDescription("Events that will not reach Postgres (OnFailure): refused, undecodable, collided, or out of attempts."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return wt, nil
}

func (wt *workerTelemetry) job(ctx context.Context, n, attempt int) (context.Context, trace.Span) {
	if wt == nil || wt.tracer == nil {
		return ctx, nil
	}
	return wt.tracer.Start(ctx, "synckairos.audit.worker.batch", trace.WithAttributes(
		attribute.Int("synckairos.events", n), attribute.Int("synckairos.attempt", attempt)))
}

func (wt *workerTelemetry) jobDone(span trace.Span, err error) {
	if span != nil {
		endSpan(span, err)
	}
}

// wrote counts a transaction's events: inserted, and the rest of n not
// collided, duplicates.
func (wt *workerTelemetry) wrote(ctx context.Context, n int, inserted int64, collided int) {
	if wt == nil || wt.rows == nil {
		return
	}
	wt.rows.Add(ctx, inserted)
	if d := int64(n) - inserted - int64(collided); d > 0 {
		wt.duplicates.Add(ctx, d)
	}
}

func (wt *workerTelemetry) failed(ctx context.Context, n int) {
	if wt != nil && wt.failing != nil {
		wt.failing.Add(ctx, int64(n))
	}
}
