//! Microsoft's quickXorHash: the content hash OneDrive for Business and SharePoint report as
//! `file.hashes.quickXorHash` (base64 of 20 bytes), so a client can verify what it downloaded.
//!
//! Implemented from Microsoft's published description ("Code snippets: QuickXorHash
//! algorithm"): the hash is a 160-bit block; byte `i` of the input is XORed into it at bit
//! position `(11 * i) mod 160`, wrapping around (little-endian bit order across the 20 bytes);
//! finally the input length, as a 64-bit little-endian number, is XORed into the last 8 bytes.
//!
//! Because `11 * i mod 160` repeats every 160 bytes, the input is first folded column-wise into
//! 160 accumulator bytes (plain XORs, which the compiler vectorises); each accumulator is placed
//! at its bit position only when the hash is finished.

use base64::Engine;

/// Bits in the hash.
const WIDTH_BITS: usize = 160;
/// Bits the insertion point moves per input byte.
const SHIFT: usize = 11;
/// Input bytes after which the insertion points repeat.
const PERIOD: usize = WIDTH_BITS;

/// A streaming quickXorHash.
#[derive(Clone)]
pub struct QuickXorHash {
    /// `columns[k]`: XOR of every input byte whose index is `k` modulo [`PERIOD`].
    columns: [u8; PERIOD],
    length: u64,
}

impl Default for QuickXorHash {
    fn default() -> Self {
        Self::new()
    }
}

impl QuickXorHash {
    pub fn new() -> Self {
        Self {
            columns: [0; PERIOD],
            length: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        // Where the next byte goes within the period.
        let mut at = (self.length % PERIOD as u64) as usize;
        self.length += data.len() as u64;
        // Finish a partial period byte by byte, then fold whole periods, then the tail.
        while at != 0 && !data.is_empty() {
            self.columns[at] ^= data[0];
            data = &data[1..];
            at = (at + 1) % PERIOD;
        }
        let mut chunks = data.chunks_exact(PERIOD);
        for chunk in &mut chunks {
            for (column, byte) in self.columns.iter_mut().zip(chunk) {
                *column ^= byte;
            }
        }
        for (column, byte) in self.columns.iter_mut().zip(chunks.remainder()) {
            *column ^= byte;
        }
    }

    /// The 20 bytes of the hash.
    pub fn finalize(&self) -> [u8; 20] {
        let mut out = [0u8; WIDTH_BITS / 8];
        for (k, &byte) in self.columns.iter().enumerate() {
            let bit = (k * SHIFT) % WIDTH_BITS;
            let (index, offset) = (bit / 8, bit % 8);
            let spread = u16::from(byte) << offset;
            out[index] ^= spread as u8;
            out[(index + 1) % out.len()] ^= (spread >> 8) as u8;
        }
        let tail = out.len() - 8;
        for (o, l) in out[tail..].iter_mut().zip(self.length.to_le_bytes()) {
            *o ^= l;
        }
        out
    }

    /// The hash as Graph reports it: standard base64 of the 20 bytes.
    pub fn finalize_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.finalize())
    }
}

/// The quickXorHash of `data`, base64 as Graph reports it.
pub fn base64_of(data: &[u8]) -> String {
    let mut h = QuickXorHash::new();
    h.update(data);
    h.finalize_base64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    /// Known answers published with independent implementations (inputs and hashes in base64).
    const VECTORS: &[(&str, &str)] = &[
        ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
        ("tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="),
        ("/aNzzCFPS/A=", "/RjFHJgRgicsAR4ACAAAAAAAAAA="),
        ("T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="),
        (
            "Mb7EGva2rEE5fENDL85P+BsapHEEjv2/siVhKjvAQe02feExVOQSkfmuYzU/kTF1MaKjPmKF/w+cbvwfdWL8aQ==",
            "n1anP5NfvD4XDYWIeRPW3ZkPv1Y=",
        ),
    ];

    #[test]
    fn known_answers() {
        for (input, hash) in VECTORS {
            assert_eq!(base64_of(&b64(input)), *hash, "input {input}");
        }
        // "hello world", as published with another implementation.
        assert_eq!(base64_of(b"hello world"), "aCgDG9jwBhDc4Q1yawMZAAAAAAA=");
    }

    /// The description's algorithm, bit by bit: rotate each byte into a 160-bit block.
    fn by_the_book(data: &[u8]) -> [u8; 20] {
        let mut block = [0u8; 20];
        for (i, &b) in data.iter().enumerate() {
            for bit in 0..8 {
                if b >> bit & 1 == 1 {
                    let at = (i * SHIFT + bit) % WIDTH_BITS;
                    block[at / 8] ^= 1 << (at % 8);
                }
            }
        }
        for (o, l) in block[12..]
            .iter_mut()
            .zip((data.len() as u64).to_le_bytes())
        {
            *o ^= l;
        }
        block
    }

    #[test]
    fn streaming_in_any_pieces_equals_the_description() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let expected = by_the_book(&data);
        for piece in [1, 3, 64, 159, 160, 161, 1000, 5000] {
            let mut h = QuickXorHash::new();
            for chunk in data.chunks(piece) {
                h.update(chunk);
            }
            assert_eq!(h.finalize(), expected, "pieces of {piece}");
        }
    }
}
