//! The simulated tenant: directory objects, sites and drives with their items, and who may read
//! what.
//!
//! A tenant is generated deterministically from a [`TenantSpec`] (`generate.rs`), optionally
//! extended with explicitly listed users and groups (fixed ids), e.g. from a JSON/TOML file.
//! Drives and their change logs are in `drive.rs`. File content is not stored: see
//! [`crate::content`].

mod drive;
mod generate;
mod spec;

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use drive::{
    item_id, ChangeError, DeltaPage, DriveState, FileInfo, FileVersion, Grant, Item, LinkScope,
    Role,
};
pub use spec::{AdminGrant, GroupSpec, TenantSpec, UserSpec};

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
}

/// A user or a group, as a site-collection administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    User(usize),
    Group(usize),
}

#[derive(Debug)]
pub struct Site {
    /// Graph's composite site id: `{hostname},{siteCollectionId},{webId}`.
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub web_url: String,
    pub created: DateTime<Utc>,
    pub drives: Vec<usize>,
    /// Users of the site's owners and members groups: they can read its libraries.
    pub owners: Vec<usize>,
    pub members: Vec<usize>,
    pub admins: Vec<Member>,
}

/// A site by id: a SharePoint site, or a user's personal site (their OneDrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// Name of the security group whose members serve as backup accounts.
pub const BACKUP_ACCOUNTS_GROUP: &str = "Backup Accounts";

/// Password of a generated user: documented, derived from its name and the seed.
pub fn generated_password(local_part: &str, seed: u64) -> String {
    format!("Pass-{local_part}-{seed}!")
}

impl Tenant {
    /// By object id or user principal name (case-insensitive), as Graph's `/users/{id}`.
    pub fn user(&self, id_or_upn: &str) -> Option<(usize, &User)> {
        let i = *self.user_index.get(&id_or_upn.to_lowercase())?;
        Some((i, &self.users[i]))
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        let id: Uuid = id.parse().ok()?;
        self.group_index.get(&id).map(|&i| &self.groups[i])
    }

    /// A SharePoint site or a personal site, by its composite id (case-insensitive).
    pub fn site(&self, id: &str) -> Option<SiteRef> {
        self.site_index.get(&id.to_lowercase()).copied()
    }

    pub fn drive(&self, id: &str) -> Option<&Drive> {
        self.drive_index.get(id).map(|&i| &self.drives[i])
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
        let site = match drive.owner {
            DriveOwner::User(u) => SiteRef::Personal(u),
            DriveOwner::Site(s) => SiteRef::Team(s),
        };
        self.can_read_site(user, site)
    }
}

#[cfg(test)]
mod tests;
