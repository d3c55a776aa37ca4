//! Independent witnesses (FORMAT.md § 21), with the real `gongkai witness`
//! binaries on port 0: a county showing two histories is caught, a witness
//! restored from an old backup cosigns no fork, and the county collects
//! k of n cosignatures that every reader then requires.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use gongkai_core::Hash;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::evidence::{Evidence, Misbehaviour};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::{self, MemoryHashes};
use gongkai_core::note::{VerifierKey, Verifiers};
use gongkai_core::types::Origin;
use gongkai_core::witness::AddCheckpoint;

struct Witness {
    child: Child,
    url: String,
    config: PathBuf,
    vkey: String,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Witness {
    /// Writes the config of a witness in `dir` (key made already).
    fn configure(dir: &Path, logs: &Path, sources: &[&str]) -> PathBuf {
        let mut text = format!(
            "key = {:?}\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\nlogs = {logs:?}\n",
            dir.join("witness.key"),
            dir.join("data")
        );
        for s in sources {
            text.push_str(&format!("[[source]]\nurl = \"{s}\"\nkind = \"witness\"\n"));
        }
        let config = dir.join("witness.toml");
        std::fs::write(&config, text).unwrap();
        config
    }

    fn start(config: &Path, vkey: &str) -> Witness {
        let (child, url) = serve(
            &["witness", "--config", config.to_str().unwrap()],
            "witness",
        );
        Witness {
            child,
            url,
            config: config.to_path_buf(),
            vkey: vkey.to_owned(),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the witness and starts it again on the same address, so the
    /// county configured with it reaches it again.
    fn restart_in_place(&mut self) {
        self.kill();
        let addr = self.url.trim_start_matches("http://").to_owned();
        let text = std::fs::read_to_string(&self.config)
            .unwrap()
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\""));
        std::fs::write(&self.config, text).unwrap();
        self.restart();
        assert_eq!(self.url, format!("http://{addr}"));
    }

    fn restart(&mut self) {
        self.kill();
        let w = Witness::start(&self.config, &self.vkey);
        self.url.clone_from(&w.url);
        let mut w = w;
        std::mem::swap(&mut self.child, &mut w.child);
        // `w` now holds the dead child: dropping it is harmless.
    }

    fn add(&self, body: &str) -> (u16, String) {
        post(&self.url, "/add-checkpoint", body)
    }
}

/// A raw HTTP/1.1 POST (the witness protocol is plain HTTP).
fn post(base: &str, path: &str, body: &str) -> (u16, String) {
    let host = base.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_owned())
}

fn get(base: &str, path: &str) -> (u16, String) {
    let (status, raw) = common::demo::http_get(&format!("{base}{path}"));
    (
        status,
        raw.split_once("\r\n\r\n")
            .map(|x| x.1.to_owned())
            .unwrap_or_default(),
    )
}

fn leaves(n: u64, salt: u8) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&[salt, i as u8])).collect()
}

/// A log signed by `key` under `origin`: its checkpoint of the first `n`
/// of `all` and the request from `old`.
fn request(key: &SigningKey, origin: &str, all: &[Hash], old: u64, n: u64) -> AddCheckpoint {
    let n_usize = usize::try_from(n).unwrap();
    let cp = Checkpoint::new(
        Origin::new(origin).unwrap(),
        n,
        merkle::root(&all[..n_usize]),
    );
    let proof = if old == 0 || old == n {
        vec![]
    } else {
        merkle::consistency_proof(&MemoryHashes::from_leaf_hashes(&all[..n_usize]), old, n).unwrap()
    };
    AddCheckpoint {
        old_size: old,
        proof,
        checkpoint: SignedCheckpoint::sign(&cp, key).unwrap(),
    }
}

fn cosigner_vkey(dir: &Path, name: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    keygen(&dir.join("witness.key"), name, true)
}

