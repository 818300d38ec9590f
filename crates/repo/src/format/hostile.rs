//! The format read from a hostile repository: pack headers, index files, snapshot documents
//! and the `config` object, as anyone who can write to the storage (or holds the key) may shape
//! them, give an error or a value that keeps the format's promises; never a panic, never an
//! allocation a length field asks for. The fuzz targets under `fuzz/` search the same inputs
//! longer; what they find is pinned here.

use proptest::prelude::*;

use crate::crypto::{Keys, MAX_DECOMPRESSED};
use crate::format::index::{IndexFile, MAX_PACK_SIZE};
use crate::format::pack::read_header;
use crate::format::{INDEX_AAD, SNAPSHOT_AAD};
use crate::fuzzing::pack_with_header;
use crate::ids::IndexId;

fn keys() -> Keys {
    Keys::from_master(&[9; 32])
}

/// One 49-byte header entry.
fn entry(kind: u8, offset: u64, length: u32) -> Vec<u8> {
    let mut e = vec![kind];
    e.extend_from_slice(&[7; 32]);
    e.extend_from_slice(&offset.to_le_bytes());
    e.extend_from_slice(&length.to_le_bytes());
    e.extend_from_slice(&length.to_le_bytes());
    e
}

/// Found by the property tests: an entry at offset 2^64 - 1 overflowed `offset + length`
/// (a panic in debug builds; in release the wrapped sum passed the check).
#[test]
fn a_header_entry_past_the_end_of_offsets_is_an_error() {
    let keys = keys();
    let pack = pack_with_header(&keys, 100, &entry(0, u64::MAX, 2));
    assert!(read_header(&keys, &pack).is_err());
    let pack = pack_with_header(&keys, 100, &entry(0, 90, 10));
    assert_eq!(read_header(&keys, &pack).unwrap()[0].offset, 90);
}

fn sealed_index(keys: &Keys, json: &str) -> (IndexId, Vec<u8>) {
    let sealed = keys.seal_file(INDEX_AAD, json.as_bytes()).unwrap();
    (IndexId(*blake3::hash(&sealed).as_bytes()), sealed)
}

/// An index listing blobs past their pack's end, or a pack bigger than any the format writes,
/// is damaged: readers add `offset + length` of what the catalog holds.
#[test]
fn index_entries_must_lie_inside_their_pack() {
    let keys = keys();
    let index = |size: u64, offset: u64, length: u32| {
        let id = "ab".repeat(32);
        format!(
            r#"{{"packs":[{{"id":"{id}","size":{size},"blobs":[{{"kind":"data","id":"{id}","offset":{offset},"length":{length},"plainLength":1}}]}}]}}"#
        )
    };
    let open = |json: &str| {
        let (id, sealed) = sealed_index(&keys, json);
        IndexFile::open(&keys, &id, &sealed)
    };
    assert!(open(&index(100, 90, 10)).is_ok());
    assert!(open(&index(100, 91, 10)).is_err());
    assert!(open(&index(u64::MAX, u64::MAX, 1)).is_err());
    assert!(open(&index(MAX_PACK_SIZE + 1, 0, 1)).is_err());
}

/// A sealed file whose zstd frame expands past the cap is refused before it fills memory.
#[test]
fn a_zstd_bomb_is_refused() {
    use std::io::Write;
    let keys = keys();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..=(MAX_DECOMPRESSED >> 20) {
        encoder.write_all(&zeros).unwrap();
    }
    let frame = encoder.finish().unwrap();
    assert!(frame.len() < 64 * 1024, "a bomb: {} bytes", frame.len());
    let sealed = keys.seal(SNAPSHOT_AAD, &frame);
    let err = keys.open_file(SNAPSHOT_AAD, &sealed).unwrap_err();
    assert!(err.contains("expands past"), "{err}");
}

/// Offsets and sizes: small ones, any, and those near the end of `u64` where sums wrap.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..400, any::<u64>(), (u64::MAX - (1 << 33))..=u64::MAX]
}

