package synckairos_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/synckairos/synckairos"
)

// TestReadsOfTheSameBytesAreCopies checks the reads that skip decoding
// (Config.DecodeCacheBytes): a state read again is a copy of the one decoded
// before, its own to change, and any other bytes in Redis are decoded,
// whoever wrote them and whatever their version says.
func TestReadsOfTheSameBytesAreCopies(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		reader, writer := b.newManager(nil), b.newManager(nil)
		created := mustCreate(t, writer, newState("kept", 2))

		first := mustGet(t, reader, "kept")
		if kept, v, decoded := synckairos.DecodeKept(reader, "kept"); !kept || v != created.Version || decoded {
			t.Fatalf("after one read: kept %v, version %d, decoded %v; want the stored form only", kept, v, decoded)
		}
		second := mustGet(t, reader, "kept")
		if kept, _, decoded := synckairos.DecodeKept(reader, "kept"); !kept || !decoded {
			t.Fatalf("after two reads: kept %v, decoded %v; want the decoded state", kept, decoded)
		}
		third := mustGet(t, reader, "kept") // a copy of the kept state
		for _, s := range []*synckairos.State{second, third} {
			if diff := cmp.Diff(first, s); diff != "" {
				t.Fatalf("read again (-first +again):\n%s", diff)
			}
		}
		// The copy is the caller's: changing it changes no later read.
		third.Participants[0].TotalTime = 1
		third.Metadata["table"] = "changed"
		third.LastTransition.Type = "changed"
		third.ActiveParticipantID = "p1"
		if diff := cmp.Diff(first, mustGet(t, reader, "kept")); diff != "" {
			t.Fatalf("a read after changing an earlier one's state (-first +read):\n%s", diff)
		}

		// Another Manager's write: the new version read.
		next := first.Clone()
		next.Metadata["table"] = "9"
		updated, err := writer.UpdateSession(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, reader, "kept"); got.Version != updated.Version || got.Metadata["table"] != "9" {
			t.Fatalf("after another Manager's update: version %d, table %q; want %d, 9", got.Version, got.Metadata["table"], updated.Version)
		}
		mustGet(t, reader, "kept")

		// Other bytes at the same version (written behind the Managers'
		// backs): decoded, not taken for the kept state.
		key := b.sessionKey(t, "kept")
		stored, err := b.raw.Do(ctx, b.raw.B().Hget().Key(key).Field("s").Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(stored, `"table":"9"`, `"table":"10"`, 1)
		if edited == stored {
			t.Fatalf("stored state without its metadata: %s", stored)
		}
		if err := b.raw.Do(ctx, b.raw.B().Hset().Key(key).FieldValue().FieldValue("s", edited).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, reader, "kept"); got.Version != updated.Version || got.Metadata["table"] != "10" {
			t.Fatalf("after other bytes at version %d: version %d, table %q; want 10", updated.Version, got.Version, got.Metadata["table"])
		}

		// Deleted: not found, and nothing kept; a new life is read as such.
		if err := writer.DeleteSession(ctx, "kept"); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.GetSession(ctx, "kept"); !errors.Is(err, synckairos.ErrSessionNotFound) {
			t.Fatalf("read after delete: %v, want ErrSessionNotFound", err)
		}
		if kept, _, _ := synckairos.DecodeKept(reader, "kept"); kept {
			t.Fatal("an entry kept for a deleted session")
		}
		again := mustCreate(t, writer, newState("kept", 2))
		mustGet(t, reader, "kept")
		if got := mustGet(t, reader, "kept"); got.Life != again.Life || got.Version != 1 {
			t.Fatalf("the new life read as life %d version %d, want %d, 1", got.Life, got.Version, again.Life)
		}

		// Off: nothing kept, reads as before.
		off := b.newManager(&synckairos.Config{DecodeCacheBytes: -1})
		mustGet(t, off, "kept")
		mustGet(t, off, "kept")
		if kept, _, _ := synckairos.DecodeKept(off, "kept"); kept {
			t.Fatal("DecodeCacheBytes -1 kept an entry")
		}
	})
}
