//! Shared helpers of the end-to-end tests: run the real `gongkai` binary,
//! start real department nodes on port 0 (`gongkai node --config`), write
//! through the CLI, wait for checkpoints.

#![allow(dead_code)]

pub mod demo;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub const ORIGIN: &str = "gongkai.example/510122/finance";
pub const TOKEN: &str = "test-writer-token-0123456789";

/// Runs `gongkai` with `args` and no GONGKAI_* environment.
pub fn gongkai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(args)
        .env_remove("GONGKAI_SERVER")
        .env_remove("GONGKAI_TOKEN")
        .env_remove("GONGKAI_ORIGIN")
        .output()
        .expect("the gongkai binary runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Panics with the command's output unless it exited with `code`.
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Today in China Standard Time.
pub fn today() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    gongkai_core::date::Date::from_unix_ms_cst(ms)
        .unwrap()
        .to_string()
}

/// Makes a department key file at `path` (0600) and returns its vkey.
pub fn keygen(path: &Path, name: &str, cosigner: bool) -> String {
    let mut args = vec!["keygen", "--name", name, "--out", path.to_str().unwrap()];
    if cosigner {
        args.push("--cosigner");
    }
    let o = gongkai(&args);
    expect_code(&o, 0);
    let mut v = path.as_os_str().to_os_string();
    v.push(".vkey");
    std::fs::read_to_string(PathBuf::from(v))
        .unwrap()
        .trim()
        .to_owned()
}

/// A server process a test started: its address, and everything it has
/// printed on stderr so far (a thread keeps reading it, so the process
/// never blocks on a full pipe).
pub struct Served {
    pub child: Child,
    /// The address it printed (`… serving on URL`).
    pub url: String,
    pub stderr: Arc<Mutex<String>>,
}

/// Spawns `cmd` with stderr read here, and waits until the process prints
/// `… serving on URL`. Each stderr line is also appended to `log`, if
/// given. If the process exits first, or prints no address within 120 s,
/// returns what it printed (and its exit status).
pub fn serve_command(mut cmd: Command, log: Option<&Path>) -> Result<Served, String> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut file = log.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    });
    let seen = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = &mut file {
                    let _ = writeln!(f, "{line}");
                }
                if let Some(rest) = line.split(" serving on ").nth(1) {
                    let _ = tx.send(rest.trim().to_owned());
                }
                let mut s = seen.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
    }
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(url) => Ok(Served {
            child,
            url,
            stderr: seen,
        }),
        // The reader ended: the process closed stderr, so it is exiting.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait().unwrap();
            Err(format!("exit {status}: {}", seen.lock().unwrap()))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("no address after 120 s: {}", seen.lock().unwrap()))
        }
    }
}

/// Starts `gongkai ARGS` (a node or an aggregator on port 0) and returns it
/// with the address it prints once it serves.
pub fn serve(args: &[&str], what: &str) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gongkai"));
    cmd.args(args).env("RUST_LOG", "warn");
    let served =
        serve_command(cmd, None).unwrap_or_else(|e| panic!("the {what} printed no address: {e}"));
    (served.child, served.url)
}

/// A running department node (killed on drop).
pub struct Node {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
}

impl Node {
    /// Creates a log in `dir` with the key file `key` and starts a node on
    /// it (port 0).
    pub fn start(dir: &Path, key: &Path) -> Node {
        Node::start_with(dir, key, "")
    }

