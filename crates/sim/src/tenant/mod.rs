//! The simulated tenant: directory objects, sites and drives with their items, and who may read
//! what.
//!
//! A tenant is generated deterministically from a [`TenantSpec`] (`generate.rs`), optionally
//! extended with explicitly listed users and groups (fixed ids), e.g. from a JSON/TOML file.
//! Items are in `item.rs`, drives and their change logs in `drive.rs`, the changes clients and
//! tests make in `writes.rs` (naming rules in `names.rs`). Generated file content is not
//! stored: see [`crate::content`]. What changes at run time besides drives (users removed,
//! access changed) the tenant keeps aside ([`Tenant::set_gone`], [`Tenant::set_access`]).

mod drive;
mod generate;
mod item;
mod names;
mod spec;
mod writes;

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use drive::{DeltaPage, DriveState};
pub use item::{item_id, FileInfo, FileVersion, Grant, Item, LinkScope, Permission, Role};
pub use names::MAX_PATH_CHARS;
pub use spec::{AdminGrant, GroupSpec, TenantSpec, UserSpec};
pub use writes::{ChangeError, Conflict, Placed, Times};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// securityEnabled, not mail-enabled, no groupTypes.
    Security,
    /// groupTypes ["Unified"], mail-enabled.
    Microsoft365,
    /// Mail-enabled, not security-enabled.
    Distribution,
}

#[derive(Debug)]
pub struct User {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    pub password: String,
    pub account_enabled: bool,
    pub created: DateTime<Utc>,
    /// Index of the user's OneDrive in [`Tenant::drives`].
    pub drive: usize,
    /// The OneDrive's site collection (`…-my.sharepoint.com/personal/…`).
    pub personal_site: PersonalSite,
    /// Groups the user is a member of (indexes into [`Tenant::groups`]).
    pub groups: Vec<usize>,
}

#[derive(Debug)]
pub struct PersonalSite {
    pub id: String,
    pub web_url: String,
    /// Site-collection administrators besides the owner.
    pub admins: Vec<Member>,
}

#[derive(Debug)]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub mail_nickname: String,
    pub kind: GroupKind,
    pub members: Vec<usize>,
    pub created: DateTime<Utc>,
    /// A Microsoft 365 group's team site (index into [`Tenant::sites`]).
    pub site: Option<usize>,
}

/// A user or a group, as a site-collection administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    User(usize),
    Group(usize),
}

/// A SharePoint site: a site collection's root site (a team site, a Microsoft 365 group's site)
/// or a sub-site of another site.
#[derive(Debug)]
pub struct Site {
    /// Graph's composite site id: `{hostname},{siteCollectionId},{webId}` (a sub-site shares
    /// its collection's id).
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub web_url: String,
    pub created: DateTime<Utc>,
    pub drives: Vec<usize>,
    /// Users of the site's owners and members groups: they can read and change its libraries
    /// (a sub-site inherits its parent's).
    pub owners: Vec<usize>,
    pub members: Vec<usize>,
    /// Site-collection administrators (of the collection a sub-site belongs to).
    pub admins: Vec<Member>,
    /// The site this one is a sub-site of.
    pub parent: Option<usize>,
    pub subsites: Vec<usize>,
    /// The Microsoft 365 group whose team site this is.
    pub group: Option<usize>,
}

/// A site by id: a SharePoint site, or a user's personal site (their OneDrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteRef {
    Team(usize),
    Personal(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveOwner {
    User(usize),
    Site(usize),
}

#[derive(Debug)]
pub struct Drive {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: DriveOwner,
    pub web_url: String,
    pub state: RwLock<DriveState>,
}

#[derive(Debug, Clone)]
pub struct AppRegistration {
    pub client_id: Uuid,
    pub client_secret: String,
    pub display_name: String,
}

#[derive(Debug)]
pub struct Tenant {
    pub id: Uuid,
    pub domain: String,
    pub display_name: String,
    pub created: DateTime<Utc>,
    /// Licences: Microsoft's app and tenant budgets scale with them.
    pub licenses: u64,
    pub app: AppRegistration,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub sites: Vec<Site>,
    pub drives: Vec<Drive>,
    user_index: HashMap<String, usize>,
    group_index: HashMap<Uuid, usize>,
    site_index: HashMap<String, SiteRef>,
    drive_index: HashMap<String, usize>,
    changes: RwLock<Changes>,
}

/// What a user may do on a site, when a test says so rather than the site's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    None,
    Read,
    Write,
}

/// Run-time changes to the directory and to access.
#[derive(Debug, Default)]
struct Changes {
    /// Users removed from the directory: unknown to sign-in and Graph, their OneDrive gone.
    gone_users: HashSet<usize>,
    access: HashMap<(SiteRef, usize), Access>,
}

/// Name of the security group whose members serve as backup accounts.
pub const BACKUP_ACCOUNTS_GROUP: &str = "Backup Accounts";

/// Password of a generated user: documented, derived from its name and the seed.
pub fn generated_password(local_part: &str, seed: u64) -> String {
    format!("Pass-{local_part}-{seed}!")
}

