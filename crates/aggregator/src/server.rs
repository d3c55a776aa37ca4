//! The aggregator server: opens the county state, the mirrors and the
//! county log, runs the periodic tasks (county leaves, freshness
//! re-cosigning, withholding alerts) and serves gRPC until shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::county::{self, CountyLeaf};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::Cosigner;
use gongkai_core::types::{KeyName, Origin};
use gongkai_proto::{AuthFirst, ClientFaults, CountyServer, DisclosureNodeServer};

/// The department-only calls, whose credential is checked before their
/// body is read.
const PUSH_PATHS: &[&str] = &[
    "/gongkai.v1.County/Push",
    "/gongkai.v1.County/PushContent",
    "/gongkai.v1.County/GetMirrorState",
];
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::CountyConfig;
use crate::county_log::CountyLog;
use crate::mirror::{Context, Mirror};
use crate::portal::PortalListeners;
use crate::service::{County, CountyService, MirrorService};
use crate::state::{Durability, State};
use crate::{AggregatorError, now_ms};

/// The county's two keys.
pub struct Keys {
    /// Signs the county log's checkpoints (its name must be the county
    /// origin).
    pub log: (KeyName, SigningKey),
    /// Cosigns department checkpoints (tlog-cosignature/v1) under its name.
    pub witness: (KeyName, SigningKey),
}

