//! Untrusted evidence files (FORMAT.md § 20) and county leaves (§ 19), as
//! `audit` reads them from an export's `evidence/` and `county/`. Must
//! never panic; anything accepted must encode back byte for byte, and
//! verifying parsed evidence must not panic either.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::evidence::run(data));
