//! `gongkai bench county`: the county aggregator's catch-up rate and the
//! mirror lag, measured in-process on this machine, next to the raw
//! batch-verify rate measured in the same run.
//!
//! 1. **Catch-up**: one department's log of `--entries` entries (signed
//!    here) is pushed to a fresh aggregator the way a node catches up after
//!    an outage — 256-entry packages, a checkpoint every 16,384 entries —
//!    and timed until the last checkpoint is cosigned (verification,
//!    staging, journal fdatasync, projection, cosignature). The raw rate is
//!    `prepare` (framing, canonical body, field rules, hashes) plus ZIP-215
//!    batch verification of the same entries over all cores.
//! 2. **Mirror lag**: `--departments` nodes replicate to the aggregator
//!    while writers append `--rate` events/s in total for `--seconds`
//!    (open loop, up to 8 requests in flight per department); for
//!    every entry, the time from the node's acknowledgement to its arrival
//!    on the county mirror's Follow stream (the mirror commits an entry
//!    together with its cosignature, so this is also the cosign lag).
//!    With `--witnesses N`, N independent witnesses run in-process and the
//!    county collects their cosignatures; the **witnessed lag** is the
//!    time from the node's acknowledgement until the mirror serves a
//!    checkpoint covering the entry with all N witness cosignatures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use gongkai_core::chain::{prepare, verify_signatures};
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::event::{Kind, pb};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle::TreeState;
use gongkai_core::types::{KeyName, Origin};
use gongkai_core::writer::LogWriter;
use gongkai_proto::v1::{self, write_event::Kind as W};
use gongkai_proto::{CountyClient, DisclosureNodeClient};
use sha2::{Digest as _, Sha256};

/// `gongkai bench county`.
#[derive(Debug, Args)]
pub struct CountyBenchArgs {
    /// Entries of the catch-up log.
    #[arg(long, default_value_t = 200_000)]
    entries: usize,
    /// Departments writing during the lag measurement.
    #[arg(long, default_value_t = 10)]
    departments: usize,
    /// Events per second in total during the lag measurement.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Seconds of load for the lag measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events per AppendBatch during the lag measurement.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Hostile clients of each kind held open against the county during
    /// the lag measurement: idle TCP connections, clients that send half
    /// an HTTP/2 preface and stop (slow headers), and Follow streams that
    /// are never read (as unread downloads).
    #[arg(long, default_value_t = 0)]
    hostile: usize,
    /// Independent witnesses (in-process `gongkai witness` services) the
    /// county collects cosignatures from during the lag measurement; the
    /// witnessed lag (node ack -> a served checkpoint covering the entry
    /// with every witness's cosignature) is reported too.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
}

const COUNTY: &str = "bench.example/000000/county";
const WITNESS: &str = "bench.example/000000/county-witness";
const TOKEN: &str = "bench-token";
/// AppendBatch requests each lag writer keeps in flight at most.
const IN_FLIGHT: usize = 8;

pub(crate) fn origin(n: usize) -> String {
    format!("bench.example/000000/dept{n}")
}

pub(crate) fn key(n: usize) -> SigningKey {
    SigningKey::from_seed(Sha256::digest(format!("bench {n}").as_bytes()).into())
}

fn sha(t: &str) -> String {
    hex::encode(Sha256::digest(t.as_bytes()))
}

fn today() -> String {
    crate::today()
}

/// Runs `gongkai bench county`.
///
/// # Errors
/// Setup failures or a refused push.
pub fn run(a: &CountyBenchArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let dir = tempfile::tempdir()?;
    eprintln!("signing {} entries…", a.entries);
    let entries = make_log(a.entries)?;
    let raw = raw_verify_rate(&entries);
    let catch_up = runtime.block_on(catch_up(dir.path(), &entries))?;
    println!(
        "catch-up after an outage ({} entries, one department)",
        a.entries
    );
    println!("  raw prepare + batch verify, all cores  {raw:>10.0} entries/s");
    println!("  county verify + commit + cosign        {catch_up:>10.0} entries/s");
    println!(
        "  ratio                                  {:>10.2}",
        catch_up / raw
    );
    let (lag, witnessed) = runtime.block_on(lag(dir.path(), a))?;
    println!(
        "mirror lag (node ack -> entry committed and cosigned at the county), {} departments, {} events/s in total, {} s",
        a.departments, a.rate, a.seconds
    );
    println!("  entries measured                       {:>10}", lag.len());
    let mut lag = lag;
    lag.sort_unstable_by(f64::total_cmp);
    for (name, p) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        println!(
            "  {name} (ms)                               {:>10.1}",
            percentile(&lag, p)
        );
    }
    if a.witnesses > 0 {
        let mut w = witnessed;
        w.sort_unstable_by(f64::total_cmp);
        println!(
            "witnessed lag (node ack -> served checkpoint with all {} witness cosignatures; node checkpoint interval 500 ms)",
            a.witnesses
        );
        println!("  entries measured                       {:>10}", w.len());
        for (name, p) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
            println!(
                "  {name} (ms)                               {:>10.1}",
                percentile(&w, p)
            );
        }
    }
    Ok(())
}

