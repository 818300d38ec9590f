//! A v5 request body through the lenient JSON reader and every body type.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_api::fuzzing::ci_json(data));
