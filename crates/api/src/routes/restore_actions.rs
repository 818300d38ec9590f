//! Actions on what a restore session shows (`POST …/Action`): `save` (one document as its own
//! bytes, anything else as a streamed ZIP) and the restores to Microsoft 365
//! (`restoretoOriginallocation`, `restoreTo`, `copyTo`, in [`super::restore_writes`]).
//!
//! Every route first resolves what it names into [`Selection`]s (an unknown id is 404 and nothing
//! is done), then runs the action on them.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use m365backup_core::audit::AuditKind;
use m365backup_core::restore::model::{EventStatus, EventType, RestoreKind, RestoreSession};
use m365backup_core::restore::service::EventItem;
use m365backup_engine::restore::browse::RestorePoint;
use m365backup_engine::restore::export::{
    archive_entries, document_export, safe_segment, zip_export, Export, ExportDone,
};
use m365backup_engine::restore::selection::Selection;
use m365backup_repo::ItemKind;
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;

use crate::audit::AuditNote;
use crate::bearer::Operator;
use crate::body::JsonBody;
use crate::error::{message, ApiError, ApiResult, ErrorBody};
use crate::range::{parse_range, ByteRange};
use crate::routes::restore_browse::session_of;
use crate::routes::restore_sessions::single_action;
use crate::routes::restore_writes::{restore, WriteAction};
use crate::state::AppState;

/// Most items one bulk action may name.
const MAX_BULK_ITEMS: usize = 10_000;

/// A request to act on a session's items, resolved once per route.
struct ActionRequest {
    session: RestoreSession,
    selections: Vec<Selection>,
    /// Names the target for events (`OneDrive of Adele`, `site Marketing`…).
    source: String,
}

/// `{"id": "…"}` entries of a bulk action.
#[derive(Deserialize)]
struct IdRef {
    id: String,
}

/// `folders` / `documents` of a bulk action's options.
#[derive(Deserialize, Default)]
struct BulkOptions {
    #[serde(default)]
    folders: Option<Vec<IdRef>>,
    #[serde(default)]
    documents: Option<Vec<IdRef>>,
}

/// The ids a bulk action names (`folders` or `documents`), each once.
fn bulk_ids(options: &Value, kind: ItemKind) -> ApiResult<Vec<String>> {
    let bulk: BulkOptions = if options.is_null() {
        BulkOptions::default()
    } else {
        crate::ci_json::from_value(options.clone()).map_err(ApiError::BadRequest)?
    };
    let (field, ids) = match kind {
        ItemKind::Folder => ("folders", bulk.folders),
        ItemKind::File => ("documents", bulk.documents),
    };
    let ids = ids.unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "the action's options must list {field}: [{{\"id\":\"…\"}}]"
        )));
    }
    if ids.len() > MAX_BULK_ITEMS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_BULK_ITEMS} {field} per action"
        )));
    }
    let mut seen = HashSet::new();
    Ok(ids
        .into_iter()
        .map(|r| r.id)
        .filter(|id| seen.insert(id.clone()))
        .collect())
}

/// An item of a restore point, of the kind the route names.
async fn item_of(point: &RestorePoint, id: &str, kind: ItemKind) -> ApiResult<Selection> {
    let item = point
        .item(id)
        .await?
        .filter(|i| i.kind == kind)
        .ok_or_else(|| not_in(id, kind))?;
    Ok(Selection::item(point.clone(), item))
}

fn not_in(id: &str, kind: ItemKind) -> ApiError {
    let what = match kind {
        ItemKind::Folder => "folder",
        ItemKind::File => "document",
    };
    ApiError::NotFound(format!("'{id}' is not a {what} of this restore point."))
}

