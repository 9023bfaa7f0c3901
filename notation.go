package synckairos

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TimeControl is a ModePerParticipant time control as a value: what
// ParseTimeControl reads, String writes, and NewSession starts a session
// with. Its fields are those of State that hold the control.
type TimeControl struct {
	// Base is every participant's starting bank: the first stage's time.
	Base time.Duration
	// Increment and Delay (with DelayMode) are the first stage's.
	Increment time.Duration
	Delay     time.Duration
	DelayMode DelayMode
	// Stages are the stages after the first, as State.Stages.
	Stages []Stage
	// Overtime follows the main time, as State.Overtime.
	Overtime *Overtime
	// BankCap, MoveLimit, Hourglass, UntimedMoves and FirstMoveTimeout are
	// as in State.
	BankCap          time.Duration
	MoveLimit        time.Duration
	Hourglass        bool
	UntimedMoves     int
	FirstMoveTimeout time.Duration
}

// NewSession returns a pending ModePerParticipant session of the control,
// for participants in rotation order, to give to CreateSession.
func (c TimeControl) NewSession(id string, participants ...string) *State {
	s := &State{
		SessionID: id, Mode: ModePerParticipant, Status: StatusPending,
		Increment: c.Increment, Delay: c.Delay, DelayMode: c.DelayMode,
		BankCap: c.BankCap, MoveLimit: c.MoveLimit, Hourglass: c.Hourglass,
		UntimedMoves: c.UntimedMoves, FirstMoveTimeout: c.FirstMoveTimeout,
	}
	if len(c.Stages) > 0 {
		s.Stages = append([]Stage(nil), c.Stages...)
	}
	if c.Overtime != nil {
		ov := *c.Overtime
		s.Overtime = &ov
	}
	for _, id := range participants {
		s.Participants = append(s.Participants, Participant{ID: id, TotalTime: c.Base})
	}
	s.initControls() // byo-yomi periods, as CreateSession would
	return s
}

// ControlSyntaxError reports a time control ParseTimeControl cannot read,
// and where.
type ControlSyntaxError struct {
	Input  string
	Offset int // in bytes, into Input
	Msg    string
}

func (e *ControlSyntaxError) Error() string {
	return fmt.Sprintf("synckairos: time control %q: at offset %d (%s): %s", e.Input, e.Offset, e.near(), e.Msg)
}

func (e *ControlSyntaxError) near() string {
	if e.Offset >= len(e.Input) {
		return "the end"
	}
	return strconv.Quote(e.Input[e.Offset:])
}

// ParseTimeControl reads a time control in synckairos's notation:
//
//	3+2            3 minutes, 2 seconds increment (lichess's form)
//	90/40+30,30+30 90 minutes for 40 moves, then 30 more; 30 s increment
//	120/40,60/20,15+30  FIDE's world championship: stages at moves 40 and 60
//	5,3            5 minutes, then 3 more when they run out (a stage by time)
//	90d5  90b5     a 5 s simple (US) or Bronstein delay
//	10+5x30        byo-yomi: 10 minutes, then 5 periods of 30 seconds
//	10+25/10       Canadian: 10 minutes, then 25 moves in each 10 minutes
//	5;hourglass  3+2;cap=5  4320;move=4320  1+0;untimed=2/30
//	               options: an hourglass, a bank cap, a per-move maximum,
//	               untimed first moves (and their timeout)
//
// A stage's time, a Canadian block, a cap and a per-move maximum are in
// minutes, and an increment, delay, byo-yomi period and untimed timeout in
// seconds, unless a unit says otherwise (ms, s, m, h: 30s, 1h30m is not
// allowed but 90m is); a number may have a fraction (0.5+0 is 30 s). A
// stage with "/moves" is followed by the next once the moves are made; one
// without, by the next once its time runs out. Errors are
// *ControlSyntaxError, with the offset of the problem.
func ParseTimeControl(text string) (TimeControl, error) {
	p := controlParser{in: text}
	c, err := p.control()
	if err != nil {
		return TimeControl{}, err
	}
	s := c.NewSession("parse", "a", "b")
	if err := s.Validate(); err != nil {
		// Point at what the rule is about.
		at := 0
		var se *StateError
		if errors.As(err, &se) {
			for field, offset := range p.offsets {
				if strings.HasPrefix(se.Field, field) {
					at = offset
				}
			}
		}
		return TimeControl{}, &ControlSyntaxError{Input: text, Offset: at, Msg: strings.TrimPrefix(err.Error(), "synckairos: ")}
	}
	return c, nil
}

