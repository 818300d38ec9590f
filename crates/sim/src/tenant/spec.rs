//! What to generate: a tenant's sizes and seed, explicit users and groups, and who administers
//! which site collections. Also the format of a tenant file (JSON or TOML).

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::GroupKind;

/// Every field is optional in a tenant file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSpec {
    pub seed: u64,
    /// Entra ID tenant id; derived from the seed when absent.
    pub tenant_id: Option<Uuid>,
    /// Default domain; `contoso{seed}.onmicrosoft.com` when absent.
    pub domain: Option<String>,
    pub display_name: Option<String>,
    pub users: usize,
    /// Licences of the tenant: what Microsoft's app and tenant budgets scale with. The number of
    /// users when absent.
    pub licenses: Option<u64>,
    /// Members of the security group "Backup Accounts", usable as backup accounts.
    pub backup_accounts: usize,
    pub security_groups: usize,
    pub m365_groups: usize,
    pub distribution_groups: usize,
    pub sites: usize,
    /// Document libraries of every site (sub-sites and group sites included); the first is
    /// `Documents`.
    pub libraries_per_site: usize,
    /// Sub-sites of each of the `sites` (with two or more, the first sub-site has a sub-site of
    /// its own); each has its own libraries and inherits its parent's people.
    pub subsites_per_site: usize,
    /// Each Microsoft 365 group gets its team site (`/groups/{id}/sites/root`), as in Microsoft
    /// 365.
    pub group_sites: bool,
    pub folders_per_drive: usize,
    pub files_per_drive: usize,
    pub min_file_size: u64,
    pub max_file_size: u64,
    /// Each generated file has between 1 and this many versions.
    pub max_versions: u64,
    /// Large files added to every drive (for egress-bound benchmarks), sizes log-uniform in
    /// `large_file_min_size..=large_file_max_size`; content generated on the fly.
    pub large_files_per_drive: usize,
    pub large_file_min_size: u64,
    pub large_file_max_size: u64,
    /// Share of generated files shared with someone (explicit permissions, a `shared` facet).
    pub shared_fraction: f64,
    /// The app registration with app-only access; derived from the seed when absent.
    pub app_client_id: Option<Uuid>,
    pub app_client_secret: Option<String>,
    pub extra_users: Vec<UserSpec>,
    pub extra_groups: Vec<GroupSpec>,
    /// Site-collection administrators. Absent: the group "Backup Accounts" administers every
    /// site and every OneDrive (what a backup vendor asks of an administrator).
    pub site_admins: Option<Vec<AdminGrant>>,
}

impl Default for TenantSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            tenant_id: None,
            domain: None,
            display_name: None,
            users: 20,
            licenses: None,
            backup_accounts: 8,
            security_groups: 3,
            m365_groups: 2,
            distribution_groups: 1,
            sites: 3,
            libraries_per_site: 1,
            subsites_per_site: 0,
            group_sites: true,
            folders_per_drive: 2,
            files_per_drive: 10,
            min_file_size: 1024,
            max_file_size: 2 << 20,
            max_versions: 3,
            large_files_per_drive: 0,
            large_file_min_size: 50 << 20,
            large_file_max_size: 500 << 20,
            shared_fraction: 0.1,
            app_client_id: None,
            app_client_secret: None,
            extra_users: Vec::new(),
            extra_groups: Vec::new(),
            site_admins: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub id: Option<Uuid>,
    pub user_principal_name: String,
    pub display_name: String,
    pub password: String,
    #[serde(default = "yes")]
    pub account_enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub id: Option<Uuid>,
    pub display_name: String,
    pub kind: GroupKind,
    /// User principal names of the members.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Makes a user or a group site-collection administrator of sites and OneDrives.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminGrant {
    /// A group (display name or id) or a user (principal name).
    pub principal: String,
    /// Site names (`site1`, …), or `"*"` for every site.
    #[serde(default)]
    pub sites: Vec<String>,
    /// OneDrives by their owner's principal name, or `"*"` for every OneDrive.
    #[serde(default)]
    pub onedrives: Vec<String>,
    /// Sites left out of `"*"`.
    #[serde(default)]
    pub except_sites: Vec<String>,
    /// OneDrives (owners' principal names) left out of `"*"`.
    #[serde(default)]
    pub except_onedrives: Vec<String>,
}

impl AdminGrant {
    /// Administrator of every site and every OneDrive.
    pub fn everywhere(principal: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            sites: vec!["*".into()],
            onedrives: vec!["*".into()],
            except_sites: Vec::new(),
            except_onedrives: Vec::new(),
        }
    }

    pub(super) fn covers_site(&self, name: &str) -> bool {
        covers(&self.sites, &self.except_sites, name)
    }

    pub(super) fn covers_onedrive(&self, owner_upn: &str) -> bool {
        covers(&self.onedrives, &self.except_onedrives, owner_upn)
    }
}

fn covers(list: &[String], except: &[String], name: &str) -> bool {
    let listed = |l: &[String]| l.iter().any(|x| x.eq_ignore_ascii_case(name));
    (list.iter().any(|x| x == "*") || listed(list)) && !listed(except)
}

impl TenantSpec {
    /// Reads a tenant file: `.toml` as TOML, anything else as JSON.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        } else {
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        }
    }
}
