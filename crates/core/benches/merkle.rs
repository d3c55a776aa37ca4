//! Merkle tree throughput: leaf and node hashing, building the root of 1M
//! leaves, proof generation from a 1M-leaf store, proof verification.
//!
//! `cargo bench -p gongkai-core --bench merkle -- --quick` for a short run.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use gongkai_core::hash::{Hash, leaf_hash, node_hash};
use gongkai_core::merkle::{
    MemoryHashes, TreeState, consistency_proof, inclusion_proof, root_at, verify_consistency,
    verify_inclusion,
};

const MILLION: u64 = 1 << 20;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    for len in [64usize, 512, 4096] {
        let entry = vec![0x5au8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("leaf", len), &entry, |b, e| {
            b.iter(|| leaf_hash(black_box(e)))
        });
    }
    let (l, r) = (leaf_hash(b"l"), leaf_hash(b"r"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("node", |b| {
        b.iter(|| node_hash(black_box(&l), black_box(&r)))
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let l = leaves(MILLION);
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MILLION));
    group.bench_function("tree_state_append_1M", |b| {
        b.iter(|| {
            let mut state = TreeState::new();
            for h in &l {
                black_box(state.append(*h));
            }
            state.root()
        })
    });
    group.bench_function("root_1M", |b| b.iter(|| gongkai_core::merkle::root(&l)));
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let store = MemoryHashes::from_leaf_hashes(&leaves(MILLION));
    let n = MILLION - 12_345;
    let root = root_at(&store, n).unwrap();
    let old = 654_321;
    let old_root = root_at(&store, old).unwrap();
    let leaf = store
        .hash(gongkai_core::merkle::NodeId::new(0, 77_777))
        .unwrap();
    let inclusion = inclusion_proof(&store, 77_777, n).unwrap();
    let consistency = consistency_proof(&store, old, n).unwrap();

    let mut group = c.benchmark_group("proof_1M");
    group.bench_function("root_at", |b| b.iter(|| root_at(&store, black_box(n))));
    group.bench_function("inclusion_generate", |b| {
        b.iter(|| inclusion_proof(&store, black_box(77_777), n))
    });
    group.bench_function("consistency_generate", |b| {
        b.iter(|| consistency_proof(&store, black_box(old), n))
    });
    group.bench_function("inclusion_verify", |b| {
        b.iter(|| verify_inclusion(&leaf, black_box(77_777), n, &inclusion, &root))
    });
    group.bench_function("consistency_verify", |b| {
        b.iter(|| verify_consistency(black_box(old), n, &old_root, &root, &consistency))
    });
    group.finish();
}

criterion_group!(benches, hashing, build, proofs);
criterion_main!(benches);
