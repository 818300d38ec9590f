//! Item names turned into export ZIP entry names, written and read back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_engine::fuzzing::zip_entry_names(data));
