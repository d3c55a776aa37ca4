//! Untrusted entry bytes: framing, canonical body, field rules. Must never
//! panic; anything accepted must re-encode to the same body.
#![no_main]

use gongkai_core::entry::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::parse(data.to_vec(), 0)
        && let Ok(event) = entry.decode_event(0)
    {
        assert_eq!(event.encode(), entry.body());
    }
});
