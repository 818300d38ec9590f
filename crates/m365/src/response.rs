//! Reading answers from the network without trusting them: bodies read up to a cap, durations
//! clamped, and remote text quoted to clients only when it comes from Microsoft (or has the
//! identity platform's `AADSTS…` shape), so an organization URL cannot be used to read or
//! fingerprint internal hosts through this server.

use std::time::Duration;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::M365Error;

/// Largest token-endpoint answer read (Microsoft's are about 2–5 KiB).
pub const MAX_IDENTITY_BODY: usize = 64 * 1024;
/// Largest Graph JSON answer read (a page of 999 directory objects is a few MiB).
pub const MAX_GRAPH_BODY: usize = 32 * 1024 * 1024;
/// Largest error body read.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest `Retry-After` honoured; Microsoft's grow into minutes, never hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Bounds of an access token's lifetime as the token endpoint states it.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Longest remote text quoted in an error.
pub(crate) const MAX_QUOTED: usize = 300;

/// The body, refused once it grows past `cap` bytes (a lying `Content-Length` included).
pub async fn read_capped(
    response: reqwest::Response,
    cap: usize,
    url: &str,
) -> Result<Vec<u8>, M365Error> {
    let too_large = || M365Error::Unreachable {
        url: url.to_owned(),
        reason: format!("the answer is larger than {cap} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| M365Error::Unreachable {
            url: url.to_owned(),
            reason: crate::graph::reason(&e),
        })?;
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport failure. Its cause ("connection refused", "timed out") is told only for
/// Microsoft's endpoints: elsewhere it would tell a caller which internal ports are open. It is
/// logged either way.
pub fn unreachable(microsoft: bool, url: &str, e: &reqwest::Error) -> M365Error {
    let detail = crate::graph::reason(e);
    if microsoft {
        return M365Error::Unreachable {
            url: url.to_owned(),
            reason: detail,
        };
    }
    tracing::warn!(%url, error = %detail, "endpoint not reachable");
    M365Error::Unreachable {
        url: url.to_owned(),
        reason: "the endpoint could not be reached".into(),
    }
}

/// A JSON body of at most `cap` bytes, decoded into `T`.
pub async fn json_capped<T: DeserializeOwned>(
    response: reqwest::Response,
    cap: usize,
    url: &str,
) -> Result<T, M365Error> {
    let body = read_capped(response, cap, url).await?;
    serde_json::from_slice(&body).map_err(|e| M365Error::Unreachable {
        url: url.to_owned(),
        reason: format!("unexpected response: {e}"),
    })
}

/// `Retry-After` in seconds, as Graph sends it; a value that is not a finite non-negative
/// number is ignored, a huge one is clamped.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        secs.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

/// An access token's lifetime from `expires_in`, kept within sane bounds.
pub fn token_lifetime(expires_in: Option<u64>) -> Duration {
    Duration::from_secs(expires_in.unwrap_or(3599)).clamp(MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME)
}

/// Remote text made safe to show: control characters dropped, at most a few hundred characters.
pub fn quote(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTED)
        .collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

/// Whether a sign-in error description has the identity platform's shape (`AADSTS<n>: …`);
/// only such text from a non-Microsoft endpoint is quoted.
pub fn looks_like_aadsts(description: &str) -> bool {
    description
        .strip_prefix("AADSTS")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(code, _)| {
            !code.is_empty() && code.len() <= 10 && code.bytes().all(|b| b.is_ascii_digit())
        })
}

/// An error code (`invalid_grant`, `itemNotFound`) kept only when it is a plain identifier.
pub fn plain_code(code: &str) -> String {
    if !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        code.to_owned()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_clamped_and_checked() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("inf"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1e300"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn token_lifetimes_are_bounded() {
        assert_eq!(token_lifetime(Some(u64::MAX)), MAX_TOKEN_LIFETIME);
        assert_eq!(token_lifetime(Some(0)), MIN_TOKEN_LIFETIME);
        assert_eq!(token_lifetime(None), Duration::from_secs(3599));
    }

    #[test]
    fn remote_text() {
        assert!(looks_like_aadsts(
            "AADSTS50126: Error validating credentials."
        ));
        assert!(!looks_like_aadsts("AADSTS: x"));
        assert!(!looks_like_aadsts("<html>internal admin page</html>"));
        assert_eq!(quote("a\nb\u{7}c"), "abc");
        assert_eq!(quote(&"x".repeat(1000)).chars().count(), MAX_QUOTED + 1);
        assert_eq!(plain_code("invalid_grant"), "invalid_grant");
        assert_eq!(plain_code("<script>"), "");
    }
}
