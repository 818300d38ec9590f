//! Items of a protected object (a OneDrive or a document library): files and folders with their
//! Microsoft 365 metadata and, for files, where their content is. A restore point's items are
//! kept sorted by id and cut into pages (tree blobs) at boundaries chosen by the ids alone, so an
//! unchanged stretch of items yields the same page, stored once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::Keys;
use crate::error::{RepoError, RepoResult};
use crate::ids::BlobId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    File,
    Folder,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::File => "file",
            ItemKind::Folder => "folder",
        }
    }
}

/// One chunk of a file's content: its id and plaintext length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef(pub BlobId, pub u32);

/// A file's content: its chunks in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub size: u64,
    pub chunks: Vec<ChunkRef>,
}

/// A file or folder as Microsoft 365 described it at a restore point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// Microsoft Graph drive-item id; stable across restore points.
    pub id: String,
    /// Id of the containing folder; `None` for the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: ItemKind,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<DateTime<Utc>>,
    /// Graph `createdBy` identity set, as Microsoft sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_by: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_tag: Option<String>,
    /// Graph `file.hashes` (quickXorHash, sha1Hash, sha256Hash…), as Microsoft sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<serde_json::Value>,
    /// Version label of the current version (e.g. `"4.0"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Sharing permissions, opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<serde_json::Value>,
    /// The current version's content (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Earlier versions kept by Microsoft 365, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<ItemVersion>,
    /// Anything else the engine wants to keep with the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Value>,
}

/// An earlier version of a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemVersion {
    pub version_id: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_by: Option<serde_json::Value>,
    pub content: Content,
}

impl Item {
    /// A folder with the given identity and nothing else.
    pub fn folder(id: impl Into<String>, parent_id: Option<&str>, name: impl Into<String>) -> Self {
        Self::new(id, parent_id, name, ItemKind::Folder)
    }

    /// A file with the given identity and nothing else (content is attached by the writer).
    pub fn file(id: impl Into<String>, parent_id: Option<&str>, name: impl Into<String>) -> Self {
        Self::new(id, parent_id, name, ItemKind::File)
    }

    fn new(
        id: impl Into<String>,
        parent_id: Option<&str>,
        name: impl Into<String>,
        kind: ItemKind,
    ) -> Self {
        Self {
            id: id.into(),
            parent_id: parent_id.map(str::to_owned),
            name: name.into(),
            kind,
            size: 0,
            created: None,
            modified: None,
            created_by: None,
            modified_by: None,
            e_tag: None,
            c_tag: None,
            hashes: None,
            version_id: None,
            permissions: None,
            content: None,
            versions: Vec::new(),
            attributes: None,
        }
    }

    /// Identifies this exact state of the item: the BLAKE3 hash of its JSON record.
    pub fn version_key(&self) -> RepoResult<String> {
        let json = serde_json::to_vec(self).map_err(RepoError::encode("item"))?;
        Ok(blake3::hash(&json).to_hex()[..32].to_owned())
    }

    /// Every chunk the item refers to (current content and earlier versions).
    pub fn chunks(&self) -> impl Iterator<Item = &ChunkRef> {
        self.content
            .iter()
            .chain(self.versions.iter().map(|v| &v.content))
            .flat_map(|c| c.chunks.iter())
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("an item needs an id".into());
        }
        if self.name.is_empty() {
            return Err(format!("item {} needs a name", self.id));
        }
        if self.parent_id.as_deref() == Some(self.id.as_str()) {
            return Err(format!("item {} cannot be its own parent", self.id));
        }
        if self.kind == ItemKind::Folder && (self.content.is_some() || !self.versions.is_empty()) {
            return Err(format!("folder {} cannot have content", self.id));
        }
        Ok(())
    }
}

/// A page of items: one tree blob. Plaintext is `{"items":[…]}`, items sorted by id.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Item>,
}

/// About one item in 128 ends a page; the choice depends on the keyed hash of the id only.
const PAGE_BOUNDARY_MASK: u8 = 0x7f;
/// A page is closed early once its JSON passes this size.
pub const PAGE_MAX_BYTES: usize = 4 * 1024 * 1024;

pub fn ends_page(keys: &Keys, item_id: &str) -> bool {
    let mut probe = b"page-boundary:".to_vec();
    probe.extend_from_slice(item_id.as_bytes());
    let h: BlobId = keys.blob_id(&probe);
    h.0[0] & PAGE_BOUNDARY_MASK == 0
}
