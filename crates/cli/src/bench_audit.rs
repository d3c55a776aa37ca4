//! `gongkai bench audit`: the offline audit of a large export next to the
//! raw ZIP-215 batch-verification rate of the same library on the same
//! cores in the same run (issue 5 target: audit >= 0.7x raw), with content
//! hashing reported separately.
//!
//! The log is made here: `--entries` `request_received` events (small,
//! valid, no content) signed in parallel, plus `--content` published items
//! with documents of `--content-bytes`; it is written in the export layout
//! and audited exactly as `gongkai audit` does.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::date::Date;
use gongkai_core::entry::Entry;
use gongkai_core::event::{Kind, pb};
use gongkai_core::keys::{BatchVerifier, SigningKey};
use gongkai_core::merkle::TreeState;
use gongkai_core::tile::{TileBuilder, encode_bundle, encode_tile, entry_bundles_for_size};
use gongkai_core::types::{ContentRef, Origin};
use gongkai_core::writer::LogWriter;
use prost::Message as _;

use crate::layout;
use crate::trust::Trust;

/// `gongkai bench audit`.
#[derive(Debug, Args)]
pub struct AuditBenchArgs {
    /// Entries in the log.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Published items with content among them (content hashing is timed
    /// separately).
    #[arg(long, default_value_t = 1000)]
    content: u64,
    /// Size of each document, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    content_bytes: usize,
    /// Where to write the export (default: a temporary directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const ORIGIN: &str = "bench.example/510122/finance";

/// Runs `gongkai bench audit`.
///
/// # Errors
/// Local I/O.
pub fn run(a: &AuditBenchArgs) -> Result<()> {
    let threads = crate::engine::threads();
    let tmp = tempfile::tempdir()?;
    let root = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let origin = Origin::new(ORIGIN)?;
    let key = SigningKey::from_seed([11; 32]);
    eprintln!(
        "making a log of {} entries on {threads} threads ...",
        a.entries
    );
    let t = Instant::now();
    let (entries, blobs) = make_log(&origin, &key, a, threads)?;
    eprintln!(
        "  made in {:.1} s; writing the export ...",
        t.elapsed().as_secs_f64()
    );
    write_export(&root, &origin, &key, &entries, &blobs)?;
    let bytes: usize = entries.iter().map(Vec::len).sum();

    // Raw: the same signatures, batches of 1,024, on every core.
    let checks: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p =
                gongkai_core::chain::prepare(e.clone(), i as u64).map_err(anyhow::Error::from)?;
            Ok(p.signature_checks()?.remove(0))
        })
        .collect::<Result<_>>()?;
    let t = Instant::now();
    std::thread::scope(|s| {
        let per = checks.len().div_ceil(threads);
        for part in checks.chunks(per.max(1)) {
            s.spawn(move || {
                for chunk in part.chunks(crate::engine::BATCH) {
                    let mut b = BatchVerifier::new();
                    for (i, c) in chunk.iter().enumerate() {
                        b.queue(i, &c.key, &c.message, &c.signature);
                    }
                    assert!(
                        b.verify(&mut rand::rng()).is_ok(),
                        "benchmark signatures verify"
                    );
                }
            });
        }
    });
    let raw_secs = t.elapsed().as_secs_f64();
    drop(checks);
    // The parallel half alone (framing, canonical decoding, field rules,
    // hashes, batched signatures): what the audit costs before the
    // sequential links, rules, tiles and findings.
    let t = Instant::now();
    let mut at = 0u64;
    for chunk in entries.chunks(64 * 1024) {
        let checked = crate::engine::check_parallel(at, chunk.to_vec(), threads);
        if let Some(e) = checked.first_error() {
            anyhow::bail!("the benchmark log does not verify: {e}");
        }
        at += chunk.len() as u64;
    }
    let parallel_secs = t.elapsed().as_secs_f64();
    drop(entries);

    // The audit, as `gongkai audit` runs it.
    let vkey = Checkpoint::log_verifier_key(&origin, &key.public_key());
    let trust = Trust::from_vkeys(&[vkey])?;
    // Judged on the day the log was made: every request is still in time.
    let as_of = Date::new(2026, 3, 2)?;
    let t = Instant::now();
    let mut source = gongkai_verify::source::ExportLog::open(&root, &origin)?;
    let report = gongkai_verify::check::check_log(
        &mut source,
        &gongkai_verify::check::Options {
            trust: &trust,
            review: Some((as_of, gongkai_core::calendar::WorkCalendar::shipped())),
            county_notes: &[],
            resume: None,
        },
    );
    let total = t.elapsed().as_secs_f64();
    let violations = report.violations();
    let n = a.entries as f64;
    let raw_rate = n / raw_secs;
    let audit_rate = n / report.verify_secs;
    println!(
        "gongkai bench audit: {} entries ({:.1} MB), {} documents of {} bytes, {threads} threads",
        a.entries,
        bytes as f64 / 1e6,
        a.content,
        a.content_bytes
    );
    println!(
        "  raw ZIP-215 batch verify   {:>10.0} signatures/s  ({raw_secs:.2} s)",
        raw_rate
    );
    println!(
        "  parallel half alone        {:>10.0} entries/s     ({parallel_secs:.2} s)  = {:.2}x raw",
        n / parallel_secs,
        raw_secs / parallel_secs
    );
    println!(
        "  audit: entries and tiles   {:>10.0} entries/s     ({:.2} s)  = {:.2}x raw",
        audit_rate,
        report.verify_secs,
        audit_rate / raw_rate
    );
    println!(
        "  audit: content hashing     {:>10.1} MB/s          ({:.2} s)",
        (a.content as f64 * a.content_bytes as f64) / 1e6 / report.content_secs.max(1e-9),
        report.content_secs
    );
    println!(
        "  audit total                {total:.2} s; {} entries verified, {violations} violations",
        report.entries_verified
    );
    if violations > 0 {
        anyhow::bail!(
            "the benchmark log should audit clean: {:?}",
            report.findings.first()
        );
    }
    Ok(())
}

