//! Untrusted evidence files (FORMAT.md § 20) and county leaves (§ 19), as
//! `audit` reads them from an export's `evidence/` and `county/`. Must
//! never panic; anything accepted must encode back byte for byte, and
//! verifying parsed evidence must not panic either.
#![no_main]

use gongkai_core::county::CountyLeaf;
use gongkai_core::evidence::Evidence;
use gongkai_core::keys::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(e) = Evidence::parse(text)
    {
        assert_eq!(e.encode(), text);
        let _ = e.verify(&[SigningKey::from_seed([1; 32]).public_key()]);
    }
    if let Ok(leaf) = CountyLeaf::decode(data) {
        assert_eq!(leaf.encode(), data);
    }
});
