//! The Merkle tree and its proofs against a naive reference written straight
//! from RFC 9162 §2.1 (MTH, PATH, PROOF/SUBPROOF on slices).

use std::sync::OnceLock;

use proptest::prelude::*;

use gongkai_core::Error;
use gongkai_core::hash::{Hash, empty_root, leaf_hash, node_hash};
use gongkai_core::merkle::{
    HashReader, MemoryHashes, NodeId, TreeState, consistency_proof, inclusion_proof, root, root_at,
    verify_consistency, verify_inclusion,
};

// ---- the reference, RFC 9162 §2.1, as literally as possible -------------

/// Largest power of two strictly less than n (n > 1).
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// §2.1.1 MTH(D[n]) over leaf hashes.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// §2.1.3.1 PATH(m, D[n]).
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    subproof(m, d, true)
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

// ---- fixtures --------------------------------------------------------------

fn leaf(i: u64) -> Hash {
    leaf_hash(format!("entry {i}").as_bytes())
}

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(leaf).collect()
}

const BIG: u64 = 100_000;

/// One store of `BIG` leaves serves every smaller size: stored hashes are
/// those of complete subtrees, which never change.
fn big() -> &'static (Vec<Hash>, MemoryHashes) {
    static BIG_TREE: OnceLock<(Vec<Hash>, MemoryHashes)> = OnceLock::new();
    BIG_TREE.get_or_init(|| {
        let l = leaves(BIG);
        let store = MemoryHashes::from_leaf_hashes(&l);
        (l, store)
    })
}

fn flip(h: &Hash) -> Hash {
    let mut b = h.0;
    b[7] ^= 0x40;
    Hash(b)
}

/// Checks one inclusion proof against the reference and its mutations.
fn check_inclusion(l: &[Hash], store: &MemoryHashes, m: u64, n: u64, with_reference: bool) {
    let d = &l[..n as usize];
    let r = root_at(store, n).unwrap();
    let p = inclusion_proof(store, m, n).unwrap();
    if with_reference {
        assert_eq!(p, path(m as usize, d), "inclusion m={m} n={n}");
    }
    let leaf = &l[m as usize];
    verify_inclusion(leaf, m, n, &p, &r).unwrap();

    // Wrong root, wrong leaf.
    assert!(matches!(
        verify_inclusion(leaf, m, n, &p, &flip(&r)),
        Err(Error::ProofMismatch { .. })
    ));
    assert!(matches!(
        verify_inclusion(&flip(leaf), m, n, &p, &r),
        Err(Error::ProofMismatch { .. })
    ));
    // Each hash flipped.
    for i in 0..p.len() {
        let mut bad = p.clone();
        bad[i] = flip(&bad[i]);
        assert!(matches!(
            verify_inclusion(leaf, m, n, &bad, &r),
            Err(Error::ProofMismatch { .. })
        ));
    }
    // Dropped and extra hashes.
    if !p.is_empty() {
        assert!(matches!(
            verify_inclusion(leaf, m, n, &p[..p.len() - 1], &r),
            Err(Error::ProofLength { .. })
        ));
    }
    let mut extra = p.clone();
    extra.push(r);
    assert!(matches!(
        verify_inclusion(leaf, m, n, &extra, &r),
        Err(Error::ProofLength { .. })
    ));
    // Wrong index: never accepted. (A wrong *size* can be: the proof binds
    // the root, and a verifier takes the size from the signed checkpoint
    // that carries that root; e.g. leaf 0 of 65 and of 66 have the same path
    // shape.)
    for (mm, nn) in [(m + 1, n), (m.wrapping_sub(1), n), (m ^ 1, n), (m ^ 2, n)] {
        if mm == m {
            continue;
        }
        let got = verify_inclusion(leaf, mm, nn, &p, &r);
        assert!(
            matches!(
                got,
                Err(Error::ProofMismatch { .. }
                    | Error::ProofLength { .. }
                    | Error::IndexOutOfRange { .. })
            ),
            "m={m} n={n} as ({mm}, {nn}): {got:?}"
        );
    }
    // Out of range.
    assert_eq!(
        verify_inclusion(leaf, n, n, &p, &r),
        Err(Error::IndexOutOfRange { index: n, size: n })
    );
}