/// Runs the aggregator on `listener` until `shutdown` completes.
///
/// # Errors
/// [`AggregatorError::Fatal`] when the state or a mirror cannot be opened.
pub async fn run(
    config: CountyConfig,
    keys: Keys,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AggregatorError> {
    run_with_portal(config, keys, listener, None, || {}, shutdown).await
}

/// [`run`], and the public portal on `portal` when given (the caller binds
/// the listeners, usually from the config's `[portal]`). `ready` is called
/// once the state, the mirrors and the county log are open and verified,
/// just before the servers take requests.
///
/// # Errors
/// As [`run`].
pub async fn run_with_portal(
    config: CountyConfig,
    keys: Keys,
    listener: TcpListener,
    portal: Option<PortalListeners>,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AggregatorError> {
    config.check().map_err(AggregatorError::Fatal)?;
    let origin = Origin::new(&config.origin).map_err(|e| AggregatorError::Fatal(e.to_string()))?;
    if keys.log.0.as_str() != origin.as_str() {
        return Err(AggregatorError::Fatal(format!(
            "the county log key is named {}, not the county origin {origin}",
            keys.log.0
        )));
    }
    if keys.log.1.public_key() == keys.witness.1.public_key() {
        return Err(AggregatorError::Fatal(
            "the county log key and the witness key must be different keys".into(),
        ));
    }
    let cosigner = Cosigner::new(keys.witness.0.clone(), keys.witness.1.clone());
    let witnessing = if config.witness.is_empty() {
        None
    } else {
        let mut remotes = Vec::new();
        for w in &config.witness {
            let vkey = w.verifier_key().map_err(AggregatorError::Fatal)?;
            if *vkey.public_key() == keys.witness.1.public_key()
                || *vkey.public_key() == keys.log.1.public_key()
            {
                return Err(AggregatorError::Fatal(format!(
                    "witness {}: that is one of the county's own keys; an independent witness holds its own key",
                    w.url
                )));
            }
            remotes.push(crate::witnessing::Remote {
                name: w.display_name(),
                url: w.url.clone(),
                vkey,
            });
        }
        Some(Arc::new(crate::witnessing::Witnessing::new(
            remotes,
            Duration::from_millis(config.witness_timeout_ms),
        )))
    };
    let witness_notify = witnessing.as_ref().map(|w| Arc::clone(&w.notify));
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let vkeys = (
        Checkpoint::log_verifier_key(&origin, &keys.log.1.public_key()).to_string(),
        cosigner.verifier_key().to_string(),
    );
    let county = {
        let config = Arc::clone(&config);
        let origin = origin.clone();
        let log_key = keys.log.1.clone();
        tokio::task::spawn_blocking(move || -> Result<County, AggregatorError> {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                AggregatorError::Fatal(format!("{}: {e}", config.data_dir.display()))
            })?;
            let state = Arc::new(State::open(&config.data_dir, config.cache_bytes)?);
            // The mirrors share one database: a county holds many logs.
            let projections =
                crate::mirror::open_projections(&config.data_dir, config.cache_bytes)?;
            let mut mirrors = HashMap::new();
            for d in &config.departments {
                let (o, vkey) = d.verifier_key().map_err(AggregatorError::Fatal)?;
                let record = state.record(o.as_str())?;
                let m = Mirror::open(
                    &config.data_dir,
                    &projections,
                    o.clone(),
                    vkey,
                    config.free_space_reserve,
                    &record,
                )?;
                let noted = m.note_answer_content(&state)?;
                if noted > 0 {
                    tracing::info!(origin = %o, noted, "asking the node for request answers' content");
                }
                tracing::info!(origin = %o, mirrored = m.view.size(), cosigned = record.cosigned_size, "mirror opened");
                mirrors.insert(o.to_string(), Arc::new(m));
            }
            let county_log = Arc::new(CountyLog::open(
                Arc::clone(&state),
                origin,
                log_key,
                cosigner.clone(),
                witness_notify.is_some(),
            )?);
            let ctx = Arc::new(Context {
                state,
                cosigner,
                max_staged_bytes: config.max_staged_bytes,
                max_future_ms: config.max_future_ms,
                recosign_interval_ms: config.recosign_interval_ms,
                witness_notify,
            });
            Ok(County::new(
                mirrors,
                ctx,
                county_log,
                Arc::clone(&config),
                stop_rx,
                vkeys,
                witnessing,
            ))
        })
        .await
        .map_err(|e| AggregatorError::Fatal(format!("start: {e}")))??
    };
    let county = Arc::new(county);
    ready();
    // What the bucket holds, kept by the publisher; with `public_url` the
    // portal redirects reads of it there.
    let held = Arc::new(gongkai_portal::publish::Held::default());
    let bucket = config.publish.as_ref().and_then(|p| {
        p.public_url
            .as_ref()
            .map(|base| gongkai_portal::BucketRedirect {
                base: base.clone(),
                held: Arc::clone(&held),
            })
    });
    let portal_tasks = match portal {
        Some(listeners) => crate::portal::spawn(
            Arc::clone(&county),
            config.portal.as_ref(),
            bucket,
            listeners,
            stop_tx.subscribe(),
        )
        .map_err(|e| AggregatorError::Fatal(format!("portal: {e}")))?,
        None => Vec::new(),
    };
    tracing::info!(origin = %origin, departments = county.mirrors.len(), addr = ?listener.local_addr().ok(), "county aggregator started");

    // The bucket publisher (`[publish]`): the logs as static files on an
    // S3-compatible store, checkpoint last (FORMAT.md § 9.4).
    let publisher = match &config.publish {
        Some(p) => {
            let store = p
                .store()
                .map_err(|e| AggregatorError::Fatal(format!("[publish]: {e}")))?;
            let source: Arc<dyn gongkai_portal::Source> =
                Arc::new(crate::portal::PortalSource::new(Arc::clone(&county)));
            Some(tokio::spawn(gongkai_portal::publish::run(
                source,
                store,
                Duration::from_millis(p.interval_ms.max(100)),
                held,
                stop_tx.subscribe(),
            )))
        }
        None => None,
    };
    let collector = county.witnessing.as_ref().map(|w| {
        tokio::spawn(crate::witnessing::run(
            Arc::clone(&county),
            Arc::clone(w),
            stop_tx.subscribe(),
        ))
    });
    let ticker = {
        let county = Arc::clone(&county);
        let mut stop = stop_tx.subscribe();
        let interval = Duration::from_millis(config.county_interval_ms);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let c = Arc::clone(&county);
                match tokio::task::spawn_blocking(move || periodic(&c)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "county periodic task failed"),
                    Err(e) => tracing::error!(error = %e, "county periodic task panicked"),
                }
            }
        })
    };

    // Timeouts, keepalive and stream caps (gongkai_proto::hardened).
    let mut builder = gongkai_proto::hardened(256);
    if !config.plaintext {
        let tls = config.tls.as_ref().ok_or_else(|| {
            AggregatorError::Fatal("TLS is required: add [tls] or set plaintext = true".into())
        })?;
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| AggregatorError::Fatal(format!("read {}: {e}", p.display())))
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
            .map_err(|e| AggregatorError::Fatal(format!("TLS: {e}")))?;
    }
    let max = config.max_message_bytes;
    // Unreadable requests get the client-fault codes (INVALID_ARGUMENT,
    // RESOURCE_EXHAUSTED), not tonic's INTERNAL and OUT_OF_RANGE.
    // A push's 16 MiB body is read only from a caller holding some
    // department's push credential (which department is checked after).
    let pushers = {
        let c = Arc::clone(&county);
        Arc::new(move |req: &tonic::Request<()>| c.push_credential(req))
    };
    let county_svc = ClientFaults::new(AuthFirst::new(
        CountyServer::new(CountyService::new(Arc::clone(&county)))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max.max(8 << 20)),
        PUSH_PATHS,
        pushers,
    ));
    let mirror_svc = ClientFaults::new(
        DisclosureNodeServer::new(MirrorService::new(Arc::clone(&county)))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max.max(8 << 20)),
    );
    let mut stopped = stop_tx.subscribe();
    let mut failed = county.ctx.state.failed();
    let stop_all = async move {
        tokio::select! {
            () = shutdown => {}
            _ = failed.wait_for(Option::is_some) => {}
        }
        let _ = stop_tx.send(true);
    };
    // At most MAX_CONNECTIONS open at once (TCP_NODELAY on each).
    let incoming = gongkai_proto::limited(listener, config.max_connections);
    let mut server = Box::pin(
        builder
            .add_service(county_svc)
            .add_service(mirror_svc)
            .serve_with_incoming_shutdown(incoming, stop_all),
    );
    let grace = async {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    tokio::select! {
        r = &mut server => r.map_err(|e| AggregatorError::Fatal(format!("server: {e}")))?,
        () = grace => tracing::warn!("open streams did not end within the shutdown grace period; closing them"),
    }
    drop(server);
    let _ = ticker.await;
    if let Some(c) = collector {
        let _ = c.await;
    }
    if let Some(p) = publisher {
        let _ = p.await;
    }
    for t in portal_tasks {
        if let Ok(Err(e)) = t.await {
            tracing::error!(error = %e, "portal server failed");
        }
    }
    if let Some(reason) = county.ctx.state.failed().borrow().clone() {
        return Err(AggregatorError::Restart(format!(
            "stopped after a storage failure: {reason}; a restart reloads from disk"
        )));
    }
    county.ctx.state.flush()?;
    tracing::info!("county aggregator stopped");
    Ok(())
}

