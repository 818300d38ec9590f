//! What each credential may read. A backup account is an ordinary user: it reads its own
//! OneDrive, the sites it belongs to and whatever it (or its group) administers; elsewhere Graph
//! answers `403 accessDenied`. Access is learned per *scope* — a site (`sites/{id}`), a drive
//! (`drives/{id}`) or a user's OneDrive (`users/{id}`) — from those answers: a denied account is
//! not asked again for that scope, and once every backup account was denied, the
//! organization's own credentials (usually app-only, which read everything) serve it.

use std::collections::{BTreeSet, HashMap};

use super::PoolError;

/// Where a request may go.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// The site or drive the request reads, if any.
    pub scope: Option<String>,
    /// Only the organization's own credentials (application permissions needed).
    pub organization_only: bool,
}

impl Route {
    pub fn for_url(url: &str) -> Self {
        Self {
            scope: access_scope(url),
            organization_only: false,
        }
    }

    pub fn organization() -> Self {
        Self {
            scope: None,
            organization_only: true,
        }
    }
}

/// The site, drive or OneDrive a Graph URL reads: `drives/{id}`, `sites/{id}`, `users/{id}`
/// (for `/users/{id}/drive…`); `None` for directory and tenant-wide calls.
pub fn access_scope(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = match path.find("/v1.0/") {
        Some(at) => &path[at + "/v1.0/".len()..],
        None => path.trim_start_matches('/'),
    };
    let mut segments = path.split('/');
    let (kind, id) = (segments.next()?, segments.next()?);
    let next = segments.next();
    match kind {
        "drives" if !id.is_empty() => Some(format!("drives/{id}")),
        "sites" if !id.is_empty() && id != "getAllSites" => Some(format!("sites/{id}")),
        "users" if next == Some("drive") => Some(format!("users/{id}")),
        _ => None,
    }
}

/// Sites and drives read with the organization's credentials, and those nobody could read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessReport {
    pub via_organization: Vec<String>,
    pub unreadable: Vec<String>,
}

#[derive(Default)]
pub struct Access {
    /// Per scope, the accounts (indexes) it answered 403 to.
    denied: HashMap<String, BTreeSet<usize>>,
    /// A drive's access is its site's.
    aliases: HashMap<String, String>,
    via_organization: BTreeSet<String>,
    unreadable: BTreeSet<String>,
}

impl Access {
    fn canonical<'a>(&'a self, scope: &'a str) -> &'a str {
        let mut at = scope;
        for _ in 0..4 {
            match self.aliases.get(at) {
                Some(parent) => at = parent,
                None => break,
            }
        }
        at
    }

    pub fn alias(&mut self, scope: &str, parent: &str) {
        if scope != parent {
            self.aliases.insert(scope.to_owned(), parent.to_owned());
        }
    }

    /// Which accounts may take a request on `route`; `organization[i]` says whether account `i`
    /// is the organization's own. Backup accounts not known to be denied; the organization's
    /// credentials only when no backup account is left (or asked for).
    pub fn eligible(&self, route: &Route, organization: &[bool]) -> Result<Vec<bool>, PoolError> {
        let own = |want: bool| organization.iter().map(|&o| o == want).collect::<Vec<_>>();
        if route.organization_only {
            return if organization.contains(&true) {
                Ok(own(true))
            } else {
                Err(PoolError::AccessDenied(
                    "tenant-wide listings (no organization credentials)".into(),
                ))
            };
        }
        if !organization.contains(&false) {
            return Ok(own(true));
        }
        let Some(scope) = route.scope.as_deref() else {
            return Ok(own(false));
        };
        let scope = self.canonical(scope);
        if self.unreadable.contains(scope) {
            return Err(PoolError::AccessDenied(scope.to_owned()));
        }
        let denied = self.denied.get(scope);
        let backup: Vec<bool> = organization
            .iter()
            .enumerate()
            .map(|(i, &o)| !o && denied.is_none_or(|d| !d.contains(&i)))
            .collect();
        if backup.contains(&true) {
            return Ok(backup);
        }
        if organization.contains(&true) {
            Ok(own(true))
        } else {
            Err(PoolError::AccessDenied(scope.to_owned()))
        }
    }

    /// Account `index` was denied `scope`. True when that leaves nobody who may read it.
    pub fn denied(&mut self, scope: &str, index: usize, organization: bool) -> bool {
        let scope = self.canonical(scope).to_owned();
        if organization {
            self.via_organization.remove(&scope);
            self.unreadable.insert(scope);
            return true;
        }
        self.denied.entry(scope).or_default().insert(index);
        false
    }

    /// Account `index` read `scope`.
    pub fn readable(&mut self, scope: &str, _index: usize, organization: bool) {
        if organization {
            let scope = self.canonical(scope).to_owned();
            self.via_organization.insert(scope);
        }
    }

    pub fn report(&self) -> AccessReport {
        AccessReport {
            via_organization: self.via_organization.iter().cloned().collect(),
            unreadable: self.unreadable.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_urls() {
        assert_eq!(
            access_scope("https://graph.microsoft.com/v1.0/drives/b!x/root/delta?token=1"),
            Some("drives/b!x".into())
        );
        assert_eq!(
            access_scope("/sites/a,b,c/drives"),
            Some("sites/a,b,c".into())
        );
        assert_eq!(access_scope("/sites/getAllSites"), None);
        assert_eq!(access_scope("/users/u1/drive"), Some("users/u1".into()));
        assert_eq!(access_scope("/users?$top=999"), None);
        assert_eq!(access_scope("/organization"), None);
    }

    #[test]
    fn denied_accounts_are_skipped_then_the_organization_serves() {
        let roles = [false, false, true];
        let mut access = Access::default();
        let route = Route::for_url("/drives/d1/root/delta");
        assert_eq!(
            access.eligible(&route, &roles).unwrap(),
            [true, true, false]
        );
        assert!(!access.denied("drives/d1", 0, false));
        assert_eq!(
            access.eligible(&route, &roles).unwrap(),
            [false, true, false]
        );
        assert!(!access.denied("drives/d1", 1, false));
        assert_eq!(
            access.eligible(&route, &roles).unwrap(),
            [false, false, true]
        );
        access.readable("drives/d1", 2, true);
        // A drive of a site nobody could read goes straight to the organization.
        access.alias("drives/d2", "sites/s");
        access.denied("sites/s", 0, false);
        access.denied("sites/s", 1, false);
        let d2 = Route::for_url("/drives/d2/items/x/content");
        assert_eq!(access.eligible(&d2, &roles).unwrap(), [false, false, true]);
        assert!(access.denied("drives/d2", 2, true), "nobody left");
        assert!(matches!(
            access.eligible(&d2, &roles),
            Err(PoolError::AccessDenied(s)) if s == "sites/s"
        ));
        assert_eq!(
            access.report(),
            AccessReport {
                via_organization: vec!["drives/d1".into()],
                unreadable: vec!["sites/s".into()],
            }
        );
        // Directory calls go to backup accounts; without any, to the organization.
        assert_eq!(
            access.eligible(&Route::for_url("/users"), &roles).unwrap(),
            [true, true, false]
        );
        assert_eq!(
            access.eligible(&route, &[true]).unwrap(),
            [true],
            "no backup accounts"
        );
    }
}
