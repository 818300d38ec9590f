-- The audit trail (GET /v5/AuditItems): one row per operator action, appended and never changed
-- (the trigger refuses updates; only the retention purge deletes). `document` is the JSON of the
-- item; the other columns are what listings filter and sort on.
CREATE TABLE audit_items (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    time          INTEGER NOT NULL,
    operator_id   TEXT,
    operator_key  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    document      TEXT NOT NULL
);
CREATE INDEX audit_items_newest ON audit_items (time, seq);
CREATE INDEX audit_items_of_operator ON audit_items (operator_key, time);
CREATE INDEX audit_items_of_operator_id ON audit_items (operator_id, time);
CREATE INDEX audit_items_of_kind ON audit_items (kind, time);

CREATE TRIGGER audit_items_append_only BEFORE UPDATE ON audit_items
BEGIN
    SELECT RAISE(ABORT, 'audit items cannot be changed');
END;
