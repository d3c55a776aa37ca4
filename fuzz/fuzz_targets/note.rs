//! Untrusted signed notes, checkpoints and verifier keys. Must never panic;
//! anything accepted must print back byte for byte.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::note::run(data));
