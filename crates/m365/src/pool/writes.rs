//! Writes to OneDrive and SharePoint libraries through the pool, for restores: look an item up
//! by name, create a folder, upload a small file in one request (`PUT …:/{name}:/content`),
//! open an upload session for a larger one and send its fragments (`Content-Range`, multiples
//! of 320 KiB), set `fileSystemInfo`, and re-create sharing (`invite`, `createLink`).
//!
//! Every Graph call goes through the pool's scheduler exactly as reads do — the account with
//! the most budget takes it, a throttled account pauses as long as told and the call goes to
//! another — and is charged what Microsoft charges: 2 resource units for a write, 5 for a
//! permission change, 1 for a single-item read. Fragments go to the session's pre-authenticated
//! upload URL (no bearer token); a throttled fragment pauses the account that opened the
//! session, and an expired session is [`PoolError::UploadSessionExpired`] for the caller to
//! start again.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{access, AccountPool, Call, PoolError};
use crate::error::M365Error;
use crate::graph::RequestBody;
use crate::response::{json_capped, MAX_GRAPH_BODY};

/// Largest file sent in one request; larger ones go through an upload session (Microsoft's
/// advice: simple uploads up to 4 MiB).
pub const SIMPLE_UPLOAD_MAX: u64 = 4 << 20;
/// Every fragment of an upload session but the last is a multiple of this (320 KiB).
pub const FRAGMENT_UNIT: u64 = 320 << 10;
/// What a write costs against Microsoft's budgets.
const WRITE_UNITS: f64 = 2.0;
/// What a permission change costs.
const PERMISSION_UNITS: f64 = 5.0;
/// What reading one item costs.
const READ_UNITS: f64 = 1.0;

/// `@microsoft.graph.conflictBehavior`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictBehavior {
    Fail,
    Replace,
    Rename,
}

impl ConflictBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictBehavior::Fail => "fail",
            ConflictBehavior::Replace => "replace",
            ConflictBehavior::Rename => "rename",
        }
    }
}

/// `fileSystemInfo`: the times a file or folder shows, as the client sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileTimes {
    pub created: Option<DateTime<Utc>>,
    pub modified: Option<DateTime<Utc>>,
}

impl FileTimes {
    fn json(&self) -> Value {
        let mut info = serde_json::Map::new();
        let iso = |t: DateTime<Utc>| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true));
        if let Some(t) = self.created {
            info.insert("createdDateTime".into(), iso(t));
        }
        if let Some(t) = self.modified {
            info.insert("lastModifiedDateTime".into(), iso(t));
        }
        Value::Object(info)
    }

    pub fn is_empty(&self) -> bool {
        self.created.is_none() && self.modified.is_none()
    }
}

/// A drive item as Graph answers a write or a look-up (the parts a restore needs).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DriveItem {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub file: Option<FileFacet>,
    #[serde(default)]
    pub folder: Option<Value>,
}

impl DriveItem {
    pub fn is_folder(&self) -> bool {
        self.folder.is_some()
    }

    /// `file.hashes.quickXorHash`, when Graph gave it.
    pub fn quick_xor_hash(&self) -> Option<&str> {
        self.file
            .as_ref()?
            .hashes
            .as_ref()?
            .quick_xor_hash
            .as_deref()
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FileFacet {
    #[serde(default)]
    pub hashes: Option<Hashes>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Hashes {
    #[serde(rename = "quickXorHash", default)]
    pub quick_xor_hash: Option<String>,
}

/// Where content is written: a new (or same-named) file in a folder, or an existing file.
#[derive(Clone, Debug)]
pub enum UploadTarget<'a> {
    /// File `name` in folder `parent` (an item id) of drive `drive`.
    Child {
        drive: &'a str,
        parent: &'a str,
        name: &'a str,
    },
    /// New content for file `item` of drive `drive`.
    Existing { drive: &'a str, item: &'a str },
}

impl UploadTarget<'_> {
    /// The item's address: `/drives/{d}/items/{parent}:/{name}:` or `/drives/{d}/items/{id}`.
    fn address(&self) -> String {
        match self {
            UploadTarget::Child {
                drive,
                parent,
                name,
            } => child_address(drive, parent, name),
            UploadTarget::Existing { drive, item } => format!("/drives/{drive}/items/{item}"),
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            UploadTarget::Child { name, .. } => Some(name),
            UploadTarget::Existing { .. } => None,
        }
    }
}

/// An open upload session: its pre-authenticated URL and the account that opened it.
#[derive(Clone, Debug)]
pub struct UploadSession {
    url: String,
    account: usize,
}

/// What the upload URL said to a fragment.
#[derive(Clone, Debug)]
pub enum FragmentAnswer {
    /// Taken; more is expected.
    More,
    /// The last fragment: the file as written.
    Done(DriveItem),
}

/// How often a fragment lost to the network is sent again before the upload gives up.
const FRAGMENT_RESENDS: u32 = 3;
/// The pause before asking a session what it expects after a broken fragment.
const RESEND_PAUSE: Duration = Duration::from_millis(200);

/// After a broken fragment: what the session's status says to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    /// The session still expects the fragment: send it again.
    Resend,
    /// The session has the fragment's bytes: go on with the next one.
    Taken,
    /// The session is gone: start a new one.
    Expired,
    /// The session expects something else: give up on this upload.
    Unknown,
}

