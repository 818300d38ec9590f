-- Backup jobs. `document` is the JSON of the job's definition
-- (m365backup_core::jobs::model::JobDefinition); the columns beside it are what the scheduler
-- queries and changes: the run state (idle | queued | running), the session a running job
-- works in, the node that claimed it and when it last said so, and a retry it owes.
-- Deleting an organization with jobs is refused (no cascade): its backups need their jobs.
CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY NOT NULL,
    organization_id     TEXT NOT NULL REFERENCES organizations(id),
    name_key            TEXT NOT NULL,   -- lower-case name: unique per organization
    repository_id       TEXT NOT NULL,
    document            TEXT NOT NULL,
    is_enabled          BOOLEAN NOT NULL,
    state               TEXT NOT NULL,
    running_session_id  TEXT,
    claimed_by          TEXT,
    heartbeat_at        BIGINT,
    last_status         TEXT NOT NULL,
    last_run            BIGINT,
    next_run            BIGINT,
    pending_retry       TEXT,
    created_at          BIGINT NOT NULL,
    UNIQUE (organization_id, name_key)
);
CREATE INDEX jobs_due ON jobs (state, next_run);

-- Selected and excluded items of a job, in the order they were added.
CREATE TABLE job_items (
    id        TEXT PRIMARY KEY NOT NULL,
    job_id    TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    excluded  BOOLEAN NOT NULL,
    position  BIGINT NOT NULL,
    item      TEXT NOT NULL    -- JSON of m365backup_core::jobs::model::BackupItem
);
CREATE INDEX job_items_of_job ON job_items (job_id, excluded, position);

-- One run of a job. `statistics` is JSON (m365backup_core::jobs::model::SessionStatistics).
CREATE TABLE job_sessions (
    id               TEXT PRIMARY KEY NOT NULL,
    job_id           TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL,
    creation_time    BIGINT NOT NULL,
    end_time         BIGINT,
    retry_count      BIGINT NOT NULL,
    progress         BIGINT NOT NULL,
    status           TEXT NOT NULL,
    details          TEXT NOT NULL,
    statistics       TEXT NOT NULL,
    stop_requested   BOOLEAN NOT NULL,
    heartbeat_at     BIGINT NOT NULL
);
CREATE INDEX job_sessions_newest ON job_sessions (creation_time);
CREATE INDEX job_sessions_of_job ON job_sessions (job_id, creation_time);
CREATE INDEX job_sessions_running ON job_sessions (status, heartbeat_at);

-- A session's log; `usn` increases across the server.
CREATE TABLE job_log_items (
    usn            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    session_id     TEXT NOT NULL REFERENCES job_sessions(id) ON DELETE CASCADE,
    title          TEXT NOT NULL,
    creation_time  BIGINT NOT NULL,
    end_time       BIGINT
);
CREATE INDEX job_log_items_of_session ON job_log_items (session_id, usn);
