//! A v5 date in a time zone the first two bytes pick.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| m365backup_api::fuzzing::v5_datetime(data));
