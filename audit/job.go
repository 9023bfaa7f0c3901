package audit

import (
	"time"

	"github.com/riverqueue/river"
)

// JobKind is the River kind of the audit jobs. It is stable: jobs inserted
// by one version of synckairos are worked by the next.
const JobKind = "synckairos_audit_batch"

// MaxAttempts is how many times River runs an audit job before giving up on
// it (and calling WorkerConfig.OnFailure).
const MaxAttempts = 5

// Event is one committed version of a session, as the write that committed
// it appended it to its partition's outbox.
type Event struct {
	SessionID string `json:"session_id"`
	// Life is the life of the session ID (synckairos.State.Life); 0 for
	// events written before lives were recorded.
	Life      int64     `json:"life,omitempty"`
	Version   int64     `json:"version"`
	Type      string    `json:"event_type"`
	Timestamp time.Time `json:"timestamp"`
	// State is the session's state JSON at Version, as a string; empty for
	// a deletion. A string, not an embedded object, because Postgres stores
	// job args as jsonb, and parsing every state into a jsonb object, only
	// for the worker to read it back, cost a third of the pipeline.
	State string `json:"state,omitempty"`
}

// BatchArgs is the River job that writes a batch of events to Postgres.
type BatchArgs struct {
	Events []Event `json:"events"`
}

// Kind returns JobKind.
func (BatchArgs) Kind() string { return JobKind }

// InsertOpts sets MaxAttempts.
func (BatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: MaxAttempts}
}
