//! Following `@odata.nextLink` without trusting it: every loop over a Graph collection (plain
//! listings and delta rounds alike) walks its pages through a [`Pager`], which stops a link that
//! never ends ([`MAX_PAGES`]) or that points at the page it came from. Which host a link may go
//! to is checked where it is sent (the Graph client follows links on the Graph host only).

use crate::error::M365Error;

/// Pages followed for one collection before giving up: a directory of 10 million objects at
/// 999 a page, far beyond any tenant; stops a link that never ends.
pub const MAX_PAGES: usize = 10_000;

/// The walk over one collection's pages: hands out the link of each page to fetch and takes
/// back each page's `@odata.nextLink`.
#[derive(Debug)]
pub struct Pager {
    /// The link to fetch next; `None` once the collection ended.
    next: Option<String>,
    /// The link of the page fetched last (a next link equal to it never ends).
    current: Option<String>,
    pages: usize,
    max_pages: usize,
}

impl Pager {
    /// A walk starting at `first` (a path under the Graph endpoint, or a link Graph returned).
    pub fn new(first: impl Into<String>) -> Self {
        Self {
            next: Some(first.into()),
            current: None,
            pages: 0,
            max_pages: MAX_PAGES,
        }
    }

    /// The link of the next page to fetch, `None` when the collection ended; an error past
    /// [`MAX_PAGES`] pages.
    pub fn next_page(&mut self) -> Result<Option<String>, M365Error> {
        let Some(link) = self.next.take() else {
            return Ok(None);
        };
        self.pages += 1;
        if self.pages > self.max_pages {
            return Err(M365Error::Unreachable {
                url: strip_query(&link),
                reason: format!("the collection did not end after {} pages", self.max_pages),
            });
        }
        self.current = Some(link.clone());
        Ok(Some(link))
    }

    /// Takes the `@odata.nextLink` of the page just fetched (`None`: it was the last page); an
    /// error when it points at that same page again.
    pub fn follow(&mut self, next_link: Option<String>) -> Result<(), M365Error> {
        if let (Some(next), Some(current)) = (&next_link, &self.current) {
            if next == current {
                return Err(M365Error::Unreachable {
                    url: strip_query(next),
                    reason: "the collection's next link points at the same page".into(),
                });
            }
        }
        self.next = next_link;
        Ok(())
    }

    /// Starts the walk again at `link` (a `410`'s fresh enumeration). The pages fetched so far
    /// still count against the cap.
    pub fn restart(&mut self, link: impl Into<String>) {
        self.next = Some(link.into());
        self.current = None;
    }

    /// How many pages were handed out.
    pub fn pages(&self) -> usize {
        self.pages
    }
}

/// A URL without its query (links carry skip tokens; download URLs carry credentials).
pub(crate) fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(first: &str, max_pages: usize) -> Pager {
        let mut pager = Pager::new(first);
        pager.max_pages = max_pages;
        pager
    }

    #[test]
    fn a_collection_ends_when_a_page_has_no_next_link() {
        let mut pager = Pager::new("/users");
        assert_eq!(pager.next_page().unwrap().as_deref(), Some("/users"));
        pager.follow(Some("/users?skip=1".into())).unwrap();
        assert_eq!(pager.next_page().unwrap().as_deref(), Some("/users?skip=1"));
        pager.follow(None).unwrap();
        assert_eq!(pager.next_page().unwrap(), None);
        assert_eq!(pager.pages(), 2);
    }

    #[test]
    fn a_link_that_never_ends_is_stopped_at_the_cap() {
        let mut pager = capped("/users", 3);
        for n in 1..=3 {
            pager.next_page().unwrap().unwrap();
            pager.follow(Some(format!("/users?n={n}"))).unwrap();
        }
        let err = pager.next_page().unwrap_err();
        assert!(err.to_string().contains("after 3 pages"), "{err}");
        assert!(
            !err.to_string().contains("n=3"),
            "no query in errors: {err}"
        );
    }

    #[test]
    fn a_link_to_the_same_page_is_refused() {
        let mut pager = Pager::new("/users?token=x");
        pager.next_page().unwrap();
        let err = pager.follow(Some("/users?token=x".into())).unwrap_err();
        assert!(err.to_string().contains("same page"), "{err}");
        assert!(!err.to_string().contains("token=x"), "{err}");
    }

    #[test]
    fn a_restart_keeps_counting_pages() {
        let mut pager = capped("/delta", 2);
        assert_eq!(pager.next_page().unwrap().as_deref(), Some("/delta"));
        // A 410 on the first page: the same link again is a restart, not a loop.
        pager.restart("/delta");
        assert_eq!(pager.next_page().unwrap().as_deref(), Some("/delta"));
        pager.restart("/delta");
        assert!(pager.next_page().is_err());
    }
}
