//! `prune`: applies the retention policy, then removes what no restore point refers to.
//!
//! Under an exclusive lock (writers hold shared ones, so none is at work):
//! 1. retention: `SnapshotBased` forgets restore points older than the period; `ItemLevel`
//!    rewrites restore points without the item versions last modified before it;
//! 2. mark every blob the remaining restore points use;
//! 3. delete packs nothing uses, repack packs mostly unused (their used blobs are copied as
//!    stored, after verification, into new packs), delete packs no index lists;
//! 4. write the index anew, then delete the old index files, the catalog rows, and the packs.
//!
//! Packs younger than the grace period are never touched: a writer whose lock looks stale may
//! still be filling them. Each step leaves the repository consistent if interrupted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::blobstore::{InFlightRefs, StoreStats};
use crate::catalog::SnapshotRecord;
use crate::error::{RepoError, RepoResult};
use crate::format::index::IndexedPack;
use crate::format::item::ItemKind;
use crate::format::{index_key, pack_key, snapshot_key, DATA_DIR, INDEX_DIR};
use crate::ids::{BlobId, PackId, SnapshotId};
use crate::lock;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::retention::{RetentionPolicy, RetentionType};
use crate::writer::PageWriter;

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub retention: Option<RetentionPolicy>,
    /// "Now" for the retention period (a parameter so tests can move time).
    pub now: DateTime<Utc>,
    /// Packs younger than this are left alone.
    pub grace: Duration,
    /// A pack is repacked when more than this share of its bytes is unused.
    pub max_unused: f64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            retention: None,
            now: Utc::now(),
            grace: Duration::from_secs(3600),
            max_unused: 0.2,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub restore_points_removed: usize,
    pub restore_points_rewritten: usize,
    pub item_versions_removed: u64,
    pub packs_deleted: usize,
    pub packs_repacked: usize,
    pub unindexed_packs_deleted: usize,
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub stale_locks_removed: usize,
}

enum Fate {
    Keep,
    Delete,
    Repack,
}

impl Repository {
    pub async fn prune(
        &self,
        options: &PruneOptions,
        progress: &dyn Progress,
    ) -> RepoResult<PruneReport> {
        let guard = lock::acquire(&self.inner.backend, &self.inner.keys, true, "prune").await?;
        let result = self.prune_locked(options, progress).await;
        if let Err(e) = guard.release().await {
            tracing::warn!(error = %m365backup_core::Chain(&e), "releasing the prune lock failed");
        }
        result
    }

