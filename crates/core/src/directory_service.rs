//! Directory listings (users, groups, members) of an organization, read from the tenant and kept
//! for a short time, so that paging through a large group does not re-read the directory for
//! every page. Each listing has a `setId`; a client that pages with it keeps seeing the same set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::directory::{DirectoryGroup, DirectoryUser, GatewayError, GroupMember};
use crate::error::{CoreError, CoreResult};
use crate::ids::OrganizationId;
use crate::organization_service::OrganizationService;

/// A fresh request reuses a listing this young.
pub const LISTING_TTL: Duration = Duration::from_secs(60);
/// A request naming a listing's `setId` reuses it this long.
pub const SET_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ListingKey {
    Users(OrganizationId),
    Groups(OrganizationId),
    Members(OrganizationId, Uuid),
}

#[derive(Clone)]
enum Items {
    Users(Arc<Vec<DirectoryUser>>),
    Groups(Arc<Vec<DirectoryGroup>>),
    Members(Arc<Vec<GroupMember>>),
}

struct Listing {
    set_id: Uuid,
    fetched: Instant,
    items: Items,
}

/// One page's source: the listing's set id and all its items.
pub struct Snapshot<T> {
    pub set_id: Uuid,
    pub items: Arc<Vec<T>>,
}

pub struct DirectoryService {
    organizations: Arc<OrganizationService>,
    listings: Mutex<HashMap<ListingKey, Listing>>,
}

fn gateway_error(e: GatewayError) -> CoreError {
    match e {
        GatewayError::NotFound(m) => CoreError::NotFound(m),
        GatewayError::Connection(m) | GatewayError::Unavailable(m) => {
            CoreError::Unavailable(format!("Cannot read the organization's directory: {m}"))
        }
    }
}

impl DirectoryService {
    pub fn new(organizations: Arc<OrganizationService>) -> Self {
        Self {
            organizations,
            listings: Mutex::default(),
        }
    }

    /// The cached listing for `key` when still usable for this request.
    fn cached(&self, key: &ListingKey, set_id: Option<Uuid>) -> Option<(Uuid, Items)> {
        let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        listings.retain(|_, l| l.fetched.elapsed() < SET_LIFETIME);
        let l = listings.get(key)?;
        let usable = match set_id {
            Some(id) => id == l.set_id,
            None => l.fetched.elapsed() < LISTING_TTL,
        };
        usable.then(|| (l.set_id, l.items.clone()))
    }

    fn remember(&self, key: ListingKey, items: Items) -> Uuid {
        let set_id = Uuid::new_v4();
        let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        listings.insert(
            key,
            Listing {
                set_id,
                fetched: Instant::now(),
                items,
            },
        );
        set_id
    }

    /// Forgets everything cached for an organization (after it was edited or removed).
    pub fn forget(&self, organization: OrganizationId) {
        let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        listings.retain(|k, _| match k {
            ListingKey::Users(o) | ListingKey::Groups(o) | ListingKey::Members(o, _) => {
                *o != organization
            }
        });
    }

    pub async fn users(
        &self,
        org: OrganizationId,
        set_id: Option<Uuid>,
    ) -> CoreResult<Snapshot<DirectoryUser>> {
        let key = ListingKey::Users(org);
        if let Some((set_id, Items::Users(items))) = self.cached(&key, set_id) {
            return Ok(Snapshot { set_id, items });
        }
        let (_, connection) = self.organizations.connection(org).await?;
        let items = Arc::new(
            self.organizations
                .gateway()
                .users(&connection)
                .await
                .map_err(gateway_error)?,
        );
        let set_id = self.remember(key, Items::Users(items.clone()));
        Ok(Snapshot { set_id, items })
    }

    pub async fn groups(
        &self,
        org: OrganizationId,
        set_id: Option<Uuid>,
    ) -> CoreResult<Snapshot<DirectoryGroup>> {
        let key = ListingKey::Groups(org);
        if let Some((set_id, Items::Groups(items))) = self.cached(&key, set_id) {
            return Ok(Snapshot { set_id, items });
        }
        let (_, connection) = self.organizations.connection(org).await?;
        let items = Arc::new(
            self.organizations
                .gateway()
                .groups(&connection)
                .await
                .map_err(gateway_error)?,
        );
        let set_id = self.remember(key, Items::Groups(items.clone()));
        Ok(Snapshot { set_id, items })
    }

    /// One group of the organization, or `NotFound`.
    pub async fn group(&self, org: OrganizationId, group: Uuid) -> CoreResult<DirectoryGroup> {
        let groups = self.groups(org, None).await?;
        groups
            .items
            .iter()
            .find(|g| g.id == group)
            .cloned()
            .ok_or_else(|| {
                CoreError::NotFound(format!(
                    "Group '{group}' was not found in the organization."
                ))
            })
    }

    pub async fn members(
        &self,
        org: OrganizationId,
        group: Uuid,
        set_id: Option<Uuid>,
    ) -> CoreResult<Snapshot<GroupMember>> {
        let key = ListingKey::Members(org, group);
        if let Some((set_id, Items::Members(items))) = self.cached(&key, set_id) {
            return Ok(Snapshot { set_id, items });
        }
        self.group(org, group).await?;
        let (_, connection) = self.organizations.connection(org).await?;
        let items = Arc::new(
            self.organizations
                .gateway()
                .group_members(&connection, group)
                .await
                .map_err(gateway_error)?,
        );
        let set_id = self.remember(key, Items::Members(items.clone()));
        Ok(Snapshot { set_id, items })
    }
}
