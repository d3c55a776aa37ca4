//! An export directory is untrusted input (FORMAT.md § 16.3): every attack
//! here once panicked, looped, read without bound or misreported, and must
//! now end in findings, quickly, reading nothing it should not.

use std::path::Path;

use gongkai_core::audit::Severity;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::date::Date;
use gongkai_core::event::{Kind, content_message, pb};
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::TreeState;
use gongkai_core::note::VerifierKey;
use gongkai_core::tile::{TileBuilder, encode_bundle, encode_tile, entry_bundles_for_size};
use gongkai_core::types::{ContentRef, Origin};

use gongkai_core::writer::LogWriter;
use gongkai_verify::audit::audit_export;
use gongkai_verify::check::LogAudit;
use gongkai_verify::layout;
use gongkai_verify::trust::Trust;

const ORIGIN: &str = "gongkai.example/510122/finance";
/// Entries in the test log: one full bundle and a partial one.
const SIZE: u64 = 300;
/// The entry publishing the item with content.
const PUBLISHED: u64 = 2;
/// The entry redacting that content.
const REDACTED: u64 = 250;

fn key() -> SigningKey {
    SigningKey::from_seed([42; 32])
}

fn origin() -> Origin {
    Origin::new(ORIGIN).unwrap()
}

fn trust() -> Trust {
    let vk: VerifierKey = Checkpoint::log_verifier_key(&origin(), &key().public_key());
    Trust::from_vkeys(&[vk]).unwrap()
}

fn as_of() -> Date {
    Date::new(2026, 3, 2).unwrap()
}

/// A log with a public item whose content is later redacted (when
/// `redact`), and the content blob (salt || data).
fn log(redact: bool) -> (Vec<Vec<u8>>, ContentRef, Vec<u8>) {
    let mut w = LogWriter::new(origin(), key());
    let t0 = u64::try_from(as_of().start_unix_ms_cst()).unwrap() + 9 * 3_600_000;
    let salt = [9u8; 32];
    let data = b"2026 budget".to_vec();
    let c = ContentRef::commit(&salt, &data, "text/plain").unwrap();
    let mut out = Vec::new();
    for i in 0..SIZE {
        let kind = match i {
            0 => Kind::Genesis(pb::Genesis {
                department: "某某县财政局".into(),
                division_code: "510122".into(),
            }),
            1 => Kind::MatterDefined(pb::MatterDefined {
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
            }),
            PUBLISHED => Kind::Published(pb::Published {
                item_id: "budget".into(),
                matter_id: "m".into(),
                title: "预算".into(),
                content: Some(content_message(&c)),
                date_formed: "2026-03-02".into(),
                ..Default::default()
            }),
            REDACTED if redact => Kind::Redacted(pb::Redacted {
                item_id: "budget".into(),
                content_digest: c.digest().0.to_vec(),
                reason: "误公开个人信息".into(),
                legal_basis: "条例第十五条".into(),
            }),
            _ => Kind::RequestReceived(pb::RequestReceived {
                applicant: 0,
                request_id: format!("r{i}"),
                date_received: "2026-03-02".into(),
                subject: "请求公开".into(),
            }),
        };
        out.push(w.append(kind, t0 + i).unwrap().into_bytes());
    }
    let mut blob = salt.to_vec();
    blob.extend_from_slice(&data);
    (out, c, blob)
}

/// Writes a complete, valid export of `entries` (content included unless
/// redacted) to `root`; returns the log directory.
fn export(
    root: &Path,
    entries: &[Vec<u8>],
    c: &ContentRef,
    blob: Option<&[u8]>,
) -> std::path::PathBuf {
    let dir = layout::log_dir(root, &origin()).unwrap();
    let put = |rel: &str, bytes: &[u8]| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    let mut tree = TreeState::new();
    let mut tiles = TileBuilder::new();
    for b in entry_bundles_for_size(entries.len() as u64) {
        let first = usize::try_from(b.first_entry()).unwrap();
        let part: Vec<&[u8]> = entries[first..first + usize::from(b.width())]
            .iter()
            .map(Vec::as_slice)
            .collect();
        put(&b.path(), &encode_bundle(&part).unwrap());
        for e in part {
            let leaf = gongkai_core::hash::leaf_hash(e);
            tree.append_leaf(leaf);
            for (id, h) in tiles.push(leaf) {
                put(&id.path(), &encode_tile(&h));
            }
        }
    }
    for (id, h) in tiles.partial_tiles() {
        put(&id.path(), &encode_tile(&h));
    }
    if let Some(blob) = blob {
        put(&layout::content_path(c.digest()), blob);
    }
    let cp = SignedCheckpoint::sign(&Checkpoint::new(origin(), tree.size(), tree.root()), &key())
        .unwrap();
    put(layout::CHECKPOINT, cp.to_string().as_bytes());
    std::fs::write(root.join(layout::MANIFEST), layout::manifest(&[origin()])).unwrap();
    dir
}

fn audit(root: &Path) -> LogAudit {
    let mut logs = audit_export(root, &trust(), as_of()).unwrap();
    assert_eq!(logs.len(), 1);
    logs.remove(0)
}

fn violations(a: &LogAudit) -> Vec<(&'static str, Option<String>)> {
    a.findings
        .iter()
        .filter(|f| f.severity == Severity::Violation)
        .map(|f| (f.kind, f.file.clone()))
        .collect()
}

