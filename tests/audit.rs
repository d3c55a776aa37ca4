//! `gongkai export` and `gongkai audit` end to end: a real node replicating
//! to a real county aggregator, a real export from the county (the log,
//! its evidence, the county log as `county/`, a request answer's content),
//! a tamper matrix (each case must make `audit` exit 1 and name the exact
//! index or file), and a fixture log with late disclosures, late and
//! overdue requests and a missing period.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::*;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::county::CountyLeaf;
use gongkai_core::evidence::{Evidence, Misbehaviour};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::{Cosigner, parse_private_key};
use gongkai_core::types::{KeyName, Origin};

fn log_dir(export: &Path) -> PathBuf {
    export.join("logs").join(ORIGIN)
}

/// Runs `audit --json`; returns (exit code, parsed output).
fn audit(export: &Path, trust: &Path) -> (Option<i32>, serde_json::Value, String) {
    let o = gongkai(&[
        "audit",
        export.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--json",
    ]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (
        o.status.code(),
        v,
        format!("{}{}", text(&o.stdout), text(&o.stderr)),
    )
}

fn violations(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["severity"] == "violation")
        .collect()
}

/// (offset, length) of each entry in an entry bundle.
fn bundle_entries(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let len = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
        out.push((at + 2, len));
        at += 2 + len;
    }
    out
}

fn only_file(dir: &Path, sub: &str) -> String {
    // The one partial file under `sub` (e.g. tile/entries/000.p).
    let mut files: Vec<String> = std::fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    format!("{sub}/{}", files[0])
}

/// The county log's directory inside an export.
fn county_dir(export: &Path) -> PathBuf {
    export.join("county/logs").join(COUNTY_ORIGIN)
}

/// The export root of a log directory (`logs/<origin>` with three origin
/// segments).
fn root_of(log_dir: &Path) -> PathBuf {
    log_dir.ancestors().nth(4).unwrap().to_path_buf()
}

/// The size of an exported county log.
fn county_size(export: &Path) -> u64 {
    let text = std::fs::read_to_string(county_dir(export).join("checkpoint")).unwrap();
    SignedCheckpoint::parse(&text).unwrap().checkpoint().size
}

