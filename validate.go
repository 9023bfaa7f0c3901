package synckairos

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on a state, checked before anything is written.
const (
	// MaxSessionIDBytes bounds a session ID, and a participant ID.
	MaxSessionIDBytes = 256
	// MaxParticipants bounds the participants of one session.
	MaxParticipants = 1000
	// MaxBank bounds every bank and time control of a session: a year, for
	// correspondence games of days per move and months in all.
	MaxBank = 365 * 24 * time.Hour
	// MaxMetadataKeys bounds the number of metadata entries.
	MaxMetadataKeys = 64
	// MaxMetadataBytes bounds the metadata keys and values together.
	MaxMetadataBytes = 64 << 10
	// MaxDataBytes bounds State.Data.
	MaxDataBytes = 64 << 10
)

// The range of times a state may hold; outside it the JSON form breaks.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// Validate reports the first problem of s as a *StateError, or nil. The
// Manager validates every state before it writes it; Version, CreatedAt,
// UpdatedAt, participant indexes and IsActive flags are set by the Manager
// and not checked.
func (s *State) Validate() error {
	if err := validateID("session_id", s.SessionID); err != nil {
		return err
	}
	if !slices.Contains(modes, s.Mode) {
		return invalid("mode", "%q is not one of %q", s.Mode, modes)
	}
	if !slices.Contains(statuses, s.Status) {
		return invalid("status", "%q is not one of %q", s.Status, statuses)
	}
	if err := s.validateParticipants(); err != nil {
		return err
	}
	if !slices.Contains([]DelayMode{DelayNone, DelayBronstein, DelaySimple}, s.DelayMode) {
		return invalid("delay_mode", "%q is not one of \"\", %q, %q", s.DelayMode, DelayBronstein, DelaySimple)
	}
	if !slices.Contains([]ExpiryAction{ExpiryDefault, ExpiryEndSession, ExpiryContinue}, s.OnExpiry) {
		return invalid("on_expiry", "%q is not one of \"\", %q, %q", s.OnExpiry, ExpiryEndSession, ExpiryContinue)
	}
	if s.CycleElapsed < 0 {
		return invalid("cycle_elapsed_ms", "negative duration %v", s.CycleElapsed)
	}
	if s.Life < 0 {
		return invalid("life", "negative life %d", s.Life)
	}
	if s.Turn < 0 {
		return invalid("turn", "negative turn %d", s.Turn)
	}
	if err := s.validateGroups(); err != nil {
		return err
	}
	for _, d := range []struct {
		field string
		value time.Duration
	}{
		{"delay_ms", s.Delay},
		{"total_time_ms", s.TotalTime},
		{"time_per_cycle_ms", s.TimePerCycle},
		{"increment_ms", s.Increment},
		{"max_time_ms", s.MaxTime},
	} {
		if err := validateBank(d.field, d.value); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		field string
		value *time.Time
	}{
		{"cycle_started_at", s.CycleStartedAt},
		{"session_started_at", s.SessionStartedAt},
		{"session_completed_at", s.SessionCompletedAt},
	} {
		if t.value != nil && (t.value.Before(minTime) || t.value.After(maxTime)) {
			return invalid(t.field, "%s is outside %d to %d", t.value.Format(time.RFC3339), minTime.Year(), maxTime.Year())
		}
	}
	if err := s.validateControls(); err != nil {
		return err
	}
	if err := s.validateOvertime(); err != nil {
		return err
	}
	if err := s.validateStages(); err != nil {
		return err
	}
	if err := s.validateLifecycle(); err != nil {
		return err
	}
	if err := s.validateTransition(); err != nil {
		return err
	}
	if err := validateData(s.Data); err != nil {
		return err
	}
	return validateMetadata(s.Metadata)
}

func validateData(data json.RawMessage) error {
	switch {
	case len(data) == 0:
		return nil
	case len(data) > MaxDataBytes:
		return invalid("data", "%d bytes, want at most %d", len(data), MaxDataBytes)
	case !json.Valid(data):
		return invalid("data", "not one valid JSON value")
	case !utf8.Valid(data):
		return invalid("data", "not valid UTF-8")
	case hasNULEscape(data):
		return invalid("data", `a string holds \u0000, which Postgres cannot store (the audit trail)`)
	}
	return nil
}

// hasNULEscape reports whether valid JSON b escapes a NUL in a string.
func hasNULEscape(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+5 < len(b) && b[i+1] == 'u' && string(b[i+2:i+6]) == "0000" {
			return true
		}
		i++ // the escaped character
	}
	return false
}

