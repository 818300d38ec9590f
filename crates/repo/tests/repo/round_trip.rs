//! Content round trips: every size that matters, read back byte for byte, and ranges; packs
//! that never outgrow the repository's pack size.

use m365backup_repo::backend::Backend;
use m365backup_repo::{InitOptions, Item, RepoError, SnapshotSpec};

use crate::on_all_backends;
use crate::support::*;

on_all_backends! {
    sizes_round_trip;
    ranges_return_exactly_the_asked_bytes;
    a_large_file_round_trips;
    packs_never_outgrow_their_size;
}

const MIN: usize = 256 * 1024;
const AVG: usize = 1024 * 1024;
const MAX: usize = 4 * 1024 * 1024;

async fn sizes_round_trip(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec::new(object("sizes")))
        .await
        .unwrap();
    let sizes = [
        0,
        1,
        MIN - 1,
        MIN,
        MIN + 1,
        AVG,
        MAX - 1,
        MAX,
        MAX + 1,
        2 * MAX,
        3 * MAX + 7,
    ];
    let mut expected = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data = random_bytes(i as u64, *size);
        let item = Item::file(format!("f{i:02}"), None, format!("size-{size}.bin"));
        // Odd piece sizes: chunk boundaries must not depend on how the bytes arrive.
        let stored = w
            .put_file(item, stream_of(data.clone(), 7919 + i * 1000))
            .await
            .unwrap();
        assert_eq!(stored.content.as_ref().unwrap().size, *size as u64);
        expected.push((stored, sha256(&data)));
    }
    let snap = w.commit(None).await.unwrap();
    assert_eq!(snap.doc.summary.files, sizes.len() as u64);
    // Read back through the catalog's view of the restore point, and after reopening it cold.
    for opened in [o, reopen(&place).await] {
        let snap = opened.repo.snapshot(snap.id).await.unwrap();
        for (item, digest) in &expected {
            let listed = opened.repo.item(&snap, &item.id).await.unwrap().unwrap();
            let back = read_all(&opened.repo, listed.content.as_ref().unwrap(), None).await;
            assert_eq!(
                back.len() as u64,
                item.size.max(listed.content.as_ref().unwrap().size)
            );
            assert_eq!(sha256(&back), *digest, "{}", item.name);
        }
        let report = opened
            .repo
            .check(
                m365backup_repo::check::ReadData::All,
                &m365backup_repo::progress::Quiet,
            )
            .await
            .unwrap();
        assert!(report.is_ok(), "{report:?}");
    }
}

async fn ranges_return_exactly_the_asked_bytes(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec::new(object("ranges")))
        .await
        .unwrap();
    let data = random_bytes(99, 9 * AVG + 12345);
    let item = w
        .put_file(
            Item::file("r", None, "ranges.bin"),
            stream_of(data.clone(), 65536),
        )
        .await
        .unwrap();
    w.commit(None).await.unwrap();
    let content = item.content.unwrap();
    assert!(content.chunks.len() > 3, "spans several chunks");
    let n = data.len() as u64;
    let mut ranges = vec![0..0, 0..1, n - 1..n, 0..n, 5..n - 5];
    // Ranges that start and end on, before and after chunk boundaries.
    let mut at = 0u64;
    for chunk in &content.chunks {
        at += chunk.1 as u64;
        if at < n {
            ranges.push(at - 1..at + 1);
            ranges.push(at..(at + 3 * AVG as u64).min(n));
        }
    }
    let mut rng_seed = 7u64;
    for _ in 0..20 {
        rng_seed = rng_seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let a = rng_seed % n;
        let b = (rng_seed >> 17) % n;
        ranges.push(a.min(b)..a.max(b));
    }
    for r in ranges {
        let got = read_all(&o.repo, &content, Some(r.clone())).await;
        assert_eq!(got, &data[r.start as usize..r.end as usize], "range {r:?}");
    }
    #[allow(clippy::reversed_empty_ranges)] // a reversed range is the bad input here
    for bad in [n..n + 1, 10..5] {
        assert!(matches!(
            o.repo.read_content(&content, Some(bad)),
            Err(RepoError::Invalid(_))
        ));
    }
}

async fn a_large_file_round_trips(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec::new(object("large")))
        .await
        .unwrap();
    let data = random_bytes(100, 100 * 1024 * 1024);
    let digest = sha256(&data);
    let item = w
        .put_file(
            Item::file("big", None, "big.bin"),
            stream_of(data, 256 * 1024),
        )
        .await
        .unwrap();
    w.commit(None).await.unwrap();
    let back = read_all(&o.repo, item.content.as_ref().unwrap(), None).await;
    assert_eq!(back.len(), 100 * 1024 * 1024);
    assert_eq!(sha256(&back), digest);
}

/// A chunk that would take the open pack past the pack size goes into the next pack: a pack
/// holds at most `pack_size` bytes of chunks (plus its header), so its buffer never grows past
/// that either. (Closing a pack only once it had passed the size let it grow by up to a whole
/// chunk, and its buffer be copied into a larger one for that last chunk.)
async fn packs_never_outgrow_their_size(kind: Kind) {
    const PACK_SIZE: u64 = 5 * 1024 * 1024;
    let place = place(kind).await;
    let o = create_with(
        &place,
        InitOptions {
            pack_size: PACK_SIZE,
            ..init_options()
        },
    )
    .await;
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec::new(object("packs")))
        .await
        .unwrap();
    let files: Vec<Vec<u8>> = (0..3)
        .map(|i| random_bytes(500 + i, 8 * 1024 * 1024))
        .collect();
    for (i, data) in files.iter().enumerate() {
        let name = format!("f{i}");
        w.put_file(
            Item::file(&name, None, format!("{name}.bin")),
            stream_of(data.clone(), 256 * 1024),
        )
        .await
        .unwrap();
    }
    let record = w.commit(None).await.unwrap();
    let backend = Backend::open(&place.location).unwrap();
    let packs = backend.list("data").await.unwrap();
    assert!(
        packs.len() >= 4,
        "24 MiB in 5 MiB packs: {} packs",
        packs.len()
    );
    // The header: 49 bytes per chunk, sealed, and the trailer; far below 64 KiB here.
    let most = PACK_SIZE + 64 * 1024;
    for pack in &packs {
        assert!(
            pack.size <= most,
            "pack {} holds {} bytes, more than the pack size {PACK_SIZE} and its header",
            pack.name,
            pack.size
        );
    }
    for (i, data) in files.iter().enumerate() {
        let item = o
            .repo
            .item(&record, &format!("f{i}"))
            .await
            .unwrap()
            .unwrap();
        let content = read_all(&o.repo, item.content.as_ref().unwrap(), None).await;
        assert_eq!(sha256(&content), sha256(data), "f{i}");
    }
    assert_checks_clean(&o.repo).await;
}
