package synckairos

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The JSON form of a State is encoded and decoded by hand: every read of a
// session decodes it, and encoding/json's reflection cost more than the Redis
// round trip itself on large sessions. json_test.go holds the struct-tag
// reference it is tested against.
//
// The form: snake_case names, durations as integer milliseconds (…_ms),
// times as RFC 3339 in UTC with milliseconds, null when unset.

const jsonTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// lifeField follows the session ID: the first occurrence of it in a state's
// JSON is the state's own (a string's quotes are escaped), which the write
// script of a create fills in.
const lifeField = `,"life":`

// lifeOffset returns the offset of the life's first digit in b, a state's
// JSON.
func lifeOffset(b []byte) int {
	return bytes.Index(b, []byte(lifeField)) + len(lifeField)
}

// MarshalJSON encodes s in its stored JSON form.
func (s *State) MarshalJSON() ([]byte, error) {
	return s.appendJSON(nil), nil
}

func (s *State) appendJSON(b []byte) []byte {
	return s.appendJSONFrom(b, plainStart)
}

// The openings of a state's JSON form: plainStart; flatStart for a state
// stored in format 3, which the write script publishes as it is, as the
// update's message (docs/WIRE.md).
const (
	plainStart = `{"session_id":`
	flatStart  = `{"format":3,"session_id":`
)

// appendJSONFrom is appendJSON with start (plainStart or flatStart) as its
// opening.
func (s *State) appendJSONFrom(b []byte, start string) []byte {
	if b == nil {
		b = make([]byte, 0, 600+160*len(s.Participants)+jsonSize(s.Metadata)+len(s.Data))
	}
	b = append(b, start...)
	b = appendString(b, s.SessionID)
	b = append(b, lifeField...)
	b = strconv.AppendInt(b, s.Life, 10)
	b = append(b, `,"mode":`...)
	b = appendString(b, string(s.Mode))
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.Status))
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, s.Version, 10)
	b = append(b, `,"turn":`...)
	b = strconv.AppendInt(b, s.Turn, 10)
	b = append(b, `,"participants":[`...)
	for i := range s.Participants {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.Participants[i].appendJSON(b)
	}
	b = append(b, `],"active_participant_id":`...)
	b = appendString(b, s.ActiveParticipantID)
	b = appendMillis(b, `,"total_time_ms":`, s.TotalTime)
	b = appendMillis(b, `,"time_per_cycle_ms":`, s.TimePerCycle)
	b = appendMillis(b, `,"increment_ms":`, s.Increment)
	b = appendMillis(b, `,"max_time_ms":`, s.MaxTime)
	b = appendMillis(b, `,"delay_ms":`, s.Delay)
	b = append(b, `,"delay_mode":`...)
	b = appendString(b, string(s.DelayMode))
	b = append(b, `,"on_expiry":`...)
	b = appendString(b, string(s.OnExpiry))
	b = appendMillis(b, `,"cycle_elapsed_ms":`, s.CycleElapsed)
	if ov := s.Overtime; ov != nil {
		b = append(b, `,"overtime":{"kind":`...)
		b = appendString(b, string(ov.Kind))
		b = append(b, `,"periods":`...)
		b = strconv.AppendInt(b, int64(ov.Periods), 10)
		b = append(b, `,"moves":`...)
		b = strconv.AppendInt(b, int64(ov.Moves), 10)
		b = appendMillis(b, `,"period_ms":`, ov.Period)
		b = append(b, '}')
	}
	if len(s.Stages) > 0 {
		b = append(b, `,"stages":[`...)
		for i, st := range s.Stages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"moves":`...)
			b = strconv.AppendInt(b, int64(st.Moves), 10)
			b = appendMillis(b, `,"time_ms":`, st.Time)
			b = appendMillis(b, `,"increment_ms":`, st.Increment)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if s.BankCap != 0 {
		b = appendMillis(b, `,"bank_cap_ms":`, s.BankCap)
	}
	if s.MoveLimit != 0 {
		b = appendMillis(b, `,"move_limit_ms":`, s.MoveLimit)
	}
	if s.Hourglass {
		b = append(b, `,"hourglass":true`...)
	}
	if s.UntimedMoves != 0 {
		b = append(b, `,"untimed_moves":`...)
		b = strconv.AppendInt(b, int64(s.UntimedMoves), 10)
	}
	if s.FirstMoveTimeout != 0 {
		b = appendMillis(b, `,"first_move_timeout_ms":`, s.FirstMoveTimeout)
	}
	if l := s.Lag; l != nil {
		b = appendMillis(b, `,"lag":{"gain_ms":`, l.Gain)
		b = appendMillis(b, `,"initial_ms":`, l.Initial)
		b = appendMillis(b, `,"max_ms":`, l.Max)
		b = appendMillis(b, `,"grace_ms":`, l.Grace)
		b = append(b, '}')
	}
	if len(s.Groups) > 0 {
		b = append(b, `,"groups":[`...)
		for i, g := range s.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"group_id":`...)
			b = appendString(b, g.ID)
			b = appendMillis(b, `,"total_time_ms":`, g.TotalTime)
			b = appendMillis(b, `,"time_used_ms":`, g.TimeUsed)
			b = append(b, `,"has_expired":`...)
			b = strconv.AppendBool(b, g.HasExpired)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendTime(b, `,"cycle_started_at":`, s.CycleStartedAt)
	b = appendTime(b, `,"session_started_at":`, s.SessionStartedAt)
	b = appendTime(b, `,"session_completed_at":`, s.SessionCompletedAt)
	b = appendTime(b, `,"created_at":`, &s.CreatedAt)
	b = appendTime(b, `,"updated_at":`, &s.UpdatedAt)
	if s.LastTransition != nil {
		b = append(b, `,"last_transition":`...)
		b = s.LastTransition.appendJSON(b)
	}
	if len(s.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		// Sorted, as encoding/json does: the same state is the same bytes.
		keys := make([]string, 0, len(s.Metadata))
		for k := range s.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, s.Metadata[k])
		}
		b = append(b, '}')
	}
	if len(s.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, s.Data...)
	}
	return append(b, '}')
}

