//! The aggregator's gRPC services: `County` (replication, the county log,
//! status, evidence) and the read-only mirror of `DisclosureNode`.
//!
//! **Push authentication.** A push for origin `O` needs either a client
//! certificate, verified by TLS against the configured client CA, whose
//! subject alternative names include the URI `urn:gongkai:push:O`
//! (docs/OPERATIONS.md shows how to issue one), or — for plaintext loopback
//! deployments — `authorization: Bearer <token>` whose SHA-256 is the
//! department's `push_token_sha256`. A credential for one origin never
//! pushes another. Unknown origins are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gongkai_core::Hash;
use gongkai_node::view::{LogSource, LogView, ReadService, ResponseStream};
use gongkai_proto::v1;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use crate::config::CountyConfig;
use crate::county_log::CountyLog;
use crate::mirror::{Context, Mirror, MirrorReport};
use crate::state::Durability;
use crate::{AggregatorError, now_ms};

/// The prefix of the URI SAN that names the origin a certificate may push.
pub const PUSH_URI_PREFIX: &str = gongkai_node::identity::PUSH_URI_PREFIX;

/// A content push that sends no chunk for this long is ended.
const SLOW_SENDER: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything the services share.
pub struct County {
    /// Mirrors by origin.
    pub mirrors: HashMap<String, Arc<Mirror>>,
    /// Shared push context.
    pub ctx: Arc<Context>,
    /// The county log.
    pub county_log: Arc<CountyLog>,
    /// The config.
    pub config: Arc<CountyConfig>,
    /// Push-token hashes by origin.
    push_tokens: HashMap<String, [u8; 32]>,
    reader_tokens: Vec<[u8; 32]>,
    admin_token: Option<[u8; 32]>,
    /// Per-origin push rate windows `(second, count)`.
    rates: Mutex<HashMap<String, (u64, u32)>>,
    shutdown: watch::Receiver<bool>,
    /// `(county log vkey, witness vkey)`.
    pub vkeys: (String, String),
    /// The independent witnesses' collector, when witnesses are configured.
    pub witnessing: Option<Arc<crate::witnessing::Witnessing>>,
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer<T>(req: &Request<T>) -> Option<[u8; 32]> {
    let v = req.metadata().get("authorization")?.to_str().ok()?;
    let token = v.strip_prefix("Bearer ")?;
    Some(Sha256::digest(token.as_bytes()).into())
}

/// The origins a DER certificate may push (its `urn:gongkai:push:` URIs).
pub fn cert_push_origins(der: &[u8]) -> Vec<String> {
    gongkai_node::identity::cert_origins(der, PUSH_URI_PREFIX)
}

impl County {
    /// Builds the services' shared state.
    pub fn new(
        mirrors: HashMap<String, Arc<Mirror>>,
        ctx: Arc<Context>,
        county_log: Arc<CountyLog>,
        config: Arc<CountyConfig>,
        shutdown: watch::Receiver<bool>,
        vkeys: (String, String),
        witnessing: Option<Arc<crate::witnessing::Witnessing>>,
    ) -> County {
        let push_tokens = config
            .departments
            .iter()
            .filter_map(|d| Some((d.origin.clone(), hex32(d.push_token_sha256.as_deref()?)?)))
            .collect();
        let reader_tokens = config
            .readers
            .iter()
            .filter_map(|r| hex32(&r.token_sha256))
            .collect();
        let admin_token = config.admin_token_sha256.as_deref().and_then(hex32);
        County {
            mirrors,
            ctx,
            county_log,
            push_tokens,
            reader_tokens,
            admin_token,
            rates: Mutex::new(HashMap::new()),
            shutdown,
            vkeys,
            witnessing,
            config,
        }
    }

    fn mirror(&self, origin: &str) -> Result<&Arc<Mirror>, Status> {
        if origin.is_empty() {
            return Err(Status::invalid_argument("origin is required"));
        }
        self.mirrors.get(origin).ok_or_else(|| {
            Status::not_found(format!("{origin} is not a department of this county"))
        })
    }

