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
/// The county log's origin and the county witness's key name.
const COUNTY_ORIGIN: &str = "gongkai.example/510122/county";
const WITNESS_NAME: &str = "gongkai.example/510122/county-witness";

/// The demo's independent witnesses: directory, key name, display name.
const WITNESSES: [(&str, &str, &str); 2] = [
    ("witness-jiwei", "jiwei.gongkai.example/510122", "纪委监委"),
    ("witness-third", "third-party.gongkai.example", "第三方"),
];

/// `gongkai demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the county's keys, configs and data (resumed if it
    /// exists).
    #[arg(long, default_value = "gongkai-demo")]
    dir: PathBuf,
    /// Number of department nodes (1 to 10; default 3); fixed when the
    /// directory is first set up.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    departments: Option<u8>,
    /// First port (default 7400): aggregator on it, departments on the next
    /// N, the portal on +80 and its content downloads on +81, the two
    /// independent witnesses on +82 and +83; fixed when
    /// the directory is first set up.
    #[arg(long)]
    port_base: Option<u16>,
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
    vkey: String,
}

/// The county as set up.
struct CountySetup {
    witnesses: Vec<DemoWitness>,
    config: PathBuf,
    addr: SocketAddr,
    portal: SocketAddr,
    content: SocketAddr,
    witness_vkey: String,
    trust: PathBuf,
}

