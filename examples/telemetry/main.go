// Telemetry plays a short game with OpenTelemetry on, and prints what the
// Manager reported: a span per call, nested under the host's span, and the
// metrics (docs/TELEMETRY.md), with the SDK's stdout exporters:
//
//	cd examples/telemetry && go run .
//
// It runs on the embedded default (no Redis needed), or on the Redis of
// SYNCKAIROS_REDIS_URL. It is a module of its own, so that the OpenTelemetry
// SDK and exporters are no dependency of synckairos's users: the library
// needs only the OpenTelemetry API.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

func main() {
	ctx := context.Background()
	spans, err := stdouttrace.New(stdouttrace.WithPrettyPrint())
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	metrics, err := stdoutmetric.New(stdoutmetric.WithPrettyPrint())
	if err != nil {
		log.Fatal(err)
	}
	reader := sdkmetric.NewPeriodicReader(metrics, sdkmetric.WithInterval(time.Hour)) // read once, at Shutdown
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	m, stop, err := open(ctx, &synckairos.Config{
		KeyPrefix: "telemetry-example:",
		Telemetry: &synckairos.Telemetry{MeterProvider: mp, TracerProvider: tp},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := play(ctx, tp, m); err != nil {
		log.Fatal(err)
	}
	defer stop()
	if err := tp.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	if err := mp.Shutdown(ctx); err != nil { // exports the metrics, the Manager's gauges included
		log.Fatal(err)
	}
}

// play is the host's code: a game of three moves and a refused one, under a
// span of its own.
func play(ctx context.Context, tp *sdktrace.TracerProvider, m *synckairos.Manager) error {
	ctx, span := tp.Tracer("example/host").Start(ctx, "play a game")
	defer span.End()
	control, _ := synckairos.ParseTimeControl("3+2")
	id := fmt.Sprintf("game-%d", time.Now().UnixNano())
	if _, err := m.CreateSession(ctx, control.NewSession(id, "white", "black")); err != nil {
		return err
	}
	defer m.DeleteSession(context.WithoutCancel(ctx), id)
	if _, err := m.StartSession(ctx, id); err != nil {
		return err
	}
	for turn, from := range []string{"white", "black", "white"} {
		if _, err := m.SwitchCycle(ctx, id, &synckairos.SwitchOptions{From: from, Turn: int64(turn + 1)}); err != nil {
			return err
		}
	}
	if _, err := m.SwitchCycle(ctx, id, &synckairos.SwitchOptions{From: "white"}); err == nil {
		return fmt.Errorf("a move out of turn was accepted")
	}
	_, err := m.CompleteSession(ctx, id)
	return err
}

// open returns a Manager on SYNCKAIROS_REDIS_URL, or on an embedded Redis.
func open(ctx context.Context, cfg *synckairos.Config) (*synckairos.Manager, func(), error) {
	if url := os.Getenv("SYNCKAIROS_REDIS_URL"); url != "" {
		m, err := synckairos.Dial(ctx, url, cfg)
		if err != nil {
			return nil, nil, err
		}
		return m, func() { m.Close() }, nil
	}
	srv, err := synckairostest.NewServer()
	if err != nil {
		return nil, nil, err
	}
	client, err := srv.NewClient()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	m, err := synckairos.New(client, cfg)
	if err != nil {
		client.Close()
		srv.Close()
		return nil, nil, err
	}
	return m, func() { m.Close(); client.Close(); srv.Close() }, nil
}
