package testenv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// StartRedis starts a Redis server of the test's own, on a free port,
// stopped when the test ends, and returns its URL: for measurements that
// read the server's INFO commandstats, which the shared Redis mixes with
// every other test's. Without redis-server on the PATH the test is
// Unavailable.
func StartRedis(tb testing.TB) string {
	tb.Helper()
	url, _ := StartRedisWith(tb, 5*time.Second)
	return url
}

// StartRedisWith is StartRedis with the server run under a wrapper command
// (valgrind, say), given up to wait to answer. It returns the server's
// process too, for a test that stops it itself (SHUTDOWN) to read what the
// wrapper writes at exit.
func StartRedisWith(tb testing.TB, wait time.Duration, wrapper ...string) (string, *exec.Cmd) {
	tb.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "redis-server", err)
	}
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		args := slices.Concat(wrapper, []string{server, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"})
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		url := "redis://127.0.0.1:" + port + "/0"
		if waitPing(url, wait) {
			tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return url, cmd
		}
		_ = cmd.Process.Kill() // the port was taken meanwhile
		_ = cmd.Wait()
	}
	tb.Fatal("testenv: redis-server did not start")
	return "", nil
}

func waitPing(url string, wait time.Duration) bool {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return false
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		opt.DisableCache = true
		c, err := rueidis.NewClient(opt)
		if err != nil {
			continue
		}
		err = c.Do(context.Background(), c.B().Ping().Build()).Error()
		c.Close()
		if err == nil {
			return true
		}
	}
	return false
}

// CommandCalls returns the calls of every command the server at client ran,
// from INFO commandstats ("cmdstat_get" → calls), and their total.
func CommandCalls(tb testing.TB, client rueidis.Client) (map[string]int64, int64) {
	tb.Helper()
	calls, total := map[string]int64{}, int64(0)
	for name, st := range CommandStats(tb, client) {
		calls[name] = st.Calls
		total += st.Calls
	}
	return calls, total
}

// CommandStat is one command's line of INFO commandstats.
type CommandStat struct {
	Calls int64
	Usec  int64 // the time the server spent in it, in µs
}

// Minus returns the calls and time of s since o.
func (s CommandStat) Minus(o CommandStat) CommandStat {
	return CommandStat{s.Calls - o.Calls, s.Usec - o.Usec}
}

// PerCall returns the µs per call.
func (s CommandStat) PerCall() float64 { return float64(s.Usec) / float64(s.Calls) }

// CommandStats returns INFO commandstats of the server at client, by
// command ("get", "evalsha").
func CommandStats(tb testing.TB, client rueidis.Client) map[string]CommandStat {
	tb.Helper()
	info, err := client.Do(context.Background(), client.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		tb.Fatal(err)
	}
	stats := map[string]CommandStat{}
	for line := range strings.Lines(info) {
		// cmdstat_get:calls=2,usec=5,usec_per_call=2.50,...
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var st CommandStat
		for kv := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.Calls = n
			case "usec":
				st.Usec = n
			}
		}
		stats[name] = st
	}
	if len(stats) == 0 {
		tb.Fatal(fmt.Errorf("testenv: no commandstats in %q", info))
	}
	return stats
}
