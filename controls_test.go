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

// mclock is the test's own model of one participant's clock: it ticks a
// millisecond at a time, the way a clock on a table runs down, with none of
// the engine's closed forms.
type mclock struct {
	kind          synckairos.OvertimeKind
	period        time.Duration // the control's period or block
	moves         int           // the control's moves per Canadian block
	inc           time.Duration
	main, current time.Duration // main time; the running period or block
	periods       int           // byo-yomi periods left
	blockMoves    int           // Canadian moves left in the block
	inBlock       bool          // Canadian: the block has begun
	flagged       bool
}

func (c *mclock) tick() {
	switch {
	case c.flagged:
	case c.main > 0:
		c.main -= time.Millisecond
		if c.main == 0 && c.kind == "" {
			c.flagged = true
		}
	case c.kind == synckairos.OvertimeByoYomi:
		c.current -= time.Millisecond
		if c.current == 0 {
			if c.periods--; c.periods == 0 {
				c.flagged = true
			} else {
				c.current = c.period
			}
		}
	case c.kind == synckairos.OvertimeCanadian:
		if !c.inBlock {
			c.inBlock, c.current, c.blockMoves = true, c.period, c.moves
		}
		c.current -= time.Millisecond
		if c.current == 0 {
			c.flagged = true
		}
	default:
		c.flagged = true // a bank of zero
	}
}

// move is a move made: the period is kept, a block counts it, the increment
// is added.
func (c *mclock) move() {
	switch c.kind {
	case synckairos.OvertimeByoYomi:
		c.current = c.period
	case synckairos.OvertimeCanadian:
		if c.inBlock {
			if c.blockMoves--; c.blockMoves == 0 {
				c.current, c.blockMoves = c.period, c.moves
			}
		}
	default:
		c.main = min(c.main+c.inc, synckairos.MaxBank)
	}
}

// limit returns how many milliseconds the clock may run before it flags.
func (c mclock) limit() time.Duration {
	n := time.Duration(0)
	for !c.flagged {
		c.tick()
		n += time.Millisecond
	}
	return n
}

// lagModel is lichess's lag tracker, as its LagTracker.onMove reads.
type lagModel struct{ gain, max, grace time.Duration }

// available returns all the time a participant has: its bank and overtime.
func available(s *synckairos.State, p synckairos.Participant) time.Duration {
	ov := s.Overtime
	switch {
	case ov == nil:
		return p.TotalTime
	case ov.Kind == synckairos.OvertimeByoYomi:
		return p.TotalTime + time.Duration(p.Periods)*ov.Period
	case p.BlockMoves == 0:
		return p.TotalTime + ov.Period
	}
	return p.TotalTime
}

func availableAll(s *synckairos.State) time.Duration {
	var t time.Duration
	for _, p := range s.Participants {
		t += available(s, p)
	}
	return t
}

