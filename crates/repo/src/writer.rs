//! Writing a restore point of one protected object.
//!
//! A writer starts from the object's latest restore point (its parent) and records only what
//! changed: files stored with their content, folders, deletions. Every item it is not told
//! about is carried over from the parent by id, without reading any content. `commit` makes the
//! content durable, merges the parent's items with the changes (both sorted by id) into new item
//! pages, writes the snapshot document and then records the restore point in the catalog; until
//! the document is written, nothing of the restore point is visible.
//!
//! Many tasks may call one writer at once (`&self` methods); several writers (of different
//! objects, or different jobs) may work on one repository at once.

use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::{Stream, StreamExt};

use crate::blobstore::{InFlightRefs, StoreStats};
use crate::catalog::{ChangeSource, ItemChange, SnapshotRecord};
use crate::error::{CatalogError, CatalogResult, RepoError, RepoResult};
use crate::format::config::FORMAT_VERSION;
use crate::format::item::{ends_page, Content, Item, ItemKind, Page, PAGE_MAX_BYTES};
use crate::format::snapshot::{ProtectedObject, SnapshotDoc, TreeSummary, WriteStats};
use crate::ids::{BlobId, BlobKind};
use crate::lock::{self, LockGuard};
use crate::repository::Repository;
use crate::spill::ChangeBuffer;

/// Which restore point a new one builds on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The object's latest restore point (none for its first backup).
    #[default]
    Latest,
    /// None: every item must be given (a full backup).
    None,
}

/// What a new restore point is of.
#[derive(Clone, Debug)]
pub struct SnapshotSpec {
    pub object: ProtectedObject,
    /// The restore point's time (default: now); later than the parent's.
    pub time: Option<DateTime<Utc>>,
    pub parent: ParentChoice,
    pub job_id: Option<String>,
    pub session_id: Option<String>,
}

impl SnapshotSpec {
    pub fn new(object: ProtectedObject) -> Self {
        Self {
            object,
            time: None,
            parent: ParentChoice::Latest,
            job_id: None,
            session_id: None,
        }
    }
}

struct WriterState {
    changes: ChangeBuffer,
    stats: StoreStats,
    refs: InFlightRefs,
}

pub struct SnapshotWriter {
    repo: Repository,
    object: ProtectedObject,
    time: DateTime<Utc>,
    parent: Option<SnapshotRecord>,
    job_id: Option<String>,
    session_id: Option<String>,
    failures_at_start: u64,
    state: tokio::sync::Mutex<WriterState>,
    lock: Option<LockGuard>,
}

impl Repository {
    /// Starts a restore point. Takes a shared lock on the repository (prune waits for it).
    pub async fn begin_snapshot(&self, spec: SnapshotSpec) -> RepoResult<SnapshotWriter> {
        let object = spec.object;
        if object.organization_id.is_empty() || object.id.is_empty() {
            return Err(RepoError::Invalid(
                "a protected object needs an organization and an id".into(),
            ));
        }
        // Times are kept to the millisecond, as the catalog keeps them.
        let time = spec
            .time
            .unwrap_or_else(Utc::now)
            .duration_trunc(TimeDelta::milliseconds(1))
            .map_err(|e| RepoError::Invalid(format!("restore point time: {e}")))?;
        let parent = match spec.parent {
            ParentChoice::None => None,
            ParentChoice::Latest => self.latest_snapshot(&object.key(), None).await?,
        };
        if let Some(p) = &parent {
            if p.doc.time >= time {
                return Err(RepoError::Invalid(format!(
                    "a restore point of {} at {time} must be later than its latest one ({})",
                    object.key(),
                    p.doc.time
                )));
            }
        }
        let lock = lock::acquire(&self.inner.backend, &self.inner.keys, false, "writer").await?;
        self.inner.active_writers.fetch_add(1, Ordering::SeqCst);
        Ok(SnapshotWriter {
            repo: self.clone(),
            object,
            time,
            parent,
            job_id: spec.job_id,
            session_id: spec.session_id,
            failures_at_start: self.inner.blobs.failure_count(),
            state: tokio::sync::Mutex::new(WriterState {
                changes: ChangeBuffer::default(),
                stats: StoreStats::default(),
                refs: InFlightRefs::default(),
            }),
            lock: Some(lock),
        })
    }
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotWriter({} at {})", self.object.key(), self.time)
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        self.repo
            .inner
            .active_writers
            .fetch_sub(1, Ordering::SeqCst);
    }
}

