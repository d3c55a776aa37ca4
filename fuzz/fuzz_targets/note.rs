//! Untrusted signed notes, checkpoints and verifier keys. Must never panic;
//! anything accepted must print back byte for byte.
#![no_main]

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::note::{Note, VerifierKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::from_bytes(data) {
        assert_eq!(note.to_string().as_bytes(), data);
    }
    let _ = SignedCheckpoint::from_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(cp.to_text(), text);
        }
        let _ = VerifierKey::parse(text);
    }
});
