//! The witness's HTTP service (FORMAT.md § 21):
//!
//! * `POST /add-checkpoint`: the request of [`gongkai_core::witness`];
//!   200 with the cosignature line, 400, 403, 404, 409 (with this
//!   witness's latest checkpoint of the log), 422, 503 while the log is
//!   unconfirmed since the start;
//! * `GET /checkpoint/<slug>`: the latest checkpoint cosigned for a log
//!   (monitors compare what different witnesses saw; peers re-synchronise
//!   from it);
//! * `GET /`: status (JSON): the witness key and each log's size and time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::note::Cosigner;
use gongkai_core::witness::{self, AddCheckpoint};
use gongkai_verify::trust::Trust;
use serde::Deserialize;

use crate::WitnessError;
use crate::store::{AddError, Resync, Store};

/// `witness.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's private key (a cosignature/v1 key, 0600).
    pub key: PathBuf,
    /// Where the state lives (one file per log).
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The logs witnessed and their keys: a trust file (FORMAT.md § 16.4).
    /// Its `witnesses` are the peers whose cosignatures count at start-up
    /// re-synchronisation.
    pub logs: PathBuf,
    /// Where the logs' newest checkpoints are published, consulted at every
    /// start before this witness cosigns again (restore protection).
    #[serde(default)]
    pub source: Vec<Source>,
    /// Connections open at once at most.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

/// A publication source of checkpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Base URL (`http://host:port[/prefix]`).
    pub url: String,
    /// `portal` (a county portal: `/logs/<slug>/checkpoint`) or `witness`
    /// (a peer witness: `/checkpoint/<slug>`).
    #[serde(default)]
    pub kind: SourceKind,
}

/// What a source serves.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A county portal.
    #[default]
    Portal,
    /// Another witness.
    Witness,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7380))
}

fn default_max_connections() -> usize {
    256
}