/// Opens `a.hostile` clients of each kind against the county at `url` and
/// keeps them open (returned): idle connections, slow-header clients,
/// unread Follow streams. Prints how many the county took.
async fn hostile(url: &str, a: &CountyBenchArgs) -> Vec<Box<dyn std::any::Any + Send>> {
    use tokio::io::AsyncWriteExt as _;
    let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    if a.hostile == 0 {
        return held;
    }
    let addr = url.trim_start_matches("http://").to_owned();
    let (mut idle, mut slow, mut unread) = (0, 0, 0);
    for _ in 0..a.hostile {
        if let Ok(s) = tokio::net::TcpStream::connect(&addr).await {
            held.push(Box::new(s));
            idle += 1;
        }
    }
    for _ in 0..a.hostile {
        if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await
            && s.write_all(b"PRI * HTTP/2.0\r\n").await.is_ok()
        {
            held.push(Box::new(s));
            slow += 1;
        }
    }
    for n in 0..a.hostile {
        let Ok(mut c) = DisclosureNodeClient::connect(url.to_owned()).await else {
            continue;
        };
        let req = v1::FollowRequest {
            origin: origin(n % a.departments.max(1)),
            start: 0,
        };
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), c.follow(req)).await {
            held.push(Box::new((c, s.into_inner())));
            unread += 1;
        }
    }
    println!(
        "hostile clients held open during the lag measurement: {idle} idle connections, {slow} slow-header clients, {unread} unread Follow streams"
    );
    held
}

/// Per department: each witnessed checkpoint size served and when.
type Witnessed = HashMap<usize, Vec<(u64, Instant)>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn make_log(n: usize) -> Result<Vec<Vec<u8>>> {
    let o = Origin::new(&origin(0))?;
    let mut w = LogWriter::new(o, key(0));
    let t = gongkai_node::log::now_ms().saturating_sub(3_600_000);
    let mut out = Vec::with_capacity(n);
    let genesis = Kind::Genesis(pb::Genesis {
        department: "基准测试局".into(),
        division_code: "000000".into(),
    });
    out.push(w.append(genesis, t)?.into_bytes());
    let date = today();
    for i in 1..n {
        let kind = Kind::RequestReceived(pb::RequestReceived {
            applicant: pb::ApplicantCategory::NaturalPerson as i32,
            request_id: format!("r-{i}"),
            date_received: date.clone(),
            subject: "请求公开2025年部门决算及说明".into(),
        });
        out.push(w.append(kind, t)?.into_bytes());
    }
    Ok(out)
}

pub(crate) fn raw_verify_rate(entries: &[Vec<u8>]) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = entries.len().div_ceil(threads).max(1);
    let t = Instant::now();
    std::thread::scope(|s| {
        for (k, part) in entries.chunks(chunk).enumerate() {
            s.spawn(move || {
                let mut checks = Vec::new();
                for (i, e) in part.iter().enumerate() {
                    if let Ok(p) = prepare(e.clone(), (k * chunk + i) as u64)
                        && let Ok(c) = p.signature_checks()
                    {
                        checks.extend(c);
                    }
                    if checks.len() >= 1024 {
                        let _ = verify_signatures(&checks, &mut rand::rng());
                        checks.clear();
                    }
                }
                let _ = verify_signatures(&checks, &mut rand::rng());
            });
        }
    });
    entries.len() as f64 / t.elapsed().as_secs_f64()
}

