//! File content: generated from (item key, version) on the fly, never stored, or uploaded by a
//! client and kept in the [`crate::blobs`] store.
//!
//! Generated content is a sequence of [`BLOCK`]-byte blocks, each a slice of one shared 16 MiB
//! pseudo-random pattern at an offset drawn from (key, version, block number). Serving is a
//! zero-copy slice of shared bytes and memory stays flat whatever the tenant's size, yet no two
//! files (nor two parts of one file) share content a deduplicating or compressing backup could
//! exploit, as in a real tenant. Because a block is a multiple of 160 bytes, quickXorHash's
//! columns of each block come from a prefix table of the pattern: hashing a 500 MiB file costs
//! microseconds, not a pass over its bytes.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::blobs::Blob;

const PATTERN_LEN: usize = 16 << 20;
/// quickXorHash's period: byte `i` lands in column `i mod 160`.
const COLUMNS: usize = 160;
/// Bytes per block of generated content (a multiple of [`COLUMNS`]).
pub const BLOCK: usize = COLUMNS * 400;

/// The pattern plus a copy of its first block at the end, so that a block at any offset below
/// [`PATTERN_LEN`] is one contiguous slice.
static PATTERN: LazyLock<Bytes> = LazyLock::new(|| {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6d33_3635_7369_6d00);
    let mut v = vec![0u8; PATTERN_LEN + BLOCK];
    rng.fill_bytes(&mut v[..PATTERN_LEN]);
    v.copy_within(..BLOCK, PATTERN_LEN);
    Bytes::from(v)
});

/// `PREFIX[t]`: the quickXorHash columns of `PATTERN[..160 t]` (byte `i` in column `i mod 160`).
static PREFIX: LazyLock<Vec<[u8; COLUMNS]>> = LazyLock::new(|| {
    let pattern = &PATTERN[..];
    let mut table = Vec::with_capacity(pattern.len() / COLUMNS + 1);
    let mut acc = [0u8; COLUMNS];
    table.push(acc);
    for row in pattern.chunks_exact(COLUMNS) {
        for (a, b) in acc.iter_mut().zip(row) {
            *a ^= b;
        }
        table.push(acc);
    }
    table
});

/// Columns (absolute: byte `i` in column `i mod 160`) of `PATTERN[..x]`.
fn prefix_columns(x: usize) -> [u8; COLUMNS] {
    let whole = x / COLUMNS;
    let mut cols = PREFIX[whole];
    for (i, b) in PATTERN[whole * COLUMNS..x].iter().enumerate() {
        cols[i] ^= b;
    }
    cols
}

/// Columns of `PATTERN[offset..offset + len]` as if it started a file at a multiple of 160.
fn slice_columns(offset: usize, len: usize) -> [u8; COLUMNS] {
    let (a, b) = (prefix_columns(offset), prefix_columns(offset + len));
    let mut cols = [0u8; COLUMNS];
    for (k, c) in cols.iter_mut().enumerate() {
        let abs = (offset + k) % COLUMNS;
        *c = a[abs] ^ b[abs];
    }
    cols
}

/// The per-(key, version) seed of block offsets.
fn seed(item_key: &str, version: u64) -> u64 {
    let digest = Sha256::new()
        .chain_update(item_key.as_bytes())
        .chain_update(version.to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Where block `n` of the content seeded `seed` starts in the pattern (splitmix64).
fn block_offset(seed: u64, n: u64) -> usize {
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % PATTERN_LEN as u64) as usize
}

/// The bytes `[from, to)` of a generated file, as zero-copy chunks of at most [`BLOCK`] bytes.
pub fn chunks(
    item_key: &str,
    version: u64,
    from: u64,
    to: u64,
) -> impl Iterator<Item = Bytes> + Send + 'static {
    let seed = seed(item_key, version);
    let pattern = PATTERN.clone();
    let mut pos = from;
    std::iter::from_fn(move || {
        if pos >= to {
            return None;
        }
        let block = pos / BLOCK as u64;
        let within = (pos % BLOCK as u64) as usize;
        let len = ((to - pos) as usize).min(BLOCK - within);
        let at = block_offset(seed, block) + within;
        pos += len as u64;
        Some(pattern.slice(at..at + len))
    })
}

