//! A Graph delta page as the backup reads it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_engine::fuzzing::delta_page(data));
