//! Keys and encryption. A repository has one random 32-byte master key; the key files under
//! `keys/` wrap it with a key derived from a password by argon2id. Everything else derives from
//! the master key with BLAKE3's key derivation, one key per purpose:
//! - the AEAD key (XChaCha20-Poly1305) that seals every blob, pack header, index, snapshot and lock;
//! - the blob-id key: a blob's id is the keyed BLAKE3 hash of its plaintext, so ids reveal nothing;
//! - the chunker seed, which makes chunk boundaries depend on the key too.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ids::{BlobId, BlobKind};

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Largest plaintext a zstd frame read from the repository may expand to. Nothing written is
/// near it (chunks are at most 16 MiB, an index file of 20,000 blobs a few MiB); it stops a
/// frame of a few KiB that claims, or expands to, gigabytes.
pub const MAX_DECOMPRESSED: u64 = 256 * 1024 * 1024;
/// Most memory and passes a key file may ask of argon2id: 16 and 10 times the defaults. Key
/// files are read before anything is authenticated, so a planted one must not make opening the
/// repository allocate terabytes or run for days.
pub const MAX_KDF_MEMORY_KIB: u32 = 1024 * 1024;
pub const MAX_KDF_ITERATIONS: u32 = 30;
pub const MAX_KDF_PARALLELISM: u32 = 16;

const CONTEXT_ENCRYPTION: &str = "m365backup repository v1 encryption key";
const CONTEXT_BLOB_ID: &str = "m365backup repository v1 blob id key";
const CONTEXT_CHUNKER: &str = "m365backup repository v1 chunker seed";
const KEY_FILE_AAD: &[u8] = b"m365backup key file v1";

/// The derived keys of an open repository.
pub struct Keys {
    cipher: XChaCha20Poly1305,
    id_key: Zeroizing<[u8; 32]>,
    chunker_seed: u64,
}

