package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/keys"
	"github.com/synckairos/synckairos/internal/store"
	"github.com/synckairos/synckairos/internal/testenv"
)

// backend is a client of the real Redis or of miniredis, with a key prefix
// of the test's own.
type backend struct {
	name   string
	client rueidis.Client
	prefix string
}

func backends(t *testing.T) []backend {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	prefix := "sktest:store:" + hex.EncodeToString(r[:]) + ":"
	mr := miniredis.RunT(t)
	fake, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{mr.Addr()}, DisableCache: true,
		AlwaysRESP2: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	real := testenv.RedisClient(t, testenv.RedisURL())
	t.Cleanup(func() { testenv.DeletePrefix(t, real, prefix) })
	return []backend{{"fake", fake, prefix}, {"redis", real, prefix}}
}

// created is a state JSON for a create: the life's placeholder digit at
// the returned offset.
func created(id string) ([]byte, int) {
	b := []byte(`{"session_id":"` + id + `","life":0,"version":1}`)
	return b, bytes.Index(b, []byte(`"life":0`)) + len(`"life":`)
}

// The write script's outcomes, its indexes and streams, on the fake and on
// Redis, without the Manager around it.
func TestWriteScript(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			layout := keys.NewSpread(b.prefix+b.name+":", 4)
			s := store.New(b.client, layout, time.Hour, true)
			s.QueueFinishes(true)
			at := time.UnixMilli(1_800_000_000_000)
			write := func(w store.Write) store.Result {
				t.Helper()
				w.SessionID, w.At = "g", at
				r, err := s.Write(ctx, w)
				if err != nil {
					t.Fatalf("%s: %v", w.Op, err)
				}
				return r
			}
			state, lifeAt := created("g")
			r := write(store.Write{Op: "create", State: state, LifeAt: lifeAt, EventType: "session_created"})
			if r.Outcome != store.Written || r.Version != 1 || r.Life <= 0 {
				t.Fatalf("create: %+v", r)
			}
			life := r.Life
			if r := write(store.Write{Op: "create", State: state, LifeAt: lifeAt, EventType: "session_created"}); r.Outcome != store.Exists {
				t.Fatalf("a second create: %+v", r)
			}
			v, got, found, err := s.Get(ctx, "g")
			if err != nil || !found || v != 1 || !strings.Contains(got, `"life":`+strconv.FormatInt(life, 10)+`,`) {
				t.Fatalf("get: v%d %s %v %v", v, got, found, err)
			}

			// Updates: at the version and life read, or a conflict carrying
			// the stored state; a deadline indexed, then removed.
			deadline := at.Add(time.Minute)
			v2 := []byte(`{"session_id":"g","version":2}`)
			if r := write(store.Write{Op: "update", Expected: 1, Life: life, State: v2, EventType: "session_started",
				Deadline: deadline, Status: "running"}); r.Outcome != store.Written || r.Version != 2 {
				t.Fatalf("update: %+v", r)
			}
			if r := write(store.Write{Op: "update", Expected: 1, Life: life, State: v2, EventType: "session_updated"}); r.Outcome != store.Conflict ||
				r.Version != 2 || r.State != string(v2) {
				t.Fatalf("a stale update: %+v", r)
			}
			if r := write(store.Write{Op: "update", Expected: 2, Life: life + 1, State: v2, EventType: "session_updated"}); r.Outcome != store.Conflict {
				t.Fatalf("an update of another life: %+v", r)
			}
			p := layout.Partition("g")
			ds, err := s.Deadlines(ctx, p)
			if err != nil || len(ds) != 1 || ds[0].ID != "g" || !ds[0].At.Equal(deadline) {
				t.Fatalf("deadlines: %+v %v", ds, err)
			}
			if ids, err := s.Overdue(ctx, p, deadline.Add(-time.Millisecond), 10); err != nil || len(ids) != 0 {
				t.Fatalf("overdue before the deadline: %v %v", ids, err)
			}
			if ids, err := s.Overdue(ctx, p, deadline, 10); err != nil || len(ids) != 1 {
				t.Fatalf("overdue at the deadline: %v %v", ids, err)
			}
			v3 := []byte(`{"session_id":"g","version":3}`)
			if r := write(store.Write{Op: "update", Expected: 2, Life: life, State: v3, EventType: "session_completed", Status: "completed"}); r.Outcome != store.Written {
				t.Fatalf("the finishing update: %+v", r)
			}
			if ds, _ := s.Deadlines(ctx, p); len(ds) != 0 {
				t.Fatalf("a deadline left after a write without one: %+v", ds)
			}

			// A delete; then updates and deletes find nothing; a restore
			// writes back at a version, once.
			if r := write(store.Write{Op: "delete", EventType: "session_deleted"}); r.Outcome != store.Written {
				t.Fatalf("delete: %+v", r)
			}
			if _, _, found, _ := s.Get(ctx, "g"); found {
				t.Fatal("found after the delete")
			}
			if r := write(store.Write{Op: "update", Expected: 3, Life: life, State: v3, EventType: "session_updated"}); r.Outcome != store.NotFound {
				t.Fatalf("an update after the delete: %+v", r)
			}
			if r := write(store.Write{Op: "delete", EventType: "session_deleted"}); r.Outcome != store.NotFound {
				t.Fatalf("a second delete: %+v", r)
			}
			if r := write(store.Write{Op: "restore", Expected: 3, Life: life, State: v3}); r.Outcome != store.Written || r.Version != 3 {
				t.Fatalf("restore: %+v", r)
			}
			if r := write(store.Write{Op: "restore", Expected: 3, Life: life, State: v3}); r.Outcome != store.Conflict {
				t.Fatalf("a second restore: %+v", r)
			}

			// The outbox has every event (a restore writes none); the
			// finish stream the one finishing write.
			outbox, err := b.client.Do(ctx, b.client.B().Xlen().Key(layout.Outbox(p)).Build()).AsInt64()
			if err != nil || outbox != 4 {
				t.Fatalf("outbox: %d events, want 4 (created, started, completed, deleted): %v", outbox, err)
			}
			finished, err := b.client.Do(ctx, b.client.B().Xlen().Key(layout.Finished(p)).Build()).AsInt64()
			if err != nil || finished != 1 {
				t.Fatalf("finish stream: %d entries, want 1: %v", finished, err)
			}
			if err := s.Forget(ctx, "g"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
