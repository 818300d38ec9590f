//! Upload sessions and their pre-authenticated upload URLs (`/_upload/{token}`), as OneDrive for
//! Business serves them: `PUT` fragments in order with `Content-Range` (`202` with
//! `nextExpectedRanges` until the last, then `201`/`200` with the driveItem), `GET` for the
//! status, `DELETE` to cancel, `POST` to commit a `deferCommit` session. A fragment is taken
//! whole or not at all; one that repeats received bytes is `416`. Sessions expire when idle
//! (`Behaviour::upload_session_lifetime_secs`, each fragment extends it), or after a number of
//! bytes when a test says so ([`crate::faults::UploadFault`]); expired, they answer
//! `404 itemNotFound`. Fragment bytes are charged to the user's ingress budget.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::RngCore;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::blobs::{Blob, BlobWriter};
use crate::content::ContentSource;
use crate::graph::shapes::item_json;
use crate::graph::GraphError;
use crate::tenant::{Conflict, Times};
use crate::throttle::{Admission, Direction};
use crate::SharedSim;

/// Graph: every fragment but the last is a multiple of 320 KiB.
pub const FRAGMENT_UNIT: u64 = 320 << 10;
/// Graph: a fragment is less than 60 MiB.
pub const MAX_FRAGMENT: u64 = 60 << 20;

/// What an upload session writes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A new file `name` in folder `parent` (an item id).
    New {
        parent: String,
        name: String,
        conflict: Conflict,
    },
    /// New content for an existing file.
    Existing { item: String },
}

/// A session as `createUploadSession` asks for it.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub drive: String,
    pub target: Target,
    pub times: Times,
    /// `item.fileSize`, when given: every fragment must declare it.
    pub file_size: Option<u64>,
    pub defer_commit: bool,
    /// Who the change is made by (tenant user index), and whose budgets the bytes draw on.
    pub by: Option<usize>,
    pub user: Option<Uuid>,
    pub app: Uuid,
    /// An injected fault: the session expires once it has this many bytes.
    pub expire_after_bytes: Option<u64>,
}

/// Where a session stands, readable while a fragment is being written.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    received: u64,
    total: Option<u64>,
}

/// The bytes of a session: a writer from the first fragment on (so an idle session holds no
/// file open), then the finished blob.
#[derive(Default)]
struct Writing {
    writer: Option<BlobWriter>,
    /// Every byte received, waiting to be committed.
    blob: Option<Arc<Blob>>,
}

struct Entry {
    spec: NewSession,
    /// Milliseconds since the epoch.
    expires_ms: AtomicI64,
    cancelled: AtomicBool,
    progress: Mutex<Progress>,
    writing: tokio::sync::Mutex<Writing>,
}

impl Entry {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.cancelled.load(Ordering::Relaxed)
            || self.expires_ms.load(Ordering::Relaxed) <= now.timestamp_millis()
    }

    fn expires(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.expires_ms.load(Ordering::Relaxed)).unwrap_or_default()
    }

    fn progress(&self) -> Progress {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `{expirationDateTime, nextExpectedRanges}`.
    fn status(&self) -> Value {
        let p = self.progress();
        let complete = p.total.is_some_and(|t| p.received >= t);
        let ranges: Vec<String> = if complete {
            Vec::new()
        } else {
            vec![format!("{}-", p.received)]
        };
        json!({"expirationDateTime": iso_millis(self.expires()), "nextExpectedRanges": ranges})
    }
}

fn iso_millis(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[derive(Default)]
pub struct UploadSessions {
    map: Mutex<HashMap<String, Arc<Entry>>>,
}

impl UploadSessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; its upload URL and expiry.
    pub fn create(&self, sim: &SharedSim, spec: NewSession) -> (String, DateTime<Utc>) {
        let mut raw = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let now = Utc::now();
        let expires = now + lifetime(sim);
        let entry = Arc::new(Entry {
            progress: Mutex::new(Progress {
                received: 0,
                total: spec.file_size,
            }),
            spec,
            expires_ms: AtomicI64::new(expires.timestamp_millis()),
            cancelled: AtomicBool::new(false),
            writing: tokio::sync::Mutex::new(Writing::default()),
        });
        let mut map = self.map();
        // Expired sessions go (and their partial files with them).
        map.retain(|_, e| !e.expired(now));
        map.insert(token.clone(), entry);
        (format!("{}/_upload/{token}", sim.base_url), expires)
    }

    /// A live session.
    fn live(&self, token: &str) -> Result<Arc<Entry>, GraphError> {
        let mut map = self.map();
        match map.get(token) {
            Some(e) if !e.expired(Utc::now()) => Ok(e.clone()),
            Some(_) => {
                map.remove(token);
                Err(session_not_found())
            }
            None => Err(session_not_found()),
        }
    }

    fn remove(&self, token: &str) {
        self.map().remove(token);
    }

    /// Expires every open session now (a test's "the session expired midway"); how many.
    pub fn expire_all(&self) -> usize {
        let now = Utc::now();
        let map = self.map();
        let open = map.values().filter(|e| !e.expired(now)).count();
        for e in map.values() {
            e.expires_ms
                .store(now.timestamp_millis() - 1, Ordering::Relaxed);
        }
        open
    }

    /// Sessions not yet expired, committed or cancelled.
    pub fn open(&self) -> usize {
        let now = Utc::now();
        self.map().values().filter(|e| !e.expired(now)).count()
    }
}

