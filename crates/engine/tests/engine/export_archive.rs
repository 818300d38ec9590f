//! Saving from a real repository: a document streamed into a ZIP (ZIP64 sizes and offsets; over
//! 4 GiB in an ignored test too slow for debug builds) is read back by an unzip library — every
//! byte, the CRC, the entry after it — and by Info-ZIP's `unzip -t` when it is installed; and a
//! restore's length (its progress bar) counts the items the restore meets.

use bytes::Bytes;
use futures_util::{stream, AsyncReadExt, Stream, StreamExt};
use m365backup_engine::restore::browse::RestorePoint;
use m365backup_engine::restore::export::{selection_items, zip_export, Export};
use m365backup_engine::restore::selection::Selection;
use m365backup_repo::{
    Item, ObjectKind, ProtectedObject, Repository, SnapshotRecord, SnapshotSpec,
};
use tokio::io::AsyncWriteExt;

const MIB: u64 = 1024 * 1024;
/// Past 4 GiB, and not a whole number of pieces.
const HUGE: u64 = 4 * 1024 * MIB + 5 * MIB + 12_345;
const PIECE: u64 = 4 * MIB;

/// Incompressible bytes from a seed (BLAKE3's extendable output).
fn noise(seed: u64, len: usize) -> Bytes {
    let mut out = vec![0u8; len];
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    hasher.finalize_xof().fill(&mut out);
    Bytes::from(out)
}

/// `len` bytes, 4 MiB at a time, never all in memory. Pieces repeat every three, so the
/// repository stores little (its chunks deduplicate) while every byte still counts.
fn generated(len: u64) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    let pieces = len.div_ceil(PIECE);
    stream::iter(0..pieces).map(move |i| {
        let size = (len - i * PIECE).min(PIECE) as usize;
        Ok(noise(i % 3, size))
    })
}

async fn expected_hash(len: u64) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let mut s = std::pin::pin!(generated(len));
    while let Some(piece) = s.next().await {
        hasher.update(&piece.unwrap());
    }
    hasher.finalize()
}

fn onedrive() -> ProtectedObject {
    ProtectedObject {
        organization_id: "test".into(),
        kind: ObjectKind::OneDrive,
        id: "drive".into(),
        name: "Someone".into(),
        url: None,
        owner_id: None,
        owner_name: None,
        attributes: None,
    }
}

/// A restore point of `files` (id, parent, name, size) below folders (id, parent, name).
async fn write_point(
    repo: &Repository,
    folders: &[(&str, Option<&str>, &str)],
    files: &[(&str, &str, &str, u64)],
) -> SnapshotRecord {
    let w = repo
        .begin_snapshot(SnapshotSpec::new(onedrive()))
        .await
        .unwrap();
    for (id, parent, name) in folders {
        w.put_item(Item::folder(*id, *parent, *name)).await.unwrap();
    }
    for (id, parent, name, size) in files {
        w.put_file(Item::file(*id, Some(*parent), *name), generated(*size))
            .await
            .unwrap();
    }
    w.commit(None).await.unwrap()
}

/// Minutes in an optimised build, far longer in a debug one (4 GiB chunked, hashed, encrypted,
/// read back, CRC'd twice): `cargo test --release -p m365backup-engine --test export_archive
/// -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "moves 4 GiB several times: run with --release -- --ignored"]
async fn a_document_over_4_gib_comes_back_whole_from_its_zip() {
    archive_reads_back(HUGE).await;
}

/// The same archive with a small document: every streamed entry carries ZIP64 sizes (the
/// writer cannot know them in advance), so the same read-back runs on every test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_zip64_archive_comes_back_whole() {
    archive_reads_back(3 * MIB + 12_345).await;
}

