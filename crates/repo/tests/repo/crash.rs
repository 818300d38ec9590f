//! Crash safety: a child process writing a restore point is killed with SIGKILL at a random
//! moment, over many rounds. After each kill the repository opens, its catalog rebuilds,
//! `check` passes (reading every pack), every committed restore point reads back exactly, the
//! interrupted one is absent or complete, and `prune` removes what it left behind.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m365backup_core::Secret;
use m365backup_repo::check::ReadData;
use m365backup_repo::progress::Quiet;
use m365backup_repo::prune::PruneOptions;
use m365backup_repo::testing::{
    Azurite, S3Server, AZURITE_ACCOUNT, AZURITE_KEY, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY,
};
use m365backup_repo::{
    AzureLocation, InitOptions, Item, Location, MemoryCatalog, Repository, S3Location,
    SnapshotFilter, SnapshotId, SnapshotSpec,
};
use rand::{Rng, SeedableRng};

use crate::support::*;

const CHILD_ENV: &str = "M365BACKUP_CRASH_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_writer_killed_at_random_points() {
    crash_rounds(Kind::Local, 14).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writer_killed_at_random_points() {
    crash_rounds(Kind::S3, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_writer_killed_at_random_points() {
    crash_rounds(Kind::Azure, 5).await;
}

/// Files of round `r`: a few, of varied sizes, deterministic; some shared with earlier rounds.
fn round_files(round: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(round);
    (0..4)
        .map(|i| {
            let size = rng.gen_range(0..2_500_000);
            let seed = if i == 0 { 7 } else { round * 100 + i };
            (format!("r{round}-f{i}"), random_bytes(seed, size))
        })
        .collect()
}

fn describe(place: &Place) -> String {
    match &place.location {
        Location::Local { path } => format!("local|{}", path.display()),
        Location::S3(s) => format!("s3|{}|{}", s.endpoint.as_deref().unwrap(), s.bucket),
        Location::Azure(a) => format!("azure|{}|{}", a.endpoint.as_deref().unwrap(), a.container),
    }
}

fn location_from(description: &str) -> Location {
    let parts: Vec<&str> = description.split('|').collect();
    match parts[0] {
        "local" => Location::Local {
            path: parts[1].into(),
        },
        "s3" => Location::S3(S3Location {
            endpoint: Some(parts[1].into()),
            region: S3_REGION.into(),
            bucket: parts[2].into(),
            prefix: "backups/m365".into(),
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: Secret::new(S3_SECRET_KEY),
            allow_http: true,
            path_style: true,
        }),
        _ => Location::Azure(AzureLocation {
            account: AZURITE_ACCOUNT.into(),
            access_key: Secret::new(AZURITE_KEY),
            container: parts[2].into(),
            prefix: "backups/m365".into(),
            endpoint: Some(parts[1].into()),
            allow_http: true,
        }),
    }
}

/// The child: writes restore point `round` and says so. A no-op in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let Ok(description) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var("M365BACKUP_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let location = location_from(&description);
    let repo = Repository::open(
        &location,
        &Secret::new(PASSWORD),
        std::sync::Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
    )
    .await
    .unwrap();
    repo.rebuild_catalog(&Quiet).await.unwrap();
    println!("STARTED");
    let w = repo
        .begin_snapshot(SnapshotSpec::new(object("crash")))
        .await
        .unwrap();
    w.put_item(Item::folder(
        format!("dir{round}"),
        None,
        format!("Round {round}"),
    ))
    .await
    .unwrap();
    for (name, data) in round_files(round) {
        let parent = format!("dir{round}");
        w.put_file(
            Item::file(name.clone(), Some(&parent), name),
            stream_of(data, 100_000),
        )
        .await
        .unwrap();
    }
    let snap = w.commit(Some(format!("delta-{round}"))).await.unwrap();
    println!("COMMITTED {}", snap.id);
}

async fn crash_rounds(kind: Kind, rounds: u64) {
    let place = place(kind).await;
    if kind == Kind::S3 {
        let _ = S3Server::shared();
    } else if kind == Kind::Azure {
        let _ = Azurite::shared();
    }
    // Small packs: a kill lands between many pack and index writes.
    create_with(
        &place,
        InitOptions {
            pack_size: 512 * 1024,
            ..init_options()
        },
    )
    .await;
    let mut committed: Vec<(SnapshotId, u64)> = Vec::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed + kind as u64);
    let mut full_run = Duration::from_secs(2);
    let mut kills = 0;
    for round in 0..rounds {
        // Round 0 runs to completion and measures how long a round takes.
        let kill_after = (round > 0).then(|| full_run.mul_f64(rng.gen_range(0.0..1.1)));
        let (finished, output) = run_child(&place, round, kill_after);
        if round == 0 {
            assert!(finished, "the first round completes: {output}");
        }
        if let Some(id) = output.lines().find_map(|l| l.strip_prefix("COMMITTED ")) {
            committed.push((id.parse().unwrap(), round));
        } else {
            kills += 1;
        }
        verify(&place, &mut committed, round).await;
        if round == 0 {
            full_run = full_run.max(Duration::from_millis(300));
        }
    }
    assert!(
        kills >= rounds / 3,
        "most rounds were interrupted ({kills} of {rounds})"
    );
}

/// Runs the child for one round; kills it after `kill_after`. Returns (exited by itself, stdout).
fn run_child(place: &Place, round: u64, kill_after: Option<Duration>) -> (bool, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, describe(place))
        .env("M365BACKUP_CRASH_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut finished = false;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            finished = status.success();
            break;
        }
        if kill_after.is_some_and(|k| started.elapsed() >= k) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (finished, out)
}

async fn verify(place: &Place, committed: &mut Vec<(SnapshotId, u64)>, round: u64) {
    let o = reopen(place).await;
    let report = o.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(report.is_ok(), "round {round}: {report:?}");
    let snaps = o.repo.snapshots(&SnapshotFilter::default()).await.unwrap();
    for (id, _) in committed.iter() {
        assert!(
            snaps.iter().any(|s| s.id == *id),
            "round {round}: committed restore point {id} is missing"
        );
    }
    // A restore point whose commit was cut off after its document was written is complete.
    let extra: Vec<_> = snaps
        .iter()
        .filter(|s| !committed.iter().any(|(id, _)| *id == s.id))
        .collect();
    assert!(
        extra.len() <= 1,
        "round {round}: unexpected restore points {extra:?}"
    );
    if let Some(s) = extra.first() {
        committed.push((s.id, round));
    }
    for (id, r) in committed.iter() {
        let snap = o.repo.snapshot(*id).await.unwrap();
        for (name, data) in round_files(*r) {
            let item = o
                .repo
                .item(&snap, &name)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name} in {id}"));
            let back = read_all(&o.repo, item.content.as_ref().unwrap(), None).await;
            assert!(
                back == data,
                "round {round}: {name} of restore point {id} reads back wrong"
            );
        }
    }
    o.repo
        .prune(
            &PruneOptions {
                grace: Duration::ZERO,
                ..PruneOptions::default()
            },
            &Quiet,
        )
        .await
        .unwrap();
    let report = o.repo.check(ReadData::None, &Quiet).await.unwrap();
    assert!(
        report.is_ok() && report.unindexed_packs.is_empty(),
        "round {round} after prune: {report:?}"
    );
}
