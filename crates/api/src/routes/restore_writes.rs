//! Restores to Microsoft 365 from a restore session (`restoretoOriginallocation`, `restoreTo`,
//! `copyTo`): their options, and the statistics body they answer with.

use axum::response::Response;
use m365backup_core::restore::model::RestoreSession;
use m365backup_engine::restore::selection::Selection;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Where a restore writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    /// Back where the items were (`restoretoOriginallocation`, `restoreTo`).
    OriginalLocation,
    /// Into another OneDrive or site (`copyTo`).
    CopyTo,
}

/// Runs a restore and answers with its statistics.
pub async fn restore(
    _state: &AppState,
    _session: &RestoreSession,
    _selections: Vec<Selection>,
    _action: WriteAction,
    _options: Value,
    _operator: &str,
) -> ApiResult<Response> {
    // Work in progress (issue 14): the engine's restore writer lands next.
    Err(ApiError::Conflict(
        "Restores to Microsoft 365 are not available on this server yet; save the items instead."
            .into(),
    ))
}