/// An upload session's status (`GET` on its URL).
#[derive(Deserialize)]
struct UploadStatus {
    #[serde(rename = "nextExpectedRanges", default)]
    next_expected_ranges: Vec<String>,
}

impl UploadStatus {
    /// Where the session expects bytes from, against the fragment `offset..end` that broke.
    fn resume(&self, offset: u64, end: u64) -> Resume {
        let Some(first) = self.next_expected_ranges.first() else {
            // Nothing expected: every byte arrived, which only the last fragment can complete;
            // its answer (the item) was lost, so the caller cannot know what was written.
            return Resume::Unknown;
        };
        let start = first
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match start {
            Some(start) if start == offset => Resume::Resend,
            Some(start) if start == end => Resume::Taken,
            _ => Resume::Unknown,
        }
    }
}

#[derive(Deserialize)]
struct SessionAnswer {
    #[serde(rename = "uploadUrl")]
    upload_url: String,
}

/// A Graph path segment: every byte but unreserved ASCII percent-encoded (`#`, `%`, `?`, `:`,
/// `/` and spaces included).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `/drives/{drive}/items/{parent}:/{name}:`, the name encoded (ids are Graph's own, written
/// as reads write them).
fn child_address(drive: &str, parent: &str, name: &str) -> String {
    format!("/drives/{drive}/items/{parent}:/{}:", segment(name))
}

