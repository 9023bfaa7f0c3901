package synckairos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/testenv"
)

// BenchmarkWriteScriptRedisCPU measures what a write costs Redis itself: the
// time per call of the write script (INFO commandstats, EVALSHA
// usec_per_call) for a switch of a 2-participant game, against a GET of a
// value of the state's size on the same server in the same run. It runs on
// a Redis of its own, so that no other test's commands mix in, with one
// subscriber to the session's changes (whose delivery is part of the
// write's work), with messages of format 2 and of format 3
// (Config.MessageFormat). The figures vary by a fifth from run to run on a
// shared machine; TestWriteScriptInstructions counts instructions, which do
// not.
//
//	go test -run '^$' -bench WriteScriptRedisCPU -benchtime 20000x -count 5 .
func BenchmarkWriteScriptRedisCPU(b *testing.B) {
	for _, format := range []int{2, 3} {
		for _, audit := range []bool{false, true} {
			b.Run(fmt.Sprintf("format=%d/audit=%v", format, audit), func(b *testing.B) {
				benchWriteScriptRedisCPU(b, &synckairos.Config{Audit: audit, MessageFormat: format})
			})
		}
	}
}

// scriptBench starts a Redis of its own with a Manager of cfg, a
// 2-participant session, the reference GET and one subscriber to the
// session's changes, and returns them with a client of that Redis and its
// URL.
func scriptBench(b *testing.B, cfg *synckairos.Config) (*synckairos.Manager, rawGet, *synckairos.State, rueidis.Client, string) {
	url := testenv.StartRedis(b)
	m, raw, state := benchSetupCfg(b, url, 2, cfg)
	sub, err := m.SubscribeToUpdates(context.Background(), func(synckairos.SessionEvent) {})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sub.Close() })
	return m, raw, state, newClientAt(b, url), url
}

func benchWriteScriptRedisCPU(b *testing.B, cfg *synckairos.Config) {
	m, raw, state, client, _ := scriptBench(b, cfg)
	ctx := context.Background()
	before := testenv.CommandStats(b, client)
	held := state
	for b.Loop() {
		raw.get()
		r, err := m.SwitchCycle(ctx, state.SessionID, &synckairos.SwitchOptions{Current: held})
		if err != nil {
			b.Fatal(err)
		}
		held = r.State
	}
	after := testenv.CommandStats(b, client)
	script, get := after["evalsha"].Minus(before["evalsha"]), after["get"].Minus(before["get"])
	if script.Calls < int64(b.N) || get.Calls < int64(b.N) {
		b.Fatalf("%d EVALSHA and %d GET calls counted for %d switches", script.Calls, get.Calls, b.N)
	}
	b.ReportMetric(script.PerCall(), "script-redis-µs")
	b.ReportMetric(get.PerCall(), "get-redis-µs")
	b.ReportMetric(script.PerCall()/get.PerCall(), "script-x-get")
	if testing.Verbose() {
		for name, st := range after {
			if d := st.Minus(before[name]); d.Calls > 0 {
				b.Logf("%s: %d calls, %.2f µs per call", name, d.Calls, d.PerCall())
			}
		}
	}
}

// TestWriteScriptInstructions counts the instructions Redis runs for the
// write script of a 2-participant switch, and for a GET of a value of the
// state's size, under valgrind's callgrind (which counts the same for the
// same binary and inputs, whatever else the machine does). A measurement:
// it runs with SYNCKAIROS_MEASURE=callgrind and valgrind on the PATH.
//
//	SYNCKAIROS_MEASURE=callgrind go test -run '^TestWriteScriptInstructions$' -v .
func TestWriteScriptInstructions(t *testing.T) {
	if os.Getenv("SYNCKAIROS_MEASURE") != "callgrind" {
		t.Skip("a measurement: SYNCKAIROS_MEASURE=callgrind runs it")
	}
	if _, err := exec.LookPath("valgrind"); err != nil {
		t.Skip("no valgrind on the PATH")
	}
	for _, format := range []int{2, 3} {
		for _, audit := range []bool{false, true} {
			perScript, perGet := scriptInstructions(t, audit, format)
			t.Logf("format=%d audit=%v: write script %.0f instructions per call, GET %.0f: ×%.0f", format, audit, perScript, perGet, perScript/perGet)
		}
	}
}

