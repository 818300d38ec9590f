//! Cutting content into chunks within one byte budget that every stream being stored shares.
//!
//! A stream takes a largest chunk's share of the budget before it gathers a chunk, and gives
//! back what the chunk did not need once it is cut; the chunk keeps the rest of its share until
//! its blob is in a pack. So every plain byte between a download and its pack (being gathered,
//! cut, hashed, looked up, encoded) is inside the budget, however many streams there are and
//! however large their files: a stream without a share reads no more of its input (at most the
//! piece it holds), so its download waits. Taking the share only once a chunk was cut left one
//! chunk per stream outside the budget (up to the largest chunk each, 64 MiB for the 16
//! downloads of a backup), and large files kept every stream at that all the time.
//!
//! No deadlock: a stream's share that is still growing (the chunk it gathers) needs input, not
//! budget, to be cut; and a cut chunk gives its share back once its blob is in a pack, which
//! needs no budget either.

use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::chunker::{Chunker, Gatherer};
use crate::error::{RepoError, RepoResult};

/// The budget counts kibibytes (a semaphore counts in u32).
pub(crate) const UNIT: usize = 1024;

/// The units that hold `bytes` (at least one).
pub(crate) fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX)
}

/// A chunk and its share of the budget (given back when dropped).
pub(crate) type Budgeted = (Bytes, OwnedSemaphorePermit);

struct State<S> {
    input: Pin<Box<S>>,
    chunker: Chunker,
    gatherer: Gatherer,
    /// The input piece being cut, and how much of it is consumed.
    piece: Bytes,
    eof: bool,
    budget: Arc<Semaphore>,
    /// The share of the chunk being gathered (a largest chunk's).
    share: Option<OwnedSemaphorePermit>,
    max_units: u32,
}

impl<S> State<S> {
    async fn reserve(&mut self, units: u32) -> RepoResult<()> {
        if self.share.is_none() {
            let share = self
                .budget
                .clone()
                .acquire_many_owned(units)
                .await
                .map_err(RepoError::task("chunk budget"))?;
            self.share = Some(share);
        }
        Ok(())
    }

    /// `chunk` with its part of the share; the rest goes back to the budget.
    async fn cut(&mut self, chunk: Bytes) -> RepoResult<Budgeted> {
        // Bytes carried over from the last cut (at most one) have no share yet.
        self.reserve(units(chunk.len())).await?;
        let mut share = self.share.take().ok_or_else(|| {
            RepoError::Internal("a chunk was cut without its share of the budget".into())
        })?;
        let kept = share.split(units(chunk.len()) as usize);
        Ok((chunk, kept.unwrap_or(share)))
    }
}

/// `input` cut into chunks by `chunker`, each with its share of `budget` (see the module doc).
pub(crate) fn chunks<S>(
    chunker: &Chunker,
    input: S,
    budget: Arc<Semaphore>,
) -> impl Stream<Item = RepoResult<Budgeted>> + Send + 'static
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    let state = State {
        input: Box::pin(input),
        chunker: chunker.clone(),
        gatherer: chunker.gatherer(),
        piece: Bytes::new(),
        eof: false,
        budget,
        share: None,
        max_units: units(chunker.max_size()),
    };
    futures::stream::unfold(state, |mut st| async move {
        let item = next(&mut st).await?;
        if item.is_err() {
            // The stream ends with its error: what was gathered is dropped, its share given back.
            st.eof = true;
            st.piece = Bytes::new();
            st.gatherer = st.chunker.gatherer();
            st.share = None;
        }
        Some((item, st))
    })
}