impl WitnessConfig {
    /// Parses and checks `witness.toml`.
    ///
    /// # Errors
    /// Bad TOML, an unknown field, a source URL that is not `http://`.
    pub fn from_toml(text: &str) -> Result<WitnessConfig, WitnessError> {
        let c: WitnessConfig =
            toml::from_str(text).map_err(|e| WitnessError::Config(e.to_string()))?;
        for s in &c.source {
            crate::client::parse_base(&s.url)?;
        }
        if c.max_connections == 0 {
            return Err(WitnessError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        Ok(c)
    }
}

/// The service's shared state.
struct Service {
    store: Store,
    name: String,
}

/// Runs the witness on `listener` until `shutdown` resolves. `ready` is
/// called once the state is open.
///
/// # Errors
/// [`WitnessError`] when the trust file or the state cannot be opened, or
/// the server fails.
pub async fn run(
    config: WitnessConfig,
    cosigner: Cosigner,
    listener: tokio::net::TcpListener,
    ready: impl FnOnce(),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), WitnessError> {
    let trust = Trust::load(&config.logs).map_err(|e| WitnessError::Config(e.to_string()))?;
    let name = cosigner.name().to_string();
    let resync = !config.source.is_empty();
    if !resync {
        tracing::warn!(
            "no [[source]] configured: a witness restored from an old backup could cosign a fork; configure the county portal and the other witnesses as sources"
        );
    }
    let store = {
        let data = config.data_dir.clone();
        tokio::task::spawn_blocking(move || Store::open(&data, cosigner, &trust, resync))
            .await
            .map_err(|e| WitnessError::State(e.to_string()))??
    };
    let service = Arc::new(Service { store, name });
    tracing::info!(witness = %service.store.verifier_key(), logs = service.store.origins().count(), addr = ?listener.local_addr().ok(), "witness started");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let resyncer = resync.then(|| {
        let service = Arc::clone(&service);
        let sources = config.source.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                let pending = resync_round(&service, &sources).await;
                if pending == 0 {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    });
    ready();
    let router = router(Arc::clone(&service));
    let limits = gongkai_portal::ServeLimits {
        max_connections: config.max_connections,
        ..gongkai_portal::ServeLimits::default()
    };
    let result = gongkai_portal::serve_with(listener, router, limits, shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(t) = resyncer {
        let _ = t.await;
    }
    result.map_err(|e| WitnessError::Network(format!("server: {e}")))
}

/// One re-synchronisation pass over the unconfirmed logs; returns how many
/// stay unconfirmed.
async fn resync_round(service: &Arc<Service>, sources: &[Source]) -> usize {
    let origins: Vec<String> = service
        .store
        .origins()
        .filter(|o| service.store.is_unconfirmed(o))
        .map(str::to_owned)
        .collect();
    let mut pending = 0;
    // With peers configured, one of them must answer: the county's portal
    // alone is run by the party a witness guards against, and one that
    // withholds this witness's newest cosignature (answering 404 or an
    // older checkpoint) would otherwise confirm a restored witness at its
    // old state, ready to cosign a fork (FORMAT.md § 21.3).
    let has_peers = sources.iter().any(|s| s.kind == SourceKind::Witness);
    for origin in origins {
        let slug = gongkai_portal::model::slug(&origin);
        let mut answers: Option<Vec<SignedCheckpoint>> = None;
        let mut peer_answered = false;
        for s in sources {
            let path = match s.kind {
                SourceKind::Portal => format!("/logs/{slug}/checkpoint"),
                SourceKind::Witness => crate::client::checkpoint_path(&origin),
            };
            match crate::client::request(
                &s.url,
                &path,
                None,
                Duration::from_secs(10),
                crate::client::MAX_ANSWER_BYTES,
            )
            .await
            {
                Ok(a) if a.status == 200 => {
                    peer_answered |= s.kind == SourceKind::Witness;
                    let list = answers.get_or_insert_with(Vec::new);
                    match SignedCheckpoint::from_bytes(&a.body) {
                        Ok(cp) => list.push(cp),
                        Err(e) => {
                            tracing::warn!(source = %s.url, origin, error = %e, "source answered no checkpoint")
                        }
                    }
                }
                Ok(a) if a.status == 404 => {
                    peer_answered |= s.kind == SourceKind::Witness;
                    answers.get_or_insert_with(Vec::new);
                }
                Ok(a) => {
                    tracing::warn!(source = %s.url, origin, status = a.status, "source refused")
                }
                Err(e) => tracing::warn!(source = %s.url, origin, error = %e, "source unreachable"),
            }
        }
        if has_peers && !peer_answered {
            if answers.is_some() {
                tracing::warn!(
                    origin,
                    "only the portal answered: waiting for a peer witness before cosigning this log again"
                );
            }
            answers = None;
        }
        let svc = Arc::clone(service);
        let o = origin.clone();
        match tokio::task::spawn_blocking(move || svc.store.resync(&o, answers)).await {
            Ok(Ok(Resync::Confirmed { from, to })) => {
                tracing::info!(origin, from, to, "log confirmed from its sources");
            }
            Ok(Ok(Resync::NoAnswer)) => {
                pending += 1;
                tracing::warn!(
                    origin,
                    "no source answered yet: not cosigning this log until one does"
                );
            }
            Ok(Ok(Resync::Fork(why))) => {
                pending += 1;
                tracing::error!(
                    origin,
                    why,
                    "ALERT: not cosigning this log: {why}; keep this state and report it"
                );
            }
            Ok(Err(e)) => {
                pending += 1;
                tracing::error!(origin, error = %e, "resync could not store the state");
            }
            Err(e) => {
                pending += 1;
                tracing::error!(origin, error = %e, "resync task failed");
            }
        }
    }
    pending
}

fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route(witness::ADD_CHECKPOINT_PATH, post(add_checkpoint))
        .route("/checkpoint/{slug}", get(checkpoint))
        .route("/", get(status))
        .layer(DefaultBodyLimit::max(witness::MAX_REQUEST_BYTES))
        .with_state(service)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn add_checkpoint(State(service): State<Arc<Service>>, body: Bytes) -> Response {
    let request = match AddCheckpoint::parse(&body) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let svc = Arc::clone(&service);
    let result = tokio::task::spawn_blocking(move || {
        let r = svc.store.add(&request, now);
        (request, r)
    })
    .await;
    let (request, result) = match result {
        Ok(x) => x,
        Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into()),
    };
    let cp = request.checkpoint.checkpoint();
    match result {
        Ok(body) => {
            tracing::info!(origin = %cp.origin, size = cp.size, "cosigned");
            text(StatusCode::OK, body)
        }
        Err(AddError::Refused(r, latest)) => {
            tracing::info!(origin = %cp.origin, size = cp.size, old = request.old_size, refusal = %r, "refused");
            let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
            match latest {
                Some(note) => (
                    status,
                    [(
                        header::CONTENT_TYPE,
                        "text/x.gongkai.checkpoint; charset=utf-8",
                    )],
                    note,
                )
                    .into_response(),
                // A conflict with no checkpoint held: an empty body
                // (FORMAT.md § 21.2), the requester resumes from 0.
                None if status == StatusCode::CONFLICT => (
                    status,
                    [(
                        header::CONTENT_TYPE,
                        "text/x.gongkai.checkpoint; charset=utf-8",
                    )],
                    String::new(),
                )
                    .into_response(),
                None => text(status, format!("{r}\n")),
            }
        }
        Err(AddError::Unconfirmed) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} is not confirmed since this witness started: no publication source has answered yet\n",
                cp.origin
            ),
        ),
        Err(AddError::State(e)) => {
            tracing::error!(error = %e, "state write failed: nothing cosigned");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness could not store its state\n".into(),
            )
        }
    }
}

async fn checkpoint(State(service): State<Arc<Service>>, Path(slug): Path<String>) -> Response {
    let origin = gongkai_portal::model::unslug(&slug);
    match service.store.latest(&origin) {
        Some(s) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            s.note,
        )
            .into_response(),
        None => text(
            StatusCode::NOT_FOUND,
            "no checkpoint cosigned for that log\n".into(),
        ),
    }
}

async fn status(State(service): State<Arc<Service>>) -> Response {
    let logs: Vec<serde_json::Value> = service
        .store
        .origins()
        .map(|o| {
            let s = service.store.latest(o);
            serde_json::json!({
                "origin": o,
                "size": s.as_ref().map_or(0, |s| s.latest.size),
                "cosigned_time": s.as_ref().map_or(0, |s| s.time),
                "confirmed": !service.store.is_unconfirmed(o),
            })
        })
        .collect();
    let body = serde_json::json!({
        "name": service.name,
        "vkey": service.store.verifier_key().to_string(),
        "logs": logs,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_example_parses_and_bad_configs_are_refused() {
        let c =
            WitnessConfig::from_toml(include_str!("../../../deploy/config/witness.toml")).unwrap();
        assert_eq!(c.source.len(), 2);
        assert_eq!(c.source[1].kind, SourceKind::Witness);
        let base = "key = \"k\"\ndata_dir = \"d\"\nlogs = \"l\"\n";
        assert!(WitnessConfig::from_toml(base).is_ok());
        assert!(WitnessConfig::from_toml(&format!("{base}bogus = 1\n")).is_err());
        assert!(
            WitnessConfig::from_toml(&format!("{base}[[source]]\nurl = \"https://x\"\n")).is_err()
        );
        assert!(WitnessConfig::from_toml(&format!("{base}max_connections = 0\n")).is_err());
    }
}