/// Runs the action of `body` on resolved selections.
async fn act(
    state: &AppState,
    headers: &HeaderMap,
    request: ActionRequest,
    action: String,
    options: Value,
    operator: &str,
) -> ApiResult<Response> {
    // Read before the action consumes the request; recorded when it succeeds.
    let what = format!("{} of {}", describe(&request.selections), request.source);
    let (kind, answer) = match action.as_str() {
        "save" => (
            AuditKind::ItemsSaved,
            save(state, headers, request, options).await,
        ),
        "restoretooriginallocation" | "restoreto" => (
            AuditKind::ItemsRestored,
            restore(
                state,
                &request.session,
                request.selections,
                WriteAction::OriginalLocation,
                options,
                operator,
            )
            .await,
        ),
        "copyto" => (
            AuditKind::ItemsCopied,
            restore(
                state,
                &request.session,
                request.selections,
                WriteAction::CopyTo,
                options,
                operator,
            )
            .await,
        ),
        other => return Err(ApiError::BadRequest(format!(
            "'{other}' is not a restore action: use save, restoretoOriginallocation, restoreTo or copyTo"
        ))),
    };
    Ok(AuditNote::kind(kind).details(what).on(answer?))
}

// ---- save ----------------------------------------------------------------------------------

/// `save` options: `asZip` (a single document comes as its own bytes unless true).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SaveOptions {
    #[serde(default)]
    as_zip: Option<bool>,
}

async fn save(
    state: &AppState,
    headers: &HeaderMap,
    request: ActionRequest,
    options: Value,
) -> ApiResult<Response> {
    let options: SaveOptions = match options {
        Value::Object(_) => crate::ci_json::from_value(options).map_err(ApiError::BadRequest)?,
        _ => SaveOptions::default(),
    };
    let ActionRequest {
        session,
        selections,
        source,
    } = request;
    if let ([Selection::Document { point, item }], false) =
        (selections.as_slice(), options.as_zip.unwrap_or(false))
    {
        return save_document(state, headers, &session, point, item, &source).await;
    }
    let archive_name = match selections.as_slice() {
        [one] => format!("{}.zip", safe_segment(one.name())),
        _ => format!("{}.zip", safe_segment(&source)),
    };
    let entries = archive_entries(&selections);
    let item = EventItem {
        title: format!("Saving {}", describe(&selections)),
        name: match selections.as_slice() {
            [one] => one.name().to_owned(),
            _ => format!("{} items", selections.len()),
        },
        item_type: match selections.as_slice() {
            [one] => one.item_type().to_owned(),
            _ => "Items".to_owned(),
        },
        size: selections.iter().map(selection_size).sum(),
        source,
        target: archive_name.clone(),
    };
    let Export { stream, done } = zip_export(entries);
    track_save(state, &session, item, done).await?;
    Ok(download(
        StatusCode::OK,
        "application/zip",
        &archive_name,
        None,
        Body::from_stream(stream),
    ))
}

/// The backed-up size of a document (folders and whole objects: unknown without a walk).
fn selection_size(s: &Selection) -> u64 {
    match s {
        Selection::Document { item, .. } => item.size,
        _ => 0,
    }
}

fn describe(selections: &[Selection]) -> String {
    match selections {
        [one] => format!("{} '{}'", one.item_type().to_lowercase(), one.name()),
        many => format!("{} items", many.len()),
    }
}