    /// The request carries the admin token; `what` says what cannot be
    /// done when no admin token is configured.
    fn authorize_admin<T>(&self, req: &Request<T>, what: &str) -> Result<(), Status> {
        let Some(admin) = self.admin_token else {
            return Err(Status::permission_denied(format!(
                "no admin_token_sha256 is configured: {what}"
            )));
        };
        if bearer(req).is_some_and(|d| constant_eq(&admin, &d)) {
            Ok(())
        } else {
            Err(Status::permission_denied("the admin token is required"))
        }
    }

    /// Authenticates a push for `origin` and applies its rate quota.
    fn authorize_push<T>(&self, req: &Request<T>, origin: &str) -> Result<Arc<Mirror>, Status> {
        let mirror = self.authorize_department(req, origin)?;
        let quota = self
            .config
            .departments
            .iter()
            .find(|d| d.origin == origin)
            .map_or(0, |d| d.max_pushes_per_sec);
        if quota > 0 {
            let second = now_ms() / 1000;
            let mut rates = self
                .rates
                .lock()
                .map_err(|_| Status::internal("rate lock poisoned"))?;
            let slot = rates.entry(origin.to_owned()).or_insert((second, 0));
            if slot.0 != second {
                *slot = (second, 0);
            }
            slot.1 += 1;
            if slot.1 > quota {
                return Err(Status::resource_exhausted(format!(
                    "{origin} may push {quota} times per second"
                )));
            }
        }
        Ok(mirror)
    }

    /// Whether the caller holds some department's push credential (a
    /// client certificate naming an origin to push, or a push token of a
    /// configured department); which department is checked once the
    /// request is read ([`County::authorize_department`]).
    ///
    /// # Errors
    /// UNAUTHENTICATED without one, PERMISSION_DENIED for a wrong one.
    pub fn push_credential<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if let Some(certs) = req.peer_certs()
            && let Some(leaf) = certs.first()
        {
            if cert_push_origins(leaf.as_ref()).is_empty() {
                return Err(Status::permission_denied(
                    "this client certificate names no origin it may push",
                ));
            }
            return Ok(());
        }
        let Some(digest) = bearer(req) else {
            return Err(Status::unauthenticated(
                "pushes need a client certificate or `authorization: Bearer <push token>`",
            ));
        };
        if self.push_tokens.values().any(|h| constant_eq(h, &digest)) {
            Ok(())
        } else {
            Err(Status::permission_denied(
                "this is not a push token of this county",
            ))
        }
    }

    /// Authenticates the department `origin` itself: its push certificate
    /// or push token. What the county holds of a department, and the
    /// department's lock it takes to say so, are for the department.
    fn authorize_department<T>(
        &self,
        req: &Request<T>,
        origin: &str,
    ) -> Result<Arc<Mirror>, Status> {
        let mirror = self.mirrors.get(origin).ok_or_else(|| {
            Status::permission_denied(format!("{origin:?} is not a department of this county"))
        })?;
        if let Some(certs) = req.peer_certs()
            && let Some(leaf) = certs.first()
        {
            let allowed = cert_push_origins(leaf.as_ref());
            if !allowed.iter().any(|o| o == origin) {
                return Err(Status::permission_denied(format!(
                    "this client certificate may push {allowed:?}, not {origin}"
                )));
            }
        } else {
            let Some(digest) = bearer(req) else {
                return Err(Status::unauthenticated(
                    "pushes need a client certificate or `authorization: Bearer <push token>`",
                ));
            };
            let ok = self
                .push_tokens
                .get(origin)
                .is_some_and(|h| constant_eq(h, &digest));
            if !ok {
                return Err(Status::permission_denied(format!(
                    "this token may not push {origin}"
                )));
            }
        }
        Ok(Arc::clone(mirror))
    }

    fn state_pb(&self, mirror: &Mirror, r: &MirrorReport) -> Result<v1::MirrorState, Status> {
        let (missing, _) = self
            .ctx
            .state
            .missing(mirror.origin.as_str(), 256)
            .map_err(Status::from)?;
        Ok(v1::MirrorState {
            origin: mirror.origin.to_string(),
            mirrored_size: r.mirrored,
            staged_end: r.staged_end,
            cosigned_size: r.record.cosigned_size,
            cosigned_checkpoint: r.record.cosigned_note.clone(),
            missing_content: missing.iter().map(|h| h.0.to_vec()).collect(),
            max_staged_bytes: self.ctx.max_staged_bytes,
            suspended: r.record.suspended.clone().unwrap_or_default(),
            county_time_ms: now_ms(),
        })
    }

