//! The `DisclosureNode` gRPC service of a department node.
//!
//! Writes need a writer credential: a bearer token whose SHA-256 is listed
//! in the config, or a client certificate verified against the configured
//! CA (mutual TLS). Reads are public, except the content of items whose
//! matter's audience is a specific group (restricted content), which needs a
//! writer credential too.

use std::pin::Pin;
use std::sync::Arc;

use gongkai_core::Hash;
use gongkai_core::calendar::{Deadline, WorkCalendar};
use gongkai_core::catalog::ItemStatus;
use gongkai_core::event::{Kind, pb};
use gongkai_core::merkle;
use gongkai_proto::v1::{self, write_event};
use gongkai_store::projection::{ItemRecord, MatterRecord, RequestRecord};
use prost::Message as _;
use rand::RngExt as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::{oneshot, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::NodeError;
use crate::config::NodeConfig;
use crate::log::{Appended, Log, WriteJob};

/// Longest idempotency key, bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Entries per GetEntries page when the client does not say.
pub const DEFAULT_PAGE: u32 = 256;
/// Bytes per content chunk sent by GetContent.
pub const CONTENT_CHUNK: usize = 64 * 1024;

/// The service: shared log, the sequencer's queue, credentials and limits.
#[derive(Clone)]
pub struct NodeService {
    log: Arc<Log>,
    jobs: std::sync::mpsc::Sender<Option<WriteJob>>,
    token_hashes: Arc<Vec<[u8; 32]>>,
    config: Arc<NodeConfig>,
    shutdown: watch::Receiver<bool>,
}

/// `(category, restricted)` of a matter.
type MatterFacts = (String, bool);

type Stream2<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl NodeService {
    /// A service over `log`, sending writes to `jobs`. Follow streams end
    /// when `shutdown` becomes true.
    pub fn new(
        log: Arc<Log>,
        jobs: std::sync::mpsc::Sender<Option<WriteJob>>,
        config: Arc<NodeConfig>,
        shutdown: watch::Receiver<bool>,
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
        NodeService {
            log,
            jobs,
            token_hashes: Arc::new(token_hashes),
            config,
            shutdown,
        }
    }

    /// Checks the writer credential of a request.
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if req.peer_certs().is_some_and(|c| !c.is_empty()) {
            // tonic verified the chain against the configured client CA.
            return Ok(());
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
        for h in self.token_hashes.iter() {
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

    async fn submit(
        &self,
        key: String,
        fingerprint: Hash,
        kinds: Vec<Kind>,
    ) -> Result<Appended, Status> {
        if key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(Status::invalid_argument(format!(
                "idempotency_key is longer than {MAX_IDEMPOTENCY_KEY} bytes"
            )));
        }
        if self.log.failed().borrow().is_some() {
            return Err(NodeError::Unavailable(
                "the node stopped accepting writes after a storage failure".into(),
            )
            .into());
        }
        let (reply, rx) = oneshot::channel();
        let job = WriteJob {
            key: (!key.is_empty()).then_some(key),
            fingerprint,
            kinds,
            reply,
        };
        if *self.shutdown.borrow() {
            return Err(Status::unavailable("the node is shutting down"));
        }
        self.jobs
            .send(Some(job))
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        rx.await
            .map_err(|_| Status::unavailable("the node stopped before answering"))?
            .map_err(Status::from)
    }

    fn read<T>(&self, r: Result<T, gongkai_store::StoreError>) -> Result<T, Status> {
        r.map_err(|e| Status::from(NodeError::from(e)))
    }

    /// What an item's view takes from its matter: the category, and
    /// whether content is restricted (the audience is a specific group).
    fn matter_facts(&self, matter_id: &str) -> Result<MatterFacts, Status> {
        let matter = self.read(self.log.projection().matter(matter_id))?;
        Ok(matter.map_or((String::new(), false), |m| {
            let m = m.matter();
            (m.category, m.audience == pb::Audience::Group as i32)
        }))
    }

    /// Page size: the client's, capped by the config; 100 by default.
    fn page_size(&self, requested: u32) -> usize {
        let n = match requested {
            0 => 100,
            n => n.min(self.config.limits.max_page),
        };
        usize::try_from(n).unwrap_or(100)
    }

    fn item_view(&self, rec: &ItemRecord, (category, restricted): MatterFacts) -> v1::ItemView {
        v1::ItemView {
            item_id: rec.item_id.clone(),
            matter_id: rec.matter_id.clone(),
            category,
            title: rec.title.clone(),
            content: rec.current().map(|c| pb::ContentRef {
                digest: c.digest.0.to_vec(),
                length: c.length,
                media_type: c.media_type.clone(),
            }),
            status: status_pb(rec.status) as i32,
            date_formed: rec.date_formed.clone(),
            date_changed: rec.date_changed.clone().unwrap_or_default(),
            period: rec.period.clone(),
            imported: rec.imported,
            restricted,
            redacted: !rec.redacted.is_empty(),
            published_index: rec.published_index,
            last_index: rec.last_index(),
            published_time_ms: rec.published_time_ms,
            related: rec
                .related
                .iter()
                .map(|r| pb::ItemRef {
                    origin: r.origin.clone(),
                    item_id: r.item_id.clone(),
                    relation: r.relation,
                })
                .collect(),
            legal_basis: rec.legal_basis.clone(),
        }
    }
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn status_pb(s: ItemStatus) -> v1::ItemStatus {
    match s {
        ItemStatus::Current => v1::ItemStatus::Current,
        ItemStatus::Amended => v1::ItemStatus::Amended,
        ItemStatus::Withdrawn => v1::ItemStatus::Withdrawn,
    }
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

fn page_token_after(token: &str) -> Result<String, Status> {
    if token.len() > 256 {
        return Err(Status::invalid_argument("page_token too long"));
    }
    Ok(token.to_owned())
}

#[tonic::async_trait]
impl v1::disclosure_node_server::DisclosureNode for NodeService {
    async fn append(
        &self,
        req: Request<v1::AppendRequest>,
    ) -> Result<Response<v1::AppendResponse>, Status> {
        self.authorize(&req)?;
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
        self.authorize(&req)?;
        let req = req.into_inner();
        if req.events.is_empty() {
            return Err(Status::invalid_argument("events: at least one is required"));
        }
        if req.events.len() > self.config.limits.max_batch_events {
            return Err(Status::resource_exhausted(format!(
                "{} events in one batch; the limit is {}",
                req.events.len(),
                self.config.limits.max_batch_events
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
        self.authorize(&req)?;
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
        let max = self.config.limits.max_content_bytes;
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
        let mut content =
            Vec::with_capacity(usize::try_from(start.length.min(16 << 20)).unwrap_or(0));
        while let Some(msg) = stream.message().await? {
            let Some(v1::upload_content_request::Part::Chunk(chunk)) = msg.part else {
                return Err(Status::invalid_argument("only chunks may follow `start`"));
            };
            if content.len() as u64 + chunk.len() as u64 > start.length {
                return Err(Status::invalid_argument(format!(
                    "more bytes than the announced length {}",
                    start.length
                )));
            }
            content.extend_from_slice(&chunk);
        }
        if content.len() as u64 != start.length {
            return Err(Status::invalid_argument(format!(
                "received {} bytes, announced {}",
                content.len(),
                start.length
            )));
        }
        let commitment =
            gongkai_core::types::ContentRef::commit(&salt, &content, &start.media_type)
                .map_err(|e| Status::invalid_argument(format!("media_type: {e}")))?;
        if !start.expected_digest.is_empty()
            && commitment.digest().0.as_slice() != start.expected_digest.as_slice()
        {
            return Err(Status::invalid_argument(
                "the content does not hash to expected_digest under the given salt",
            ));
        }
        let log = Arc::clone(&self.log);
        let digest = *commitment.digest();
        tokio::task::spawn_blocking(move || log.content().put(&digest, &salt, &content))
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
        self.check_origin(&req.get_ref().origin)?;
        let (_, note) = self
            .log
            .checkpoint()
            .ok_or_else(|| Status::unavailable("no checkpoint signed yet"))?;
        Ok(Response::new(v1::GetCheckpointResponse {
            checkpoint: note,
        }))
    }

    async fn get_entries(
        &self,
        req: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<v1::GetEntriesResponse>, Status> {
        let req = req.into_inner();
        self.check_origin(&req.origin)?;
        let size = self.log.size();
        if req.start >= size {
            return Err(Status::out_of_range(format!(
                "start {} is at or past the log size {size}",
                req.start
            )));
        }
        let limit = match req.limit {
            0 => DEFAULT_PAGE,
            n => n.min(self.config.limits.max_page),
        };
        let end = size.min(req.start + u64::from(limit));
        let log = Arc::clone(&self.log);
        let entries = tokio::task::spawn_blocking(move || log.journal().read_range(req.start, end))
            .await
            .map_err(|_| Status::internal("read task failed"))?;
        Ok(Response::new(v1::GetEntriesResponse {
            start: req.start,
            entries: self.read(entries)?,
        }))
    }

    type FollowStream = Stream2<v1::FollowResponse>;

    async fn follow(
        &self,
        req: Request<v1::FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let req = req.into_inner();
        self.check_origin(&req.origin)?;
        let log = Arc::clone(&self.log);
        let mut size = log.watch_size();
        let mut shutdown = self.shutdown.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut next = req.start;
            loop {
                let end = *size.borrow_and_update();
                while next < end {
                    let to = end.min(next + u64::from(DEFAULT_PAGE));
                    let l = Arc::clone(&log);
                    let from = next;
                    let batch =
                        match tokio::task::spawn_blocking(move || l.journal().read_range(from, to))
                            .await
                        {
                            Ok(Ok(b)) => b,
                            _ => {
                                let _ = tx.send(Err(Status::internal("read failed"))).await;
                                return;
                            }
                        };
                    for entry in batch {
                        let item = Ok(v1::FollowResponse { index: next, entry });
                        // A client that stops reading must not keep this
                        // task (and the shutdown) waiting.
                        tokio::select! {
                            sent = tx.send(item) => if sent.is_err() { return },
                            _ = shutdown.wait_for(|s| *s) => return,
                        }
                        next += 1;
                    }
                }
                tokio::select! {
                    changed = size.changed() => if changed.is_err() { return },
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofResponse>, Status> {
        let req = req.into_inner();
        self.check_origin(&req.origin)?;
        let tree_size = match req.tree_size {
            0 => self.log.checkpoint().map_or(0, |(s, _)| s),
            n => n,
        };
        if tree_size > self.log.size() {
            return Err(Status::out_of_range(format!(
                "tree size {tree_size} is larger than the log ({})",
                self.log.size()
            )));
        }
        let index = match req.leaf {
            Some(v1::get_inclusion_proof_request::Leaf::Index(i)) => i,
            Some(v1::get_inclusion_proof_request::Leaf::LeafHash(h)) => {
                let h = Hash::from_slice(&h)
                    .map_err(|e| Status::invalid_argument(format!("leaf_hash: {e}")))?;
                self.read(self.log.projection().index_of_leaf(&h))?
                    .ok_or_else(|| Status::not_found(format!("no entry with leaf hash {h}")))?
            }
            None => return Err(Status::invalid_argument("give index or leaf_hash")),
        };
        if index >= tree_size {
            return Err(Status::out_of_range(format!(
                "index {index} is not in a tree of size {tree_size}"
            )));
        }
        let proof = merkle::inclusion_proof(self.log.projection(), index, tree_size)
            .map_err(|e| Status::from(NodeError::Storage(e.to_string())))?;
        let entry = self.read(self.log.journal().read(index))?;
        let checkpoint = self
            .read(self.log.projection().checkpoint(tree_size))?
            .unwrap_or_default();
        Ok(Response::new(v1::GetInclusionProofResponse {
            index,
            tree_size,
            proof: proof.iter().map(|h| h.0.to_vec()).collect(),
            entry,
            checkpoint,
        }))
    }

    async fn get_consistency_proof(
        &self,
        req: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofResponse>, Status> {
        let req = req.into_inner();
        self.check_origin(&req.origin)?;
        if req.old_size > req.new_size || req.new_size > self.log.size() {
            return Err(Status::out_of_range(format!(
                "need old_size <= new_size <= {} (got {} and {})",
                self.log.size(),
                req.old_size,
                req.new_size
            )));
        }
        let proof = merkle::consistency_proof(self.log.projection(), req.old_size, req.new_size)
            .map_err(|e| Status::from(NodeError::Storage(e.to_string())))?;
        Ok(Response::new(v1::GetConsistencyProofResponse {
            proof: proof.iter().map(|h| h.0.to_vec()).collect(),
        }))
    }

    async fn get_item(
        &self,
        req: Request<v1::GetItemRequest>,
    ) -> Result<Response<v1::GetItemResponse>, Status> {
        let req = req.into_inner();
        self.check_origin(&req.origin)?;
        let rec = self
            .read(self.log.projection().item(&req.item_id))?
            .ok_or_else(|| Status::not_found(format!("no item {}", req.item_id)))?;
        let mut history = Vec::with_capacity(rec.history.len());
        for &index in &rec.history {
            history.push(v1::HistoryEntry {
                index,
                entry: self.read(self.log.journal().read(index))?,
            });
        }
        Ok(Response::new(v1::GetItemResponse {
            item: Some(self.item_view(&rec, self.matter_facts(&rec.matter_id)?)),
            history,
        }))
    }

    async fn list_items(
        &self,
        req: Request<v1::ListItemsRequest>,
    ) -> Result<Response<v1::ListItemsResponse>, Status> {
        let req = req.into_inner();
        self.check_origin(&req.origin)?;
        let page = self.page_size(req.page_size);
        let after = page_token_after(&req.page_token)?;
        let mut items = Vec::new();
        let mut matters: std::collections::HashMap<String, MatterFacts> =
            std::collections::HashMap::new();
        let mut next = String::new();
        for rec in self.log.projection().items_after(&after) {
            let rec = self.read(rec)?;
            // One matter lookup per matter, not per item.
            let facts = match matters.get(&rec.matter_id) {
                Some(f) => f.clone(),
                None => {
                    let f = self.matter_facts(&rec.matter_id)?;
                    matters.insert(rec.matter_id.clone(), f.clone());
                    f
                }
            };
            let view = self.item_view(&rec, facts);
            let keep = (req.category.is_empty() || view.category == req.category)
                && (req.matter_id.is_empty() || view.matter_id == req.matter_id)
                && (req.status == 0 || view.status == req.status)
                && (req.date_from.is_empty() || view.date_formed >= req.date_from)
                && (req.date_to.is_empty() || view.date_formed <= req.date_to)
                && (req.title_contains.is_empty() || view.title.contains(&req.title_contains));
            if keep {
                if items.len() == page {
                    next = items
                        .last()
                        .map(|v: &v1::ItemView| v.item_id.clone())
                        .unwrap_or_default();
                    break;
                }
                items.push(view);
            }
        }
        Ok(Response::new(v1::ListItemsResponse {
            items,
            next_page_token: next,
        }))
    }

    async fn list_matters(
        &self,
        req: Request<v1::ListMattersRequest>,
    ) -> Result<Response<v1::ListMattersResponse>, Status> {
        self.check_origin(&req.get_ref().origin)?;
        let mut matters = Vec::new();
        for m in self.log.projection().matters() {
            let m: MatterRecord = self.read(m)?;
            matters.push(v1::MatterView {
                matter_id: m.matter_id.clone(),
                matter: Some(m.matter()),
                active: m.active,
                defined_index: m.defined_index,
                last_index: m.history.last().copied().unwrap_or(m.defined_index),
            });
        }
        Ok(Response::new(v1::ListMattersResponse { matters }))
    }

    async fn list_requests(
        &self,
        req: Request<v1::ListRequestsRequest>,
    ) -> Result<Response<v1::ListRequestsResponse>, Status> {
        let req = req.into_inner();
        self.check_origin(&req.origin)?;
        let page = self.page_size(req.page_size);
        let after = page_token_after(&req.page_token)?;
        let calendar = WorkCalendar::shipped();
        let mut out = Vec::new();
        let mut next = String::new();
        for r in self.log.projection().requests_after(&after) {
            let r: RequestRecord = self.read(r)?;
            if out.len() == page {
                next = out
                    .last()
                    .map(|v: &v1::RequestView| v.request_id.clone())
                    .unwrap_or_default();
                break;
            }
            let deadline = match r.clock.deadline(calendar) {
                Ok(Some(Deadline::Due { date })) => date.to_string(),
                _ => String::new(),
            };
            let answered = r.clock.answered_on();
            out.push(v1::RequestView {
                request_id: r.request_id.clone(),
                subject: r.subject.clone(),
                date_received: r.clock.received().to_string(),
                deadline,
                date_answered: answered.map(|d| d.to_string()).unwrap_or_default(),
                decision: r.decision,
                late: answered.is_some_and(|d| r.clock.is_late(calendar, d).unwrap_or(false)),
                extended: r.clock.extended_on().is_some(),
                received_index: r.received_index,
                last_index: r.history.last().copied().unwrap_or(r.received_index),
            });
        }
        Ok(Response::new(v1::ListRequestsResponse {
            requests: out,
            next_page_token: next,
        }))
    }

    type GetContentStream = Stream2<v1::GetContentResponse>;

    async fn get_content(
        &self,
        req: Request<v1::GetContentRequest>,
    ) -> Result<Response<Self::GetContentStream>, Status> {
        self.check_origin(&req.get_ref().origin)?;
        let digest = Hash::from_slice(&req.get_ref().digest)
            .map_err(|e| Status::invalid_argument(format!("digest: {e}")))?;
        let item = self.read(self.log.projection().item_of_content(&digest))?;
        let media_type = match &item {
            Some(rec) => {
                if self.matter_facts(&rec.matter_id)?.1 {
                    self.authorize(&req).map_err(|_| {
                        Status::permission_denied(
                            "restricted content: its audience is a specific group",
                        )
                    })?;
                }
                rec.content_media_type(&digest)
            }
            None => return Err(Status::not_found(format!("no published content {digest}"))),
        };
        let blob = self.read(self.log.content().get(&digest))?.ok_or_else(|| {
            Status::not_found(format!("content {digest} is not held (redacted?)"))
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let header = v1::GetContentResponse {
            part: Some(v1::get_content_response::Part::Header(v1::ContentHeader {
                salt: blob.salt.to_vec(),
                length: blob.len,
                media_type,
            })),
        };
        tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            let mut file = blob.file;
            if tx.blocking_send(Ok(header)).is_err() {
                return;
            }
            let mut left = blob.len;
            while left > 0 {
                let mut buf =
                    vec![0u8; CONTENT_CHUNK.min(usize::try_from(left).unwrap_or(CONTENT_CHUNK))];
                if let Err(e) = file.read_exact(&mut buf) {
                    let _ = tx
                        .blocking_send(Err(Status::internal(format!("content read failed: {e}"))));
                    return;
                }
                left -= buf.len() as u64;
                let part = v1::get_content_response::Part::Chunk(buf);
                if tx
                    .blocking_send(Ok(v1::GetContentResponse { part: Some(part) }))
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_status(
        &self,
        req: Request<v1::GetStatusRequest>,
    ) -> Result<Response<v1::GetStatusResponse>, Status> {
        self.check_origin(&req.get_ref().origin)?;
        Ok(Response::new(v1::GetStatusResponse {
            origin: self.log.origin().to_string(),
            size: self.log.size(),
            checkpoint_size: self.log.checkpoint().map_or(0, |(s, _)| s),
            cosigned_size: 0,
            replication_lag: 0,
            last_replicated_ms: 0,
        }))
    }
}