/// One document as its own bytes, whole or the `Range` asked for (206).
async fn save_document(
    state: &AppState,
    headers: &HeaderMap,
    session: &RestoreSession,
    point: &RestorePoint,
    item: &m365backup_repo::Item,
    source: &str,
) -> ApiResult<Response> {
    let size = item.size;
    let range = match parse_range(headers, size) {
        ByteRange::Whole => None,
        ByteRange::Part(r) => Some(r),
        ByteRange::Unsatisfiable => {
            let mut refused = message(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("The range asked for is outside the document's {size} bytes."),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(refused);
        }
    };
    let Export { stream, done } = document_export(point, item, range.clone())?;
    let event = EventItem {
        title: format!("Saving document '{}'", item.name),
        name: item.name.clone(),
        item_type: "Document".to_owned(),
        size,
        source: source.to_owned(),
        target: item.name.clone(),
    };
    track_save(state, session, event, done).await?;
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = download(
        status,
        "application/octet-stream",
        &item.name,
        Some(range.as_ref().map_or(size, |r| r.end - r.start)),
        Body::from_stream(stream),
    );
    let headers = response.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(r) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1)) {
            headers.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// A save's event: running now, finished when the client has the last byte (or went away).
async fn track_save(
    state: &AppState,
    session: &RestoreSession,
    item: EventItem,
    done: ExportDone,
) -> ApiResult<()> {
    let event = state
        .restore
        .begin_event(session.id, EventType::Save, item)
        .await?;
    let restore = state.restore.clone();
    tokio::spawn(async move {
        let (status, text, succeeded, failed) = match done.await {
            Ok(Ok(stats)) => (
                EventStatus::Success,
                format!(
                    "{} document(s), {} bytes saved",
                    stats.documents, stats.bytes
                ),
                stats.documents,
                0,
            ),
            Ok(Err(e)) => (EventStatus::Failed, e, 0, 1),
            Err(_) => (
                EventStatus::Failed,
                "The download stopped before its end: the client went away or the backup could not be read."
                    .to_owned(),
                0,
                1,
            ),
        };
        if let Err(e) = restore
            .finish_event(event, status, text, succeeded, failed)
            .await
        {
            tracing::warn!(error = %m365backup_core::Chain(&e), "a save's event could not be finished");
        }
    }
    .instrument(tracing::info_span!("save", organization = %session.organization_id)));
    Ok(())
}

/// A file download: its type, `Content-Disposition` with the name (ASCII fallback and
/// RFC 5987 UTF-8 form), and its length when known.
fn download(
    status: StatusCode,
    content_type: &'static str,
    file_name: &str,
    length: Option<u64>,
    body: Body,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(len) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    response
}

/// `attachment; filename="<ASCII>"; filename*=UTF-8''<percent-encoded>`.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = safe_segment(name)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(*b as char)
            }
            _ => encoded.push_str(&format!("%{b:02X}")),
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

// ---- routes --------------------------------------------------------------------------------

/// What every action route reads.
struct ActionInput {
    state: AppState,
    headers: HeaderMap,
    operator: String,
    action: String,
    options: Value,
}

impl ActionInput {
    fn new(
        state: AppState,
        headers: HeaderMap,
        operator: Operator,
        body: Value,
    ) -> ApiResult<Self> {
        let (action, options) = single_action(body)?;
        Ok(Self {
            state,
            headers,
            operator: operator.0.operator_name,
            action,
            options,
        })
    }

    async fn run(self, request: ActionRequest) -> ApiResult<Response> {
        act(
            &self.state,
            &self.headers,
            request,
            self.action,
            self.options,
            &self.operator,
        )
        .await
    }
}

async fn onedrive_request(
    input: &ActionInput,
    id: &str,
    drive: &str,
    pick: Pick<'_>,
) -> ApiResult<ActionRequest> {
    let session = session_of(&input.state, id, RestoreKind::Veod).await?;
    let point = input.state.browser.point(&session, drive).await?;
    let source = format!("OneDrive of {}", point.object().name);
    let selections = match pick {
        Pick::Whole => vec![Selection::Object {
            point: point.clone(),
        }],
        Pick::One(item, kind) => vec![item_of(&point, item, kind).await?],
        Pick::Library(library) => return Err(not_in(library, ItemKind::Folder)),
        Pick::Bulk(kind) => {
            let mut out = Vec::new();
            for item in bulk_ids(&input.options, kind)? {
                out.push(item_of(&point, &item, kind).await?);
            }
            out
        }
    };
    Ok(ActionRequest {
        session,
        selections,
        source,
    })
}

async fn site_request(
    input: &ActionInput,
    id: &str,
    site: &str,
    pick: Pick<'_>,
) -> ApiResult<ActionRequest> {
    let session = session_of(&input.state, id, RestoreKind::Vesp).await?;
    let entry = input.state.browser.site(&session, site).await?;
    let source = format!("site {}", entry.title);
    let browser = &input.state.browser;
    let selections = match pick {
        Pick::Whole => browser
            .libraries(&session, site)
            .await?
            .into_iter()
            .map(|point| Selection::Object { point })
            .collect(),
        Pick::Library(library) => match browser.library_of(&session, site, library).await? {
            (point, None) => vec![Selection::Object { point }],
            (_, Some(_)) => {
                return Err(ApiError::NotFound(format!(
                    "'{library}' is not a library of this site."
                )))
            }
        },
        Pick::One(item, kind) => vec![site_item(&input.state, &session, site, item, kind).await?],
        Pick::Bulk(kind) => {
            let mut out = Vec::new();
            for item in bulk_ids(&input.options, kind)? {
                out.push(site_item(&input.state, &session, site, &item, kind).await?);
            }
            out
        }
    };
    Ok(ActionRequest {
        session,
        selections,
        source,
    })
}

