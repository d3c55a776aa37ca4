//! The county publishes its logs to a real distributed object store — a
//! three-node Garage cluster on loopback, replication factor 3, started
//! here from the `garage` binary that `scripts/test` installs — and
//! readers verify from the bucket over plain HTTP (Garage's website
//! endpoint), with no gRPC. One node is stopped: publishing goes on and
//! readers still verify; it comes back and serves the log too. A redacted
//! document leaves the bucket.

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gongkai_core::checkpoint::SignedCheckpoint;

const DEADLINE: Duration = Duration::from_secs(60);
const BUCKET: &str = "localhost";

/// The `garage` binary: `GONGKAI_GARAGE`, else `garage` on the PATH (or in
/// ~/.cargo/bin, where `scripts/test` installs it). Missing is a failure,
/// not a skip: the suite's set-up installs it.
fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GONGKAI_GARAGE") {
        return PathBuf::from(p);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("garage"))
        .find(|p| p.is_file())
        .expect("the garage binary (scripts/test installs it: cargo install garage --version 2.5.0 --locked --no-default-features --features bundled-libs,lmdb)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct GarageNode {
    child: Option<Child>,
    config: PathBuf,
    s3: u16,
    web: u16,
}

impl GarageNode {
    fn cli(&self, args: &[&str]) -> String {
        let o = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "garage {args:?}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.config.with_extension("log")).unwrap();
        self.child = Some(
            Command::new(garage_bin())
                .arg("-c")
                .arg(&self.config)
                .arg("server")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        loop {
            let o = Command::new(garage_bin())
                .arg("-c")
                .arg(&self.config)
                .args(["node", "id", "-q"])
                .output()
                .unwrap();
            if o.status.success() {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "garage did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        // Garage's website endpoint finds the bucket by the Host header.
        format!("http://{BUCKET}:{}", self.web)
    }
}

impl Drop for GarageNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A three-node cluster, replication factor 3, with the bucket and a key.
fn garage_cluster(dir: &Path) -> (Vec<GarageNode>, String, PathBuf) {
    let secret: String = (0..32)
        .map(|i| format!("{:02x}", (i * 37 + 11) as u8))
        .collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let d = dir.join(format!("garage{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let (rpc, s3, web, admin) = (free_port(), free_port(), free_port(), free_port());
        let config = d.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = {meta:?}\ndata_dir = {data:?}\ndb_engine = \"lmdb\"\n\
                 replication_factor = 3\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [s3_web]\nbind_addr = \"127.0.0.1:{web}\"\nroot_domain = \".web.garage.localhost\"\n\
                 index = \"index.html\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                meta = d.join("meta"),
                data = d.join("data"),
            ),
        )
        .unwrap();
        let mut n = GarageNode {
            child: None,
            config,
            s3,
            web,
        };
        n.start();
        nodes.push(n);
    }
    let ids: Vec<String> = nodes
        .iter()
        .map(|n| n.cli(&["node", "id", "-q"]).trim().to_owned())
        .collect();
    for id in &ids[1..] {
        nodes[0].cli(&["node", "connect", id]);
    }
    for id in &ids {
        let short = id.split('@').next().unwrap();
        nodes[0].cli(&["layout", "assign", "-z", "dc1", "-c", "100M", short]);
    }
    nodes[0].cli(&["layout", "apply", "--version", "1"]);
    nodes[0].cli(&["bucket", "create", BUCKET]);
    nodes[0].cli(&["key", "create", "gongkai-county"]);
    let info = nodes[0].cli(&["key", "info", "gongkai-county", "--show-secret"]);
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {info}"))
    };
    let (key_id, secret_key) = (field("Key ID:"), field("Secret key:"));
    nodes[0].cli(&[
        "bucket",
        "allow",
        "--read",
        "--write",
        "--owner",
        BUCKET,
        "--key",
        "gongkai-county",
    ]);
    nodes[0].cli(&["bucket", "website", "--allow", BUCKET]);
    let secret_file = dir.join("s3.secret");
    std::fs::write(&secret_file, format!("{secret_key}\n")).unwrap();
    (nodes, key_id, secret_file)
}

/// An HTTP GET, raw (headers and body as bytes).
fn get(url: &str) -> (u16, String, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let port = host.rsplit_once(':').unwrap().1;
    // A node just started may not listen yet: status 0, asked again.
    let Ok(mut s) = std::net::TcpStream::connect(format!("127.0.0.1:{port}")) else {
        return (0, String::new(), Vec::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, head, raw[(end + 4).min(raw.len())..].to_vec())
}

/// Waits until the bucket (read through `node`) holds a checkpoint of at
/// least `size` entries of the department.
fn wait_published(node: &GarageNode, county: &County, size: u64) {
    let slug = ORIGIN.replace('/', "~");
    let start = Instant::now();
    loop {
        let (status, _, body) = get(&format!("{}/logs/{slug}/checkpoint", node.url()));
        if status == 200
            && SignedCheckpoint::from_bytes(&body).is_ok_and(|c| c.checkpoint().size >= size)
        {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the bucket never held size {size} (HTTP {status}); the county said:\n{}",
            county.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `verify` of the department from the bucket, through `node`.
fn verify_from(node: &GarageNode, trust: &Path) -> serde_json::Value {
    let o = gongkai(&[
        "--origin",
        ORIGIN,
        "--server",
        "http://127.0.0.1:9",
        "verify",
        "--json",
        "--trust",
        trust.to_str().unwrap(),
        "--url",
        &node.url(),
        "--content-url",
        &node.url(),
    ]);
    expect_code(&o, 0);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn the_county_publishes_to_a_three_node_garage_cluster_and_readers_verify_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, key_id, secret) = garage_cluster(dir.path());
    let key = dir.path().join("dept.key");
    let vkey = keygen(&key, ORIGIN, false);
    let county = County::start_with(
        &dir.path().join("county"),
        &vkey,
        &format!(
            "[publish]\nendpoint = \"http://127.0.0.1:{}\"\nbucket = \"{BUCKET}\"\nregion = \"garage\"\n\
             access_key_id = \"{key_id}\"\nsecret_access_key_file = {secret:?}\n\
             allow_http = true\ninterval_ms = 200\n",
            nodes[0].s3
        ),
    );
    let trust = trust_file(
        dir.path(),
        "trust.toml",
        &[&vkey],
        &[&county.witness_vkey],
        Some(1),
    );
    let node = Node::start_with_county(&dir.path().join("node"), &key, &county);
    node.define_matter("budget", MATTER);
    let digest = node.publish("budget-2026", "budget", &today(), "2026年部门预算", &[]);
    node.publish("notice-1", "budget", &today(), "第 1 号公告", &[]);
    // A request answered with a document: public, like an item's.
    node.ok(&[
        "request",
        "receive",
        "--id",
        "req-1",
        "--date",
        &today(),
        "--applicant",
        "natural-person",
        "--subject",
        "请求公开2025年决算",
    ]);
    let answer = dir.path().join("answer.txt");
    std::fs::write(&answer, "2025年决算说明（答复附件）").unwrap();
    node.ok(&[
        "request",
        "answer",
        "--id",
        "req-1",
        "--date",
        &today(),
        "--outcome",
        "disclosed",
        "--file",
        answer.to_str().unwrap(),
    ]);
    let size = node.wait_checkpoint();
    county.wait_cosigned(size);
    wait_published(&nodes[0], &county, size);

    // Read from the bucket, no gRPC: the same verdict, the documents too.
    let v = verify_from(&nodes[0], &trust);
    assert_eq!(v["logs"][0]["size"], size, "{v}");
    assert_eq!(v["logs"][0]["content_ok"], 3, "{v}");
    // What a CDN in front needs: types and cache lifetimes.
    let slug = ORIGIN.replace('/', "~");
    let (status, head, _) = get(&format!("{}/logs/{slug}/checkpoint", nodes[0].url()));
    assert_eq!(status, 200);
    assert!(head.contains("cache-control: public, max-age=5"), "{head}");
    let (status, head, body) = get(&format!("{}/content/{slug}/{digest}", nodes[0].url()));
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("x-amz-meta-gongkai-salt: "), "{head}");
    assert_eq!(String::from_utf8(body).unwrap(), "2026年部门预算");

    // One storage node stops: the county keeps publishing (2 of 3 write
    // quorum), readers keep verifying.
    nodes[2].stop();
    for i in 2..8 {
        node.publish(
            &format!("notice-{i}"),
            "budget",
            &today(),
            &format!("第 {i} 号公告"),
            &[],
        );
    }
    let size2 = node.wait_checkpoint();
    county.wait_cosigned(size2);
    wait_published(&nodes[0], &county, size2);
    let v = verify_from(&nodes[1], &trust);
    assert_eq!(v["logs"][0]["size"], size2, "{v}");
    assert_eq!(v["logs"][0]["content_ok"], 9, "{v}");

    // It comes back and serves the whole log.
    nodes[2].start();
    wait_published(&nodes[2], &county, size2);
    let v = verify_from(&nodes[2], &trust);
    assert_eq!(v["logs"][0]["size"], size2, "{v}");

    // The inspection office audits from the same files: the county log
    // (whose leaves hold the checkpoints the county cosigned) and the
    // department's log with its duties, no export and no gRPC.
    let audit_trust = dir.path().join("audit-trust.toml");
    std::fs::write(
        &audit_trust,
        format!(
            "county_log = \"{}\"\n{}",
            county.log_vkey,
            std::fs::read_to_string(&trust).unwrap()
        ),
    )
    .unwrap();
    let audit = |node: &GarageNode| {
        let o = gongkai(&[
            "audit",
            "--json",
            "--trust",
            audit_trust.to_str().unwrap(),
            "--url",
            &node.url(),
            "--content-url",
            &node.url(),
        ]);
        (
            o.status.code(),
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, a, err) = audit(&nodes[2]);
    assert_eq!(code, Some(0), "{a} {err}");
    assert_eq!(a["result"], "clean", "{a}");
    let logs = a["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{a}");
    assert_eq!(logs[0]["origin"], ORIGIN, "{a}");
    assert_eq!(logs[0]["size"], size2, "{a}");
    assert_eq!(logs[1]["county"], true, "{a}");
    assert!(logs[1]["entries_verified"].as_u64().unwrap() > 0, "{a}");

    // A redaction removes the document from the bucket; the commitment
    // stays and readers see it redacted.
    node.ok(&[
        "redact",
        "--item",
        "budget-2026",
        "--digest",
        &digest,
        "--reason",
        "个人信息",
        "--basis",
        "条例第十五条",
    ]);
    let size3 = node.wait_checkpoint();
    county.wait_cosigned(size3);
    wait_published(&nodes[0], &county, size3);
    let (status, _, _) = get(&format!("{}/content/{slug}/{digest}", nodes[0].url()));
    assert_eq!(
        status, 404,
        "a redacted document is deleted from the bucket"
    );
    let v = verify_from(&nodes[0], &trust);
    assert_eq!(v["logs"][0]["content_redacted"], 1, "{v}");
    drop(node);
}
