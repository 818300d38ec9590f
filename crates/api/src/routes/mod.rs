//! One module per v5 resource.

pub mod directory;
pub mod organizations;
pub mod token;
