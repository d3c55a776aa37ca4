//! `gongkai node`: create, check and run a department node, and
//! `gongkai token`: make a writer token for its config.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use gongkai_core::keys::SigningKey;
use gongkai_node::config::NodeConfig;

/// Run a department node, or create or check its data.
///
/// `gongkai node --config node.toml` serves the node until SIGTERM or
/// Ctrl-C; `gongkai node init` creates a new log; `gongkai node check`
/// verifies a data directory offline.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeArgs {
    /// The node's config file (TOML; see docs/OPERATIONS.md).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<NodeCommand>,
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Create the log of a new department: the data directory, the journal
    /// and its Genesis entry naming the department, signed by its key.
    Init {
        /// The node's config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Verify a data directory offline, as a start would: every entry's
    /// framing, chain link, catalog rules and signature, the key, and the
    /// largest size the key has signed. Only derived state is repaired (a
    /// torn, never-acknowledged journal tail is cut; the projection catches
    /// up with the journal). Exit 0 if the data is sound, 1 if not.
    Check {
        /// The node's config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run a local node for trying gongkai out: on first use creates a key,
    /// a writer token, a config (plaintext, loopback only) and the log in
    /// DIR; later runs resume the same log. Prints the address, the origin
    /// and commands to try. Not for production (no TLS).
    Dev {
        /// Directory for the key, token, config and data.
        #[arg(long, default_value = "gongkai-dev")]
        dir: PathBuf,
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 7401)]
        port: u16,
    },
}

/// Make a random writer token and the line to put in a node's config.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// A name for the writer (shown in the node's logs).
    #[arg(long, default_value = "clerk")]
    name: String,
}

fn load(config: &Path) -> Result<(NodeConfig, SigningKey)> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("read {}", config.display()))?;
    let cfg =
        NodeConfig::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
    let (name, _, key) = crate::keyfile::read_key(&cfg.key)?;
    if name.as_str() != cfg.origin {
        bail!(
            "{} is the key of {name}, but the config's origin is {}",
            cfg.key.display(),
            cfg.origin
        );
    }
    Ok((cfg, key))
}

/// Runs `gongkai node …`.
pub fn run(args: NodeArgs) -> Result<()> {
    match (args.command, args.config) {
        (Some(NodeCommand::Init { config }), _) => {
            let (cfg, key) = load(&config)?;
            gongkai_node::init(&cfg, &key)?;
            println!(
                "created the log {} for {} in {}",
                cfg.origin,
                cfg.department,
                cfg.data_dir.display()
            );
            println!("start it with: gongkai node --config {}", config.display());
            Ok(())
        }
        (Some(NodeCommand::Check { config }), _) => {
            let (cfg, key) = load(&config)?;
            match gongkai_node::check(&cfg, &key) {
                Ok(r) => {
                    println!(
                        "{}: {} entries verified (chain, rules, signatures)",
                        cfg.origin, r.size
                    );
                    println!("largest checkpoint signed by this key: {}", r.signed_size);
                    if r.truncated_bytes > 0 {
                        println!(
                            "cut a torn, unacknowledged journal tail of {} bytes",
                            r.truncated_bytes
                        );
                    }
                    if r.replayed > 0 {
                        println!(
                            "projection caught up with {} entries from the journal",
                            r.replayed
                        );
                    }
                    Ok(())
                }
                Err(e) => Err(crate::client::Failure::Refused(format!(
                    "{}: check failed: {e}",
                    cfg.origin
                ))
                .into()),
            }
        }
        (Some(NodeCommand::Dev { dir, port }), _) => dev(&dir, port),
        (None, Some(config)) => serve(&config),
        (None, None) => bail!("give --config FILE to run a node (or a subcommand: init, check)"),
    }
}

/// Origin of the `node dev` log.
pub const DEV_ORIGIN: &str = "gongkai.example/510122/finance";

fn dev(dir: &Path, port: u16) -> Result<()> {
    use gongkai_core::note::KeyType;
    use gongkai_core::types::KeyName;
    let config = dir.join("node.toml");
    let token_path = dir.join("token");
    if !config.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let key_path = dir.join("finance.key");
        let key = SigningKey::generate(&mut rand::rng());
        crate::keyfile::write_key(
            &key_path,
            &KeyName::new(DEV_ORIGIN)?,
            KeyType::Ed25519,
            &key,
            false,
        )?;
        let token = random_token();
        write_private(&token_path, &format!("{token}\n"))?;
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let text = format!(
            "# gongkai node dev: a local node for trying gongkai out (no TLS).\n\
             origin = \"{DEV_ORIGIN}\"\n\
             department = \"某某县财政局\"\n\
             division_code = \"510122\"\n\
             data_dir = {:?}\n\
             key = {:?}\n\
             listen = \"127.0.0.1:{port}\"\n\
             plaintext = true\n\n\
             [[writers]]\n\
             name = \"dev\"\n\
             token_sha256 = \"{}\"\n",
            abs(&dir.join("data")),
            abs(&key_path),
            sha256_hex(&token),
        );
        write_private(&config, &text)?;
        let (cfg, key) = load(&config)?;
        gongkai_node::init(&cfg, &key)?;
    }
    if !token_path.exists() {
        bail!(
            "{} is missing; remove {} to start afresh",
            token_path.display(),
            dir.display()
        );
    }
    let server = format!("http://127.0.0.1:{port}");
    println!("gongkai dev node: {DEV_ORIGIN}");
    println!("  address  {server}");
    println!("  config   {}", config.display());
    println!("  token    {}", token_path.display());
    println!();
    println!("try, in another terminal:");
    println!(
        "  export GONGKAI_SERVER={server} GONGKAI_ORIGIN={DEV_ORIGIN} GONGKAI_TOKEN=$(cat {})",
        token_path.display()
    );
    println!("  gongkai status");
    println!("  gongkai checkpoint");
    println!("  gongkai matters");
    println!("(Ctrl-C stops the node; running the same command again resumes it)");
    serve(&config)
}

fn random_token() -> String {
    use rand::Rng as _;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn serve(config: &Path) -> Result<()> {
    let (cfg, key) = load(config)?;
    crate::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listen on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "gongkai node {} serving on {}://{addr}",
            cfg.origin,
            if cfg.plaintext { "http" } else { "https" }
        );
        gongkai_node::run(cfg, key, listener, shutdown_signal()).await?;
        Ok(())
    })
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    eprintln!("shutting down: finishing queued writes");
}

/// Runs `gongkai token`.
pub fn token(args: &TokenArgs) -> Result<()> {
    let token = random_token();
    let hash = sha256_hex(&token);
    println!("token (give it to the writer; it is not stored anywhere):\n  {token}\n");
    println!(
        "add to the node's config:\n[[writers]]\nname = \"{}\"\ntoken_sha256 = \"{hash}\"",
        args.name
    );
    Ok(())
}
