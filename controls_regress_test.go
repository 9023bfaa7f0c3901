package synckairos_test

import (
	"testing"
	"time"

	"github.com/synckairos/synckairos"
)

var reviewT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Found by an independent review. A Bronstein move that ran past the bank
// into a stage by time: the bank ran out at 10 s, so the stage by time
// began then (as ReadingAt shows during the turn); the refund comes after
// the move, which is in stage 1 and gets its increment: 60 − 2 + 5 (refund)
// + 10 (stage increment) = 73 s. (The refund added before the bank's check
// once left a in stage 0.)
func TestBronsteinRefundAfterAStageByTimeBegan(t *testing.T) {
	t.Parallel()
	s := &synckairos.State{SessionID: "x", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusPending, Version: 1,
		Participants: players(10*time.Second, "a", "b"), Increment: 2 * time.Second,
		Delay: 5 * time.Second, DelayMode: synckairos.DelayBronstein,
		Stages: []synckairos.Stage{{Time: 60 * time.Second, Increment: 10 * time.Second}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(reviewT0); err != nil {
		t.Fatal(err)
	}
	s.Version++
	now := reviewT0.Add(12 * time.Second)
	r, _ := s.ReadingAt("a", now)
	if r.Stage != 1 || r.Main != 58*time.Second {
		t.Fatalf("during the turn the clock shows stage %d, main %v; want stage 1, 58s", r.Stage, r.Main)
	}
	if err := s.Switch(now, &synckairos.SwitchOptions{From: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	s.Version++
	a := s.Participant("a")
	if a.Stage != 1 || a.TotalTime != 73*time.Second {
		t.Errorf("after the move: stage %d, bank %v (%v); want stage 1, bank 73s (stage 1's increment)", a.Stage, a.TotalTime, s.LastTransition)
	}
	if r, _ := s.ReadingAt("a", now); r.Stage != 1 {
		t.Errorf("after the move the clock shows stage %d, having shown stage 1 during the turn", r.Stage)
	}
}

// A pending session whose host chose who starts (ActiveParticipantID): no
// turn runs yet, so ReadingAt shows no delay for the chosen starter either.
func TestPendingChosenStarterShowsNoDelay(t *testing.T) {
	t.Parallel()
	s := &synckairos.State{SessionID: "x", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusPending, Version: 1,
		Participants: players(time.Minute, "a", "b"), Delay: 5 * time.Second, DelayMode: synckairos.DelaySimple,
		ActiveParticipantID: "b"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	ra, _ := s.ReadingAt("a", reviewT0)
	rb, _ := s.ReadingAt("b", reviewT0)
	if rb.Running || rb.Delay != 0 || rb.Remaining != ra.Remaining {
		t.Fatalf("pending: b (chosen to start) shows delay %v, remaining %v; a shows %v, %v; want no delay, the same remaining",
			rb.Delay, rb.Remaining, ra.Delay, ra.Remaining)
	}
}

// Cancelling a pending session whose host chose who starts names no From:
// no turn ran.
func TestCancelPendingNamesNoFrom(t *testing.T) {
	t.Parallel()
	s := &synckairos.State{SessionID: "x", Mode: synckairos.ModePerParticipant, Status: synckairos.StatusPending, Version: 1,
		Participants: players(time.Minute, "a", "b"), ActiveParticipantID: "b"}
	if err := s.Cancel(reviewT0); err != nil {
		t.Fatal(err)
	}
	if tr := s.LastTransition; tr.From != "" {
		t.Fatalf("cancel of a pending session: %v; want no From, no turn was charged", tr)
	}
}
