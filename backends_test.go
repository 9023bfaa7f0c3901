package synckairos_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/keys"
	"github.com/synckairos/synckairos/internal/testenv"
	"github.com/synckairos/synckairos/synckairostest"
)

// backend is one Redis the conformance suite runs on: the in-process fake or
// a real server. Each test gets its own key prefix.
type backend struct {
	name string
	// prefix is the test's key prefix.
	prefix string
	// newManager returns another Manager on the backend, with a client of
	// its own and the test's prefix, closed when the test ends.
	newManager func(cfg *synckairos.Config) *synckairos.Manager
	// raw is a plain client of the backend, to look at keys directly.
	raw rueidis.Client
	// fake is the fake's handle, nil on a real server.
	fake *synckairostest.Fake
	// url reaches the backend from another process; resp2 says it needs
	// RESP2 (the fake).
	url   string
	resp2 bool

	layoutOnce sync.Once
	layout     keys.Layout
	layoutErr  error
}

// keys returns the key layout of the backend's prefix, as its Managers
// resolve it.
func (b *backend) keys(t testing.TB) keys.Layout {
	t.Helper()
	b.layoutOnce.Do(func() {
		b.layout, b.layoutErr = synckairos.ResolveKeys(context.Background(), b.raw, b.prefix)
	})
	if b.layoutErr != nil {
		t.Fatal(b.layoutErr)
	}
	return b.layout
}

// sessionKey returns the Redis key of a session.
func (b *backend) sessionKey(t testing.TB, id string) string {
	return b.keys(t).Session(id)
}

// updatesChannel returns the channel on which the changes of a session are
// published: one for all, or on a cluster the sharded channel of its
// partition.
func (b *backend) updatesChannel(t testing.TB, id string) string {
	layout := b.keys(t)
	if b.name == "cluster" {
		return layout.PartitionUpdates(layout.Partition(id))
	}
	return layout.Updates()
}

// now returns the time a Manager of the backend would write.
func (b *backend) now(t *testing.T, m *synckairos.Manager) time.Time {
	t.Helper()
	now, err := m.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// forEachBackend runs fn as a subtest on the fake and on the real Redis.
func forEachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Helper()
	t.Run("fake", func(t *testing.T) {
		t.Parallel()
		fn(t, newFakeBackend(t))
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		fn(t, newRedisBackend(t))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		fn(t, newClusterBackend(t))
	})
}

func newFakeBackend(t *testing.T) *backend {
	b := &backend{name: "fake", prefix: testPrefix(t), resp2: true}
	first, fake := synckairostest.NewManager(t, &synckairos.Config{KeyPrefix: b.prefix})
	b.fake = fake
	b.url = "redis://" + fake.Server().Addr()
	used := false
	b.newManager = func(cfg *synckairos.Config) *synckairos.Manager {
		if cfg == nil && !used {
			used = true
			return first
		}
		return fake.NewManager(t, withPrefix(cfg, b.prefix))
	}
	raw, err := fake.Server().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	b.raw = raw
	return b
}

func redisURL() string { return testenv.RedisURL() }

// newRedisClient connects to the real Redis, or skips the test without one
// (fails instead under SYNCKAIROS_REQUIRE_SERVICES=1).
func newRedisClient(tb testing.TB) rueidis.Client { return testenv.RedisClient(tb, redisURL()) }

func newClientAt(tb testing.TB, url string) rueidis.Client { return testenv.RedisClient(tb, url) }

func newRedisBackend(t *testing.T) *backend {
	return newServerBackend(t, "redis", redisURL())
}

func newClusterBackend(t *testing.T) *backend {
	return newServerBackend(t, "cluster", clusterURL(t))
}

func newServerBackend(t *testing.T, name, url string) *backend {
	b := &backend{name: name, prefix: testPrefix(t), raw: newClientAt(t, url), url: url}
	t.Cleanup(func() { deletePrefix(t, b.raw, b.prefix) })
	b.newManager = func(cfg *synckairos.Config) *synckairos.Manager {
		m, err := synckairos.New(newClientAt(t, url), withPrefix(cfg, b.prefix))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	return b
}

func withPrefix(cfg *synckairos.Config, prefix string) *synckairos.Config {
	var c synckairos.Config
	if cfg != nil {
		c = *cfg
	}
	c.KeyPrefix = prefix
	return &c
}

// testPrefix returns a key prefix no other test, run or process uses.
func testPrefix(t testing.TB) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := strings.NewReplacer("/", ".", " ", "_", "{", "(", "}", ")").Replace(t.Name())
	return "sktest:" + name + ":" + hex.EncodeToString(r[:]) + ":"
}

func deletePrefix(tb testing.TB, c rueidis.Client, prefix string) {
	testenv.DeletePrefix(tb, c, prefix)
}

func scanPrefix(tb testing.TB, c rueidis.Client, prefix string) []string {
	return testenv.ScanPrefix(tb, c, prefix)
}

func partitionOf(id string) int { return keys.New("", synckairos.DefaultPartitions).Partition(id) }
