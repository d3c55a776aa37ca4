//! `gongkai bench append`: load a node with concurrent writers and print
//! throughput and acknowledgement latency next to this machine's raw limits
//! measured in the same run (Ed25519 signing, BLAKE3 hashing, sled insert +
//! flush, fdatasync of an appended 4 KiB block), so results compare across
//! machines.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use gongkai_core::event::pb;
use gongkai_core::keys::SigningKey;
use gongkai_proto::DisclosureNodeClient;
use gongkai_proto::v1::{self, write_event::Kind as W};

/// Benchmarks (never part of the test suite).
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Append events to a running node from concurrent clients.
    ///
    /// Each event is a `request_received` with a fresh id (valid, small, no
    /// content upload), so the numbers measure the append path: field and
    /// catalog checks, signing, journal group commit with fdatasync,
    /// projection, acknowledgement.
    Append(AppendArgs),
    /// Audit a large generated export, next to the raw ZIP-215 batch
    /// verification rate measured in the same run.
    Audit(crate::bench_audit::AuditBenchArgs),
    /// The county aggregator: catch-up rate after an outage (next to the
    /// raw batch-verify rate) and mirror lag with several departments
    /// writing, all in this process.
    County(crate::bench_county::CountyBenchArgs),
    /// A county log published to an S3-compatible bucket and verified back
    /// from it over HTTP: publish and verify rates (next to raw batch
    /// verification) and bytes stored per entry.
    Bucket(crate::bench_bucket::BucketBenchArgs),
    /// The county aggregator's resident memory while it mirrors many
    /// departments' logs (a real `gongkai aggregator` process), idle and
    /// after a restart.
    CountyMemory(crate::bench_memory::MemoryBenchArgs),
}

