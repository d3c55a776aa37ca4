//! The county aggregator with real processes: three department nodes and
//! an aggregator, all the real `gongkai` binary, each node talking to the
//! county through a TCP proxy this test controls.
//!
//! 1. under write load every log reaches the county and is cosigned;
//! 2. the aggregator is stopped while the nodes keep taking writes, then
//!    restarted: it catches up with no gap (mirror size = node size, equal
//!    roots);
//! 3. a node is `kill -9`ed mid-replication and restarted: it resumes;
//! 4. the proxy cuts one node's link: writes continue, the lag grows, and
//!    replication resumes once the link heals;
//! 5. a lying department (its data directory replaced by a different
//!    history signed with the same key): the county records evidence,
//!    refuses to cosign, and the evidence file verifies with the
//!    department's vkey (and not with another's).
//!
//! The test never relies on timing: it polls with generous deadlines.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COUNTY: &str = "gongkai.example/510122/county";
const WITNESS: &str = "gongkai.example/510122/county-witness";
const DEADLINE: Duration = Duration::from_secs(180);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gongkai")
}

fn gongkai(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("GONGKAI_SERVER")
        .env_remove("GONGKAI_TOKEN")
        .env_remove("GONGKAI_ORIGIN")
        .output()
        .expect("the gongkai binary runs")
}

fn ok(args: &[&str]) -> String {
    let o = gongkai(args);
    assert!(
        o.status.success(),
        "gongkai {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("JSON output")
}

fn origin(n: usize) -> String {
    format!("gongkai.example/510122/dept{n}")
}

/// `(token, sha256 hex)` from `gongkai token`.
fn token() -> (String, String) {
    let out = ok(&["token", "--name", "t"]);
    let mut lines = out.lines().map(str::trim);
    let token = lines
        .by_ref()
        .skip_while(|l| !l.starts_with("token"))
        .nth(1)
        .unwrap()
        .to_owned();
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("token_sha256 = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    (token, hash)
}

/// A server process whose address is read from its stderr ("serving on").
struct Proc {
    child: Child,
    addr: SocketAddr,
}

fn spawn(args: &[&str], log: &Path) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.args(args).env("RUST_LOG", "info");
    let served = common::serve_command(cmd, Some(log)).expect("the server printed its address");
    let addr = served
        .url
        .strip_prefix("http://")
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("an http address, not {}", served.url));
    Proc {
        child: served.child,
        addr,
    }
}

impl Proc {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM and wait (graceful).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// SIGKILL.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to the county's current address that can cut the link.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn new(target: Arc<Mutex<SocketAddr>>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (c, k) = (Arc::clone(&cut), Arc::clone(&conns));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let to = *target.lock().unwrap();
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                for s in [&client, &server] {
                    k.lock().unwrap().push(s.try_clone().unwrap());
                }
                let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c2, mut s2) = (client, server);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy { addr, cut, conns }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            for s in self.conns.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

struct Dept {
    n: usize,
    config: PathBuf,
    token: String,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Dept {
    fn url(&self) -> String {
        self.proc.as_ref().unwrap().url()
    }

    fn start(&mut self) {
        let log = self.dir.join("node.log");
        self.proc = Some(spawn(
            &["node", "--config", self.config.to_str().unwrap()],
            &log,
        ));
    }

    fn status(&self) -> serde_json::Value {
        json(&[
            "status",
            "--json",
            "--server",
            &self.url(),
            "--origin",
            &origin(self.n),
        ])
    }

    fn size(&self) -> u64 {
        self.status()["size"].as_u64().unwrap()
    }

    /// Appends `events` events (in batches) with the bench client.
    fn write(&self, events: usize) {
        ok(&[
            "bench",
            "append",
            "--node",
            &self.url(),
            "--token",
            &self.token,
            "--clients",
            "2",
            "--events",
            &events.to_string(),
            "--batch",
            "50",
            "--scratch",
            self.dir.to_str().unwrap(),
        ]);
    }
}

fn county_status(url: &str) -> serde_json::Value {
    json(&["county", "status", "--json", "--server", url])
}

fn department<'a>(status: &'a serde_json::Value, o: &str) -> &'a serde_json::Value {
    status["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["origin"] == o)
        .unwrap()
}

