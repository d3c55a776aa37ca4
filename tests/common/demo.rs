//! Running `gongkai demo` from tests: a whole county on free ports.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `gongkai demo` (killed on drop).
pub struct Demo(pub Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the demo and returns it with its JSON line.
pub fn start(dir: &std::path::Path, port_base: u16) -> (Demo, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args([
            "--json",
            "demo",
            "--dir",
            dir.to_str().unwrap(),
            "--port-base",
        ])
        .arg(port_base.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "the demo exited before it was ready");
    (Demo(child), serde_json::from_str(&line).unwrap())
}

pub fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw)
}

pub fn this_year() -> i32 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    gongkai_core::date::Date::from_unix_ms_cst(ms)
        .unwrap()
        .year()
}

pub fn sigint(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// A free block of ports for the demo (it uses base … base + 83).
pub fn port_base() -> u16 {
    // Pick a base from the OS's ephemeral choice, then check the few ports
    // the demo needs; retry on a clash.
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        let base = p.saturating_sub(100) / 100 * 100;
        if !(20_000..=60_000).contains(&base) {
            continue;
        }
        let free = [0, 1, 2, 3, 80, 81, 82, 83]
            .iter()
            .all(|o| std::net::TcpListener::bind(("127.0.0.1", base + o)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free ports for the demo");
}
