//! A storage service that fails in the middle of an upload (S3 and Azure): the writer talks to
//! the service through a TCP relay that, once a few MiB have gone up, cuts every connection in
//! mid-request and refuses new ones, as a server that died or a network that fell would. The
//! writer must fail with a clear error in seconds; afterwards, read directly from the service,
//! the repository shows nothing half-written (every pack object hashes to its name, the failed
//! restore point is absent), still checks reading every pack, and the earlier restore point
//! reads back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use m365backup_core::Secret;
use m365backup_repo::backend::Backend;
use m365backup_repo::check::ReadData;
use m365backup_repo::progress::Quiet;
use m365backup_repo::testing::{Azurite, S3Server};
use m365backup_repo::{
    ErrorClass, InitOptions, Item, Location, MemoryCatalog, Repository, SnapshotFilter,
    SnapshotSpec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_fails_mid_upload() {
    storage_fails_mid_upload(Kind::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_fails_mid_upload() {
    storage_fails_mid_upload(Kind::Azure).await;
}

/// A relay to `upstream` that cuts everything once `cut_after` bytes have gone up.
struct FailingRelay {
    port: u16,
    cut: Arc<AtomicBool>,
    up: Arc<AtomicU64>,
}

impl FailingRelay {
    async fn start(upstream: u16, cut_after: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let up = Arc::new(AtomicU64::new(0));
        let (cut_tx, cut_rx) = tokio::sync::watch::channel(false);
        let cut_tx = Arc::new(cut_tx);
        let (c, u) = (cut.clone(), up.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if c.load(Ordering::SeqCst) {
                    drop(client); // refused: the service is gone
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                tokio::spawn(relay(
                    client,
                    server,
                    c.clone(),
                    u.clone(),
                    cut_after,
                    cut_tx.clone(),
                    cut_rx.clone(),
                ));
            }
        });
        Self { port, cut, up }
    }
}

/// One connection: bytes both ways until the cut, then both sockets dropped mid-stream.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    cut: Arc<AtomicBool>,
    up: Arc<AtomicU64>,
    cut_after: u64,
    cut_tx: Arc<tokio::sync::watch::Sender<bool>>,
    mut cut_rx: tokio::sync::watch::Receiver<bool>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upward = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                let _ = server_write.shutdown().await;
                return;
            }
            let total = up.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= cut_after {
                // Part of this request reached the service, the rest never will.
                let _ = server_write.write_all(&buf[..n / 2]).await;
                cut.store(true, Ordering::SeqCst);
                let _ = cut_tx.send(true);
                return;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downward = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        // Keep the client side open until the cut or the upward direction ends.
        std::future::pending::<()>().await;
    };
    let cut_seen = async {
        while !*cut_rx.borrow_and_update() {
            if cut_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = upward => {}
        _ = downward => {}
        _ = cut_seen => {}
    }
}

/// The place's location, reached through the relay on `port`.
fn through(location: &Location, port: u16) -> Location {
    match location.clone() {
        Location::S3(mut s3) => {
            s3.endpoint = Some(format!("http://127.0.0.1:{port}"));
            Location::S3(s3)
        }
        Location::Azure(mut az) => {
            az.endpoint = Some(format!(
                "http://127.0.0.1:{port}/{}",
                m365backup_repo::testing::AZURITE_ACCOUNT
            ));
            Location::Azure(az)
        }
        Location::Local { .. } => unreachable!("a local folder has no service to fail"),
    }
}

fn service_port(kind: Kind) -> u16 {
    match kind {
        Kind::S3 => S3Server::shared()
            .endpoint
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap(),
        Kind::Azure => Azurite::shared().port,
        Kind::Local => unreachable!(),
    }
}

async fn storage_fails_mid_upload(kind: Kind) {
    let place = place(kind).await;
    // Small packs: the file goes up as several pack uploads, the cut lands inside one.
    let created = create_with(
        &place,
        InitOptions {
            pack_size: 1 << 20,
            ..init_options()
        },
    )
    .await;
    let first_data = random_bytes(11, 1_500_000);
    let w = created
        .repo
        .begin_snapshot(SnapshotSpec::new(object("outage")))
        .await
        .unwrap();
    w.put_file(
        Item::file("first", None, "first.bin"),
        stream_of(first_data.clone(), 65536),
    )
    .await
    .unwrap();
    let first = w.commit(None).await.unwrap();
    drop(created);

    let relay = FailingRelay::start(service_port(kind), 5 << 20).await;
    let repo = Repository::open(
        &through(&place.location, relay.port),
        &Secret::new(PASSWORD),
        Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
    )
    .await
    .unwrap();
    repo.rebuild_catalog(&Quiet).await.unwrap();
    let started = Instant::now();
    let w = repo
        .begin_snapshot(SnapshotSpec::new(object("outage")))
        .await
        .unwrap();
    let stored = w
        .put_file(
            Item::file("second", None, "second.bin"),
            stream_of(random_bytes(12, 16 << 20), 65536),
        )
        .await;
    let err = match stored {
        Err(e) => e,
        Ok(_) => w.commit(None).await.unwrap_err(),
    };
    assert!(relay.cut.load(Ordering::SeqCst), "the relay cut the upload");
    assert!(
        relay.up.load(Ordering::SeqCst) < 16 << 20,
        "the cut came before the whole file went up"
    );
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err:?}");
    let message = m365backup_core::Chain(&err).to_string();
    assert!(
        message.contains(&place.location.display()),
        "the error names the storage: {message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the failure took {:?}: {message}",
        started.elapsed()
    );
    drop(repo);

    // Straight from the service: nothing half-written, the earlier restore point intact.
    let backend = Backend::open(&place.location).unwrap();
    for pack in backend.list("data").await.unwrap() {
        let bytes = backend
            .get(&format!("data/{}/{}", &pack.name[..2], pack.name))
            .await
            .unwrap();
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            pack.name,
            "pack object {} is whole",
            pack.name
        );
    }
    let o = reopen(&place).await;
    let snaps = o.repo.snapshots(&SnapshotFilter::default()).await.unwrap();
    assert_eq!(
        snaps.iter().map(|s| s.id).collect::<Vec<_>>(),
        [first.id],
        "only the restore point committed before the failure"
    );
    let report = o.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    let item = o.repo.item(&snaps[0], "first").await.unwrap().unwrap();
    assert!(read_all(&o.repo, item.content.as_ref().unwrap(), None).await == first_data);
}
