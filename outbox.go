package synckairos

// The audit event types of the changes a Manager commits. With Config.Audit,
// each write appends its event, in the same script, to its partition's
// outbox stream <prefix><tag>:outbox as the fields sid (the session ID as a
// JSON string), v (the version), type (one of these), ts (server time, ms)
// and state (the state JSON; empty for a deletion). The relay of package
// audit moves the entries to Postgres, where the type is
// sync_events.event_type.
const (
	EventSessionCreated = "session_created"
	EventSessionUpdated = "session_updated"
	EventSessionDeleted = "session_deleted"
)
