//! Finding what can be backed up, through the account pool: users and their OneDrives, sites
//! (site collections, sub-sites, group sites, personal sites) and their document libraries.
//! Each drive's access is tied to its owner's (`drives/{id}` follows `users/{id}` or
//! `sites/{id}`), so the pool routes a drive's requests to accounts that may read it. A user,
//! site or drive nobody may read is skipped (the pool reports it), not an error.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use m365backup_m365::paging::Pager;
use m365backup_m365::pool::{AccountPool, PoolError};
use m365backup_m365::M365Error;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A collection page of Graph.
#[derive(Deserialize)]
pub(crate) struct Page<T> {
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
}

/// A site as Graph lists it (the directory's own type, so both read one shape and one
/// personal-site rule).
pub use m365backup_m365::directory::GraphSite as Site;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drive {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub drive_type: Option<String>,
}

/// Every item of a collection, following `@odata.nextLink` through a [`Pager`]; with `as_organization`, through
/// the organization's own credentials (calls that need application permissions).
pub(crate) async fn all<T: DeserializeOwned>(
    pool: &AccountPool,
    first: &str,
    as_organization: bool,
) -> Result<Vec<T>, PoolError> {
    let mut items = Vec::new();
    let mut pager = Pager::new(first);
    while let Some(url) = pager.next_page()? {
        let page: Page<T> = if as_organization {
            pool.get_json_as_organization(&url).await?
        } else {
            pool.get_json(&url).await?
        };
        items.extend(page.value);
        pager.follow(page.next_link)?;
    }
    Ok(items)
}

/// A site or drive nobody may read (or that is gone) is `None`, not an error.
pub(crate) fn readable<T>(result: Result<T, PoolError>) -> Result<Option<T>, PoolError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(PoolError::AccessDenied(_)) => Ok(None),
        Err(PoolError::M365(e)) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn users(pool: &AccountPool) -> Result<Vec<User>, PoolError> {
    all(pool, "/users?$top=999", false).await
}

/// A user's OneDrive; `None` without one (no licence) or when nobody may read it.
pub async fn onedrive(pool: &AccountPool, user_id: &str) -> Result<Option<Drive>, PoolError> {
    let drive = readable(
        pool.get_json::<Drive>(&format!("/users/{user_id}/drive"))
            .await,
    )?;
    if let Some(d) = &drive {
        pool.same_access(&format!("drives/{}", d.id), &format!("users/{user_id}"));
    }
    Ok(drive)
}

/// The OneDrives of `users`, `concurrency` at a time, with their owners.
pub async fn onedrives(
    pool: &AccountPool,
    users: Vec<User>,
    concurrency: usize,
) -> Result<Vec<(User, Drive)>, PoolError> {
    let found: Vec<Option<(User, Drive)>> = stream::iter(users)
        .map(|u| async move { Ok::<_, PoolError>(onedrive(pool, &u.id).await?.map(|d| (u, d))) })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(found.into_iter().flatten().collect())
}

/// Every site collection: `getAllSites` with the organization's application permissions
/// (personal sites included); without them, the sites a search finds.
pub async fn all_sites(pool: &AccountPool) -> Result<Vec<Site>, PoolError> {
    match all(pool, "/sites/getAllSites?$top=999", true).await {
        Ok(sites) => Ok(sites),
        Err(PoolError::AccessDenied(_) | PoolError::NoUsableAccount(_)) => {
            all(pool, "/sites?search=*", false).await
        }
        Err(PoolError::M365(e)) if e.is_access_denied() => {
            all(pool, "/sites?search=*", false).await
        }
        Err(e) => Err(e),
    }
}

/// A site by its Graph id; `None` when nobody may read it.
pub async fn site(pool: &AccountPool, id: &str) -> Result<Option<Site>, PoolError> {
    readable(pool.get_json::<Site>(&format!("/sites/{id}")).await)
}

/// A group's team site; `None` for a group without one.
pub async fn group_site(pool: &AccountPool, group_id: &str) -> Result<Option<Site>, PoolError> {
    readable(
        pool.get_json::<Site>(&format!("/groups/{group_id}/sites/root"))
            .await,
    )
}

/// A group's members that are users.
pub async fn group_members(pool: &AccountPool, group_id: &str) -> Result<Vec<User>, PoolError> {
    #[derive(Deserialize)]
    struct Member {
        #[serde(rename = "@odata.type", default)]
        odata_type: Option<String>,
        #[serde(flatten)]
        user: User,
    }
    let members: Vec<Member> =
        all(pool, &format!("/groups/{group_id}/members?$top=999"), false).await?;
    Ok(members
        .into_iter()
        .filter(|m| {
            m.odata_type
                .as_deref()
                .is_none_or(|t| t == "#microsoft.graph.user")
        })
        .map(|m| m.user)
        .collect())
}

/// A site and all its sub-sites, each with its parent's Graph id (`None` for `site` itself).
pub async fn site_tree(
    pool: &AccountPool,
    site: Site,
) -> Result<Vec<(Site, Option<String>)>, PoolError> {
    let mut found = Vec::new();
    let mut pending = vec![(site, None)];
    while let Some((site, parent)) = pending.pop() {
        if !site.is_personal() {
            let listed = all::<Site>(pool, &format!("/sites/{}/sites", site.id), false).await;
            let children = match listed {
                // A site that cannot have sub-sites refuses the question; its libraries still
                // count.
                Err(PoolError::M365(M365Error::Graph { status: 400, .. })) => {
                    tracing::debug!(site = %site.id, "sub-sites not listed");
                    Vec::new()
                }
                other => readable(other)?.unwrap_or_default(),
            };
            pending.extend(children.into_iter().map(|c| (c, Some(site.id.clone()))));
        }
        found.push((site, parent));
    }
    Ok(found)
}

/// The document libraries of a site; empty when nobody may read it.
pub async fn libraries(pool: &AccountPool, site_id: &str) -> Result<Vec<Drive>, PoolError> {
    let drives = readable(all::<Drive>(pool, &format!("/sites/{site_id}/drives"), false).await)?
        .unwrap_or_default();
    for d in &drives {
        pool.same_access(&format!("drives/{}", d.id), &format!("sites/{site_id}"));
    }
    Ok(drives
        .into_iter()
        .filter(|d| {
            d.drive_type
                .as_deref()
                .is_none_or(|t| t == "documentLibrary" || t == "business")
        })
        .collect())
}

/// The libraries of many sites, `concurrency` sites at a time, with their site.
pub async fn libraries_of<S: Clone + Send + Sync>(
    pool: &AccountPool,
    sites: Vec<(Site, S)>,
    concurrency: usize,
) -> Result<Vec<(Site, S, Drive)>, PoolError> {
    let found: Vec<Vec<(Site, S, Drive)>> = stream::iter(sites)
        .map(|(site, extra)| async move {
            let drives = libraries(pool, &site.id).await?;
            Ok::<_, PoolError>(
                drives
                    .into_iter()
                    .map(|d| (site.clone(), extra.clone(), d))
                    .collect(),
            )
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(found.into_iter().flatten().collect())
}
