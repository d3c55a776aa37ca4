//! Untrusted proof bundles (FORMAT.md § 18), as `gongkai check-proof` reads
//! them: JSON, then verification. Must never panic, whatever the bytes.
#![no_main]

use gongkai_core::checkpoint::Checkpoint;
use gongkai_core::keys::SigningKey;
use gongkai_core::note::Verifiers;
use gongkai_core::proof::ProofBundle;
use gongkai_core::types::Origin;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = serde_json::from_slice::<ProofBundle>(data) else {
        return;
    };
    let origin = Origin::new(&bundle.origin)
        .unwrap_or_else(|_| Origin::new("gongkai.example/510122/finance").unwrap());
    let key = Checkpoint::log_verifier_key(&origin, &SigningKey::from_seed([4; 32]).public_key());
    let _ = bundle.verify(&[key], &Verifiers::default(), 0);
});
