//! Restore sessions' rules: opening one on an organization or a job at a point in time, keeping
//! it alive while it is used (a session idle for 30 minutes stops by itself; work running in it
//! — a save or a restore — keeps it alive until it ends), stopping it, and recording what was
//! done in it as events with the session's counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{CoreError, CoreResult};
use crate::ids::OrganizationId;
use crate::jobs::model::JobId;
use crate::jobs::store::Paged;
use crate::restore::model::{
    EventStatus, EventType, RestoreEvent, RestoreEventId, RestoreKind, RestoreResult,
    RestoreSession, RestoreSessionId, RestoreState,
};
use crate::store::Store;

/// `explore` options.
#[derive(Clone, Debug)]
pub struct ExploreInput {
    /// The point in time (now when absent).
    pub datetime: Option<DateTime<Utc>>,
    pub kind: RestoreKind,
    pub show_deleted: bool,
    pub show_all_versions: bool,
}

/// The message of an event whose server stopped while it ran.
pub const INTERRUPTED: &str = "Interrupted: the server stopped while this ran.";

/// How long a session may sit unused before it stops by itself.
pub const IDLE_STOP: Duration = Duration::from_secs(30 * 60);

pub struct RestoreService {
    store: Arc<dyn Store>,
    idle_stop: Duration,
    /// Sessions are documents read, changed and written back: one change at a time, so that
    /// concurrent saves in one session never lose each other's counts.
    changes: tokio::sync::Mutex<()>,
    /// Running events, each with the task that keeps its session's last activity fresh until
    /// the event ends (the session's database row: another process's work counts too, and a
    /// crashed server's work stops counting).
    keepalives: Mutex<HashMap<RestoreEventId, tokio::task::AbortHandle>>,
}

fn not_found(id: RestoreSessionId) -> CoreError {
    CoreError::NotFound(format!("Restore session '{id}' was not found."))
}

