//! The `DisclosureNode` gRPC service of a department node.
//!
//! Writes need a writer credential: a bearer token whose SHA-256 is listed
//! in the config, or a client certificate verified against the configured
//! CA (mutual TLS) that names this node's origin as a writer
//! (`urn:gongkai:write:<origin>`, [`crate::identity`]). Reads are public,
//! except the content of items whose matter's audience is a specific group
//! (restricted content), which needs a writer credential or a reader
//! certificate (`urn:gongkai:read:<origin>`).

use std::sync::Arc;

use gongkai_core::Hash;
use gongkai_core::event::Kind;
use gongkai_proto::v1::{self, write_event};
use prost::Message as _;
use rand::RngExt as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::{oneshot, watch};
use tonic::{Request, Response, Status, Streaming};

use crate::NodeError;
use crate::config::NodeConfig;
use crate::log::{Appended, Log, WriteJob};
use crate::view::{LogSource, LogView, ReadService, ResponseStream};

/// Longest a write waits, just after a start, for the first look at what
/// the county holds of this log.
pub const COUNTY_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Longest idempotency key, bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// An upload that sends no chunk for this long is ended (its temp file
/// removed).
const SLOW_SENDER: std::time::Duration = std::time::Duration::from_secs(30);
pub use crate::view::{CONTENT_CHUNK, DEFAULT_PAGE};

/// The node as a [`LogSource`]: its one log, writer credentials (which
/// also unlock restricted content), limits, shutdown, replication state.
pub struct NodeSource {
    log: Arc<Log>,
    token_hashes: Vec<[u8; 32]>,
    config: Arc<NodeConfig>,
    shutdown: watch::Receiver<bool>,
    replication: Arc<crate::replicator::ReplicationStatus>,
}

impl NodeSource {
    /// Checks the writer credential of a request.
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if let Some(certs) = req.peer_certs()
            && !certs.is_empty()
        {
            // tonic verified the chain against the configured client CA;
            // the certificate must also name this log as a writer.
            let origin = self.log.origin().as_str();
            if crate::identity::names(&certs, crate::identity::WRITE_URI_PREFIX, origin) {
                return Ok(());
            }
            return Err(Status::permission_denied(format!(
                "this client certificate may not write to {origin}: it needs the URI name \
                 {}{origin} (gongkai certs client --writes {origin})",
                crate::identity::WRITE_URI_PREFIX
            )));
        }
        let Some(value) = req.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "writes need a credential: `authorization: Bearer <token>` or a client certificate",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare every listed hash so timing does not reveal which matched.
        let mut ok = false;
        for h in &self.token_hashes {
            ok |= constant_eq(h, &digest);
        }
        if ok {
            Ok(())
        } else {
            Err(Status::permission_denied(
                "this token may not write to this node",
            ))
        }
    }

    fn check_origin(&self, origin: &str) -> Result<(), Status> {
        if origin == self.log.origin().as_str() {
            Ok(())
        } else if origin.is_empty() {
            Err(Status::invalid_argument("origin is required"))
        } else {
            Err(Status::not_found(format!(
                "this node serves {}, not {origin}",
                self.log.origin()
            )))
        }
    }
}

impl LogSource for NodeSource {
    fn view(&self, origin: &str) -> Result<Arc<LogView>, Status> {
        self.check_origin(origin)?;
        Ok(Arc::clone(self.log.view()))
    }

    fn may_read_restricted<T>(&self, req: &Request<T>) -> bool {
        let reader = req.peer_certs().is_some_and(|certs| {
            crate::identity::names(
                &certs,
                crate::identity::READ_URI_PREFIX,
                self.log.origin().as_str(),
            )
        });
        reader || self.authorize(req).is_ok()
    }

    fn max_page(&self) -> u32 {
        self.config.limits.max_page
    }

    fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    fn calendar(&self) -> Arc<gongkai_core::calendar::WorkCalendar> {
        self.log.calendar()
    }
}

/// The service: the shared log and its reads, the sequencer's queue,
/// credentials and limits.
#[derive(Clone)]
pub struct NodeService {
    source: Arc<NodeSource>,
    reads: ReadService<NodeSource>,
    jobs: std::sync::mpsc::Sender<Option<WriteJob>>,
}

