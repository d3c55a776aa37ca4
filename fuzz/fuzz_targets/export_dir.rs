//! Untrusted export directories (FORMAT.md § 16): a small valid export is
//! generated once, then the input replaces or adds files in a fresh copy
//! of it — manifest, checkpoint, other checkpoints, bundles, tiles,
//! content, evidence, the county part — and `audit` must end in findings
//! or an error, never a panic, a loop or an unbounded read.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::date::Date;
use gongkai_core::event::{Kind, pb};
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::TreeState;
use gongkai_core::tile::{TileBuilder, encode_bundle, encode_tile};
use gongkai_core::types::Origin;
use gongkai_core::writer::LogWriter;
use gongkai_verify::audit::audit_export;
use gongkai_verify::layout;
use gongkai_verify::trust::Trust;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "gongkai.example/510122/finance";

/// The files an input may replace: a valid export's, and a few it lacks.
const PATHS: &[&str] = &[
    "gongkai-export",
    "logs/gongkai.example/510122/finance/checkpoint",
    "logs/gongkai.example/510122/finance/checkpoints/3",
    "logs/gongkai.example/510122/finance/checkpoints/2",
    "logs/gongkai.example/510122/finance/tile/entries/000.p/3",
    "logs/gongkai.example/510122/finance/tile/0/000.p/3",
    "logs/gongkai.example/510122/finance/tile/entries/000",
    "logs/gongkai.example/510122/finance/content/00",
    "logs/gongkai.example/510122/finance/evidence/0123456789abcdef",
    "county/gongkai-export",
    "county/logs/gongkai.example/510122/county/checkpoint",
    "county/logs/gongkai.example/510122/county/tile/entries/000.p/1",
];

fn key() -> SigningKey {
    SigningKey::from_seed([42; 32])
}

fn base() -> &'static (BTreeMap<String, Vec<u8>>, Trust) {
    static BASE: OnceLock<(BTreeMap<String, Vec<u8>>, Trust)> = OnceLock::new();
    BASE.get_or_init(|| {
        let origin = Origin::new(ORIGIN).unwrap();
        let mut w = LogWriter::new(origin.clone(), key());
        let mut entries = Vec::new();
        for i in 0..3u64 {
            let kind = if i == 0 {
                Kind::Genesis(pb::Genesis {
                    department: "某某县财政局".into(),
                    division_code: "510122".into(),
                })
            } else {
                Kind::RequestReceived(pb::RequestReceived {
                    request_id: format!("r{i}"),
                    date_received: "2026-03-02".into(),
                    subject: "请求公开".into(),
                })
            };
            entries.push(w.append(kind, 1_772_413_200_000 + i).unwrap().into_bytes());
        }
        let mut files = BTreeMap::new();
        let dir = format!("logs/{ORIGIN}");
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        files.insert(format!("{dir}/tile/entries/000.p/3"), encode_bundle(&refs).unwrap());
        let mut tree = TreeState::new();
        let mut tiles = TileBuilder::new();
        for e in &entries {
            let h = gongkai_core::hash::leaf_hash(e);
            tree.append_leaf(h);
            tiles.push(h);
        }
        for (id, h) in tiles.partial_tiles() {
            files.insert(format!("{dir}/{}", id.path()), encode_tile(&h));
        }
        let cp = SignedCheckpoint::sign(&Checkpoint::new(origin.clone(), 3, tree.root()), &key())
            .unwrap();
        files.insert(format!("{dir}/checkpoint"), cp.to_string().into_bytes());
        files.insert(format!("{dir}/checkpoints/3"), cp.to_string().into_bytes());
        files.insert(
            layout::MANIFEST.into(),
            layout::manifest(&[origin.clone()]).into_bytes(),
        );
        let vk = Checkpoint::log_verifier_key(&origin, &key().public_key());
        (files, Trust::from_vkeys(&[vk]).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let (files, trust) = base();
    let mut files = files.clone();
    // Operations: [path index][length: 2 bytes][bytes].
    let mut rest = data;
    while let [which, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let path = PATHS[usize::from(*which) % PATHS.len()];
        files.insert(path.to_owned(), tail[..len].to_vec());
        rest = &tail[len..];
    }
    let Ok(d) = tempfile::tempdir() else { return };
    for (rel, bytes) in &files {
        let p = d.path().join(rel);
        if let Some(parent) = p.parent()
            && std::fs::create_dir_all(parent).is_ok()
        {
            let _ = std::fs::write(p, bytes);
        }
    }
    let as_of = Date::new(2026, 3, 2).unwrap();
    let _ = audit_export(d.path(), trust, as_of);
});
