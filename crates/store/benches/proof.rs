//! Proof generation from the real sled projection at 1M entries (issue 3
//! target: an inclusion proof in at most 50 µs).
//!
//! The projection is filled as the node fills it — `Projection::apply` in
//! runs of 4096 entries, with the subtrees each append completed — and
//! opened with the node's default cache (48 MiB). Proofs are asked for
//! leaves spread over the whole log, so each one reads other tiles.
//!
//! `cargo bench -p gongkai-store --bench proof -- --quick` for a short run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use gongkai_core::event::{Event, Kind, pb};
use gongkai_core::hash::{Hash, leaf_hash};
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::{TreeState, consistency_proof, inclusion_proof, root_at};
use gongkai_core::types::Origin;
use gongkai_core::writer::LogWriter;
use gongkai_store::projection::{Applied, Projection};

const ORIGIN: &str = "example.gov.cn/bench";
const SIZE: u64 = 1_000_000;
const CACHE: u64 = 48 << 20;

/// An event with no catalog effect (a Genesis), standing in for every
/// entry: this bench is about the tree hashes and the leaf index.
fn genesis() -> Event {
    let origin = Origin::new(ORIGIN).unwrap();
    let writer = LogWriter::new(origin, SigningKey::from_seed([3; 32]));
    let body = writer.next_body(
        Kind::Genesis(pb::Genesis {
            department: "bench".into(),
            division_code: "510122".into(),
        }),
        1_700_000_000_000,
    );
    Event::from_message(body, 0).unwrap()
}

fn fill(p: &Projection) {
    let event = genesis();
    let mut tree = TreeState::new();
    const RUN: u64 = 4096;
    let mut start = 0;
    while start < SIZE {
        let end = (start + RUN).min(SIZE);
        let mut nodes = Vec::new();
        let mut entries = Vec::new();
        for index in start..end {
            let leaf = leaf_hash(&index.to_be_bytes());
            nodes.extend(tree.append(leaf));
            entries.push(Applied {
                index,
                leaf_hash: leaf,
                event: &event,
            });
        }
        p.apply(&entries, &nodes, &[]).unwrap();
        start = end;
    }
    p.flush().unwrap();
}

fn proofs(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("projection");
    {
        let p = Projection::open(&path, ORIGIN, CACHE).unwrap();
        fill(&p);
    }
    // Reopened: the cache starts cold, as after a node restart.
    let p = Projection::open(&path, ORIGIN, CACHE).unwrap();
    let n = SIZE;
    let mut i = 0u64;
    // A stride coprime with the size walks every region of the log.
    let mut next_index = || {
        i = (i + 7_919 * 31) % n;
        i
    };
    let mut group = c.benchmark_group("projection_1M");
    group.bench_function("inclusion_generate", |b| {
        b.iter(|| inclusion_proof(&p, black_box(next_index()), n).unwrap())
    });
    group.bench_function("inclusion_by_leaf_hash", |b| {
        b.iter(|| {
            let leaf: Hash = leaf_hash(&next_index().to_be_bytes());
            let index = p.index_of_leaf(black_box(&leaf)).unwrap().unwrap();
            inclusion_proof(&p, index, n).unwrap()
        })
    });
    group.bench_function("consistency_generate", |b| {
        b.iter(|| consistency_proof(&p, black_box(next_index().max(1)), n).unwrap())
    });
    group.bench_function("root_at", |b| b.iter(|| root_at(&p, black_box(n)).unwrap()));
    group.finish();
}

criterion_group!(benches, proofs);
criterion_main!(benches);