    /// Per-department status with alerts.
    ///
    /// # Errors
    /// Storage errors.
    pub fn department_status(&self) -> Result<Vec<v1::DepartmentStatus>, AggregatorError> {
        let now = now_ms();
        let mut out = Vec::new();
        let mut origins: Vec<&String> = self.mirrors.keys().collect();
        origins.sort();
        for origin in origins {
            let Some(m) = self.mirrors.get(origin) else {
                continue;
            };
            let rec = self.ctx.state.record(origin)?;
            // Counted without scanning: anyone may ask for the status.
            let missing = self.ctx.state.missing_count(origin);
            let count = self.ctx.state.open_evidence(origin);
            let mut alerts = Vec::new();
            if count > 0 || rec.suspended.is_some() {
                alerts.push("evidence".to_owned());
            }
            if now.saturating_sub(rec.last_push_ms) > self.config.alert_no_push_ms {
                alerts.push("no-push".to_owned());
            }
            if now.saturating_sub(rec.last_advance_ms) > self.config.alert_no_advance_ms {
                alerts.push("not-advancing".to_owned());
            }
            out.push(v1::DepartmentStatus {
                origin: origin.clone(),
                mirrored_size: m.view.size(),
                cosigned_size: rec.cosigned_size,
                cosigned_time: rec.cosigned_time,
                seen_size: rec.seen_size,
                lag: rec.seen_size.saturating_sub(rec.cosigned_size),
                last_push_ms: rec.last_push_ms,
                last_advance_ms: rec.last_advance_ms,
                evidence_count: u32::try_from(count).unwrap_or(u32::MAX),
                suspended: rec.suspended.unwrap_or_default(),
                alerts,
                missing_content: missing,
                back_dated: rec.back_dated,
                back_dated_index: rec.back_dated_index,
            });
        }
        Ok(out)
    }

    /// Per independent witness, what it cosigned of each log and how far
    /// it lags the county's newest cosigned size.
    ///
    /// # Errors
    /// Storage errors.
    pub fn witness_status(&self) -> Result<Vec<v1::WitnessStatus>, AggregatorError> {
        let Some(w) = &self.witnessing else {
            return Ok(Vec::new());
        };
        let mut newest: HashMap<String, u64> = HashMap::new();
        for origin in self.mirrors.keys() {
            newest.insert(origin.clone(), self.ctx.state.record(origin)?.cosigned_size);
        }
        newest.insert(
            self.county_log.origin().to_string(),
            self.county_log.newest().0,
        );
        Ok(w.report()
            .into_iter()
            .map(|r| {
                let mut logs: Vec<v1::WitnessLogStatus> = newest
                    .iter()
                    .map(|(origin, &size)| {
                        let s = r
                            .logs
                            .iter()
                            .find(|(o, _)| o == origin)
                            .map(|(_, s)| s.clone())
                            .unwrap_or_default();
                        v1::WitnessLogStatus {
                            origin: origin.clone(),
                            cosigned_size: s.cosigned_size,
                            cosigned_time: s.cosigned_time,
                            lag: size.saturating_sub(s.cosigned_size),
                            error: s.error.unwrap_or_default(),
                        }
                    })
                    .collect();
                logs.sort_by(|a, b| a.origin.cmp(&b.origin));
                v1::WitnessStatus {
                    name: r.remote.name,
                    url: r.remote.url,
                    vkey: r.remote.vkey.to_string(),
                    error: r.error.unwrap_or_default(),
                    logs,
                }
            })
            .collect())
    }
}

/// The `County` service.
#[derive(Clone)]
pub struct CountyService {
    county: Arc<County>,
}

impl CountyService {
    /// The service over shared state.
    pub fn new(county: Arc<County>) -> CountyService {
        CountyService { county }
    }
}

