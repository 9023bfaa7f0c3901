DROP TABLE sync_participants;
DROP TABLE sync_events;
DROP TABLE sync_sessions;
