//! Faults: a wrong password, a missing bucket, refused credentials, an unreachable endpoint and
//! a full disk each give a clear error, and nothing half-written becomes visible.

use std::time::{Duration, Instant};

use m365backup_core::Secret;
use m365backup_repo::check::ReadData;
use m365backup_repo::progress::Quiet;
use m365backup_repo::testing::{Azurite, S3Server, AZURITE_ACCOUNT};
use m365backup_repo::{
    AzureLocation, ErrorClass, Item, Location, MemoryCatalog, RepoError, Repository, S3Location,
    SnapshotFilter, SnapshotSpec, StorageFault,
};

use crate::on_all_backends;
use crate::support::*;

on_all_backends! {
    wrong_password_and_misplaced_repositories;
}

async fn open(location: &Location, password: &str) -> Result<Repository, RepoError> {
    Repository::open(
        location,
        &Secret::new(password),
        std::sync::Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
    )
    .await
}

async fn wrong_password_and_misplaced_repositories(kind: Kind) {
    let place = place(kind).await;
    let err = open(&place.location, PASSWORD).await.unwrap_err();
    assert!(matches!(err, RepoError::NotARepository { .. }), "{err}");
    create(&place).await;
    let err = open(&place.location, "not the password").await.unwrap_err();
    assert!(matches!(err, RepoError::WrongPassword { .. }), "{err}");
    assert!(err.to_string().contains("password is wrong"), "{err}");
    let err = Repository::init(
        &place.location,
        &Secret::new(PASSWORD),
        std::sync::Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
        &init_options(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RepoError::AlreadyExists { .. }), "{err}");
    open(&place.location, PASSWORD).await.unwrap();
}

fn fault_of(err: &RepoError) -> Option<StorageFault> {
    match err {
        RepoError::Storage { fault, .. } => Some(*fault),
        _ => None,
    }
}

async fn expect_fault(location: Location, fault: StorageFault) {
    let started = Instant::now();
    let err = Repository::init(
        &location,
        &Secret::new(PASSWORD),
        std::sync::Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
        &init_options(),
    )
    .await
    .unwrap_err();
    assert_eq!(fault_of(&err), Some(fault), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    let err = open(&location, PASSWORD).await.unwrap_err();
    assert_eq!(fault_of(&err), Some(fault), "{err}");
    assert!(matches!(
        err.class(),
        ErrorClass::Invalid | ErrorClass::Unavailable
    ));
    assert!(!err
        .to_string()
        .contains(m365backup_repo::testing::S3_SECRET_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_bad_credentials_unreachable() {
    let server = S3Server::shared();
    expect_fault(
        server.location("no-such-bucket", ""),
        StorageFault::NoBucket,
    )
    .await;
    let bucket = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    server.create_bucket(&bucket);
    let Location::S3(mut bad) = server.location(&bucket, "") else {
        unreachable!()
    };
    bad.secret_access_key = Secret::new("wrong-secret");
    expect_fault(Location::S3(bad.clone()), StorageFault::AccessDenied).await;
    bad.access_key_id = "unknown-key".into();
    expect_fault(Location::S3(bad), StorageFault::AccessDenied).await;
    let closed = closed_port();
    expect_fault(
        Location::S3(S3Location {
            endpoint: Some(format!("http://127.0.0.1:{closed}")),
            ..match server.location(&bucket, "") {
                Location::S3(s) => s,
                _ => unreachable!(),
            }
        }),
        StorageFault::Unreachable,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_missing_container_bad_key_unreachable() {
    let azurite = Azurite::shared();
    expect_fault(
        azurite.location("no-such-container", ""),
        StorageFault::NoBucket,
    )
    .await;
    let container = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    azurite.create_container(&container).await;
    let Location::Azure(good) = azurite.location(&container, "") else {
        unreachable!()
    };
    expect_fault(
        Location::Azure(AzureLocation {
            access_key: Secret::new("d3JvbmcgYXp1cml0ZSBrZXkgZm9yIHRlc3Rpbmc="),
            ..good.clone()
        }),
        StorageFault::AccessDenied,
    )
    .await;
    let closed = closed_port();
    expect_fault(
        Location::Azure(AzureLocation {
            endpoint: Some(format!("http://127.0.0.1:{closed}/{AZURITE_ACCOUNT}")),
            ..good
        }),
        StorageFault::Unreachable,
    )
    .await;
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Self { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_restore_point_and_keeps_the_earlier_ones() {
    let disk = SmallDisk::mount(24);
    let location = Location::Local {
        path: disk.dir.path().join("repository"),
    };
    let catalog = std::sync::Arc::new(MemoryCatalog::new());
    let repo = Repository::init(
        &location,
        &Secret::new(PASSWORD),
        catalog,
        uuid::Uuid::new_v4(),
        &init_options(),
    )
    .await
    .unwrap();
    let w = repo
        .begin_snapshot(SnapshotSpec::new(object("frank")))
        .await
        .unwrap();
    w.put_file(
        Item::file("a", None, "a.bin"),
        stream_of(random_bytes(1, 4 << 20), 65536),
    )
    .await
    .unwrap();
    let first = w.commit(None).await.unwrap();

    let w = repo
        .begin_snapshot(SnapshotSpec::new(object("frank")))
        .await
        .unwrap();
    let stored = w
        .put_file(
            Item::file("b", None, "b.bin"),
            stream_of(random_bytes(2, 48 << 20), 65536),
        )
        .await;
    let err = match stored {
        Err(e) => e,
        Ok(_) => w.commit(None).await.unwrap_err(),
    };
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");

    let fresh = Repository::open(
        &location,
        &Secret::new(PASSWORD),
        std::sync::Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
    )
    .await
    .unwrap();
    fresh.rebuild_catalog(&Quiet).await.unwrap();
    let snaps = fresh.snapshots(&SnapshotFilter::default()).await.unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.id).collect::<Vec<_>>(),
        [first.id],
        "only the complete restore point"
    );
    let report = fresh.check(ReadData::All, &Quiet).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    let a = fresh.item(&snaps[0], "a").await.unwrap().unwrap();
    assert_eq!(
        read_all(&fresh, a.content.as_ref().unwrap(), None).await,
        random_bytes(1, 4 << 20)
    );
    let tmp_left = std::fs::read_dir(disk.dir.path().join("repository/tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp_left, 0, "no half-written file is left behind");
}
