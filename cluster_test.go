package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/keys"
	"github.com/synckairos/synckairos/internal/slots"
	"github.com/synckairos/synckairos/internal/testenv"
)

// The partitions of the tags layout land on every master of the cluster,
// so sessions spread over all of them (unevenly: 7, 4 and 5 of 16 on 3).
func TestPartitionsSpreadOverMasters(t *testing.T) {
	t.Parallel()
	client := newClientAt(t, clusterURL(t))
	ctx := context.Background()
	slots, err := client.Do(ctx, client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		t.Fatal(err)
	}
	type span struct {
		from, to int64
		master   string
	}
	var spans []span
	masters := map[string]bool{}
	for _, s := range slots {
		f, err := s.ToArray()
		if err != nil || len(f) < 3 {
			t.Fatalf("CLUSTER SLOTS entry %v: %v", f, err)
		}
		from, _ := f[0].AsInt64()
		to, _ := f[1].AsInt64()
		node, _ := f[2].ToArray()
		host, _ := node[0].ToString()
		port, _ := node[1].AsInt64()
		addr := fmt.Sprintf("%s:%d", host, port)
		spans = append(spans, span{from, to, addr})
		masters[addr] = true
	}
	layout := keys.New("synckairos:", synckairos.DefaultPartitions)
	perMaster := map[string]int{}
	for p := range synckairos.DefaultPartitions {
		slot, err := client.Do(ctx, client.B().ClusterKeyslot().Key(layout.Outbox(p)).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range spans {
			if s.from <= slot && slot <= s.to {
				perMaster[s.master]++
			}
		}
	}
	t.Logf("partitions per master: %v", perMaster)
	if len(masters) != testenv.ClusterMasters() || len(perMaster) != len(masters) {
		t.Fatalf("%d of %d masters hold a partition: %v", len(perMaster), len(masters), perMaster)
	}
}

// With WaitReplicas, a write returns once enough replicas have it; one that
// too few acknowledged in time is reported, with the state it committed,
// and stands.
func TestWaitReplicas(t *testing.T) {
	t.Parallel()
	url := clusterURL(t)
	prefix := testPrefix(t)
	raw := newClientAt(t, url)
	t.Cleanup(func() { deletePrefix(t, raw, prefix) })
	ctx := context.Background()

	// Each master of the test cluster has one replica. The timeout is long
	// for a loaded test machine, not for speed: this checks meaning only.
	one, err := synckairos.New(newClientAt(t, url), &synckairos.Config{KeyPrefix: prefix, WaitReplicas: 1, WaitTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	s := mustCreate(t, one, newState("w", 2))
	next := s.Clone()
	next.Metadata["k"] = "v"
	if s, err = one.UpdateSession(ctx, next); err != nil {
		t.Fatalf("update waiting for 1 replica: %v", err)
	}

	two, err := synckairos.New(newClientAt(t, url), &synckairos.Config{KeyPrefix: prefix, WaitReplicas: 2, WaitTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer two.Close()
	next = s.Clone()
	next.Metadata["k"] = "w"
	_, err = two.UpdateSession(ctx, next)
	var re *synckairos.ReplicationError
	if !errors.As(err, &re) || !errors.Is(err, synckairos.ErrNotReplicated) {
		t.Fatalf("update waiting for 2 of 1 replicas: %v, want a *ReplicationError", err)
	}
	if re.Replicas != 1 || re.Wanted != 2 || re.Version != 3 || re.State == nil || re.State.Metadata["k"] != "w" {
		t.Fatalf("ReplicationError %+v", re)
	}
	if got := mustGet(t, one, "w"); got.Version != 3 || got.Metadata["k"] != "w" {
		t.Fatalf("the write did not stand: %+v", got)
	}
	if err := two.DeleteSession(ctx, "w"); !errors.Is(err, synckairos.ErrNotReplicated) {
		t.Fatalf("delete: %v", err)
	}
	if _, err := one.GetSession(ctx, "w"); !errors.Is(err, synckairos.ErrSessionNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// A server without replicas acknowledges no write with WaitReplicas set:
// each is reported, and stands. On the fresh fake the write script is not
// loaded yet, so this also takes the path that sends it whole; the fake has
// no WAIT at all, which counts as no replica.
func TestWaitReplicasWithoutReplicas(t *testing.T) {
	t.Parallel()
	for _, b := range []*backend{newRedisBackend(t), newFakeBackend(t)} {
		m := b.newManager(&synckairos.Config{WaitReplicas: 1, WaitTimeout: 5 * time.Millisecond})
		_, err := m.CreateSession(context.Background(), newState("nr", 2))
		var re *synckairos.ReplicationError
		if !errors.As(err, &re) || re.Replicas != 0 || re.Version != 1 || re.State == nil || re.State.SessionID != "nr" {
			t.Fatalf("%s: create: %v (%+v), want a *ReplicationError with 0 replicas", b.name, err, re)
		}
		if got := mustGet(t, m, "nr"); got.Version != 1 {
			t.Fatalf("%s: the create did not stand: %+v", b.name, got)
		}
	}
}

// On a cluster, SubscribeToUpdates listens on every partition's sharded
// channel, each on the node that owns it, and SubscribeToSession on the
// session's sharded channel; nothing is subscribed classically but the
// pattern of SubscribeToBroadcasts.
func TestClusterSubscriptionsAreSharded(t *testing.T) {
	t.Parallel()
	url := clusterURL(t)
	prefix := testPrefix(t)
	m, err := synckairos.New(newClientAt(t, url), &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for _, subscribe := range []func() (*synckairos.Subscription, error){
		func() (*synckairos.Subscription, error) {
			return m.SubscribeToUpdates(ctx, func(synckairos.SessionEvent) {})
		},
		func() (*synckairos.Subscription, error) {
			return m.SubscribeToSessionBroadcasts(ctx, "s1", func(synckairos.Broadcast) {})
		},
	} {
		sub, err := subscribe()
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	layout := synckairos.KeysOf(m)
	want := map[string]bool{layout.SessionBroadcast("s1"): true}
	for p := range synckairos.DefaultPartitions {
		want[layout.PartitionUpdates(p)] = true
	}
	raw := newClientAt(t, url)
	shardChannels := map[string]int{}
	classic := 0
	for addr, node := range raw.Nodes() {
		chans, err := node.Do(ctx, node.B().PubsubShardchannels().Pattern(prefix+"*").Build()).AsStrSlice()
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		for _, c := range chans {
			shardChannels[c]++
		}
		n, err := node.Do(ctx, node.B().PubsubChannels().Pattern(prefix+"*").Build()).AsStrSlice()
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		classic += len(n)
	}
	for c := range want {
		if shardChannels[c] != 1 {
			t.Errorf("sharded channel %s subscribed on %d nodes, want 1", c, shardChannels[c])
		}
	}
	if len(shardChannels) != len(want) || classic != 0 {
		t.Errorf("sharded channels %v, %d classic ones; want %d sharded, no classic", shardChannels, classic, len(want))
	}
}

// When a partition's slot moves to another master (a resharding), the
// server ends the sharded subscriptions on the old one; the subscriber is
// told to resync and hears the partition's changes again from the new
// owner.
func TestSubscriptionFollowsMovedSlot(t *testing.T) {
	t.Parallel()
	c := testenv.StartCluster(t)
	prefix := testPrefix(t)
	writer, err := synckairos.New(newClientAt(t, c.URL()), &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	reader, err := synckairos.New(newClientAt(t, c.URL()), &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	ctx := context.Background()
	events := newCollector[synckairos.SessionEvent]()
	sub, err := reader.SubscribeToUpdates(ctx, events.add)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	s := mustCreate(t, writer, newState("mv", 2))
	events.waitFor(t, 1)

	raw := newClientAt(t, c.URL())
	key := synckairos.KeysOf(writer).Session("mv")
	slot, err := raw.Do(ctx, raw.B().ClusterKeyslot().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	var to string
	for _, m := range c.Masters(ctx) {
		if err := raw.Nodes()[m].Do(ctx, raw.B().Exists().Key(key).Build()).Error(); err != nil {
			to = m // not the owner: it answers MOVED
		}
	}
	if err := c.MoveSlot(ctx, int(slot), to); err != nil {
		t.Fatal(err)
	}
	got := events.waitFor(t, 2)
	if got[1].Kind != synckairos.ChangeResync {
		t.Fatalf("after the move: %+v, want a resync", got[1])
	}
	next := s.Clone()
	next.Metadata["moved"] = "yes"
	if _, err := writer.UpdateSession(ctx, next); err != nil {
		t.Fatal(err)
	}
	got = events.waitFor(t, 3)
	if got[2].Kind != synckairos.ChangeUpdated || got[2].Version != 2 {
		t.Fatalf("after the move: %+v, want the update", got[2])
	}
}

// The default layout of a new prefix on the cluster: the default 16
// partitions, and so the sessions, spread over the masters within ±15% of even on 3 masters (±1
// partition on any number); two prefixes use different slots; and the
// engine runs on it end to end: writes, sharded updates, the expirer.
func TestSpreadLayoutOnTheCluster(t *testing.T) {
	t.Parallel()
	url := clusterURL(t)
	ctx := context.Background()
	client := newClientAt(t, url)
	sp, err := slots.Get(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	masters := map[string]bool{}
	for _, s := range sp {
		masters[s.Node] = true
	}
	prefix := testPrefix(t)
	// The default settings, on a new prefix.
	m, err := synckairos.New(newClientAt(t, url), &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); deletePrefix(t, client, prefix) })
	layout := synckairos.KeysOf(m)
	if layout.Session("x") != keys.NewSpread(prefix, synckairos.DefaultPartitions).Session("x") {
		t.Fatalf("the default layout of a new prefix: %s", layout.Session("x"))
	}
	partitionsPer, sessionsPer := map[string]int{}, map[string]int{}
	for p := range synckairos.DefaultPartitions {
		partitionsPer[sp.Owner(layout.Slot(p))]++
	}
	const sessions = 3000
	for i := range sessions {
		sessionsPer[sp.Owner(layout.Slot(layout.Partition(fmt.Sprint("game-", i))))]++
	}
	t.Logf("on %d masters: partitions %v, sessions %v", len(masters), partitionsPer, sessionsPer)
	even := float64(synckairos.DefaultPartitions) / float64(len(masters))
	for m := range masters {
		if d := float64(partitionsPer[m]) - even; d <= -1 || d >= 1 {
			t.Errorf("master %s serves %d partitions, want %.2f ± 1", m, partitionsPer[m], even)
		}
		if len(masters) == 3 {
			if r := float64(sessionsPer[m]) / (sessions / 3.0); r < 0.85 || r > 1.15 {
				t.Errorf("master %s serves %d of %d sessions: %.0f%% of even, want within ±15%%", m, sessionsPer[m], sessions, 100*r)
			}
		}
	}
	other := keys.NewSpread(prefix+"other:", synckairos.DefaultPartitions)
	for p := range synckairos.DefaultPartitions {
		for q := range synckairos.DefaultPartitions {
			if layout.Slot(p) == other.Slot(q) {
				t.Errorf("two prefixes share slot %d", layout.Slot(p))
			}
		}
	}

	// The engine on the spread layout.
	events := newCollector[synckairos.SessionEvent]()
	sub, err := m.SubscribeToUpdates(ctx, events.add)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	runExpirer(t, m)
	mustCreate(t, m, &synckairos.State{SessionID: "spread", Mode: synckairos.ModePerParticipant, Participants: players(300*time.Millisecond, "a", "b")})
	if _, err := m.StartSession(ctx, "spread"); err != nil {
		t.Fatal(err)
	}
	if n := client.Do(ctx, client.B().Exists().Key(layout.Session("spread")).Build()); n.Error() != nil {
		t.Fatal(n.Error())
	} else if v, _ := n.AsInt64(); v != 1 {
		t.Fatalf("the session is not at %s", layout.Session("spread"))
	}
	s := waitVersion(t, m, "spread", 3) // the expirer flags a
	if s.LastTransition.Type != synckairos.EventSessionExpired {
		t.Fatalf("after the flag: %v", s.LastTransition)
	}
	got := events.waitFor(t, 3)
	if got[2].Transition.Type != synckairos.EventSessionExpired {
		t.Fatalf("events: %+v", got)
	}
}
