//! Protected users as the vendor's licensing resources count them: users whose OneDrive is in
//! a backup. We sell nothing; monitoring clients read these counts, and an operator may remove
//! a user from the count (it counts again once backed up later).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::OrganizationId;
use crate::store::StoreResult;

/// A removal from the count: the user, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub organization_id: OrganizationId,
    pub user_id: Uuid,
    pub revoked_at: DateTime<Utc>,
}

#[async_trait]
pub trait LicensingStore: Send + Sync {
    async fn revoke_license(&self, revocation: &Revocation) -> StoreResult<()>;
    async fn license_revocations(&self) -> StoreResult<Vec<Revocation>>;
}

/// Days after its first backup during which a user counts as new.
pub const NEW_USER_DAYS: i64 = 30;

/// Removals from the protected users' count.
pub struct LicensingService {
    store: std::sync::Arc<dyn crate::store::Store>,
}

impl LicensingService {
    pub fn new(store: std::sync::Arc<dyn crate::store::Store>) -> Self {
        Self { store }
    }

    /// Removes a user from its organization's count, now.
    pub async fn revoke(
        &self,
        organization_id: OrganizationId,
        user_id: Uuid,
    ) -> crate::error::CoreResult<()> {
        let r = Revocation {
            organization_id,
            user_id,
            revoked_at: Utc::now(),
        };
        self.store.revoke_license(&r).await?;
        tracing::info!(organization = %organization_id, user = %user_id, "protected user removed from the count");
        Ok(())
    }

    pub async fn revocations(&self) -> crate::error::CoreResult<Vec<Revocation>> {
        Ok(self.store.license_revocations().await?)
    }
}
