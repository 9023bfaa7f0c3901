-- Lives and facts. A session ID can be reused: each create starts a new life,
-- and the rows of every life are kept apart, keyed by (session_id, life,
-- version). Rows written before this migration have life 0. Each event row
-- also gets the facts of its transition, as columns.
--
-- Non-destructive: columns are added, and the unique key is widened (a
-- UNIQUE constraint with life in it replaces the one without; no row is
-- changed or removed). On a large sync_events, building the new index takes
-- a while and holds a lock that blocks writes: run it at a quiet time.

ALTER TABLE sync_events
    ADD COLUMN life              bigint NOT NULL DEFAULT 0,
    ADD COLUMN turn              bigint,
    ADD COLUMN from_participant  text,
    ADD COLUMN to_participant    text,
    ADD COLUMN used_ms           bigint,
    ADD COLUMN increment_ms      bigint,
    ADD COLUMN refund_ms         bigint,
    ADD COLUMN added_to          text,
    ADD COLUMN added_ms          bigint,
    ADD COLUMN expired           text[];

ALTER TABLE sync_events ADD CONSTRAINT sync_events_session_life_version_key UNIQUE (session_id, life, version);
ALTER TABLE sync_events DROP CONSTRAINT sync_events_session_version_key;

-- sync_sessions and sync_participants describe each session ID's current
-- life: the one with the largest life number.
ALTER TABLE sync_sessions ADD COLUMN life bigint NOT NULL DEFAULT 0;
ALTER TABLE sync_participants ADD COLUMN life bigint NOT NULL DEFAULT 0;
