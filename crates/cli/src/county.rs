//! `gongkai aggregator` (run the county aggregator) and `gongkai county …`
//! (its status, the county log, evidence).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gongkai_aggregator::config::CountyConfig;
use gongkai_core::evidence::Evidence;
use gongkai_proto::CountyClient;
use gongkai_proto::v1;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::client::{Connection, status_failure};

/// `gongkai aggregator`.
#[derive(Debug, Args)]
pub struct AggregatorArgs {
    /// The county config (TOML; see docs/OPERATIONS.md § The county
    /// aggregator).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Only check the config and the key files, then exit.
    #[arg(long)]
    check: bool,
}

/// `gongkai county …` (talks to the aggregator at --server).
#[derive(Debug, Subcommand)]
pub enum CountyCommand {
    /// Per department: mirrored and cosigned size, cosignature time, lag,
    /// evidence, alerts.
    Status,
    /// The newest county checkpoint (signed by the county log key).
    Checkpoint,
    /// Evidence of misbehaviour the county recorded.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
}

/// `gongkai county evidence …`.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// List evidence (of one department with --origin).
    List,
    /// Print one evidence file (or save it with --out).
    Show {
        /// Evidence id.
        id: String,
        /// Write the file here instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check an evidence file offline against the department's vkey(s).
    Verify {
        /// The evidence file.
        file: PathBuf,
        /// The department's verifier key file(s) you trust.
        #[arg(long, value_name = "FILE", required = true)]
        vkey: Vec<PathBuf>,
    },
    /// Resume cosigning a department after reviewing its evidence (needs
    /// the admin token, --token or GONGKAI_TOKEN).
    Clear,
}

pub(crate) fn read_keys(config: &CountyConfig) -> Result<gongkai_aggregator::Keys> {
    let (log_name, _, log_key) = crate::keyfile::read_key(&config.log_key)?;
    let (witness_name, _, witness_key) = crate::keyfile::read_key(&config.witness_key)?;
    Ok(gongkai_aggregator::Keys {
        log: (log_name, log_key),
        witness: (witness_name, witness_key),
    })
}

/// Runs `gongkai aggregator --config FILE`.
///
/// # Errors
/// A bad config or key, or a failure of the aggregator.
pub fn run_aggregator(args: &AggregatorArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("read {}", args.config.display()))?;
    let config = CountyConfig::from_toml(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    let keys = read_keys(&config)?;
    if args.check {
        println!(
            "config ok: county {} with {} departments",
            config.origin,
            config.departments.len()
        );
        return Ok(());
    }
    crate::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let mut lines = vec![format!(
            "gongkai county aggregator {} serving on {}://{addr}",
            config.origin,
            if config.plaintext { "http" } else { "https" }
        )];
        let portal = match &config.portal {
            Some(p) => {
                let pages = tokio::net::TcpListener::bind(p.listen)
                    .await
                    .with_context(|| format!("portal: listen on {}", p.listen))?;
                let content = tokio::net::TcpListener::bind(p.content_listen)
                    .await
                    .with_context(|| format!("portal: listen on {}", p.content_listen))?;
                lines.push(format!(
                    "gongkai portal on http://{} (documents on http://{})",
                    pages.local_addr()?,
                    content.local_addr()?
                ));
                Some(gongkai_aggregator::PortalListeners { pages, content })
            }
            None => None,
        };
        // Printed once the mirrors are open and verified: an aggregator
        // that refuses to start never says it is serving.
        gongkai_aggregator::run_with_portal(
            config,
            keys,
            listener,
            portal,
            move || {
                for l in lines {
                    eprintln!("{l}");
                }
            },
            crate::node::shutdown_signal(),
        )
        .await
        .map_err(|e| match e {
            // Exit 75: the supervisor restarts the county, which reloads
            // from disk (exits 1 and 2 are not restarted).
            gongkai_aggregator::AggregatorError::Restart(m) => {
                anyhow::Error::new(crate::client::Failure::Restart(m))
            }
            e => anyhow::Error::new(e),
        })?;
        Ok(())
    })
}

