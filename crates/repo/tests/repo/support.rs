//! Fixtures: a fresh repository on each kind of backend, deterministic content, read-back.

#![allow(dead_code)]

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use m365backup_core::Secret;
use m365backup_repo::testing::{Azurite, S3Server};
use m365backup_repo::{
    Content, InitOptions, Location, MemoryCatalog, ObjectKind, ProtectedObject, RepoKey, Repository,
};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

pub const PASSWORD: &str = "correct horse battery staple";

/// Runs each test body once per backend.
#[macro_export]
macro_rules! on_all_backends {
    ($($name:ident;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn local() { super::$name($crate::support::Kind::Local).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn s3() { super::$name($crate::support::Kind::S3).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn azure() { super::$name($crate::support::Kind::Azure).await }
            }
        )*
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Local,
    S3,
    Azure,
}

/// Where a test's repository lives.
pub struct Place {
    pub kind: Kind,
    pub location: Location,
    /// Local: the temporary folder; S3: the bucket.
    pub tmp: Option<tempfile::TempDir>,
    pub bucket: String,
}

impl Drop for Place {
    /// A test's bucket goes with it (the S3 server's folder lives as long as the process).
    fn drop(&mut self) {
        if self.kind == Kind::S3 {
            S3Server::shared().remove_bucket(&self.bucket);
        }
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..20]
    )
}

pub async fn place(kind: Kind) -> Place {
    match kind {
        Kind::Local => {
            let tmp = tempfile::tempdir().unwrap();
            Place {
                kind,
                location: Location::Local {
                    path: tmp.path().join("repository"),
                },
                tmp: Some(tmp),
                bucket: String::new(),
            }
        }
        Kind::S3 => {
            let server = S3Server::shared();
            let bucket = unique("bkt");
            server.create_bucket(&bucket);
            Place {
                kind,
                location: server.location(&bucket, "backups/m365"),
                tmp: None,
                bucket,
            }
        }
        Kind::Azure => {
            let azurite = Azurite::shared();
            let container = unique("ctr");
            azurite.create_container(&container).await;
            Place {
                kind,
                location: azurite.location(&container, "backups/m365"),
                tmp: None,
                bucket: container,
            }
        }
    }
}

/// Cheap key derivation: the tests open repositories often.
pub fn init_options() -> InitOptions {
    InitOptions {
        kdf_cost: (1024, 1),
        ..InitOptions::default()
    }
}

pub struct Opened {
    pub repo: Repository,
    pub catalog: Arc<MemoryCatalog>,
    pub key: RepoKey,
}

pub async fn create(place: &Place) -> Opened {
    create_with(place, init_options()).await
}

pub async fn create_with(place: &Place, options: InitOptions) -> Opened {
    let catalog = Arc::new(MemoryCatalog::new());
    let key = uuid::Uuid::new_v4();
    let repo = Repository::init(
        &place.location,
        &Secret::new(PASSWORD),
        catalog.clone(),
        key,
        &options,
    )
    .await
    .unwrap();
    Opened { repo, catalog, key }
}

/// Opens the repository again with an empty catalog, rebuilt from the repository.
pub async fn reopen(place: &Place) -> Opened {
    let catalog = Arc::new(MemoryCatalog::new());
    let key = uuid::Uuid::new_v4();
    let repo = Repository::open(
        &place.location,
        &Secret::new(PASSWORD),
        catalog.clone(),
        key,
    )
    .await
    .unwrap();
    repo.rebuild_catalog(&m365backup_repo::progress::Quiet)
        .await
        .unwrap();
    Opened { repo, catalog, key }
}

/// `check` reading every pack finds nothing wrong and nothing left behind.
pub async fn assert_checks_clean(repo: &Repository) {
    let report = repo
        .check(
            m365backup_repo::check::ReadData::All,
            &m365backup_repo::progress::Quiet,
        )
        .await
        .unwrap();
    assert!(
        report.is_ok() && report.unindexed_packs.is_empty(),
        "{report:?}"
    );
}

pub fn object(id: &str) -> ProtectedObject {
    ProtectedObject {
        organization_id: "6f9b3da3-204d-4a4b-b466-55586e0233fc".into(),
        kind: ObjectKind::OneDrive,
        id: id.into(),
        name: format!("OneDrive of {id}"),
        url: Some(format!("https://contoso-my.sharepoint.com/personal/{id}")),
        owner_id: Some(format!("user-{id}")),
        owner_name: Some(format!("User {id}")),
        attributes: None,
    }
}

/// `len` bytes of deterministic noise.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// The bytes as a stream of pieces of `piece` bytes, as a download would deliver them.
pub fn stream_of(
    data: Vec<u8>,
    piece: usize,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let data = Bytes::from(data);
    let pieces: Vec<std::io::Result<Bytes>> = (0..data.len())
        .step_by(piece.max(1))
        .map(|start| Ok(data.slice(start..(start + piece).min(data.len()))))
        .collect();
    futures::stream::iter(pieces)
}

pub async fn read_all(repo: &Repository, content: &Content, range: Option<Range<u64>>) -> Vec<u8> {
    let stream = repo.read_content(content, range).unwrap();
    let parts: Vec<Bytes> = stream.try_collect().await.unwrap();
    parts.concat()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A damaged copy of one byte of a pack's first blob, wherever the backend keeps it.
pub async fn flip_byte_in_pack(place: &Place, pack_key: &str, offset: u64) {
    match place.kind {
        Kind::Local => {
            let path = match &place.location {
                Location::Local { path } => path.join(pack_key),
                _ => unreachable!(),
            };
            flip_file_byte(&path, offset);
        }
        Kind::S3 => {
            let path =
                S3Server::shared().object_path(&place.bucket, &format!("backups/m365/{pack_key}"));
            flip_file_byte(&path, offset);
        }
        Kind::Azure => {
            // Azurite keeps blobs in its own store: read, damage and write back through the API.
            let backend = m365backup_repo::backend::Backend::open(&place.location).unwrap();
            let mut bytes = backend.get(pack_key).await.unwrap().to_vec();
            bytes[offset as usize] ^= 0x40;
            backend.put(pack_key, Bytes::from(bytes)).await.unwrap();
        }
    }
}

fn flip_file_byte(path: &std::path::Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}