async fn site_item(
    state: &AppState,
    session: &RestoreSession,
    site: &str,
    id: &str,
    kind: ItemKind,
) -> ApiResult<Selection> {
    match state.browser.library_of(session, site, id).await? {
        (point, Some(item)) if item.kind == kind => Ok(Selection::item(point, item)),
        _ => Err(not_in(id, kind)),
    }
}

/// What a route names.
enum Pick<'a> {
    /// The whole OneDrive or site.
    Whole,
    /// A library of a site.
    Library(&'a str),
    /// One folder or document.
    One(&'a str, ItemKind),
    /// The folders or documents the options list.
    Bulk(ItemKind),
}

const ACTION_BODY: &str = "One action: {\"save\":{\"asZip\":bool}}, {\"restoretoOriginallocation\":{…}}, {\"restoreTo\":{…}} or {\"copyTo\":{…}}";

macro_rules! action_route {
    ($name:ident, $path:literal, $tag:literal, $doc:literal, ($id:ident, $container:ident $(, $extra:ident)?), $params:tt, $paths:ty, $pick:expr, $request:ident) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            tag = $tag,
            security(("bearer" = [])),
            params $params,
            request_body(content = Object, description = ACTION_BODY),
            responses(
                (status = 200, description = "save: the document or a ZIP (application/octet-stream, application/zip); restores: their statistics"),
                (status = 206, description = "save of one document with Range: that part"),
                (status = 400, description = "Not an action, or bad options", body = ErrorBody),
                (status = 401, description = "Not signed in", body = ErrorBody),
                (status = 404, description = "Unknown or stopped session, or an item not in it", body = ErrorBody),
                (status = 413, description = "Body too large", body = ErrorBody),
                (status = 415, description = "Not JSON", body = ErrorBody),
                (status = 416, description = "A Range outside the document", body = ErrorBody),
            )
        )]
        pub async fn $name(
            State(state): State<AppState>,
            headers: HeaderMap,
            operator: Operator,
            Path(($id, $container $(, $extra)?)): Path<$paths>,
            JsonBody(body): JsonBody<Value>,
        ) -> ApiResult<Response> {
            let input = ActionInput::new(state, headers, operator, body)?;
            $(let $extra = $extra.as_str();)?
            let request = $request(&input, &$id, &$container, $pick).await?;
            input.run(request).await
        }
    };
}

action_route!(
    onedrive_action,
    "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Action",
    "Restore: OneDrive",
    "Saves or restores a whole OneDrive.",
    (id, drive),
    (
        ("restoreSessionId" = String, Path),
        ("oneDriveId" = String, Path)
    ),
    (String, String),
    Pick::Whole,
    onedrive_request
);
action_route!(onedrive_folder_action, "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Folders/{folderId}/Action", "Restore: OneDrive",
    "Saves or restores a folder of a OneDrive.", (id, drive, item),
    (("restoreSessionId" = String, Path), ("oneDriveId" = String, Path), ("folderId" = String, Path)),
    (String, String, String), Pick::One(item, ItemKind::Folder), onedrive_request);
action_route!(onedrive_document_action, "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Documents/{documentId}/Action", "Restore: OneDrive",
    "Saves or restores a document of a OneDrive.", (id, drive, item),
    (("restoreSessionId" = String, Path), ("oneDriveId" = String, Path), ("documentId" = String, Path)),
    (String, String, String), Pick::One(item, ItemKind::File), onedrive_request);
