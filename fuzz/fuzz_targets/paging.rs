//! A query string as paging parameters, with the pages and links built from them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_api::fuzzing::paging(data));
