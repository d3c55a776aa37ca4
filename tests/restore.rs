//! `gongkai node restore` end to end with the real binary: a data directory
//! older than what its key has signed is refused at start, and restore
//! starts a new log under a new origin without touching the old data.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ORIGIN: &str = "gongkai.example/510122/finance";
const NEW_ORIGIN: &str = "gongkai.example/510122/finance-2";

fn gongkai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(args)
        .env_remove("GONGKAI_SERVER")
        .env_remove("GONGKAI_TOKEN")
        .env_remove("GONGKAI_ORIGIN")
        .output()
        .expect("the gongkai binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn restore_help_says_replication_does_not_exist_yet() {
    let o = gongkai(&["node", "restore", "--help"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let help = text(&o.stdout);
    assert!(
        help.contains("replication to the county does\nnot exist yet")
            || help.contains("replication to the county does not exist yet"),
        "{help}"
    );
    assert!(help.contains("--new-origin"), "{help}");
}

#[test]
fn restore_starts_a_new_origin_and_leaves_the_old_data_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("finance.key");
    let o = gongkai(&["keygen", "--name", ORIGIN, "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let config = d.join("finance.toml");
    std::fs::write(
        &config,
        format!(
            "origin = \"{ORIGIN}\"\n\
             department = \"某某县财政局\"\n\
             division_code = \"510122\"\n\
             data_dir = {:?}\n\
             key = {:?}\n\
             listen = \"127.0.0.1:0\"\n\
             plaintext = true\n\
             cache_bytes = 4194304\n",
            d.join("data"),
            key
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let o = gongkai(&["node", "init", "--config", cfg]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    // The key has signed further than this data directory reaches (as after
    // restoring an old backup; crates/node/tests/node.rs runs that sequence
    // through a real node): the node refuses to start and names restore.
    std::fs::write(with_suffix(&key, ".state"), "3\n").unwrap();
    let o = gongkai(&["node", "--config", cfg]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("already signed a checkpoint of size 3"),
        "{err}"
    );
    assert!(err.contains("gongkai node restore"), "{err}");

    let before = snapshot(&d.join("data"));
    let new_key = d.join("finance-2.key");
    let o = gongkai(&[
        "node",
        "restore",
        "--config",
        cfg,
        "--new-origin",
        NEW_ORIGIN,
        "--new-key",
        new_key.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}\n{out}", text(&o.stderr));
    assert!(out.contains("verified     1 entries"), "{out}");
    assert!(out.contains("signed size  3"), "{out}");
    assert!(
        out.contains("missing      2 entries (indexes 1 to 2)"),
        "{out}"
    );
    let vkey = std::fs::read_to_string(with_suffix(&new_key, ".vkey")).unwrap();
    assert!(vkey.starts_with(&format!("{NEW_ORIGIN}+")), "{vkey}");
    assert!(out.contains(vkey.trim()), "{out}");

    // The old data is byte for byte as it was.
    assert_eq!(snapshot(&d.join("data")), before);
    // The new key is private; the new config sits next to the old one.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&new_key), 0o600);
    let new_config = d.join("finance.new-origin.toml");
    let new_text = std::fs::read_to_string(&new_config).unwrap();
    assert!(new_text.contains(NEW_ORIGIN), "{new_text}");
    assert!(new_text.contains("某某县财政局"), "{new_text}");
    assert!(d.join("data.new-origin/journal").exists());

    // The new log verifies under its own key, and its Genesis names the
    // same department.
    let o = gongkai(&["node", "check", "--config", new_config.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(&format!("{NEW_ORIGIN}: 1 entries verified")),
        "{}",
        text(&o.stdout)
    );

    // Running it again overwrites nothing.
    let o = gongkai(&[
        "node",
        "restore",
        "--config",
        cfg,
        "--new-origin",
        NEW_ORIGIN,
        "--new-key",
        new_key.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("already exists"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn restore_refuses_when_the_data_is_not_behind_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("finance.key");
    assert!(
        gongkai(&["keygen", "--name", ORIGIN, "--out", key.to_str().unwrap()])
            .status
            .success()
    );
    let config = d.join("finance.toml");
    std::fs::write(
        &config,
        format!(
            "origin = \"{ORIGIN}\"\ndepartment = \"某某县财政局\"\ndivision_code = \"510122\"\n\
             data_dir = {:?}\nkey = {:?}\nplaintext = true\n",
            d.join("data"),
            key
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    assert!(gongkai(&["node", "init", "--config", cfg]).status.success());
    let o = gongkai(&[
        "node",
        "restore",
        "--config",
        cfg,
        "--new-origin",
        NEW_ORIGIN,
        "--new-key",
        d.join("new.key").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no new origin is needed"),
        "{}",
        text(&o.stderr)
    );
    assert!(!d.join("new.key").exists());
}

fn with_suffix(p: &Path, s: &str) -> PathBuf {
    let mut o = p.as_os_str().to_os_string();
    o.push(s);
    PathBuf::from(o)
}
