//! Storing blobs: the pipeline that turns a byte stream into chunks in packs, shared by every
//! writer of one open repository (so two jobs writing the same bytes store them once).
//!
//! content → FastCDC chunks → keyed BLAKE3 ids (parallel) → deduplicated against the blobs in
//! flight and, in batches, the catalog → zstd + XChaCha20-Poly1305 (parallel) → appended to the
//! open pack → written when full (two uploads at a time, the pipeline waits beyond that) →
//! listed in an index file → recorded in the catalog. Only then is a blob visible to other
//! processes; until then this process knows it as "in flight".
//!
//! Memory: a pack is held whole from its first blob until its upload ends, so the number of
//! pack buffers alive at once is bounded ([`PACK_BUFFERS`]): a stream that needs a new pack
//! while every buffer is taken waits for an upload to end instead of allocating another one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::Backend;
use crate::catalog::{Catalog, RepoKey};
use crate::chunk_budget;
use crate::chunker::Chunker;
use crate::crypto::Keys;
use crate::error::{RepoError, RepoResult};
use crate::format::index::{IndexFile, IndexedBlob, IndexedPack};
use crate::format::item::{ChunkRef, Content};
use crate::format::pack::{FinishedPack, PackBuilder};
use crate::format::{index_key, pack_key, INDEX_AAD};
use crate::ids::{BlobId, BlobKind, IndexId};

/// Packs written at the same time; the pipeline waits for a slot beyond that.
const UPLOAD_SLOTS: usize = 2;
/// Pack buffers alive at once (open, full and waiting for a slot, or being written): one
/// filling while the upload slots write. Without a bound, every stream that found the open
/// pack full started another while the full ones waited for a slot (seven 16 MiB packs at once
/// in the backup benchmark). Never below two: a pack of one kind (tree pages) left open must
/// not keep the other kind from ever opening one (see [`BlobStore::append_inner`]).
pub const PACK_BUFFERS: usize = UPLOAD_SLOTS + 1;
/// Written packs listed per index file (more at a flush).
const PACKS_PER_INDEX: usize = 8;
/// Ids looked up in the catalog per query, at most (at most this many chunks of a stream wait
/// for their answer); public for the catalog benchmark.
pub const LOOKUP_BATCH: usize = 8;
/// Plain bytes between the downloads and their packs (chunks being gathered included), across
/// every stream being stored, in multiples of the largest chunk: enough to keep every worker
/// busy, and what bounds the memory of many large files stored at once (see
/// [`crate::chunk_budget`]).
const CHUNK_BUDGET_IN_MAX_CHUNKS: usize = 8;
/// Room for a full pack's header beyond its data: a pack is sent before a blob would take it
/// past `pack_size`, so its buffer never grows (and reallocates) past this.
const PACK_SLACK: usize = 256 * 1024;

/// What storing some content cost, added up per writer.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub read_bytes: u64,
    pub new_bytes: u64,
    pub stored_bytes: u64,
    pub new_chunks: u64,
}

impl StoreStats {
    pub fn add(&mut self, other: &StoreStats) {
        self.read_bytes += other.read_bytes;
        self.new_bytes += other.new_bytes;
        self.stored_bytes += other.stored_bytes;
        self.new_chunks += other.new_chunks;
    }
}

/// Blobs a writer refers to that were still in flight when it referred to them: before it
/// commits, each must be written and indexed (whoever appended it).
#[derive(Default)]
pub(crate) struct InFlightRefs(pub(crate) std::collections::HashSet<BlobId>);

type Upload = tokio::task::JoinHandle<(Vec<BlobId>, RepoResult<IndexedPack>)>;

/// A pack being filled, with its share of [`PACK_BUFFERS`] (given back once it is written).
struct OpenPack {
    builder: PackBuilder,
    buffer: BufferShare,
}

/// One of the [`PACK_BUFFERS`], held from a pack's first blob until its bytes are gone.
struct BufferShare {
    _permit: OwnedSemaphorePermit,
    /// Buffers alive now (counted apart from the permits, so a test sees the real number).
    live: Arc<AtomicUsize>,
}

