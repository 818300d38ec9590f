//! Content-defined chunking of a byte stream with FastCDC (2020), gear table seeded from the
//! repository key. Cut points are found as the bytes arrive: each byte pair is tested once, when
//! its second byte comes in, so a stream holds only the chunk it is gathering (at most
//! `max_size`) whatever the file size and however its bytes are split. The cuts are exactly the
//! ones `fastcdc::v2020::cut_gear` finds over the whole content (the repository's chunk
//! boundaries, which deduplication with existing repositories depends on).

use std::sync::Arc;

use bytes::Bytes;
use fastcdc::v2020::{get_gear_with_seed, select_masks, Normalization};

use crate::format::config::ChunkerParams;

/// A gear table of FastCDC.
type Gear = [u64; 256];

#[derive(Clone)]
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
    gear: Arc<Gear>,
    gear_ls: Arc<Gear>,
}

/// A stream's first buffer (it doubles from there, up to `max_size`).
const FIRST_BUFFER: usize = 16 * 1024;
/// A gathered chunk's buffer is handed over as is (no copy) when it wastes at most this
/// fraction of its capacity; else the chunk is copied out and the buffer kept for the next,
/// unless it grew past `avg_size`: a buffer grown for one large chunk and kept would hold up to
/// `max_size` for the rest of the stream, for every stream at once (a backup of large files
/// held 4 MiB per download that way, 56 MiB in all), where a fresh one grows with the chunk.
const HAND_OVER_SLACK: usize = 4;

impl Chunker {
    /// The largest chunk this chunker cuts.
    pub fn max_size(&self) -> usize {
        self.max
    }

    pub fn new(params: &ChunkerParams, seed: u64) -> Self {
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(seed);
        let table = |t: &[u64]| -> Arc<Gear> {
            let mut out = [0u64; 256];
            out.copy_from_slice(t);
            Arc::new(out)
        };
        Self {
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            mask_s,
            mask_l,
            gear: table(&gear),
            gear_ls: table(&gear_ls),
        }
    }

    /// Where a chunk's first tested pair starts (`cut_gear` skips `min_size` bytes, in pairs).
    fn first_pair(&self) -> usize {
        self.min / 2 * 2
    }

    /// Pairs starting below this use the strict masks (`avg_size`, in pairs).
    fn strict_end(&self) -> usize {
        self.avg / 2 * 2
    }

    /// Pairs starting below this are tested at all (`max_size`, in pairs).
    fn pairs_end(&self) -> usize {
        self.max / 2 * 2
    }

    /// A chunk gatherer: bytes in, chunks out.
    pub(crate) fn gatherer(&self) -> Gatherer {
        Gatherer {
            chunker: self.clone(),
            buf: Vec::new(),
            pos: self.first_pair(),
            hash: 0,
        }
    }

    /// Cuts a stream of bytes into chunks, with no budget: the reference the tests and fuzz
    /// targets check cuts against (writers cut through [`crate::chunk_budget::chunks`]).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn chunks<S, E>(
        &self,
        input: S,
    ) -> impl futures::Stream<Item = Result<Bytes, E>> + Send + 'static
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Send + 'static,
    {
        use bytes::Buf;
        use futures::StreamExt;

        struct State<S> {
            input: std::pin::Pin<Box<S>>,
            gatherer: Gatherer,
            /// The input piece being cut, and how much of it is consumed.
            piece: Bytes,
            eof: bool,
        }
        let state = State {
            input: Box::pin(input),
            gatherer: self.gatherer(),
            piece: Bytes::new(),
            eof: false,
        };
        futures::stream::unfold(state, |mut st| async move {
            loop {
                if !st.piece.is_empty() {
                    let (used, chunk) = st.gatherer.feed(&st.piece);
                    st.piece.advance(used);
                    if let Some(chunk) = chunk {
                        return Some((Ok(chunk), st));
                    }
                    continue;
                }
                if st.eof {
                    return st.gatherer.finish().map(|chunk| (Ok(chunk), st));
                }
                match st.input.next().await {
                    Some(Ok(bytes)) => st.piece = bytes,
                    Some(Err(e)) => {
                        st.eof = true;
                        st.gatherer = st.gatherer.chunker.gatherer();
                        return Some((Err(e), st));
                    }
                    None => st.eof = true,
                }
            }
        })
    }
}

/// One stream's chunk being gathered, with the state of its cut-point search.
pub(crate) struct Gatherer {
    chunker: Chunker,
    /// The chunk's bytes so far (never more than `max_size`).
    buf: Vec<u8>,
    /// The next pair to test, from the chunk's start (even); every pair before it whose bytes
    /// both arrived was tested.
    pos: usize,
    /// The gear hash over the pairs tested.
    hash: u64,
}

