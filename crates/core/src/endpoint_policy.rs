//! Where an organization may send its credentials: the Microsoft cloud of its region, over
//! HTTPS, and nothing else unless the server's configuration allows more (`allowed_endpoints`:
//! the demo's simulator, a test tenant). A stolen API token must not be able to point an
//! organization at its own host and collect the stored secrets, nor probe internal hosts.

use url::Url;

use crate::organizations::Region;

/// The identity platform and Graph origins of a Microsoft cloud (no trailing slash, no path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudEndpoints {
    pub authority: &'static str,
    pub graph: &'static str,
}

impl Region {
    /// The public cloud this region's tenants live in.
    pub fn cloud(self) -> CloudEndpoints {
        let (authority, graph) = match self {
            Region::Worldwide | Region::USgovCommunity => (
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
        CloudEndpoints { authority, graph }
    }
}

/// `true` when `url` is on one of Microsoft's cloud endpoints (any region), over HTTPS on the
/// default port. Answers from anywhere else are not Microsoft's and are not quoted to clients.
pub fn is_microsoft_cloud(url: &str) -> bool {
    let Ok(url) = Url::parse(url) else {
        return false;
    };
    ALL_REGIONS.iter().any(|r| {
        let cloud = r.cloud();
        [cloud.authority, cloud.graph]
            .iter()
            .any(|origin| same_origin(&url, origin))
    })
}

const ALL_REGIONS: [Region; 5] = [
    Region::Worldwide,
    Region::USgovCommunity,
    Region::Germany,
    Region::China,
    Region::USgovDefence,
];

fn same_origin(url: &Url, origin: &str) -> bool {
    Url::parse(origin).is_ok_and(|o| o.origin() == url.origin())
}

/// One origin the configuration allows besides Microsoft's: `scheme://host[:port]`, where the
/// port may be `*`; or `*` alone for any http(s) endpoint (tests only).
#[derive(Clone, Debug, PartialEq, Eq)]
enum AllowedOrigin {
    Any,
    Origin {
        scheme: String,
        host: String,
        /// `None`: any port.
        port: Option<u16>,
    },
}

impl AllowedOrigin {
    fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self::Any);
        }
        let bad = || format!("'{raw}' is not an origin like https://host[:port] or http://host:*");
        let (scheme, rest) = raw.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad());
        }
        let rest = rest.trim_end_matches('/');
        let (authority, any_port) = match rest.strip_suffix(":*") {
            Some(a) => (a, true),
            None => (rest, false),
        };
        let url = Url::parse(&format!("{scheme}://{authority}")).map_err(|_| bad())?;
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err(bad());
        }
        let host = url.host_str().ok_or_else(bad)?.to_ascii_lowercase();
        Ok(Self::Origin {
            port: if any_port {
                None
            } else {
                url.port_or_known_default()
            },
            scheme,
            host,
        })
    }

    fn allows(&self, url: &Url) -> bool {
        match self {
            Self::Any => true,
            Self::Origin { scheme, host, port } => {
                url.scheme() == scheme
                    && url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
                    && port.is_none_or(|p| url.port_or_known_default() == Some(p))
            }
        }
    }
}

/// Which sign-in and Graph endpoints organizations may use.
#[derive(Clone, Debug, Default)]
pub struct EndpointPolicy {
    allowed: Vec<AllowedOrigin>,
}

/// The two kinds of endpoint an organization names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointKind {
    Authority,
    Graph,
}

impl EndpointPolicy {
    /// Microsoft's clouds only.
    pub fn microsoft_only() -> Self {
        Self::default()
    }

    /// Microsoft's clouds plus the given origins (see [`AllowedOrigin`] for the syntax).
    pub fn with_allowed<S: AsRef<str>>(origins: &[S]) -> Result<Self, String> {
        let allowed = origins
            .iter()
            .map(|o| AllowedOrigin::parse(o.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Adds one allowed origin (the demo's simulator, known only once it listens).
    pub fn allow(&mut self, origin: &str) -> Result<(), String> {
        self.allowed.push(AllowedOrigin::parse(origin)?);
        Ok(())
    }

    /// Whether `url` may be used as the `kind` endpoint of a tenant in `region`. The error says
    /// what is accepted.
    pub fn check(&self, region: Region, kind: EndpointKind, raw: &str) -> Result<(), String> {
        let url = Url::parse(raw.trim()).map_err(|_| "must be an absolute URL".to_owned())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http(s) URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not carry a query or fragment".into());
        }
        let cloud = region.cloud();
        let expected = match kind {
            EndpointKind::Authority => cloud.authority,
            EndpointKind::Graph => cloud.graph,
        };
        if same_origin(&url, expected) || self.allowed.iter().any(|a| a.allows(&url)) {
            return Ok(());
        }
        Err(format!(
            "must be {expected} for region {region:?}; other endpoints must be allowed in the \
             server's configuration (allowed_endpoints)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_only_accepts_the_regions_cloud() {
        let p = EndpointPolicy::microsoft_only();
        let auth = EndpointKind::Authority;
        assert!(p
            .check(Region::Worldwide, auth, "https://login.microsoftonline.com")
            .is_ok());
        assert!(p
            .check(
                Region::Worldwide,
                auth,
                "https://login.microsoftonline.com/"
            )
            .is_ok());
        assert!(p
            .check(
                Region::Worldwide,
                EndpointKind::Graph,
                "https://graph.microsoft.com/v1.0"
            )
            .is_ok());
        // Another region's cloud, plain HTTP, another port, a look-alike host, credentials.
        for bad in [
            "https://login.chinacloudapi.cn",
            "http://login.microsoftonline.com",
            "https://login.microsoftonline.com:8443",
            "https://login.microsoftonline.com.evil.example",
            "https://user:pw@login.microsoftonline.com",
            "http://127.0.0.1:9000",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(p.check(Region::Worldwide, auth, bad).is_err(), "{bad}");
        }
        assert!(p
            .check(Region::China, auth, "https://login.chinacloudapi.cn")
            .is_ok());
    }

    #[test]
    fn configured_origins() {
        let p = EndpointPolicy::with_allowed(&["http://127.0.0.1:*", "https://sim.example:8443"])
            .unwrap();
        let g = EndpointKind::Graph;
        assert!(p
            .check(Region::Worldwide, g, "http://127.0.0.1:4000/v1.0")
            .is_ok());
        assert!(p
            .check(Region::Worldwide, g, "https://sim.example:8443/v1.0")
            .is_ok());
        assert!(p
            .check(Region::Worldwide, g, "https://sim.example/v1.0")
            .is_err());
        assert!(p
            .check(Region::Worldwide, g, "http://127.0.0.2:4000")
            .is_err());
        assert!(EndpointPolicy::with_allowed(&["127.0.0.1"]).is_err());
        assert!(EndpointPolicy::with_allowed(&["ftp://x"]).is_err());
        let any = EndpointPolicy::with_allowed(&["*"]).unwrap();
        assert!(any.check(Region::Worldwide, g, "http://10.0.0.1:1").is_ok());
    }

    #[test]
    fn microsoft_hosts_are_recognised() {
        assert!(is_microsoft_cloud("https://graph.microsoft.com/v1.0/users"));
        assert!(is_microsoft_cloud("https://login.microsoftonline.us/x"));
        assert!(!is_microsoft_cloud("http://graph.microsoft.com/v1.0"));
        assert!(!is_microsoft_cloud("http://127.0.0.1:3000"));
    }
}
