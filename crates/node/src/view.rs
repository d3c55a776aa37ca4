//! The read side of a log, shared by a department node and the county's
//! mirror of that department.
//!
//! A [`LogView`] is what every read needs — origin, journal, projection,
//! content, the committed size and the newest checkpoint note with all its
//! signature lines — and nothing of the write path. A department node keeps
//! one inside its [`crate::log::Log`]; the county aggregator keeps one per
//! mirrored department over a data directory of the same format.
//!
//! [`ReadService`] implements every read RPC of `DisclosureNode` once,
//! generically over a [`LogSource`] that finds the view for an origin and
//! says what a request may read. The node's service and the aggregator's
//! mirror service both delegate to it, so the public reads a mirror exactly
//! as it reads a node.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use gongkai_core::Hash;
use gongkai_core::calendar::{Deadline, WorkCalendar};
use gongkai_core::catalog::ItemStatus;
use gongkai_core::event::pb;
use gongkai_core::merkle;
use gongkai_core::types::Origin;
use gongkai_proto::v1;
use gongkai_store::projection::{ItemRecord, MatterRecord, Projection, RequestRecord};
use gongkai_store::{ContentStore, Journal};
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::NodeError;

/// Entries per GetEntries page when the client does not say.
pub const DEFAULT_PAGE: u32 = 256;
/// Bytes per content chunk sent by GetContent.
pub const CONTENT_CHUNK: usize = 64 * 1024;

/// A server-streaming response.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The read side of one log.
pub struct LogView {
    pub(crate) origin: Origin,
    pub(crate) journal: Journal,
    pub(crate) projection: Projection,
    pub(crate) content: ContentStore,
    /// Committed size: entries durable *and* projected.
    size: watch::Sender<u64>,
    /// The newest signed checkpoint `(size, note)`.
    checkpoint: Mutex<Option<(u64, String)>>,
    /// The newest checkpoint the county cosigned `(size, note)`, with the
    /// department's signature and the cosignature lines.
    cosigned: Mutex<Option<(u64, String)>>,
}

impl LogView {
    /// A view over opened storage whose committed size is `size`.
    pub fn new(
        origin: Origin,
        journal: Journal,
        projection: Projection,
        content: ContentStore,
        size: u64,
    ) -> LogView {
        LogView {
            origin,
            journal,
            projection,
            content,
            size: watch::channel(size).0,
            checkpoint: Mutex::new(None),
            cosigned: Mutex::new(None),
        }
    }

    /// The origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The journal (durable entries).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The projection.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Committed size (durable and projected).
    pub fn size(&self) -> u64 {
        *self.size.borrow()
    }

    /// A receiver that changes whenever the committed size grows.
    pub fn watch_size(&self) -> watch::Receiver<u64> {
        self.size.subscribe()
    }

    /// Publishes a new committed size (after the journal is durable and the
    /// projection applied), waking followers.
    pub fn publish_size(&self, size: u64) {
        self.size.send_replace(size);
    }

    /// The newest checkpoint `(size, note)`, with every signature line known
    /// for it (the county's cosignature when it cosigned this size).
    pub fn checkpoint(&self) -> Option<(u64, String)> {
        let newest = self.checkpoint.lock().ok().and_then(|c| c.clone())?;
        match self.cosigned() {
            Some((size, note)) if size == newest.0 => Some((size, note)),
            _ => Some(newest),
        }
    }

    /// Sets the newest signed checkpoint.
    pub fn set_checkpoint(&self, size: u64, note: String) {
        if let Ok(mut c) = self.checkpoint.lock() {
            *c = Some((size, note));
        }
    }

    /// The newest checkpoint the county cosigned, `(size, note)`.
    pub fn cosigned(&self) -> Option<(u64, String)> {
        self.cosigned.lock().ok().and_then(|c| c.clone())
    }