/// The leaves of an exported county log (one entry bundle in these tests).
fn county_leaves(export: &Path) -> Vec<Vec<u8>> {
    let dir = county_dir(export);
    let n = county_size(export);
    assert!((1..256).contains(&n), "county log of {n} leaves");
    let bytes = std::fs::read(dir.join(format!("tile/entries/000.p/{n}"))).unwrap();
    gongkai_core::tile::decode_bundle(&bytes, n as usize)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// Exports from the county until its county log holds a checkpoint of
/// `size` of the department (a leaf is made at most every 200 ms).
fn wait_county_leaf(county: &County, size: u64, scratch: &Path) {
    let start = std::time::Instant::now();
    loop {
        let _ = std::fs::remove_dir_all(scratch);
        expect_code(
            &county.public(&["export", "--out", scratch.to_str().unwrap()]),
            0,
        );
        // The county appends its first leaf a moment after it cosigns.
        let leaves = if county_size(scratch) == 0 {
            Vec::new()
        } else {
            county_leaves(scratch)
        };
        let newest = leaves
            .iter()
            .flat_map(|l| CountyLeaf::decode(l).unwrap().checkpoints)
            .filter(|c| c.checkpoint().origin.as_str() == ORIGIN)
            .map(|c| c.checkpoint().size)
            .max();
        if newest == Some(size) {
            let _ = std::fs::remove_dir_all(scratch);
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "no county leaf with size {size}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Rewrites the exported county log with `leaves` (tiles recomputed, the
/// checkpoint signed by `county_key`): a county that signs what it likes.
fn rewrite_county(export: &Path, leaves: &[Vec<u8>], county_key: &SigningKey) {
    let dir = county_dir(export);
    let _ = std::fs::remove_dir_all(dir.join("tile"));
    let mut tiles = gongkai_core::tile::TileBuilder::new();
    let mut hashes = Vec::new();
    for l in leaves {
        let h = gongkai_core::hash::leaf_hash(l);
        hashes.push(h);
        assert!(tiles.push(h).is_empty(), "one partial tile");
    }
    for (id, t) in tiles.partial_tiles() {
        let p = dir.join(id.path());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, gongkai_core::tile::encode_tile(&t)).unwrap();
    }
    let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
    let p = dir.join(format!("tile/entries/000.p/{}", leaves.len()));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, gongkai_core::tile::encode_bundle(&refs).unwrap()).unwrap();
    let cp = Checkpoint::new(
        Origin::new(COUNTY_ORIGIN).unwrap(),
        leaves.len() as u64,
        gongkai_core::merkle::root(&hashes),
    );
    std::fs::write(
        dir.join("checkpoint"),
        SignedCheckpoint::sign(&cp, county_key).unwrap().to_string(),
    )
    .unwrap();
}

fn private_key(path: &Path) -> SigningKey {
    parse_private_key(std::fs::read_to_string(path).unwrap().trim())
        .unwrap()
        .2
}

/// A change made to a copy of an export.
type Tamper<'a> = Box<dyn Fn(&Path) + 'a>;

struct Case {
    name: &'static str,
    tamper: Tamper<'static>,
    /// What a violation must name: an index or a file (relative to the log).
    index: Option<u64>,
    file: Option<String>,
}

#[test]
fn clean_export_audits_clean_and_every_tampering_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, ORIGIN, false);
    let county = County::start(&d.join("county"), &vkey);
    let node = Node::start_with_county(&d.join("node"), &key, &county);
    let today = today();
    node.define_matter("budget", MATTER);
    node.define_matter("dibao", GROUP_MATTER);
    node.publish("budget-a", "budget", &today, "2026年部门预算", &[]);
    node.amend("budget-a", &today, "2026年部门预算（更正）");
    node.publish("budget-b", "budget", &today, "二号文件", &[]);
    node.ok(&[
        "withdraw",
        "--item",
        "budget-b",
        "--reason",
        "重复发布",
        "--basis",
        "条例第二十条",
    ]);
    let secret = node.publish("budget-c", "budget", &today, "含个人信息的名单", &[]);
    node.ok(&[
        "redact",
        "--item",
        "budget-c",
        "--digest",
        &secret,
        "--reason",
        "个人信息",
        "--basis",
        "条例第十五条",
    ]);
    node.publish("dibao-1", "dibao", &today, "某某村低保名单", &[]);
    let size1 = node.wait_checkpoint();
    county.wait_cosigned(size1);
    let export1 = d.join("export1");
    let o = county.public(&["export", "--out", export1.to_str().unwrap()]);
    expect_code(&o, 0);
    node.ok(&[
        "request",
        "receive",
        "--id",
        "req-1",
        "--date",
        &today,
        "--applicant",
        "natural-person",
        "--subject",
        "请求公开2025年决算",
    ]);
    // An answer with its document: served, mirrored, exported, audited.
    let answer_file = d.join("answer.txt");
    std::fs::write(&answer_file, "2025年决算说明（答复附件）").unwrap();
    let answer: serde_json::Value = serde_json::from_str(&node.ok(&[
        "request",
        "answer",
        "--id",
        "req-1",
        "--date",
        &today,
        "--outcome",
        "disclosed",
        "--decision",
        "disclosed",
        "--file",
        answer_file.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let answer_digest = answer["content"]["digest"].as_str().unwrap().to_owned();
    let size = node.wait_checkpoint();
    assert!(size > size1);
    // The node serves the answer's content to a public reader.
    let got = d.join("answer-got.txt");
    expect_code(
        &node.public(&["content", &answer_digest, "--out", got.to_str().unwrap()]),
        0,
    );
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(&answer_file).unwrap()
    );
    county.wait_cosigned(size);
    wait_county_leaf(&county, size, &d.join("scratch"));
    // Resuming over the first export gives the same bytes as a fresh one
    // (plus the older checkpoint it keeps in checkpoints/), and two fresh
    // exports are byte-identical.
    let export = d.join("export");
    let again = d.join("export-again");
    expect_code(
        &county.public(&["export", "--out", export1.to_str().unwrap()]),
        0,
    );
    expect_code(
        &county.public(&["export", "--out", export.to_str().unwrap()]),
        0,
    );
    expect_code(
        &county.public(&["export", "--out", again.to_str().unwrap()]),
        0,
    );
    let snapshot = |p: &Path| {
        let mut files = Vec::new();
        let mut stack = vec![p.to_path_buf()];
        while let Some(x) = stack.pop() {
            for e in std::fs::read_dir(&x).unwrap() {
                let q = e.unwrap().path();
                if q.is_dir() {
                    stack.push(q)
                } else {
                    let rel = q.strip_prefix(p).unwrap().to_string_lossy().into_owned();
                    files.push((
                        rel,
                        gongkai_core::hash::body_hash(&std::fs::read(&q).unwrap()),
                    ));
                }
            }
        }
        files.sort();
        files
    };
    let fresh = snapshot(&export);
    assert!(fresh == snapshot(&again), "two exports of one log differ");
    // (The county log may hold size1 too, so it is left out of both.)
    let kept = format!("logs/{ORIGIN}/checkpoints/{size1}");
    let resumed: Vec<_> = snapshot(&export1)
        .into_iter()
        .filter(|f| f.0 != kept)
        .collect();
    let fresh: Vec<_> = fresh.into_iter().filter(|f| f.0 != kept).collect();
    assert!(
        resumed == fresh,
        "resumed export differs from a fresh one: {:?} vs {:?}",
        resumed.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fresh.iter().map(|f| &f.0).collect::<Vec<_>>()
    );

    // What the county wrote: the county log, no evidence (nobody lied),
    // the answer's content.
    assert!(county_dir(&export).join("checkpoint").is_file());
    assert!(export.join("county/gongkai-export").is_file());
    assert!(!log_dir(&export).join("evidence").exists());
    assert!(
        log_dir(&export)
            .join(format!("content/{answer_digest}"))
            .is_file()
    );

    // The county cosigned; the trust requires it and names the county log
    // key.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let wv = county.witness_vkey.clone();
    let trust_no_county = trust_file(d, "trust-no-county.toml", &[&vkey], &[&wv], None);
    let trust = d.join("trust.toml");
    std::fs::write(
        &trust,
        format!(
            "county_log = \"{}\"\n{}",
            county.log_vkey,
            std::fs::read_to_string(&trust_no_county).unwrap()
        ),
    )
    .unwrap();

    let (code, v, out) = audit(&export, &trust);
    assert_eq!(code, Some(0), "{out}");
    let all: Vec<&serde_json::Value> = v["logs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["findings"].as_array().unwrap())
        .collect();
    assert!(
        all.iter()
            .all(|f| f["severity"] == "info" || f["kind"] == "cannot-verify"),
        "a clean export from the county has only info findings: {out}"
    );
    let county_audit = &v["logs"][1];
    assert_eq!(county_audit["county"], true, "{out}");
    assert_eq!(county_audit["origin"], COUNTY_ORIGIN, "{out}");
    assert!(
        county_audit["entries_verified"].as_u64().unwrap() >= 1,
        "{out}"
    );
    // Without the county key: clean, with a warning that the county log
    // was not verified.
    let (code, v2, out2) = audit(&export, &trust_no_county);
    assert_eq!(code, Some(0), "{out2}");
    assert!(
        v2["logs"][1]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "county-unverified" && f["severity"] == "warning"),
        "{out2}"
    );
    let findings: Vec<String> = v["logs"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    for k in ["amendment", "withdrawal", "redaction"] {
        assert!(
            findings.iter().any(|f| f == k),
            "{k} missing from {findings:?}"
        );
    }
    assert_eq!(v["logs"][0]["content_restricted"], 1, "{out}");
    assert_eq!(v["logs"][0]["content_redacted"], 1, "{out}");
    // budget-a (two versions), budget-b, the answer.
    assert_eq!(v["logs"][0]["content_ok"], 4, "{out}");

    // The pieces the cases need.
    let ld = log_dir(&export);
    let bundle = only_file(&ld, "tile/entries/000.p");
    let tile0 = only_file(&ld, "tile/0/000.p");
    let bundle_bytes = std::fs::read(ld.join(&bundle)).unwrap();
    let spans = bundle_entries(&bundle_bytes);
    assert_eq!(spans.len() as u64, size);
    let amended_digest = {
        let v: serde_json::Value =
            serde_json::from_str(&node.ok(&["item", "budget-a", "--json"])).unwrap();
        v["item"]["content"]["digest"].as_str().unwrap().to_owned()
    };
    let content = format!("content/{amended_digest}");
    let dept = private_key(&key);
    let answer_content = format!("content/{answer_digest}");
    let county_tile = format!(
        "county/logs/{COUNTY_ORIGIN}/{}",
        only_file(&county_dir(&export), "tile/0/000.p")
    );
    let county_bundle = format!(
        "county/logs/{COUNTY_ORIGIN}/{}",
        only_file(&county_dir(&export), "tile/entries/000.p")
    );
    let county_checkpoint = format!("county/logs/{COUNTY_ORIGIN}/checkpoint");
    let witness = Cosigner::new(
        KeyName::new(COUNTY_WITNESS).unwrap(),
        private_key(&county.witness_key),
    );
    let county_key = private_key(&county.log_key);
    let dept_only = |t: &str| -> String {
        t.split_inclusive('\n')
            .filter(|l| !l.starts_with(&format!("— {COUNTY_WITNESS} ")))
            .collect()
    };
    let cp_text = std::fs::read_to_string(ld.join("checkpoint")).unwrap();
    let cp = SignedCheckpoint::parse(&cp_text).unwrap();
    let origin = Origin::new(ORIGIN).unwrap();
    let older = {
        // A checkpoint of the smaller size, genuinely signed: what an
        // older export carried.
        let leaves: Vec<gongkai_core::Hash> = spans[..size1 as usize]
            .iter()
            .map(|&(o, l)| gongkai_core::hash::leaf_hash(&bundle_bytes[o..o + l]))
            .collect();
        SignedCheckpoint::sign(
            &Checkpoint::new(origin.clone(), size1, gongkai_core::merkle::root(&leaves)),
            &dept,
        )
        .unwrap()
        .to_string()
    };
    let flip = |rel: String, at: usize| -> Box<dyn Fn(&Path)> {
        Box::new(move |dir: &Path| {
            let p = dir.join(&rel);
            let mut b = std::fs::read(&p).unwrap();
            let i = at.min(b.len() - 1);
            b[i] ^= 0x01;
            std::fs::write(&p, b).unwrap();
        })
    };
    let delete = |rel: String| -> Box<dyn Fn(&Path)> {
        Box::new(move |dir: &Path| std::fs::remove_file(dir.join(&rel)).unwrap())
    };
    let sig_line = |prefix: &'static str, file: String| -> Box<dyn Fn(&Path)> {
        // Flips one base64 character of the signature line by `prefix`.
        Box::new(move |dir: &Path| {
            let p = root_of(dir).join(&file);
            let t = std::fs::read_to_string(&p).unwrap();
            let lines: Vec<String> = t
                .split_inclusive('\n')
                .map(|l| {
                    if l.starts_with(&format!("— {prefix} ")) {
                        let (head, sig) = l.trim_end().rsplit_once(' ').unwrap();
                        let mut raw = base64::engine::general_purpose::STANDARD
                            .decode(sig)
                            .unwrap();
                        let n = raw.len() - 5;
                        raw[n] ^= 1;
                        format!(
                            "{head} {}\n",
                            base64::engine::general_purpose::STANDARD.encode(raw)
                        )
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            std::fs::write(&p, lines.concat()).unwrap();
        })
    };
    // Evidence (FORMAT.md § 20) the county would write had the department
    // signed a second tree of the same size.
    let fork_evidence = Evidence {
        origin: origin.clone(),
        observed_secs: 1_800_000_000,
        what: Misbehaviour::CheckpointFork {
            a: SignedCheckpoint::parse(&dept_only(&cp_text)).unwrap(),
            b: SignedCheckpoint::sign(
                &Checkpoint::new(origin.clone(), size, gongkai_core::Hash([9; 32])),
                &dept,
            )
            .unwrap(),
        },
    };
    let (e2, e3) = (spans[2], spans[3]);
    let cases = vec![
        Case {
            name: "flip a byte of an entry body",
            tamper: flip(bundle.clone(), e2.0 + 20),
            index: Some(2),
            file: Some(bundle.clone()),
        },
        Case {
            name: "flip a byte of an entry signature",
            tamper: flip(bundle.clone(), e3.0 + e3.1 - 1),
            index: Some(3),
            file: Some(bundle.clone()),
        },
        Case {
            name: "swap two entries",
            tamper: {
                let b = bundle.clone();
                Box::new(move |dir: &Path| {
                    let p = dir.join(&b);
                    let bytes = std::fs::read(&p).unwrap();
                    let s = bundle_entries(&bytes);
                    let mut out = bytes[..s[2].0 - 2].to_vec();
                    out.extend_from_slice(&bytes[s[3].0 - 2..s[3].0 + s[3].1]);
                    out.extend_from_slice(&bytes[s[2].0 - 2..s[2].0 + s[2].1]);
                    out.extend_from_slice(&bytes[s[3].0 + s[3].1..]);
                    std::fs::write(&p, out).unwrap();
                })
            },
            index: Some(2),
            file: Some(bundle.clone()),
        },
        Case {
            name: "truncate the entry bundle",
            tamper: {
                let b = bundle.clone();
                Box::new(move |dir: &Path| {
                    let p = dir.join(&b);
                    let bytes = std::fs::read(&p).unwrap();
                    let last = *bundle_entries(&bytes).last().unwrap();
                    std::fs::write(&p, &bytes[..last.0 - 2]).unwrap();
                })
            },
            index: None,
            file: Some(bundle.clone()),
        },
        Case {
            name: "trailing bytes after the entries",
            tamper: {
                let b = bundle.clone();
                Box::new(move |dir: &Path| {
                    let p = dir.join(&b);
                    let mut bytes = std::fs::read(&p).unwrap();
                    bytes.extend_from_slice(b"\x00\x01x");
                    std::fs::write(&p, bytes).unwrap();
                })
            },
            index: None,
            file: Some(bundle.clone()),
        },
        Case {
            name: "delete the entry bundle",
            tamper: delete(bundle.clone()),
            index: None,
            file: Some(bundle.clone()),
        },
        Case {
            name: "flip a byte of a hash tile",
            tamper: flip(tile0.clone(), 40),
            index: None,
            file: Some(tile0.clone()),
        },
        Case {
            name: "delete a hash tile",
            tamper: delete(tile0.clone()),
            index: None,
            file: Some(tile0.clone()),
        },
        Case {
            name: "a tile the tree does not have",
            tamper: Box::new(|dir: &Path| {
                std::fs::write(dir.join("tile/0/001"), [0u8; 32 * 256]).unwrap()
            }),
            index: None,
            file: Some("tile/0/001".into()),
        },
        Case {
            name: "flip a byte of a content blob",
            tamper: flip(content.clone(), 40),
            index: None,
            file: Some(content.clone()),
        },
        Case {
            name: "delete a content blob without a Redacted event",
            tamper: delete(content.clone()),
            index: None,
            file: Some(content.clone()),
        },
        Case {
            name: "redacted content put back",
            tamper: {
                let s = secret.clone();
                Box::new(move |dir: &Path| {
                    std::fs::write(dir.join(format!("content/{s}")), [0u8; 40]).unwrap()
                })
            },
            index: None,
            file: Some(format!("content/{secret}")),
        },
        Case {
            name: "flip a byte of the checkpoint's root",
            tamper: Box::new(|dir: &Path| {
                let p = dir.join("checkpoint");
                let t = std::fs::read_to_string(&p).unwrap();
                let mut lines: Vec<String> = t.split_inclusive('\n').map(str::to_owned).collect();
                let root = lines[2].trim_end().to_owned();
                let mut raw = base64::engine::general_purpose::STANDARD
                    .decode(&root)
                    .unwrap();
                raw[0] ^= 1;
                lines[2] = format!(
                    "{}\n",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                std::fs::write(&p, lines.concat()).unwrap();
            }),
            index: None,
            file: Some("checkpoint".into()),
        },
        Case {
            name: "flip the department signature",
            tamper: sig_line(ORIGIN, format!("logs/{ORIGIN}/checkpoint")),
            index: None,
            file: Some("checkpoint".into()),
        },
        Case {
            name: "flip the cosignature",
            tamper: sig_line(COUNTY_WITNESS, format!("logs/{ORIGIN}/checkpoint")),
            index: None,
            file: Some("checkpoint".into()),
        },
        Case {
            name: "forge a cosignature with another key",
            tamper: Box::new({
                let t = cp_text.clone();
                move |dir: &Path| {
                    // Same witness name, another key: the only cosignature.
                    let forger = Cosigner::new(
                        KeyName::new(COUNTY_WITNESS).unwrap(),
                        SigningKey::from_seed([78; 32]),
                    );
                    let mut forged = SignedCheckpoint::parse(&strip_cosignatures(&t)).unwrap();
                    forged.cosign(&forger, 1_800_000_000).unwrap();
                    std::fs::write(dir.join("checkpoint"), forged.to_string()).unwrap();
                }
            }),
            index: None,
            file: Some("checkpoint".into()),
        },
        Case {
            name: "drop the cosignature",
            tamper: Box::new({
                let t = cp_text.clone();
                move |dir: &Path| {
                    std::fs::write(dir.join("checkpoint"), strip_cosignatures(&t)).unwrap()
                }
            }),
            index: None,
            file: Some("checkpoint".into()),
        },
        Case {
            name: "replace the checkpoint with an older one",
            tamper: Box::new({
                let o = older.clone();
                move |dir: &Path| std::fs::write(dir.join("checkpoint"), &o).unwrap()
            }),
            index: None,
            file: Some(format!("checkpoints/{size}")),
        },
        Case {
            name: "fork evidence: the department signed another tree of the same size",
            tamper: Box::new({
                let e = fork_evidence.clone();
                move |dir: &Path| {
                    std::fs::create_dir_all(dir.join("evidence")).unwrap();
                    std::fs::write(dir.join(format!("evidence/{}", e.id())), e.encode()).unwrap();
                }
            }),
            index: None,
            file: Some(format!("evidence/{}", fork_evidence.id())),
        },
        Case {
            name: "a checkpoint in checkpoints/ signed by a stranger",
            tamper: Box::new({
                let origin = origin.clone();
                let root = cp.checkpoint().root;
                move |dir: &Path| {
                    let stranger = SigningKey::from_seed([79; 32]);
                    let c = SignedCheckpoint::sign(
                        &Checkpoint::new(origin.clone(), size, root),
                        &stranger,
                    )
                    .unwrap();
                    std::fs::write(dir.join(format!("checkpoints/{size}")), c.to_string()).unwrap();
                }
            }),
            index: None,
            file: Some(format!("checkpoints/{size}")),
        },
        Case {
            name: "delete the checkpoint",
            tamper: Box::new(|dir: &Path| std::fs::remove_file(dir.join("checkpoint")).unwrap()),
            index: None,
            file: Some("checkpoint".into()),
        },
        Case {
            name: "rename a partial tile to another width",
            tamper: {
                let t = tile0.clone();
                Box::new(move |dir: &Path| {
                    std::fs::rename(dir.join(&t), dir.join("tile/0/000.p/1")).unwrap();
                })
            },
            index: None,
            file: Some(tile0.clone()),
        },
        Case {
            name: "flip a byte of a request answer's content",
            tamper: flip(answer_content.clone(), 40),
            index: None,
            file: Some(answer_content.clone()),
        },
        Case {
            name: "delete a request answer's content",
            tamper: delete(answer_content.clone()),
            index: None,
            file: Some(answer_content.clone()),
        },
        Case {
            name: "flip a byte of a county hash tile",
            tamper: {
                let t = county_tile.clone();
                Box::new(move |dir: &Path| flip(t.clone(), 40)(&root_of(dir)))
            },
            index: None,
            file: Some(county_tile.clone()),
        },
        Case {
            name: "flip a byte of the county checkpoint's root",
            tamper: {
                let c = county_checkpoint.clone();
                // Line 3 of the note is the root; its first base64 digit.
                Box::new(move |dir: &Path| {
                    let p = root_of(dir).join(&c);
                    let t = std::fs::read_to_string(&p).unwrap();
                    let at = t.match_indices('\n').nth(1).unwrap().0 + 1;
                    flip(c.clone(), at)(&root_of(dir));
                })
            },
            index: None,
            file: Some(county_checkpoint.clone()),
        },
        Case {
            // The county log needs the trust file's quorum of witness
            // cosignatures too (FORMAT.md § 21.1): signed by the county log
            // key alone is not enough.
            name: "drop the county checkpoint's cosignatures",
            tamper: {
                let c = county_checkpoint.clone();
                Box::new(move |dir: &Path| {
                    let p = root_of(dir).join(&c);
                    let t = std::fs::read_to_string(&p).unwrap();
                    let stripped = strip_cosignatures(&t);
                    assert_ne!(stripped, t, "the county checkpoint carries a cosignature");
                    std::fs::write(&p, stripped).unwrap();
                })
            },
            index: None,
            file: Some(county_checkpoint.clone()),
        },
        Case {
            name: "flip the county log signature",
            tamper: sig_line(COUNTY_ORIGIN, county_checkpoint.clone()),
            index: None,
            file: Some(county_checkpoint.clone()),
        },
        Case {
            name: "a county leaf that is not a § 19 leaf",
            tamper: {
                let b = county_bundle.clone();
                // The first leaf's magic, after its u16 length.
                Box::new(move |dir: &Path| flip(b.clone(), 2)(&root_of(dir)))
            },
            index: Some(0),
            file: Some(county_bundle.clone()),
        },
        Case {
            name: "the county signs a leaf holding a department-signed fork",
            tamper: Box::new({
                let (dept, origin, key) = (dept.clone(), origin.clone(), county_key.clone());
                move |dir: &Path| {
                    let root = root_of(dir);
                    let mut leaves = county_leaves(&root);
                    let forged = SignedCheckpoint::sign(
                        &Checkpoint::new(origin.clone(), size1, gongkai_core::Hash([9; 32])),
                        &dept,
                    )
                    .unwrap();
                    leaves.push(CountyLeaf::new(now, vec![forged]).unwrap().encode());
                    rewrite_county(&root, &leaves, &key);
                }
            }),
            index: None,
            file: Some(county_bundle_after_push(&county_dir(&export))),
        },
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let copy = d.join(format!("case-{n}"));
        copy_dir(&export, &copy);
        (c.tamper)(&log_dir(&copy));
        let (code, v, out) = audit(&copy, &trust);
        let vs = violations(&v);
        let named = vs.iter().any(|f| {
            let idx_ok = c.index.is_none_or(|i| f["index"].as_u64() == Some(i));
            // Files under county/ are named from the export root.
            let file_ok = c.file.as_ref().is_none_or(|file| {
                let want = if file.starts_with("county/") {
                    file.clone()
                } else {
                    format!("logs/{ORIGIN}/{file}")
                };
                f["file"].as_str() == Some(&want)
            });
            idx_ok && file_ok
        });
        let _ = std::fs::remove_dir_all(&copy);
        if code != Some(1) || !named {
            failures.push(format!(
                "case {:?}: exit {code:?}, wanted index {:?} file {:?}\n{out}",
                c.name, c.index, c.file
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );

    // Entries that claim times before a cosignature on a checkpoint that
    // lacked them: a warning naming the entry, not a violation — the same
    // picture as entries written while the county was unreachable (FORMAT.md
    // § 17); their deadlines count from their first cosignature anyway.
    // Each case first removes size1 from the county's leaves (re-signing
    // and re-cosigning the county log) and from checkpoints/, so the late cosignature it adds is
    // the earliest one known for that size: a size the county cosigned
    // early is judged by that early time (FORMAT.md § 17).
    let without_size1 = {
        let (w, key) = (witness.clone(), county_key.clone());
        move |root: &Path, extra: Option<Vec<u8>>| {
            let mut leaves: Vec<Vec<u8>> = county_leaves(root)
                .into_iter()
                .filter(|l| {
                    gongkai_core::county::CountyRecord::decode(l).map_or(true, |r| {
                        !r.checkpoints().iter().any(|c| {
                            c.checkpoint().origin.as_str() == ORIGIN && c.checkpoint().size == size1
                        })
                    })
                })
                .collect();
            leaves.extend(extra);
            rewrite_county(root, &leaves, &key);
            // An export may also keep the genuine checkpoint of that size.
            let _ = std::fs::remove_file(log_dir(root).join(format!("checkpoints/{size1}")));
            let p = county_dir(root).join("checkpoint");
            let mut cp = SignedCheckpoint::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
            cp.cosign(&w, now).unwrap();
            std::fs::write(&p, cp.to_string()).unwrap();
        }
    };
    let late = |o: &str| {
        let mut c = SignedCheckpoint::parse(o).unwrap();
        c.cosign(&witness, now + 86_400).unwrap();
        c
    };
    let back_dated: Vec<(&str, Tamper<'_>)> = vec![
        (
            "back-dated: entries claim times before a cosignature on a checkpoint that lacked them",
            Box::new(|dir: &Path| {
                without_size1(&root_of(dir), None);
                std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
                std::fs::write(
                    dir.join(format!("checkpoints/{size1}")),
                    late(&older).to_string(),
                )
                .unwrap();
            }),
        ),
        (
            "back-dated, judged against a cosigned checkpoint inside evidence",
            Box::new(|dir: &Path| {
                without_size1(&root_of(dir), None);
                let b = SignedCheckpoint::sign(
                    &Checkpoint::new(origin.clone(), size1, gongkai_core::Hash([9; 32])),
                    &dept,
                )
                .unwrap();
                let e = Evidence {
                    origin: origin.clone(),
                    observed_secs: now + 86_400,
                    what: Misbehaviour::CheckpointFork { a: late(&older), b },
                };
                std::fs::create_dir_all(dir.join("evidence")).unwrap();
                std::fs::write(dir.join(format!("evidence/{}", e.id())), e.encode()).unwrap();
            }),
        ),
        (
            "back-dated, judged against a cosigned checkpoint in a county leaf",
            Box::new(|dir: &Path| {
                let leaf = CountyLeaf::new(now + 86_400, vec![late(&older)])
                    .unwrap()
                    .encode();
                without_size1(&root_of(dir), Some(leaf));
            }),
        ),
    ];
    for (name, tamper) in &back_dated {
        let copy = d.join("case-back-dated");
        copy_dir(&export, &copy);
        tamper(&log_dir(&copy));
        let (code, v, out) = audit(&copy, &trust);
        let _ = std::fs::remove_dir_all(&copy);
        // (The evidence case carries its fork, a violation of its own.)
        assert!(
            violations(&v).iter().all(|f| f["kind"] == "misbehaviour"),
            "case {name:?}: exit {code:?}: {out}"
        );
        let warned = v["logs"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| {
                f["kind"] == "back-dated"
                    && f["severity"] == "warning"
                    && f["index"].as_u64() == Some(size1)
            });
        assert!(warned, "case {name:?} (size1 {size1}): {out}");
    }

    // Proven evidence is reported as `misbehaviour`, naming its kind.
    {
        let copy = d.join("case-proven-evidence");
        copy_dir(&export, &copy);
        let ev = log_dir(&copy).join("evidence");
        std::fs::create_dir_all(&ev).unwrap();
        std::fs::write(ev.join(fork_evidence.id()), fork_evidence.encode()).unwrap();
        let (code, v, out) = audit(&copy, &trust);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            violations(&v).iter().any(|f| f["kind"] == "misbehaviour"
                && f["file"] == format!("logs/{ORIGIN}/evidence/{}", fork_evidence.id()).as_str()
                && f["detail"].as_str().unwrap().contains("checkpoint-fork")),
            "{out}"
        );
    }

    // Evidence that proves nothing (two equal checkpoints) and a file that
    // is not evidence: warnings naming them, not violations.
    {
        let copy = d.join("case-weak-evidence");
        copy_dir(&export, &copy);
        let a = SignedCheckpoint::parse(&dept_only(&cp_text)).unwrap();
        let weak = Evidence {
            origin: origin.clone(),
            observed_secs: 1,
            what: Misbehaviour::CheckpointFork { a: a.clone(), b: a },
        };
        let ev = log_dir(&copy).join("evidence");
        std::fs::create_dir_all(&ev).unwrap();
        std::fs::write(ev.join(weak.id()), weak.encode()).unwrap();
        std::fs::write(ev.join("junk"), "gongkai-evidence/v1\nnonsense\n").unwrap();
        let (code, v, out) = audit(&copy, &trust);
        assert_eq!(code, Some(0), "{out}");
        let warned = |kind: &str, file: String| {
            v["logs"][0]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| {
                    f["kind"] == kind && f["severity"] == "warning" && f["file"] == file.as_str()
                })
        };
        assert!(
            warned(
                "evidence-unproven",
                format!("logs/{ORIGIN}/evidence/{}", weak.id())
            ),
            "{out}"
        );
        assert!(
            warned("evidence-malformed", format!("logs/{ORIGIN}/evidence/junk")),
            "{out}"
        );
    }

    // A trust that names another department key: the genesis is untrusted.
    let other = trust_file(
        d,
        "other.toml",
        &[
            &Checkpoint::log_verifier_key(&origin, &SigningKey::from_seed([80; 32]).public_key())
                .to_string(),
        ],
        &[&wv],
        None,
    );
    let (code, v, out) = audit(&export, &other);
    assert_eq!(code, Some(1), "{out}");
    assert!(violations(&v).iter().any(|f| f["index"] == 0), "{out}");
    // Not an export at all: exit 2.
    let (code, _, out) = audit(d, &trust);
    assert_eq!(code, Some(2), "{out}");
}

/// The checkpoint text with only its department signature line.
fn strip_cosignatures(t: &str) -> String {
    t.split_inclusive('\n')
        .filter(|l| !l.starts_with(&format!("— {COUNTY_WITNESS} ")))
        .collect()
}

/// The county entry bundle after one more leaf is appended.
fn county_bundle_after_push(county_dir: &Path) -> String {
    let cp =
        SignedCheckpoint::parse(&std::fs::read_to_string(county_dir.join("checkpoint")).unwrap())
            .unwrap();
    format!(
        "county/logs/{COUNTY_ORIGIN}/tile/entries/000.p/{}",
        cp.checkpoint().size + 1
    )
}

#[test]
fn late_disclosures_requests_and_missing_periods_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, ORIGIN, false);
    let node = Node::start(&d.join("node"), &key);
    node.define_matter("budget", MATTER);
    node.define_matter(
        "dibao-q",
        &MATTER.replace(
            "periodicity = \"none\"",
            "periodicity = \"quarterly\"\nperiods_from = \"2026-01-01\"",
        ),
    );
    // Formed 2026-01-05, due 2026-02-02 (20 working days), published now.
    node.publish("late-item", "budget", "2026-01-05", "迟到的公开", &[]);
    node.publish(
        "old-item",
        "budget",
        "2026-01-05",
        "旧目录导入",
        &["--imported"],
    );
    node.publish(
        "q1",
        "dibao-q",
        "2026-04-01",
        "一季度",
        &["--period", "2026-Q1"],
    );
    node.ok(&[
        "request",
        "receive",
        "--id",
        "req-late",
        "--date",
        "2026-01-05",
        "--applicant",
        "natural-person",
        "--subject",
        "请求公开决算",
    ]);
    node.ok(&[
        "request",
        "answer",
        "--id",
        "req-late",
        "--date",
        "2026-03-02",
        "--outcome",
        "disclosed",
        "--decision",
        "disclosed",
    ]);
    node.ok(&[
        "request",
        "receive",
        "--id",
        "req-open",
        "--date",
        "2026-02-02",
        "--applicant",
        "natural-person",
        "--subject",
        "请求公开预算",
    ]);
    node.wait_checkpoint();
    let export = d.join("export");
    expect_code(
        &node.public(&["export", "--out", export.to_str().unwrap()]),
        0,
    );
    let trust = trust_file(d, "trust.toml", &[&vkey], &[], None);
    let report = d.join("report.md");
    let o = gongkai(&[
        "audit",
        export.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--json",
        "--report",
        report.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f: Vec<(String, Option<u64>, String, String)> = v["logs"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["index"].as_u64(),
                f["subject"].as_str().unwrap().to_owned(),
                f["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let find =
        |kind: &str, subject: &str| f.iter().find(|x| x.0 == kind && x.2 == subject).cloned();
    // Indexes: 0 genesis, 1-2 matters, 3 late-item, 4 old-item, 5 q1,
    // 6-7 req-late, 8 req-open.
    let late = find("late-disclosure", "late-item").expect("late disclosure reported");
    assert_eq!(late.1, Some(3));
    assert!(late.3.contains("due 2026-02-02"), "{}", late.3);
    assert!(
        find("late-disclosure", "old-item").is_none(),
        "imported items are never late"
    );
    let answer = find("late-answer", "req-late").expect("late answer reported");
    assert_eq!(answer.1, Some(7));
    assert!(answer.3.contains("deadline 2026-02-02"), "{}", answer.3);
    let open = find("overdue-request", "req-open").expect("overdue request reported");
    assert_eq!(open.1, Some(8));
    // 20 working days from 2026-02-02 span the Spring Festival holiday.
    assert!(open.3.contains("deadline 2026-03-"), "{}", open.3);
    let missing = find("missing-disclosure", "dibao-q").expect("missing period reported");
    assert!(
        f.iter()
            .any(|x| x.0 == "missing-disclosure" && x.3.contains("2026-Q2")),
        "{missing:?}"
    );
    // The Markdown report lists them, with the file of each index.
    let md = std::fs::read_to_string(&report).unwrap();
    for k in [
        "late-disclosure",
        "late-answer",
        "overdue-request",
        "missing-disclosure",
    ] {
        assert!(md.contains(k), "{k} missing from the report:\n{md}");
    }
    assert!(
        md.contains(&format!("logs/{ORIGIN}/tile/entries/000.p/")),
        "{md}"
    );
    // The HTML report too, escaped.
    let html = d.join("report.html");
    let o = gongkai(&[
        "audit",
        export.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains("<td>late-answer</td>"), "{page}");
    // A report to print and file (issue 20, item 8): the verdict first,
    // in both languages, departments by name, violations highlighted,
    // paths in an appendix.
    let verdict = page.find("结论：发现").expect("a verdict");
    assert!(
        verdict < page.find("<h2>").unwrap(),
        "the verdict comes first"
    );
    assert!(page.contains("violation(s) found") && page.contains("lang=\"zh-CN\""));
    assert!(page.contains("name=\"viewport\""));
    assert!(page.contains("某某县财政局"), "the department by name");
    assert!(page.contains("<tr class=\"violation\">"));
    let appendix = page.find("附录：文件位置").expect("an appendix of files");
    assert!(
        page[appendix..].contains(&format!("logs/{ORIGIN}/tile/entries/000.p/")),
        "paths in the appendix"
    );
    assert!(
        !page[..appendix].contains("tile/entries/000.p/"),
        "no paths before the appendix"
    );
    // The text report names the same findings.
    assert!(
        text(&o.stdout).contains("VIOLATION late-disclosure"),
        "{}",
        text(&o.stdout)
    );
}

/// The export and proof-bundle vectors of docs/vectors/ (FORMAT.md § 16,
/// § 18) pass the CLI's audit and check-proof with keys from the vector
/// files: the reference implementation reads its own golden files.
#[test]
fn vector_export_and_proof_bundle_pass_the_cli() {
    let v = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/vectors");
    let read = |f: &str| {
        std::fs::read_to_string(v.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    let tmp = tempfile::tempdir().unwrap();
    let trust = trust_file(
        tmp.path(),
        "t.toml",
        &[&read("log-genesis.vkey")],
        &[&read("witness.vkey")],
        None,
    );
    let o = gongkai(&[
        "audit",
        v.join("export").to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--as-of",
        "2026-03-02",
        "--json",
    ]);
    expect_code(&o, 0);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["logs"][0]["content_ok"], 3);
    assert_eq!(r["logs"][0]["content_redacted"], 1);
    let o = gongkai(&[
        "check-proof",
        v.join("proof-bundle.json").to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    // Without the witness's cosignature counted, the rotated key alone
    // also verifies it (--vkey needs no witness).
    let o = gongkai(&[
        "check-proof",
        v.join("proof-bundle.json").to_str().unwrap(),
        "--vkey",
        &read("log-rotated.vkey"),
    ]);
    expect_code(&o, 0);
}

/// A department that rewrites its history after the county cosigned it:
/// the county records evidence (FORMAT.md § 20), `export` from the county
/// writes it to `evidence/<id>` byte for byte under the county's id, and
/// `audit` reports the violation `misbehaviour` naming the file.
#[test]
fn county_evidence_is_exported_and_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, ORIGIN, false);
    let county = County::start(&d.join("county"), &vkey);
    let node_dir = d.join("node");
    let today = today();
    {
        let node = Node::start_with_county(&node_dir, &key, &county);
        node.define_matter("budget", MATTER);
        node.publish("budget-a", "budget", &today, "原始文件", &[]);
        let size = node.wait_checkpoint();
        county.wait_cosigned(size);
    }
    // Another, longer history signed with the same key (its record of the
    // sizes it signed goes too, or the node would refuse to start), written
    // while cut off from the county (a node that sees the county ahead of
    // it refuses writes), then pushed.
    std::fs::remove_dir_all(&node_dir).unwrap();
    std::fs::remove_file(d.join("finance.key.state")).unwrap();
    let mut liar = Node::start(&node_dir, &key);
    liar.define_matter("budget", MATTER);
    liar.define_matter("budget-2", MATTER);
    liar.publish("budget-x", "budget", &today, "改写的文件", &[]);
    liar.publish("budget-y", "budget", &today, "另一份", &[]);
    liar.wait_checkpoint();
    liar.attach_county(&county);
    let start = std::time::Instant::now();
    let id = loop {
        let o = gongkai(&[
            "county",
            "evidence",
            "list",
            "--json",
            "--server",
            &county.url,
        ]);
        expect_code(&o, 0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if let Some(id) = v["evidence"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "the county recorded no evidence"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let shown = d.join("shown.txt");
    expect_code(
        &gongkai(&[
            "county",
            "evidence",
            "show",
            &id,
            "--out",
            shown.to_str().unwrap(),
            "--server",
            &county.url,
        ]),
        0,
    );
    let export = d.join("export");
    expect_code(
        &county.public(&["export", "--out", export.to_str().unwrap()]),
        0,
    );
    let file = log_dir(&export).join(format!("evidence/{id}"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&shown).unwrap(),
        "the exported evidence is the county's file, named by its id"
    );
    let trust = trust_file(d, "trust.toml", &[&vkey], &[&county.witness_vkey], None);
    let (code, v, out) = audit(&export, &trust);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        violations(&v).iter().any(|f| f["kind"] == "misbehaviour"
            && f["file"] == format!("logs/{ORIGIN}/evidence/{id}").as_str()),
        "{out}"
    );
}