pub(crate) fn connect(conn: &Connection) -> Result<CountyClient<Channel>> {
    let mut endpoint = Endpoint::from_shared(conn.server.clone())
        .with_context(|| format!("invalid --server address {:?}", conn.server))?
        .connect_timeout(Duration::from_secs(10));
    if conn.server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &conn.ca {
            tls = tls.ca_certificate(Certificate::from_pem(
                std::fs::read(ca).with_context(|| format!("read {}", ca.display()))?,
            ));
        }
        if let (Some(c), Some(k)) = (&conn.client_cert, &conn.client_key) {
            tls = tls.identity(Identity::from_pem(std::fs::read(c)?, std::fs::read(k)?));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(CountyClient::new(endpoint.connect_lazy()))
}

fn secs_ago(t: u64) -> String {
    if t == 0 {
        return "never".into();
    }
    let now = gongkai_node::log::now_ms() / 1000;
    format!("{}s ago", now.saturating_sub(t))
}

/// Runs `gongkai county …`.
///
/// # Errors
/// Unreachable county, refusals, files that do not verify.
pub async fn run(conn: &Connection, cmd: CountyCommand, json: bool) -> Result<()> {
    if let CountyCommand::Evidence(EvidenceCommand::Verify { file, vkey }) = &cmd {
        return verify_file(file, vkey, json);
    }
    let mut client = connect(conn)?;
    let fail = |s: tonic::Status| anyhow::Error::from(status_failure(&conn.server, &s));
    match cmd {
        CountyCommand::Status => {
            let s = client
                .get_county_status(v1::GetCountyStatusRequest {})
                .await
                .map_err(fail)?
                .into_inner();
            if json {
                let deps: Vec<_> = s
                    .departments
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "origin": d.origin,
                            "mirrored_size": d.mirrored_size,
                            "cosigned_size": d.cosigned_size,
                            "cosigned_time": d.cosigned_time,
                            "seen_size": d.seen_size,
                            "lag": d.lag,
                            "last_push_ms": d.last_push_ms,
                            "last_advance_ms": d.last_advance_ms,
                            "evidence_count": d.evidence_count,
                            "suspended": d.suspended,
                            "alerts": d.alerts,
                            "missing_content": d.missing_content,
                            "back_dated": d.back_dated,
                            "back_dated_index": d.back_dated_index,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "county_origin": s.county_origin,
                        "county_size": s.county_size,
                        "log_vkey": s.log_vkey,
                        "log_fingerprint": fingerprint(&s.log_vkey),
                        "witness_vkey": s.witness_vkey,
                        "witness_fingerprint": fingerprint(&s.witness_vkey),
                        "departments": deps,
                        "witnesses": s.witnesses.iter().map(|w| serde_json::json!({
                            "name": w.name, "url": w.url, "vkey": w.vkey,
                            "fingerprint": fingerprint(&w.vkey), "error": w.error,
                            "logs": w.logs.iter().map(|l| serde_json::json!({
                                "origin": l.origin, "cosigned_size": l.cosigned_size,
                                "cosigned_time": l.cosigned_time, "lag": l.lag, "error": l.error,
                            })).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!(
                    "county {} (county log size {})",
                    s.county_origin, s.county_size
                );
                // Fingerprints in the one form every tool prints
                // (FORMAT.md § 10): compare them with published ones.
                println!(
                    "county log key   {} (fingerprint {})",
                    s.log_vkey,
                    fingerprint(&s.log_vkey)
                );
                println!(
                    "county witness   {} (fingerprint {})",
                    s.witness_vkey,
                    fingerprint(&s.witness_vkey)
                );
                println!(
                    "{:<40} {:>9} {:>9} {:>12} {:>6} {:>8}  alerts",
                    "department", "mirrored", "cosigned", "cosigned at", "lag", "evidence"
                );
                for d in &s.departments {
                    println!(
                        "{:<40} {:>9} {:>9} {:>12} {:>6} {:>8}  {}",
                        d.origin,
                        d.mirrored_size,
                        d.cosigned_size,
                        secs_ago(d.cosigned_time),
                        d.lag,
                        d.evidence_count,
                        d.alerts.join(",")
                    );
                    if d.back_dated > 0 {
                        println!(
                            "  {} entries arrived claiming times more than 5 min before the county first cosigned the size before them (newest: entry {}): back-dated, or held back while the county was unreachable",
                            d.back_dated, d.back_dated_index
                        );
                    }
                }
                for w in &s.witnesses {
                    println!();
                    println!(
                        "witness {} ({}) {} (fingerprint {}){}",
                        w.name,
                        w.url,
                        w.vkey,
                        fingerprint(&w.vkey),
                        if w.error.is_empty() {
                            String::new()
                        } else {
                            format!("\n  UNREACHABLE: {}", w.error)
                        }
                    );
                    for l in &w.logs {
                        println!(
                            "  {:<40} {:>9} {:>12} {:>6}  {}",
                            l.origin,
                            l.cosigned_size,
                            secs_ago(l.cosigned_time),
                            l.lag,
                            l.error
                        );
                    }
                }
            }
        }
        CountyCommand::Checkpoint => {
            let c = client
                .get_county_checkpoint(v1::GetCountyCheckpointRequest {})
                .await
                .map_err(fail)?
                .into_inner();
            if json {
                println!("{}", serde_json::json!({ "checkpoint": c.checkpoint }));
            } else {
                print!("{}", c.checkpoint);
            }
        }
        CountyCommand::Evidence(EvidenceCommand::List) => {
            let l = client
                .list_evidence(v1::ListEvidenceRequest {
                    origin: conn
                        .origin
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                })
                .await
                .map_err(fail)?
                .into_inner();
            if json {
                let list: Vec<_> = l
                    .evidence
                    .iter()
                    .map(|e| {
                        serde_json::json!({"id": e.id, "origin": e.origin, "kind": e.kind, "observed": e.observed, "cleared": e.cleared})
                    })
                    .collect();
                println!("{}", serde_json::json!({ "evidence": list }));
            } else if l.evidence.is_empty() {
                println!("no evidence");
            } else {
                for e in &l.evidence {
                    println!(
                        "{}  {:<40} {:<16} observed {}{}",
                        e.id,
                        e.origin,
                        e.kind,
                        e.observed,
                        if e.cleared { "  (cleared)" } else { "" }
                    );
                }
            }
        }
        CountyCommand::Evidence(EvidenceCommand::Show { id, out }) => {
            let e = client
                .get_evidence(v1::GetEvidenceRequest { id })
                .await
                .map_err(fail)?
                .into_inner();
            Evidence::parse(&e.text).map_err(|err| {
                crate::client::Failure::Verify(format!(
                    "the county's evidence file does not parse: {err}"
                ))
            })?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &e.text)
                        .with_context(|| format!("write {}", path.display()))?;
                    println!("saved to {}", path.display());
                }
                None if json => println!("{}", serde_json::json!({ "text": e.text })),
                None => print!("{}", e.text),
            }
        }
        CountyCommand::Evidence(EvidenceCommand::Clear) => {
            let Some(origin) = &conn.origin else {
                bail!("give the department with --origin");
            };
            let Some(token) = &conn.token else {
                bail!("clearing evidence needs the admin token (--token or GONGKAI_TOKEN)");
            };
            let mut req = tonic::Request::new(v1::ClearEvidenceRequest {
                origin: origin.to_string(),
            });
            crate::client::put_bearer(&mut req, &conn.server, token)?;
            let r = client.clear_evidence(req).await.map_err(fail)?.into_inner();
            if json {
                println!("{}", serde_json::json!({ "cleared": r.cleared }));
            } else {
                println!(
                    "cleared {} evidence record(s); cosigning of {origin} resumes",
                    r.cleared
                );
            }
        }
        CountyCommand::Evidence(EvidenceCommand::Verify { .. }) => {}
    }
    Ok(())
}

fn verify_file(file: &Path, vkeys: &[PathBuf], json: bool) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let evidence = Evidence::parse(&text)
        .map_err(|e| crate::client::Failure::Verify(format!("{}: {e}", file.display())))?;
    let mut keys = Vec::new();
    for p in vkeys {
        keys.push(*crate::keyfile::read_vkey(p)?.public_key());
    }
    evidence.verify(&keys).map_err(|e| {
        crate::client::Failure::Verify(format!("the evidence does not verify: {e}"))
    })?;
    if json {
        println!(
            "{}",
            serde_json::json!({"verified": true, "origin": evidence.origin.to_string(), "kind": evidence.what.kind(), "observed": evidence.observed_secs})
        );
    } else {
        println!(
            "verified: {} evidence against {} (observed at {}): the department's key signed conflicting statements",
            evidence.what.kind(),
            evidence.origin,
            evidence.observed_secs
        );
    }
    Ok(())
}

/// The fingerprint of a verifier key as text, or "?" if it does not parse.
fn fingerprint(vkey: &str) -> String {
    gongkai_core::note::VerifierKey::parse(vkey.trim())
        .map_or_else(|_| "?".into(), |k| k.fingerprint())
}