    /// As [`Node::start`], replicating to `county` (which must list this
    /// department: [`County::start`]).
    pub fn start_with_county(dir: &Path, key: &Path, county: &County) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let token = dir.join("push.token");
        std::fs::write(&token, &county.push_token).unwrap();
        Node::start_with(dir, key, &county_section(county, &token))
    }

    /// Configures replication to `county` (as [`Node::start_with_county`]
    /// would have) and restarts the node on its data.
    pub fn attach_county(&mut self, county: &County) {
        let token = self.dir.join("push.token");
        std::fs::write(&token, &county.push_token).unwrap();
        let config = self.dir.join("node.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&county_section(county, &token));
        std::fs::write(&config, text).unwrap();
        self.restart();
    }

    fn start_with(dir: &Path, key: &Path, extra: &str) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("node.toml");
        let hash: String = Sha256::digest(TOKEN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            &config,
            format!(
                "origin = \"{ORIGIN}\"\ndepartment = \"某某县财政局\"\ndivision_code = \"510122\"\n\
                 data_dir = {:?}\nkey = {:?}\nlisten = \"127.0.0.1:0\"\nplaintext = true\n\
                 checkpoint_interval_ms = 50\ncache_bytes = 4194304\n\
                 [[writers]]\nname = \"clerk\"\ntoken_sha256 = \"{hash}\"\n{extra}",
                dir.join("data"),
                key
            ),
        )
        .unwrap();
        let cfg = config.to_str().unwrap();
        expect_code(&gongkai(&["node", "init", "--config", cfg]), 0);
        let (child, url) = serve(&["node", "--config", cfg], "node");
        Node {
            child,
            url,
            dir: dir.to_path_buf(),
        }
    }

    /// Points the node at `county`'s current address (after the county was
    /// restarted on a new port) and restarts the node.
    pub fn retarget(&mut self, county: &County) {
        let config = self.dir.join("node.toml");
        let text: String = std::fs::read_to_string(&config)
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("address = ") {
                    format!("address = \"{}\"\n", county.url)
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&config, text).unwrap();
        self.restart();
    }

    /// Kills the node (`kill -9`) and starts it again on the same data
    /// and config (on a new port): the start verifies and replays the
    /// journal.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let cfg = self.dir.join("node.toml");
        let (child, url) = serve(&["node", "--config", cfg.to_str().unwrap()], "node");
        self.child = child;
        self.url = url;
    }

    /// Runs a client command against this node, with the writer token.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all = vec!["--server", &self.url, "--origin", ORIGIN];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_gongkai"))
            .args(&all)
            .env_remove("GONGKAI_SERVER")
            .env_remove("GONGKAI_ORIGIN")
            .env("GONGKAI_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    /// Runs a client command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        expect_code(&o, 0);
        text(&o.stdout)
    }

    /// Runs a client command without the writer token (a public reader).
    pub fn public(&self, args: &[&str]) -> Output {
        let mut all = vec!["--server", &self.url, "--origin", ORIGIN];
        all.extend_from_slice(args);
        gongkai(&all)
    }

    /// The log size.
    pub fn size(&self) -> u64 {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["status", "--json"])).unwrap();
        v["size"].as_u64().unwrap()
    }

    /// Waits until the node has signed a checkpoint of its whole log.
    /// Generous: a loaded machine is not a failure.
    pub fn wait_checkpoint(&self) -> u64 {
        let start = Instant::now();
        loop {
            let v: serde_json::Value =
                serde_json::from_str(&self.ok(&["status", "--json"])).unwrap();
            let (size, cp) = (
                v["size"].as_u64().unwrap(),
                v["checkpoint_size"].as_u64().unwrap(),
            );
            if size == cp {
                return size;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no checkpoint of size {size} after 120 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Defines a matter from TOML text.
    pub fn define_matter(&self, id: &str, toml: &str) {
        let f = self.dir.join(format!("matter-{id}.toml"));
        std::fs::write(&f, toml).unwrap();
        self.ok(&[
            "matter",
            "define",
            "--id",
            id,
            "--file",
            f.to_str().unwrap(),
        ]);
    }

    /// Publishes an item with `content`; returns the content digest (hex).
    pub fn publish(
        &self,
        item: &str,
        matter: &str,
        formed: &str,
        content: &str,
        extra: &[&str],
    ) -> String {
        let f = self.dir.join(format!("{item}.txt"));
        std::fs::write(&f, content).unwrap();
        let mut args = vec![
            "publish",
            "--item",
            item,
            "--matter",
            matter,
            "--title",
            "标题",
            "--file",
            f.to_str().unwrap(),
            "--date-formed",
            formed,
            "--json",
        ];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&self.ok(&args)).unwrap();
        v["content"]["digest"].as_str().unwrap().to_owned()
    }

    /// Amends an item with new `content`; returns its digest.
    pub fn amend(&self, item: &str, changed: &str, content: &str) -> String {
        let f = self.dir.join(format!("{item}-v2.txt"));
        std::fs::write(&f, content).unwrap();
        let v: serde_json::Value = serde_json::from_str(&self.ok(&[
            "amend",
            "--item",
            item,
            "--title",
            "标题（更正）",
            "--file",
            f.to_str().unwrap(),
            "--date-changed",
            changed,
            "--reason",
            "数据有误",
            "--json",
        ]))
        .unwrap();
        v["content"]["digest"].as_str().unwrap().to_owned()
    }
}

/// The `[county]` table of a node replicating to `county`.
fn county_section(county: &County, token: &Path) -> String {
    format!(
        "[county]\naddress = \"{}\"\ntoken_file = {:?}\nwitness_vkey = \"{}\"\n\
         interval_ms = 100\nmin_backoff_ms = 50\nmax_backoff_ms = 500\n",
        county.url, token, county.witness_vkey
    )
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The county log's origin and the county witness's name in the tests.
pub const COUNTY_ORIGIN: &str = "gongkai.example/510122/county";
pub const COUNTY_WITNESS: &str = "gongkai.example/510122/county-witness";
const PUSH_TOKEN: &str = "test-push-token-0123456789abcdef";
/// The county operator's admin token ([`County::start`] configures it).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A running county aggregator (killed on drop) that mirrors the one
/// department [`ORIGIN`]: a new county leaf at most every 200 ms, no
/// re-cosigning during a test (so exports are byte-identical).
pub struct County {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    /// The county log key file and its vkey.
    pub log_key: PathBuf,
    pub log_vkey: String,
    /// The county witness key file and its vkey.
    pub witness_key: PathBuf,
    pub witness_vkey: String,
    push_token: String,
    /// Extra environment of the process (kept across restarts).
    env: Vec<(String, String)>,
    /// Everything the running process printed on stderr.
    pub stderr: Arc<Mutex<String>>,
}

impl County {
    /// Makes the county's keys in `dir` and starts it (port 0) with the
    /// department [`ORIGIN`] whose key is `dept_vkey`.
    pub fn start(dir: &Path, dept_vkey: &str) -> County {
        County::start_with(dir, dept_vkey, "")
    }

    /// As [`County::start`], with `extra` appended to its config (e.g.
    /// `[[witness]]` tables).
    pub fn start_with(dir: &Path, dept_vkey: &str, extra: &str) -> County {
        County::start_env(dir, dept_vkey, extra, &[])
    }

    /// As [`County::start_with`], with extra environment for the process
    /// (e.g. `LD_PRELOAD` of a fault injector), kept across restarts.
    pub fn start_env(dir: &Path, dept_vkey: &str, extra: &str, env: &[(&str, &str)]) -> County {
        std::fs::create_dir_all(dir).unwrap();
        let log_key = dir.join("county-log.key");
        let witness_key = dir.join("county-witness.key");
        let log_vkey = keygen(&log_key, COUNTY_ORIGIN, false);
        let witness_vkey = keygen(&witness_key, COUNTY_WITNESS, true);
        let config = dir.join("county.toml");
        std::fs::write(
            &config,
            format!(
                "origin = \"{COUNTY_ORIGIN}\"\nlog_key = {log_key:?}\nwitness_key = {witness_key:?}\n\
                 data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nplaintext = true\n\
                 county_interval_ms = 200\nrecosign_interval_ms = 3600000\ncache_bytes = 4194304\n\
                 admin_token_sha256 = \"{}\"\n\
                 [[departments]]\norigin = \"{ORIGIN}\"\nvkey = \"{dept_vkey}\"\n\
                 push_token_sha256 = \"{}\"\n{extra}",
                dir.join("data"),
                sha256_hex(ADMIN_TOKEN),
                sha256_hex(PUSH_TOKEN)
            ),
        )
        .unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let served = County::spawn(&config, &env);
        County {
            child: served.child,
            url: served.url,
            stderr: served.stderr,
            dir: dir.to_path_buf(),
            log_key,
            log_vkey,
            witness_key,
            witness_vkey,
            push_token: PUSH_TOKEN.to_owned(),
            env,
        }
    }

    fn spawn(config: &Path, env: &[(String, String)]) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gongkai"));
        cmd.args(["aggregator", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)));
        serve_command(cmd, None)
            .unwrap_or_else(|e| panic!("the aggregator printed no address: {e}"))
    }

    /// Kills the county (`kill -9`) and starts it again on the same data
    /// and config (on a new port; nodes configured with the old address
    /// lose it).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let served = County::spawn(&self.dir.join("county.toml"), &self.env);
        self.child = served.child;
        self.url = served.url;
        self.stderr = served.stderr;
    }

    /// Runs a read command against the county for [`ORIGIN`].
    pub fn public(&self, args: &[&str]) -> Output {
        let mut all = vec!["--server", &self.url, "--origin", ORIGIN];
        all.extend_from_slice(args);
        gongkai(&all)
    }

    /// Waits until the county cosigned `size` entries of [`ORIGIN`] and
    /// holds all their public content.
    pub fn wait_cosigned(&self, size: u64) {
        let start = Instant::now();
        loop {
            let o = gongkai(&["county", "status", "--json", "--server", &self.url]);
            expect_code(&o, 0);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let d = v["departments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["origin"] == ORIGIN)
                .cloned()
                .unwrap();
            if d["cosigned_size"].as_u64() == Some(size) && d["missing_content"].as_u64() == Some(0)
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the county did not cosign {size}: {d}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for County {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A public, proactive, non-periodic matter with a 20-working-day deadline.
pub const MATTER: &str = "category = \"财政预决算\"\nlevel1 = \"财政预决算\"\nlevel2 = \"部门预算\"\n\
elements = [\"部门预算报告\"]\nlegal_basis = \"《预算法》第十四条\"\ndeadline_working_days = 20\n\
responsible_body = \"县财政局\"\nchannels = [\"县政府门户网站\"]\naudience = \"public\"\n\
mode = \"proactive\"\nperiodicity = \"none\"\n";

/// A matter whose audience is one village (restricted content).
pub const GROUP_MATTER: &str = "category = \"社会救助\"\nlevel1 = \"社会救助\"\nlevel2 = \"低保\"\n\
elements = [\"低保名单\"]\nlegal_basis = \"《社会救助暂行办法》\"\ndeadline_working_days = 20\n\
responsible_body = \"县民政局\"\nchannels = [\"村务公开栏\"]\naudience = \"group\"\n\
audience_group = \"某某村村民\"\nmode = \"proactive\"\nperiodicity = \"none\"\n";

/// Writes a trust file and returns its path.
pub fn trust_file(
    dir: &Path,
    name: &str,
    vkeys: &[&str],
    witnesses: &[&str],
    quorum: Option<usize>,
) -> PathBuf {
    let q = |v: &[&str]| {
        v.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!("witnesses = [{}]\n", q(witnesses));
    if let Some(n) = quorum {
        s.push_str(&format!("quorum = {n}\n"));
    }
    s.push_str(&format!(
        "[[log]]\norigin = \"{ORIGIN}\"\nvkeys = [{}]\n",
        q(vkeys)
    ));
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// Reads an HTTP request's head from `s` (a test's plain-HTTP server) and
/// returns the path of its request line (`/` if there is none).
pub fn request_path(s: &mut std::net::TcpStream) -> String {
    use std::io::Read as _;
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    let line = head.lines().next().unwrap_or("");
    line.split(' ').nth(1).unwrap_or("/").to_owned()
}
