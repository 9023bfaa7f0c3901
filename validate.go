package synckairos

import (
	"errors"
	"fmt"
	"slices"
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
	// MaxBank bounds every bank and time control of a session.
	MaxBank = 24 * time.Hour
	// MaxMetadataKeys bounds the number of metadata entries.
	MaxMetadataKeys = 64
	// MaxMetadataBytes bounds the metadata keys and values together.
	MaxMetadataBytes = 64 << 10
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
	return validateMetadata(s.Metadata)
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
	for i, p := range s.Participants {
		if _, ok := seen[p.GroupID]; !ok {
			return invalid(fmt.Sprintf("participants[%d].group_id", i), "%q names no group", p.GroupID)
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
		size += len(k) + len(v)
	}
	if size > MaxMetadataBytes {
		return invalid("metadata", "%d bytes, want at most %d", size, MaxMetadataBytes)
	}
	return nil
}
