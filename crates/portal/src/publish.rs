//! Publishing the county's logs to an S3-compatible bucket (a 政务云
//! object store, behind a CDN), in the layout of the portal's HTTP paths
//! (FORMAT.md § 9.4), so readers (`verify --url`, the in-browser verifier)
//! can read from the bucket instead of the county's server.
//!
//! Per log and round: the hash tiles and entry bundles of the tree of the
//! newest checkpoint that the bucket lacks, the public documents of the new
//! entries (with their salt as `x-amz-meta-gongkai-salt`), then — the
//! commit point — the checkpoint. A crash between writes leaves objects
//! no published checkpoint refers to yet, never a checkpoint whose tree is
//! missing; the next round resumes from the checkpoint the bucket holds.
//! Redacted documents, and documents whose matter became restricted, are
//! deleted from the bucket (a CDN in front must then be purged: the
//! publisher logs each deleted URL path).

use std::sync::Arc;
use std::time::Duration;

use gongkai_core::Hash;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::event::{Kind, pb};
use gongkai_core::tile::{BundleId, TileId, encode_bundle, encode_tile, tile_hashes};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};

use crate::model::{self, CountyLogRead, LogRead, Source};

/// `Cache-Control` of what never changes: full tiles and bundles, and a
/// document (a redaction deletes it; purge a CDN then).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of what a later round replaces: the checkpoint and the
/// right-edge partial tiles.
const SHORT: &str = "public, max-age=5";
/// Objects written at once.
const PARALLEL: usize = 16;
/// How long a new checkpoint waits in the county for a public document its
/// entries commit to and the county does not hold yet (the department
/// pushes documents right after their entries): a reader of the bucket
/// must not find a checkpoint whose documents are missing. Past it the
/// checkpoint is published and the document follows when it arrives.
const HOLD: Duration = Duration::from_secs(60);

/// Per log, across rounds: public documents the county does not hold yet
/// (retried every round), and those put since the last checkpoint
/// written (not put again while a checkpoint waits).
#[derive(Debug, Default)]
pub struct Pending {
    waiting: std::collections::HashMap<Hash, std::time::Instant>,
    put: std::collections::HashSet<Hash>,
    /// Documents written (`true`) or deleted since [`Held`] last took them.
    changed: Vec<(Hash, bool)>,
}

/// What the bucket holds, as far as this county's publisher knows: per
/// log, the size of the checkpoint it holds and the documents. The portal
/// redirects reads to the bucket only for what is there
/// (`[publish] public_url`).
#[derive(Debug, Default)]
pub struct Held {
    logs: std::sync::RwLock<std::collections::HashMap<String, HeldLog>>,
}

#[derive(Debug, Default)]
struct HeldLog {
    size: u64,
    documents: std::collections::HashSet<Hash>,
    listed: bool,
}

impl Held {
    /// The size of the checkpoint the bucket holds for `origin` (0: none).
    pub fn size(&self, origin: &str) -> u64 {
        self.read().get(origin).map_or(0, |l| l.size)
    }

