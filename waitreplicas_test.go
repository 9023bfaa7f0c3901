package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// With WaitReplicas, a write is acknowledged only by a WAIT on the node that
// ran its script: not after a MOVED (the slot moved to a master whose only
// replica is down, and the client still sends to the old owner), nor after
// an ASK (the slot is migrating there). Each such write returns a
// *ReplicationError with 0 replicas; none is acknowledged falsely.
func TestWaitReplicasCountsWhereTheScriptRan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := ownCluster(t)
	prefix := testPrefix(t)
	// Audit on: during a migration a script runs only where all its keys
	// are, the outbox among them.
	m := managerOn(t, c.URL(), &synckairos.Config{KeyPrefix: prefix, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond, Audit: true})
	// Its clients are made while every node is up: a client seeded with a
	// dead node's address can fail to start.
	brief := managerOn(t, c.URL(), &synckairos.Config{KeyPrefix: prefix, WaitReplicas: 1, WaitTimeout: time.Second,
		WaitBrieflyWhenAlone: true, Audit: true})
	layout := synckairos.KeysOf(m)
	raw := newClientAt(t, c.URL())
	owner := func(p int) string {
		for addr, node := range raw.Nodes() {
			if node.Do(ctx, node.B().Exists().Key(layout.Deadlines(p)).Build()).Error() == nil {
				for _, mst := range c.Masters(ctx) {
					if mst == addr {
						return addr
					}
				}
			}
		}
		t.Fatalf("no master serves partition %d", p)
		return ""
	}
	idIn := func(p int, tag string) string {
		for i := 0; ; i++ {
			if id := fmt.Sprint(tag, i); layout.Partition(id) == p {
				return id
			}
		}
	}

	// Two partitions on one master A; B, another master, loses its replica.
	s0 := mustCreate(t, m, &synckairos.State{SessionID: idIn(0, "moved-"), Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
	a := owner(0)
	p2 := -1
	for p := 1; p < synckairos.DefaultPartitions && p2 < 0; p++ {
		if owner(p) == a {
			p2 = p
		}
	}
	b := ""
	for _, mst := range c.Masters(ctx) {
		if mst != a {
			b = mst
		}
	}
	if p2 < 0 || b == "" {
		t.Fatalf("partitions on %s: no second one, or no other master", a)
	}
	// A running session of the second partition, while A's replica is up.
	askID := idIn(p2, "ask-")
	mustCreate(t, m, &synckairos.State{SessionID: askID, Mode: synckairos.ModePerParticipant, Participants: players(time.Hour, "a", "b")})
	asked, err := m.StartSession(ctx, askID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(c.Replica(ctx, b)); err != nil {
		t.Fatal(err)
	}

	// MOVED: partition 0's slot goes to B behind the client's back.
	if err := c.MoveSlot(ctx, layout.Slot(0), b); err != nil {
		t.Fatal(err)
	}
	s := s0
	for i := range 30 {
		next := s.Clone()
		next.Metadata = map[string]string{"i": fmt.Sprint(i)}
		_, err := m.UpdateSession(ctx, next)
		var re *synckairos.ReplicationError
		if !errors.As(err, &re) || re.Replicas != 0 {
			t.Fatalf("write %d after the slot moved to a master without a replica: %v (acknowledged falsely)", i, err)
		}
		s = re.State
	}

	// ASK: the second partition's keys are on B, its slot still migrating:
	// A answers ASK, and the script runs on B.
	finish, err := c.StartMoveSlot(ctx, layout.Slot(p2), b)
	if err != nil {
		t.Fatal(err)
	}
	s = asked
	for i := range 10 {
		next := s.Clone()
		next.Metadata = map[string]string{"i": fmt.Sprint(i)}
		_, err := m.UpdateSession(ctx, next)
		var re *synckairos.ReplicationError
		if !errors.As(err, &re) || re.Replicas != 0 {
			t.Fatalf("write %d in a slot migrating to a master without a replica: %v (acknowledged falsely)", i, err)
		}
		s = re.State
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	// WaitBrieflyWhenAlone: B, without a replica, holds the first write for
	// the whole WaitTimeout, and the next ones not (each would take 1 s).
	for i := range 6 {
		start := time.Now()
		next := s.Clone()
		next.Metadata = map[string]string{"brief": fmt.Sprint(i)}
		_, err := brief.UpdateSession(ctx, next)
		took := time.Since(start)
		var re *synckairos.ReplicationError
		if !errors.As(err, &re) || re.Replicas != 0 {
			t.Fatalf("write %d to a master alone: %v", i, err)
		}
		s = re.State
		if (i == 0) != (took >= time.Second) {
			t.Fatalf("write %d to a master alone took %v: want the first only to wait the whole WaitTimeout", i, took)
		}
	}
	// A's own partitions still replicate.
	if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: idIn(p2, "after-"), Mode: synckairos.ModePerParticipant,
		Participants: players(time.Minute, "a", "b")}); !errors.Is(err, synckairos.ErrNotReplicated) {
		t.Fatalf("after the move, on B: %v", err)
	}
}
