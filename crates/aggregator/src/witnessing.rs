//! Collecting independent witnesses' cosignatures (FORMAT.md § 21).
//!
//! Whenever the county cosigns a new department size or appends to the
//! county log, the collector asks every configured witness, all at once,
//! to cosign it (`add-checkpoint`, with a consistency proof from the size
//! that witness last cosigned), waits at most `witness_timeout_ms`, and
//! then publishes the checkpoint with the cosignatures it got: witnessing
//! adds one round trip per new checkpoint, and a witness that is down
//! delays nothing beyond the timeout (and none at all while it is backing
//! off). What each witness last cosigned is learned from its answers: a
//! 409 carries its newest checkpoint, from which the collector resumes;
//! one of the same size with another root is a fork the department signed
//! (recorded as evidence). Lagging and refusing witnesses are reported by
//! `county status` and the portal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gongkai_core::Hash;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::merkle;
use gongkai_core::note::VerifierKey;
use gongkai_core::witness::AddCheckpoint;
use gongkai_witness::client::{self, Outcome};

use crate::service::County;
use crate::{AggregatorError, now_ms};

/// One configured witness.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Display name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// Verifier key.
    pub vkey: VerifierKey,
}

/// What the county knows about one witness and one log.
#[derive(Debug, Clone, Default)]
pub struct LogWitnessing {
    /// The size the witness last cosigned, as far as the county knows
    /// (0: unknown or none).
    pub cosigned_size: u64,
    /// Unix seconds of its newest cosignature the county holds.
    pub cosigned_time: u64,
    /// The last failure, cleared by a cosignature.
    pub error: Option<String>,
    /// After a refusal, not asked again before this.
    pub retry_at: Option<Instant>,
}

/// A report line for `county status` and the portal.
#[derive(Debug, Clone)]
pub struct WitnessReport {
    /// The witness.
    pub remote: Remote,
    /// Per origin.
    pub logs: Vec<(String, LogWitnessing)>,
    /// The last failure to reach it (cleared when it answers).
    pub error: Option<String>,
}

struct Health {
    next_try: Instant,
    delay: Duration,
    error: Option<String>,
}

/// The collector's state.
pub struct Witnessing {
    remotes: Vec<Remote>,
    timeout: Duration,
    /// Woken when a new size is cosigned.
    pub notify: Arc<tokio::sync::Notify>,
    logs: Mutex<HashMap<(usize, String), LogWitnessing>>,
    health: Mutex<Vec<Health>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a witness that refused a log is left alone for that log.
const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// The longest a failing witness is left alone.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A log to witness this round.
struct Target {
    origin: String,
    size: u64,
    checkpoint: SignedCheckpoint,
    /// `None`: the county log.
    mirror: Option<Arc<crate::mirror::Mirror>>,
}

impl Witnessing {
    /// The collector for `remotes`.
    pub fn new(remotes: Vec<Remote>, timeout: Duration) -> Witnessing {
        let now = Instant::now();
        let health = remotes
            .iter()
            .map(|_| Health {
                next_try: now,
                delay: Duration::from_secs(1),
                error: None,
            })
            .collect();
        Witnessing {
            remotes,
            timeout,
            notify: Arc::new(tokio::sync::Notify::new()),
            logs: Mutex::new(HashMap::new()),
            health: Mutex::new(health),
        }
    }

