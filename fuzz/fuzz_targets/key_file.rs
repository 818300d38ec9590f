//! A plaintext key file of a hostile repository.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_repo::fuzzing::key_file(data));
