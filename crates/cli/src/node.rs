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
    /// Start a new log under a new origin after the data directory was
    /// restored from a backup older than what the key has signed.
    ///
    /// A node whose journal is shorter than the largest checkpoint its key
    /// signed refuses to start: appending would give signed indexes new
    /// content, a fork of the department's own log. The tail the backup
    /// lacks can only come from a mirror, and replication to the county does
    /// not exist yet, so the safe way back today is a new log:
    ///
    /// 1. the old data is verified without changing anything in it (as
    ///    `check`, but a journal shorter than the signed size is expected);
    ///    the old data directory stays as it is, as evidence;
    /// 2. a new key for --new-origin is written to --new-key (mode 0600,
    ///    and its verifier key to <new-key>.vkey);
    /// 3. a new config is written next to the old one, <config without
    ///    .toml>.new-origin.toml: the same settings, with the new origin, key
    ///    and data directory (default <old data_dir>.new-origin);
    /// 4. the new log is created there; its Genesis entry names the same
    ///    department as the old log's Genesis.
    ///
    /// It prints what the department must publish: the old origin's last
    /// signed size against what the backup holds, and the new origin and its
    /// verifier key. Stop the node first; nothing is overwritten.
    #[command(verbatim_doc_comment)]
    Restore {
        /// The old node's config file (its data directory is the restored
        /// backup; its key is the old origin's key).
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// The new log's origin (must differ from the old one).
        #[arg(long, value_name = "ORIGIN")]
        new_origin: String,
        /// Where to write the new origin's private key (must not exist).
        #[arg(long, value_name = "PATH")]
        new_key: PathBuf,
        /// The new log's data directory (must not exist or be empty).
        /// Default: <old data_dir>.new-origin.
        #[arg(long, value_name = "DIR")]
        new_data_dir: Option<PathBuf>,
    },
    /// Copy a verified, consistent backup of the log while the node runs:
    /// the journal's whole records (a prefix of the log), the content blobs
    /// and the idempotency keys, into a new data directory. The projection
    /// is rebuilt from the journal when a node starts on it. To restore,
    /// stop the node and put the backup in place of its data directory; if
    /// the key has signed more than the backup holds, the node refuses to
    /// start until `gongkai node recover` pulls the missing tail back from
    /// the county mirror.
    Backup {
        /// The node's config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// A new (or empty) directory for the backup.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Pull back, from a mirror (the county aggregator, given by --server),
    /// the entries a restored backup lacks: they must continue the local
    /// chain and give the root of a checkpoint signed by this log's key, so
    /// only the same entries come back — never new content at an index the
    /// key already signed. Stop the node first.
    Recover {
        /// The node's config file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Hand the log to a new key: writes the new key file (0600), appends a
    /// key_rotated entry signed by the current key with the new key's proof
    /// of possession, carries the signed size over to the new key's state
    /// file, and points the config at the new key. Stop the node first;
    /// publish the new verifier key (printed) to the county and verifiers.
    RotateKey {
        /// The node's config file (rewritten to name the new key).
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Where to write the new private key (must not exist).
        #[arg(long, value_name = "PATH")]
        new_key: PathBuf,
        /// Why the key changes (recorded in the log).
        #[arg(long, default_value = "scheduled key rotation")]
        reason: String,
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

pub(crate) fn load(config: &Path) -> Result<(NodeConfig, SigningKey)> {
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
pub fn run(args: NodeArgs, conn: &crate::client::Connection, json: bool) -> Result<()> {
    match (args.command, args.config) {
        (Some(NodeCommand::Backup { config, out }), _) => {
            let (cfg, key) = load(&config)?;
            crate::admin::backup(&cfg, &key, &out, json)
        }
        (Some(NodeCommand::Recover { config }), _) => {
            let (cfg, key) = load(&config)?;
            crate::admin::recover(&cfg, &key, conn, json)
        }
        (
            Some(NodeCommand::RotateKey {
                config,
                new_key,
                reason,
            }),
            _,
        ) => {
            let (cfg, key) = load(&config)?;
            crate::admin::rotate_key(&config, &cfg, &key, &new_key, &reason, json)
        }
        (Some(NodeCommand::Init { config }), _) => {
            let (cfg, key) = load(&config)?;
            gongkai_node::init(&cfg, &key)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "origin": cfg.origin, "department": cfg.department,
                        "data_dir": cfg.data_dir,
                    })
                );
                return Ok(());
            }
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
                Ok(r) if json => {
                    println!(
                        "{}",
                        serde_json::json!({
                            "origin": cfg.origin, "size": r.size, "signed_size": r.signed_size,
                            "truncated_bytes": r.truncated_bytes, "replayed": r.replayed,
                            "catalog_records": r.catalog_records,
                        })
                    );
                    Ok(())
                }
                Ok(r) => {
                    println!(
                        "{}: {} entries verified (chain, rules, signatures)",
                        cfg.origin, r.size
                    );
                    println!(
                        "catalog: the projection's {} records equal a fresh fold of the journal",
                        r.catalog_records
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
        (
            Some(NodeCommand::Restore {
                config,
                new_origin,
                new_key,
                new_data_dir,
            }),
            _,
        ) => restore(&config, &new_origin, &new_key, new_data_dir),
        (Some(NodeCommand::Dev { dir, port }), _) => dev(&dir, port),
        (None, Some(config)) => serve(&config),
        (None, None) => {
            bail!("give --config FILE to run a node (or a subcommand: init, check, restore, dev)")
        }
    }
}

/// `<path>` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// Where `gongkai node restore` writes the new config: next to the old one,
/// `finance.toml` → `finance.new-origin.toml`.
pub fn restore_config_path(config: &Path) -> PathBuf {
    let base = if config.extension().is_some_and(|e| e == "toml") {
        config.with_extension("")
    } else {
        config.to_path_buf()
    };
    with_suffix(&base, ".new-origin.toml")
}

fn restore(
    config: &Path,
    new_origin: &str,
    new_key: &Path,
    new_data_dir: Option<PathBuf>,
) -> Result<()> {
    use gongkai_core::note::KeyType;
    use gongkai_core::types::{KeyName, Origin};
    let refused = |m: String| -> anyhow::Error { crate::client::Failure::Refused(m).into() };
    let (cfg, key) = load(config)?;
    Origin::new(new_origin).map_err(|e| anyhow::anyhow!("--new-origin: {e}"))?;
    if new_origin == cfg.origin {
        bail!(
            "--new-origin must differ from the old origin {}",
            cfg.origin
        );
    }
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let new_data_dir =
        abs(&new_data_dir.unwrap_or_else(|| with_suffix(&cfg.data_dir, ".new-origin")));
    let new_key = abs(new_key);
    let new_config = restore_config_path(config);
    for p in [
        new_key.clone(),
        crate::keyfile::vkey_path(&new_key),
        with_suffix(&new_key, ".state"),
        new_config.clone(),
    ] {
        if p.exists() {
            bail!("{} already exists; refusing to overwrite it", p.display());
        }
    }
    if new_data_dir.exists()
        && std::fs::read_dir(&new_data_dir)
            .with_context(|| format!("read {}", new_data_dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty; give --new-data-dir an empty or new directory",
            new_data_dir.display()
        );
    }

    // 1. The old data, verified without changing it.
    let old = gongkai_node::verify_read_only(&cfg, &key).map_err(|e| {
        refused(format!(
            "{}: the old data does not verify: {e}",
            cfg.data_dir.display()
        ))
    })?;
    if old.size >= old.signed_size {
        return Err(refused(format!(
            "{}: the journal holds {} entries and the key has signed at most {}: the data is not \
             older than the log, so no new origin is needed; `gongkai node check` and start the node",
            cfg.origin, old.size, old.signed_size
        )));
    }

    // 2. The new key.
    let vkey = crate::keyfile::write_key(
        &new_key,
        &KeyName::new(new_origin)?,
        KeyType::Ed25519,
        &SigningKey::generate(&mut rand::rng()),
        false,
    )?;

    // 3. The new config: the old settings with the new origin, key and data
    // directory; the department as the old log's Genesis names it.
    let text =
        std::fs::read_to_string(config).with_context(|| format!("read {}", config.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parse {}", config.display()))?;
    let path_value = |p: &Path| toml::Value::String(p.to_string_lossy().into_owned());
    table.insert("origin".into(), toml::Value::String(new_origin.into()));
    table.insert("key".into(), path_value(&new_key));
    table.insert("data_dir".into(), path_value(&new_data_dir));
    table.insert(
        "department".into(),
        toml::Value::String(old.department.clone()),
    );
    table.insert(
        "division_code".into(),
        toml::Value::String(old.division_code.clone()),
    );
    let body = toml::to_string(&table).context("encode the new config")?;
    let new_text = format!(
        "# Written by `gongkai node restore` from {}: the log {} continued under a new origin\n\
         # because its data directory was restored from a backup older than its key's\n\
         # checkpoints ({} entries held, {} signed).\n{body}",
        abs(config).display(),
        cfg.origin,
        old.size,
        old.signed_size
    );
    NodeConfig::from_toml(&new_text)
        .map_err(|e| anyhow::anyhow!("the new config would be invalid: {e}"))?;
    write_private(&new_config, &new_text)?;

    // 4. The new log.
    let (new_cfg, new_signing) = load(&new_config)?;
    gongkai_node::init(&new_cfg, &new_signing)?;

    let lost = old.signed_size - old.size;
    println!(
        "old log {} (left untouched, keep it as evidence)",
        cfg.origin
    );
    println!("  data dir     {}", cfg.data_dir.display());
    println!(
        "  verified     {} entries (chain, rules, signatures), root {}",
        old.size, old.root
    );
    if old.torn_bytes > 0 {
        println!(
            "  torn tail    {} bytes of a never-acknowledged write after them (not cut)",
            old.torn_bytes
        );
    }
    println!(
        "  signed size  {} (the largest checkpoint its key signed)",
        old.signed_size
    );
    println!(
        "  missing      {lost} entries (indexes {} to {}) that were signed but are not in this backup",
        old.size,
        old.signed_size - 1
    );
    println!("new log {new_origin}");
    println!("  department   {} ({})", old.department, old.division_code);
    println!("  key          {} (0600)", new_key.display());
    println!("  vkey         {vkey}");
    println!(
        "               also in {}",
        crate::keyfile::vkey_path(&new_key).display()
    );
    println!("  data dir     {}", new_data_dir.display());
    println!("  config       {}", new_config.display());
    println!();
    println!("publish (to the county, the inspection office and on the department's site):");
    println!(
        "  - {} ends: its key signed checkpoints up to size {}, but the department's copy holds only {} \
         entries (root {}); the {lost} entries from index {} on are lost to the department",
        cfg.origin, old.signed_size, old.size, old.root, old.size
    );
    println!(
        "  - {} continues {} from now on; its verifier key is {vkey}",
        new_origin, old.department
    );
    println!(
        "  - the reason (restored from an old backup) and that the old key is retired: never start a node \
         with {} again",
        config.display()
    );
    println!();
    println!(
        "start the new node with: gongkai node --config {}",
        new_config.display()
    );
    Ok(())
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

pub(crate) fn random_token() -> String {
    use rand::Rng as _;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Writes a file only its owner can read.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<()> {
    crate::keyfile::write_file(path, text.as_bytes(), 0o600, false)
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
        // Printed once the log is open and verified: a node that refuses to
        // start never says it is serving.
        let line = format!(
            "gongkai node {} serving on {}://{addr}",
            cfg.origin,
            if cfg.plaintext { "http" } else { "https" }
        );
        gongkai_node::run_when_ready(
            cfg,
            key,
            listener,
            move |_| eprintln!("{line}"),
            shutdown_signal(),
        )
        .await
        .map_err(|e| match e {
            // Exit 75: the supervisor restarts the node, which reloads
            // from disk (exits 1 and 2 are not restarted).
            gongkai_node::NodeError::Restart(m) => {
                anyhow::Error::new(crate::client::Failure::Restart(m))
            }
            e => anyhow::Error::new(e),
        })?;
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
