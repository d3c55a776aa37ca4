//! Untrusted annual reports published as items (FORMAT.md § 22.5). Must
//! never panic; an accepted report compares with a recount cell by cell.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::annual_report::run(data));
