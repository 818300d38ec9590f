//! A Graph or identity-platform answer as the Microsoft 365 client reads it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_m365::fuzzing::graph_response(data));
