//! `gongkai bench bucket`: a county log published to an S3-compatible
//! bucket and verified back from it over HTTP (issue 21, item 4), all
//! measured in one run next to the machine's raw batch-verify rate.
//!
//! 1. A department log of `--entries` signed entries is pushed into a
//!    county running in this process with `[publish]` pointing at the
//!    bucket; the **publish rate** is entries over the time from the first
//!    push until the bucket's checkpoint names them all.
//! 2. The log is then verified from `--url` (the bucket's website endpoint
//!    or a CDN) with the same check as `gongkai verify --url`: the
//!    **verify rate**, and its ratio to raw batch verification.
//! 3. **Bytes stored per entry**: the sizes of the log's objects in the
//!    bucket, over the entries.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use futures::StreamExt as _;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::types::Origin;
use gongkai_verify::check::{Options, check_log};
use gongkai_verify::source::LogSource as _;
use gongkai_verify::trust::Trust;

use crate::bench_county::{key, make_log, origin, push_log, raw_verify_rate, start_county};

/// `gongkai bench bucket`.
#[derive(Debug, Args)]
pub struct BucketBenchArgs {
    /// Entries of the published log.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: usize,
    /// The bucket's S3 endpoint, e.g. http://127.0.0.1:3900.
    #[arg(long, value_name = "URL")]
    pub endpoint: String,
    /// The bucket.
    #[arg(long)]
    pub bucket: String,
    /// Its region.
    #[arg(long, default_value = "garage")]
    pub region: String,
    /// Access key id with write access to the bucket.
    #[arg(long)]
    pub access_key_id: String,
    /// File holding the secret access key.
    #[arg(long, value_name = "FILE")]
    pub secret_access_key_file: PathBuf,
    /// Where readers get the bucket's files over HTTP (its website
    /// endpoint or a CDN), e.g. http://localhost:3902.
    #[arg(long, value_name = "URL")]
    pub url: String,
}

/// Runs `gongkai bench bucket`.
///
/// # Errors
/// Setup failures, a refused push, a bucket that never holds the log, or
/// a log that does not verify from the bucket.
pub fn run(a: &BucketBenchArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let dir = tempfile::tempdir()?;
    eprintln!("signing {} entries…", a.entries);
    let entries = make_log(a.entries)?;
    let raw = raw_verify_rate(&entries);
    let o = Origin::new(&origin(0))?;
    let extra = format!(
        "[publish]\nendpoint = {:?}\nbucket = {:?}\nregion = {:?}\naccess_key_id = {:?}\n\
         secret_access_key_file = {:?}\nallow_http = true\ninterval_ms = 200\n",
        a.endpoint, a.bucket, a.region, a.access_key_id, a.secret_access_key_file
    );
    let site = crate::static_http::Site::new(&a.url, None, None)?;
    // The bench's own logs start from an empty bucket prefix (a bucket
    // holding a larger tree of the same log is never published over).
    runtime.block_on(clear(a))?;
    let t = Instant::now();
    let (push_rate, stop) = runtime.block_on(async {
        let (url, stop) = start_county(&dir.path().join("county"), 1, &[], &extra).await?;
        eprintln!("pushing to the county, which publishes to the bucket…");
        let rate = push_log(&url, &entries).await?;
        Ok::<_, anyhow::Error>((rate, stop))
    })?;
    // Polled from here (the reader blocks on the runtime, as verify does).
    let mut reader = site.log(
        o.clone(),
        runtime.handle().clone(),
        indicatif::ProgressBar::hidden(),
    );
    loop {
        let size = reader
            .checkpoint()
            .ok()
            .and_then(|b| SignedCheckpoint::from_bytes(&b).ok())
            .map_or(0, |c| c.checkpoint().size);
        if size >= entries.len() as u64 {
            break;
        }
        if t.elapsed() > Duration::from_secs(3600) {
            bail!("the bucket did not hold the log within an hour");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let publish_secs = t.elapsed().as_secs_f64();
    let _ = stop.send(());
    eprintln!("verifying from {}…", a.url);
    let vkey = Checkpoint::log_verifier_key(&o, &key(0).public_key());
    let trust = Trust::from_vkeys(&[vkey])?;
    let t = Instant::now();
    let mut src = site.log(
        o.clone(),
        runtime.handle().clone(),
        indicatif::ProgressBar::hidden(),
    );
    let opts = Options {
        trust: &trust,
        review: None,
        county_notes: &[],
        resume: None,
    };
    let outcome = check_log(&mut src, &opts);
    let verify_secs = t.elapsed().as_secs_f64();
    if outcome.violations() > 0
        || outcome.error.is_some()
        || outcome.entries_verified != entries.len() as u64
    {
        bail!(
            "the log did not verify from the bucket: {} entries, {} violations, {:?}",
            outcome.entries_verified,
            outcome.violations(),
            outcome.error
        );
    }
    let bytes = runtime.block_on(stored_bytes(a, &origin(0)))?;
    let n = entries.len() as f64;
    let entry_bytes: usize = entries.iter().map(Vec::len).sum();
    println!(
        "bucket: {} entries, one department, published by the county and verified back over HTTP",
        entries.len()
    );
    println!("  county catch-up (push, verify, cosign)    {push_rate:>10.0} entries/s");
    println!(
        "  published (first push -> bucket holds all) {:>9.0} entries/s ({publish_secs:.1} s)",
        n / publish_secs
    );
    println!("  raw prepare + batch verify, all cores     {raw:>10.0} entries/s");
    println!(
        "  verified from the bucket over HTTP        {:>10.0} entries/s ({verify_secs:.1} s)",
        n / verify_secs
    );
    println!(
        "  ratio                                     {:>10.2}",
        n / verify_secs / raw
    );
    println!(
        "  bytes stored per entry                    {:>10.1} (entries alone {:.1})",
        bytes as f64 / n,
        entry_bytes as f64 / n
    );
    Ok(())
}

fn store(a: &BucketBenchArgs) -> Result<std::sync::Arc<dyn object_store::ObjectStore>> {
    gongkai_portal::publish::BucketConfig {
        endpoint: a.endpoint.clone(),
        bucket: a.bucket.clone(),
        region: a.region.clone(),
        access_key_id: a.access_key_id.clone(),
        secret_access_key_file: a.secret_access_key_file.clone(),
        allow_http: true,
        interval_ms: 0,
        public_url: None,
    }
    .store()
    .map_err(|e| anyhow::anyhow!(e))
}

/// Removes the objects of the bench's logs from the bucket.
async fn clear(a: &BucketBenchArgs) -> Result<()> {
    let store = store(a)?;
    for slug in [
        origin(0).replace('/', "~"),
        "bench.example~000000~county".to_owned(),
    ] {
        let prefix = object_store::path::Path::parse(format!("logs/{slug}"))?;
        let mut list = store.list(Some(&prefix));
        while let Some(meta) = list.next().await {
            store.delete(&meta?.location).await?;
        }
    }
    Ok(())
}

/// The bytes of the log's objects in the bucket (tiles, bundles,
/// checkpoint).
async fn stored_bytes(a: &BucketBenchArgs, origin: &str) -> Result<u64> {
    let store = store(a)?;
    let prefix = object_store::path::Path::parse(format!("logs/{}", origin.replace('/', "~")))?;
    let mut list = store.list(Some(&prefix));
    let mut total = 0;
    while let Some(meta) = list.next().await {
        total += meta?.size;
    }
    Ok(total)
}
