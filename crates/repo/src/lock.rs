//! Repository locks, kept in the repository itself so they hold across processes and servers:
//! a writer holds a shared lock, prune an exclusive one. A lock is a sealed file under `locks/`
//! refreshed every few minutes; one not refreshed for [`STALE_AFTER`], or held by a process of
//! this host that no longer exists, is stale and ignored (prune removes it).
//!
//! Taking a lock writes it first and then lists the others; two contenders that race both see
//! each other and the exclusive one gives way, so a writer and prune never overlap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::crypto::Keys;
use crate::error::{RepoError, RepoResult};
use crate::format::{LOCKS_DIR, LOCK_AAD};

pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    pub exclusive: bool,
    pub hostname: String,
    pub pid: u32,
    /// What holds it (e.g. `writer`, `prune`).
    pub purpose: String,
    pub created: DateTime<Utc>,
    pub refreshed: DateTime<Utc>,
}

impl LockInfo {
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let age = now.signed_duration_since(self.refreshed);
        if age.to_std().unwrap_or_default() > STALE_AFTER {
            return true;
        }
        self.hostname == hostname() && !process_exists(self.pid)
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable and its length is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A held lock; released (its file deleted) when dropped.
pub struct LockGuard {
    backend: Backend,
    key: String,
    refresher: tokio::task::JoinHandle<()>,
    /// [`LockGuard::release`] deleted the file already: dropping has only the refresher to stop.
    released: bool,
}

impl LockGuard {
    /// Releases the lock now, waiting for its file to be gone.
    pub async fn release(mut self) -> RepoResult<()> {
        self.refresher.abort();
        let deleted = self.backend.delete(&self.key).await;
        // Dropped, not forgotten: forgetting leaked the refresher task and the backend with
        // every release (found by the soak bench).
        self.released = true;
        deleted
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.refresher.abort();
        if self.released {
            return;
        }
        let backend = self.backend.clone();
        let key = self.key.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = backend.delete(&key).await;
            });
        }
    }
}

async fn write_lock(backend: &Backend, keys: &Keys, key: &str, info: &LockInfo) -> RepoResult<()> {
    let json = serde_json::to_vec(info).map_err(RepoError::encode("lock"))?;
    let sealed = keys
        .seal_file(LOCK_AAD, &json)
        .map_err(|e| RepoError::io("compressing the lock", e))?;
    backend.put(key, Bytes::from(sealed)).await
}

/// Every lock in the repository, with its file name; unreadable ones are reported as stale
/// exclusive locks so they are looked at, never silently ignored.
pub async fn list_locks(backend: &Backend, keys: &Keys) -> RepoResult<Vec<(String, LockInfo)>> {
    let mut out = Vec::new();
    for entry in backend.list(LOCKS_DIR).await? {
        let key = format!("{LOCKS_DIR}/{}", entry.name);
        let Some(bytes) = backend.get_optional(&key).await? else {
            continue;
        };
        match keys
            .open_file(LOCK_AAD, &bytes)
            .ok()
            .and_then(|plain| serde_json::from_slice::<LockInfo>(&plain).ok())
        {
            Some(info) => out.push((key, info)),
            None => tracing::warn!(lock = %key, "unreadable lock file"),
        }
    }
    Ok(out)
}

/// Takes a lock, or says who holds a conflicting one.
pub async fn acquire(
    backend: &Backend,
    keys: &Arc<Keys>,
    exclusive: bool,
    purpose: &str,
) -> RepoResult<LockGuard> {
    let now = Utc::now();
    let info = LockInfo {
        exclusive,
        hostname: hostname(),
        pid: std::process::id(),
        purpose: purpose.to_owned(),
        created: now,
        refreshed: now,
    };
    let key = format!("{LOCKS_DIR}/{}", uuid::Uuid::new_v4().simple());
    write_lock(backend, keys, &key, &info).await?;
    let conflicts: Vec<LockInfo> = list_locks(backend, keys)
        .await?
        .into_iter()
        .filter(|(k, other)| *k != key && !other.is_stale(now) && (exclusive || other.exclusive))
        .map(|(_, other)| other)
        .collect();
    if let Some(other) = conflicts.first() {
        let _ = backend.delete(&key).await;
        let what = if other.exclusive {
            format!(
                "{} (exclusive) by {} pid {} since {}",
                other.purpose, other.hostname, other.pid, other.created
            )
        } else {
            format!(
                "{} writer(s) active, e.g. {} on {} pid {} since {}",
                conflicts.len(),
                other.purpose,
                other.hostname,
                other.pid,
                other.created
            )
        };
        return Err(RepoError::Locked(what));
    }
    let refresher = {
        let backend = backend.clone();
        let keys = keys.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut info = info;
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                info.refreshed = Utc::now();
                if let Err(e) = write_lock(&backend, &keys, &key, &info).await {
                    tracing::warn!(error = %m365backup_core::Chain(&e), "refreshing a repository lock failed");
                }
            }
        })
    };
    Ok(LockGuard {
        backend: backend.clone(),
        key,
        refresher,
        released: false,
    })
}

/// Deletes stale locks; returns how many.
pub async fn remove_stale(backend: &Backend, keys: &Keys) -> RepoResult<usize> {
    let now = Utc::now();
    let mut removed = 0;
    for (key, info) in list_locks(backend, keys).await? {
        if info.is_stale(now) {
            backend.delete(&key).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Location;
    use crate::crypto::new_master_key;

    /// A released lock lets go of everything it held: its file, and the backend (a release
    /// that forgot the guard kept one backend handle per lock alive for good).
    #[tokio::test]
    async fn released_locks_hold_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&Location::Local {
            path: dir.path().to_owned(),
        })
        .unwrap();
        let keys = Arc::new(Keys::from_master(&new_master_key()));
        let handles = backend.handles();
        for _ in 0..5 {
            let guard = acquire(&backend, &keys, false, "test").await.unwrap();
            guard.release().await.unwrap();
        }
        let exclusive = acquire(&backend, &keys, true, "test").await.unwrap();
        exclusive.release().await.unwrap();
        assert!(list_locks(&backend, &keys).await.unwrap().is_empty());
        // The refreshers were aborted: give them time to end.
        for _ in 0..100 {
            if backend.handles() == handles {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(backend.handles(), handles);
    }
}