fn county_config(
    dir: &std::path::Path,
    departments: usize,
    witnesses: &[(String, String)],
    extra: &str,
) -> Result<gongkai_aggregator::config::CountyConfig> {
    let mut text = format!(
        "origin = \"{COUNTY}\"\nlog_key = \"-\"\nwitness_key = \"-\"\ndata_dir = {:?}\nplaintext = true\n\
         county_interval_ms = 1000\nmax_staged_bytes = 67108864\n",
        dir.join("county")
    );
    for n in 0..departments {
        let vkey = Checkpoint::log_verifier_key(
            &Origin::new(&origin(n)).map_err(|e| anyhow::anyhow!("{e}"))?,
            &key(n).public_key(),
        );
        text.push_str(&format!(
            "[[departments]]\norigin = \"{}\"\nvkey = \"{vkey}\"\npush_token_sha256 = \"{}\"\nmax_pushes_per_sec = 0\n",
            origin(n),
            sha(TOKEN)
        ));
    }
    for (url, vkey) in witnesses {
        text.push_str(&format!(
            "[[witness]]\nurl = \"{url}\"\nvkey = \"{vkey}\"\n"
        ));
    }
    text.push_str(extra);
    gongkai_aggregator::config::CountyConfig::from_toml(&text).map_err(|e| anyhow::anyhow!(e))
}

pub(crate) async fn start_county(
    dir: &std::path::Path,
    departments: usize,
    witnesses: &[(String, String)],
    extra: &str,
) -> Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let keys = gongkai_aggregator::Keys {
        log: (KeyName::new(COUNTY)?, county_log_key()),
        witness: (KeyName::new(WITNESS)?, SigningKey::from_seed([101; 32])),
    };
    let config = county_config(dir, departments, witnesses, extra)?;
    tokio::spawn(async move {
        if let Err(e) = gongkai_aggregator::run(config, keys, listener, async {
            let _ = rx.await;
        })
        .await
        {
            eprintln!("county: {e}");
        }
    });
    for _ in 0..400 {
        if let Ok(mut c) = CountyClient::connect(url.clone()).await
            && c.get_county_status(v1::GetCountyStatusRequest {})
                .await
                .is_ok()
        {
            return Ok((url, tx));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("the county did not start")
}

fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {TOKEN}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

async fn catch_up(dir: &std::path::Path, entries: &[Vec<u8>]) -> Result<f64> {
    let (url, stop) = start_county(&dir.join("catchup"), 1, &[], "").await?;
    let rate = push_log(&url, entries).await?;
    let _ = stop.send(());
    Ok(rate)
}

/// Pushes the department-0 log `entries` to the county at `url` as a node
/// catching up would (aligned packages, a checkpoint every 16,384);
/// returns entries per second.
pub(crate) async fn push_log(url: &str, entries: &[Vec<u8>]) -> Result<f64> {
    let mut c = CountyClient::connect(url.to_owned())
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let o = Origin::new(&origin(0))?;
    let signer = key(0);
    // Checkpoints of the steps, signed before the clock starts (the node
    // has them already).
    let size = entries.len();
    let step = 16_384;
    let mut tree = TreeState::new();
    let mut checkpoints = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        tree.append_leaf(leaf_hash(e));
        let n = i + 1;
        if n % step == 0 || n == size {
            let cp = SignedCheckpoint::sign(
                &Checkpoint::new(o.clone(), n as u64, tree.root()),
                &signer,
            )?;
            checkpoints.insert(n, cp.to_string());
        }
    }
    let t = Instant::now();
    let mut next = 0;
    while next < size {
        let end = ((next / 256 + 1) * 256).min(size);
        let checkpoint = checkpoints.get(&end).cloned().unwrap_or_default();
        c.push(authed(v1::PushRequest {
            origin: origin(0),
            start: next as u64,
            entries: entries[next..end].to_vec(),
            checkpoint,
        }))
        .await
        .with_context(|| format!("push [{next}, {end})"))?;
        next = end;
    }
    let elapsed = t.elapsed().as_secs_f64();
    Ok(size as f64 / elapsed)
}

/// The county log's key in the bench.
fn county_log_key() -> SigningKey {
    SigningKey::from_seed([100; 32])
}

