//! The fuzz targets' bodies, one module per target: the binaries under
//! `fuzz_targets/` hand them libFuzzer's inputs (`cargo +nightly fuzz run
//! <target>`), and `tests/corpus.rs` replays every file of
//! `corpus/<target>/` through them on stable, in every test run.

pub mod entry {
    //! Untrusted entry bytes: framing, canonical body, field rules. Must never
    //! panic; anything accepted must re-encode to the same body.

    use gongkai_core::entry::Entry;

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
        if let Ok(entry) = Entry::parse(data.to_vec(), 0)
            && let Ok(event) = entry.decode_event(0)
        {
            assert_eq!(event.encode(), entry.body());
        }
    }
}

pub mod note {
    //! Untrusted signed notes, checkpoints and verifier keys. Must never panic;
    //! anything accepted must print back byte for byte.

    use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
    use gongkai_core::note::{Note, VerifierKey};

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
        if let Ok(note) = Note::from_bytes(data) {
            assert_eq!(note.to_string().as_bytes(), data);
        }
        let _ = SignedCheckpoint::from_bytes(data);
        if let Ok(text) = std::str::from_utf8(data) {
            if let Ok(cp) = Checkpoint::parse(text) {
                assert_eq!(cp.to_text(), text);
            }
            let _ = VerifierKey::parse(text);
        }
    }
}

pub mod tiles {
    //! Untrusted tile paths, tiles and entry bundles. Must never panic; parsed
    //! paths must print back exactly.

    use gongkai_core::tile::{decode_bundle, decode_tile, parse_path};

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
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
    }
}

pub mod chain {
    //! A sequence of untrusted entries through the chain verifier (split on a
    //! length prefix). Must never panic, whatever the bytes.

    use gongkai_core::chain::ChainVerifier;
    use gongkai_core::keys::SigningKey;
    use gongkai_core::types::Origin;

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
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
    }
}

pub mod proof_bundle {
    //! Untrusted proof bundles (FORMAT.md § 18), as `gongkai check-proof` reads
    //! them: JSON, then verification. Must never panic, whatever the bytes.

    use gongkai_core::checkpoint::Checkpoint;
    use gongkai_core::keys::SigningKey;
    use gongkai_core::note::Verifiers;
    use gongkai_core::proof::ProofBundle;
    use gongkai_core::types::Origin;

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
        let Ok(bundle) = serde_json::from_slice::<ProofBundle>(data) else {
            return;
        };
        let origin = Origin::new(&bundle.origin)
            .unwrap_or_else(|_| Origin::new("gongkai.example/510122/finance").unwrap());
        let key =
            Checkpoint::log_verifier_key(&origin, &SigningKey::from_seed([4; 32]).public_key());
        let _ = bundle.verify(&[key], &Verifiers::default(), 0);
    }
}

pub mod evidence {
    //! Untrusted evidence files (FORMAT.md § 20) and county leaves (§ 19), as
    //! `audit` reads them from an export's `evidence/` and `county/`. Must
    //! never panic; anything accepted must encode back byte for byte, and
    //! verifying parsed evidence must not panic either.

    use gongkai_core::county::CountyLeaf;
    use gongkai_core::evidence::Evidence;
    use gongkai_core::keys::SigningKey;

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(e) = Evidence::parse(text)
        {
            assert_eq!(e.encode(), text);
            let _ = e.verify(&[SigningKey::from_seed([1; 32]).public_key()]);
        }
        if let Ok(leaf) = CountyLeaf::decode(data) {
            assert_eq!(leaf.encode(), data);
        }
    }
}

pub mod county_leaf {
    //! Untrusted county log leaves (checkpoint rounds and calendar tables,
    //! FORMAT.md § 14.4, § 19): decoding must never panic, and a calendar
    //! table that decodes must re-encode to the same bytes (one reading per
    //! leaf) and fold under the version rules.

    use gongkai_core::calendar::published::PublishedCalendars;
    use gongkai_core::county::CountyRecord;

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
        let mut calendars = PublishedCalendars::new();
        if let Ok(record) = CountyRecord::decode(data) {
            match record {
                CountyRecord::Checkpoints(_) => {}
                CountyRecord::Calendar(table) => {
                    assert_eq!(table.encode(), data);
                    let _ = calendars.apply(0, table);
                    let _ = calendars.in_force();
                }
            }
        }
    }
}

pub mod export_dir {
    //! Untrusted export directories (FORMAT.md § 16): a small valid export is
    //! generated once, then the input replaces or adds files in a fresh copy
    //! of it — manifest, checkpoint, other checkpoints, bundles, tiles,
    //! content, evidence, the county part — and `audit` must end in findings
    //! or an error, never a panic, a loop or an unbounded read.

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
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

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
                        applicant: pb::ApplicantCategory::NaturalPerson as i32,
                    })
                };
                entries.push(w.append(kind, 1_772_413_200_000 + i).unwrap().into_bytes());
            }
            let mut files = BTreeMap::new();
            let dir = format!("logs/{ORIGIN}");
            let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
            files.insert(
                format!("{dir}/tile/entries/000.p/3"),
                encode_bundle(&refs).unwrap(),
            );
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
            let cp =
                SignedCheckpoint::sign(&Checkpoint::new(origin.clone(), 3, tree.root()), &key())
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

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
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
    }
}

pub mod witness {
    //! Untrusted witness requests and answers (FORMAT.md § 21): the body of
    //! `POST /add-checkpoint` as a witness reads it, and a witness's answer
    //! as the county reads it. Must never panic; a request accepted must
    //! encode back byte for byte, and judging it against any state must not
    //! panic either.

    use gongkai_core::witness::{self, AddCheckpoint, Latest};

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
        if let Ok(req) = AddCheckpoint::parse(data) {
            assert_eq!(req.encode().as_bytes(), data);
            let cp = req.checkpoint.checkpoint();
            let _ = witness::judge(None, &req);
            for size in [0, req.old_size, cp.size, cp.size.saturating_add(1)] {
                let _ = witness::judge(
                    Some(&Latest {
                        size,
                        root: cp.root,
                    }),
                    &req,
                );
            }
        }
        let _ = witness::parse_cosignatures(data);
    }
}

pub mod annual_report {
    //! Untrusted annual reports (FORMAT.md § 22.5): a document an audit
    //! reads from a published item. Parsing must never panic, and a report
    //! that parses is compared with a real one (the audit's comparison)
    //! without panicking either, whatever its cells, sizes and years.

    use gongkai_core::calendar::WorkCalendar;
    use gongkai_core::report::{AnnualReport, ReportFold};
    use std::sync::OnceLock;

    fn fresh() -> &'static AnnualReport {
        static FRESH: OnceLock<AnnualReport> = OnceLock::new();
        FRESH.get_or_init(|| {
            ReportFold::new(2026, WorkCalendar::shipped().clone())
                .map(ReportFold::finish)
                .unwrap_or_else(|_| AnnualReport::sum("o", "d", 2026, &[]))
        })
    }

    /// Runs the target on one input.
    pub fn run(data: &[u8]) {
        if let Ok(r) = gongkai_verify::report::parse(data) {
            let _ = r.differences(fresh());
            let _ = fresh().differences(&r);
            let _ = AnnualReport::sum("o", "d", r.year, &[r.clone(), fresh().clone()]);
        }
    }
}
