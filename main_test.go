package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/redis/rueidis"
	"go.uber.org/goleak"

	"github.com/synckairos/synckairos"

	"github.com/synckairos/synckairos/internal/rediscluster"
	"github.com/synckairos/synckairos/internal/testenv"
)

// Every Manager, client and fake a test opens is closed by its cleanup: no
// goroutine outlives the tests. The Redis Cluster, started by the first test
// that needs it, is stopped after the last.
func TestMain(m *testing.M) {
	if os.Getenv(finisherChildEnv) != "" {
		os.Exit(finisherChild()) // a finisher process of TestFinishOnceAcrossProcesses
	}
	testenv.RaiseParallel(8)
	code := m.Run()
	if testCluster != nil {
		testCluster.Stop()
	}
	if code == 0 {
		if err := goleak.Find(testenv.RueidisLeftovers()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	clusterOnce sync.Once
	testCluster *rediscluster.Cluster
	clusterErr  error
)

// clusterURL returns the URL of the tests' Redis Cluster, starting it on
// first use; it skips the test where redis-server is not on the PATH (fails
// under SYNCKAIROS_REQUIRE_SERVICES=1).
func clusterURL(tb testing.TB) string {
	tb.Helper()
	clusterOnce.Do(func() { testCluster, clusterErr = rediscluster.Start(context.Background(), testenv.ClusterMasters()) })
	if errors.Is(clusterErr, rediscluster.ErrNoBinaries) && os.Getenv("SYNCKAIROS_REQUIRE_SERVICES") != "1" {
		tb.Skipf("no Redis Cluster: %v", clusterErr)
	}
	if clusterErr != nil {
		tb.Fatalf("Redis Cluster: %v", clusterErr)
	}
	return testCluster.URL()
}

// ownCluster starts a Redis Cluster of 3 masters and 3 replicas for one test
// alone, which may kill, pause or reshard it; it is stopped when the test
// ends.
func ownCluster(t *testing.T) *rediscluster.Cluster {
	t.Helper()
	c, err := rediscluster.Start(context.Background(), 3)
	if errors.Is(err, rediscluster.ErrNoBinaries) {
		clusterURL(t) // skips, or fails under SYNCKAIROS_REQUIRE_SERVICES
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// managerOn returns a Manager on the cluster at url, closed when the test
// ends.
func managerOn(t *testing.T, url string, cfg *synckairos.Config) *synckairos.Manager {
	t.Helper()
	m, err := synckairos.New(newClientAt(t, url), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// nodeServing returns the address of the node that serves key: the one that
// answers for it instead of redirecting.
func nodeServing(t *testing.T, raw rueidis.Client, key string) string {
	t.Helper()
	for addr, node := range raw.Nodes() {
		if node.Do(context.Background(), node.B().Exists().Key(key).Build()).Error() == nil {
			return addr
		}
	}
	t.Fatalf("no node serves %q", key)
	return ""
}