impl Gatherer {
    /// Takes bytes from the start of `data` until a chunk is complete or `data` runs out: how
    /// many it took, and the chunk completed if any.
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<Bytes>) {
        match self.scan(data) {
            None => {
                self.extend(data);
                (data.len(), None)
            }
            Some(cut) => {
                let held = self.buf.len();
                let used = cut.saturating_sub(held);
                self.extend(&data[..used]);
                let chunk = self.cut_at(cut);
                (used, Some(chunk))
            }
        }
    }

    /// The last chunk, once the stream ended (whatever was gathered).
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.buf.is_empty() {
            return None;
        }
        let n = self.buf.len();
        Some(self.cut_at(n))
    }

    /// Tests the pairs `data` completes; the chunk's length if one ends within `buf` + `data`.
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        let c = &self.chunker;
        let held = self.buf.len();
        let avail = (held + data.len()).min(c.max);
        // A pair is tested once both its bytes are here.
        let last = avail.saturating_sub(1);
        let pairs_end = c.pairs_end();
        let strict_end = c.strict_end().min(pairs_end);
        let (gear, gear_ls): (&Gear, &Gear) = (&c.gear, &c.gear_ls);
        let mut pos = self.pos;
        let mut hash = self.hash;
        // A pair split between what was held and `data`.
        if pos < held && pos < last && pos < pairs_end {
            let (mask, mask_ls) = if pos < strict_end {
                (c.mask_s, c.mask_s << 1)
            } else {
                (c.mask_l, c.mask_l << 1)
            };
            hash = (hash << 2).wrapping_add(gear_ls[self.buf[pos] as usize]);
            if hash & mask_ls == 0 {
                return Some(pos.max(1));
            }
            hash = hash.wrapping_add(gear[data[pos + 1 - held] as usize]);
            if hash & mask == 0 {
                return Some(pos + 1);
            }
            pos += 2;
        }
        for (end, mask) in [
            (strict_end.min(last), c.mask_s),
            (pairs_end.min(last), c.mask_l),
        ] {
            let mask_ls = mask << 1;
            while pos < end {
                let a = pos - held;
                hash = (hash << 2).wrapping_add(gear_ls[data[a] as usize]);
                if hash & mask_ls == 0 {
                    return Some(pos.max(1));
                }
                hash = hash.wrapping_add(gear[data[a + 1] as usize]);
                if hash & mask == 0 {
                    return Some(pos + 1);
                }
                pos += 2;
            }
        }
        self.pos = pos;
        self.hash = hash;
        // No cut point in a whole `max_size`: the chunk is that long.
        (avail == c.max).then_some(c.max)
    }

    /// Appends bytes to the chunk, growing the buffer by doubling up to `max_size`.
    fn extend(&mut self, data: &[u8]) {
        let need = self.buf.len() + data.len();
        if need > self.buf.capacity() {
            let want = (self.buf.capacity() * 2)
                .max(FIRST_BUFFER)
                .min(self.chunker.max)
                .max(need);
            self.buf.reserve_exact(want - self.buf.len());
        }
        self.buf.extend_from_slice(data);
    }

    /// The chunk of the first `n` bytes gathered; what follows starts the next one.
    fn cut_at(&mut self, n: usize) -> Bytes {
        let c = &self.chunker;
        self.pos = c.first_pair();
        self.hash = 0;
        if n < self.buf.len() {
            let chunk = Bytes::copy_from_slice(&self.buf[..n]);
            self.buf.drain(..n);
            // What is left was not tested as part of the new chunk: test it again.
            let rest = std::mem::take(&mut self.buf);
            let mut fed = 0;
            while fed < rest.len() {
                let (used, next) = self.feed(&rest[fed..]);
                debug_assert!(
                    next.is_none(),
                    "a carried-over byte cannot complete a chunk"
                );
                fed += used;
            }
            return chunk;
        }
        if self.buf.capacity() - n <= n / HAND_OVER_SLACK {
            return Bytes::from(std::mem::take(&mut self.buf));
        }
        let chunk = Bytes::copy_from_slice(&self.buf);
        if self.buf.capacity() > c.avg {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use proptest::prelude::*;
    use rand::{RngCore, SeedableRng};

    fn params() -> ChunkerParams {
        ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..ChunkerParams::default()
        }
    }

    /// The whole content cut at once with `fastcdc`'s own function: the boundaries the
    /// repository format has always had.
    fn cut_whole(c: &Chunker, data: &[u8]) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (_, count) = fastcdc::v2020::cut_gear(
                rest,
                c.min,
                c.avg,
                c.max,
                c.mask_s,
                c.mask_l,
                c.mask_s << 1,
                c.mask_l << 1,
                &c.gear[..],
                &c.gear_ls[..],
            );
            let n = count.max(1).min(rest.len());
            out.push(Bytes::copy_from_slice(&rest[..n]));
            rest = &rest[n..];
        }
        out
    }

    /// `data` fed in pieces of the given lengths (cycled).
    async fn cut_streamed(c: &Chunker, data: &[u8], lengths: &[usize]) -> Vec<Bytes> {
        let mut pieces: Vec<Result<Bytes, ()>> = Vec::new();
        let mut at = 0;
        for len in lengths.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + len.max(&1)).min(data.len());
            pieces.push(Ok(Bytes::copy_from_slice(&data[at..end])));
            at = end;
        }
        c.chunks(futures::stream::iter(pieces))
            .map(|r| r.unwrap())
            .collect()
            .await
    }

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut data = vec![0u8; len];
        rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
        data
    }

    #[tokio::test]
    async fn boundaries_do_not_depend_on_how_bytes_arrive() {
        let data = random(1 << 20, 1);
        let c = Chunker::new(&params(), 42);
        let whole = cut_whole(&c, &data);
        assert_eq!(cut_streamed(&c, &data, &[1 << 20]).await, whole);
        assert_eq!(cut_streamed(&c, &data, &[1000]).await, whole);
        assert_eq!(cut_streamed(&c, &data, &[1]).await, whole);
        assert_eq!(cut_streamed(&c, &data, &[3, 4095, 65537]).await, whole);
        assert_eq!(whole.concat(), data);
        assert!(whole.len() > 20 && whole.iter().all(|c| c.len() <= 65536));
        assert!(cut_streamed(&c, &[], &[10]).await.is_empty());
    }

    #[tokio::test]
    async fn the_repository_default_cuts_as_before() {
        let data = random(24 << 20, 3);
        let c = Chunker::new(&ChunkerParams::default(), 0x1234_5678);
        let whole = cut_whole(&c, &data);
        assert!(whole.len() > 8);
        assert_eq!(cut_streamed(&c, &data, &[65_536, 16_001]).await, whole);
        // No cut point at all (all zeroes): chunks of exactly `max_size`.
        let zeroes = vec![0u8; 9 << 20];
        let cuts = cut_streamed(&c, &zeroes, &[100_000]).await;
        assert_eq!(cuts, cut_whole(&c, &zeroes));
        assert_eq!(cuts[0].len(), 4 << 20);
    }

    #[tokio::test]
    async fn an_insertion_changes_few_chunks() {
        let data = random(1 << 20, 2);
        let c = Chunker::new(&params(), 7);
        let before = cut_streamed(&c, &data, &[4096]).await;
        let mut changed = b"inserted".to_vec();
        changed.extend_from_slice(&data);
        let after = cut_streamed(&c, &changed, &[4096]).await;
        let shared = after.iter().filter(|c| before.contains(c)).count();
        assert!(shared + 3 >= before.len(), "{shared} of {}", before.len());
    }

    #[test]
    fn a_gatherer_holds_at_most_one_chunk() {
        let c = Chunker::new(&params(), 5);
        let mut g = c.gatherer();
        let data = random(1 << 20, 4);
        let mut at = 0;
        while at < data.len() {
            let (used, chunk) = g.feed(&data[at..(at + 50_000).min(data.len())]);
            at += used;
            if let Some(chunk) = chunk {
                assert!(chunk.len() <= 65536);
                // Between chunks, no buffer grown for a large one is kept.
                let kept = g.buf.capacity();
                assert!(
                    kept <= 16384usize.max(2 * g.buf.len()).max(FIRST_BUFFER),
                    "{kept} bytes kept for {} carried over",
                    g.buf.len()
                );
            }
            assert!(g.buf.len() < 65536 && g.buf.capacity() <= 65536);
        }
        assert_eq!(g.finish().map(|c| c.is_empty()), Some(false));
        assert!(g.finish().is_none());
    }

    /// Chunker sizes as the repository format allows them (even, 64 ≤ min ≤ avg ≤ max).
    fn sizes() -> impl Strategy<Value = ChunkerParams> {
        (32u32..2048, 1u32..8, 1u32..8).prop_map(|(min, a, m)| ChunkerParams {
            min_size: min * 2,
            avg_size: min * 2 * a,
            max_size: min * 2 * a * m,
            ..ChunkerParams::default()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn streamed_cuts_are_the_whole_contents_cuts(
            params in sizes(),
            seed in any::<u64>(),
            len in 0usize..300_000,
            lengths in proptest::collection::vec(1usize..70_000, 1..8),
            // Runs of one byte value (no cut point inside) between random bytes.
            runs in proptest::collection::vec((0usize..300_000, 0usize..20_000), 0..4),
        ) {
            let mut data = random(len, seed);
            for (at, run) in runs {
                let at = at.min(data.len());
                let end = (at + run).min(data.len());
                data[at..end].fill(7);
            }
            let c = Chunker::new(&params, seed);
            let whole = cut_whole(&c, &data);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let streamed = rt.block_on(cut_streamed(&c, &data, &lengths));
            prop_assert_eq!(streamed, whole);
        }
    }
}
