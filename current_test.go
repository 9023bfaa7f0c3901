package synckairos_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/testenv"
)

// A switch on the state the caller holds (SwitchOptions.Current): made
// without a read when it is the stored state; made on the stored state when
// it is stale, whichever way the stale one would have gone (a refusal it
// would have made is not made, a switch it would have allowed is refused
// if the stored state refuses it); refused for another session's state.
func TestSwitchOnTheStateHeld(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		m, other := b.newManager(nil), b.newManager(nil)
		mustCreate(t, m, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "white", "black")})
		s, err := m.StartSession(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "white", Turn: s.Turn, Current: s})
		if err != nil || r.State.Version != s.Version+1 || r.State.ActiveParticipantID != "black" {
			t.Fatalf("a switch on the state held: %+v %v", r, err)
		}
		stale := s // white to move, as of before the switch
		// Stale, it would refuse black's move: the stored state allows it.
		r, err = m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "black", Current: stale})
		if err != nil || r.State.ActiveParticipantID != "white" || r.State.Version != s.Version+2 {
			t.Fatalf("black's move on a stale state: %+v %v", r, err)
		}
		// Another instance moves for white: a stale state that would let
		// white move again is refused by the stored one.
		if _, err := other.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "white"}); err != nil {
			t.Fatal(err)
		}
		_, err = m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "white", Current: r.State})
		var te *synckairos.TurnError
		if !errors.As(err, &te) || !errors.Is(err, synckairos.ErrNotActive) || te.Current.Version != s.Version+3 {
			t.Fatalf("white again on a stale state: %v", err)
		}
		if got := mustGet(t, m, "g"); got.Version != s.Version+3 {
			t.Fatalf("the refused switch wrote: v%d", got.Version)
		}
		mustCreate(t, m, &synckairos.State{SessionID: "h", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
		if _, err := m.SwitchCycle(ctx, "h", &synckairos.SwitchOptions{Current: s}); !errors.Is(err, synckairos.ErrInvalidState) {
			t.Fatalf("another session's state: %v", err)
		}
	})
}

// A switch on the state held reads nothing: one script call, no HMGET of
// its own; without it, one HMGET first. (A Redis of the test's own, to count.)
func TestSwitchOnTheStateHeldSkipsTheRead(t *testing.T) {
	t.Parallel()
	url := testenv.StartRedis(t)
	m := managerOn(t, url, &synckairos.Config{KeyPrefix: testPrefix(t)})
	raw := newClientAt(t, url)
	ctx := context.Background()
	mustCreate(t, m, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
	s, err := m.StartSession(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	// The client's reads: every HMGET, less the one each write script
	// makes (an update reads its version, life and status with it).
	reads := func() int64 {
		calls, _ := testenv.CommandCalls(t, raw)
		return calls["hmget"] - calls["evalsha"]
	}
	before := reads()
	if _, err := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{Current: s}); err != nil {
		t.Fatal(err)
	}
	if n := reads() - before; n != 0 {
		t.Errorf("a switch on the state held read %d times", n)
	}
	before = reads()
	if _, err := m.SwitchCycle(ctx, "g", nil); err != nil {
		t.Fatal(err)
	}
	if n := reads() - before; n != 1 {
		t.Errorf("a switch without it read %d times, want 1", n)
	}
}