fn origin_of(d: &Department) -> String {
    format!("{DOMAIN}/{DIVISION}/{}", d.slug)
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Creates (first run) or loads the county in `dir`.
fn setup(args: &DemoArgs) -> Result<(Setup, Vec<Dept>, CountySetup, [u8; 32])> {
    let dir = abs(&args.dir);
    let setup_path = dir.join("demo.json");
    let setup: Setup = if setup_path.exists() {
        let s: Setup = serde_json::from_str(
            &std::fs::read_to_string(&setup_path)
                .with_context(|| format!("read {}", setup_path.display()))?,
        )
        .with_context(|| format!("{} is damaged", setup_path.display()))?;
        if let Some(n) = args.departments.filter(|n| *n != s.departments) {
            bail!(
                "{} holds a county of {} departments; use another --dir for {n}",
                dir.display(),
                s.departments,
            );
        }
        if let Some(p) = args.port_base.filter(|p| *p != s.port_base) {
            bail!(
                "{} holds a county on ports from {}; use another --dir for --port-base {p}",
                dir.display(),
                s.port_base,
            );
        }
        s
    } else {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Setup {
            departments: args.departments.unwrap_or(3),
            port_base: args.port_base.unwrap_or(DEFAULT_PORT_BASE),
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

    let county_dir = dir.join("county");
    std::fs::create_dir_all(&county_dir)?;
    let county_addr = port(0)?;
    let log_key = county_dir.join("county-log.key");
    let witness_key = county_dir.join("county-witness.key");
    let read_vkey = |key: &Path| -> Result<String> {
        Ok(std::fs::read_to_string(crate::keyfile::vkey_path(key))
            .with_context(|| format!("read the verifier key of {}", key.display()))?
            .trim()
            .to_owned())
    };
    if !witness_key.exists() {
        let k = SigningKey::generate(&mut rand::rng());
        crate::keyfile::write_key(
            &witness_key,
            &KeyName::new(WITNESS_NAME)?,
            KeyType::CosignatureV1,
            &k,
            false,
        )?;
    }
    if !log_key.exists() {
        let k = SigningKey::generate(&mut rand::rng());
        crate::keyfile::write_key(
            &log_key,
            &KeyName::new(COUNTY_ORIGIN)?,
            KeyType::Ed25519,
            &k,
            false,
        )?;
    }
    let witness_vkey = read_vkey(&witness_key)?;
    let county_vkey = read_vkey(&log_key)?;
    // Two independent witnesses, each with its own key and state.
    let mut witnesses = Vec::new();
    for (i, (slug, key_name, display)) in WITNESSES.iter().enumerate() {
        let wdir = dir.join(slug);
        std::fs::create_dir_all(&wdir)?;
        let key = wdir.join("witness.key");
        if !key.exists() {
            crate::keyfile::write_key(
                &key,
                &KeyName::new(key_name)?,
                KeyType::CosignatureV1,
                &SigningKey::generate(&mut rand::rng()),
                false,
            )?;
        }
        witnesses.push(DemoWitness {
            display: (*display).to_owned(),
            vkey: read_vkey(&key)?,
            config: wdir.join("witness.toml"),
            addr: port(82 + u16::try_from(i)?)?,
            key,
            dir: wdir,
        });
    }

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
            for t in [&token_path, &ddir.join("push-token")] {
                if !t.exists() {
                    crate::node::write_private(t, &format!("{}\n", crate::node::random_token()))?;
                }
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
                 token_sha256 = \"{hash}\"\n\n\
                 [county]\n\
                 address = \"http://{county_addr}\"\n\
                 token_file = {push:?}\n\
                 witness_vkey = \"{witness_vkey}\"\n\
                 interval_ms = 1000\n",
                name = info.name,
                data = ddir.join("data"),
                key = key_path,
                hash = crate::node::sha256_hex(&token),
                push = ddir.join("push-token"),
            );
            crate::write_file(&config, text.as_bytes(), 0o600)?;
        }
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| format!("read {}", token_path.display()))?
            .trim()
            .to_owned();
        let vkey = read_vkey(&ddir.join("node.key"))?;
        depts.push(Dept {
            info: *info,
            origin,
            dir: ddir,
            config,
            token,
            addr,
            vkey,
        });
    }

    // The county: its config lists every department (trust roots, push
    // tokens), and serves the portal.
    let county_config = county_dir.join("county.toml");
    let (portal, content) = (port(80)?, port(81)?);
    if !county_config.exists() {
        let mut text = format!(
            "# gongkai demo: the county aggregator (plaintext on loopback; see deploy/ for TLS)\n\
             origin = \"{COUNTY_ORIGIN}\"\n\
             name = \"某某县（示例）\"\n\
             log_key = {log_key:?}\n\
             witness_key = {witness_key:?}\n\
             data_dir = {data:?}\n\
             listen = \"{county_addr}\"\n\
             plaintext = true\n\
             county_interval_ms = 5000\n\
             cache_bytes = 16777216\n\n\
             [portal]\n\
             listen = \"{portal}\"\n\
             content_listen = \"{content}\"\n\
             [portal.office]\n\
             host = \"某某县人民政府办公室（示例）\"\n\
             address = \"某某县人民路 1 号政务服务中心 3 楼\"\n\
             phone = \"0000-0000000\"\n\
             hours = \"工作日 9:00–12:00，14:00–17:30\"\n\
             supervisor = \"某某县人民政府办公室（政务公开监督）\"\n",
            data = county_dir.join("data"),
        );
        for w in &witnesses {
            text.push_str(&format!(
                "\n[[witness]]\nname = \"{}\"\nurl = \"http://{}\"\nvkey = \"{}\"\n",
                w.display, w.addr, w.vkey
            ));
        }
        for d in &depts {
            let push = std::fs::read_to_string(d.dir.join("push-token"))?;
            text.push_str(&format!(
                "\n[[departments]]\norigin = \"{}\"\nvkey = \"{}\"\naddress = \"http://{}\"\npush_token_sha256 = \"{}\"\n",
                d.origin,
                d.vkey,
                d.addr,
                crate::node::sha256_hex(push.trim()),
            ));
        }
        crate::write_file(&county_config, text.as_bytes(), 0o600)?;
    }
    // What a verifier trusts: every department key and the county witness.
    let trust = dir.join("trust.toml");
    if !trust.exists() {
        let mut text = format!(
            "# Keys to verify the demo county with (`gongkai verify --all --trust {}`).\n\
             # Both independent witnesses (纪委监委, 第三方) must cosign; the county's\n\
             # own cosignature ({witness_vkey}) is not independent, so it does not count.\n\
             witnesses = [{}]\nquorum = {}\n\
             # The county log key: `audit` checks an export's county/ with it.\n\
             county_log = \"{county_vkey}\"\n",
            trust.display(),
            witnesses
                .iter()
                .map(|w| format!("\"{}\"", w.vkey))
                .collect::<Vec<_>>()
                .join(", "),
            witnesses.len(),
        );
        for d in &depts {
            text.push_str(&format!(
                "\n[[log]]\norigin = \"{}\"\nvkeys = [\"{}\"]\n",
                d.origin, d.vkey
            ));
        }
        std::fs::write(&trust, text)?;
    }
    // Each witness witnesses every log of the trust file and re-synchronises
    // at start from the portal and the other witness.
    for (i, w) in witnesses.iter().enumerate() {
        if w.config.exists() {
            continue;
        }
        let mut text = format!(
            "# gongkai demo: the independent witness {} (plaintext on loopback)\n\
             key = {:?}\ndata_dir = {:?}\nlisten = \"{}\"\nlogs = {:?}\n\n\
             [[source]]\nurl = \"http://{portal}\"\nkind = \"portal\"\n",
            w.display,
            w.key,
            w.dir.join("data"),
            w.addr,
            trust,
        );
        for (j, other) in witnesses.iter().enumerate() {
            if i != j {
                text.push_str(&format!(
                    "\n[[source]]\nurl = \"http://{}\"\nkind = \"witness\"\n",
                    other.addr
                ));
            }
        }
        crate::write_file(&w.config, text.as_bytes(), 0o600)?;
    }
    let county = CountySetup {
        witnesses,
        config: county_config,
        addr: county_addr,
        portal,
        content,
        witness_vkey,
        trust,
    };
    if !setup_path.exists() {
        std::fs::write(&setup_path, serde_json::to_string_pretty(&setup)?)?;
    }
    Ok((setup, depts, county, secret))
}

