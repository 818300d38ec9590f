//! Directory listings (users, groups, members) of an organization, read from the tenant and kept
//! for a short time, so that paging through a large group does not re-read the directory for
//! every page. Each listing has a `setId`; a client that pages with it keeps seeing the same set.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::directory::{DirectoryGroup, DirectorySite, DirectoryUser, GatewayError, GroupMember};
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
    Sites(OrganizationId),
}

impl ListingKey {
    fn organization(&self) -> OrganizationId {
        match self {
            ListingKey::Users(o)
            | ListingKey::Groups(o)
            | ListingKey::Members(o, _)
            | ListingKey::Sites(o) => *o,
        }
    }
}

#[derive(Clone)]
enum Items {
    Users(Arc<Vec<DirectoryUser>>),
    Groups(Arc<Vec<DirectoryGroup>>),
    Members(Arc<Vec<GroupMember>>),
    Sites(Arc<Vec<DirectorySite>>),
}

struct Listing {
    key: ListingKey,
    fetched: Instant,
    items: Items,
}

/// Listings kept at most (oldest forgotten first); each may hold a large group's members.
const MAX_SETS: usize = 256;

/// Every live listing by its set id, and the newest set of each listing. A set stays usable for
/// its whole lifetime even after a newer listing of the same kind was fetched, so clients paging
/// through it are not switched to another set half-way.
#[derive(Default)]
struct Listings {
    by_set: HashMap<Uuid, Listing>,
    latest: HashMap<ListingKey, Uuid>,
}

impl Listings {
    fn expire(&mut self) {
        self.by_set
            .retain(|_, l| l.fetched.elapsed() < SET_LIFETIME);
        while self.by_set.len() > MAX_SETS {
            let oldest = self
                .by_set
                .iter()
                .min_by_key(|(_, l)| l.fetched)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.by_set.remove(&id),
                None => break,
            };
        }
        let by_set = &self.by_set;
        self.latest.retain(|_, id| by_set.contains_key(id));
    }
}

/// One page's source: the listing's set id and all its items.
pub struct Snapshot<T> {
    pub set_id: Uuid,
    pub items: Arc<Vec<T>>,
}

pub struct DirectoryService {
    organizations: Arc<OrganizationService>,
    listings: Mutex<Listings>,
    /// One directory read at a time per listing: concurrent first pages share one fetch.
    fetching: Mutex<HashMap<ListingKey, Arc<tokio::sync::Mutex<()>>>>,
}

fn gateway_error(e: GatewayError) -> CoreError {
    match e {
        GatewayError::NotFound(m) => CoreError::NotFound(m),
        GatewayError::Connection(m) | GatewayError::Unavailable(m) => {
            CoreError::unavailable(format!("Cannot read the organization's directory: {m}"))
        }
        GatewayError::Failed(e) => {
            CoreError::unavailable_because("Cannot read the organization's directory", e)
        }
        GatewayError::Throttled {
            retry_after,
            source,
        } => CoreError::unavailable_because("Cannot read the organization's directory", source)
            .retry_after(retry_after),
    }
}

impl DirectoryService {
    pub fn new(organizations: Arc<OrganizationService>) -> Self {
        Self {
            organizations,
            listings: Mutex::default(),
            fetching: Mutex::default(),
        }
    }

    /// The listing `set_id` names (404 when it is unknown, expired or of another listing), or
    /// with no set id the newest listing while it is fresh.
    fn cached(&self, key: &ListingKey, set_id: Option<Uuid>) -> CoreResult<Option<(Uuid, Items)>> {
        let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        listings.expire();
        match set_id {
            Some(id) => match listings.by_set.get(&id) {
                Some(l) if l.key == *key => Ok(Some((id, l.items.clone()))),
                _ => Err(CoreError::NotFound(format!(
                    "The listing '{id}' (setId) is unknown or has expired: ask for the first page without setId."
                ))),
            },
            None => Ok(listings.latest.get(key).and_then(|id| {
                let l = listings.by_set.get(id)?;
                (l.fetched.elapsed() < LISTING_TTL).then(|| (*id, l.items.clone()))
            })),
        }
    }

    fn remember(&self, key: ListingKey, items: Items) -> Uuid {
        let set_id = Uuid::new_v4();
        let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        listings.latest.insert(key.clone(), set_id);
        listings.by_set.insert(
            set_id,
            Listing {
                key,
                fetched: Instant::now(),
                items,
            },
        );
        listings.expire();
        set_id
    }

