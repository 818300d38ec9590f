//! An open repository: create or open one, read its blobs, snapshots and items.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use m365backup_core::Secret;

use crate::backend::{Backend, Location};
use crate::blobstore::BlobStore;
use crate::catalog::{BlobLocation, Catalog, RepoKey, SnapshotFilter, SnapshotRecord};
use crate::chunker::Chunker;
use crate::crypto::{new_master_key, KdfParams, KeyFile, Keys};
use crate::error::{RepoError, RepoResult};
use crate::format::config::{ChunkerParams, RepoConfig, DEFAULT_PACK_SIZE, FORMAT_VERSION};
use crate::format::item::{Item, Page};
use crate::format::snapshot::SnapshotDoc;
use crate::format::{pack_key, snapshot_key, CONFIG_KEY, KEYS_DIR, SNAPSHOTS_DIR, SNAPSHOT_AAD};
use crate::ids::{BlobId, BlobKind, SnapshotId};

/// Largest key file read; they are about 400 bytes.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Settings of a new repository.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub pack_size: u64,
    /// argon2id cost of the key file: (memory KiB, iterations).
    pub kdf_cost: (u32, u32),
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: ChunkerParams::default(),
            pack_size: DEFAULT_PACK_SIZE,
            kdf_cost: (64 * 1024, 3),
        }
    }
}

#[derive(Clone)]
pub struct Repository {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub backend: Backend,
    pub config: RepoConfig,
    pub keys: Arc<Keys>,
    pub catalog: Arc<dyn Catalog>,
    pub repo: RepoKey,
    pub blobs: Arc<BlobStore>,
    pub active_writers: AtomicUsize,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.inner.backend.display())
    }
}

impl Repository {
    /// Creates a repository at `location`, which must hold none yet.
    pub async fn init(
        location: &Location,
        password: &Secret,
        catalog: Arc<dyn Catalog>,
        repo: RepoKey,
        options: &InitOptions,
    ) -> RepoResult<Self> {
        if password.expose().is_empty() {
            return Err(RepoError::Invalid(
                "the repository password must not be empty".into(),
            ));
        }
        let backend = Backend::open(location)?;
        backend.probe().await?;
        if backend.get_optional(CONFIG_KEY).await?.is_some() {
            return Err(RepoError::AlreadyExists {
                location: backend.display().to_owned(),
            });
        }
        let config = RepoConfig::new(options.chunker, options.pack_size);
        config.validate().map_err(RepoError::Invalid)?;
        let master = new_master_key();
        let (memory, iterations) = options.kdf_cost;
        let key_file = KeyFile::wrap(
            &master,
            password.expose(),
            KdfParams::with_cost(memory, iterations),
        )
        .map_err(RepoError::Internal)?;
        let key_json =
            serde_json::to_vec_pretty(&key_file).map_err(RepoError::encode("key file"))?;
        let key_id = blake3::hash(&key_json).to_hex();
        // The key first: a `config` is only ever there with a key that opens the repository.
        backend
            .put(&format!("{KEYS_DIR}/{key_id}"), Bytes::from(key_json))
            .await?;
        let config_json =
            serde_json::to_vec_pretty(&config).map_err(RepoError::encode("config"))?;
        backend.put(CONFIG_KEY, Bytes::from(config_json)).await?;
        tracing::info!(location = %backend.display(), id = %config.id, "repository created");
        Ok(Self::assemble(
            backend,
            config,
            Keys::from_master(&master),
            catalog,
            repo,
        ))
    }