action_route!(
    onedrive_folders_action,
    "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Folders/Action",
    "Restore: OneDrive",
    "Saves or restores the folders the options list (`folders: [{\"id\"}]`).",
    (id, drive),
    (
        ("restoreSessionId" = String, Path),
        ("oneDriveId" = String, Path)
    ),
    (String, String),
    Pick::Bulk(ItemKind::Folder),
    onedrive_request
);
action_route!(
    onedrive_documents_action,
    "/v5/RestoreSessions/{restoreSessionId}/Organization/OneDrives/{oneDriveId}/Documents/Action",
    "Restore: OneDrive",
    "Saves or restores the documents the options list (`documents: [{\"id\"}]`).",
    (id, drive),
    (
        ("restoreSessionId" = String, Path),
        ("oneDriveId" = String, Path)
    ),
    (String, String),
    Pick::Bulk(ItemKind::File),
    onedrive_request
);
action_route!(
    site_action,
    "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Action",
    "Restore: SharePoint",
    "Saves or restores a whole site (its libraries).",
    (id, site),
    (
        ("restoreSessionId" = String, Path),
        ("siteId" = String, Path)
    ),
    (String, String),
    Pick::Whole,
    site_request
);
action_route!(library_action, "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Libraries/{libraryId}/Action", "Restore: SharePoint",
    "Saves or restores a library of a site.", (id, site, library),
    (("restoreSessionId" = String, Path), ("siteId" = String, Path), ("libraryId" = String, Path)),
    (String, String, String), Pick::Library(library), site_request);
action_route!(
    site_folder_action,
    "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Folders/{folderId}/Action",
    "Restore: SharePoint",
    "Saves or restores a folder of a site.",
    (id, site, item),
    (
        ("restoreSessionId" = String, Path),
        ("siteId" = String, Path),
        ("folderId" = String, Path)
    ),
    (String, String, String),
    Pick::One(item, ItemKind::Folder),
    site_request
);
action_route!(site_document_action, "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Documents/{documentId}/Action", "Restore: SharePoint",
    "Saves or restores a document of a site.", (id, site, item),
    (("restoreSessionId" = String, Path), ("siteId" = String, Path), ("documentId" = String, Path)),
    (String, String, String), Pick::One(item, ItemKind::File), site_request);
action_route!(
    site_folders_action,
    "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Folders/Action",
    "Restore: SharePoint",
    "Saves or restores the folders the options list (`folders: [{\"id\"}]`).",
    (id, site),
    (
        ("restoreSessionId" = String, Path),
        ("siteId" = String, Path)
    ),
    (String, String),
    Pick::Bulk(ItemKind::Folder),
    site_request
);
action_route!(
    site_documents_action,
    "/v5/RestoreSessions/{restoreSessionId}/Organization/Sites/{siteId}/Documents/Action",
    "Restore: SharePoint",
    "Saves or restores the documents the options list (`documents: [{\"id\"}]`).",
    (id, site),
    (
        ("restoreSessionId" = String, Path),
        ("siteId" = String, Path)
    ),
    (String, String),
    Pick::Bulk(ItemKind::File),
    site_request
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_keeps_names_and_escapes() {
        assert_eq!(
            content_disposition("report.docx"),
            "attachment; filename=\"report.docx\"; filename*=UTF-8''report.docx"
        );
        assert_eq!(
            content_disposition("Über \"x\".pdf"),
            "attachment; filename=\"_ber _x_.pdf\"; filename*=UTF-8''%C3%9Cber%20%22x%22.pdf"
        );
        assert_eq!(
            content_disposition("../a\r\nb"),
            "attachment; filename=\".._a__b\"; filename*=UTF-8''..%2Fa%0D%0Ab"
        );
    }

    #[test]
    fn bulk_ids_are_required_unique_and_bounded() {
        let ids = bulk_ids(
            &serde_json::json!({"Documents": [{"id": "a"}, {"ID": "b"}, {"id": "a"}]}),
            ItemKind::File,
        )
        .unwrap();
        assert_eq!(ids, ["a", "b"]);
        assert!(bulk_ids(&Value::Null, ItemKind::Folder).is_err());
        assert!(bulk_ids(&serde_json::json!({"folders": []}), ItemKind::Folder).is_err());
        let many: Vec<Value> = (0..=MAX_BULK_ITEMS)
            .map(|i| serde_json::json!({"id": i.to_string()}))
            .collect();
        assert!(bulk_ids(&serde_json::json!({"folders": many}), ItemKind::Folder).is_err());
    }
}