    /// A listing from the cache, or read from the tenant by `fetch` (once, however many
    /// requests ask for it at the same time).
    async fn listing<F, Fut>(
        &self,
        key: ListingKey,
        set_id: Option<Uuid>,
        fetch: F,
    ) -> CoreResult<(Uuid, Items)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = CoreResult<Items>>,
    {
        if let Some(hit) = self.cached(&key, set_id)? {
            return Ok(hit);
        }
        let flight = self
            .fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _turn = flight.lock().await;
        // Another request may have fetched it while this one waited.
        if let Some(hit) = self.cached(&key, None)? {
            return Ok(hit);
        }
        let items = fetch().await?;
        Ok((self.remember(key, items.clone()), items))
    }

    /// Forgets everything cached for an organization (after it was edited or removed).
    pub fn forget(&self, organization: OrganizationId) {
        let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        listings
            .by_set
            .retain(|_, l| l.key.organization() != organization);
        listings.expire();
        self.fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| k.organization() != organization);
    }

    pub async fn users(
        &self,
        org: OrganizationId,
        set_id: Option<Uuid>,
    ) -> CoreResult<Snapshot<DirectoryUser>> {
        let fetched = self
            .listing(ListingKey::Users(org), set_id, || async {
                let (_, connection) = self.organizations.connection(org).await?;
                let users = self.organizations.gateway().users(&connection).await;
                Ok(Items::Users(Arc::new(users.map_err(gateway_error)?)))
            })
            .await?;
        match fetched {
            (set_id, Items::Users(items)) => Ok(Snapshot { set_id, items }),
            _ => Err(mixed_up()),
        }
    }

    pub async fn groups(
        &self,
        org: OrganizationId,
        set_id: Option<Uuid>,
    ) -> CoreResult<Snapshot<DirectoryGroup>> {
        let fetched = self
            .listing(ListingKey::Groups(org), set_id, || async {
                let (_, connection) = self.organizations.connection(org).await?;
                let groups = self.organizations.gateway().groups(&connection).await;
                Ok(Items::Groups(Arc::new(groups.map_err(gateway_error)?)))
            })
            .await?;
        match fetched {
            (set_id, Items::Groups(items)) => Ok(Snapshot { set_id, items }),
            _ => Err(mixed_up()),
        }
    }

    /// Every site of the organization (site collections, their sub-sites, personal sites).
    pub async fn sites(
        &self,
        org: OrganizationId,
        set_id: Option<Uuid>,
    ) -> CoreResult<Snapshot<DirectorySite>> {
        let fetched = self
            .listing(ListingKey::Sites(org), set_id, || async {
                let (_, connection) = self.organizations.connection(org).await?;
                let sites = self.organizations.gateway().sites(&connection).await;
                Ok(Items::Sites(Arc::new(sites.map_err(gateway_error)?)))
            })
            .await?;
        match fetched {
            (set_id, Items::Sites(items)) => Ok(Snapshot { set_id, items }),
            _ => Err(mixed_up()),
        }
    }

    /// One site by our id (collection + web GUIDs) or its URL, or `NotFound`.
    pub async fn site(&self, org: OrganizationId, id_or_url: &str) -> CoreResult<DirectorySite> {
        let sites = self.sites(org, None).await?;
        let wanted = id_or_url.trim();
        sites
            .items
            .iter()
            .find(|s| {
                s.id().eq_ignore_ascii_case(wanted)
                    || s.url
                        .trim_end_matches('/')
                        .eq_ignore_ascii_case(wanted.trim_end_matches('/'))
            })
            .cloned()
            .ok_or_else(|| {
                CoreError::NotFound(format!(
                    "Site '{wanted}' was not found in the organization."
                ))
            })
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
        if set_id.is_none() {
            self.group(org, group).await?;
        }
        let fetched = self
            .listing(ListingKey::Members(org, group), set_id, || async {
                let (_, connection) = self.organizations.connection(org).await?;
                let members = self
                    .organizations
                    .gateway()
                    .group_members(&connection, group)
                    .await;
                Ok(Items::Members(Arc::new(members.map_err(gateway_error)?)))
            })
            .await?;
        match fetched {
            (set_id, Items::Members(items)) => Ok(Snapshot { set_id, items }),
            _ => Err(mixed_up()),
        }
    }
}

/// A listing key always maps to items of its own kind; anything else is a bug.
fn mixed_up() -> CoreError {
    CoreError::internal(
        "reading the directory cache",
        "the cache returned items of another kind",
    )
}
