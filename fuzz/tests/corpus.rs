//! Every file of `corpus/<target>/` through its target, on stable: what a
//! fuzzer once found (and the seeds it grew from) stays a test. Run by
//! `scripts/test` as `cargo test --manifest-path fuzz/Cargo.toml
//! --no-default-features`.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("entry", gongkai_fuzz::entry::run),
    ("note", gongkai_fuzz::note::run),
    ("tiles", gongkai_fuzz::tiles::run),
    ("chain", gongkai_fuzz::chain::run),
    ("proof_bundle", gongkai_fuzz::proof_bundle::run),
    ("evidence", gongkai_fuzz::evidence::run),
    ("county_leaf", gongkai_fuzz::county_leaf::run),
    ("export_dir", gongkai_fuzz::export_dir::run),
    ("witness", gongkai_fuzz::witness::run),
    ("annual_report", gongkai_fuzz::annual_report::run),
];

#[test]
fn every_corpus_file_runs_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut ran = 0;
    for (name, run) in TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target keeps a corpus)", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: an empty corpus");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            // A panic names the file: it is the reproducer.
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name}: {} panics", f.display());
            ran += 1;
        }
    }
    eprintln!("{ran} corpus inputs replayed");
}

#[test]
fn every_target_has_a_binary_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in TARGETS {
        assert!(
            root.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .exists(),
            "{name}"
        );
        assert!(root.join("corpus").join(name).is_dir(), "{name}");
    }
    let bins = std::fs::read_dir(root.join("fuzz_targets"))
        .unwrap()
        .count();
    assert_eq!(bins, TARGETS.len(), "a fuzz target missing from TARGETS");
}