// validateControls refuses time controls the session's mode does not use:
// a control silently ignored is a clock that is silently wrong.
func (s *State) validateControls() error {
	if (s.Delay == 0) != (s.DelayMode == DelayNone) {
		if s.Delay == 0 {
			return invalid("delay_ms", "delay_mode %q needs a delay", s.DelayMode)
		}
		return invalid("delay_mode", "a delay of %v needs a delay_mode (%q or %q)", s.Delay, DelayBronstein, DelaySimple)
	}
	for _, c := range []struct {
		field string
		set   bool
		modes []Mode
	}{
		{"total_time_ms", s.TotalTime != 0, []Mode{ModeGlobal}},
		{"time_per_cycle_ms", s.TimePerCycle != 0, []Mode{ModePerCycle}},
		{"increment_ms", s.Increment != 0, []Mode{ModePerParticipant, ModePerGroup}},
		{"max_time_ms", s.MaxTime != 0, []Mode{ModeCountUp}},
		{"delay_ms", s.Delay != 0, []Mode{ModePerParticipant}},
		{"groups", len(s.Groups) != 0, []Mode{ModePerGroup}},
	} {
		if c.set && !slices.Contains(c.modes, s.Mode) {
			return invalid(c.field, "set, but %s sessions do not use it (it applies to %q)", s.Mode, c.modes)
		}
	}
	if s.OnExpiry == ExpiryContinue && (s.Mode == ModeGlobal || s.Mode == ModeCountUp) {
		return invalid("on_expiry", "%q, but a %s session has one bank for everyone: running out ends it", s.OnExpiry, s.Mode)
	}
	for i, p := range s.Participants {
		if p.GroupID != "" && s.Mode != ModePerGroup {
			return invalid(fmt.Sprintf("participants[%d].group_id", i), "set, but %s sessions have no groups (it applies to %q)", s.Mode, ModePerGroup)
		}
	}
	if s.Mode != ModePerParticipant {
		for i, p := range s.Participants {
			if p.TotalTime != 0 {
				return invalid(fmt.Sprintf("participants[%d].total_time_ms", i),
					"set, but %s sessions do not use participants' banks (it applies to %q)", s.Mode, ModePerParticipant)
			}
		}
	}
	return nil
}

// validateLifecycle refuses states that cannot run: a status without what
// it needs, or with what it cannot have.
func (s *State) validateLifecycle() error {
	active := s.Participant(s.ActiveParticipantID)
	switch s.Status {
	case StatusRunning:
		switch {
		case active == nil:
			return invalid("active_participant_id", "a running session needs an active participant")
		case active.HasExpired:
			return invalid("active_participant_id", "participant %q has expired and cannot be active", active.ID)
		case s.CycleStartedAt == nil:
			return invalid("cycle_started_at", "a running session needs the time its cycle started")
		}
		return nil
	case StatusPaused:
		if active == nil {
			return invalid("active_participant_id", "a paused session needs the participant whose turn it is")
		}
	case StatusPending:
		if active != nil && active.HasExpired { // the host's choice of who starts
			return invalid("active_participant_id", "participant %q has expired and cannot start", active.ID)
		}
		return s.validateStartingBanks()
	default: // finished
		if s.ActiveParticipantID != "" {
			return invalid("active_participant_id", "a %s session has no active participant", s.Status)
		}
	}
	if s.CycleStartedAt != nil {
		return invalid("cycle_started_at", "set on a %s session; only a running cycle has a start", s.Status)
	}
	return nil
}

// validateStartingBanks refuses a timed session that would run out as it
// starts: a bank of zero (0+2 flags at once).
func (s *State) validateStartingBanks() error {
	if s.CycleStartedAt != nil {
		return invalid("cycle_started_at", "set on a pending session; only a running cycle has a start")
	}
	switch s.Mode {
	case ModePerParticipant:
		for i, p := range s.Participants {
			if !p.HasExpired && p.TotalTime == 0 && s.reserve(&p) == 0 {
				return invalid(fmt.Sprintf("participants[%d].total_time_ms", i), "zero: a timed participant needs a starting bank")
			}
		}
	case ModePerGroup:
		for i, g := range s.Groups {
			if !g.HasExpired && g.TotalTime == 0 {
				return invalid(fmt.Sprintf("groups[%d].total_time_ms", i), "zero: a timed group needs a starting bank")
			}
		}
	case ModeGlobal:
		if s.TotalTime == 0 {
			return invalid("total_time_ms", "zero: a global session needs a starting bank")
		}
	}
	return nil
}

func (s *State) validateTransition() error {
	t := s.LastTransition
	if t == nil {
		return nil
	}
	if !slices.Contains(transitionTypes, t.Type) {
		return invalid("last_transition.type", "%q is not one of %q", t.Type, transitionTypes)
	}
	if t.At.Before(minTime) || t.At.After(maxTime) {
		return invalid("last_transition.at", "%s is outside %d to %d", t.At.Format(time.RFC3339), minTime.Year(), maxTime.Year())
	}
	if len(t.Expired) > len(s.Participants) {
		return invalid("last_transition.expired", "%d participants, more than the session has", len(t.Expired))
	}
	for _, id := range [...]string{t.From, t.To, t.Participant} {
		if err := validateFactID(id); err != nil {
			return err
		}
	}
	for _, id := range t.Expired {
		if err := validateFactID(id); err != nil {
			return err
		}
	}
	return nil
}