// appendJSON appends t's JSON form: the facts that are set, durations in
// milliseconds.
func (t *Transition) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, t.Type)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, t.Version, 10)
	b = appendTime(b, `,"at":`, &t.At)
	for _, f := range [...]struct {
		name, value string
	}{{`,"from":`, t.From}, {`,"to":`, t.To}, {`,"participant_id":`, t.Participant}} {
		if f.value != "" {
			b = append(b, f.name...)
			b = appendString(b, f.value)
		}
	}
	for _, f := range [...]struct {
		name  string
		value time.Duration
	}{{`,"used_ms":`, t.Used}, {`,"increment_ms":`, t.Increment}, {`,"refund_ms":`, t.Refund}, {`,"added_ms":`, t.Added},
		{`,"compensation_ms":`, t.Compensation}, {`,"credit_ms":`, t.Credit}, {`,"transferred_ms":`, t.Transferred}} {
		if f.value != 0 {
			b = appendMillis(b, f.name, f.value)
		}
	}
	if t.PeriodsUsed != 0 {
		b = append(b, `,"periods_used":`...)
		b = strconv.AppendInt(b, int64(t.PeriodsUsed), 10)
	}
	if len(t.Expired) > 0 {
		b = append(b, `,"expired":[`...)
		for i, id := range t.Expired {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func jsonSize(md map[string]string) int {
	n := 0
	for k, v := range md {
		n += len(k) + len(v) + 6
	}
	return n
}

func (p *Participant) appendJSON(b []byte) []byte {
	b = append(b, `{"participant_id":`...)
	b = appendString(b, p.ID)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(p.Index), 10)
	if p.GroupID != "" {
		b = append(b, `,"group_id":`...)
		b = appendString(b, p.GroupID)
	}
	b = appendMillis(b, `,"total_time_ms":`, p.TotalTime)
	b = appendMillis(b, `,"time_used_ms":`, p.TimeUsed)
	b = append(b, `,"cycle_count":`...)
	b = strconv.AppendInt(b, int64(p.CycleCount), 10)
	b = append(b, `,"is_active":`...)
	b = strconv.AppendBool(b, p.IsActive)
	b = append(b, `,"has_expired":`...)
	b = strconv.AppendBool(b, p.HasExpired)
	if p.Periods != 0 {
		b = append(b, `,"periods":`...)
		b = strconv.AppendInt(b, int64(p.Periods), 10)
	}
	if p.BlockMoves != 0 {
		b = append(b, `,"block_moves":`...)
		b = strconv.AppendInt(b, int64(p.BlockMoves), 10)
	}
	if p.LagQuota != 0 {
		b = appendMillis(b, `,"lag_quota_ms":`, p.LagQuota)
	}
	if p.Stage != 0 {
		b = append(b, `,"stage":`...)
		b = strconv.AppendInt(b, int64(p.Stage), 10)
	}
	if c := p.Control; c != nil {
		b = appendMillis(b, `,"control":{"increment_ms":`, c.Increment)
		b = appendMillis(b, `,"delay_ms":`, c.Delay)
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendMillis(b []byte, name string, d time.Duration) []byte {
	b = append(b, name...)
	return strconv.AppendInt(b, d.Milliseconds(), 10)
}

func appendTime(b []byte, name string, t *time.Time) []byte {
	b = append(b, name...)
	if t == nil || t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, jsonTimeLayout)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// with encoding/json; validation keeps it out of stored states.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// MarshalJSON writes t as it stands in a state's last_transition: the facts
// that are set, durations in whole milliseconds (docs/WIRE.md).
func (t *Transition) MarshalJSON() ([]byte, error) { return t.appendJSON(nil), nil }

// UnmarshalJSON reads the form MarshalJSON writes.
func (t *Transition) UnmarshalJSON(data []byte) error {
	d := decoder{data: data}
	got, err := d.transition()
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return err
	}
	if got == nil {
		*t = Transition{}
		return nil
	}
	*t = *got
	return nil
}

// UnmarshalJSON decodes s from its stored JSON form. Unknown fields are
// skipped, so that instances of an older version read states written by a
// newer one.
func (s *State) UnmarshalJSON(data []byte) error {
	d := decoder{data: data}
	var out State
	err := d.state(&out)
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return err
	}
	*s = out
	return nil
}

// state reads a State object into out.
func (d *decoder) state(out *State) error {
	return d.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "session_id":
			out.SessionID, err = d.string()
		case "format": // a state stored in format 3, its own message: skipped as any field
			err = d.skip()
		case "life":
			out.Life, err = d.int()
		case "mode":
			var m string
			m, err = d.string()
			out.Mode = Mode(m)
		case "status":
			var st string
			st, err = d.string()
			out.Status = Status(st)
		case "version":
			out.Version, err = d.int()
		case "turn":
			out.Turn, err = d.int()
		case "participants":
			out.Participants, err = d.participants()
		case "active_participant_id":
			out.ActiveParticipantID, err = d.string()
		case "total_time_ms":
			out.TotalTime, err = d.millis()
		case "time_per_cycle_ms":
			out.TimePerCycle, err = d.millis()
		case "increment_ms":
			out.Increment, err = d.millis()
		case "max_time_ms":
			out.MaxTime, err = d.millis()
		case "delay_ms":
			out.Delay, err = d.millis()
		case "delay_mode":
			var m string
			m, err = d.string()
			out.DelayMode = DelayMode(m)
		case "on_expiry":
			var a string
			a, err = d.string()
			out.OnExpiry = ExpiryAction(a)
		case "cycle_elapsed_ms":
			out.CycleElapsed, err = d.millis()
		case "groups":
			out.Groups, err = d.groups()
		case "overtime":
			out.Overtime, err = d.overtime()
		case "lag":
			out.Lag, err = d.lag()
		case "stages":
			out.Stages, err = d.stages()
		case "bank_cap_ms":
			out.BankCap, err = d.millis()
		case "move_limit_ms":
			out.MoveLimit, err = d.millis()
		case "hourglass":
			out.Hourglass, err = d.bool()
		case "untimed_moves":
			out.UntimedMoves, err = d.smallInt()
		case "first_move_timeout_ms":
			out.FirstMoveTimeout, err = d.millis()
		case "cycle_started_at":
			out.CycleStartedAt, err = d.timePtr()
		case "session_started_at":
			out.SessionStartedAt, err = d.timePtr()
		case "session_completed_at":
			out.SessionCompletedAt, err = d.timePtr()
		case "created_at":
			out.CreatedAt, err = d.time()
		case "updated_at":
			out.UpdatedAt, err = d.time()
		case "metadata":
			out.Metadata, err = d.metadata()
		case "last_transition":
			out.LastTransition, err = d.transition()
		case "data":
			out.Data, err = d.raw()
		default:
			err = d.skip()
		}
		return err
	})
}

