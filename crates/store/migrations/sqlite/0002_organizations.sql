-- Microsoft 365 organizations. `document` is the JSON of the organization without secrets
-- (m365backup_core::organizations::Organization); `secrets` is AEAD ciphertext of its
-- credentials under the server key. Queried columns are kept beside the document.
CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL UNIQUE,
    document    TEXT NOT NULL,
    secrets     BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
