//! A job's items, minus its exclusions, as protected objects: each user's OneDrive and each
//! document library of a site (sub-sites included), found through the account pool. One drive
//! is one object however many items name it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use m365backup_core::ids::OrganizationId;
use m365backup_core::jobs::model::{BackupItem, BackupType, ItemScope, SiteRef};
use m365backup_m365::pool::{AccountPool, PoolError};
use m365backup_repo::{ObjectKind, ProtectedObject};
use serde_json::json;

use crate::discovery::{self, Drive, Site, User};

/// Objects found so far, by drive id.
struct Collector {
    organization: String,
    objects: BTreeMap<String, ProtectedObject>,
}

/// Our id of a site: its collection GUID followed by its web GUID, as the v5 API writes it.
pub fn our_site_id(graph_id: &str) -> String {
    let mut parts = graph_id.split(',');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(collection), Some(web)) => format!("{collection}{web}"),
        _ => graph_id.to_owned(),
    }
}

impl Collector {
    fn onedrive(&mut self, user: &User, drive: Drive) {
        let name = user
            .display_name
            .clone()
            .or_else(|| user.user_principal_name.clone())
            .unwrap_or_else(|| user.id.clone());
        self.objects.insert(
            drive.id.clone(),
            ProtectedObject {
                organization_id: self.organization.clone(),
                kind: ObjectKind::OneDrive,
                id: drive.id,
                name,
                url: drive.web_url,
                owner_id: Some(user.id.clone()),
                owner_name: user.user_principal_name.clone(),
                attributes: Some(json!({
                    "displayName": user.display_name,
                    "userPrincipalName": user.user_principal_name,
                })),
            },
        );
    }

    fn library(&mut self, site: &Site, parent: Option<&str>, drive: Drive) {
        let title = site
            .display_name
            .clone()
            .or_else(|| site.name.clone())
            .unwrap_or_default();
        self.objects.insert(
            drive.id.clone(),
            ProtectedObject {
                organization_id: self.organization.clone(),
                kind: ObjectKind::SiteLibrary,
                name: drive.name.clone().unwrap_or_else(|| "Documents".into()),
                url: drive.web_url,
                owner_id: Some(our_site_id(&site.id)),
                owner_name: Some(title.clone()),
                attributes: Some(json!({
                    "siteId": our_site_id(&site.id),
                    "siteGraphId": site.id,
                    "siteUrl": site.web_url,
                    "siteTitle": title,
                    "siteName": site.name,
                    "isPersonal": site.is_personal(),
                    "parentSiteId": parent.map(our_site_id),
                    "description": drive.description,
                    "created": drive.created_date_time,
                })),
                id: drive.id,
            },
        );
    }
}

/// What one scope covers, added to `c`.
async fn collect(
    pool: &AccountPool,
    scope: &ItemScope,
    c: &mut Collector,
    concurrency: usize,
) -> Result<(), PoolError> {
    match scope {
        ItemScope::PartialOrganization { one_drive, site } => {
            if *one_drive {
                let users = discovery::users(pool).await?;
                for (user, drive) in discovery::onedrives(pool, users, concurrency).await? {
                    c.onedrive(&user, drive);
                }
            }
            if *site {
                let sites: Vec<Site> = discovery::all_sites(pool)
                    .await?
                    .into_iter()
                    .filter(|s| !s.is_personal())
                    .collect();
                sites_with_subsites(pool, sites, c, concurrency).await?;
            }
        }
        ItemScope::PersonalSites => {
            let personal: Vec<Site> = discovery::all_sites(pool)
                .await?
                .into_iter()
                .filter(Site::is_personal)
                .collect();
            if personal.is_empty() {
                // Without application permissions personal sites are not listed: their
                // OneDrives are what can be found.
                let users = discovery::users(pool).await?;
                for (user, drive) in discovery::onedrives(pool, users, concurrency).await? {
                    c.onedrive(&user, drive);
                }
            } else {
                sites_with_subsites(pool, personal, c, concurrency).await?;
            }
        }
        ItemScope::User {
            user,
            one_drive,
            personal_site,
            ..
        } => {
            if *one_drive || *personal_site {
                let id = user.id.to_string();
                if let Some(drive) = discovery::onedrive(pool, &id).await? {
                    let u = User {
                        id,
                        display_name: Some(user.display_name.clone()),
                        user_principal_name: Some(user.name.clone()),
                    };
                    c.onedrive(&u, drive);
                }
            }
        }
        ItemScope::Group {
            group,
            members,
            member_one_drive,
            member_site,
            site,
        } => {
            let id = group.id.to_string();
            if *site {
                if let Some(s) = discovery::group_site(pool, &id).await? {
                    sites_with_subsites(pool, vec![s], c, concurrency).await?;
                }
            }
            if *members && (*member_one_drive || *member_site) {
                let users = discovery::group_members(pool, &id).await?;
                for (user, drive) in discovery::onedrives(pool, users, concurrency).await? {
                    c.onedrive(&user, drive);
                }
            }
        }
        ItemScope::Site(site) => {
            if let Some(s) = discovery::site(pool, &graph_site_id(site)).await? {
                sites_with_subsites(pool, vec![s], c, concurrency).await?;
            }
        }
    }
    Ok(())
}