/// Checks one consistency proof against the reference and its mutations.
fn check_consistency(l: &[Hash], store: &MemoryHashes, m: u64, n: u64, with_reference: bool) {
    let old = root_at(store, m).unwrap();
    let new = root_at(store, n).unwrap();
    let p = consistency_proof(store, m, n).unwrap();
    if with_reference && m > 0 {
        assert_eq!(
            p,
            proof(m as usize, &l[..n as usize]),
            "consistency m={m} n={n}"
        );
    }
    verify_consistency(m, n, &old, &new, &p).unwrap();
    if m == 0 || m == n {
        assert!(p.is_empty());
        return;
    }
    assert!(matches!(
        verify_consistency(m, n, &flip(&old), &new, &p),
        Err(Error::ProofMismatch { .. })
    ));
    assert!(matches!(
        verify_consistency(m, n, &old, &flip(&new), &p),
        Err(Error::ProofMismatch { .. })
    ));
    for i in 0..p.len() {
        let mut bad = p.clone();
        bad[i] = flip(&bad[i]);
        assert!(matches!(
            verify_consistency(m, n, &old, &new, &bad),
            Err(Error::ProofMismatch { .. })
        ));
    }
    assert!(matches!(
        verify_consistency(m, n, &old, &new, &p[..p.len() - 1]),
        Err(Error::ProofLength { .. })
    ));
    let mut extra = p.clone();
    extra.push(new);
    assert!(matches!(
        verify_consistency(m, n, &old, &new, &extra),
        Err(Error::ProofLength { .. })
    ));
    assert_eq!(
        verify_consistency(n, m, &new, &old, &p),
        Err(Error::SizeDecreased { old: n, new: m })
    );
    // Wrong old size: never accepted (the old root pins the old size as
    // the checkpoint does; a wrong new size alone can coincide, see above).
    for (mm, nn) in [(m + 1, n), (m - 1, n), (m + 2, n), (m * 2, n)] {
        if mm == 0 || mm >= nn || mm == m {
            continue;
        }
        let got = verify_consistency(mm, nn, &old, &new, &p);
        assert!(
            matches!(
                got,
                Err(Error::ProofMismatch { .. } | Error::ProofLength { .. })
            ),
            "m={m} n={n} as ({mm}, {nn}): {got:?}"
        );
    }
}

// ---- exhaustive small sizes ------------------------------------------------

#[test]
fn roots_match_reference_for_every_size_to_300() {
    let l = leaves(300);
    let store = MemoryHashes::from_leaf_hashes(&l);
    assert_eq!(root_at(&store, 0).unwrap(), empty_root());
    for n in 0..=300usize {
        let want = mth(&l[..n]);
        assert_eq!(root(&l[..n]), want, "root n={n}");
        assert_eq!(root_at(&store, n as u64).unwrap(), want, "root_at n={n}");
    }
}

#[test]
fn all_proofs_match_reference_to_64() {
    let l = leaves(64);
    let store = MemoryHashes::from_leaf_hashes(&l);
    for n in 0..=64u64 {
        for m in 0..n {
            check_inclusion(&l, &store, m, n, true);
        }
        for m in 0..=n {
            check_consistency(&l, &store, m, n, true);
        }
    }
}

#[test]
fn sampled_proofs_match_reference_to_300() {
    let l = leaves(300);
    let store = MemoryHashes::from_leaf_hashes(&l);
    for n in 65..=300u64 {
        let picks = [
            0,
            1,
            n / 3,
            n / 2,
            n - 2,
            n - 1,
            (n * 7919) % n,
            63,
            64,
            127,
            128,
        ];
        for &m in &picks {
            if m < n {
                check_inclusion(&l, &store, m, n, true);
            }
            check_consistency(&l, &store, m.min(n), n, true);
        }
    }
}

// ---- the compact state -------------------------------------------------------