impl NodeService {
    /// A service over `log`, sending writes to `jobs`. Follow streams end
    /// when `shutdown` becomes true; GetStatus reports `replication`.
    pub fn new(
        log: Arc<Log>,
        jobs: std::sync::mpsc::Sender<Option<WriteJob>>,
        config: Arc<NodeConfig>,
        shutdown: watch::Receiver<bool>,
        replication: Arc<crate::replicator::ReplicationStatus>,
    ) -> NodeService {
        let token_hashes = config
            .writers
            .iter()
            .filter_map(|w| {
                let bytes: Vec<u8> = (0..32)
                    .map(|i| u8::from_str_radix(w.token_sha256.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect::<Option<_>>()?;
                bytes.try_into().ok()
            })
            .collect();
        let source = Arc::new(NodeSource {
            log,
            token_hashes,
            config,
            shutdown,
            replication,
        });
        NodeService {
            reads: ReadService::new(Arc::clone(&source)),
            source,
            jobs,
        }
    }

    /// The writer-credential check alone, for the gate that runs it before
    /// a write's body is read ([`gongkai_proto::AuthFirst`]).
    pub fn credential_check(&self) -> gongkai_proto::guard::Check {
        let source = Arc::clone(&self.source);
        Arc::new(move |req| source.authorize(req))
    }

    /// A writer's credential, and a node that takes writes: not read-only
    /// after learning that the county holds more of its log (a restore
    /// from an old backup, which appending would fork). Just after a start
    /// with a county configured, waits (at most [`COUNTY_CHECK_WAIT`]) for
    /// the first look at what the county holds.
    async fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        self.source.authorize(req)?;
        self.source.log.writes_may_proceed(COUNTY_CHECK_WAIT).await;
        match self.source.log.read_only() {
            Some(reason) => Err(Status::failed_precondition(reason)),
            None => Ok(()),
        }
    }

    async fn submit(
        &self,
        key: String,
        fingerprint: Hash,
        kinds: Vec<Kind>,
    ) -> Result<Appended, Status> {
        check_idempotency_key(&key)?;
        if self.source.log.failed().borrow().is_some() {
            return Err(NodeError::Unavailable(
                "the node stopped accepting writes after a storage failure".into(),
            )
            .into());
        }
        let (reply, rx) = oneshot::channel();
        let job = WriteJob {
            key: Some(key),
            fingerprint,
            kinds,
            reply,
        };
        if *self.source.shutdown.borrow() {
            return Err(Status::unavailable("the node is shutting down"));
        }
        self.jobs
            .send(Some(job))
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        rx.await
            .map_err(|_| Status::unavailable("the node stopped before answering"))?
            .map_err(Status::from)
    }
}

/// The idempotency key of a write: 1 to [`MAX_IDEMPOTENCY_KEY`] bytes
/// (node.proto). Without one a retried write (after a lost answer) would
/// be appended twice, so a write without a key is refused, not accepted
/// unprotected.
fn check_idempotency_key(key: &str) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument(format!(
            "idempotency_key is required (1 to {MAX_IDEMPOTENCY_KEY} bytes): a retry with the same key \
             returns the first receipt instead of appending the event twice"
        )));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(Status::invalid_argument(format!(
            "idempotency_key is {} bytes; at most {MAX_IDEMPOTENCY_KEY} are allowed",
            key.len()
        )));
    }
    Ok(())
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn kind_of(event: v1::WriteEvent) -> Result<Kind, Status> {
    use write_event::Kind as W;
    Ok(
        match event
            .kind
            .ok_or_else(|| Status::invalid_argument("event: no kind set"))?
        {
            W::MatterDefined(x) => Kind::MatterDefined(x),
            W::MatterChanged(x) => Kind::MatterChanged(x),
            W::MatterRetired(x) => Kind::MatterRetired(x),
            W::Published(x) => Kind::Published(x),
            W::Amended(x) => Kind::Amended(x),
            W::Withdrawn(x) => Kind::Withdrawn(x),
            W::Redacted(x) => Kind::Redacted(x),
            W::RequestReceived(x) => Kind::RequestReceived(x),
            W::RequestClarification(x) => Kind::RequestClarification(x),
            W::ThirdPartyConsultation(x) => Kind::ThirdPartyConsultation(x),
            W::RequestExtended(x) => Kind::RequestExtended(x),
            W::RequestAnswered(x) => Kind::RequestAnswered(x),
            W::ChallengeFiled(x) => Kind::ChallengeFiled(x),
            W::ChallengeConcluded(x) => Kind::ChallengeConcluded(x),
        },
    )
}

fn receipt_pb(r: crate::log::Receipt) -> v1::Receipt {
    v1::Receipt {
        index: r.index,
        leaf_hash: r.leaf_hash.0.to_vec(),
        entry: r.entry,
    }
}

fn fingerprint(parts: &[&[u8]]) -> Hash {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p);
    }
    Hash(*h.finalize().as_bytes())
}

#[tonic::async_trait]
impl v1::disclosure_node_server::DisclosureNode for NodeService {
    async fn append(
        &self,
        req: Request<v1::AppendRequest>,
    ) -> Result<Response<v1::AppendResponse>, Status> {
        self.authorize(&req).await?;
        let req = req.into_inner();
        let event = req
            .event
            .ok_or_else(|| Status::invalid_argument("event is required"))?;
        let fp = fingerprint(&[&event.encode_to_vec()]);
        let kind = kind_of(event)?;
        let out = self.submit(req.idempotency_key, fp, vec![kind]).await?;
        Ok(Response::new(v1::AppendResponse {
            receipt: out.receipts.into_iter().next().map(receipt_pb),
            replayed: out.replayed,
        }))
    }

