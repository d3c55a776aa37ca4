//! `gongkai bench county-memory`: the county aggregator's resident memory
//! while it mirrors many departments' logs, measured on a real
//! `gongkai aggregator` process (a child of this one, so its memory is its
//! own): `--departments` logs of `--entries` entries each are signed here
//! and pushed as nodes catching up would (256-entry packages, a checkpoint
//! every 16,384), `--parallel` departments at a time. Every entry is a
//! `request_received` with a fresh id, so every entry adds a catalog
//! record: the case where a whole catalog in memory would grow fastest.
//!
//! Reported: the resident set when the county starts empty, its peak while
//! pushing, once idle with everything mirrored, and after a restart over
//! the full data (with the time the restart takes: every mirror's journal
//! is verified again at open).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::event::{Kind, pb};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::TreeState;
use gongkai_core::note::KeyType;
use gongkai_core::types::{KeyName, Origin};
use gongkai_core::writer::LogWriter;
use gongkai_proto::CountyClient;
use gongkai_proto::v1;

use crate::bench_county::{key, origin};

/// `gongkai bench county-memory`.
#[derive(Debug, Args)]
pub struct MemoryBenchArgs {
    /// Departments the county mirrors.
    #[arg(long, default_value_t = 100)]
    departments: usize,
    /// Entries in each department's log.
    #[arg(long, default_value_t = 100_000)]
    entries: usize,
    /// Departments pushed at the same time.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// The county's `cache_bytes` (its sled cache, shared by the mirrors).
    #[arg(long, default_value_t = 16 << 20)]
    cache_bytes: u64,
    /// Directory for the county's data (default: a temporary directory,
    /// removed afterwards). Put it on the disk a county would use.
    #[arg(long)]
    dir: Option<PathBuf>,
}

const COUNTY: &str = "bench.example/000000/county";
const WITNESS: &str = "bench.example/000000/county-witness";
const TOKEN: &str = "bench-token";
/// A checkpoint this often, as a catching-up node sends them.
const STEP: usize = 16_384;
const PACKAGE: usize = 256;

/// Runs `gongkai bench county-memory`.
///
/// # Errors
/// Setup failures, a county that does not start, or a refused push.
pub fn run(a: &MemoryBenchArgs) -> Result<()> {
    let tmp;
    let dir = if let Some(d) = &a.dir {
        std::fs::create_dir_all(d)?;
        d.clone()
    } else {
        tmp = tempfile::tempdir()?;
        tmp.path().to_owned()
    };
    let config = write_config(&dir, a)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;

    let mut county = County::start(&config, &dir)?;
    let url = county.url.clone();
    runtime.block_on(county.ready())?;
    let empty = rss_kib(county.pid())?;
    eprintln!(
        "county started (pid {}), {} KiB resident",
        county.pid(),
        empty
    );

    let peak = Arc::new(AtomicU64::new(empty));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (Arc::clone(&peak), Arc::clone(&done), county.pid());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let t = Instant::now();
    let pushed = runtime.block_on(push_all(&url, a));
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    pushed?;
    let push_secs = t.elapsed().as_secs_f64();
    let total = (a.departments * a.entries) as f64;
    // Idle: what the county keeps once the catch-up is over.
    std::thread::sleep(Duration::from_secs(15));
    let idle = rss_kib(county.pid())?;
    let disk = dir_bytes(&dir.join("county"));
    county.stop();

    let t = Instant::now();
    let mut county = County::start(&config, &dir)?;
    runtime.block_on(county.ready())?;
    let open_secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let reopened = rss_kib(county.pid())?;
    county.stop();

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "county aggregator resident memory, {} departments × {} entries ({} in all; a catalog record per entry), {} pushed at a time, cache_bytes {}",
        a.departments, a.entries, total, a.parallel, a.cache_bytes
    );
    println!(
        "  started, empty                   {:>10.1} MiB",
        mib(empty)
    );
    println!(
        "  peak while pushing               {:>10.1} MiB",
        mib(peak.load(Ordering::Relaxed))
    );
    println!("  idle, all mirrored               {:>10.1} MiB", mib(idle));
    println!(
        "  after a restart over the data    {:>10.1} MiB",
        mib(reopened)
    );
    println!(
        "  push rate                        {:>10.0} entries/s ({push_secs:.0} s)",
        total / push_secs
    );
    println!(
        "  restart until serving            {open_secs:>10.1} s (every journal verified again)"
    );
    println!(
        "  data on disk                     {:>10.1} MiB ({:.0} bytes per entry)",
        disk as f64 / 1_048_576.0,
        disk as f64 / total
    );
    Ok(())
}

