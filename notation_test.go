package synckairos_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/synckairos/synckairos"
)

func TestParseTimeControl(t *testing.T) {
	t.Parallel()
	m, s := time.Minute, time.Second
	for _, c := range []struct {
		in   string
		want synckairos.TimeControl
	}{
		{"3+2", synckairos.TimeControl{Base: 3 * m, Increment: 2 * s}},
		{"0.5+0", synckairos.TimeControl{Base: 30 * s}},
		{"90/40+30,30+30", synckairos.TimeControl{Base: 90 * m, Increment: 30 * s,
			Stages: []synckairos.Stage{{Moves: 40, Time: 30 * m, Increment: 30 * s}}}},
		{"120/40,60/20,15+30", synckairos.TimeControl{Base: 120 * m,
			Stages: []synckairos.Stage{{Moves: 40, Time: 60 * m}, {Moves: 60, Time: 15 * m, Increment: 30 * s}}}},
		{"5,3", synckairos.TimeControl{Base: 5 * m, Stages: []synckairos.Stage{{Time: 3 * m}}}},
		{"90d5", synckairos.TimeControl{Base: 90 * m, Delay: 5 * s, DelayMode: synckairos.DelaySimple}},
		{"90+30b5", synckairos.TimeControl{Base: 90 * m, Increment: 30 * s, Delay: 5 * s, DelayMode: synckairos.DelayBronstein}},
		{"10+5x30", synckairos.TimeControl{Base: 10 * m, Overtime: &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 5, Period: 30 * s}}},
		{"0+3x10s", synckairos.TimeControl{Overtime: &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 3, Period: 10 * s}}},
		{"10+25/10", synckairos.TimeControl{Base: 10 * m, Overtime: &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 25, Period: 10 * m}}},
		{"5;hourglass", synckairos.TimeControl{Base: 5 * m, Hourglass: true}},
		{"3+2;cap=5", synckairos.TimeControl{Base: 3 * m, Increment: 2 * s, BankCap: 5 * m}},
		{"72h;move=72h", synckairos.TimeControl{Base: 72 * time.Hour, MoveLimit: 72 * time.Hour}},
		{"1+0;untimed=2/30", synckairos.TimeControl{Base: m, UntimedMoves: 2, FirstMoveTimeout: 30 * s}},
		{"90s+500ms", synckairos.TimeControl{Base: 90 * s, Increment: 500 * time.Millisecond}},
	} {
		got, err := synckairos.ParseTimeControl(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", c.in, diff)
		}
		back, err := synckairos.ParseTimeControl(got.String())
		if err != nil || !cmp.Equal(got, back) {
			t.Errorf("%q: String %q reads back as %+v, %v", c.in, got.String(), back, err)
		}
	}
}

// Errors name the offset of what is wrong.
func TestParseTimeControlErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in     string
		offset int
		says   string
	}{
		{"", 0, "want a number"},
		{"3+", 2, "want a number"},
		{"3+2x", 4, "want a number"},
		{"90/40+30", 8, "needs a stage after it"},
		{"90/0,30", 2, "0 moves"},
		{"5,3/10,2", 3, "by moves after one that runs out by time"},
		{"90/40,30+5x30", 9, "overtime after stages"},
		{"10/40+5x30", 6, "overtime follows a main time that runs out"},
		{"3+2;colour=white", 4, "unknown option"},
		{"3+2;cap", 7, "want ="},
		{"3.1234567", 0, "not a number of this notation"},
		{"0.0001s", 0, "whole number of milliseconds"},
		{"1.5.2", 0, "not a number"},
		{"90,30d5", 5, "a delay belongs to the first stage"},
		{"9000h", 0, "too long"},
		{"3+2 ", 3, "unexpected"},
		{"3+2;hourglass", 4, "hourglass"},
		{"10+5000x30", 3, "periods"},
		{"5;untimed=9", 2, "untimed_moves"},
	} {
		_, err := synckairos.ParseTimeControl(c.in)
		var se *synckairos.ControlSyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: %v, want a *ControlSyntaxError saying %q", c.in, err, c.says)
			continue
		}
		if se.Offset != c.offset {
			t.Errorf("%q: offset %d, want %d (%v)", c.in, se.Offset, c.offset, err)
		}
	}
}

// String round-trips every control the notation can hold.
func TestTimeControlStringRoundTrips(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	d := func(max time.Duration) time.Duration {
		units := []time.Duration{time.Millisecond, time.Second, time.Minute}
		u := units[rng.IntN(len(units))]
		return time.Duration(1+rng.Int64N(int64(max/u))) * u
	}
	for range 2000 {
		c := synckairos.TimeControl{Base: d(3 * time.Hour)}
		if rng.IntN(2) == 0 {
			c.Increment = d(time.Minute)
		}
		switch rng.IntN(4) {
		case 0:
			moves := 0
			for range 1 + rng.IntN(3) {
				moves += 1 + rng.IntN(40)
				c.Stages = append(c.Stages, synckairos.Stage{Moves: moves, Time: d(time.Hour), Increment: d(time.Minute)})
			}
			if rng.IntN(2) == 0 {
				c.Stages = append(c.Stages, synckairos.Stage{Time: d(time.Hour)})
			}
		case 1:
			c.Increment = 0
			c.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeByoYomi, Periods: 1 + rng.IntN(10), Period: d(time.Minute)}
		case 2:
			c.Increment = 0
			c.Overtime = &synckairos.Overtime{Kind: synckairos.OvertimeCanadian, Moves: 1 + rng.IntN(30), Period: d(time.Hour)}
		case 3:
			if rng.IntN(2) == 0 {
				c.Delay, c.DelayMode = d(time.Minute), synckairos.DelayBronstein
			}
			c.BankCap, c.MoveLimit = d(time.Hour), d(time.Hour)
			if rng.IntN(2) == 0 {
				c.UntimedMoves, c.FirstMoveTimeout = 1+rng.IntN(4), d(time.Minute)
			}
		}
		text := c.String()
		back, err := synckairos.ParseTimeControl(text)
		if err != nil {
			t.Fatalf("%+v: %q: %v", c, text, err)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Fatalf("%q read back (-written +read):\n%s", text, diff)
		}
	}
}

func TestTimeControlNewSession(t *testing.T) {
	t.Parallel()
	s := synckairos.MustParseTimeControl("10+5x30").NewSession("g", "black", "white")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Participants[1].TotalTime != 10*time.Minute || s.Overtime.Periods != 5 {
		t.Fatalf("%+v", s)
	}
}
