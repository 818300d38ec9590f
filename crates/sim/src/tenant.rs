//! The simulated tenant: directory objects, sites and drives with their items.
//!
//! A tenant is generated deterministically from a [`TenantSpec`] (seed and sizes), optionally
//! extended with explicitly listed users and groups (fixed ids), e.g. from a JSON/TOML file.
//! File content is not stored: see [`crate::content`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use anyhow::Context;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What to generate. Also the format of a tenant file (JSON or TOML); every field is optional.
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
    /// Members of the security group "Backup Accounts", usable as backup accounts.
    pub backup_accounts: usize,
    pub security_groups: usize,
    pub m365_groups: usize,
    pub distribution_groups: usize,
    pub sites: usize,
    pub libraries_per_site: usize,
    pub folders_per_drive: usize,
    pub files_per_drive: usize,
    pub min_file_size: u64,
    pub max_file_size: u64,
    /// The app registration with app-only access; derived from the seed when absent.
    pub app_client_id: Option<Uuid>,
    pub app_client_secret: Option<String>,
    pub extra_users: Vec<UserSpec>,
    pub extra_groups: Vec<GroupSpec>,
}

impl Default for TenantSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            tenant_id: None,
            domain: None,
            display_name: None,
            users: 20,
            backup_accounts: 8,
            security_groups: 3,
            m365_groups: 2,
            distribution_groups: 1,
            sites: 3,
            libraries_per_site: 1,
            folders_per_drive: 2,
            files_per_drive: 10,
            min_file_size: 1024,
            max_file_size: 2 << 20,
            app_client_id: None,
            app_client_secret: None,
            extra_users: Vec::new(),
            extra_groups: Vec::new(),
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

#[derive(Debug)]
pub struct Site {
    /// Graph's composite site id: `{hostname},{siteCollectionId},{webId}`.
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub web_url: String,
    pub created: DateTime<Utc>,
    pub drives: Vec<usize>,
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

/// The items of a drive and their change sequence (what delta tokens refer to).
#[derive(Debug, Default)]
pub struct DriveState {
    /// Last change number handed out; every item change takes the next one.
    pub seq: u64,
    pub items: Vec<Item>,
    pub index: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub name: String,
    /// `None` for the root folder.
    pub parent: Option<String>,
    pub path: String,
    pub file: Option<FileInfo>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Change number of the last change (creation, modification, deletion).
    pub changed_seq: u64,
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct FileInfo {
    pub size: u64,
    /// Bumped by every content change; with the item id it determines the bytes.
    pub version: u64,
}

impl Item {
    /// Key of the content generator for this item: unique across drives.
    pub fn content_key(&self, drive_id: &str) -> String {
        format!("{drive_id}/{}", self.id)
    }
}

impl DriveState {
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.index.get(id).map(|&i| &self.items[i])
    }

    fn push(&mut self, mut item: Item) -> usize {
        self.seq += 1;
        item.changed_seq = self.seq;
        self.index.insert(item.id.clone(), self.items.len());
        self.items.push(item);
        self.items.len() - 1
    }

    pub fn root_id(&self) -> &str {
        &self.items[0].id
    }

    /// Adds a file under `parent` (a folder id); the new item's id.
    pub fn add_file(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        size: u64,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let parent_item = self
            .get(parent)
            .filter(|p| p.file.is_none() && !p.deleted)?;
        let path = child_path(parent_item);
        let id = item_id(rng);
        self.push(Item {
            id: id.clone(),
            name: name.to_owned(),
            parent: Some(parent.to_owned()),
            path,
            file: Some(FileInfo { size, version: 1 }),
            created: now,
            modified: now,
            changed_seq: 0,
            deleted: false,
        });
        Some(id)
    }

