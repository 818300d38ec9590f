//! The simulator in-process, for tests that hold a [`crate::RunningSim`] (or the server's demo
//! tenant): change drives between backup runs, inject faults, remove users or access, and read
//! the truth (every live item, each file's content and versions) to compare a backup or a
//! restore with. The `/_sim/` HTTP control API ([`crate::control`]) is a thin layer over this.
//!
//! ```no_run
//! # fn demo(sim: &m365sim::RunningSim) -> Result<(), m365sim::SimError> {
//! use m365sim::{FaultKind, ItemFault};
//! let d = sim.onedrive("user1@contoso1.onmicrosoft.com")?;
//! let folder = d.add_folder(None, "Projects")?;
//! let file = d.add_file(Some(&folder), "plan.docx", 50_000)?;
//! d.modify_file(&file, 60_000)?; // a new version
//! d.inject_fault(&file, ItemFault::times(FaultKind::NotFound, 1));
//! for entry in d.tree() {
//!     println!("{} {:?}", entry.path, entry.sha256());
//! }
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};

use crate::content::{Content, ContentSource};
use crate::faults::{ItemFault, UploadFault};
use crate::tenant::{
    Access, ChangeError, Conflict, Drive, DriveState, Grant, Item, Permission, Role, Times,
};
use crate::{Behaviour, SharedSim, ThrottleConfig};

/// Why an in-process request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no drive '{0}'")]
    NoSuchDrive(String),
    #[error("no user '{0}'")]
    NoSuchUser(String),
    #[error("no site '{0}'")]
    NoSuchSite(String),
    #[error("no live item '{0}'")]
    NoSuchItem(String),
    #[error("item '{0}' has no version {1}")]
    NoSuchVersion(String, u64),
    #[error("item '{0}' is a folder")]
    NotAFile(String),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("uploaded content: {0}")]
    Io(#[from] std::io::Error),
}

/// One live item of a drive, as the tenant holds it.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    pub id: String,
    /// `None` for the root folder.
    pub parent_id: Option<String>,
    pub name: String,
    /// From the drive's root: `/Folder/file.docx`; the root is `/`.
    pub path: String,
    pub is_folder: bool,
    /// Bytes of a file's current version (0 for folders).
    pub size: u64,
    /// A file's current version number (Graph's version id is `{n}.0`).
    pub version: Option<u64>,
    /// `file.hashes.quickXorHash`, as Graph lists it.
    pub quick_xor_hash: Option<String>,
    /// `fileSystemInfo`.
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Explicit permissions (the item is shared when there are any).
    pub permissions: Vec<Permission>,
    /// A file's current content: its bytes and hashes on demand.
    pub content: Option<Content>,
}

impl TreeEntry {
    /// SHA-256 (hex) of a file's current content.
    pub fn sha256(&self) -> Option<String> {
        self.content.as_ref().map(Content::sha256_hex)
    }
}

/// One version of a file, newest first in [`DriveHandle::versions`].
#[derive(Debug, Clone)]
pub struct VersionEntry {
    pub version: u64,
    /// Graph's version id: `3.0`.
    pub id: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub content: Content,
}

fn rng() -> rand::rngs::OsRng {
    rand::rngs::OsRng
}

/// One drive of the tenant, in-process. Cheap to clone; changes are made by nobody in
/// particular unless [`DriveHandle::by`] names a user.
#[derive(Clone)]
pub struct DriveHandle {
    sim: SharedSim,
    drive: usize,
    by: Option<usize>,
}

/// The control of a user's OneDrive, by principal name or id (removed users included).
pub fn onedrive(sim: &SharedSim, user: &str) -> Result<DriveHandle, SimError> {
    let (_, u) = sim
        .tenant
        .user_any(user)
        .ok_or_else(|| SimError::NoSuchUser(user.to_owned()))?;
    Ok(DriveHandle {
        sim: sim.clone(),
        drive: u.drive,
        by: None,
    })
}

impl DriveHandle {
    /// A drive by id (a removed user's OneDrive included).
    pub fn new(sim: &SharedSim, id: &str) -> Result<Self, SimError> {
        let drive = sim
            .tenant
            .drive_position(id)
            .ok_or_else(|| SimError::NoSuchDrive(id.to_owned()))?;
        Ok(Self {
            sim: sim.clone(),
            drive,
            by: None,
        })
    }

