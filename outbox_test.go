package synckairos_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/synckairos/synckairos"
)

// With Config.Audit, every committed write appends one outbox entry to its
// partition's stream, in the same script; refused writes append nothing.
func TestOutboxEntries(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(&synckairos.Config{Audit: true})
		ctx := context.Background()
		created := mustCreate(t, m, newState("out", 2))
		if _, err := m.CreateSession(ctx, newState("out", 2)); err == nil {
			t.Fatal("duplicate create succeeded")
		}
		updated, err := m.UpdateSession(ctx, created)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.UpdateSession(ctx, created); err == nil {
			t.Fatal("stale update succeeded")
		}
		if err := m.DeleteSession(ctx, "out"); err != nil {
			t.Fatal(err)
		}

		layout := b.keys(t)
		stream := layout.Outbox(layout.Partition("out"))
		entries, err := b.raw.Do(ctx, b.raw.B().Xrange().Key(stream).Start("-").End("+").Build()).AsXRange()
		if err != nil {
			t.Fatal(err)
		}
		type entry struct{ Sid, V, Type, State string }
		var got []entry
		for _, e := range entries {
			if ts, err := strconv.ParseInt(e.FieldValues["ts"], 10, 64); err != nil || ts != created.CreatedAt.UnixMilli() && b.fake != nil {
				t.Errorf("entry %s: ts %q", e.ID, e.FieldValues["ts"])
			}
			got = append(got, entry{e.FieldValues["sid"], e.FieldValues["v"], e.FieldValues["type"], e.FieldValues["state"]})
		}
		cj, _ := created.MarshalJSON()
		uj, _ := updated.MarshalJSON()
		want := []entry{
			{`"out"`, "1", synckairos.EventSessionCreated, string(cj)},
			{`"out"`, "2", synckairos.EventSessionUpdated, string(uj)},
			{`"out"`, "3", synckairos.EventSessionDeleted, ""},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}

		// Without Audit nothing goes to the outbox.
		plain := b.newManager(nil)
		mustCreate(t, plain, newState("plain", 1))
		n, err := b.raw.Do(ctx, b.raw.B().Xlen().Key(layout.Outbox(layout.Partition("plain"))).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if layout.Partition("plain") != layout.Partition("out") && n != 0 {
			t.Errorf("%d outbox entries without Audit", n)
		}
	})
}

func TestRestoreSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(&synckairos.Config{Audit: true})
		ctx := context.Background()
		s := mustCreate(t, m, newState("rest", 2))
		s, err := m.UpdateSession(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		// Redis has this version: nothing to restore.
		var conflict *synckairos.ConflictError
		if _, err := m.RestoreSession(ctx, s); !errors.As(err, &conflict) || conflict.Actual != 2 {
			t.Fatalf("restore over the same version: %v", err)
		}
		events := newCollector[synckairos.SessionEvent]()
		sub, err := m.SubscribeToUpdates(ctx, events.add)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		b.raw.Do(ctx, b.raw.B().Del().Key(b.sessionKey(t, "rest")).Build()) // the key is lost
		restored, err := m.RestoreSession(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s, restored); diff != "" {
			t.Errorf("restored (-saved +restored):\n%s", diff)
		}
		if diff := cmp.Diff(s, mustGet(t, m, "rest")); diff != "" {
			t.Errorf("stored after restore (-saved +got):\n%s", diff)
		}
		// On Redis Cluster, messages published before the subscription can
		// still arrive through the cluster bus: look for the restore.
		for n := 1; ; n++ {
			ev := events.waitFor(t, n)[n-1]
			if ev.Kind == synckairos.ChangeRestored {
				if ev.Version != 2 {
					t.Errorf("announced %+v", ev)
				}
				break
			}
		}
		// The next update continues from the restored version.
		if next, err := m.UpdateSession(ctx, restored); err != nil || next.Version != 3 {
			t.Fatalf("update after restore: %v, %v", next, err)
		}
		// An older version never replaces a newer one.
		if _, err := m.RestoreSession(ctx, s); !errors.As(err, &conflict) || conflict.Actual != 3 {
			t.Fatalf("restore over a newer version: %v", err)
		}
	})
}
