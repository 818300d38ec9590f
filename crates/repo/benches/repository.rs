//! Repository benchmarks; every figure is measured side by side with its baseline in one run.
//!
//! - write: incompressible data streamed into a local repository vs a plain sequential write +
//!   fsync of the same bytes to the same disk (target ≥ 0.5); read back vs a plain sequential
//!   read, both from disk, not the page cache (target ≥ 0.5);
//! - S3: the same into s3s-fs vs plain PUTs of 16 MiB objects (two at a time, as the repository
//!   writes packs) of equal total size to the same server;
//! - dedup: the same data written twice (stored ≤ 1.01×); 1 MiB inserted at the start of a
//!   100 MiB file (adds ≤ 4 MiB); a text corpus (stored at zstd's ratio);
//! - memory: peak RSS while writing `BENCH_MEMORY_GIB` (10) GiB, sampled per GiB (≤ 150 MiB, flat).
//!
//! Sizes: `BENCH_WRITE_MIB` (1024), `BENCH_S3_MIB` (512), `BENCH_DEDUP_MIB` (1024),
//! `BENCH_MEMORY_GIB` (10). `BENCH_ONLY=write,s3,dedup,memory` runs a subset.

// Test and benchmark code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use m365backup_core::Secret;
use m365backup_repo::backend::Backend;
use m365backup_repo::testing::S3Server;
use m365backup_repo::{
    InitOptions, Item, Location, MemoryCatalog, ObjectKind, ProtectedObject, Repository,
    SnapshotSpec,
};

const MIB: usize = 1024 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(section: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|s| s.trim() == section))
}

/// Incompressible, never-repeating bytes: BLAKE3's extendable output from a seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    hasher.finalize_xof().fill(&mut out);
    out
}

fn pieces(
    data: &Bytes,
    piece: usize,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let data = data.clone();
    let n = data.len();
    futures::stream::iter(
        (0..n)
            .step_by(piece)
            .map(move |start| Ok(data.slice(start..(start + piece).min(n)))),
    )
}

fn object(id: &str) -> ProtectedObject {
    ProtectedObject {
        organization_id: "bench".into(),
        kind: ObjectKind::OneDrive,
        id: id.into(),
        name: id.into(),
        url: None,
        owner_id: None,
        owner_name: None,
        attributes: None,
    }
}

async fn open_new(location: &Location) -> Repository {
    Repository::init(
        location,
        &Secret::new("benchmark password"),
        Arc::new(MemoryCatalog::new()),
        uuid::Uuid::new_v4(),
        &InitOptions::default(),
    )
    .await
    .expect("repository")
}

/// Writes one file as a restore point of its own object; returns seconds and the item.
async fn write_file(repo: &Repository, object_id: &str, data: &Bytes) -> (f64, Item) {
    let started = Instant::now();
    let w = repo
        .begin_snapshot(SnapshotSpec::new(object(object_id)))
        .await
        .unwrap();
    let item = w
        .put_file(Item::file("f", None, "file.bin"), pieces(data, MIB))
        .await
        .unwrap();
    w.commit(None).await.unwrap();
    (started.elapsed().as_secs_f64(), item)
}