/// Waits until the county cosigned exactly the node's current size.
fn wait_caught_up(county: &str, d: &Dept) {
    let start = Instant::now();
    loop {
        let size = d.size();
        let s = county_status(county);
        let dep = department(&s, &origin(d.n));
        if dep["cosigned_size"].as_u64() == Some(size)
            && dep["mirrored_size"].as_u64() == Some(size)
        {
            // No gap: the county's cosigned root is the node's root.
            let ours = ok(&[
                "checkpoint",
                "--json",
                "--server",
                &d.url(),
                "--origin",
                &origin(d.n),
            ]);
            let theirs = ok(&[
                "checkpoint",
                "--json",
                "--server",
                county,
                "--origin",
                &origin(d.n),
            ]);
            let root = |t: &str| {
                let v: serde_json::Value = serde_json::from_str(t).unwrap();
                (v["size"].clone(), v["root"].clone())
            };
            if root(&ours) == root(&theirs) {
                return;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "county did not catch up with {}: node {size}, county {dep}",
            origin(d.n)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn three_nodes_and_a_county_survive_outages_and_catch_a_liar() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p = |name: &str| d.join(name).to_str().unwrap().to_owned();

    // Keys and the county config.
    ok(&["keygen", "--name", COUNTY, "--out", &p("county-log.key")]);
    ok(&[
        "keygen",
        "--name",
        WITNESS,
        "--cosigner",
        "--out",
        &p("county-witness.key"),
    ]);
    let witness_vkey = std::fs::read_to_string(d.join("county-witness.key.vkey")).unwrap();
    let (admin, admin_hash) = token();
    let mut county_toml = format!(
        "origin = \"{COUNTY}\"\nlog_key = {:?}\nwitness_key = {:?}\ndata_dir = {:?}\n\
         listen = \"127.0.0.1:0\"\nplaintext = true\nadmin_token_sha256 = \"{admin_hash}\"\n\
         county_interval_ms = 1000\nrecosign_interval_ms = 2000\ncache_bytes = 4194304\n",
        p("county-log.key"),
        p("county-witness.key"),
        p("county")
    );
    let target = Arc::new(Mutex::new("127.0.0.1:9".parse::<SocketAddr>().unwrap()));
    let mut depts = Vec::new();
    let mut proxies = Vec::new();
    for n in 0..3 {
        let dir = d.join(format!("dept{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("dept.key");
        ok(&[
            "keygen",
            "--name",
            &origin(n),
            "--out",
            key.to_str().unwrap(),
        ]);
        let vkey = std::fs::read_to_string(dir.join("dept.key.vkey")).unwrap();
        let (writer, writer_hash) = token();
        let (push, push_hash) = token();
        std::fs::write(dir.join("push.token"), &push).unwrap();
        county_toml.push_str(&format!(
            "[[departments]]\norigin = \"{}\"\nvkey = \"{}\"\npush_token_sha256 = \"{push_hash}\"\n",
            origin(n),
            vkey.trim()
        ));
        let proxy = Proxy::new(Arc::clone(&target));
        let config = dir.join("node.toml");
        std::fs::write(
            &config,
            format!(
                "origin = \"{}\"\ndepartment = \"某某县第{n}局\"\ndivision_code = \"510122\"\n\
                 data_dir = {:?}\nkey = {:?}\nlisten = \"127.0.0.1:0\"\nplaintext = true\n\
                 checkpoint_interval_ms = 200\ncache_bytes = 4194304\n\
                 [[writers]]\nname = \"clerk\"\ntoken_sha256 = \"{writer_hash}\"\n\
                 [county]\naddress = \"http://{}\"\ntoken_file = {:?}\nwitness_vkey = \"{}\"\n\
                 interval_ms = 500\nmin_backoff_ms = 100\nmax_backoff_ms = 1000\n",
                origin(n),
                dir.join("data"),
                key,
                proxy.addr,
                dir.join("push.token"),
                witness_vkey.trim()
            ),
        )
        .unwrap();
        ok(&["node", "init", "--config", config.to_str().unwrap()]);
        proxies.push(proxy);
        depts.push(Dept {
            n,
            config,
            token: writer,
            dir,
            proc: None,
        });
    }
    let county_config = d.join("county.toml");
    std::fs::write(&county_config, county_toml).unwrap();
    let county_args = ["aggregator", "--config", county_config.to_str().unwrap()];
    ok(&[
        "aggregator",
        "--config",
        county_config.to_str().unwrap(),
        "--check",
    ]);
    let county_log = d.join("county.log");
    let mut county = spawn(&county_args, &county_log);
    *target.lock().unwrap() = county.addr;
    for dept in &mut depts {
        dept.start();
    }

    // 1. Everything reaches the county.
    for dept in &depts {
        dept.write(600);
    }
    for dept in &depts {
        wait_caught_up(&county.url(), dept);
    }

    // 2. The county goes away under write load and comes back.
    county.stop();
    std::thread::scope(|s| {
        for dept in &depts {
            s.spawn(|| dept.write(800));
        }
    });
    for dept in &depts {
        let st = dept.status();
        assert!(st["replication_lag"].as_u64().unwrap() > 0, "{st}");
    }
    county = spawn(&county_args, &county_log);
    *target.lock().unwrap() = county.addr;
    for dept in &depts {
        wait_caught_up(&county.url(), dept);
    }

    // 3. kill -9 a node in the middle of replication; it resumes.
    {
        let dept = &mut depts[0];
        let url = dept.url();
        let token = dept.token.clone();
        let writer = std::thread::spawn(move || {
            // The node dies under this load; the bench may fail.
            let _ = gongkai(&[
                "bench",
                "append",
                "--node",
                &url,
                "--token",
                &token,
                "--clients",
                "2",
                "--events",
                "5000",
                "--batch",
                "50",
            ]);
        });
        let start = Instant::now();
        while dept.size() < 1500 && start.elapsed() < DEADLINE {
            std::thread::sleep(Duration::from_millis(20));
        }
        dept.proc.take().unwrap().kill9();
        let _ = writer.join();
        dept.start();
        dept.write(300);
    }
    wait_caught_up(&county.url(), &depts[0]);

    // 4. The link of node 1 is cut: writes go on, then it catches up.
    proxies[1].set_cut(true);
    depts[1].write(500);
    let st = depts[1].status();
    assert!(st["replication_lag"].as_u64().unwrap() >= 500, "{st}");
    proxies[1].set_cut(false);
    wait_caught_up(&county.url(), &depts[1]);

    // 5. A lying department: node 2's data is replaced by another history
    // signed with the same key (the key's signed-size record goes too).
    let liar = &mut depts[2];
    let cosigned_before = department(&county_status(&county.url()), &origin(2))["cosigned_size"]
        .as_u64()
        .unwrap();
    liar.proc.take().unwrap().stop();
    std::fs::remove_dir_all(liar.dir.join("data")).unwrap();
    std::fs::remove_file(liar.dir.join("dept.key.state")).unwrap();
    ok(&["node", "init", "--config", liar.config.to_str().unwrap()]);
    liar.start();
    liar.write(300);
    let start = Instant::now();
    let evidence_id = loop {
        let s = county_status(&county.url());
        let dep = department(&s, &origin(2));
        if dep["evidence_count"].as_u64().unwrap_or(0) > 0 {
            assert!(
                dep["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "evidence"),
                "{dep}"
            );
            assert!(!dep["suspended"].as_str().unwrap().is_empty(), "{dep}");
            assert_eq!(
                dep["cosigned_size"].as_u64(),
                Some(cosigned_before),
                "{dep}"
            );
            let list = json(&[
                "county",
                "evidence",
                "list",
                "--json",
                "--server",
                &county.url(),
            ]);
            break list["evidence"][0]["id"].as_str().unwrap().to_owned();
        }
        assert!(start.elapsed() < DEADLINE, "no evidence recorded: {dep}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let file = d.join("evidence.txt");
    ok(&[
        "county",
        "evidence",
        "show",
        &evidence_id,
        "--out",
        file.to_str().unwrap(),
        "--server",
        &county.url(),
    ]);
    let vkey2 = liar.dir.join("dept.key.vkey");
    let out = ok(&[
        "county",
        "evidence",
        "verify",
        file.to_str().unwrap(),
        "--vkey",
        vkey2.to_str().unwrap(),
    ]);
    assert!(out.contains("verified"), "{out}");
    let other = depts[0].dir.join("dept.key.vkey");
    let o = gongkai(&[
        "county",
        "evidence",
        "verify",
        file.to_str().unwrap(),
        "--vkey",
        other.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Cosigning stays refused: the liar's size grows, the cosigned size not.
    std::thread::sleep(Duration::from_secs(2));
    let dep = department(&county_status(&county.url()), &origin(2)).clone();
    assert_eq!(
        dep["cosigned_size"].as_u64(),
        Some(cosigned_before),
        "{dep}"
    );
    // The honest departments are unaffected.
    for dept in &depts[..2] {
        wait_caught_up(&county.url(), dept);
    }
    let _ = admin;

    for dept in &mut depts {
        if let Some(p) = dept.proc.take() {
            p.stop();
        }
    }
    county.stop();
}