#[test]
fn tree_state_matches_store_for_every_size() {
    let l = leaves(600);
    let mut store = MemoryHashes::new();
    let mut state = TreeState::new();
    let mut emitted = 0usize;
    assert_eq!(state.root(), empty_root());
    for (i, h) in l.iter().enumerate() {
        let completed = state.append(*h);
        store.append(*h);
        let n = i as u64 + 1;
        // Exactly the subtrees this leaf completes: those whose last leaf
        // is leaf i, at every level up to the trailing ones of i.
        let levels = (i as u64).trailing_ones() + 1;
        assert_eq!(completed.len() as u32, levels);
        for (level, (id, hash)) in completed.iter().enumerate() {
            assert_eq!(id.level as usize, level);
            assert_eq!(id.end_leaf(), u128::from(n));
            assert_eq!(store.hash(*id), Some(*hash));
        }
        emitted += completed.len();
        assert_eq!(state.size(), n);
        assert_eq!(state.root(), mth(&l[..=i]), "size {n}");
        let rebuilt = TreeState::from_reader(&store, n).unwrap();
        assert_eq!(rebuilt, state);
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<TreeState>(&json).unwrap(), state);
    }
    // Every complete subtree of 600 leaves, each exactly once.
    let total: u64 = (0..64).map(|lvl| 600u64 >> lvl).sum();
    assert_eq!(emitted as u64, total);
}

#[test]
fn tree_state_serde_rejects_bad_peaks() {
    let mut state = TreeState::new();
    for i in 0..5 {
        state.append(leaf(i));
    }
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["size"], 5);
    assert_eq!(json["peaks"].as_array().unwrap().len(), 2);
    let mut bad = json.clone();
    bad["size"] = 6.into();
    assert!(serde_json::from_value::<TreeState>(bad).is_ok());
    let mut bad = json.clone();
    bad["size"] = 7.into();
    assert!(serde_json::from_value::<TreeState>(bad).is_err());
    let mut bad = json;
    bad["peaks"][0] = "zz".into();
    assert!(serde_json::from_value::<TreeState>(bad).is_err());
}

/// A reader that counts its calls and the hashes asked for.
struct Counting<'a> {
    inner: &'a MemoryHashes,
    calls: std::cell::Cell<usize>,
    hashes: std::cell::Cell<usize>,
}

impl HashReader for Counting<'_> {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
        self.calls.set(self.calls.get() + 1);
        self.hashes.set(self.hashes.get() + ids.len());
        self.inner.read_hashes(ids)
    }
}

#[test]
fn proofs_read_logarithmically_in_one_batch() {
    let (_, store) = big();
    let counting = Counting {
        inner: store,
        calls: 0.into(),
        hashes: 0.into(),
    };
    for (m, n) in [(0, BIG), (BIG - 1, BIG), (12_345, 99_999), (65_537, 65_539)] {
        counting.calls.set(0);
        counting.hashes.set(0);
        inclusion_proof(&counting, m, n).unwrap();
        assert_eq!(counting.calls.get(), 1);
        assert!(counting.hashes.get() <= 2 * 17, "{}", counting.hashes.get());
        counting.calls.set(0);
        counting.hashes.set(0);
        consistency_proof(&counting, m.max(1), n).unwrap();
        assert_eq!(counting.calls.get(), 1);
        assert!(counting.hashes.get() <= 2 * 17, "{}", counting.hashes.get());
    }
}

// ---- random larger sizes -----------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn large_inclusion(n in 1..=BIG, seed in any::<u64>()) {
        let (l, store) = big();
        let m = seed % n;
        check_inclusion(l, store, m, n, false);
        prop_assert_eq!(root_at(store, n).unwrap(), root(&l[..n as usize]));
    }

    #[test]
    fn large_consistency(n in 1..=BIG, seed in any::<u64>()) {
        let (l, store) = big();
        let m = seed % (n + 1);
        check_consistency(l, store, m, n, false);
    }

    #[test]
    fn medium_against_reference(n in 1..=4_096u64, seed in any::<u64>()) {
        let (l, store) = big();
        check_inclusion(l, store, seed % n, n, true);
        check_consistency(l, store, seed % (n + 1), n, true);
    }
}

