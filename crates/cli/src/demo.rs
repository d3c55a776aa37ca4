//! `gongkai demo`: a whole county on this machine — keys, tokens and configs,
//! N department nodes, the county aggregator with its portal — with a
//! realistic sample published, cosigned and verified, until Ctrl-C. A
//! second run on the same directory resumes the same county.
//!
//! Ports (all on 127.0.0.1; `--port-base` moves them together):
//!
//! | port | what |
//! |---|---|
//! | base | county aggregator (gRPC: replication, mirror reads, county log) |
//! | base + 1 … base + N | department nodes (gRPC) |
//! | base + 80 | public portal (pages, JSON API, tiles) |
//! | base + 81 | portal content downloads (a separate origin) |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gongkai_core::date::Date;
use gongkai_core::keys::SigningKey;
use gongkai_core::note::KeyType;
use gongkai_core::types::KeyName;
use serde::{Deserialize, Serialize};

use crate::sample::{DEPARTMENTS, Department, Writer};

/// Default first port.
pub const DEFAULT_PORT_BASE: u16 = 7400;
/// The county's division code and domain in the demo.
const DIVISION: &str = "510122";
const DOMAIN: &str = "gongkai.example";

/// `gongkai demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the county's keys, configs and data (resumed if it
    /// exists).
    #[arg(long, default_value = "gongkai-demo")]
    dir: PathBuf,
    /// Number of department nodes (1 to 10); fixed when the directory is
    /// first set up.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
    departments: u8,
    /// First port: aggregator on it, departments on the next N, the portal
    /// on +80 and its content downloads on +81.
    #[arg(long, default_value_t = DEFAULT_PORT_BASE)]
    port_base: u16,
}

/// What the demo directory records about its county (`demo.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Setup {
    departments: u8,
    port_base: u16,
    /// The day the sample is dated from.
    day0: String,
}

/// One department as set up.
struct Dept {
    info: Department,
    origin: String,
    dir: PathBuf,
    config: PathBuf,
    token: String,
    addr: SocketAddr,
}

