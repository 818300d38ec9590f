//! The backup repository of m365backup: where restore points live, on a local folder,
//! S3-compatible object storage or Azure Blob Storage (through the `object_store` crate).
//!
//! Content is cut by FastCDC, named by keyed BLAKE3, compressed with zstd, sealed with
//! XChaCha20-Poly1305 and appended to packs; index files say where each blob is; a snapshot
//! document per protected object and restore point names the pages of its items. The format is
//! written down in `docs/repository-format.md`. The state store's catalog ([`Catalog`]) indexes
//! a repository for browsing and deduplication and can be rebuilt from it.
//!
//! - [`Repository`]: create or open; browse restore points and folders; read content.
//! - [`SnapshotWriter`]: write a restore point (`writer`).
//! - `check`, `prune` (with retention) and `rebuild_catalog`: operations.

pub mod backend;
mod blobstore;
pub mod catalog;
pub mod check;
mod chunk_budget;
mod chunker;
pub mod crypto;
pub mod error;
pub mod format;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod lock;
pub mod memory;
pub mod progress;
pub mod prune;
mod reader;
pub mod rebuild;
pub mod registry;
mod repository;
pub mod retention;
mod spill;
#[cfg(feature = "test-services")]
pub mod testing;
pub mod writer;

pub use backend::{AzureLocation, Location, S3Location};
pub use blobstore::{LOOKUP_BATCH, PACK_BUFFERS};
pub use catalog::{Catalog, ItemChange, MemoryCatalog, RepoKey, SnapshotFilter, SnapshotRecord};
pub use error::{CatalogError, ErrorClass, RepoError, RepoResult, StorageFault};
pub use format::item::{ChunkRef, Content, Item, ItemKind, ItemVersion};
pub use format::snapshot::{ObjectKind, ProtectedObject, SnapshotDoc};
pub use ids::{BlobId, PackId, SnapshotId};
pub use reader::ContentStream;
pub use repository::{InitOptions, Repository};
pub use writer::{ParentChoice, SnapshotSpec, SnapshotWriter};