/// CPU time (user + system) this process has used, in seconds: how many cores a phase kept busy.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Drops a file's clean pages from the page cache, so the next read comes from the disk.
fn evict(path: &Path) {
    if let Ok(f) = std::fs::File::open(path) {
        // SAFETY: a valid descriptor; advice only.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

fn evict_tree(dir: &Path) {
    for entry in walk(dir) {
        evict(&entry);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn dir_bytes(dir: &Path) -> u64 {
    walk(dir)
        .iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn rate(bytes: usize, secs: f64) -> String {
    format!("{:.0} MiB/s", bytes as f64 / MIB as f64 / secs)
}

async fn bench_write_read() {
    let size = env_usize("BENCH_WRITE_MIB", 1024) * MIB;
    let dir = tempfile::tempdir_in(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    let data = Bytes::from(noise(1, size));

    // Raw: sequential 1 MiB writes, then fsync.
    let raw_path = dir.path().join("raw.bin");
    let started = Instant::now();
    {
        let mut f = std::fs::File::create(&raw_path).unwrap();
        for piece in data.chunks(MIB) {
            f.write_all(piece).unwrap();
        }
        f.sync_all().unwrap();
    }
    let raw_write = started.elapsed().as_secs_f64();

    let location = Location::Local {
        path: dir.path().join("repository"),
    };
    let repo = open_new(&location).await;
    let cpu_before = cpu_secs();
    let (repo_write, item) = write_file(&repo, "write", &data).await;
    let cores_used = (cpu_secs() - cpu_before) / repo_write;
    println!(
        "write {} MiB: raw {} | repository {} ({cores_used:.2} of {} cores busy) | ratio {:.2} (target ≥ 0.5)",
        size / MIB,
        rate(size, raw_write),
        rate(size, repo_write),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        raw_write / repo_write
    );

    // Read back from disk: the page cache is emptied of both first.
    evict(&raw_path);
    let started = Instant::now();
    {
        use std::io::Read;
        let mut f = std::fs::File::open(&raw_path).unwrap();
        let mut buf = vec![0u8; MIB];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            std::hint::black_box(&buf[..n]);
        }
    }
    let raw_read = started.elapsed().as_secs_f64();
    evict_tree(&dir.path().join("repository"));
    let started = Instant::now();
    let mut stream = repo
        .read_content(item.content.as_ref().unwrap(), None)
        .unwrap();
    let mut total = 0;
    while let Some(b) = stream.try_next().await.unwrap() {
        total += b.len();
        std::hint::black_box(&b);
    }
    assert_eq!(total, size);
    let repo_read = started.elapsed().as_secs_f64();
    println!(
        "read  {} MiB: raw {} | repository {} | ratio {:.2} (target ≥ 0.5)",
        size / MIB,
        rate(size, raw_read),
        rate(size, repo_read),
        raw_read / repo_read
    );
}

async fn bench_s3() {
    let size = env_usize("BENCH_S3_MIB", 512) * MIB;
    let server = S3Server::shared();
    let data = Bytes::from(noise(2, size));
    // Raw: 16 MiB objects, two at a time.
    server.create_bucket("raw");
    let raw = Backend::open(&server.location("raw", "")).unwrap();
    let started = Instant::now();
    let mut parts = data
        .chunks(16 * MIB)
        .map(Bytes::copy_from_slice)
        .enumerate();
    loop {
        let batch: Vec<_> = parts.by_ref().take(2).collect();
        if batch.is_empty() {
            break;
        }
        futures::future::try_join_all(batch.into_iter().map(|(i, b)| {
            let raw = raw.clone();
            async move { raw.put(&format!("part-{i}"), b).await }
        }))
        .await
        .unwrap();
    }
    let raw_secs = started.elapsed().as_secs_f64();
    server.create_bucket("repo");
    let repo = open_new(&server.location("repo", "bench")).await;
    let (repo_secs, _) = write_file(&repo, "s3", &data).await;
    println!(
        "s3 write {} MiB: plain PUTs {} | repository {} | ratio {:.2}",
        size / MIB,
        rate(size, raw_secs),
        rate(size, repo_secs),
        raw_secs / repo_secs
    );
}

/// Prose from a fixed vocabulary, deterministic: a text-heavy corpus.
fn text_corpus(len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "backup",
        "of",
        "and",
        "to",
        "a",
        "in",
        "is",
        "that",
        "for",
        "it",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "he",
        "this",
        "are",
        "or",
        "his",
        "from",
        "at",
        "which",
        "but",
        "have",
        "an",
        "had",
        "they",
        "you",
        "were",
        "their",
        "one",
        "all",
        "we",
        "can",
        "her",
        "has",
        "there",
        "been",
        "if",
        "more",
        "when",
        "will",
        "would",
        "who",
        "so",
        "no",
        "repository",
        "document",
        "meeting",
        "quarterly",
        "report",
        "budget",
        "customer",
        "project",
        "schedule",
        "contract",
        "invoice",
        "approval",
        "deadline",
        "strategy",
        "review",
        "SharePoint",
        "OneDrive",
        "Microsoft",
        "restore",
        "policy",
        "retention",
        "employee",
        "manager",
        "team",
    ];
    let mut out = Vec::with_capacity(len);
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    while out.len() < len {
        let sentence = 5 + next() % 15;
        for i in 0..sentence {
            // Zipf-like: small indexes far more often.
            let r = next() % 1000;
            let idx = ((r * r) / 1000 * WORDS.len() as u64 / 1000) as usize;
            let w = WORDS[idx.min(WORDS.len() - 1)];
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(w.as_bytes());
            if next() % 10 == 0 {
                out.extend_from_slice(format!(" {}", next() % 10000).as_bytes());
            }
        }
        out.extend_from_slice(if next() % 6 == 0 { b".\n\n" } else { b". " });
    }
    out.truncate(len);
    out
}

async fn bench_dedup() {
    let size = env_usize("BENCH_DEDUP_MIB", 1024) * MIB;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repository");
    let repo = open_new(&Location::Local { path: root.clone() }).await;
    let data = Bytes::from(noise(3, size));
    write_file(&repo, "first", &data).await;
    let once = dir_bytes(&root);
    write_file(&repo, "second", &data).await;
    let twice = dir_bytes(&root);
    println!(
        "dedup: {} MiB written twice → {:.1} MiB stored, {:.4}× of once (target ≤ 1.01×)",
        size / MIB,
        twice as f64 / MIB as f64,
        twice as f64 / once as f64
    );

    let hundred = Bytes::from(noise(4, 100 * MIB));
    write_file(&repo, "hundred", &hundred).await;
    let before = dir_bytes(&root);
    let mut shifted = noise(5, MIB);
    shifted.extend_from_slice(&hundred);
    write_file(&repo, "hundred-shifted", &Bytes::from(shifted)).await;
    let added = dir_bytes(&root) - before;
    println!(
        "dedup: 1 MiB inserted at the start of a 100 MiB file adds {:.2} MiB (target ≤ 4 MiB)",
        added as f64 / MIB as f64
    );

    let text = text_corpus(128 * MIB);
    let zstd_size: usize = text
        .chunks(MIB)
        .map(|c| zstd::bulk::compress(c, 3).unwrap().len())
        .sum();
    let whole = zstd::bulk::compress(&text, 3).unwrap().len();
    let before = dir_bytes(&root);
    write_file(&repo, "text", &Bytes::from(text.clone())).await;
    let stored = dir_bytes(&root) - before;
    println!(
        "compression: 128 MiB of text stored as {:.1} MiB = {:.3} of original; zstd -3 gives {:.3} per MiB block, {:.3} in one frame (target: zstd's ratio)",
        stored as f64 / MIB as f64,
        stored as f64 / text.len() as f64,
        zstd_size as f64 / text.len() as f64,
        whole as f64 / text.len() as f64
    );
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn bench_memory() {
    let gib = env_usize("BENCH_MEMORY_GIB", 10);
    let dir = tempfile::tempdir_in(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    let repo = open_new(&Location::Local {
        path: dir.path().join("repository"),
    })
    .await;
    // Forget earlier sections' peak: measure this phase alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let baseline = rss_kib("VmRSS:");
    let w = Arc::new(
        repo.begin_snapshot(SnapshotSpec::new(object("memory")))
            .await
            .unwrap(),
    );
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    // One GiB file per step; the content is generated as it streams (4 MiB at a time).
    for g in 0..gib {
        let stream = futures::stream::iter(0..256u64).map(move |i| {
            Ok::<_, std::io::Error>(Bytes::from(noise(1000 + g as u64 * 1000 + i, 4 * MIB)))
        });
        w.put_file(
            Item::file(format!("g{g}"), None, format!("{g}.bin")),
            stream,
        )
        .await
        .unwrap();
        samples.lock().unwrap().push(rss_kib("VmRSS:"));
    }
    let w = Arc::into_inner(w).unwrap();
    w.commit(None).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let samples = samples.lock().unwrap().clone();
    let peak = rss_kib("VmHWM:");
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "memory: {gib} GiB written in {secs:.0} s ({}); RSS before {:.0} MiB, per GiB {:?} MiB, peak {:.0} MiB (target ≤ 150 MiB); growth from GiB 2 to {gib}: {:+.0} MiB",
        rate(gib * 1024 * MIB, secs),
        mib(baseline),
        samples.iter().map(|k| mib(*k).round() as u64).collect::<Vec<_>>(),
        mib(peak),
        mib(*samples.last().unwrap()) - mib(samples[1.min(samples.len() - 1)])
    );
}

use futures::StreamExt;

fn main() {
    // As the server does at start, so memory figures mean the same thing.
    m365backup_repo::memory::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    if wanted("memory") && std::env::args().any(|a| a == "--memory-only") {
        bench_memory().await;
        return;
    }
    if wanted("write") {
        bench_write_read().await;
    }
    if wanted("s3") {
        bench_s3().await;
    }
    if wanted("dedup") {
        bench_dedup().await;
    }
    if wanted("memory") {
        // In a process of its own, so the other sections' buffers do not count.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--memory-only")
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}