fn valid() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let (entries, c, blob) = log(false);
    let dir = export(d.path(), &entries, &c, Some(&blob));
    let a = audit(d.path());
    assert_eq!(violations(&a), [], "{:?}", a.findings);
    assert_eq!((a.entries_verified, a.content_ok), (SIZE, 1));
    (d, dir)
}

#[test]
fn a_checkpoint_claiming_two_to_the_sixty_four_entries_costs_only_the_bundles_there() {
    let (d, dir) = valid();
    // Validly signed by the department: the size is the department's
    // claim, the bundles are not there.
    let cp = SignedCheckpoint::sign(
        &Checkpoint::new(origin(), u64::MAX, gongkai_core::Hash([7; 32])),
        &key(),
    )
    .unwrap();
    std::fs::write(dir.join(layout::CHECKPOINT), cp.to_string()).unwrap();
    let a = audit(d.path());
    assert_eq!(a.size, u64::MAX);
    assert_eq!(a.entries_verified, 256, "the full bundle verified");
    assert_eq!(
        violations(&a),
        [(
            "missing-file",
            Some(format!("logs/{ORIGIN}/tile/entries/001"))
        )],
        "{:?}",
        a.findings
    );
}

#[test]
fn links_are_never_followed_and_special_files_never_read() {
    let (d, dir) = valid();
    // A directory loop in tile/ (listed as a stray file, never walked), a
    // content blob that is a link to /dev/zero (never read).
    std::os::unix::fs::symlink(&dir, dir.join("tile/loop")).unwrap();
    let (_, c, _) = log(false);
    let blob = dir.join(layout::content_path(c.digest()));
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &blob).unwrap();
    let a = audit(d.path());
    let v = violations(&a);
    assert!(
        v.contains(&("unexpected-file", Some(format!("logs/{ORIGIN}/tile/loop")))),
        "{v:?}"
    );
    let content = a
        .findings
        .iter()
        .find(|f| f.kind == "content-mismatch")
        .expect("the linked content is refused");
    assert!(
        content.detail.contains("symbolic link"),
        "{}",
        content.detail
    );
    // A link as the whole log directory: refused, not followed.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::rename(&dir, elsewhere.path().join("log")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("log"), &dir).unwrap();
    let a = audit(d.path());
    assert_eq!(a.entries_verified, 0);
    assert!(
        a.findings
            .iter()
            .any(|f| f.kind == "missing-file" && f.detail.contains("symbolic link")),
        "{:?}",
        a.findings
    );
}

#[test]
fn oversized_files_are_refused_before_a_byte_is_read() {
    let (d, dir) = valid();
    // Sparse files: gigabytes on paper, nothing on disk; reading one would
    // take minutes and all the memory.
    let sparse = |p: &Path, len: u64| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(p).unwrap().set_len(len).unwrap();
    };
    sparse(&dir.join("tile/entries/000"), 8 << 30);
    sparse(&dir.join("checkpoints/300"), 4 << 30);
    sparse(&dir.join("evidence/0123456789abcdef"), 4 << 30);
    let a = audit(d.path());
    let kinds: Vec<&str> = a.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&"malformed-bundle"), "{:?}", a.findings);
    assert!(kinds.contains(&"checkpoint"), "{:?}", a.findings);
    assert!(kinds.contains(&"evidence-malformed"), "{:?}", a.findings);
    assert_eq!(a.entries_verified, 0);
    // A content blob longer than its commitment: refused unread.
    let (d, dir) = valid();
    let (_, c, _) = log(false);
    sparse(&dir.join(layout::content_path(c.digest())), 1 << 40);
    let a = audit(d.path());
    assert_eq!(
        violations(&a),
        [(
            "content-mismatch",
            Some(format!(
                "logs/{ORIGIN}/{}",
                layout::content_path(c.digest())
            ))
        )]
    );
}

#[test]
fn after_a_chain_failure_no_content_is_judged_on_the_partial_log() {
    // The item's content is redacted at entry 250 and rightly absent from
    // the export; the chain breaks at 150. Judged on entries 0..150 alone,
    // the content would look missing without a Redacted event.
    let d = tempfile::tempdir().unwrap();
    let (mut entries, c, _) = log(true);
    let dir = export(d.path(), &entries, &c, None);
    assert_eq!(violations(&audit(d.path())), []);
    entries[150] = entries[149].clone();
    export(d.path(), &entries, &c, None);
    let _ = dir;
    let a = audit(d.path());
    let kinds: Vec<&str> = violations(&a).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["chain-broken"], "{:?}", a.findings);
}

#[test]
fn a_manifest_out_of_order_or_with_duplicates_is_refused() {
    let (d, _) = valid();
    std::fs::write(
        d.path().join(layout::MANIFEST),
        format!("gongkai-export/v1\nlog {ORIGIN}\nlog {ORIGIN}\n"),
    )
    .unwrap();
    let e = audit_export(d.path(), &trust(), as_of()).unwrap_err();
    assert!(e.to_string().contains("sorted"), "{e}");
    // A manifest that is a link to /dev/zero: refused unread.
    std::fs::remove_file(d.path().join(layout::MANIFEST)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.path().join(layout::MANIFEST)).unwrap();
    let e = audit_export(d.path(), &trust(), as_of()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
}
