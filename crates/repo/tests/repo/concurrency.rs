//! Several writers at once: both commit, shared chunks are stored once, check passes; prune
//! waits for writers (it cannot take its exclusive lock while one works); many more streams
//! than pack buffers wait for one in turn, and every writer still commits.

use m365backup_repo::check::ReadData;
use m365backup_repo::progress::Quiet;
use m365backup_repo::prune::PruneOptions;
use m365backup_repo::{InitOptions, Item, RepoError, Repository, SnapshotSpec, PACK_BUFFERS};

use crate::on_all_backends;
use crate::support::*;

on_all_backends! {
    two_writers_at_once_share_chunks;
    two_handles_write_at_once_and_prune_waits;
    more_streams_than_pack_buffers_all_commit;
}

async fn write_object(
    repo: Repository,
    name: &'static str,
    shared: Vec<u8>,
    own: Vec<u8>,
) -> m365backup_repo::SnapshotRecord {
    let w = repo
        .begin_snapshot(SnapshotSpec::new(object(name)))
        .await
        .unwrap();
    let w = std::sync::Arc::new(w);
    // Each object's files are stored by several tasks at once, as a job downloads them.
    let a = {
        let w = w.clone();
        tokio::spawn(async move {
            w.put_file(
                Item::file("shared", None, "shared.bin"),
                stream_of(shared, 64 * 1024),
            )
            .await
        })
    };
    let b = {
        let w = w.clone();
        tokio::spawn(async move {
            w.put_file(
                Item::file("own", None, "own.bin"),
                stream_of(own, 64 * 1024),
            )
            .await
        })
    };
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    let w = std::sync::Arc::into_inner(w).unwrap();
    w.commit(None).await.unwrap()
}

async fn two_writers_at_once_share_chunks(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let shared = random_bytes(1, 12 * 1024 * 1024);
    let (x, y) = tokio::join!(
        write_object(
            o.repo.clone(),
            "x",
            shared.clone(),
            random_bytes(2, 2 * 1024 * 1024)
        ),
        write_object(
            o.repo.clone(),
            "y",
            shared.clone(),
            random_bytes(3, 2 * 1024 * 1024)
        ),
    );
    let stored = o.repo.stored_bytes().await.unwrap();
    let mib = 1024 * 1024;
    assert!(
        stored < 17 * mib,
        "shared chunks stored once: {stored} bytes for 16 MiB of distinct data"
    );
    assert!(stored >= 16 * mib);
    assert_eq!(
        x.doc.stats.new_bytes + y.doc.stats.new_bytes,
        16 * mib,
        "{:?} {:?}",
        x.doc.stats,
        y.doc.stats
    );
    let report = o.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    for snap in [&x, &y] {
        let item = o.repo.item(snap, "shared").await.unwrap().unwrap();
        assert_eq!(
            sha256(&read_all(&o.repo, item.content.as_ref().unwrap(), None).await),
            sha256(&shared)
        );
    }
}

async fn two_handles_write_at_once_and_prune_waits(kind: Kind) {
    let place = place(kind).await;
    let first = create(&place).await;
    // A second server opening the same repository (its own catalog, rebuilt).
    let second = reopen(&place).await;
    let data = random_bytes(4, 3 * 1024 * 1024);
    let w1 = first
        .repo
        .begin_snapshot(SnapshotSpec::new(object("p")))
        .await
        .unwrap();
    let w2 = second
        .repo
        .begin_snapshot(SnapshotSpec::new(object("q")))
        .await
        .unwrap();
    // While writers hold their locks, prune refuses to start.
    let err = first
        .repo
        .prune(&PruneOptions::default(), &Quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Locked(_)), "{err}");
    let (a, b) = tokio::join!(
        w1.put_file(
            Item::file("f", None, "f.bin"),
            stream_of(data.clone(), 10_000)
        ),
        w2.put_file(
            Item::file("f", None, "f.bin"),
            stream_of(data.clone(), 10_000)
        ),
    );
    a.unwrap();
    b.unwrap();
    w1.commit(None).await.unwrap();
    w2.commit(None).await.unwrap();
    // Prune runs now, keeps what both use, and everything still reads.
    first
        .repo
        .prune(
            &PruneOptions {
                grace: std::time::Duration::ZERO,
                ..PruneOptions::default()
            },
            &Quiet,
        )
        .await
        .unwrap();
    let fresh = reopen(&place).await;
    let report = fresh.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.snapshots, 2);
    for name in ["p", "q"] {
        let snap = fresh
            .repo
            .latest_snapshot(&object(name).key(), None)
            .await
            .unwrap()
            .unwrap();
        let item = fresh.repo.item(&snap, "f").await.unwrap().unwrap();
        assert_eq!(
            read_all(&fresh.repo, item.content.as_ref().unwrap(), None).await,
            data
        );
    }
}

/// Writers of 6 objects, 4 files each, all at once: 24 streams filling packs so small that
/// every chunk closes one, against 3 pack buffers. Streams wait for a buffer rather than
/// allocate one, tree pages (written while other writers' streams hold every buffer) still find
/// one, and every writer commits; the repository checks clean and every file reads back.
async fn more_streams_than_pack_buffers_all_commit(kind: Kind) {
    const WRITERS: usize = 6;
    const FILES: usize = 4;
    let place = place(kind).await;
    let o = create_with(
        &place,
        InitOptions {
            pack_size: 64 * 1024,
            ..init_options()
        },
    )
    .await;
    let data = |w: usize, f: usize| random_bytes(100 + (w * FILES + f) as u64, 700 * 1024);
    let writers = (0..WRITERS).map(|w| {
        let repo = o.repo.clone();
        async move {
            let writer = std::sync::Arc::new(
                repo.begin_snapshot(SnapshotSpec::new(object(&format!("o{w}"))))
                    .await
                    .unwrap(),
            );
            let files: Vec<_> = (0..FILES)
                .map(|f| {
                    let writer = writer.clone();
                    tokio::spawn(async move {
                        let name = format!("f{f}");
                        writer
                            .put_file(
                                Item::file(&name, None, format!("{name}.bin")),
                                stream_of(data(w, f), 16 * 1024),
                            )
                            .await
                    })
                })
                .collect();
            for file in files {
                file.await.unwrap().unwrap();
            }
            let writer = std::sync::Arc::into_inner(writer).unwrap();
            writer.commit(None).await.unwrap()
        }
    });
    // A deadlock shows as this timeout, not as a hung test run.
    let records = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        futures::future::join_all(writers),
    )
    .await
    .expect("every writer commits (no stream waits forever for a pack buffer)");
    let peak = o.repo.pack_buffers_peak();
    assert!(
        (2..=PACK_BUFFERS).contains(&peak),
        "pack buffers alive at once: {peak} (bound {PACK_BUFFERS})"
    );
    let report = o.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.snapshots, WRITERS);
    for (w, record) in records.iter().enumerate() {
        for f in 0..FILES {
            let item = o
                .repo
                .item(record, &format!("f{f}"))
                .await
                .unwrap()
                .unwrap();
            let content = read_all(&o.repo, item.content.as_ref().unwrap(), None).await;
            assert_eq!(sha256(&content), sha256(&data(w, f)), "o{w}/f{f}");
        }
    }
}
