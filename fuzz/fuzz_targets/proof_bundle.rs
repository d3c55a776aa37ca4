//! Untrusted proof bundles (FORMAT.md § 18), as `gongkai check-proof` reads
//! them: JSON, then verification. Must never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::proof_bundle::run(data));
