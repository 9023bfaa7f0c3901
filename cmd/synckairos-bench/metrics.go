package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/synckairos/synckairos"
)

// With -metrics, every Manager of a scenario (and its audit worker) reports
// through OpenTelemetry to a meter provider of the scenario's own, read
// when the scenario ends: the library's own account of the run (writes by
// outcome, conflicts retried, expiries and their lateness, drops, …; see
// docs/TELEMETRY.md), beside the tool's measurements.

// scenarioTelemetry starts a scenario's meter provider, or returns nil
// without -metrics.
func (b *bench) scenarioTelemetry() *sdkmetric.ManualReader {
	if !b.o.metrics {
		b.tel = nil
		return nil
	}
	reader := sdkmetric.NewManualReader()
	b.tel = &synckairos.Telemetry{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))}
	return reader
}

// Metric is one data point the library reported.
type Metric struct {
	Name string `json:"name"`
	// Attributes are the point's, as key=value,… ("" for none).
	Attributes string `json:"attributes,omitempty"`
	// Value is a counter's or gauge's value; for a histogram, the mean.
	Value float64 `json:"value"`
	// Count and Max are a histogram's.
	Count uint64  `json:"count,omitempty"`
	Max   float64 `json:"max,omitempty"`
	Unit  string  `json:"unit,omitempty"`
}

// readMetrics reads every data point of reader, sorted by name.
func readMetrics(ctx context.Context, reader *sdkmetric.ManualReader) ([]Metric, error) {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	var out []Metric
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			add := func(set attribute.Set, v float64) {
				out = append(out, Metric{Name: m.Name, Attributes: attrs(set), Value: v, Unit: m.Unit})
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, float64(p.Value))
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes, p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					x := Metric{Name: m.Name, Attributes: attrs(p.Attributes), Count: p.Count, Unit: m.Unit}
					if p.Count > 0 {
						x.Value = p.Sum / float64(p.Count)
					}
					if v, ok := p.Max.Value(); ok {
						x.Max = v
					}
					out = append(out, x)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Metric) int {
		return strings.Compare(a.Name+"{"+a.Attributes, b.Name+"{"+b.Attributes)
	})
	return out, nil
}

func attrs(set attribute.Set) string {
	var parts []string
	for _, kv := range set.ToSlice() {
		parts = append(parts, strings.TrimPrefix(string(kv.Key), "synckairos.")+"="+kv.Value.String())
	}
	return strings.Join(parts, ",")
}

func printMetrics(w io.Writer, ms []Metric) {
	if len(ms) == 0 {
		return
	}
	fmt.Fprintln(w, "  metrics (the library's telemetry):")
	for _, m := range ms {
		name := m.Name
		if m.Attributes != "" {
			name += "{" + m.Attributes + "}"
		}
		if m.Count > 0 {
			fmt.Fprintf(w, "    %-70s count %d  mean %.4g %s  max %.4g %s\n", name, m.Count, m.Value, m.Unit, m.Max, m.Unit)
			continue
		}
		fmt.Fprintf(w, "    %-70s %.0f\n", name, m.Value)
	}
}
