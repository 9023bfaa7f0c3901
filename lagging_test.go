package synckairos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// A replica cut off (paused) before its master dies is promoted without the
// writes made meanwhile. Without WaitReplicas the master acknowledged them,
// and they are lost; with WaitReplicas 1 none of them was acknowledged (each
// reported a *ReplicationError), so no acknowledged write is lost.
//
// A paused replica's socket still takes what the master sends, up to the
// kernel's buffers (its receive window, the master's send buffer: a few
// MB), and gets it when it resumes: the test writes states of ~120 KB and
// waits for 64 of them acknowledged during the pause (~7.7 MB), so that the
// last ones cannot have reached the replica, however fast or slow the
// machine writes.
func TestAcknowledgedWritesAcrossAFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := ownCluster(t)
	prefix := testPrefix(t)
	plain := managerOn(t, c.URL(), &synckairos.Config{KeyPrefix: prefix})
	waiting := managerOn(t, c.URL(), &synckairos.Config{KeyPrefix: prefix, WaitReplicas: 1, WaitTimeout: 100 * time.Millisecond})
	layout := synckairos.KeysOf(plain)
	var ids []string // in partition 0
	for i := 0; len(ids) < 8; i++ {
		if id := fmt.Sprint("w-", i); layout.Partition(id) == 0 {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		mustCreate(t, plain, &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Participants: players(time.Hour, "a", "b")})
	}
	victim := nodeServing(t, newClientAt(t, c.URL()), layout.Session(ids[0]))
	replica := c.Replica(ctx, victim)
	if replica == "" {
		t.Fatalf("victim %q, its replica %q", victim, replica)
	}

	// Two writers: one without WaitReplicas on half the sessions, one with
	// it on the other half; each keeps the newest version acknowledged.
	acked := map[string]int64{}
	writes := map[*synckairos.Manager]int{} // acknowledged
	var mu sync.Mutex
	pad := strings.Repeat("x", 60<<10)
	data := json.RawMessage(strconv.Quote(pad))
	writeCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w, m := range []*synckairos.Manager{plain, waiting} {
		wg.Go(func() {
			for i := 0; writeCtx.Err() == nil; i++ {
				id := ids[w*4+i%4]
				s, err := m.MutateSession(writeCtx, id, func(s *synckairos.State) error {
					s.Metadata = map[string]string{"n": fmt.Sprint(i), "pad": pad}
					s.Data = data
					return nil
				})
				if err == nil {
					mu.Lock()
					acked[id] = max(acked[id], s.Version)
					writes[m]++
					mu.Unlock()
				}
			}
		})
	}
	acknowledged := func(m *synckairos.Manager) int {
		mu.Lock()
		defer mu.Unlock()
		return writes[m]
	}
	waitFor(t, 15*time.Second, "both writers acknowledged", func() bool { return acknowledged(plain) >= 10 && acknowledged(waiting) >= 10 })
	if err := c.Pause(replica); err != nil {
		t.Fatal(err)
	}
	paused := acknowledged(plain)
	waitFor(t, 30*time.Second, "64 writes acknowledged while the replica is paused", func() bool { return acknowledged(plain) >= paused+64 })
	stop()
	wg.Wait()
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(replica); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	lost := map[*synckairos.Manager]int64{}
	for w, m := range []*synckairos.Manager{plain, waiting} {
		for _, id := range ids[w*4 : w*4+4] {
			var s *synckairos.State
			waitFor(t, 15*time.Second, "the session readable after the takeover", func() bool {
				var err error
				s, err = m.GetSession(ctx, id)
				return err == nil
			})
			if a := acked[id]; a > s.Version {
				lost[m] += a - s.Version
			}
		}
	}
	t.Logf("acknowledged writes lost: %d without WaitReplicas, %d with WaitReplicas 1", lost[plain], lost[waiting])
	if lost[waiting] != 0 {
		t.Errorf("%d writes acknowledged with WaitReplicas 1 were lost", lost[waiting])
	}
	if lost[plain] == 0 {
		t.Errorf("no write acknowledged without WaitReplicas was lost: the replica was not cut off")
	}
}