    /// Whether the bucket holds the document `digest` of `origin`.
    pub fn has(&self, origin: &str, digest: &Hash) -> bool {
        self.read()
            .get(origin)
            .is_some_and(|l| l.documents.contains(digest))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, std::collections::HashMap<String, HeldLog>> {
        self.logs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, std::collections::HashMap<String, HeldLog>> {
        self.logs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a round: the size the bucket holds, and the documents the
    /// round wrote or deleted.
    fn update(&self, origin: &str, size: u64, pending: &mut Pending) {
        let mut logs = self.write();
        let l = logs.entry(origin.to_owned()).or_default();
        l.size = size;
        for (digest, written) in pending.changed.drain(..) {
            if written {
                l.documents.insert(digest);
            } else {
                l.documents.remove(&digest);
            }
        }
    }

    /// Once per log and process: the documents already in the bucket
    /// (written by an earlier run), from a listing.
    async fn list(&self, store: &Arc<dyn ObjectStore>, origin: &str) -> Result<(), PublishError> {
        if self.read().get(origin).is_some_and(|l| l.listed) {
            return Ok(());
        }
        let prefix = object_key(format!("content/{}/", model::slug(origin)))?;
        let mut found = Vec::new();
        let mut listing = store.list(Some(&prefix));
        while let Some(meta) = tokio_stream::StreamExt::next(&mut listing).await {
            let meta = meta?;
            if let Some(d) = meta
                .location
                .filename()
                .and_then(|f| Hash::from_hex(f).ok())
            {
                found.push(d);
            }
        }
        let mut logs = self.write();
        let l = logs.entry(origin.to_owned()).or_default();
        l.documents.extend(found);
        l.listed = true;
        Ok(())
    }
}

impl Pending {
    /// Public documents the county does not hold yet.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// One log to publish: a department's mirror or the county log.
#[derive(Clone)]
pub enum Published {
    /// A department's log, with its documents.
    Department(Arc<dyn LogRead>),
    /// The county log.
    County(Arc<dyn CountyLogRead>),
}

impl Published {
    fn origin(&self) -> String {
        match self {
            Published::Department(l) => l.origin().to_owned(),
            Published::County(c) => c.origin().to_owned(),
        }
    }

    fn checkpoint(&self) -> Option<(u64, String)> {
        match self {
            Published::Department(l) => l.checkpoint(),
            Published::County(c) => c.checkpoint(),
        }
    }

    fn tile(&self, id: &TileId) -> Result<Vec<u8>, String> {
        let hashes = match self {
            Published::Department(l) => tile_hashes(l.projection(), id),
            Published::County(c) => tile_hashes(c.as_ref(), id),
        }
        .map_err(|e| e.to_string())?;
        Ok(encode_tile(&hashes))
    }

    fn root_at(&self, size: u64) -> Result<Hash, String> {
        match self {
            Published::Department(l) => gongkai_core::merkle::root_at(l.projection(), size),
            Published::County(c) => gongkai_core::merkle::root_at(c.as_ref(), size),
        }
        .map_err(|e| e.to_string())
    }

    fn bundle(&self, id: &BundleId) -> Result<Vec<u8>, String> {
        let first = id.first_entry();
        let end = first + u64::from(id.width());
        let entries = match self {
            Published::Department(l) => l
                .journal()
                .read_range(first, end)
                .map_err(|e| e.to_string())?,
            Published::County(c) => c.leaves(first, end)?,
        };
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        encode_bundle(&refs).map_err(|e| e.to_string())
    }
}

/// What a round did for one log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// The size the bucket held before.
    pub from: u64,
    /// The size it holds now.
    pub to: u64,
    /// Objects written.
    pub written: u64,
    /// Objects deleted (documents redacted or restricted).
    pub deleted: u64,
}

/// A publishing error.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The bucket failed (network, refusal): retried next round.
    #[error("bucket: {0}")]
    Bucket(#[from] object_store::Error),
    /// Reading the county's own data failed.
    #[error("{0}")]
    Read(String),
    /// The bucket holds a larger tree than the county serves: never
    /// published over (a restored county, or another county's bucket).
    #[error("{0}")]
    Ahead(String),
}

fn read(e: impl std::fmt::Display) -> PublishError {
    PublishError::Read(e.to_string())
}

/// The tiles (hash tiles of every level, then entry bundles) of the tree of
/// size `n` that the tree of size `m` does not publish (FORMAT.md § 9.1,
/// § 9.4): the full tiles completed since `m`, and the right edge of `n`.
pub fn new_tiles(m: u64, n: u64) -> (Vec<TileId>, Vec<BundleId>) {
    let mut tiles = Vec::new();
    let mut level: u8 = 0;
    loop {
        let shift = 8 * u32::from(level);
        let count_n = n.checked_shr(shift).unwrap_or(0);
        if count_n == 0 {
            break;
        }
        // From the old right edge on (it may be full now).
        let first = m.checked_shr(shift).unwrap_or(0) >> 8;
        for index in first..count_n >> 8 {
            if let Ok(id) = TileId::new(level, index, 256) {
                tiles.push(id);
            }
        }
        let w = count_n & 0xff;
        if w != 0
            && let Ok(id) = TileId::new(level, count_n >> 8, w as u16)
        {
            tiles.push(id);
        }
        level += 1;
    }
    let mut bundles = Vec::new();
    for index in (m >> 8)..(n >> 8) {
        if let Ok(id) = BundleId::new(index, 256) {
            bundles.push(id);
        }
    }
    if n & 0xff != 0
        && let Ok(id) = BundleId::new(n >> 8, (n & 0xff) as u16)
    {
        bundles.push(id);
    }
    (tiles, bundles)
}

/// Publishes one log's new tiles, documents and checkpoint.
///
/// # Errors
/// The bucket failed; the county's data could not be read; the bucket is
/// ahead of the county.
pub async fn publish_log(
    store: &Arc<dyn ObjectStore>,
    log: &Published,
    pending: &mut Pending,
) -> Result<Round, PublishError> {
    let origin = log.origin();
    let slug = model::slug(&origin);
    let Some((n, note)) = log.checkpoint() else {
        return Ok(Round::default());
    };
    let cp_path = object_key(format!("logs/{slug}/checkpoint"))?;
    let held = match store.get(&cp_path).await {
        Ok(r) => Some(r.bytes().await?),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let m = held
        .as_deref()
        .and_then(|b| SignedCheckpoint::from_bytes(b).ok())
        .map_or(0, |c| c.checkpoint().size);
    if m > n {
        return Err(PublishError::Ahead(format!(
            "{origin}: the bucket holds a tree of {m} entries, the county serves {n}: not published over"
        )));
    }
    // The bucket's tree must be a prefix of the county's (a restored
    // county, or another county's bucket, is never published over).
    if m > 0 {
        let theirs = held
            .as_deref()
            .and_then(|b| SignedCheckpoint::from_bytes(b).ok())
            .map(|c| {
                (
                    c.checkpoint().origin.as_str().to_owned(),
                    c.checkpoint().root,
                )
            });
        let l = log.clone();
        let ours = tokio::task::spawn_blocking(move || l.root_at(m))
            .await
            .map_err(read)?
            .map_err(PublishError::Read)?;
        if theirs != Some((origin.clone(), ours)) {
            return Err(PublishError::Ahead(format!(
                "{origin}: the bucket holds another tree at size {m} than the county's: not published over"
            )));
        }
    }
    let mut round = Round {
        from: m,
        to: m,
        ..Round::default()
    };
    if m == n {
        // Same size: documents that arrived since, and only a fresher
        // cosignature is worth a write.
        if let Published::Department(l) = log
            && !pending.waiting.is_empty()
        {
            let (w, d) = documents(store, l, &slug, n, n, pending).await?;
            round.written += w;
            round.deleted += d;
        }
        round.to = n;
        if held.as_deref() != Some(note.as_bytes()) {
            put(store, &cp_path, note.into_bytes(), text_attrs(SHORT)).await?;
            round.written += 1;
        }
        return Ok(round);
    }
    // 1. Tiles and bundles of the new tree, many at once.
    let (tiles, bundles) = new_tiles(m, n);
    let mut jobs: Vec<(String, bool, Job)> = Vec::new();
    for t in tiles {
        jobs.push((t.path(), t.is_partial(), Job::Tile(t)));
    }
    for b in bundles {
        jobs.push((b.path(), b.is_partial(), Job::Bundle(b)));
    }
    for chunk in jobs.chunks(PARALLEL) {
        let mut set = tokio::task::JoinSet::new();
        for (path, partial, job) in chunk.iter().cloned() {
            let log = log.clone();
            let store = Arc::clone(store);
            let slug = slug.clone();
            set.spawn(async move {
                let bytes = tokio::task::spawn_blocking(move || match job {
                    Job::Tile(t) => log.tile(&t),
                    Job::Bundle(b) => log.bundle(&b),
                })
                .await
                .map_err(read)?
                .map_err(PublishError::Read)?;
                let path = object_key(format!("logs/{slug}/{path}"))?;
                let attrs = binary_attrs(if partial { SHORT } else { IMMUTABLE });
                put(&store, &path, bytes, attrs).await
            });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(read)??;
            round.written += 1;
        }
    }
    // 2. The documents of the new entries; redactions and restrictions.
    if let Published::Department(l) = log {
        let (w, d) = documents(store, l, &slug, m, n, pending).await?;
        round.written += w;
        round.deleted += d;
        if pending.waiting.values().any(|since| since.elapsed() < HOLD) {
            // A document is on its way: the checkpoint waits a round.
            return Ok(round);
        }
        if !pending.waiting.is_empty() {
            tracing::warn!(
                origin,
                missing = pending.waiting.len(),
                "publishing a checkpoint whose public documents the county still lacks (the department has not pushed them); they follow when they arrive"
            );
        }
    }
    // 3. The commit point: the checkpoint, last.
    put(store, &cp_path, note.into_bytes(), text_attrs(SHORT)).await?;
    pending.put.clear();
    round.written += 1;
    round.to = n;
    Ok(round)
}

#[derive(Clone)]
enum Job {
    Tile(TileId),
    Bundle(BundleId),
}

/// Publishes the public documents the entries `[m, n)` commit to, and
/// deletes what they redact or restrict. Returns (written, deleted).
async fn documents(
    store: &Arc<dyn ObjectStore>,
    log: &Arc<dyn LogRead>,
    slug: &str,
    m: u64,
    n: u64,
    pending: &mut Pending,
) -> Result<(u64, u64), PublishError> {
    // What to do, worked out on a blocking thread from the log itself.
    let l = Arc::clone(log);
    let (mut touched, removals) = tokio::task::spawn_blocking(move || plan(l.as_ref(), m, n))
        .await
        .map_err(read)??;
    let listed: std::collections::HashSet<Hash> = touched.iter().copied().collect();
    touched.extend(pending.waiting.keys().filter(|d| !listed.contains(d)));
    touched.retain(|d| !pending.put.contains(d) || removals.contains(d));
    let (mut written, mut deleted) = (0, 0);
    // What the log says of each document *now* decides, whatever order
    // the entries of the round came in.
    for digest in touched {
        let l = Arc::clone(log);
        // One document in memory at a time (at most the county's limit).
        let found = tokio::task::spawn_blocking(move || -> Result<_, PublishError> {
            let Some(served) = crate::web::document(l.as_ref(), &digest).map_err(read)? else {
                return Ok(Doc::Gone);
            };
            if served.restricted || served.redacted {
                return Ok(Doc::Gone);
            }
            let Some(doc) = l.content().get_bytes(&digest).map_err(read)? else {
                return Ok(Doc::NotYet);
            };
            Ok(Doc::Public(
                doc.salt,
                doc.bytes,
                served.media,
                served.disposition,
            ))
        })
        .await
        .map_err(read)??;
        let path = object_key(format!("content/{slug}/{}", digest.to_hex()))?;
        let (salt, bytes, media, disposition) = match found {
            Doc::Public(salt, bytes, media, disposition) => {
                pending.waiting.remove(&digest);
                (salt, bytes, media, disposition)
            }
            Doc::NotYet => {
                // Public, committed, not pushed yet: retried every round.
                pending
                    .waiting
                    .entry(digest)
                    .or_insert_with(std::time::Instant::now);
                continue;
            }
            Doc::Gone => {
                pending.waiting.remove(&digest);
                // Not public now. Removed from the bucket if an entry of
                // the round took it out (a redaction, a matter turned
                // restricted); a new restricted document was never there.
                if !removals.contains(&digest) {
                    continue;
                }
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                tracing::warn!(path = %path, "document removed from the bucket: purge it from any CDN in front");
                pending.changed.push((digest, false));
                deleted += 1;
                continue;
            }
        };
        let mut attrs = Attributes::new();
        attrs.insert(Attribute::ContentType, media.into());
        attrs.insert(Attribute::CacheControl, IMMUTABLE.into());
        attrs.insert(Attribute::ContentDisposition, disposition.into());
        attrs.insert(
            Attribute::Metadata("gongkai-salt".into()),
            b64(&salt).into(),
        );
        put(store, &path, bytes, attrs).await?;
        pending.put.insert(digest);
        pending.changed.push((digest, true));
        written += 1;
    }
    Ok((written, deleted))
}

/// What the log says of a document now.
enum Doc {
    /// Public and held: its salt, bytes, media type and disposition.
    Public([u8; 32], Vec<u8>, String, String),
    /// Public, not held yet (the department has not pushed it).
    NotYet,
    /// Not public: restricted, redacted, or not committed.
    Gone,
}

/// The documents the entries `[m, n)` touch (in order, once each), and
/// those of them that may have left public view (redacted, or of a matter
/// whose audience changed).
fn plan(
    log: &dyn LogRead,
    m: u64,
    n: u64,
) -> Result<(Vec<Hash>, std::collections::HashSet<Hash>), PublishError> {
    let mut puts = Vec::new();
    let mut deletes = Vec::new();
    let mut changed = std::collections::HashSet::new();
    for index in m..n {
        let e = model::event_at(log, index).map_err(read)?;
        match &e.kind {
            Kind::Published(p) => puts.extend(p.content.as_ref().and_then(digest_of)),
            Kind::Amended(a) => puts.extend(a.content.as_ref().and_then(digest_of)),
            Kind::RequestAnswered(a) => puts.extend(a.content.as_ref().and_then(digest_of)),
            Kind::Redacted(r) => deletes.extend(Hash::from_slice(&r.content_digest).ok()),
            // The audience decides for every version of every item of the
            // matter, earlier ones included (FORMAT.md § 13): each is
            // looked at again (below, in one pass over the items).
            Kind::MatterChanged(c) => {
                changed.insert(c.matter_id.clone());
            }
            _ => {}
        }
    }
    if !changed.is_empty() {
        // Turned to a group, they leave the bucket; turned public, they
        // come (back): which one, the document's rule says when read.
        for item in log.projection().items_after("") {
            let item = item.map_err(read)?;
            if changed.contains(&item.matter_id) {
                deletes.extend(item.versions.iter().map(|v| v.digest));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let touched = puts
        .into_iter()
        .chain(deletes.iter().copied())
        .filter(|d| seen.insert(*d))
        .collect();
    Ok((touched, deletes.into_iter().collect()))
}

/// An object key, exactly as given: the slug's `~` stays (FORMAT.md
/// § 9.4), where `Path::from` would percent-encode it.
fn object_key(key: String) -> Result<ObjectPath, PublishError> {
    ObjectPath::parse(&key).map_err(|e| PublishError::Read(format!("object key {key}: {e}")))
}

fn digest_of(c: &pb::ContentRef) -> Option<Hash> {
    Hash::from_slice(&c.digest).ok()
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn text_attrs(cache: &'static str) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, "text/plain; charset=utf-8".into());
    a.insert(Attribute::CacheControl, cache.into());
    a
}

fn binary_attrs(cache: &'static str) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, "application/octet-stream".into());
    a.insert(Attribute::CacheControl, cache.into());
    a
}

async fn put(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    bytes: Vec<u8>,
    attributes: Attributes,
) -> Result<(), PublishError> {
    store
        .put_opts(
            path,
            PutPayload::from(bytes),
            PutOptions {
                attributes,
                ..PutOptions::default()
            },
        )
        .await?;
    Ok(())
}

/// The bucket's settings (`[publish]` of the county's config).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// The S3 endpoint, e.g. `https://oss.example.gov.cn` (`http://` only
    /// with `allow_http`).
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region (`garage`, `cn-north-1`, …).
    #[serde(default = "default_region")]
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// A file (0600) holding the secret access key.
    pub secret_access_key_file: std::path::PathBuf,
    /// Allow a plain-HTTP endpoint (a bucket on the county's own network).
    #[serde(default)]
    pub allow_http: bool,
    /// Time between rounds.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// The bucket's public address (its website endpoint, or the CDN in
    /// front of it), e.g. `https://cdn.example.gov.cn`. When set, the
    /// portal answers reads of full tiles, entry bundles and public
    /// documents the bucket holds with a redirect there (`302`), and
    /// serves the rest (checkpoints, right-edge tiles, anything not
    /// published yet) itself.
    #[serde(default)]
    pub public_url: Option<String>,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_interval() -> u64 {
    5_000
}

impl BucketConfig {
    /// The bucket as an object store (path-style requests, as 政务云 and
    /// self-hosted stores expect).
    ///
    /// # Errors
    /// An unreadable secret file; settings the client refuses.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>, String> {
        let secret = std::fs::read_to_string(&self.secret_access_key_file)
            .map_err(|e| format!("{}: {e}", self.secret_access_key_file.display()))?;
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(secret.trim())
            .with_allow_http(self.allow_http)
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(s3))
    }
}

/// Every document the log `l` has committed to (each version of each
/// item, each request answer's) that the bucket does not hold, whether
/// public or not: [`documents`] decides each one as it is published. At
/// start these are what a county that stopped with documents still on
/// their way (a checkpoint published past [`HOLD`] without them) would
/// otherwise never publish, since later rounds look only at new entries.
async fn absent_documents(
    l: &Arc<dyn LogRead>,
    held: &Arc<Held>,
) -> Result<Vec<Hash>, PublishError> {
    let (l, held) = (Arc::clone(l), Arc::clone(held));
    tokio::task::spawn_blocking(move || -> Result<Vec<Hash>, PublishError> {
        let origin = l.origin().to_owned();
        let p = l.projection();
        let mut absent = Vec::new();
        for item in p.items_after("") {
            let item = item.map_err(read)?;
            absent.extend(
                item.versions
                    .iter()
                    .map(|v| v.digest)
                    .filter(|d| !held.has(&origin, d)),
            );
        }
        for request in p.answered_with_content() {
            if let Some(c) = request.map_err(read)?.answer_content
                && !held.has(&origin, &c.digest)
            {
                absent.push(c.digest);
            }
        }
        Ok(absent)
    })
    .await
    .map_err(read)?
}

/// Publishes every log of `source` each `interval` until `stop` is true;
/// a failed round is logged and retried at the next. At start, documents
/// the log commits to and the bucket lacks are published too (see
/// [`absent_documents`]).
pub async fn run(
    source: Arc<dyn Source>,
    store: Arc<dyn ObjectStore>,
    interval: Duration,
    held: Arc<Held>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut waiting: std::collections::HashMap<String, Pending> = std::collections::HashMap::new();
    // Logs whose documents were compared with the bucket's since start.
    let mut compared = std::collections::HashSet::new();
    loop {
        let mut logs: Vec<Published> = source
            .departments()
            .iter()
            .filter_map(|d| source.log(&d.origin))
            .map(Published::Department)
            .collect();
        logs.extend(source.county_log().map(Published::County));
        for log in &logs {
            let pending = waiting.entry(log.origin()).or_default();
            if let Err(e) = held.list(&store, &log.origin()).await {
                tracing::warn!(origin = %log.origin(), error = %e, "listing the bucket's documents failed; retried next round");
                continue;
            }
            if let Published::Department(l) = log
                && !compared.contains(&log.origin())
            {
                match absent_documents(l, &held).await {
                    Ok(absent) => {
                        if !absent.is_empty() {
                            tracing::info!(origin = %log.origin(), documents = absent.len(), "documents the bucket lacks (the county restarted while they were on their way): published when the county holds them");
                        }
                        // As for new documents: a checkpoint waits for
                        // them up to HOLD, then goes without them.
                        let since = std::time::Instant::now();
                        for d in absent {
                            pending.waiting.entry(d).or_insert(since);
                        }
                        compared.insert(log.origin());
                    }
                    Err(e) => {
                        tracing::warn!(origin = %log.origin(), error = %e, "comparing the log's documents with the bucket's failed; retried next round");
                    }
                }
            }
            let published = publish_log(&store, log, pending).await;
            if let Ok(r) = &published {
                held.update(&log.origin(), r.to, pending);
            }
            match published {
                Ok(r) if r.to > r.from || r.deleted > 0 => {
                    tracing::info!(origin = %log.origin(), from = r.from, to = r.to, written = r.written, deleted = r.deleted, "published to the bucket");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(origin = %log.origin(), error = %e, "publishing to the bucket failed; retried next round")
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(m: u64, n: u64) -> Vec<String> {
        let (t, b) = new_tiles(m, n);
        t.iter()
            .map(TileId::path)
            .chain(b.iter().map(BundleId::path))
            .collect()
    }

    #[test]
    fn the_new_tiles_of_a_grown_tree() {
        assert_eq!(paths(0, 3), ["tile/0/000.p/3", "tile/entries/000.p/3"]);
        // 3 → 5: the edge is rewritten at its new width.
        assert_eq!(paths(3, 5), ["tile/0/000.p/5", "tile/entries/000.p/5"]);
        // 200 → 300: level 0 tile 0 becomes full, a new edge; level 1
        // gets its first partial tile (one stored hash).
        assert_eq!(
            paths(200, 300),
            [
                "tile/0/000",
                "tile/0/001.p/44",
                "tile/1/000.p/1",
                "tile/entries/000",
                "tile/entries/001.p/44"
            ]
        );
        assert_eq!(
            paths(256, 512),
            ["tile/0/001", "tile/1/000.p/2", "tile/entries/001"]
        );
        // 65536 + 1: a third level appears; every full tile of the grown
        // part is there exactly once.
        let p = paths(65_535, 65_537);
        assert!(p.contains(&"tile/0/255".to_owned()) && p.contains(&"tile/1/000".to_owned()));
        assert!(
            p.contains(&"tile/2/000.p/1".to_owned())
                && p.contains(&"tile/entries/256.p/1".to_owned())
        );
        let mut sorted = p.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), p.len());
    }
}
