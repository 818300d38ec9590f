//! Restore points: incremental writes that carry unchanged items over, browsing by folder and
//! by time, and a catalog rebuilt from the repository giving the same answers.

use chrono::{Duration, TimeZone, Utc};
use m365backup_repo::{
    Item, ItemKind, RepoError, Repository, SnapshotFilter, SnapshotRecord, SnapshotSpec,
};

use crate::on_all_backends;
use crate::support::*;

on_all_backends! {
    incremental_restore_points_browse_by_folder_and_time;
    catalog_rebuilt_from_the_repository_browses_the_same;
    one_object_cannot_be_committed_twice_on_one_parent;
}

fn t(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 22, 0, 0).unwrap()
}

fn file(id: &str, parent: Option<&str>, name: &str, day: u32) -> Item {
    let mut item = Item::file(id, parent, name);
    item.modified = Some(t(day) - Duration::hours(1));
    item.c_tag = Some(format!("ctag-{id}-{day}"));
    item
}

/// Every item of a restore point as `path → (id, size)`, walking folders through the catalog.
pub async fn browse(repo: &Repository, snap: &SnapshotRecord) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    let mut stack: Vec<(Option<String>, String)> = vec![(None, String::new())];
    while let Some((parent, path)) = stack.pop() {
        for item in repo.list_folder(snap, parent.as_deref()).await.unwrap() {
            let p = format!("{path}/{}", item.name);
            if item.kind == ItemKind::Folder {
                stack.push((Some(item.id.clone()), p.clone()));
            }
            out.push((
                p,
                item.id.clone(),
                item.content.as_ref().map_or(0, |c| c.size),
            ));
        }
    }
    out.sort();
    out
}

async fn write_history(repo: &Repository) -> Vec<SnapshotRecord> {
    // Day 1: two folders, three files.
    let w = repo
        .begin_snapshot(SnapshotSpec {
            time: Some(t(1)),
            ..SnapshotSpec::new(object("alice"))
        })
        .await
        .unwrap();
    w.put_item(Item::folder("docs", None, "Documents"))
        .await
        .unwrap();
    w.put_item(Item::folder("pics", None, "Pictures"))
        .await
        .unwrap();
    w.put_file(
        file("a", Some("docs"), "a.txt", 1),
        stream_of(b"alpha".to_vec(), 2),
    )
    .await
    .unwrap();
    w.put_file(
        file("b", Some("docs"), "b.bin", 1),
        stream_of(random_bytes(1, 3_000_000), 100_000),
    )
    .await
    .unwrap();
    w.put_file(
        file("c", Some("pics"), "c.jpg", 1),
        stream_of(random_bytes(2, 500_000), 100_000),
    )
    .await
    .unwrap();
    let s1 = w.commit(Some("delta-1".into())).await.unwrap();
    // Day 2: a changed, c deleted, d added; b untouched (carried over without its content).
    let w = repo
        .begin_snapshot(SnapshotSpec {
            time: Some(t(2)),
            ..SnapshotSpec::new(object("alice"))
        })
        .await
        .unwrap();
    assert_eq!(w.parent().unwrap().id, s1.id);
    let previous_a = w.parent_item("a").await.unwrap().unwrap();
    assert_eq!(previous_a.c_tag.as_deref(), Some("ctag-a-1"));
    w.put_file(
        file("a", Some("docs"), "a.txt", 2),
        stream_of(b"alpha, edited".to_vec(), 4),
    )
    .await
    .unwrap();
    w.delete_item("c").await.unwrap();
    w.put_file(
        file("d", Some("pics"), "d.png", 2),
        stream_of(random_bytes(3, 10_000), 1000),
    )
    .await
    .unwrap();
    let s2 = w.commit(Some("delta-2".into())).await.unwrap();
    // Day 3: nothing changed at all.
    let w = repo
        .begin_snapshot(SnapshotSpec {
            time: Some(t(3)),
            ..SnapshotSpec::new(object("alice"))
        })
        .await
        .unwrap();
    let s3 = w.commit(Some("delta-3".into())).await.unwrap();
    vec![s1, s2, s3]
}