    /// Opens the repository at `location` with its password.
    pub async fn open(
        location: &Location,
        password: &Secret,
        catalog: Arc<dyn Catalog>,
        repo: RepoKey,
    ) -> RepoResult<Self> {
        let backend = Backend::open(location)?;
        backend.probe().await?;
        let display = backend.display().to_owned();
        let config_bytes =
            backend
                .get_optional(CONFIG_KEY)
                .await?
                .ok_or_else(|| RepoError::NotARepository {
                    location: display.clone(),
                })?;
        let config: RepoConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| RepoError::damaged(format!("{display}/config"), e.to_string()))?;
        if config.version != FORMAT_VERSION {
            return Err(RepoError::UnsupportedVersion {
                location: display,
                version: config.version,
            });
        }
        config
            .validate()
            .map_err(|e| RepoError::damaged(format!("{display}/config"), e))?;
        let mut master = None;
        for entry in backend.list(KEYS_DIR).await? {
            // Key files are read before anything is authenticated: a planted giant is skipped.
            if entry.size > MAX_KEY_FILE_BYTES {
                tracing::warn!(key = %entry.name, size = entry.size, "oversized key file");
                continue;
            }
            let bytes = backend.get(&format!("{KEYS_DIR}/{}", entry.name)).await?;
            let Ok(file) = serde_json::from_slice::<KeyFile>(&bytes) else {
                tracing::warn!(key = %entry.name, "unreadable key file");
                continue;
            };
            let secret = password.expose().to_owned();
            let opened = tokio::task::spawn_blocking(move || file.unwrap_key(&secret))
                .await
                .map_err(RepoError::task("key"))?
                .map_err(|e| RepoError::damaged(format!("key file {}", entry.name), e))?;
            if let Some(key) = opened {
                master = Some(key);
                break;
            }
        }
        let master = master.ok_or(RepoError::WrongPassword { location: display })?;
        Ok(Self::assemble(
            backend,
            config,
            Keys::from_master(&master),
            catalog,
            repo,
        ))
    }

    /// Whether `location` holds a repository (its `config` object exists).
    pub async fn exists(location: &Location) -> RepoResult<bool> {
        let backend = Backend::open(location)?;
        backend.probe().await?;
        Ok(backend.get_optional(CONFIG_KEY).await?.is_some())
    }

    fn assemble(
        backend: Backend,
        config: RepoConfig,
        keys: Keys,
        catalog: Arc<dyn Catalog>,
        repo: RepoKey,
    ) -> Self {
        let keys = Arc::new(keys);
        let chunker = Chunker::new(&config.chunker, keys.chunker_seed());
        let blobs = Arc::new(BlobStore::new(
            backend.clone(),
            keys.clone(),
            catalog.clone(),
            repo,
            chunker,
            config.pack_size as usize,
        ));
        Self {
            inner: Arc::new(Inner {
                backend,
                config,
                keys,
                catalog,
                repo,
                blobs,
                active_writers: AtomicUsize::new(0),
            }),
        }
    }

    pub fn config(&self) -> &RepoConfig {
        &self.inner.config
    }

    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.inner.catalog
    }

    pub fn key(&self) -> RepoKey {
        self.inner.repo
    }

    /// Writers of this handle now at work.
    pub fn active_writers(&self) -> usize {
        self.inner.active_writers.load(Ordering::SeqCst)
    }

    /// The most pack buffers this handle held at once (packs open, waiting to be written, or
    /// being written; each up to the pack size): at most [`crate::PACK_BUFFERS`].
    pub fn pack_buffers_peak(&self) -> usize {
        self.inner.blobs.pack_buffers_peak()
    }

    /// Bytes the repository's packs take (from the catalog).
    pub async fn stored_bytes(&self) -> RepoResult<u64> {
        Ok(self.inner.catalog.stored_bytes(self.inner.repo).await?)
    }

    /// Reads and verifies one blob.
    pub async fn read_blob(&self, kind: BlobKind, id: BlobId) -> RepoResult<Vec<u8>> {
        let location = self
            .inner
            .catalog
            .lookup_blobs(self.inner.repo, &[id])
            .await?[0]
            .ok_or(RepoError::UnknownBlob(id))?;
        self.read_blob_at(kind, id, &location).await
    }

    /// Reads and verifies one blob at a known location.
    pub async fn read_blob_at(
        &self,
        kind: BlobKind,
        id: BlobId,
        location: &BlobLocation,
    ) -> RepoResult<Vec<u8>> {
        self.fetch_blob(kind, id, location)
            .await
            .map(|b| b.to_vec())
    }

    /// Reads one blob's stored bytes and verifies them (tag, then id) off the async threads.
    pub(crate) async fn fetch_blob(
        &self,
        kind: BlobKind,
        id: BlobId,
        location: &BlobLocation,
    ) -> RepoResult<Bytes> {
        let stored = self
            .inner
            .backend
            .get_range(
                &pack_key(&location.pack),
                location.offset..location.offset + location.length as u64,
            )
            .await?;
        let keys = self.inner.keys.clone();
        let pack = location.pack;
        tokio::task::spawn_blocking(move || keys.decode_blob_bytes(kind, &id, stored))
            .await
            .map_err(RepoError::task("decode"))?
            .map_err(|reason| RepoError::DamagedBlob {
                blob: id,
                pack,
                reason,
            })
    }

    /// Ids of every snapshot document in the repository (not the catalog).
    pub async fn snapshot_ids(&self) -> RepoResult<Vec<SnapshotId>> {
        let mut ids = Vec::new();
        for entry in self.inner.backend.list(SNAPSHOTS_DIR).await? {
            match entry.name.parse() {
                Ok(id) => ids.push(id),
                Err(_) => tracing::warn!(name = %entry.name, "unexpected object in snapshots/"),
            }
        }
        Ok(ids)
    }

    /// Loads and verifies one snapshot document from the repository.
    pub async fn load_snapshot(&self, id: SnapshotId) -> RepoResult<SnapshotDoc> {
        let bytes = self
            .inner
            .backend
            .get_optional(&snapshot_key(&id))
            .await?
            .ok_or(RepoError::UnknownSnapshot(id))?;
        let keys = self.inner.keys.clone();
        let what = format!("snapshot {id}");
        tokio::task::spawn_blocking(move || SnapshotDoc::open(&keys, &id, &bytes))
            .await
            .map_err(RepoError::task("snapshot"))?
            .map_err(|reason| RepoError::damaged(what, reason))
    }

    /// Writes a snapshot document; returns its id.
    pub(crate) async fn write_snapshot(&self, doc: &SnapshotDoc) -> RepoResult<SnapshotId> {
        let plain = serde_json::to_vec(doc).map_err(RepoError::encode("restore point"))?;
        let id = SnapshotId(self.inner.keys.blob_id(&plain).0);
        let sealed = self
            .inner
            .keys
            .seal_file(SNAPSHOT_AAD, &plain)
            .map_err(|e| RepoError::io("compressing a restore point", e))?;
        self.inner
            .backend
            .put(&snapshot_key(&id), Bytes::from(sealed))
            .await?;
        Ok(id)
    }

    /// Every item of a restore point, sorted by id, read from the repository.
    pub fn items(
        &self,
        doc: &SnapshotDoc,
    ) -> impl Stream<Item = RepoResult<Item>> + Send + 'static {
        let this = self.clone();
        futures::stream::iter(doc.pages.clone())
            .map(move |page| {
                let this = this.clone();
                async move {
                    let plain = this.read_blob(BlobKind::Tree, page).await?;
                    let page: Page = serde_json::from_slice(&plain).map_err(|e| {
                        RepoError::damaged(format!("item page {page}"), e.to_string())
                    })?;
                    Ok::<_, RepoError>(futures::stream::iter(page.items.into_iter().map(Ok)))
                }
            })
            .buffered(2)
            .try_flatten()
    }

    // ---- browsing, through the catalog ----

    /// Restore points, oldest first.
    pub async fn snapshots(&self, filter: &SnapshotFilter) -> RepoResult<Vec<SnapshotRecord>> {
        Ok(self
            .inner
            .catalog
            .snapshots(self.inner.repo, filter)
            .await?)
    }

    pub async fn snapshot(&self, id: SnapshotId) -> RepoResult<SnapshotRecord> {
        self.inner
            .catalog
            .snapshot(self.inner.repo, id)
            .await?
            .ok_or(RepoError::UnknownSnapshot(id))
    }

    /// The latest restore point of an object at or before `at` (the latest of all: `None`).
    pub async fn latest_snapshot(
        &self,
        object_key: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> RepoResult<Option<SnapshotRecord>> {
        let filter = SnapshotFilter {
            object_key: Some(object_key.to_owned()),
            at_or_before: at,
            ..SnapshotFilter::default()
        };
        Ok(self.snapshots(&filter).await?.pop())
    }

    /// The items of a folder of a restore point (`None`: its top level), sorted by name.
    pub async fn list_folder(
        &self,
        snapshot: &SnapshotRecord,
        parent: Option<&str>,
    ) -> RepoResult<Vec<Item>> {
        Ok(self
            .inner
            .catalog
            .list_items(
                self.inner.repo,
                &snapshot.object_key(),
                snapshot.doc.time,
                parent,
            )
            .await?)
    }

    /// What a folder of a restore point held before but no longer: its deleted items.
    pub async fn list_deleted(
        &self,
        snapshot: &SnapshotRecord,
        parent: Option<&str>,
    ) -> RepoResult<Vec<Item>> {
        Ok(self
            .inner
            .catalog
            .list_deleted_items(
                self.inner.repo,
                &snapshot.object_key(),
                snapshot.doc.time,
                parent,
            )
            .await?)
    }

    /// An item as it last was in the restore point or, deleted by then, before it.
    pub async fn item_last_seen(
        &self,
        snapshot: &SnapshotRecord,
        item_id: &str,
    ) -> RepoResult<Option<Item>> {
        Ok(self
            .inner
            .catalog
            .get_item_last_seen(
                self.inner.repo,
                &snapshot.object_key(),
                snapshot.doc.time,
                item_id,
            )
            .await?)
    }

    /// One item of a restore point.
    pub async fn item(&self, snapshot: &SnapshotRecord, item_id: &str) -> RepoResult<Option<Item>> {
        Ok(self
            .inner
            .catalog
            .get_item(
                self.inner.repo,
                &snapshot.object_key(),
                snapshot.doc.time,
                item_id,
            )
            .await?)
    }
}