impl Drop for BufferShare {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct PackState {
    data: Option<OpenPack>,
    tree: Option<OpenPack>,
    /// Blobs appended to a pack that is not yet recorded in the catalog.
    in_flight: HashMap<BlobId, BlobKind>,
    uploads: Vec<Upload>,
    /// Packs written but not yet in an index file.
    written: Vec<IndexedPack>,
    /// Blobs recently moved from in flight to the catalog. A writer that looked a blob up just
    /// before it got there must still not store it again: it finds it here.
    settled: std::collections::HashSet<BlobId>,
    settled_order: std::collections::VecDeque<BlobId>,
}

/// How many recently settled blobs are remembered (far more than the pipeline holds).
const SETTLED_KEPT: usize = 65_536;

impl PackState {
    fn has(&self, id: &BlobId) -> bool {
        self.in_flight.contains_key(id) || self.settled.contains(id)
    }

    fn settle(&mut self, id: BlobId) {
        if self.in_flight.remove(&id).is_some() && self.settled.insert(id) {
            self.settled_order.push_back(id);
            if self.settled_order.len() > SETTLED_KEPT {
                if let Some(old) = self.settled_order.pop_front() {
                    self.settled.remove(&old);
                }
            }
        }
    }
}

pub(crate) struct BlobStore {
    backend: Backend,
    keys: Arc<Keys>,
    catalog: Arc<dyn Catalog>,
    repo: RepoKey,
    chunker: Chunker,
    pack_size: usize,
    state: Mutex<PackState>,
    upload_slots: Arc<Semaphore>,
    /// Pack buffers alive at once (see [`PACK_BUFFERS`]).
    pack_buffers: Arc<Semaphore>,
    /// Pack buffers alive now, and the most there were at once.
    buffers_live: Arc<AtomicUsize>,
    buffers_peak: AtomicUsize,
    /// Plain bytes in flight in `store_stream`, all streams together (see
    /// [`CHUNK_BUDGET_IN_MAX_CHUNKS`]); a chunk holds its share from its first byte to its pack.
    chunk_budget: Arc<Semaphore>,
    /// Serializes index writing, so a flush returns only once every earlier pack is indexed.
    index_lock: tokio::sync::Mutex<()>,
    /// Counts failed pack or index writes: a writer that saw any since it started cannot commit.
    failures: AtomicU64,
    workers: usize,
}

impl BlobStore {
    pub fn new(
        backend: Backend,
        keys: Arc<Keys>,
        catalog: Arc<dyn Catalog>,
        repo: RepoKey,
        chunker: Chunker,
        pack_size: usize,
    ) -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let budget_units =
            CHUNK_BUDGET_IN_MAX_CHUNKS * chunk_budget::units(chunker.max_size()) as usize;
        Self {
            chunk_budget: Arc::new(Semaphore::new(budget_units)),
            backend,
            keys,
            catalog,
            repo,
            chunker,
            pack_size,
            state: Mutex::new(PackState::default()),
            upload_slots: Arc::new(Semaphore::new(UPLOAD_SLOTS)),
            pack_buffers: Arc::new(Semaphore::new(PACK_BUFFERS.max(2))),
            buffers_live: Arc::new(AtomicUsize::new(0)),
            buffers_peak: AtomicUsize::new(0),
            index_lock: tokio::sync::Mutex::new(()),
            failures: AtomicU64::new(0),
            workers,
        }
    }

