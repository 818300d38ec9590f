//! Backup accounts: extra Microsoft 365 accounts (members of a security group of the
//! organization) across which SharePoint/OneDrive traffic is spread. The v5 API only knows GET
//! and PUT, so PUT sets the organization's whole list: every entry is checked (group, membership,
//! type, uniqueness, password by a real sign-in) before one transaction replaces the list.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use uuid::Uuid;

use crate::crypto::SecretSealer;
use crate::directory::{
    composite_id, parse_composite_id, GatewayError, GroupType, MemberType, TenantAuth,
    TenantConnection,
};
use crate::directory_service::DirectoryService;
use crate::error::{CoreError, CoreResult};
use crate::ids::OrganizationId;
use crate::organization_service::OrganizationService;
use crate::store::Store;
use crate::Secret;

/// Sign-in checks of one PUT run this many at a time.
pub const SIGN_IN_CONCURRENCY: usize = 16;

/// One entry of a PUT body, as the client sent it.
#[derive(Clone, Debug)]
pub struct BackupAccountInput {
    /// Composite (or bare GUID) id of the group.
    pub group_id: String,
    pub login: String,
    pub name: Option<String>,
    pub member_type: Option<String>,
    pub password: Option<Secret>,
}

/// A backup account as stored (the password sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBackupAccount {
    pub login: String,
    pub name: String,
    /// Canonical composite id of its security group.
    pub group_id: String,
    pub is_cloud: bool,
    pub sealed_password: Vec<u8>,
}

impl StoredBackupAccount {
    pub fn login_key(&self) -> String {
        self.login.to_lowercase()
    }
}

/// What the backup engine gets: a ready sign-in for each account. The password is in memory
/// only here, inside a [`Secret`].
#[derive(Clone, Debug)]
pub struct BackupAccountSession {
    pub login: String,
    pub connection: TenantConnection,
}

pub struct BackupAccountService {
    store: Arc<dyn Store>,
    organizations: Arc<OrganizationService>,
    directory: Arc<DirectoryService>,
    sealer: Arc<SecretSealer>,
}

fn entry_error(index: usize, login: &str, problem: impl std::fmt::Display) -> CoreError {
    CoreError::Invalid(format!("Backup account [{index}] ({login}): {problem}"))
}

/// The associated data binding a sealed password to its organization and login.
fn seal_context(org: OrganizationId, login_key: &str) -> Vec<u8> {
    format!("backup-account:{org}:{login_key}").into_bytes()
}

impl BackupAccountService {
    pub fn new(
        store: Arc<dyn Store>,
        organizations: Arc<OrganizationService>,
        directory: Arc<DirectoryService>,
        sealer: Arc<SecretSealer>,
    ) -> Self {
        Self {
            store,
            organizations,
            directory,
            sealer,
        }
    }

    pub async fn list(&self, org: OrganizationId) -> CoreResult<Vec<StoredBackupAccount>> {
        self.organizations.get(org).await?;
        Ok(self.store.list_backup_accounts(org).await?)
    }

    /// Checks every entry, then replaces the organization's list in one transaction.
    pub async fn set(
        &self,
        org: OrganizationId,
        entries: Vec<BackupAccountInput>,
    ) -> CoreResult<()> {
        let (_, org_connection) = self.organizations.connection(org).await?;
        let existing: HashMap<String, StoredBackupAccount> = self
            .store
            .list_backup_accounts(org)
            .await?
            .into_iter()
            .map(|a| (a.login_key(), a))
            .collect();

        // Shape of each entry, and uniqueness of logins.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut groups_wanted: Vec<(usize, Uuid)> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let login = e.login.trim();
            if login.is_empty() {
                return Err(entry_error(i, login, "groupMember.login is required"));
            }
            match e.member_type.as_deref() {
                Some(t) if t.eq_ignore_ascii_case("User") => {}
                Some(t) => {
                    return Err(entry_error(
                        i,
                        login,
                        format!("groupMember.type is '{t}', but a backup account must be a User"),
                    ))
                }
                None => return Err(entry_error(i, login, "groupMember.type is required (User)")),
            }
            if let Some(first) = seen.insert(login.to_lowercase(), i) {
                return Err(entry_error(
                    i,
                    login,
                    format!("the login is listed twice (also as entry [{first}])"),
                ));
            }
            let gid = parse_composite_id(e.group_id.trim()).ok_or_else(|| {
                entry_error(
                    i,
                    login,
                    format!("groupMember.groupId '{}' is not a group id", e.group_id),
                )
            })?;
            let is_new = !existing.contains_key(&login.to_lowercase());
            if is_new && e.password.as_ref().is_none_or(|p| p.is_empty()) {
                return Err(entry_error(
                    i,
                    login,
                    "password is required for a new backup account",
                ));
            }
            groups_wanted.push((i, gid));
        }

