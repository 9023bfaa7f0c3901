package main

import (
	"context"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/testenv"
)

// BenchmarkSDK measures GetSession and SwitchCycle on the real Redis with
// Telemetry off and with the OpenTelemetry SDK recording metrics, spans, or both (a manual metric
// reader, every span sampled and batched to a no-op exporter), the two
// Managers called in the same iterations, each first every other time; x-off-p50 is the
// ratio of their medians:
//
//	cd examples/telemetry && go test -run '^$' -bench SDK -count 6 -benchtime 5000x .
func BenchmarkSDK(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	for _, with := range []string{"metrics", "traces", "both"} {
		tel := &synckairos.Telemetry{}
		if with != "traces" {
			tel.MeterProvider = mp
		}
		if with != "metrics" {
			tel.TracerProvider = tp
		}
		for _, call := range []string{"get", "switch"} {
			benchSDK(b, with, call, tel)
		}
	}
}

func benchSDK(b *testing.B, with, call string, tel *synckairos.Telemetry) {
	{
		b.Run("with="+with+"/call="+call, func(b *testing.B) {
			prefix := "sktest:otelbench:" + random() + ":"
			client := testenv.RedisClient(b, testenv.RedisURL())
			b.Cleanup(func() { testenv.DeletePrefix(b, client, prefix) })
			open := func(tel *synckairos.Telemetry) *synckairos.Manager {
				m, err := synckairos.New(client, &synckairos.Config{KeyPrefix: prefix, Telemetry: tel})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { m.Close() })
				return m
			}
			off, on := open(nil), open(tel)
			ctx := context.Background()
			op := func(m *synckairos.Manager, id string) func() {
				s := &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Participants: []synckairos.Participant{
					{ID: "white", TotalTime: time.Hour}, {ID: "black", TotalTime: time.Hour}}}
				if _, err := m.CreateSession(ctx, s); err != nil {
					b.Fatal(err)
				}
				if _, err := m.StartSession(ctx, id); err != nil {
					b.Fatal(err)
				}
				if call == "get" {
					return func() {
						if _, err := m.GetSession(ctx, id); err != nil {
							b.Fatal(err)
						}
					}
				}
				return func() {
					if _, err := m.SwitchCycle(ctx, id, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			offOp, onOp := op(off, "off"), op(on, "on")
			var offLat, onLat []time.Duration
			timed := func(f func()) time.Duration {
				start := time.Now()
				f()
				return time.Since(start)
			}
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 { // each first half the time
					offLat = append(offLat, timed(offOp))
					onLat = append(onLat, timed(onOp))
				} else {
					onLat = append(onLat, timed(onOp))
					offLat = append(offLat, timed(offOp))
				}
			}
			slices.Sort(offLat)
			slices.Sort(onLat)
			p50off, p50on := offLat[len(offLat)/2], onLat[len(onLat)/2]
			b.ReportMetric(float64(p50off.Nanoseconds()), "off-p50-ns")
			b.ReportMetric(float64(p50on.Nanoseconds()), "sdk-p50-ns")
			b.ReportMetric(float64(p50on)/float64(p50off), "x-off-p50")
		})
	}
}
