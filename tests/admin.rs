//! The operator's data commands end to end with the real binary and real
//! nodes: `node backup` while the node writes; restoring the backup is
//! refused at start (the key signed more); `node recover` pulls the tail
//! back from a mirror and the node starts with the same log; `node
//! rotate-key` hands the log to a new key that the chain then follows.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Node, ORIGIN, Served, expect_code, gongkai, serve_command, text};

/// Starts `gongkai node --config` on an existing config; returns the child
/// and its URL once it answers, or what it printed if it exited (a node
/// that refuses to start prints no address).
fn run(config: &Path) -> Result<(Child, String), String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gongkai"));
    cmd.args(["node", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn");
    let Served {
        mut child,
        url,
        stderr,
    } = serve_command(cmd, None)?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            return Err(format!("exit {status}: {}", stderr.lock().unwrap()));
        }
        let o = gongkai(&["--server", &url, "--origin", ORIGIN, "status"]);
        if o.status.success() {
            return Ok((child, url));
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the node neither served nor exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn publish_some(node: &Node, from: usize, n: usize) {
    for i in from..from + n {
        node.ok(&[
            "request",
            "receive",
            "--id",
            &format!("req-{i}"),
            "--date",
            &common::today(),
            "--applicant",
            "natural-person",
            "--subject",
            "申请公开预算",
        ]);
    }
}

#[test]
fn backup_while_running_then_recover_the_tail_from_a_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("finance.key");
    common::keygen(&key, ORIGIN, false);
    let mut node = Node::start(&dir.path().join("n"), &key);
    let config = dir.path().join("n/node.toml");
    let cfg = config.to_str().unwrap();
    publish_some(&node, 0, 5);
    let backup = dir.path().join("backup");
    let o = gongkai(&[
        "--json",
        "node",
        "backup",
        "--config",
        cfg,
        "--out",
        backup.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["size"], 6, "genesis + 5 while the node runs");
    // A backup never goes into a directory that holds something.
    let again = gongkai(&[
        "node",
        "backup",
        "--config",
        cfg,
        "--out",
        backup.to_str().unwrap(),
    ]);
    expect_code(&again, 1);

    publish_some(&node, 5, 4);
    let full = node.wait_checkpoint();
    assert_eq!(full, 10);
    node.child.kill().unwrap();
    node.child.wait().unwrap();

    // The mirror: the full log, served by another process (the county
    // aggregator serves the same read API).
    common::copy_dir(&dir.path().join("n/data"), &dir.path().join("mirror/data"));
    let mirror_config = dir.path().join("mirror.toml");
    std::fs::write(
        &mirror_config,
        std::fs::read_to_string(&config).unwrap().replace(
            dir.path().join("n/data").to_str().unwrap(),
            dir.path().join("mirror/data").to_str().unwrap(),
        ),
    )
    .unwrap();
    let (mut mirror, mirror_url) = run(&mirror_config).unwrap();

    // Restore the backup: the node refuses, the key signed 10 entries.
    std::fs::remove_dir_all(dir.path().join("n/data")).unwrap();
    common::copy_dir(&backup, &dir.path().join("n/data"));
    let refused = run(&config).expect_err("an old backup must not start");
    assert!(refused.contains("restored from a backup"), "{refused}");

    // Pull the tail back; a second run finds nothing left to do.
    let o = gongkai(&["--server", &mirror_url, "node", "recover", "--config", cfg]);
    expect_code(&o, 0);
    assert!(
        text(&o.stdout).contains("recovered entries 6..10"),
        "{}",
        text(&o.stdout)
    );
    let o = gongkai(&["--server", &mirror_url, "node", "recover", "--config", cfg]);
    expect_code(&o, 0);
    assert!(text(&o.stdout).contains("nothing to do"));
    mirror.kill().unwrap();
    mirror.wait().unwrap();

    let (mut restored, url) = run(&config).expect("the node starts with the whole log again");
    let status = gongkai(&["--server", &url, "--origin", ORIGIN, "--json", "status"]);
    expect_code(&status, 0);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["size"], 10);
    restored.kill().unwrap();
    let _ = restored.wait();
}

#[test]
fn rotate_key_hands_the_log_to_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("finance.key");
    let old_vkey = common::keygen(&key, ORIGIN, false);
    let mut node = Node::start(&dir.path().join("n"), &key);
    publish_some(&node, 0, 2);
    let config = dir.path().join("n/node.toml");
    let cfg = config.to_str().unwrap();
    let new_key = dir.path().join("finance-2027.key");

    // While the node runs, the journal is locked: nothing changes.
    let o = gongkai(&[
        "node",
        "rotate-key",
        "--config",
        cfg,
        "--new-key",
        new_key.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains("finance-2027")
    );
    node.child.kill().unwrap();
    node.child.wait().unwrap();

    let o = gongkai(&[
        "--json",
        "node",
        "rotate-key",
        "--config",
        cfg,
        "--new-key",
        new_key.to_str().unwrap(),
        "--reason",
        "年度轮换",
    ]);
    expect_code(&o, 0);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["index"], 3);
    let new_vkey = r["vkey"].as_str().unwrap().to_owned();
    assert_ne!(new_vkey, old_vkey);
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("finance-2027.key")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("finance-2027.key.state")).unwrap(),
        std::fs::read_to_string(dir.path().join("finance.key.state")).unwrap(),
        "the new key inherits the signed size"
    );
    let o = gongkai(&["--json", "node", "check", "--config", cfg]);
    expect_code(&o, 0);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["size"], 4, "{r}");
    assert_eq!(r["catalog_records"], 2, "{r}");

    let (mut child, url) = run(&config).expect("the node starts with the new key");
    let w = Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args([
            "--server",
            &url,
            "request",
            "receive",
            "--id",
            "req-after",
            "--date",
            &common::today(),
            "--applicant",
            "natural-person",
            "--subject",
            "s",
        ])
        .env("GONGKAI_TOKEN", common::TOKEN)
        .output()
        .unwrap();
    expect_code(&w, 0);
    // The old key alone no longer verifies the newest checkpoint; the chain,
    // anchored on the old key, follows the rotation.
    let vkey_file = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let cp = gongkai(&[
        "--server",
        &url,
        "--origin",
        ORIGIN,
        "checkpoint",
        "--vkey",
        &vkey_file("finance-2027.key.vkey"),
    ]);
    expect_code(&cp, 0);
    assert_eq!(
        std::fs::read_to_string(vkey_file("finance-2027.key.vkey"))
            .unwrap()
            .trim(),
        new_vkey
    );
    let old = gongkai(&[
        "--server",
        &url,
        "--origin",
        ORIGIN,
        "checkpoint",
        "--vkey",
        &vkey_file("finance.key.vkey"),
    ]);
    assert!(
        !old.status.success(),
        "the old key no longer signs checkpoints"
    );
    child.kill().unwrap();
    let _ = child.wait();
}
