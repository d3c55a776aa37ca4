//! `gongkai certs` end to end: a county CA, a node's server certificate and
//! a writer's client certificate, used by a real node (`gongkai node`) with
//! mutual TLS and by the real client; a certificate from another CA is
//! refused.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output};

use common::{ORIGIN, gongkai, text};

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gongkai node --config` and returns it with its address
/// (`host:port`; it serves TLS).
fn start_node(config: &Path) -> (Node, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gongkai"));
    cmd.args(["node", "--config", config.to_str().unwrap()]);
    let served = common::serve_command(cmd, None).expect("the node serves");
    let addr = served
        .url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("a TLS address, not {}", served.url))
        .to_owned();
    (Node(served.child), addr)
}

#[test]
fn a_county_ca_signs_server_and_client_certificates_that_a_node_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    ok(&gongkai(&["certs", "ca", "--out", &d("ca")]));
    assert_eq!(mode(&dir.path().join("ca/ca.key")), 0o600);
    assert_eq!(mode(&dir.path().join("ca/ca.crt")), 0o644);
    let o = gongkai(&["certs", "ca", "--out", &d("ca")]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing CA is never overwritten"
    );

    ok(&gongkai(&[
        "certs",
        "server",
        "--ca",
        &d("ca"),
        "--host",
        "localhost",
        "--host",
        "127.0.0.1",
        "--out",
        &d("node"),
    ]));
    assert_eq!(mode(&dir.path().join("node.key")), 0o600);
    let json: serde_json::Value = serde_json::from_str(&ok(&gongkai(&[
        "--json",
        "certs",
        "client",
        "--ca",
        &d("ca"),
        "--name",
        "finance-oa",
        "--writes",
        ORIGIN,
        "--out",
        &d("clerk"),
    ])))
    .unwrap();
    // Certificates of the same CA that may not write to this node: one
    // writing to another department, and this department's push
    // certificate (its role is pushing to the county).
    ok(&gongkai(&[
        "certs",
        "client",
        "--ca",
        &d("ca"),
        "--name",
        "education-oa",
        "--writes",
        "gongkai.example/510122/education",
        "--out",
        &d("other-dept"),
    ]));
    ok(&gongkai(&[
        "certs",
        "client",
        "--ca",
        &d("ca"),
        "--name",
        ORIGIN,
        "--out",
        &d("push"),
    ]));
    assert_eq!(json["written"].as_array().unwrap().len(), 2);
    // A client certificate from an unrelated CA.
    ok(&gongkai(&["certs", "ca", "--out", &d("other")]));
    ok(&gongkai(&[
        "certs",
        "client",
        "--ca",
        &d("other"),
        "--name",
        "finance-oa",
        "--out",
        &d("stranger"),
    ]));

    ok(&gongkai(&[
        "keygen",
        "--name",
        ORIGIN,
        "--out",
        &d("finance.key"),
    ]));
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            r#"origin = "{ORIGIN}"
department = "某某县财政局"
division_code = "510122"
data_dir = "{}"
key = "{}"
listen = "127.0.0.1:0"
[tls]
cert = "{}"
key = "{}"
client_ca = "{}"
"#,
            d("data"),
            d("finance.key"),
            d("node.crt"),
            d("node.key"),
            d("ca/ca.crt"),
        ),
    )
    .unwrap();
    ok(&gongkai(&[
        "node",
        "init",
        "--config",
        config.to_str().unwrap(),
    ]));
    let (_node, addr) = start_node(&config);
    let port = addr.rsplit(':').next().unwrap();
    let server = format!("https://localhost:{port}");
    let write = |cert: &str| {
        gongkai(&[
            "--server",
            &server,
            "--origin",
            ORIGIN,
            "--ca",
            &d("ca/ca.crt"),
            "--client-cert",
            &d(&format!("{cert}.crt")),
            "--client-key",
            &d(&format!("{cert}.key")),
            "request",
            "receive",
            "--id",
            "req-1",
            "--date",
            "2026-01-05",
            "--applicant",
            "natural-person",
            "--subject",
            "预算",
        ])
    };
    ok(&write("clerk"));
    let refused = write("stranger");
    assert!(
        !refused.status.success(),
        "a certificate of another CA must not write"
    );
    for (cert, why) in [
        ("other-dept", "another department's writer certificate"),
        ("push", "this department's push certificate"),
    ] {
        let o = write(cert);
        assert!(!o.status.success(), "{why} must not write");
        assert!(
            text(&o.stderr).contains("may not write to"),
            "{why}: {}",
            text(&o.stderr)
        );
    }

    // Bad input: a missing CA and a bad host name are usage errors (exit 2).
    let o = gongkai(&[
        "certs",
        "client",
        "--ca",
        &d("nope"),
        "--name",
        "x",
        "--out",
        &d("x"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ca.key"));
    let o = gongkai(&[
        "certs",
        "server",
        "--ca",
        &d("ca"),
        "--host",
        "bad host",
        "--out",
        &d("y"),
    ]);
    assert_eq!(o.status.code(), Some(2));
}
