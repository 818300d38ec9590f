//! File downloads through the pool, in ranges.
//!
//! Microsoft charges downloads to the egress budget of the user the download URL was handed to
//! (100 GB per hour), and admits a request of the pre-authenticated URL as a whole: a request
//! for a whole 500-MiB file is admitted or refused in one piece. Asked for whole, large files
//! fill a budget in lumps (the room left under it, up to a file's size, goes unused until the
//! window slides) and an account admits far more than it can stream at once, so its budget
//! is spent long before the bytes flow. So a file is read in ranges of [`RANGE_BYTES`], one
//! after the other, on one URL while its account may send; when that account is told to wait
//! (or its URL expires), the next range is asked for on a fresh URL from whichever account the
//! pool gives (`/content` again: one request), so a large file moves on to an account with
//! egress left instead of waiting out another's. A download service that ignores `Range`
//! answers `200` with the whole file, which is streamed as it is.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, LOCATION, RANGE};

use super::{access, AccountPool, Counters, PoolError};
use crate::error::M365Error;

/// Bytes asked for per request of a download URL: small against a user's egress budget (so it
/// fills evenly), large enough that the requests cost nothing next to the transfer.
pub const RANGE_BYTES: u64 = 8 << 20;
/// Expired or refused download URLs tolerated for one file before it fails.
const URL_RENEWALS: u32 = 4;

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Where a download stands.
struct Ranged {
    content_url: String,
    route: access::Route,
    /// The pre-authenticated URL in use and the account it was handed to.
    source: Option<(String, usize)>,
    /// Bytes delivered so far: where the next range starts.
    offset: u64,
    /// The file's size, once an answer said it.
    size: Option<u64>,
    /// The last answer carried the rest of the file (a plain `200`).
    whole: bool,
    throttles: u32,
    renewals: u32,
}

/// Where `/content` sent the download.
enum Resolved {
    /// A pre-authenticated URL, handed to this account.
    Url(String, usize),
    /// No redirect: the answer itself (the content, or an error), and the account.
    Answer(reqwest::Response, usize),
}

/// What the stream reads now.
struct Part {
    body: Body,
    counters: Arc<Counters>,
    /// Bytes this part still owes (`None`: to the end of the body).
    remaining: Option<u64>,
}

/// A stream of a download's parts, as `unfold` runs it.
struct State<P> {
    pool: P,
    ranged: Ranged,
    part: Option<Part>,
    done: bool,
}

fn cut(reason: String) -> std::io::Error {
    std::io::Error::other(format!("the download was cut off: {reason}"))
}

/// `bytes a-b/size` or `bytes */size` of a `Content-Range` header: the file's size.
fn total_size(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    value.rsplit('/').next()?.trim().parse().ok()
}

fn content_length(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A `Content-Range` answer whose start is not the one asked for cannot be spliced on.
fn range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let spec = value.trim().strip_prefix("bytes")?.trim();
    spec.split('-').next()?.trim().parse().ok()
}

fn failed(status: u16) -> PoolError {
    M365Error::Graph {
        status,
        code: if status == 404 {
            "itemNotFound".into()
        } else {
            "downloadFailed".into()
        },
        message: format!("the download URL answered HTTP {status}"),
    }
    .into()
}

impl AccountPool {
    /// Whether the account was told to wait and the wait has not ended.
    fn is_paused(&self, index: usize) -> bool {
        self.accounts[index]
            .pace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_paused(Instant::now())
    }

    /// A download URL for `content_url` from an account the pool picks; or, when `/content`
    /// answered with the content itself, that answer.
    async fn resolve(&self, d: &Ranged) -> Result<Resolved, PoolError> {
        let (response, account) = self.send(&d.content_url, &d.route).await?;
        if let Some(scope) = &d.route.scope {
            self.access
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .readable(scope, account, self.accounts[account].organization);
        }
        if !response.status().is_redirection() {
            return Ok(Resolved::Answer(response, account));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| M365Error::Unreachable {
                url: d.content_url.clone(),
                reason: "redirect without a location".into(),
            })?
            .to_owned();
        Ok(Resolved::Url(location, account))
    }

