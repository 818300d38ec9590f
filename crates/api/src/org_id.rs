//! The organization a request's path names (`{organizationId}`), parsed once for every handler.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use m365backup_core::ids::OrganizationId;

use crate::error::ApiError;

/// The path's `{organizationId}`. A malformed id names no organization: 404, as for an unknown
/// one (the handler's service answers that).
pub struct OrgId(pub OrganizationId);

impl<S: Send + Sync> FromRequestParts<S> for OrgId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::internal(e.body_text()))?;
        let raw = params
            .iter()
            .find(|(name, _)| *name == "organizationId")
            .map(|(_, value)| value)
            .ok_or_else(|| ApiError::internal("the route has no {organizationId}"))?;
        parse(raw).map(OrgId)
    }
}

/// An organization id from text, or the 404 of an unknown organization.
pub fn parse(raw: &str) -> Result<OrganizationId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("Organization '{raw}' was not found.")))
}
