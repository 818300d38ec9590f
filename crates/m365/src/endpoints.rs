//! Where a tenant signs in and where its Graph lives: the public cloud of its region by default,
//! or configured URLs (which is how an organization is pointed at m365sim).

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
        let (authority, graph) = match region {
            Region::Worldwide => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Region::USgovCommunity => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Region::USgovDefence => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            Region::Germany => (
                "https://login.microsoftonline.de",
                "https://graph.microsoft.de",
            ),
            Region::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        };
        Self {
            authority: authority.to_owned(),
            graph: format!("{graph}/v1.0"),
        }
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
    }
}
