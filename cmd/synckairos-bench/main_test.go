package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synckairos/synckairos/internal/testenv"
)

// smoke runs scenarios briefly on small data and checks every figure is
// there, with nothing lost and no error.
func smoke(t *testing.T, redisURL string, scenarios ...string) []Result {
	t.Helper()
	return smokeWith(t, redisURL, nil, scenarios...)
}

func smokeWith(t *testing.T, redisURL string, flags []string, scenarios ...string) []Result {
	t.Helper()
	testenv.RedisClient(t, redisURL) // skips without Redis
	var errOut bytes.Buffer
	o, err := parseFlags(append([]string{"-redis", redisURL, "-postgres", testenv.DatabaseURL(), "-duration", "400ms",
		"-sessions", "64", "-concurrency", "8", "-watchers", "200", "-format", "json", "-scenarios", strings.Join(scenarios, ",")}, flags...), &errOut)
	if err != nil {
		t.Fatal(err)
	}
	o.progress = &errOut
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, o, &out); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var results []Result
	if err := json.Unmarshal(out.Bytes(), &results); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(results) != len(scenarios) {
		t.Fatalf("%d results for %d scenarios", len(results), len(scenarios))
	}
	for i, r := range results {
		if r.Scenario != scenarios[i] {
			t.Errorf("result %d is %q, want %q", i, r.Scenario, scenarios[i])
		}
		// An expiry's lateness is in whole milliseconds of the Redis clock:
		// on time, it is 0.
		if r.Op.Ops == 0 || (r.Op.P50 <= 0 && r.Scenario != "expiry") || r.Op.P50 < 0 || r.Op.Max < r.Op.P99 || r.Op.P99 < r.Op.P50 || r.Op.Errors != 0 {
			t.Errorf("%s: figures %+v", r.Scenario, r.Op)
		}
		if r.Reference == nil || r.Reference.Ops == 0 || r.Reference.P50 <= 0 {
			t.Errorf("%s: no reference: %+v", r.Scenario, r.Reference)
		}
		if r.LostUpdates != 0 && r.Scenario != "get" {
			t.Errorf("%s: %d lost updates", r.Scenario, r.LostUpdates)
		}
	}
	// The text form of the same results.
	var text bytes.Buffer
	for i := range results {
		results[i].print(&text)
	}
	if !strings.Contains(text.String(), "p99") || !strings.Contains(text.String(), "lost updates: 0") {
		t.Errorf("text output:\n%s", text.String())
	}
	return results
}

func TestSmoke(t *testing.T) {
	scenarios := []string{"get", "update", "mutate-contended", "switch", "pubsub", "expiry", "watch"}
	if conn, err := pgx.Connect(context.Background(), testenv.DatabaseURL()); err != nil {
		testenv.Unavailable(t, "Postgres", err)
	} else {
		conn.Close(context.Background())
		scenarios = append(scenarios, "audit")
	}
	smoke(t, testenv.RedisURL(), scenarios...)
}

// With -metrics each scenario carries the library's own account of it:
// its switches written, every attempt, no conflict; and the text shows it.
func TestMetrics(t *testing.T) {
	r := smokeWith(t, testenv.RedisURL(), []string{"-metrics"}, "switch")[0]
	values := map[string]float64{}
	for _, m := range r.Metrics {
		values[m.Name+"{"+m.Attributes+"}"] = m.Value
	}
	switches := values["synckairos.writes{operation=SwitchCycle,outcome=written}"]
	if switches != float64(r.Op.Ops) || values["synckairos.writes{operation=StartSession,outcome=written}"] != 64 ||
		values["synckairos.mutate.attempts{}"] != switches+64 {
		t.Errorf("%d switches measured; metrics %v", r.Op.Ops, values)
	}
	var text bytes.Buffer
	r.print(&text)
	if !strings.Contains(text.String(), "synckairos.writes{operation=SwitchCycle,outcome=written}") {
		t.Errorf("text output:\n%s", text.String())
	}
}

func TestSmokeOnCluster(t *testing.T) {
	smoke(t, testenv.StartCluster(t).URL(), "get", "update", "switch", "pubsub", "expiry")
}

func TestFlags(t *testing.T) {
	var errOut bytes.Buffer
	for _, args := range [][]string{
		{"-scenarios", "get,nope"},
		{"-format", "xml"},
		{"-duration", "1ms"},
		{"-participants", "0"},
		{"extra"},
	} {
		if _, err := parseFlags(args, &errOut); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err := parseFlags([]string{"-scenarios", "get, switch", "-quiet"}, &errOut)
	if err != nil || len(o.scenarios) != 2 || o.progress != nil {
		t.Errorf("parsed %+v, %v", o, err)
	}
}
