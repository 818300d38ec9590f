//! `check`: verifies a repository. Always: every index file opens, every indexed pack exists
//! with its size, every restore point's document and item pages open, and every chunk a file
//! refers to is indexed. With `read_data`: every pack (or a random share of them) is read
//! whole: its hash against its name, its header, and every blob's tag and keyed hash. A damaged
//! chunk is reported with the restore points and files that use it.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use rand::seq::SliceRandom;

use crate::catalog::{BlobLocation, SnapshotRecord};
use crate::error::{RepoError, RepoResult};
use crate::format::index::IndexedPack;
use crate::format::item::{Item, Page};
use crate::format::{pack, pack_key, DATA_DIR};
use crate::ids::{BlobId, BlobKind, PackId, SnapshotId};
use crate::progress::Progress;
use crate::repository::Repository;

/// How much content to read back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadData {
    None,
    /// This share (0–1) of the packs, chosen at random.
    Subset(f64),
    All,
}

#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    pub snapshots: usize,
    pub packs: usize,
    pub blobs: usize,
    pub packs_read: usize,
    /// Which packs were read (all of them, a random subset, or none).
    pub read_packs: Vec<PackId>,
    /// Packs no index lists: left by an interrupted writer; `prune` removes them.
    pub unindexed_packs: Vec<PackId>,
    /// Indexed blob copies no restore point uses (an interrupted writer's chunks and item
    /// pages, a second copy of a chunk two writers stored at once, what retention let go):
    /// not damage, space `prune` gives back.
    pub unreferenced_blobs: usize,
    /// Indexed packs none of whose blobs a restore point uses: `prune` deletes them whole.
    pub unreferenced_packs: usize,
    pub errors: Vec<String>,
    pub damaged: Vec<DamagedChunk>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty() && self.damaged.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct DamagedChunk {
    pub blob: BlobId,
    pub pack: PackId,
    pub reason: String,
    pub used_by: Vec<ChunkUse>,
}

/// A file (version) of a restore point that needs a damaged chunk.
#[derive(Clone, Debug)]
pub struct ChunkUse {
    pub snapshot: SnapshotId,
    pub object: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub item_id: String,
    /// The file's path within its object.
    pub path: String,
}

impl std::fmt::Display for DamagedChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chunk {} in pack {}: {}",
            self.blob, self.pack, self.reason
        )?;
        for u in &self.used_by {
            write!(
                f,
                "\n  used by restore point {} ({} at {}): {}",
                u.snapshot, u.object, u.time, u.path
            )?;
        }
        Ok(())
    }
}

