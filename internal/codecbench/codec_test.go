package codecbench

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/synckairos/synckairos"
)

// TestLayoutsMatch holds each tagged type to the memory layout of the
// library's type it stands for: same fields, names, offsets and types (or
// the tagged stand-in of the type).
func TestLayoutsMatch(t *testing.T) {
	t.Parallel()
	pairs := map[reflect.Type]reflect.Type{
		reflect.TypeFor[synckairos.State]():              reflect.TypeFor[wireState](),
		reflect.TypeFor[synckairos.Participant]():        reflect.TypeFor[wireParticipant](),
		reflect.TypeFor[synckairos.Group]():              reflect.TypeFor[wireGroup](),
		reflect.TypeFor[synckairos.Overtime]():           reflect.TypeFor[wireOvertime](),
		reflect.TypeFor[synckairos.LagCompensation]():    reflect.TypeFor[wireLag](),
		reflect.TypeFor[synckairos.Stage]():              reflect.TypeFor[wireStage](),
		reflect.TypeFor[synckairos.ParticipantControl](): reflect.TypeFor[wireControl](),
		reflect.TypeFor[synckairos.Transition]():         reflect.TypeFor[wireTransition](),
	}
	var same func(lib, wire reflect.Type) bool
	same = func(lib, wire reflect.Type) bool {
		if w, ok := pairs[lib]; ok {
			return w == wire
		}
		if lib.Kind() != wire.Kind() {
			return false
		}
		switch lib.Kind() {
		case reflect.Pointer, reflect.Slice:
			return same(lib.Elem(), wire.Elem())
		}
		return lib == wire
	}
	for lib, wire := range pairs {
		if lib.NumField() != wire.NumField() || lib.Size() != wire.Size() {
			t.Errorf("%v has %d fields and %d bytes, %v %d and %d", lib, lib.NumField(), lib.Size(), wire, wire.NumField(), wire.Size())
			continue
		}
		for i := range lib.NumField() {
			l, w := lib.Field(i), wire.Field(i)
			if l.Name != w.Name || l.Offset != w.Offset || !same(l.Type, w.Type) {
				t.Errorf("%v.%s (%v at %d) against %v.%s (%v at %d)", lib, l.Name, l.Type, l.Offset, wire, w.Name, w.Type, w.Offset)
			}
		}
	}
}

var stateEqual = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

// TestSameForm: each codec reads what the other writes, back to the state
// (the two write the fields in a different order; the form is the same).
func TestSameForm(t *testing.T) {
	t.Parallel()
	for _, s := range samples() {
		ours, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := MarshalV2(s)
		if err != nil {
			t.Fatal(err)
		}
		var a, b synckairos.State
		if err := UnmarshalV2(ours, &a); err != nil {
			t.Fatalf("v2 reading %s: %v", ours, err)
		}
		if err := json.Unmarshal(theirs, &b); err != nil {
			t.Fatalf("reading v2's %s: %v", theirs, err)
		}
		sameState(t, "v2 reading the library's form", s, &a)
		sameState(t, "the library reading v2's form", s, &b)
		// Field order aside, the same bytes: both as generic JSON.
		var x, y any
		if err := json.Unmarshal(ours, &x); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(theirs, &y); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(x, y); diff != "" {
			t.Errorf("the two forms differ (-library +v2):\n%s", diff)
		}
	}
}

// sameState compares states, Data as a JSON value (v2 writes a raw value's
// escapes its own way).
func sameState(t *testing.T, what string, want, got *synckairos.State) {
	t.Helper()
	var x, y any
	if (want.Data != nil || got.Data != nil) &&
		(json.Unmarshal(want.Data, &x) != nil || json.Unmarshal(got.Data, &y) != nil || !cmp.Equal(x, y)) {
		t.Errorf("%s: Data %s, want %s", what, got.Data, want.Data)
	}
	w, g := *want, *got
	w.Data, g.Data = nil, nil
	if diff := cmp.Diff(&w, &g, stateEqual); diff != "" {
		t.Errorf("%s (-state +read):\n%s", what, diff)
	}
}