#[tonic::async_trait]
impl v1::county_server::County for CountyService {
    async fn get_mirror_state(
        &self,
        req: Request<v1::GetMirrorStateRequest>,
    ) -> Result<Response<v1::MirrorState>, Status> {
        // The department only: an anonymous reader must not take the
        // department's push lock (nor learn its missing digests).
        let mirror = self
            .county
            .authorize_department(&req, &req.get_ref().origin)?;
        let guard = mirror.staging.lock().await;
        let report = mirror
            .report(&guard, &self.county.ctx)
            .map_err(Status::from)?;
        let ticket = mirror.served_ticket();
        drop(guard);
        // What this reports as mirrored and cosigned is served (readable,
        // with proofs and catalog) by the time the answer arrives.
        mirror.served(ticket).await;
        Ok(Response::new(self.county.state_pb(&mirror, &report)?))
    }

    async fn push(
        &self,
        req: Request<v1::PushRequest>,
    ) -> Result<Response<v1::PushResponse>, Status> {
        let mirror = self.county.authorize_push(&req, &req.get_ref().origin)?;
        let req = req.into_inner();
        let guard = Arc::clone(&mirror.staging).lock_owned().await;
        let ctx = Arc::clone(&self.county.ctx);
        let m = Arc::clone(&mirror);
        let report = tokio::task::spawn_blocking(move || {
            let mut guard = guard;
            m.push(&mut guard, &ctx, req.start, req.entries, &req.checkpoint)
        })
        .await
        .map_err(|_| Status::internal("push task failed"))?
        .map_err(|e| {
            tracing::info!(origin = %mirror.origin, error = %e, "push refused");
            Status::from(e)
        })?;
        Ok(Response::new(v1::PushResponse {
            state: Some(self.county.state_pb(&mirror, &report)?),
        }))
    }

