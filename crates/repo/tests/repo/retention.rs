//! Retention through prune, with restore points written at chosen times.

use chrono::{DateTime, Duration, TimeZone, Utc};
use m365backup_repo::progress::Quiet;
use m365backup_repo::prune::PruneOptions;
use m365backup_repo::retention::{RetentionPeriod, RetentionPolicy, RetentionType};
use m365backup_repo::{Item, SnapshotFilter, SnapshotSpec};

use crate::on_all_backends;
use crate::restore_points::browse;
use crate::support::*;

on_all_backends! {
    snapshot_based_retention_removes_old_restore_points;
    item_level_retention_removes_old_item_versions;
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, 22, 0, 0).unwrap()
}

fn options(kind: RetentionType, period: RetentionPeriod, now: DateTime<Utc>) -> PruneOptions {
    PruneOptions {
        retention: Some(RetentionPolicy { kind, period }),
        now,
        grace: std::time::Duration::ZERO,
        ..PruneOptions::default()
    }
}

async fn snapshot_based_retention_removes_old_restore_points(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    // Ten nightly restore points; each night one file is rewritten with new content.
    for d in 1..=10 {
        let w = o
            .repo
            .begin_snapshot(SnapshotSpec {
                time: Some(day(d)),
                ..SnapshotSpec::new(object("dave"))
            })
            .await
            .unwrap();
        if d == 1 {
            w.put_file(
                Item::file("keep", None, "stable.bin"),
                stream_of(random_bytes(1000, 1 << 20), 65536),
            )
            .await
            .unwrap();
        }
        w.put_file(
            Item::file("daily", None, "daily.bin"),
            stream_of(random_bytes(d as u64, 1 << 20), 65536),
        )
        .await
        .unwrap();
        w.commit(None).await.unwrap();
    }
    let before = o.repo.stored_bytes().await.unwrap();
    let report = o
        .repo
        .prune(
            &options(
                RetentionType::SnapshotBased,
                RetentionPeriod::Days(5),
                day(10),
            ),
            &Quiet,
        )
        .await
        .unwrap();
    assert_eq!(report.restore_points_removed, 4, "{report:?}");
    // Days 2–4 wrote packs only they used: deleted. Day 1's pack also holds the stable file,
    // which day 5 still uses: repacked (the stable file copied out, the pack deleted).
    assert_eq!(report.packs_repacked, 1, "{report:?}");
    assert!(report.packs_deleted >= 3, "{report:?}");
    let unused = o
        .repo
        .check(m365backup_repo::check::ReadData::None, &Quiet)
        .await
        .unwrap();
    assert_eq!(unused.unreferenced_blobs, 0, "{unused:?}");
    assert_eq!(unused.unreferenced_packs, 0, "{unused:?}");
    let left = o.repo.snapshots(&SnapshotFilter::default()).await.unwrap();
    assert_eq!(
        left.iter().map(|s| s.doc.time).collect::<Vec<_>>(),
        (5..=10).map(day).collect::<Vec<_>>()
    );
    assert_eq!(o.repo.snapshot_ids().await.unwrap().len(), 6);
    let after = o.repo.stored_bytes().await.unwrap();
    assert!(
        before - after >= 4 << 20,
        "the four old daily versions are freed: {before} → {after}"
    );
    // The oldest kept restore point still has the file written on day 1, carried over since.
    let oldest = &left[0];
    let stable = o.repo.item(oldest, "keep").await.unwrap().unwrap();
    assert_eq!(
        read_all(&o.repo, stable.content.as_ref().unwrap(), None).await,
        random_bytes(1000, 1 << 20)
    );
    let daily = o.repo.item(oldest, "daily").await.unwrap().unwrap();
    assert_eq!(
        read_all(&o.repo, daily.content.as_ref().unwrap(), None).await,
        random_bytes(5, 1 << 20)
    );
    assert_checks_clean(&o.repo).await;
    // The next restore point builds on the latest kept one, and a rebuilt catalog agrees.
    let fresh = reopen(&place).await;
    for s in &left {
        assert_eq!(browse(&fresh.repo, s).await, browse(&o.repo, s).await);
    }
}

async fn item_level_retention_removes_old_item_versions(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let file = |id: &str, parent: Option<&str>, modified: DateTime<Utc>| {
        let mut item = Item::file(id, parent, format!("{id}.txt"));
        item.modified = Some(modified);
        item
    };
    let mut old_folder = Item::folder("old-folder", None, "Archive");
    old_folder.modified = Some(day(1) - Duration::days(400));
    let mut mixed = Item::folder("mixed", None, "Mixed");
    mixed.modified = Some(day(1) - Duration::days(400));
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec {
            time: Some(day(1)),
            ..SnapshotSpec::new(object("erin"))
        })
        .await
        .unwrap();
    w.put_item(old_folder).await.unwrap();
    w.put_item(mixed).await.unwrap();
    w.put_file(
        file("ancient", Some("old-folder"), day(1) - Duration::days(300)),
        stream_of(random_bytes(1, 300_000), 4096),
    )
    .await
    .unwrap();
    w.put_file(
        file("stale", Some("mixed"), day(1) - Duration::days(200)),
        stream_of(random_bytes(2, 300_000), 4096),
    )
    .await
    .unwrap();
    w.put_file(
        file("fresh", Some("mixed"), day(1) - Duration::days(10)),
        stream_of(random_bytes(3, 300_000), 4096),
    )
    .await
    .unwrap();
    let s1 = w.commit(None).await.unwrap();
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec {
            time: Some(day(2)),
            ..SnapshotSpec::new(object("erin"))
        })
        .await
        .unwrap();
    w.put_file(
        file("fresh", Some("mixed"), day(2) - Duration::hours(1)),
        stream_of(random_bytes(4, 300_000), 4096),
    )
    .await
    .unwrap();
    w.commit(None).await.unwrap();

    // Keep what was modified in the last 90 days.
    let report = o
        .repo
        .prune(
            &options(RetentionType::ItemLevel, RetentionPeriod::Days(90), day(2)),
            &Quiet,
        )
        .await
        .unwrap();
    assert_eq!(report.restore_points_rewritten, 2, "{report:?}");
    // Day 1's pack keeps only the first fresh version of three files: repacked.
    assert!(report.packs_repacked >= 1, "{report:?}");
    assert_eq!(
        report.item_versions_removed, 6,
        "two files and a folder in each: {report:?}"
    );
    let left = o.repo.snapshots(&SnapshotFilter::default()).await.unwrap();
    assert_eq!(left.len(), 2);
    let paths =
        |b: Vec<(String, String, u64)>| b.into_iter().map(|(p, _, _)| p).collect::<Vec<_>>();
    assert_eq!(
        paths(browse(&o.repo, &left[0]).await),
        ["/Mixed", "/Mixed/fresh.txt"]
    );
    assert_eq!(
        paths(browse(&o.repo, &left[1]).await),
        ["/Mixed", "/Mixed/fresh.txt"]
    );
    let f1 = o.repo.item(&left[0], "fresh").await.unwrap().unwrap();
    assert_eq!(
        read_all(&o.repo, f1.content.as_ref().unwrap(), None).await,
        random_bytes(3, 300_000)
    );
    assert_ne!(left[0].id, s1.id);
    assert_checks_clean(&o.repo).await;
    let fresh = reopen(&place).await;
    for s in &left {
        assert_eq!(browse(&fresh.repo, s).await, browse(&o.repo, s).await);
    }
    // The expired content is gone from storage.
    assert!(o.repo.stored_bytes().await.unwrap() < 800_000);
}
