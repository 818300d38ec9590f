-- Proxies: the server nodes (v5 /Proxies). One row per node, its heartbeat kept fresh.
CREATE TABLE proxies (
    id            TEXT PRIMARY KEY NOT NULL,
    host_name     TEXT NOT NULL,
    description   TEXT NOT NULL,
    port          INTEGER NOT NULL,
    threads       INTEGER NOT NULL,
    created_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

-- Backup repositories (v5 /BackupRepositories). `document` is the JSON of the record without
-- secrets (m365backup_repo::registry::RepositoryRecord); `secrets` is AEAD ciphertext of the
-- repository password and the storage's secret key under the server key.
CREATE TABLE repositories (
    id                 TEXT PRIMARY KEY NOT NULL,
    name_key           TEXT NOT NULL UNIQUE,   -- lower-case name: uniqueness ignores letter case
    document           TEXT NOT NULL,
    secrets            BLOB NOT NULL,
    created_at         BIGINT NOT NULL
);

-- The catalog: an index of each repository, rebuilt from it by `repository rebuild-catalog`.
-- Packs and where each blob (chunk or item page) is.
CREATE TABLE repo_packs (
    repository_id  TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    pack_id        BLOB NOT NULL,
    size           BIGINT NOT NULL,
    PRIMARY KEY (repository_id, pack_id)
) WITHOUT ROWID;
CREATE TABLE repo_blobs (
    repository_id  TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    blob_id        BLOB NOT NULL,
    pack_id        BLOB NOT NULL,
    kind           SMALLINT NOT NULL,        -- 0 data, 1 tree
    blob_offset    BIGINT NOT NULL,
    length         BIGINT NOT NULL,
    plain_length   BIGINT NOT NULL,
    PRIMARY KEY (repository_id, blob_id)
) WITHOUT ROWID;   -- the key is the row: one b-tree, not two
CREATE INDEX repo_blobs_pack ON repo_blobs(repository_id, pack_id);

-- Restore points: one per protected object and time; `document` is the snapshot document.
CREATE TABLE repo_snapshots (
    repository_id    TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    snapshot_id      TEXT NOT NULL,
    object_key       TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    snapshot_time    BIGINT NOT NULL,
    document         TEXT NOT NULL,
    PRIMARY KEY (repository_id, snapshot_id)
);
CREATE INDEX repo_snapshots_object ON repo_snapshots(repository_id, object_key, snapshot_time);
CREATE INDEX repo_snapshots_organization ON repo_snapshots(repository_id, organization_id, snapshot_time);

-- Item versions, valid from the restore point that first held them until the next one of
-- their object that changed or removed them (NULL: still current). Top-level items have
-- parent_id ''. `record` is the item's JSON (m365backup_repo::Item).
CREATE TABLE repo_items (
    repository_id  TEXT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    object_key     TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    parent_id      TEXT NOT NULL,
    name           TEXT NOT NULL,
    valid_from     BIGINT NOT NULL,
    valid_to       BIGINT,
    record         TEXT NOT NULL
);
CREATE INDEX repo_items_parent ON repo_items(repository_id, object_key, parent_id, valid_from);
CREATE INDEX repo_items_item ON repo_items(repository_id, object_key, item_id, valid_from);
