//! Restore sessions: what they are ([`model`]), how they are kept ([`store`]) and their rules
//! ([`service`]). Browsing, saving and restoring items is the engine's (`m365backup-engine`).

pub mod model;
pub mod service;
pub mod store;
