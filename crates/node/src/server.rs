//! The node server: opens the log, starts the sequencer and the checkpoint
//! signer, and serves gRPC until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gongkai_core::keys::SigningKey;
use gongkai_core::types::Origin;
use gongkai_proto::{AuthFirst, ClientFaults, DisclosureNodeServer};

/// The calls that write, whose credential is checked before their body is
/// read.
const WRITE_PATHS: &[&str] = &[
    "/gongkai.v1.DisclosureNode/Append",
    "/gongkai.v1.DisclosureNode/AppendBatch",
    "/gongkai.v1.DisclosureNode/UploadContent",
];
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::NodeError;
use crate::config::NodeConfig;
use crate::log::{self, Log, OpenOptions};
use crate::service::NodeService;

/// How long graceful shutdown waits for open responses (e.g. a Follow
/// stream whose client stopped reading) before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Creates the log of a new department (data dir, journal, Genesis entry).
///
/// # Errors
/// [`NodeError::Fatal`] if the config is invalid or a log already exists.
pub fn init(config: &NodeConfig, key: &SigningKey) -> Result<(), NodeError> {
    let origin = Origin::new(&config.origin).map_err(|e| NodeError::Fatal(e.to_string()))?;
    let opts = open_options(config, &origin, key);
    Log::create(&opts, &config.department, &config.division_code)
}

/// What `gongkai node check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Entries in the journal, all verified (chain, rules, signatures).
    pub size: u64,
    /// Bytes of a torn, unacknowledged tail cut from the journal.
    pub truncated_bytes: u64,
    /// Entries the projection lacked and got from the journal.
    pub replayed: u64,
    /// Catalog records (items, matters, requests) of the projection found
    /// equal to a fresh fold of the whole journal.
    pub catalog_records: usize,
    /// Largest checkpoint size the key has signed.
    pub signed_size: u64,
}

/// Verifies a node's data directory offline: what a start does (the whole
/// journal: framing, chain, signatures; the key; the signed size), plus
/// the catalog rules over the whole journal, whose result must equal the
/// projection's records. Repairs only derived state: a torn
/// unacknowledged tail is cut and the projection catches up with the
/// journal.
///
/// # Errors
/// [`NodeError::Fatal`] naming what is wrong.
pub fn check(config: &NodeConfig, key: &SigningKey) -> Result<CheckReport, NodeError> {
    let origin = Origin::new(&config.origin).map_err(|e| NodeError::Fatal(e.to_string()))?;
    let log = Log::open_for_check(&open_options(config, &origin, key))?;
    let catalog_records = log.check_catalog(&config.data_dir)?;
    Ok(CheckReport {
        size: log.journal().len(),
        truncated_bytes: log.journal().truncated_on_open(),
        replayed: log.replayed_on_open(),
        catalog_records,
        signed_size: log.signed_size()?,
    })
}

/// Verifies a node's data directory without changing anything in it (see
/// [`log::verify_read_only`]): as `check`, but a journal shorter than the
/// size the key has signed is reported rather than refused. For `gongkai
/// node restore`, which must leave the old data intact as evidence.
///
/// # Errors
/// [`NodeError::Fatal`] naming what is wrong.
pub fn verify_read_only(config: &NodeConfig, key: &SigningKey) -> Result<log::Verified, NodeError> {
    let origin = Origin::new(&config.origin).map_err(|e| NodeError::Fatal(e.to_string()))?;
    log::verify_read_only(&open_options(config, &origin, key))
}

/// The options to open the log of `config` with.
pub fn open_options<'a>(
    config: &'a NodeConfig,
    origin: &'a Origin,
    key: &'a SigningKey,
) -> OpenOptions<'a> {
    OpenOptions {
        origin,
        data_dir: &config.data_dir,
        key_path: &config.key,
        key,
        reserve_bytes: config.free_space_reserve,
        cache_bytes: config.cache_bytes,
        upload_grace_ms: config.upload_grace_ms,
    }
}

/// Runs the node on `listener` until `shutdown` completes (or the append
/// path fails in a way that needs a reload from disk, which returns an
/// error so the process exits and its supervisor restarts it).
///
/// Shutdown is graceful: the server stops taking requests, open `Follow`
/// streams end, writes already queued are made durable and answered, and a
/// final checkpoint is signed.
///
/// # Errors
/// [`NodeError::Fatal`] when the log cannot be opened (with the reason) or
/// the node had to stop after a storage failure.
pub async fn run(
    config: NodeConfig,
    key: SigningKey,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    run_when_ready(config, key, listener, |_| {}, shutdown).await
}