    fn d(&self) -> &Drive {
        &self.sim.tenant.drives[self.drive]
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, DriveState> {
        self.d().state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, DriveState> {
        self.d().state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn id(&self) -> &str {
        &self.d().id
    }

    pub fn name(&self) -> &str {
        &self.d().name
    }

    pub fn root_id(&self) -> String {
        self.read().root_id().to_owned()
    }

    /// The same drive, with changes made by `user` (principal name): `lastModifiedBy`.
    pub fn by(&self, user: &str) -> Result<Self, SimError> {
        let (u, _) = self
            .sim
            .tenant
            .user_any(user)
            .ok_or_else(|| SimError::NoSuchUser(user.to_owned()))?;
        Ok(Self {
            by: Some(u),
            ..self.clone()
        })
    }

    fn parent(&self, state: &DriveState, parent: Option<&str>) -> String {
        parent.map_or_else(|| state.root_id().to_owned(), str::to_owned)
    }

    /// Adds a folder under `parent` (the root when `None`); its id.
    pub fn add_folder(&self, parent: Option<&str>, name: &str) -> Result<String, SimError> {
        let mut state = self.write();
        let parent = self.parent(&state, parent);
        Ok(state.add_folder(&mut rng(), &parent, name, Utc::now(), self.by)?)
    }

    /// Adds a file of `size` generated bytes; its id.
    pub fn add_file(
        &self,
        parent: Option<&str>,
        name: &str,
        size: u64,
    ) -> Result<String, SimError> {
        let mut state = self.write();
        let parent = self.parent(&state, parent);
        Ok(state.add_file(&mut rng(), &parent, name, size, Utc::now(), self.by)?)
    }

    /// Adds a file holding exactly `bytes`; its id.
    pub fn add_file_bytes(
        &self,
        parent: Option<&str>,
        name: &str,
        bytes: &[u8],
    ) -> Result<String, SimError> {
        let blob = self.sim.blobs.put(bytes)?;
        let mut state = self.write();
        let parent = self.parent(&state, parent);
        let placed = state.put_file(
            &mut rng(),
            &parent,
            name,
            blob.size,
            ContentSource::Stored(blob.id),
            Conflict::Fail,
            Times::default(),
            Utc::now(),
            self.by,
        )?;
        Ok(state.items[placed.index].id.clone())
    }

    /// New generated content of `size` bytes: a new version.
    pub fn modify_file(&self, item: &str, size: u64) -> Result<(), SimError> {
        Ok(self.write().modify_file(item, size, Utc::now(), self.by)?)
    }

    /// New content, exactly `bytes`: a new version.
    pub fn modify_file_bytes(&self, item: &str, bytes: &[u8]) -> Result<(), SimError> {
        let blob = self.sim.blobs.put(bytes)?;
        let content = ContentSource::Stored(blob.id);
        Ok(self
            .write()
            .replace_content(item, blob.size, content, None, Utc::now(), self.by)?)
    }

    pub fn rename(&self, item: &str, name: &str) -> Result<(), SimError> {
        self.rename_and_move(item, Some(name), None)
    }

    /// Moves an item (a folder with everything in it) into folder `parent`.
    pub fn move_item(&self, item: &str, parent: &str) -> Result<(), SimError> {
        self.rename_and_move(item, None, Some(parent))
    }

    /// Renames and/or moves an item in one change (a taken name is refused).
    pub fn rename_and_move(
        &self,
        item: &str,
        name: Option<&str>,
        parent: Option<&str>,
    ) -> Result<(), SimError> {
        Ok(self
            .write()
            .rename_or_move(item, name, parent, Utc::now())?)
    }

    /// Sets `fileSystemInfo` (either date, or both).
    pub fn set_times(
        &self,
        item: &str,
        created: Option<DateTime<Utc>>,
        modified: Option<DateTime<Utc>>,
    ) -> Result<(), SimError> {
        let times = Times { created, modified };
        Ok(self
            .write()
            .update(item, None, None, times, Conflict::Fail, Utc::now())?)
    }

    /// Restores version `version` of a file as a new current version.
    pub fn restore_version(&self, item: &str, version: u64) -> Result<(), SimError> {
        Ok(self
            .write()
            .restore_version(item, version, Utc::now(), self.by)?)
    }

    /// Deletes an item; a folder with everything in it.
    pub fn delete(&self, item: &str) -> Result<(), SimError> {
        Ok(self.write().delete_item(item, Utc::now())?)
    }

    /// Replaces an item's explicit permissions (`[]`: no longer shared).
    pub fn share(&self, item: &str, grants: Vec<Grant>) -> Result<(), SimError> {
        Ok(self.write().set_grants(item, grants)?)
    }

    /// Shares an item with a user; the permission's id.
    pub fn share_with(&self, item: &str, user: &str, role: Role) -> Result<String, SimError> {
        let (u, _) = self
            .sim
            .tenant
            .user_any(user)
            .ok_or_else(|| SimError::NoSuchUser(user.to_owned()))?;
        let (permission, _) = self.write().grant(item, Grant::User { user: u, role })?;
        Ok(permission.id)
    }

    /// Every delta token of the drive issued so far answers `410 Gone` from now on.
    pub fn force_resync(&self) {
        self.write().epoch += 1;
    }

    /// Injects a fault on an item's content (it replaces one on the same version).
    pub fn inject_fault(&self, item: &str, fault: ItemFault) {
        self.sim.faults.set(self.id(), item, fault);
    }

    /// Clears the faults of an item, or of the whole drive (upload faults included).
    pub fn clear_faults(&self, item: Option<&str>) {
        self.sim.faults.clear(self.id(), item);
    }

    /// Upload sessions for a file named `name` expire once they have `after_bytes` (the next
    /// `times` sessions, or all until cleared).
    pub fn expire_uploads_of(&self, name: &str, after_bytes: u64, times: Option<u32>) {
        self.sim.faults.set_upload(
            self.id(),
            UploadFault {
                name: name.to_owned(),
                expire_after_bytes: after_bytes,
                times,
            },
        );
    }

    fn entry_at(&self, state: &DriveState, i: usize) -> TreeEntry {
        let item: &Item = &state.items[i];
        let content = item
            .file
            .and_then(|f| self.sim.content(self.id(), item, f.content, f.size));
        TreeEntry {
            id: item.id.clone(),
            parent_id: item.parent.clone(),
            name: item.name.clone(),
            path: state.path(i),
            is_folder: item.is_folder(),
            size: item.file.map_or(0, |f| f.size),
            version: item.file.map(|f| f.version),
            quick_xor_hash: content.as_ref().map(Content::quick_xor_hash),
            created: item.created,
            modified: item.modified,
            permissions: item.grants.clone(),
            content,
        }
    }

    /// Every live item, the root first, sorted by path.
    pub fn tree(&self) -> Vec<TreeEntry> {
        let state = self.read();
        let mut entries: Vec<TreeEntry> = (0..state.items.len())
            .filter(|&i| !state.items[i].deleted)
            .map(|i| self.entry_at(&state, i))
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    }

    /// A live item by id.
    pub fn entry(&self, item: &str) -> Option<TreeEntry> {
        let state = self.read();
        state.live(item).map(|i| self.entry_at(&state, i))
    }

    /// A live item by path from the root (`/Folder/file.docx`, case-insensitive).
    pub fn find(&self, path: &str) -> Option<TreeEntry> {
        let state = self.read();
        let mut at = 0;
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            at = state.child(at, seg)?;
        }
        Some(self.entry_at(&state, at))
    }

    /// Every version of a live file, newest (the current one) first.
    pub fn versions(&self, item: &str) -> Result<Vec<VersionEntry>, SimError> {
        let state = self.read();
        let i = state
            .live(item)
            .ok_or_else(|| SimError::NoSuchItem(item.to_owned()))?;
        let it = &state.items[i];
        if it.is_folder() {
            return Err(SimError::NotAFile(item.to_owned()));
        }
        it.versions()
            .into_iter()
            .map(|v| {
                let content = self
                    .sim
                    .content(self.id(), it, v.content, v.size)
                    .ok_or_else(|| SimError::NoSuchVersion(item.to_owned(), v.version))?;
                Ok(VersionEntry {
                    version: v.version,
                    id: format!("{}.0", v.version),
                    size: v.size,
                    modified: v.modified,
                    content,
                })
            })
            .collect()
    }

    /// The content of a file's version (the current one when `None`).
    pub fn content(&self, item: &str, version: Option<u64>) -> Result<Content, SimError> {
        let versions = self.versions(item)?;
        match version {
            None => versions.into_iter().next(),
            Some(n) => versions.into_iter().find(|v| v.version == n),
        }
        .map(|v| v.content)
        .ok_or_else(|| SimError::NoSuchVersion(item.to_owned(), version.unwrap_or(0)))
    }
}

/// The tenant in-process: users, access, upload sessions, behaviour and throttling.
#[derive(Clone)]
pub struct TenantHandle {
    sim: SharedSim,
}

impl TenantHandle {
    pub fn new(sim: &SharedSim) -> Self {
        Self { sim: sim.clone() }
    }

    fn user(&self, user: &str) -> Result<usize, SimError> {
        self.sim
            .tenant
            .user_any(user)
            .map(|(i, _)| i)
            .ok_or_else(|| SimError::NoSuchUser(user.to_owned()))
    }

    /// Removes a user from the directory: sign-in fails (AADSTS50034), `/users/{id}` and their
    /// OneDrive answer 404, listings leave them out.
    pub fn remove_user(&self, user: &str) -> Result<(), SimError> {
        let u = self.user(user)?;
        self.sim.tenant.set_gone(u, true);
        Ok(())
    }

    /// Brings a removed user (and their OneDrive) back.
    pub fn restore_user(&self, user: &str) -> Result<(), SimError> {
        let u = self.user(user)?;
        self.sim.tenant.set_gone(u, false);
        Ok(())
    }

    /// What `user` may do on a site (by composite id, a personal site's included), whatever
    /// its membership says; `None` goes back to the membership.
    pub fn set_site_access(
        &self,
        site: &str,
        user: &str,
        access: Option<Access>,
    ) -> Result<(), SimError> {
        let s = self
            .sim
            .tenant
            .site(site)
            .ok_or_else(|| SimError::NoSuchSite(site.to_owned()))?;
        let u = self.user(user)?;
        self.sim.tenant.set_access(s, u, access);
        Ok(())
    }

    /// [`Self::set_site_access`] for the site a drive belongs to.
    pub fn set_drive_access(
        &self,
        drive: &str,
        user: &str,
        access: Option<Access>,
    ) -> Result<(), SimError> {
        let d = self
            .sim
            .tenant
            .drive_any(drive)
            .ok_or_else(|| SimError::NoSuchDrive(drive.to_owned()))?;
        let u = self.user(user)?;
        self.sim
            .tenant
            .set_access(self.sim.tenant.drive_site(d), u, access);
        Ok(())
    }

    /// Expires every open upload session now; how many there were.
    pub fn expire_upload_sessions(&self) -> usize {
        self.sim.uploads.expire_all()
    }

    /// Upload sessions neither expired, committed nor cancelled.
    pub fn open_upload_sessions(&self) -> usize {
        self.sim.uploads.open()
    }

    /// Every active item fault: (drive, item, fault).
    pub fn faults(&self) -> Vec<(String, String, ItemFault)> {
        self.sim.faults.list()
    }

    pub fn behaviour(&self) -> Behaviour {
        self.sim.behaviour()
    }

    /// Changes how the services behave (token ages, URL and session lifetimes, limits).
    pub fn set_behaviour(&self, change: impl FnOnce(&mut Behaviour)) {
        let mut b = self
            .sim
            .behaviour
            .write()
            .unwrap_or_else(|p| p.into_inner());
        change(&mut b);
    }

    /// Changes throttling at run time.
    pub fn set_throttling(&self, change: impl FnOnce(&mut ThrottleConfig)) {
        let mut cfg = self.sim.throttler.config();
        change(&mut cfg);
        self.sim.throttler.set_config(cfg);
    }
}
