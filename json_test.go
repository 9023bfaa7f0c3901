package synckairos

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The reference for the hand-written JSON form: the same form through
// encoding/json and struct tags. The hand-written code must agree with it.

type refState struct {
	SessionID           string            `json:"session_id"`
	Life                int64             `json:"life"`
	Mode                Mode              `json:"mode"`
	Status              Status            `json:"status"`
	Version             int64             `json:"version"`
	Turn                int64             `json:"turn"`
	Participants        []refParticipant  `json:"participants"`
	ActiveParticipantID string            `json:"active_participant_id"`
	TotalTime           int64             `json:"total_time_ms"`
	TimePerCycle        int64             `json:"time_per_cycle_ms"`
	Increment           int64             `json:"increment_ms"`
	MaxTime             int64             `json:"max_time_ms"`
	Delay               int64             `json:"delay_ms"`
	DelayMode           DelayMode         `json:"delay_mode"`
	OnExpiry            ExpiryAction      `json:"on_expiry"`
	CycleElapsed        int64             `json:"cycle_elapsed_ms"`
	Groups              []refGroup        `json:"groups,omitempty"`
	Overtime            *refOvertime      `json:"overtime,omitempty"`
	Lag                 *refLag           `json:"lag,omitempty"`
	Stages              []refStage        `json:"stages,omitempty"`
	BankCap             int64             `json:"bank_cap_ms,omitempty"`
	MoveLimit           int64             `json:"move_limit_ms,omitempty"`
	Hourglass           bool              `json:"hourglass,omitempty"`
	UntimedMoves        int               `json:"untimed_moves,omitempty"`
	FirstMoveTimeout    int64             `json:"first_move_timeout_ms,omitempty"`
	CycleStartedAt      *time.Time        `json:"cycle_started_at"`
	SessionStartedAt    *time.Time        `json:"session_started_at"`
	SessionCompletedAt  *time.Time        `json:"session_completed_at"`
	CreatedAt           *time.Time        `json:"created_at"`
	UpdatedAt           *time.Time        `json:"updated_at"`
	LastTransition      *refTransition    `json:"last_transition,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	Data                json.RawMessage   `json:"data,omitempty"`
}

type refTransition struct {
	Type        string    `json:"type"`
	Version     int64     `json:"version"`
	At          time.Time `json:"at"`
	From        string    `json:"from,omitempty"`
	To          string    `json:"to,omitempty"`
	Participant string    `json:"participant_id,omitempty"`
	Used        int64     `json:"used_ms,omitempty"`
	Increment   int64     `json:"increment_ms,omitempty"`
	Refund      int64     `json:"refund_ms,omitempty"`
	Added       int64     `json:"added_ms,omitempty"`
	Expired     []string  `json:"expired,omitempty"`
	Comp        int64     `json:"compensation_ms,omitempty"`
	Credit      int64     `json:"credit_ms,omitempty"`
	PeriodsUsed int       `json:"periods_used,omitempty"`
	Transferred int64     `json:"transferred_ms,omitempty"`
}

type refStage struct {
	Moves     int   `json:"moves"`
	Time      int64 `json:"time_ms"`
	Increment int64 `json:"increment_ms"`
}

type refControl struct {
	Increment int64 `json:"increment_ms"`
	Delay     int64 `json:"delay_ms"`
}

type refOvertime struct {
	Kind    OvertimeKind `json:"kind"`
	Periods int          `json:"periods"`
	Moves   int          `json:"moves"`
	Period  int64        `json:"period_ms"`
}

type refLag struct {
	Gain    int64 `json:"gain_ms"`
	Initial int64 `json:"initial_ms"`
	Max     int64 `json:"max_ms"`
	Grace   int64 `json:"grace_ms"`
}

type refGroup struct {
	ID         string `json:"group_id"`
	TotalTime  int64  `json:"total_time_ms"`
	TimeUsed   int64  `json:"time_used_ms"`
	HasExpired bool   `json:"has_expired"`
}

type refParticipant struct {
	ID         string      `json:"participant_id"`
	Index      int         `json:"index"`
	GroupID    string      `json:"group_id,omitempty"`
	TotalTime  int64       `json:"total_time_ms"`
	TimeUsed   int64       `json:"time_used_ms"`
	CycleCount int         `json:"cycle_count"`
	IsActive   bool        `json:"is_active"`
	HasExpired bool        `json:"has_expired"`
	Periods    int         `json:"periods,omitempty"`
	BlockMoves int         `json:"block_moves,omitempty"`
	LagQuota   int64       `json:"lag_quota_ms,omitempty"`
	Stage      int         `json:"stage,omitempty"`
	Control    *refControl `json:"control,omitempty"`
}

func refDecode(b []byte) (*State, error) {
	var r refState
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	value := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return t.UTC()
	}
	s := &State{
		SessionID: r.SessionID, Life: r.Life, Mode: r.Mode, Status: r.Status, Version: r.Version,
		ActiveParticipantID: r.ActiveParticipantID,
		TotalTime:           time.Duration(r.TotalTime) * time.Millisecond,
		TimePerCycle:        time.Duration(r.TimePerCycle) * time.Millisecond,
		Increment:           time.Duration(r.Increment) * time.Millisecond,
		MaxTime:             time.Duration(r.MaxTime) * time.Millisecond,
		Delay:               time.Duration(r.Delay) * time.Millisecond,
		DelayMode:           r.DelayMode,
		OnExpiry:            r.OnExpiry,
		CycleElapsed:        time.Duration(r.CycleElapsed) * time.Millisecond,
		CycleStartedAt:      utc(r.CycleStartedAt), SessionStartedAt: utc(r.SessionStartedAt),
		SessionCompletedAt: utc(r.SessionCompletedAt),
		CreatedAt:          value(r.CreatedAt), UpdatedAt: value(r.UpdatedAt),
		Metadata: r.Metadata, Turn: r.Turn, Data: r.Data,
	}
	if t := r.LastTransition; t != nil {
		ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
		s.LastTransition = &Transition{Type: t.Type, Version: t.Version, At: t.At.UTC(), From: t.From, To: t.To,
			Participant: t.Participant, Used: ms(t.Used), Increment: ms(t.Increment), Refund: ms(t.Refund),
			Added: ms(t.Added), Expired: t.Expired, Compensation: ms(t.Comp), Credit: ms(t.Credit), PeriodsUsed: t.PeriodsUsed,
			Transferred: ms(t.Transferred)}
	}
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	for _, st := range r.Stages {
		s.Stages = append(s.Stages, Stage{Moves: st.Moves, Time: ms(st.Time), Increment: ms(st.Increment)})
	}
	s.BankCap, s.MoveLimit, s.Hourglass = ms(r.BankCap), ms(r.MoveLimit), r.Hourglass
	s.UntimedMoves, s.FirstMoveTimeout = r.UntimedMoves, ms(r.FirstMoveTimeout)
	if o := r.Overtime; o != nil {
		s.Overtime = &Overtime{Kind: o.Kind, Periods: o.Periods, Moves: o.Moves, Period: time.Duration(o.Period) * time.Millisecond}
	}
	if l := r.Lag; l != nil {
		ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
		s.Lag = &LagCompensation{Gain: ms(l.Gain), Initial: ms(l.Initial), Max: ms(l.Max), Grace: ms(l.Grace)}
	}
	for _, g := range r.Groups {
		s.Groups = append(s.Groups, Group{ID: g.ID, TotalTime: time.Duration(g.TotalTime) * time.Millisecond,
			TimeUsed: time.Duration(g.TimeUsed) * time.Millisecond, HasExpired: g.HasExpired})
	}
	for _, p := range r.Participants {
		s.Participants = append(s.Participants, Participant{
			ID: p.ID, Index: p.Index, GroupID: p.GroupID,
			TotalTime:  time.Duration(p.TotalTime) * time.Millisecond,
			TimeUsed:   time.Duration(p.TimeUsed) * time.Millisecond,
			CycleCount: p.CycleCount, IsActive: p.IsActive, HasExpired: p.HasExpired,
			Periods: p.Periods, BlockMoves: p.BlockMoves, LagQuota: time.Duration(p.LagQuota) * time.Millisecond,
			Stage: p.Stage,
		})
		if c := p.Control; c != nil {
			s.Participants[len(s.Participants)-1].Control = &ParticipantControl{Increment: ms(c.Increment), Delay: ms(c.Delay)}
		}
	}
	return s, nil
}

// stateEqual compares states as stored: times to the millisecond, nil and
// empty alike.
var stateEqual = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b time.Time) bool { return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond)) }),
}

func sampleStates() []*State {
	at := time.Date(2026, 5, 6, 7, 8, 9, 10_000_000, time.UTC)
	plain := &State{SessionID: "s", Mode: ModeGlobal, Status: StatusPending, Version: 1,
		Participants: []Participant{{ID: "a"}}, CreatedAt: at, UpdatedAt: at}
	full := &State{
		SessionID: `weird ,"life":"id" \ with / slashes`, Life: 1795924266423474, Mode: ModePerGroup, Status: StatusRunning, Version: 1 << 40,
		ActiveParticipantID: "ünï",
		Participants: []Participant{
			{ID: "ünï", Index: 0, GroupID: "g1", TotalTime: 3 * time.Minute, TimeUsed: time.Second, CycleCount: 7, IsActive: true},
			{ID: "😀", Index: 1, GroupID: "g2", TotalTime: 24 * time.Hour, HasExpired: true},
		},
		TotalTime: time.Hour, TimePerCycle: 30 * time.Second, Increment: 2 * time.Second, MaxTime: time.Minute,
		Delay: 5 * time.Second, DelayMode: DelayBronstein, OnExpiry: ExpiryContinue, CycleElapsed: 1500 * time.Millisecond,
		Groups:         []Group{{ID: "g1", TotalTime: time.Minute, TimeUsed: time.Second}, {ID: "g2", HasExpired: true}},
		CycleStartedAt: &at, SessionStartedAt: &at, SessionCompletedAt: &at, CreatedAt: at, UpdatedAt: at,
		Turn: 1 << 33,
		LastTransition: &Transition{Type: EventSessionExpired, Version: 1 << 40, At: at, From: "😀", To: `"x"`,
			Participant: "ünï", Used: time.Hour, Increment: time.Second, Refund: 5 * time.Second, Added: -time.Minute,
			Expired: []string{"😀", "ünï"}},
		Data: json.RawMessage(`{"board":["r","n",null],"fen":"8/8 w - -","n":1.5e3,"s":"\u00e9\""}`),
		Metadata: map[string]string{
			"html":    "<script>&</script>",
			"lines":   "a\nb\r\nc\td",
			"control": "\x00\x01\x1f\x7f",
			"quote":   `"\`,
			"unicode": "\u2028\u2029 ñ 中文 𝄞",
			"z":       "",
		},
	}
	overtime := &State{SessionID: "ot", Mode: ModePerParticipant, Status: StatusRunning, Version: 9, ActiveParticipantID: "b",
		Participants: []Participant{
			{ID: "a", TotalTime: 0, Periods: 3, LagQuota: 250 * time.Millisecond},
			{ID: "b", Index: 1, TotalTime: 2 * time.Second, BlockMoves: 4, LagQuota: time.Millisecond, IsActive: true},
		},
		Overtime:       &Overtime{Kind: OvertimeByoYomi, Periods: 5, Moves: 0, Period: 30 * time.Second},
		Lag:            &LagCompensation{Gain: 100 * time.Millisecond, Initial: 300 * time.Millisecond, Max: 700 * time.Millisecond, Grace: 2 * time.Second},
		CycleStartedAt: &at, CreatedAt: at, UpdatedAt: at,
		LastTransition: &Transition{Type: EventCycleSwitched, Version: 9, At: at, From: "a", To: "b", Used: 31 * time.Second,
			Compensation: 120 * time.Millisecond, Credit: 880 * time.Millisecond, PeriodsUsed: 1, Transferred: 3 * time.Second},
	}
	staged := &State{SessionID: "st", Mode: ModePerParticipant, Status: StatusPending, Version: 2,
		Participants: []Participant{
			{ID: "a", TotalTime: 90 * time.Minute, Stage: 1, Control: &ParticipantControl{Increment: time.Second, Delay: 2 * time.Second}},
			{ID: "b", Index: 1, TotalTime: time.Hour},
		},
		Stages:  []Stage{{Moves: 40, Time: 30 * time.Minute, Increment: 30 * time.Second}, {Time: 5 * time.Minute}},
		BankCap: 2 * time.Hour, MoveLimit: 72 * time.Hour, Hourglass: true, UntimedMoves: 2, FirstMoveTimeout: 30 * time.Second,
		CreatedAt: at, UpdatedAt: at,
	}
	return []*State{plain, full, overtime, staged}
}

