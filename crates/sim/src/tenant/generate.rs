//! Deterministic tenant generation from a [`TenantSpec`].
//!
//! The directory (users, groups, sites, drives, item ids, sizes) comes from one seeded random
//! stream; what real tenants add on top (site owners and members, version histories, sharing,
//! awkward names, who changed what) from a second one; sub-sites, group sites and large files
//! from further ones, so that each can grow without reshuffling the others.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::*;
use crate::content::ContentSource;

/// Folder names, by position: plain, accented with `#`, with `%`, long Cyrillic, very long.
/// Generated dates fall within the year after this (checked at compile time).
const EPOCH: DateTime<Utc> = NaiveDate::from_ymd_opt(2024, 1, 1)
    .expect("a valid date")
    .and_time(NaiveTime::from_hms_opt(8, 0, 0).expect("a valid time"))
    .and_utc();

const FOLDER_NAMES: [&str; 5] = [
    "Folder {n}",
    "Projets été #{n}",
    "Budget 100% {n}",
    "Квартальные отчёты и переписка с партнёрами {n}",
    "Archive of scanned correspondence, signed contracts, invoices and other records kept for the auditors {n}",
];

/// Document libraries of a site, by position (then `Library {n}`).
const LIBRARY_NAMES: [&str; 5] = [
    "Documents",
    "Contracts",
    "Projets & Budgets",
    "Archive 2023",
    "Marketing – Assets",
];

/// Sub-sites of a site, by position (then with a number).
const SUBSITE_NAMES: [&str; 5] = ["Projects", "Finance", "HR", "Archive", "Marketing"];

/// Large files, by position (with a number).
const LARGE_NAMES: [&str; 3] = ["Recording {n}.mp4", "Backup {n}.vhdx", "Dataset {n}.zip"];

/// Every fourth file gets one of these (in turn, from a different one in each drive) (Unicode, `#`, `%`, `&`, an emoji).
const FILE_NAMES: [&str; 4] = [
    "Résumé – Zoë #{n}.docx",
    "Budget 100% final {n}.xlsx",
    "会議メモ {n}.txt",
    "Notes & ideas 🎉 {n}.md",
];

