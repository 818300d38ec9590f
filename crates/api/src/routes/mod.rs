//! One module per v5 resource.

pub mod token;
