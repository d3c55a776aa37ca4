//! Replication to the county aggregator (DESIGN.md § Services).
//!
//! A background task wakes when the committed size grows (or on the
//! heartbeat interval), signs a checkpoint of the committed size if it is
//! new (so mirror lag is not bounded by the checkpoint interval), asks the
//! county how far it has the log, and pushes the missing entries — only
//! committed ones, which are durable — in packages aligned to 256 entries
//! (a transfer resumes anywhere after an interruption), then the
//! checkpoint, then any content the county lacks. Errors back off
//! exponentially with jitter; the node keeps accepting writes meanwhile.
//!
//! The county answers with the checkpoint it cosigned, which the node
//! checks (its own signature on the same text, and the county's
//! cosignature when `witness_vkey` is configured) and then serves from
//! GetCheckpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gongkai_core::Hash;
use gongkai_core::calendar::published::{CalendarTable, PublishedCalendars};
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::{VerifierKey, Verifiers};
use gongkai_proto::CountyClient;
use gongkai_proto::v1;
use rand::RngExt as _;
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::NodeError;
use crate::config::CountyLinkConfig;
use crate::log::{CLOCK_AHEAD_OF_COUNTY_MS, Log, now_ms};

/// Entries per package, and the alignment of package ends.
pub const PACKAGE: u64 = 256;

/// Replication progress, shared with GetStatus.
#[derive(Debug, Default)]
pub struct ReplicationStatus {
    mirrored: AtomicU64,
    cosigned: AtomicU64,
    last_replicated_ms: AtomicU64,
}

impl ReplicationStatus {
    /// Entries the county holds (as last reported).
    pub fn mirrored(&self) -> u64 {
        self.mirrored.load(Ordering::Relaxed)
    }

    /// Largest size the county cosigned.
    pub fn cosigned(&self) -> u64 {
        self.cosigned.load(Ordering::Relaxed)
    }

    /// Unix ms of the last successful round (0 if never).
    pub fn last_replicated_ms(&self) -> u64 {
        self.last_replicated_ms.load(Ordering::Relaxed)
    }
}

struct Replicator {
    log: Arc<Log>,
    key: SigningKey,
    client: CountyClient<Channel>,
    token: Option<String>,
    witness: Option<Verifiers>,
    status: Arc<ReplicationStatus>,
    /// How many calendar tables the county had published at the last look.
    calendars_seen: AtomicU64,
    /// The county's address, for messages.
    county_address: String,
}

/// Whether this machine's clock runs ahead of the county's, from the
/// county's clock in its answer (`now` taken just after it arrived, so the
/// round trip only makes the county look later, never earlier). An older
/// county that sends no time says nothing.
fn judge_clock(now: u64, state: &v1::MirrorState) -> Option<String> {
    let county = state.county_time_ms;
    if county == 0 || now <= county.saturating_add(CLOCK_AHEAD_OF_COUNTY_MS) {
        return None;
    }
    Some(format!(
        "this machine's clock is {} s ahead of the county's: entries dated now would be refused by the county and stay ahead of every later entry. Fix the clock (`timedatectl`, NTP); writes resume at the next replication round once the clocks agree",
        (now - county) / 1000
    ))
}