fn random_uuid(rng: &mut impl Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
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

/// A library's name and the last segment of its URL (`Documents` lives at `Shared Documents`).
fn library(l: usize) -> (String, String) {
    let name = LIBRARY_NAMES
        .get(l - 1)
        .map_or_else(|| format!("Library {l}"), |n| (*n).to_owned());
    let segment = if l == 1 {
        "Shared Documents".to_owned()
    } else {
        name.chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ')
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    (name, segment.replace(' ', "%20"))
}

/// The decoded path of a URL (`https://host/sites/a/Shared%20Documents` →
/// `/sites/a/Shared Documents`).
fn decoded_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |at| &after_scheme[at..]);
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A site added after the first ones: a sub-site or a group's team site.
struct NewSite {
    /// The site collection it belongs to (a sub-site's parent's); a new one when absent.
    collection: Option<String>,
    name: String,
    display_name: String,
    description: String,
    web_url: String,
    owners: Vec<usize>,
    members: Vec<usize>,
}

fn upns(indexes: &[usize], domain: &str, generated: usize) -> Vec<String> {
    indexes
        .iter()
        .filter(|&&i| i >= 1 && i <= generated)
        .map(|i| format!("user{i}@{domain}"))
        .collect()
}

/// Who may change items of a drive: a OneDrive's owner, a site's owners and members.
fn editors(tenant: &Tenant, owner: DriveOwner) -> Vec<usize> {
    match owner {
        DriveOwner::User(u) => vec![u],
        DriveOwner::Site(s) => {
            let site = &tenant.sites[s];
            site.owners.iter().chain(&site.members).copied().collect()
        }
    }
}

impl Tenant {
    pub fn generate(spec: &TenantSpec) -> anyhow::Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let mut extra = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5EED_ACCE_55ED);
        let id = spec.tenant_id.unwrap_or_else(|| random_uuid(&mut rng));
        let domain = spec
            .domain
            .clone()
            .unwrap_or_else(|| format!("contoso{}.onmicrosoft.com", spec.seed));
        let org_name = domain.split('.').next().unwrap_or("contoso").to_owned();
        let sharepoint_host = format!("{org_name}.sharepoint.com");
        let my_host = format!("{org_name}-my.sharepoint.com");
        let epoch = EPOCH;
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
            licenses: 0,
            app,
            users: Vec::new(),
            groups: Vec::new(),
            sites: Vec::new(),
            drives: Vec::new(),
            user_index: HashMap::new(),
            group_index: HashMap::new(),
            site_index: HashMap::new(),
            drive_index: HashMap::new(),
            changes: RwLock::default(),
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
        // OneDrives are filled once sites exist (files are changed by a site's people).
        let mut onedrives = Vec::new();
        for u in user_specs {
            let created = when(&mut rng);
            let uid = u.id.unwrap_or_else(|| random_uuid(&mut rng));
            let local = u
                .user_principal_name
                .split('@')
                .next()
                .unwrap_or("user")
                .replace('.', "_");
            anyhow::ensure!(
                !tenant
                    .user_index
                    .contains_key(&u.user_principal_name.to_lowercase()),
                "duplicate user {}",
                u.user_principal_name
            );
            let index = tenant.users.len();
            let drive = tenant.add_drive(
                &mut rng,
                "OneDrive".into(),
                DriveOwner::User(index),
                format!("https://{my_host}/personal/{local}/Documents"),
            );
            onedrives.push((drive, created));
            let personal_site = PersonalSite {
                id: format!(
                    "{my_host},{},{}",
                    random_uuid(&mut extra),
                    random_uuid(&mut extra)
                ),
                web_url: format!("https://{my_host}/personal/{local}"),
                admins: Vec::new(),
            };
            tenant
                .site_index
                .insert(personal_site.id.to_lowercase(), SiteRef::Personal(index));
            tenant.user_index.insert(uid.to_string(), index);
            tenant
                .user_index
                .insert(u.user_principal_name.to_lowercase(), index);
            tenant.users.push(User {
                id: uid,
                user_principal_name: u.user_principal_name,
                display_name: u.display_name,
                password: u.password,
                account_enabled: u.account_enabled,
                created,
                drive,
                personal_site,
                groups: Vec::new(),
            });
        }
        tenant.licenses = spec.licenses.unwrap_or(tenant.users.len() as u64);

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
            let index = tenant.groups.len();
            for &m in &members {
                tenant.users[m].groups.push(index);
            }
            tenant.group_index.insert(gid, index);
            tenant.groups.push(Group {
                id: gid,
                mail_nickname: g.display_name.to_lowercase().replace(' ', "-"),
                display_name: g.display_name,
                kind: g.kind,
                members,
                created: when(&mut rng),
                site: None,
            });
        }

        let mut libraries = Vec::new();
        for i in 1..=spec.sites {
            let created = when(&mut rng);
            let (collection, web) = (random_uuid(&mut rng), random_uuid(&mut rng));
            let name = format!("site{i}");
            let web_url = format!("https://{sharepoint_host}/sites/{name}");
            let site_idx = tenant.sites.len();
            let drives = (1..=spec.libraries_per_site)
                .map(|l| {
                    let d = tenant.add_library(&mut rng, site_idx, &web_url, l);
                    libraries.push((d, created));
                    d
                })
                .collect();
            // The site's people: a couple of owners and a few members among generated users.
            let pick = |rng: &mut ChaCha8Rng, n: usize| -> Vec<usize> {
                let mut v: Vec<usize> = (0..n)
                    .filter(|_| generated_users > 0)
                    .map(|_| rng.gen_range(0..generated_users))
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            let owners = pick(&mut extra, 2);
            let members = pick(&mut extra, 6);
            let id = format!("{sharepoint_host},{collection},{web}");
            tenant
                .site_index
                .insert(id.to_lowercase(), SiteRef::Team(site_idx));
            tenant.sites.push(Site {
                id,
                name,
                display_name: format!("Site {i}"),
                description: format!("Collaboration site {i}"),
                web_url,
                created,
                drives,
                owners,
                members,
                admins: Vec::new(),
                parent: None,
                subsites: Vec::new(),
                group: None,
            });
        }
        // Sites added later in the tenant's history draw from streams of their own.
        let mut later = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5173_5173_0001);
        let mut later_extra = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5173_5173_0002);
        let mut later_libraries = Vec::new();
        for s in 0..tenant.sites.len() {
            tenant.add_subsites(&mut later, s, spec, &mut later_libraries);
        }
        if spec.group_sites {
            for g in 0..tenant.groups.len() {
                if tenant.groups[g].kind == GroupKind::Microsoft365 {
                    tenant.add_group_site(&mut later, g, spec, &mut later_libraries);
                }
            }
        }
        tenant.grant_admins(spec)?;
        for (d, created) in onedrives.into_iter().chain(libraries) {
            tenant.fill_drive(&mut rng, &mut extra, d, spec, created);
        }
        for (d, created) in later_libraries {
            tenant.fill_drive(&mut later, &mut later_extra, d, spec, created);
        }
        tenant.add_large_files(spec);
        Ok(tenant)
    }

    /// Library number `l` of site `site`.
    fn add_library(&mut self, rng: &mut ChaCha8Rng, site: usize, web_url: &str, l: usize) -> usize {
        let (name, segment) = library(l);
        let url = format!("{web_url}/{segment}");
        let d = self.add_drive(rng, name, DriveOwner::Site(site), url);
        self.drives[d].description = if l == 1 {
            String::new()
        } else {
            format!("Library {l} of the site")
        };
        d
    }

    /// A site (a sub-site, a group's team site) with its libraries, drawn from `rng`.
    fn add_site(
        &mut self,
        rng: &mut ChaCha8Rng,
        new: NewSite,
        spec: &TenantSpec,
        libraries: &mut Vec<(usize, DateTime<Utc>)>,
    ) -> usize {
        let created = self.created + Duration::seconds(rng.gen_range(0..365 * 86_400));
        let host = new
            .web_url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let web = random_uuid(rng);
        let collection = new
            .collection
            .unwrap_or_else(|| random_uuid(rng).to_string());
        let s = self.sites.len();
        let drives = (1..=spec.libraries_per_site)
            .map(|l| {
                let d = self.add_library(rng, s, &new.web_url, l);
                libraries.push((d, created));
                d
            })
            .collect();
        let id = format!("{host},{collection},{web}");
        self.site_index.insert(id.to_lowercase(), SiteRef::Team(s));
        self.sites.push(Site {
            id,
            name: new.name,
            display_name: new.display_name,
            description: new.description,
            web_url: new.web_url,
            created,
            drives,
            owners: new.owners,
            members: new.members,
            admins: Vec::new(),
            parent: None,
            subsites: Vec::new(),
            group: None,
        });
        s
    }

    /// `spec.subsites_per_site` sub-sites under a top-level site (none under sub-sites or
    /// group sites), the first with one of its own when there are two or more.
    fn add_subsites(
        &mut self,
        rng: &mut ChaCha8Rng,
        site: usize,
        spec: &TenantSpec,
        libraries: &mut Vec<(usize, DateTime<Utc>)>,
    ) {
        if self.sites[site].parent.is_some() || self.sites[site].group.is_some() {
            return;
        }
        for j in 1..=spec.subsites_per_site {
            let title = SUBSITE_NAMES
                .get(j - 1)
                .map_or_else(|| format!("Team {j}"), |n| (*n).to_owned());
            let sub = self.add_subsite(rng, site, &title, spec, libraries);
            if j == 1 && spec.subsites_per_site >= 2 {
                self.add_subsite(rng, sub, "Old Projects", spec, libraries);
            }
        }
    }

    fn add_subsite(
        &mut self,
        rng: &mut ChaCha8Rng,
        parent: usize,
        title: &str,
        spec: &TenantSpec,
        libraries: &mut Vec<(usize, DateTime<Utc>)>,
    ) -> usize {
        let p = &self.sites[parent];
        let segment = title.to_lowercase().replace(' ', "-");
        let new = NewSite {
            collection: p.id.split(',').nth(1).map(str::to_owned),
            web_url: format!("{}/{segment}", p.web_url),
            name: segment,
            display_name: format!("{} – {title}", p.display_name),
            description: format!("Sub-site {title} of {}", p.display_name),
            owners: p.owners.clone(),
            members: p.members.clone(),
        };
        let s = self.add_site(rng, new, spec, libraries);
        self.sites[s].parent = Some(parent);
        self.sites[parent].subsites.push(s);
        s
    }

    /// A Microsoft 365 group's team site: its members are the site's members, the first its
    /// owner.
    fn add_group_site(
        &mut self,
        rng: &mut ChaCha8Rng,
        group: usize,
        spec: &TenantSpec,
        libraries: &mut Vec<(usize, DateTime<Utc>)>,
    ) {
        let g = &self.groups[group];
        let host = format!(
            "{}.sharepoint.com",
            self.domain.split('.').next().unwrap_or("contoso")
        );
        let new = NewSite {
            collection: None,
            web_url: format!("https://{host}/sites/{}", g.mail_nickname),
            name: g.mail_nickname.clone(),
            display_name: g.display_name.clone(),
            description: format!("Team site of the group {}", g.display_name),
            owners: g.members.iter().take(1).copied().collect(),
            members: g.members.clone(),
        };
        let s = self.add_site(rng, new, spec, libraries);
        self.sites[s].group = Some(group);
        self.groups[group].site = Some(s);
    }

    /// The site-collection root a site belongs to.
    fn collection_root(&self, mut s: usize) -> usize {
        while let Some(p) = self.sites[s].parent {
            s = p;
        }
        s
    }

    /// `spec.large_files_per_drive` large files at the root of every drive (their own stream).
    fn add_large_files(&self, spec: &TenantSpec) {
        if spec.large_files_per_drive == 0 {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x1A26_E000_F11E);
        let (lo, hi) = (
            spec.large_file_min_size.max(1) as f64,
            spec.large_file_max_size
                .max(spec.large_file_min_size)
                .max(1) as f64,
        );
        for drive in &self.drives {
            let mut state = drive.state.write().unwrap_or_else(|p| p.into_inner());
            let root = state.root_id().to_owned();
            let created = state.items[0].created;
            for n in 1..=spec.large_files_per_drive {
                let size = (lo * (hi / lo).powf(rng.gen::<f64>())).round() as u64;
                let name = LARGE_NAMES[(n - 1) % LARGE_NAMES.len()].replace("{n}", &n.to_string());
                let when = created + Duration::seconds(rng.gen_range(0..86_400 * 30));
                let _ = state.add_file(&mut rng, &root, &name, size, when, None);
            }
        }
    }

    /// Applies the spec's site-collection administrators (by default, the backup accounts'
    /// group everywhere).
    fn grant_admins(&mut self, spec: &TenantSpec) -> anyhow::Result<()> {
        let grants = spec.site_admins.clone().unwrap_or_else(|| {
            if spec.backup_accounts > 0 {
                vec![AdminGrant::everywhere(BACKUP_ACCOUNTS_GROUP)]
            } else {
                Vec::new()
            }
        });
        for grant in &grants {
            let who = self.member(&grant.principal).with_context(|| {
                format!(
                    "site_admins: no group or user '{}' in the tenant",
                    grant.principal
                )
            })?;
            for name in grant.sites.iter().chain(&grant.except_sites) {
                anyhow::ensure!(
                    name == "*" || self.sites.iter().any(|s| s.name.eq_ignore_ascii_case(name)),
                    "site_admins: no site '{name}'"
                );
            }
            for upn in grant.onedrives.iter().chain(&grant.except_onedrives) {
                anyhow::ensure!(
                    upn == "*" || self.user(upn).is_some(),
                    "site_admins: no OneDrive of '{upn}'"
                );
            }
            // A sub-site's administrators are its site collection's.
            let covered: Vec<bool> = (0..self.sites.len())
                .map(|s| grant.covers_site(&self.sites[self.collection_root(s)].name))
                .collect();
            for (site, covered) in self.sites.iter_mut().zip(covered) {
                if covered && !site.admins.contains(&who) {
                    site.admins.push(who);
                }
            }
            for user in &mut self.users {
                let admins = &mut user.personal_site.admins;
                if grant.covers_onedrive(&user.user_principal_name) && !admins.contains(&who) {
                    admins.push(who);
                }
            }
        }
        Ok(())
    }

    /// A group by display name or id, else a user by principal name.
    fn member(&self, principal: &str) -> Option<Member> {
        let group = self.groups.iter().position(|g| {
            g.display_name.eq_ignore_ascii_case(principal)
                || g.id.to_string().eq_ignore_ascii_case(principal)
        });
        group
            .map(Member::Group)
            .or_else(|| self.user(principal).map(|(i, _)| Member::User(i)))
    }

    /// An empty drive (its root folder only).
    fn add_drive(
        &mut self,
        rng: &mut ChaCha8Rng,
        name: String,
        owner: DriveOwner,
        web_url: String,
    ) -> usize {
        let id = drive_id(rng);
        let root_id = item_id(rng);
        self.drive_index.insert(id.clone(), self.drives.len());
        let state = DriveState {
            base_path: decoded_path(&web_url),
            ..DriveState::default()
        };
        self.drives.push(Drive {
            id,
            name,
            description: String::new(),
            owner,
            web_url,
            state: RwLock::new(state),
        });
        let d = self.drives.len() - 1;
        self.drives[d]
            .state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Item::root(root_id, self.created));
        d
    }

    /// Folders and files of a drive, with version histories, sharing and who changed what.
    fn fill_drive(
        &self,
        rng: &mut ChaCha8Rng,
        extra: &mut ChaCha8Rng,
        d: usize,
        spec: &TenantSpec,
        created: DateTime<Utc>,
    ) {
        let drive = &self.drives[d];
        let people = editors(self, drive.owner);
        let someone = |extra: &mut ChaCha8Rng| -> Option<usize> {
            (!people.is_empty()).then(|| people[extra.gen_range(0..people.len())])
        };
        let mut state = drive.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(root) = state.items.first_mut() {
            root.created = created;
            root.modified = created;
        }
        let mut folders = vec![state.root_id().to_owned()];
        for f in 1..=spec.folders_per_drive {
            // Half the folders nest in the previous one: deep, long paths.
            let parent = if f > 1 && extra.gen_bool(0.5) {
                folders[folders.len() - 1].clone()
            } else {
                folders[rng.gen_range(0..folders.len())].clone()
            };
            let name = FOLDER_NAMES[(f - 1) % FOLDER_NAMES.len()].replace("{n}", &f.to_string());
            if let Ok(id) = state.add_folder(rng, &parent, &name, created, someone(extra)) {
                folders.push(id);
            }
        }
        let (lo, hi) = (
            spec.min_file_size.max(1) as f64,
            spec.max_file_size.max(spec.min_file_size).max(1) as f64,
        );
        let size = |rng: &mut ChaCha8Rng| (lo * (hi / lo).powf(rng.gen::<f64>())).round() as u64;
        for n in 1..=spec.files_per_drive {
            // Log-uniform sizes: many small files, a few large ones, as in real libraries.
            let bytes = size(rng);
            let parent = folders[rng.gen_range(0..folders.len())].clone();
            let modified = created + Duration::seconds(rng.gen_range(0..86_400 * 30));
            let name = if n % 4 == 0 {
                FILE_NAMES[(n / 4 - 1 + d) % FILE_NAMES.len()].replace("{n}", &n.to_string())
            } else {
                format!("Document {n}.docx")
            };
            let Ok(id) = state.add_file(rng, &parent, &name, bytes, modified, someone(extra))
            else {
                continue;
            };
            let versions = extra.gen_range(1..=spec.max_versions.max(1));
            let i = state.index[&id];
            let item = &mut state.items[i];
            for v in 1..versions {
                item.history.push(FileVersion {
                    version: v,
                    size: size(extra),
                    modified: modified - Duration::days((versions - v) as i64),
                    modified_by: item.created_by,
                    content: ContentSource::Generated { version: v },
                });
            }
            if let Some(file) = item.file.as_mut() {
                file.version = versions;
                file.content = ContentSource::Generated { version: versions };
            }
            item.modified_by = someone(extra);
            if extra.gen_bool(spec.shared_fraction.clamp(0.0, 1.0)) {
                let grant = if extra.gen_bool(0.5) && spec.users > 0 {
                    Grant::User {
                        user: extra.gen_range(0..spec.users),
                        role: Role::Read,
                    }
                } else {
                    Grant::Link {
                        scope: LinkScope::Organization,
                        role: Role::Read,
                    }
                };
                item.grants.push(Permission::new(&id, grant));
            }
        }
    }
}
