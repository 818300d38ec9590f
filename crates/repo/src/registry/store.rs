//! What the registry needs from the state store (implemented by `m365backup-store`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use m365backup_core::store::StoreResult;

use super::RepositoryRecord;

#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// Oldest first.
    async fn list_repositories(&self) -> StoreResult<Vec<RepositoryRecord>>;
    async fn get_repository(&self, id: uuid::Uuid) -> StoreResult<Option<RepositoryRecord>>;
    async fn repository_secrets(&self, id: uuid::Uuid) -> StoreResult<Option<Vec<u8>>>;
    /// Fails with `StoreError::Conflict` when the (case-insensitive) name is taken.
    async fn insert_repository(
        &self,
        record: &RepositoryRecord,
        sealed_secrets: &[u8],
    ) -> StoreResult<()>;
    /// Name, description and retention. `false` when there is no such repository.
    async fn update_repository(&self, record: &RepositoryRecord) -> StoreResult<bool>;
    /// Removes the record and its catalog. `false` when there is no such repository.
    async fn delete_repository(&self, id: uuid::Uuid) -> StoreResult<bool>;
    async fn set_last_retention(&self, id: uuid::Uuid, at: DateTime<Utc>) -> StoreResult<()>;
}
