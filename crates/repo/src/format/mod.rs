//! The on-storage format, as `docs/repository-format.md` describes it: object names, the
//! `config` object, packs, index files, snapshot documents and item pages.

pub mod config;
pub mod index;
pub mod item;
pub mod pack;
pub mod snapshot;

#[cfg(test)]
mod hostile;

use crate::ids::{IndexId, PackId, SnapshotId};

pub const CONFIG_KEY: &str = "config";
pub const KEYS_DIR: &str = "keys";
pub const DATA_DIR: &str = "data";
pub const INDEX_DIR: &str = "index";
pub const SNAPSHOTS_DIR: &str = "snapshots";
pub const LOCKS_DIR: &str = "locks";

/// Associated data of the sealed files, so one kind of file cannot pass for another.
pub const INDEX_AAD: &[u8] = b"m365backup index v1";
pub const SNAPSHOT_AAD: &[u8] = b"m365backup snapshot v1";
pub const LOCK_AAD: &[u8] = b"m365backup lock v1";
pub const PACK_HEADER_AAD: &[u8] = b"m365backup pack header v1";

/// `data/<first two hex digits>/<id>`: 256 folders keep listings of local folders small.
pub fn pack_key(id: &PackId) -> String {
    let hex = id.to_hex();
    format!("{DATA_DIR}/{}/{hex}", &hex[..2])
}

pub fn index_key(id: &IndexId) -> String {
    format!("{INDEX_DIR}/{id}")
}

pub fn snapshot_key(id: &SnapshotId) -> String {
    format!("{SNAPSHOTS_DIR}/{id}")
}