/// One round of the periodic work: a county leaf for the departments that
/// advanced, freshness re-cosigning, withholding alerts.
fn periodic(county: &County) -> Result<(), AggregatorError> {
    let state = &county.ctx.state;
    // A mirror whose projector stopped, or whose journal is poisoned, stays
    // stuck until its journal is replayed: fail closed and be restarted.
    for (origin, m) in &county.mirrors {
        if let Err(e) = m.projector_check() {
            state.fail(format!("mirror of {origin}: {e}"));
        } else if m.view.journal().is_poisoned() {
            state.fail(format!("mirror journal of {origin} failed an I/O"));
        }
    }
    let mut advanced = Vec::new();
    let mut sizes = Vec::new();
    for (origin, rec) in state.records()? {
        if !county.mirrors.contains_key(&origin) {
            continue;
        }
        if rec.cosigned_size > rec.leafed_size && !rec.cosigned_note.is_empty() {
            if rec.cosigned_note.len() > county::MAX_NOTE_LEN {
                // Not cosigned since the limit exists; left out so that it
                // holds up no other department.
                tracing::error!(
                    origin,
                    bytes = rec.cosigned_note.len(),
                    "cosigned note too large for a county leaf"
                );
                continue;
            }
            match SignedCheckpoint::parse(&rec.cosigned_note) {
                Ok(cp) => {
                    advanced.push(cp);
                    sizes.push((origin.clone(), rec.cosigned_size));
                }
                Err(e) => tracing::error!(origin, error = %e, "cosigned note does not parse"),
            }
        }
    }
    if !advanced.is_empty() {
        // Usually one leaf; more when the notes do not fit one.
        let leaves = CountyLeaf::pack(now_ms() / 1000, advanced)
            .map_err(|e| AggregatorError::Storage(e.to_string()))?;
        let bytes: Vec<Vec<u8>> = leaves.iter().map(CountyLeaf::encode).collect();
        let (first, _) = county.county_log.append(&bytes)?;
        tracing::info!(
            first,
            leaves = bytes.len(),
            departments = sizes.len(),
            "county leaves appended"
        );
        if let Some(w) = &county.witnessing {
            w.notify.notify_one();
        }
        for (origin, size) in sizes {
            // Records change only under their mirror's lock.
            let Some(mirror) = county.mirrors.get(&origin) else {
                continue;
            };
            let _guard = mirror.staging.blocking_lock();
            let (read, mut rec) = state.versioned(&origin)?;
            rec.leafed_size = rec.leafed_size.max(size);
            state.swap_record(&origin, read, &rec, Durability::Flushed)?;
        }
    }
    let now = now_ms();
    for (origin, mirror) in &county.mirrors {
        match mirror.refresh(&county.ctx) {
            Ok(true) => tracing::debug!(origin, "re-cosigned for freshness"),
            Ok(false) => {}
            Err(e) => tracing::warn!(origin, error = %e, "re-cosigning failed"),
        }
        let rec = state.record(origin)?;
        if rec.suspended.is_some() {
            tracing::error!(origin, reason = ?rec.suspended, "ALERT: cosigning suspended (evidence recorded)");
        }
        if now.saturating_sub(rec.last_push_ms) > county.config.alert_no_push_ms {
            tracing::error!(
                origin,
                last_push_ms = rec.last_push_ms,
                "ALERT: the department has not pushed for too long (withholding?)"
            );
        } else if now.saturating_sub(rec.last_advance_ms) > county.config.alert_no_advance_ms {
            tracing::error!(
                origin,
                last_advance_ms = rec.last_advance_ms,
                "ALERT: the department's log has not advanced for too long"
            );
        }
    }
    Ok(())
}
