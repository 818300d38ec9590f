//! Packs: blobs appended one after another, then the pack's header sealed, its length and a
//! magic number. The header lists every blob, so an index can be rebuilt from packs alone.
//!
//! ```text
//! pack   := blob* sealed_header header_length:u32le "m365pk01"
//! header := entry*            (sealed with associated data "m365backup pack header v1")
//! entry  := kind:u8 id:[32] offset:u64le length:u32le plain_length:u32le   (49 bytes)
//! ```

use crate::crypto::Keys;
use crate::format::PACK_HEADER_AAD;
use crate::ids::{BlobId, BlobKind, PackId};

pub const MAGIC: &[u8; 8] = b"m365pk01";
const ENTRY_LEN: usize = 1 + 32 + 8 + 4 + 4;
const TRAILER_LEN: usize = 4 + MAGIC.len();

/// Where one blob sits in its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: BlobKind,
    pub id: BlobId,
    pub offset: u64,
    /// Stored (sealed) length.
    pub length: u32,
    /// Length of the plaintext.
    pub plain_length: u32,
}

/// A pack being filled in memory.
pub struct PackBuilder {
    bytes: Vec<u8>,
    entries: Vec<PackEntry>,
    /// What the pack is expected to reach: its buffer never grows past it unless a blob needs.
    expected: usize,
}

/// The first buffer of a pack (it doubles from there).
const FIRST_BUFFER: usize = 64 * 1024;

/// A closed pack, ready to be written.
pub struct FinishedPack {
    pub id: PackId,
    pub bytes: bytes::Bytes,
    pub entries: Vec<PackEntry>,
}

