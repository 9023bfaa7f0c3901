-- The audit trail of synckairos: one row per session, one row per committed
-- version of a session, and the participants as of the latest version.
-- IDs are text: the host chooses them.

CREATE TABLE sync_sessions (
    session_id         text PRIMARY KEY,
    mode               text NOT NULL,
    time_per_cycle_ms  bigint NOT NULL DEFAULT 0,
    increment_ms       bigint NOT NULL DEFAULT 0,
    max_time_ms        bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    completed_at       timestamptz,
    deleted_at         timestamptz,
    final_status       text NOT NULL,
    -- The newest version recorded, of any event; and the newest with a
    -- state, which the other columns describe. Jobs may land out of order.
    last_version       bigint NOT NULL,
    state_version      bigint NOT NULL DEFAULT 0,
    metadata           jsonb,
    updated_at         timestamptz NOT NULL
);

CREATE INDEX sync_sessions_created_at_idx ON sync_sessions (created_at DESC);

CREATE TABLE sync_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id         text NOT NULL,
    version            bigint NOT NULL,
    event_type         text NOT NULL,
    participant_id     text,
    group_id           text,
    time_remaining_ms  bigint,
    time_elapsed_ms    bigint,
    "timestamp"        timestamptz NOT NULL,
    state_snapshot     jsonb,
    metadata           jsonb,
    -- When the row was written; "timestamp" is when the change committed.
    recorded_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT sync_events_session_version_key UNIQUE (session_id, version)
);

CREATE INDEX sync_events_session_timestamp_idx ON sync_events (session_id, "timestamp" DESC);
CREATE INDEX sync_events_event_type_idx ON sync_events (event_type);
CREATE INDEX sync_events_timestamp_idx ON sync_events ("timestamp" DESC);

CREATE TABLE sync_participants (
    session_id         text NOT NULL,
    participant_id     text NOT NULL,
    participant_index  integer NOT NULL,
    group_id           text,
    total_time_ms      bigint NOT NULL,
    time_used_ms       bigint NOT NULL,
    cycle_count        integer NOT NULL,
    has_expired        boolean NOT NULL,
    version            bigint NOT NULL,
    PRIMARY KEY (session_id, participant_id)
);