impl Repository {
    pub async fn check(
        &self,
        read_data: ReadData,
        progress: &dyn Progress,
    ) -> RepoResult<CheckReport> {
        let mut report = CheckReport::default();
        // Index files.
        let indexes = self.load_indexes().await?;
        let mut packs: HashMap<PackId, IndexedPack> = HashMap::new();
        let mut blobs: HashMap<BlobId, BlobLocation> = HashMap::new();
        for (_, file) in indexes {
            for p in file.packs {
                for b in &p.blobs {
                    blobs.entry(b.id).or_insert(BlobLocation {
                        pack: p.id,
                        kind: b.kind,
                        offset: b.offset,
                        length: b.length,
                        plain_length: b.plain_length,
                    });
                }
                packs.insert(p.id, p);
            }
        }
        report.packs = packs.len();
        report.blobs = blobs.len();
        // Packs present.
        progress.phase("packs", None);
        let mut present: HashMap<PackId, u64> = HashMap::new();
        for entry in self.inner.backend.list(DATA_DIR).await? {
            match entry.name.parse::<PackId>() {
                Ok(id) => {
                    present.insert(id, entry.size);
                }
                Err(_) => report
                    .errors
                    .push(format!("unexpected object data/…/{}", entry.name)),
            }
        }
        for (id, p) in &packs {
            match present.get(id) {
                None => report
                    .errors
                    .push(format!("pack {id} is indexed but missing")),
                Some(size) if *size != p.size => report.errors.push(format!(
                    "pack {id} has {size} bytes, its index says {}",
                    p.size
                )),
                Some(_) => {}
            }
        }
        report.unindexed_packs = present
            .keys()
            .filter(|id| !packs.contains_key(id))
            .copied()
            .collect();
        // Restore points.
        let ids = self.snapshot_ids().await?;
        progress.phase("restore points", Some(ids.len() as u64));
        let mut records = Vec::new();
        for id in ids {
            match self.load_snapshot(id).await {
                Ok(doc) => records.push(SnapshotRecord { id, doc }),
                Err(e) => report.errors.push(format!("restore point {id}: {e}")),
            }
            progress.advance(1);
        }
        report.snapshots = records.len();
        let mut used: HashSet<BlobId> = HashSet::new();
        for record in &records {
            self.check_snapshot_items(record, &blobs, &mut used, &mut report)
                .await;
        }
        count_unreferenced(&packs, &used, &mut report);
        // Content.
        let mut to_read: Vec<PackId> = packs
            .keys()
            .filter(|id| present.contains_key(id))
            .copied()
            .collect();
        to_read.sort();
        match read_data {
            ReadData::None => to_read.clear(),
            ReadData::All => {}
            ReadData::Subset(share) => {
                let share = share.clamp(0.0, 1.0);
                let n = ((to_read.len() as f64) * share).ceil() as usize;
                to_read.shuffle(&mut rand::thread_rng());
                to_read.truncate(n.min(to_read.len()));
            }
        }
        progress.phase("read data", Some(to_read.len() as u64));
        let mut damaged: Vec<(BlobId, PackId, String)> = Vec::new();
        type Verified = RepoResult<(Vec<(BlobId, String)>, Vec<String>)>;
        let results: Vec<(PackId, Verified)> = futures::stream::iter(to_read)
            .map(|id| {
                let p = &packs[&id];
                async move { (id, self.verify_pack(p).await) }
            })
            .buffer_unordered(2)
            .inspect(|_| progress.advance(1))
            .collect()
            .await;
        for (id, result) in results {
            report.packs_read += 1;
            report.read_packs.push(id);
            match result {
                Ok((bad, problems)) => {
                    damaged.extend(bad.into_iter().map(|(b, reason)| (b, id, reason)));
                    report
                        .errors
                        .extend(problems.into_iter().map(|m| format!("pack {id}: {m}")));
                }
                Err(e) => report.errors.push(format!("pack {id}: {e}")),
            }
        }
        if !damaged.is_empty() {
            let wanted: HashSet<BlobId> = damaged.iter().map(|(b, _, _)| *b).collect();
            let uses = self.find_uses(&records, &wanted, &blobs).await?;
            for (blob, pack, reason) in damaged {
                report.damaged.push(DamagedChunk {
                    blob,
                    pack,
                    reason,
                    used_by: uses.get(&blob).cloned().unwrap_or_default(),
                });
            }
        }
        Ok(report)
    }

    async fn read_page_at(
        &self,
        id: BlobId,
        blobs: &HashMap<BlobId, BlobLocation>,
    ) -> RepoResult<Page> {
        let location = blobs.get(&id).ok_or(RepoError::UnknownBlob(id))?;
        let plain = self.read_blob_at(BlobKind::Tree, id, location).await?;
        serde_json::from_slice(&plain)
            .map_err(|e| RepoError::damaged(format!("item page {id}"), e.to_string()))
    }

    async fn check_snapshot_items(
        &self,
        record: &SnapshotRecord,
        blobs: &HashMap<BlobId, BlobLocation>,
        used: &mut HashSet<BlobId>,
        report: &mut CheckReport,
    ) {
        used.extend(record.doc.pages.iter().copied());
        let what = format!(
            "restore point {} ({} at {})",
            record.id, record.doc.object.name, record.doc.time
        );
        let mut last_id: Option<String> = None;
        for page_id in &record.doc.pages {
            let page = match self.read_page_at(*page_id, blobs).await {
                Ok(page) => page,
                Err(e) => {
                    report
                        .errors
                        .push(format!("{what}: item page {page_id}: {e}"));
                    continue;
                }
            };
            for item in page.items {
                if last_id.as_deref().is_some_and(|l| l >= item.id.as_str()) {
                    report
                        .errors
                        .push(format!("{what}: items out of order at {}", item.id));
                }
                for chunk in item.chunks() {
                    used.insert(chunk.0);
                    if !blobs.contains_key(&chunk.0) {
                        report.errors.push(format!(
                            "{what}: file {} ({}) needs chunk {}, which is missing",
                            item.name, item.id, chunk.0
                        ));
                    }
                }
                last_id = Some(item.id);
            }
        }
    }

