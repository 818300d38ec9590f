//! The catalog: the state store's index of a repository, for fast browsing and deduplication.
//! It holds nothing the repository does not: `rebuild-catalog` recreates it from the repository
//! alone. The state store implements [`Catalog`] on SQLite and PostgreSQL
//! (`m365backup-store`); [`MemoryCatalog`] serves tests and tools that run without a state store.
//!
//! Items are kept as versions with a validity range in restore-point time: a version is valid
//! from the restore point that first held it until the next restore point of its object that
//! changed or deleted it. A folder of restore point `S` is thus the versions with
//! `valid_from ≤ S.time < valid_to` and the folder as parent, found by index, whatever the
//! number of restore points.

mod memory;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use memory::MemoryCatalog;

use crate::error::CatalogResult;
use crate::format::index::IndexedPack;
use crate::format::item::Item;
use crate::format::snapshot::SnapshotDoc;
use crate::ids::{BlobId, BlobKind, PackId, SnapshotId};

/// Which repository rows belong to (the registered repository's id).
pub type RepoKey = uuid::Uuid;

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: PackId,
    pub kind: BlobKind,
    pub offset: u64,
    pub length: u32,
    pub plain_length: u32,
}

/// A restore point as the catalog keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotRecord {
    pub id: SnapshotId,
    pub doc: SnapshotDoc,
}

impl SnapshotRecord {
    pub fn object_key(&self) -> String {
        self.doc.object.key()
    }
}

/// Which restore points to list.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// One protected object ([`crate::ProtectedObject::key`]).
    pub object_key: Option<String>,
    pub organization_id: Option<String>,
    /// Only restore points at or before this time.
    pub at_or_before: Option<DateTime<Utc>>,
    /// Only restore points at or after this time.
    pub at_or_after: Option<DateTime<Utc>>,
}

/// A change a restore point makes to its object's items.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::large_enum_variant)] // changes are spilled to disk in bulk, not held in vectors long
pub enum ItemChange {
    /// A new item, or a new state of an existing one.
    Put(Item),
    /// The item is gone.
    Remove(String),
}

/// Changes handed over in batches, so a restore point with millions of changed items is never
/// held in memory whole.
#[async_trait]
pub trait ChangeSource: Send {
    async fn next_batch(&mut self) -> CatalogResult<Option<Vec<ItemChange>>>;
}

/// Changes already in memory.
pub struct VecChanges(pub Option<Vec<ItemChange>>);

#[async_trait]
impl ChangeSource for VecChanges {
    async fn next_batch(&mut self) -> CatalogResult<Option<Vec<ItemChange>>> {
        Ok(self.0.take().filter(|v| !v.is_empty()))
    }
}

impl ItemChange {
    pub fn item_id(&self) -> &str {
        match self {
            ItemChange::Put(item) => &item.id,
            ItemChange::Remove(id) => id,
        }
    }
}

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Locations of the given blobs, in order (`None` where unknown).
    async fn lookup_blobs(
        &self,
        repo: RepoKey,
        ids: &[BlobId],
    ) -> CatalogResult<Vec<Option<BlobLocation>>>;

    /// Records packs and their blobs. A blob already known moves to the location given here.
    async fn add_packs(&self, repo: RepoKey, packs: &[IndexedPack]) -> CatalogResult<()>;

    /// Forgets packs and every blob row that points into them.
    async fn remove_packs(&self, repo: RepoKey, packs: &[PackId]) -> CatalogResult<()>;

    /// Total size of the repository's packs.
    async fn stored_bytes(&self, repo: RepoKey) -> CatalogResult<u64>;

    /// Records a restore point and its item changes in one transaction. Fails with
    /// [`crate::CatalogError::Conflict`] unless the object's latest restore point is
    /// `expected_latest` (so two writers of one object cannot both commit on the same parent).
    async fn commit_snapshot(
        &self,
        repo: RepoKey,
        snapshot: &SnapshotRecord,
        expected_latest: Option<SnapshotId>,
        changes: &mut dyn ChangeSource,
    ) -> CatalogResult<()>;

    /// Restore points, oldest first.
    async fn snapshots(
        &self,
        repo: RepoKey,
        filter: &SnapshotFilter,
    ) -> CatalogResult<Vec<SnapshotRecord>>;

    async fn snapshot(
        &self,
        repo: RepoKey,
        id: SnapshotId,
    ) -> CatalogResult<Option<SnapshotRecord>>;

    /// The items of `object_key` valid at `at` whose parent is `parent` (`None`: top level).
    async fn list_items(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        parent: Option<&str>,
    ) -> CatalogResult<Vec<Item>>;

    /// One item of `object_key` as it was at `at`.
    async fn get_item(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        item_id: &str,
    ) -> CatalogResult<Option<Item>>;

    /// The items of `object_key` under `parent` that existed before `at` but no longer at `at`
    /// (deleted, or moved elsewhere and then deleted), each as it last was.
    async fn list_deleted_items(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        parent: Option<&str>,
    ) -> CatalogResult<Vec<Item>>;

    /// One item of `object_key` as it last was at or before `at`, deleted or not.
    async fn get_item_last_seen(
        &self,
        repo: RepoKey,
        object_key: &str,
        at: DateTime<Utc>,
        item_id: &str,
    ) -> CatalogResult<Option<Item>>;

    /// Forgets restore points and the item versions no remaining restore point holds; a version
    /// valid past its object's new latest restore point becomes current again.
    async fn remove_snapshots(&self, repo: RepoKey, ids: &[SnapshotId]) -> CatalogResult<()>;

    /// Forgets everything about the repository.
    async fn clear(&self, repo: RepoKey) -> CatalogResult<()>;
}