/// [`run`], calling `ready` with the log's size once the log is open and
/// verified, just before the server takes requests (so a "serving" line is
/// never printed by a node that then refuses to start).
///
/// # Errors
/// As [`run`].
pub async fn run_when_ready(
    config: NodeConfig,
    key: SigningKey,
    listener: TcpListener,
    ready: impl FnOnce(u64),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    config.check().map_err(NodeError::Fatal)?;
    let origin = Origin::new(&config.origin).map_err(|e| NodeError::Fatal(e.to_string()))?;
    let (log, jobs, sequencer) = {
        let (config, origin, key) = (config.clone(), origin.clone(), key.clone());
        tokio::task::spawn_blocking(move || log::start(&open_options(&config, &origin, &key)))
            .await
            .map_err(|e| NodeError::Fatal(format!("start: {e}")))??
    };
    tracing::info!(origin = %origin, size = log.size(), addr = ?listener.local_addr().ok(), "node started");
    ready(log.size());

    let (stop_tx, stop_rx) = watch::channel(false);
    let signer = {
        let log = Arc::clone(&log);
        let key = key.clone();
        let interval = Duration::from_millis(config.checkpoint_interval_ms);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let (log, key) = (Arc::clone(&log), key.clone());
                match tokio::task::spawn_blocking(move || log.sign_checkpoint(&key)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "checkpoint signing failed"),
                    Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
                }
            }
        })
    };

    let replication = Arc::new(crate::replicator::ReplicationStatus::default());
    let replicator = match &config.county {
        Some(link) => Some(crate::replicator::spawn(
            Arc::clone(&log),
            key.clone(),
            link,
            Arc::clone(&replication),
            stop_rx.clone(),
        )?),
        None => None,
    };
    let config = Arc::new(config);
    let stop_sequencer = jobs.clone();
    let service = NodeService::new(
        Arc::clone(&log),
        jobs,
        Arc::clone(&config),
        stop_rx,
        replication,
    );
    // Timeouts, keepalive and stream caps (gongkai_proto::hardened).
    let mut builder = gongkai_proto::hardened(config.limits.max_concurrent_streams);
    if !config.plaintext {
        let tls = config.tls.as_ref().ok_or_else(|| {
            NodeError::Fatal("TLS is required: add [tls] or set plaintext = true".into())
        })?;
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| NodeError::Fatal(format!("read {}: {e}", p.display())))
        };
        let mut tls_config = ServerTlsConfig::new()
            .identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?))
            .timeout(gongkai_proto::guard::TLS_HANDSHAKE);
        if let Some(ca) = &tls.client_ca {
            tls_config = tls_config
                .client_ca_root(Certificate::from_pem(read(ca)?))
                .client_auth_optional(true);
        }
        builder = builder
            .tls_config(tls_config)
            .map_err(|e| NodeError::Fatal(format!("TLS: {e}")))?;
    }
    // Unreadable requests get the client-fault codes (INVALID_ARGUMENT,
    // RESOURCE_EXHAUSTED), not tonic's INTERNAL and OUT_OF_RANGE.
    // Writes: the credential before the body (an anonymous 4 MiB Append is
    // refused from its headers).
    let check = service.credential_check();
    let svc = ClientFaults::new(AuthFirst::new(
        DisclosureNodeServer::new(service)
            .max_decoding_message_size(config.limits.max_message_bytes)
            .max_encoding_message_size(config.limits.max_message_bytes.max(8 << 20)),
        WRITE_PATHS,
        check,
    ));

    let mut failed = log.failed();
    let failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let failure_slot = Arc::clone(&failure);
    let mut stopped = stop_tx.subscribe();
    let stop_all = async move {
        tokio::select! {
            () = shutdown => {}
            r = failed.wait_for(Option::is_some) => {
                if let Ok(reason) = r
                    && let Ok(mut slot) = failure_slot.lock()
                {
                    slot.clone_from(&reason);
                }
            }
        }
        let _ = stop_tx.send(true);
    };
    // At most MAX_CONNECTIONS open at once (TCP_NODELAY on each).
    let incoming = gongkai_proto::limited(listener, config.limits.max_connections);
    let mut server = Box::pin(
        builder
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, stop_all),
    );
    // Graceful shutdown waits for open responses; a client that stopped
    // reading (a stalled Follow) must not keep the node up forever, so after
    // a grace period the remaining connections are dropped.
    let grace = async {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = &mut server => r.map_err(|e| NodeError::Fatal(format!("server: {e}")))?,
        () = grace => tracing::warn!("open streams did not end within the shutdown grace period; closing them"),
    }
    drop(server);

    // The server no longer takes requests (and the service refuses new
    // writes once stopping): the sequencer finishes what is queued before
    // the stop marker, then ends.
    let _ = stop_sequencer.send(None);
    let _ = signer.await;
    if let Some(r) = replicator {
        let _ = r.await;
    }
    let _ = tokio::task::spawn_blocking(move || sequencer.join()).await;
    if let Some(reason) = failure.lock().ok().and_then(|f| f.clone()) {
        return Err(NodeError::Restart(format!(
            "stopped after a storage failure: {reason}; a restart reloads the log from disk"
        )));
    }
    let final_log = Arc::clone(&log);
    let _ = tokio::task::spawn_blocking(move || final_log.sign_checkpoint(&key)).await;
    tracing::info!(size = log.size(), "node stopped");
    Ok(())
}