/// Keys, and a county config naming every department.
fn write_config(dir: &Path, a: &MemoryBenchArgs) -> Result<PathBuf> {
    let log_key = dir.join("county-log.key");
    let witness_key = dir.join("county-witness.key");
    if !log_key.exists() {
        crate::keyfile::write_key(
            &log_key,
            &KeyName::new(COUNTY)?,
            KeyType::Ed25519,
            &SigningKey::from_seed([100; 32]),
            false,
        )?;
    }
    if !witness_key.exists() {
        crate::keyfile::write_key(
            &witness_key,
            &KeyName::new(WITNESS)?,
            KeyType::CosignatureV1,
            &SigningKey::from_seed([101; 32]),
            false,
        )?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut text = format!(
        "origin = \"{COUNTY}\"\nlog_key = {log_key:?}\nwitness_key = {witness_key:?}\n\
         data_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\nplaintext = true\n\
         county_interval_ms = 1000\ncache_bytes = {}\n",
        dir.join("county"),
        a.cache_bytes
    );
    for n in 0..a.departments {
        let vkey = Checkpoint::log_verifier_key(&Origin::new(&origin(n))?, &key(n).public_key());
        text.push_str(&format!(
            "[[departments]]\norigin = \"{}\"\nvkey = \"{vkey}\"\npush_token_sha256 = \"{}\"\nmax_pushes_per_sec = 0\n",
            origin(n),
            crate::node::sha256_hex(TOKEN)
        ));
    }
    let path = dir.join("county.toml");
    crate::write_file(&path, text.as_bytes(), 0o600)?;
    Ok(path)
}

/// The `gongkai aggregator` child process.
struct County {
    child: Child,
    url: String,
}

impl County {
    fn start(config: &Path, dir: &Path) -> Result<County> {
        let text = std::fs::read_to_string(config)?;
        let listen = text
            .lines()
            .find_map(|l| l.strip_prefix("listen = \""))
            .and_then(|l| l.strip_suffix('"'))
            .context("no listen address in the bench config")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("county.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["aggregator", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start gongkai aggregator")?;
        Ok(County {
            child,
            url: format!("http://{listen}"),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn ready(&mut self) -> Result<()> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3600) {
            if let Some(status) = self.child.try_wait()? {
                bail!("the county exited ({status}); see county.log in the bench directory");
            }
            if let Ok(mut c) = CountyClient::connect(self.url.clone()).await
                && c.get_county_status(v1::GetCountyStatusRequest {})
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the county did not start within an hour")
    }

    /// SIGTERM, then waits (a clean stop, as a service manager would).
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for County {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident set of `pid`, KiB (Linux `/proc`).
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("read /proc/PID/status (this bench needs Linux)")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Pushes every department's log, `a.parallel` at a time.
async fn push_all(url: &str, a: &MemoryBenchArgs) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(AtomicU64::new(0));
    let failed: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..a.parallel.max(1) {
        let (next, progress, failed) = (
            Arc::clone(&next),
            Arc::clone(&progress),
            Arc::clone(&failed),
        );
        let (url, departments, entries) = (url.to_owned(), a.departments, a.entries);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= departments {
                    return;
                }
                if let Err(e) = push_department(&url, n, entries, &progress).await {
                    *failed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(e.context(format!("department {n}")));
                    next.store(departments, Ordering::Relaxed);
                    return;
                }
            }
        }));
    }
    let total = (a.departments * a.entries) as u64;
    let reporter = {
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            let t = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let p = progress.load(Ordering::Relaxed);
                eprintln!(
                    "  {p} of {total} entries pushed ({:.0}/s)",
                    p as f64 / t.elapsed().as_secs_f64()
                );
            }
        })
    };
    for t in tasks {
        t.await?;
    }
    reporter.abort();
    if let Some(e) = failed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        return Err(e);
    }
    Ok(())
}

/// One package of department `n`'s log, signed (on a blocking thread).
fn sign_package(
    w: &mut LogWriter,
    tree: &mut TreeState,
    n: usize,
    from: usize,
    end: usize,
    t: u64,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(end - from);
    for i in from..end {
        let kind = if i == 0 {
            Kind::Genesis(pb::Genesis {
                department: format!("基准测试第{n}局"),
                division_code: "000000".into(),
            })
        } else {
            Kind::RequestReceived(pb::RequestReceived {
                applicant: pb::ApplicantCategory::NaturalPerson as i32,
                request_id: format!("{n}-{i}"),
                date_received: crate::today(),
                subject: "请求公开2025年部门决算及说明".into(),
            })
        };
        let e = w.append(kind, t)?.into_bytes();
        tree.append_leaf(leaf_hash(&e));
        out.push(e);
    }
    Ok(out)
}

async fn push_department(url: &str, n: usize, size: usize, progress: &AtomicU64) -> Result<()> {
    let mut c = CountyClient::connect(url.to_owned())
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let o = Origin::new(&origin(n))?;
    let signer = key(n);
    let t = gongkai_node::log::now_ms().saturating_sub(3_600_000);
    let mut state = Some((LogWriter::new(o.clone(), signer.clone()), TreeState::new()));
    let mut next = 0;
    while next < size {
        let end = ((next / PACKAGE + 1) * PACKAGE).min(size);
        let (mut w, mut tree) = state.take().context("signer state")?;
        let (w, tree, entries, checkpoint) = tokio::task::spawn_blocking({
            let (o, signer) = (o.clone(), signer.clone());
            move || -> Result<_> {
                let entries = sign_package(&mut w, &mut tree, n, next, end, t)?;
                let checkpoint = if end.is_multiple_of(STEP) || end == size {
                    SignedCheckpoint::sign(&Checkpoint::new(o, end as u64, tree.root()), &signer)?
                        .to_string()
                } else {
                    String::new()
                };
                Ok((w, tree, entries, checkpoint))
            }
        })
        .await??;
        state = Some((w, tree));
        let mut req = tonic::Request::new(v1::PushRequest {
            origin: origin(n),
            start: next as u64,
            entries,
            checkpoint,
        });
        if let Ok(v) = format!("Bearer {TOKEN}").parse() {
            req.metadata_mut().insert("authorization", v);
        }
        c.push(req)
            .await
            .with_context(|| format!("push [{next}, {end})"))?;
        progress.fetch_add((end - next) as u64, Ordering::Relaxed);
        next = end;
    }
    Ok(())
}