type Blobs = Vec<(ContentRef, [u8; 32], Vec<u8>)>;

fn make_log(
    origin: &Origin,
    key: &SigningKey,
    a: &AuditBenchArgs,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Blobs)> {
    let mut w = LogWriter::new(origin.clone(), key.clone());
    // A past working day, so nothing is late or in the future.
    let t0 = u64::try_from(Date::new(2026, 3, 2)?.start_unix_ms_cst()).unwrap_or(0) + 9 * 3_600_000;
    let mut bodies = Vec::with_capacity(usize::try_from(a.entries).unwrap_or(0));
    let mut blobs = Vec::new();
    let every = if a.content == 0 {
        u64::MAX
    } else {
        (a.entries / (a.content + 1)).max(2)
    };
    for i in 0..a.entries {
        let kind = if i == 0 {
            Kind::Genesis(pb::Genesis {
                department: "基准测试局".into(),
                division_code: "510122".into(),
            })
        } else if i == 1 {
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "m".into(),
                matter: Some(pb::Matter {
                    category: "财政".into(),
                    level1: "预算".into(),
                    level2: "部门预算".into(),
                    elements: vec!["预算表".into()],
                    legal_basis: "条例".into(),
                    deadline_working_days: 366,
                    responsible_body: "财政局".into(),
                    channels: vec!["网站".into()],
                    audience: pb::Audience::Public as i32,
                    mode: pb::DisclosureMode::Proactive as i32,
                    ..Default::default()
                }),
            })
        } else if i % every == 0 && (blobs.len() as u64) < a.content {
            let salt: [u8; 32] = rand::random();
            let data: Vec<u8> = (0..a.content_bytes)
                .map(|j| (j as u8) ^ (i as u8))
                .collect();
            let c = ContentRef::commit(&salt, &data, "application/octet-stream")?;
            let msg = gongkai_core::event::content_message(&c);
            blobs.push((c, salt, data));
            Kind::Published(pb::Published {
                item_id: format!("item-{i}"),
                matter_id: "m".into(),
                title: "文件".into(),
                content: Some(msg),
                date_formed: "2026-03-02".into(),
                ..Default::default()
            })
        } else {
            Kind::RequestReceived(pb::RequestReceived {
                applicant: pb::ApplicantCategory::NaturalPerson as i32,
                request_id: format!("r{i}"),
                date_received: "2026-03-02".into(),
                subject: "请求公开".into(),
            })
        };
        let body = w.next_body(kind, t0 + i / 1000).encode_to_vec();
        w.advance_body(gongkai_core::hash::body_hash(&body), t0 + i / 1000);
        bodies.push(body);
    }
    let per = bodies.len().div_ceil(threads).max(1);
    let mut entries = Vec::with_capacity(bodies.len());
    let parts: Vec<Result<Vec<Vec<u8>>>> = std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .chunks(per)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, b)| {
                            Ok(Entry::sign_body(b, key, (c * per + i) as u64)?.into_bytes())
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("signing thread failed")))
            })
            .collect()
    });
    for p in parts {
        entries.extend(p?);
    }
    Ok((entries, blobs))
}

fn write_export(
    root: &Path,
    origin: &Origin,
    key: &SigningKey,
    entries: &[Vec<u8>],
    blobs: &Blobs,
) -> Result<()> {
    let dir = layout::log_dir(root, origin)?;
    let put = |rel: &str, bytes: &[u8]| -> Result<()> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("write {}", p.display()))
    };
    let mut tree = TreeState::new();
    let mut tiles = TileBuilder::new();
    for b in entry_bundles_for_size(entries.len() as u64) {
        let first = usize::try_from(b.first_entry())?;
        let part: Vec<&[u8]> = entries[first..first + usize::from(b.width())]
            .iter()
            .map(Vec::as_slice)
            .collect();
        put(&b.path(), &encode_bundle(&part)?)?;
        for e in part {
            let leaf = gongkai_core::hash::leaf_hash(e);
            tree.append_leaf(leaf);
            for (id, h) in tiles.push(leaf) {
                put(&id.path(), &encode_tile(&h))?;
            }
        }
    }
    for (id, h) in tiles.partial_tiles() {
        put(&id.path(), &encode_tile(&h))?;
    }
    for (c, salt, data) in blobs {
        let mut blob = salt.to_vec();
        blob.extend_from_slice(data);
        put(&layout::content_path(c.digest()), &blob)?;
    }
    let cp = SignedCheckpoint::sign(
        &Checkpoint::new(origin.clone(), tree.size(), tree.root()),
        key,
    )?;
    put(
        &layout::checkpoint_path(tree.size()),
        cp.to_string().as_bytes(),
    )?;
    put(layout::CHECKPOINT, cp.to_string().as_bytes())?;
    crate::write_file(
        &root.join(layout::MANIFEST),
        layout::manifest(std::slice::from_ref(origin)).as_bytes(),
        0o644,
    )
}