impl SnapshotWriter {
    /// The restore point this one builds on.
    pub fn parent(&self) -> Option<&SnapshotRecord> {
        self.parent.as_ref()
    }

    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }

    /// An item as the parent restore point has it (to decide whether it changed).
    pub async fn parent_item(&self, item_id: &str) -> RepoResult<Option<Item>> {
        match &self.parent {
            Some(parent) => self.repo.item(parent, item_id).await,
            None => Ok(None),
        }
    }

    /// Stores a stream of content (chunked, deduplicated, compressed, encrypted); the result
    /// goes into an [`Item`]'s `content` or `versions`.
    pub async fn store_content<S>(&self, content: S) -> RepoResult<Content>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let mut stats = StoreStats::default();
        let mut refs = InFlightRefs::default();
        let stored = self
            .repo
            .inner
            .blobs
            .store_stream(content, &mut stats, &mut refs)
            .await?;
        let mut st = self.state.lock().await;
        st.stats.add(&stats);
        st.refs.0.extend(refs.0);
        if st.refs.0.len() > 100_000 {
            let WriterState { refs, .. } = &mut *st;
            self.repo.inner.blobs.trim(refs);
        }
        Ok(stored)
    }

    /// Records a new or changed item (its content already stored).
    pub async fn put_item(&self, item: Item) -> RepoResult<()> {
        item.validate().map_err(RepoError::Invalid)?;
        self.state.lock().await.changes.push(ItemChange::Put(item))
    }

    /// Stores a file's content and records the file; returns the item as recorded.
    pub async fn put_file<S>(&self, mut item: Item, content: S) -> RepoResult<Item>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        if item.kind != ItemKind::File {
            return Err(RepoError::Invalid(format!("{} is not a file", item.id)));
        }
        item.content = Some(self.store_content(content).await?);
        self.put_item(item.clone()).await?;
        Ok(item)
    }

    /// Records that an item is gone.
    pub async fn delete_item(&self, item_id: &str) -> RepoResult<()> {
        if item_id.is_empty() {
            return Err(RepoError::Invalid("an item id must not be empty".into()));
        }
        self.state
            .lock()
            .await
            .changes
            .push(ItemChange::Remove(item_id.to_owned()))
    }

    /// Makes the restore point durable and visible. `delta_state` is kept for the next run.
    pub async fn commit(mut self, delta_state: Option<String>) -> RepoResult<SnapshotRecord> {
        let repo = self.repo.clone();
        let inner = &repo.inner;
        let expected_parent = self.parent.as_ref().map(|p| p.id);
        let object_key = self.object.key();
        if repo.latest_snapshot(&object_key, None).await?.map(|s| s.id) != expected_parent {
            return Err(RepoError::Conflict(format!(
                "another restore point of {object_key} was committed while this one was written"
            )));
        }
        let WriterState {
            changes,
            mut stats,
            mut refs,
        } = std::mem::replace(
            &mut *self.state.lock().await,
            WriterState {
                changes: ChangeBuffer::default(),
                stats: StoreStats::default(),
                refs: InFlightRefs::default(),
            },
        );
        // 1. Content first: every chunk this restore point refers to, written and indexed.
        inner.blobs.make_durable(&mut refs).await?;
        // 2. The item pages: the parent's items merged with the changes.
        let merged = self.merge(changes, &mut stats, &mut refs).await?;
        inner.blobs.make_durable(&mut refs).await?;
        if inner.blobs.failure_count() != self.failures_at_start {
            return Err(RepoError::Internal(
                "a pack or index write failed while this restore point was written; it was not committed".into(),
            ));
        }
        // 3. The snapshot document: from here on, the restore point exists.
        let doc = SnapshotDoc {
            version: FORMAT_VERSION,
            object: self.object.clone(),
            time: self.time,
            parent: expected_parent,
            job_id: self.job_id.clone(),
            session_id: self.session_id.clone(),
            delta_state,
            pages: merged.pages,
            summary: merged.summary,
            stats: WriteStats {
                read_bytes: stats.read_bytes,
                new_bytes: stats.new_bytes,
                stored_bytes: stats.stored_bytes,
                new_chunks: stats.new_chunks,
                added_items: merged.added,
                changed_items: merged.changed,
                deleted_items: merged.deleted,
            },
            hostname: crate::lock::hostname(),
            written_at: Utc::now(),
        };
        let id = repo.write_snapshot(&doc).await?;
        let record = SnapshotRecord { id, doc };
        // 4. The catalog, in one transaction.
        let mut source = merged.catalog_changes.into_source()?;
        if let Err(e) = inner
            .catalog
            .commit_snapshot(inner.repo, &record, expected_parent, &mut source)
            .await
        {
            // Not recorded: take the document back so the repository and catalog agree.
            if let Err(undo) = inner
                .backend
                .delete(&crate::format::snapshot_key(&id))
                .await
            {
                tracing::warn!(snapshot = %id, error = %m365backup_core::Chain(&undo), "could not remove an uncommitted snapshot");
            }
            return Err(match e {
                CatalogError::Conflict(m) => RepoError::Conflict(m),
                other => RepoError::Catalog(other),
            });
        }
        if let Some(lock) = self.lock.take() {
            if let Err(e) = lock.release().await {
                tracing::warn!(error = %m365backup_core::Chain(&e), "releasing the repository lock failed");
            }
        }
        tracing::info!(object = %object_key, snapshot = %id, items = record.doc.summary.items, "restore point committed");
        Ok(record)
    }

    async fn merge(
        &self,
        changes: ChangeBuffer,
        stats: &mut StoreStats,
        refs: &mut InFlightRefs,
    ) -> RepoResult<Merged> {
        let mut pages = PageWriter::default();
        let mut catalog_changes = ChangeFile::new()?;
        let (mut added, mut changed, mut deleted) = (0u64, 0u64, 0u64);
        let mut parent_items = match &self.parent {
            Some(p) => self.repo.items(&p.doc).boxed(),
            None => futures::stream::empty().boxed(),
        };
        let mut changes = changes.into_sorted();
        let mut old = parent_items.next().await.transpose()?;
        let mut change = changes.next().transpose()?;
        loop {
            let order = match (&old, &change) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(o), Some(c)) => o.id.as_str().cmp(c.item_id()),
            };
            match order {
                // Unchanged: carried over as it is.
                std::cmp::Ordering::Less => {
                    if let Some(item) = old.take() {
                        pages.push(&self.repo, item, stats, refs).await?;
                    }
                    old = parent_items.next().await.transpose()?;
                }
                // New.
                std::cmp::Ordering::Greater => {
                    if let Some(ItemChange::Put(new)) = change.take() {
                        added += 1;
                        catalog_changes.push(&ItemChange::Put(new.clone()))?;
                        pages.push(&self.repo, new, stats, refs).await?;
                    }
                    change = changes.next().transpose()?;
                }
                // Changed (unless the new state is the same) or deleted.
                std::cmp::Ordering::Equal => {
                    match (old.take(), change.take()) {
                        (Some(before), Some(ItemChange::Put(new))) => {
                            if before.version_key()? != new.version_key()? {
                                changed += 1;
                                catalog_changes.push(&ItemChange::Put(new.clone()))?;
                            }
                            pages.push(&self.repo, new, stats, refs).await?;
                        }
                        (_, Some(ItemChange::Remove(id))) => {
                            deleted += 1;
                            catalog_changes.push(&ItemChange::Remove(id))?;
                        }
                        // The order said both are there.
                        _ => {}
                    }
                    old = parent_items.next().await.transpose()?;
                    change = changes.next().transpose()?;
                }
            }
        }
        let (page_ids, summary) = pages.finish(&self.repo, stats, refs).await?;
        Ok(Merged {
            pages: page_ids,
            summary,
            catalog_changes,
            added,
            changed,
            deleted,
        })
    }
}

