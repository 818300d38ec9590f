//! A drive item: folder or file, its versions (each naming where its bytes come from) and its
//! explicit permissions.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::content::ContentSource;

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub name: String,
    /// `None` for the root folder.
    pub parent: Option<String>,
    pub file: Option<FileInfo>,
    /// `fileSystemInfo` (settable by clients); also the item's own dates, as in SharePoint.
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Users (tenant indexes) who created and last changed the item.
    pub created_by: Option<usize>,
    pub modified_by: Option<usize>,
    /// Change number of the last change.
    pub changed_seq: u64,
    /// Position of the last change in the drive's log.
    pub log_pos: usize,
    pub deleted: bool,
    /// Explicit permissions: the item is shared when there are any.
    pub grants: Vec<Permission>,
    /// Earlier versions of a file, oldest first (the current one is [`Item::file`]).
    pub history: Vec<FileVersion>,
}

/// The current version of a file.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo {
    pub size: u64,
    /// The version number (Graph's version id is `{version}.0`); bumped by every content change.
    pub version: u64,
    pub content: ContentSource,
}

/// A version of a file.
#[derive(Debug, Clone, Copy)]
pub struct FileVersion {
    pub version: u64,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub modified_by: Option<usize>,
    pub content: ContentSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkScope {
    Organization,
    Anonymous,
}

/// What one explicit permission grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Shared with a user (tenant index).
    User { user: usize, role: Role },
    /// A sharing link.
    Link { scope: LinkScope, role: Role },
}

impl Grant {
    /// Whom or what the grant is for: a user has one permission per item (inviting again
    /// changes its role), a link one per scope and type.
    fn subject(&self) -> String {
        match self {
            Grant::User { user, .. } => format!("user:{user}"),
            Grant::Link { scope, role } => format!("link:{scope:?}:{role:?}"),
        }
    }
}

/// An explicit permission with its id (stable per item and subject, GUID-shaped like
/// SharePoint's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub id: String,
    pub grant: Grant,
}

impl Permission {
    pub fn new(item_id: &str, grant: Grant) -> Self {
        let d = Sha256::new()
            .chain_update(item_id.as_bytes())
            .chain_update(grant.subject().as_bytes())
            .finalize();
        let id = uuid::Builder::from_random_bytes(std::array::from_fn(|i| d[i]))
            .into_uuid()
            .to_string();
        Self { id, grant }
    }

    pub(super) fn same_subject(&self, other: &Grant) -> bool {
        self.grant.subject() == other.subject()
    }
}

impl Item {
    /// A drive's root folder.
    pub fn root(id: String, created: DateTime<Utc>) -> Self {
        Self::new(id, "root".into(), None, None, created, created, None)
    }

    pub(super) fn new(
        id: String,
        name: String,
        parent: Option<String>,
        file: Option<FileInfo>,
        created: DateTime<Utc>,
        modified: DateTime<Utc>,
        by: Option<usize>,
    ) -> Self {
        Self {
            id,
            name,
            parent,
            file,
            created,
            modified,
            created_by: by,
            modified_by: by,
            changed_seq: 0,
            log_pos: 0,
            deleted: false,
            grants: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Key of the content generator for this item: unique across drives.
    pub fn content_key(&self, drive_id: &str) -> String {
        format!("{drive_id}/{}", self.id)
    }

    pub fn is_folder(&self) -> bool {
        self.file.is_none()
    }

    /// Every version of a file, newest (the current one) first; none for a folder.
    pub fn versions(&self) -> Vec<FileVersion> {
        let Some(f) = self.file else {
            return Vec::new();
        };
        let mut all = vec![FileVersion {
            version: f.version,
            size: f.size,
            modified: self.modified,
            modified_by: self.modified_by,
            content: f.content,
        }];
        all.extend(self.history.iter().rev().copied());
        all
    }

    /// Version `version` of the file, if it has (had) it.
    pub fn version(&self, version: u64) -> Option<FileVersion> {
        self.versions().into_iter().find(|v| v.version == version)
    }

    /// Size of version `version` of the file, if it has (had) it.
    pub fn version_size(&self, version: u64) -> Option<u64> {
        self.version(version).map(|v| v.size)
    }
}

/// Graph-style drive item id: 34 upper-case base-32 characters starting with "01".
pub fn item_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("01");
    id.extend((0..32).map(|_| ALPHABET[rng.gen_range(0..32)] as char));
    id
}
