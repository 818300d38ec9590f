//! A composite directory id from a URL path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_core::fuzzing::composite_id(data));