/// Text shaped like an index file: plausible and absurd sizes, offsets and kinds.
fn index_json() -> impl Strategy<Value = String> {
    let id = prop_oneof!["[0-9a-f]{64}", "[0-9a-fA-Fg ]{0,66}"];
    let number = offset();
    let blob = (
        prop_oneof![Just("data"), Just("tree"), Just("Data"), Just("x")],
        id.clone(),
        offset(),
        any::<u32>(),
    )
        .prop_map(|(kind, id, offset, length)| {
            format!(
                r#"{{"kind":"{kind}","id":"{id}","offset":{offset},"length":{length},"plainLength":{length}}}"#
            )
        });
    let pack = (id, number, prop::collection::vec(blob, 0..4)).prop_map(|(id, size, blobs)| {
        format!(
            r#"{{"id":"{id}","size":{size},"blobs":[{}]}}"#,
            blobs.join(",")
        )
    });
    prop_oneof![
        4 => prop::collection::vec(pack, 0..4)
            .prop_map(|packs| format!(r#"{{"packs":[{}]}}"#, packs.join(","))),
        1 => "\\PC{0,80}",
    ]
}

/// Text shaped like a snapshot document, some fields wrong or missing.
fn snapshot_json() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("OneDrive"), Just("SiteLibrary"), Just("Mail")],
        prop_oneof![
            Just("2026-03-01T10:20:30Z".to_owned()),
            "[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
        ],
        prop::collection::vec(prop_oneof!["[0-9a-f]{64}", "\\PC{0,4}"], 0..3),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(kind, time, pages, n, with_parent)| {
            let pages: Vec<String> = pages.iter().map(|p| format!("{p:?}")).collect();
            let parent = if with_parent {
                format!(r#""parent":"{}","#, "cd".repeat(32))
            } else {
                String::new()
            };
            format!(
                r#"{{"version":1,"object":{{"organizationId":"o","kind":"{kind}","id":"d","name":"n"}},"time":"{time}",{parent}"pages":[{}],"summary":{{"items":{n},"files":0,"folders":0,"bytes":{n}}},"stats":{{"readBytes":0,"newBytes":0,"storedBytes":0,"newChunks":0,"addedItems":0,"changedItems":0,"deletedItems":0}},"hostname":"h","writtenAt":"{time}"}}"#,
                pages.join(",")
            )
        })
}

/// Text shaped like a `config` object, sizes anywhere in their types' range.
fn config_json() -> impl Strategy<Value = String> {
    let size = prop_oneof![
        0u32..2048,
        any::<u32>(),
        (6u32..=25).prop_map(|b| 1u32 << b)
    ];
    (size.clone(), size.clone(), size, any::<u64>(), any::<u32>()).prop_map(
        |(min, avg, max, pack, version)| {
            format!(
                r#"{{"version":{version},"id":"6e570850-9ce9-40ed-b81d-41772dabcead","created":"2026-03-01T10:20:30Z","chunker":{{"algorithm":"fastcdc-2020","minSize":{min},"avgSize":{avg},"maxSize":{max}}},"packSize":{pack},"compression":"zstd","cipher":"xchacha20-poly1305","blobId":"blake3-keyed"}}"#
            )
        },
    )
}

proptest! {
    /// Any header sealed by the key (entries of any kind, offset and length, the last one
    /// maybe torn) after blobs of any length: an error, or entries inside the blobs.
    #[test]
    fn pack_headers(
        blobs in 0u16..300,
        entries in prop::collection::vec((0u8..3, offset(), any::<u32>()), 0..5),
        torn in 0usize..3,
    ) {
        let mut data = blobs.to_le_bytes().to_vec();
        data.extend(entries.iter().flat_map(|(k, o, l)| entry(*k, *o, *l)));
        data.truncate(data.len().saturating_sub(torn).max(2));
        crate::fuzzing::pack_header(&data);
    }

    /// Any index file: an error, or packs whose blobs lie inside them.
    #[test]
    fn index_files(json in index_json()) {
        crate::fuzzing::index_file(json.as_bytes());
    }

    /// Any snapshot document: an error or a document.
    #[test]
    fn snapshot_documents(json in snapshot_json()) {
        crate::fuzzing::snapshot_doc(json.as_bytes());
    }

    /// Any `config` (plaintext: anyone with write access to the storage shapes it): an error,
    /// or parameters the chunker works with.
    #[test]
    fn configs(json in config_json()) {
        crate::fuzzing::repo_config(json.as_bytes());
    }
}
