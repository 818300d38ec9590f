//! The restore side of the engine: browsing a restore session's point in time ([`browse`]),
//! what an action selects in it ([`selection`]), and saving that as files or ZIP archives
//! ([`export`]), or restoring it to Microsoft 365 ([`write`]).

pub mod browse;
pub mod export;
pub mod selection;
pub mod write;