    pub fn failure_count(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// The most pack buffers that were alive at once.
    pub fn pack_buffers_peak(&self) -> usize {
        self.buffers_peak.load(Ordering::SeqCst)
    }

    fn open_pack(&self, permit: OwnedSemaphorePermit) -> OpenPack {
        let live = self.buffers_live.fetch_add(1, Ordering::SeqCst) + 1;
        self.buffers_peak.fetch_max(live, Ordering::SeqCst);
        OpenPack {
            builder: PackBuilder::new(self.pack_size + PACK_SLACK),
            buffer: BufferShare {
                _permit: permit,
                live: self.buffers_live.clone(),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PackState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which of `ids` the repository already has (in flight here, or in the catalog); the ones
    /// in flight are added to `refs`.
    async fn known(&self, ids: &[BlobId], refs: &mut InFlightRefs) -> RepoResult<Vec<bool>> {
        let mut known: Vec<bool> = {
            let st = self.lock();
            ids.iter().map(|id| st.has(id)).collect()
        };
        for (id, _) in ids.iter().zip(&known).filter(|(_, k)| **k) {
            refs.0.insert(*id);
        }
        let ask: Vec<BlobId> = ids
            .iter()
            .zip(&known)
            .filter(|(_, k)| !**k)
            .map(|(id, _)| *id)
            .collect();
        if !ask.is_empty() {
            let found = self.catalog.lookup_blobs(self.repo, &ask).await?;
            let mut found = found.into_iter();
            for k in known.iter_mut().filter(|k| !**k) {
                *k = found.next().flatten().is_some();
            }
        }
        Ok(known)
    }

    /// Stores a stream of content; returns its chunk list.
    pub async fn store_stream<S>(
        self: &Arc<Self>,
        input: S,
        stats: &mut StoreStats,
        refs: &mut InFlightRefs,
    ) -> RepoResult<Content>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let keys = self.keys.clone();
        let parallel = self.workers + 1;
        let budget = self.chunk_budget.clone();
        let hashed = chunk_budget::chunks(&self.chunker, input, budget)
            .map_ok(move |(chunk, share)| {
                let keys = keys.clone();
                async move {
                    tokio::task::spawn_blocking(move || ((keys.blob_id(&chunk), chunk), share))
                        .await
                        .map_err(RepoError::task("hash"))
                }
            })
            .try_buffered(parallel);
        let this = self.clone();
        let looked_up = hashed
            .try_ready_chunks(LOOKUP_BATCH)
            .map_err(|e| e.1)
            .and_then(move |batch| {
                let this = this.clone();
                async move {
                    let ids: Vec<BlobId> = batch.iter().map(|((id, _), _)| *id).collect();
                    let mut seen = InFlightRefs::default();
                    let known = this.known(&ids, &mut seen).await?;
                    let seen = std::sync::Arc::new(seen);
                    Ok(futures::stream::iter(batch.into_iter().zip(known).map(
                        move |(b, k)| {
                            let in_flight = seen.0.contains(&(b.0).0);
                            Ok::<_, RepoError>((b, k, in_flight))
                        },
                    )))
                }
            })
            .try_flatten();
        let keys = self.keys.clone();
        let mut encoded = Box::pin(
            looked_up
                .map_ok(move |(((id, chunk), share), known, in_flight)| {
                    let keys = keys.clone();
                    async move {
                        let plain_len = chunk.len() as u32;
                        if known {
                            return Ok((id, plain_len, None, in_flight, share));
                        }
                        let stored = tokio::task::spawn_blocking(move || {
                            keys.encode_blob(BlobKind::Data, &id, &chunk)
                        })
                        .await
                        .map_err(RepoError::task("encode"))?;
                        Ok((id, plain_len, Some(stored), false, share))
                    }
                })
                .try_buffered(parallel),
        );
        let mut content = Content::default();
        // `_share` goes back to the budget at the end of each turn, once the blob is in a pack.
        while let Some((id, plain_len, stored, in_flight, _share)) = encoded.try_next().await? {
            content.size += plain_len as u64;
            content.chunks.push(ChunkRef(id, plain_len));
            stats.read_bytes += plain_len as u64;
            if in_flight {
                refs.0.insert(id);
            }
            if let Some(stored) = stored {
                refs.0.insert(id);
                let stored_len = stored.len() as u64;
                if self.append(BlobKind::Data, id, &stored, plain_len).await? {
                    stats.new_bytes += plain_len as u64;
                    stats.stored_bytes += stored_len;
                    stats.new_chunks += 1;
                }
            }
        }
        Ok(content)
    }

    /// Stores one blob (a tree page) unless the repository has it; returns its id.
    pub async fn store_blob(
        &self,
        kind: BlobKind,
        plain: Vec<u8>,
        stats: &mut StoreStats,
        refs: &mut InFlightRefs,
    ) -> RepoResult<BlobId> {
        let keys = self.keys.clone();
        let (id, plain) = tokio::task::spawn_blocking(move || (keys.blob_id(&plain), plain))
            .await
            .map_err(RepoError::task("hash"))?;
        if self.known(&[id], refs).await?[0] {
            return Ok(id);
        }
        refs.0.insert(id);
        let keys = self.keys.clone();
        let plain_len = plain.len() as u32;
        let stored = tokio::task::spawn_blocking(move || keys.encode_blob(kind, &id, &plain))
            .await
            .map_err(RepoError::task("encode"))?;
        if self.append(kind, id, &stored, plain_len).await? {
            stats.stored_bytes += stored.len() as u64;
        }
        Ok(id)
    }

    /// Appends an encoded blob to the open pack of its kind unless the repository got it
    /// meanwhile (in flight, or just settled); writes the pack once full. `false` when the blob
    /// was already there.
    pub async fn append(
        &self,
        kind: BlobKind,
        id: BlobId,
        stored: &[u8],
        plain_len: u32,
    ) -> RepoResult<bool> {
        self.append_inner(kind, id, stored, plain_len, true).await
    }

    /// Appends a copy of a blob the catalog already knows (prune moving it to a new pack).
    pub async fn append_copy(
        &self,
        kind: BlobKind,
        id: BlobId,
        stored: &[u8],
        plain_len: u32,
    ) -> RepoResult<bool> {
        self.append_inner(kind, id, stored, plain_len, false).await
    }

    async fn append_inner(
        &self,
        kind: BlobKind,
        id: BlobId,
        stored: &[u8],
        plain_len: u32,
        skip_settled: bool,
    ) -> RepoResult<bool> {
        // Back-pressure without deadlock: a caller waits for a buffer only while no pack of
        // its kind is open, so every buffer is then held by a pack of the other kind (at most
        // one, open) or by packs on their way out (waiting for an upload slot, or uploading),
        // which the upload tasks give back without help from any stream. A stream's own
        // half-full pack is the shared open pack: whoever fills it or flushes sends it off.
        let mut buffer: Option<OwnedSemaphorePermit> = None;
        let full = loop {
            let mut closing = None;
            {
                let mut guard = self.lock();
                let st = &mut *guard;
                if st.in_flight.contains_key(&id) || (skip_settled && st.settled.contains(&id)) {
                    return Ok(false);
                }
                let slot = match kind {
                    BlobKind::Data => &mut st.data,
                    BlobKind::Tree => &mut st.tree,
                };
                if slot.is_none() {
                    let permit = buffer
                        .take()
                        .or_else(|| self.pack_buffers.clone().try_acquire_owned().ok());
                    *slot = permit.map(|p| self.open_pack(p));
                }
                // A blob that would take the open pack past its size sends the pack first:
                // a pack's buffer then never outgrows `pack_size` (growing a 16 MiB buffer
                // for the blob that closes it meant copying it into a larger one).
                if slot.as_ref().is_some_and(|open| {
                    !open.builder.is_empty() && open.builder.len() + stored.len() > self.pack_size
                }) {
                    closing = slot.take();
                } else if let Some(open) = slot {
                    // A buffer taken while another caller opened the pack goes back at once.
                    drop(buffer.take());
                    open.builder.append(kind, id, stored, plain_len);
                    let full = if open.builder.len() >= self.pack_size {
                        slot.take()
                    } else {
                        None
                    };
                    st.in_flight.insert(id, kind);
                    break full;
                }
            }
            if let Some(open) = closing {
                self.start_upload(open).await?;
                self.index_written(false).await?;
                continue;
            }
            // Every buffer is taken: wait (outside the lock) until an upload gives one back.
            buffer = Some(
                self.pack_buffers
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(RepoError::task("pack buffers"))?,
            );
        };
        if let Some(open) = full {
            self.start_upload(open).await?;
            self.index_written(false).await?;
        }
        Ok(true)
    }

    async fn start_upload(&self, open: OpenPack) -> RepoResult<()> {
        let OpenPack { builder, buffer } = open;
        // If this future is dropped or fails before the upload is under way, the pack's blobs
        // are no longer in flight and every writer that referred to them must fail.
        let mut abandon = Abandon {
            store: self,
            ids: Some(builder.blob_ids()),
        };
        let permit = self
            .upload_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(RepoError::task("upload slots"))?;
        let keys = self.keys.clone();
        let pack: FinishedPack = tokio::task::spawn_blocking(move || builder.finish(&keys))
            .await
            .map_err(RepoError::task("pack"))?;
        let backend = self.backend.clone();
        let upload = tokio::spawn(async move {
            let ids: Vec<BlobId> = pack.entries.iter().map(|e| e.id).collect();
            let size = pack.bytes.len() as u64;
            let result = backend
                .put(&pack_key(&pack.id), pack.bytes)
                .await
                .map(|()| IndexedPack {
                    id: pack.id,
                    size,
                    blobs: pack.entries.into_iter().map(IndexedBlob::from).collect(),
                });
            // The pack's bytes are gone (`put` took them): its buffer may be used again.
            drop(buffer);
            drop(permit);
            (ids, result)
        });
        self.lock().uploads.push(upload);
        abandon.ids = None;
        Ok(())
    }

    /// Collects finished uploads (all of them when `wait`), and writes an index file for the
    /// written packs once there are enough of them (or any, when `wait`).
    async fn index_written(&self, wait: bool) -> RepoResult<()> {
        let _guard = if wait {
            self.index_lock.lock().await
        } else {
            match self.index_lock.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(()),
            }
        };
        let uploads: Vec<Upload> = {
            let mut st = self.lock();
            if wait {
                std::mem::take(&mut st.uploads)
            } else {
                let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut st.uploads)
                    .into_iter()
                    .partition(|u| u.is_finished());
                st.uploads = running;
                done
            }
        };
        let mut first_error = None;
        for upload in uploads {
            let (ids, result) = upload.await.map_err(RepoError::task("upload"))?;
            match result {
                Ok(pack) => self.lock().written.push(pack),
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::SeqCst);
                    let mut st = self.lock();
                    for id in ids {
                        st.in_flight.remove(&id);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let packs = {
            let mut st = self.lock();
            if st.written.is_empty() || (!wait && st.written.len() < PACKS_PER_INDEX) {
                return Ok(());
            }
            std::mem::take(&mut st.written)
        };
        if let Err(e) = self.write_index(&packs).await {
            self.failures.fetch_add(1, Ordering::SeqCst);
            let mut st = self.lock();
            for pack in &packs {
                for b in &pack.blobs {
                    st.in_flight.remove(&b.id);
                }
            }
            return Err(e);
        }
        let mut st = self.lock();
        for pack in &packs {
            for b in &pack.blobs {
                st.settle(b.id);
            }
        }
        Ok(())
    }

    /// Writes an index file listing `packs`, then records them in the catalog.
    pub async fn write_index(&self, packs: &[IndexedPack]) -> RepoResult<IndexId> {
        let file = IndexFile {
            packs: packs.to_vec(),
        };
        let json = serde_json::to_vec(&file).map_err(RepoError::encode("index"))?;
        let keys = self.keys.clone();
        let sealed = tokio::task::spawn_blocking(move || keys.seal_file(INDEX_AAD, &json))
            .await
            .map_err(RepoError::task("index"))?
            .map_err(|e| RepoError::io("compressing an index", e))?;
        let id = IndexId(*blake3::hash(&sealed).as_bytes());
        self.backend
            .put(&index_key(&id), Bytes::from(sealed))
            .await?;
        self.catalog.add_packs(self.repo, packs).await?;
        Ok(id)
    }

    /// Waits until every blob in `refs` is written, indexed and in the catalog (or its write
    /// failed, which [`BlobStore::failure_count`] tells).
    pub async fn make_durable(&self, refs: &mut InFlightRefs) -> RepoResult<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        loop {
            self.flush().await?;
            {
                let st = self.lock();
                refs.0.retain(|id| st.in_flight.contains_key(id));
            }
            if refs.0.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(RepoError::Internal(
                    "blobs of another writer were not written within 10 minutes".into(),
                ));
            }
            // Another writer is still filling the pack that holds some of them.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Drops from `refs` the blobs that are no longer in flight (keeps the set small).
    pub fn trim(&self, refs: &mut InFlightRefs) {
        let st = self.lock();
        refs.0.retain(|id| st.in_flight.contains_key(id));
    }

    /// Closes the open packs and waits until every blob appended so far is written, indexed and
    /// in the catalog.
    pub async fn flush(&self) -> RepoResult<()> {
        let builders: Vec<OpenPack> = {
            let mut st = self.lock();
            [st.data.take(), st.tree.take()]
                .into_iter()
                .flatten()
                .collect()
        };
        for builder in builders {
            self.start_upload(builder).await?;
        }
        self.index_written(true).await
    }
}

struct Abandon<'a> {
    store: &'a BlobStore,
    ids: Option<Vec<BlobId>>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(ids) = self.ids.take() {
            self.store.failures.fetch_add(1, Ordering::SeqCst);
            let mut st = self.store.lock();
            for id in ids {
                st.in_flight.remove(&id);
            }
        }
    }
}