// scriptInstructions runs n switches and n GETs on a Redis of its own under
// callgrind, with the Manager publishing messages of the given format, and
// returns the instructions per write script and per GET.
func scriptInstructions(t *testing.T, audit bool, format int) (perScript, perGet float64) {
	out := filepath.Join(t.TempDir(), "callgrind.out")
	url, server := testenv.StartRedisWith(t, time.Minute, "valgrind", "--tool=callgrind",
		"--callgrind-out-file="+out, "--collect-atstart=no",
		"--toggle-collect=evalGenericCommand", "--toggle-collect=getCommand")
	const n = 500
	ctx := context.Background()
	client := newClientAt(t, url) // a server of its own: no prefix to delete
	m, err := synckairos.New(client, &synckairos.Config{Audit: audit, MessageFormat: format})
	if err != nil {
		t.Fatal(err)
	}
	s := newState("bench", 2)
	s.ActiveParticipantID, s.Status = "p0", synckairos.StatusRunning
	now := time.Now()
	s.CycleStartedAt, s.SessionStartedAt = &now, &now
	state, err := m.CreateSession(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	value, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Do(ctx, client.B().Set().Key("raw").Value(string(value)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	sub, err := m.SubscribeToUpdates(ctx, func(synckairos.SessionEvent) {})
	if err != nil {
		t.Fatal(err)
	}
	held := state
	for range n {
		if err := client.Do(ctx, client.B().Get().Key("raw").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		r, err := m.SwitchCycle(ctx, state.SessionID, &synckairos.SwitchOptions{Current: held})
		if err != nil {
			t.Fatal(err)
		}
		held = r.State
	}
	sub.Close()
	m.Close()
	stats := testenv.CommandStats(t, client)
	// SHUTDOWN ends the server, and callgrind writes its counts.
	_ = client.Do(ctx, client.B().Shutdown().Nosave().Build()).Error()
	if err := server.Wait(); err != nil {
		t.Fatalf("redis-server under valgrind: %v", err)
	}
	report, err := exec.Command("callgrind_annotate", "--inclusive=yes", out).Output()
	if err != nil {
		t.Fatalf("callgrind_annotate: %v", err)
	}
	inclusive := func(fn string) int64 {
		for line := range strings.Lines(string(report)) {
			if strings.Contains(line, ":"+fn+" ") {
				n, _ := strconv.ParseInt(strings.ReplaceAll(strings.Fields(line)[0], ",", ""), 10, 64)
				return n
			}
		}
		t.Fatalf("no %s in the callgrind report", fn)
		return 0
	}
	// The session's creation counts with the switches (1 of n+1 scripts;
	// the first EVALSHA, refused for a script not loaded yet, is a call
	// too), and the GET the creation's script makes with the GETs.
	scripts, gets := stats["evalsha"].Calls, stats["get"].Calls
	if gets < n || scripts < n+1 {
		t.Fatalf("%d GET and %d EVALSHA calls for %d switches", gets, scripts, n)
	}
	return float64(inclusive("evalGenericCommand")) / float64(scripts), float64(inclusive("getCommand")) / float64(gets)
}

// floorSource is the least a write can do in a script: the commands of a
// switch with nothing around them (no version check, no message built: the
// state is published as it is stored), on the same keys and values.
const floorSource = `
redis.call('HMGET', KEYS[1], 'v', 'l', 'st')
redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', ARGV[2], 'l', ARGV[3], 'st', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[8])
return 1`

// BenchmarkWriteScriptFloor measures, on a Redis of its own with one
// subscriber, the write script of a 2-participant switch (EVALSHA time per
// call, INFO commandstats) and then, as many times, the floor under any
// script doing its work (floorSource, with the same state), each against a
// GET of a value of the state's size in the same phase: what Redis's Lua
// itself costs, whatever the script does.
//
//	go test -run '^$' -bench WriteScriptFloor -benchtime 20000x -count 3 .
func BenchmarkWriteScriptFloor(b *testing.B) {
	m, raw, state, client, url := scriptBench(b, &synckairos.Config{})
	ctx := context.Background()
	layout := synckairos.KeysOf(m)
	key, channel := layout.Session(state.SessionID), layout.Updates()
	deadlines := layout.Deadlines(layout.Partition(state.SessionID))
	stored, err := client.Do(ctx, client.B().Hget().Key(key).Field("s").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	// The floor publishes to a channel of its own, with a raw subscriber:
	// its messages are not the library's.
	floorChannel := channel + ":floor"
	listener := newClientAt(b, url)
	listening := make(chan struct{})
	go func() {
		_ = listener.Receive(ctx, listener.B().Subscribe().Channel(floorChannel).Build(), func(rueidis.PubSubMessage) {})
		close(listening)
	}()
	defer func() { listener.Close(); <-listening }()
	for {
		n, err := client.Do(ctx, client.B().PubsubNumsub().Channel(floorChannel).Build()).AsIntMap()
		if err != nil {
			b.Fatal(err)
		}
		if n[floorChannel] == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	floor := rueidis.NewLuaScript(floorSource)
	phase := func(n int, op func()) (script, get testenv.CommandStat) {
		before := testenv.CommandStats(b, client)
		for range n {
			raw.get()
			op()
		}
		after := testenv.CommandStats(b, client)
		return after["evalsha"].Minus(before["evalsha"]), after["get"].Minus(before["get"])
	}
	b.ResetTimer()
	held := state
	script, get := phase(b.N, func() {
		r, err := m.SwitchCycle(ctx, state.SessionID, &synckairos.SwitchOptions{Current: held})
		if err != nil {
			b.Fatal(err)
		}
		held = r.State
	})
	version := held.Version
	floorStats, floorGet := phase(b.N, func() {
		version++
		args := []string{strconv.FormatInt(version, 10), stored, strconv.FormatInt(held.Life, 10), "running", "3600000",
			floorChannel, strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10), state.SessionID}
		if err := floor.Exec(ctx, client, []string{key, deadlines}, args).Error(); err != nil {
			b.Fatal(err)
		}
	})
	if script.Calls < int64(b.N) || floorStats.Calls < int64(b.N) {
		b.Fatalf("%d and %d EVALSHA calls counted for %d each", script.Calls, floorStats.Calls, b.N)
	}
	b.ReportMetric(script.PerCall(), "script-redis-µs")
	b.ReportMetric(floorStats.PerCall(), "floor-redis-µs")
	b.ReportMetric(script.PerCall()/get.PerCall(), "script-x-get")
	b.ReportMetric(floorStats.PerCall()/floorGet.PerCall(), "floor-x-get")
}
