//! A sequence of untrusted entries through the chain verifier (split on a
//! length prefix). Must never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::chain::run(data));