    /// Records a cosigned checkpoint (a larger or equal size than the one
    /// held; the caller verified it).
    pub fn set_cosigned(&self, size: u64, note: String) {
        if let Ok(mut c) = self.cosigned.lock()
            && c.as_ref().is_none_or(|(s, _)| *s <= size)
        {
            *c = Some((size, note));
        }
    }
}

/// Where a [`ReadService`] finds its logs and what a request may read.
pub trait LogSource: Send + Sync + 'static {
    /// The view of `origin`.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for an empty origin, NOT_FOUND for one not served.
    fn view(&self, origin: &str) -> Result<Arc<LogView>, Status>;

    /// Whether this request may read restricted content (content of a
    /// matter whose audience is a specific group).
    fn may_read_restricted<T>(&self, req: &Request<T>) -> bool;

    /// Largest page of entries or items.
    fn max_page(&self) -> u32;

    /// Becomes true when the server shuts down (ends Follow streams).
    fn shutdown(&self) -> watch::Receiver<bool>;

    /// The working-day calendar judgements use (FORMAT.md § 14.4): the
    /// seed table, unless the source knows the tables the county
    /// published.
    fn calendar(&self) -> Arc<WorkCalendar> {
        Arc::new(WorkCalendar::shipped().clone())
    }
}

/// `(category, restricted)` of a matter.
type MatterFacts = (String, bool);

/// Content downloads served at once by one server: each holds an open
/// file and a little buffer, never a thread.
pub const MAX_DOWNLOADS: usize = 256;
/// Content downloads served at once to one client address.
pub const MAX_DOWNLOADS_PER_PEER: usize = 8;
/// A download whose reader takes longer than this to accept the next
/// chunk is ended (a slow reader holds a file and a slot).
pub const SLOW_READER: std::time::Duration = std::time::Duration::from_secs(30);

/// The read RPCs of `DisclosureNode`, over any [`LogSource`].
pub struct ReadService<S> {
    source: Arc<S>,
    downloads: Downloads,
}

impl<S> Clone for ReadService<S> {
    fn clone(&self) -> Self {
        ReadService {
            source: Arc::clone(&self.source),
            downloads: self.downloads.clone(),
        }
    }
}

/// The slots for content downloads: a bounded number in all, fewer per
/// client address.
#[derive(Clone)]
struct Downloads {
    all: Arc<tokio::sync::Semaphore>,
    per_peer: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// A download's slot, given back when the stream ends or is dropped.
struct DownloadSlot {
    _all: tokio::sync::OwnedSemaphorePermit,
    peer: Option<(std::net::IpAddr, Downloads)>,
}

impl Drop for DownloadSlot {
    fn drop(&mut self) {
        if let Some((ip, d)) = self.peer.take() {
            let mut m = d
                .per_peer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = m.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        }
    }
}

impl Downloads {
    fn new() -> Downloads {
        Downloads {
            all: Arc::new(tokio::sync::Semaphore::new(MAX_DOWNLOADS)),
            per_peer: Arc::default(),
        }
    }

    /// A slot for a download to `peer`, or RESOURCE_EXHAUSTED.
    fn take(&self, peer: Option<std::net::IpAddr>) -> Result<DownloadSlot, Status> {
        let all = Arc::clone(&self.all).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_DOWNLOADS} downloads are being served; try again shortly"
            ))
        })?;
        let peer = match peer {
            None => None,
            Some(ip) => {
                let mut m = self
                    .per_peer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let n = m.entry(ip).or_default();
                if *n >= MAX_DOWNLOADS_PER_PEER {
                    return Err(Status::resource_exhausted(format!(
                        "{MAX_DOWNLOADS_PER_PEER} downloads from your address at once at most"
                    )));
                }
                *n += 1;
                Some((ip, self.clone()))
            }
        };
        Ok(DownloadSlot { _all: all, peer })
    }
}

fn read<T>(r: Result<T, gongkai_store::StoreError>) -> Result<T, Status> {
    r.map_err(|e| Status::from(NodeError::from(e)))
}

