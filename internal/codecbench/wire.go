// Package codecbench measures the library's hand-written JSON form of a
// State against github.com/go-json-experiment/json (what Go's
// encoding/json/v2 grew from) writing and reading the same form from struct
// tags. It is a module of its own so that the library does not require the
// alternative it is measured against.
//
// The alternative is given its best case: the tagged types below have
// State's exact memory layout, so a *State is read and written through them
// with a pointer conversion and no copy, as if State itself carried the tags
// (TestLayoutsMatch holds them to that).
package codecbench

import (
	"encoding/json"
	"time"
	"unsafe"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/synckairos/synckairos"
)

type wireState struct {
	SessionID           string                  `json:"session_id"`
	Life                int64                   `json:"life"`
	Mode                synckairos.Mode         `json:"mode"`
	Status              synckairos.Status       `json:"status"`
	Version             int64                   `json:"version"`
	Turn                int64                   `json:"turn"`
	Participants        []wireParticipant       `json:"participants"`
	ActiveParticipantID string                  `json:"active_participant_id"`
	TotalTime           time.Duration           `json:"total_time_ms,format:milli"`
	TimePerCycle        time.Duration           `json:"time_per_cycle_ms,format:milli"`
	Increment           time.Duration           `json:"increment_ms,format:milli"`
	MaxTime             time.Duration           `json:"max_time_ms,format:milli"`
	Delay               time.Duration           `json:"delay_ms,format:milli"`
	DelayMode           synckairos.DelayMode    `json:"delay_mode"`
	OnExpiry            synckairos.ExpiryAction `json:"on_expiry"`
	Overtime            *wireOvertime           `json:"overtime,omitzero"`
	Lag                 *wireLag                `json:"lag,omitzero"`
	Stages              []wireStage             `json:"stages,omitzero"`
	BankCap             time.Duration           `json:"bank_cap_ms,omitzero,format:milli"`
	MoveLimit           time.Duration           `json:"move_limit_ms,omitzero,format:milli"`
	Hourglass           bool                    `json:"hourglass,omitzero"`
	UntimedMoves        int                     `json:"untimed_moves,omitzero"`
	FirstMoveTimeout    time.Duration           `json:"first_move_timeout_ms,omitzero,format:milli"`
	Groups              []wireGroup             `json:"groups,omitzero"`
	CycleElapsed        time.Duration           `json:"cycle_elapsed_ms,format:milli"`
	CycleStartedAt      *time.Time              `json:"cycle_started_at,format:'2006-01-02T15:04:05.000Z07:00'"`
	SessionStartedAt    *time.Time              `json:"session_started_at,format:'2006-01-02T15:04:05.000Z07:00'"`
	SessionCompletedAt  *time.Time              `json:"session_completed_at,format:'2006-01-02T15:04:05.000Z07:00'"`
	CreatedAt           time.Time               `json:"created_at,format:'2006-01-02T15:04:05.000Z07:00'"`
	UpdatedAt           time.Time               `json:"updated_at,format:'2006-01-02T15:04:05.000Z07:00'"`
	LastTransition      *wireTransition         `json:"last_transition,omitzero"`
	Metadata            map[string]string       `json:"metadata,omitzero"`
	Data                json.RawMessage         `json:"data,omitzero"`
}

type wireParticipant struct {
	ID         string        `json:"participant_id"`
	Index      int           `json:"index"`
	GroupID    string        `json:"group_id,omitzero"`
	TotalTime  time.Duration `json:"total_time_ms,format:milli"`
	TimeUsed   time.Duration `json:"time_used_ms,format:milli"`
	CycleCount int           `json:"cycle_count"`
	IsActive   bool          `json:"is_active"`
	HasExpired bool          `json:"has_expired"`
	Periods    int           `json:"periods,omitzero"`
	BlockMoves int           `json:"block_moves,omitzero"`
	Stage      int           `json:"stage,omitzero"`
	Control    *wireControl  `json:"control,omitzero"`
	LagQuota   time.Duration `json:"lag_quota_ms,omitzero,format:milli"`
}

type wireGroup struct {
	ID         string        `json:"group_id"`
	TotalTime  time.Duration `json:"total_time_ms,format:milli"`
	TimeUsed   time.Duration `json:"time_used_ms,format:milli"`
	HasExpired bool          `json:"has_expired"`
}

type wireOvertime struct {
	Kind    synckairos.OvertimeKind `json:"kind"`
	Periods int                     `json:"periods"`
	Moves   int                     `json:"moves"`
	Period  time.Duration           `json:"period_ms,format:milli"`
}

type wireLag struct {
	Gain    time.Duration `json:"gain_ms,format:milli"`
	Initial time.Duration `json:"initial_ms,format:milli"`
	Max     time.Duration `json:"max_ms,format:milli"`
	Grace   time.Duration `json:"grace_ms,format:milli"`
}

type wireStage struct {
	Moves     int           `json:"moves"`
	Time      time.Duration `json:"time_ms,format:milli"`
	Increment time.Duration `json:"increment_ms,format:milli"`
}

type wireControl struct {
	Increment time.Duration `json:"increment_ms,format:milli"`
	Delay     time.Duration `json:"delay_ms,format:milli"`
}

type wireTransition struct {
	Type         string        `json:"type"`
	Version      int64         `json:"version"`
	At           time.Time     `json:"at,format:'2006-01-02T15:04:05.000Z07:00'"`
	From         string        `json:"from,omitzero"`
	To           string        `json:"to,omitzero"`
	Used         time.Duration `json:"used_ms,omitzero,format:milli"`
	Increment    time.Duration `json:"increment_ms,omitzero,format:milli"`
	Refund       time.Duration `json:"refund_ms,omitzero,format:milli"`
	Participant  string        `json:"participant_id,omitzero"`
	Added        time.Duration `json:"added_ms,omitzero,format:milli"`
	Compensation time.Duration `json:"compensation_ms,omitzero,format:milli"`
	Credit       time.Duration `json:"credit_ms,omitzero,format:milli"`
	PeriodsUsed  int           `json:"periods_used,omitzero"`
	Transferred  time.Duration `json:"transferred_ms,omitzero,format:milli"`
	Expired      []string      `json:"expired,omitzero"`
}

// formatTag turns on the `format` tag option (for durations in milliseconds
// and the stored time layout), experimental in this version.
var formatTag = jsonv2.ExperimentalSupportFormatTag(true)

// MarshalV2 writes s in the stored form with go-json-experiment.
func MarshalV2(s *synckairos.State) ([]byte, error) {
	return jsonv2.Marshal((*wireState)(unsafe.Pointer(s)), jsonv2.Deterministic(true), formatTag)
}

// UnmarshalV2 reads the stored form into s with go-json-experiment.
func UnmarshalV2(b []byte, s *synckairos.State) error {
	return jsonv2.Unmarshal(b, (*wireState)(unsafe.Pointer(s)), formatTag)
}
