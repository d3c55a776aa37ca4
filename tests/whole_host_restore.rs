//! A department host restored whole from an old backup — its data
//! directory and the key's state file beside the key, both rolled back —
//! with the real binaries (a county and a node on port 0).
//!
//! The key's state file cannot catch this (it was rolled back too), so the
//! node would start and sign new entries at indexes the county already
//! holds: a fork against an honest department. The node must learn from
//! the county, before its first write, that the county holds more of its
//! log; refuse writes with the way out; stay read-only across a restart;
//! and take writes again once `gongkai node recover` brought the missing
//! entries back from the county.

mod common;

use common::{County, MATTER, Node, expect_code, gongkai, keygen, text, today};

fn copy(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    common::copy_dir(from, to);
}

#[test]
fn a_host_restored_from_an_old_backup_goes_read_only_until_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, common::ORIGIN, false);
    let key_state = d.join("finance.key.state");
    let county = County::start(&d.join("county"), &vkey);
    let mut node = Node::start_with_county(&d.join("node"), &key, &county);
    let today = today();
    node.define_matter("budget", MATTER);
    node.publish("budget-1", "budget", &today, "一号文件", &[]);
    let old_size = node.wait_checkpoint();
    county.wait_cosigned(old_size);

    // The nightly whole-host backup: data and key state, node stopped.
    let _ = node.child.kill();
    let _ = node.child.wait();
    let backup = d.join("backup");
    copy(&node.dir, &backup.join("node"));
    std::fs::copy(&key_state, backup.join("finance.key.state")).unwrap();
    node.restart();

    // The next day's work reaches the county.
    node.publish("budget-2", "budget", &today, "二号文件", &[]);
    node.publish("budget-3", "budget", &today, "三号文件", &[]);
    let new_size = node.wait_checkpoint();
    assert!(new_size > old_size);
    county.wait_cosigned(new_size);

    // The host dies and is restored whole from the backup.
    let _ = node.child.kill();
    let _ = node.child.wait();
    copy(&backup.join("node"), &node.dir);
    std::fs::copy(backup.join("finance.key.state"), &key_state).unwrap();
    node.restart();

    // The first write waits for the node's look at the county, which holds
    // more: refused, with the way out, and nothing appended.
    let refused = node.cli(&[
        "request",
        "receive",
        "--id",
        "req-1",
        "--date",
        &today,
        "--applicant",
        "natural-person",
        "--subject",
        "申请公开",
    ]);
    assert_ne!(refused.status.code(), Some(0), "a write after the restore");
    let why = text(&refused.stderr);
    assert!(why.contains("read-only"), "{why}");
    assert!(why.contains("node recover"), "{why}");
    assert_eq!(node.size(), old_size, "nothing appended");

    // Still read-only after a restart (the marker is on disk).
    node.restart();
    let again = node.cli(&[
        "request",
        "receive",
        "--id",
        "req-1",
        "--date",
        &today,
        "--applicant",
        "natural-person",
        "--subject",
        "申请公开",
    ]);
    assert_ne!(again.status.code(), Some(0));
    assert!(text(&again.stderr).contains("read-only"));

    // The county recorded no evidence: no fork ever left the node.
    let status = gongkai(&["county", "status", "--json", "--server", &county.url]);
    expect_code(&status, 0);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["departments"][0]["evidence_count"], 0, "{s}");

    // Recover the tail from the county, then writes go ahead.
    let _ = node.child.kill();
    let _ = node.child.wait();
    let cfg = node.dir.join("node.toml");
    let o = gongkai(&[
        "--server",
        &county.url,
        "node",
        "recover",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    node.restart();
    assert_eq!(node.size(), new_size);
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
        "申请公开",
    ]);
    let size = node.wait_checkpoint();
    assert_eq!(size, new_size + 1);
    county.wait_cosigned(size);
}