func validateFactID(id string) error {
	if len(id) > MaxSessionIDBytes || !utf8.ValidString(id) {
		return invalid("last_transition", "participant ID %q is not valid", id)
	}
	return nil
}

func (s *State) validateParticipants() error {
	n := len(s.Participants)
	if n < 1 || n > MaxParticipants {
		return invalid("participants", "%d participants, want 1 to %d", n, MaxParticipants)
	}
	seen := make(map[string]struct{}, n)
	activeFound := s.ActiveParticipantID == ""
	for i := range s.Participants {
		p := &s.Participants[i]
		if err := p.validate(); err != nil {
			var se *StateError
			if errors.As(err, &se) {
				se.Field = fmt.Sprintf("participants[%d].%s", i, se.Field)
			}
			return err
		}
		if _, dup := seen[p.ID]; dup {
			return invalid(fmt.Sprintf("participants[%d].participant_id", i), "duplicate ID %q", p.ID)
		}
		seen[p.ID] = struct{}{}
		if p.ID == s.ActiveParticipantID {
			activeFound = true
		}
	}
	if !activeFound {
		return invalid("active_participant_id", "%q names no participant", s.ActiveParticipantID)
	}
	return nil
}

// validate checks one participant; field names are relative to it.
func (p *Participant) validate() error {
	if err := validateID("participant_id", p.ID); err != nil {
		return err
	}
	if err := validateBank("total_time_ms", p.TotalTime); err != nil {
		return err
	}
	if p.TimeUsed < 0 {
		return invalid("time_used_ms", "negative duration %v", p.TimeUsed)
	}
	if p.CycleCount < 0 {
		return invalid("cycle_count", "negative count %d", p.CycleCount)
	}
	if p.GroupID != "" {
		return validateID("group_id", p.GroupID)
	}
	return nil
}

func (s *State) validateGroups() error {
	seen := make(map[string]struct{}, len(s.Groups))
	for i, g := range s.Groups {
		field := fmt.Sprintf("groups[%d]", i)
		if err := validateID(field+".group_id", g.ID); err != nil {
			return err
		}
		if _, dup := seen[g.ID]; dup {
			return invalid(field+".group_id", "duplicate ID %q", g.ID)
		}
		seen[g.ID] = struct{}{}
		if err := validateBank(field+".total_time_ms", g.TotalTime); err != nil {
			return err
		}
		if g.TimeUsed < 0 {
			return invalid(field+".time_used_ms", "negative duration %v", g.TimeUsed)
		}
	}
	if s.Mode != ModePerGroup {
		return nil
	}
	if len(s.Groups) == 0 {
		return invalid("groups", "a per_group session needs its groups")
	}
	members := make(map[string]int, len(s.Groups))
	for i, p := range s.Participants {
		if _, ok := seen[p.GroupID]; !ok {
			return invalid(fmt.Sprintf("participants[%d].group_id", i), "%q names no group", p.GroupID)
		}
		members[p.GroupID]++
	}
	for i, g := range s.Groups {
		if members[g.ID] == 0 {
			return invalid(fmt.Sprintf("groups[%d]", i), "group %q has no participant", g.ID)
		}
	}
	return nil
}

func validateID(field, id string) error {
	switch {
	case id == "":
		return invalid(field, "empty")
	case len(id) > MaxSessionIDBytes:
		return invalid(field, "%d bytes, want at most %d", len(id), MaxSessionIDBytes)
	case !utf8.ValidString(id):
		return invalid(field, "not valid UTF-8")
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return invalid(field, "non-printable character %U", r)
		}
	}
	return nil
}

func validateBank(field string, d time.Duration) error {
	switch {
	case d < 0:
		return invalid(field, "negative duration %v", d)
	case d > MaxBank:
		return invalid(field, "%v, want at most %v", d, MaxBank)
	}
	return nil
}

func validateMetadata(md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return invalid("metadata", "%d keys, want at most %d", len(md), MaxMetadataKeys)
	}
	size := 0
	for k, v := range md {
		if k == "" {
			return invalid("metadata", "empty key")
		}
		// JSON would replace invalid UTF-8 silently: refuse it instead.
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return invalid("metadata", "key %q: key or value is not valid UTF-8", k)
		}
		// Postgres stores no NUL in text or jsonb: the audit trail could
		// not record the state.
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return invalid("metadata", "key %q: key or value holds a NUL character, which Postgres cannot store (the audit trail)", k)
		}
		size += len(k) + len(v)
	}
	if size > MaxMetadataBytes {
		return invalid("metadata", "%d bytes, want at most %d", size, MaxMetadataBytes)
	}
	return nil
}