    async fn push_content(
        &self,
        req: Request<Streaming<v1::PushContentRequest>>,
    ) -> Result<Response<v1::PushContentResponse>, Status> {
        let (meta, ext, mut stream) = req.into_parts();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty upload"))?;
        let Some(v1::push_content_request::Part::Start(start)) = first.part else {
            return Err(Status::invalid_argument(
                "the first message must be `start`",
            ));
        };
        let auth_req = Request::from_parts(meta, ext, ());
        let mirror = self.county.authorize_push(&auth_req, &start.origin)?;
        let digest = Hash::from_slice(&start.digest)
            .map_err(|e| Status::invalid_argument(format!("digest: {e}")))?;
        let salt: [u8; 32] = start
            .salt
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("salt: must be 32 bytes"))?;
        let max = self.county.config.max_content_bytes;
        if start.length == 0 || start.length > max {
            return Err(Status::resource_exhausted(format!(
                "content of {} bytes: must be 1 to {max}",
                start.length
            )));
        }
        let quota = self
            .county
            .config
            .departments
            .iter()
            .find(|d| d.origin == start.origin)
            .map_or(0, |d| d.max_content_total_bytes);
        // Checked before a byte is read: content not wanted (already held,
        // not committed, another length, over the quota) costs the county
        // nothing.
        if !mirror
            .wants_content(&self.county.ctx, &digest, start.length, quota)
            .map_err(Status::from)?
        {
            return Ok(Response::new(v1::PushContentResponse { stored: false }));
        }
        // Streamed to a temp file, hashed as it comes: memory is one chunk.
        let store = mirror.view.content().clone();
        let length = start.length;
        let mut pending = tokio::task::spawn_blocking(move || store.begin(&salt, length))
            .await
            .map_err(|_| Status::internal("content task failed"))?
            .map_err(|e| Status::from(AggregatorError::from(e)))?;
        loop {
            let msg = tokio::time::timeout(SLOW_SENDER, stream.message())
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!(
                        "no content chunk for {} s",
                        SLOW_SENDER.as_secs()
                    ))
                })??;
            let Some(msg) = msg else { break };
            let Some(v1::push_content_request::Part::Chunk(chunk)) = msg.part else {
                return Err(Status::invalid_argument("only chunks may follow `start`"));
            };
            if pending.written() + chunk.len() as u64 > length {
                return Err(Status::invalid_argument("more bytes than announced"));
            }
            pending = tokio::task::spawn_blocking(move || pending.write(&chunk).map(|()| pending))
                .await
                .map_err(|_| Status::internal("content task failed"))?
                .map_err(|e| Status::from(AggregatorError::from(e)))?;
        }
        if pending.written() != length {
            return Err(Status::invalid_argument(format!(
                "received {} bytes, announced {length}",
                pending.written()
            )));
        }
        let ctx = Arc::clone(&self.county.ctx);
        let stored = tokio::task::spawn_blocking(move || {
            mirror.store_content(&ctx, &digest, pending, quota)
        })
        .await
        .map_err(|_| Status::internal("content task failed"))?
        .map_err(Status::from)?;
        Ok(Response::new(v1::PushContentResponse { stored }))
    }

    async fn get_county_checkpoint(
        &self,
        _req: Request<v1::GetCountyCheckpointRequest>,
    ) -> Result<Response<v1::GetCountyCheckpointResponse>, Status> {
        Ok(Response::new(v1::GetCountyCheckpointResponse {
            checkpoint: self.county.county_log.checkpoint().1,
        }))
    }

    async fn get_county_leaves(
        &self,
        req: Request<v1::GetCountyLeavesRequest>,
    ) -> Result<Response<v1::GetCountyLeavesResponse>, Status> {
        let req = req.into_inner();
        let (size, _) = self.county.county_log.checkpoint();
        if req.start >= size {
            return Err(Status::out_of_range(format!(
                "start {} is at or past the county log size {size}",
                req.start
            )));
        }
        let limit = match req.limit {
            0 => 64,
            n => n.min(self.county.config.max_page),
        };
        let end = size.min(req.start.saturating_add(u64::from(limit)));
        let leaves = self
            .county
            .county_log
            .leaves(req.start, end)
            .map_err(Status::from)?;
        Ok(Response::new(v1::GetCountyLeavesResponse {
            start: req.start,
            leaves,
        }))
    }

    async fn get_county_consistency_proof(
        &self,
        req: Request<v1::GetCountyConsistencyProofRequest>,
    ) -> Result<Response<v1::GetCountyConsistencyProofResponse>, Status> {
        let req = req.into_inner();
        let (size, _) = self.county.county_log.checkpoint();
        if req.old_size > req.new_size || req.new_size > size {
            return Err(Status::out_of_range(format!(
                "need old_size <= new_size <= {size}"
            )));
        }
        let proof = self
            .county
            .county_log
            .consistency_proof(req.old_size, req.new_size)
            .map_err(Status::from)?;
        Ok(Response::new(v1::GetCountyConsistencyProofResponse {
            proof: proof.iter().map(|h| h.0.to_vec()).collect(),
        }))
    }

    async fn get_county_inclusion_proof(
        &self,
        req: Request<v1::GetCountyInclusionProofRequest>,
    ) -> Result<Response<v1::GetCountyInclusionProofResponse>, Status> {
        let req = req.into_inner();
        let (size, note) = self.county.county_log.checkpoint();
        let tree_size = if req.tree_size == 0 {
            size
        } else {
            req.tree_size
        };
        if tree_size > size || req.index >= tree_size {
            return Err(Status::out_of_range(format!(
                "need index < tree_size <= {size}"
            )));
        }
        let proof = self
            .county
            .county_log
            .inclusion_proof(req.index, tree_size)
            .map_err(Status::from)?;
        let leaf = self
            .county
            .county_log
            .leaves(req.index, req.index + 1)
            .map_err(Status::from)?
            .pop()
            .unwrap_or_default();
        Ok(Response::new(v1::GetCountyInclusionProofResponse {
            index: req.index,
            tree_size,
            proof: proof.iter().map(|h| h.0.to_vec()).collect(),
            leaf,
            checkpoint: if tree_size == size {
                note
            } else {
                String::new()
            },
        }))
    }

    async fn get_county_status(
        &self,
        _req: Request<v1::GetCountyStatusRequest>,
    ) -> Result<Response<v1::GetCountyStatusResponse>, Status> {
        let departments = self.county.department_status().map_err(Status::from)?;
        Ok(Response::new(v1::GetCountyStatusResponse {
            county_origin: self.county.config.origin.clone(),
            county_size: self.county.county_log.checkpoint().0,
            departments,
            log_vkey: self.county.vkeys.0.clone(),
            witness_vkey: self.county.vkeys.1.clone(),
            witnesses: self.county.witness_status().map_err(Status::from)?,
        }))
    }

    async fn list_evidence(
        &self,
        req: Request<v1::ListEvidenceRequest>,
    ) -> Result<Response<v1::ListEvidenceResponse>, Status> {
        let origin = &req.get_ref().origin;
        let list = self
            .county
            .ctx
            .state
            .evidence((!origin.is_empty()).then_some(origin.as_str()))
            .map_err(Status::from)?;
        Ok(Response::new(v1::ListEvidenceResponse {
            evidence: list.into_iter().map(summary).collect(),
        }))
    }

    async fn get_evidence(
        &self,
        req: Request<v1::GetEvidenceRequest>,
    ) -> Result<Response<v1::GetEvidenceResponse>, Status> {
        let (rec, text) = self
            .county
            .ctx
            .state
            .evidence_file(&req.get_ref().id)
            .map_err(Status::from)?;
        Ok(Response::new(v1::GetEvidenceResponse {
            summary: Some(summary(rec)),
            text,
        }))
    }

    async fn clear_evidence(
        &self,
        req: Request<v1::ClearEvidenceRequest>,
    ) -> Result<Response<v1::ClearEvidenceResponse>, Status> {
        self.county
            .authorize_admin(&req, "evidence cannot be cleared over the network")?;
        let origin = req.into_inner().origin;
        let mirror = Arc::clone(self.county.mirror(&origin)?);
        let _guard = mirror.staging.lock().await;
        let state = &self.county.ctx.state;
        let cleared = state.clear_evidence(&origin).map_err(Status::from)?;
        let (read, mut rec) = state.versioned(&origin).map_err(Status::from)?;
        if rec.suspended.take().is_some() {
            state
                .swap_record(&origin, read, &rec, Durability::Synced)
                .map_err(Status::from)?;
        }
        tracing::warn!(
            origin,
            cleared,
            "evidence cleared by the operator; cosigning resumes"
        );
        Ok(Response::new(v1::ClearEvidenceResponse { cleared }))
    }

    async fn publish_calendar(
        &self,
        req: Request<v1::PublishCalendarRequest>,
    ) -> Result<Response<v1::PublishCalendarResponse>, Status> {
        self.county
            .authorize_admin(&req, "calendar tables cannot be published over the network")?;
        let r = req.into_inner();
        let county_log = Arc::clone(&self.county.county_log);
        let published = tokio::task::spawn_blocking(move || {
            county_log.publish_calendar(&r.notice, &r.reason, &r.table, r.amend)
        })
        .await
        .map_err(|e| Status::internal(format!("publish task: {e}")))?;
        use crate::county_log::CalendarRefusal as R;
        let (index, table, checkpoint) = published.map_err(|e| match e {
            R::Storage(e) => Status::from(e),
            R::Malformed(_) => Status::invalid_argument(e.to_string()),
            R::AlreadyPublished { .. } => Status::already_exists(e.to_string()),
            R::DiffersFromSeed { .. } | R::NothingToAmend { .. } | R::Unchanged { .. } => {
                Status::failed_precondition(e.to_string())
            }
        })?;
        tracing::warn!(
            year = table.year(),
            version = table.version(),
            notice = table.notice(),
            reason = table.reason(),
            index,
            "calendar table published on the county log"
        );
        Ok(Response::new(v1::PublishCalendarResponse {
            county_index: index,
            version: table.version(),
            checkpoint,
            leaf: table.encode(),
        }))
    }

    async fn list_calendar(
        &self,
        _req: Request<v1::ListCalendarRequest>,
    ) -> Result<Response<v1::ListCalendarResponse>, Status> {
        let published = self
            .county
            .county_log
            .calendar_history()
            .into_iter()
            .map(|(county_index, t)| v1::CalendarLeaf {
                county_index,
                leaf: t.encode(),
            })
            .collect();
        Ok(Response::new(v1::ListCalendarResponse {
            published,
            seed_years: gongkai_core::calendar::WorkCalendar::shipped()
                .years()
                .collect(),
        }))
    }
}

