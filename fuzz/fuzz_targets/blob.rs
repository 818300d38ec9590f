//! A stored blob of a hostile repository.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_repo::fuzzing::blob(data));