// MustParseTimeControl is ParseTimeControl for controls known to be valid:
// it panics on an error.
func MustParseTimeControl(text string) TimeControl {
	c, err := ParseTimeControl(text)
	if err != nil {
		panic(err)
	}
	return c
}

type controlParser struct {
	in  string
	pos int
	// offsets holds where the parts of the control were written, by the
	// State field they become, to point a validation error at them.
	offsets map[string]int
}

func (p *controlParser) mark(field string, at int) {
	if p.offsets == nil {
		p.offsets = map[string]int{}
	}
	p.offsets[field] = at
}

func (p *controlParser) fail(at int, format string, args ...any) error {
	return &ControlSyntaxError{Input: p.in, Offset: at, Msg: fmt.Sprintf(format, args...)}
}

func (p *controlParser) peek() byte {
	if p.pos < len(p.in) {
		return p.in[p.pos]
	}
	return 0
}

func (p *controlParser) eat(c byte) bool {
	if p.peek() == c {
		p.pos++
		return true
	}
	return false
}

// number reads digits with an optional fraction.
func (p *controlParser) number() (string, error) {
	start := p.pos
	for p.pos < len(p.in) && (p.in[p.pos] >= '0' && p.in[p.pos] <= '9' || p.in[p.pos] == '.') {
		p.pos++
	}
	if p.pos == start {
		return "", p.fail(start, "want a number")
	}
	return p.in[start:p.pos], nil
}

// integer reads a whole number.
func (p *controlParser) integer() (int, error) {
	start := p.pos
	n, err := p.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 0 {
		return 0, p.fail(start, "%q is not a whole number", n)
	}
	return v, nil
}