impl Keys {
    pub fn from_master(master: &[u8; 32]) -> Self {
        let enc = Zeroizing::new(blake3::derive_key(CONTEXT_ENCRYPTION, master));
        let id_key = Zeroizing::new(blake3::derive_key(CONTEXT_BLOB_ID, master));
        let seed = blake3::derive_key(CONTEXT_CHUNKER, master);
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(enc.as_ref())),
            id_key,
            chunker_seed: u64::from_le_bytes(std::array::from_fn(|i| seed[i])),
        }
    }

    /// The id of a blob with this plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plaintext`, authenticated together with `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.resize(NONCE_LEN, 0);
        rand::rngs::OsRng.fill_bytes(&mut out[..NONCE_LEN]);
        out.extend_from_slice(plaintext);
        self.seal_tail(aad, &mut out);
        out
    }

    /// Encrypts in place everything after the nonce already at the start of `buf`, appending the tag.
    // XChaCha20-Poly1305 refuses only messages over 256 GiB; chunks, pack headers and files
    // are megabytes, so this cannot fail.
    #[allow(clippy::expect_used)]
    fn seal_tail(&self, aad: &[u8], buf: &mut Vec<u8>) {
        let nonce = *XNonce::from_slice(&buf[..NONCE_LEN]);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, aad, &mut buf[NONCE_LEN..])
            .expect("XChaCha20-Poly1305 accepts any length we produce");
        buf.extend_from_slice(&tag);
    }

    /// Opens what [`Keys::seal`] produced; `None` when the tag does not verify.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < SEAL_OVERHEAD {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut plain = ciphertext.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                aad,
                &mut plain,
                chacha20poly1305::Tag::from_slice(tag),
            )
            .ok()?;
        Some(plain)
    }

    /// A blob as stored in a pack: sealed `flag ‖ payload` where the flag says whether the
    /// payload is the plaintext (0) or its zstd frame (1). Bound to the blob's kind and id.
    pub fn encode_blob(&self, kind: BlobKind, id: &BlobId, plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD + 1);
        buf.resize(NONCE_LEN, 0);
        rand::rngs::OsRng.fill_bytes(&mut buf[..NONCE_LEN]);
        match compress(plaintext) {
            Some(compressed) => {
                buf.push(1);
                buf.extend_from_slice(&compressed);
            }
            None => {
                buf.push(0);
                buf.extend_from_slice(plaintext);
            }
        }
        self.seal_tail(&blob_aad(kind, id), &mut buf);
        buf
    }

    /// A blob sealed around `payload` as it is (compression flag included): what a key holder,
    /// or a writer's bug, can store; for the fuzz targets.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn seal_blob_payload(&self, kind: BlobKind, id: &BlobId, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut buf);
        buf.extend_from_slice(payload);
        self.seal_tail(&blob_aad(kind, id), &mut buf);
        buf
    }

    /// The plaintext of a stored blob, verified: the AEAD tag, then the keyed hash against `id`.
    pub fn decode_blob(
        &self,
        kind: BlobKind,
        id: &BlobId,
        stored: &[u8],
    ) -> Result<Vec<u8>, String> {
        self.decode_blob_bytes(kind, id, bytes::Bytes::copy_from_slice(stored))
            .map(|b| b.to_vec())
    }

    /// [`Keys::decode_blob`] decrypting in place: no copy of the content when `stored` is the
    /// only reference to its bytes (as a freshly read blob is).
    pub fn decode_blob_bytes(
        &self,
        kind: BlobKind,
        id: &BlobId,
        stored: bytes::Bytes,
    ) -> Result<bytes::Bytes, String> {
        let n = stored.len();
        if n < SEAL_OVERHEAD + 1 {
            return Err("too short to be a sealed blob".into());
        }
        let mut buf = stored
            .try_into_mut()
            .unwrap_or_else(|shared| bytes::BytesMut::from(&shared[..]));
        let nonce = *XNonce::from_slice(&buf[..NONCE_LEN]);
        let tag = *chacha20poly1305::Tag::from_slice(&buf[n - TAG_LEN..]);
        self.cipher
            .decrypt_in_place_detached(
                &nonce,
                &blob_aad(kind, id),
                &mut buf[NONCE_LEN..n - TAG_LEN],
                &tag,
            )
            .map_err(|_| "authentication tag does not verify".to_string())?;
        let payload = buf.freeze().slice(NONCE_LEN..n - TAG_LEN);
        let plain = match payload[0] {
            0 => payload.slice(1..),
            1 => decompress(&payload[1..])?.into(),
            other => return Err(format!("unknown compression flag {other}")),
        };
        if self.blob_id(&plain) != *id {
            return Err("content does not match its id".into());
        }
        Ok(plain)
    }

    /// Seals a whole file (index, snapshot, lock): `zstd(plaintext)` sealed with `aad`.
    pub fn seal_file(&self, aad: &[u8], plaintext: &[u8]) -> std::io::Result<Vec<u8>> {
        let compressed = zstd::bulk::compress(plaintext, 3)?;
        Ok(self.seal(aad, &compressed))
    }

    pub fn open_file(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        let compressed = self
            .open(aad, sealed)
            .ok_or("authentication tag does not verify")?;
        decompress(&compressed)
    }
}

/// A zstd frame's content, refused once it passes [`MAX_DECOMPRESSED`] bytes.
fn decompress(frame: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut plain = Vec::new();
    zstd::stream::read::Decoder::new(frame)
        .map_err(|e| format!("zstd: {e}"))?
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut plain)
        .map_err(|e| format!("zstd: {e}"))?;
    if plain.len() as u64 > MAX_DECOMPRESSED {
        return Err(format!(
            "zstd: the content expands past {MAX_DECOMPRESSED} bytes"
        ));
    }
    Ok(plain)
}

fn blob_aad(kind: BlobKind, id: &BlobId) -> [u8; 33] {
    let mut aad = [0u8; 33];
    aad[0] = kind.code();
    aad[1..].copy_from_slice(&id.0);
    aad
}