/// The Graph id of a site a job item names: `host,collection,web` from our 72-character id
/// and the site's URL.
fn graph_site_id(site: &SiteRef) -> String {
    let host = site
        .url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if site.id.len() == 72 {
        format!("{host},{},{}", &site.id[..36], &site.id[36..])
    } else {
        site.id.clone()
    }
}

async fn sites_with_subsites(
    pool: &AccountPool,
    sites: Vec<Site>,
    c: &mut Collector,
    concurrency: usize,
) -> Result<(), PoolError> {
    // A search lists sub-sites beside their parents: each site once, with its parent when any
    // walk found one, and each tree walked once.
    let mut found: HashMap<String, (Site, Option<String>)> = HashMap::new();
    for site in sites {
        if found.contains_key(&site.id) {
            continue;
        }
        for (site, parent) in discovery::site_tree(pool, site).await? {
            match found.get_mut(&site.id) {
                Some(known) if known.1.is_none() => known.1 = parent,
                Some(_) => {}
                None => {
                    found.insert(site.id.clone(), (site, parent));
                }
            }
        }
    }
    let mut all: Vec<(Site, Option<String>)> = found.into_values().collect();
    all.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for (site, parent, drive) in discovery::libraries_of(pool, all, concurrency).await? {
        c.library(&site, parent.as_deref(), drive);
    }
    Ok(())
}

/// The protected objects of a job: its selection (or the whole organization) minus what its
/// exclusions cover, in a stable order.
pub async fn resolve(
    pool: &AccountPool,
    organization: OrganizationId,
    backup_type: BackupType,
    selected: &[BackupItem],
    excluded: &[BackupItem],
    concurrency: usize,
) -> Result<Vec<ProtectedObject>, PoolError> {
    let mut wanted = Collector {
        organization: organization.to_string(),
        objects: BTreeMap::new(),
    };
    match backup_type {
        BackupType::EntireOrganization => {
            let everything = ItemScope::PartialOrganization {
                one_drive: true,
                site: true,
            };
            collect(pool, &everything, &mut wanted, concurrency).await?;
        }
        BackupType::SelectedItems => {
            for item in selected {
                collect(pool, &item.scope, &mut wanted, concurrency).await?;
            }
        }
    }
    let mut unwanted = Collector {
        organization: organization.to_string(),
        objects: BTreeMap::new(),
    };
    for item in excluded {
        collect(pool, &item.scope, &mut unwanted, concurrency).await?;
    }
    let drop: BTreeSet<&String> = unwanted.objects.keys().collect();
    Ok(wanted
        .objects
        .into_iter()
        .filter(|(id, _)| !drop.contains(id))
        .map(|(_, o)| o)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_ids() {
        let graph = "contoso.sharepoint.com,6e570850-9ce9-40ed-b81d-41772dabcead,11111111-2222-3333-4444-555555555555";
        let ours = our_site_id(graph);
        assert_eq!(ours.len(), 72);
        let site = SiteRef {
            id: ours,
            url: "https://contoso.sharepoint.com/sites/x".into(),
            title: String::new(),
            name: String::new(),
            is_cloud: true,
            is_personal: false,
        };
        assert_eq!(graph_site_id(&site), graph);
    }
}
