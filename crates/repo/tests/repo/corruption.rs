//! A flipped byte in a pack: `check` names the chunk, the restore points and the files that use
//! it; other files still read; a read of the damaged file fails and never returns wrong bytes.

use futures::StreamExt;
use m365backup_repo::check::ReadData;
use m365backup_repo::format::pack_key;
use m365backup_repo::progress::Quiet;
use m365backup_repo::{Item, RepoError, SnapshotSpec};

use crate::on_all_backends;
use crate::support::*;

on_all_backends! {
    a_flipped_byte_is_found_and_never_read_as_data;
    a_data_subset_check_reads_its_share_and_finds_damage_in_it;
}

/// `check --read-data-subset`: each run reads the asked share of the packs (rounded up), a
/// different random choice each time, and reports the flipped byte exactly when the damaged
/// pack is among those read; over the runs both happen.
async fn a_data_subset_check_reads_its_share_and_finds_damage_in_it(kind: Kind) {
    let place = place(kind).await;
    let o = create_with(
        &place,
        m365backup_repo::InitOptions {
            pack_size: 256 * 1024,
            ..init_options()
        },
    )
    .await;
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec::new(object("dora")))
        .await
        .unwrap();
    // Small files (one chunk each) fill many small packs.
    let mut files = Vec::new();
    for i in 0..40 {
        let data = random_bytes(20 + i, 150_000);
        files.push(
            w.put_file(
                Item::file(format!("f{i}"), None, format!("{i}.bin")),
                stream_of(data, 65536),
            )
            .await
            .unwrap(),
        );
    }
    let file = &files[7];
    w.commit(None).await.unwrap();
    let all = o.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(all.is_ok(), "{all:?}");
    let packs = all.packs;
    assert!(packs >= 15, "{packs} packs");
    assert_eq!(all.packs_read, packs);

    let victim = file.content.as_ref().unwrap().chunks[0].0;
    let location = o.catalog_lookup(victim).await;
    flip_byte_in_pack(&place, &pack_key(&location.pack), location.offset + 50).await;

    let share = 0.3;
    let want = (packs as f64 * share).ceil() as usize;
    let (mut found, mut missed) = (0, 0);
    let mut chosen = std::collections::HashSet::new();
    for _ in 0..30 {
        let r = o.repo.check(ReadData::Subset(share), &Quiet).await.unwrap();
        assert_eq!(r.packs_read, want, "{packs} packs at {share}");
        let read: std::collections::HashSet<_> = r.read_packs.iter().copied().collect();
        assert_eq!(read.len(), want, "each pack read once");
        chosen.extend(read.iter().copied());
        if read.contains(&location.pack) {
            found += 1;
            assert_eq!(r.damaged.len(), 1, "{r:?}");
            assert_eq!(r.damaged[0].blob, victim);
            assert_eq!(r.damaged[0].pack, location.pack);
        } else {
            missed += 1;
            assert!(r.is_ok(), "damage reported in a pack not read: {r:?}");
        }
    }
    assert!(found > 0 && missed > 0, "found {found}, missed {missed}");
    assert!(chosen.len() > want, "the subset is drawn anew each run");
}

async fn a_flipped_byte_is_found_and_never_read_as_data(kind: Kind) {
    let place = place(kind).await;
    let o = create(&place).await;
    let w = o
        .repo
        .begin_snapshot(SnapshotSpec::new(object("carol")))
        .await
        .unwrap();
    w.put_item(Item::folder("f", None, "Reports"))
        .await
        .unwrap();
    // Over twice the largest chunk (4 MiB), so it has at least three chunks whatever the
    // repository's keyed cut points are (3 MiB was sometimes a single chunk).
    let damaged_data = random_bytes(10, 9 * 1024 * 1024);
    let healthy_data = random_bytes(11, 2 * 1024 * 1024);
    let damaged = w
        .put_file(
            Item::file("d", Some("f"), "q3.xlsx"),
            stream_of(damaged_data, 65536),
        )
        .await
        .unwrap();
    let healthy = w
        .put_file(
            Item::file("h", Some("f"), "q4.xlsx"),
            stream_of(healthy_data.clone(), 65536),
        )
        .await
        .unwrap();
    let snap = w.commit(None).await.unwrap();
    assert!(o.repo.check(ReadData::All, &Quiet).await.unwrap().is_ok());

    let victim = damaged.content.as_ref().unwrap().chunks[1].0;
    let location = o.catalog_lookup(victim).await;
    flip_byte_in_pack(&place, &pack_key(&location.pack), location.offset + 100).await;

    let report = o.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    let d = &report.damaged[0];
    assert_eq!(d.blob, victim);
    assert_eq!(d.pack, location.pack);
    assert_eq!(d.used_by.len(), 1);
    assert_eq!(d.used_by[0].snapshot, snap.id);
    assert_eq!(d.used_by[0].path, "Reports/q3.xlsx");
    assert!(d.to_string().contains("Reports/q3.xlsx"));

    // The healthy file still reads, whole.
    let back = read_all(&o.repo, healthy.content.as_ref().unwrap(), None).await;
    assert_eq!(sha256(&back), sha256(&healthy_data));
    // The damaged one: the bytes before the damage, then an error naming the chunk; never more.
    let mut stream = o
        .repo
        .read_content(damaged.content.as_ref().unwrap(), None)
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first.len(),
        damaged.content.as_ref().unwrap().chunks[0].1 as usize
    );
    match stream.next().await.unwrap() {
        Err(RepoError::DamagedBlob { blob, .. }) => assert_eq!(blob, victim),
        other => panic!("expected a damaged-chunk error, got {other:?}"),
    }
}

trait Lookup {
    async fn catalog_lookup(
        &self,
        id: m365backup_repo::BlobId,
    ) -> m365backup_repo::catalog::BlobLocation;
}

impl Lookup for Opened {
    async fn catalog_lookup(
        &self,
        id: m365backup_repo::BlobId,
    ) -> m365backup_repo::catalog::BlobLocation {
        use m365backup_repo::Catalog;
        self.catalog.lookup_blobs(self.key, &[id]).await.unwrap()[0].unwrap()
    }
}
