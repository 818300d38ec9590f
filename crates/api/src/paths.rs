//! Case-insensitive routing: clients send `/v5/Organizations`, `/v5/organizations/` and
//! `/v5/token` alike. Before routing, every path segment that matches a literal segment of a
//! declared route (ignoring case) is rewritten to its declared spelling, and one trailing slash
//! is dropped. Other segments (ids) and the query string are left as sent.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::Uri;

#[derive(Clone, Debug, Default)]
pub struct PathCanonicalizer {
    /// lower-case literal segment → its declared spelling
    literals: Arc<HashMap<String, String>>,
}

impl PathCanonicalizer {
    /// Learns the literal segments of route templates such as `/v5/Organizations/{organizationId}`.
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let literals = templates
            .into_iter()
            .flat_map(|t| t.split('/'))
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .map(|s| (s.to_ascii_lowercase(), s.to_owned()))
            .collect();
        Self {
            literals: Arc::new(literals),
        }
    }

    pub fn canonical_path(&self, path: &str) -> String {
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        path.split('/')
            .map(|seg| {
                self.literals
                    .get(&seg.to_ascii_lowercase())
                    .map(String::as_str)
                    .unwrap_or(seg)
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    pub fn apply(&self, mut req: Request) -> Request {
        let uri = req.uri();
        let path = self.canonical_path(uri.path());
        if path != uri.path() {
            let path_and_query = match uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let mut parts = uri.clone().into_parts();
            if let Ok(pq) = path_and_query.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(new_uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = new_uri;
                }
            }
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_spelling_for_literals_only() {
        let c = PathCanonicalizer::new([
            "/v5/Token",
            "/v5/Organizations/{organizationId}/BackupAccounts",
        ]);
        assert_eq!(
            c.canonical_path("/v5/organizations/ABC-def/backupaccounts"),
            "/v5/Organizations/ABC-def/BackupAccounts"
        );
        assert_eq!(c.canonical_path("/V5/TOKEN/"), "/v5/Token");
        assert_eq!(c.canonical_path("/"), "/");
        assert_eq!(c.canonical_path("/nothing/Known"), "/nothing/Known");
    }

    #[test]
    fn query_is_untouched() {
        let c = PathCanonicalizer::new(["/v5/Organizations"]);
        let req = Request::builder()
            .uri("/v5/organizations/?Name=X*")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(c.apply(req).uri().to_string(), "/v5/Organizations?Name=X*");
    }
}