// Byo-yomi, Canadian overtime, Fischer and lag compensation with its flag
// grace, over random games of moves at random times, at and just after
// deadlines, with random lag and pauses, against the test's tick-by-tick
// model: every move is accepted or flagged as the model says, the clocks
// and quotas after it are the model's, what the clock shows at random
// instants is the model's, and every write keeps the account (time lost =
// Used − Increment − Compensation − Credit).
func TestControlsAgainstModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(14, 1))
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond }
	flags, graceSaves, moves, credits, periodsUsed := 0, 0, 0, 0, 0
	for game := range 600 {
		s := &synckairos.State{SessionID: fmt.Sprint("ctl-", game), Mode: synckairos.ModePerParticipant,
			Status: synckairos.StatusPending, Version: 1, Participants: players(0, "a", "b")}
		var proto mclock
		variant := game % 4
		switch variant {
		case 0: // byo-yomi
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 1 + rng.IntN(4), Period: ms(50, 600)}
			proto = mclock{kind: synckairos.OvertimeByoYomi, period: s.Overtime.Period, periods: s.Overtime.Periods, current: s.Overtime.Period}
		case 1: // Canadian
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 1 + rng.IntN(4), Period: ms(100, 1500)}
			proto = mclock{kind: synckairos.OvertimeCanadian, period: s.Overtime.Period, moves: s.Overtime.Moves}
		case 2, 3: // Fischer
			s.Increment = ms(0, 300)
			proto = mclock{inc: s.Increment}
		}
		var lag *lagModel
		if variant != 2 || rng.IntN(2) == 0 {
			gain := ms(0, 200)
			s.Lag = &synckairos.LagCompensation{Gain: gain, Initial: 3 * gain, Max: 7*gain + time.Millisecond, Grace: ms(0, 400)}
			s.Lag.Grace = min(s.Lag.Grace, s.Lag.Max)
			lag = &lagModel{gain: s.Lag.Gain, max: s.Lag.Max, grace: s.Lag.Grace}
		}
		clocks := map[string]*mclock{}
		quota := map[string]time.Duration{}
		for i := range s.Participants {
			c := proto
			c.main = ms(0, 1500)
			if variant >= 2 {
				c.main = ms(1, 2000)
			}
			s.Participants[i].TotalTime = c.main
			clocks[s.Participants[i].ID] = &c
			if lag != nil {
				quota[s.Participants[i].ID] = s.Lag.Initial
			}
		}
		// What CreateSession does: the participants' periods and quotas.
		for i := range s.Participants {
			if s.Overtime != nil && s.Overtime.Kind == synckairos.OvertimeByoYomi {
				s.Participants[i].Periods = s.Overtime.Periods
			}
			if s.Lag != nil {
				s.Participants[i].LagQuota = s.Lag.Initial
			}
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("game %d: %v", game, err)
		}
		commit := func(step string) {
			t.Helper()
			if err := s.Validate(); err != nil {
				t.Fatalf("game %d %s: invalid state written: %v", game, step, err)
			}
			s.Version++
		}
		now := start
		if err := s.Start(now); err != nil {
			t.Fatal(err)
		}
		commit("start")
		for step := 0; step < 80 && s.Status == synckairos.StatusRunning; step++ {
			id := s.ActiveParticipantID
			c := clocks[id]
			limit := c.limit()
			var e time.Duration
			switch r := rng.IntN(40); {
			case r == 0:
				e = max(limit-time.Millisecond, 0)
			case r == 1:
				e = limit
			case r <= 3:
				e = limit + ms(1, 120)
			case r <= 6:
				e = ms(0, int(limit/time.Millisecond)+100)
			default: // most moves take a part of what is left
				e = ms(0, int(limit/time.Millisecond)/3)
			}
			// A look at the clock on the way, and perhaps a pause.
			var ran time.Duration
			if x := ms(0, int(e/time.Millisecond)); x < limit {
				model := *c
				for range x / time.Millisecond {
					model.tick()
				}
				r, err := s.ReadingAt(id, now.Add(x))
				if err != nil {
					t.Fatal(err)
				}
				checkReading(t, game, step, s, r, model, limit-x)
				if rng.IntN(5) == 0 {
					now = now.Add(x)
					if err := s.Pause(now); err != nil {
						t.Fatalf("game %d step %d: pause: %v", game, step, err)
					}
					commit("pause")
					now = now.Add(ms(0, 5000))
					if err := s.Resume(now); err != nil {
						t.Fatal(err)
					}
					commit("resume")
					ran = x
				}
			}
			reported := time.Duration(0)
			if rng.IntN(2) == 0 {
				reported = ms(0, 300)
			}
			// The model's verdict.
			comp, grace := time.Duration(0), time.Duration(0)
			if lag != nil {
				comp = min(reported, quota[id], e)
				grace = min(lag.grace, quota[id])
			}
			accepted := e-comp < limit && e < limit+grace
			now = now.Add(e - ran)
			before := availableAll(s)
			err := s.Switch(now, &synckairos.SwitchOptions{From: id, Lag: reported})
			tr := s.LastTransition
			if !accepted {
				var te *synckairos.TransitionError
				if !errors.As(err, &te) {
					t.Fatalf("game %d step %d: %s moved at %v of %v (lag %v, comp %v, grace %v): %v, want flagged", game, step, id, e, limit, reported, comp, grace, err)
				}
				if tr.Type != synckairos.EventSessionExpired || !tr.At.Equal(now.Add(limit-e)) || tr.From != id {
					t.Fatalf("game %d step %d: the flag: %v, want at %v", game, step, tr, now.Add(limit-e))
				}
				flags++
				if got, want := before-availableAll(s), tr.Used; got != want {
					t.Fatalf("game %d step %d: the flag took %v, used %v", game, step, got, want)
				}
				commit("flag")
				break
			}
			if err != nil {
				t.Fatalf("game %d step %d: %s moved at %v of %v (lag %v, comp %v): %v", game, step, id, e, limit, reported, comp, err)
			}
			moves++
			if e >= limit {
				graceSaves++
			}
			if tr.Credit > 0 {
				credits++
			}
			periodsUsed += tr.PeriodsUsed
			// The model moves.
			for range (e - comp) / time.Millisecond {
				c.tick()
			}
			c.move()
			if lag != nil {
				quota[id] = min(quota[id]+lag.gain-comp, lag.max)
			}
			if tr.Used != e || tr.Compensation != comp {
				t.Fatalf("game %d step %d: used %v, compensation %v; want %v, %v", game, step, tr.Used, tr.Compensation, e, comp)
			}
			if got, want := before-availableAll(s), tr.Used-tr.Increment-tr.Refund-tr.Compensation-tr.Credit; got != want {
				t.Fatalf("game %d step %d: %v: time lost %v, want %v", game, step, tr, got, want)
			}
			p := s.Participant(id)
			if p.LagQuota != quota[id] {
				t.Fatalf("game %d step %d: quota %v, model %v", game, step, p.LagQuota, quota[id])
			}
			checkParticipant(t, game, step, s, *p, *c)
			commit("move")
		}
	}
	t.Logf("%d moves, %d flags, %d moves saved by lag within the grace, %d overtime credits, %d byo-yomi periods used", moves, flags, graceSaves, credits, periodsUsed)
	if flags == 0 || graceSaves == 0 || credits == 0 || periodsUsed == 0 {
		t.Fatal("the games never flagged, saved a late move, kept a period or renewed a block, or used a period: the test does not test")
	}
}

