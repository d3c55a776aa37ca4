//! Untrusted witness requests and answers (FORMAT.md § 21). Must never
//! panic; an accepted request must encode back byte for byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::witness::run(data));