        // Each group must be a security group of the organization; each login one of its users.
        let groups = self.directory.groups(org, None).await?;
        let mut members_of: HashMap<Uuid, Arc<Vec<crate::directory::GroupMember>>> = HashMap::new();
        let mut resolved = Vec::with_capacity(entries.len());
        for &(i, gid) in &groups_wanted {
            let e = &entries[i];
            let login = e.login.trim();
            let group = groups.items.iter().find(|g| g.id == gid).ok_or_else(|| {
                entry_error(
                    i,
                    login,
                    format!("group '{}' is not a group of the organization", e.group_id),
                )
            })?;
            if group.kind != GroupType::Security {
                return Err(entry_error(
                    i,
                    login,
                    format!(
                        "group '{}' is a {:?} group, not a security group",
                        group.display_name, group.kind
                    ),
                ));
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = members_of.entry(gid) {
                slot.insert(self.directory.members(org, gid, None).await?.items);
            }
            let member = members_of[&gid]
                .iter()
                .find(|m| m.login.eq_ignore_ascii_case(login))
                .ok_or_else(|| {
                    entry_error(
                        i,
                        login,
                        format!("not a member of group '{}'", group.display_name),
                    )
                })?;
            if member.kind != MemberType::User {
                return Err(entry_error(
                    i,
                    login,
                    format!(
                        "the member is a {:?}, but a backup account must be a User",
                        member.kind
                    ),
                ));
            }
            resolved.push((i, member.clone(), gid));
        }

        // Every given password must sign in; checked concurrently, reported in entry order.
        let to_check: Vec<(usize, String, Secret)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                Some((
                    i,
                    e.login.trim().to_owned(),
                    e.password.clone().filter(|p| !p.is_empty())?,
                ))
            })
            .collect();
        let gateway = self.organizations.gateway().clone();
        let mut failures: Vec<(usize, String, GatewayError)> = stream::iter(to_check)
            .map(|(i, login, password)| {
                let connection = account_connection(&org_connection, &login, password);
                let gateway = gateway.clone();
                async move {
                    gateway
                        .verify_account(&connection)
                        .await
                        .err()
                        .map(|e| (i, login, e))
                }
            })
            .buffer_unordered(SIGN_IN_CONCURRENCY)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        failures.sort_by_key(|(i, _, _)| *i);
        if let Some((i, login, e)) = failures.into_iter().next() {
            return Err(match e {
                GatewayError::Unavailable(m) => CoreError::unavailable(format!(
                    "Backup account [{i}] ({login}): the sign-in could not be checked: {m}"
                )),
                GatewayError::Failed(e) => CoreError::unavailable_because(
                    format!("Backup account [{i}] ({login}): the sign-in could not be checked"),
                    e,
                ),
                GatewayError::Throttled {
                    retry_after,
                    source,
                } => CoreError::unavailable_because(
                    format!("Backup account [{i}] ({login}): the sign-in could not be checked"),
                    source,
                )
                .retry_after(retry_after),
                other => entry_error(i, &login, format!("the sign-in failed: {other}")),
            });
        }

        // Seal new passwords, keep stored ones where none was given.
        let mut accounts = Vec::with_capacity(resolved.len());
        for (i, member, gid) in resolved {
            let e = &entries[i];
            let login_key = member.login.to_lowercase();
            let sealed_password = match e.password.as_ref().filter(|p| !p.is_empty()) {
                Some(p) => self
                    .sealer
                    .seal(&seal_context(org, &login_key), p.expose().as_bytes())?,
                None => existing[&login_key].sealed_password.clone(),
            };
            accounts.push(StoredBackupAccount {
                login: member.login.clone(),
                name: member.name.clone(),
                group_id: composite_id(gid, None),
                is_cloud: member.is_cloud,
                sealed_password,
            });
        }
        if !self.store.replace_backup_accounts(org, &accounts).await? {
            return Err(CoreError::NotFound(format!(
                "Organization '{org}' was not found."
            )));
        }
        let kept: HashSet<String> = accounts
            .iter()
            .map(StoredBackupAccount::login_key)
            .collect();
        let removed = existing.keys().filter(|k| !kept.contains(*k)).count();
        tracing::info!(organization = %org, accounts = accounts.len(), removed, "backup accounts set");
        Ok(())
    }

    /// The accounts' sign-ins for the backup engine (passwords opened here, and only here).
    pub async fn sessions(&self, org: OrganizationId) -> CoreResult<Vec<BackupAccountSession>> {
        let (_, org_connection) = self.organizations.connection(org).await?;
        self.store
            .list_backup_accounts(org)
            .await?
            .into_iter()
            .map(|a| {
                let plain = self
                    .sealer
                    .open(&seal_context(org, &a.login_key()), &a.sealed_password)?;
                let password = Secret::new(
                    String::from_utf8(plain.to_vec())
                        .map_err(|e| CoreError::internal("opening a sealed password", e))?,
                );
                Ok(BackupAccountSession {
                    connection: account_connection(&org_connection, &a.login, password),
                    login: a.login,
                })
            })
            .collect()
    }
}

/// The organization's connection, signing in as `login` through the organization's app.
pub fn account_connection(
    org: &TenantConnection,
    login: &str,
    password: Secret,
) -> TenantConnection {
    let (application_id, application_secret) = match &org.auth {
        TenantAuth::AppSecret {
            application_id,
            secret,
        } => (application_id.clone(), Some(secret.clone())),
        TenantAuth::Password {
            application_id,
            application_secret,
            ..
        } => (application_id.clone(), application_secret.clone()),
    };
    TenantConnection {
        auth: TenantAuth::Password {
            application_id,
            application_secret,
            account: login.to_owned(),
            password,
        },
        ..org.clone()
    }
}