func (d *decoder) transition() (*Transition, error) {
	if d.null() {
		return nil, nil
	}
	t := d.spareTransition
	if t != nil {
		d.spareTransition = nil
	} else {
		t = new(Transition)
	}
	err := d.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "type":
			t.Type, err = d.string()
		case "version":
			t.Version, err = d.int()
		case "at":
			t.At, err = d.time()
		case "from":
			t.From, err = d.string()
		case "to":
			t.To, err = d.string()
		case "participant_id":
			t.Participant, err = d.string()
		case "used_ms":
			t.Used, err = d.millis()
		case "increment_ms":
			t.Increment, err = d.millis()
		case "refund_ms":
			t.Refund, err = d.millis()
		case "added_ms":
			t.Added, err = d.millis()
		case "compensation_ms":
			t.Compensation, err = d.millis()
		case "credit_ms":
			t.Credit, err = d.millis()
		case "transferred_ms":
			t.Transferred, err = d.millis()
		case "periods_used":
			t.PeriodsUsed, err = d.smallInt()
		case "expired":
			if d.null() {
				return nil
			}
			err = d.array(func() error {
				id, err := d.string()
				t.Expired = append(t.Expired, id)
				return err
			})
		default:
			err = d.skip()
		}
		return err
	})
	return t, err
}

