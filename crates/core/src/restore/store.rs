//! How restore sessions and their events are kept (implemented by `m365backup-store`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jobs::store::Paged;
use crate::restore::model::{RestoreEvent, RestoreEventId, RestoreSession, RestoreSessionId};
use crate::store::StoreResult;

#[async_trait]
pub trait RestoreStore: Send + Sync {
    async fn insert_restore_session(&self, session: &RestoreSession) -> StoreResult<()>;
    async fn get_restore_session(
        &self,
        id: RestoreSessionId,
    ) -> StoreResult<Option<RestoreSession>>;
    /// Newest first.
    async fn list_restore_sessions(
        &self,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Paged<RestoreSession>>;
    /// Saves state, result, counts, end and last activity.
    async fn update_restore_session(&self, session: &RestoreSession) -> StoreResult<()>;
    /// Records activity in a working session (work running in it) without touching the rest.
    async fn touch_restore_session(
        &self,
        id: RestoreSessionId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Stops working sessions idle since before `idle_before`; how many.
    async fn stop_idle_restore_sessions(
        &self,
        idle_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Stores an event; its `order` is assigned here.
    async fn append_restore_event(&self, event: &RestoreEvent) -> StoreResult<RestoreEvent>;
    /// Stores events at once (one transaction), ordered as given; their `order` is assigned
    /// here and read back with them.
    async fn append_restore_events(&self, events: &[RestoreEvent]) -> StoreResult<()>;
    async fn update_restore_event(&self, event: &RestoreEvent) -> StoreResult<()>;
    /// Ends every event still `Running` as `Failed` with `message` (the process that ran it is
    /// gone); how many.
    async fn fail_running_restore_events(
        &self,
        message: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    async fn get_restore_event(&self, id: RestoreEventId) -> StoreResult<Option<RestoreEvent>>;
    /// In order.
    async fn list_restore_events(
        &self,
        session: RestoreSessionId,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Paged<RestoreEvent>>;
}
