//! The county of `deploy/` end to end, with the real binary and the same
//! configs the compose file and the systemd units use (only paths and ports
//! adjusted): `deploy/setup.sh` makes the CA, certificates, keys and logs;
//! the aggregator (with its portal) and three nodes run with TLS
//! everywhere, nodes pushing with client certificates and clerks writing
//! with tokens. Publish → replicate → cosign; the aggregator restarts in the
//! middle and catches up; `verify --all` against the county, `export`,
//! `audit` clean; a tampered export is found.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{TOKEN, expect_code, gongkai, text};
use sha2::{Digest as _, Sha256};

const DEPTS: [&str; 3] = ["finance", "education", "civil-affairs"];
const DOMAIN: &str = "gongkai.example/510122";

/// A child process killed on drop, with the lines of its stderr.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gongkai"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        Proc { child, lines }
    }

    /// The text after `marker` on the first stderr line that has it.
    fn wait_for(&self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split(marker).nth(1) {
                        return rest.trim().to_owned();
                    }
                }
                Err(_) => panic!("no line with {marker:?} within 2 minutes"),
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct County {
    dir: tempfile::TempDir,
    etc: PathBuf,
    county_port: u16,
}

impl County {
    fn ca(&self) -> String {
        self.etc.join("public/ca.crt").to_str().unwrap().to_owned()
    }