func (d *decoder) participants() ([]Participant, error) {
	if d.null() {
		return nil, nil
	}
	// Room for two at once (most sessions are games of two), in the
	// State's block if it has one; more grow the slice. (Not a count of
	// "participant_id" in the rest of the document: Data may hold
	// thousands of them, and the State would keep the room.)
	ps := d.spareParticipants
	d.spareParticipants = nil
	if ps == nil {
		ps = make([]Participant, 0, 2)
	}
	err := d.array(func() error {
		var p Participant
		err := d.object(func(name []byte) error {
			var err error
			switch string(name) {
			case "participant_id":
				p.ID, err = d.string()
			case "index":
				p.Index, err = d.smallInt()
			case "group_id":
				p.GroupID, err = d.string()
			case "total_time_ms":
				p.TotalTime, err = d.millis()
			case "time_used_ms":
				p.TimeUsed, err = d.millis()
			case "cycle_count":
				p.CycleCount, err = d.smallInt()
			case "is_active":
				p.IsActive, err = d.bool()
			case "has_expired":
				p.HasExpired, err = d.bool()
			case "periods":
				p.Periods, err = d.smallInt()
			case "block_moves":
				p.BlockMoves, err = d.smallInt()
			case "lag_quota_ms":
				p.LagQuota, err = d.millis()
			case "stage":
				p.Stage, err = d.smallInt()
			case "control":
				p.Control, err = d.participantControl()
			default:
				err = d.skip()
			}
			return err
		})
		ps = append(ps, p)
		return err
	})
	return ps, err
}

func (d *decoder) overtime() (*Overtime, error) {
	if d.null() {
		return nil, nil
	}
	ov := new(Overtime)
	err := d.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "kind":
			var k string
			k, err = d.string()
			ov.Kind = OvertimeKind(k)
		case "periods":
			ov.Periods, err = d.smallInt()
		case "moves":
			ov.Moves, err = d.smallInt()
		case "period_ms":
			ov.Period, err = d.millis()
		default:
			err = d.skip()
		}
		return err
	})
	return ov, err
}