    /// New content (and size) for a file. `false` when there is no such live file.
    pub fn modify_file(&mut self, id: &str, size: u64, now: DateTime<Utc>) -> bool {
        let Some(&i) = self.index.get(id) else {
            return false;
        };
        let item = &mut self.items[i];
        let Some(file) = item.file.as_mut().filter(|_| !item.deleted) else {
            return false;
        };
        file.size = size;
        file.version += 1;
        item.modified = now;
        self.seq += 1;
        item.changed_seq = self.seq;
        true
    }

    /// Deletes a file or an empty folder (kept as a tombstone for delta). `false` if absent.
    pub fn delete_item(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        let Some(&i) = self.index.get(id) else {
            return false;
        };
        if self.items[i].deleted || self.items[i].parent.is_none() {
            return false;
        }
        self.seq += 1;
        let item = &mut self.items[i];
        item.deleted = true;
        item.modified = now;
        item.changed_seq = self.seq;
        true
    }
}

fn child_path(parent: &Item) -> String {
    if parent.parent.is_none() {
        "/drive/root:".to_owned()
    } else {
        format!("{}/{}", parent.path, parent.name)
    }
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
    pub app: AppRegistration,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub sites: Vec<Site>,
    pub drives: Vec<Drive>,
    user_index: HashMap<String, usize>,
    group_index: HashMap<Uuid, usize>,
    site_index: HashMap<String, usize>,
    drive_index: HashMap<String, usize>,
}

/// Name of the security group whose members serve as backup accounts.
pub const BACKUP_ACCOUNTS_GROUP: &str = "Backup Accounts";

fn random_uuid(rng: &mut impl Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

/// Graph-style drive item id: 34 upper-case base-32 characters starting with "01".
fn item_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("01");
    id.extend((0..32).map(|_| ALPHABET[rng.gen_range(0..32)] as char));
    id
}

fn drive_id(rng: &mut impl Rng) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 48];
    rng.fill_bytes(&mut bytes);
    format!(
        "b!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Password of a generated user: documented, derived from its name and the seed.
pub fn generated_password(local_part: &str, seed: u64) -> String {
    format!("Pass-{local_part}-{seed}!")
}

impl Tenant {
    pub fn generate(spec: &TenantSpec) -> anyhow::Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let id = spec.tenant_id.unwrap_or_else(|| random_uuid(&mut rng));
        let domain = spec
            .domain
            .clone()
            .unwrap_or_else(|| format!("contoso{}.onmicrosoft.com", spec.seed));
        let org_name = domain.split('.').next().unwrap_or("contoso").to_owned();
        let sharepoint_host = format!("{org_name}.sharepoint.com");
        let epoch = Utc
            .with_ymd_and_hms(2024, 1, 1, 8, 0, 0)
            .single()
            .expect("valid date");
        let when = |rng: &mut ChaCha8Rng| epoch + Duration::seconds(rng.gen_range(0..365 * 86_400));
        let app = AppRegistration {
            client_id: spec.app_client_id.unwrap_or_else(|| random_uuid(&mut rng)),
            client_secret: spec
                .app_client_secret
                .clone()
                .unwrap_or_else(|| format!("sim-secret-{}", spec.seed)),
            display_name: "m365backup".into(),
        };
        let mut tenant = Tenant {
            id,
            display_name: spec
                .display_name
                .clone()
                .unwrap_or_else(|| format!("Contoso {}", spec.seed)),
            domain: domain.clone(),
            created: epoch,
            app,
            users: Vec::new(),
            groups: Vec::new(),
            sites: Vec::new(),
            drives: Vec::new(),
            user_index: HashMap::new(),
            group_index: HashMap::new(),
            site_index: HashMap::new(),
            drive_index: HashMap::new(),
        };

        let mut user_specs: Vec<UserSpec> = (1..=spec.users)
            .map(|i| UserSpec {
                id: None,
                user_principal_name: format!("user{i}@{domain}"),
                display_name: format!("User {i}"),
                password: generated_password(&format!("user{i}"), spec.seed),
                account_enabled: true,
            })
            .collect();
        let backup_upns: Vec<String> = (1..=spec.backup_accounts)
            .map(|i| format!("backup{i}@{domain}"))
            .collect();
        user_specs.extend(backup_upns.iter().enumerate().map(|(i, upn)| UserSpec {
            id: None,
            user_principal_name: upn.clone(),
            display_name: format!("Backup Account {}", i + 1),
            password: generated_password(&format!("backup{}", i + 1), spec.seed),
            account_enabled: true,
        }));
        user_specs.extend(spec.extra_users.iter().cloned());
        for u in user_specs {
            let created = when(&mut rng);
            let uid = u.id.unwrap_or_else(|| random_uuid(&mut rng));
            let local = u
                .user_principal_name
                .split('@')
                .next()
                .unwrap_or("user")
                .to_owned();
            let drive = tenant.add_drive(
                &mut rng,
                "OneDrive".into(),
                DriveOwner::User(tenant.users.len()),
                format!(
                    "https://{org_name}-my.sharepoint.com/personal/{}/Documents",
                    local.replace('.', "_")
                ),
                spec,
                created,
            );
            anyhow::ensure!(
                !tenant
                    .user_index
                    .contains_key(&u.user_principal_name.to_lowercase()),
                "duplicate user {}",
                u.user_principal_name
            );
            tenant
                .user_index
                .insert(uid.to_string(), tenant.users.len());
            tenant
                .user_index
                .insert(u.user_principal_name.to_lowercase(), tenant.users.len());
            tenant.users.push(User {
                id: uid,
                user_principal_name: u.user_principal_name,
                display_name: u.display_name,
                password: u.password,
                account_enabled: u.account_enabled,
                created,
                drive,
            });
        }

        let generated_users = spec.users;
        let mut group_specs = Vec::new();
        if spec.backup_accounts > 0 {
            group_specs.push(GroupSpec {
                id: None,
                display_name: BACKUP_ACCOUNTS_GROUP.into(),
                kind: GroupKind::Security,
                members: backup_upns.clone(),
            });
        }
        for i in 1..=spec.security_groups {
            // The first security group holds every generated user: a group larger than a page.
            let members = if i == 1 {
                (1..=generated_users).collect::<Vec<_>>()
            } else {
                let n = rng.gen_range(1..=generated_users.clamp(1, 40));
                (0..n)
                    .map(|_| rng.gen_range(1..=generated_users.max(1)))
                    .collect()
            };
            let name = if i == 1 {
                "All Staff".to_owned()
            } else {
                format!("Security Group {i}")
            };
            group_specs.push(GroupSpec {
                id: None,
                display_name: name,
                kind: GroupKind::Security,
                members: upns(&members, &domain, generated_users),
            });
        }
        for (kind, count, label) in [
            (GroupKind::Microsoft365, spec.m365_groups, "Team"),
            (
                GroupKind::Distribution,
                spec.distribution_groups,
                "Distribution List",
            ),
        ] {
            for i in 1..=count {
                let n = rng.gen_range(1..=generated_users.clamp(1, 25));
                let members: Vec<usize> = (0..n)
                    .map(|_| rng.gen_range(1..=generated_users.max(1)))
                    .collect();
                group_specs.push(GroupSpec {
                    id: None,
                    display_name: format!("{label} {i}"),
                    kind,
                    members: upns(&members, &domain, generated_users),
                });
            }
        }
        group_specs.extend(spec.extra_groups.iter().cloned());
        for g in group_specs {
            let gid = g.id.unwrap_or_else(|| random_uuid(&mut rng));
            let mut members = Vec::new();
            for upn in &g.members {
                let idx = *tenant
                    .user_index
                    .get(&upn.to_lowercase())
                    .with_context(|| format!("group {}: unknown member {upn}", g.display_name))?;
                if !members.contains(&idx) {
                    members.push(idx);
                }
            }
            tenant.group_index.insert(gid, tenant.groups.len());
            tenant.groups.push(Group {
                id: gid,
                mail_nickname: g.display_name.to_lowercase().replace(' ', "-"),
                display_name: g.display_name,
                kind: g.kind,
                members,
                created: when(&mut rng),
            });
        }

        for i in 1..=spec.sites {
            let created = when(&mut rng);
            let (collection, web) = (random_uuid(&mut rng), random_uuid(&mut rng));
            let name = format!("site{i}");
            let web_url = format!("https://{sharepoint_host}/sites/{name}");
            let site_idx = tenant.sites.len();
            let drives = (1..=spec.libraries_per_site)
                .map(|l| {
                    let lib = if l == 1 {
                        "Documents".to_owned()
                    } else {
                        format!("Library {l}")
                    };
                    let url = format!("{web_url}/{}", lib.replace(' ', "%20"));
                    tenant.add_drive(
                        &mut rng,
                        lib,
                        DriveOwner::Site(site_idx),
                        url,
                        spec,
                        created,
                    )
                })
                .collect();
            let id = format!("{sharepoint_host},{collection},{web}");
            tenant.site_index.insert(id.to_lowercase(), site_idx);
            tenant.sites.push(Site {
                id,
                name,
                display_name: format!("Site {i}"),
                web_url,
                created,
                drives,
            });
        }
        Ok(tenant)
    }

    fn add_drive(
        &mut self,
        rng: &mut ChaCha8Rng,
        name: String,
        owner: DriveOwner,
        web_url: String,
        spec: &TenantSpec,
        created: DateTime<Utc>,
    ) -> usize {
        let id = drive_id(rng);
        let mut state = DriveState::default();
        let root = Item {
            id: item_id(rng),
            name: "root".into(),
            parent: None,
            path: String::new(),
            file: None,
            created,
            modified: created,
            changed_seq: 0,
            deleted: false,
        };
        state.push(root);
        let mut folders = vec![state.root_id().to_owned()];
        for f in 1..=spec.folders_per_drive {
            let parent = folders[rng.gen_range(0..folders.len())].clone();
            let parent_item = state.get(&parent).expect("parent exists");
            let folder = Item {
                id: item_id(rng),
                name: format!("Folder {f}"),
                parent: Some(parent.clone()),
                path: child_path(parent_item),
                file: None,
                created,
                modified: created,
                changed_seq: 0,
                deleted: false,
            };
            folders.push(folder.id.clone());
            state.push(folder);
        }
        let (lo, hi) = (
            spec.min_file_size.max(1) as f64,
            spec.max_file_size.max(spec.min_file_size).max(1) as f64,
        );
        for n in 1..=spec.files_per_drive {
            // Log-uniform sizes: many small files, a few large ones, as in real libraries.
            let size = (lo * (hi / lo).powf(rng.gen::<f64>())).round() as u64;
            let parent = folders[rng.gen_range(0..folders.len())].clone();
            let modified = created + Duration::seconds(rng.gen_range(0..86_400 * 30));
            state.add_file(rng, &parent, &format!("Document {n}.docx"), size, modified);
        }
        self.drive_index.insert(id.clone(), self.drives.len());
        self.drives.push(Drive {
            id,
            name,
            owner,
            web_url,
            state: RwLock::new(state),
        });
        self.drives.len() - 1
    }

    /// By object id or user principal name (case-insensitive), as Graph's `/users/{id}`.
    pub fn user(&self, id_or_upn: &str) -> Option<(usize, &User)> {
        let i = *self.user_index.get(&id_or_upn.to_lowercase())?;
        Some((i, &self.users[i]))
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        let id: Uuid = id.parse().ok()?;
        self.group_index.get(&id).map(|&i| &self.groups[i])
    }

    pub fn site(&self, id: &str) -> Option<&Site> {
        self.site_index
            .get(&id.to_lowercase())
            .map(|&i| &self.sites[i])
    }

    pub fn drive(&self, id: &str) -> Option<&Drive> {
        self.drive_index.get(id).map(|&i| &self.drives[i])
    }

    pub fn backup_accounts_group(&self) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.display_name == BACKUP_ACCOUNTS_GROUP)
    }
}