struct Merged {
    pages: Vec<BlobId>,
    summary: TreeSummary,
    catalog_changes: ChangeFile,
    added: u64,
    changed: u64,
    deleted: u64,
}

/// Cuts a sorted stream of items into pages and stores them as tree blobs.
#[derive(Default)]
pub(crate) struct PageWriter {
    page: Page,
    page_bytes: usize,
    pages: Vec<BlobId>,
    summary: TreeSummary,
    last_id: Option<String>,
}

impl PageWriter {
    pub async fn push(
        &mut self,
        repo: &Repository,
        item: Item,
        stats: &mut StoreStats,
        refs: &mut InFlightRefs,
    ) -> RepoResult<()> {
        debug_assert!(self
            .last_id
            .as_deref()
            .is_none_or(|last| last < item.id.as_str()));
        self.last_id = Some(item.id.clone());
        self.summary.items += 1;
        match item.kind {
            ItemKind::File => {
                self.summary.files += 1;
                self.summary.bytes += item.content.as_ref().map_or(item.size, |c| c.size);
            }
            ItemKind::Folder => self.summary.folders += 1,
        }
        self.page_bytes += 512 + item.chunks().count() * 80;
        let ends = ends_page(&repo.inner.keys, &item.id);
        self.page.items.push(item);
        if ends || self.page_bytes > PAGE_MAX_BYTES {
            self.cut(repo, stats, refs).await?;
        }
        Ok(())
    }