// game is a running game of n players, as stored after a few moves.
func game(n int) *synckairos.State {
	at := time.Date(2026, 11, 29, 12, 0, 0, 123_000_000, time.UTC)
	s := &synckairos.State{
		SessionID: "game-42", Life: 1795924266423474, Mode: synckairos.ModePerParticipant,
		Status: synckairos.StatusRunning, Version: 57, Turn: 56, ActiveParticipantID: "p0000",
		Increment: 2 * time.Second, OnExpiry: synckairos.ExpiryEndSession,
		CycleStartedAt: &at, SessionStartedAt: &at, CreatedAt: at, UpdatedAt: at,
		LastTransition: &synckairos.Transition{Type: synckairos.EventCycleSwitched, Version: 57, At: at,
			From: "p0001", To: "p0000", Used: 4321 * time.Millisecond, Increment: 2 * time.Second},
		Metadata: map[string]string{"white": "alice", "black": "bob", "event": "club blitz"},
	}
	for i := range n {
		s.Participants = append(s.Participants, synckairos.Participant{
			ID: fmt.Sprintf("p%04d", i), Index: i, TotalTime: 3 * time.Minute,
			TimeUsed: time.Duration(i*37+11) * time.Millisecond, CycleCount: 28, IsActive: i == 0,
		})
	}
	return s
}

func samples() []*synckairos.State {
	at := time.Date(2026, 5, 6, 7, 8, 9, 10_000_000, time.UTC)
	overtime := &synckairos.State{SessionID: "ot", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusRunning,
		Version: 9, ActiveParticipantID: "b",
		Participants: []synckairos.Participant{
			{ID: "a", Periods: 3, LagQuota: 250 * time.Millisecond, GroupID: "g"},
			{ID: "b", Index: 1, TotalTime: 2 * time.Second, BlockMoves: 4, IsActive: true, Stage: 1,
				Control: &synckairos.ParticipantControl{Increment: time.Second, Delay: 2 * time.Second}},
		},
		Overtime: &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 5, Period: 30 * time.Second},
		Lag:      &synckairos.LagCompensation{Gain: 100 * time.Millisecond, Initial: 300 * time.Millisecond, Max: 700 * time.Millisecond, Grace: 2 * time.Second},
		Stages:   []synckairos.Stage{{Moves: 40, Time: 30 * time.Minute, Increment: 30 * time.Second}},
		Groups:   []synckairos.Group{{ID: "g", TotalTime: time.Minute, TimeUsed: time.Second, HasExpired: true}},
		BankCap:  time.Hour, MoveLimit: time.Minute, Hourglass: true, UntimedMoves: 2, FirstMoveTimeout: time.Second,
		CycleElapsed:   1500 * time.Millisecond,
		CycleStartedAt: &at, SessionCompletedAt: &at, CreatedAt: at, UpdatedAt: at,
		LastTransition: &synckairos.Transition{Type: synckairos.EventCycleSwitched, Version: 9, At: at, From: "a", To: "b",
			Participant: "a", Used: 31 * time.Second, Refund: time.Second, Added: -time.Minute,
			Compensation: 120 * time.Millisecond, Credit: 880 * time.Millisecond, PeriodsUsed: 1, Transferred: 3 * time.Second,
			Expired: []string{"a"}},
		Data: json.RawMessage(`{"board":["r","n",null],"s":"\u00e9\""}`),
	}
	return []*synckairos.State{game(2), game(1000), overtime}
}

// BenchmarkCodec: the library's codec and go-json-experiment's, writing and
// reading a running game of 2 and of 1,000 players.
//
//	go -C internal/codecbench test -run '^$' -bench Codec -benchmem -count 5 .
func BenchmarkCodec(b *testing.B) {
	for _, n := range []int{2, 1000} {
		s := game(n)
		stored, _ := json.Marshal(s)
		b.Run(fmt.Sprintf("participants=%d/encode/library", n), func(b *testing.B) {
			b.SetBytes(int64(len(stored)))
			for b.Loop() {
				if _, err := s.MarshalJSON(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("participants=%d/encode/go-json-experiment", n), func(b *testing.B) {
			b.SetBytes(int64(len(stored)))
			for b.Loop() {
				if _, err := MarshalV2(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("participants=%d/decode/library", n), func(b *testing.B) {
			b.SetBytes(int64(len(stored)))
			for b.Loop() {
				var out synckairos.State
				if err := out.UnmarshalJSON(stored); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("participants=%d/decode/go-json-experiment", n), func(b *testing.B) {
			b.SetBytes(int64(len(stored)))
			for b.Loop() {
				var out synckairos.State
				if err := UnmarshalV2(stored, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
