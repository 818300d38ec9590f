//! Snapshot documents: one per protected object and restore point, under `snapshots/`. Sealed,
//! zstd-compressed JSON; the object's name is the keyed BLAKE3 hash of the plaintext.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::Keys;
use crate::format::SNAPSHOT_AAD;
use crate::ids::{BlobId, SnapshotId};

/// What was backed up: a user's OneDrive or a site's document library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtectedObject {
    /// The organization (GUID) it belongs to.
    pub organization_id: String,
    pub kind: ObjectKind,
    /// Microsoft Graph drive id.
    pub id: String,
    /// Display name (the owner's name for a OneDrive, the library's for a library).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The user (OneDrive) or site (library) it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    /// Anything else the engine keeps about the object (site title and URL, parent site…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    OneDrive,
    SiteLibrary,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::OneDrive => "OneDrive",
            ObjectKind::SiteLibrary => "SiteLibrary",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OneDrive" => Some(ObjectKind::OneDrive),
            "SiteLibrary" => Some(ObjectKind::SiteLibrary),
            _ => None,
        }
    }
}

impl ProtectedObject {
    /// The object's identity within a repository: `<organization>/<kind>/<drive id>`.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.organization_id,
            self.kind.as_str(),
            self.id
        )
    }
}

/// Counts of a restore point's items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeSummary {
    pub items: u64,
    pub files: u64,
    pub folders: u64,
    /// Sum of the current versions' content sizes.
    pub bytes: u64,
}

/// What writing the restore point cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteStats {
    /// Content bytes streamed in.
    pub read_bytes: u64,
    /// Of those, bytes of chunks the repository did not have yet (before compression).
    pub new_bytes: u64,
    /// Bytes those new chunks take in packs (compressed and sealed).
    pub stored_bytes: u64,
    pub new_chunks: u64,
    pub added_items: u64,
    pub changed_items: u64,
    pub deleted_items: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDoc {
    pub version: u32,
    pub object: ProtectedObject,
    /// The restore point's time.
    pub time: DateTime<Utc>,
    /// The restore point this one was written on top of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SnapshotId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Where the next incremental run starts (the Graph delta link or token), opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_state: Option<String>,
    /// The item pages (tree blobs), in order.
    pub pages: Vec<BlobId>,
    pub summary: TreeSummary,
    pub stats: WriteStats,
    pub hostname: String,
    /// When the document was written (differs from `time` for restore points written later).
    pub written_at: DateTime<Utc>,
}

impl SnapshotDoc {
    /// The snapshot document stored as `id`, verified (tag, then its name against the keyed
    /// hash of the plaintext) and decoded.
    pub fn open(keys: &Keys, id: &SnapshotId, sealed: &[u8]) -> Result<Self, String> {
        let plain = keys.open_file(SNAPSHOT_AAD, sealed)?;
        if keys.blob_id(&plain).0 != id.0 {
            return Err("content does not match its name".into());
        }
        serde_json::from_slice(&plain).map_err(|e| e.to_string())
    }
}