/// The next chunk of a stream; `None` once its input is done and every byte was handed on.
async fn next<S>(st: &mut State<S>) -> Option<RepoResult<Budgeted>>
where
    S: Stream<Item = std::io::Result<Bytes>>,
{
    loop {
        if !st.piece.is_empty() {
            if let Err(e) = st.reserve(st.max_units).await {
                return Some(Err(e));
            }
            let (used, chunk) = st.gatherer.feed(&st.piece);
            st.piece.advance(used);
            if let Some(chunk) = chunk {
                return Some(st.cut(chunk).await);
            }
            continue;
        }
        if st.eof {
            let chunk = st.gatherer.finish()?;
            return Some(st.cut(chunk).await);
        }
        match st.input.next().await {
            Some(Ok(bytes)) => st.piece = bytes,
            Some(Err(e)) => {
                return Some(Err(RepoError::io("reading the content to back up", e)));
            }
            None => st.eof = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;
    use rand::{RngCore, SeedableRng};

    use super::*;
    use crate::format::config::ChunkerParams;

    const PIECE: usize = 4096;
    const STREAMS: usize = 6;

    fn chunker() -> Chunker {
        let params = ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..ChunkerParams::default()
        };
        Chunker::new(&params, 7)
    }

    fn content(seed: u64) -> Vec<u8> {
        let mut data = vec![0u8; 1 << 20];
        rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
        data
    }

    /// `data` in pieces of [`PIECE`], counting into `pulled` the bytes read from it.
    fn counted(
        data: &[u8],
        pulled: &Arc<AtomicUsize>,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let pieces: Vec<Bytes> = data.chunks(PIECE).map(Bytes::copy_from_slice).collect();
        let pulled = pulled.clone();
        futures::stream::iter(pieces).map(move |p| {
            pulled.fetch_add(p.len(), Ordering::SeqCst);
            Ok(p)
        })
    }

    /// Polls every stream until none can go on without a share given back; the chunks each
    /// gave, their shares kept in `held`.
    fn drive<T>(
        streams: &mut [Pin<Box<T>>],
        held: &mut Vec<OwnedSemaphorePermit>,
        out: &mut [Vec<Bytes>],
    ) where
        T: Stream<Item = RepoResult<Budgeted>> + ?Sized,
    {
        loop {
            let mut moved = false;
            for (stream, out) in streams.iter_mut().zip(out.iter_mut()) {
                while let Some(Some(item)) = stream.next().now_or_never() {
                    let (chunk, share) = item.expect("a chunk");
                    out.push(chunk);
                    held.push(share);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    // Plain tests, outside a runtime: tokio's cooperative budget would make a ready semaphore
    // look pending after many polls, and the streams look stuck when they are not.
    #[test]
    fn streams_read_no_more_than_the_budget_holds() {
        let chunker = chunker();
        let budget_bytes = 2 * chunker.max_size();
        let budget = Arc::new(Semaphore::new(budget_bytes / UNIT));
        let pulled = Arc::new(AtomicUsize::new(0));
        let inputs: Vec<Vec<u8>> = (0..STREAMS as u64).map(content).collect();
        let mut streams: Vec<_> = inputs
            .iter()
            .map(|data| Box::pin(chunks(&chunker, counted(data, &pulled), budget.clone()).fuse()))
            .collect();
        let mut held = Vec::new();
        let mut out = vec![Vec::new(); STREAMS];
        drive(&mut streams, &mut held, &mut out);
        // Every chunk kept: what the streams read is inside the budget, but for the piece each
        // may hold while it waits for a share.
        let read = pulled.load(Ordering::SeqCst);
        assert!(
            read <= budget_bytes + STREAMS * PIECE,
            "{read} bytes read with a budget of {budget_bytes}"
        );
        assert!(!held.is_empty(), "the budget let some chunks through");
        let in_chunks: usize = out.iter().flatten().map(Bytes::len).sum();
        let shares: usize = held.iter().map(|s| s.num_permits()).sum();
        assert!(
            shares * UNIT >= in_chunks,
            "each chunk holds its bytes' share"
        );

        // Shares given back as chunks are used: every stream ends, cut as without a budget.
        while !held.is_empty() {
            held.clear();
            drive(&mut streams, &mut held, &mut out);
        }
        for (data, got) in inputs.iter().zip(&out) {
            let whole = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(data.clone()))]);
            let expected: Vec<Bytes> = futures::executor::block_on(
                chunker.chunks(whole).map(|c| c.expect("chunk")).collect(),
            );
            assert_eq!(got, &expected);
        }
        assert_eq!(
            budget.available_permits(),
            budget_bytes / UNIT,
            "every share went back"
        );
    }

    #[test]
    fn a_failed_input_gives_its_share_back() {
        let chunker = chunker();
        let budget = Arc::new(Semaphore::new(2 * chunker.max_size() / UNIT));
        let input = futures::stream::iter([
            Ok(Bytes::from(vec![7u8; 1000])),
            Err(std::io::Error::other("cut")),
        ]);
        let items: Vec<_> =
            futures::executor::block_on(chunks(&chunker, input, budget.clone()).collect());
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
        assert_eq!(budget.available_permits(), 2 * chunker.max_size() / UNIT);
    }
}
