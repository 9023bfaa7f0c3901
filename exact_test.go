package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// ledger follows a session through the transitions the test commits, and
// keeps the account that conservation speaks of: what the banks were given
// (increments, refunds, time added), what the transitions charged (Used),
// and the running time by the server clock (the spans between the
// transitions' times while the session ran).
type ledger struct {
	t        *testing.T
	version  int64
	given    time.Duration
	used     time.Duration
	running  time.Duration
	runSince *time.Time // start of the running span, nil while not running
}

// see takes in the state a call returned: its LastTransition must be the
// change of the version after the last one seen.
func (l *ledger) see(s *synckairos.State) {
	l.t.Helper()
	tr := s.LastTransition
	if tr == nil || tr.Version != s.Version || s.Version != l.version+1 {
		l.t.Fatalf("v%d after v%d: transition %v", s.Version, l.version, tr)
	}
	l.version = s.Version
	l.given += tr.Increment + tr.Refund + tr.Added
	l.used += tr.Used
	if l.runSince != nil {
		if tr.At.Before(*l.runSince) {
			l.t.Fatalf("%s at %v, before the running span's start %v", tr.Type, tr.At, *l.runSince)
		}
		l.running += tr.At.Sub(*l.runSince)
		l.runSince = nil
	}
	if s.Status == synckairos.StatusRunning {
		at := tr.At
		l.runSince = &at
	}
}

func banks(s *synckairos.State) time.Duration {
	var total time.Duration
	for _, p := range s.Participants {
		total += p.TotalTime
	}
	return total
}

func timeUsed(s *synckairos.State) time.Duration {
	var total time.Duration
	for _, p := range s.Participants {
		total += p.TimeUsed
	}
	return total
}

// Conservation, exactly, on the real clock: 600 moves at real speed from two
// instances, with pauses and time added, on Fischer increments and a simple
// delay. What the banks lost, net of what they were given, is what the
// transitions charged; that is the session's running time by the server
// clock to the millisecond; and it is the participants' TimeUsed. On the
// fake the clock moves by sub-millisecond steps, which the real clock makes.
func TestConservationOnTheRealClock(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		managers := []*synckairos.Manager{b.newManager(nil), b.newManager(nil)}
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(11, uint64(len(b.name))))
		pace := func() {
			d := time.Duration(rng.IntN(1500)) * time.Microsecond
			if b.fake != nil {
				b.fake.Advance(d + time.Duration(rng.IntN(1000))*time.Nanosecond)
			} else if rng.IntN(4) == 0 {
				time.Sleep(d)
			}
		}
		for _, delay := range []synckairos.DelayMode{synckairos.DelayNone, synckairos.DelaySimple, synckairos.DelayBronstein} {
			id := fmt.Sprint("exact-", delay)
			in := &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Increment: 3 * time.Millisecond,
				Participants: players(time.Hour, "white", "black")}
			if delay != synckairos.DelayNone {
				in.Increment, in.Delay, in.DelayMode = 0, time.Millisecond, delay
			}
			s := mustCreate(t, managers[0], in)
			initial := banks(s)
			l := &ledger{t: t, version: 1}
			beforeStart := time.Now()
			s, err := managers[1].StartSession(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			l.see(s)
			afterStart := time.Now()
			const moves = 600
			for i := range moves {
				pace()
				m := managers[i%2]
				switch {
				case i%97 == 50:
					if s, err = m.PauseSession(ctx, id); err != nil {
						t.Fatal(err)
					}
					l.see(s)
					pace()
					if s, err = m.ResumeSession(ctx, id); err != nil {
						t.Fatal(err)
					}
					l.see(s)
				case i%131 == 7:
					if s, err = m.AddTime(ctx, id, "black", 15*time.Millisecond); err != nil {
						t.Fatal(err)
					}
					l.see(s)
				}
				r, err := m.SwitchCycle(ctx, id, &synckairos.SwitchOptions{From: s.ActiveParticipantID, Turn: s.Turn})
				if err != nil {
					t.Fatalf("move %d: %v", i, err)
				}
				s = r.State
				l.see(s)
			}
			pace()
			beforeComplete := time.Now()
			if s, err = managers[0].CompleteSession(ctx, id); err != nil {
				t.Fatal(err)
			}
			l.see(s)
			afterComplete := time.Now()
			wall := afterComplete.Sub(afterStart)

			lost := initial - banks(s)
			if lost+l.given != l.used {
				t.Errorf("%s: banks lost %v and were given %v; the transitions charged %v", id, lost, l.given, l.used)
			}
			if l.used != l.running {
				t.Errorf("%s: charged %v; the session ran %v by the server clock", id, l.used, l.running)
			}
			if got := timeUsed(s); got != l.used {
				t.Errorf("%s: participants' TimeUsed %v, charged %v", id, got, l.used)
			}
			if got := s.ElapsedAt(s.UpdatedAt); got != l.used {
				t.Errorf("%s: ElapsedAt %v, charged %v", id, got, l.used)
			}
			if s.Turn != moves+1 {
				t.Errorf("%s: turn %d after %d moves", id, s.Turn, moves)
			}
			// The server's span agrees with the wall clock of the test (the
			// pauses ran on the wall clock too): it lies between the inner
			// span (from the start's reply to the completion's request) and
			// the outer one (from the start's request to the completion's
			// reply), within the calibration of the two instances' clocks.
			if b.fake == nil {
				span := s.SessionCompletedAt.Sub(*s.SessionStartedAt)
				inner, outer := beforeComplete.Sub(afterStart), afterComplete.Sub(beforeStart)
				if span < inner-25*time.Millisecond || span > outer+25*time.Millisecond {
					t.Errorf("%s: the server's span %v, the test's wall clock between %v and %v", id, span, inner, outer)
				}
			}
			t.Logf("%s: %d moves over %v, charged %v, banks lost %v, given %v", id, moves, wall, l.used, lost, l.given)
		}
	})
}