/// Starts `n` in-process witnesses of the departments' logs and the county
/// log; returns their `(url, vkey)` and a sender that stops them.
async fn start_witnesses(
    root: &std::path::Path,
    a: &CountyBenchArgs,
) -> Result<(Vec<(String, String)>, tokio::sync::watch::Sender<bool>)> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut out = Vec::new();
    let logs = root.join("witness-logs.toml");
    // The county log too (FORMAT.md § 21.1), as a county's witnesses do.
    let county_vkey = Checkpoint::log_verifier_key(
        &Origin::new(COUNTY).map_err(|e| anyhow::anyhow!("{e}"))?,
        &county_log_key().public_key(),
    );
    let mut text = format!("county_log = \"{county_vkey}\"\n");
    for n in 0..a.departments {
        let vkey = Checkpoint::log_verifier_key(
            &Origin::new(&origin(n)).map_err(|e| anyhow::anyhow!("{e}"))?,
            &key(n).public_key(),
        );
        text.push_str(&format!(
            "[[log]]\norigin = \"{}\"\nvkeys = [\"{vkey}\"]\n",
            origin(n)
        ));
    }
    std::fs::create_dir_all(root)?;
    std::fs::write(&logs, text)?;
    for i in 0..a.witnesses {
        let cosigner = gongkai_core::note::Cosigner::new(
            KeyName::new(&format!("witness{i}.bench.example"))?,
            SigningKey::from_seed(Sha256::digest(format!("witness {i}").as_bytes()).into()),
        );
        let config = gongkai_witness::server::WitnessConfig::from_toml(&format!(
            "key = \"-\"\ndata_dir = {:?}\nlogs = {logs:?}\n",
            root.join(format!("witness{i}"))
        ))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        out.push((
            format!("http://{}", listener.local_addr()?),
            cosigner.verifier_key().to_string(),
        ));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let r = gongkai_witness::server::run(config, cosigner, listener, || {}, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
            if let Err(e) = r {
                eprintln!("witness: {e}");
            }
        });
    }
    Ok((out, stop_tx))
}

