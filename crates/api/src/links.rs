//! `_links`: relation name → `{"href": absolute URL}`, built from the request's own base URL.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Link {
    pub href: String,
}

impl Link {
    pub fn new(href: impl Into<String>) -> Self {
        Self { href: href.into() }
    }
}

pub type Links = BTreeMap<&'static str, Link>;

/// The absolute URL of a v5 resource. Each resource's path is spelled here once; handlers name
/// the resource and add sub-paths: `Href::job(base, id).at("jobsessions").link()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Href(String);

impl Href {
    /// A top-level collection, e.g. `{base}/v5/jobsessions`.
    pub fn collection(base: &str, name: &str) -> Self {
        Href(format!("{base}/v5/{name}"))
    }

    pub fn organization(base: &str, id: impl Display) -> Self {
        Self::collection(base, "organizations").at(id)
    }

    pub fn job(base: &str, id: impl Display) -> Self {
        Self::collection(base, "jobs").at(id)
    }

    pub fn job_session(base: &str, id: impl Display) -> Self {
        Self::collection(base, "jobsessions").at(id)
    }

    pub fn restore_session(base: &str, id: impl Display) -> Self {
        Self::collection(base, "restoresessions").at(id)
    }

    pub fn backup_repository(base: &str, id: impl Display) -> Self {
        Self::collection(base, "backuprepositories").at(id)
    }

    pub fn object_storage_repository(base: &str, id: impl Display) -> Self {
        Self::collection(base, "objectstoragerepositories").at(id)
    }

    pub fn proxy(base: &str, id: impl Display) -> Self {
        Self::collection(base, "proxies").at(id)
    }

    pub fn licensed_user(base: &str, id: impl Display) -> Self {
        Self::collection(base, "licensedusers").at(id)
    }

    /// One more path segment (or several, `a/b`), as given.
    pub fn at(mut self, segment: impl Display) -> Self {
        use std::fmt::Write;
        let _ = write!(self.0, "/{segment}");
        self
    }

    pub fn link(&self) -> Link {
        Link::new(self.0.clone())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Display for Href {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Href {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<Href> for String {
    fn from(h: Href) -> String {
        h.0
    }
}

#[cfg(test)]
mod tests {
    use super::Href;

    #[test]
    fn resource_urls() {
        let base = "https://backup.example:4443";
        assert_eq!(
            Href::job(base, "j1").at("jobsessions").as_str(),
            "https://backup.example:4443/v5/jobs/j1/jobsessions"
        );
        assert_eq!(
            Href::collection(base, "licensedusers").to_string(),
            "https://backup.example:4443/v5/licensedusers"
        );
    }
}
