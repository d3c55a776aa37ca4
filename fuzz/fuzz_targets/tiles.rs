//! Untrusted tile paths, tiles and entry bundles. Must never panic; parsed
//! paths must print back exactly.
#![no_main]

use gongkai_core::tile::{decode_bundle, decode_tile, parse_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(path) = parse_path(text)
    {
        let printed = match path {
            gongkai_core::tile::TilePath::Hashes(t) => t.path(),
            gongkai_core::tile::TilePath::Entries(b) => b.path(),
        };
        assert_eq!(printed, text);
    }
    if let Some((&w, rest)) = data.split_first() {
        let _ = decode_tile(rest, u16::from(w).max(1));
        let _ = decode_bundle(rest, usize::from(w));
    }
});