fn summary(r: crate::state::EvidenceRecord) -> v1::EvidenceSummary {
    v1::EvidenceSummary {
        id: r.id,
        origin: r.origin,
        kind: r.kind,
        observed: r.observed,
        cleared: r.cleared,
    }
}

impl LogSource for County {
    fn view(&self, origin: &str) -> Result<Arc<LogView>, Status> {
        Ok(Arc::clone(&self.mirror(origin)?.view))
    }

    fn may_read_restricted<T>(&self, req: &Request<T>) -> bool {
        bearer(req).is_some_and(|d| self.reader_tokens.iter().any(|h| constant_eq(h, &d)))
    }

    fn max_page(&self) -> u32 {
        self.config.max_page
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    fn calendar(&self) -> Arc<gongkai_core::calendar::WorkCalendar> {
        self.county_log.calendar()
    }
}

/// The read-only `DisclosureNode` of the mirrors.
#[derive(Clone)]
pub struct MirrorService {
    reads: ReadService<County>,
}

impl MirrorService {
    /// The mirror service over shared state.
    pub fn new(county: Arc<County>) -> MirrorService {
        MirrorService {
            reads: ReadService::new(county),
        }
    }
}

fn read_only() -> Status {
    Status::unimplemented(
        "this is the county's read-only mirror: write to the department's own node",
    )
}

#[tonic::async_trait]
impl v1::disclosure_node_server::DisclosureNode for MirrorService {
    async fn append(
        &self,
        _: Request<v1::AppendRequest>,
    ) -> Result<Response<v1::AppendResponse>, Status> {
        Err(read_only())
    }