impl AccountPool {
    /// Sends a write through the scheduler and reads its JSON answer.
    async fn write_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        body: RequestBody,
        units: f64,
        retry_failures: bool,
    ) -> Result<T, PoolError> {
        let call = Call {
            method,
            url,
            body,
            units,
            retry_failures,
        };
        let route = access::Route::for_url(url);
        let (response, account) = self.send_call(&call, &route).await?;
        if let Some(scope) = &route.scope {
            self.access
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .readable(scope, account, self.accounts[account].organization);
        }
        let url = url.split('?').next().unwrap_or(url);
        json_capped(response, MAX_GRAPH_BODY, url)
            .await
            .map_err(PoolError::from)
    }

    /// The item named `name` in folder `parent`, or `None` when there is none.
    pub async fn child(
        &self,
        drive: &str,
        parent: &str,
        name: &str,
    ) -> Result<Option<DriveItem>, PoolError> {
        let url = format!(
            "{}?$select=id,name,size,file,folder",
            child_address(drive, parent, name)
        );
        let call = Call {
            method: reqwest::Method::GET,
            url: &url,
            body: RequestBody::None,
            units: READ_UNITS,
            retry_failures: true,
        };
        match self.send_call(&call, &access::Route::for_url(&url)).await {
            Ok((response, _)) => Ok(Some(json_capped(response, MAX_GRAPH_BODY, "item").await?)),
            Err(PoolError::M365(e)) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The drive's root folder id.
    pub async fn root_of(&self, drive: &str) -> Result<DriveItem, PoolError> {
        self.get_json(&format!("/drives/{drive}/root?$select=id,name"))
            .await
    }

    /// Creates folder `name` in `parent` (`fail` on a taken name: a `409 nameAlreadyExists`).
    pub async fn create_folder(
        &self,
        drive: &str,
        parent: &str,
        name: &str,
        times: FileTimes,
    ) -> Result<DriveItem, PoolError> {
        let url = format!("/drives/{drive}/items/{parent}/children");
        let mut body = json!({
            "name": name,
            "folder": {},
            "@microsoft.graph.conflictBehavior": ConflictBehavior::Fail.as_str(),
        });
        if !times.is_empty() {
            body["fileSystemInfo"] = times.json();
        }
        // Not repeated on a network failure: a second try would meet the first's folder.
        self.write_json(
            reqwest::Method::POST,
            &url,
            RequestBody::Json(body),
            WRITE_UNITS,
            false,
        )
        .await
    }

    /// Uploads a whole small file (at most [`SIMPLE_UPLOAD_MAX`] bytes) in one request.
    pub async fn upload_small(
        &self,
        target: &UploadTarget<'_>,
        content: Bytes,
        conflict: ConflictBehavior,
    ) -> Result<DriveItem, PoolError> {
        let url = format!(
            "{}/content?@microsoft.graph.conflictBehavior={}",
            target.address(),
            conflict.as_str()
        );
        self.write_json(
            reqwest::Method::PUT,
            &url,
            RequestBody::Bytes(content),
            WRITE_UNITS,
            conflict != ConflictBehavior::Rename,
        )
        .await
    }

    /// Sets an item's `fileSystemInfo`.
    pub async fn set_times(
        &self,
        drive: &str,
        item: &str,
        times: FileTimes,
    ) -> Result<DriveItem, PoolError> {
        let url = format!("/drives/{drive}/items/{item}");
        self.write_json(
            reqwest::Method::PATCH,
            &url,
            RequestBody::Json(json!({ "fileSystemInfo": times.json() })),
            WRITE_UNITS,
            true,
        )
        .await
    }

    /// Opens an upload session for `size` bytes, the times given set when it commits.
    pub async fn create_upload_session(
        &self,
        target: &UploadTarget<'_>,
        size: u64,
        times: FileTimes,
        conflict: ConflictBehavior,
    ) -> Result<UploadSession, PoolError> {
        let url = format!("{}/createUploadSession", target.address());
        let mut item = json!({
            "@microsoft.graph.conflictBehavior": conflict.as_str(),
            "fileSize": size,
        });
        if let Some(name) = target.name() {
            item["name"] = json!(name);
        }
        if !times.is_empty() {
            item["fileSystemInfo"] = times.json();
        }
        let call = Call {
            method: reqwest::Method::POST,
            url: &url,
            body: RequestBody::Json(json!({ "item": item })),
            units: WRITE_UNITS,
            retry_failures: true,
        };
        let (response, account) = self.send_call(&call, &access::Route::for_url(&url)).await?;
        let answer: SessionAnswer = json_capped(response, MAX_GRAPH_BODY, "createUploadSession")
            .await
            .map_err(PoolError::from)?;
        Ok(UploadSession {
            url: answer.upload_url,
            account,
        })
    }

    /// Sends bytes `offset..offset + fragment.len()` of a `total`-byte file to its session.
    /// A throttled fragment pauses the session's account as long as told and is sent again.
    pub async fn upload_fragment(
        &self,
        session: &UploadSession,
        offset: u64,
        total: u64,
        fragment: Bytes,
    ) -> Result<FragmentAnswer, PoolError> {
        let end = offset + fragment.len() as u64;
        let range = format!("bytes {offset}-{}/{total}", end.saturating_sub(1));
        let mut throttles = 0;
        let mut broken = 0;
        loop {
            let sent = match self
                .downloads
                .put(&session.url)
                .header(reqwest::header::CONTENT_RANGE, &range)
                .body(fragment.clone())
                .send()
                .await
            {
                Ok(sent) => sent,
                Err(e) => {
                    // Microsoft's advice for a fragment lost to the network: ask the session
                    // what it expects next and resume from there.
                    broken += 1;
                    let failure = M365Error::Unreachable {
                        url: "upload URL".into(),
                        reason: crate::graph::reason(&e),
                    };
                    match self.after_broken_fragment(session, offset, end).await {
                        Resume::Resend if broken <= FRAGMENT_RESENDS => continue,
                        Resume::Taken => {
                            self.count_bytes(session.account, fragment.len());
                            return Ok(FragmentAnswer::More);
                        }
                        Resume::Expired => return Err(PoolError::UploadSessionExpired),
                        Resume::Resend | Resume::Unknown => return Err(failure.into()),
                    }
                }
            };
            let status = sent.status().as_u16();
            match status {
                200 | 201 => {
                    let item = json_capped(sent, MAX_GRAPH_BODY, "upload URL").await?;
                    self.count_bytes(session.account, fragment.len());
                    return Ok(FragmentAnswer::Done(item));
                }
                202 => {
                    self.count_bytes(session.account, fragment.len());
                    return Ok(FragmentAnswer::More);
                }
                404 => return Err(PoolError::UploadSessionExpired),
                429 | 503 => {
                    let wait = crate::graph::retry_after(&sent).unwrap_or(Duration::from_secs(1));
                    self.pause_account(session.account, wait, status);
                    throttles += 1;
                    self.may_retry(throttles, wait, status)?;
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return Err(M365Error::Graph {
                        status,
                        code: "uploadFailed".into(),
                        message: format!("the upload URL answered HTTP {status}"),
                    }
                    .into())
                }
            }
        }
    }

    /// What to do after a fragment `offset..end` whose request broke: the session's status
    /// (`GET` on the upload URL) says whether it is gone, took the fragment, or still expects it.
    async fn after_broken_fragment(
        &self,
        session: &UploadSession,
        offset: u64,
        end: u64,
    ) -> Resume {
        tokio::time::sleep(RESEND_PAUSE).await;
        let Ok(answer) = self.downloads.get(&session.url).send().await else {
            return Resume::Resend;
        };
        match answer.status().as_u16() {
            404 => Resume::Expired,
            200 => match json_capped::<UploadStatus>(answer, MAX_GRAPH_BODY, "upload URL").await {
                Ok(status) => status.resume(offset, end),
                Err(_) => Resume::Unknown,
            },
            _ => Resume::Resend,
        }
    }

    /// Cancels an upload session (best effort: an expired one is gone anyway).
    pub async fn cancel_upload(&self, session: &UploadSession) {
        if let Err(e) = self.downloads.delete(&session.url).send().await {
            tracing::debug!(error = %crate::graph::reason(&e), "cancelling an upload session failed");
        }
    }

    fn count_bytes(&self, account: usize, bytes: usize) {
        self.accounts[account]
            .counters
            .bytes
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Shares an item with a user of the tenant (by e-mail), without sending an invitation.
    pub async fn invite(
        &self,
        drive: &str,
        item: &str,
        email: &str,
        roles: &[String],
    ) -> Result<(), PoolError> {
        let url = format!("/drives/{drive}/items/{item}/invite");
        let body = json!({
            "recipients": [{ "email": email }],
            "roles": roles,
            "requireSignIn": true,
            "sendInvitation": false,
        });
        let _: Value = self
            .write_json(
                reqwest::Method::POST,
                &url,
                RequestBody::Json(body),
                PERMISSION_UNITS,
                true,
            )
            .await?;
        Ok(())
    }

    /// Creates a sharing link (`view` or `edit`; `organization` or `anonymous`).
    pub async fn create_link(
        &self,
        drive: &str,
        item: &str,
        kind: &str,
        scope: &str,
    ) -> Result<(), PoolError> {
        let url = format!("/drives/{drive}/items/{item}/createLink");
        let _: Value = self
            .write_json(
                reqwest::Method::POST,
                &url,
                RequestBody::Json(json!({ "type": kind, "scope": scope })),
                PERMISSION_UNITS,
                true,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment() {
        assert_eq!(segment("a b#c%?.txt"), "a%20b%23c%25%3F.txt");
        assert_eq!(segment("x/../y"), "x%2F..%2Fy");
        assert_eq!(segment("Ü"), "%C3%9C");
        assert_eq!(child_address("d", "p", "n:1"), "/drives/d/items/p:/n%3A1:");
    }

    #[test]
    fn times_are_iso_with_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2024-03-01T10:20:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let times = FileTimes {
            created: None,
            modified: Some(t),
        };
        assert_eq!(
            times.json(),
            json!({"lastModifiedDateTime": "2024-03-01T10:20:30.000Z"})
        );
        assert!(FileTimes::default().is_empty());
    }

    #[test]
    fn a_broken_fragment_resumes_where_the_session_says() {
        let status = |ranges: &[&str]| UploadStatus {
            next_expected_ranges: ranges.iter().map(|r| r.to_string()).collect(),
        };
        assert_eq!(
            status(&["327680-"]).resume(327_680, 655_360),
            Resume::Resend
        );
        assert_eq!(status(&["655360-"]).resume(327_680, 655_360), Resume::Taken);
        assert_eq!(status(&["0-"]).resume(327_680, 655_360), Resume::Unknown);
        assert_eq!(status(&[]).resume(327_680, 655_360), Resume::Unknown);
        assert_eq!(status(&["x-"]).resume(0, 10), Resume::Unknown);
    }
}
