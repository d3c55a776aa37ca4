//! `gongkai witness --config FILE`: an independent witness (FORMAT.md § 21,
//! docs/OPERATIONS.md § Witnesses).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gongkai_core::note::{Cosigner, KeyType};
use gongkai_witness::server::WitnessConfig;

/// `gongkai witness`.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// The witness config (TOML: key, data_dir, listen, logs, [[source]];
    /// see docs/OPERATIONS.md § Witnesses).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Only check the config, the key and the trust file, then exit.
    #[arg(long)]
    check: bool,
}

/// Runs `gongkai witness`.
///
/// # Errors
/// A bad config, key or trust file; a state held by another process or
/// not this witness's; a server failure.
pub fn run(args: &WitnessArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("read {}", args.config.display()))?;
    let config = WitnessConfig::from_toml(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    let (name, key_type, key) = crate::keyfile::read_key(&config.key)?;
    if key_type != KeyType::CosignatureV1 {
        bail!(
            "{} is not a witness key: make one with `gongkai keygen --cosigner --name <witness name> --out {}`",
            config.key.display(),
            config.key.display()
        );
    }
    let cosigner = Cosigner::new(name, key);
    let trust = gongkai_verify::trust::Trust::load(&config.logs)?;
    if args.check {
        println!(
            "config ok: witness {} for {} logs{}",
            cosigner.verifier_key(),
            trust.logs.len() + usize::from(trust.county_log.is_some()),
            if config.source.is_empty() {
                " (no [[source]]: no restore protection)"
            } else {
                ""
            }
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
        let line = format!(
            "gongkai witness {} serving on http://{}",
            cosigner.verifier_key(),
            listener.local_addr()?
        );
        gongkai_witness::server::run(
            config,
            cosigner,
            listener,
            move || eprintln!("{line}"),
            crate::node::shutdown_signal(),
        )
        .await
        .map_err(anyhow::Error::from)
    })
}
