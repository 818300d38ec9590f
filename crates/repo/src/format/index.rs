//! Index files: which blob is where. Each lists whole packs; a writer adds one file per batch of
//! packs it wrote, prune replaces them. Sealed, zstd-compressed JSON:
//! `{"packs":[{"id","size","blobs":[{"kind","id","offset","length","plainLength"}]}]}`.

use serde::{Deserialize, Serialize};

use crate::crypto::Keys;
use crate::format::pack::PackEntry;
use crate::format::INDEX_AAD;
use crate::ids::{BlobId, BlobKind, IndexId, PackId};

/// Largest pack an index may describe: packs close at `packSize` (at most 1 GiB) plus one blob
/// and their header, so a larger size is not one this format writes.
pub const MAX_PACK_SIZE: u64 = 4 * 1024 * 1024 * 1024;

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

impl IndexFile {
    /// The index file stored as `id`, verified (name, tag) and decoded; every blob it lists
    /// lies inside its pack.
    pub fn open(keys: &Keys, id: &IndexId, sealed: &[u8]) -> Result<Self, String> {
        if blake3::hash(sealed).as_bytes() != &id.0 {
            return Err("content does not match its name".into());
        }
        let plain = keys.open_file(INDEX_AAD, sealed)?;
        let file: Self = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
        for pack in &file.packs {
            pack.validate()?;
        }
        Ok(file)
    }
}

impl IndexedPack {
    /// Whether the pack's size is one a pack can have and every blob lies inside the pack, so
    /// `offset + length` of any blob is a valid position in it.
    pub fn validate(&self) -> Result<(), String> {
        if self.size > MAX_PACK_SIZE {
            return Err(format!(
                "pack {} has an impossible size {}",
                self.id, self.size
            ));
        }
        for b in &self.blobs {
            if b.offset
                .checked_add(b.length as u64)
                .is_none_or(|end| end > self.size)
            {
                return Err(format!(
                    "blob {} of pack {} lies past the pack's end",
                    b.id, self.id
                ));
            }
        }
        Ok(())
    }

    /// The kind of the pack's blobs (a pack holds one kind).
    pub fn kind(&self) -> BlobKind {
        self.blobs.first().map(|b| b.kind).unwrap_or(BlobKind::Data)
    }
}
