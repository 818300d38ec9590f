-- Restore sessions (`document`: the JSON of the session without its counters), and what was
-- done in them. Sessions are kept after they stop, for the record.
CREATE TABLE restore_sessions (
    id             TEXT PRIMARY KEY NOT NULL,
    document       TEXT NOT NULL,
    state          TEXT NOT NULL,
    creation_time  BIGINT NOT NULL,
    last_activity  BIGINT NOT NULL
);
CREATE INDEX restore_sessions_newest ON restore_sessions (creation_time);
CREATE INDEX restore_sessions_idle ON restore_sessions (state, last_activity);

CREATE TABLE restore_events (
    event_order  BIGSERIAL PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    session_id   TEXT NOT NULL REFERENCES restore_sessions(id) ON DELETE CASCADE,
    document     TEXT NOT NULL
);
CREATE INDEX restore_events_of_session ON restore_events (session_id, event_order);