/// zstd level 3, or `None` when compressing does not pay. Large blobs are probed first: if a
/// 64 KiB sample does not shrink by 2 %, the blob is taken as incompressible (encrypted or
/// already compressed content) and stored as it is, which keeps writes fast.
pub fn compress(plaintext: &[u8]) -> Option<Vec<u8>> {
    const SAMPLE: usize = 64 * 1024;
    if plaintext.len() > 2 * SAMPLE {
        let sample = zstd::bulk::compress(&plaintext[..SAMPLE], 1).ok()?;
        if sample.len() * 100 > SAMPLE * 98 {
            return None;
        }
    }
    let compressed = zstd::bulk::compress(plaintext, 3).ok()?;
    (compressed.len() < plaintext.len()).then_some(compressed)
}

/// argon2id settings of a key file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KdfParams {
    pub algorithm: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// base64 of 16 random bytes.
    pub salt: String,
}

impl KdfParams {
    /// Strong defaults: 64 MiB, 3 passes (about a quarter second).
    pub fn new_default() -> Self {
        Self::with_cost(64 * 1024, 3)
    }

    pub fn with_cost(memory_kib: u32, iterations: u32) -> Self {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self {
            algorithm: "argon2id".into(),
            memory_kib,
            iterations,
            parallelism: 1,
            salt: B64.encode(salt),
        }
    }

    fn derive(&self, password: &str) -> Result<Zeroizing<[u8; 32]>, String> {
        if self.algorithm != "argon2id" {
            return Err(format!("unknown key derivation '{}'", self.algorithm));
        }
        if self.memory_kib > MAX_KDF_MEMORY_KIB
            || self.iterations > MAX_KDF_ITERATIONS
            || self.parallelism > MAX_KDF_PARALLELISM
        {
            return Err(format!(
                "argon2 cost beyond what a key file may ask ({} KiB, {} passes, {} lanes)",
                self.memory_kib, self.iterations, self.parallelism
            ));
        }
        let salt = B64.decode(&self.salt).map_err(|e| format!("salt: {e}"))?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password.as_bytes(), &salt, out.as_mut())
            .map_err(|e| format!("argon2: {e}"))?;
        Ok(out)
    }
}

/// A file under `keys/`: the master key wrapped under a password-derived key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFile {
    pub version: u32,
    pub kdf: KdfParams,
    pub created: chrono::DateTime<chrono::Utc>,
    pub hostname: String,
    /// base64 of `nonce ‖ XChaCha20-Poly1305(master key) ‖ tag`, associated data
    /// `m365backup key file v1`.
    pub wrapped: String,
}

impl KeyFile {
    pub fn wrap(master: &[u8; 32], password: &str, kdf: KdfParams) -> Result<Self, String> {
        let kek = kdf.derive(password)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()));
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut body = master.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), KEY_FILE_AAD, &mut body)
            .map_err(|_| "key wrapping failed".to_string())?;
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&body);
        wrapped.extend_from_slice(&tag);
        Ok(Self {
            version: 1,
            kdf,
            created: chrono::Utc::now(),
            hostname: crate::lock::hostname(),
            wrapped: B64.encode(wrapped),
        })
    }

    /// The master key, or `None` when the password is not the one this file was made with.
    pub fn unwrap_key(&self, password: &str) -> Result<Option<Zeroizing<[u8; 32]>>, String> {
        let kek = self.kdf.derive(password)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()));
        let wrapped = B64
            .decode(&self.wrapped)
            .map_err(|e| format!("wrapped key: {e}"))?;
        if wrapped.len() != NONCE_LEN + 32 + TAG_LEN {
            return Err("wrapped key has the wrong length".into());
        }
        let (nonce, rest) = wrapped.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(32);
        let mut master = Zeroizing::new([0u8; 32]);
        master.copy_from_slice(body);
        match cipher.decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            KEY_FILE_AAD,
            master.as_mut(),
            chacha20poly1305::Tag::from_slice(tag),
        ) {
            Ok(()) => Ok(Some(master)),
            Err(_) => Ok(None),
        }
    }
}