    async fn prune_locked(
        &self,
        options: &PruneOptions,
        progress: &dyn Progress,
    ) -> RepoResult<PruneReport> {
        let mut report = PruneReport::default();
        let backend = &self.inner.backend;
        let catalog = &self.inner.catalog;
        let repo = self.inner.repo;

        // 1. Retention.
        progress.phase("retention", None);
        let mut by_object = self.load_snapshots_by_object().await?;
        if let Some(policy) = options.retention {
            if let Some(cutoff) = policy.cutoff(options.now) {
                match policy.kind {
                    RetentionType::SnapshotBased => {
                        let old: Vec<SnapshotId> = by_object
                            .values()
                            .flatten()
                            .filter(|r| r.doc.time < cutoff)
                            .map(|r| r.id)
                            .collect();
                        // Catalog first: it never names a restore point the repository lacks.
                        catalog.remove_snapshots(repo, &old).await?;
                        for id in &old {
                            backend.delete(&snapshot_key(id)).await?;
                        }
                        for list in by_object.values_mut() {
                            list.retain(|r| r.doc.time >= cutoff);
                        }
                        report.restore_points_removed = old.len();
                    }
                    RetentionType::ItemLevel => {
                        self.item_level_retention(&mut by_object, cutoff, &mut report)
                            .await?;
                    }
                }
            }
        }

        // 2. Mark.
        progress.phase(
            "mark",
            Some(by_object.values().map(|v| v.len() as u64).sum()),
        );
        let mut used: HashSet<BlobId> = HashSet::new();
        for record in by_object.values().flatten() {
            used.extend(record.doc.pages.iter().copied());
            let mut items = self.items(&record.doc).boxed();
            while let Some(item) = items.try_next().await? {
                used.extend(item.chunks().map(|c| c.0));
            }
            progress.advance(1);
        }

        // 3. Sweep.
        progress.phase("sweep", None);
        let mut present: HashMap<PackId, (u64, DateTime<Utc>)> = HashMap::new();
        for entry in backend.list(DATA_DIR).await? {
            if let Ok(id) = entry.name.parse::<PackId>() {
                present.insert(id, (entry.size, entry.last_modified));
            }
        }
        let young = |id: &PackId| {
            present.get(id).is_some_and(|(_, modified)| {
                options
                    .now
                    .signed_duration_since(*modified)
                    .to_std()
                    .unwrap_or_default()
                    < options.grace
            })
        };
        let indexes = self.load_indexes().await?;
        let mut packs: BTreeMap<PackId, IndexedPack> = BTreeMap::new();
        for (_, file) in &indexes {
            for p in &file.packs {
                packs.insert(p.id, p.clone());
            }
        }
        if let Some(missing) = packs.keys().find(|id| !present.contains_key(id)) {
            return Err(RepoError::damaged(
                format!("pack {missing}"),
                "it is indexed but missing; run `check` before pruning",
            ));
        }
        // The copy of each used blob that stays: the first pack listing it.
        let mut kept_copy: HashMap<BlobId, PackId> = HashMap::new();
        for p in packs.values() {
            for b in &p.blobs {
                if used.contains(&b.id) {
                    kept_copy.entry(b.id).or_insert(p.id);
                }
            }
        }
        let mut fates: HashMap<PackId, Fate> = HashMap::new();
        for p in packs.values() {
            let total: u64 = p.blobs.iter().map(|b| b.length as u64).sum();
            let live: u64 = p
                .blobs
                .iter()
                .filter(|b| kept_copy.get(&b.id) == Some(&p.id))
                .map(|b| b.length as u64)
                .sum();
            let fate = if young(&p.id) {
                Fate::Keep
            } else if live == 0 {
                Fate::Delete
            } else if total > 0 && (total - live) as f64 / total as f64 > options.max_unused {
                Fate::Repack
            } else {
                Fate::Keep
            };
            fates.insert(p.id, fate);
        }
        // Repack: copy the used blobs, as stored, into new packs (each verified first).
        let repack: Vec<PackId> = fates
            .iter()
            .filter(|(_, f)| matches!(f, Fate::Repack))
            .map(|(id, _)| *id)
            .collect();
        progress.phase("repack", Some(repack.len() as u64));
        for id in &repack {
            let p = &packs[id];
            let bytes = backend.get(&pack_key(id)).await?;
            for b in p.blobs.iter().filter(|b| kept_copy.get(&b.id) == Some(id)) {
                let stored = bytes
                    .get(b.offset as usize..b.offset as usize + b.length as usize)
                    .ok_or_else(|| {
                        RepoError::damaged(format!("pack {id}"), "shorter than its index says")
                    })?;
                self.inner
                    .keys
                    .decode_blob(b.kind, &b.id, stored)
                    .map_err(|reason| RepoError::DamagedBlob {
                        blob: b.id,
                        pack: *id,
                        reason,
                    })?;
                self.inner
                    .blobs
                    .append_copy(b.kind, b.id, stored, b.plain_length)
                    .await?;
            }
            progress.advance(1);
        }
        self.inner.blobs.flush().await?;

        // 4. The index anew (old kept packs and the new ones), then the old files go.
        let doomed: HashSet<PackId> = fates
            .iter()
            .filter(|(_, f)| !matches!(f, Fate::Keep))
            .map(|(id, _)| *id)
            .collect();
        let unindexed: Vec<PackId> = present
            .keys()
            .filter(|id| !packs.contains_key(id) && !young(id))
            .copied()
            .collect();
        let old_index_names = backend.list(INDEX_DIR).await?;
        let needs_rewrite = !doomed.is_empty() || old_index_names.len() > 64;
        if needs_rewrite {
            let current = self.load_indexes().await?;
            let mut keep: BTreeMap<PackId, IndexedPack> = BTreeMap::new();
            for (_, file) in current {
                for p in file.packs {
                    if !doomed.contains(&p.id) {
                        keep.insert(p.id, p);
                    }
                }
            }
            let mut written: HashSet<String> = HashSet::new();
            let mut batch: Vec<IndexedPack> = Vec::new();
            let mut blobs_in_batch = 0;
            for p in keep.into_values() {
                blobs_in_batch += p.blobs.len();
                batch.push(p);
                if blobs_in_batch >= 20_000 {
                    written.insert(
                        self.inner
                            .blobs
                            .write_index(&std::mem::take(&mut batch))
                            .await?
                            .to_hex(),
                    );
                    blobs_in_batch = 0;
                }
            }
            if !batch.is_empty() {
                written.insert(self.inner.blobs.write_index(&batch).await?.to_hex());
            }
            // An old file with the same content as a new one has its name: it stays.
            for old in old_index_names
                .iter()
                .filter(|e| !written.contains(&e.name))
            {
                if let Ok(id) = old.name.parse() {
                    backend.delete(&index_key(&id)).await?;
                }
            }
        }
        let doomed_list: Vec<PackId> = doomed.iter().copied().collect();
        catalog.remove_packs(repo, &doomed_list).await?;
        for id in &doomed_list {
            let p = &packs[id];
            report.bytes_freed += p.size;
            report.blobs_removed += p
                .blobs
                .iter()
                .filter(|b| kept_copy.get(&b.id) != Some(id))
                .count();
            match fates[id] {
                Fate::Delete => report.packs_deleted += 1,
                Fate::Repack => report.packs_repacked += 1,
                Fate::Keep => {}
            }
            backend.delete(&pack_key(id)).await?;
        }
        for id in &unindexed {
            report.bytes_freed += present[id].0;
            backend.delete(&pack_key(id)).await?;
        }
        report.unindexed_packs_deleted = unindexed.len();
        report.stale_locks_removed = lock::remove_stale(backend, &self.inner.keys).await?;
        tracing::info!(?report, "prune done");
        Ok(report)
    }