/// One of the demo's independent witnesses.
struct DemoWitness {
    display: String,
    vkey: String,
    config: PathBuf,
    addr: SocketAddr,
    key: PathBuf,
    dir: PathBuf,
}

/// Runs `gongkai demo`.
///
/// # Errors
/// Set-up failures, a port in use, a node or the aggregator failing to start.
pub fn run(args: &DemoArgs, json: bool) -> Result<()> {
    let (setup, depts, county, secret) = setup(args)?;
    crate::init_tracing_at("warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let bind = |addr: SocketAddr, what: String| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("{what}: port {addr} is in use (try another --port-base)"))
        };
        let mut tasks = Vec::new();

        // The independent witnesses.
        for w in &county.witnesses {
            let text = std::fs::read_to_string(&w.config)
                .with_context(|| format!("read {}", w.config.display()))?;
            let config = gongkai_witness::server::WitnessConfig::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", w.config.display()))?;
            let (name, _, key) = crate::keyfile::read_key(&config.key)?;
            let listener = bind(w.addr, format!("the witness {}", w.display)).await?;
            let stop = stop_signal(stop_rx.clone());
            let display = w.display.clone();
            tasks.push(tokio::spawn(async move {
                gongkai_witness::server::run(
                    config,
                    gongkai_core::note::Cosigner::new(name, key),
                    listener,
                    || {},
                    stop,
                )
                .await
                .map_err(|e| anyhow::anyhow!("the witness {display}: {e}"))
            }));
        }

        // The county aggregator and its portal.
        let text = std::fs::read_to_string(&county.config)
            .with_context(|| format!("read {}", county.config.display()))?;
        let config = gongkai_aggregator::config::CountyConfig::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", county.config.display()))?;
        let keys = crate::county::read_keys(&config)?;
        let listener = bind(county.addr, "the county aggregator".into()).await?;
        let portal = gongkai_aggregator::PortalListeners {
            pages: bind(county.portal, "the portal".into()).await?,
            content: bind(county.content, "the portal's downloads".into()).await?,
        };
        let stop = stop_signal(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            gongkai_aggregator::run_with_portal(config, keys, listener, Some(portal), || {}, stop)
                .await
                .map_err(|e| anyhow::anyhow!("the county aggregator: {e}"))
        }));

        // The departments.
        for d in &depts {
            let (cfg, key) = crate::node::load(&d.config)?;
            if !cfg.data_dir.join("journal").exists() {
                gongkai_node::init(&cfg, &key)
                    .with_context(|| format!("create the log of {}", d.origin))?;
            }
            let listener = bind(d.addr, d.origin.clone()).await?;
            let stop = stop_signal(stop_rx.clone());
            let origin = d.origin.clone();
            tasks.push(tokio::spawn(async move {
                gongkai_node::run(cfg, key, listener, stop)
                    .await
                    .map_err(|e| anyhow::anyhow!("node {origin}: {e}"))
            }));
        }
        let day0 = Date::parse(&setup.day0).map_err(|e| anyhow::anyhow!("demo.json day0: {e}"))?;
        let mut fresh = 0;
        let mut sizes = Vec::new();
        for d in &depts {
            let channel = connect(d.addr).await?;
            let mut w = Writer {
                client: gongkai_proto::DisclosureNodeClient::new(channel.clone()),
                token: d.token.clone(),
                secret,
                day0,
                prefix: format!("demo/{}", d.info.slug),
            };
            fresh += crate::sample::seed(&mut w, &d.info)
                .await
                .with_context(|| format!("publish the sample of {}", d.origin))?;
            let status = gongkai_proto::DisclosureNodeClient::new(channel)
                .get_status(gongkai_proto::v1::GetStatusRequest {
                    origin: d.origin.clone(),
                })
                .await?
                .into_inner();
            sizes.push((d.origin.clone(), status.size));
        }
        if !json {
            eprintln!("sample published ({fresh} new events); waiting for the county to cosign…");
        }
        wait_cosigned(county.addr, &sizes).await?;
        let verified = verify(&county).await;
        print_ready(&setup, &depts, &county, fresh, &verified, json);

        tokio::select! {
            () = crate::node::shutdown_signal() => {}
            failed = wait_any(&mut tasks) => {
                let _ = stop_tx.send(true);
                return Err(failed);
            }
        }
        eprintln!("stopping the county…");
        let _ = stop_tx.send(true);
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                eprintln!("error: {e:#}");
            }
        }
        anyhow::Ok(())
    })
}

