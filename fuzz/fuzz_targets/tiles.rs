//! Untrusted tile paths, tiles and entry bundles. Must never panic; parsed
//! paths must print back exactly.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::tiles::run(data));