async fn archive_reads_back(size: u64) {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::support::local_repository(&dir.path().join("repository")).await;
    let snapshot = write_point(
        &repo,
        &[("root", None, "root"), ("d", Some("root"), "Big")],
        &[
            ("huge", "d", "Huge.bin", size),
            // After the large entry: its header sits past 4 GiB in the archive.
            ("tail", "d", "Tail.bin", 70_000),
        ],
    )
    .await;
    let point = RestorePoint {
        repo,
        snapshot,
        show_deleted: false,
    };

    // The save, as a client reads it, into a file.
    let Export { mut stream, done } =
        zip_export(vec![(Selection::Object { point }, String::new())]);
    let archive = dir.path().join("save.zip");
    let mut file = tokio::io::BufWriter::with_capacity(
        1 << 20,
        tokio::fs::File::create(&archive).await.unwrap(),
    );
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk.unwrap()).await.unwrap();
    }
    file.flush().await.unwrap();
    drop(file);
    let stats = done.await.unwrap().unwrap();
    assert_eq!(stats.documents, 2);
    assert_eq!(stats.bytes, size + 70_000);
    assert!(std::fs::metadata(&archive).unwrap().len() > size + 70_000);

    // Read back from the central directory (ZIP64 end records, sizes and offsets).
    let reader = tokio::io::BufReader::with_capacity(
        1 << 20,
        tokio::fs::File::open(&archive).await.unwrap(),
    );
    let mut zip = async_zip::base::read::seek::ZipFileReader::with_tokio(reader)
        .await
        .unwrap();
    let names: Vec<String> = zip
        .file()
        .entries()
        .iter()
        .map(|e| e.filename().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Big/Huge.bin", "Big/Tail.bin"]);
    if size > u32::MAX as u64 {
        assert!(zip.file().entries()[1].header_offset() > u32::MAX as u64);
    }
    // ZIP64 extended information (header 0x0001) in the first entry's local header.
    {
        use std::io::Read;
        let mut head = [0u8; 30 + 128];
        std::fs::File::open(&archive)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        assert_eq!(&head[..4], b"PK\x03\x04");
        let name_len = u16::from_le_bytes([head[26], head[27]]) as usize;
        let extra_len = u16::from_le_bytes([head[28], head[29]]) as usize;
        let mut extra = &head[30 + name_len..(30 + name_len + extra_len).min(head.len())];
        let mut ids = Vec::new();
        while extra.len() >= 4 {
            ids.push(u16::from_le_bytes([extra[0], extra[1]]));
            let len = u16::from_le_bytes([extra[2], extra[3]]) as usize;
            extra = &extra[(4 + len).min(extra.len())..];
        }
        assert!(ids.contains(&1), "a ZIP64 extra field: {ids:?}");
    }
    for (i, (len, want)) in [
        (size, expected_hash(size).await),
        (70_000, expected_hash(70_000).await),
    ]
    .into_iter()
    .enumerate()
    {
        let mut entry = zip.reader_with_entry(i).await.unwrap();
        assert_eq!(entry.entry().uncompressed_size(), len);
        let crc = entry.entry().crc32();
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut read = 0u64;
        loop {
            let n = entry.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            read += n as u64;
        }
        assert_eq!(read, len, "{}", names[i]);
        assert_eq!(entry.compute_hash(), crc, "{}: CRC-32", names[i]);
        assert_eq!(hasher.finalize(), want, "{}: the bytes", names[i]);
    }

    // Info-ZIP, another implementation, checks every entry's CRC and sizes.
    match std::process::Command::new("unzip")
        .arg("-tqq")
        .arg(&archive)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "unzip -t: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("unzip is not installed ({e}): checked by async_zip alone"),
    }
}

#[tokio::test]
async fn a_restore_is_as_long_as_the_items_it_meets() {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::support::local_repository(&dir.path().join("repository")).await;
    let snapshot = write_point(
        &repo,
        &[
            ("root", None, "root"),
            ("a", Some("root"), "A"),
            ("b", Some("a"), "B"),
            ("e", Some("a"), "Empty"),
            ("c", Some("root"), "C"),
        ],
        &[
            ("f1", "root", "top.txt", 10),
            ("f2", "a", "a.txt", 20),
            ("f3", "b", "b1.txt", 30),
            ("f4", "b", "b2.txt", 40),
            ("f5", "c", "c.txt", 50),
        ],
    )
    .await;
    let point = RestorePoint {
        repo,
        snapshot,
        show_deleted: false,
    };
    let item = |id: &'static str| {
        let point = point.clone();
        async move {
            let item = point.repo.item(&point.snapshot, id).await.unwrap().unwrap();
            Selection::item(point, item)
        }
    };
    // The whole OneDrive: 4 folders and 5 documents below its root.
    let whole = Selection::Object {
        point: point.clone(),
    };
    assert_eq!(selection_items(&whole).await.unwrap(), 9);
    // Folder A: itself, B, Empty and three documents.
    assert_eq!(selection_items(&item("a").await).await.unwrap(), 6);
    assert_eq!(selection_items(&item("e").await).await.unwrap(), 1);
    assert_eq!(selection_items(&item("f3").await).await.unwrap(), 1);
}
