package keys

import (
	"testing"

	"github.com/synckairos/synckairos/internal/slots"
)

func TestSessionKeyLayout(t *testing.T) {
	l := New("sk:", 16)
	got := l.Session("game-1")
	want := "sk:{p" + pad(l.Partition("game-1")) + "}:s:game-1"
	if got != want {
		t.Fatalf("Session = %q, want %q", got, want)
	}
	if u := l.Updates(); u != "sk:session-updates" {
		t.Fatalf("Updates = %q", u)
	}
	if b := l.Broadcast("game-1"); b != "sk:ws:game-1" {
		t.Fatalf("Broadcast = %q", b)
	}
}

func pad(p int) string {
	s := []byte{'0' + byte(p/10), '0' + byte(p%10)}
	return string(s)
}

// The partition of an ID is part of the stored layout: pin a few values so a
// change of hash function cannot slip in unnoticed.
func TestPartitionIsStable(t *testing.T) {
	l := New("", 16)
	// Values from an independent FNV-1a (32-bit) implementation.
	cases := map[string]int{"": 5, "a": 12, "game-1": 13, "session/42": 2}
	for id, want := range cases {
		if got := l.Partition(id); got != want {
			t.Errorf("Partition(%q) = %d, want %d", id, got, want)
		}
	}
}

func TestPartitionsAreAllUsed(t *testing.T) {
	l := New("", 16)
	seen := make(map[int]bool)
	for i := range 1000 {
		seen[l.Partition("s"+string(rune('a'+i%26))+string(rune('a'+i/26)))] = true
	}
	if len(seen) != 16 {
		t.Fatalf("1000 IDs used %d of 16 partitions", len(seen))
	}
}

// A partition's slot is its tag's.
func TestSlotIsTheTags(t *testing.T) {
	l := New("app:", 16)
	if got, want := l.Slot(7), slots.Of("{p07}"); got != want || got != slots.Of("app:{p07}:s:x") {
		t.Errorf("partition 7: slot %d, want %d", got, want)
	}
}

// The spread layout's partitions sit on evenly spaced slots, distinct, at an
// offset of the prefix's; its keys carry the partitions' tags.
func TestSpreadLayout(t *testing.T) {
	l := NewSpread("app:", 16)
	seen := map[int]bool{}
	for p := range 16 {
		slot := l.Slot(p)
		if seen[slot] {
			t.Fatalf("partition %d shares slot %d", p, slot)
		}
		seen[slot] = true
		if want := (slots.Of("app:") + (2*p+1)*16384/32) % 16384; slot != want {
			t.Errorf("partition %d: slot %d, want %d", p, slot, want)
		}
		if got := slots.Of(l.Outbox(p)); got != slot {
			t.Errorf("partition %d: outbox in slot %d, want %d", p, got, slot)
		}
	}
	// Another prefix, other slots.
	other := NewSpread("game:", 16)
	for p := range 16 {
		if seen[other.Slot(p)] {
			t.Errorf("prefixes app: and game: share slot %d", other.Slot(p))
		}
	}
	// Every partition count, up to every slot.
	if all := NewSpread("x:", 16384); all.Slot(16383) == all.Slot(16382) {
		t.Error("16384 partitions do not take 16384 slots")
	}
}
