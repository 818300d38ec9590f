//! A drive's backup meets OneDrive for Business's delta rounds as they come: tombstones in a
//! first enumeration (of files and of a folder with children), a file that comes twice in one
//! round because it changed between two pages (the last one wins), and a `410` in the middle of
//! a round. The restore point holds every live file once, with its current bytes, and nothing
//! deleted.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support;

use futures_util::StreamExt;
use m365backup_core::jobs::model::VersionPolicy;
use m365backup_engine::backup::drive::{back_up, DriveOptions, ObjectResult};
use m365backup_engine::backup::progress::RunCounters;
use m365backup_engine::pool_builder::build_pool;
use m365backup_m365::pool::PoolConfig;
use m365backup_repo::{ItemKind, ObjectKind, ProtectedObject, Repository, SnapshotFilter};
use m365sim::RunningSim;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const SEED: u64 = 12;

/// Every live file of a drive of the tenant: id → SHA-256 of its current bytes.
fn tenant_files(sim: &RunningSim, drive: &str) -> BTreeMap<String, String> {
    let d = sim.tenant().drive(drive).unwrap();
    let state = d.state.read().unwrap();
    state
        .items
        .iter()
        .filter(|i| !i.deleted)
        .filter_map(|i| {
            let f = i.file?;
            let sha = m365sim::content::sha256_hex(&i.content_key(&d.id), f.version, f.size);
            Some((i.id.clone(), sha))
        })
        .collect()
}

/// Every file of the drive's latest restore point: id → SHA-256 of the bytes kept.
async fn restored_files(repo: &Repository, drive: &str) -> BTreeMap<String, String> {
    let latest = repo
        .snapshots(&SnapshotFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.doc.object.id == drive)
        .max_by_key(|s| s.doc.time)
        .expect("a restore point");
    let mut out = BTreeMap::new();
    let mut items = Box::pin(repo.items(&latest.doc));
    while let Some(item) = items.next().await {
        let item = item.unwrap();
        if item.kind != ItemKind::File {
            continue;
        }
        let content = item.content.as_ref().expect("a backed-up file has content");
        let mut stream = repo.read_content(content, None).unwrap();
        let mut sha = Sha256::new();
        while let Some(chunk) = stream.next().await {
            sha.update(chunk.unwrap());
        }
        let hex = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            out.insert(item.id.clone(), hex).is_none(),
            "{} twice",
            item.id
        );
    }
    out
}

/// Backs up `drive`; once its first delta page is in, `between_pages` changes the tenant (the
/// next page is still on its way: the simulator answers 150 ms late), then requests are fast.
async fn back_up_changing_midway(
    sim: &RunningSim,
    repo: &Repository,
    drive: &str,
    between_pages: impl FnOnce(&RunningSim),
) -> ObjectResult {
    let pool = build_pool(
        "org",
        vec![support::backup_account(sim, 1, SEED)],
        support::app_connection(sim),
        PoolConfig::default(),
    )
    .unwrap();
    let object = ProtectedObject {
        organization_id: "org".into(),
        kind: ObjectKind::OneDrive,
        id: drive.to_owned(),
        name: "OneDrive".into(),
        url: None,
        owner_id: None,
        owner_name: None,
        attributes: None,
    };
    let options = DriveOptions {
        downloads: 4,
        version_policy: VersionPolicy::Latest,
        job_id: "job".into(),
        session_id: "session".into(),
    };
    let counters = Arc::new(RunCounters::default());
    let running = tokio::spawn({
        let (repo, counters) = (repo.clone(), counters.clone());
        async move {
            back_up(
                pool,
                &repo,
                object,
                options,
                counters,
                CancellationToken::new(),
            )
            .await
        }
    });
    while counters.items.load(Ordering::Relaxed) == 0 {
        assert!(!running.is_finished(), "the backup ended before listing");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    between_pages(sim);
    sim.control().set_throttling(|t| t.latency_ms = 0);
    running.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_and_a_file_twice_in_a_first_round() {
    let sim = support::paged_sim(SEED).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = support::local_repository(dir.path()).await;
    let drive = sim.tenant().drives[0].id.clone();
    let deleted = support::delete_some(&sim, &drive);
    assert!(deleted.len() >= 4, "{deleted:?}");
    let (listed, tombstones) = support::full_round_items(&sim, &drive);
    assert!(
        tombstones as usize > deleted.len(),
        "{tombstones} tombstones"
    );
    // Between two pages the drive's first file changes: it comes again later in the round.
    let changed = support::first_file(&sim, &drive);
    let result = back_up_changing_midway(&sim, &repo, &drive, |sim| {
        sim.drive(&drive)
            .unwrap()
            .modify_file(&changed, 9_999)
            .unwrap();
    })
    .await;
    assert!(result.committed, "{result:?}");
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert!(
        result.items > listed,
        "{} items, {listed} in a still round",
        result.items
    );
    let restored = restored_files(&repo, &drive).await;
    assert_eq!(
        restored,
        tenant_files(&sim, &drive),
        "every live file, its current bytes"
    );
    assert!(deleted.iter().all(|d| !restored.contains_key(d)));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_in_the_middle_of_a_first_round() {
    let sim = support::paged_sim(SEED).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = support::local_repository(dir.path()).await;
    let drive = sim.tenant().drives[1].id.clone();
    let deleted = support::delete_some(&sim, &drive);
    let (listed, _) = support::full_round_items(&sim, &drive);
    let downloads = sim.sim().content_requests();
    let result = back_up_changing_midway(&sim, &repo, &drive, |sim| {
        sim.drive(&drive).unwrap().force_resync();
    })
    .await;
    assert!(result.committed, "{result:?}");
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert!(
        result.items > listed,
        "the round started again: {} items",
        result.items
    );
    let expected = tenant_files(&sim, &drive);
    // Files of the first page were not downloaded again after the restart.
    assert_eq!(
        sim.sim().content_requests() - downloads,
        expected.len() as u64,
        "each file downloaded once"
    );
    let restored = restored_files(&repo, &drive).await;
    assert_eq!(restored, expected, "every live file, its current bytes");
    assert!(deleted.iter().all(|d| !restored.contains_key(d)));
    sim.shutdown().await;
}