impl RestoreService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            idle_stop: IDLE_STOP,
            changes: tokio::sync::Mutex::new(()),
            keepalives: Mutex::new(HashMap::new()),
        }
    }

    /// The idle limit.
    pub fn idle_stop(&self) -> Duration {
        self.idle_stop
    }

    /// With another idle limit (tests).
    pub fn with_idle_stop(mut self, idle_stop: Duration) -> Self {
        self.idle_stop = idle_stop;
        self
    }

    /// Opens a session on an organization's backups, or on one job's.
    pub async fn explore(
        &self,
        organization: OrganizationId,
        job: Option<JobId>,
        input: ExploreInput,
        operator: &str,
    ) -> CoreResult<RestoreSession> {
        let org = self
            .store
            .get_organization(organization)
            .await?
            .ok_or_else(|| {
                CoreError::NotFound(format!("Organization '{organization}' was not found."))
            })?;
        let job_name = match job {
            None => None,
            Some(id) => {
                let j = self
                    .store
                    .get_job(id)
                    .await?
                    .filter(|j| j.organization_id == organization)
                    .ok_or_else(|| CoreError::NotFound(format!("Job '{id}' was not found.")))?;
                Some(j.definition.name)
            }
        };
        let now = Utc::now();
        let session = RestoreSession {
            id: RestoreSessionId::new_random(),
            organization_id: organization,
            organization_name: org.name,
            job_id: job,
            job_name,
            kind: input.kind,
            point_in_time: input.datetime.unwrap_or(now),
            show_deleted: input.show_deleted,
            show_all_versions: input.show_all_versions,
            creation_time: now,
            end_time: None,
            state: RestoreState::Working,
            result: RestoreResult::Success,
            initiated_by: operator.to_owned(),
            processed: 0,
            succeeded: 0,
            failed: 0,
            last_activity: now,
        };
        self.store.insert_restore_session(&session).await?;
        tracing::info!(session = %session.id, organization = %organization, operator, "restore session opened");
        Ok(session)
    }

    pub async fn get(&self, id: RestoreSessionId) -> CoreResult<RestoreSession> {
        self.stop_idle().await?;
        self.store
            .get_restore_session(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// A session that is still working, its idle time reset; 404 naming a stopped one.
    pub async fn working(&self, id: RestoreSessionId) -> CoreResult<RestoreSession> {
        let _change = self.changes.lock().await;
        let mut session = self.still_working(id).await?;
        session.last_activity = Utc::now();
        self.store.update_restore_session(&session).await?;
        Ok(session)
    }

    /// The session if it works; 404 naming a stopped one.
    async fn still_working(&self, id: RestoreSessionId) -> CoreResult<RestoreSession> {
        let session = self.get(id).await?;
        if session.state == RestoreState::Stopped {
            return Err(CoreError::NotFound(format!(
                "Restore session '{id}' has stopped: start a new one."
            )));
        }
        Ok(session)
    }

    pub async fn list(&self, offset: u64, limit: u64) -> CoreResult<Paged<RestoreSession>> {
        self.stop_idle().await?;
        Ok(self.store.list_restore_sessions(offset, limit).await?)
    }

    pub async fn stop(&self, id: RestoreSessionId) -> CoreResult<()> {
        let _change = self.changes.lock().await;
        let mut session = self.still_working(id).await?;
        session.state = RestoreState::Stopped;
        session.end_time = Some(Utc::now());
        self.store.update_restore_session(&session).await?;
        tracing::info!(session = %id, "restore session stopped");
        Ok(())
    }

    /// Stops every session idle past the limit.
    pub async fn stop_idle(&self) -> CoreResult<u64> {
        let now = Utc::now();
        let before = now - chrono::Duration::from_std(self.idle_stop).unwrap_or_default();
        Ok(self.store.stop_idle_restore_sessions(before, now).await?)
    }

    /// At start-up: events left `Running` by a server that stopped without ending them (a
    /// crash, a kill) end as `Failed`, so no save or restore shows as running forever. A shell
    /// command's restore running beside the starting server is marked too, and writes its real
    /// outcome over it when it ends.
    pub async fn fail_interrupted(&self) -> CoreResult<u64> {
        let n = self
            .store
            .fail_running_restore_events(INTERRUPTED, Utc::now())
            .await?;
        if n > 0 {
            tracing::warn!(
                events = n,
                "restore events left running by a stopped server marked failed"
            );
        }
        Ok(n)
    }

    /// Starts an event (an item being saved or restored).
    pub async fn begin_event(
        &self,
        session: RestoreSessionId,
        kind: EventType,
        item: EventItem,
    ) -> CoreResult<RestoreEvent> {
        let event = RestoreEvent {
            id: RestoreEventId::new_random(),
            session_id: session,
            order: 0,
            kind,
            status: EventStatus::Running,
            start_time: Utc::now(),
            end_time: None,
            title: item.title,
            message: String::new(),
            item_name: item.name,
            item_type: item.item_type,
            item_size: item.size,
            source: item.source,
            target: item.target,
        };
        let event = self.store.append_restore_event(&event).await?;
        self.keep_alive(&event);
        Ok(event)
    }

    /// Until the event ends, its session counts as active: its last activity is refreshed
    /// several times per idle limit.
    fn keep_alive(&self, event: &RestoreEvent) {
        let store = self.store.clone();
        let session = event.session_id;
        let every = (self.idle_stop / 4).max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = store.touch_restore_session(session, Utc::now()).await {
                    tracing::warn!(session = %session, error = %crate::Chain(&e), "a running restore session's activity could not be recorded");
                }
            }
        });
        self.keepalives
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(event.id, task.abort_handle());
    }

    /// The event's work has ended: its session may become idle again.
    fn let_idle(&self, event: RestoreEventId) {
        if let Some(task) = self
            .keepalives
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&event)
        {
            task.abort();
        }
    }

    /// Records events that have already ended, the items of a larger piece of work whose own
    /// event counts them (so these do not count into the session): all in one write, in the
    /// order given.
    pub async fn record_item_events(
        &self,
        session: RestoreSessionId,
        kind: EventType,
        items: Vec<ItemEnd>,
    ) -> CoreResult<()> {
        let events: Vec<RestoreEvent> = items
            .into_iter()
            .map(|(item, status, message, end_time)| RestoreEvent {
                id: RestoreEventId::new_random(),
                session_id: session,
                order: 0,
                kind,
                status,
                start_time: end_time,
                end_time: Some(end_time),
                title: item.title,
                message,
                item_name: item.name,
                item_type: item.item_type,
                item_size: item.size,
                source: item.source,
                target: item.target,
            })
            .collect();
        self.store.append_restore_events(&events).await?;
        Ok(())
    }

    /// Ends an event and counts its items into the session (`succeeded`/`failed` items).
    pub async fn finish_event(
        &self,
        mut event: RestoreEvent,
        status: EventStatus,
        message: String,
        succeeded: u64,
        failed: u64,
    ) -> CoreResult<()> {
        event.status = status;
        event.message = message;
        event.end_time = Some(Utc::now());
        self.let_idle(event.id);
        self.store.update_restore_event(&event).await?;
        let _change = self.changes.lock().await;
        let mut session = self.get(event.session_id).await?;
        session.processed += succeeded + failed;
        session.succeeded += succeeded;
        session.failed += failed;
        session.result = match (session.succeeded, session.failed) {
            (_, 0) => RestoreResult::Success,
            (0, _) => RestoreResult::Failed,
            _ => RestoreResult::Warning,
        };
        session.last_activity = Utc::now();
        self.store.update_restore_session(&session).await?;
        Ok(())
    }

    pub async fn events(
        &self,
        session: RestoreSessionId,
        offset: u64,
        limit: u64,
    ) -> CoreResult<Paged<RestoreEvent>> {
        self.working(session).await?;
        Ok(self
            .store
            .list_restore_events(session, offset, limit)
            .await?)
    }

    pub async fn event(
        &self,
        session: RestoreSessionId,
        id: RestoreEventId,
    ) -> CoreResult<RestoreEvent> {
        self.working(session).await?;
        self.store
            .get_restore_event(id)
            .await?
            .filter(|e| e.session_id == session)
            .ok_or_else(|| CoreError::NotFound(format!("Restore event '{id}' was not found.")))
    }
}

impl Drop for RestoreService {
    fn drop(&mut self) {
        for (_, task) in self
            .keepalives
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            task.abort();
        }
    }
}

/// How one item of a larger piece of work ended: what it is, its status, the message, when.
pub type ItemEnd = (EventItem, EventStatus, String, DateTime<Utc>);

/// What an event is about.
#[derive(Clone, Debug, Default)]
pub struct EventItem {
    pub title: String,
    pub name: String,
    /// `Document`, `Folder`, `OneDrive`, `Site`, `Library`, `Items`.
    pub item_type: String,
    pub size: u64,
    pub source: String,
    pub target: String,
}