// checkParticipant compares a participant's clock after its move with the
// model's.
func checkParticipant(t *testing.T, game, step int, s *synckairos.State, p synckairos.Participant, c mclock) {
	t.Helper()
	ok := true
	switch c.kind {
	case synckairos.OvertimeByoYomi:
		ok = p.TotalTime == c.main && p.Periods == c.periods
	case synckairos.OvertimeCanadian:
		if c.inBlock {
			ok = p.TotalTime == c.current && p.BlockMoves == c.blockMoves
		} else {
			ok = p.TotalTime == c.main && p.BlockMoves == 0
		}
	default:
		ok = p.TotalTime == c.main
	}
	if !ok {
		t.Fatalf("game %d step %d: %s has bank %v, periods %d, block moves %d; model %+v", game, step, p.ID, p.TotalTime, p.Periods, p.BlockMoves, c)
	}
}

// checkReading compares what the clock shows with the model's clock.
func checkReading(t *testing.T, game, step int, s *synckairos.State, r synckairos.Reading, c mclock, remaining time.Duration) {
	t.Helper()
	bad := r.Remaining != remaining || !r.Running || r.Expired
	switch c.kind {
	case synckairos.OvertimeByoYomi:
		inOT := c.main == 0
		bad = bad || r.InOvertime != inOT || r.Periods != c.periods || r.Main != c.main
		if inOT {
			bad = bad || r.Period != c.current
		}
	case synckairos.OvertimeCanadian:
		bad = bad || r.InOvertime != c.inBlock
		if c.inBlock {
			bad = bad || r.Period != c.current || r.BlockMoves != c.blockMoves || r.Main != 0
		} else {
			bad = bad || r.Main != c.main
		}
	default:
		bad = bad || r.Main != c.main
	}
	if bad {
		t.Fatalf("game %d step %d: the clock shows %+v; model %+v, %v left", game, step, r, c, remaining)
	}
}