    /// Per witness, what it cosigned of each log.
    pub fn report(&self) -> Vec<WitnessReport> {
        let logs = lock(&self.logs);
        let health = lock(&self.health);
        self.remotes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut l: Vec<(String, LogWitnessing)> = logs
                    .iter()
                    .filter(|((w, _), _)| *w == i)
                    .map(|((_, o), s)| (o.clone(), s.clone()))
                    .collect();
                l.sort_by(|a, b| a.0.cmp(&b.0));
                WitnessReport {
                    remote: r.clone(),
                    logs: l,
                    error: health.get(i).and_then(|h| h.error.clone()),
                }
            })
            .collect()
    }

    fn known(&self, w: usize, origin: &str) -> LogWitnessing {
        lock(&self.logs)
            .get(&(w, origin.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn set(&self, w: usize, origin: &str, f: impl FnOnce(&mut LogWitnessing)) {
        f(lock(&self.logs).entry((w, origin.to_owned())).or_default());
    }

    fn ready(&self, w: usize) -> bool {
        lock(&self.health)
            .get(w)
            .is_some_and(|h| h.next_try <= Instant::now())
    }

    fn succeeded(&self, w: usize) {
        if let Some(h) = lock(&self.health).get_mut(w) {
            h.delay = Duration::from_secs(1);
            h.next_try = Instant::now();
            h.error = None;
        }
    }

    fn failed(&self, w: usize, error: String) {
        if let Some(h) = lock(&self.health).get_mut(w) {
            h.next_try = Instant::now() + h.delay;
            h.delay = (h.delay * 2).min(MAX_BACKOFF);
            h.error = Some(error);
        }
    }

    /// Whether some ready witness has not cosigned `size` of `origin`.
    fn behind(&self, origin: &str, size: u64) -> bool {
        (0..self.remotes.len()).any(|w| {
            let k = self.known(w, origin);
            self.ready(w)
                && k.cosigned_size < size
                && k.retry_at.is_none_or(|r| r <= Instant::now())
        })
    }
}

/// Runs the collector until `stop`.
pub async fn run(
    county: Arc<County>,
    witnessing: Arc<Witnessing>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = witnessing.notify.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = round(&county, &witnessing).await {
            tracing::warn!(error = %e, "witness round failed");
        }
    }
}

/// One round: every log whose newest cosigned checkpoint is unpublished or
/// not cosigned by every ready witness.
async fn round(county: &Arc<County>, w: &Arc<Witnessing>) -> Result<(), AggregatorError> {
    let mut targets = Vec::new();
    for (origin, m) in &county.mirrors {
        let Some((size, note)) = m.witness_target(&county.ctx)? else {
            continue;
        };
        if size > m.published_size() || w.behind(origin, size) {
            let checkpoint = SignedCheckpoint::parse(&note)
                .map_err(|e| AggregatorError::Storage(format!("cosigned note: {e}")))?;
            targets.push(Target {
                origin: origin.clone(),
                size,
                checkpoint,
                mirror: Some(Arc::clone(m)),
            });
        }
    }
    let (size, note) = county.county_log.newest();
    let origin = county.county_log.origin().to_string();
    if size > 0 && (size > county.county_log.checkpoint().0 || w.behind(&origin, size)) {
        let checkpoint = SignedCheckpoint::parse(&note)
            .map_err(|e| AggregatorError::Storage(format!("county note: {e}")))?;
        targets.push(Target {
            origin,
            size,
            checkpoint,
            mirror: None,
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    for t in targets {
        let county = Arc::clone(county);
        let w = Arc::clone(w);
        tasks.spawn(async move { witness_one(&county, &w, t).await });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "publishing a witnessed checkpoint failed"),
            Err(e) => tracing::error!(error = %e, "witness task failed"),
        }
    }
    Ok(())
}

/// Asks every ready witness to cosign `t`, then publishes it with what
/// they answered.
async fn witness_one(
    county: &Arc<County>,
    w: &Arc<Witnessing>,
    t: Target,
) -> Result<(), AggregatorError> {
    let mut asks = tokio::task::JoinSet::new();
    for i in 0..w.remotes.len() {
        let known = w.known(i, &t.origin);
        if !w.ready(i)
            || known.cosigned_size >= t.size
            || known.retry_at.is_some_and(|r| r > Instant::now())
        {
            continue;
        }
        let county = Arc::clone(county);
        let w = Arc::clone(w);
        let cp = t.checkpoint.clone();
        let mirror = t.mirror.clone();
        let origin = t.origin.clone();
        asks.spawn(async move { ask(&county, &w, i, &origin, mirror, cp).await });
    }
    let mut witnessed = t.checkpoint.clone();
    while let Some(r) = asks.join_next().await {
        if let Ok(Some(lines)) = r {
            for s in lines {
                let _ = witnessed.add_signature(s);
            }
        }
    }
    let size = t.size;
    let county = Arc::clone(county);
    tokio::task::spawn_blocking(move || match &t.mirror {
        Some(m) => m
            .publish_witnessed(&county.ctx, size, &witnessed)
            .map(|_| ()),
        None => county.county_log.publish_witnessed(&witnessed).map(|_| ()),
    })
    .await
    .map_err(|e| AggregatorError::Storage(format!("publish task: {e}")))?
}

/// A witness holds a checkpoint of a department that conflicts with what
/// the county cosigned: the mirror records it as evidence if the
/// department signed it. For the county log (no mirror) the conflict is
/// the county's own key signing two histories — a county restored from an
/// old backup, or a stolen key — which the alert line and `county status`
/// report; the witness refuses it, so readers lose its cosignature.
async fn record_conflict(
    county: &Arc<County>,
    mirror: Option<Arc<crate::mirror::Mirror>>,
    ours: SignedCheckpoint,
    theirs: SignedCheckpoint,
) {
    let Some(m) = mirror else { return };
    let county = Arc::clone(county);
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = m.witness_conflict(&county.ctx, &ours, &theirs) {
            tracing::error!(error = %e, "conflict seen by a witness");
        }
    })
    .await;
}

