//! A real `kill -9` test: a child process (this test executable re-run in
//! child mode) appends from several threads and prints each acknowledged
//! index; the parent SIGKILLs it at a random moment, reopens the journal and
//! checks that every printed index holds the expected bytes. Several rounds
//! continue the same journal, so recovery after a kill is exercised too.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Rng, clock_seed, entry};
use gongkai_store::{Journal, JournalOptions};

const CHILD_ENV: &str = "GONGKAI_STORE_KILL9_CHILD";
const ROUND_ENV: &str = "GONGKAI_STORE_KILL9_ROUND";
const ORIGIN: &str = "example.gov.cn/county/civil-affairs";
const THREADS: u64 = 4;

fn opts() -> JournalOptions {
    JournalOptions {
        reserve_bytes: 1 << 20,
        ..JournalOptions::default()
    }
}

fn seed(round: u64, thread: u64, seq: u64) -> u64 {
    round << 48 | thread << 40 | seq
}

fn len_for(seq: u64) -> usize {
    67 + (seq as usize * 977) % 8000
}

/// Child mode: a no-op in a normal test run.
#[test]
fn kill9_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let path = Path::new(&path);
    let j = if path.exists() {
        Journal::open(path, ORIGIN, opts()).unwrap()
    } else {
        Journal::create(path, ORIGIN, opts()).unwrap()
    };
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let j = j.clone();
            s.spawn(move || {
                let mut seq = 0u64;
                // Bounded, in case the parent dies without killing us.
                while started.elapsed() < Duration::from_secs(30) {
                    let e = entry(seed(round, t, seq), len_for(seq));
                    let index = j.append_one(&e).unwrap();
                    // Printed only after append returned: acknowledged.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {index} {t} {seq}").unwrap();
                    out.flush().unwrap();
                    seq += 1;
                }
            });
        }
    });
}

#[test]
fn kill9_never_loses_acknowledged_entries() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let s = clock_seed();
    eprintln!("kill -9 test seed {s}");
    let mut rng = Rng(s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let exe = std::env::current_exe().unwrap();
    // (index, bytes) of every entry acknowledged in any round.
    let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut lines = Vec::new();
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                // A line cut by the kill has no newline: not an ack we saw.
                if line.ends_with('\n') && line.starts_with("ACK ") {
                    if lines.is_empty() {
                        let _ = tx.send(());
                    }
                    lines.push(line.clone());
                }
                line.clear();
            }
            lines
        });
        // Wait until the child acknowledges something, then kill it at a
        // random moment mid-stream.
        rx.recv_timeout(Duration::from_secs(60))
            .expect("child acknowledged nothing");
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut round_acks = 0;
        for l in lines {
            let f: Vec<u64> = l[4..]
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            let (index, t, seq) = (f[0], f[1], f[2]);
            acked.push((index, entry(seed(round, t, seq), len_for(seq))));
            round_acks += 1;
        }
        let j = Journal::open(&path, ORIGIN, opts()).unwrap();
        eprintln!(
            "round {round}: {round_acks} acks printed, journal has {} entries, {} torn bytes cut",
            j.len(),
            j.truncated_on_open()
        );
        for (index, e) in &acked {
            assert_eq!(&j.read(*index).unwrap(), e, "round {round} index {index}");
        }
    }
    let mut indexes: Vec<u64> = acked.iter().map(|(i, _)| *i).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), acked.len(), "no index acknowledged twice");
}