fn request<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(Duration::from_secs(30));
    if let Some(t) = token
        && let Ok(v) = format!("Bearer {t}").parse()
    {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// Starts the replicator task. It ends when `stop` becomes true.
///
/// # Errors
/// [`NodeError::Fatal`] for unreadable certificate or token files or a bad
/// address.
pub fn spawn(
    log: Arc<Log>,
    key: SigningKey,
    config: &CountyLinkConfig,
    status: Arc<ReplicationStatus>,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, NodeError> {
    let fatal = |m: String| NodeError::Fatal(format!("[county]: {m}"));
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| fatal(format!("read {}: {e}", p.display())))
    };
    let mut endpoint = Endpoint::from_shared(config.address.clone())
        .map_err(|e| fatal(format!("address {:?}: {e}", config.address)))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if config.address.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &config.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(k)) = (&config.client_cert, &config.client_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(k)?));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| fatal(format!("TLS: {e}")))?;
    }
    let token = match &config.token_file {
        Some(p) => Some(
            String::from_utf8(read(p)?)
                .map_err(|_| fatal(format!("{} is not UTF-8", p.display())))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let witness = match &config.witness_vkey {
        Some(v) => Some(Verifiers::from(
            VerifierKey::parse(v).map_err(|e| fatal(format!("witness_vkey: {e}")))?,
        )),
        None => None,
    };
    let r = Replicator {
        client: CountyClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(32 << 20)
            .max_encoding_message_size(32 << 20),
        log,
        key,
        token,
        witness,
        status,
        calendars_seen: AtomicU64::new(0),
        county_address: config.address.clone(),
    };
    let interval = Duration::from_millis(config.interval_ms);
    let (min_backoff, max_backoff) = (config.min_backoff_ms, config.max_backoff_ms);
    // Writes wait for the first round's look at what the county holds.
    r.log.await_county_check();
    Ok(tokio::spawn(async move {
        let mut size = r.log.watch_size();
        let mut backoff = min_backoff;
        loop {
            let result = r.round().await;
            r.log.county_checked();
            match result {
                Ok(()) => backoff = min_backoff,
                Err(e) => {
                    let lag = r.log.size().saturating_sub(r.status.mirrored());
                    tracing::warn!(error = %e, lag, retry_ms = backoff, "replication to the county failed");
                    let jitter = rand::rng().random_range(0..=backoff / 2);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(backoff + jitter)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    backoff = (backoff * 2).min(max_backoff);
                    continue;
                }
            }
            tokio::select! {
                changed = size.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }))
}

impl Replicator {
    /// One round: checkpoint, mirror state, entries, checkpoint, content.
    async fn round(&self) -> Result<(), String> {
        let origin = self.log.origin().to_string();
        let (log, key) = (Arc::clone(&self.log), self.key.clone());
        tokio::task::spawn_blocking(move || log.sign_checkpoint(&key))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some((size, note)) = self.log.checkpoint() else {
            return Err("no checkpoint signed yet".into());
        };
        let mut client = self.client.clone();
        let state = client
            .get_mirror_state(request(
                v1::GetMirrorStateRequest {
                    origin: origin.clone(),
                },
                // The county answers only the department itself.
                self.token.as_deref(),
            ))
            .await
            .map_err(|s| format!("GetMirrorState: {}", s.message()))?
            .into_inner();
        self.log.set_clock_ahead(judge_clock(now_ms(), &state));
        if let Err(e) = self.adopt(&state) {
            // Not fatal to the round: the county decides what this log's
            // checkpoint is (e.g. evidence of a fork), so keep pushing.
            tracing::error!(error = %e, "the county's cosigned checkpoint is not this log's");
        }
        if !state.suspended.is_empty() {
            tracing::error!(reason = %state.suspended, "the county suspended cosigning of this log");
            return Err(format!(
                "the county suspended cosigning: {}",
                state.suspended
            ));
        }
        let mut next = state.staged_end;
        let county_holds = state.staged_end.max(state.cosigned_size);
        if county_holds > size {
            // The county holds entries of this log that the node does not:
            // its data (and the key's state file beside it) were restored
            // from an older backup. Appending now would sign other entries
            // at indexes the county already holds: a fork. Stop writing.
            let reason = format!(
                "read-only: the county holds {county_holds} entries of this log but this node only \
                 {size} (its data were restored from an older backup?); appending would fork the \
                 log. Stop the node, run `gongkai --server {} node recover --config <this node's \
                 config>` to bring the missing entries back from the county, then start it again",
                self.county_address
            );
            if let Err(e) = self.log.go_read_only(&reason) {
                tracing::error!(error = %e, "could not record the read-only state on disk");
            }
        }
        if next > size {
            // The county holds more of this log than the node: the data
            // directory is older than what was replicated. The county
            // decides what this checkpoint is (stale, or evidence of a
            // fork); the node reports it and keeps trying.
            let answer = client
                .push(request(
                    v1::PushRequest {
                        origin: origin.clone(),
                        start: size,
                        entries: Vec::new(),
                        checkpoint: note.clone(),
                    },
                    self.token.as_deref(),
                ))
                .await;
            let detail = match answer {
                Ok(_) => String::new(),
                Err(s) => format!(": the county answered {}", s.message()),
            };
            tracing::error!(
                county = next,
                node = size,
                "the county holds more of this log than the node (restored from a backup?){detail}"
            );
            return Err(format!(
                "the county holds {next} entries of this log but the node only {size}{detail}"
            ));
        }
        // Checkpoint a long catch-up in steps, so the county never stages
        // more than about half its bound.
        let step_bytes = (state.max_staged_bytes / 2).max(1 << 20);
        let mut staged_bytes = 0u64;
        let mut last = state;
        loop {
            let end = if next < size {
                ((next / PACKAGE + 1) * PACKAGE).min(size)
            } else {
                size
            };
            let (log, from) = (Arc::clone(&self.log), next);
            let entries = if end > from {
                tokio::task::spawn_blocking(move || log.journal().read_range(from, end))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?
            } else {
                Vec::new()
            };
            let last_package = end == size;
            staged_bytes += entries.iter().map(|e| e.len() as u64).sum::<u64>();
            let checkpoint = if last_package {
                note.clone()
            } else if staged_bytes >= step_bytes {
                staged_bytes = 0;
                let (log, key) = (Arc::clone(&self.log), self.key.clone());
                tokio::task::spawn_blocking(move || log.checkpoint_at(&key, end))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?
            } else {
                String::new()
            };
            let resp = client
                .push(request(
                    v1::PushRequest {
                        origin: origin.clone(),
                        start: next,
                        entries,
                        checkpoint,
                    },
                    self.token.as_deref(),
                ))
                .await;
            let resp = match resp {
                Ok(r) => r.into_inner(),
                Err(s)
                    if s.code() == tonic::Code::FailedPrecondition
                        && s.message().starts_with("stale checkpoint") =>
                {
                    // The county cosigned more already (our checkpoint lags
                    // its state); nothing to do this round.
                    break;
                }
                Err(s) => {
                    return Err(format!(
                        "Push [{next}, {end}): {:?}: {}",
                        s.code(),
                        s.message()
                    ));
                }
            };
            let st = resp.state.unwrap_or_default();
            self.status
                .mirrored
                .store(st.mirrored_size.max(st.staged_end), Ordering::Relaxed);
            self.adopt(&st)?;
            last = st;
            next = end;
            if last_package {
                break;
            }
        }
        self.push_content(&mut client, &origin, &last.missing_content)
            .await?;
        self.refresh_calendar(&mut client).await;
        let now = now_ms();
        self.status.last_replicated_ms.store(now, Ordering::Relaxed);
        let lag = self.log.size().saturating_sub(last.cosigned_size);
        tracing::debug!(
            cosigned = last.cosigned_size,
            lag,
            "replicated to the county"
        );
        Ok(())
    }

    /// Puts in force the holiday tables the county published (FORMAT.md
    /// § 14.4), when their number changed. Each leaf is decoded strictly
    /// and the versions folded by the same rules every verifier applies;
    /// anything wrong keeps the calendar as it is. The tables only inform
    /// judgements and the extension write policy, never what the ledger
    /// accepts, so a county that is unreachable or older (without
    /// `ListCalendar`) leaves the node on the tables it has.
    async fn refresh_calendar(&self, client: &mut CountyClient<Channel>) {
        let list = match client
            .list_calendar(request(v1::ListCalendarRequest {}, None))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => {
                tracing::debug!(error = %s.message(), "the county lists no calendar tables");
                return;
            }
        };
        let count = list.published.len() as u64;
        if count == self.calendars_seen.load(Ordering::Relaxed) {
            return;
        }
        let mut published = PublishedCalendars::new();
        for l in list.published {
            let folded =
                CalendarTable::decode(&l.leaf).and_then(|t| published.apply(l.county_index, t));
            if let Err(e) = folded {
                tracing::error!(index = l.county_index, error = %e, "the county's calendar table is invalid; keeping the tables in force");
                return;
            }
        }
        let years: Vec<String> = published
            .history()
            .iter()
            .map(|(_, t)| format!("{} v{}", t.year(), t.version()))
            .collect();
        self.log.set_calendar(Arc::new(published.in_force()));
        self.calendars_seen.store(count, Ordering::Relaxed);
        tracing::info!(tables = ?years, "holiday tables from the county in force");
    }

    /// Checks and adopts the county's cosigned checkpoint: our own
    /// signature on a text we signed, and (if configured) the county's
    /// cosignature.
    fn adopt(&self, state: &v1::MirrorState) -> Result<(), String> {
        self.status
            .mirrored
            .fetch_max(state.mirrored_size, Ordering::Relaxed);
        if state.cosigned_checkpoint.is_empty()
            || state.cosigned_size <= self.status.cosigned()
                && self
                    .log
                    .cosigned()
                    .is_some_and(|(_, n)| n == state.cosigned_checkpoint)
        {
            return Ok(());
        }
        let cp = SignedCheckpoint::parse(&state.cosigned_checkpoint)
            .map_err(|e| format!("the county's cosigned checkpoint does not parse: {e}"))?;
        let size = cp.checkpoint().size;
        if size > self.log.size() {
            return Err(format!(
                "the county cosigned size {size}, larger than this log ({})",
                self.log.size()
            ));
        }
        let ours = Checkpoint::log_verifier_key(self.log.origin(), &self.key.public_key());
        cp.verify(
            &ours,
            self.witness.as_ref().unwrap_or(&Verifiers::default()),
            usize::from(self.witness.is_some()),
        )
        .map_err(|e| format!("the county's cosigned checkpoint does not verify: {e}"))?;
        let root = gongkai_core::merkle::root_at(self.log.projection(), size)
            .map_err(|e| e.to_string())?;
        if root != cp.checkpoint().root {
            return Err(format!(
                "the county cosigned a root at size {size} that is not this log's"
            ));
        }
        let note = cp.to_string();
        self.log
            .projection()
            .put_checkpoint(size, &note)
            .map_err(|e| e.to_string())?;
        self.log.view().set_cosigned(size, note);
        self.status.cosigned.fetch_max(size, Ordering::Relaxed);
        Ok(())
    }

    async fn push_content(
        &self,
        client: &mut CountyClient<Channel>,
        origin: &str,
        missing: &[Vec<u8>],
    ) -> Result<(), String> {
        for d in missing {
            let Ok(digest) = Hash::from_slice(d) else {
                continue;
            };
            let log = Arc::clone(&self.log);
            let doc = tokio::task::spawn_blocking(move || log.content().get_bytes(&digest))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let Some(doc) = doc else {
                tracing::warn!(%digest, "the county asks for content this node does not hold");
                continue;
            };
            let mut msgs = vec![v1::PushContentRequest {
                part: Some(v1::push_content_request::Part::Start(
                    v1::PushContentStart {
                        origin: origin.to_owned(),
                        digest: d.clone(),
                        salt: doc.salt.to_vec(),
                        length: doc.bytes.len() as u64,
                    },
                )),
            }];
            for chunk in doc.bytes.chunks(crate::view::CONTENT_CHUNK) {
                msgs.push(v1::PushContentRequest {
                    part: Some(v1::push_content_request::Part::Chunk(chunk.to_vec())),
                });
            }
            let mut req = tonic::Request::new(tokio_stream::iter(msgs));
            if let Some(t) = &self.token
                && let Ok(v) = format!("Bearer {t}").parse()
            {
                req.metadata_mut().insert("authorization", v);
            }
            client
                .push_content(req)
                .await
                .map_err(|s| format!("PushContent {digest}: {}", s.message()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn a_clock_ahead_of_the_county_stops_writes_and_an_agreeing_one_resumes_them() {
        let at = |county_time_ms| v1::MirrorState {
            county_time_ms,
            ..Default::default()
        };
        let now = 1_800_000_000_000;
        assert!(judge_clock(now, &at(now)).is_none());
        // A round trip's worth behind: fine.
        assert!(judge_clock(now, &at(now - 3_000)).is_none());
        let m = judge_clock(now, &at(now - 10 * 60_000)).unwrap();
        assert!(m.contains("600 s ahead of the county's"), "{m}");
        // A county whose clock is ahead of ours is not our problem here
        // (its own check refuses nothing we date).
        assert!(judge_clock(now, &at(now + 3_600_000)).is_none());
        // An older county sends no time.
        assert!(judge_clock(now, &at(0)).is_none());
    }
}