func (d *decoder) stages() ([]Stage, error) {
	if d.null() {
		return nil, nil
	}
	var out []Stage
	err := d.array(func() error {
		var st Stage
		err := d.object(func(name []byte) error {
			var err error
			switch string(name) {
			case "moves":
				st.Moves, err = d.smallInt()
			case "time_ms":
				st.Time, err = d.millis()
			case "increment_ms":
				st.Increment, err = d.millis()
			default:
				err = d.skip()
			}
			return err
		})
		out = append(out, st)
		return err
	})
	return out, err
}

func (d *decoder) participantControl() (*ParticipantControl, error) {
	if d.null() {
		return nil, nil
	}
	c := new(ParticipantControl)
	err := d.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "increment_ms":
			c.Increment, err = d.millis()
		case "delay_ms":
			c.Delay, err = d.millis()
		default:
			err = d.skip()
		}
		return err
	})
	return c, err
}

func (d *decoder) lag() (*LagCompensation, error) {
	if d.null() {
		return nil, nil
	}
	l := new(LagCompensation)
	err := d.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "gain_ms":
			l.Gain, err = d.millis()
		case "initial_ms":
			l.Initial, err = d.millis()
		case "max_ms":
			l.Max, err = d.millis()
		case "grace_ms":
			l.Grace, err = d.millis()
		default:
			err = d.skip()
		}
		return err
	})
	return l, err
}

func (d *decoder) groups() ([]Group, error) {
	if d.null() {
		return nil, nil
	}
	var gs []Group
	err := d.array(func() error {
		var g Group
		err := d.object(func(name []byte) error {
			var err error
			switch string(name) {
			case "group_id":
				g.ID, err = d.string()
			case "total_time_ms":
				g.TotalTime, err = d.millis()
			case "time_used_ms":
				g.TimeUsed, err = d.millis()
			case "has_expired":
				g.HasExpired, err = d.bool()
			default:
				err = d.skip()
			}
			return err
		})
		gs = append(gs, g)
		return err
	})
	return gs, err
}

func (d *decoder) metadata() (map[string]string, error) {
	if d.null() {
		return nil, nil
	}
	md := make(map[string]string)
	err := d.object(func(name []byte) error {
		k, err := d.unquote(name)
		if err != nil {
			return err
		}
		md[k], err = d.string()
		return err
	})
	return md, err
}

// decoder reads one JSON document. Its methods read one value each, after
// any white space.
type decoder struct {
	data []byte
	pos  int
	// text is data as a string (given, when data is an immutable string's
	// bytes; else made at the first string decoded), of which the strings
	// decoded without escapes are substrings: one allocation at most for
	// all of them. (Not for a document over substringMax,
	// whose strings would each keep it all alive: a large Data, say.)
	text string
	// times backs the *time.Time values decoded, a few per allocation.
	times []time.Time
	// spareTransition, when set, is where the next transition decoded goes.
	spareTransition *Transition
	// spareParticipants, when set, is where the next participants decoded
	// go, while two or fewer.
	spareParticipants []Participant
}

// stateBlock is a State with room for its times, its last transition and
// two participants (most sessions are games of two): one allocation for
// them all.
type stateBlock struct {
	state        State
	times        [3]time.Time // CycleStartedAt, SessionStartedAt, SessionCompletedAt
	transition   Transition
	participants [2]Participant
}

