//! Crash safety: a child process writing a restore point is killed with SIGKILL at a random
//! moment, over many rounds. After each kill the repository opens, its catalog rebuilds,
//! `check` passes (reading every pack), every committed restore point reads back exactly, the
//! interrupted one is absent or complete, and `prune` removes what it left behind (`check`
//! counts no unindexed pack, no unreferenced chunk or pack afterwards).
//!
//! The kill moment is drawn from the writer's own measured duration (from its "STARTED" to its
//! exit, in the last round that ran to the end), so debug and release builds are cut alike. The
//! rounds' random choices come from one seed: `M365BACKUP_CRASH_SEED` repeats a run; a failure
//! prints the seed it used.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
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
const SEED_ENV: &str = "M365BACKUP_CRASH_SEED";

/// The seed of this run: `M365BACKUP_CRASH_SEED`, else a fresh one.
fn crash_seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={v} is not a number")),
        Err(_) => rand::random(),
    }
}

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
    let seed = crash_seed();
    // Shown with the failure (the test harness prints a failed test's output).
    println!("{kind:?} crash rounds with {SEED_ENV}={seed}");
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
    let mut state = Rounds {
        seed,
        committed: Vec::new(),
        orphans_seen: 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut write_time = Duration::ZERO;
    let mut kills = 0;
    // Past `rounds`, a few more while no kill has left anything behind yet (a kill before the
    // first pack upload leaves nothing), so every run shows prune removing orphans.
    let mut round = 0;
    while round < rounds || (state.orphans_seen == 0 && round < rounds + 10) {
        // Round 0 runs to completion and measures how long writing a restore point takes;
        // later rounds are cut anywhere in that time (a tenth past it lets some finish).
        let kill_after = (round > 0).then(|| write_time.mul_f64(rng.gen_range(0.0..1.1)));
        let run = run_child(&place, round, kill_after);
        if round == 0 {
            assert!(
                run.finished,
                "seed {seed}: the first round completes: {}",
                run.output
            );
        }
        if let Some(took) = run.write_time {
            write_time = took;
        }
        if let Some(id) = run
            .output
            .lines()
            .find_map(|l| l.strip_prefix("COMMITTED "))
        {
            state.committed.push((id.parse().unwrap(), round));
        } else {
            kills += 1;
        }
        verify(&place, &mut state, round).await;
        round += 1;
    }
    assert!(
        kills >= round / 3,
        "seed {seed}: most rounds were interrupted ({kills} of {round}; a write takes {write_time:?})"
    );
    assert!(
        state.orphans_seen > 0,
        "seed {seed}: no kill left anything behind for prune to remove ({kills} kills)"
    );
}

/// What the rounds so far left: committed restore points and how many orphans were found.
struct Rounds {
    seed: u64,
    committed: Vec<(SnapshotId, u64)>,
    /// Unindexed packs plus unreferenced chunks `check` counted before each prune.
    orphans_seen: usize,
}

struct ChildRun {
    /// Exited by itself (not killed), successfully.
    finished: bool,
    output: String,
    /// From "STARTED" to the exit, when it ran to the end.
    write_time: Option<Duration>,
}

/// The child's "STARTED" (the test harness prints `test crash::child ... ` before it on the
/// same line).
fn is_started(line: &str) -> bool {
    line.ends_with("STARTED")
}

/// Runs the child for one round; kills it `kill_after` its "STARTED" (the repository open and
/// its catalog rebuilt, the writing about to begin).
fn run_child(place: &Place, round: u64, kill_after: Option<Duration>) -> ChildRun {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, describe(place))
        .env("M365BACKUP_CRASH_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = String::new();
    let mut started: Option<Instant> = None;
    let mut finished = false;
    let mut ended = Instant::now();
    loop {
        while let Ok(line) = lines.try_recv() {
            if is_started(&line) {
                started = Some(Instant::now());
            }
            output.push_str(&line);
            output.push('\n');
        }
        if let Some(status) = child.try_wait().unwrap() {
            ended = Instant::now();
            finished = status.success();
            break;
        }
        if let (Some(k), Some(at)) = (kill_after, started) {
            if at.elapsed() >= k {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    reader.join().unwrap();
    for line in lines.try_iter() {
        if is_started(&line) && started.is_none() {
            started = Some(ended);
        }
        output.push_str(&line);
        output.push('\n');
    }
    ChildRun {
        finished,
        write_time: started.filter(|_| finished).map(|at| ended - at),
        output,
    }
}

async fn verify(place: &Place, state: &mut Rounds, round: u64) {
    let seed = state.seed;
    let committed = &mut state.committed;
    let o = reopen(place).await;
    let report = o.repo.check(ReadData::All, &Quiet).await.unwrap();
    assert!(report.is_ok(), "seed {seed} round {round}: {report:?}");
    let snaps = o.repo.snapshots(&SnapshotFilter::default()).await.unwrap();
    for (id, _) in committed.iter() {
        assert!(
            snaps.iter().any(|s| s.id == *id),
            "seed {seed} round {round}: committed restore point {id} is missing"
        );
    }
    // A restore point whose commit was cut off after its document was written is complete.
    let extra: Vec<_> = snaps
        .iter()
        .filter(|s| !committed.iter().any(|(id, _)| *id == s.id))
        .collect();
    assert!(
        extra.len() <= 1,
        "seed {seed} round {round}: unexpected restore points {extra:?}"
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
                .unwrap_or_else(|| panic!("seed {seed}: {name} in {id}"));
            let back = read_all(&o.repo, item.content.as_ref().unwrap(), None).await;
            assert!(
                back == data,
                "seed {seed} round {round}: {name} of restore point {id} reads back wrong"
            );
        }
    }
    state.orphans_seen += report.unindexed_packs.len() + report.unreferenced_blobs;
    // Every pack with anything unused is repacked, so nothing unused may stay.
    let pruned = o
        .repo
        .prune(
            &PruneOptions {
                grace: Duration::ZERO,
                max_unused: 0.0,
                ..PruneOptions::default()
            },
            &Quiet,
        )
        .await
        .unwrap();
    assert_eq!(
        pruned.unindexed_packs_deleted,
        report.unindexed_packs.len(),
        "seed {seed} round {round}: {pruned:?}"
    );
    assert_eq!(
        pruned.blobs_removed, report.unreferenced_blobs,
        "seed {seed} round {round}: {pruned:?} after {report:?}"
    );
    let after = o.repo.check(ReadData::None, &Quiet).await.unwrap();
    assert!(
        after.is_ok()
            && after.unindexed_packs.is_empty()
            && after.unreferenced_blobs == 0
            && after.unreferenced_packs == 0,
        "seed {seed} round {round} after prune: {after:?}"
    );
}
