//! Pre-authenticated download URLs (`/_download/{ticket}`), as SharePoint hands out for file
//! content: signed, expiring (`Behaviour::download_url_lifetime_secs`), no bearer token needed,
//! `Range` honoured unless the service is set to ignore it. The ticket names the exact content
//! (item, version, size), generated or read from the blob store while streaming. The bytes are
//! charged to the egress budget of the user the URL was handed to. Injected faults
//! ([`crate::faults`]) answer 404 or 423 here, or cut the body short.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::faults::{FaultKind, Stage};
use crate::graph::{Caller, GraphError};
use crate::tenant::{Drive, Item};
use crate::throttle::{Admission, Direction};
use crate::SharedSim;

#[derive(Serialize, Deserialize)]
pub struct DownloadTicket {
    drive: String,
    item: String,
    version: u64,
    size: u64,
    expires: i64,
    user: Option<Uuid>,
    app: Uuid,
}

impl DownloadTicket {
    /// A ticket for version `version` of a file, if the file has that version.
    pub fn new(
        sim: &SharedSim,
        caller: &Caller,
        drive: &Drive,
        item: &Item,
        version: u64,
    ) -> Option<Self> {
        let lifetime = sim.behaviour().download_url_lifetime_secs as i64;
        Some(Self {
            drive: drive.id.clone(),
            item: item.id.clone(),
            version,
            size: item.version_size(version)?,
            expires: chrono::Utc::now().timestamp() + lifetime,
            user: caller.token.user.map(|u| sim.tenant.users[u].id),
            app: caller.token.app,
        })
    }
}

pub struct UrlSigner {
    /// One block of SHA-256 (64 bytes): HMAC takes a key of that size as it is.
    key: [u8; 64],
}

impl Default for UrlSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl UrlSigner {
    pub fn new() -> Self {
        let mut key = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { key }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new(&self.key.into());
        mac.update(payload);
        mac
    }

    pub fn url(&self, base: &str, ticket: &DownloadTicket) -> String {
        let payload = serde_json::to_vec(ticket).unwrap_or_default();
        let sig = self.mac(&payload).finalize().into_bytes();
        format!(
            "{base}/_download/{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    fn verify(&self, raw: &str) -> Option<DownloadTicket> {
        let (payload, sig) = raw.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(&payload).verify_slice(&sig).ok()?;
        serde_json::from_slice(&payload).ok()
    }
}

pub fn routes() -> Router<SharedSim> {
    Router::new().route("/_download/{ticket}", get(download))
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` of a `size`-byte file, as a half-open range.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (from, to) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(size),
        ),
    };
    (from < to && from < size).then_some((from, to))
}

async fn download(
    State(sim): State<SharedSim>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(t) = sim.downloads.verify(&raw) else {
        return (StatusCode::UNAUTHORIZED, "invalid download URL").into_response();
    };
    if t.expires < chrono::Utc::now().timestamp() {
        return (StatusCode::UNAUTHORIZED, "download URL expired").into_response();
    }
    let Some(drive) = sim.tenant.drive(&t.drive) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content = {
        let state = drive.state.read().unwrap_or_else(|p| p.into_inner());
        match state.get(&t.item).filter(|i| !i.deleted) {
            Some(item) => item
                .version(t.version)
                .filter(|v| v.size == t.size)
                .and_then(|v| sim.content(&drive.id, item, v.content, v.size)),
            None => None,
        }
    };
    let Some(content) = content else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cut = match sim
        .faults
        .take(&t.drive, &t.item, t.version, Stage::Download)
    {
        Some(FaultKind::NotFound) => return GraphError::not_found(&t.item).into_response(),
        Some(FaultKind::Locked) => return GraphError::locked().into_response(),
        Some(FaultKind::Cut { after_bytes }) => Some(after_bytes),
        None => None,
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !sim.behaviour().ignore_range);
    let (status, from, to) = match range {
        None => (StatusCode::OK, 0, t.size),
        Some(r) => match parse_range(r, t.size) {
            Some((from, to)) => (StatusCode::PARTIAL_CONTENT, from, to),
            None => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{}", t.size))],
                )
                    .into_response();
            }
        },
    };
    if let Admission::Throttled {
        retry_after_secs,
        service_unavailable,
    } = sim
        .throttler
        .admit_transfer(Direction::Egress, t.user, t.app, to - from)
    {
        return GraphError::throttled(retry_after_secs, service_unavailable).into_response();
    }
    let body = match cut {
        Some(after) => Body::from_stream(cut_after(content.stream(from, to), after)),
        None => Body::from_stream(content.stream(from, to)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, (to - from).into());
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = format!("bytes {from}-{}/{}", to - 1, t.size).parse() {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    response
}

/// The stream's first `limit` bytes, then an error: the connection drops mid-body.
fn cut_after(
    stream: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    limit: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    use futures_util::StreamExt;
    futures_util::stream::unfold(
        (Box::pin(stream), 0u64, false),
        move |(mut inner, sent, done)| async move {
            if done {
                return None;
            }
            if sent >= limit {
                // Let the bytes before the cut reach the client before the connection drops.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                return Some((Err(cut_error()), (inner, sent, true)));
            }
            match inner.next().await {
                Some(Ok(mut bytes)) => {
                    bytes.truncate((limit - sent).min(bytes.len() as u64) as usize);
                    let n = bytes.len() as u64;
                    Some((Ok(bytes), (inner, sent + n, false)))
                }
                Some(Err(e)) => Some((Err(e), (inner, sent, true))),
                None => None,
            }
        },
    )
}

fn cut_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "m365sim: download cut by an injected fault",
    )
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 1000)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
