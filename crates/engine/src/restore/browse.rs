//! Browsing a restore session's point in time: which OneDrives, sites and libraries it holds
//! (each object at its latest restore point at or before the session's time, across the
//! repositories the session may read), and the folders and documents inside them — all from the
//! catalog, never from the repository's packs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use m365backup_core::error::{CoreError, CoreResult};
use m365backup_core::restore::model::{RestoreSession, RestoreSessionId};
use m365backup_core::store::Store;
use m365backup_repo::registry::RepositoryService;
use m365backup_repo::{Item, ItemKind, ObjectKind, Repository, SnapshotFilter, SnapshotRecord};

/// One protected object at the session's point in time.
#[derive(Clone)]
pub struct RestorePoint {
    pub repo: Repository,
    pub snapshot: SnapshotRecord,
    /// The session shows items deleted before its point in time (`showDeleted`).
    pub show_deleted: bool,
}

impl RestorePoint {
    pub fn object(&self) -> &m365backup_repo::ProtectedObject {
        &self.snapshot.doc.object
    }

    /// A string attribute the backup kept about the object (site id, title…).
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.object()
            .attributes
            .as_ref()?
            .get(name)?
            .as_str()
            .map(str::to_owned)
    }

    /// The site a library belongs to (our site id).
    pub fn site_id(&self) -> Option<String> {
        self.attribute("siteId").or(self.object().owner_id.clone())
    }

    /// The object's root folder (the drive's root item).
    pub async fn root(&self) -> CoreResult<Option<Item>> {
        let top = self
            .repo
            .list_folder(&self.snapshot, None)
            .await
            .map_err(repo_error)?;
        Ok(top.into_iter().find(|i| i.kind == ItemKind::Folder))
    }

    /// The children of a folder (`None`: of the root).
    pub async fn children(&self, parent: Option<&str>) -> CoreResult<Vec<Item>> {
        let parent = match parent {
            Some(p) => p.to_owned(),
            None => match self.root().await? {
                Some(root) => root.id,
                None => return Ok(Vec::new()),
            },
        };
        let mut children = self
            .repo
            .list_folder(&self.snapshot, Some(&parent))
            .await
            .map_err(repo_error)?;
        if self.show_deleted {
            let deleted = self
                .repo
                .list_deleted(&self.snapshot, Some(&parent))
                .await
                .map_err(repo_error)?;
            children.extend(deleted);
            children.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        }
        Ok(children)
    }

    /// One item of the restore point; with `showDeleted`, also one deleted before it (as it
    /// last was).
    pub async fn item(&self, id: &str) -> CoreResult<Option<Item>> {
        let item = self
            .repo
            .item(&self.snapshot, id)
            .await
            .map_err(repo_error)?;
        if item.is_some() || !self.show_deleted {
            return Ok(item);
        }
        self.repo
            .item_last_seen(&self.snapshot, id)
            .await
            .map_err(repo_error)
    }
}

pub(crate) fn repo_error(e: m365backup_repo::RepoError) -> CoreError {
    CoreError::unavailable_because("the backup repository cannot be read", e)
}

/// A SharePoint site of the point in time, from its libraries' restore points.
#[derive(Clone, Debug)]
pub struct SiteEntry {
    /// Our site id (collection GUID + web GUID).
    pub id: String,
    pub title: String,
    pub url: String,
    /// The parent site's id, for a sub-site.
    pub parent_id: Option<String>,
}

/// Resolves sessions' restore points once and keeps them while the session lives.
pub struct Browser {
    store: Arc<dyn Store>,
    repositories: Arc<RepositoryService>,
    points: Mutex<HashMap<RestoreSessionId, CachedPoints>>,
}

/// A session's restore points and when they were last asked for.
type CachedPoints = (Arc<Vec<RestorePoint>>, Instant);

impl Browser {
    pub fn new(store: Arc<dyn Store>, repositories: Arc<RepositoryService>) -> Self {
        Self {
            store,
            repositories,
            points: Mutex::default(),
        }
    }