    /// The answer that carries the bytes from `d.offset` on, and the account reading them;
    /// `None` when the file is complete.
    async fn next_part(&self, d: &mut Ranged) -> Result<Option<Part>, PoolError> {
        loop {
            if d.whole || d.size.is_some_and(|s| d.offset >= s) {
                return Ok(None);
            }
            // An account told to wait gets no request: one sent during the wait extends it.
            let source = d.source.take().filter(|(_, a)| !self.is_paused(*a));
            let (location, account) = match source {
                Some(s) => s,
                None => match self.resolve(d).await? {
                    Resolved::Url(location, account) => (location, account),
                    Resolved::Answer(response, account) => {
                        if !response.status().is_success() {
                            return Err(failed(response.status().as_u16()));
                        }
                        if d.offset > 0 {
                            return Err(M365Error::Unreachable {
                                url: d.content_url.clone(),
                                reason: "the file's content came without a download URL, which cannot resume a download".into(),
                            }
                            .into());
                        }
                        d.whole = true;
                        return Ok(Some(self.part(response, account, None)));
                    }
                },
            };
            let last = d.offset + RANGE_BYTES - 1;
            // Pre-authenticated URL: no bearer token is sent to it.
            let response = self
                .downloads
                .get(&location)
                .header(RANGE, format!("bytes={}-{last}", d.offset))
                .send()
                .await
                .map_err(|e| M365Error::Unreachable {
                    url: "download URL".into(),
                    reason: crate::graph::reason(&e),
                })?;
            let status = response.status().as_u16();
            match status {
                429 | 503 => {
                    // The download service throttles too (the user's egress budget): the
                    // account pauses as told, the next range goes to whichever account the
                    // pool gives.
                    let retry_after =
                        crate::graph::retry_after(&response).unwrap_or(Duration::from_secs(1));
                    self.pause_account(account, retry_after, status);
                    d.throttles += 1;
                    self.may_retry(d.throttles, retry_after, status)?;
                }
                // The URL expired (or was refused): a fresh one.
                401 | 403 if d.renewals < URL_RENEWALS => d.renewals += 1,
                206 => {
                    if range_start(&response).is_some_and(|s| s != d.offset) {
                        return Err(M365Error::Unreachable {
                            url: "download URL".into(),
                            reason: "the download service answered another range than asked".into(),
                        }
                        .into());
                    }
                    d.size = total_size(&response).or(d.size);
                    let remaining = content_length(&response);
                    d.source = Some((location, account));
                    return Ok(Some(self.part(response, account, remaining)));
                }
                200 if d.offset == 0 => {
                    // `Range` ignored: this answer is the whole file.
                    d.whole = true;
                    return Ok(Some(self.part(response, account, None)));
                }
                // Past the end: an empty file, or one that ended on a range's boundary.
                416 if total_size(&response).is_some_and(|s| d.offset >= s) => return Ok(None),
                other => return Err(failed(other)),
            }
        }
    }

    fn part(&self, response: reqwest::Response, account: usize, remaining: Option<u64>) -> Part {
        Part {
            body: Box::pin(response.bytes_stream()),
            counters: self.accounts[account].counters.clone(),
            remaining,
        }
    }

    /// A file's content as a stream of chunks (`/drives/{d}/items/{i}/content` or a version's
    /// `/content`, following the redirect to the download URL), read in ranges (see the
    /// module doc). The first range is asked for before this returns, so a file that is gone
    /// or locked is an error here; a throttled range pauses its account and is asked for
    /// again; a later failure or a cut body is an error of the stream (`std::io::Error`), for
    /// the caller to retry. The bytes are counted to the account that read them.
    pub async fn download_stream(
        self: &Arc<Self>,
        content_url: &str,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, PoolError> {
        started(self.clone(), content_url).await.map(chunks)
    }

    /// Streams a file's content into `sink`, chunk by chunk, as [`Self::download_stream`]
    /// reads it; the number of bytes.
    pub async fn download(
        &self,
        content_url: &str,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64, PoolError> {
        let mut stream = std::pin::pin!(chunks(started(self, content_url).await?));
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| M365Error::Unreachable {
                url: "download URL".into(),
                reason: e.to_string(),
            })?;
            sink(&chunk);
            total += chunk.len() as u64;
        }
        Ok(total)
    }
}

/// A download of `content_url` through `pool` with its first part asked for.
async fn started<P>(pool: P, content_url: &str) -> Result<State<P>, PoolError>
where
    P: std::ops::Deref<Target = AccountPool>,
{
    let mut ranged = Ranged {
        content_url: content_url.to_owned(),
        route: access::Route::for_url(content_url),
        source: None,
        offset: 0,
        size: None,
        whole: false,
        throttles: 0,
        renewals: 0,
    };
    let part = pool.next_part(&mut ranged).await?;
    Ok(State {
        done: part.is_none(),
        pool,
        ranged,
        part,
    })
}

/// The chunks of a started download. A failure to get a later part (every account
/// quarantined, throttled too often, the file gone meanwhile) ends the stream with an error
/// that says why.
fn chunks<P>(state: State<P>) -> impl Stream<Item = std::io::Result<Bytes>> + Send
where
    P: std::ops::Deref<Target = AccountPool> + Send,
{
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            let Some(part) = s.part.as_mut() else {
                match s.pool.next_part(&mut s.ranged).await {
                    Ok(Some(part)) => s.part = Some(part),
                    Ok(None) => return None,
                    Err(e) => {
                        s.done = true;
                        return Some((Err(std::io::Error::other(e)), s));
                    }
                }
                continue;
            };
            match part.body.next().await {
                Some(Ok(bytes)) => {
                    let n = bytes.len() as u64;
                    part.counters.bytes.fetch_add(n, Ordering::Relaxed);
                    part.remaining = part.remaining.map(|r| r.saturating_sub(n));
                    s.ranged.offset += n;
                    return Some((Ok(bytes), s));
                }
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(cut(crate::graph::reason(&e))), s));
                }
                None => {
                    if part.remaining.is_some_and(|r| r > 0) {
                        s.done = true;
                        return Some((Err(cut("the body ended early".into())), s));
                    }
                    s.part = None;
                }
            }
        }
    })
}