// decodeStored decodes a state's stored JSON form, as Redis returned it,
// into a State allocated with its times and last transition (UnmarshalJSON
// decodes into the caller's State). stored being a string, which nothing
// changes, the strings decoded are substrings of it: no copy.
func decodeStored(stored string) (*State, error) {
	d := stringDecoder(stored)
	s, err := d.blockState()
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// stringDecoder returns a decoder of s, whose strings are substrings of s
// (which nothing changes): no copy.
func stringDecoder(s string) decoder {
	return decoder{data: unsafe.Slice(unsafe.StringData(s), len(s)), text: s}
}

// blockState reads a State object into a new stateBlock.
func (d *decoder) blockState() (*State, error) {
	b := new(stateBlock)
	d.times, d.spareTransition, d.spareParticipants = b.times[:0], &b.transition, b.participants[:0]
	return &b.state, d.state(&b.state)
}

// substringMax bounds the documents whose strings share one copy.
const substringMax = 16 << 10

// substring returns raw, a slice of d.data, as a substring of d.text.
func (d *decoder) substring(raw []byte) string {
	start := cap(d.data) - cap(raw)
	if len(raw) == 0 || len(d.data) > substringMax || start < 0 || start+len(raw) > len(d.data) || &d.data[start] != &raw[0] {
		return string(raw) // not a slice of d.data, or a large document
	}
	if d.text == "" { // (raw is not empty: nor is data)
		d.text = string(d.data)
	}
	return d.text[start : start+len(raw)]
}

// unquote is unquote on a slice of d.data: a string without escapes or
// non-ASCII bytes is a substring of d.text.
func (d *decoder) unquote(raw []byte) (string, error) {
	i := 0
	for i < len(raw) && raw[i] != '\\' && raw[i] < utf8.RuneSelf {
		i++
	}
	if i == len(raw) {
		return d.substring(raw), nil
	}
	return unquote(raw)
}

var errJSONEnd = errors.New("unexpected end of JSON input")

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("JSON at offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

func (d *decoder) expect(c byte) error {
	if got := d.peek(); got != c {
		if got == 0 {
			return errJSONEnd
		}
		return d.errorf("found %q, want %q", got, c)
	}
	d.pos++
	return nil
}

func (d *decoder) end() error {
	if d.peek() != 0 {
		return d.errorf("data after the top-level value")
	}
	return nil
}

// null consumes a null if one is next.
func (d *decoder) null() bool {
	if d.peek() == 'n' && len(d.data)-d.pos >= 4 && string(d.data[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

// object reads an object, calling field with each raw (still quoted-form)
// name; field must read the value.
func (d *decoder) object(field func(name []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		name, err := d.rawString()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := field(name); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		case 0:
			return errJSONEnd
		default:
			return d.errorf("found %q in an object", d.data[d.pos])
		}
	}
}

func (d *decoder) array(elem func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.pos++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		case 0:
			return errJSONEnd
		default:
			return d.errorf("found %q in an array", d.data[d.pos])
		}
	}
}

// rawString returns the body of the next string as it stands in the input,
// escapes and all.
func (d *decoder) rawString() ([]byte, error) {
	if err := d.expect('"'); err != nil {
		return nil, err
	}
	start := d.pos
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c == '"':
			d.pos++
			return d.data[start : d.pos-1], nil
		case c == '\\':
			d.pos += 2
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		default:
			d.pos++
		}
	}
	return nil, errJSONEnd
}

func (d *decoder) string() (string, error) {
	if d.null() {
		return "", nil
	}
	raw, err := d.rawString()
	if err != nil {
		return "", err
	}
	return d.unquote(raw)
}

// unquote decodes the escapes of a string body. Invalid UTF-8 becomes
// U+FFFD, as with encoding/json.
func unquote(raw []byte) (string, error) {
	i := 0
	for i < len(raw) && raw[i] != '\\' && raw[i] < utf8.RuneSelf {
		i++
	}
	if i == len(raw) {
		return string(raw), nil
	}
	b := make([]byte, 0, len(raw))
	b = append(b, raw[:i]...)
	for i < len(raw) {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[i:])
			b = utf8.AppendRune(b, r) // RuneError for invalid bytes
			i += size
			continue
		}
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return "", errors.New("JSON: bad escape at the end of a string")
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return "", errors.New(`JSON: bad \u escape`)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone half is U+FFFD.
				high := r
				r = utf8.RuneError
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if low, ok := hex4(raw[i+2:]); ok {
						if pair := utf16.DecodeRune(high, low); pair != utf8.RuneError {
							r = pair
							i += 6
						}
					}
				}
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", fmt.Errorf("JSON: bad escape \\%c", e)
		}
		i += 2
	}
	return string(b), nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number returns the bytes of the next number, checked against the JSON
// grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. integer reports
// whether it has neither fraction nor exponent.
func (d *decoder) number() (n []byte, integer bool, err error) {
	d.ws()
	start := d.pos
	digits := func() int {
		from := d.pos
		for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
			d.pos++
		}
		return d.pos - from
	}
	next := func(set string) bool {
		if d.pos < len(d.data) && strings.IndexByte(set, d.data[d.pos]) >= 0 {
			d.pos++
			return true
		}
		return false
	}
	next("-")
	first := d.pos
	if n := digits(); n == 0 || (n > 1 && d.data[first] == '0') {
		return nil, false, d.errorf("malformed number")
	}
	integer = true
	if next(".") {
		integer = false
		if digits() == 0 {
			return nil, false, d.errorf("malformed number")
		}
	}
	if next("eE") {
		integer = false
		next("+-")
		if digits() == 0 {
			return nil, false, d.errorf("malformed number")
		}
	}
	return d.data[start:d.pos], integer, nil
}

func (d *decoder) int() (int64, error) {
	if d.null() {
		return 0, nil
	}
	n, integer, err := d.number()
	if err != nil {
		return 0, err
	}
	if !integer {
		return 0, d.errorf("%s is not an integer", n)
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, d.errorf("%s is out of range", n)
	}
	return v, nil
}

func (d *decoder) smallInt() (int, error) {
	v, err := d.int()
	if err != nil {
		return 0, err
	}
	if v < -1<<31 || v > 1<<31-1 {
		return 0, d.errorf("%d is out of range", v)
	}
	return int(v), nil
}

func (d *decoder) millis() (time.Duration, error) {
	v, err := d.int()
	if err != nil {
		return 0, err
	}
	const limit = math.MaxInt64 / int64(time.Millisecond)
	if v > limit || v < -limit {
		return 0, d.errorf("%d ms is out of range", v)
	}
	return time.Duration(v) * time.Millisecond, nil
}

func (d *decoder) bool() (bool, error) {
	if d.null() {
		return false, nil
	}
	rest := d.data[d.pos:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		d.pos += 4
		return true, nil
	case len(rest) >= 5 && string(rest[:5]) == "false":
		d.pos += 5
		return false, nil
	}
	return false, d.errorf("want true or false")
}

func (d *decoder) time() (time.Time, error) {
	t, err := d.timePtr()
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return *t, nil
}

func (d *decoder) timePtr() (*time.Time, error) {
	if d.null() {
		return nil, nil
	}
	raw, err := d.rawString()
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339, d.substring(raw))
	if err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if len(d.times) == cap(d.times) {
		d.times = make([]time.Time, 0, 8) // (the earlier ones stay where they are)
	}
	d.times = append(d.times, t.UTC())
	return &d.times[len(d.times)-1], nil
}

// skip reads and drops one value of any kind.
// raw returns a copy of the next value's bytes; null is none.
func (d *decoder) raw() ([]byte, error) {
	if d.null() {
		return nil, nil
	}
	d.ws()
	start := d.pos
	if err := d.skip(); err != nil {
		return nil, err
	}
	return bytes.Clone(d.data[start:d.pos]), nil
}

func (d *decoder) skip() error {
	switch c := d.peek(); {
	case c == '{':
		return d.object(func([]byte) error { return d.skip() })
	case c == '[':
		return d.array(d.skip)
	case c == '"':
		raw, err := d.rawString()
		if err == nil {
			_, err = unquote(raw)
		}
		return err
	case c == 't' || c == 'f':
		_, err := d.bool()
		return err
	case c == 'n':
		if !d.null() {
			return d.errorf("want null")
		}
		return nil
	case c == 0:
		return errJSONEnd
	default:
		_, _, err := d.number()
		return err
	}
}
