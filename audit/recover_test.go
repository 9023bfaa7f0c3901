package audit_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/audit"
	"github.com/synckairos/synckairos/internal/testenv"
)

// Redis loses everything (a restart without persistence); RecoverAll, run by
// two instances at once, brings back every unfinished session from the
// trail, running ones paused as of their last event, and nothing else.
func TestRecoverAllAfterRedisLostItsData(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, nil)
	stopRelay := p.startRelay(t, p.pool, nil)
	ctx := context.Background()
	m := p.m
	create := func(id string) *synckairos.State {
		s, err := m.CreateSession(ctx, newState(id, 2))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	create("pending")
	create("running")
	create("paused")
	create("done")
	create("gone")
	must := func(_ *synckairos.State, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"running", "paused", "done"} {
		must(m.StartSession(ctx, id))
	}
	time.Sleep(20 * time.Millisecond) // white thinks
	r, err := m.SwitchCycle(ctx, "running", nil)
	if err != nil {
		t.Fatal(err)
	}
	running := r.State
	time.Sleep(30 * time.Millisecond) // black thinks; the last event is the switch
	must(m.PauseSession(ctx, "paused"))
	must(m.CompleteSession(ctx, "done"))
	if err := m.DeleteSession(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	p.waitRows(t, 5+3+1+1+1+1)
	stopRelay()

	// Redis loses the test's data.
	testenv.DeletePrefix(t, p.redis, p.prefix)

	var wg sync.WaitGroup
	reports := make([]*audit.RecoveryReport, 2)
	for i := range reports {
		wg.Go(func() {
			rep, err := audit.RecoverAll(ctx, m, p.pool)
			if err != nil {
				t.Error(err)
			}
			reports[i] = rep
		})
	}
	wg.Wait()
	var restored, paused []string
	for _, rep := range reports {
		restored = append(restored, rep.Restored...)
		paused = append(paused, rep.Paused...)
	}
	slices.Sort(restored)
	if !slices.Equal(restored, []string{"paused", "pending", "running"}) || !slices.Equal(paused, []string{"running"}) {
		t.Fatalf("restored %q, paused %q (reports %+v %+v)", restored, paused, reports[0], reports[1])
	}
	s := mustGet(t, m, "running")
	if s.Status != synckairos.StatusPaused || s.Version != running.Version+1 || s.CycleElapsed != 0 ||
		s.ActiveParticipantID != running.ActiveParticipantID || s.Life != running.Life ||
		s.LastTransition.Type != synckairos.EventSessionPaused || !s.LastTransition.At.Equal(running.LastTransition.At) {
		t.Fatalf("the running game came back as %s v%d, %v elapsed, %s active, %v", s.Status, s.Version, s.CycleElapsed, s.ActiveParticipantID, s.LastTransition)
	}
	for _, id := range []string{"done", "gone"} {
		if _, err := m.GetSession(ctx, id); err == nil {
			t.Errorf("%s came back", id)
		}
	}
	// Again: nothing to do.
	rep, err := audit.RecoverAll(ctx, m, p.pool)
	if err != nil || len(rep.Restored) != 0 || len(rep.Skipped) != 3 {
		t.Fatalf("a second recovery: %+v, %v", rep, err)
	}
	// The game goes on where it stopped.
	s, err = m.ResumeSession(ctx, "running")
	if err != nil || s.Status != synckairos.StatusRunning {
		t.Fatalf("resume after the recovery: %v, %v", s, err)
	}
}

func mustGet(t *testing.T, m *synckairos.Manager, id string) *synckairos.State {
	t.Helper()
	s, err := m.GetSession(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