func TestJSONAgreesWithReference(t *testing.T) {
	t.Parallel()
	for _, s := range sampleStates() {
		ours, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(ours) {
			t.Fatalf("invalid JSON: %s", ours)
		}
		// Our bytes, read by encoding/json.
		ref, err := refDecode(ours)
		if err != nil {
			t.Fatalf("reference decode of %s: %v", ours, err)
		}
		if diff := cmp.Diff(s, ref, stateEqual); diff != "" {
			t.Errorf("encoding/json reads our encoding differently (-state +read):\n%s", diff)
		}
		// encoding/json's bytes (with its HTML escapes), read by us.
		refBytes, err := json.Marshal(toRef(s))
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(refBytes, &back); err != nil {
			t.Fatalf("decode of %s: %v", refBytes, err)
		}
		if diff := cmp.Diff(s, &back, stateEqual); diff != "" {
			t.Errorf("we read encoding/json's encoding differently (-state +read):\n%s", diff)
		}
	}
}

func toRef(s *State) *refState {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	r := &refState{
		SessionID: s.SessionID, Life: s.Life, Mode: s.Mode, Status: s.Status, Version: s.Version,
		ActiveParticipantID: s.ActiveParticipantID,
		TotalTime:           ms(s.TotalTime), TimePerCycle: ms(s.TimePerCycle), Increment: ms(s.Increment), MaxTime: ms(s.MaxTime),
		Delay: ms(s.Delay), DelayMode: s.DelayMode, OnExpiry: s.OnExpiry, CycleElapsed: ms(s.CycleElapsed),
		CycleStartedAt: s.CycleStartedAt, SessionStartedAt: s.SessionStartedAt, SessionCompletedAt: s.SessionCompletedAt,
		CreatedAt: &s.CreatedAt, UpdatedAt: &s.UpdatedAt, Metadata: s.Metadata, Turn: s.Turn, Data: s.Data,
	}
	if t := s.LastTransition; t != nil {
		r.LastTransition = &refTransition{t.Type, t.Version, t.At, t.From, t.To, t.Participant,
			ms(t.Used), ms(t.Increment), ms(t.Refund), ms(t.Added), t.Expired, ms(t.Compensation), ms(t.Credit), t.PeriodsUsed,
			ms(t.Transferred)}
	}
	for _, st := range s.Stages {
		r.Stages = append(r.Stages, refStage{st.Moves, ms(st.Time), ms(st.Increment)})
	}
	r.BankCap, r.MoveLimit, r.Hourglass = ms(s.BankCap), ms(s.MoveLimit), s.Hourglass
	r.UntimedMoves, r.FirstMoveTimeout = s.UntimedMoves, ms(s.FirstMoveTimeout)
	if o := s.Overtime; o != nil {
		r.Overtime = &refOvertime{o.Kind, o.Periods, o.Moves, ms(o.Period)}
	}
	if l := s.Lag; l != nil {
		r.Lag = &refLag{ms(l.Gain), ms(l.Initial), ms(l.Max), ms(l.Grace)}
	}
	for _, g := range s.Groups {
		r.Groups = append(r.Groups, refGroup{g.ID, ms(g.TotalTime), ms(g.TimeUsed), g.HasExpired})
	}
	for _, p := range s.Participants {
		var c *refControl
		if p.Control != nil {
			c = &refControl{ms(p.Control.Increment), ms(p.Control.Delay)}
		}
		r.Participants = append(r.Participants, refParticipant{p.ID, p.Index, p.GroupID, ms(p.TotalTime), ms(p.TimeUsed), p.CycleCount, p.IsActive, p.HasExpired,
			p.Periods, p.BlockMoves, ms(p.LagQuota), p.Stage, c})
	}
	return r
}

func TestJSONDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``, `{`, `[]`, `{"session_id":}`, `{"session_id":"a"`, `{"session_id":"a"}x`,
		`{"version":1.5}`, `{"version":01}`, `{"version":1e3}`, `{"version":99999999999999999999}`,
		`{"total_time_ms":9223372036854775807}`, `{"participants":{}}`, `{"participants":[1]}`,
		`{"participants":[{"is_active":1}]}`, `{"created_at":"yesterday"}`, `{"metadata":{"a":1}}`,
		`{"session_id":"\x"}`, `{"session_id":"` + "\x01" + `"}`, `{"unknown":[1,{"a":tru}]}`, `{"unknown":-}`,
	} {
		var s State
		if err := s.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("UnmarshalJSON(%q) succeeded", in)
		}
	}
}

func TestJSONSkipsUnknownFields(t *testing.T) {
	t.Parallel()
	var s State
	in := `{"future":{"nested":[1,-2.5e3,"x",true,false,null,{}]},"session_id":"a","participants":[{"participant_id":"p","later":[]}]}`
	if err := s.UnmarshalJSON([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if s.SessionID != "a" || len(s.Participants) != 1 || s.Participants[0].ID != "p" {
		t.Fatalf("decoded %+v", s)
	}
}

// FuzzStateJSON: decoding never panics, and whatever decodes re-encodes to
// JSON that both decoders read back as the same state.
func FuzzStateJSON(f *testing.F) {
	for _, s := range sampleStates() {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte(`{"session_id":"\ud83d\ude00\ud800","metadata":{"\u00e9":"\\"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var s State
		err := s.UnmarshalJSON(in)
		// The stored form decoded from a string, without copies, and a
		// copy of it: the same State.
		stored, storedErr := decodeStored(string(in))
		if (err == nil) != (storedErr == nil) {
			t.Fatalf("%q: UnmarshalJSON %v, decodeStored %v", in, err, storedErr)
		}
		if err != nil {
			return
		}
		if diff := cmp.Diff(&s, stored, stateEqual); diff != "" {
			t.Fatalf("decodeStored of %q (-UnmarshalJSON +decodeStored):\n%s", in, diff)
		}
		if diff := cmp.Diff(stored, stored.Clone(), stateEqual); diff != "" {
			t.Fatalf("Clone of %q (-state +clone):\n%s", in, diff)
		}
		out, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("re-encoding of %q is not valid JSON: %s", in, out)
		}
		var again State
		if err := again.UnmarshalJSON(out); err != nil {
			t.Fatalf("re-encoding %s does not decode: %v", out, err)
		}
		if diff := cmp.Diff(&s, &again, stateEqual); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", in, diff)
		}
		ref, err := refDecode(out)
		if err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", out, err)
		}
		if diff := cmp.Diff(&s, ref, stateEqual); diff != "" && !strings.Contains(diff, "Time") {
			t.Fatalf("encoding/json reads %s differently (-ours +ref):\n%s", out, diff)
		}
	})
}

// The write script of a create fills in the life at lifeOffset: the state's
// own field, whatever the session ID holds.
func TestLifeOffsetSkipsTheSessionID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"plain", `a,"life":7`, `,"life":`, `"`, `\`} {
		s := &State{SessionID: id, Mode: ModeGlobal, Status: StatusPending, Participants: []Participant{{ID: "a"}}}
		b := s.appendJSON(nil)
		at := lifeOffset(b)
		patched := string(b[:at]) + "123" + string(b[at+1:])
		var back State
		if err := back.UnmarshalJSON([]byte(patched)); err != nil || back.Life != 123 || back.SessionID != id {
			t.Errorf("%q: patched %s: life %d, id %q, %v", id, patched, back.Life, back.SessionID, err)
		}
	}
}

// Decoded strings are the decoder's own: the caller may reuse the bytes it
// decoded, small document or large.
func TestDecodedStringsOutliveTheInput(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 400} { // about 1 KB and over 16 KB
		in := &State{SessionID: "owned", Mode: ModePerParticipant, Status: StatusRunning, ActiveParticipantID: "p0"}
		for i := range n {
			in.Participants = append(in.Participants, Participant{ID: "player-" + strconv.Itoa(i), TotalTime: time.Minute})
		}
		in.Metadata = map[string]string{"fen": "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"}
		now := time.Now().UTC().Truncate(time.Millisecond)
		in.CycleStartedAt, in.SessionStartedAt = &now, &now
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out State
		if err := out.UnmarshalJSON(data); err != nil {
			t.Fatal(err)
		}
		for i := range data {
			data[i] = 'x'
		}
		if out.SessionID != "owned" || out.Participants[n-1].ID != in.Participants[n-1].ID || out.Metadata["fen"] != in.Metadata["fen"] ||
			!out.CycleStartedAt.Equal(now) || !out.SessionStartedAt.Equal(now) {
			t.Fatalf("%d participants: decoded %q %q %q %v %v", n, out.SessionID, out.Participants[n-1].ID, out.Metadata["fen"], out.CycleStartedAt, out.SessionStartedAt)
		}
	}
}

// A Data full of "participant_id" (an application's own players, say) does
// not size the participants' slice: decoding a 2-participant state keeps no
// room for thousands (found by a review of a count over the document).
func TestParticipantsCapacityIgnoresData(t *testing.T) {
	t.Parallel()
	elem := `{"participant_id":"p"},`
	n := (MaxDataBytes - 2) / len(elem)
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	s := &State{SessionID: "x", Mode: ModePerParticipant, Status: StatusPending, Version: 1,
		Participants: []Participant{{ID: "a", TotalTime: time.Hour}, {ID: "b", Index: 1, TotalTime: time.Hour}},
		Data:         json.RawMessage("[" + strings.TrimSuffix(strings.Repeat(elem, n), ",") + "]"),
		CreatedAt:    at, UpdatedAt: at}
	if err := s.Validate(); err != nil {
		t.Fatalf("the state is not valid: %v", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got State
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Participants) != 2 || cap(got.Participants) > 4 {
		t.Errorf("%d participants decoded from %d bytes, in a slice of capacity %d", len(got.Participants), len(b), cap(got.Participants))
	}
}

// A state stored in format 3 is its update's message: decodeEvent reads it
// as the same state as the plain stored form, as an update.
func TestFlatMessageIsTheState(t *testing.T) {
	t.Parallel()
	tested := 0
	for _, s := range sampleStates() {
		if s.SessionID == "" || s.Version < 1 {
			continue
		}
		tested++
		plain, err := decodeStored(string(s.appendJSON(nil)))
		if err != nil {
			t.Fatal(err)
		}
		flat := s.appendJSONFrom(nil, flatStart)
		ev, err := decodeEvent(string(flat))
		if err != nil {
			t.Fatalf("%s: %v", flat, err)
		}
		if ev.Kind != ChangeUpdated || ev.SessionID != s.SessionID || ev.Version != s.Version || ev.Life != s.Life {
			t.Errorf("event %v %q v%d life %d, want an update of %q v%d life %d", ev.Kind, ev.SessionID, ev.Version, ev.Life, s.SessionID, s.Version, s.Life)
		}
		if diff := cmp.Diff(plain, ev.State, stateEqual); diff != "" {
			t.Errorf("flat message of %s (-plain +flat):\n%s", s.SessionID, diff)
		}
	}
	if tested < 3 {
		t.Fatalf("%d sample states with an ID and a version", tested)
	}
}

// A state's "format" is skipped whatever its value, as any field a reader
// does not know: a later format may write it otherwise.
func TestStateFormatFieldSkipped(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{"format":3,"session_id":"a"}`, `{"session_id":"a","format":"v4"}`, `{"session_id":"a","format":3.1}`, `{"format":{"n":4},"session_id":"a"}`} {
		var s State
		if err := s.UnmarshalJSON([]byte(in)); err != nil || s.SessionID != "a" {
			t.Errorf("%s: %v, session %q", in, err, s.SessionID)
		}
	}
}