    async fn append_batch(
        &self,
        req: Request<v1::AppendBatchRequest>,
    ) -> Result<Response<v1::AppendBatchResponse>, Status> {
        self.authorize(&req).await?;
        let req = req.into_inner();
        if req.events.is_empty() {
            return Err(Status::invalid_argument("events: at least one is required"));
        }
        if req.events.len() > self.source.config.limits.max_batch_events {
            return Err(Status::resource_exhausted(format!(
                "{} events in one batch; the limit is {}",
                req.events.len(),
                self.source.config.limits.max_batch_events
            )));
        }
        let encoded: Vec<Vec<u8>> = req.events.iter().map(|e| e.encode_to_vec()).collect();
        let fp = fingerprint(&encoded.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let kinds = req
            .events
            .into_iter()
            .map(kind_of)
            .collect::<Result<Vec<_>, _>>()?;
        let out = self.submit(req.idempotency_key, fp, kinds).await?;
        Ok(Response::new(v1::AppendBatchResponse {
            receipts: out.receipts.into_iter().map(receipt_pb).collect(),
            replayed: out.replayed,
        }))
    }

    async fn upload_content(
        &self,
        req: Request<Streaming<v1::UploadContentRequest>>,
    ) -> Result<Response<v1::UploadContentResponse>, Status> {
        self.authorize(&req).await?;
        let mut stream = req.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty upload"))?;
        let Some(v1::upload_content_request::Part::Start(start)) = first.part else {
            return Err(Status::invalid_argument(
                "the first message must be `start`",
            ));
        };
        let max = self.source.config.limits.max_content_bytes;
        if start.length == 0 {
            return Err(Status::invalid_argument(
                "length: content must not be empty",
            ));
        }
        if start.length > max {
            return Err(Status::resource_exhausted(format!(
                "content of {} bytes exceeds the limit of {max}",
                start.length
            )));
        }
        let salt: [u8; 32] = match start.salt.len() {
            0 => rand::rng().random(),
            32 => start
                .salt
                .as_slice()
                .try_into()
                .map_err(|_| Status::invalid_argument("salt"))?,
            _ => return Err(Status::invalid_argument("salt: must be 32 bytes")),
        };
        if !start.salt.is_empty() && start.expected_digest.len() != 32 {
            return Err(Status::invalid_argument(
                "a client salt needs expected_digest (32 bytes)",
            ));
        }
        // The media type first: a bad one costs no upload.
        gongkai_core::types::ContentRef::new(Hash::ZERO, start.length, &start.media_type)
            .map_err(|e| Status::invalid_argument(format!("media_type: {e}")))?;
        // Streamed to a temp file in the content store, hashed as it comes
        // (memory is one chunk); refused up front if the disk would fall
        // below its reserve. Unreferenced uploads are collected after
        // UPLOAD_GRACE (see `Log::collect_unreferenced`).
        let length = start.length;
        let store = self.source.log.content().clone();
        let mut pending = tokio::task::spawn_blocking(move || store.begin(&salt, length))
            .await
            .map_err(|_| Status::internal("upload task failed"))?
            .map_err(|e| Status::from(NodeError::from(e)))?;
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
            let Some(v1::upload_content_request::Part::Chunk(chunk)) = msg.part else {
                return Err(Status::invalid_argument("only chunks may follow `start`"));
            };
            if pending.written() + chunk.len() as u64 > length {
                return Err(Status::invalid_argument(format!(
                    "more bytes than the announced length {length}"
                )));
            }
            pending = tokio::task::spawn_blocking(move || pending.write(&chunk).map(|()| pending))
                .await
                .map_err(|_| Status::internal("upload task failed"))?
                .map_err(|e| Status::from(NodeError::from(e)))?;
        }
        if pending.written() != length {
            return Err(Status::invalid_argument(format!(
                "received {} bytes, announced {length}",
                pending.written()
            )));
        }
        let digest = pending.digest();
        let commitment = gongkai_core::types::ContentRef::new(digest, length, &start.media_type)
            .map_err(|e| Status::invalid_argument(format!("media_type: {e}")))?;
        if !start.expected_digest.is_empty()
            && digest.0.as_slice() != start.expected_digest.as_slice()
        {
            return Err(Status::invalid_argument(
                "the content does not hash to expected_digest under the given salt",
            ));
        }
        tokio::task::spawn_blocking(move || pending.commit(&digest))
            .await
            .map_err(|_| Status::internal("upload task failed"))?
            .map_err(|e| Status::from(NodeError::from(e)))?;
        Ok(Response::new(v1::UploadContentResponse {
            content: Some(gongkai_core::event::content_message(&commitment)),
        }))
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
        self.source.check_origin(&req.get_ref().origin)?;
        let log = &self.source.log;
        let size = log.size();
        let cosigned_size = log.cosigned().map_or(0, |(s, _)| s);
        Ok(Response::new(v1::GetStatusResponse {
            origin: log.origin().to_string(),
            size,
            checkpoint_size: log.checkpoint().map_or(0, |(s, _)| s),
            cosigned_size,
            replication_lag: size.saturating_sub(self.source.replication.mirrored()),
            last_replicated_ms: self.source.replication.last_replicated_ms(),
        }))
    }
}
