package synckairos_test

import (
	"context"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

// Found by an independent review: a finish that a live finisher has read
// but not yet started (its workers busy) must stay with it, kept like those
// being handled; it was taken over by another live finisher after
// ClaimAfter and then handled by both.
func TestFinishWaitingForAWorkerIsKept(t *testing.T) {
	t.Parallel()
	b := newRedisBackend(t)
	m := b.newManager(&synckairos.Config{QueueFinishes: true})
	ctx := context.Background()
	const claimAfter = 300 * time.Millisecond
	got := newFinishes()
	started := make(chan struct{}, 10)
	handler := got.handler(func(f synckairos.Finish) error {
		started <- struct{}{}
		if f.SessionID == "slow" {
			time.Sleep(4 * claimAfter) // kept meanwhile by the finisher
		}
		return nil
	})
	// A: one worker.
	runFinisher(t, m, handler, &synckairos.FinisherConfig{Consumer: "a", ClaimAfter: claimAfter, Concurrency: 1})
	for _, id := range []string{"slow", "queued"} {
		mustCreate(t, m, newState(id, 2))
		if _, err := m.CancelSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if id == "slow" {
			<-started // A is at work on "slow"
		}
	}
	time.Sleep(100 * time.Millisecond) // A has read "queued" too; it waits for A's worker
	// B: a second live finisher.
	runFinisher(t, m, handler, &synckairos.FinisherConfig{Consumer: "b", ClaimAfter: claimAfter})
	got.wait(t, 2)
	time.Sleep(6 * claimAfter) // A's worker gets to "queued" after "slow"
	got.mu.Lock()
	defer got.mu.Unlock()
	if calls := got.calls["queued"]; len(calls) != 1 {
		t.Errorf("queued: %d handler calls, no finisher died: %+v", len(calls), calls)
	}
}

// An expiry in flight returns the state it wrote; a change made meanwhile
// by another instance, and heard while it was in flight, must not be
// overwritten by that older state when the expiry is done (it was: the next
// flag, 59 s earlier than the older state said, came late). (WaitReplicas,
// with no replica, holds the expiry's write for WaitTimeout; any write's
// round trip opens the same window, only narrower.)
func TestExpiryResultDoesNotOverrideANewerChange(t *testing.T) {
	t.Parallel()
	b := newRedisBackend(t)
	clock := synckairostest.NewClock(synckairostest.Epoch)
	mE := b.newManager(&synckairos.Config{WaitReplicas: 1, Test: synckairos.TestConfig{Clock: clock}})
	m2 := b.newManager(&synckairos.Config{Test: synckairos.TestConfig{Clock: clock}})
	ctx := context.Background()
	runExpirer(t, mE)
	mustCreate(t, m2, &synckairos.State{SessionID: "three", Mode: synckairos.ModePerParticipant, OnExpiry: synckairos.ExpiryContinue,
		Participants: []synckairos.Participant{{ID: "a", TotalTime: 10 * time.Second}, {ID: "b", TotalTime: time.Minute}, {ID: "c", TotalTime: time.Second}}})
	if _, err := m2.StartSession(ctx, "three"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the expirer hears the start
	clock.Advance(10 * time.Second)    // a flags: b's turn, b's deadline in 60 s
	s := waitVersion(t, m2, "three", 3)
	if s.ActiveParticipantID != "b" {
		t.Fatalf("after a's flag: %s's turn", s.ActiveParticipantID)
	}
	// b moves at once: c's turn, c's deadline in 1 s.
	if _, err := m2.SwitchCycle(ctx, "three", &synckairos.SwitchOptions{From: "b"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the expiry's write returns
	clock.Advance(time.Second + time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := mustGet(t, m2, "three")
		if s.Version >= 5 {
			return
		}
		if time.Now().After(deadline) {
			d, _ := s.Deadline()
			t.Fatalf("c's flag not applied: v%d %s, %s's deadline %v ago", s.Version, s.Status, s.ActiveParticipantID, clock.Now().Sub(d))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On the fake, an expiry that failed once is tried again 100 ms later by
// the local clock: the test clock, which moves by hand, once left it
// waiting for ever.
func TestFailedExpiryRetriedOnTheFake(t *testing.T) {
	t.Parallel()
	m, fake := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	runExpirer(t, m)
	mustCreate(t, m, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b")})
	if _, err := m.StartSession(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	// The expirer subscribed (an error injected before would end it), and
	// it hears the start.
	raw, err := fake.Server().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	channel := synckairos.KeysOf(m).Updates()
	for deadline := time.Now().Add(5 * time.Second); ; {
		n, err := raw.Do(ctx, raw.B().PubsubNumsub().Channel(channel).Build()).AsIntMap()
		if err != nil {
			t.Fatal(err)
		}
		if n[channel] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expirer did not subscribe within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	fake.Server().SetError("ERR injected")
	fake.Clock.Advance(time.Minute)
	time.Sleep(200 * time.Millisecond) // the expiry is tried, and fails
	fake.Server().SetError("")
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := mustGet(t, m, "g")
		if s.Status == synckairos.StatusExpired {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("at the deadline, Redis back for 5 s: %s v%d", s.Status, s.Version)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RunFinisher, like RunExpirer, returns ErrClosed once its Manager is
// closed (it once went on reading until its context ended).
func TestFinisherEndsWithClose(t *testing.T) {
	t.Parallel()
	b := newRedisBackend(t)
	m := b.newManager(&synckairos.Config{QueueFinishes: true})
	ctx, cancel := context.WithCancel(context.Background())
	fin := make(chan error, 1)
	go func() {
		fin <- m.RunFinisher(ctx, func(context.Context, synckairos.Finish) error { return nil }, nil)
	}()
	t.Cleanup(func() { cancel(); <-fin })
	time.Sleep(300 * time.Millisecond)
	m.Close()
	select {
	case err := <-fin:
		fin <- err
	case <-time.After(5 * time.Second):
		t.Error("RunFinisher still running 5 s after the Manager's Close (RunExpirer returns ErrClosed)")
	}
}