    async fn cut(
        &mut self,
        repo: &Repository,
        stats: &mut StoreStats,
        refs: &mut InFlightRefs,
    ) -> RepoResult<()> {
        if self.page.items.is_empty() {
            return Ok(());
        }
        let page = std::mem::take(&mut self.page);
        self.page_bytes = 0;
        let json = serde_json::to_vec(&page).map_err(RepoError::encode("item page"))?;
        let id = repo
            .inner
            .blobs
            .store_blob(BlobKind::Tree, json, stats, refs)
            .await?;
        self.pages.push(id);
        Ok(())
    }

    pub async fn finish(
        mut self,
        repo: &Repository,
        stats: &mut StoreStats,
        refs: &mut InFlightRefs,
    ) -> RepoResult<(Vec<BlobId>, TreeSummary)> {
        self.cut(repo, stats, refs).await?;
        Ok((self.pages, self.summary))
    }
}

/// The catalog's share of a commit, kept in a temporary file and handed over in batches.
pub(crate) struct ChangeFile {
    out: BufWriter<std::fs::File>,
    count: usize,
}

impl ChangeFile {
    pub fn new() -> RepoResult<Self> {
        let file =
            tempfile::tempfile().map_err(|e| RepoError::io("creating a temporary file", e))?;
        Ok(Self {
            out: BufWriter::new(file),
            count: 0,
        })
    }

    pub fn push(&mut self, change: &ItemChange) -> RepoResult<()> {
        let io = |e| RepoError::io("writing item changes to a temporary file", e);
        serde_json::to_writer(&mut self.out, change).map_err(|e| io(e.into()))?;
        self.out.write_all(b"\n").map_err(io)?;
        self.count += 1;
        Ok(())
    }

    pub fn into_source(self) -> RepoResult<FileChanges> {
        let io = |e| RepoError::io("reading item changes back", e);
        let mut file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        Ok(FileChanges {
            lines: BufReader::new(file),
        })
    }
}

pub(crate) struct FileChanges {
    lines: BufReader<std::fs::File>,
}

#[async_trait]
impl ChangeSource for FileChanges {
    async fn next_batch(&mut self) -> CatalogResult<Option<Vec<ItemChange>>> {
        let mut batch = Vec::new();
        let mut line = String::new();
        while batch.len() < 1000 {
            line.clear();
            let n = self
                .lines
                .read_line(&mut line)
                .map_err(|e| CatalogError::Backend(Box::new(e)))?;
            if n == 0 {
                break;
            }
            batch.push(serde_json::from_str(line.trim_end()).map_err(|e| {
                CatalogError::Corrupt {
                    what: "spilled item change",
                    source: Box::new(e),
                }
            })?);
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}