fn upns(indexes: &[usize], domain: &str, generated: usize) -> Vec<String> {
    indexes
        .iter()
        .filter(|&&i| i >= 1 && i <= generated)
        .map(|i| format!("user{i}@{domain}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_tenant() {
        let spec = TenantSpec {
            users: 30,
            ..TenantSpec::default()
        };
        let (a, b) = (
            Tenant::generate(&spec).unwrap(),
            Tenant::generate(&spec).unwrap(),
        );
        assert_eq!(a.id, b.id);
        assert_eq!(
            a.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            b.users.iter().map(|u| u.id).collect::<Vec<_>>()
        );
        assert_eq!(a.drives[3].id, b.drives[3].id);
        let other = Tenant::generate(&TenantSpec { seed: 2, ..spec }).unwrap();
        assert_ne!(a.id, other.id);
    }

    #[test]
    fn sizes_and_backup_group() {
        let spec = TenantSpec {
            users: 30,
            backup_accounts: 5,
            sites: 2,
            libraries_per_site: 2,
            ..TenantSpec::default()
        };
        let t = Tenant::generate(&spec).unwrap();
        assert_eq!(t.users.len(), 35);
        assert_eq!(t.backup_accounts_group().unwrap().members.len(), 5);
        assert_eq!(t.drives.len(), 35 + 4);
        let files = t.drives[0]
            .state
            .read()
            .unwrap()
            .items
            .iter()
            .filter(|i| i.file.is_some())
            .count();
        assert_eq!(files, spec.files_per_drive);
        assert!(t.user("USER1@contoso1.onmicrosoft.com").is_some());
    }

    #[test]
    fn tenant_files_in_toml_and_json() {
        let dir = std::env::temp_dir().join(format!("m365sim-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("t.toml");
        std::fs::write(&toml_path, "seed = 9\nusers = 4\ndomain = \"fabrikam.onmicrosoft.com\"\n[[extra_groups]]\ndisplay_name = \"Ops\"\nkind = \"security\"\nmembers = [\"user2@fabrikam.onmicrosoft.com\"]\n").unwrap();
        let spec = TenantSpec::from_file(&toml_path).unwrap();
        assert_eq!((spec.seed, spec.users), (9, 4));
        let json_path = dir.join("t.json");
        std::fs::write(&json_path, serde_json::to_string(&spec).unwrap()).unwrap();
        let again = TenantSpec::from_file(&json_path).unwrap();
        let t = Tenant::generate(&again).unwrap();
        assert_eq!(t.domain, "fabrikam.onmicrosoft.com");
        assert_eq!(
            t.groups
                .iter()
                .find(|g| g.display_name == "Ops")
                .unwrap()
                .members
                .len(),
            1
        );
        std::fs::write(&json_path, r#"{"usres": 3}"#).unwrap();
        assert!(
            TenantSpec::from_file(&json_path).is_err(),
            "typos are errors"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn extras_with_fixed_ids() {
        let gid: Uuid = "6e570850-9ce9-40ed-b81d-41772dabcead".parse().unwrap();
        let spec = TenantSpec {
            users: 2,
            extra_users: vec![UserSpec {
                id: None,
                user_principal_name: "account1@office365.onmicrosoft.com".into(),
                display_name: "tworker1".into(),
                password: "XXXXX".into(),
                account_enabled: true,
            }],
            extra_groups: vec![GroupSpec {
                id: Some(gid),
                display_name: "Workers".into(),
                kind: GroupKind::Security,
                members: vec![
                    "account1@office365.onmicrosoft.com".into(),
                    "user1@contoso1.onmicrosoft.com".into(),
                ],
            }],
            ..TenantSpec::default()
        };
        let t = Tenant::generate(&spec).unwrap();
        let g = t.group(&gid.to_string()).unwrap();
        assert_eq!(g.members.len(), 2);
        assert_eq!(t.users[g.members[0]].display_name, "tworker1");
    }
}
