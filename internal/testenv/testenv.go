// Package testenv connects the tests of synckairos to the real services of
// the development machine: Redis at SYNCKAIROS_REDIS_URL and Postgres at
// SYNCKAIROS_DATABASE_URL, with the defaults of the README. A test whose
// service is missing skips, or fails under SYNCKAIROS_REQUIRE_SERVICES=1
// (as in CI).
package testenv

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/goleak"

	"github.com/synckairos/synckairos/internal/rediscluster"
)

// RedisURL returns the URL of the tests' Redis.
func RedisURL() string {
	return cmp.Or(os.Getenv("SYNCKAIROS_REDIS_URL"), "redis://127.0.0.1:6379/0")
}

// DatabaseURL returns the URL of the tests' Postgres database.
func DatabaseURL() string {
	return cmp.Or(os.Getenv("SYNCKAIROS_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// StartCluster starts a Redis Cluster of 3 masters and 3 replicas for the
// test, stopped when it ends; without redis-server on the PATH the test is
// Unavailable.
func StartCluster(tb testing.TB) *rediscluster.Cluster {
	tb.Helper()
	c, err := rediscluster.Start(context.Background(), ClusterMasters())
	if errors.Is(err, rediscluster.ErrNoBinaries) {
		Unavailable(tb, "Redis Cluster", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c
}

// Unavailable skips the test for a missing service, or fails it when
// services are required.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if os.Getenv("SYNCKAIROS_REQUIRE_SERVICES") == "1" {
		tb.Fatalf("%s is required (SYNCKAIROS_REQUIRE_SERVICES=1): %v", what, err)
	}
	tb.Skipf("no %s: %v", what, err)
}

// RedisClient connects to the Redis (or Redis Cluster) at url, with
// client-side caching off, and closes the client when the test ends.
func RedisClient(tb testing.TB, url string) rueidis.Client {
	tb.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		tb.Fatalf("Redis URL %q: %v", url, err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.Do(ctx, c.B().Ping().Build()).Error()
		cancel()
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		Unavailable(tb, "Redis at "+url+" (set SYNCKAIROS_REDIS_URL)", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// ScanPrefix returns the keys under prefix, from every node of a cluster.
func ScanPrefix(tb testing.TB, c rueidis.Client, prefix string) []string {
	ctx := context.Background()
	var keys []string
	for _, node := range c.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				tb.Logf("scan of %s: %v", prefix, err)
				break
			}
			keys = append(keys, e.Elements...)
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// DeletePrefix removes the keys of one test: shared servers are never
// flushed.
func DeletePrefix(tb testing.TB, c rueidis.Client, prefix string) {
	ctx := context.Background()
	for _, key := range ScanPrefix(tb, c, prefix) {
		c.Do(ctx, c.B().Del().Key(key).Build())
	}
}

// NoLeaks fails the test if goroutines remain that opts do not ignore, after
// waiting up to 5 s for them to end: under load, a goroutine of a closed
// connection (the fake server's side of it, say) takes a moment to see the
// close, longer than goleak's own half-second of retries.
func NoLeaks(tb testing.TB, opts ...goleak.Option) {
	tb.Helper()
	if err := Leaks(5*time.Second, opts...); err != nil {
		tb.Fatal(err)
	}
}

// RueidisLeftovers ignores the goroutines a closed rueidis cluster client
// leaves sleeping out a topology refresh backoff, or a delayed refresh;
// they end by themselves.
func RueidisLeftovers() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"),
	}
}

// Leaks returns the goroutines goleak finds (less those opts ignore), after
// waiting up to wait for them to end; nil when none is left.
func Leaks(wait time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(wait)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ClusterMasters is the number of masters of the clusters the tests start:
// SYNCKAIROS_CLUSTER_MASTERS (CI runs the suite once with 5), or 3.
func ClusterMasters() int {
	if n, err := strconv.Atoi(os.Getenv("SYNCKAIROS_CLUSTER_MASTERS")); err == nil && n >= 3 {
		return n
	}
	return 3
}

// RaiseParallel lets up to n tests that call t.Parallel run at once, unless
// the command line sets -test.parallel: call it in TestMain before m.Run.
// The default, GOMAXPROCS (2 on the development machine), suits tests that
// keep a core busy; these mostly wait on Redis, Postgres and their clocks.
func RaiseParallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	set := false // or fuzzing, where -test.parallel is the number of workers
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" || f.Name == "test.fuzz" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