// ---- sizes near u64::MAX -------------------------------------------------------

/// A consistent store for a tree whose leaves are all equal: the hash of a
/// complete subtree depends only on its level, so any size can be served.
struct Uniform {
    by_level: Vec<Hash>,
}

impl Uniform {
    fn new() -> Uniform {
        let mut by_level = vec![leaf_hash(b"same")];
        for l in 1..64 {
            let below = by_level[l - 1];
            by_level.push(node_hash(&below, &below));
        }
        Uniform { by_level }
    }
}

impl HashReader for Uniform {
    fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
        Ok(ids
            .iter()
            .map(|id| self.by_level[usize::from(id.level)])
            .collect())
    }
}

#[test]
fn huge_sizes_do_not_overflow() {
    let store = Uniform::new();
    let leaf = store.by_level[0];
    for (m, n) in [
        (u64::MAX - 1, u64::MAX),
        (0, u64::MAX),
        (1 << 63, u64::MAX),
        ((1 << 63) - 1, 1 << 63),
        (u64::MAX / 3, u64::MAX - 5),
    ] {
        let root = root_at(&store, n).unwrap();
        let p = inclusion_proof(&store, m, n).unwrap();
        verify_inclusion(&leaf, m, n, &p, &root).unwrap();
        if m > 0 {
            let old = root_at(&store, m).unwrap();
            let c = consistency_proof(&store, m, n).unwrap();
            verify_consistency(m, n, &old, &root, &c).unwrap();
        }
        let state = TreeState::from_reader(&store, n).unwrap();
        assert_eq!(state.root(), root);
        assert_eq!(state.peaks().len(), n.count_ones() as usize);
    }
}

#[test]
fn tile_reader_at_huge_sizes() {
    use gongkai_core::tile::{TileHashReader, TileId, encode_tile};
    let store = Uniform::new();
    let fetch = |id: &TileId| {
        let h = store.by_level[usize::from(id.level()) * 8];
        Ok(encode_tile(&vec![h; usize::from(id.width())]))
    };
    for n in [u64::MAX, 1 << 63, (1 << 40) + 12_345, 70_000] {
        let tiles = TileHashReader::new(fetch, n);
        assert_eq!(root_at(&tiles, n), root_at(&store, n));
        for m in [0, 1, n / 2, n - 1] {
            assert_eq!(inclusion_proof(&tiles, m, n), inclusion_proof(&store, m, n));
            assert_eq!(
                consistency_proof(&tiles, m, n),
                consistency_proof(&store, m, n)
            );
        }
    }
}

// ---- tiles over random sizes -------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// A verifier holding only the tiles published for a size gets the
    /// same roots and proofs as the full store.
    #[test]
    fn tile_reader_matches_store(n in 1..=BIG, seed in any::<u64>()) {
        use std::collections::HashMap;
        use gongkai_core::tile::{TileHashReader, TileId, encode_tile, tile_hashes, tiles_for_size};

        let (_, store) = big();
        let published: HashMap<TileId, Vec<u8>> = tiles_for_size(n)
            .into_iter()
            .map(|t| (t, encode_tile(&tile_hashes(store, &t).unwrap())))
            .collect();
        let fetch = |id: &TileId| {
            published
                .get(id)
                .cloned()
                .ok_or_else(|| Error::Tile(format!("{id} is not published for this size")))
        };
        let tiles = TileHashReader::new(fetch, n);
        prop_assert_eq!(root_at(&tiles, n), root_at(store, n));
        let m = seed % n;
        prop_assert_eq!(inclusion_proof(&tiles, m, n), inclusion_proof(store, m, n));
        prop_assert_eq!(consistency_proof(&tiles, m, n), consistency_proof(store, m, n));
        prop_assert_eq!(
            TreeState::from_reader(&tiles, n).unwrap(),
            TreeState::from_reader(store, n).unwrap()
        );
    }
}
