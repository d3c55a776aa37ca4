//! End-to-end tests of the `gongkai` binary.
//!
//! These run the real binary. The ones here need no node: argument
//! checking, key files, exit codes. The tests against a real node
//! (`gongkai-node` started on port 0: publish → item verifies; amend of a
//! withdrawn item → exit 1 with the rule; retry after UNAVAILABLE with one
//! idempotency key appends once; import re-run is replayed; content
//! download checks the digest) are added here once that crate lands on
//! this branch. No fake server: a test double would only test itself.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

fn gongkai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(args)
        .env_remove("GONGKAI_SERVER")
        .env_remove("GONGKAI_TOKEN")
        .env_remove("GONGKAI_ORIGIN")
        .output()
        .expect("the gongkai binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_documents_exit_codes() {
    let o = gongkai(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Exit codes:"), "{text}");
    assert!(text.contains("publish"), "{text}");
}

#[test]
fn keygen_writes_0600_key_and_0644_vkey_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("w.key");
    let key_s = key.to_str().unwrap();
    let o = gongkai(&[
        "keygen",
        "--name",
        "county-witness",
        "--out",
        key_s,
        "--cosigner",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["vkey"].as_str().unwrap().starts_with("county-witness+"));
    assert_eq!(v["type"], "cosignature/v1");
    // The fingerprint, in the one form the portal and county status print.
    let vk = gongkai_core::note::VerifierKey::parse(v["vkey"].as_str().unwrap()).unwrap();
    assert_eq!(v["fingerprint"].as_str().unwrap(), vk.fingerprint());
    assert_eq!(vk.fingerprint().len(), 19);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&dir.path().join("w.key.vkey")), 0o644);
    // A second keygen to the same path refuses, exit 2, one line.
    let o = gongkai(&[
        "keygen",
        "--name",
        "county-witness",
        "--out",
        key_s,
        "--cosigner",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn reads_need_an_origin() {
    let o = gongkai(&["--server", "http://127.0.0.1:1", "items"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: which log?"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unreachable_node_exits_3() {
    let o = gongkai(&[
        "--server",
        "http://127.0.0.1:1",
        "--origin",
        "gongkai.example/510122/finance",
        "status",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("error: cannot reach the node at http://127.0.0.1:1"));
}

#[test]
fn typos_never_reach_the_server() {
    let o = gongkai(&[
        "withdraw",
        "--item",
        "budget 2026",
        "--reason",
        "r",
        "--basis",
        "b",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid item id"), "{}", stderr(&o));
}