impl PackBuilder {
    /// A pack expected to reach about `expected` bytes. Its buffer grows as blobs are added
    /// (doubling, up to `expected`), so an open pack holds only what it was given: a pack of a
    /// few small blobs (tree pages) stays small, and nothing is set aside for a full pack.
    pub fn new(expected: usize) -> Self {
        Self {
            bytes: Vec::new(),
            entries: Vec::new(),
            expected,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn blob_ids(&self) -> Vec<BlobId> {
        self.entries.iter().map(|e| e.id).collect()
    }

    pub fn append(&mut self, kind: BlobKind, id: BlobId, stored: &[u8], plain_length: u32) {
        self.entries.push(PackEntry {
            kind,
            id,
            offset: self.bytes.len() as u64,
            length: stored.len() as u32,
            plain_length,
        });
        self.reserve(stored.len());
        self.bytes.extend_from_slice(stored);
    }

    /// Room for `more` bytes: twice the buffer (at least [`FIRST_BUFFER`]) but no more than
    /// the pack is expected to reach, or exactly what is needed beyond that.
    fn reserve(&mut self, more: usize) {
        let need = self.bytes.len() + more;
        if need <= self.bytes.capacity() {
            return;
        }
        let want = (self.bytes.capacity() * 2)
            .max(FIRST_BUFFER)
            .min(self.expected)
            .max(need);
        self.bytes.reserve_exact(want - self.bytes.len());
    }

    pub fn finish(mut self, keys: &Keys) -> FinishedPack {
        let mut header = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            header.push(e.kind.code());
            header.extend_from_slice(&e.id.0);
            header.extend_from_slice(&e.offset.to_le_bytes());
            header.extend_from_slice(&e.length.to_le_bytes());
            header.extend_from_slice(&e.plain_length.to_le_bytes());
        }
        let sealed = keys.seal(PACK_HEADER_AAD, &header);
        self.reserve(sealed.len() + TRAILER_LEN);
        self.bytes.extend_from_slice(&sealed);
        self.bytes
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(MAGIC);
        let id = PackId(*blake3::hash(&self.bytes).as_bytes());
        FinishedPack {
            id,
            bytes: self.bytes.into(),
            entries: self.entries,
        }
    }
}

/// Reads a whole pack's header back (for `check` and index rebuilding).
pub fn read_header(keys: &Keys, pack: &[u8]) -> Result<Vec<PackEntry>, String> {
    if pack.len() < TRAILER_LEN || &pack[pack.len() - MAGIC.len()..] != MAGIC {
        return Err("not a pack (magic number missing)".into());
    }
    let len_at = pack.len() - TRAILER_LEN;
    let header_len = u32::from_le_bytes(
        pack[len_at..len_at + 4]
            .try_into()
            .map_err(|_| "short trailer")?,
    ) as usize;
    if header_len > len_at {
        return Err("header length runs past the start of the pack".into());
    }
    let header_start = len_at - header_len;
    let header = keys
        .open(PACK_HEADER_AAD, &pack[header_start..len_at])
        .ok_or("the header's authentication tag does not verify")?;
    if header.len() % ENTRY_LEN != 0 {
        return Err("header length is not a whole number of entries".into());
    }
    header
        .chunks_exact(ENTRY_LEN)
        .map(|e| {
            let entry = PackEntry {
                kind: BlobKind::from_code(e[0]).ok_or("unknown blob kind")?,
                id: BlobId::from_slice(&e[1..33]).ok_or("short entry")?,
                offset: u64::from_le_bytes(e[33..41].try_into().map_err(|_| "short entry")?),
                length: u32::from_le_bytes(e[41..45].try_into().map_err(|_| "short entry")?),
                plain_length: u32::from_le_bytes(e[45..49].try_into().map_err(|_| "short entry")?),
            };
            // Checked: a header from a hostile repository may hold any offset.
            let end = entry.offset.checked_add(entry.length as u64);
            if end.is_none_or(|end| end > header_start as u64) {
                return Err("an entry points past the blobs".to_string());
            }
            Ok(entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let keys = Keys::from_master(&[1; 32]);
        let mut b = PackBuilder::new(1024);
        let plain = b"some content".to_vec();
        let id = keys.blob_id(&plain);
        let stored = keys.encode_blob(BlobKind::Data, &id, &plain);
        b.append(BlobKind::Data, id, &stored, plain.len() as u32);
        let pack = b.finish(&keys);
        assert_eq!(pack.id.0, *blake3::hash(&pack.bytes).as_bytes());
        let entries = read_header(&keys, &pack.bytes).unwrap();
        assert_eq!(entries, pack.entries);
        let e = entries[0];
        let blob = &pack.bytes[e.offset as usize..(e.offset + e.length as u64) as usize];
        assert_eq!(keys.decode_blob(BlobKind::Data, &id, blob).unwrap(), plain);
        let mut bad = pack.bytes.to_vec();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert!(read_header(&keys, &bad).is_err());
    }

    /// Bytes that do not compress.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        use rand::{RngCore, SeedableRng};
        let mut v = vec![0u8; len];
        rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    #[test]
    fn a_pack_buffer_grows_with_its_blobs_up_to_the_expected_size() {
        let keys = Keys::from_master(&[2; 32]);
        let expected = 1 << 20;
        let mut b = PackBuilder::new(expected);
        assert_eq!(b.bytes.capacity(), 0);
        let mut ids = Vec::new();
        for i in 0..40u32 {
            let plain = noise(30_000 + i as usize, i as u64);
            let id = keys.blob_id(&plain);
            let stored = keys.encode_blob(BlobKind::Data, &id, &plain);
            b.append(BlobKind::Data, id, &stored, plain.len() as u32);
            ids.push(id);
            assert!(b.bytes.capacity() <= (2 * b.len()).max(FIRST_BUFFER).max(expected));
        }
        // Blobs past the expected size get exactly the room they need.
        let big = noise(2 * expected, 99);
        let id = keys.blob_id(&big);
        let stored = keys.encode_blob(BlobKind::Data, &id, &big);
        b.append(BlobKind::Data, id, &stored, big.len() as u32);
        assert!(b.bytes.capacity() <= b.len() + expected);
        let pack = b.finish(&keys);
        let entries = read_header(&keys, &pack.bytes).unwrap();
        assert_eq!(entries.len(), 41);
        assert_eq!(entries[..40].iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    }
}
