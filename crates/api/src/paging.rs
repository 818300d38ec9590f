//! Paged collections as the vendor shapes them: `offset`, `limit`, `setId`, `results`, and
//! `first`/`prev`/`self`/`next` links that keep the request's filters.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::links::{Link, Links};

pub const DEFAULT_LIMIT: usize = 30;
pub const MAX_LIMIT: usize = 10_000;
/// Largest `offset`: the stores read pages with a signed 64-bit SQL `OFFSET`.
pub const MAX_OFFSET: usize = i64::MAX as usize;

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
        if offset > MAX_OFFSET {
            return Err(ApiError::BadRequest(format!(
                "offset must be between 0 and {MAX_OFFSET}"
            )));
        }
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
pub fn page_of<T>(all: Vec<T>, req: &PageRequest, url: &str) -> Page<T> {
    filtered_page_of(all, req, url, &[])
}

/// [`page_of`] of a filtered list: the page links keep the `filters` parameters.
pub fn filtered_page_of<T>(
    mut all: Vec<T>,
    req: &PageRequest,
    url: &str,
    filters: &[(&str, String)],
) -> Page<T> {
    let total = all.len() as u64;
    let results: Vec<T> = all.drain(..).skip(req.offset).take(req.limit).collect();
    filtered_stored_page(results, total, req, url, filters)
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
    // Saturating: an offset past every list (up to MAX_OFFSET) plus the limit must not wrap.
    if req.offset.saturating_add(req.limit) < total {
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
        // `*` first: it is a wildcard even where the text has a `*` too.
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
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

    /// Found by the property tests: a `*` of the pattern meeting a `*` of the text was taken
    /// as a literal, so `*` did not match `"* "` and `a*c` did not match `"a*bc"`.
    #[test]
    fn a_star_is_a_wildcard_even_against_a_star() {
        assert!(wildcard_match("*", "* "));
        assert!(wildcard_match("a*c", "a*bc"));
        assert!(wildcard_match("*.docx", "*draft*.docx"));
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

    fn query(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// Found by the property tests: `offset=18446744073709551615` overflowed `offset + limit`
    /// (a panic in debug builds, a wrong `next` link in release), and any offset past
    /// `i64::MAX` reached the SQL stores as a negative `OFFSET` (a 500).
    #[test]
    fn huge_offsets_are_refused_and_links_do_not_overflow() {
        let max = usize::MAX.to_string();
        assert!(matches!(
            PageRequest::parse(&query(&[("offset", &max)])),
            Err(ApiError::BadRequest(_))
        ));
        let last = PageRequest::parse(&query(&[("Offset", &MAX_OFFSET.to_string())])).unwrap();
        let p = page_of((0..5).collect::<Vec<u32>>(), &last, "u");
        assert!(p.results.is_empty() && !p.links.contains_key("next"));
        let at_end = PageRequest {
            offset: usize::MAX,
            limit: MAX_LIMIT,
            set_id: None,
        };
        let p = stored_page(Vec::<u32>::new(), u64::MAX, &at_end, "u");
        assert!(!p.links.contains_key("next"));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("offset"),
                Just("OFFSET"),
                Just("limit"),
                Just("Limit"),
                Just("setId"),
                Just("SETID"),
                Just("name"),
            ]
            .prop_map(str::to_owned)
        }

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9]{1,25}",
                "[+-]?[0-9]{1,4}",
                " ?[0-9]{1,3} ?",
                "[0-9a-fA-F-]{30,40}",
                Just(usize::MAX.to_string()),
                Just(MAX_OFFSET.to_string()),
                "\\PC{0,12}",
            ]
        }

        proptest! {
            /// Any query: a 400, or a request whose every page and link can be built.
            #[test]
            fn any_query_pages_or_is_refused(
                pairs in prop::collection::vec((name(), value()), 0..6),
                total in prop_oneof![0u64..100, any::<u64>()],
                listed in 0usize..50,
            ) {
                crate::fuzzing::paging_query(pairs.into_iter().collect(), listed, total);
            }

            /// Any pattern against any name: an answer, in time quadratic at worst.
            #[test]
            fn wildcards_always_answer(pattern in "[*?a-cA-C\\PC]{0,30}", text in "[a-cA-C\\PC]{0,60}") {
                let exact = !pattern.contains(['*', '?']);
                let matched = wildcard_match(&pattern, &text);
                if exact {
                    prop_assert_eq!(matched, pattern.to_lowercase() == text.to_lowercase());
                }
                prop_assert!(wildcard_match("*", &text));
            }
        }
    }
}
