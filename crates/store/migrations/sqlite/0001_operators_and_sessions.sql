-- Operators of this server and their signed-in sessions.
-- Ids are GUID text; times are Unix milliseconds (INTEGER), the same in both backends.
CREATE TABLE operators (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    name_key        TEXT NOT NULL UNIQUE,   -- lower-case name: uniqueness ignores letter case
    password_hash   TEXT NOT NULL,          -- argon2id PHC string
    created_at      INTEGER NOT NULL
);

CREATE TABLE sessions (
    id                       TEXT PRIMARY KEY NOT NULL,
    operator_id              TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    access_digest            TEXT NOT NULL UNIQUE,   -- SHA-256 of the access token
    access_expires_at        INTEGER NOT NULL,
    refresh_digest           TEXT NOT NULL UNIQUE,   -- SHA-256 of the current refresh token
    previous_refresh_digest  TEXT,                   -- the spent one, to detect replay
    refresh_expires_at       INTEGER NOT NULL,
    created_at               INTEGER NOT NULL
);
CREATE INDEX sessions_operator ON sessions(operator_id);
CREATE INDEX sessions_previous_refresh ON sessions(previous_refresh_digest);
CREATE INDEX sessions_refresh_expiry ON sessions(refresh_expires_at);
