//! The chunk index under deduplication: with `BENCH_CHUNKS` (10^7) chunks in the catalog
//! (SQLite; PostgreSQL too with `BENCH_PG_URL`), how many chunk lookups per second the catalog
//! answers as the writer asks (half of the ids unknown), beside the rate a 1 GB/s backup needs:
//! one lookup per chunk, 1 MiB chunks on average (1,024/s), or 64 KiB for small-file-heavy data
//! (16,384/s). The writer asks one query at a time per stream being stored, with the chunks that
//! are ready, at most [`LOOKUP_BATCH`] ids: measured with one id per query (a slow stream, the
//! worst case), full batches, and full batches from 4 streams at once.

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use m365backup_repo::catalog::RepoKey;
use m365backup_repo::format::index::{IndexedBlob, IndexedPack};
use m365backup_repo::ids::BlobKind;
use m365backup_repo::registry::{RepositoryRecord, RetentionSettings, StorageSettings};
use m365backup_repo::{BlobId, Catalog, PackId, LOOKUP_BATCH};
use m365backup_store::StoreParts;

fn id(kind: u8, n: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[kind]);
    h.update(&n.to_le_bytes());
    *h.finalize().as_bytes()
}

async fn fill(parts: &StoreParts, repo: RepoKey, chunks: u64) -> Duration {
    let record = RepositoryRecord {
        id: repo,
        name: format!("bench {repo}"),
        description: String::new(),
        storage: StorageSettings::Local {
            path: "/tmp/bench".into(),
        },
        retention: RetentionSettings::default(),
        proxy_id: uuid::Uuid::new_v4(),
        is_default: false,
        object_storage_id: None,
        created_at: chrono::Utc::now(),
        last_retention_at: None,
    };
    parts
        .registry
        .insert_repository(&record, b"sealed")
        .await
        .unwrap();
    let started = Instant::now();
    let per_pack = 1000u64;
    let packs_per_call = 10u64;
    let mut n = 0u64;
    let mut pack_no = 0u64;
    while n < chunks {
        let mut packs = Vec::new();
        for _ in 0..packs_per_call {
            if n >= chunks {
                break;
            }
            let blobs: Vec<IndexedBlob> = (0..per_pack.min(chunks - n))
                .map(|i| IndexedBlob {
                    kind: BlobKind::Data,
                    id: BlobId(id(0, n + i)),
                    offset: i * 1_048_576,
                    length: 1_048_616,
                    plain_length: 1_048_576,
                })
                .collect();
            n += blobs.len() as u64;
            packs.push(IndexedPack {
                id: PackId(id(1, pack_no)),
                size: 16 << 20,
                blobs,
            });
            pack_no += 1;
        }
        parts.catalog.add_packs(repo, &packs).await.unwrap();
        if n % 1_000_000 == 0 {
            eprintln!("  {n} chunks in {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    started.elapsed()
}

/// Lookups per second with `streams` tasks each asking `batch` ids per query, one query at a
/// time, for `BENCH_SECS` (5).
async fn measure(
    catalog: &Arc<dyn Catalog>,
    repo: RepoKey,
    chunks: u64,
    batch: usize,
    streams: u64,
) -> f64 {
    let window = Duration::from_secs(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|stream| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                let (mut looked_up, mut found, mut k) = (0u64, 0u64, stream + 1);
                while started.elapsed() < window {
                    let ids: Vec<BlobId> = (0..batch)
                        .map(|i| {
                            k = k
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            if i % 2 == 0 {
                                BlobId(id(0, k % chunks))
                            } else {
                                BlobId(id(2, k))
                            }
                        })
                        .collect();
                    let answers = catalog.lookup_blobs(repo, &ids).await.unwrap();
                    let known = answers.iter().flatten().count() as u64;
                    assert_eq!(
                        known,
                        ids.len().div_ceil(2) as u64,
                        "every known id is found, no unknown one"
                    );
                    found += known;
                    looked_up += batch as u64;
                }
                (looked_up, found)
            })
        })
        .collect();
    let mut looked_up = 0u64;
    for task in tasks {
        looked_up += task.await.unwrap().0;
    }
    looked_up as f64 / started.elapsed().as_secs_f64()
}

async fn run(name: &str, parts: StoreParts, chunks: u64) {
    let repo = uuid::Uuid::new_v4();
    let filled = fill(&parts, repo, chunks).await;
    println!(
        "{name}: {chunks} chunks in the catalog (filled in {:.0} s)",
        filled.as_secs_f64()
    );
    for (batch, streams) in [(1, 1), (LOOKUP_BATCH, 1), (LOOKUP_BATCH, 4)] {
        let rate = measure(&parts.catalog, repo, chunks, batch, streams).await;
        println!(
            "  {streams} stream(s), {batch} id(s) per query: {rate:.0} lookups/s = {:.1}× the 1 GB/s need at 1 MiB chunks (1,024/s), {:.2}× at 64 KiB (16,384/s)",
            rate / 1024.0,
            rate / 16384.0
        );
    }
    let _ = parts.registry.delete_repository(repo).await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let chunks: u64 = std::env::var("BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let parts = m365backup_store::open_parts(None, dir.path())
        .await
        .unwrap();
    run("sqlite", parts, chunks).await;
    if let Ok(server) = std::env::var("BENCH_PG_URL") {
        // A database of its own on that server, dropped at the end.
        use sqlx::Connection;
        let name = format!("m365backup_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = server
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(server.clone());
        let parts = m365backup_store::open_parts(Some(&format!("{base}/{name}")), dir.path())
            .await
            .unwrap();
        run("postgres", parts, chunks).await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
