//! Where a tenant signs in and where its Graph lives: the public cloud of its region by default,
//! or configured URLs (which is how an organization is pointed at m365sim).

use m365backup_core::endpoint_policy::is_microsoft_cloud;
use m365backup_core::organizations::Region;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority: String,
    /// e.g. `https://graph.microsoft.com/v1.0` (no trailing slash).
    pub graph: String,
}

impl Endpoints {
    pub fn for_region(region: Region) -> Self {
        let cloud = region.cloud();
        Self {
            authority: cloud.authority.to_owned(),
            graph: format!("{}/v1.0", cloud.graph),
        }
    }

    /// Whether these are Microsoft's own endpoints: only Microsoft's answers are quoted to
    /// clients word for word (anything else could be an internal host being probed).
    pub fn is_microsoft(&self) -> bool {
        is_microsoft_cloud(&self.authority) && is_microsoft_cloud(&self.graph)
    }

    /// `scheme://host[:port]` of the Graph endpoint: links Graph returns must stay on it.
    pub fn graph_origin(&self) -> &str {
        origin_of(&self.graph)
    }

    /// The region's defaults, replaced by whichever URL is configured.
    pub fn resolve(region: Region, authority: Option<&str>, graph: Option<&str>) -> Self {
        let defaults = Self::for_region(region);
        Self {
            authority: authority
                .map(|a| a.trim_end_matches('/').to_owned())
                .unwrap_or(defaults.authority),
            graph: graph
                .map(|g| g.trim_end_matches('/').to_owned())
                .unwrap_or(defaults.graph),
        }
    }
}

/// The `scheme://authority` prefix of an absolute URL (the whole string when it has no path).
pub(crate) fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            Endpoints::for_region(Region::Worldwide).graph,
            "https://graph.microsoft.com/v1.0"
        );
        let e = Endpoints::resolve(Region::China, Some("http://127.0.0.1:1/"), None);
        assert_eq!(e.authority, "http://127.0.0.1:1");
        assert_eq!(e.graph, "https://microsoftgraph.chinacloudapi.cn/v1.0");
        assert!(!e.is_microsoft());
        assert!(Endpoints::for_region(Region::Germany).is_microsoft());
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://graph.microsoft.com/v1.0"),
            "https://graph.microsoft.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:5/x?y"), "http://127.0.0.1:5");
        assert_eq!(origin_of("http://h:1"), "http://h:1");
    }
}