/// A fresh random master key.
pub fn new_master_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_detect_tampering() {
        let keys = Keys::from_master(&[7u8; 32]);
        for plain in [vec![], b"hello".to_vec(), vec![0u8; 300_000]] {
            let id = keys.blob_id(&plain);
            let stored = keys.encode_blob(BlobKind::Data, &id, &plain);
            assert_eq!(
                keys.decode_blob(BlobKind::Data, &id, &stored).unwrap(),
                plain
            );
            assert!(
                keys.decode_blob(BlobKind::Tree, &id, &stored).is_err(),
                "bound to kind"
            );
            let mut bad = stored.clone();
            let last = bad.len() - 1;
            bad[last / 2] ^= 1;
            assert!(keys.decode_blob(BlobKind::Data, &id, &bad).is_err());
        }
        let other = Keys::from_master(&[8u8; 32]);
        assert_ne!(other.blob_id(b"x"), keys.blob_id(b"x"), "ids are keyed");
    }

    #[test]
    fn key_file_opens_only_with_its_password() {
        let master = new_master_key();
        let file = KeyFile::wrap(&master, "secret", KdfParams::with_cost(1024, 1)).unwrap();
        assert_eq!(*file.unwrap_key("secret").unwrap().unwrap(), *master);
        assert!(file.unwrap_key("wrong").unwrap().is_none());
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut random = vec![0u8; 1 << 20];
        rand::rngs::OsRng.fill_bytes(&mut random);
        assert!(compress(&random).is_none());
        assert!(compress(&vec![b'a'; 1 << 20]).unwrap().len() < 1000);
    }

    /// Found by reading the key file path: a planted key file asking argon2id for 4 TiB of
    /// memory (or 2^32 passes) made opening the repository abort on allocation (or never end).
    /// Key files are plaintext JSON, so anyone who can write to the storage can plant one.
    #[test]
    fn key_files_asking_for_absurd_costs_are_refused() {
        let master = new_master_key();
        let file = KeyFile::wrap(&master, "secret", KdfParams::with_cost(1024, 1)).unwrap();
        for (memory_kib, iterations, parallelism) in
            [(u32::MAX, 1, 1), (1024, u32::MAX, 1), (1024, 1, u32::MAX)]
        {
            let mut hostile = file.clone();
            hostile.kdf.memory_kib = memory_kib;
            hostile.kdf.iterations = iterations;
            hostile.kdf.parallelism = parallelism;
            let err = hostile.unwrap_key("secret").unwrap_err();
            assert!(err.contains("beyond what a key file may ask"), "{err}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        proptest! {
            /// Any payload sealed as a blob (any flag; a real zstd frame or any bytes): an
            /// error or the blob the id names.
            #[test]
            fn blobs_read_from_a_hostile_repository(
                flag in 0u8..3,
                body in prop::collection::vec(any::<u8>(), 0..120),
                compress in any::<bool>(),
            ) {
                let mut data = if compress && !body.is_empty() {
                    zstd::bulk::compress(&body, 1).unwrap()
                } else {
                    body
                };
                data.insert(0, flag);
                crate::fuzzing::blob(&data);
            }

            /// Any key file: an error, a wrong password, or the key; quickly.
            #[test]
            fn key_files_read_from_a_hostile_repository(
                memory_kib in prop_oneof![0u32..64, any::<u32>()],
                iterations in prop_oneof![0u32..3, any::<u32>()],
                parallelism in prop_oneof![0u32..3, any::<u32>()],
                algorithm in prop_oneof![Just("argon2id".to_owned()), "\\PC{0,9}"],
                salt in "[A-Za-z0-9+/=]{0,30}",
                wrapped in "[A-Za-z0-9+/=]{0,100}",
            ) {
                let json = serde_json::json!({
                    "version": 1,
                    "kdf": {"algorithm": algorithm, "memoryKib": memory_kib, "iterations": iterations,
                            "parallelism": parallelism, "salt": salt},
                    "created": "2026-03-01T10:20:30Z",
                    "hostname": "h",
                    "wrapped": wrapped,
                });
                crate::fuzzing::key_file(json.to_string().as_bytes());
            }
        }
    }
}
