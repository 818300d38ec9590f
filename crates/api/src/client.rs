//! Who is calling: the client's address (for sign-in throttling) and the base URL it used (for
//! `_links`, which the vendor builds from the request's own scheme, host and port).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// The client's IP address. Behind a reverse proxy (`trust_forwarded_headers`), the last
/// address of `X-Forwarded-For`, i.e. the one the proxy itself saw.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.settings.trust_forwarded_headers {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(parse_forwarded_address);
            if let Some(addr) = forwarded {
                return Ok(ClientAddr(addr));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddr(peer))
    }
}

/// One `X-Forwarded-For` entry as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`, possibly quoted.
pub fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

/// `scheme://host[:port]` as the client addressed this server: the configured public URL when
/// there is one, else the request's `Host` (or, behind a trusted proxy, `X-Forwarded-Host`),
/// which must be a plain host name or address with an optional port.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(public) = &state.settings.public_url {
            return Ok(BaseUrl(public.clone()));
        }
        let header_str = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let mut scheme = state.settings.scheme;
        let mut host = header_str(header::HOST.as_str())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        if state.settings.trust_forwarded_headers {
            if let Some(proto) = header_str("x-forwarded-proto") {
                scheme = if proto.trim().eq_ignore_ascii_case("http") {
                    "http"
                } else {
                    "https"
                };
            }
            host = header_str("x-forwarded-host")
                .and_then(|h| h.split(',').next())
                .map(str::trim)
                .unwrap_or(host);
        }
        if !is_valid_authority(host) {
            return Err(ApiError::BadRequest(
                "The Host header is not a valid host name (with an optional port).".into(),
            ));
        }
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}

/// Longest host name (RFC 1035) plus a port.
const MAX_AUTHORITY_LEN: usize = 253 + 6;

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address.
pub fn is_valid_authority(authority: &str) -> bool {
    if authority.is_empty() || authority.len() > MAX_AUTHORITY_LEN {
        return false;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(authority), None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    });
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_entries() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for (entry, ip) in [
            ("203.0.113.7", v4),
            (" 203.0.113.7:5678", v4),
            ("\"203.0.113.7\"", v4),
            ("2001:db8::1", v6),
            ("[2001:db8::1]", v6),
            ("[2001:db8::1]:443", v6),
        ] {
            assert_eq!(parse_forwarded_address(entry), Some(ip), "{entry}");
        }
        assert_eq!(parse_forwarded_address("unknown"), None);
        assert_eq!(parse_forwarded_address("_hidden"), None);
    }

    #[test]
    fn authorities() {
        for ok in [
            "localhost",
            "localhost:4443",
            "abc.tech.local:4443",
            "127.0.0.1",
            "[::1]:4443",
            "[2001:db8::1]",
            "backup_server.corp",
        ] {
            assert!(is_valid_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "evil.com/x",
            "evil.com?x",
            "h:99999",
            "h:",
            "[::1",
            "[zz]:1",
            "a..b",
            "x\"><script>",
            &"a".repeat(300),
        ] {
            assert!(!is_valid_authority(bad), "{bad}");
        }
    }
}
