//! `gongkai verify`, `monitor`, `prove` and `check-proof` end to end
//! against real nodes: whole and incremental verification, a rollback and
//! a fork caught against the state file (the fork is a second node with
//! the same key and origin but another history), restricted content, proof
//! bundles checked offline.

mod common;

use std::path::Path;

use common::*;

fn verify(
    node: &Node,
    trust: &Path,
    state: Option<&Path>,
    token: bool,
) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec!["verify", "--trust", trust.to_str().unwrap(), "--json"];
    if let Some(s) = state {
        args.extend(["--state", s.to_str().unwrap()]);
    }
    let o = if token {
        node.cli(&args)
    } else {
        node.public(&args)
    };
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (
        o.status.code(),
        v,
        format!("{}{}", text(&o.stdout), text(&o.stderr)),
    )
}

#[test]
fn incremental_verify_catches_rollback_and_fork_and_monitor_alerts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, ORIGIN, false);
    let trust = trust_file(d, "trust.toml", &[&vkey], &[], None);
    let a = Node::start(&d.join("a"), &key);
    let today = today();
    a.define_matter("budget", MATTER);
    a.define_matter("dibao", GROUP_MATTER);
    a.publish("budget-a", "budget", &today, "预算", &[]);
    a.publish("dibao-1", "dibao", &today, "低保名单", &[]);
    let secret = a.publish("names", "budget", &today, "含个人信息", &[]);
    a.ok(&[
        "redact",
        "--item",
        "names",
        "--digest",
        &secret,
        "--reason",
        "个人信息",
        "--basis",
        "条例第十五条",
    ]);
    let size = a.wait_checkpoint();

    // Whole log, public reader: restricted content is reported as such.
    let state = d.join("state.json");
    let (code, v, out) = verify(&a, &trust, Some(&state), false);
    assert_eq!(code, Some(0), "{out}");
    let log = &v["logs"][0];
    assert_eq!(log["new_entries"], size, "{out}");
    assert_eq!(log["content_ok"], 1, "{out}");
    assert_eq!(log["content_restricted"], 1, "{out}");
    assert_eq!(log["content_redacted"], 1, "{out}");
    assert!(
        log["warnings"][0].as_str().unwrap().contains("no witness"),
        "{out}"
    );
    // An authorized reader (writer token) gets and checks it.
    let (code, v, out) = verify(&a, &trust, None, true);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["logs"][0]["content_ok"], 2, "{out}");
    // A trust that requires a witness: a plain node's checkpoint is not
    // cosigned, which is then a violation.
    let w = d.join("w.key");
    let wv = keygen(&w, "county.example", true);
    let strict = trust_file(d, "strict.toml", &[&vkey], &[&wv], None);
    let (code, _, out) = verify(&a, &strict, None, false);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("1 of 1 witness cosignatures required, 0 present"),
        "{out}"
    );

    // Incremental: only the new entries.
    a.publish("budget-b", "budget", &today, "决算", &[]);
    let size2 = a.wait_checkpoint();
    let monitor_state = d.join("monitor.json");
    let (code, v, out) = verify(&a, &trust, Some(&state), false);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["logs"][0]["new_entries"], size2 - size, "{out}");
    let mon = |node: &Node, alerts: &Path| {
        node.public(&[
            "monitor",
            "--state",
            monitor_state.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
            "--once",
            "--on-alert",
            &format!("cat >> {}", alerts.display()),
        ])
    };
    let alerts = d.join("alerts.jsonl");
    expect_code(&mon(&a, &alerts), 0);
    assert!(!alerts.exists());

    // A second node with the same key and origin but another history.
    let key_b = d.join("b.key");
    std::fs::copy(&key, &key_b).unwrap();
    let b = Node::start(&d.join("b"), &key_b);
    b.wait_checkpoint();
    // Smaller than what was verified: a rollback.
    let (code, v, out) = verify(&b, &trust, Some(&state), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        v["logs"][0]["violations"][0]
            .as_str()
            .unwrap()
            .starts_with("rollback"),
        "{out}"
    );
    // Grown past it, on another history: a fork (the consistency proof
    // from the remembered checkpoint fails).
    b.define_matter("other", MATTER);
    for i in 0..size2 {
        b.publish(&format!("x-{i}"), "other", &today, "另一段历史", &[]);
    }
    assert!(b.wait_checkpoint() > size2);
    let (code, v, out) = verify(&b, &trust, Some(&state), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        v["logs"][0]["violations"][0]
            .as_str()
            .unwrap()
            .starts_with("fork"),
        "{out}"
    );
    // The state was not advanced: the genuine node still verifies.
    let (code, _, out) = verify(&a, &trust, Some(&state), false);
    assert_eq!(code, Some(0), "{out}");
    // On its own, the second history is a valid log.
    let (code, _, out) = verify(&b, &trust, None, false);
    assert_eq!(code, Some(0), "{out}");

    // The monitor alerts on stderr and through --on-alert, and keeps
    // alerting after a restart (its state was not advanced).
    let o = mon(&b, &alerts);
    expect_code(&o, 1);
    assert!(
        text(&o.stderr).contains("\"alert\":\"violation\""),
        "{}",
        text(&o.stderr)
    );
    let got = std::fs::read_to_string(&alerts).unwrap();
    assert!(got.contains("fork"), "{got}");
    expect_code(&mon(&b, &alerts), 1);
    assert_eq!(std::fs::read_to_string(&alerts).unwrap().lines().count(), 2);
    // Unreachable: could not verify.
    let o = gongkai(&[
        "--server",
        "http://127.0.0.1:1",
        "--origin",
        ORIGIN,
        "verify",
        "--trust",
        trust.to_str().unwrap(),
    ]);
    expect_code(&o, 2);
}