/// A county log key's vkey and a trust file naming it (and `peers`).
fn county_trust(dir: &Path, key: &SigningKey, peers: &[&str]) -> PathBuf {
    let vkey =
        Checkpoint::log_verifier_key(&Origin::new(COUNTY_ORIGIN).unwrap(), &key.public_key());
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    let p = dir.join("logs.toml");
    std::fs::write(
        &p,
        format!(
            "witnesses = [{}]\nquorum = 0\ncounty_log = \"{vkey}\"\n",
            peers.join(", ")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("county.vkey"), format!("{vkey}\n")).unwrap();
    p
}

#[test]
fn a_county_showing_two_histories_is_caught_and_the_evidence_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let county = SigningKey::from_seed([7; 32]);
    let trust = county_trust(dir.path(), &county, &[]);
    let ws: Vec<Witness> = (0..3)
        .map(|i| {
            let d = dir.path().join(format!("w{i}"));
            let vkey = cosigner_vkey(&d, &format!("w{i}.example"));
            Witness::start(&Witness::configure(&d, &trust, &[]), &vkey)
        })
        .collect();
    let a = leaves(5, 0);
    let mut b = a[..3].to_vec();
    b.extend(leaves(2, 9));
    let body = |all: &[Hash], old, n| request(&county, COUNTY_ORIGIN, all, old, n).encode();
    for w in &ws {
        assert_eq!(w.add(&body(&a, 0, 3)).0, 200);
    }
    // History A, size 5, to the first two witnesses: a quorum of 2 of 3.
    let mut a5 = request(&county, COUNTY_ORIGIN, &a, 3, 5).checkpoint;
    for w in &ws[..2] {
        let (status, lines) = w.add(&body(&a, 3, 5));
        assert_eq!(status, 200, "{lines}");
        for l in lines.lines() {
            a5.add_signature(l.parse().unwrap()).unwrap();
        }
    }
    // History B, the same size, consistent with size 3: the second witness
    // refuses and answers with the checkpoint of A it cosigned.
    let (status, theirs) = ws[1].add(&body(&b, 3, 5));
    assert_eq!(status, 409, "{theirs}");
    let theirs = SignedCheckpoint::parse(&theirs).unwrap();
    assert_eq!(theirs.checkpoint(), a5.checkpoint());
    // Asked again with the size it names, still refused (another root).
    assert_eq!(ws[1].add(&body(&b, 5, 5)).0, 409);
    // The third witness, which never saw A, cosigns B: B has 1 of 3.
    let mut b5 = request(&county, COUNTY_ORIGIN, &b, 3, 5).checkpoint;
    let (status, lines) = ws[2].add(&body(&b, 3, 5));
    assert_eq!(status, 200);
    b5.add_signature(lines.trim().parse().unwrap()).unwrap();
    let witnesses =
        Verifiers::new(ws.iter().map(|w| VerifierKey::parse(&w.vkey).unwrap())).unwrap();
    let county_vkey =
        Checkpoint::log_verifier_key(&Origin::new(COUNTY_ORIGIN).unwrap(), &county.public_key());
    assert!(
        a5.verify(&county_vkey, &witnesses, 2).is_ok(),
        "A reaches the quorum"
    );
    assert!(b5.verify(&county_vkey, &witnesses, 2).is_err(), "B cannot");
    // The refusal is evidence: both checkpoints signed by the county key,
    // one size, two roots. Anyone verifies it offline with the county key.
    let evidence = Evidence {
        origin: Origin::new(COUNTY_ORIGIN).unwrap(),
        observed_secs: 1_800_000_000,
        what: Misbehaviour::CheckpointFork { a: theirs, b: b5 },
    };
    let file = dir.path().join("fork.txt");
    std::fs::write(&file, evidence.encode()).unwrap();
    let o = gongkai(&[
        "county",
        "evidence",
        "verify",
        file.to_str().unwrap(),
        "--vkey",
        dir.path().join("county.vkey").to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    // A log the witnesses do not witness, a bad signature: refused.
    let stranger = SigningKey::from_seed([8; 32]);
    assert_eq!(
        ws[0]
            .add(&request(&stranger, "other.example/1", &a, 0, 3).encode())
            .0,
        404
    );
    assert_eq!(
        ws[0]
            .add(&request(&stranger, COUNTY_ORIGIN, &a, 5, 5).encode())
            .0,
        403
    );
    assert_eq!(ws[0].add("old 1\nnot base64\n\nx").0, 400);
}

#[test]
fn a_witness_restored_from_an_old_backup_does_not_cosign_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let county = SigningKey::from_seed([7; 32]);
    let (d1, d2) = (dir.path().join("w1"), dir.path().join("w2"));
    let (v1, v2) = (
        cosigner_vkey(&d1, "w1.example"),
        cosigner_vkey(&d2, "w2.example"),
    );
    // Each names the other as a peer (trust file) and a source.
    let trust = county_trust(dir.path(), &county, &[&v1, &v2]);
    let mut w2 = Witness::start(&Witness::configure(&d2, &trust, &[]), &v2);
    let c1 = Witness::configure(&d1, &trust, &[&w2.url]);
    let mut w1 = Witness::start(&c1, &v1);
    wait_confirmed(&w1, 0);
    let a = leaves(5, 0);
    let mut b = a[..3].to_vec();
    b.extend(leaves(2, 9));
    let body = |all: &[Hash], old, n| request(&county, COUNTY_ORIGIN, all, old, n).encode();
    for w in [&w1, &w2] {
        assert_eq!(w.add(&body(&a, 0, 3)).0, 200);
    }
    // The backup of w1, at size 3.
    let backup = dir.path().join("backup");
    copy_dir(&d1.join("data"), &backup);
    for w in [&w1, &w2] {
        assert_eq!(w.add(&body(&a, 3, 5)).0, 200);
    }
    // w1's disk is lost and restored from the backup (kill -9, then the
    // old state back in place).
    w1.kill();
    std::fs::remove_dir_all(d1.join("data")).unwrap();
    copy_dir(&backup, &d1.join("data"));
    w1.restart();
    // It re-learns size 5 from its peer before cosigning anything.
    wait_confirmed(&w1, 5);
    // The fork B (consistent with the restored size 3) is refused.
    let (status, theirs) = w1.add(&body(&b, 3, 5));
    assert_eq!(status, 409, "{theirs}");
    assert_eq!(
        SignedCheckpoint::parse(&theirs).unwrap().checkpoint().root,
        merkle::root(&a)
    );
    // With no source answering, a restarted witness refuses to cosign at
    // all (503) rather than trust its own disk.
    w2.kill();
    w1.restart();
    let (status, why) = w1.add(&body(&a, 5, 5));
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("not confirmed"), "{why}");
    // Restored from the backup again, with its peer still down and a county
    // portal that withholds the witness's newest cosignature (it answers
    // that it holds nothing): the portal alone does not confirm it, so the
    // fork is not cosigned.
    let portal = withholding_portal();
    w1.kill();
    std::fs::remove_dir_all(d1.join("data")).unwrap();
    copy_dir(&backup, &d1.join("data"));
    let mut config = std::fs::read_to_string(&c1).unwrap();
    config.push_str(&format!(
        "[[source]]\nurl = \"{}\"\nkind = \"portal\"\n",
        portal.url
    ));
    std::fs::write(&c1, config).unwrap();
    w1.restart();
    // A resync round asked the portal; still nothing is cosigned.
    portal.wait_asked(1);
    let (status, why) = w1.add(&body(&b, 3, 5));
    assert_eq!(status, 503, "a fork cosigned on the portal's word: {why}");
}