    /// Every object of the session's kind at its point in time (OneDrives for `Veod`,
    /// libraries for `Vesp`).
    pub async fn points(&self, session: &RestoreSession) -> CoreResult<Arc<Vec<RestorePoint>>> {
        if let Some((p, used)) = self
            .points
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&session.id)
        {
            *used = Instant::now();
            return Ok(p.clone());
        }
        let resolved = Arc::new(self.resolve(session).await?);
        self.points
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id, (resolved.clone(), Instant::now()));
        Ok(resolved)
    }

    /// Forgets a session's restore points (it stopped).
    pub fn forget(&self, session: RestoreSessionId) {
        self.points
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&session);
    }

    /// Forgets the restore points of sessions unused for `idle` (they stop by themselves).
    pub fn forget_idle(&self, idle: Duration) {
        self.points
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, used)| used.elapsed() < idle);
    }

    async fn resolve(&self, session: &RestoreSession) -> CoreResult<Vec<RestorePoint>> {
        let kind = match session.kind {
            m365backup_core::restore::model::RestoreKind::Veod => ObjectKind::OneDrive,
            m365backup_core::restore::model::RestoreKind::Vesp => ObjectKind::SiteLibrary,
        };
        let (repositories, job) = match session.job_id {
            Some(job_id) => {
                let job =
                    self.store.get_job(job_id).await?.ok_or_else(|| {
                        CoreError::NotFound(format!("Job '{job_id}' was not found."))
                    })?;
                (vec![job.definition.repository_id], Some(job_id.to_string()))
            }
            None => (
                self.repositories
                    .list()
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect(),
                None,
            ),
        };
        let filter = SnapshotFilter {
            organization_id: Some(session.organization_id.to_string()),
            at_or_before: Some(session.point_in_time),
            ..SnapshotFilter::default()
        };
        let mut latest: BTreeMap<String, RestorePoint> = BTreeMap::new();
        for id in repositories {
            let repo = match self.repositories.open(id).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(repository = %id, error = %m365backup_core::Chain(&e), "a repository cannot be opened for a restore session");
                    continue;
                }
            };
            for snapshot in repo.snapshots(&filter).await.map_err(repo_error)? {
                let doc = &snapshot.doc;
                if doc.object.kind != kind
                    || job.as_ref().is_some_and(|j| doc.job_id.as_ref() != Some(j))
                {
                    continue;
                }
                let key = doc.object.id.clone();
                if latest
                    .get(&key)
                    .is_none_or(|p| p.snapshot.doc.time < doc.time)
                {
                    latest.insert(
                        key,
                        RestorePoint {
                            repo: repo.clone(),
                            snapshot,
                            show_deleted: session.show_deleted,
                        },
                    );
                }
            }
        }
        let mut points: Vec<RestorePoint> = latest.into_values().collect();
        points.sort_by(|a, b| a.object().name.cmp(&b.object().name));
        Ok(points)
    }

    /// The restore point of one object (a OneDrive or a library) by its drive id.
    pub async fn point(&self, session: &RestoreSession, id: &str) -> CoreResult<RestorePoint> {
        self.points(session)
            .await?
            .iter()
            .find(|p| p.object().id == id)
            .cloned()
            .ok_or_else(|| CoreError::NotFound(format!("'{id}' is not in this restore session.")))
    }

    /// The sites of a `Vesp` session, from their libraries.
    pub async fn sites(&self, session: &RestoreSession) -> CoreResult<Vec<SiteEntry>> {
        let mut sites: BTreeMap<String, SiteEntry> = BTreeMap::new();
        for p in self.points(session).await?.iter() {
            let Some(id) = p.site_id() else { continue };
            sites.entry(id.clone()).or_insert_with(|| SiteEntry {
                title: p.attribute("siteTitle").unwrap_or_default(),
                url: p.attribute("siteUrl").unwrap_or_default(),
                parent_id: p.attribute("parentSiteId"),
                id,
            });
        }
        Ok(sites.into_values().collect())
    }

    pub async fn site(&self, session: &RestoreSession, id: &str) -> CoreResult<SiteEntry> {
        self.sites(session)
            .await?
            .into_iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| {
                CoreError::NotFound(format!("Site '{id}' is not in this restore session."))
            })
    }

    /// A site's libraries.
    pub async fn libraries(
        &self,
        session: &RestoreSession,
        site: &str,
    ) -> CoreResult<Vec<RestorePoint>> {
        Ok(self
            .points(session)
            .await?
            .iter()
            .filter(|p| p.site_id().is_some_and(|s| s.eq_ignore_ascii_case(site)))
            .cloned()
            .collect())
    }

    /// The library of a site that holds `item` (a folder or document id), or the library whose
    /// id it is (then `None` for the item).
    pub async fn library_of(
        &self,
        session: &RestoreSession,
        site: &str,
        id: &str,
    ) -> CoreResult<(RestorePoint, Option<Item>)> {
        let libraries = self.libraries(session, site).await?;
        if let Some(l) = libraries.iter().find(|l| l.object().id == id) {
            return Ok((l.clone(), None));
        }
        for l in libraries {
            if let Some(item) = l.item(id).await? {
                return Ok((l, Some(item)));
            }
        }
        Err(CoreError::NotFound(format!(
            "'{id}' is not in this site's restore point."
        )))
    }
}