#[test]
fn prove_and_check_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, ORIGIN, false);
    let node = Node::start(&d.join("node"), &key);
    let today = today();
    node.define_matter("budget", MATTER);
    node.publish("budget-a", "budget", &today, "预算", &[]);
    node.publish("budget-b", "budget", &today, "另一项", &[]);
    node.amend("budget-a", &today, "预算（更正）");
    node.wait_checkpoint();
    let bundle = d.join("budget-a.proof.json");
    let out = node.ok(&[
        "prove",
        "--item",
        "budget-a",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(
        out.contains("does not show that no later entry changed the item"),
        "{out}"
    );
    let vk = key.with_extension("key.vkey");
    let o = gongkai(&[
        "check-proof",
        bundle.to_str().unwrap(),
        "--vkey",
        vk.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let shown = text(&o.stdout);
    assert!(
        shown.contains("verified: 2 entries of item budget-a"),
        "{shown}"
    );
    assert!(
        shown.contains("does not show that no later entry changed the item"),
        "{shown}"
    );
    // The vkey string works as well as the file.
    expect_code(
        &gongkai(&["check-proof", bundle.to_str().unwrap(), "--vkey", &vkey]),
        0,
    );
    // Another department key: refused.
    let other = d.join("other.key");
    let other_vkey = keygen(&other, ORIGIN, false);
    expect_code(
        &gongkai(&[
            "check-proof",
            bundle.to_str().unwrap(),
            "--vkey",
            &other_vkey,
        ]),
        1,
    );
    // A trust file that requires a witness the bundle's checkpoint lacks:
    // refused, saying how many were required and present.
    let w = keygen(&d.join("jiwei.key"), "jiwei.example", true);
    let trust = trust_file(d, "proof-trust.toml", &[&vkey], &[&w], Some(1));
    let o = gongkai(&[
        "check-proof",
        bundle.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        said.contains("1 of 1 witness cosignatures required, 0 present"),
        "{said}"
    );
    // Against the log as it stands now, read as static files (a bucket or
    // CDN): consistent after the log grew; a log cut back or rewritten
    // since (the same key, another history) contradicts the bundle; a site
    // that cannot be read proves nothing either way.
    node.publish("budget-c", "budget", &today, "第三项", &[]);
    node.wait_checkpoint();
    let check_at = |site: &str| {
        gongkai(&[
            "check-proof",
            bundle.to_str().unwrap(),
            "--vkey",
            &vkey,
            "--url",
            site,
        ])
    };
    let site = serve_export(&node, &d.join("export-a"));
    let o = check_at(&site);
    expect_code(&o, 0);
    assert!(
        text(&o.stdout).contains(&format!("still in the log at {site}")),
        "{}",
        text(&o.stdout)
    );
    let key_b = d.join("b.key");
    std::fs::copy(&key, &key_b).unwrap();
    let b = Node::start(&d.join("b"), &key_b);
    b.wait_checkpoint();
    let o = check_at(&serve_export(&b, &d.join("export-b1")));
    expect_code(&o, 1);
    assert!(text(&o.stderr).contains("cut back"), "{}", text(&o.stderr));
    b.define_matter("other", MATTER);
    for i in 0..8 {
        b.publish(&format!("x-{i}"), "other", &today, "另一段历史", &[]);
    }
    b.wait_checkpoint();
    let o = check_at(&serve_export(&b, &d.join("export-b2")));
    expect_code(&o, 1);
    assert!(text(&o.stderr).contains("rewritten"), "{}", text(&o.stderr));
    let o = check_at("http://127.0.0.1:1");
    expect_code(&o, 2);
    assert!(
        text(&o.stderr).contains("could not be read"),
        "{}",
        text(&o.stderr)
    );

    // A tampered bundle: an entry of another item slipped in, or a proof
    // hash changed.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let proof = v["entries"][0]["proof"][0].as_str().unwrap().to_owned();
    let mut raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &proof).unwrap();
    raw[0] ^= 1;
    v["entries"][0]["proof"][0] =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw).into();
    let bad = d.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = gongkai(&[
        "check-proof",
        bad.to_str().unwrap(),
        "--vkey",
        &vkey,
        "--json",
    ]);
    expect_code(&o, 1);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["verified"], false);
}

/// Exports `node`'s log to `dir` and serves it over plain HTTP at the
/// static paths of FORMAT.md § 9.4 (`/logs/<origin, / as ~>/…`), as a
/// bucket would; its base URL.
fn serve_export(node: &Node, dir: &Path) -> String {
    use std::io::Write as _;
    expect_code(&node.public(&["export", "--out", dir.to_str().unwrap()]), 0);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let root = dir.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let path = request_path(&mut s);
            let file = path
                .strip_prefix("/logs/")
                .and_then(|rest| rest.split_once('/'))
                .filter(|(_, rest)| !rest.contains(".."))
                .map(|(slug, rest)| root.join("logs").join(slug.replace('~', "/")).join(rest));
            let _ = match file.and_then(|f| std::fs::read(f).ok()) {
                Some(body) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    s.write_all(&body)
                }
                None => s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    url
}
