package synckairos_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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
	inc           time.Duration // the increment of the first stage, or the participant's own
	delay         time.Duration // a simple delay (the turn's first ticks run no bank)
	bronstein     time.Duration // a Bronstein delay (refunded after the move)
	stages        []synckairos.Stage
	cap           time.Duration // the bank cap of increments
	moveLimit     time.Duration
	main, current time.Duration // main time; the running period or block
	periods       int           // byo-yomi periods left
	blockMoves    int           // Canadian moves left in the block
	inBlock       bool          // Canadian: the block has begun
	stage         int           // stages begun
	made          int           // moves made
	turn          time.Duration // ticks of the running turn
	ran           time.Duration // ticks of the running turn that ran the bank
	untimed       bool          // the running turn is untimed
	timeout       time.Duration // the untimed turn's bound
	flagged       bool
}

// byTime reports whether the next stage begins when the bank runs out.
func (c *mclock) byTime() bool { return c.stage < len(c.stages) && c.stages[c.stage].Moves == 0 }

func (c *mclock) tick() {
	if c.flagged {
		return
	}
	c.turn += time.Millisecond
	switch {
	case c.untimed:
		if c.turn == c.timeout {
			c.flagged = true
		}
		return
	case c.turn <= c.delay: // a simple delay runs first
	case c.main > 0 || (c.main == 0 && c.byTime()):
		if c.main == 0 {
			c.main = c.stages[c.stage].Time
			c.stage++
		}
		c.main -= time.Millisecond
		c.ran += time.Millisecond
		if c.main == 0 && c.kind == "" && !c.byTime() {
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
	if c.moveLimit > 0 && c.turn == c.moveLimit {
		c.flagged = true
	}
}

// move is a move made: the period is kept, a block counts it, the delay
// refunded, the increment added, stages begun.
func (c *mclock) move() {
	c.made++
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
		if c.untimed {
			break
		}
		c.main += min(c.ran, c.bronstein)
		inc := c.inc
		if c.stage > 0 {
			inc = c.stages[c.stage-1].Increment
		}
		next := min(c.main+inc, synckairos.MaxBank)
		if c.cap > 0 {
			next = min(next, max(c.main, c.cap))
		}
		c.main = next
	}
	for c.stage < len(c.stages) && c.stages[c.stage].Moves > 0 && c.made >= c.stages[c.stage].Moves {
		c.main = min(c.main+c.stages[c.stage].Time, synckairos.MaxBank)
		c.stage++
	}
	c.turn, c.ran = 0, 0
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

// available returns all the time a participant has: its bank, overtime and
// stages by time to come.
func available(s *synckairos.State, p synckairos.Participant) time.Duration {
	ov := s.Overtime
	switch {
	case ov == nil:
		t := p.TotalTime
		for k := p.Stage; k < len(s.Stages) && s.Stages[k].Moves == 0; k++ {
			t += s.Stages[k].Time
		}
		return t
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

// The variants of TestControlsAgainstModel.
var controlVariants = []string{"byo-yomi", "Canadian", "Fischer", "Fischer with lag", "stages", "hourglass",
	"cap and per-move maximum", "own controls and untimed first moves"}

// Every time control, over random games of moves at random times, at and
// just after deadlines, with random lag and pauses, against the test's
// tick-by-tick model: every move is accepted, flagged or aborted as the
// model says, the clocks and quotas after it are the model's, what the
// clock shows at random instants is the model's, and every write keeps the
// account (time lost = Used − Increment − Refund − Compensation − Credit −
// Transferred).
func TestControlsAgainstModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(14, 1))
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond }
	seen := map[string]int{}
	for game := range 1600 {
		ids := []string{"a", "b", "c"}[:2+rng.IntN(2)]
		s := &synckairos.State{SessionID: fmt.Sprint("ctl-", game), Mode: synckairos.ModePerParticipant,
			Status: synckairos.StatusPending, Version: 1, Participants: players(0, ids...)}
		if rng.IntN(2) == 0 {
			s.OnExpiry = synckairos.ExpiryContinue
		}
		var proto mclock
		variant := controlVariants[game%len(controlVariants)]
		lagged := rng.IntN(2) == 0
		own := map[string]*synckairos.ParticipantControl{}
		switch variant {
		case "byo-yomi":
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 1 + rng.IntN(4), Period: ms(50, 600)}
			proto = mclock{kind: synckairos.OvertimeByoYomi, period: s.Overtime.Period, periods: s.Overtime.Periods, current: s.Overtime.Period}
		case "Canadian":
			s.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 1 + rng.IntN(4), Period: ms(100, 1500)}
			proto = mclock{kind: synckairos.OvertimeCanadian, period: s.Overtime.Period, moves: s.Overtime.Moves}
		case "Fischer", "Fischer with lag":
			s.Increment = ms(0, 300)
			proto = mclock{inc: s.Increment}
			lagged = variant == "Fischer with lag"
		case "stages":
			s.Increment = ms(0, 100)
			s.Stages = []synckairos.Stage{{Moves: 1 + rng.IntN(3), Time: ms(1, 800), Increment: ms(0, 200)}}
			if rng.IntN(2) == 0 {
				s.Stages = append(s.Stages, synckairos.Stage{Moves: s.Stages[0].Moves + 1 + rng.IntN(3), Time: ms(1, 800), Increment: ms(0, 200)})
			}
			for range rng.IntN(3) {
				s.Stages = append(s.Stages, synckairos.Stage{Time: ms(1, 500), Increment: ms(0, 200)})
			}
			proto = mclock{inc: s.Increment, stages: s.Stages}
			if d := rng.IntN(3); d > 0 {
				s.DelayMode = []synckairos.DelayMode{"", synckairos.DelaySimple, synckairos.DelayBronstein}[d]
				s.Delay = ms(1, 300)
			}
		case "hourglass":
			s.Hourglass = true
		case "cap and per-move maximum":
			s.Increment, s.BankCap, s.MoveLimit = ms(0, 400), ms(1, 2000), ms(1, 1500)
			proto = mclock{inc: s.Increment, cap: s.BankCap, moveLimit: s.MoveLimit}
		case "own controls and untimed first moves":
			s.Increment, s.UntimedMoves, s.FirstMoveTimeout = ms(0, 300), rng.IntN(3), ms(100, 2000)
			if s.UntimedMoves == 0 {
				s.FirstMoveTimeout = 0
			}
			proto = mclock{inc: s.Increment, timeout: s.FirstMoveTimeout}
			if d := rng.IntN(3); d > 0 {
				s.DelayMode = []synckairos.DelayMode{"", synckairos.DelaySimple, synckairos.DelayBronstein}[d]
				s.Delay = ms(1, 300)
			}
			for _, id := range ids {
				if rng.IntN(2) == 0 {
					c := &synckairos.ParticipantControl{Increment: ms(0, 300)}
					if s.DelayMode != "" {
						c.Delay = ms(0, 300)
					}
					own[id] = c
				}
			}
			if rng.IntN(2) == 0 {
				s.ActiveParticipantID = "b" // b starts
			}
		}
		var lag *lagModel
		if lagged {
			gain := ms(0, 200)
			s.Lag = &synckairos.LagCompensation{Gain: gain, Initial: 3 * gain, Max: 7*gain + time.Millisecond, Grace: ms(0, 400)}
			lag = &lagModel{gain: s.Lag.Gain, max: s.Lag.Max, grace: s.Lag.Grace}
		}
		clocks := map[string]*mclock{}
		quota := map[string]time.Duration{}
		for i := range s.Participants {
			p := &s.Participants[i]
			c := proto
			c.main = ms(0, 1500)
			if s.Overtime == nil { // only overtime lets a main time start at zero here
				c.main = ms(1, 2000)
			}
			if oc := own[p.ID]; oc != nil {
				p.Control = oc
				c.inc = oc.Increment
			}
			delay := s.Delay
			if p.Control != nil {
				delay = p.Control.Delay
			}
			switch s.DelayMode {
			case synckairos.DelaySimple:
				c.delay = delay
			case synckairos.DelayBronstein:
				c.bronstein = delay
			}
			p.TotalTime = c.main
			clocks[p.ID] = &c
			if lag != nil {
				quota[p.ID] = s.Lag.Initial
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
			t.Fatalf("game %d (%s): %v", game, variant, err)
		}
		commit := func(step string) {
			t.Helper()
			if err := s.Validate(); err != nil {
				t.Fatalf("game %d %s: invalid state written: %v", game, step, err)
			}
			s.Version++
		}
		now := start
		starter := s.ActiveParticipantID
		if err := s.Start(now); err != nil {
			t.Fatal(err)
		}
		if s.LastTransition.To != cmp.Or(starter, "a") {
			t.Fatalf("game %d: %s started, want %s", game, s.LastTransition.To, cmp.Or(starter, "a"))
		}
		commit("start")
		gracedAt := func(id string) time.Duration {
			if lag == nil {
				return 0
			}
			return min(lag.grace, quota[id])
		}
		out := map[string]bool{}
		nextOf := func(id string) string {
			i := slices.Index(ids, id)
			for k := 1; k <= len(ids); k++ {
				if n := ids[(i+k)%len(ids)]; !out[n] {
					return n
				}
			}
			return ""
		}
		mturn := int64(1)         // the model's turn number
		carry := time.Duration(0) // how long the running turn has run at now
		for step := 0; step < 80 && s.Status == synckairos.StatusRunning; step++ {
			id := s.ActiveParticipantID
			c := clocks[id]
			c.untimed = mturn <= int64(s.UntimedMoves)
			if s.Turn != mturn {
				t.Fatalf("game %d step %d: turn %d, model %d", game, step, s.Turn, mturn)
			}
			limit := c.limit()
			left := max(limit-carry, 0)
			var e time.Duration
			switch r := rng.IntN(40); {
			case r == 0:
				e = max(limit-time.Millisecond, carry)
			case r == 1:
				e = max(limit, carry)
			case r <= 3:
				e = max(limit, carry) + ms(1, 120)
			case r == 4: // long past: the next may run out too
				e = max(limit, carry) + ms(0, 4000)
			case r <= 7:
				e = carry + ms(0, int(left/time.Millisecond)+100)
			default: // most moves take a part of what is left
				e = carry + ms(0, int(left/time.Millisecond)/3)
			}
			// A look at the clock on the way, and perhaps a pause.
			ran := carry
			if x := carry + ms(0, int((e-carry)/time.Millisecond)); x < limit {
				model := *c
				for range x / time.Millisecond {
					model.tick()
				}
				r, err := s.ReadingAt(id, now.Add(x-carry))
				if err != nil {
					t.Fatal(err)
				}
				remaining := limit - x
				if c.untimed {
					remaining = available(s, *s.Participant(id))
				}
				checkReading(t, game, step, s, r, model, remaining)
				if rng.IntN(5) == 0 {
					now = now.Add(x - carry)
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
			comp, grace := time.Duration(0), gracedAt(id)
			if lag != nil && !c.untimed {
				comp = min(reported, quota[id], e)
			}
			if c.untimed {
				grace = 0
			}
			accepted := e-comp < limit && e < limit+grace
			now = now.Add(e - ran)
			before := availableAll(s)
			next := nextOf(id)
			err := s.Switch(now, &synckairos.SwitchOptions{From: id, Lag: reported})
			tr := s.LastTransition
			if !accepted {
				// The mover's time ran out at its deadline; with
				// ExpiryContinue the next goes on from there, and runs out
				// too if its own deadline and grace are past.
				deadline := now.Add(limit - e)
				late := e - limit
				flagged, used := []string{id}, limit
				status, active := synckairos.StatusExpired, ""
				switch {
				case c.untimed:
					status = synckairos.StatusCancelled
				case s.OnExpiry == synckairos.ExpiryContinue:
					out[id] = true
					cur := id
					for len(ids)-len(out) >= 2 {
						n := nextOf(cur)
						mturn++
						nc := clocks[n]
						nc.untimed = mturn <= int64(s.UntimedMoves)
						l := nc.limit()
						if late < l+gracedAt(n) { // (untimed turns are the first: none follows a flag)
							status, active, carry = synckairos.StatusRunning, n, late
							break
						}
						out[n] = true
						flagged, used, late, cur = append(flagged, n), used+l, late-l, n
					}
				}
				want := synckairos.EventSessionExpired
				switch {
				case c.untimed:
					want = synckairos.EventSessionAborted
				case status == synckairos.StatusRunning:
					want = synckairos.EventParticipantExpired
				}
				var te *synckairos.TransitionError
				var ue *synckairos.TurnError
				if status == synckairos.StatusRunning && !errors.As(err, &ue) || status != synckairos.StatusRunning && !errors.As(err, &te) {
					t.Fatalf("game %d step %d (%s): %s moved at %v of %v (lag %v, comp %v, grace %v): %v, want refused (%s)", game, step, variant, id, e, limit, reported, comp, grace, err, status)
				}
				if tr.Type != want || !tr.At.Equal(deadline.Add(used-limit)) || tr.Used != used || s.Status != status ||
					s.ActiveParticipantID != active || (!c.untimed && !slices.Equal(tr.Expired, flagged)) {
					t.Fatalf("game %d step %d (%s): the flag: %v expired %v, %s, %q active; want %s at %v of %v, %v, %s, %q", game, step, variant,
						tr, tr.Expired, s.Status, s.ActiveParticipantID, want, deadline.Add(used-limit), used, flagged, status, active)
				}
				seen["flag"]++
				if len(flagged) > 1 {
					seen["chained flags"]++
				}
				if status == synckairos.StatusRunning {
					seen["went on after a flag"]++
				}
				if lost, credited := before-availableAll(s), tr.Used-tr.Credit-tr.Refund; lost != credited {
					t.Fatalf("game %d step %d (%s): the flag took %v, used %v", game, step, variant, lost, credited)
				}
				commit("flag")
				continue
			}
			if err != nil {
				t.Fatalf("game %d step %d (%s): %s moved at %v of %v (lag %v, comp %v): %v", game, step, variant, id, e, limit, reported, comp, err)
			}
			carry = 0
			mturn++
			seen["move"]++
			if e >= limit {
				seen["saved by lag within the grace"]++
			}
			if tr.Credit > 0 {
				seen["credit"]++
			}
			if tr.Transferred > 0 {
				seen["transferred"]++
			}
			if c.untimed {
				seen["untimed move"]++
			}
			seen["periods used"] += tr.PeriodsUsed
			// The model moves.
			stageBefore := c.stage
			for range (e - comp) / time.Millisecond {
				c.tick()
			}
			if s.Hourglass && !c.untimed {
				o := clocks[next]
				o.main = min(o.main+c.ran, synckairos.MaxBank)
			}
			c.move()
			if c.stage > stageBefore {
				seen["stage begun"]++
			}
			if lag != nil && !c.untimed {
				quota[id] = min(quota[id]+lag.gain-comp, lag.max)
			}
			if tr.Used != e || tr.Compensation != comp || tr.To != next {
				t.Fatalf("game %d step %d: used %v, compensation %v, to %s; want %v, %v, %s", game, step, tr.Used, tr.Compensation, tr.To, e, comp, next)
			}
			if got, want := before-availableAll(s), tr.Used-tr.Increment-tr.Refund-tr.Compensation-tr.Credit-tr.Transferred; got != want {
				t.Fatalf("game %d step %d (%s): %v: time lost %v, want %v", game, step, variant, tr, got, want)
			}
			p := s.Participant(id)
			if p.LagQuota != quota[id] {
				t.Fatalf("game %d step %d: quota %v, model %v", game, step, p.LagQuota, quota[id])
			}
			checkParticipant(t, game, step, s, *p, *c)
			checkParticipant(t, game, step, s, *s.Participant(next), *clocks[next])
			commit("move")
		}
	}
	t.Logf("%v", seen)
	for _, what := range []string{"flag", "move", "saved by lag within the grace", "credit", "transferred", "untimed move", "periods used", "stage begun",
		"chained flags", "went on after a flag"} {
		if seen[what] == 0 {
			t.Errorf("no %s in any game: the test does not test it", what)
		}
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
		ok = p.TotalTime == c.main && p.Stage == c.stage
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
		bad = bad || r.Main != c.main || r.Stage != c.stage || r.Untimed != c.untimed
		if c.delay > 0 && !c.untimed {
			bad = bad || r.Delay != max(c.delay-c.turn, 0)
		}
		if c.moveLimit > 0 {
			bad = bad || r.MoveLeft != c.moveLimit-c.turn
		}
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
	t.Parallel()
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

// Through the Manager: the host chooses who starts; untimed first moves run
// no bank, and one not made within FirstMoveTimeout aborts the game (the
// expirer writes it, as EventSessionAborted); a stage's time comes with the
// move that reaches it, in the same write.
func TestFirstMovesAndStagesThroughTheManager(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m, clock := engineManager(t, b, nil)
		ctx := context.Background()
		runExpirer(t, m)
		fide := &synckairos.State{SessionID: "fide", Mode: synckairos.ModePerParticipant, Participants: players(90*time.Minute, "white", "black"),
			Increment: 30 * time.Second, Stages: []synckairos.Stage{{Moves: 2, Time: 30 * time.Minute, Increment: 30 * time.Second}},
			UntimedMoves: 2, FirstMoveTimeout: 30 * time.Second, ActiveParticipantID: "black"}
		mustCreate(t, m, fide)
		s, err := m.StartSession(ctx, "fide")
		if err != nil || s.ActiveParticipantID != "black" {
			t.Fatalf("start: %v, %v; want black to start", s, err)
		}
		clock.Advance(20 * time.Second) // untimed: no bank runs
		r, err := m.SwitchCycle(ctx, "fide", &synckairos.SwitchOptions{From: "black"})
		if err != nil {
			t.Fatal(err)
		}
		if p := r.State.Participant("black"); p.TotalTime != 90*time.Minute || r.State.LastTransition.Credit != 20*time.Second {
			t.Fatalf("after an untimed move: black has %v, %v", p.TotalTime, r.State.LastTransition)
		}
		clock.Advance(10 * time.Second)
		if _, err := m.SwitchCycle(ctx, "fide", &synckairos.SwitchOptions{From: "white"}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute) // timed now; black's second move reaches the stage
		r, err = m.SwitchCycle(ctx, "fide", &synckairos.SwitchOptions{From: "black"})
		if err != nil {
			t.Fatal(err)
		}
		want := 90*time.Minute - time.Minute + 30*time.Second + 30*time.Minute
		if p := r.State.Participant("black"); p.TotalTime != want || p.Stage != 1 || r.State.LastTransition.Credit != 30*time.Minute {
			t.Fatalf("black after move 2: %v at stage %d (%v), want %v at stage 1", p.TotalTime, p.Stage, r.State.LastTransition, want)
		}

		// A game nobody started.
		mustCreate(t, m, &synckairos.State{SessionID: "idle", Mode: synckairos.ModePerParticipant, Participants: players(time.Minute, "a", "b"),
			UntimedMoves: 2, FirstMoveTimeout: 15 * time.Second})
		begun := clock.Now()
		if _, err := m.StartSession(ctx, "idle"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(15 * time.Second)
		s = waitVersion(t, m, "idle", 3)
		if tr := s.LastTransition; s.Status != synckairos.StatusCancelled || tr.Type != synckairos.EventSessionAborted ||
			!tr.At.Equal(begun.Add(15*time.Second)) || tr.From != "a" {
			t.Fatalf("the abort: %s, %v", s.Status, tr)
		}
	})
}
