//! Paged collections as the vendor shapes them: `offset`, `limit`, `setId`, `results`, and
//! `first`/`prev`/`self`/`next` links that keep the request's filters.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::links::{Link, Links};

pub const DEFAULT_LIMIT: usize = 30;
pub const MAX_LIMIT: usize = 10_000;

/// Query parameters, names matched ignoring case (`Offset`, `offset`, `setid` ...).
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn new(raw: HashMap<String, String>) -> Self {
        Self(
            raw.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

pub struct PageRequest {
    pub offset: usize,
    pub limit: usize,
    pub set_id: Option<Uuid>,
}

impl PageRequest {
    pub fn parse(q: &QueryParams) -> ApiResult<Self> {
        let number = |name: &str, default: usize| -> ApiResult<usize> {
            match q.get(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "{name} must be a non-negative integer, not '{v}'"
                    ))
                }),
            }
        };
        let offset = number("offset", 0)?;
        let limit = number("limit", DEFAULT_LIMIT)?;
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let set_id =
            match q.get("setId") {
                None => None,
                Some(v) => Some(v.parse().map_err(|_| {
                    ApiError::BadRequest(format!("setId must be a GUID, not '{v}'"))
                })?),
            };
        Ok(Self {
            offset,
            limit,
            set_id,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub offset: usize,
    pub limit: usize,
    /// Listings cached in memory have one; lists read page by page from the store do not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_id: Option<String>,
    pub results: Vec<T>,
    #[serde(rename = "_links")]
    pub links: Links,
}

/// One page of `items`; `collection_url` is the absolute URL of the collection and `filters`
/// the filter parameters to keep in the page links.
pub fn page<S, T>(
    items: &[S],
    req: &PageRequest,
    set_id: Uuid,
    collection_url: &str,
    filters: &[(&str, &str)],
    view: impl Fn(&S) -> T,
) -> Page<T> {
    let results = items
        .iter()
        .skip(req.offset)
        .take(req.limit)
        .map(view)
        .collect();
    let mut keep: Vec<(&str, String)> = vec![("setId", set_id.to_string())];
    keep.extend(filters.iter().map(|(k, v)| (*k, v.to_string())));
    Page {
        offset: req.offset,
        limit: req.limit,
        set_id: Some(set_id.to_string()),
        results,
        links: page_links(req, items.len(), collection_url, &keep),
    }
}

/// One page of a list read from the store: `results` are that page, `total` the list's length.
pub fn stored_page<T>(
    results: Vec<T>,
    total: u64,
    req: &PageRequest,
    collection_url: &str,
) -> Page<T> {
    filtered_stored_page(results, total, req, collection_url, &[])
}

/// [`stored_page`] of a filtered list: the page links keep the `filters` parameters.
pub fn filtered_stored_page<T>(
    results: Vec<T>,
    total: u64,
    req: &PageRequest,
    collection_url: &str,
    filters: &[(&str, String)],
) -> Page<T> {
    Page {
        offset: req.offset,
        limit: req.limit,
        set_id: None,
        results,
        links: page_links(
            req,
            usize::try_from(total).unwrap_or(usize::MAX),
            collection_url,
            filters,
        ),
    }
}

/// One page of a list computed in memory (no `setId`: the list is made anew per request).
pub fn page_of<T>(mut all: Vec<T>, req: &PageRequest, url: &str) -> Page<T> {
    let total = all.len() as u64;
    let results: Vec<T> = all.drain(..).skip(req.offset).take(req.limit).collect();
    stored_page(results, total, req, url)
}

/// `first`, `self`, and `prev`/`next` where such a page exists, keeping `params`.
fn page_links(
    req: &PageRequest,
    total: usize,
    collection_url: &str,
    params: &[(&str, String)],
) -> Links {
    let link = |offset: usize| {
        let mut url = format!("{collection_url}?offset={offset}&limit={}", req.limit);
        for (k, v) in params {
            url.push_str(&format!("&{k}={}", encode(v)));
        }
        Link::new(url)
    };
    let mut links = Links::from([("first", link(0)), ("self", link(req.offset))]);
    if req.offset > 0 {
        links.insert("prev", link(req.offset.saturating_sub(req.limit)));
    }
    if req.offset + req.limit < total {
        links.insert("next", link(req.offset + req.limit));
    }
    links
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Case-insensitive glob: `*` any run, `?` one character; no wildcard means an exact match.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("Backup*", "backup accounts"));
        assert!(wildcard_match("*acc?unts", "Backup Accounts"));
        assert!(wildcard_match("All Staff", "all staff"));
        assert!(!wildcard_match("All", "All Staff"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("?", ""));
    }

    #[test]
    fn page_links() {
        let items: Vec<u32> = (0..10).collect();
        let req = PageRequest {
            offset: 4,
            limit: 3,
            set_id: None,
        };
        let set = Uuid::nil();
        let p = page(
            &items,
            &req,
            set,
            "https://h/v5/x",
            &[("name", "a b*")],
            |i| *i,
        );
        assert_eq!(p.results, vec![4, 5, 6]);
        assert!(
            p.links["next"].href.contains("offset=7")
                && p.links["next"].href.ends_with("name=a%20b*")
        );
        assert!(p.links["prev"].href.contains("offset=1"));
        let last = page(
            &items,
            &PageRequest {
                offset: 9,
                limit: 3,
                set_id: None,
            },
            set,
            "u",
            &[],
            |i| *i,
        );
        assert!(!last.links.contains_key("next"));
    }
}