async fn lag(dir: &std::path::Path, a: &CountyBenchArgs) -> Result<(Vec<f64>, Vec<f64>)> {
    let root = dir.join("lag");
    let (witnesses, stop_witnesses) = start_witnesses(&root, a).await?;
    let (county, stop_county) = start_county(&root, a.departments, &witnesses, "").await?;
    let mut node_stops = Vec::new();
    let mut urls = Vec::new();
    for n in 0..a.departments {
        let d = root.join(format!("dept{n}"));
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join("push.token"), TOKEN)?;
        let text = format!(
            "origin = \"{}\"\ndepartment = \"基准测试局\"\ndivision_code = \"000000\"\ndata_dir = {:?}\n\
             key = {:?}\nplaintext = true\ncache_bytes = 8388608\nfree_space_reserve = 1048576\n\
             [[writers]]\nname = \"bench\"\ntoken_sha256 = \"{}\"\n\
             [county]\naddress = \"{county}\"\ntoken_file = {:?}\ninterval_ms = 1000\nmin_backoff_ms = 50\nmax_backoff_ms = 1000\n",
            origin(n),
            d.join("data"),
            d.join("key"),
            sha(TOKEN),
            d.join("push.token")
        );
        let config =
            gongkai_node::config::NodeConfig::from_toml(&text).map_err(|e| anyhow::anyhow!(e))?;
        gongkai_node::init(&config, &key(n))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        urls.push(format!("http://{}", listener.local_addr()?));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let k = key(n);
        tokio::spawn(async move {
            let _ = gongkai_node::run(config, k, listener, async {
                let _ = rx.await;
            })
            .await;
        });
        node_stops.push(tx);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Arrival times at the county mirror, per (department, index).
    let arrivals: Arc<Mutex<HashMap<(usize, u64), Instant>>> = Arc::default();
    for n in 0..a.departments {
        let arrivals = Arc::clone(&arrivals);
        let county = county.clone();
        tokio::spawn(async move {
            let Ok(mut c) = DisclosureNodeClient::connect(county).await else {
                return;
            };
            let Ok(stream) = c
                .follow(v1::FollowRequest {
                    origin: origin(n),
                    start: 0,
                })
                .await
            else {
                return;
            };
            let mut stream = stream.into_inner();
            while let Ok(Some(m)) = stream.message().await {
                if let Ok(mut a) = arrivals.lock() {
                    a.insert((n, m.index), Instant::now());
                }
            }
        });
    }
    // With witnesses: when the mirror first serves a checkpoint covering
    // each index with every witness's cosignature.
    let witnessed: Arc<Mutex<Witnessed>> = Arc::default();
    let verifiers = gongkai_core::note::Verifiers::new(
        witnesses
            .iter()
            .filter_map(|(_, v)| gongkai_core::note::VerifierKey::parse(v).ok()),
    )?;
    let pollers_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if a.witnesses > 0 {
        for n in 0..a.departments {
            let (county, witnessed, verifiers, stop) = (
                county.clone(),
                Arc::clone(&witnessed),
                verifiers.clone(),
                Arc::clone(&pollers_stop),
            );
            let k = a.witnesses;
            tokio::spawn(async move {
                let Ok(mut c) = DisclosureNodeClient::connect(county).await else {
                    return;
                };
                let mut last = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(r) = c
                        .get_checkpoint(v1::GetCheckpointRequest { origin: origin(n) })
                        .await
                        && let Ok(cp) = SignedCheckpoint::parse(&r.into_inner().checkpoint)
                        && cp.checkpoint().size > last
                        && cp.note().verify_quorum(&verifiers, k).is_ok()
                    {
                        last = cp.checkpoint().size;
                        if let Ok(mut w) = witnessed.lock() {
                            w.entry(n).or_default().push((last, Instant::now()));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
    }
    let _hostile = hostile(&county, a).await;
    // Writers: each department at rate / departments events/s.
    let acks: Arc<Mutex<Vec<(usize, u64, Instant)>>> = Arc::default();
    let per_dept = (a.rate as f64 / a.departments as f64).max(1.0);
    let interval = Duration::from_secs_f64(a.batch as f64 / per_dept);
    let until = Instant::now() + Duration::from_secs(a.seconds);
    let mut writers = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        let (url, acks, batch) = (url.clone(), Arc::clone(&acks), a.batch);
        writers.push(tokio::spawn(async move {
            let Ok(c) = DisclosureNodeClient::connect(url).await else {
                return;
            };
            // Open loop: the offered rate does not depend on the node's
            // append latency (a writer with one request in flight could
            // only reach batch / latency), up to IN_FLIGHT at once.
            let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut tick = tokio::time::interval(interval);
            let mut i = 0u64;
            let date = today();
            let mut pending = tokio::task::JoinSet::new();
            while Instant::now() < until {
                tick.tick().await;
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                let events = (0..batch)
                    .map(|k| v1::WriteEvent {
                        kind: Some(W::RequestReceived(pb::RequestReceived {
                            applicant: pb::ApplicantCategory::NaturalPerson as i32,
                            request_id: format!("w-{i}-{k}"),
                            date_received: date.clone(),
                            subject: "请求公开".into(),
                        })),
                    })
                    .collect();
                i += 1;
                let (mut c, acks) = (c.clone(), Arc::clone(&acks));
                pending.spawn(async move {
                    if let Ok(r) = c
                        .append_batch(authed(v1::AppendBatchRequest {
                            idempotency_key: format!("b-{i}"),
                            events,
                        }))
                        .await
                    {
                        let now = Instant::now();
                        if let Ok(mut a) = acks.lock() {
                            for rc in r.into_inner().receipts {
                                a.push((n, rc.index, now));
                            }
                        }
                    }
                    drop(slot);
                });
            }
            while pending.join_next().await.is_some() {}
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    // Let the last entries arrive.
    let total = acks.lock().map(|a| a.len()).unwrap_or(0);
    for _ in 0..200 {
        let have = {
            let arr = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            let ack = acks.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            ack.iter()
                .filter(|(n, i, _)| arr.contains_key(&(*n, *i)))
                .count()
        };
        if have == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if a.witnesses > 0 {
        // Until every acknowledged entry is covered by a witnessed checkpoint.
        for _ in 0..100 {
            let done = {
                let w = witnessed.lock().map_err(|_| anyhow::anyhow!("lock"))?;
                let ack = acks.lock().map_err(|_| anyhow::anyhow!("lock"))?;
                ack.iter().all(|(n, i, _)| {
                    w.get(n)
                        .and_then(|v| v.last())
                        .is_some_and(|(s, _)| *s > *i)
                })
            };
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    pollers_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let witnessed_lags = {
        let w = witnessed.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        let ack = acks.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        ack.iter()
            .filter_map(|(n, i, t)| {
                // The first witnessed checkpoint whose size covers i.
                let v = w.get(n)?;
                let k = v.partition_point(|(s, _)| *s <= *i);
                v.get(k)
                    .map(|(_, at)| at.saturating_duration_since(*t).as_secs_f64() * 1000.0)
            })
            .collect::<Vec<f64>>()
    };
    let lags = {
        let arr = arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        let ack = acks.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        ack.iter()
            .filter_map(|(n, i, t)| {
                arr.get(&(*n, *i))
                    .map(|a| a.saturating_duration_since(*t).as_secs_f64() * 1000.0)
            })
            .collect::<Vec<f64>>()
    };
    for s in node_stops {
        let _ = s.send(());
    }
    let _ = stop_county.send(());
    let _ = stop_witnesses.send(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok((lags, witnessed_lags))
}
