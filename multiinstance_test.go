package synckairos_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
)

// The multi-instance validation of docs/VALIDATION.md: two OS processes, A
// (this test) and B (this test binary run again, in the role of B), share one
// session through Redis alone. A creates it; B reads and updates it, and
// broadcasts; A's subscribers receive both.
func TestMultiInstanceProcesses(t *testing.T) {
	t.Parallel()
	if os.Getenv("SYNCKAIROS_INSTANCE") == "B" {
		instanceB(t)
		return
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		a := b.newManager(nil)
		ctx := context.Background()
		updates := newCollector[synckairos.SessionEvent]()
		broadcasts := newCollector[synckairos.Broadcast]()
		subU, err := a.SubscribeToUpdates(ctx, updates.add)
		if err != nil {
			t.Fatal(err)
		}
		defer subU.Close()
		subB, err := a.SubscribeToBroadcasts(ctx, broadcasts.add)
		if err != nil {
			t.Fatal(err)
		}
		defer subB.Close()

		created := mustCreate(t, a, newState("shared", 2))
		updates.waitFor(t, 1)

		url, resp2 := b.url, ""
		if b.resp2 {
			resp2 = "1"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiInstanceProcesses$", "-test.v")
		cmd.Env = append(os.Environ(),
			"SYNCKAIROS_INSTANCE=B",
			"SYNCKAIROS_INSTANCE_URL="+url,
			"SYNCKAIROS_INSTANCE_RESP2="+resp2,
			"SYNCKAIROS_INSTANCE_PREFIX="+b.prefix,
			"SYNCKAIROS_INSTANCE_SESSION=shared",
		)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("instance B: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "instance B: read v1, wrote v2, broadcast sent") {
			t.Fatalf("instance B did not report its steps:\n%s", out.String())
		}

		got := updates.waitFor(t, 2)[1]
		if got.Kind != synckairos.ChangeUpdated || got.Version != 2 || got.State.Status != synckairos.StatusRunning ||
			got.State.Metadata["updated_by"] != "B" {
			t.Fatalf("A's subscriber got %+v", got)
		}
		if bc := broadcasts.waitFor(t, 1)[0]; bc.SessionID != "shared" || string(bc.Payload) != "hello from B" {
			t.Fatalf("A's pattern subscriber got %+v", bc)
		}
		// And A reads B's write.
		if s := mustGet(t, a, "shared"); s.Version != 2 || !s.CreatedAt.Equal(created.CreatedAt) || s.Metadata["updated_by"] != "B" {
			t.Fatalf("A reads %+v", s)
		}
	})
}

// instanceB is the second process: it knows the session only by its ID.
func instanceB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt, err := rueidis.ParseURL(os.Getenv("SYNCKAIROS_INSTANCE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	// The fake (miniredis) needs RESP2, and a single-node client: it
	// answers CLUSTER SLOTS as if it were a cluster.
	opt.AlwaysRESP2 = os.Getenv("SYNCKAIROS_INSTANCE_RESP2") == "1"
	opt.ForceSingleClient = opt.AlwaysRESP2
	client, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	m, err := synckairos.New(client, &synckairos.Config{KeyPrefix: os.Getenv("SYNCKAIROS_INSTANCE_PREFIX")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	id := os.Getenv("SYNCKAIROS_INSTANCE_SESSION")

	s, err := m.GetSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	next := s.Clone()
	next.Status = synckairos.StatusRunning
	next.ActiveParticipantID = next.Participants[0].ID
	started := next.UpdatedAt
	next.CycleStartedAt, next.SessionStartedAt = &started, &started
	next.Metadata["updated_by"] = "B"
	updated, err := m.UpdateSession(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.BroadcastToSession(ctx, id, []byte("hello from B")); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("instance B: read v%d, wrote v%d, broadcast sent (pid %d)\n", s.Version, updated.Version, os.Getpid())
}