fn origin_of(d: &Department) -> String {
    format!("{DOMAIN}/{DIVISION}/{}", d.slug)
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Creates (first run) or loads the county in `dir`.
fn setup(args: &DemoArgs) -> Result<(Setup, Vec<Dept>, [u8; 32])> {
    let dir = abs(&args.dir);
    let setup_path = dir.join("demo.json");
    let setup: Setup = if setup_path.exists() {
        let s: Setup = serde_json::from_str(
            &std::fs::read_to_string(&setup_path)
                .with_context(|| format!("read {}", setup_path.display()))?,
        )
        .with_context(|| format!("{} is damaged", setup_path.display()))?;
        if s.departments != args.departments && args.departments != 3 {
            bail!(
                "{} holds a county of {} departments; use another --dir for {}",
                dir.display(),
                s.departments,
                args.departments
            );
        }
        s
    } else {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Setup {
            departments: args.departments,
            port_base: args.port_base,
            day0: crate::today(),
        }
    };
    let port = |offset: u16| -> Result<SocketAddr> {
        let p = setup
            .port_base
            .checked_add(offset)
            .context("--port-base is too high for the ports the demo needs")?;
        Ok(SocketAddr::from(([127, 0, 0, 1], p)))
    };
    let secret_path = dir.join("secret");
    if !secret_path.exists() {
        use rand::Rng as _;
        let mut s = [0u8; 32];
        rand::rng().fill_bytes(&mut s);
        crate::node::write_private(&secret_path, &hex::encode(s))?;
    }
    let secret: [u8; 32] = hex::decode(
        std::fs::read_to_string(&secret_path)
            .with_context(|| format!("read {}", secret_path.display()))?
            .trim(),
    )
    .ok()
    .and_then(|v| v.try_into().ok())
    .with_context(|| format!("{} is damaged", secret_path.display()))?;

    let mut depts = Vec::new();
    for (i, info) in DEPARTMENTS
        .iter()
        .take(usize::from(setup.departments))
        .enumerate()
    {
        let ddir = dir.join(info.slug);
        let config = ddir.join("node.toml");
        let token_path = ddir.join("token");
        let origin = origin_of(info);
        let addr = port(u16::try_from(i + 1)?)?;
        if !config.exists() {
            std::fs::create_dir_all(&ddir)?;
            let key_path = ddir.join("node.key");
            let key = SigningKey::generate(&mut rand::rng());
            if !key_path.exists() {
                crate::keyfile::write_key(
                    &key_path,
                    &KeyName::new(&origin)?,
                    KeyType::Ed25519,
                    &key,
                    false,
                )?;
            }
            if !token_path.exists() {
                crate::node::write_private(
                    &token_path,
                    &format!("{}\n", crate::node::random_token()),
                )?;
            }
            let token = std::fs::read_to_string(&token_path)?.trim().to_owned();
            let text = format!(
                "# gongkai demo: {name} (plaintext on loopback; see deploy/ for TLS)\n\
                 origin = \"{origin}\"\n\
                 department = \"{name}\"\n\
                 division_code = \"{DIVISION}\"\n\
                 data_dir = {data:?}\n\
                 key = {key:?}\n\
                 listen = \"{addr}\"\n\
                 plaintext = true\n\
                 checkpoint_interval_ms = 500\n\
                 cache_bytes = 16777216\n\n\
                 [[writers]]\n\
                 name = \"demo\"\n\
                 token_sha256 = \"{hash}\"\n",
                name = info.name,
                data = ddir.join("data"),
                key = key_path,
                hash = crate::node::sha256_hex(&token),
            );
            let tmp = ddir.join("node.toml.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &config)?;
        }
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| format!("read {}", token_path.display()))?
            .trim()
            .to_owned();
        depts.push(Dept {
            info: *info,
            origin,
            dir: ddir,
            config,
            token,
            addr,
        });
    }
    if !setup_path.exists() {
        std::fs::write(&setup_path, serde_json::to_string_pretty(&setup)?)?;
    }
    Ok((setup, depts, secret))
}

/// Runs `gongkai demo`.
///
/// # Errors
/// Set-up failures, a port in use, a node that fails to start.
pub fn run(args: &DemoArgs, json: bool) -> Result<()> {
    let (setup, depts, secret) = setup(args)?;
    crate::init_tracing_at("warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for d in &depts {
            let (cfg, key) = crate::node::load(&d.config)?;
            if !cfg.data_dir.join("journal").exists() {
                gongkai_node::init(&cfg, &key)
                    .with_context(|| format!("create the log of {}", d.origin))?;
            }
            let listener = tokio::net::TcpListener::bind(d.addr)
                .await
                .with_context(|| {
                    format!("{}: port {} is in use (try --port-base)", d.origin, d.addr)
                })?;
            let mut stop = stop_rx.clone();
            let origin = d.origin.clone();
            tasks.push(tokio::spawn(async move {
                let r = gongkai_node::run(cfg, key, listener, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = &r {
                    eprintln!("error: node {origin}: {e}");
                }
                r.map_err(anyhow::Error::from)
            }));
        }
        let day0 = Date::parse(&setup.day0).map_err(|e| anyhow::anyhow!("demo.json day0: {e}"))?;
        let mut fresh = 0;
        for d in &depts {
            let channel = connect(d.addr).await?;
            let mut w = Writer {
                client: gongkai_proto::DisclosureNodeClient::new(channel),
                token: d.token.clone(),
                secret,
                day0,
                prefix: format!("demo/{}", d.info.slug),
            };
            fresh += crate::sample::seed(&mut w, &d.info)
                .await
                .with_context(|| format!("publish the sample of {}", d.origin))?;
        }
        print_ready(&setup, &depts, fresh, json);
        crate::node::shutdown_signal().await;
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        anyhow::Ok(())
    })
}

/// A channel to a node that just started (retried briefly while it opens
/// its log).
async fn connect(addr: SocketAddr) -> Result<tonic::transport::Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    let mut last = None;
    for _ in 0..100 {
        match endpoint.connect().await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow::anyhow!("cannot reach {addr}: {last:?}"))
}

fn print_ready(setup: &Setup, depts: &[Dept], fresh: usize, json: bool) {
    if json {
        let v = serde_json::json!({
            "departments": depts.iter().map(|d| serde_json::json!({
                "origin": d.origin,
                "name": d.info.name,
                "address": format!("http://{}", d.addr),
                "token_file": d.dir.join("token"),
                "vkey": std::fs::read_to_string(d.dir.join("node.key.vkey")).unwrap_or_default().trim(),
            })).collect::<Vec<_>>(),
            "port_base": setup.port_base,
        });
        println!("{v}");
        return;
    }
    println!(
        "gongkai demo county: {} departments ({} new events)",
        depts.len(),
        fresh
    );
    for d in depts {
        println!("  {:<24} {:<40} http://{}", d.info.name, d.origin, d.addr);
    }
    println!("(Ctrl-C stops the county; running the same command again resumes it)");
}