    /// Reads a pack whole; returns its damaged blobs and problems of the pack as a whole.
    async fn verify_pack(
        &self,
        p: &IndexedPack,
    ) -> RepoResult<(Vec<(BlobId, String)>, Vec<String>)> {
        let bytes = self.inner.backend.get(&pack_key(&p.id)).await?;
        let keys = self.inner.keys.clone();
        let p = p.clone();
        tokio::task::spawn_blocking(move || {
            let mut bad = Vec::new();
            let mut problems = Vec::new();
            match pack::read_header(&keys, &bytes) {
                Ok(entries) => {
                    let listed: HashSet<(BlobId, u64)> =
                        entries.iter().map(|e| (e.id, e.offset)).collect();
                    if p.blobs.iter().any(|b| !listed.contains(&(b.id, b.offset))) {
                        problems.push("its header and its index entry disagree".to_string());
                    }
                }
                Err(reason) => problems.push(format!("header: {reason}")),
            }
            for b in &p.blobs {
                let end = b.offset as usize + b.length as usize;
                let Some(stored) = bytes.get(b.offset as usize..end) else {
                    bad.push((b.id, "lies past the end of the pack".into()));
                    continue;
                };
                match keys.decode_blob(b.kind, &b.id, stored) {
                    Ok(plain) if plain.len() == b.plain_length as usize => {}
                    Ok(plain) => bad.push((
                        b.id,
                        format!("{} bytes, the index says {}", plain.len(), b.plain_length),
                    )),
                    Err(reason) => bad.push((b.id, reason)),
                }
            }
            if blake3::hash(&bytes).as_bytes() != &p.id.0 && bad.is_empty() && problems.is_empty() {
                problems.push("its content does not match its name".into());
            }
            (bad, problems)
        })
        .await
        .map_err(RepoError::task("verify"))
    }

    /// Which files of which restore points use the given chunks.
    async fn find_uses(
        &self,
        records: &[SnapshotRecord],
        wanted: &HashSet<BlobId>,
        blobs: &HashMap<BlobId, BlobLocation>,
    ) -> RepoResult<HashMap<BlobId, Vec<ChunkUse>>> {
        let mut uses: HashMap<BlobId, Vec<ChunkUse>> = HashMap::new();
        for record in records {
            let mut names: HashMap<String, (Option<String>, String)> = HashMap::new();
            let mut hits: Vec<(BlobId, Item)> = Vec::new();
            let pages: Vec<Page> = futures::stream::iter(record.doc.pages.iter())
                .then(|id| self.read_page_at(*id, blobs))
                .filter_map(|p| async move { p.ok() })
                .collect()
                .await;
            for item in pages.into_iter().flat_map(|p| p.items) {
                names.insert(item.id.clone(), (item.parent_id.clone(), item.name.clone()));
                for chunk in item.chunks() {
                    if wanted.contains(&chunk.0) {
                        hits.push((chunk.0, item.clone()));
                    }
                }
            }
            for (blob, item) in hits {
                let list = uses.entry(blob).or_default();
                if list
                    .iter()
                    .any(|u| u.snapshot == record.id && u.item_id == item.id)
                {
                    continue;
                }
                list.push(ChunkUse {
                    snapshot: record.id,
                    object: record.doc.object.name.clone(),
                    time: record.doc.time,
                    item_id: item.id.clone(),
                    path: path_of(&item, &names),
                });
            }
        }
        Ok(uses)
    }
}

/// Counts the indexed blob copies and packs nothing uses. A blob listed in several packs
/// counts once as used (its first copy in pack order, the one `prune` keeps), the others as
/// unreferenced.
fn count_unreferenced(
    packs: &HashMap<PackId, IndexedPack>,
    used: &HashSet<BlobId>,
    report: &mut CheckReport,
) {
    let mut ordered: Vec<&IndexedPack> = packs.values().collect();
    ordered.sort_by_key(|p| p.id);
    let mut kept: HashSet<BlobId> = HashSet::new();
    for p in ordered {
        let mut live = 0;
        for b in &p.blobs {
            if used.contains(&b.id) && kept.insert(b.id) {
                live += 1;
            } else {
                report.unreferenced_blobs += 1;
            }
        }
        if live == 0 {
            report.unreferenced_packs += 1;
        }
    }
}

/// `folder/sub/name` from the parents recorded in the same restore point.
fn path_of(item: &Item, names: &HashMap<String, (Option<String>, String)>) -> String {
    let mut parts = vec![item.name.clone()];
    let mut parent = item.parent_id.clone();
    let mut guard = 0;
    while let Some(p) = parent {
        guard += 1;
        match names.get(&p) {
            Some((next, name)) if guard < 1000 => {
                parts.push(name.clone());
                parent = next.clone();
            }
            _ => break,
        }
    }
    parts.reverse();
    parts.join("/")
}
