//! A sequence of untrusted entries through the chain verifier (split on a
//! length prefix). Must never panic, whatever the bytes.
#![no_main]

use gongkai_core::chain::ChainVerifier;
use gongkai_core::keys::SigningKey;
use gongkai_core::types::Origin;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(origin) = Origin::new("gongkai.example/510122/finance") else {
        return;
    };
    let trusted = [SigningKey::from_seed([1; 32]).public_key()];
    let mut v = ChainVerifier::new(origin, &trusted);
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        if v.push(rest[2..end].to_vec()).is_err() {
            break;
        }
        rest = &rest[end..];
    }
});