    /// A client command over TLS.
    fn cli(&self, server: &str, origin: Option<&str>, args: &[&str]) -> Output {
        let ca = self.ca();
        let mut all = vec!["--server", server, "--ca", &ca];
        if let Some(o) = origin {
            all.extend(["--origin", o]);
        }
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_gongkai"))
            .args(&all)
            .env_remove("GONGKAI_SERVER")
            .env_remove("GONGKAI_ORIGIN")
            .env("GONGKAI_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    fn county_url(&self) -> String {
        format!("https://localhost:{}", self.county_port)
    }

    fn start_county(&self) -> (Proc, String) {
        let p = Proc::start(&[
            "aggregator",
            "--config",
            self.etc.join("county/county.toml").to_str().unwrap(),
        ]);
        // It prints its gRPC address, then the portal's.
        p.wait_for("serving on ");
        let portal = p.wait_for("gongkai portal on ");
        let portal = portal.split_whitespace().next().unwrap().to_owned();
        (p, portal)
    }

    /// The county's cosigned size of a department.
    fn cosigned(&self, origin: &str) -> u64 {
        let o = self.cli(&self.county_url(), None, &["county", "status", "--json"]);
        if !o.status.success() {
            return 0;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["departments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["origin"] == origin)
            .and_then(|d| d["cosigned_size"].as_u64())
            .unwrap_or(0)
    }

    fn wait_cosigned(&self, origin: &str, size: u64) {
        let start = Instant::now();
        while self.cosigned(origin) < size {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the county did not cosign {origin} at {size}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The deploy configs with this machine's paths and ports, a writer token
/// for each node, and setup.sh run over them.
fn set_up() -> County {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let var = dir.path().join("var");
    let adjusted = dir.path().join("config");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&adjusted).unwrap();
    let county_port = free_port();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config");
    let token_hash: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for name in [
        "county.toml",
        "finance.toml",
        "education.toml",
        "civil-affairs.toml",
    ] {
        let mut t = std::fs::read_to_string(config.join(name))
            .unwrap()
            .replace("/etc/gongkai", etc.to_str().unwrap())
            .replace("/var/lib/gongkai", var.to_str().unwrap())
            .replace("0.0.0.0:7500", &format!("127.0.0.1:{county_port}"))
            .replace(
                "https://county:7500",
                &format!("https://localhost:{county_port}"),
            )
            .replace("county_interval_ms = 60000", "county_interval_ms = 1000");
        for port in ["7580", "7581", "7401", "7402", "7403"] {
            t = t.replace(&format!("0.0.0.0:{port}"), "127.0.0.1:0");
        }
        assert!(
            !t.contains("0.0.0.0"),
            "{name}: an address the test does not adjust"
        );
        if name != "county.toml" {
            t.push_str(&format!(
                "\n[[writers]]\nname = \"clerk\"\ntoken_sha256 = \"{token_hash}\"\n"
            ));
        }
        std::fs::write(adjusted.join(name), t).unwrap();
    }
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/setup.sh"))
        .env("GONGKAI", env!("CARGO_BIN_EXE_gongkai"))
        .env("ETC", &etc)
        .env("CONFIG", &adjusted)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup.sh: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("county ready"));
    check_isolation(&etc);
    County {
        dir,
        etc,
        county_port,
    }
}

/// What the systemd units and compose mounts give each service must hold
/// its own secrets only: each department's directory (and the county's) is
/// private to its owner and holds no other service's key; `public/` holds
/// no private key at all.
fn check_isolation(etc: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    for d in DEPTS {
        let dir = etc.join(d);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700,
            "{d}"
        );
        assert_eq!(
            names(&dir),
            [
                "node.toml",
                "push.crt",
                "push.key",
                "signing.key",
                "signing.key.vkey",
                "tls.crt",
                "tls.key"
            ],
            "{d}"
        );
    }
    assert_eq!(
        names(&etc.join("county")),
        [
            "county.toml",
            "log.key",
            "log.key.vkey",
            "tls.crt",
            "tls.key",
            "witness.key",
            "witness.key.vkey"
        ]
    );
    for f in names(&etc.join("public")) {
        let t = std::fs::read_to_string(etc.join("public").join(&f)).unwrap();
        assert!(!t.contains("PRIVATE"), "public/{f} holds a private key");
    }
    assert_eq!(
        names(&etc.join("public")),
        [
            "ca.crt",
            "civil-affairs.vkey",
            "county-log.vkey",
            "county-witness.vkey",
            "education.vkey",
            "finance.vkey"
        ]
    );
}

fn publish(c: &County, node: &str, origin: &str, item: &str) {
    let f = c.dir.path().join(format!("{item}.txt"));
    std::fs::write(&f, format!("{item} 的正文")).unwrap();
    let o = c.cli(
        node,
        Some(origin),
        &[
            "publish",
            "--item",
            item,
            "--matter",
            "budget",
            "--title",
            item,
            "--file",
            f.to_str().unwrap(),
            "--date-formed",
            &common::today(),
        ],
    );
    expect_code(&o, 0);
}

#[test]
fn a_county_with_tls_replicates_cosigns_verifies_exports_and_audits() {
    let c = set_up();
    let (county, portal) = c.start_county();
    let mut nodes = Vec::new();
    for d in DEPTS {
        let p = Proc::start(&[
            "node",
            "--config",
            c.etc.join(format!("{d}/node.toml")).to_str().unwrap(),
        ]);
        let url = p.wait_for("serving on ").replace("127.0.0.1", "localhost");
        nodes.push((p, url));
    }
    let finance = format!("{DOMAIN}/finance");
    let node = nodes[0].1.clone();
    let matter = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/matter.toml");
    // The node printed its address once its log was open; it answers now.
    let start = Instant::now();
    loop {
        let o = c.cli(&node, Some(&finance), &["status"]);
        if o.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{}",
            text(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    expect_code(
        &c.cli(
            &node,
            Some(&finance),
            &[
                "matter",
                "define",
                "--id",
                "budget",
                "--file",
                matter.to_str().unwrap(),
            ],
        ),
        0,
    );
    publish(&c, &node, &finance, "budget-2026");
    c.wait_cosigned(&finance, 3);
    // The county log takes the cosigned checkpoint into a leaf (every
    // second in this test).
    let start = Instant::now();
    loop {
        let o = c.cli(&c.county_url(), None, &["county", "status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v["county_size"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no county leaf");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The aggregator stops; the department keeps publishing; the county
    // catches up after its restart.
    drop(county);
    publish(&c, &node, &finance, "accounts-2025");
    publish(&c, &node, &finance, "notice-1");
    let (_county, portal2) = c.start_county();
    c.wait_cosigned(&finance, 5);
    let _ = portal;

    // A reader trusts the department keys, the county witness and the
    // county log key (so `audit` checks the export's county/).
    let vkey = |k: &str| {
        std::fs::read_to_string(c.etc.join(format!("public/{k}.vkey")))
            .unwrap()
            .trim()
            .to_owned()
    };
    let mut trust = format!(
        "witnesses = [\"{}\"]\nquorum = 1\ncounty_log = \"{}\"\n",
        vkey("county-witness"),
        vkey("county-log")
    );
    for d in DEPTS {
        trust.push_str(&format!(
            "\n[[log]]\norigin = \"{DOMAIN}/{d}\"\nvkeys = [\"{}\"]\n",
            vkey(d)
        ));
    }
    let trust_file = c.dir.path().join("trust.toml");
    std::fs::write(&trust_file, trust).unwrap();
    let trust_path = trust_file.to_str().unwrap();
    for d in DEPTS {
        c.wait_cosigned(&format!("{DOMAIN}/{d}"), 1);
    }
    let v = c.cli(
        &c.county_url(),
        None,
        &["verify", "--all", "--trust", trust_path],
    );
    expect_code(&v, 0);

    let export = c.dir.path().join("export");
    expect_code(
        &c.cli(
            &c.county_url(),
            Some(&finance),
            &["export", "--out", export.to_str().unwrap()],
        ),
        0,
    );
    let clean = gongkai(&[
        "audit",
        export.to_str().unwrap(),
        "--trust",
        trust_path,
        "--json",
    ]);
    expect_code(&clean, 0);
    let report: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert!(
        report["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["county"] == true
                && l["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|f| f["kind"] != "county-unverified")),
        "{report}"
    );

    // One flipped byte in an entry bundle is found.
    let bundle = find_file(&export, "entries").expect("an entry bundle in the export");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x01;
    std::fs::write(&bundle, bytes).unwrap();
    let audit = gongkai(&["audit", export.to_str().unwrap(), "--trust", trust_path]);
    expect_code(&audit, 1);

    // The portal shows the county's departments.
    let (status, home) = common::demo::http_get(&format!("{portal2}/"));
    assert_eq!(status, 200);
    assert!(
        home.contains("某某县财政局") && home.contains("某某县民政局"),
        "{home}"
    );
}

/// The first file under a directory whose path contains `part`.
fn find_file(dir: &Path, part: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, part) {
                return Some(f);
            }
        } else if p.to_string_lossy().contains(part) {
            return Some(p);
        }
    }
    None
}
