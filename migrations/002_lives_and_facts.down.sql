-- Reverts 002 only while every session ID has a single life in sync_events:
-- adding the narrower unique key fails otherwise, and nothing is dropped.
ALTER TABLE sync_events ADD CONSTRAINT sync_events_session_version_key UNIQUE (session_id, version);
ALTER TABLE sync_events DROP CONSTRAINT sync_events_session_life_version_key;
ALTER TABLE sync_events
    DROP COLUMN life, DROP COLUMN turn, DROP COLUMN from_participant, DROP COLUMN to_participant,
    DROP COLUMN used_ms, DROP COLUMN increment_ms, DROP COLUMN refund_ms, DROP COLUMN added_to,
    DROP COLUMN added_ms, DROP COLUMN expired;
ALTER TABLE sync_sessions DROP COLUMN life;
ALTER TABLE sync_participants DROP COLUMN life;
DO $$ BEGIN
    IF to_regclass('synckairos_migrations') IS NOT NULL THEN
        DELETE FROM synckairos_migrations WHERE version = 2;
    END IF;
END $$;
