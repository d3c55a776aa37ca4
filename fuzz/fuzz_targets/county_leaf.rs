//! Untrusted county log leaves (checkpoint rounds and calendar tables,
//! FORMAT.md § 14.4, § 19): decoding must never panic, and a calendar
//! table that decodes must re-encode to the same bytes (one reading per
//! leaf) and fold under the version rules.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::county_leaf::run(data));