/// Completes with the error of the first task that stops (a node or the
/// aggregator must not stop while the demo runs).
async fn wait_any(tasks: &mut [tokio::task::JoinHandle<Result<()>>]) -> anyhow::Error {
    loop {
        for t in tasks.iter_mut() {
            if t.is_finished() {
                return match t.await {
                    Ok(Err(e)) => e,
                    Ok(Ok(())) => anyhow::anyhow!("a service of the county stopped"),
                    Err(e) => anyhow::anyhow!("a service of the county failed: {e}"),
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the county has cosigned every department at least at the
/// size it had after seeding.
async fn wait_cosigned(county: SocketAddr, sizes: &[(String, u64)]) -> Result<()> {
    let channel = connect(county).await?;
    let mut client = gongkai_proto::CountyClient::new(channel);
    let started = std::time::Instant::now();
    loop {
        let status = client
            .get_county_status(gongkai_proto::v1::GetCountyStatusRequest::default())
            .await?
            .into_inner();
        let behind: Vec<&str> = sizes
            .iter()
            .filter(|(origin, size)| {
                !status.departments.iter().any(|d| {
                    // Cosigned, and every document mirrored: a reader's
                    // verification checks the content too.
                    &d.origin == origin && d.cosigned_size >= *size && d.missing_content == 0
                })
            })
            .map(|(o, _)| o.as_str())
            .collect();
        // And every independent witness cosigned them (the county serves
        // a checkpoint once its witnesses answered).
        let unwitnessed = status.witnesses.iter().any(|w| {
            sizes.iter().any(|(origin, size)| {
                !w.logs
                    .iter()
                    .any(|l| &l.origin == origin && l.cosigned_size >= *size)
            })
        });
        if behind.is_empty() && !unwitnessed {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!(
                "the county has not cosigned (with every document) {} after 2 minutes",
                behind.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `gongkai verify --all` against the county, as a reader would, and
/// returns its summary (or why it failed).
async fn verify(county: &CountySetup) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let server = format!("http://{}", county.addr);
    let trust = county.trust.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args(["--server", &server, "verify", "--all", "--trust"])
            .arg(&trust)
            .output()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
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

fn print_ready(
    setup: &Setup,
    depts: &[Dept],
    county: &CountySetup,
    fresh: usize,
    verified: &Result<String, String>,
    json: bool,
) {
    let agg = format!("http://{}", county.addr);
    let portal = format!("http://{}", county.portal);
    if json {
        let v = serde_json::json!({
            "county": {
                "origin": COUNTY_ORIGIN,
                "address": agg,
                "witness_vkey": county.witness_vkey,
                "portal": portal,
                "content": format!("http://{}", county.content),
                "trust_file": county.trust,
                "witnesses": county.witnesses.iter().map(|w| serde_json::json!({
                    "name": w.display, "url": format!("http://{}", w.addr), "vkey": w.vkey,
                })).collect::<Vec<_>>(),
            },
            "departments": depts.iter().map(|d| serde_json::json!({
                "origin": d.origin,
                "name": d.info.name,
                "address": format!("http://{}", d.addr),
                "token_file": d.dir.join("token"),
                "vkey": d.vkey,
            })).collect::<Vec<_>>(),
            "port_base": setup.port_base,
            "new_events": fresh,
            "verified": verified.is_ok(),
            // Why not, in the words of `verify` (empty when verified).
            "verify_error": verified.as_ref().err().map_or("", String::as_str),
        });
        println!("{v}");
        return;
    }
    println!();
    println!(
        "gongkai demo county — {} departments, cosigned by the county and {} independent witnesses",
        depts.len(),
        county.witnesses.len()
    );
    println!();
    println!("  portal (open in a browser)  {portal}");
    println!("  county aggregator (gRPC)    {agg}");
    for d in depts {
        println!("  {:<26}  http://{}   {}", d.info.name, d.addr, d.origin);
    }
    for w in &county.witnesses {
        println!(
            "  witness {:<18}  http://{}   {}",
            w.display, w.addr, w.vkey
        );
    }
    println!();
    match verified {
        Ok(summary) => {
            println!("verified every department log against the county (gongkai verify --all):");
            for line in summary.lines() {
                println!("  {line}");
            }
        }
        Err(why) => {
            println!("VERIFICATION FAILED:");
            for line in why.lines() {
                println!("  {line}");
            }
        }
    }
    let first = &depts[0];
    let exe = "gongkai";
    println!();
    println!("try, in another terminal (the binary is target/release/gongkai):");
    println!("  # a clerk of {} publishes", first.info.name);
    println!(
        "  export GONGKAI_SERVER=http://{} GONGKAI_ORIGIN={} GONGKAI_TOKEN=$(cat {})",
        first.addr,
        first.origin,
        first.dir.join("token").display()
    );
    println!("  echo '会议纪要' > minutes.txt");
    println!(
        "  {exe} publish --item minutes-1 --matter final-accounts --title 会议纪要 --file minutes.txt --date-formed {}",
        setup.day0
    );
    println!("  {exe} items");
    println!("  # anyone verifies, exports and audits, trusting only the keys in the trust file");
    println!(
        "  {exe} --server {agg} verify --all --trust {}",
        county.trust.display()
    );
    println!(
        "  {exe} --server {agg} --origin {} export --out export/",
        first.origin
    );
    println!(
        "  {exe} audit export/ --trust {} --report audit.html",
        county.trust.display()
    );
    println!(
        "  {exe} --server {agg} --origin {} prove --item budget-2026 --out budget.proof.json",
        first.origin
    );
    println!(
        "  {exe} check-proof budget.proof.json --trust {}",
        county.trust.display()
    );
    println!("  {exe} --server {agg} county status");
    println!(
        "  {exe} --server {agg} monitor --all --trust {} --state monitor.json{}",
        county.trust.display(),
        county
            .witnesses
            .iter()
            .map(|w| format!(" --witness http://{}", w.addr))
            .collect::<String>()
    );
    println!();
    println!("(Ctrl-C stops the county; running the same command again resumes it)");
}