fn lifetime(sim: &SharedSim) -> chrono::Duration {
    chrono::Duration::seconds(sim.behaviour().upload_session_lifetime_secs as i64)
}

fn internal(e: std::io::Error) -> GraphError {
    GraphError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "generalException",
        e.to_string(),
    )
}

fn session_not_found() -> GraphError {
    GraphError::not_found("uploadSession").inner("uploadSessionNotFound")
}

pub fn routes() -> Router<SharedSim> {
    Router::new().route(
        "/_upload/{token}",
        put(put_fragment)
            .get(status)
            .delete(cancel)
            .post(commit_deferred),
    )
}

/// Refuses a request with an `Authorization` header, as Graph documents it may.
fn no_bearer(sim: &SharedSim, headers: &HeaderMap) -> Result<(), GraphError> {
    if sim.behaviour().upload_url_rejects_authorization
        && headers.contains_key(header::AUTHORIZATION)
    {
        return Err(GraphError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "The upload URL is pre-authenticated: send no Authorization header.",
        ));
    }
    Ok(())
}

async fn status(
    State(sim): State<SharedSim>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    no_bearer(&sim, &headers)?;
    let entry = sim.uploads.live(&token)?;
    Ok(Json(entry.status()).into_response())
}

async fn cancel(
    State(sim): State<SharedSim>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    no_bearer(&sim, &headers)?;
    let entry = sim.uploads.live(&token)?;
    entry.cancelled.store(true, Ordering::Relaxed);
    sim.uploads.remove(&token);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST` to the upload URL: commits a `deferCommit` session whose bytes are all there.
async fn commit_deferred(
    State(sim): State<SharedSim>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    no_bearer(&sim, &headers)?;
    let entry = sim.uploads.live(&token)?;
    let writing = entry.writing.lock().await;
    let Some(blob) = writing.blob.clone() else {
        return Err(GraphError::bad_request(
            "The upload session has not received every byte of the file yet.",
        )
        .inner("uploadSessionIncomplete"));
    };
    drop(writing);
    commit(&sim, &token, &entry, blob)
}

/// `bytes {start}-{end}/{total}`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (start <= end && end < total).then_some((start, end, total))
}

/// Checks a fragment's headers against the session; its (start, length, total).
fn fragment_bounds(
    sim: &SharedSim,
    headers: &HeaderMap,
    progress: Progress,
) -> Result<(u64, u64, u64), GraphError> {
    let length: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            GraphError::new(
                StatusCode::LENGTH_REQUIRED,
                "invalidRequest",
                "A Content-Length header is required.",
            )
        })?;
    let (start, end, total) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range)
        .ok_or_else(|| {
            GraphError::bad_request("Content-Range must read 'bytes {start}-{end}/{total}'.")
        })?;
    if end - start + 1 != length {
        return Err(GraphError::bad_request(
            "The Content-Length does not match the Content-Range.",
        ));
    }
    if progress.total.is_some_and(|t| t != total) {
        return Err(GraphError::bad_request(
            "Declared total size for this fragment is different from that of the upload session.",
        )
        .inner("fragmentLengthMismatch"));
    }
    if length > MAX_FRAGMENT {
        return Err(GraphError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalidRequest",
            "A fragment must be smaller than 60 MiB.",
        )
        .inner("maxFragmentLengthExceeded"));
    }
    if start < progress.received {
        return Err(GraphError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "invalidRange",
            "The uploaded fragment overlaps with data that has already been received.",
        )
        .inner("fragmentOverlap"));
    }
    if start > progress.received {
        return Err(GraphError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "invalidRange",
            format!(
                "Fragments must be uploaded in order: the next expected byte is {}.",
                progress.received
            ),
        )
        .inner("fragmentOutOfOrder"));
    }
    let last = end + 1 == total;
    if !last && sim.behaviour().strict_fragment_sizes && length % FRAGMENT_UNIT != 0 {
        return Err(GraphError::bad_request(
            "Every fragment but the last must be a multiple of 320 KiB (327,680 bytes).",
        ));
    }
    Ok((start, length, total))
}

/// Writes the body into the session's blob; all of it, or nothing.
async fn take_fragment(writer: &mut BlobWriter, body: Body, length: u64) -> Result<(), GraphError> {
    let checkpoint = writer.checkpoint();
    let start = checkpoint.size;
    let mut stream = body.into_data_stream();
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) if writer.size() - start + bytes.len() as u64 <= length => {
                if writer.write(&bytes).await.is_err() {
                    failed = true;
                    break;
                }
            }
            _ => {
                failed = true;
                break;
            }
        }
    }
    if failed || writer.size() - start != length {
        writer.rollback(checkpoint).await.map_err(internal)?;
        return Err(GraphError::bad_request(
            "The fragment did not arrive whole; its bytes were ignored.",
        ));
    }
    Ok(())
}

async fn put_fragment(
    State(sim): State<SharedSim>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    no_bearer(&sim, &headers)?;
    let entry = sim.uploads.live(&token)?;
    let mut writing = entry.writing.lock().await;
    if entry.expired(Utc::now()) {
        return Err(session_not_found());
    }
    let progress = entry.progress();
    let (_, length, total) = fragment_bounds(&sim, &headers, progress)?;
    if let Admission::Throttled {
        retry_after_secs,
        service_unavailable,
    } = sim
        .throttler
        .admit_transfer(Direction::Ingress, entry.spec.user, entry.spec.app, length)
    {
        return Err(GraphError::throttled(retry_after_secs, service_unavailable));
    }
    if writing.blob.is_some() {
        return Err(GraphError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "invalidRange",
            "Every byte of the file has been received.",
        )
        .inner("fragmentOverlap"));
    }
    let writer = match writing.writer.take() {
        Some(writer) => writer,
        None => sim.blobs.writer().await.map_err(internal)?,
    };
    let writer = writing.writer.insert(writer);
    take_fragment(writer, body, length).await?;
    if entry.cancelled.load(Ordering::Relaxed) {
        return Err(session_not_found());
    }
    let received = progress.received + length;
    *entry.progress.lock().unwrap_or_else(|p| p.into_inner()) = Progress {
        received,
        total: Some(total),
    };
    let now = Utc::now();
    entry
        .expires_ms
        .store((now + lifetime(&sim)).timestamp_millis(), Ordering::Relaxed);
    if received < total {
        if entry.spec.expire_after_bytes.is_some_and(|n| received >= n) {
            entry
                .expires_ms
                .store(now.timestamp_millis() - 1, Ordering::Relaxed);
        }
        return Ok((StatusCode::ACCEPTED, Json(entry.status())).into_response());
    }
    let Some(writer) = writing.writer.take() else {
        return Err(internal(std::io::Error::other(
            "the session's writer is gone",
        )));
    };
    let blob = sim.blobs.finish(writer).await.map_err(internal)?;
    writing.blob = Some(blob.clone());
    drop(writing);
    if entry.spec.defer_commit {
        return Ok((StatusCode::ACCEPTED, Json(entry.status())).into_response());
    }
    commit(&sim, &token, &entry, blob)
}

/// Puts the received file in place: a new file (`201`) or a new version (`200`). A conflict
/// keeps the session until it expires, as Graph does.
fn commit(
    sim: &SharedSim,
    token: &str,
    entry: &Entry,
    blob: Arc<Blob>,
) -> Result<Response, GraphError> {
    let spec = &entry.spec;
    let drive = sim
        .tenant
        .drive(&spec.drive)
        .ok_or_else(|| GraphError::not_found(&spec.drive))?;
    let mut state = drive.state.write().unwrap_or_else(|p| p.into_inner());
    let now = Utc::now();
    let content = ContentSource::Stored(blob.id);
    let (index, created) = match &spec.target {
        Target::New {
            parent,
            name,
            conflict,
        } => {
            let mut rng = rand::rngs::OsRng;
            let placed = state
                .put_file(
                    &mut rng, parent, name, blob.size, content, *conflict, spec.times, now, spec.by,
                )
                .map_err(|e| match e {
                    crate::tenant::ChangeError::NameTaken => GraphError::new(
                        StatusCode::CONFLICT,
                        "nameAlreadyExists",
                        "Another file exists with the same name as the uploaded session.",
                    ),
                    e => GraphError::from_change(e, parent),
                })?;
            (placed.index, placed.created)
        }
        Target::Existing { item } => {
            state
                .replace_content(item, blob.size, content, spec.times.modified, now, spec.by)
                .map_err(|e| GraphError::from_change(e, item))?;
            let index = state
                .live(item)
                .ok_or_else(|| GraphError::not_found(item))?;
            (index, false)
        }
    };
    let body = item_json(sim, drive, &state, index, &HashMap::new(), false);
    drop(state);
    sim.uploads.remove(token);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

/// `{uploadUrl, expirationDateTime, nextExpectedRanges}`, as `createUploadSession` answers.
pub fn session_json(sim: &SharedSim, url: &str, expires: DateTime<Utc>) -> Value {
    json!({
        "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.uploadSession", sim.base_url),
        "uploadUrl": url,
        "expirationDateTime": iso_millis(expires),
        "nextExpectedRanges": ["0-"],
    })
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-25/128"), Some((0, 25, 128)));
        assert_eq!(
            parse_content_range("bytes 101-127/128"),
            Some((101, 127, 128))
        );
        assert_eq!(parse_content_range("bytes 0-128/128"), None);
        assert_eq!(parse_content_range("bytes 5-4/128"), None);
        assert_eq!(parse_content_range("bytes */128"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
