//! One module per v5 resource.

pub mod organizations;
pub mod token;
