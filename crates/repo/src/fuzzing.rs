//! Fuzz targets of the repository format read from a hostile repository: pack headers, index
//! files, snapshot documents, the `config` object, key files and blobs. Each takes any bytes
//! and panics only when a promise is broken: an error, or a value that keeps the format's
//! promises; never a panic, never an allocation a length field asks for. Sealed inputs are
//! sealed here with a fixed key, so the search reaches what is behind the tag (a key holder, or
//! a writer's bug, can put anything there). The cargo-fuzz targets under `fuzz/` call these
//! (feature `fuzzing`); the property tests in `format::hostile` and the corpus replay call them
//! in `cargo test`.

// A fuzz target reports a broken promise by panicking: that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::chunker::Chunker;
use crate::crypto::{KeyFile, Keys, MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_KIB, MAX_KDF_PARALLELISM};
use crate::format::config::RepoConfig;
use crate::format::index::{IndexFile, MAX_PACK_SIZE};
use crate::format::pack::{read_header, MAGIC};
use crate::format::snapshot::SnapshotDoc;
use crate::format::{INDEX_AAD, PACK_HEADER_AAD, SNAPSHOT_AAD};
use crate::ids::{BlobKind, IndexId, SnapshotId};

fn keys() -> Keys {
    Keys::from_master(&[9; 32])
}

/// A pack of `blobs` zero bytes whose header, sealed with `keys`, holds `header` as it is.
pub fn pack_with_header(keys: &Keys, blobs: usize, header: &[u8]) -> Vec<u8> {
    let sealed = keys.seal(PACK_HEADER_AAD, header);
    let mut pack = vec![0; blobs];
    pack.extend_from_slice(&sealed);
    pack.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    pack.extend_from_slice(MAGIC);
    pack
}

/// `data` as a whole pack (refused: its header cannot verify), then the first two bytes as the
/// length of the blobs and the rest as the sealed header: an error or entries inside the blobs.
pub fn pack_header(data: &[u8]) {
    let keys = keys();
    assert!(read_header(&keys, data).is_err());
    let (blobs, header) = match data {
        [a, b, header @ ..] => (u16::from_le_bytes([*a, *b]) as usize, header),
        _ => (0, data),
    };
    if let Ok(entries) = read_header(&keys, &pack_with_header(&keys, blobs, header)) {
        for e in entries {
            assert!(e.offset + e.length as u64 <= blobs as u64, "{e:?}");
        }
    }
}

/// `data` as an index file's plaintext: an error, or packs of a possible size whose blobs lie
/// inside them. Unsealed, it is refused.
pub fn index_file(data: &[u8]) {
    let keys = keys();
    let Ok(sealed) = keys.seal_file(INDEX_AAD, data) else {
        return;
    };
    let id = IndexId(*blake3::hash(&sealed).as_bytes());
    if let Ok(file) = IndexFile::open(&keys, &id, &sealed) {
        for p in &file.packs {
            assert!(p.size <= MAX_PACK_SIZE);
            for b in &p.blobs {
                assert!(b.offset + b.length as u64 <= p.size, "{b:?} in {p:?}");
            }
        }
    }
    let raw_id = IndexId(*blake3::hash(data).as_bytes());
    assert!(IndexFile::open(&keys, &raw_id, data).is_err());
}

/// `data` as a snapshot document's plaintext: an error or a document; under another name, or
/// unsealed, refused.
pub fn snapshot_doc(data: &[u8]) {
    let keys = keys();
    let id = SnapshotId(keys.blob_id(data).0);
    let Ok(sealed) = keys.seal_file(SNAPSHOT_AAD, data) else {
        return;
    };
    let _ = SnapshotDoc::open(&keys, &id, &sealed);
    assert!(SnapshotDoc::open(&keys, &SnapshotId([0; 32]), &sealed).is_err());
    assert!(SnapshotDoc::open(&keys, &id, data).is_err());
}

/// `data` as the plaintext `config`: an error, or parameters the chunker cuts any content with
/// (here `data` itself).
pub fn repo_config(data: &[u8]) {
    let Ok(config) = serde_json::from_slice::<RepoConfig>(data) else {
        return;
    };
    if config.validate().is_err() {
        return;
    }
    let chunker = Chunker::new(&config.chunker, 1);
    let input = futures::stream::iter([Ok::<_, ()>(bytes::Bytes::copy_from_slice(data))]);
    let chunks: Vec<bytes::Bytes> =
        futures::executor::block_on(futures::TryStreamExt::try_collect(chunker.chunks(input)))
            .expect("the input never fails");
    assert!(chunks
        .iter()
        .all(|c| c.len() <= config.chunker.max_size as usize));
    assert_eq!(chunks.concat(), data);
}

/// `data` as a plaintext key file: refused quickly when it asks argon2id for more than the
/// bounds; tried when it asks for little (bounded costs above that are real work, not tried).
pub fn key_file(data: &[u8]) {
    let Ok(file) = serde_json::from_slice::<KeyFile>(data) else {
        return;
    };
    let kdf = &file.kdf;
    let cheap = kdf.memory_kib <= 64 && kdf.iterations <= 2 && kdf.parallelism <= 2;
    let bounded = kdf.memory_kib <= MAX_KDF_MEMORY_KIB
        && kdf.iterations <= MAX_KDF_ITERATIONS
        && kdf.parallelism <= MAX_KDF_PARALLELISM;
    if cheap || !bounded {
        let opened = file.unwrap_key("secret");
        assert!(bounded || opened.is_err());
    }
}

/// `data` as a stored blob (refused), then, past its first byte (the compression flag), as a
/// payload sealed with the key: an error or the blob its id names.
pub fn blob(data: &[u8]) {
    let keys = keys();
    let id = keys.blob_id(data);
    assert!(keys.decode_blob(BlobKind::Tree, &id, data).is_err());
    if let Ok(plain) = keys.decode_blob(
        BlobKind::Tree,
        &id,
        &keys.seal_blob_payload(BlobKind::Tree, &id, data),
    ) {
        assert_eq!(keys.blob_id(&plain), id);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn corpus_replays() {
        use m365backup_core::fuzzing::replay_corpus;
        replay_corpus("pack_header", pack_header);
        replay_corpus("index_file", index_file);
        replay_corpus("snapshot_doc", snapshot_doc);
        replay_corpus("repo_config", repo_config);
        replay_corpus("key_file", key_file);
        replay_corpus("blob", blob);
    }

    proptest! {
        #[test]
        fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
            pack_header(&data);
            index_file(&data);
            snapshot_doc(&data);
            repo_config(&data);
            key_file(&data);
            blob(&data);
        }
    }
}