/// A county portal that answers 404 to everything, counting requests.
struct FakePortal {
    url: String,
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakePortal {
    fn wait_asked(&self, n: usize) {
        let start = Instant::now();
        while self.asked.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the portal was not asked"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The round that asked has finished with its other sources (the
        // peer is down: refused at once).
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn withholding_portal() -> FakePortal {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    FakePortal { url, asked }
}

/// Waits until `w` confirmed its (one) log since its start, at `size`.
fn wait_confirmed(w: &Witness, size: u64) {
    let start = Instant::now();
    loop {
        let (status, body) = get(&w.url, "/");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["logs"][0]["confirmed"] == true {
            assert_eq!(v["logs"][0]["size"], size, "{v}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not confirmed: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `verify --trust` against the county until it exits with `code`
/// (the county publishes a checkpoint once its witnesses answered).
fn wait_verify(county: &County, trust: &Path, code: i32) -> std::process::Output {
    let start = Instant::now();
    loop {
        let o = county.public(&["verify", "--trust", trust.to_str().unwrap()]);
        if o.status.code() == Some(code) {
            return o;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "verify never exited {code}: {}",
            text(&o.stdout)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `pred` holds for the county's status (JSON).
fn wait_status(
    county: &County,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let o = gongkai(&["county", "status", "--json", "--server", &county.url]);
        expect_code(&o, 0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if pred(&v) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{what}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn witness_size(v: &serde_json::Value, w: usize, origin: &str) -> u64 {
    v["witnesses"][w]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["origin"] == origin)
        .and_then(|l| l["cosigned_size"].as_u64())
        .unwrap_or(0)
}

#[test]
fn the_county_collects_k_of_n_cosignatures_and_readers_require_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dept.key");
    let dept_vkey = keygen(&key, ORIGIN, false);
    let (d1, d2) = (dir.path().join("w1"), dir.path().join("w2"));
    let (v1, v2) = (
        cosigner_vkey(&d1, "jiwei.example"),
        cosigner_vkey(&d2, "paper.example"),
    );
    let logs = trust_file(dir.path(), "logs.toml", &[&dept_vkey], &[], Some(0));
    let w1 = Witness::start(&Witness::configure(&d1, &logs, &[]), &v1);
    let mut w2 = Witness::start(&Witness::configure(&d2, &logs, &[]), &v2);
    let county = County::start_with(
        &dir.path().join("county"),
        &dept_vkey,
        &format!(
            "[[witness]]\nname = \"纪委监委\"\nurl = \"{}\"\nvkey = \"{v1}\"\n\
             [[witness]]\nname = \"报社\"\nurl = \"{}\"\nvkey = \"{v2}\"\n",
            w1.url, w2.url
        ),
    );
    let node = Node::start_with_county(&dir.path().join("node"), &key, &county);
    node.define_matter("budget", MATTER);
    node.publish("budget-2026", "budget", &today(), "2026 budget", &[]);
    let size = node.wait_checkpoint();
    county.wait_cosigned(size);
    let first = county.public(&["checkpoint"]);
    expect_code(&first, 0);
    let first = SignedCheckpoint::parse(&text(&first.stdout)).unwrap();
    wait_status(&county, "both witnesses cosign", |v| {
        witness_size(v, 0, ORIGIN) >= size && witness_size(v, 1, ORIGIN) >= size
    });
    let trust = trust_file(
        dir.path(),
        "trust.toml",
        &[&dept_vkey],
        &[&v1, &v2],
        Some(2),
    );
    // The checkpoint is served once both answered; verify requires both.
    wait_verify(&county, &trust, 0);
    // One witness goes away; the county keeps publishing with what it has
    // and says which witness lags.
    w2.kill();
    node.publish("budget-2027", "budget", &today(), "2027 budget", &[]);
    let size2 = node.wait_checkpoint();
    county.wait_cosigned(size2);
    let v = wait_status(&county, "the first witness cosigns, the second lags", |v| {
        witness_size(v, 0, ORIGIN) >= size2 && v["witnesses"][1]["error"] != ""
    });
    assert_eq!(v["witnesses"][1]["name"], "报社");
    let lag = v["witnesses"][1]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["origin"] == ORIGIN)
        .unwrap()["lag"]
        .as_u64()
        .unwrap();
    assert!(lag > 0, "{v}");
    // A reader requiring both now refuses, and says why.
    let o = wait_verify(&county, &trust, 1);
    let out = text(&o.stdout);
    assert!(
        out.contains("2 of 2 witness cosignatures required, 1 present (jiwei.example)"),
        "{out}"
    );
    // The witness comes back (kill -9, then a start on its data): the
    // county resumes from what it holds, and readers requiring both
    // witnesses verify again.
    w2.restart_in_place();
    wait_status(&county, "the restarted witness catches up", |v| {
        witness_size(v, 1, ORIGIN) >= size2 && v["witnesses"][1]["error"] == ""
    });
    wait_verify(&county, &trust, 0);
    // The department shows a fork of the verified size to a third witness
    // only; a monitor comparing what the witnesses hold catches it.
    let d3 = dir.path().join("w3");
    let v3 = cosigner_vkey(&d3, "university.example");
    let w3 = Witness::start(&Witness::configure(&d3, &logs, &[]), &v3);
    let state = dir.path().join("monitor.json");
    let one_witness = trust_file(dir.path(), "one.toml", &[&dept_vkey], &[&v1], Some(1));
    let monitor_with = |w: &Witness, extra: &[&str]| {
        let mut args = vec![
            "monitor",
            "--once",
            "--trust",
            one_witness.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--witness",
            &w.url,
        ];
        args.extend_from_slice(extra);
        county.public(&args)
    };
    let monitor = |w: &Witness| monitor_with(w, &[]);
    let o = monitor(&w1);
    expect_code(&o, 0);
    let verified: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let size = SignedCheckpoint::parse(verified["logs"][ORIGIN]["checkpoint"].as_str().unwrap())
        .unwrap()
        .checkpoint()
        .size;
    let (_, _, dept) =
        gongkai_core::note::parse_private_key(std::fs::read_to_string(&key).unwrap().trim())
            .unwrap();
    let fork = leaves(size, 3);
    assert_eq!(
        w3.add(&request(&dept, ORIGIN, &fork, 0, size).encode()).0,
        200
    );
    let o = monitor(&w3);
    expect_code(&o, 1);
    let err = text(&o.stderr);
    assert!(
        err.contains("fork: witness") && err.contains("signed by the department"),
        "{err}"
    );
    // A witness that cosigned a larger department checkpoint than the
    // server serves: the server withholds (or lags); a warning, not a fork.
    let d4 = dir.path().join("w4");
    let v4 = cosigner_vkey(&d4, "newspaper.example");
    let w4 = Witness::start(&Witness::configure(&d4, &logs, &[]), &v4);
    let ahead = leaves(size + 5, 4);
    assert_eq!(
        w4.add(&request(&dept, ORIGIN, &ahead, 0, size + 5).encode())
            .0,
        200
    );
    let o = monitor(&w4);
    expect_code(&o, 0);
    let err = text(&o.stderr);
    assert!(
        err.contains("the server withholds what the witness saw"),
        "{err}"
    );
    // A fork at a smaller size than the one verified: not a prefix of the
    // verified log (the server's consistency proof says so).
    let d5 = dir.path().join("w5");
    let v5 = cosigner_vkey(&d5, "court.example");
    let w5 = Witness::start(&Witness::configure(&d5, &logs, &[]), &v5);
    let smaller = leaves(size - 1, 5);
    assert_eq!(
        w5.add(&request(&dept, ORIGIN, &smaller, 0, size - 1).encode())
            .0,
        200
    );
    let o = monitor(&w5);
    expect_code(&o, 1);
    let err = text(&o.stderr);
    assert!(err.contains("is not a prefix of the log"), "{err}");
    // A witness the county stopped showing the department's checkpoints
    // (here: one that only ever saw the first): consistent, so no fork,
    // but reported once it has lagged longer than the grace period.
    let d6 = dir.path().join("w6");
    let v6 = cosigner_vkey(&d6, "archive.example");
    let w6 = Witness::start(&Witness::configure(&d6, &logs, &[]), &v6);
    let old = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: first.clone(),
    };
    assert_eq!(w6.add(&old.encode()).0, 200);
    assert!(first.checkpoint().size < size);
    let o = monitor(&w6);
    expect_code(&o, 0);
    let err = text(&o.stderr);
    assert!(!err.contains("witness-lag"), "within the grace: {err}");
    let o = monitor_with(&w6, &["--witness-grace", "0s"]);
    expect_code(&o, 0);
    let err = text(&o.stderr);
    assert!(
        err.contains("witness-lag") && err.contains("withholding"),
        "{err}"
    );
    drop(node);
}

#[test]
fn a_witness_holding_another_history_of_a_department_is_evidence_at_the_county() {
    // The witness holds another size-1 checkpoint; the county first shows
    // it size 1 (a fork) or size 2 (not a prefix of the county's log).
    assert_eq!(conflicting_witness(false), "checkpoint-fork");
    assert_eq!(conflicting_witness(true), "inconsistent");
}

/// A department showed a witness another history before the county ever
/// talked to it; the county then asks that witness to cosign its own
/// first checkpoint (of size 1, or 2 with `grown`). Returns the kind of
/// the evidence the county recorded, after checking that it verifies
/// offline and that the department is suspended.
fn conflicting_witness(grown: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dept.key");
    let dept_vkey = keygen(&key, ORIGIN, false);
    let (_, _, dept) =
        gongkai_core::note::parse_private_key(std::fs::read_to_string(&key).unwrap().trim())
            .unwrap();
    let d1 = dir.path().join("w1");
    let v1 = cosigner_vkey(&d1, "jiwei.example");
    let logs = trust_file(dir.path(), "logs.toml", &[&dept_vkey], &[], Some(0));
    let w1 = Witness::start(&Witness::configure(&d1, &logs, &[]), &v1);
    let other = leaves(1, 9);
    assert_eq!(
        w1.add(&request(&dept, ORIGIN, &other, 0, 1).encode()).0,
        200
    );
    let county = County::start_with(
        &dir.path().join("county"),
        &dept_vkey,
        &format!(
            "[[witness]]\nname = \"纪委监委\"\nurl = \"{}\"\nvkey = \"{v1}\"\n",
            w1.url
        ),
    );
    let mut node = Node::start(&dir.path().join("node"), &key);
    if grown {
        node.define_matter("budget", MATTER);
    }
    assert_eq!(node.wait_checkpoint(), if grown { 2 } else { 1 });
    node.attach_county(&county);
    let start = Instant::now();
    let list = loop {
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
        if v["evidence"].as_array().is_some_and(|a| !a.is_empty()) {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no evidence: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let id = list["evidence"][0]["id"].as_str().unwrap();
    let file = dir.path().join("evidence.txt");
    let o = gongkai(&[
        "county",
        "evidence",
        "show",
        id,
        "--out",
        file.to_str().unwrap(),
        "--server",
        &county.url,
    ]);
    expect_code(&o, 0);
    let vkey = dir.path().join("dept.key.vkey");
    let o = gongkai(&[
        "county",
        "evidence",
        "verify",
        file.to_str().unwrap(),
        "--vkey",
        vkey.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let v = wait_status(&county, "the department is suspended", |v| {
        v["departments"][0]["suspended"] != ""
    });
    let why = v["witnesses"][0]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["origin"] == ORIGIN)
        .map(|l| l["error"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert!(
        why.contains("another root") || why.contains("inconsistent"),
        "{v}"
    );
    list["evidence"][0]["kind"].as_str().unwrap().to_owned()
}
