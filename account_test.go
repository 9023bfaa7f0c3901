package synckairos_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

// bankTotal sums what the banks of s hold: the participants', the groups'
// or the session's.
func bankTotal(s *synckairos.State) time.Duration {
	var t time.Duration
	switch s.Mode {
	case synckairos.ModePerParticipant:
		t = banks(s)
	case synckairos.ModePerGroup:
		for _, g := range s.Groups {
			t += g.TotalTime
		}
	case synckairos.ModeGlobal:
		t = s.TotalTime
	}
	return t
}

// The account of every write, over random sequences of every transition in
// every mode, with delays, capped increments, expiries (ending the session
// or going on) and pauses, against the test's own clock: each write's bank
// movements are its Used less its credits, and the Used of all writes, with
// the running turn's elapsed time, is the time the test let run while the
// session was running, to the millisecond.
func TestAccountOfEveryWrite(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for seq := range 400 {
		n := 2 + rng.IntN(4)
		ids := []string{"p0", "p1", "p2", "p3", "p4", "p5"}[:n]
		s := &synckairos.State{SessionID: fmt.Sprint("acct-", seq), Status: synckairos.StatusPending, Version: 1}
		bank := func() time.Duration { return time.Duration(1+rng.IntN(20_000)) * time.Millisecond }
		switch mode := rng.IntN(5); mode {
		case 0, 1:
			s.Mode, s.Participants = synckairos.ModePerParticipant, players(0, ids...)
			for i := range s.Participants {
				s.Participants[i].TotalTime = bank()
				if rng.IntN(6) == 0 {
					s.Participants[i].TotalTime = synckairos.MaxBank - time.Duration(rng.IntN(500))*time.Millisecond // increments capped
				}
			}
			s.Increment = time.Duration(rng.IntN(3)) * time.Second
			if d := rng.IntN(3); d > 0 {
				s.Delay, s.DelayMode = time.Duration(1+rng.IntN(3000))*time.Millisecond, []synckairos.DelayMode{"", synckairos.DelaySimple, synckairos.DelayBronstein}[d]
			}
		case 2:
			s.Mode, s.Participants, s.Increment = synckairos.ModePerGroup, players(0, ids...), time.Duration(rng.IntN(2))*time.Second
			s.Groups = []synckairos.Group{{ID: "g0", TotalTime: bank()}, {ID: "g1", TotalTime: bank()}}
			for i := range s.Participants {
				s.Participants[i].GroupID = s.Groups[i%2].ID
			}
		case 3:
			s.Mode, s.Participants, s.TotalTime = synckairos.ModeGlobal, players(0, ids...), bank()
		case 4:
			s.Mode, s.Participants, s.TimePerCycle = synckairos.ModePerCycle, players(0, ids...), bank()/4
		}
		if s.Mode != synckairos.ModeGlobal && rng.IntN(2) == 0 {
			s.OnExpiry = synckairos.ExpiryContinue
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		now := start
		var ran, used time.Duration // the test's clock while running; the Used of every write
		for step := 0; step < 60; step++ {
			before := bankTotal(s)
			var err error
			switch rng.IntN(10) {
			case 0:
				err = s.Start(now)
			case 1, 2, 3, 4:
				err = s.Switch(now, nil)
			case 5:
				err = s.Pause(now)
			case 6:
				err = s.Resume(now)
			case 7:
				err = s.AddTime(now, ids[rng.IntN(n)], time.Duration(rng.IntN(4000)-1000)*time.Millisecond)
			case 8:
				if rng.IntN(10) == 0 {
					err = s.Complete(now)
				}
			case 9:
				err = s.Cancel(now)
				if rng.IntN(10) != 0 {
					err = errors.New("not this time")
				}
			}
			if tr := s.LastTransition; tr != nil && tr.Version == s.Version+1 {
				// A write: the transition, or the expiries it found due.
				if s.Mode != synckairos.ModePerCycle && s.Mode != synckairos.ModeCountUp {
					if got, want := before-bankTotal(s), tr.Used-tr.Increment-tr.Refund-tr.Added; got != want {
						t.Fatalf("seq %d step %d: %v: banks lost %v, want %v", seq, step, tr, got, want)
					}
				}
				used += tr.Used
				if verr := s.Validate(); verr != nil {
					t.Fatalf("seq %d step %d: %v wrote an invalid state: %v", seq, step, tr, verr)
				}
				s.Version++
			} else if err == nil && tr != nil && tr.Version == s.Version+1 {
				t.Fatalf("seq %d step %d: a transition not counted", seq, step)
			}
			if timeUsed(s) != used {
				t.Fatalf("seq %d step %d: TimeUsed %v, the writes charged %v", seq, step, timeUsed(s), used)
			}
			// The clock moves; the test counts what runs: all of it while the
			// session runs, up to the expiry that ends it, if one does.
			d := time.Duration(rng.IntN(8000)) * time.Millisecond
			from, wasRunning := now, s.Status == synckairos.StatusRunning
			now = now.Add(d)
			if wasRunning {
				if deadline, ok := s.Deadline(); ok && !now.Before(deadline) {
					// Apply what is due, as the expirer would.
					if err := s.Pause(now); !errors.Is(err, synckairos.ErrTimeRanOut) {
						t.Fatalf("seq %d step %d: pause past a deadline: %v", seq, step, err)
					}
					used += s.LastTransition.Used
					s.Version++
				}
				if s.Status == synckairos.StatusRunning {
					ran += d
				} else {
					ran += s.SessionCompletedAt.Sub(from)
				}
			}
		}
		if got := s.ElapsedAt(now); got != ran || used+s.CycleElapsed+running(s, now) != ran {
			t.Fatalf("seq %d (%s): ran %v by the test's clock; ElapsedAt %v, charged %v", seq, s.Mode, ran, got, used)
		}
	}
}

// running returns how long the running cycle has run since its last start.
func running(s *synckairos.State, now time.Time) time.Duration {
	if s.Status != synckairos.StatusRunning || s.CycleStartedAt == nil {
		return 0
	}
	return now.Sub(*s.CycleStartedAt)
}