// TimeUsed and ElapsedAt count the time the turns took, not the time the
// bank was charged: moves of 3 s, 8 s and 3 s with a 5 s delay took 14 s.
func TestTimeUsedCountsTheWholeTurn(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		for _, mode := range []synckairos.DelayMode{synckairos.DelaySimple, synckairos.DelayBronstein} {
			id := string(mode)
			mustCreate(t, m, &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Delay: 5 * time.Second,
				DelayMode: mode, Participants: players(time.Minute, "a", "b")})
			if _, err := m.StartSession(ctx, id); err != nil {
				t.Fatal(err)
			}
			var s *synckairos.State
			var refunds time.Duration
			for _, d := range []time.Duration{3 * time.Second, 8 * time.Second, 3 * time.Second} {
				clock.Advance(d)
				r, err := m.SwitchCycle(ctx, id, nil)
				if err != nil {
					t.Fatal(err)
				}
				s = r.State
				if r.Used != d || s.LastTransition.Used != d {
					t.Errorf("%s: a %v turn reported %v", mode, d, r.Used)
				}
				refunds += s.LastTransition.Refund
			}
			if got := s.ElapsedAt(clock.Now()); got != 14*time.Second {
				t.Errorf("%s: ElapsedAt %v, want 14s", mode, got)
			}
			if a, b := s.Participant("a").TimeUsed, s.Participant("b").TimeUsed; a != 6*time.Second || b != 8*time.Second {
				t.Errorf("%s: TimeUsed a %v, b %v; want 6s, 8s", mode, a, b)
			}
			if refunds != 11*time.Second { // 3 + 5 + 3 credited back
				t.Errorf("%s: refunds %v, want 11s", mode, refunds)
			}
			if lost := 2*time.Minute - banks(s); lost != 14*time.Second-refunds {
				t.Errorf("%s: banks lost %v, want %v", mode, lost, 14*time.Second-refunds)
			}
		}
	})
}

// A turn timer left running forfeits turn after turn; however long it was
// left, the turns are all accounted, exactly, as one write.
func TestForfeitedTurnsOfALongAbsence(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, idle := range []time.Duration{2500 * time.Millisecond, 7 * time.Second, 24*time.Hour + 500*time.Millisecond} {
		s := &synckairos.State{SessionID: "x", Mode: synckairos.ModePerCycle, TimePerCycle: time.Second,
			Status: synckairos.StatusPending, Version: 1, Participants: players(0, "a", "b", "c")}
		if err := s.Start(start); err != nil {
			t.Fatal(err)
		}
		s.Version++
		now := start.Add(idle)
		if err := s.Pause(now); !errors.Is(err, synckairos.ErrTimeRanOut) {
			t.Fatalf("pause after %v: %v", idle, err)
		}
		turns := int64(idle / time.Second) // forfeited, each a whole second
		tr := s.LastTransition
		if s.Turn != 1+turns || tr.Used != time.Duration(turns)*time.Second || timeUsed(s) != tr.Used {
			t.Errorf("after %v: turn %d (want %d), used %v, TimeUsed %v", idle, s.Turn, 1+turns, tr.Used, timeUsed(s))
		}
		if want := s.Participants[turns%3].ID; s.ActiveParticipantID != want {
			t.Errorf("after %v: %s active, want %s", idle, s.ActiveParticipantID, want)
		}
		if got := s.ElapsedAt(now); got != idle {
			t.Errorf("after %v: ElapsedAt %v", idle, got)
		}
		counts := 0
		for _, p := range s.Participants {
			counts += p.CycleCount
		}
		if int64(counts) != turns {
			t.Errorf("after %v: %d turns counted, want %d", idle, counts, turns)
		}
	}
}
