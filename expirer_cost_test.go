package synckairos_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/testenv"
)

// countingClient counts the commands sent through it.
type countingClient struct {
	rueidis.Client
	n *atomic.Int64
}

func (c countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.n.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c countingClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.n.Add(int64(len(cmds)))
	return c.Client.DoMulti(ctx, cmds...)
}

// An expirer with nothing due sends Redis next to nothing: measured on a
// Redis server of the test's own by INFO commandstats, with 100 running
// sessions whose clocks run out in an hour.
func TestIdleExpirerIsQuiet(t *testing.T) {
	t.Parallel()
	url := testenv.StartRedis(t)
	raw := newClientAt(t, url)
	m, err := synckairos.New(newClientAt(t, url), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for i := range 100 {
		id := fmt.Sprint("idle-", i)
		mustCreate(t, m, &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Participants: players(time.Hour, "a", "b")})
		if _, err := m.StartSession(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	runExpirer(t, m)
	time.Sleep(1500 * time.Millisecond) // it starts: subscribes, reads the indexes
	before, total0 := testenv.CommandCalls(t, raw)
	const window = 4 * time.Second
	time.Sleep(window)
	after, total1 := testenv.CommandCalls(t, raw)
	n := total1 - total0 - 1 // the first INFO
	perSecond := float64(n) / window.Seconds()
	diff := map[string]int64{}
	for c, v := range after {
		if d := v - before[c]; d > 0 {
			diff[c] = d
		}
	}
	diff["info"]--
	t.Logf("an idle expirer: %d commands in %v, %.1f/s: %v", n, window, perSecond, diff)
	if perSecond > 20 {
		t.Errorf("%.1f commands/s while idle, want at most 20", perSecond)
	}
}

// With four instances running the expirer, the Redis commands per expiry
// are at most twice what one instance sends: the instances share the
// partitions instead of racing for every deadline. Each expiry is applied
// once; the lateness is reported.
func TestExpiryCostWithFourInstances(t *testing.T) {
	sessions := 2000
	if n, err := strconv.Atoi(os.Getenv("SYNCKAIROS_EXPIRY_SESSIONS")); err == nil {
		sessions = n
	}
	for _, backend := range []string{"redis", "cluster"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			url := clusterURL(t)
			if backend == "redis" {
				url = testenv.StartRedis(t)
			}
			one := expiryRun(t, url, 1, sessions)
			four := expiryRun(t, url, 4, sessions)
			ratio := four / one
			t.Logf("commands per expiry: one instance %.2f, four %.2f: ×%.2f", one, four, ratio)
			if ratio > 2 {
				t.Errorf("four instances send ×%.2f the commands per expiry of one, want at most ×2", ratio)
			}
		})
	}
}

// expiryRun runs the expirer on instances Managers while sessions clocks
// run out, and returns the commands they sent per expiry.
func expiryRun(t *testing.T, url string, instances, sessions int) float64 {
	t.Helper()
	prefix := testPrefix(t)
	host, err := synckairos.New(newClientAt(t, url), &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	ctx := context.Background()
	var sent atomic.Int64
	for range instances {
		m, err := synckairos.New(countingClient{newClientAt(t, url), &sent}, &synckairos.Config{KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		stop := runExpirerCtx(t, m)
		defer stop()
	}
	time.Sleep(500 * time.Millisecond) // the instances find each other
	var mu sync.Mutex
	var late []time.Duration
	expired := map[string]int{}
	sub, err := host.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
		if ev.Transition != nil && ev.Transition.Type == synckairos.EventSessionExpired {
			mu.Lock()
			expired[ev.SessionID]++
			late = append(late, ev.State.UpdatedAt.Sub(ev.Transition.At))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	base := sent.Load()
	for i := range sessions {
		id := fmt.Sprint("e-", i)
		bank := 1500*time.Millisecond + time.Duration(i%1000)*time.Millisecond
		mustCreate(t, host, &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Participants: players(bank, "a", "b")})
		if _, err := host.StartSession(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "every clock expired", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(expired) == sessions
	})
	time.Sleep(300 * time.Millisecond) // a late duplicate would show
	n := sent.Load() - base
	mu.Lock()
	defer mu.Unlock()
	for id, k := range expired {
		if k != 1 {
			t.Errorf("%s expired %d times", id, k)
		}
	}
	slices.Sort(late)
	t.Logf("%d instances, %d expiries: %d commands; lateness p50 %v, p99 %v, max %v", instances, sessions, n,
		late[len(late)/2], late[len(late)*99/100], late[len(late)-1])
	return float64(n) / float64(sessions)
}

func runExpirerCtx(t *testing.T, m *synckairos.Manager) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.RunExpirer(ctx) }()
	return func() {
		cancel()
		<-done
	}
}