impl Tenant {
    fn changes(&self) -> std::sync::RwLockReadGuard<'_, Changes> {
        self.changes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn changes_mut(&self) -> std::sync::RwLockWriteGuard<'_, Changes> {
        self.changes.write().unwrap_or_else(|p| p.into_inner())
    }

    /// By object id or user principal name (case-insensitive), as Graph's `/users/{id}`; a
    /// removed user is not found.
    pub fn user(&self, id_or_upn: &str) -> Option<(usize, &User)> {
        self.user_any(id_or_upn).filter(|(i, _)| !self.is_gone(*i))
    }

    /// A user, removed or not.
    pub fn user_any(&self, id_or_upn: &str) -> Option<(usize, &User)> {
        let i = *self.user_index.get(&id_or_upn.to_lowercase())?;
        Some((i, &self.users[i]))
    }

    pub fn is_gone(&self, user: usize) -> bool {
        self.changes().gone_users.contains(&user)
    }

    /// Removes a user from the directory (`gone = true`) or brings it back.
    pub fn set_gone(&self, user: usize, gone: bool) {
        let mut c = self.changes_mut();
        if gone {
            c.gone_users.insert(user);
        } else {
            c.gone_users.remove(&user);
        }
    }

    /// Overrides what `user` may do on `site` (`None`: back to the site's membership).
    pub fn set_access(&self, site: SiteRef, user: usize, access: Option<Access>) {
        let mut c = self.changes_mut();
        match access {
            Some(a) => c.access.insert((site, user), a),
            None => c.access.remove(&(site, user)),
        };
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        let id: Uuid = id.parse().ok()?;
        self.group_index.get(&id).map(|&i| &self.groups[i])
    }

    /// A SharePoint site or a personal site, by its composite id (case-insensitive); a
    /// removed user's personal site is not found.
    pub fn site(&self, id: &str) -> Option<SiteRef> {
        self.site_index
            .get(&id.to_lowercase())
            .copied()
            .filter(|s| !matches!(s, SiteRef::Personal(u) if self.is_gone(*u)))
    }

    /// A drive by id, as Graph finds it: a removed user's OneDrive is not found.
    pub fn drive(&self, id: &str) -> Option<&Drive> {
        self.drive_any(id)
            .filter(|d| !matches!(d.owner, DriveOwner::User(u) if self.is_gone(u)))
    }

    /// A drive by id, its owner removed or not.
    pub fn drive_any(&self, id: &str) -> Option<&Drive> {
        self.drive_position(id).map(|i| &self.drives[i])
    }

    /// Where a drive is in [`Tenant::drives`].
    pub fn drive_position(&self, id: &str) -> Option<usize> {
        self.drive_index.get(id).copied()
    }

    /// The site a drive belongs to.
    pub fn drive_site(&self, drive: &Drive) -> SiteRef {
        match drive.owner {
            DriveOwner::User(u) => SiteRef::Personal(u),
            DriveOwner::Site(s) => SiteRef::Team(s),
        }
    }

    /// A site's drives: a SharePoint site's libraries, or the owner's OneDrive.
    pub fn site_drives(&self, site: SiteRef) -> Vec<usize> {
        match site {
            SiteRef::Team(s) => self.sites[s].drives.clone(),
            SiteRef::Personal(u) => vec![self.users[u].drive],
        }
    }

    pub fn backup_accounts_group(&self) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.display_name == BACKUP_ACCOUNTS_GROUP)
    }

    /// Whether `user` is one of `admins`, directly or through a group.
    fn is_among(&self, user: usize, admins: &[Member]) -> bool {
        admins.iter().any(|m| match *m {
            Member::User(u) => u == user,
            Member::Group(g) => self.users[user].groups.contains(&g),
        })
    }

    /// What a delegated token of `user` may read of a site: a SharePoint site whose owners or
    /// members include the user, or where the user (or one of its groups) is site-collection
    /// administrator; a personal site only its owner and its administrators.
    pub fn can_read_site(&self, user: usize, site: SiteRef) -> bool {
        match self.changes().access.get(&(site, user)) {
            Some(a) => *a != Access::None,
            None => self.is_member(user, site),
        }
    }

    /// What a delegated token of `user` may change: the same people (owners, members,
    /// administrators) unless a test made the user a reader only.
    pub fn can_write_site(&self, user: usize, site: SiteRef) -> bool {
        match self.changes().access.get(&(site, user)) {
            Some(a) => *a == Access::Write,
            None => self.is_member(user, site),
        }
    }

    fn is_member(&self, user: usize, site: SiteRef) -> bool {
        match site {
            SiteRef::Team(s) => {
                let s = &self.sites[s];
                s.owners.contains(&user)
                    || s.members.contains(&user)
                    || self.is_among(user, &s.admins)
            }
            SiteRef::Personal(owner) => {
                owner == user || self.is_among(user, &self.users[owner].personal_site.admins)
            }
        }
    }

    /// What a delegated token of `user` may read of a drive: its site's rule.
    pub fn can_read_drive(&self, user: usize, drive: &Drive) -> bool {
        self.can_read_site(user, self.drive_site(drive))
    }

    pub fn can_write_drive(&self, user: usize, drive: &Drive) -> bool {
        self.can_write_site(user, self.drive_site(drive))
    }
}

#[cfg(test)]
mod tests;
