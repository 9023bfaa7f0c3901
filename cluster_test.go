package synckairos_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/keys"
)

// The partitions land on every master of a 3-master cluster, so sessions
// spread over all of them: choose Partitions several times the number of
// masters.
func TestPartitionsSpreadOverMasters(t *testing.T) {
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
	if len(masters) != 3 || len(perMaster) != len(masters) {
		t.Fatalf("%d of %d masters hold a partition: %v", len(perMaster), len(masters), perMaster)
	}
}
