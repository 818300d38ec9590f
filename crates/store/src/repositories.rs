//! The state store's share of backup repositories: the registry of repositories, the proxies,
//! and the catalog of each repository (`m365backup_repo::Catalog`). SQL written once for both
//! backends, as in [`crate::queries`].

/// Rows per multi-row statement (well under either backend's parameter limit).
pub(crate) const BATCH_ROWS: usize = 400;

/// `$first, $first+1, …` for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($a, $b, …), (…)` for `rows` rows of `cols` values, numbered from `first`.
pub(crate) fn row_placeholders(first: usize, rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(first + r * cols, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_repository_stores {
    ($store:ty, $db:ty, $lock_repository:literal, $lock_repository_document:literal) => {
        use std::collections::{BTreeSet, HashMap};

        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use m365backup_core::proxies::{Proxy, ProxyStore};
        use m365backup_core::store::StoreResult;
        use m365backup_repo::catalog::{BlobLocation, ChangeSource, ItemChange, RepoKey};
        use m365backup_repo::format::index::IndexedPack;
        use m365backup_repo::ids::BlobKind;
        use m365backup_repo::registry::{RegistryStore, RepositoryRecord};
        use m365backup_repo::{BlobId, Catalog, CatalogError, Item, PackId, SnapshotFilter, SnapshotId, SnapshotRecord};
        use sqlx::Row;

        use crate::repositories::{placeholders, row_placeholders, BATCH_ROWS};
        use crate::time::{from_millis, to_millis};

        type CatalogResult<T> = Result<T, CatalogError>;

        fn cat(e: sqlx::Error) -> CatalogError {
            CatalogError::Backend(Box::new(e))
        }

        fn corrupt(what: &'static str, e: impl Into<m365backup_core::BoxError>) -> CatalogError {
            CatalogError::Corrupt { what, source: e.into() }
        }

        fn snapshot_from_row(row: &<$db as sqlx::Database>::Row) -> CatalogResult<SnapshotRecord> {
            let id: String = row.try_get("snapshot_id").map_err(cat)?;
            let doc: String = row.try_get("document").map_err(cat)?;
            Ok(SnapshotRecord {
                id: id.parse().map_err(|e| corrupt("snapshot id", e))?,
                doc: serde_json::from_str(&doc).map_err(|e| corrupt("snapshot", e))?,
            })
        }

        fn item_from_row(row: &<$db as sqlx::Database>::Row) -> CatalogResult<Item> {
            let record: String = row.try_get("record").map_err(cat)?;
            serde_json::from_str(&record).map_err(|e| corrupt("item", e))
        }

        #[async_trait]
        impl Catalog for $store {
            async fn lookup_blobs(&self, repo: RepoKey, ids: &[BlobId]) -> CatalogResult<Vec<Option<BlobLocation>>> {
                let mut found: HashMap<BlobId, BlobLocation> = HashMap::new();
                for batch in ids.chunks(BATCH_ROWS) {
                    let sql = format!(
                        "SELECT blob_id, pack_id, kind, blob_offset, length, plain_length FROM repo_blobs
                         WHERE repository_id = $1 AND blob_id IN ({})",
                        placeholders(2, batch.len())
                    );
                    let mut q = sqlx::query(&sql).bind(repo.to_string());
                    for id in batch {
                        q = q.bind(id.0.to_vec());
                    }
                    for row in q.fetch_all(&self.read).await.map_err(cat)? {
                        let blob: Vec<u8> = row.try_get("blob_id").map_err(cat)?;
                        let pack: Vec<u8> = row.try_get("pack_id").map_err(cat)?;
                        let kind: i16 = row.try_get("kind").map_err(cat)?;
                        let offset: i64 = row.try_get("blob_offset").map_err(cat)?;
                        let length: i64 = row.try_get("length").map_err(cat)?;
                        let plain: i64 = row.try_get("plain_length").map_err(cat)?;
                        found.insert(
                            BlobId::from_slice(&blob).ok_or_else(|| corrupt("blob id", "wrong length"))?,
                            BlobLocation {
                                pack: PackId::from_slice(&pack).ok_or_else(|| corrupt("pack id", "wrong length"))?,
                                kind: BlobKind::from_code(kind as u8).ok_or_else(|| corrupt("blob kind", format!("unknown code {kind}")))?,
                                offset: offset as u64,
                                length: length as u32,
                                plain_length: plain as u32,
                            },
                        );
                    }
                }
                Ok(ids.iter().map(|id| found.get(id).copied()).collect())
            }

            async fn add_packs(&self, repo: RepoKey, packs: &[IndexedPack]) -> CatalogResult<()> {
                let repo_id = repo.to_string();
                // One row per blob (a blob listed twice goes where it is listed last).
                let mut blobs: HashMap<BlobId, (PackId, i16, i64, i64, i64)> = HashMap::new();
                for p in packs {
                    for b in &p.blobs {
                        blobs.insert(b.id, (p.id, b.kind.code() as i16, b.offset as i64, b.length as i64, b.plain_length as i64));
                    }
                }
                let blobs: Vec<_> = blobs.into_iter().collect();
                let mut tx = self.write.begin().await.map_err(cat)?;
                for batch in packs.chunks(BATCH_ROWS) {
                    let sql = format!(
                        "INSERT INTO repo_packs (repository_id, pack_id, size) VALUES {}
                         ON CONFLICT (repository_id, pack_id) DO UPDATE SET size = excluded.size",
                        row_placeholders(1, batch.len(), 3)
                    );
                    let mut q = sqlx::query(&sql);
                    for p in batch {
                        q = q.bind(repo_id.clone()).bind(p.id.0.to_vec()).bind(p.size as i64);
                    }
                    q.execute(&mut *tx).await.map_err(cat)?;
                }
                for batch in blobs.chunks(BATCH_ROWS) {
                    let sql = format!(
                        "INSERT INTO repo_blobs (repository_id, blob_id, pack_id, kind, blob_offset, length, plain_length)
                         VALUES {}
                         ON CONFLICT (repository_id, blob_id) DO UPDATE SET pack_id = excluded.pack_id,
                             kind = excluded.kind, blob_offset = excluded.blob_offset,
                             length = excluded.length, plain_length = excluded.plain_length",
                        row_placeholders(1, batch.len(), 7)
                    );
                    let mut q = sqlx::query(&sql);
                    for (id, (pack, kind, offset, length, plain)) in batch {
                        q = q
                            .bind(repo_id.clone())
                            .bind(id.0.to_vec())
                            .bind(pack.0.to_vec())
                            .bind(*kind)
                            .bind(*offset)
                            .bind(*length)
                            .bind(*plain);
                    }
                    q.execute(&mut *tx).await.map_err(cat)?;
                }
                tx.commit().await.map_err(cat)
            }

            async fn remove_packs(&self, repo: RepoKey, packs: &[PackId]) -> CatalogResult<()> {
                let mut tx = self.write.begin().await.map_err(cat)?;
                for p in packs {
                    for table in ["repo_blobs", "repo_packs"] {
                        sqlx::query(&format!("DELETE FROM {table} WHERE repository_id = $1 AND pack_id = $2"))
                            .bind(repo.to_string())
                            .bind(p.0.to_vec())
                            .execute(&mut *tx)
                            .await
                            .map_err(cat)?;
                    }
                }
                tx.commit().await.map_err(cat)
            }

            async fn stored_bytes(&self, repo: RepoKey) -> CatalogResult<u64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM repo_packs WHERE repository_id = $1",
                )
                .bind(repo.to_string())
                .fetch_one(&self.read)
                .await
                .map_err(cat)?;
                Ok(n.max(0) as u64)
            }

            async fn commit_snapshot(
                &self,
                repo: RepoKey,
                snapshot: &SnapshotRecord,
                expected_latest: Option<SnapshotId>,
                changes: &mut dyn ChangeSource,
            ) -> CatalogResult<()> {
                let repo_id = repo.to_string();
                let object_key = snapshot.object_key();
                let at = to_millis(snapshot.doc.time);
                let mut tx = self.write.begin().await.map_err(cat)?;
                // Commits to one repository take turns, so the latest-restore-point check holds.
                sqlx::query($lock_repository)
                    .bind(&repo_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(cat)?;
                let latest = sqlx::query(
                    "SELECT snapshot_id, snapshot_time FROM repo_snapshots
                     WHERE repository_id = $1 AND object_key = $2
                     ORDER BY snapshot_time DESC LIMIT 1",
                )
                .bind(&repo_id)
                .bind(&object_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(cat)?;
                let latest: Option<(String, i64)> = latest
                    .map(|row| Ok::<_, sqlx::Error>((row.try_get("snapshot_id")?, row.try_get("snapshot_time")?)))
                    .transpose()
                    .map_err(cat)?;
                if latest.as_ref().map(|(id, _)| id.clone()) != expected_latest.map(|id| id.to_hex()) {
                    return Err(CatalogError::Conflict(format!(
                        "another restore point of {object_key} was committed meanwhile"
                    )));
                }
                if latest.is_some_and(|(_, t)| t >= at) {
                    return Err(CatalogError::Conflict(format!(
                        "a restore point of {object_key} must be later than the latest one"
                    )));
                }
                while let Some(batch) = changes.next_batch().await? {
                    for part in batch.chunks(BATCH_ROWS) {
                        let sql = format!(
                            "UPDATE repo_items SET valid_to = $1
                             WHERE repository_id = $2 AND object_key = $3 AND valid_to IS NULL AND item_id IN ({})",
                            placeholders(4, part.len())
                        );
                        let mut q = sqlx::query(&sql).bind(at).bind(&repo_id).bind(&object_key);
                        for change in part {
                            q = q.bind(change.item_id().to_owned());
                        }
                        q.execute(&mut *tx).await.map_err(cat)?;
                        let puts: Vec<&Item> = part
                            .iter()
                            .filter_map(|c| match c {
                                ItemChange::Put(item) => Some(item),
                                ItemChange::Remove(_) => None,
                            })
                            .collect();
                        if puts.is_empty() {
                            continue;
                        }
                        let sql = format!(
                            "INSERT INTO repo_items (repository_id, object_key, item_id, parent_id, name, valid_from, record)
                             VALUES {}",
                            row_placeholders(1, puts.len(), 7)
                        );
                        let mut q = sqlx::query(&sql);
                        for item in puts {
                            q = q
                                .bind(repo_id.clone())
                                .bind(object_key.clone())
                                .bind(item.id.clone())
                                .bind(item.parent_id.clone().unwrap_or_default())
                                .bind(item.name.clone())
                                .bind(at)
                                .bind(serde_json::to_string(item).expect("items serialize"));
                        }
                        q.execute(&mut *tx).await.map_err(cat)?;
                    }
                }
                sqlx::query(
                    "INSERT INTO repo_snapshots (repository_id, snapshot_id, object_key, organization_id, snapshot_time, document)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&repo_id)
                .bind(snapshot.id.to_hex())
                .bind(&object_key)
                .bind(&snapshot.doc.object.organization_id)
                .bind(at)
                .bind(serde_json::to_string(&snapshot.doc).expect("snapshots serialize"))
                .execute(&mut *tx)
                .await
                .map_err(cat)?;
                tx.commit().await.map_err(cat)
            }

            async fn snapshots(&self, repo: RepoKey, filter: &SnapshotFilter) -> CatalogResult<Vec<SnapshotRecord>> {
                let mut sql = String::from(
                    "SELECT snapshot_id, document FROM repo_snapshots WHERE repository_id = $1",
                );
                let mut n = 1;
                let mut next = || {
                    n += 1;
                    n
                };
                if filter.object_key.is_some() {
                    sql.push_str(&format!(" AND object_key = ${}", next()));
                }
                if filter.organization_id.is_some() {
                    sql.push_str(&format!(" AND organization_id = ${}", next()));
                }
                if filter.at_or_before.is_some() {
                    sql.push_str(&format!(" AND snapshot_time <= ${}", next()));
                }
                if filter.at_or_after.is_some() {
                    sql.push_str(&format!(" AND snapshot_time >= ${}", next()));
                }
                sql.push_str(" ORDER BY snapshot_time, snapshot_id");
                let mut q = sqlx::query(&sql).bind(repo.to_string());
                if let Some(k) = &filter.object_key {
                    q = q.bind(k.clone());
                }
                if let Some(o) = &filter.organization_id {
                    q = q.bind(o.clone());
                }
                if let Some(t) = filter.at_or_before {
                    q = q.bind(to_millis(t));
                }
                if let Some(t) = filter.at_or_after {
                    q = q.bind(to_millis(t));
                }
                let rows = q.fetch_all(&self.read).await.map_err(cat)?;
                rows.iter().map(snapshot_from_row).collect()
            }

            async fn snapshot(&self, repo: RepoKey, id: SnapshotId) -> CatalogResult<Option<SnapshotRecord>> {
                let row = sqlx::query(
                    "SELECT snapshot_id, document FROM repo_snapshots WHERE repository_id = $1 AND snapshot_id = $2",
                )
                .bind(repo.to_string())
                .bind(id.to_hex())
                .fetch_optional(&self.read)
                .await
                .map_err(cat)?;
                row.as_ref().map(snapshot_from_row).transpose()
            }

            async fn list_items(
                &self,
                repo: RepoKey,
                object_key: &str,
                at: DateTime<Utc>,
                parent: Option<&str>,
            ) -> CatalogResult<Vec<Item>> {
                let rows = sqlx::query(
                    "SELECT record FROM repo_items
                     WHERE repository_id = $1 AND object_key = $2 AND parent_id = $3
                       AND valid_from <= $4 AND (valid_to IS NULL OR valid_to > $4)
                     ORDER BY name, item_id",
                )
                .bind(repo.to_string())
                .bind(object_key)
                .bind(parent.unwrap_or(""))
                .bind(to_millis(at))
                .fetch_all(&self.read)
                .await
                .map_err(cat)?;
                rows.iter().map(item_from_row).collect()
            }

            async fn get_item(
                &self,
                repo: RepoKey,
                object_key: &str,
                at: DateTime<Utc>,
                item_id: &str,
            ) -> CatalogResult<Option<Item>> {
                let row = sqlx::query(
                    "SELECT record FROM repo_items
                     WHERE repository_id = $1 AND object_key = $2 AND item_id = $3
                       AND valid_from <= $4 AND (valid_to IS NULL OR valid_to > $4)",
                )
                .bind(repo.to_string())
                .bind(object_key)
                .bind(item_id)
                .bind(to_millis(at))
                .fetch_optional(&self.read)
                .await
                .map_err(cat)?;
                row.as_ref().map(item_from_row).transpose()
            }

            async fn list_deleted_items(
                &self,
                repo: RepoKey,
                object_key: &str,
                at: DateTime<Utc>,
                parent: Option<&str>,
            ) -> CatalogResult<Vec<Item>> {
                // Versions under `parent` that ended by `at` and are their item's last by then.
                let rows = sqlx::query(
                    "SELECT r.record FROM repo_items r
                     WHERE r.repository_id = $1 AND r.object_key = $2 AND r.parent_id = $3
                       AND r.valid_to IS NOT NULL AND r.valid_to <= $4
                       AND NOT EXISTS (
                         SELECT 1 FROM repo_items x
                         WHERE x.repository_id = r.repository_id AND x.object_key = r.object_key
                           AND x.item_id = r.item_id
                           AND x.valid_from > r.valid_from AND x.valid_from <= $4)
                     ORDER BY r.name, r.item_id",
                )
                .bind(repo.to_string())
                .bind(object_key)
                .bind(parent.unwrap_or(""))
                .bind(to_millis(at))
                .fetch_all(&self.read)
                .await
                .map_err(cat)?;
                rows.iter().map(item_from_row).collect()
            }

            async fn get_item_last_seen(
                &self,
                repo: RepoKey,
                object_key: &str,
                at: DateTime<Utc>,
                item_id: &str,
            ) -> CatalogResult<Option<Item>> {
                let row = sqlx::query(
                    "SELECT record FROM repo_items
                     WHERE repository_id = $1 AND object_key = $2 AND item_id = $3
                       AND valid_from <= $4
                     ORDER BY valid_from DESC LIMIT 1",
                )
                .bind(repo.to_string())
                .bind(object_key)
                .bind(item_id)
                .bind(to_millis(at))
                .fetch_optional(&self.read)
                .await
                .map_err(cat)?;
                row.as_ref().map(item_from_row).transpose()
            }

            async fn remove_snapshots(&self, repo: RepoKey, ids: &[SnapshotId]) -> CatalogResult<()> {
                let repo_id = repo.to_string();
                let mut tx = self.write.begin().await.map_err(cat)?;
                let mut objects = BTreeSet::new();
                for id in ids {
                    let key: Option<String> = sqlx::query_scalar(
                        "DELETE FROM repo_snapshots WHERE repository_id = $1 AND snapshot_id = $2 RETURNING object_key",
                    )
                    .bind(&repo_id)
                    .bind(id.to_hex())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(cat)?;
                    objects.extend(key);
                }
                for object_key in objects {
                    // Versions no remaining restore point holds go.
                    sqlx::query(
                        "DELETE FROM repo_items WHERE repository_id = $1 AND object_key = $2 AND NOT EXISTS (
                             SELECT 1 FROM repo_snapshots s
                             WHERE s.repository_id = $1 AND s.object_key = $2
                               AND s.snapshot_time >= repo_items.valid_from
                               AND (repo_items.valid_to IS NULL OR s.snapshot_time < repo_items.valid_to))",
                    )
                    .bind(&repo_id)
                    .bind(&object_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(cat)?;
                    // A version valid past the new latest restore point is current again.
                    sqlx::query(
                        "UPDATE repo_items SET valid_to = NULL
                         WHERE repository_id = $1 AND object_key = $2 AND valid_to > (
                             SELECT MAX(snapshot_time) FROM repo_snapshots WHERE repository_id = $1 AND object_key = $2)",
                    )
                    .bind(&repo_id)
                    .bind(&object_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(cat)?;
                }
                tx.commit().await.map_err(cat)
            }

            async fn clear(&self, repo: RepoKey) -> CatalogResult<()> {
                let mut tx = self.write.begin().await.map_err(cat)?;
                for table in ["repo_items", "repo_snapshots", "repo_blobs", "repo_packs"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE repository_id = $1"))
                        .bind(repo.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(cat)?;
                }
                tx.commit().await.map_err(cat)
            }
        }

        fn record_from_document(document: &str) -> StoreResult<RepositoryRecord> {
            serde_json::from_str(document)
                .map_err(|e| m365backup_core::StoreError::corrupt("repository document", e))
        }

        fn record_document(record: &RepositoryRecord) -> String {
            serde_json::to_string(record).expect("repository records serialize")
        }

        #[async_trait]
        impl RegistryStore for $store {
            async fn list_repositories(&self) -> StoreResult<Vec<RepositoryRecord>> {
                let docs: Vec<String> = sqlx::query_scalar("SELECT document FROM repositories ORDER BY created_at, id")
                    .fetch_all(&self.read)
                    .await
                    .map_err(crate::db_error("list_repositories"))?;
                docs.iter().map(|d| record_from_document(d)).collect()
            }

            async fn get_repository(&self, id: uuid::Uuid) -> StoreResult<Option<RepositoryRecord>> {
                let doc: Option<String> = sqlx::query_scalar("SELECT document FROM repositories WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.read)
                    .await
                    .map_err(crate::db_error("get_repository"))?;
                doc.map(|d| record_from_document(&d)).transpose()
            }

            async fn repository_secrets(&self, id: uuid::Uuid) -> StoreResult<Option<Vec<u8>>> {
                sqlx::query_scalar("SELECT secrets FROM repositories WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.read)
                    .await
                    .map_err(crate::db_error("repository_secrets"))
            }

            async fn insert_repository(&self, record: &RepositoryRecord, sealed_secrets: &[u8]) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO repositories (id, name_key, document, secrets, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(record.id.to_string())
                .bind(record.name.to_lowercase())
                .bind(record_document(record))
                .bind(sealed_secrets)
                .bind(to_millis(record.created_at))
                .execute(&self.write)
                .await
                .map_err(crate::db_error("insert_repository"))?;
                Ok(())
            }

            async fn update_repository(&self, record: &RepositoryRecord) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE repositories SET name_key = $2, document = $3 WHERE id = $1")
                    .bind(record.id.to_string())
                    .bind(record.name.to_lowercase())
                    .bind(record_document(record))
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("update_repository"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_repository(&self, id: uuid::Uuid) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM repositories WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("delete_repository"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_last_retention(&self, id: uuid::Uuid, at: DateTime<Utc>) -> StoreResult<()> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("set_last_retention"))?;
                let doc: Option<String> = sqlx::query_scalar($lock_repository_document)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(crate::db_error("set_last_retention"))?;
                if let Some(doc) = doc {
                    let mut record = record_from_document(&doc)?;
                    record.last_retention_at = Some(at);
                    sqlx::query("UPDATE repositories SET document = $2 WHERE id = $1")
                        .bind(id.to_string())
                        .bind(record_document(&record))
                        .execute(&mut *tx)
                        .await
                        .map_err(crate::db_error("set_last_retention"))?;
                }
                tx.commit().await.map_err(crate::db_error("set_last_retention"))
            }
        }

        fn proxy_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<Proxy> {
            let get = |e: sqlx::Error| crate::db_error("proxy_from_row")(e);
            let id: String = row.try_get("id").map_err(get)?;
            let port: i32 = row.try_get("port").map_err(get)?;
            let threads: i32 = row.try_get("threads").map_err(get)?;
            Ok(Proxy {
                id: id.parse().map_err(|_| m365backup_core::StoreError::corrupt("proxy id", format!("'{id}' is not an id")))?,
                host_name: row.try_get("host_name").map_err(get)?,
                description: row.try_get("description").map_err(get)?,
                port: port as u16,
                threads: threads.max(0) as u32,
                created_at: from_millis(row.try_get("created_at").map_err(get)?),
                heartbeat_at: from_millis(row.try_get("heartbeat_at").map_err(get)?),
            })
        }

        #[async_trait]
        impl ProxyStore for $store {
            async fn register_proxy(&self, proxy: &Proxy) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO proxies (id, host_name, description, port, threads, created_at, heartbeat_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (id) DO UPDATE SET host_name = excluded.host_name, port = excluded.port,
                         threads = excluded.threads, heartbeat_at = excluded.heartbeat_at",
                )
                .bind(proxy.id.to_string())
                .bind(&proxy.host_name)
                .bind(&proxy.description)
                .bind(proxy.port as i32)
                .bind(proxy.threads as i32)
                .bind(to_millis(proxy.created_at))
                .bind(to_millis(proxy.heartbeat_at))
                .execute(&self.write)
                .await
                .map_err(crate::db_error("register_proxy"))?;
                Ok(())
            }

            async fn proxy_heartbeat(&self, id: uuid::Uuid, at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("UPDATE proxies SET heartbeat_at = $2 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(to_millis(at))
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("proxy_heartbeat"))?;
                Ok(())
            }

            async fn list_proxies(&self) -> StoreResult<Vec<Proxy>> {
                let rows = sqlx::query("SELECT * FROM proxies ORDER BY created_at, id")
                    .fetch_all(&self.read)
                    .await
                    .map_err(crate::db_error("list_proxies"))?;
                rows.iter().map(proxy_from_row).collect()
            }
        }
    };
}

pub(crate) use impl_repository_stores;
