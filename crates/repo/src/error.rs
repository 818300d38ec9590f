//! Errors of the repository layer. Each keeps its source; [`RepoError::kind`] sorts them into the
//! few classes callers act on (the API maps those to HTTP statuses, the CLI prints the message).

use crate::ids::{BlobId, PackId, SnapshotId};

/// What went wrong with the storage behind a repository, as far as an administrator can act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageFault {
    /// The object does not exist.
    NotFound,
    /// The bucket or container itself does not exist.
    NoBucket,
    /// The storage refused the credentials or the request's signature.
    AccessDenied,
    /// The endpoint could not be reached (DNS, connection refused, timeout).
    Unreachable,
    /// The local file system is full.
    NoSpace,
    /// Anything else the storage answered.
    Other,
}

impl StorageFault {
    fn describe(self) -> &'static str {
        match self {
            StorageFault::NotFound => "not found",
            StorageFault::NoBucket => "the bucket or container does not exist",
            StorageFault::AccessDenied => "access denied: check the access key and secret",
            StorageFault::Unreachable => "the storage endpoint cannot be reached",
            StorageFault::NoSpace => "no space left on the device",
            StorageFault::Other => "storage error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{location}: {what}: {}: {source}", fault.describe())]
    Storage {
        fault: StorageFault,
        location: String,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{location}: no repository here (no 'config' object)")]
    NotARepository { location: String },
    #[error("{location}: a repository already exists here")]
    AlreadyExists { location: String },
    #[error("{location}: the repository password is wrong (no key file opens with it)")]
    WrongPassword { location: String },
    #[error("{location}: unsupported repository format version {version}")]
    UnsupportedVersion { location: String, version: u32 },
    /// Stored data failed its authentication tag or hash: it is never returned as data.
    #[error("damaged data: chunk {blob} in pack {pack}: {reason}")]
    DamagedBlob {
        blob: BlobId,
        pack: PackId,
        reason: String,
    },
    #[error("damaged {what}: {reason}")]
    Damaged { what: String, reason: String },
    #[error("chunk {0} is not in the catalog (run `m365backup repository rebuild-catalog`)")]
    UnknownBlob(BlobId),
    #[error("restore point {0} was not found")]
    UnknownSnapshot(SnapshotId),
    #[error("the repository is locked: {0}")]
    Locked(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A background task of this process failed (panicked, or was cancelled at shutdown).
    #[error("the {what} task failed")]
    Task {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// One of our own records did not serialize (the source says why).
    #[error("cannot encode the {what}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// Coarse classes of [`RepoError`] for callers that map errors to answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The caller asked for something wrong (bad settings, password, bucket, credentials).
    Invalid,
    NotFound,
    Conflict,
    /// The storage is unreachable or full: retry later or fix the environment.
    Unavailable,
    /// Data failed verification.
    Damaged,
    Internal,
}

impl RepoError {
    pub fn class(&self) -> ErrorClass {
        match self {
            RepoError::Storage { fault, .. } => match fault {
                StorageFault::NoBucket | StorageFault::AccessDenied => ErrorClass::Invalid,
                StorageFault::NotFound => ErrorClass::NotFound,
                StorageFault::Unreachable | StorageFault::NoSpace => ErrorClass::Unavailable,
                StorageFault::Other => ErrorClass::Unavailable,
            },
            RepoError::NotARepository { .. }
            | RepoError::WrongPassword { .. }
            | RepoError::UnsupportedVersion { .. }
            | RepoError::Invalid(_) => ErrorClass::Invalid,
            RepoError::AlreadyExists { .. } | RepoError::Locked(_) | RepoError::Conflict(_) => {
                ErrorClass::Conflict
            }
            RepoError::UnknownSnapshot(_) => ErrorClass::NotFound,
            RepoError::DamagedBlob { .. }
            | RepoError::Damaged { .. }
            | RepoError::UnknownBlob(_) => ErrorClass::Damaged,
            RepoError::Io { source, .. } if is_no_space(source) => ErrorClass::Unavailable,
            RepoError::Catalog(_)
            | RepoError::Io { .. }
            | RepoError::Task { .. }
            | RepoError::Encode { .. }
            | RepoError::Internal(_) => ErrorClass::Internal,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RepoError::Io {
            what: what.into(),
            source,
        }
    }

    /// For `map_err` on a task's join (or a semaphore's acquire): keeps the error as source.
    pub(crate) fn task<E>(what: &'static str) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |e| RepoError::Task {
            what,
            source: Box::new(e),
        }
    }

    /// For `map_err` on serializing one of our records: keeps the error as source.
    pub(crate) fn encode(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| RepoError::Encode { what, source }
    }

    pub(crate) fn damaged(what: impl Into<String>, reason: impl Into<String>) -> Self {
        RepoError::Damaged {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Whether an I/O error says the disk is full (also when a library wrapped it with a path).
pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(libc::ENOSPC)
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<std::io::Error>())
            .is_some_and(is_no_space)
}

/// A failure of the catalog (the state store's index of a repository).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The object's latest restore point is not the one the writer started from.
    #[error("{0}")]
    Conflict(String),
    /// The state store failed (its driver's error is the source).
    #[error("the catalog's database failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A catalog record does not read back (the source says why).
    #[error("corrupt {what} in the catalog")]
    Corrupt {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

pub type RepoResult<T> = Result<T, RepoError>;
pub type CatalogResult<T> = Result<T, CatalogError>;
