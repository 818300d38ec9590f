//! Reading a file's content back as a stream, whole or a byte range of it. Chunks are fetched a
//! few at a time ahead of the consumer and each is verified (AEAD tag, then its keyed hash)
//! before a byte of it is returned: damaged data is an error, never wrong bytes.

use std::ops::Range;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error::{RepoError, RepoResult};
use crate::format::item::Content;
use crate::ids::{BlobId, BlobKind};
use crate::repository::Repository;

/// Chunks fetched ahead of the consumer.
const READ_AHEAD: usize = 4;
const LOOKUP_BATCH: usize = 64;

/// A stream of content bytes; an error ends it.
pub type ContentStream = BoxStream<'static, RepoResult<Bytes>>;

impl Repository {
    /// The bytes of `content` in `range` (all of it when `None`). A range must lie within the
    /// content (`start ≤ end ≤ size`).
    pub fn read_content(
        &self,
        content: &Content,
        range: Option<Range<u64>>,
    ) -> RepoResult<ContentStream> {
        let range = range.unwrap_or(0..content.size);
        if range.start > range.end || range.end > content.size {
            return Err(RepoError::Invalid(format!(
                "range {}..{} is outside the content's {} bytes",
                range.start, range.end, content.size
            )));
        }
        // (chunk, slice of the chunk to return)
        let mut wanted: Vec<(BlobId, u32, Range<usize>)> = Vec::new();
        let mut offset = 0u64;
        for chunk in &content.chunks {
            let (start, end) = (offset, offset + chunk.1 as u64);
            offset = end;
            if end <= range.start || start >= range.end {
                continue;
            }
            let from = range.start.saturating_sub(start) as usize;
            let to = (range.end.min(end) - start) as usize;
            wanted.push((chunk.0, chunk.1, from..to));
        }
        if offset != content.size {
            return Err(RepoError::Invalid(format!(
                "content lists {offset} bytes of chunks for {} bytes",
                content.size
            )));
        }
        let this = self.clone();
        let located = futures::stream::iter(wanted)
            .chunks(LOOKUP_BATCH)
            .then(move |batch| {
                let this = this.clone();
                async move {
                    let ids: Vec<BlobId> = batch.iter().map(|(id, _, _)| *id).collect();
                    let locations = this
                        .inner
                        .catalog
                        .lookup_blobs(this.inner.repo, &ids)
                        .await?;
                    Ok::<_, RepoError>(futures::stream::iter(
                        batch.into_iter().zip(locations).map(Ok::<_, RepoError>),
                    ))
                }
            })
            .try_flatten();
        let this = self.clone();
        let bytes = located
            .map_ok(move |((id, plain_len, slice), location)| {
                let this = this.clone();
                async move {
                    let location = location.ok_or(RepoError::UnknownBlob(id))?;
                    let plain = this.fetch_blob(BlobKind::Data, id, &location).await?;
                    if plain.len() != plain_len as usize {
                        return Err(RepoError::DamagedBlob {
                            blob: id,
                            pack: location.pack,
                            reason: format!(
                                "{} bytes where the file lists {plain_len}",
                                plain.len()
                            ),
                        });
                    }
                    Ok(plain.slice(slice))
                }
            })
            .try_buffered(READ_AHEAD);
        Ok(bytes.boxed())
    }
}
