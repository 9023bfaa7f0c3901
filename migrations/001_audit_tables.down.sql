DROP TABLE sync_participants;
DROP TABLE sync_events;
DROP TABLE sync_sessions;
DO $$ BEGIN
    IF to_regclass('synckairos_migrations') IS NOT NULL THEN
        DELETE FROM synckairos_migrations WHERE version = 1;
    END IF;
END $$;