    /// Rewrites restore points without item versions last modified before `cutoff`.
    async fn item_level_retention(
        &self,
        by_object: &mut BTreeMap<String, Vec<SnapshotRecord>>,
        cutoff: DateTime<Utc>,
        report: &mut PruneReport,
    ) -> RepoResult<()> {
        let catalog = &self.inner.catalog;
        let repo = self.inner.repo;
        for records in by_object.values_mut() {
            let mut next: Vec<SnapshotRecord> = Vec::new();
            let mut replaced: Vec<SnapshotId> = Vec::new();
            for record in records.iter() {
                match self.without_expired(record, cutoff).await? {
                    None => next.push(record.clone()),
                    Some((removed, None)) => {
                        report.item_versions_removed += removed;
                        report.restore_points_removed += 1;
                        replaced.push(record.id);
                    }
                    Some((removed, Some(doc))) => {
                        report.item_versions_removed += removed;
                        report.restore_points_rewritten += 1;
                        let id = self.write_snapshot(&doc).await?;
                        replaced.push(record.id);
                        next.push(SnapshotRecord { id, doc });
                    }
                }
            }
            if replaced.is_empty() {
                continue;
            }
            // The object's history is recorded again from its new restore points; the old
            // documents go last, so an interruption leaves both, never neither.
            let all_old: Vec<SnapshotId> = records.iter().map(|r| r.id).collect();
            catalog.remove_snapshots(repo, &all_old).await?;
            self.catalog_object_history(&next, &crate::progress::Quiet)
                .await?;
            for id in replaced {
                self.inner.backend.delete(&snapshot_key(&id)).await?;
            }
            *records = next;
        }
        Ok(())
    }

    /// A restore point without its expired item versions: `None` when nothing expired;
    /// `Some((removed, None))` when nothing is left.
    async fn without_expired(
        &self,
        record: &SnapshotRecord,
        cutoff: DateTime<Utc>,
    ) -> RepoResult<Option<(u64, Option<crate::format::snapshot::SnapshotDoc>)>> {
        let expired = |modified: Option<DateTime<Utc>>| modified.is_some_and(|m| m < cutoff);
        // Pass 1: which folders stay (those not expired, and the ancestors of whatever stays).
        let mut folder_parent: HashMap<String, Option<String>> = HashMap::new();
        let mut seeds: Vec<Option<String>> = Vec::new();
        let mut removed = 0u64;
        let mut items = self.items(&record.doc).boxed();
        while let Some(item) = items.try_next().await? {
            match item.kind {
                ItemKind::Folder => {
                    if !expired(item.modified) {
                        seeds.push(Some(item.id.clone()));
                    }
                    folder_parent.insert(item.id.clone(), item.parent_id.clone());
                }
                ItemKind::File => {
                    removed += item.versions.iter().filter(|v| expired(v.modified)).count() as u64;
                    if expired(item.modified) {
                        removed += 1;
                    } else {
                        seeds.push(item.parent_id.clone());
                    }
                }
            }
        }
        let mut kept_folders: HashSet<String> = HashSet::new();
        for seed in seeds {
            let mut at = seed;
            while let Some(id) = at {
                if !kept_folders.insert(id.clone()) {
                    break;
                }
                at = folder_parent.get(&id).cloned().flatten();
            }
        }
        let dropped_folders = folder_parent
            .keys()
            .filter(|f| !kept_folders.contains(*f))
            .count() as u64;
        removed += dropped_folders;
        if removed == 0 {
            return Ok(None);
        }
        // Pass 2: the pages again, without what expired.
        let mut pages = PageWriter::default();
        let mut stats = StoreStats::default();
        let mut refs = InFlightRefs::default();
        let mut items = self.items(&record.doc).boxed();
        while let Some(mut item) = items.try_next().await? {
            let keep = match item.kind {
                ItemKind::Folder => kept_folders.contains(&item.id),
                ItemKind::File => !expired(item.modified),
            };
            if keep {
                item.versions.retain(|v| !expired(v.modified));
                pages.push(self, item, &mut stats, &mut refs).await?;
            }
        }
        let (page_ids, summary) = pages.finish(self, &mut stats, &mut refs).await?;
        self.inner.blobs.make_durable(&mut refs).await?;
        if summary.items == 0 {
            return Ok(Some((removed, None)));
        }
        let mut doc = record.doc.clone();
        doc.pages = page_ids;
        doc.summary = summary;
        doc.written_at = Utc::now();
        Ok(Some((removed, Some(doc))))
    }
}
