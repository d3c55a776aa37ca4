//! Untrusted export directories (FORMAT.md § 16): a small valid export is
//! generated once, then the input replaces or adds files in a fresh copy
//! of it — manifest, checkpoint, other checkpoints, bundles, tiles,
//! content, evidence, the county part — and `audit` must end in findings
//! or an error, never a panic, a loop or an unbounded read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gongkai_fuzz::export_dir::run(data));
