//! Index files: which blob is where. Each lists whole packs; a writer adds one file per batch of
//! packs it wrote, prune replaces them. Sealed, zstd-compressed JSON:
//! `{"packs":[{"id","size","blobs":[{"kind","id","offset","length","plainLength"}]}]}`.

use serde::{Deserialize, Serialize};

use crate::format::pack::PackEntry;
use crate::ids::{BlobId, BlobKind, PackId};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexFile {
    pub packs: Vec<IndexedPack>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexedPack {
    pub id: PackId,
    /// Size of the pack object in bytes.
    pub size: u64,
    pub blobs: Vec<IndexedBlob>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IndexedBlob {
    pub kind: BlobKind,
    pub id: BlobId,
    pub offset: u64,
    pub length: u32,
    pub plain_length: u32,
}

impl From<PackEntry> for IndexedBlob {
    fn from(e: PackEntry) -> Self {
        Self {
            kind: e.kind,
            id: e.id,
            offset: e.offset,
            length: e.length,
            plain_length: e.plain_length,
        }
    }
}

impl IndexedPack {
    /// The kind of the pack's blobs (a pack holds one kind).
    pub fn kind(&self) -> BlobKind {
        self.blobs.first().map(|b| b.kind).unwrap_or(BlobKind::Data)
    }
}
