//! The state store's share of backup jobs: jobs and their items, sessions and log items
//! ([`m365backup_core::jobs::store::JobStore`]). SQL written once for both backends, as in
//! [`crate::queries`]; only the row lock that claims a run differs (PostgreSQL's
//! `FOR UPDATE SKIP LOCKED`, so several nodes never claim one run; SQLite has one writer).

/// A stored enum's text: its serde name (`Success`, `Running`…).
pub(crate) fn enum_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => other.map(|v| v.to_string()).unwrap_or_default(),
    }
}

/// An enum from its stored text.
pub(crate) fn enum_from<T: serde::de::DeserializeOwned>(
    text: &str,
) -> m365backup_core::store::StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| m365backup_core::StoreError::corrupt(format!("value '{text}'"), e))
}

macro_rules! impl_job_store {
    ($store:ty, $db:ty, $claim_lock:literal) => {
        use m365backup_core::jobs::model::{
            BackupItem, BackupItemId, Job, JobDefinition, JobId, JobSession, JobSessionId,
            JobState, LogItem, LogItemId, SessionStatus,
        };
        use m365backup_core::jobs::store::{
            ClaimedRun, ItemList, JobStore, Paged, PendingRetry, RunEnd,
        };

        use crate::jobs::{enum_from, enum_text};

        fn json_err(e: serde_json::Error) -> m365backup_core::StoreError {
            m365backup_core::StoreError::corrupt("JSON document", e)
        }

        fn opt_millis(v: Option<i64>) -> Option<DateTime<Utc>> {
            v.map(from_millis)
        }

        const JOB_COLUMNS: &str = "id, organization_id, document, is_enabled, state, \
             running_session_id, last_status, last_run, next_run, created_at";
        const SESSION_COLUMNS: &str = "id, job_id, organization_id, creation_time, end_time, \
             retry_count, progress, status, details, statistics";

        fn job_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<Job> {
            let get_s = |c: &str| -> StoreResult<String> {
                row.try_get::<String, _>(c).map_err(crate::db_error("job_from_row"))
            };
            let definition: JobDefinition =
                serde_json::from_str(&get_s("document")?).map_err(json_err)?;
            let state = match get_s("state")?.as_str() {
                "queued" => JobState::Queued,
                "running" => {
                    let session: Option<String> =
                        row.try_get("running_session_id").map_err(crate::db_error("job_from_row"))?;
                    match session {
                        Some(s) => JobState::Running(parse_id(&s)?),
                        None => JobState::Idle,
                    }
                }
                _ => JobState::Idle,
            };
            Ok(Job {
                id: parse_id(&get_s("id")?)?,
                organization_id: parse_id(&get_s("organization_id")?)?,
                definition,
                is_enabled: row.try_get("is_enabled").map_err(crate::db_error("job_from_row"))?,
                state,
                last_status: enum_from(&get_s("last_status")?)?,
                last_run: opt_millis(row.try_get("last_run").map_err(crate::db_error("job_from_row"))?),
                next_run: opt_millis(row.try_get("next_run").map_err(crate::db_error("job_from_row"))?),
                created_at: from_millis(row.try_get("created_at").map_err(crate::db_error("job_from_row"))?),
            })
        }

        fn session_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<JobSession> {
            let get_s = |c: &str| -> StoreResult<String> {
                row.try_get::<String, _>(c).map_err(crate::db_error("session_from_row"))
            };
            let int = |c: &str| -> StoreResult<i64> {
                row.try_get::<i64, _>(c).map_err(crate::db_error("session_from_row"))
            };
            Ok(JobSession {
                id: parse_id(&get_s("id")?)?,
                job_id: parse_id(&get_s("job_id")?)?,
                organization_id: parse_id(&get_s("organization_id")?)?,
                creation_time: from_millis(int("creation_time")?),
                end_time: opt_millis(row.try_get("end_time").map_err(crate::db_error("session_from_row"))?),
                retry_count: u32::try_from(int("retry_count")?).unwrap_or(0),
                progress: u8::try_from(int("progress")?).unwrap_or(0),
                status: enum_from(&get_s("status")?)?,
                details: get_s("details")?,
                statistics: serde_json::from_str(&get_s("statistics")?).map_err(json_err)?,
            })
        }

        fn log_item_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<LogItem> {
            let id: String = row.try_get("id").map_err(crate::db_error("log_item_from_row"))?;
            let session: String = row.try_get("session_id").map_err(crate::db_error("log_item_from_row"))?;
            Ok(LogItem {
                id: parse_id(&id)?,
                session_id: parse_id(&session)?,
                usn: row.try_get("usn").map_err(crate::db_error("log_item_from_row"))?,
                title: row.try_get("title").map_err(crate::db_error("log_item_from_row"))?,
                creation_time: from_millis(
                    row.try_get("creation_time").map_err(crate::db_error("log_item_from_row"))?,
                ),
                end_time: opt_millis(row.try_get("end_time").map_err(crate::db_error("log_item_from_row"))?),
            })
        }

        fn excluded(list: ItemList) -> bool {
            list == ItemList::Excluded
        }

        #[async_trait]
        impl JobStore for $store {
            async fn insert_job(
                &self,
                job: &Job,
                selected: &[BackupItem],
                excluded_items: &[BackupItem],
            ) -> StoreResult<()> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("insert_job"))?;
                sqlx::query(
                    "INSERT INTO jobs (id, organization_id, name_key, repository_id, document,
                       is_enabled, state, last_status, next_run, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, 'idle', $7, $8, $9)",
                )
                .bind(job.id.to_string())
                .bind(job.organization_id.to_string())
                .bind(job.definition.name.to_lowercase())
                .bind(job.definition.repository_id.to_string())
                .bind(serde_json::to_string(&job.definition).map_err(json_err)?)
                .bind(job.is_enabled)
                .bind(enum_text(&job.last_status))
                .bind(job.next_run.map(to_millis))
                .bind(to_millis(job.created_at))
                .execute(&mut *tx)
                .await
                .map_err(crate::db_error("insert_job"))?;
                for (list, items) in [(ItemList::Selected, selected), (ItemList::Excluded, excluded_items)] {
                    for (position, item) in items.iter().enumerate() {
                        insert_item(&mut tx, job.id, list, position as i64, item).await?;
                    }
                }
                tx.commit().await.map_err(crate::db_error("insert_job"))?;
                Ok(())
            }

            async fn update_job(&self, job: &Job) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE jobs SET name_key = $2, repository_id = $3, document = $4,
                       is_enabled = $5, next_run = $6 WHERE id = $1",
                )
                .bind(job.id.to_string())
                .bind(job.definition.name.to_lowercase())
                .bind(job.definition.repository_id.to_string())
                .bind(serde_json::to_string(&job.definition).map_err(json_err)?)
                .bind(job.is_enabled)
                .bind(job.next_run.map(to_millis))
                .execute(&self.write)
                .await
                .map_err(crate::db_error("update_job"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_job(&self, id: JobId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM jobs WHERE id = $1 AND state <> 'running'")
                    .bind(id.to_string())
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("delete_job"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn get_job(&self, id: JobId) -> StoreResult<Option<Job>> {
                let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.read)
                    .await
                    .map_err(crate::db_error("get_job"))?;
                row.as_ref().map(job_from_row).transpose()
            }

            async fn list_jobs(
                &self,
                organization: Option<OrganizationId>,
            ) -> StoreResult<Vec<Job>> {
                let rows = match organization {
                    Some(org) => sqlx::query(&format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE organization_id = $1 ORDER BY created_at, id"
                    ))
                    .bind(org.to_string())
                    .fetch_all(&self.read)
                    .await,
                    None => sqlx::query(&format!(
                        "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at, id"
                    ))
                    .fetch_all(&self.read)
                    .await,
                }
                .map_err(crate::db_error("list_jobs"))?;
                rows.iter().map(job_from_row).collect()
            }

            async fn count_jobs_using_repository(&self, repository: uuid::Uuid) -> StoreResult<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE repository_id = $1")
                    .bind(repository.to_string())
                    .fetch_one(&self.read)
                    .await
                    .map_err(crate::db_error("count_jobs_using_repository"))?;
                Ok(n as u64)
            }

            async fn job_items(&self, job: JobId, list: ItemList) -> StoreResult<Vec<BackupItem>> {
                let rows: Vec<String> = sqlx::query_scalar(
                    "SELECT item FROM job_items WHERE job_id = $1 AND excluded = $2 ORDER BY position",
                )
                .bind(job.to_string())
                .bind(excluded(list))
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("job_items"))?;
                rows.iter()
                    .map(|r| serde_json::from_str(r).map_err(json_err))
                    .collect()
            }

            async fn add_job_items(
                &self,
                job: JobId,
                list: ItemList,
                items: &[BackupItem],
            ) -> StoreResult<()> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("add_job_items"))?;
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(position) FROM job_items WHERE job_id = $1 AND excluded = $2",
                )
                .bind(job.to_string())
                .bind(excluded(list))
                .fetch_one(&mut *tx)
                .await
                .map_err(crate::db_error("add_job_items"))?;
                let first = last.map_or(0, |p| p + 1);
                for (i, item) in items.iter().enumerate() {
                    insert_item(&mut tx, job, list, first + i as i64, item).await?;
                }
                tx.commit().await.map_err(crate::db_error("add_job_items"))?;
                Ok(())
            }

            async fn remove_job_items(
                &self,
                job: JobId,
                list: ItemList,
                ids: &[BackupItemId],
            ) -> StoreResult<u64> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("remove_job_items"))?;
                let mut removed = 0;
                for id in ids {
                    removed += sqlx::query(
                        "DELETE FROM job_items WHERE job_id = $1 AND excluded = $2 AND id = $3",
                    )
                    .bind(job.to_string())
                    .bind(excluded(list))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db_error("remove_job_items"))?
                    .rows_affected();
                }
                tx.commit().await.map_err(crate::db_error("remove_job_items"))?;
                Ok(removed)
            }

            async fn queue_job(&self, id: JobId) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE jobs SET state = 'queued' WHERE id = $1 AND state = 'idle'")
                    .bind(id.to_string())
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("queue_job"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn dequeue_job(&self, id: JobId) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE jobs SET state = 'idle' WHERE id = $1 AND state = 'queued'")
                    .bind(id.to_string())
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("dequeue_job"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn claim_due_run(
                &self,
                now: DateTime<Utc>,
                node: uuid::Uuid,
                session_id: JobSessionId,
            ) -> StoreResult<Option<ClaimedRun>> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("claim_due_run"))?;
                let due = sqlx::query(&format!(
                    "SELECT {JOB_COLUMNS}, pending_retry FROM jobs
                     WHERE state = 'queued'
                        OR (state = 'idle' AND is_enabled = $1 AND next_run IS NOT NULL AND next_run <= $2)
                     ORDER BY CASE WHEN state = 'queued' THEN 0 ELSE 1 END, next_run, id
                     LIMIT 1 {}",
                    $claim_lock
                ))
                .bind(true)
                .bind(to_millis(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(crate::db_error("claim_due_run"))?;
                let Some(row) = due else {
                    return Ok(None);
                };
                let mut job = job_from_row(&row)?;
                let retry: Option<String> = row.try_get("pending_retry").map_err(crate::db_error("claim_due_run"))?;
                let retry: Option<PendingRetry> = retry
                    .map(|r| serde_json::from_str(&r).map_err(json_err))
                    .transpose()?;
                // A manual start is a fresh run; a scheduled one owes its retry, if any.
                let retry = if job.state == JobState::Queued { None } else { retry };
                let session = JobSession {
                    id: session_id,
                    job_id: job.id,
                    organization_id: job.organization_id,
                    creation_time: now,
                    end_time: None,
                    retry_count: retry.as_ref().map_or(0, |r| r.count),
                    progress: 0,
                    status: SessionStatus::Running,
                    details: String::new(),
                    statistics: Default::default(),
                };
                sqlx::query(
                    "UPDATE jobs SET state = 'running', running_session_id = $2, claimed_by = $3,
                       heartbeat_at = $4, pending_retry = NULL WHERE id = $1",
                )
                .bind(job.id.to_string())
                .bind(session.id.to_string())
                .bind(node.to_string())
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await
                .map_err(crate::db_error("claim_due_run"))?;
                sqlx::query(&format!(
                    "INSERT INTO job_sessions ({SESSION_COLUMNS}, stop_requested, heartbeat_at)
                     VALUES ($1, $2, $3, $4, NULL, $5, 0, $6, '', $7, $8, $9)"
                ))
                .bind(session.id.to_string())
                .bind(job.id.to_string())
                .bind(job.organization_id.to_string())
                .bind(to_millis(now))
                .bind(i64::from(session.retry_count))
                .bind(enum_text(&session.status))
                .bind(serde_json::to_string(&session.statistics).map_err(json_err)?)
                .bind(false)
                .bind(to_millis(now))
                .execute(&mut *tx)
                .await
                .map_err(crate::db_error("claim_due_run"))?;
                tx.commit().await.map_err(crate::db_error("claim_due_run"))?;
                job.state = JobState::Running(session.id);
                Ok(Some(ClaimedRun {
                    job,
                    session,
                    retry_objects: retry.map(|r| r.objects),
                }))
            }

            async fn heartbeat(&self, session: JobSessionId, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("UPDATE job_sessions SET heartbeat_at = $2 WHERE id = $1")
                    .bind(session.to_string())
                    .bind(to_millis(now))
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("heartbeat"))?;
                sqlx::query("UPDATE jobs SET heartbeat_at = $2 WHERE running_session_id = $1")
                    .bind(session.to_string())
                    .bind(to_millis(now))
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("heartbeat"))?;
                Ok(())
            }

            async fn finish_run(&self, session: &JobSession, end: &RunEnd) -> StoreResult<()> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("finish_run"))?;
                write_session(&mut tx, session).await?;
                sqlx::query(
                    "UPDATE jobs SET state = 'idle', running_session_id = NULL, claimed_by = NULL,
                       heartbeat_at = NULL, last_status = $2, last_run = $3, next_run = $4,
                       pending_retry = $5
                     WHERE running_session_id = $1",
                )
                .bind(session.id.to_string())
                .bind(enum_text(&end.last_status))
                .bind(to_millis(end.last_run))
                .bind(end.next_run.map(to_millis))
                .bind(
                    end.retry
                        .as_ref()
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(json_err)?,
                )
                .execute(&mut *tx)
                .await
                .map_err(crate::db_error("finish_run"))?;
                tx.commit().await.map_err(crate::db_error("finish_run"))?;
                Ok(())
            }

            async fn request_stop(&self, job: JobId) -> StoreResult<Option<JobSessionId>> {
                let running: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT running_session_id FROM jobs WHERE id = $1 AND state = 'running'",
                )
                .bind(job.to_string())
                .fetch_optional(&self.read)
                .await
                .map_err(crate::db_error("request_stop"))?;
                let Some(Some(session)) = running else {
                    return Ok(None);
                };
                sqlx::query("UPDATE job_sessions SET stop_requested = $2 WHERE id = $1")
                    .bind(&session)
                    .bind(true)
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("request_stop"))?;
                Ok(Some(parse_id(&session)?))
            }

            async fn stop_requested(&self, session: JobSessionId) -> StoreResult<bool> {
                let stop: Option<bool> =
                    sqlx::query_scalar("SELECT stop_requested FROM job_sessions WHERE id = $1")
                        .bind(session.to_string())
                        .fetch_optional(&self.read)
                        .await
                        .map_err(crate::db_error("stop_requested"))?;
                Ok(stop.unwrap_or(false))
            }

            async fn abandoned_sessions(
                &self,
                node: Option<uuid::Uuid>,
                stale_before: DateTime<Utc>,
            ) -> StoreResult<Vec<JobSession>> {
                let rows = sqlx::query(&format!(
                    "SELECT {SESSION_COLUMNS} FROM job_sessions
                     WHERE status = 'Running' AND (heartbeat_at < $1 OR id IN
                       (SELECT running_session_id FROM jobs WHERE claimed_by = $2))"
                ))
                .bind(to_millis(stale_before))
                .bind(node.map(|n| n.to_string()).unwrap_or_default())
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("abandoned_sessions"))?;
                rows.iter().map(session_from_row).collect()
            }

            async fn set_pending_retry(
                &self,
                job: JobId,
                retry: Option<&PendingRetry>,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE jobs SET pending_retry = $2 WHERE id = $1")
                    .bind(job.to_string())
                    .bind(retry.map(serde_json::to_string).transpose().map_err(json_err)?)
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("set_pending_retry"))?;
                Ok(())
            }

            async fn record_backup_time(
                &self,
                organization: OrganizationId,
                at: DateTime<Utc>,
            ) -> StoreResult<()> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("record_backup_time"))?;
                let doc: Option<String> =
                    sqlx::query_scalar("SELECT document FROM organizations WHERE id = $1")
                        .bind(organization.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(crate::db_error("record_backup_time"))?;
                let Some(doc) = doc else {
                    return Ok(());
                };
                let mut org: Organization = serde_json::from_str(&doc).map_err(json_err)?;
                org.first_backup_time = org.first_backup_time.or(Some(at));
                org.last_backup_time = Some(at);
                sqlx::query("UPDATE organizations SET document = $2 WHERE id = $1")
                    .bind(organization.to_string())
                    .bind(serde_json::to_string(&org).map_err(json_err)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db_error("record_backup_time"))?;
                let committed = tx.commit().await;
                self.organizations.invalidate();
                committed.map_err(crate::db_error("record_backup_time"))?;
                Ok(())
            }

            async fn update_session(&self, session: &JobSession) -> StoreResult<()> {
                let mut tx = self.write.begin().await.map_err(crate::db_error("update_session"))?;
                write_session(&mut tx, session).await?;
                tx.commit().await.map_err(crate::db_error("update_session"))?;
                Ok(())
            }

            async fn get_session(&self, id: JobSessionId) -> StoreResult<Option<JobSession>> {
                let row = sqlx::query(&format!(
                    "SELECT {SESSION_COLUMNS} FROM job_sessions WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await
                .map_err(crate::db_error("get_session"))?;
                row.as_ref().map(session_from_row).transpose()
            }

            async fn list_sessions(
                &self,
                job: Option<JobId>,
                offset: u64,
                limit: u64,
            ) -> StoreResult<Paged<JobSession>> {
                let (filter, job_id) = match job {
                    Some(j) => ("WHERE job_id = $1", j.to_string()),
                    None => ("WHERE $1 = $1", String::new()),
                };
                let total: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM job_sessions {filter}"
                ))
                .bind(&job_id)
                .fetch_one(&self.read)
                .await
                .map_err(crate::db_error("list_sessions"))?;
                let rows = sqlx::query(&format!(
                    "SELECT {SESSION_COLUMNS} FROM job_sessions {filter}
                     ORDER BY creation_time DESC, id LIMIT $2 OFFSET $3"
                ))
                .bind(&job_id)
                .bind(limit as i64)
                .bind(offset as i64)
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("list_sessions"))?;
                Ok(Paged {
                    items: rows.iter().map(session_from_row).collect::<StoreResult<_>>()?,
                    total: total as u64,
                })
            }

            async fn append_log_item(
                &self,
                session: JobSessionId,
                title: &str,
                creation_time: DateTime<Utc>,
                end_time: Option<DateTime<Utc>>,
            ) -> StoreResult<LogItem> {
                let id = LogItemId::new_random();
                let usn: i64 = sqlx::query_scalar(
                    "INSERT INTO job_log_items (id, session_id, title, creation_time, end_time)
                     VALUES ($1, $2, $3, $4, $5) RETURNING usn",
                )
                .bind(id.to_string())
                .bind(session.to_string())
                .bind(title)
                .bind(to_millis(creation_time))
                .bind(end_time.map(to_millis))
                .fetch_one(&self.write)
                .await
                .map_err(crate::db_error("append_log_item"))?;
                Ok(LogItem {
                    id,
                    session_id: session,
                    usn,
                    title: title.to_owned(),
                    creation_time,
                    end_time,
                })
            }

            async fn update_log_item(
                &self,
                id: LogItemId,
                title: &str,
                end_time: Option<DateTime<Utc>>,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE job_log_items SET title = $2, end_time = $3 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(title)
                    .bind(end_time.map(to_millis))
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("update_log_item"))?;
                Ok(())
            }

            async fn get_log_item(&self, id: LogItemId) -> StoreResult<Option<LogItem>> {
                let row = sqlx::query(
                    "SELECT usn, id, session_id, title, creation_time, end_time
                     FROM job_log_items WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await
                .map_err(crate::db_error("get_log_item"))?;
                row.as_ref().map(log_item_from_row).transpose()
            }

            async fn list_log_items(
                &self,
                session: JobSessionId,
                offset: u64,
                limit: u64,
            ) -> StoreResult<Paged<LogItem>> {
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM job_log_items WHERE session_id = $1")
                        .bind(session.to_string())
                        .fetch_one(&self.read)
                        .await
                        .map_err(crate::db_error("list_log_items"))?;
                let rows = sqlx::query(
                    "SELECT usn, id, session_id, title, creation_time, end_time
                     FROM job_log_items WHERE session_id = $1 ORDER BY usn LIMIT $2 OFFSET $3",
                )
                .bind(session.to_string())
                .bind(limit as i64)
                .bind(offset as i64)
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("list_log_items"))?;
                Ok(Paged {
                    items: rows.iter().map(log_item_from_row).collect::<StoreResult<_>>()?,
                    total: total as u64,
                })
            }
        }

        #[async_trait]
        impl m365backup_core::licensing::LicensingStore for $store {
            async fn revoke_license(
                &self,
                r: &m365backup_core::licensing::Revocation,
            ) -> StoreResult<()> {
                sqlx::query(
                    "DELETE FROM licensing_revocations WHERE organization_id = $1 AND user_id = $2",
                )
                .bind(r.organization_id.to_string())
                .bind(r.user_id.to_string())
                .execute(&self.write)
                .await
                .map_err(crate::db_error("revoke_license"))?;
                sqlx::query(
                    "INSERT INTO licensing_revocations (organization_id, user_id, revoked_at)
                     VALUES ($1, $2, $3)",
                )
                .bind(r.organization_id.to_string())
                .bind(r.user_id.to_string())
                .bind(to_millis(r.revoked_at))
                .execute(&self.write)
                .await
                .map_err(crate::db_error("revoke_license"))?;
                Ok(())
            }

            async fn license_revocations(
                &self,
            ) -> StoreResult<Vec<m365backup_core::licensing::Revocation>> {
                let rows = sqlx::query(
                    "SELECT organization_id, user_id, revoked_at FROM licensing_revocations",
                )
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("license_revocations"))?;
                rows.iter()
                    .map(|row| {
                        let org: String = row.try_get("organization_id").map_err(crate::db_error("license_revocations"))?;
                        let user: String = row.try_get("user_id").map_err(crate::db_error("license_revocations"))?;
                        Ok(m365backup_core::licensing::Revocation {
                            organization_id: parse_id(&org)?,
                            user_id: parse_id(&user)?,
                            revoked_at: from_millis(
                                row.try_get("revoked_at").map_err(crate::db_error("license_revocations"))?,
                            ),
                        })
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl m365backup_core::restore::store::RestoreStore for $store {
            async fn insert_restore_session(
                &self,
                s: &m365backup_core::restore::model::RestoreSession,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO restore_sessions (id, document, state, creation_time, last_activity)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(s.id.to_string())
                .bind(serde_json::to_string(s).map_err(json_err)?)
                .bind(enum_text(&s.state))
                .bind(to_millis(s.creation_time))
                .bind(to_millis(s.last_activity))
                .execute(&self.write)
                .await
                .map_err(crate::db_error("insert_restore_session"))?;
                Ok(())
            }

            async fn get_restore_session(
                &self,
                id: m365backup_core::restore::model::RestoreSessionId,
            ) -> StoreResult<Option<m365backup_core::restore::model::RestoreSession>> {
                let doc: Option<String> =
                    sqlx::query_scalar("SELECT document FROM restore_sessions WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_optional(&self.read)
                        .await
                        .map_err(crate::db_error("get_restore_session"))?;
                doc.map(|d| serde_json::from_str(&d).map_err(json_err))
                    .transpose()
            }

            async fn list_restore_sessions(
                &self,
                offset: u64,
                limit: u64,
            ) -> StoreResult<Paged<m365backup_core::restore::model::RestoreSession>> {
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM restore_sessions")
                    .fetch_one(&self.read)
                    .await
                    .map_err(crate::db_error("list_restore_sessions"))?;
                let docs: Vec<String> = sqlx::query_scalar(
                    "SELECT document FROM restore_sessions ORDER BY creation_time DESC, id
                     LIMIT $1 OFFSET $2",
                )
                .bind(limit as i64)
                .bind(offset as i64)
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("list_restore_sessions"))?;
                Ok(Paged {
                    items: docs
                        .iter()
                        .map(|d| serde_json::from_str(d).map_err(json_err))
                        .collect::<StoreResult<_>>()?,
                    total: total as u64,
                })
            }

            async fn update_restore_session(
                &self,
                s: &m365backup_core::restore::model::RestoreSession,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE restore_sessions SET document = $2, state = $3, last_activity = $4
                     WHERE id = $1",
                )
                .bind(s.id.to_string())
                .bind(serde_json::to_string(s).map_err(json_err)?)
                .bind(enum_text(&s.state))
                .bind(to_millis(s.last_activity))
                .execute(&self.write)
                .await
                .map_err(crate::db_error("update_restore_session"))?;
                Ok(())
            }

            async fn touch_restore_session(
                &self,
                id: m365backup_core::restore::model::RestoreSessionId,
                at: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE restore_sessions SET last_activity = $2
                     WHERE id = $1 AND state = 'Working' AND last_activity < $2",
                )
                .bind(id.to_string())
                .bind(to_millis(at))
                .execute(&self.write)
                .await
                .map_err(crate::db_error("touch_restore_session"))?;
                Ok(())
            }

            async fn stop_idle_restore_sessions(
                &self,
                idle_before: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> StoreResult<u64> {
                let docs: Vec<String> = sqlx::query_scalar(
                    "SELECT document FROM restore_sessions WHERE state = 'Working' AND last_activity < $1",
                )
                .bind(to_millis(idle_before))
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("stop_idle_restore_sessions"))?;
                let mut stopped = 0;
                for d in docs {
                    let mut s: m365backup_core::restore::model::RestoreSession =
                        serde_json::from_str(&d).map_err(json_err)?;
                    s.state = m365backup_core::restore::model::RestoreState::Stopped;
                    s.end_time = Some(now);
                    self.update_restore_session(&s).await?;
                    stopped += 1;
                }
                Ok(stopped)
            }

            async fn append_restore_event(
                &self,
                e: &m365backup_core::restore::model::RestoreEvent,
            ) -> StoreResult<m365backup_core::restore::model::RestoreEvent> {
                // The order is the row's: read back with the document, never written into it.
                let order: i64 = sqlx::query_scalar(
                    "INSERT INTO restore_events (id, session_id, document) VALUES ($1, $2, $3)
                     RETURNING event_order",
                )
                .bind(e.id.to_string())
                .bind(e.session_id.to_string())
                .bind(serde_json::to_string(e).map_err(json_err)?)
                .fetch_one(&self.write)
                .await
                .map_err(crate::db_error("append_restore_event"))?;
                let mut stored = e.clone();
                stored.order = order;
                Ok(stored)
            }

            async fn append_restore_events(
                &self,
                events: &[m365backup_core::restore::model::RestoreEvent],
            ) -> StoreResult<()> {
                let rows = events
                    .iter()
                    .map(|e| Ok((e.id.to_string(), e.session_id.to_string(), serde_json::to_string(e).map_err(json_err)?)))
                    .collect::<StoreResult<Vec<_>>>()?;
                let mut tx = self.write.begin().await.map_err(crate::db_error("append_restore_events"))?;
                // Rows in the order given, so their event order is; a few hundred a statement
                // keeps every backend's bound-parameter limit far away.
                for chunk in rows.chunks(EVENTS_PER_INSERT) {
                    sqlx::QueryBuilder::<$db>::new("INSERT INTO restore_events (id, session_id, document) ")
                        .push_values(chunk, |mut row, (id, session, document)| {
                            row.push_bind(id).push_bind(session).push_bind(document);
                        })
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(crate::db_error("append_restore_events"))?;
                }
                tx.commit().await.map_err(crate::db_error("append_restore_events"))?;
                Ok(())
            }

            async fn update_restore_event(
                &self,
                e: &m365backup_core::restore::model::RestoreEvent,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE restore_events SET document = $2 WHERE id = $1")
                    .bind(e.id.to_string())
                    .bind(serde_json::to_string(e).map_err(json_err)?)
                    .execute(&self.write)
                    .await
                    .map_err(crate::db_error("update_restore_event"))?;
                Ok(())
            }

            async fn fail_running_restore_events(
                &self,
                message: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<u64> {
                use m365backup_core::restore::model::{EventStatus, RestoreEvent};
                // Events are documents: the text filter narrows the scan, the parsed status
                // decides.
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT event_order, document FROM restore_events WHERE document LIKE '%\"status\":\"Running\"%'",
                )
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("fail_running_restore_events"))?;
                let mut failed = 0;
                for row in rows {
                    let mut e: RestoreEvent = restore_event_from(row)?;
                    if e.status != EventStatus::Running {
                        continue;
                    }
                    e.status = EventStatus::Failed;
                    e.message = message.to_owned();
                    e.end_time = Some(now);
                    self.update_restore_event(&e).await?;
                    failed += 1;
                }
                Ok(failed)
            }

            async fn get_restore_event(
                &self,
                id: m365backup_core::restore::model::RestoreEventId,
            ) -> StoreResult<Option<m365backup_core::restore::model::RestoreEvent>> {
                let row: Option<(i64, String)> =
                    sqlx::query_as("SELECT event_order, document FROM restore_events WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_optional(&self.read)
                        .await
                        .map_err(crate::db_error("get_restore_event"))?;
                row.map(restore_event_from).transpose()
            }

            async fn list_restore_events(
                &self,
                session: m365backup_core::restore::model::RestoreSessionId,
                offset: u64,
                limit: u64,
            ) -> StoreResult<Paged<m365backup_core::restore::model::RestoreEvent>> {
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM restore_events WHERE session_id = $1")
                        .bind(session.to_string())
                        .fetch_one(&self.read)
                        .await
                        .map_err(crate::db_error("list_restore_events"))?;
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT event_order, document FROM restore_events WHERE session_id = $1
                     ORDER BY event_order LIMIT $2 OFFSET $3",
                )
                .bind(session.to_string())
                .bind(limit as i64)
                .bind(offset as i64)
                .fetch_all(&self.read)
                .await
                .map_err(crate::db_error("list_restore_events"))?;
                Ok(Paged {
                    items: rows
                        .into_iter()
                        .map(restore_event_from)
                        .collect::<StoreResult<_>>()?,
                    total: total as u64,
                })
            }
        }

        /// At most this many events in one INSERT (three bound parameters each).
        const EVENTS_PER_INSERT: usize = 250;

        /// A restore event from its row: the document, and its order from the row's column
        /// (documents written by earlier versions hold the same number).
        fn restore_event_from(
            (order, document): (i64, String),
        ) -> StoreResult<m365backup_core::restore::model::RestoreEvent> {
            let mut event: m365backup_core::restore::model::RestoreEvent =
                serde_json::from_str(&document).map_err(json_err)?;
            event.order = order;
            Ok(event)
        }

        async fn insert_item(
            tx: &mut sqlx::Transaction<'_, $db>,
            job: JobId,
            list: ItemList,
            position: i64,
            item: &BackupItem,
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO job_items (id, job_id, excluded, position, item) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(item.id.to_string())
            .bind(job.to_string())
            .bind(excluded(list))
            .bind(position)
            .bind(serde_json::to_string(item).map_err(json_err)?)
            .execute(&mut **tx)
            .await
            .map_err(crate::db_error("insert_item"))?;
            Ok(())
        }

        async fn write_session(
            tx: &mut sqlx::Transaction<'_, $db>,
            session: &JobSession,
        ) -> StoreResult<()> {
            sqlx::query(
                "UPDATE job_sessions SET end_time = $2, retry_count = $3, progress = $4,
                   status = $5, details = $6, statistics = $7 WHERE id = $1",
            )
            .bind(session.id.to_string())
            .bind(session.end_time.map(to_millis))
            .bind(i64::from(session.retry_count))
            .bind(i64::from(session.progress))
            .bind(enum_text(&session.status))
            .bind(&session.details)
            .bind(serde_json::to_string(&session.statistics).map_err(json_err)?)
            .execute(&mut **tx)
            .await
            .map_err(crate::db_error("write_session"))?;
            Ok(())
        }
    };
}

pub(crate) use impl_job_store;
