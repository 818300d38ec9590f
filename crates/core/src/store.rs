//! What the core needs from persistence. Implemented for SQLite and PostgreSQL by
//! `m365backup-store`; every method is one atomic operation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::OrganizationId;
use crate::ids::{OperatorId, SessionId};
use crate::operators::{Operator, OperatorCredentials};
use crate::organizations::Organization;
use crate::token::TokenDigest;

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Fails with [`StoreError::Conflict`] when the (case-insensitive) name is taken.
    async fn insert_operator(&self, operator: &Operator, password_hash: &str) -> StoreResult<()>;
    /// Looks an operator up by its normalized (lower-case) name.
    async fn operator_credentials(
        &self,
        normalized_name: &str,
    ) -> StoreResult<Option<OperatorCredentials>>;
    async fn list_operators(&self) -> StoreResult<Vec<Operator>>;
    async fn count_operators(&self) -> StoreResult<u64>;
    /// Sets a new hash and revokes every session of the operator in the same transaction.
    /// `false` when there is no such operator.
    async fn set_operator_password(
        &self,
        normalized_name: &str,
        password_hash: &str,
    ) -> StoreResult<bool>;
    /// Removes the operator and its sessions. `false` when there is no such operator.
    async fn delete_operator(&self, normalized_name: &str) -> StoreResult<bool>;
}

/// A signed-in session as stored: only digests of its tokens.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: SessionId,
    pub operator_id: OperatorId,
    pub tokens: SessionTokens,
    pub created_at: DateTime<Utc>,
}

/// The token digests of a session and when each token dies.
#[derive(Clone, Debug)]
pub struct SessionTokens {
    pub access: TokenDigest,
    pub access_expires_at: DateTime<Utc>,
    pub refresh: TokenDigest,
    pub refresh_expires_at: DateTime<Utc>,
}

/// Who a valid access token belongs to.
#[derive(Clone, Debug)]
pub struct Principal {
    pub session_id: SessionId,
    pub operator_id: OperatorId,
    pub operator_name: String,
}

/// A valid access token: who it belongs to and when it dies.
#[derive(Clone, Debug)]
pub struct ValidAccessToken {
    pub principal: Principal,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug)]
pub enum RefreshOutcome {
    /// The refresh token was current: the session now holds the new tokens.
    Rotated(Principal),
    /// The token had already been used once: a sign of theft, so the session was revoked.
    Replayed(SessionId),
    /// No live session has this refresh token.
    Unknown,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()>;
    /// The session whose current access token is `access`, if that token is unexpired at `now`.
    async fn principal_for_access_token(
        &self,
        access: &TokenDigest,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ValidAccessToken>>;
    /// Atomically swaps a session's tokens if `presented` is its current, unexpired refresh token.
    async fn rotate_refresh_token(
        &self,
        presented: &TokenDigest,
        next: &SessionTokens,
        now: DateTime<Utc>,
    ) -> StoreResult<RefreshOutcome>;
    async fn delete_session(&self, id: SessionId) -> StoreResult<()>;
    /// Deletes sessions whose refresh token has expired; returns how many.
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

#[async_trait]
pub trait OrganizationStore: Send + Sync {
    /// All organizations, oldest first.
    async fn list_organizations(&self) -> StoreResult<Vec<Organization>>;
    async fn get_organization(&self, id: OrganizationId) -> StoreResult<Option<Organization>>;
    /// Fails with [`StoreError::Conflict`] when the tenant is already registered.
    async fn insert_organization(
        &self,
        org: &Organization,
        sealed_secrets: &[u8],
    ) -> StoreResult<()>;
    /// `false` when there is no such organization.
    async fn update_organization(
        &self,
        org: &Organization,
        sealed_secrets: &[u8],
    ) -> StoreResult<bool>;
    /// Removes the organization and everything that belongs to it. `false` if absent.
    async fn delete_organization(&self, id: OrganizationId) -> StoreResult<bool>;
    async fn organization_secrets(&self, id: OrganizationId) -> StoreResult<Option<Vec<u8>>>;
}

#[async_trait]
pub trait BackupAccountStore: Send + Sync {
    /// The organization's accounts in the order they were set.
    async fn list_backup_accounts(
        &self,
        org: OrganizationId,
    ) -> StoreResult<Vec<crate::backup_accounts::StoredBackupAccount>>;
    /// Replaces the organization's whole list in one transaction, serialized with any other
    /// replacement for the same organization. `false` when the organization does not exist.
    async fn replace_backup_accounts(
        &self,
        org: OrganizationId,
        accounts: &[crate::backup_accounts::StoredBackupAccount],
    ) -> StoreResult<bool>;
}

/// The whole state store.
pub trait Store:
    OperatorStore
    + SessionStore
    + OrganizationStore
    + BackupAccountStore
    + crate::jobs::store::JobStore
    + crate::licensing::LicensingStore
    + crate::restore::store::RestoreStore
    + crate::audit::AuditStore
    + Send
    + Sync
{
    /// `sqlite` or `postgres`, for logs and diagnostics.
    fn backend(&self) -> &'static str;
}
