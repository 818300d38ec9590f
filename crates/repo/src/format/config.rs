//! The `config` object: plaintext JSON naming the format version and its parameters, so a
//! reader knows what it is looking at before it has a key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RepoConfig {
    pub version: u32,
    /// A random id of the repository (GUID).
    pub id: uuid::Uuid,
    pub created: DateTime<Utc>,
    pub chunker: ChunkerParams,
    /// A pack is closed once its blobs reach this many bytes.
    pub pack_size: u64,
    /// Always `zstd` (per blob, only where it pays).
    pub compression: String,
    /// Always `xchacha20-poly1305`.
    pub cipher: String,
    /// Always `blake3-keyed`.
    pub blob_id: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChunkerParams {
    /// Always `fastcdc-2020`, normalization level 1, gear table seeded from the master key.
    pub algorithm: ChunkerAlgorithm,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ChunkerAlgorithm {
    #[serde(rename = "fastcdc-2020")]
    FastCdc2020,
}

impl Default for ChunkerParams {
    /// About 1 MiB per chunk: 256 KiB at least, 4 MiB at most.
    fn default() -> Self {
        Self {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

pub const DEFAULT_PACK_SIZE: u64 = 16 * 1024 * 1024;

impl RepoConfig {
    pub fn new(chunker: ChunkerParams, pack_size: u64) -> Self {
        Self {
            version: FORMAT_VERSION,
            id: uuid::Uuid::new_v4(),
            created: Utc::now(),
            chunker,
            pack_size,
            compression: "zstd".into(),
            cipher: "xchacha20-poly1305".into(),
            blob_id: "blake3-keyed".into(),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let c = &self.chunker;
        let even = |v: u32| v % 2 == 0;
        if !(64 <= c.min_size && c.min_size <= c.avg_size && c.avg_size <= c.max_size)
            || c.max_size > 16 * 1024 * 1024
            || !(even(c.min_size) && even(c.avg_size) && even(c.max_size))
        {
            return Err(format!("invalid chunker sizes {c:?}"));
        }
        if self.pack_size < 1024 || self.pack_size > 1 << 30 {
            return Err(format!("invalid pack size {}", self.pack_size));
        }
        if self.compression != "zstd"
            || self.cipher != "xchacha20-poly1305"
            || self.blob_id != "blake3-keyed"
        {
            return Err("unknown compression, cipher or blob id scheme".into());
        }
        Ok(())
    }
}
