//! Untrusted entry bytes: framing, canonical body, field rules. Must never
//! panic; anything accepted must re-encode to the same body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::entry::run(data));
