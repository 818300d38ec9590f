//! `_links`: relation name → `{"href": absolute URL}`, built from the request's own base URL.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Link {
    pub href: String,
}

impl Link {
    pub fn new(href: impl Into<String>) -> Self {
        Self { href: href.into() }
    }
}

pub type Links = BTreeMap<&'static str, Link>;
