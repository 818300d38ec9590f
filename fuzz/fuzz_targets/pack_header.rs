//! A pack read from a hostile repository: its trailer and sealed header.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_repo::fuzzing::pack_header(data));