#[derive(Debug, Args)]
struct AppendArgs {
    /// The node, e.g. http://127.0.0.1:7401.
    #[arg(long, env = "GONGKAI_SERVER", default_value = "http://127.0.0.1:7401")]
    node: String,
    /// Writer token.
    #[arg(long, env = "GONGKAI_TOKEN")]
    token: String,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Events in total.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Events per request (1: Append; more: AppendBatch).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Steady total rate in events per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Directory for the raw sled and fdatasync measurements (default: a
    /// temporary directory; put it on the node's disk for a fair ratio).
    #[arg(long)]
    scratch: Option<PathBuf>,
}

/// Runs `gongkai bench …`.
pub fn run(args: BenchArgs) -> Result<()> {
    let a = match args.command {
        BenchCommand::Append(a) => a,
        BenchCommand::Audit(a) => return crate::bench_audit::run(&a),
        BenchCommand::County(c) => return crate::bench_county::run(&c),
        BenchCommand::Bucket(b) => return crate::bench_bucket::run(&b),
        BenchCommand::CountyMemory(m) => return crate::bench_memory::run(&m),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let raw = raw_limits(a.scratch.as_deref())?;
    let result = runtime.block_on(load(&a))?;
    report(&a, &raw, &result);
    Ok(())
}

struct Raw {
    sign_per_s: f64,
    hash_per_s: f64,
    sled_per_s: f64,
    fdatasync_ms: f64,
}

fn raw_limits(scratch: Option<&std::path::Path>) -> Result<Raw> {
    let key = SigningKey::from_seed([7; 32]);
    let msg = vec![0x5a; 300];
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < Duration::from_millis(500) {
        std::hint::black_box(key.sign(&msg));
        n += 1;
    }
    let sign_per_s = f64::from(n) / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < Duration::from_millis(300) {
        std::hint::black_box(gongkai_core::hash::leaf_hash(&msg));
        n += 1;
    }
    let hash_per_s = f64::from(n) / t.elapsed().as_secs_f64();
    let dir = match scratch {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let db = sled::Config::new().path(dir.path().join("sled")).open()?;
    let value = vec![0xa5u8; 1024];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(700) {
        let mut batch = sled::Batch::default();
        for i in 0..256u64 {
            batch.insert(&(n + i).to_be_bytes(), value.as_slice());
        }
        db.apply_batch(batch)?;
        db.flush()?;
        n += 256;
    }
    let sled_per_s = n as f64 / t.elapsed().as_secs_f64();
    let path = dir.path().join("sync");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let block = vec![0u8; 4096];
    let t = Instant::now();
    let mut n = 0u32;
    while n < 200 {
        use std::io::Write as _;
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    let fdatasync_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    Ok(Raw {
        sign_per_s,
        hash_per_s,
        sled_per_s,
        fdatasync_ms,
    })
}

struct LoadResult {
    events: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    errors: usize,
}

async fn load(a: &AppendArgs) -> Result<LoadResult> {
    let run_id: u64 = rand::random();
    let per_client = a.events.div_ceil(a.clients.max(1));
    let interval = a
        .rate
        .map(|r| Duration::from_secs_f64(a.clients as f64 * a.batch as f64 / r.max(1.0)));
    let token = Arc::new(format!("Bearer {}", a.token));
    let start = Instant::now();
    let mut tasks = Vec::new();
    let clients = a.clients.max(1);
    for client in 0..a.clients {
        let node = a.node.clone();
        let token = Arc::clone(&token);
        let batch = a.batch.max(1);
        tasks.push(tokio::spawn(async move {
            let mut c = DisclosureNodeClient::connect(node).await?;
            let mut lat = Vec::with_capacity(per_client / batch + 1);
            let mut errors = 0usize;
            // Clients start at evenly spread phases of the interval, so the
            // total rate is steady rather than `clients` requests at once.
            let mut tick = interval.map(|every| {
                let phase = every.mul_f64(client as f64 / clients as f64);
                tokio::time::interval_at(tokio::time::Instant::now() + phase, every)
            });
            let mut sent = 0;
            while sent < per_client {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let n = batch.min(per_client - sent);
                let events: Vec<v1::WriteEvent> = (0..n)
                    .map(|i| v1::WriteEvent {
                        kind: Some(W::RequestReceived(pb::RequestReceived {
                            applicant: pb::ApplicantCategory::NaturalPerson as i32,
                            request_id: format!("bench-{run_id:x}-{client}-{}", sent + i),
                            date_received: crate::today(),
                            subject: "benchmark request".into(),
                        })),
                    })
                    .collect();
                let t = Instant::now();
                let ok = if n == 1 {
                    // Every write carries a key (the node requires one).
                    let key = format!("bench-{run_id:x}-{client}-{sent}");
                    let mut req = tonic::Request::new(v1::AppendRequest {
                        idempotency_key: key,
                        event: events.into_iter().next(),
                    });
                    req.metadata_mut().insert("authorization", token.parse()?);
                    c.append(req).await.is_ok()
                } else {
                    let key = format!("bench-{run_id:x}-{client}-{sent}");
                    let mut req = tonic::Request::new(v1::AppendBatchRequest {
                        idempotency_key: key,
                        events,
                    });
                    req.metadata_mut().insert("authorization", token.parse()?);
                    c.append_batch(req).await.is_ok()
                };
                lat.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                if !ok {
                    errors += 1;
                }
                sent += n;
            }
            anyhow::Ok((lat, errors, sent))
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    let mut events = 0;
    for t in tasks {
        let (lat, err, sent) = t.await??;
        latencies_us.extend(lat);
        errors += err;
        events += sent;
    }
    Ok(LoadResult {
        events,
        elapsed: start.elapsed(),
        latencies_us,
        errors,
    })
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn report(a: &AppendArgs, raw: &Raw, r: &LoadResult) {
    let mut lat = r.latencies_us.clone();
    lat.sort_unstable();
    let rate = r.events as f64 / r.elapsed.as_secs_f64();
    // Per event the node must at least sign, hash and store once.
    let limit = 1.0 / (1.0 / raw.sign_per_s + 1.0 / raw.hash_per_s + 1.0 / raw.sled_per_s);
    println!(
        "gongkai bench append: {} clients, {} events, batch {}{}",
        a.clients,
        r.events,
        a.batch,
        a.rate
            .map(|x| format!(", steady {x:.0} events/s"))
            .unwrap_or_default()
    );
    println!("{:<44} {:>12}", "measurement", "value");
    println!(
        "{:<44} {:>12.0}",
        "raw Ed25519 sign, 1 thread (/s)", raw.sign_per_s
    );
    println!(
        "{:<44} {:>12.0}",
        "raw BLAKE3 leaf hash of 300 B (/s)", raw.hash_per_s
    );
    println!(
        "{:<44} {:>12.0}",
        "raw sled insert 1 KiB + flush per 256 (/s)", raw.sled_per_s
    );
    println!(
        "{:<44} {:>12.3}",
        "raw fdatasync of an appended 4 KiB (ms)", raw.fdatasync_ms
    );
    println!(
        "{:<44} {:>12.0}",
        "raw sign + hash + store limit (/s)", limit
    );
    println!("{:<44} {:>12.0}", "durable signed events (/s)", rate);
    println!("{:<44} {:>12.2}", "ratio to the raw limit", rate / limit);
    println!(
        "{:<44} {:>12.3}",
        "ack latency p50 (ms)",
        percentile(&lat, 0.50)
    );
    println!(
        "{:<44} {:>12.3}",
        "ack latency p99 (ms)",
        percentile(&lat, 0.99)
    );
    println!(
        "{:<44} {:>12.3}",
        "ack latency max (ms)",
        percentile(&lat, 1.0)
    );
    println!("{:<44} {:>12}", "failed requests", r.errors);
}