    async fn append_batch(
        &self,
        _: Request<v1::AppendBatchRequest>,
    ) -> Result<Response<v1::AppendBatchResponse>, Status> {
        Err(read_only())
    }

    async fn upload_content(
        &self,
        _: Request<Streaming<v1::UploadContentRequest>>,
    ) -> Result<Response<v1::UploadContentResponse>, Status> {
        Err(read_only())
    }

    async fn get_checkpoint(
        &self,
        req: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::GetCheckpointResponse>, Status> {
        self.reads.get_checkpoint(req).await
    }

    async fn get_entries(
        &self,
        req: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<v1::GetEntriesResponse>, Status> {
        self.reads.get_entries(req).await
    }

    type FollowStream = ResponseStream<v1::FollowResponse>;

    async fn follow(
        &self,
        req: Request<v1::FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        self.reads.follow(req).await
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofResponse>, Status> {
        self.reads.get_inclusion_proof(req).await
    }

    async fn get_consistency_proof(
        &self,
        req: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofResponse>, Status> {
        self.reads.get_consistency_proof(req).await
    }

    async fn get_item(
        &self,
        req: Request<v1::GetItemRequest>,
    ) -> Result<Response<v1::GetItemResponse>, Status> {
        self.reads.get_item(req).await
    }

    async fn list_items(
        &self,
        req: Request<v1::ListItemsRequest>,
    ) -> Result<Response<v1::ListItemsResponse>, Status> {
        self.reads.list_items(req).await
    }

    async fn list_matters(
        &self,
        req: Request<v1::ListMattersRequest>,
    ) -> Result<Response<v1::ListMattersResponse>, Status> {
        self.reads.list_matters(req).await
    }

    async fn list_requests(
        &self,
        req: Request<v1::ListRequestsRequest>,
    ) -> Result<Response<v1::ListRequestsResponse>, Status> {
        self.reads.list_requests(req).await
    }

    type GetContentStream = ResponseStream<v1::GetContentResponse>;

    async fn get_content(
        &self,
        req: Request<v1::GetContentRequest>,
    ) -> Result<Response<Self::GetContentStream>, Status> {
        self.reads.get_content(req).await
    }

    async fn get_status(
        &self,
        req: Request<v1::GetStatusRequest>,
    ) -> Result<Response<v1::GetStatusResponse>, Status> {
        let county = self.reads.source();
        let origin = req.into_inner().origin;
        let mirror = county.mirror(&origin)?;
        let rec = county.ctx.state.record(&origin).map_err(Status::from)?;
        Ok(Response::new(v1::GetStatusResponse {
            origin,
            size: mirror.view.size(),
            checkpoint_size: rec.cosigned_size,
            cosigned_size: rec.cosigned_size,
            replication_lag: rec.seen_size.saturating_sub(rec.cosigned_size),
            last_replicated_ms: rec.last_push_ms,
        }))
    }
}
