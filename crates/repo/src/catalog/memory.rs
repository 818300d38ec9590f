//! An in-memory [`Catalog`]: for tests, and for tools that work on a repository alone (it is
//! filled by `rebuild_catalog`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    BlobLocation, Catalog, ChangeSource, ItemChange, RepoKey, SnapshotFilter, SnapshotRecord,
};
use crate::error::{CatalogError, CatalogResult};
use crate::format::index::IndexedPack;
use crate::format::item::Item;
use crate::ids::{BlobId, PackId, SnapshotId};

#[derive(Default)]
pub struct MemoryCatalog {
    repos: Mutex<HashMap<RepoKey, RepoRows>>,
}

#[derive(Default)]
struct RepoRows {
    blobs: HashMap<BlobId, BlobLocation>,
    packs: HashMap<PackId, u64>,
    snapshots: Vec<SnapshotRecord>,
    items: Vec<ItemRow>,
}

struct ItemRow {
    object_key: String,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    item: Item,
}

impl ItemRow {
    fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from <= at && self.valid_to.is_none_or(|to| at < to)
    }
}

impl MemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, repo: RepoKey, f: impl FnOnce(&mut RepoRows) -> T) -> T {
        let mut repos = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        f(repos.entry(repo).or_default())
    }
}

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn lookup_blobs(
        &self,
        repo: RepoKey,
        ids: &[BlobId],
    ) -> CatalogResult<Vec<Option<BlobLocation>>> {
        Ok(self.with(repo, |r| {
            ids.iter().map(|id| r.blobs.get(id).copied()).collect()
        }))
    }

    async fn add_packs(&self, repo: RepoKey, packs: &[IndexedPack]) -> CatalogResult<()> {
        self.with(repo, |r| {
            for p in packs {
                r.packs.insert(p.id, p.size);
                for b in &p.blobs {
                    r.blobs.insert(
                        b.id,
                        BlobLocation {
                            pack: p.id,
                            kind: b.kind,
                            offset: b.offset,
                            length: b.length,
                            plain_length: b.plain_length,
                        },
                    );
                }
            }
        });
        Ok(())
    }

    async fn remove_packs(&self, repo: RepoKey, packs: &[PackId]) -> CatalogResult<()> {
        self.with(repo, |r| {
            for p in packs {
                r.packs.remove(p);
            }
            r.blobs.retain(|_, loc| !packs.contains(&loc.pack));
        });
        Ok(())
    }

    async fn stored_bytes(&self, repo: RepoKey) -> CatalogResult<u64> {
        Ok(self.with(repo, |r| r.packs.values().sum()))
    }

    async fn commit_snapshot(
        &self,
        repo: RepoKey,
        snapshot: &SnapshotRecord,
        expected_latest: Option<SnapshotId>,
        changes: &mut dyn ChangeSource,
    ) -> CatalogResult<()> {
        let object_key = snapshot.object_key();
        let at = snapshot.doc.time;
        // Gather first, then apply under one lock: the commit is all or nothing.
        let mut all = Vec::new();
        while let Some(batch) = changes.next_batch().await? {
            all.extend(batch);
        }
        self.with(repo, |r| {
            let latest = r
                .snapshots
                .iter()
                .filter(|s| s.object_key() == object_key)
                .max_by_key(|s| s.doc.time);
            if latest.map(|s| s.id) != expected_latest {
                return Err(CatalogError::Conflict(format!(
                    "another restore point of {object_key} was committed meanwhile"
                )));
            }
            if latest.is_some_and(|s| s.doc.time >= at) {
                return Err(CatalogError::Conflict(format!(
                    "a restore point of {object_key} must be later than the latest one"
                )));
            }
            for change in all {
                let id = match &change {
                    ItemChange::Put(item) => item.id.clone(),
                    ItemChange::Remove(id) => id.clone(),
                };
                for row in r.items.iter_mut() {
                    if row.object_key == object_key && row.item.id == id && row.valid_to.is_none() {
                        row.valid_to = Some(at);
                    }
                }
                if let ItemChange::Put(item) = change {
                    r.items.push(ItemRow {
                        object_key: object_key.clone(),
                        valid_from: at,
                        valid_to: None,
                        item,
                    });
                }
            }
            r.snapshots.push(snapshot.clone());
            Ok(())
        })
    }

    async fn snapshots(
        &self,
        repo: RepoKey,
        filter: &SnapshotFilter,
    ) -> CatalogResult<Vec<SnapshotRecord>> {
        Ok(self.with(repo, |r| {
            let mut out: Vec<_> = r
                .snapshots
                .iter()
                .filter(|s| {
                    filter
                        .object_key
                        .as_ref()
                        .is_none_or(|k| *k == s.object_key())
                })
                .filter(|s| {
                    filter
                        .organization_id
                        .as_ref()
                        .is_none_or(|o| *o == s.doc.object.organization_id)
                })
                .filter(|s| filter.at_or_before.is_none_or(|t| s.doc.time <= t))
                .filter(|s| filter.at_or_after.is_none_or(|t| s.doc.time >= t))
                .cloned()
                .collect();
            out.sort_by_key(|s| (s.doc.time, s.id));
            out
        }))
    }

    async fn snapshot(
        &self,
        repo: RepoKey,
        id: SnapshotId,
    ) -> CatalogResult<Option<SnapshotRecord>> {
        Ok(self.with(repo, |r| r.snapshots.iter().find(|s| s.id == id).cloned()))
    }

    async fn list_items(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        parent: Option<&str>,
    ) -> CatalogResult<Vec<Item>> {
        Ok(self.with(repo, |r| {
            let mut out: Vec<Item> = r
                .items
                .iter()
                .filter(|row| row.object_key == object_key && row.valid_at(at))
                .filter(|row| row.item.parent_id.as_deref() == parent)
                .map(|row| row.item.clone())
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            out
        }))
    }

    async fn get_item(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        item_id: &str,
    ) -> CatalogResult<Option<Item>> {
        Ok(self.with(repo, |r| {
            r.items
                .iter()
                .find(|row| {
                    row.object_key == object_key && row.item.id == item_id && row.valid_at(at)
                })
                .map(|row| row.item.clone())
        }))
    }

    async fn list_deleted_items(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        parent: Option<&str>,
    ) -> CatalogResult<Vec<Item>> {
        Ok(self.with(repo, |r| {
            let mut out: Vec<Item> = r
                .items
                .iter()
                .filter(|row| row.object_key == object_key)
                .filter(|row| row.item.parent_id.as_deref() == parent)
                .filter(|row| row.valid_to.is_some_and(|to| to <= at))
                // The item's last version as of `at`: none of its versions starts later.
                .filter(|row| {
                    !r.items.iter().any(|x| {
                        x.object_key == object_key
                            && x.item.id == row.item.id
                            && x.valid_from > row.valid_from
                            && x.valid_from <= at
                    })
                })
                .map(|row| row.item.clone())
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            out
        }))
    }

    async fn get_item_last_seen(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        item_id: &str,
    ) -> CatalogResult<Option<Item>> {
        Ok(self.with(repo, |r| {
            r.items
                .iter()
                .filter(|row| {
                    row.object_key == object_key && row.item.id == item_id && row.valid_from <= at
                })
                .max_by_key(|row| row.valid_from)
                .map(|row| row.item.clone())
        }))
    }

    async fn remove_snapshots(&self, repo: RepoKey, ids: &[SnapshotId]) -> CatalogResult<()> {
        self.with(repo, |r| {
            r.snapshots.retain(|s| !ids.contains(&s.id));
            let times: Vec<(String, DateTime<Utc>)> = r
                .snapshots
                .iter()
                .map(|s| (s.object_key(), s.doc.time))
                .collect();
            r.items.retain(|row| {
                times
                    .iter()
                    .any(|(key, t)| *key == row.object_key && row.valid_at(*t))
            });
            // A version that outlived the object's (new) latest restore point is current again:
            // the next restore point carries it over unchanged.
            for row in r.items.iter_mut() {
                let latest = times
                    .iter()
                    .filter(|(key, _)| *key == row.object_key)
                    .map(|(_, t)| *t)
                    .max();
                if let (Some(latest), Some(to)) = (latest, row.valid_to) {
                    if to > latest {
                        row.valid_to = None;
                    }
                }
            }
        });
        Ok(())
    }

    async fn clear(&self, repo: RepoKey) -> CatalogResult<()> {
        self.repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&repo);
        Ok(())
    }
}
