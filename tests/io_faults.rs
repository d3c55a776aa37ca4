//! Real I/O faults under a running county (issue 17, item 10): the real
//! `gongkai aggregator` runs with a small `LD_PRELOAD` library
//! (`tests/faults/eio_fsync.c`) that makes `fsync`, `fdatasync` and
//! `sync_file_range` fail with EIO on the files whose path contains a
//! trigger text, while the trigger file exists — a disk that fails the
//! flush, under the real journal, sled and content store.
//!
//! For each store the county must never report as held or cosigned
//! anything whose flush failed, must stop (exit 75, which its supervisor
//! restarts on) where the effect on disk is unknown, and once the disk is
//! healthy again must catch up with nothing lost: every entry the node
//! wrote cosigned, every document held, and the log verifying.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{County, MATTER, Node, ORIGIN, expect_code, gongkai, keygen, today, trust_file};

const DEADLINE: Duration = Duration::from_secs(120);

/// Builds the fault library with the machine's C compiler (the one rustc
/// links with).
fn build_shim(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/eio_fsync.c");
    let out = dir.join("libeio_fsync.so");
    let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("a C compiler (cc) runs");
    expect_code(&o, 0);
    out
}

struct Rig {
    _dir: tempfile::TempDir,
    trigger: PathBuf,
    county: County,
    node: Node,
    trust: PathBuf,
    mirror: PathBuf,
    /// Each published document: its digest and text.
    published: Vec<(String, String)>,
}

impl Rig {
    fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let shim = build_shim(dir.path());
        let trigger = dir.path().join("eio-trigger");
        let key = dir.path().join("dept.key");
        let vkey = keygen(&key, ORIGIN, false);
        let county = County::start_env(
            &dir.path().join("county"),
            &vkey,
            "",
            &[
                ("LD_PRELOAD", shim.to_str().unwrap()),
                ("GONGKAI_TEST_EIO_TRIGGER", trigger.to_str().unwrap()),
            ],
        );
        let node = Node::start_with_county(&dir.path().join("node"), &key, &county);
        node.define_matter("budget", MATTER);
        let trust = trust_file(
            dir.path(),
            "trust.toml",
            &[&vkey],
            &[&county.witness_vkey],
            Some(1),
        );
        let mirror = county
            .dir
            .join("data/mirrors")
            .join(ORIGIN.replace('/', "%2F"));
        let mut rig = Rig {
            _dir: dir,
            trigger,
            county,
            node,
            trust,
            mirror,
            published: Vec::new(),
        };
        rig.publish_and_settle();
        rig
    }

    /// Publishes one more item with its own document; returns the node's
    /// size after it.
    fn publish(&mut self) -> u64 {
        let n = self.published.len() + 1;
        let body = format!("第 {n} 号公告");
        let digest = self
            .node
            .publish(&format!("notice-{n}"), "budget", &today(), &body, &[]);
        self.published.push((digest, body));
        self.node.wait_checkpoint()
    }

    fn publish_and_settle(&mut self) {
        let size = self.publish();
        self.county.wait_cosigned(size);
    }

    /// From now on, flushes of files whose path contains `under` fail.
    fn arm(&self, under: &Path) {
        std::fs::write(&self.trigger, under.to_str().unwrap()).unwrap();
    }

    fn disarm(&self) {
        std::fs::remove_file(&self.trigger).unwrap();
    }

    /// The county's status of the department, or `None` once it stopped.
    fn status(&self) -> Option<serde_json::Value> {
        let o = gongkai(&["county", "status", "--json", "--server", &self.county.url]);
        if o.status.code() != Some(0) {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v["departments"]
            .as_array()?
            .iter()
            .find(|d| d["origin"] == ORIGIN)
            .cloned()
    }

    /// Waits for the county to stop by itself; while it runs, it must never
    /// report a cosigned size beyond `durable`. Returns its exit code.
    fn expect_stop(&mut self, durable: u64) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.county.child.try_wait().unwrap() {
                // It stopped because of the injected fault, and said so.
                let said = self.county.stderr.lock().unwrap().clone();
                assert!(said.contains("Input/output error"), "{said}");
                return status.code();
            }
            if let Some(d) = self.status() {
                let cosigned = d["cosigned_size"].as_u64().unwrap_or(0);
                assert!(
                    cosigned <= durable,
                    "the county reports size {cosigned} cosigned while its flush fails (durable: {durable}): {d}"
                );
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the county did not stop after a failed flush:\n{}",
                self.county.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Restarts the county on the healthy disk, points the node at it, and
    /// waits until everything the node wrote is cosigned with its content.
    fn recover(&mut self) {
        self.county.restart();
        self.node.retarget(&self.county);
        let size = self.node.size();
        self.county.wait_cosigned(size);
        let o = self
            .county
            .public(&["verify", "--trust", self.trust.to_str().unwrap()]);
        expect_code(&o, 0);
        // Every document is held by the county, byte for byte.
        let file = self.county.dir.join("fetched");
        for (digest, body) in &self.published {
            let o = self.county.public(&[
                "content",
                digest,
                "--out",
                file.to_str().unwrap(),
                "--force",
            ]);
            expect_code(&o, 0);
            assert_eq!(&std::fs::read_to_string(&file).unwrap(), body);
        }
    }
}

/// Flushes under `under(rig)` fail while one more item is published: the
/// county must stop (exit 75) without reporting it cosigned, and recover
/// everything on a healthy disk.
fn stops_and_recovers(under: impl Fn(&Rig) -> PathBuf) {
    let mut rig = Rig::start();
    let durable = rig.status().unwrap()["cosigned_size"].as_u64().unwrap();
    rig.arm(&under(&rig));
    rig.publish();
    let code = rig.expect_stop(durable);
    assert_eq!(code, Some(75), "{}", rig.county.stderr.lock().unwrap());
    rig.disarm();
    rig.recover();
}

#[test]
fn a_failed_flush_of_the_mirror_journal_stops_the_county_and_loses_nothing() {
    stops_and_recovers(|rig| rig.mirror.join("journal"));
}

#[test]
fn a_failed_flush_of_the_county_state_stops_the_county_and_loses_nothing() {
    stops_and_recovers(|rig| rig.county.dir.join("data/county/"));
}

#[test]
fn a_document_whose_flush_failed_is_never_reported_held() {
    let mut rig = Rig::start();
    // Only the document directories (and the blobs in them) fail: the
    // temp file is flushed and renamed into place, then the directory's
    // fsync fails — the blob is visible but not durable. Retries must not
    // take the visible file for a durable one.
    rig.arm(&rig.mirror.join("content/objects"));
    let size = rig.publish();
    let start = Instant::now();
    let mut seen_failure = None;
    loop {
        let d = rig.status().expect("the county keeps running");
        let missing = d["missing_content"].as_u64().unwrap_or(0);
        assert!(
            missing >= 1,
            "the county reports every document held while their flush fails: {d}\n{}",
            rig.county.stderr.lock().unwrap()
        );
        // The node has pushed (and been refused) repeatedly by now.
        let failed = rig.county.stderr.lock().unwrap().contains("fsync");
        if failed && seen_failure.is_none() {
            seen_failure = Some(Instant::now());
        }
        if seen_failure.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no failed flush seen: {d}\n{}",
            rig.county.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rig.status().unwrap()["cosigned_size"].as_u64().unwrap() <= size);
    // The disk heals: the next retry makes the document durable, without a
    // restart.
    rig.disarm();
    rig.county.wait_cosigned(size);
    rig.publish_and_settle();
    rig.recover();
}
