//! Who is calling: the client's address (for sign-in throttling) and the base URL it used (for
//! `_links`, which the vendor builds from the request's own scheme, host and port).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

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
                .and_then(|v| v.trim().parse().ok());
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

/// `scheme://host[:port]` as the client addressed this server.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header_str = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let mut scheme = state.settings.scheme;
        let mut host = header_str(header::HOST.as_str())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        if state.settings.trust_forwarded_headers {
            if let Some(proto) = header_str("x-forwarded-proto") {
                scheme = if proto.eq_ignore_ascii_case("http") {
                    "http"
                } else {
                    "https"
                };
            }
            host = header_str("x-forwarded-host").unwrap_or(host);
        }
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}
