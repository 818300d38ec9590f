//! The plaintext `config` object of a hostile repository, and chunking with it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_repo::fuzzing::repo_config(data));