async fn incremental_restore_points_browse_by_folder_and_time(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let snaps = write_history(&o.repo).await;
    let (s1, s2, s3) = (&snaps[0], &snaps[1], &snaps[2]);
    assert_eq!(s1.doc.summary.files, 3);
    assert_eq!(s2.doc.stats.added_items, 1);
    assert_eq!(s2.doc.stats.changed_items, 1);
    assert_eq!(s2.doc.stats.deleted_items, 1);
    assert!(
        s2.doc.stats.read_bytes < 20_000,
        "only changed content is read: {:?}",
        s2.doc.stats
    );
    assert_eq!(
        s3.doc.pages, s2.doc.pages,
        "an unchanged object stores no new pages"
    );
    assert_eq!(s3.doc.stats.stored_bytes, 0);
    assert_eq!(s3.doc.delta_state.as_deref(), Some("delta-3"));

    let b1 = browse(&o.repo, s1).await;
    let b2 = browse(&o.repo, s2).await;
    let paths =
        |b: &[(String, String, u64)]| b.iter().map(|(p, _, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        paths(&b1),
        [
            "/Documents",
            "/Documents/a.txt",
            "/Documents/b.bin",
            "/Pictures",
            "/Pictures/c.jpg"
        ]
    );
    assert_eq!(
        paths(&b2),
        [
            "/Documents",
            "/Documents/a.txt",
            "/Documents/b.bin",
            "/Pictures",
            "/Pictures/d.png"
        ]
    );
    assert_eq!(browse(&o.repo, s3).await, b2);

    // Each restore point reads back its own version of a.txt.
    for (snap, text) in [(s1, &b"alpha"[..]), (s2, &b"alpha, edited"[..])] {
        let a = o.repo.item(snap, "a").await.unwrap().unwrap();
        assert_eq!(
            read_all(&o.repo, a.content.as_ref().unwrap(), None).await,
            text
        );
    }
    assert!(o.repo.item(s2, "c").await.unwrap().is_none());
    assert!(o.repo.item(s1, "c").await.unwrap().is_some());

    // Deleted items: listed where they were, as they last were; moved or changed ones are not.
    let names = |items: Vec<Item>| items.into_iter().map(|i| i.name).collect::<Vec<_>>();
    for snap in [s2, s3] {
        assert_eq!(
            names(o.repo.list_deleted(snap, Some("pics")).await.unwrap()),
            ["c.jpg"]
        );
        assert!(o
            .repo
            .list_deleted(snap, Some("docs"))
            .await
            .unwrap()
            .is_empty());
        let c = o.repo.item_last_seen(snap, "c").await.unwrap().unwrap();
        assert_eq!(c.content.as_ref().unwrap().size, 500_000);
    }
    assert!(o
        .repo
        .list_deleted(s1, Some("pics"))
        .await
        .unwrap()
        .is_empty());
    let a = o.repo.item_last_seen(s2, "a").await.unwrap().unwrap();
    assert_eq!(a.c_tag.as_deref(), Some("ctag-a-2"));
    assert!(o.repo.item_last_seen(s1, "d").await.unwrap().is_none());

    // Latest at or before a time; listing by object and by time.
    let key = object("alice").key();
    let at = |day, hour| Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap();
    assert!(o
        .repo
        .latest_snapshot(&key, Some(at(1, 21)))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        o.repo
            .latest_snapshot(&key, Some(at(1, 22)))
            .await
            .unwrap()
            .unwrap()
            .id,
        s1.id
    );
    assert_eq!(
        o.repo
            .latest_snapshot(&key, Some(at(2, 23)))
            .await
            .unwrap()
            .unwrap()
            .id,
        s2.id
    );
    assert_eq!(
        o.repo
            .latest_snapshot(&key, None)
            .await
            .unwrap()
            .unwrap()
            .id,
        s3.id
    );
    let between = o
        .repo
        .snapshots(&SnapshotFilter {
            at_or_after: Some(at(2, 0)),
            ..SnapshotFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        between.iter().map(|s| s.id).collect::<Vec<_>>(),
        [s2.id, s3.id]
    );

    // A restore point must be later than the object's latest.
    let err = o
        .repo
        .begin_snapshot(SnapshotSpec {
            time: Some(t(3)),
            ..SnapshotSpec::new(object("alice"))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Invalid(_)), "{err}");
}

async fn catalog_rebuilt_from_the_repository_browses_the_same(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let snaps = write_history(&o.repo).await;
    let mut before = Vec::new();
    for s in &snaps {
        before.push(browse(&o.repo, s).await);
    }
    // The catalog is lost: a fresh one is rebuilt from the repository alone.
    let fresh = reopen(&place).await;
    let listed = fresh
        .repo
        .snapshots(&SnapshotFilter::default())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        snaps.iter().map(|s| s.id).collect::<Vec<_>>()
    );
    for (s, expected) in snaps.iter().zip(&before) {
        assert_eq!(&browse(&fresh.repo, s).await, expected);
    }
    // The rebuilt catalog serves the next incremental restore point too.
    let w = fresh
        .repo
        .begin_snapshot(SnapshotSpec {
            time: Some(t(4)),
            ..SnapshotSpec::new(object("alice"))
        })
        .await
        .unwrap();
    assert_eq!(w.parent().unwrap().id, snaps[2].id);
    w.delete_item("b").await.unwrap();
    let s4 = w.commit(None).await.unwrap();
    assert_eq!(browse(&fresh.repo, &s4).await.len(), 4);
    // And the same catalog once more after a second rebuild.
    fresh
        .repo
        .rebuild_catalog(&m365backup_repo::progress::Quiet)
        .await
        .unwrap();
    assert_eq!(browse(&fresh.repo, &s4).await.len(), 4);
    assert_eq!(&browse(&fresh.repo, &snaps[1]).await, &before[1]);
}

async fn one_object_cannot_be_committed_twice_on_one_parent(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let spec = |day| SnapshotSpec {
        time: Some(t(day)),
        ..SnapshotSpec::new(object("bob"))
    };
    let first = o.repo.begin_snapshot(spec(1)).await.unwrap();
    let second = o.repo.begin_snapshot(spec(2)).await.unwrap();
    first.put_item(Item::folder("x", None, "X")).await.unwrap();
    second.put_item(Item::folder("y", None, "Y")).await.unwrap();
    second.commit(None).await.unwrap();
    let err = first.commit(None).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err}");
    let all = o.repo.snapshots(&SnapshotFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        o.repo.snapshot_ids().await.unwrap().len(),
        1,
        "nothing of the refused one stays"
    );
}