// Through the Manager, on every backend: a move that arrives after its
// deadline but within the flag grace is accepted when its reported lag,
// compensated, brings it back before the deadline, and refused (the flag
// written, at the deadline) when not; the deadline index holds the deadline
// plus the grace, and the expirer flags at the deadline once the grace is
// past. Byo-yomi periods run out through the expirer at main + periods.
func TestControlsThroughTheManager(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		lag := &synckairos.LagCompensation{Gain: 100 * time.Millisecond, Initial: 300 * time.Millisecond, Max: 700 * time.Millisecond, Grace: 2 * time.Second}
		mustCreate(t, m, &synckairos.State{SessionID: "lagged", Mode: synckairos.ModePerParticipant, Participants: players(time.Second, "a", "b"), Lag: lag})
		s, err := m.StartSession(ctx, "lagged")
		if err != nil {
			t.Fatal(err)
		}
		if q := s.Participant("a").LagQuota; q != 300*time.Millisecond {
			t.Fatalf("a's quota %v, want the initial 300ms", q)
		}
		deadline, _ := s.Deadline()
		score, err := b.raw.Do(ctx, b.raw.B().Zscore().Key(b.keys(t).Deadlines(m.Partition("lagged"))).Member("lagged").Build()).AsInt64()
		if err != nil || score != deadline.Add(300*time.Millisecond).UnixMilli() {
			t.Fatalf("deadline index %d (%v), want the deadline %v + the grace of a's quota", score, err, deadline)
		}
		clock.Advance(1200 * time.Millisecond) // 200 ms past a's deadline
		r, err := m.SwitchCycle(ctx, "lagged", &synckairos.SwitchOptions{From: "a", Lag: 250 * time.Millisecond})
		if err != nil {
			t.Fatalf("a lagged move within the grace: %v", err)
		}
		tr := r.State.LastTransition
		if a := r.State.Participant("a"); tr.Used != 1200*time.Millisecond || tr.Compensation != 250*time.Millisecond ||
			a.TotalTime != 50*time.Millisecond || a.LagQuota != 150*time.Millisecond {
			t.Fatalf("the saved move: %v, a %+v", tr, a)
		}
		clock.Advance(1100 * time.Millisecond) // 100 ms past b's deadline; b reports 50 ms
		_, err = m.SwitchCycle(ctx, "lagged", &synckairos.SwitchOptions{From: "b", Lag: 50 * time.Millisecond})
		var te *synckairos.TransitionError
		if !errors.As(err, &te) {
			t.Fatalf("a move too late for its lag: %v", err)
		}
		s = mustGet(t, m, "lagged")
		if s.Status != synckairos.StatusExpired || !s.LastTransition.At.Equal(clock.Now().Add(-100*time.Millisecond)) {
			t.Fatalf("after the late move: %s, %v", s.Status, s.LastTransition)
		}

		// The expirer, once the grace is past; and byo-yomi.
		mustCreate(t, m, &synckairos.State{SessionID: "graced", Mode: synckairos.ModePerParticipant, Participants: players(time.Second, "a", "b"), Lag: lag})
		mustCreate(t, m, &synckairos.State{SessionID: "byoyomi", Mode: synckairos.ModePerParticipant, Participants: players(500*time.Millisecond, "a", "b"),
			Overtime: &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 3, Period: 200 * time.Millisecond}})
		begun := clock.Now()
		for _, id := range []string{"graced", "byoyomi"} {
			if _, err := m.StartSession(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		runExpirer(t, m)
		clock.Advance(1301 * time.Millisecond)
		for id, at := range map[string]time.Time{"graced": begun.Add(time.Second), "byoyomi": begun.Add(1100 * time.Millisecond)} {
			s := waitVersion(t, m, id, 3)
			if tr := s.LastTransition; tr.Type != synckairos.EventSessionExpired || !tr.At.Equal(at) || tr.Used != at.Sub(begun) {
				t.Fatalf("%s: the expirer wrote %v, want the flag at %v", id, tr, at)
			}
		}
		if p := mustGet(t, m, "byoyomi").Participant("a"); p.Periods != 0 || p.TotalTime != 0 || !p.HasExpired {
			t.Fatalf("byo-yomi flagged: %+v", p)
		}
	})
}