/// Finishes a quickXorHash from its 160 columns and the input length (base64, as Graph).
fn quick_xor_from_columns(columns: &[u8; COLUMNS], length: u64) -> String {
    use base64::Engine;
    // Hashing exactly the 160 column bytes reproduces the columns; only the length, which the
    // algorithm XORs into the last 8 bytes of the hash, differs.
    let mut h = quickxorhash::QuickXorHash::new();
    h.update(columns);
    let mut out = h.finalize();
    let tail = out.len() - 8;
    let fix = (COLUMNS as u64) ^ length;
    for (o, l) in out[tail..].iter_mut().zip(fix.to_le_bytes()) {
        *o ^= l;
    }
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// quickXorHash of a generated file, from the prefix table (no pass over the bytes).
fn generated_quick_xor(item_key: &str, version: u64, size: u64) -> String {
    let seed = seed(item_key, version);
    let mut cols = [0u8; COLUMNS];
    let blocks = size.div_ceil(BLOCK as u64);
    for n in 0..blocks {
        let len = (size - n * BLOCK as u64).min(BLOCK as u64) as usize;
        for (c, b) in cols
            .iter_mut()
            .zip(slice_columns(block_offset(seed, n), len))
        {
            *c ^= b;
        }
    }
    quick_xor_from_columns(&cols, size)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes already computed, by (item key, version, size): content never changes for those.
type HashCache = Mutex<HashMap<(String, u64, u64), String>>;
static QUICK_XOR: LazyLock<HashCache> = LazyLock::new(Mutex::default);
static SHA256: LazyLock<HashCache> = LazyLock::new(Mutex::default);

fn cached(cache: &HashCache, key: (String, u64, u64), compute: impl FnOnce() -> String) -> String {
    if let Some(h) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return h.clone();
    }
    let hash = compute();
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, hash.clone());
    hash
}

/// SHA-256 (hex) of a whole generated file: what a client that downloaded it correctly
/// computes. Computed once per version.
pub fn sha256_hex(item_key: &str, version: u64, size: u64) -> String {
    cached(&SHA256, (item_key.to_owned(), version, size), || {
        let mut hasher = Sha256::new();
        for chunk in chunks(item_key, version, 0, size) {
            hasher.update(&chunk);
        }
        hex(&hasher.finalize())
    })
}

/// Microsoft's quickXorHash (base64) of a whole generated file, as Graph reports it in
/// `file.hashes.quickXorHash`.
pub fn quick_xor_hash(item_key: &str, version: u64, size: u64) -> String {
    cached(&QUICK_XOR, (item_key.to_owned(), version, size), || {
        generated_quick_xor(item_key, version, size)
    })
}

/// Where a file version's bytes come from, as the tenant records it (small and `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentSource {
    /// Generated from the item's key and this generator version (a restored version reuses an
    /// older version's).
    Generated { version: u64 },
    /// Uploaded by a client: a blob of the store.
    Stored(crate::blobs::BlobId),
}

/// A file version's content, resolved: what it hashes to and its bytes.
#[derive(Debug, Clone)]
pub enum Content {
    Generated {
        key: String,
        version: u64,
        size: u64,
    },
    Stored(Arc<Blob>),
}

impl Content {
    pub fn size(&self) -> u64 {
        match self {
            Content::Generated { size, .. } => *size,
            Content::Stored(b) => b.size,
        }
    }

    /// quickXorHash (base64), as Graph lists it.
    pub fn quick_xor_hash(&self) -> String {
        match self {
            Content::Generated { key, version, size } => quick_xor_hash(key, *version, *size),
            Content::Stored(b) => b.quick_xor_hash.clone(),
        }
    }

    /// SHA-256 (hex) of the bytes.
    pub fn sha256_hex(&self) -> String {
        match self {
            Content::Generated { key, version, size } => sha256_hex(key, *version, *size),
            Content::Stored(b) => b.sha256.clone(),
        }
    }

    /// Every byte, in memory: for tests on small files.
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Content::Generated { key, version, size } => {
                let mut out = Vec::with_capacity(*size as usize);
                for chunk in chunks(key, *version, 0, *size) {
                    out.extend_from_slice(&chunk);
                }
                Ok(out)
            }
            Content::Stored(b) => std::fs::read(&b.path),
        }
    }

    /// The bytes `[from, to)`, streamed (generated, or read from the store's file).
    pub fn stream(
        &self,
        from: u64,
        to: u64,
    ) -> std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>> {
        match self {
            Content::Generated { key, version, .. } => Box::pin(futures_util::stream::iter(
                chunks(key, *version, from, to).map(Ok),
            )),
            Content::Stored(b) => Box::pin(b.stream(from, to)),
        }
    }
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
        assert!(collect("x", 3, 63_990, 64_010) == whole[63_990..64_010]);
        assert_eq!(sha256_hex("x", 3, 0).len(), 64);
    }

    #[test]
    fn the_quick_xor_hash_from_the_table_is_the_bytes() {
        for size in [
            0u64, 1, 159, 160, 161, 63_999, 64_000, 64_001, 1_000_003, 9_000_000,
        ] {
            let whole = collect("qx", 7, 0, size);
            assert_eq!(
                quick_xor_hash("qx", 7, size),
                quickxorhash::base64_of(&whole),
                "size {size}"
            );
        }
    }

    #[test]
    fn no_two_blocks_alike() {
        // A file's blocks come from different places of the pattern, so content-defined
        // chunking finds nothing to deduplicate within or across files.
        let s = seed("f", 1);
        let offsets: std::collections::HashSet<usize> =
            (0..2_000).map(|n| block_offset(s, n)).collect();
        assert_eq!(offsets.len(), 2_000);
        let a = collect("f", 1, 0, BLOCK as u64 * 4);
        let b = collect("g", 1, 0, BLOCK as u64 * 4);
        let same = a.chunks(4096).zip(b.chunks(4096)).filter(|(x, y)| x == y);
        assert_eq!(same.count(), 0);
    }
}
