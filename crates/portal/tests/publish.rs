//! The bucket publisher over an in-memory object store that can fail at
//! any write (fault injection; the real store is tested in
//! tests/bucket.rs): a round that fails part-way never leaves a checkpoint
//! whose files are missing, the next round completes it, and every object
//! is byte for byte what the portal serves at the same path.

mod common;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_portal::Source;
use gongkai_portal::publish::{Pending, Published, new_tiles, publish_log};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// An in-memory store whose puts fail once `budget` reaches zero.
#[derive(Debug)]
struct Failing {
    inner: InMemory,
    budget: AtomicI64,
}

impl fmt::Display for Failing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Failing")
    }
}

#[async_trait]
impl ObjectStore for Failing {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(object_store::Error::Generic {
                store: "Failing",
                source: "injected: the bucket went away".into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.inner.delete(location).await
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }
    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

async fn object(store: &Failing, key: &str) -> Option<Vec<u8>> {
    let path = Path::parse(key).unwrap();
    match store.inner.get(&path).await {
        Ok(r) => Some(r.bytes().await.unwrap().to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{key}: {e}"),
    }
}

#[test]
fn a_round_that_fails_part_way_never_publishes_a_checkpoint_without_its_files() {
    let f = common::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = f.county.log(common::ORIGIN).unwrap();
    let (size, note) = log.checkpoint().unwrap();
    let slug = common::ORIGIN.replace('/', "~");
    let published = Published::Department(Arc::clone(&log));
    let (tiles, bundles) = new_tiles(0, size);
    let files: Vec<String> = tiles
        .iter()
        .map(|t| t.path())
        .chain(bundles.iter().map(|b| b.path()))
        .collect();
    assert!(!files.is_empty());

    // Every number of successful writes before the bucket fails, from
    // none to all but the checkpoint's.
    let store = Arc::new(Failing {
        inner: InMemory::new(),
        budget: AtomicI64::new(0),
    });
    let dynamic: Arc<dyn ObjectStore> = Arc::clone(&store) as Arc<dyn ObjectStore>;
    let mut k = 0;
    loop {
        store.budget.store(k, Ordering::SeqCst);
        let r = runtime.block_on(publish_log(&dynamic, &published, &mut Pending::default()));
        let cp = runtime.block_on(object(&store, &format!("logs/{slug}/checkpoint")));
        match r {
            Err(_) => assert!(cp.is_none(), "after {k} writes, a checkpoint was published"),
            Ok(round) => {
                // Complete: the checkpoint, and every file of its tree.
                assert_eq!(round.to, size);
                assert_eq!(cp.as_deref(), Some(note.as_bytes()));
                break;
            }
        }
        k += 1;
        assert!(k < 1000, "never completed");
    }
    // Byte for byte what the portal serves at the same paths (FORMAT.md
    // § 9.4), and the documents with their salt.
    for file in &files {
        let key = format!("logs/{slug}/{file}");
        let ours = runtime
            .block_on(object(&store, &key))
            .unwrap_or_else(|| panic!("{key} missing"));
        let served = common::get(f.pages, &format!("/{key}"));
        assert_eq!(served.status, 200, "{key}");
        assert_eq!(ours, served.body, "{key}");
    }
    let cp = SignedCheckpoint::parse(&note).unwrap();
    assert_eq!(cp.checkpoint().size, size);
    // A second round with nothing new writes nothing.
    store.budget.store(0, Ordering::SeqCst);
    let round = runtime
        .block_on(publish_log(&dynamic, &published, &mut Pending::default()))
        .unwrap();
    assert_eq!((round.from, round.to, round.written), (size, size, 0));
}

#[test]
fn a_checkpoint_waits_for_a_document_the_county_does_not_hold_yet() {
    let f = common::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = f.county.log(common::ORIGIN).unwrap();
    let slug = common::ORIGIN.replace('/', "~");
    // A public document, as if its department had not pushed it yet.
    let digest = log
        .projection()
        .items_after("")
        .map(Result::unwrap)
        .flat_map(|i| i.versions.into_iter().map(|v| v.digest))
        .find(|d| common::get(f.content, &format!("/content/{slug}/{}", d.to_hex())).status == 200)
        .expect("a public document");
    let blob = log.content().blob_path(&digest);
    let aside = blob.with_extension("aside");
    std::fs::rename(&blob, &aside).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let published = Published::Department(Arc::clone(&log));
    let mut pending = Pending::default();
    let round = runtime
        .block_on(publish_log(&store, &published, &mut pending))
        .unwrap();
    assert_eq!(
        round.to, 0,
        "no checkpoint while a public document is missing"
    );
    assert_eq!(pending.waiting(), 1);
    let cp = object_store::path::Path::parse(format!("logs/{slug}/checkpoint")).unwrap();
    assert!(runtime.block_on(store.head(&cp)).is_err());
    // It arrives: the next round publishes it, then the checkpoint.
    std::fs::rename(&aside, &blob).unwrap();
    let round = runtime
        .block_on(publish_log(&store, &published, &mut pending))
        .unwrap();
    assert_eq!(round.to, log.checkpoint().unwrap().0);
    assert_eq!(pending.waiting(), 0);
    let doc =
        object_store::path::Path::parse(format!("content/{slug}/{}", digest.to_hex())).unwrap();
    assert!(runtime.block_on(store.head(&doc)).is_ok());
    assert!(runtime.block_on(store.head(&cp)).is_ok());
}

/// A document the bucket lacks behind its checkpoint (the county stopped
/// while the document was on its way, and the checkpoint went without it
/// after the hold) is published once the publisher starts again: it
/// compares what the log commits to with what the bucket holds, where a
/// round looks only at the entries after the bucket's checkpoint.
#[test]
fn a_restarted_publisher_publishes_documents_the_bucket_lacks() {
    use gongkai_portal::publish::Held;

    let f = common::start();
    let log = f.county.log(common::ORIGIN).unwrap();
    let slug = common::ORIGIN.replace('/', "~");
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let published = Published::Department(Arc::clone(&log));
    let size = log.checkpoint().unwrap().0;
    let round = f
        .runtime
        .block_on(publish_log(&store, &published, &mut Pending::default()))
        .unwrap();
    assert_eq!(round.to, size);
    let digests: Vec<_> = log
        .projection()
        .items_after("")
        .map(Result::unwrap)
        .flat_map(|i| i.versions.into_iter().map(|v| v.digest))
        .collect();
    let path =
        |d: &gongkai_core::Hash| Path::parse(format!("content/{slug}/{}", d.to_hex())).unwrap();
    let digest = *digests
        .iter()
        .find(|d| f.runtime.block_on(store.head(&path(d))).is_ok())
        .expect("a public document in the bucket");
    f.runtime.block_on(store.delete(&path(&digest))).unwrap();
    // A round alone looks only at new entries: nothing to do.
    let round = f
        .runtime
        .block_on(publish_log(&store, &published, &mut Pending::default()))
        .unwrap();
    assert_eq!((round.from, round.to, round.written), (size, size, 0));

    // Without [publish] public_url the verifier asks the county alone.
    let page = common::get(f.pages, &format!("/d/{slug}/items/accounts-2025"));
    assert!(!page.text().contains("data-static"));

    let held = Arc::new(Held::default());
    let (stop, publisher) = start_publisher(&f, &store, &held);
    let t = std::time::Instant::now();
    while !held.has(common::ORIGIN, &digest) {
        assert!(
            t.elapsed().as_secs() < 60,
            "the missing document was never published"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = stop.send(true);
    let _ = f.runtime.block_on(publisher);
    assert!(f.runtime.block_on(store.head(&path(&digest))).is_ok());
}

/// With `[publish] public_url`, the portal sends readers of what the
/// bucket holds there (full tiles and bundles, public documents) and
/// serves the rest itself: checkpoints, right-edge tiles, and anything
/// the bucket does not hold yet. A document redacted after it reached the
/// bucket is never redirected, even before the publisher deletes it.
#[test]
fn the_portal_redirects_reads_of_what_the_bucket_holds() {
    use gongkai_core::event::{Kind, pb};
    use gongkai_portal::BucketRedirect;
    use gongkai_portal::publish::Held;

    let held = Arc::new(Held::default());
    let base = "https://cdn.example.gov.cn";
    let f = common::start_with_bucket(Some(BucketRedirect {
        base: base.into(),
        held: Arc::clone(&held),
    }));
    let size = f.grow(300);
    let slug = common::ORIGIN.replace('/', "~");
    let log = f.county.log(common::ORIGIN).unwrap();
    let digest = log
        .projection()
        .item("accounts-2025")
        .unwrap()
        .unwrap()
        .versions[0]
        .digest;
    let document = format!("/content/{slug}/{}", digest.to_hex());
    let full = format!("/logs/{slug}/tile/0/000");
    let bundle = format!("/logs/{slug}/tile/entries/000");
    // Nothing in the bucket yet: all served here.
    for path in [&full, &bundle] {
        assert_eq!(common::get(f.pages, path).status, 200, "{path}");
    }
    assert_eq!(common::get(f.content, &document).status, 200);

    // The publisher fills an (in-memory) bucket.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (stop, publisher) = start_publisher(&f, &store, &held);
    let t = std::time::Instant::now();
    while held.size(common::ORIGIN) < size {
        assert!(t.elapsed().as_secs() < 60, "never published");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for path in [&full, &bundle] {
        let r = common::get(f.pages, path);
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(r.header("location"), Some(format!("{base}{path}").as_str()));
    }
    let r = common::get(f.content, &document);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!("{base}{document}").as_str())
    );
    // The item page's verifier builds the proof from the bucket's files
    // (the CDN's origin allowed for it alone), the county its fallback.
    let page = common::get(f.pages, &format!("/d/{slug}/items/accounts-2025"));
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains(&format!("data-static=\"{base}/logs/{slug}\"")),
        "{}",
        page.text()
    );
    assert!(page.text().contains("data-indexes=\""));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains(&format!("connect-src 'self' {base};")),
        "{csp}"
    );
    let home = common::get(f.pages, "/");
    let csp = home.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    // The checkpoint and the right edge change: served here.
    let edge = format!("/logs/{slug}/tile/0/001.p/{}", size - 256);
    for path in [format!("/logs/{slug}/checkpoint"), edge] {
        assert_eq!(common::get(f.pages, &path).status, 200, "{path}");
    }
    // A restricted document never went to the bucket.
    let dibao = log
        .projection()
        .item("dibao-2026-10")
        .unwrap()
        .unwrap()
        .versions[0]
        .digest;
    let r = common::get(f.content, &format!("/content/{slug}/{}", dibao.to_hex()));
    assert_eq!(r.status, 403);

    // Redacted while the publisher is away: the bucket still holds it, the
    // portal does not send anyone there.
    let _ = stop.send(true);
    let _ = f.runtime.block_on(publisher);
    f.append(vec![Kind::Redacted(pb::Redacted {
        item_id: "accounts-2025".into(),
        content_digest: digest.0.to_vec(),
        reason: "含个人信息".into(),
        legal_basis: "《个人信息保护法》".into(),
    })]);
    assert!(held.has(common::ORIGIN, &digest));
    let t = std::time::Instant::now();
    while !log
        .projection()
        .item("accounts-2025")
        .unwrap()
        .unwrap()
        .redacted
        .contains(&digest)
    {
        assert!(t.elapsed().as_secs() < 30, "the redaction was never stored");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    loop {
        let r = common::get(f.content, &document);
        assert_ne!(r.status, 302, "a redacted document was redirected");
        if r.status == 410 {
            break;
        }
        assert!(t.elapsed().as_secs() < 30, "still served: {}", r.status);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The publisher loop (`publish::run`) over `f`'s county into `store`,
/// rounds every 50 ms: the sender that stops it, and its task.
fn start_publisher(
    f: &common::Fixture,
    store: &Arc<dyn ObjectStore>,
    held: &Arc<gongkai_portal::publish::Held>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let source: Arc<dyn Source> = f.county.clone();
    let publisher = f.runtime.spawn(gongkai_portal::publish::run(
        source,
        Arc::clone(store),
        std::time::Duration::from_millis(50),
        Arc::clone(held),
        stopped,
    ));
    (stop, publisher)
}
