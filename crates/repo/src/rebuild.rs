//! Rebuilding the catalog from the repository alone: every index file gives the blob
//! locations, every snapshot document a restore point, and consecutive restore points of an
//! object, compared item by item (both sorted by id), give the item versions and their validity.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};

use crate::catalog::{ItemChange, SnapshotRecord};
use crate::error::{RepoError, RepoResult};
use crate::format::index::IndexFile;
use crate::format::item::Item;
use crate::format::snapshot::SnapshotDoc;
use crate::format::{index_key, INDEX_DIR};
use crate::ids::IndexId;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::writer::ChangeFile;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub index_files: usize,
    pub packs: usize,
    pub blobs: usize,
    pub snapshots: usize,
    /// Restore points left out (e.g. a second one of an object at the same time), with why.
    pub skipped: Vec<String>,
}

impl Repository {
    /// Every index file of the repository.
    pub async fn load_indexes(&self) -> RepoResult<Vec<(IndexId, IndexFile)>> {
        let names = self.inner.backend.list(INDEX_DIR).await?;
        futures::stream::iter(names)
            .map(|entry| async move {
                let id: IndexId = entry
                    .name
                    .parse()
                    .map_err(|e| RepoError::damaged(format!("index/{}", entry.name), e))?;
                let bytes = self.inner.backend.get(&index_key(&id)).await?;
                let keys = self.inner.keys.clone();
                let file = tokio::task::spawn_blocking(move || IndexFile::open(&keys, &id, &bytes))
                    .await
                    .map_err(RepoError::task("index"))?
                    .map_err(|reason| RepoError::damaged(format!("index file {id}"), reason))?;
                Ok::<_, RepoError>((id, file))
            })
            .buffer_unordered(8)
            .try_collect()
            .await
    }

    /// Every snapshot document, grouped by object and sorted by time.
    pub async fn load_snapshots_by_object(
        &self,
    ) -> RepoResult<BTreeMap<String, Vec<SnapshotRecord>>> {
        let ids = self.snapshot_ids().await?;
        let records: Vec<SnapshotRecord> = futures::stream::iter(ids)
            .map(|id| async move {
                let doc = self.load_snapshot(id).await?;
                Ok::<_, RepoError>(SnapshotRecord { id, doc })
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let mut by_object: BTreeMap<String, Vec<SnapshotRecord>> = BTreeMap::new();
        for r in records {
            by_object.entry(r.object_key()).or_default().push(r);
        }
        for list in by_object.values_mut() {
            list.sort_by_key(|r| (r.doc.time, r.id));
        }
        Ok(by_object)
    }

    /// Empties this repository's catalog and fills it again from the repository.
    pub async fn rebuild_catalog(&self, progress: &dyn Progress) -> RepoResult<RebuildReport> {
        let catalog = &self.inner.catalog;
        let repo = self.inner.repo;
        catalog.clear(repo).await?;
        let mut report = RebuildReport::default();
        let indexes = self.load_indexes().await?;
        progress.phase("index", Some(indexes.len() as u64));
        for (_, file) in &indexes {
            for batch in file.packs.chunks(64) {
                catalog.add_packs(repo, batch).await?;
            }
            report.index_files += 1;
            report.packs += file.packs.len();
            report.blobs += file.packs.iter().map(|p| p.blobs.len()).sum::<usize>();
            progress.advance(1);
        }
        let by_object = self.load_snapshots_by_object().await?;
        progress.phase(
            "restore points",
            Some(by_object.values().map(|v| v.len() as u64).sum()),
        );
        for records in by_object.values() {
            let (added, skipped) = self.catalog_object_history(records, progress).await?;
            report.snapshots += added;
            report.skipped.extend(skipped);
        }
        Ok(report)
    }

    /// Records an object's restore points (sorted by time) in the catalog, each with its
    /// changes against the one before. Returns how many were recorded and what was skipped.
    pub(crate) async fn catalog_object_history(
        &self,
        records: &[SnapshotRecord],
        progress: &dyn Progress,
    ) -> RepoResult<(usize, Vec<String>)> {
        let mut previous: Option<&SnapshotRecord> = None;
        let mut skipped = Vec::new();
        let mut added = 0;
        for record in records {
            progress.advance(1);
            if previous.is_some_and(|p| p.doc.time >= record.doc.time) {
                skipped.push(format!(
                    "restore point {} of {} at {}: another one has the same time",
                    record.id,
                    record.object_key(),
                    record.doc.time
                ));
                continue;
            }
            let mut changes = self
                .diff(previous.map(|p| &p.doc), &record.doc)
                .await?
                .into_source()?;
            self.inner
                .catalog
                .commit_snapshot(
                    self.inner.repo,
                    record,
                    previous.map(|p| p.id),
                    &mut changes,
                )
                .await?;
            added += 1;
            previous = Some(record);
        }
        Ok((added, skipped))
    }

    /// What changed from `before` to `after` (both restore points of one object).
    async fn diff(
        &self,
        before: Option<&SnapshotDoc>,
        after: &SnapshotDoc,
    ) -> RepoResult<ChangeFile> {
        let mut out = ChangeFile::new()?;
        let mut old = match before {
            Some(doc) => self.items(doc).boxed(),
            None => futures::stream::empty().boxed(),
        };
        let mut new = self.items(after).boxed();
        let mut o: Option<Item> = old.next().await.transpose()?;
        let mut n: Option<Item> = new.next().await.transpose()?;
        loop {
            match (o.take(), n.take()) {
                (None, None) => break,
                (Some(a), None) => {
                    out.push(&ItemChange::Remove(a.id))?;
                    o = old.next().await.transpose()?;
                }
                (None, Some(b)) => {
                    out.push(&ItemChange::Put(b))?;
                    n = new.next().await.transpose()?;
                }
                (Some(a), Some(b)) => match a.id.cmp(&b.id) {
                    std::cmp::Ordering::Less => {
                        out.push(&ItemChange::Remove(a.id))?;
                        o = old.next().await.transpose()?;
                        n = Some(b);
                    }
                    std::cmp::Ordering::Greater => {
                        out.push(&ItemChange::Put(b))?;
                        n = new.next().await.transpose()?;
                        o = Some(a);
                    }
                    std::cmp::Ordering::Equal => {
                        if a.version_key()? != b.version_key()? {
                            out.push(&ItemChange::Put(b))?;
                        }
                        o = old.next().await.transpose()?;
                        n = new.next().await.transpose()?;
                    }
                },
            }
        }
        Ok(out)
    }
}