fn page_token_after(token: &str) -> Result<String, Status> {
    if token.len() > 256 {
        return Err(Status::invalid_argument("page_token too long"));
    }
    Ok(token.to_owned())
}

fn status_pb(s: ItemStatus) -> v1::ItemStatus {
    match s {
        ItemStatus::Current => v1::ItemStatus::Current,
        ItemStatus::Amended => v1::ItemStatus::Amended,
        ItemStatus::Withdrawn => v1::ItemStatus::Withdrawn,
    }
}

/// What an item's view takes from its matter: the category, and whether
/// content is restricted (the audience is a specific group).
fn matter_facts(view: &LogView, matter_id: &str) -> Result<MatterFacts, Status> {
    let matter = read(view.projection().matter(matter_id))?;
    Ok(matter.map_or((String::new(), false), |m| {
        let m = m.matter();
        (m.category, m.audience == pb::Audience::Group as i32)
    }))
}

fn item_view(rec: &ItemRecord, (category, restricted): MatterFacts) -> v1::ItemView {
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

impl<S: LogSource> ReadService<S> {
    /// The read RPCs over `source`.
    pub fn new(source: Arc<S>) -> ReadService<S> {
        ReadService {
            source,
            downloads: Downloads::new(),
        }
    }

    /// The source.
    pub fn source(&self) -> &Arc<S> {
        &self.source
    }

    /// Page size: the client's, capped by the source; 100 by default.
    fn page_size(&self, requested: u32) -> usize {
        let n = match requested {
            0 => 100,
            n => n.min(self.source.max_page()),
        };
        usize::try_from(n).unwrap_or(100)
    }

    /// `GetCheckpoint`.
    ///
    /// # Errors
    /// As [`LogSource::view`]; UNAVAILABLE before the first checkpoint.
    pub async fn get_checkpoint(
        &self,
        req: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::GetCheckpointResponse>, Status> {
        let view = self.source.view(&req.get_ref().origin)?;
        let (_, note) = view
            .checkpoint()
            .ok_or_else(|| Status::unavailable("no checkpoint signed yet"))?;
        Ok(Response::new(v1::GetCheckpointResponse {
            checkpoint: note,
            cosigned_checkpoint: view.cosigned().map(|(_, n)| n).unwrap_or_default(),
        }))
    }

    /// `GetEntries`.
    ///
    /// # Errors
    /// As [`LogSource::view`]; OUT_OF_RANGE past the size.
    pub async fn get_entries(
        &self,
        req: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<v1::GetEntriesResponse>, Status> {
        let req = req.into_inner();
        let view = self.source.view(&req.origin)?;
        let size = view.size();
        if req.start >= size {
            return Err(Status::out_of_range(format!(
                "start {} is at or past the log size {size}",
                req.start
            )));
        }
        let limit = match req.limit {
            0 => DEFAULT_PAGE,
            n => n.min(self.source.max_page()),
        };
        let end = size.min(req.start.saturating_add(u64::from(limit)));
        let entries =
            tokio::task::spawn_blocking(move || view.journal().read_range(req.start, end))
                .await
                .map_err(|_| Status::internal("read task failed"))?;
        Ok(Response::new(v1::GetEntriesResponse {
            start: req.start,
            entries: read(entries)?,
        }))
    }

    /// `Follow`.
    ///
    /// # Errors
    /// As [`LogSource::view`].
    pub async fn follow(
        &self,
        req: Request<v1::FollowRequest>,
    ) -> Result<Response<ResponseStream<v1::FollowResponse>>, Status> {
        let req = req.into_inner();
        let log = self.source.view(&req.origin)?;
        let mut size = log.watch_size();
        let mut shutdown = self.source.shutdown();
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

    /// `GetInclusionProof`.
    ///
    /// # Errors
    /// As [`LogSource::view`]; OUT_OF_RANGE, NOT_FOUND, INVALID_ARGUMENT.
    pub async fn get_inclusion_proof(
        &self,
        req: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofResponse>, Status> {
        let req = req.into_inner();
        let view = self.source.view(&req.origin)?;
        let tree_size = match req.tree_size {
            0 => view.checkpoint().map_or(0, |(s, _)| s),
            n => n,
        };
        if tree_size > view.size() {
            return Err(Status::out_of_range(format!(
                "tree size {tree_size} is larger than the log ({})",
                view.size()
            )));
        }
        let index = match req.leaf {
            Some(v1::get_inclusion_proof_request::Leaf::Index(i)) => i,
            Some(v1::get_inclusion_proof_request::Leaf::LeafHash(h)) => {
                let h = Hash::from_slice(&h)
                    .map_err(|e| Status::invalid_argument(format!("leaf_hash: {e}")))?;
                read(view.projection().index_of_leaf(&h))?
                    .ok_or_else(|| Status::not_found(format!("no entry with leaf hash {h}")))?
            }
            None => return Err(Status::invalid_argument("give index or leaf_hash")),
        };
        if index >= tree_size {
            return Err(Status::out_of_range(format!(
                "index {index} is not in a tree of size {tree_size}"
            )));
        }
        let proof = merkle::inclusion_proof(view.projection(), index, tree_size)
            .map_err(|e| Status::from(NodeError::Storage(e.to_string())))?;
        let entry = read(view.journal().read(index))?;
        let checkpoint = read(view.projection().checkpoint(tree_size))?.unwrap_or_default();
        Ok(Response::new(v1::GetInclusionProofResponse {
            index,
            tree_size,
            proof: proof.iter().map(|h| h.0.to_vec()).collect(),
            entry,
            checkpoint,
        }))
    }

    /// `GetConsistencyProof`.
    ///
    /// # Errors
    /// As [`LogSource::view`]; OUT_OF_RANGE for impossible sizes.
    pub async fn get_consistency_proof(
        &self,
        req: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofResponse>, Status> {
        let req = req.into_inner();
        let view = self.source.view(&req.origin)?;
        if req.old_size > req.new_size || req.new_size > view.size() {
            return Err(Status::out_of_range(format!(
                "need old_size <= new_size <= {} (got {} and {})",
                view.size(),
                req.old_size,
                req.new_size
            )));
        }
        let proof = merkle::consistency_proof(view.projection(), req.old_size, req.new_size)
            .map_err(|e| Status::from(NodeError::Storage(e.to_string())))?;
        Ok(Response::new(v1::GetConsistencyProofResponse {
            proof: proof.iter().map(|h| h.0.to_vec()).collect(),
        }))
    }

    /// `GetItem`.
    ///
    /// # Errors
    /// As [`LogSource::view`]; NOT_FOUND.
    pub async fn get_item(
        &self,
        req: Request<v1::GetItemRequest>,
    ) -> Result<Response<v1::GetItemResponse>, Status> {
        let req = req.into_inner();
        let view = self.source.view(&req.origin)?;
        let rec = read(view.projection().item(&req.item_id))?
            .ok_or_else(|| Status::not_found(format!("no item {}", req.item_id)))?;
        let mut history = Vec::with_capacity(rec.history.len());
        for &index in &rec.history {
            history.push(v1::HistoryEntry {
                index,
                entry: read(view.journal().read(index))?,
            });
        }
        Ok(Response::new(v1::GetItemResponse {
            item: Some(item_view(&rec, matter_facts(&view, &rec.matter_id)?)),
            history,
        }))
    }

    /// `ListItems`.
    ///
    /// # Errors
    /// As [`LogSource::view`].
    pub async fn list_items(
        &self,
        req: Request<v1::ListItemsRequest>,
    ) -> Result<Response<v1::ListItemsResponse>, Status> {
        let req = req.into_inner();
        let view = self.source.view(&req.origin)?;
        let page = self.page_size(req.page_size);
        let after = page_token_after(&req.page_token)?;
        let mut items = Vec::new();
        let mut matters: std::collections::HashMap<String, MatterFacts> =
            std::collections::HashMap::new();
        let mut next = String::new();
        for rec in view.projection().items_after(&after) {
            let rec = read(rec)?;
            // One matter lookup per matter, not per item.
            let facts = match matters.get(&rec.matter_id) {
                Some(f) => f.clone(),
                None => {
                    let f = matter_facts(&view, &rec.matter_id)?;
                    matters.insert(rec.matter_id.clone(), f.clone());
                    f
                }
            };
            let item = item_view(&rec, facts);
            let keep = (req.category.is_empty() || item.category == req.category)
                && (req.matter_id.is_empty() || item.matter_id == req.matter_id)
                && (req.status == 0 || item.status == req.status)
                && (req.date_from.is_empty() || item.date_formed >= req.date_from)
                && (req.date_to.is_empty() || item.date_formed <= req.date_to)
                && (req.title_contains.is_empty() || item.title.contains(&req.title_contains));
            if keep {
                if items.len() == page {
                    next = items
                        .last()
                        .map(|v: &v1::ItemView| v.item_id.clone())
                        .unwrap_or_default();
                    break;
                }
                items.push(item);
            }
        }
        Ok(Response::new(v1::ListItemsResponse {
            items,
            next_page_token: next,
        }))
    }

    /// `ListMatters`.
    ///
    /// # Errors
    /// As [`LogSource::view`].
    pub async fn list_matters(
        &self,
        req: Request<v1::ListMattersRequest>,
    ) -> Result<Response<v1::ListMattersResponse>, Status> {
        let view = self.source.view(&req.get_ref().origin)?;
        let mut matters = Vec::new();
        for m in view.projection().matters() {
            let m: MatterRecord = read(m)?;
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

    /// `ListRequests`.
    ///
    /// # Errors
    /// As [`LogSource::view`].
    pub async fn list_requests(
        &self,
        req: Request<v1::ListRequestsRequest>,
    ) -> Result<Response<v1::ListRequestsResponse>, Status> {
        let req = req.into_inner();
        let view = self.source.view(&req.origin)?;
        let page = self.page_size(req.page_size);
        let after = page_token_after(&req.page_token)?;
        let calendar = self.source.calendar();
        let mut out = Vec::new();
        let mut next = String::new();
        for r in view.projection().requests_after(&after) {
            let r: RequestRecord = read(r)?;
            if out.len() == page {
                next = out
                    .last()
                    .map(|v: &v1::RequestView| v.request_id.clone())
                    .unwrap_or_default();
                break;
            }
            let answered = r.clock.answered_on();
            let judged = RequestJudgement::of(&r.clock, &calendar);
            out.push(v1::RequestView {
                request_id: r.request_id.clone(),
                subject: r.subject.clone(),
                date_received: r.clock.received().to_string(),
                deadline: judged.deadline.map(|d| d.to_string()).unwrap_or_default(),
                date_answered: answered.map(|d| d.to_string()).unwrap_or_default(),
                decision: r.decision,
                late: judged.late,
                extended: r.clock.extended_on().is_some(),
                received_index: r.received_index,
                last_index: r.history.last().copied().unwrap_or(r.received_index),
                not_judged: judged.not_judged,
                calendar: judged.calendar,
            });
        }
        Ok(Response::new(v1::ListRequestsResponse {
            requests: out,
            next_page_token: next,
        }))
    }

    /// `GetContent`.
    ///
    /// # Errors
    /// As [`LogSource::view`]; INVALID_ARGUMENT, NOT_FOUND,
    /// PERMISSION_DENIED for restricted content.
    pub async fn get_content(
        &self,
        req: Request<v1::GetContentRequest>,
    ) -> Result<Response<ResponseStream<v1::GetContentResponse>>, Status> {
        let view = self.source.view(&req.get_ref().origin)?;
        let digest = Hash::from_slice(&req.get_ref().digest)
            .map_err(|e| Status::invalid_argument(format!("digest: {e}")))?;
        let item = read(view.projection().item_of_content(&digest))?;
        let media_type = match &item {
            Some(rec) => {
                if matter_facts(&view, &rec.matter_id)?.1 && !self.source.may_read_restricted(&req)
                {
                    return Err(Status::permission_denied(
                        "restricted content: its audience is a specific group",
                    ));
                }
                rec.content_media_type(&digest)
            }
            // The content of a request answer (FORMAT.md § 13): public.
            None => match read(view.projection().request_of_content(&digest))? {
                Some(rec) => rec.answer_content.map(|c| c.media_type).unwrap_or_default(),
                None => {
                    return Err(Status::not_found(format!(
                        "no published or answered content {digest}"
                    )));
                }
            },
        };
        let slot = self.downloads.take(req.remote_addr().map(|a| a.ip()))?;
        let blob = read(view.content().get(&digest))?.ok_or_else(|| {
            Status::not_found(format!("content {digest} is not held (redacted?)"))
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let header = v1::GetContentResponse {
            part: Some(v1::get_content_response::Part::Header(v1::ContentHeader {
                salt: blob.salt.to_vec(),
                length: blob.len,
                media_type,
            })),
        };
        // Async all the way: each read takes a blocking thread only for
        // the read itself, and waiting for a slow reader takes none (one
        // blocking thread per unread stream starved the commit path).
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt as _;
            let _slot = slot;
            let mut file = tokio::fs::File::from_std(blob.file);
            let send = |m| tokio::time::timeout(SLOW_READER, tx.send(m));
            if !matches!(send(Ok(header)).await, Ok(Ok(()))) {
                return;
            }
            let mut left = blob.len;
            while left > 0 {
                let mut buf =
                    vec![0u8; CONTENT_CHUNK.min(usize::try_from(left).unwrap_or(CONTENT_CHUNK))];
                if let Err(e) = file.read_exact(&mut buf).await {
                    let _ = send(Err(Status::internal(format!("content read failed: {e}")))).await;
                    return;
                }
                left -= buf.len() as u64;
                let part = v1::get_content_response::Part::Chunk(buf);
                // A reader that does not take the next chunk in time loses
                // the stream (and gives its slot back).
                if !matches!(
                    send(Ok(v1::GetContentResponse { part: Some(part) })).await,
                    Ok(Ok(()))
                ) {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// What the calendar in force says about one request: its deadline,
/// whether its answer was late, or why that cannot be judged yet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestJudgement {
    /// The deadline in force, if the clock runs and the calendar covers it.
    pub deadline: Option<gongkai_core::date::Date>,
    /// Answered after the deadline.
    pub late: bool,
    /// "cannot judge yet: no holiday table for YEAR", or empty.
    pub not_judged: String,
    /// That YEAR.
    pub not_judged_year: Option<i32>,
    /// The tables used (FORMAT.md § 14.4), or empty.
    pub calendar: String,
}

impl RequestJudgement {
    /// Judges `clock` with `calendar`.
    pub fn of(clock: &gongkai_core::calendar::RequestClock, calendar: &WorkCalendar) -> Self {
        let mut j = RequestJudgement::default();
        if let Ok(Some(Deadline::Due { date })) = clock.deadline(calendar) {
            j.deadline = Some(date);
        }
        // An answered request is judged by its lateness (which needs only
        // the days up to the answer); an open one by its deadline.
        let (judged, until) = match clock.answered_on() {
            Some(answer) => (
                clock.is_late(calendar, answer).map(|late| j.late = late),
                answer,
            ),
            None => (clock.deadline(calendar).map(|_| ()), clock.received()),
        };
        match judged {
            Ok(()) => {
                let to = j.deadline.map_or(until, |d| d.max(until));
                j.calendar = calendar.describe(clock.received(), to);
            }
            Err(e) => {
                if let gongkai_core::Error::CalendarYearNotCovered { year } = e {
                    j.not_judged_year = Some(year);
                }
                j.not_judged = e.to_string();
            }
        }
        j
    }
}
