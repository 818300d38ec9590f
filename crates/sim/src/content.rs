//! File content derived from (item id, version), never stored: memory stays flat whatever the
//! tenant's size. A fixed pseudo-random pattern (generated once from a constant seed) is read at
//! an offset derived from the item, so serving is a zero-copy slice of shared bytes.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// 4 MiB plus a copy of its first block at the end, so that any block-sized window starting
/// below 4 MiB is one contiguous slice that reads the pattern cyclically.
const PATTERN_LEN: usize = 4 << 20;
pub const BLOCK: usize = 256 << 10;

static PATTERN: LazyLock<Bytes> = LazyLock::new(|| {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6d33_3635_7369_6d00);
    let mut v = vec![0u8; PATTERN_LEN + BLOCK];
    rng.fill_bytes(&mut v[..PATTERN_LEN]);
    v.copy_within(..BLOCK, PATTERN_LEN);
    Bytes::from(v)
});

/// Where in the pattern the content of this item version starts.
fn start_offset(item_key: &str, version: u64) -> usize {
    let digest = Sha256::new()
        .chain_update(item_key.as_bytes())
        .chain_update(version.to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_le_bytes(first) % PATTERN_LEN as u64) as usize
}

/// The bytes `[from, to)` of a file, as a sequence of zero-copy chunks of at most [`BLOCK`].
pub fn chunks(
    item_key: &str,
    version: u64,
    from: u64,
    to: u64,
) -> impl Iterator<Item = Bytes> + Send + 'static {
    let base = start_offset(item_key, version);
    let pattern = PATTERN.clone();
    let mut pos = from;
    std::iter::from_fn(move || {
        if pos >= to {
            return None;
        }
        let at = (base as u64 + pos) as usize % PATTERN_LEN;
        let len = ((to - pos) as usize).min(BLOCK);
        pos += len as u64;
        Some(pattern.slice(at..at + len))
    })
}

/// SHA-256 (hex) of a whole file: what a client that downloaded it correctly computes.
pub fn sha256_hex(item_key: &str, version: u64, size: u64) -> String {
    let mut hasher = Sha256::new();
    for chunk in chunks(item_key, version, 0, size) {
        hasher.update(&chunk);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hashes already computed, by (item key, version, size): content never changes for those.
type HashCache = Mutex<HashMap<(String, u64, u64), String>>;
static QUICK_XOR: LazyLock<HashCache> = LazyLock::new(Mutex::default);

/// Microsoft's quickXorHash (base64) of a whole file, as Graph reports it in
/// `file.hashes.quickXorHash`; computed once per version.
pub fn quick_xor_hash(item_key: &str, version: u64, size: u64) -> String {
    let key = (item_key.to_owned(), version, size);
    if let Some(h) = QUICK_XOR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return h.clone();
    }
    let mut hasher = quickxorhash::QuickXorHash::new();
    for chunk in chunks(item_key, version, 0, size) {
        hasher.update(&chunk);
    }
    let hash = hasher.finalize_base64();
    QUICK_XOR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, hash.clone());
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(key: &str, version: u64, from: u64, to: u64) -> Vec<u8> {
        chunks(key, version, from, to)
            .flat_map(|b| b.to_vec())
            .collect()
    }

    #[test]
    fn deterministic_and_distinct() {
        let a = collect("item-a", 1, 0, 1_000_000);
        assert_eq!(a.len(), 1_000_000);
        assert!(a == collect("item-a", 1, 0, 1_000_000));
        assert!(a != collect("item-a", 2, 0, 1_000_000));
        assert!(a != collect("item-b", 1, 0, 1_000_000));
    }

    #[test]
    fn ranges_are_slices_of_the_whole() {
        let whole = collect("x", 3, 0, 9_000_000);
        assert!(collect("x", 3, 123_456, 8_000_001) == whole[123_456..8_000_001]);
        assert!(collect("x", 3, 4_194_000, 4_194_500) == whole[4_194_000..4_194_500]);
        assert_eq!(sha256_hex("x", 3, 0).len(), 64);
        assert_eq!(
            quick_xor_hash("x", 3, 9_000_000),
            quickxorhash::base64_of(&whole)
        );
    }
}