// duration reads a number and an optional unit; unit is the default.
func (p *controlParser) duration(unit time.Duration) (time.Duration, error) {
	start := p.pos
	n, err := p.number()
	if err != nil {
		return 0, err
	}
	rest := p.in[p.pos:]
	switch {
	case strings.HasPrefix(rest, "ms"):
		unit, p.pos = time.Millisecond, p.pos+2
	case strings.HasPrefix(rest, "s"):
		unit, p.pos = time.Second, p.pos+1
	case strings.HasPrefix(rest, "m"):
		unit, p.pos = time.Minute, p.pos+1
	case strings.HasPrefix(rest, "h"):
		unit, p.pos = time.Hour, p.pos+1
	}
	whole, frac, dot := strings.Cut(n, ".")
	if strings.Contains(frac, ".") || (dot && frac == "") || whole == "" || len(frac) > 6 {
		return 0, p.fail(start, "%q is not a number of this notation", n)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > int64(MaxBank/unit) {
		return 0, p.fail(start, "%s is too long", n)
	}
	d := time.Duration(w) * unit
	if frac != "" {
		f, _ := strconv.ParseInt(frac, 10, 64)
		den := int64(1)
		for range frac {
			den *= 10
		}
		if int64(unit)%den != 0 || (time.Duration(f)*(unit/time.Duration(den)))%time.Millisecond != 0 {
			return 0, p.fail(start, "%s is not a whole number of milliseconds", n)
		}
		d += time.Duration(f) * (unit / time.Duration(den))
	}
	if d%time.Millisecond != 0 {
		return 0, p.fail(start, "%s is not a whole number of milliseconds", n)
	}
	return d, nil
}

// rawStage is a stage as written: its time, moves (0: none) and
// increment, with the offsets of its parts.
type rawStage struct {
	time, inc   time.Duration
	moves       int
	at, movesAt int
	delay       time.Duration
	delayMode   DelayMode
	delayAt     int
}

func (p *controlParser) control() (TimeControl, error) {
	var c TimeControl
	var stages []rawStage
	overtimeAt := -1
	for {
		st := rawStage{at: p.pos}
		var err error
		if st.time, err = p.duration(time.Minute); err != nil {
			return c, err
		}
		st.movesAt = p.pos
		if p.eat('/') {
			if st.moves, err = p.integer(); err != nil {
				return c, err
			}
			if st.moves == 0 {
				return c, p.fail(st.movesAt, "a stage of 0 moves")
			}
		}
		if p.eat('+') {
			numAt := p.pos
			if _, err := p.number(); err == nil && (p.peek() == 'x' || p.peek() == '/') {
				p.pos, overtimeAt = numAt, numAt
			} else {
				p.pos = numAt
				if st.inc, err = p.duration(time.Second); err != nil {
					return c, err
				}
			}
		}
		if overtimeAt < 0 && (p.peek() == 'd' || p.peek() == 'b') {
			st.delayAt, st.delayMode = p.pos, DelaySimple
			if p.in[p.pos] == 'b' {
				st.delayMode = DelayBronstein
			}
			p.pos++
			if st.delay, err = p.duration(time.Second); err != nil {
				return c, err
			}
		}
		stages = append(stages, st)
		if overtimeAt >= 0 {
			p.mark("overtime", overtimeAt)
			if err := p.overtime(&c); err != nil {
				return c, err
			}
			break
		}
		if !p.eat(',') {
			break
		}
	}
	for p.eat(';') {
		if err := p.option(&c); err != nil {
			return c, err
		}
	}
	if p.pos != len(p.in) {
		return c, p.fail(p.pos, "unexpected %q", p.in[p.pos:p.pos+1])
	}
	// The stages: each after the one before it, once its moves are made or,
	// when it has none, once its time runs out; by moves first.
	last := len(stages) - 1
	c.Base, c.Increment, c.Delay, c.DelayMode = stages[0].time, stages[0].inc, stages[0].delay, stages[0].delayMode
	moves, byTime := 0, false
	for k, st := range stages {
		switch {
		case k > 0 && st.delayMode != DelayNone:
			return c, p.fail(st.delayAt, "a delay belongs to the first stage")
		case st.moves > 0 && byTime:
			return c, p.fail(st.movesAt, "a stage by moves after one that runs out by time")
		case st.moves > 0 && k == last && overtimeAt >= 0:
			return c, p.fail(overtimeAt, "overtime follows a main time that runs out, not one of moves")
		case st.moves > 0 && k == last:
			return c, p.fail(len(p.in), "the stage of %d moves at offset %d needs a stage after it", st.moves, st.at)
		case overtimeAt >= 0 && last > 0:
			return c, p.fail(overtimeAt, "overtime after stages: use one or the other")
		}
		if k > 0 {
			p.mark(fmt.Sprintf("stages[%d]", len(c.Stages)), st.at)
			c.Stages = append(c.Stages, Stage{Moves: moves, Time: st.time, Increment: st.inc})
		}
		if st.moves > 0 {
			moves += st.moves
		} else {
			moves, byTime = 0, true
		}
	}
	return c, nil
}

// overtime reads byo-yomi (Nxperiod) or Canadian (moves/block) after its
// "+", at p.pos.
func (p *controlParser) overtime(c *TimeControl) error {
	n, err := p.integer()
	if err != nil {
		return err
	}
	if p.eat('x') {
		period, err := p.duration(time.Second)
		if err != nil {
			return err
		}
		c.Overtime = &Overtime{Kind: OvertimeByoYomi, Periods: n, Period: period}
		return nil
	}
	p.eat('/')
	block, err := p.duration(time.Minute)
	if err != nil {
		return err
	}
	c.Overtime = &Overtime{Kind: OvertimeCanadian, Moves: n, Period: block}
	return nil
}

func (p *controlParser) option(c *TimeControl) error {
	at := p.pos
	end := strings.IndexAny(p.in[p.pos:], "=;")
	if end < 0 {
		end = len(p.in) - p.pos
	}
	name := p.in[p.pos : p.pos+end]
	p.pos += end
	if field := map[string]string{"hourglass": "hourglass", "cap": "bank_cap_ms", "move": "move_limit_ms", "untimed": "untimed_moves"}[name]; field != "" {
		p.mark(field, at)
	}
	if name == "untimed" {
		p.mark("first_move_timeout_ms", at)
	}
	var err error
	switch name {
	case "hourglass":
		c.Hourglass = true
		return nil
	case "cap", "move", "untimed":
	default:
		return p.fail(at, "unknown option %q (want hourglass, cap=, move= or untimed=)", name)
	}
	if !p.eat('=') {
		return p.fail(p.pos, "want = after %s", name)
	}
	switch name {
	case "cap":
		c.BankCap, err = p.duration(time.Minute)
	case "move":
		c.MoveLimit, err = p.duration(time.Minute)
	case "untimed":
		if c.UntimedMoves, err = p.integer(); err == nil && p.eat('/') {
			c.FirstMoveTimeout, err = p.duration(time.Second)
		}
	}
	return err
}

// String returns c in the notation of ParseTimeControl, which reads it back
// to c.
func (c TimeControl) String() string {
	var b strings.Builder
	b.WriteString(fmtDuration(c.Base, time.Minute))
	// The first stage's moves, and each stage's, are where the next begins.
	prev := 0
	stageMoves := func(i int) {
		if i < len(c.Stages) && c.Stages[i].Moves > 0 {
			fmt.Fprintf(&b, "/%d", c.Stages[i].Moves-prev)
			prev = c.Stages[i].Moves
		}
	}
	stageMoves(0)
	if c.Increment != 0 {
		b.WriteString("+" + fmtDuration(c.Increment, time.Second))
	}
	switch c.DelayMode {
	case DelaySimple:
		b.WriteString("d" + fmtDuration(c.Delay, time.Second))
	case DelayBronstein:
		b.WriteString("b" + fmtDuration(c.Delay, time.Second))
	}
	for i, st := range c.Stages {
		b.WriteString("," + fmtDuration(st.Time, time.Minute))
		stageMoves(i + 1)
		if st.Increment != 0 {
			b.WriteString("+" + fmtDuration(st.Increment, time.Second))
		}
	}
	if ov := c.Overtime; ov != nil {
		if ov.Kind == OvertimeByoYomi {
			fmt.Fprintf(&b, "+%dx%s", ov.Periods, fmtDuration(ov.Period, time.Second))
		} else {
			fmt.Fprintf(&b, "+%d/%s", ov.Moves, fmtDuration(ov.Period, time.Minute))
		}
	}
	if c.Hourglass {
		b.WriteString(";hourglass")
	}
	if c.BankCap != 0 {
		b.WriteString(";cap=" + fmtDuration(c.BankCap, time.Minute))
	}
	if c.MoveLimit != 0 {
		b.WriteString(";move=" + fmtDuration(c.MoveLimit, time.Minute))
	}
	if c.UntimedMoves != 0 {
		fmt.Fprintf(&b, ";untimed=%d", c.UntimedMoves)
		if c.FirstMoveTimeout != 0 {
			b.WriteString("/" + fmtDuration(c.FirstMoveTimeout, time.Second))
		}
	}
	return b.String()
}

// fmtDuration writes d in unit when it is a whole number of it, else in
// the largest unit that writes it whole.
func fmtDuration(d, unit time.Duration) string {
	if d%unit == 0 {
		return strconv.FormatInt(int64(d/unit), 10)
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
