//! Content-defined chunking of a byte stream with FastCDC (2020), gear table seeded from the
//! repository key. Bytes are gathered until a cut point can be decided (`max_size` buffered, or
//! the end of the stream), so memory stays within a few chunks whatever the file size.

use bytes::{Buf, Bytes, BytesMut};
use fastcdc::v2020::{cut_gear, get_gear_with_seed, select_masks, Normalization};
use futures::{Stream, StreamExt};

use crate::format::config::ChunkerParams;

#[derive(Clone)]
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
    gear: std::sync::Arc<[u64]>,
    gear_ls: std::sync::Arc<[u64]>,
}

impl Chunker {
    /// The largest chunk this chunker cuts.
    pub fn max_size(&self) -> usize {
        self.max
    }

    pub fn new(params: &ChunkerParams, seed: u64) -> Self {
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Self {
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            mask_s,
            mask_l,
            gear: gear.into_owned().into(),
            gear_ls: gear_ls.into_owned().into(),
        }
    }

    /// Length of the first chunk of `data` (all of it when it is no longer than a chunk can be).
    fn cut(&self, data: &[u8]) -> usize {
        let (_, count) = cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        count.max(1).min(data.len())
    }

    /// Cuts a stream of bytes into chunks.
    pub fn chunks<S, E>(&self, input: S) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Send + 'static,
    {
        struct State<S> {
            input: std::pin::Pin<Box<S>>,
            buf: BytesMut,
            eof: bool,
        }
        let chunker = self.clone();
        let state = State {
            input: Box::pin(input),
            buf: BytesMut::new(),
            eof: false,
        };
        futures::stream::unfold(state, move |mut st| {
            let chunker = chunker.clone();
            async move {
                loop {
                    if st.buf.len() >= chunker.max || (st.eof && !st.buf.is_empty()) {
                        let n = chunker.cut(&st.buf);
                        // A chunk of its own, not a view of the buffer: the buffer's memory is
                        // reused at once instead of living as long as any chunk cut from it.
                        let chunk = Bytes::copy_from_slice(&st.buf[..n]);
                        st.buf.advance(n);
                        return Some((Ok(chunk), st));
                    }
                    if st.eof {
                        return None;
                    }
                    match st.input.next().await {
                        Some(Ok(bytes)) => {
                            if st.buf.is_empty() && st.buf.capacity() < chunker.max {
                                st.buf.reserve(chunker.max + chunker.max / 2);
                            }
                            st.buf.extend_from_slice(&bytes)
                        }
                        Some(Err(e)) => {
                            st.eof = true;
                            st.buf.clear();
                            return Some((Err(e), st));
                        }
                        None => st.eof = true,
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    fn params() -> ChunkerParams {
        ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..ChunkerParams::default()
        }
    }

    async fn cut_all(c: &Chunker, data: &[u8], piece: usize) -> Vec<Bytes> {
        let pieces: Vec<Result<Bytes, ()>> = data
            .chunks(piece.max(1))
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        c.chunks(futures::stream::iter(pieces))
            .map(|r| r.unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn boundaries_do_not_depend_on_how_bytes_arrive() {
        let mut data = vec![0u8; 1 << 20];
        rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut data);
        let c = Chunker::new(&params(), 42);
        let a = cut_all(&c, &data, 1 << 20).await;
        let b = cut_all(&c, &data, 1000).await;
        assert_eq!(a, b);
        assert_eq!(a.concat(), data);
        assert!(a.len() > 20 && a.iter().all(|c| c.len() <= 65536));
        assert!(cut_all(&c, &[], 10).await.is_empty());
    }

    #[tokio::test]
    async fn an_insertion_changes_few_chunks() {
        let mut data = vec![0u8; 1 << 20];
        rand::rngs::StdRng::seed_from_u64(2).fill_bytes(&mut data);
        let c = Chunker::new(&params(), 7);
        let before = cut_all(&c, &data, 4096).await;
        let mut changed = b"inserted".to_vec();
        changed.extend_from_slice(&data);
        let after = cut_all(&c, &changed, 4096).await;
        let shared = after.iter().filter(|c| before.contains(c)).count();
        assert!(shared + 3 >= before.len(), "{shared} of {}", before.len());
    }
}