/// The consistency proof between two sizes of a log (blocking).
async fn proof_between(
    county: &Arc<County>,
    mirror: Option<Arc<crate::mirror::Mirror>>,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, AggregatorError> {
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let county = Arc::clone(county);
    tokio::task::spawn_blocking(move || match mirror {
        Some(m) => m.consistency_proof(old, new),
        None => county.county_log.consistency_proof(old, new),
    })
    .await
    .map_err(|e| AggregatorError::Storage(format!("proof task: {e}")))?
}

/// One witness, one checkpoint: at most three exchanges (a first one, and
/// resuming from the size a conflict answer names). Returns the witness's
/// cosignature lines.
async fn ask(
    county: &Arc<County>,
    w: &Arc<Witnessing>,
    i: usize,
    origin: &str,
    mirror: Option<Arc<crate::mirror::Mirror>>,
    cp: SignedCheckpoint,
) -> Option<Vec<gongkai_core::note::NoteSignature>> {
    let remote = &w.remotes[i];
    let size = cp.checkpoint().size;
    let mut old = w.known(i, origin).cosigned_size;
    for _ in 0..3 {
        let proof = match proof_between(county, mirror.clone(), old, size).await {
            Ok(p) => p,
            Err(e) => {
                w.set(i, origin, |s| {
                    s.error = Some(format!("proof {old}→{size}: {e}"))
                });
                return None;
            }
        };
        let request = AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: cp.clone(),
        };
        match client::add_checkpoint(&remote.url, &remote.vkey, &request, w.timeout).await {
            Ok(Outcome::Cosigned(lines)) => {
                w.succeeded(i);
                let time = now_ms() / 1000;
                w.set(i, origin, |s| {
                    s.cosigned_size = size;
                    s.cosigned_time = time;
                    s.error = None;
                    s.retry_at = None;
                });
                return Some(lines);
            }
            Ok(Outcome::Conflict(None)) => {
                // It holds nothing for this log (a new witness, or one
                // whose state was replaced): start from the beginning.
                w.succeeded(i);
                old = 0;
            }
            Ok(Outcome::Conflict(Some(theirs))) => {
                w.succeeded(i);
                let n = theirs.checkpoint().size;
                if n == size && theirs.checkpoint().root == cp.checkpoint().root {
                    old = n;
                    continue;
                }
                if n == size {
                    let why = format!("holds a checkpoint of size {n} with another root: a fork");
                    tracing::error!(witness = %remote.name, origin, "ALERT: witness {why}");
                    w.set(i, origin, |s| s.error = Some(why));
                    record_conflict(county, mirror.clone(), cp, theirs).await;
                    return None;
                }
                if n > size {
                    let why = format!(
                        "has cosigned size {n}, beyond the county's {size}: it saw checkpoints the county did not cosign"
                    );
                    tracing::warn!(witness = %remote.name, origin, "{why}");
                    w.set(i, origin, |s| {
                        s.error = Some(why);
                        s.retry_at = Some(Instant::now() + REFUSED_RETRY);
                    });
                    return None;
                }
                // Smaller: resume from it if it is consistent with ours.
                match proof_between(county, mirror.clone(), n, size)
                    .await
                    .map(|p| {
                        merkle::verify_consistency(
                            n,
                            size,
                            &theirs.checkpoint().root,
                            &cp.checkpoint().root,
                            &p,
                        )
                    }) {
                    Ok(Ok(())) => old = n,
                    Ok(Err(_)) => {
                        let why = format!(
                            "holds a checkpoint of size {n} inconsistent with the county's"
                        );
                        tracing::error!(witness = %remote.name, origin, "ALERT: witness {why}");
                        w.set(i, origin, |s| s.error = Some(why));
                        record_conflict(county, mirror.clone(), cp, theirs).await;
                        return None;
                    }
                    Err(e) => {
                        w.set(i, origin, |s| s.error = Some(e.to_string()));
                        return None;
                    }
                }
            }
            Ok(Outcome::Refused(status, text)) => {
                let why = format!("refused (HTTP {status}): {text}");
                tracing::warn!(witness = %remote.name, origin, size, "{why}");
                // Refused for this log: asked again in a while, not every
                // round. A 5xx (a witness still confirming its state after
                // a start, or failing to write it) is transient: the
                // witness's backoff applies instead.
                let transient = status >= 500;
                w.set(i, origin, |s| {
                    s.error = Some(why.clone());
                    s.retry_at = (!transient).then(|| Instant::now() + REFUSED_RETRY);
                });
                if transient {
                    w.failed(i, why);
                }
                return None;
            }
            Err(e) => {
                tracing::warn!(witness = %remote.name, origin, size, error = %e, "witness unreachable");
                w.failed(i, e.to_string());
                return None;
            }
        }
    }
    None
}
