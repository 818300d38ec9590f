//! The restore side of the engine: browsing a restore session's point in time ([`browse`]) and
//! saving what it holds as files or ZIP archives ([`export`]).

pub mod browse;
pub mod export;
