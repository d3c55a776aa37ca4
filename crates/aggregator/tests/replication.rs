//! The county aggregator and department nodes over real gRPC on real
//! sockets (port 0), with real journals and sled on disk: replication and
//! cosigning, content mirroring, mirror reads, the county log, tampered
//! pushes (refused with a precise reason, state unchanged), a lying
//! department (evidence that verifies with the department's key alone),
//! and the atomic cosigned-size check under concurrent pushes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::county::{self, CountyLeaf};
use gongkai_core::event::{Kind, pb};
use gongkai_core::evidence::Evidence;
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle;
use gongkai_core::note::{Cosigner, VerifierKey, Verifiers};
use gongkai_core::types::{KeyName, Origin};
use gongkai_core::writer::LogWriter;
use gongkai_proto::v1::{self, write_event::Kind as W};
use gongkai_proto::{CountyClient, DisclosureNodeClient};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request};

const COUNTY: &str = "gongkai.example/510122/county";
const WITNESS: &str = "gongkai.example/510122/county-witness";
const WRITER: &str = "clerk-token";
const ADMIN: &str = "admin-token";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha(t: &str) -> String {
    hex(&Sha256::digest(t.as_bytes()))
}

fn origin(n: usize) -> String {
    format!("gongkai.example/510122/dept{n}")
}

fn dept_key(n: usize) -> SigningKey {
    SigningKey::from_seed([n as u8 + 1; 32])
}

fn push_token(n: usize) -> String {
    format!("push-token-{n}")
}

fn witness_key() -> SigningKey {
    SigningKey::from_seed([200; 32])
}

fn witness_vkey() -> VerifierKey {
    Cosigner::new(KeyName::new(WITNESS).unwrap(), witness_key()).verifier_key()
}

fn vkey(n: usize) -> VerifierKey {
    Checkpoint::log_verifier_key(&Origin::new(&origin(n)).unwrap(), &dept_key(n).public_key())
}

struct Server<E> {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), E>>>,
}

impl<E: std::fmt::Debug> Server<E> {
    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

fn county_config(
    dir: &Path,
    departments: usize,
    interval_ms: u64,
) -> gongkai_aggregator::config::CountyConfig {
    let mut text = format!(
        r#"
origin = "{COUNTY}"
log_key = "unused"
witness_key = "unused"
data_dir = "{}"
plaintext = true
admin_token_sha256 = "{}"
county_interval_ms = {interval_ms}
recosign_interval_ms = 1000
max_staged_bytes = 2000000
"#,
        dir.join("county").display(),
        sha(ADMIN)
    );
    for n in 0..departments {
        text.push_str(&format!(
            "[[departments]]\norigin = \"{}\"\nvkey = \"{}\"\npush_token_sha256 = \"{}\"\n",
            origin(n),
            vkey(n),
            sha(&push_token(n))
        ));
    }
    gongkai_aggregator::config::CountyConfig::from_toml(&text).unwrap()
}

async fn start_county(
    dir: &Path,
    departments: usize,
    interval_ms: u64,
) -> Server<gongkai_aggregator::AggregatorError> {
    start_county_with(county_config(dir, departments, interval_ms)).await
}

async fn start_county_with(
    config: gongkai_aggregator::config::CountyConfig,
) -> Server<gongkai_aggregator::AggregatorError> {
    start_county_serving(config, None).await
}

async fn start_county_serving(
    config: gongkai_aggregator::config::CountyConfig,
    portal: Option<gongkai_aggregator::PortalListeners>,
) -> Server<gongkai_aggregator::AggregatorError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let keys = gongkai_aggregator::Keys {
        log: (
            KeyName::new(COUNTY).unwrap(),
            SigningKey::from_seed([100; 32]),
        ),
        witness: (KeyName::new(WITNESS).unwrap(), witness_key()),
    };
    let task = tokio::spawn(gongkai_aggregator::run_with_portal(
        config,
        keys,
        listener,
        portal,
        || {},
        async {
            let _ = rx.await;
        },
    ));
    for _ in 0..400 {
        assert!(!task.is_finished(), "county exited: {:?}", task.await);
        if let Ok(mut c) = CountyClient::connect(url.clone()).await
            && c.get_county_status(v1::GetCountyStatusRequest {})
                .await
                .is_ok()
        {
            return Server {
                url,
                stop: Some(tx),
                task: Some(task),
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("county did not start");
}

fn node_config(dir: &Path, n: usize, county: Option<&str>) -> gongkai_node::config::NodeConfig {
    std::fs::write(dir.join("push.token"), push_token(n)).unwrap();
    let mut text = format!(
        r#"
origin = "{}"
department = "某某县第{n}局"
division_code = "510122"
data_dir = "{}"
key = "{}"
plaintext = true
checkpoint_interval_ms = 100
free_space_reserve = 1048576
[[writers]]
name = "clerk"
token_sha256 = "{}"
"#,
        origin(n),
        dir.join("data").display(),
        dir.join("dept.key").display(),
        sha(WRITER)
    );
    if let Some(url) = county {
        text.push_str(&format!(
            "[county]\naddress = \"{url}\"\ntoken_file = \"{}\"\nwitness_vkey = \"{}\"\ninterval_ms = 200\nmin_backoff_ms = 50\nmax_backoff_ms = 500\n",
            dir.join("push.token").display(),
            witness_vkey()
        ));
    }
    gongkai_node::config::NodeConfig::from_toml(&text).unwrap()
}

async fn start_node(dir: &Path, n: usize, county: Option<&str>) -> Server<gongkai_node::NodeError> {
    let cfg = node_config(dir, n, county);
    if !dir.join("data").join("journal").exists() {
        gongkai_node::init(&cfg, &dept_key(n)).unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(gongkai_node::run(cfg, dept_key(n), listener, async {
        let _ = rx.await;
    }));
    for _ in 0..400 {
        assert!(!task.is_finished(), "node exited: {:?}", task.await);
        if let Ok(mut c) = DisclosureNodeClient::connect(url.clone()).await
            && c.get_status(v1::GetStatusRequest { origin: origin(n) })
                .await
                .is_ok()
        {
            return Server {
                url,
                stop: Some(tx),
                task: Some(task),
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("node did not start");
}

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn today() -> String {
    gongkai_core::date::Date::from_unix_ms_cst(gongkai_node::log::now_ms())
        .unwrap()
        .to_string()
}

fn request_event(id: &str) -> v1::WriteEvent {
    v1::WriteEvent {
        kind: Some(W::RequestReceived(pb::RequestReceived {
            applicant: pb::ApplicantCategory::NaturalPerson as i32,
            request_id: id.into(),
            date_received: today(),
            subject: "请求公开2025年决算".into(),
        })),
    }
}

async fn write_requests(url: &str, prefix: &str, count: usize) {
    let mut c = DisclosureNodeClient::connect(url.to_owned()).await.unwrap();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(500);
        let events = (done..done + n)
            .map(|i| request_event(&format!("{prefix}-{i}")))
            .collect();
        c.append_batch(authed(
            v1::AppendBatchRequest {
                idempotency_key: format!("{prefix}-{done}"),
                events,
            },
            WRITER,
        ))
        .await
        .unwrap();
        done += n;
    }
}

async fn county_client(url: &str) -> CountyClient<Channel> {
    CountyClient::connect(url.to_owned()).await.unwrap()
}

/// What the county holds of department `n`, asked as the department (its
/// push token): nobody else may ask.
async fn mirror_state(url: &str, n: usize) -> v1::MirrorState {
    county_client(url)
        .await
        .get_mirror_state(authed(
            v1::GetMirrorStateRequest { origin: origin(n) },
            &push_token(n),
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Polls until the county cosigned at least `size` of department `n`.
async fn wait_cosigned(url: &str, n: usize, size: u64) -> v1::MirrorState {
    for _ in 0..1200 {
        let s = mirror_state(url, n).await;
        if s.cosigned_size >= size {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("county never cosigned {size} of {}", origin(n));
}

async fn node_size(url: &str, n: usize) -> u64 {
    DisclosureNodeClient::connect(url.to_owned())
        .await
        .unwrap()
        .get_status(v1::GetStatusRequest { origin: origin(n) })
        .await
        .unwrap()
        .into_inner()
        .size
}

/// Every entry of the county's mirror equals the node's, and the cosigned
/// checkpoint verifies with the department key and the county witness key.
async fn check_mirror(county: &str, node: &str, n: usize, size: u64) {
    let mut mirror = DisclosureNodeClient::connect(county.to_owned())
        .await
        .unwrap();
    let mut dept = DisclosureNodeClient::connect(node.to_owned())
        .await
        .unwrap();
    let mut start = 0;
    let mut leaves = Vec::new();
    while start < size {
        let req = v1::GetEntriesRequest {
            origin: origin(n),
            start,
            limit: 1000,
        };
        let a = mirror.get_entries(req.clone()).await.unwrap().into_inner();
        let b = dept.get_entries(req).await.unwrap().into_inner();
        let k = a.entries.len().min(b.entries.len());
        assert!(k > 0);
        assert_eq!(a.entries[..k], b.entries[..k], "mirror differs at {start}");
        leaves.extend(a.entries[..k].iter().map(|e| leaf_hash(e)));
        start += k as u64;
    }
    let cp = mirror
        .get_checkpoint(v1::GetCheckpointRequest { origin: origin(n) })
        .await
        .unwrap()
        .into_inner();
    let signed = SignedCheckpoint::parse(&cp.cosigned_checkpoint).unwrap();
    signed
        .verify(&vkey(n), &Verifiers::from(witness_vkey()), 1)
        .unwrap();
    let s = signed.checkpoint().size as usize;
    assert_eq!(merkle::root(&leaves[..s]), signed.checkpoint().root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_cosigning_content_and_county_log() {
    let root = tempfile::tempdir().unwrap();
    let mut county = start_county(root.path(), 2, 300).await;
    let d0 = root.path().join("n0");
    std::fs::create_dir_all(&d0).unwrap();
    let mut node = start_node(&d0, 0, Some(&county.url)).await;

    // A matter and an item with content: the content is mirrored too.
    let mut c = DisclosureNodeClient::connect(node.url.clone())
        .await
        .unwrap();
    let doc = "2026年部门预算（示例）".as_bytes().to_vec();
    let content = c
        .upload_content(authed(
            tokio_stream::iter(vec![
                v1::UploadContentRequest {
                    part: Some(v1::upload_content_request::Part::Start(v1::UploadStart {
                        media_type: "text/plain".into(),
                        length: doc.len() as u64,
                        ..Default::default()
                    })),
                },
                v1::UploadContentRequest {
                    part: Some(v1::upload_content_request::Part::Chunk(doc.clone())),
                },
            ]),
            WRITER,
        ))
        .await
        .unwrap()
        .into_inner()
        .content
        .unwrap();
    let matter = pb::Matter {
        category: "财政预决算".into(),
        level1: "财政预决算".into(),
        level2: "部门预算".into(),
        elements: vec!["预算报告".into()],
        legal_basis: "《预算法》第十四条".into(),
        deadline_working_days: 20,
        responsible_body: "县财政局".into(),
        channels: vec!["政府网站".into()],
        audience: pb::Audience::Public as i32,
        mode: pb::DisclosureMode::Proactive as i32,
        ..Default::default()
    };
    c.append_batch(authed(
        v1::AppendBatchRequest {
            idempotency_key: "m".into(),
            events: vec![
                v1::WriteEvent {
                    kind: Some(W::MatterDefined(pb::MatterDefined {
                        matter_id: "budget".into(),
                        matter: Some(matter),
                    })),
                },
                v1::WriteEvent {
                    kind: Some(W::Published(pb::Published {
                        item_id: "budget-2026".into(),
                        matter_id: "budget".into(),
                        title: "2026年部门预算".into(),
                        content: Some(content.clone()),
                        date_formed: today(),
                        ..Default::default()
                    })),
                },
            ],
        },
        WRITER,
    ))
    .await
    .unwrap();
    write_requests(&node.url, "a", 700).await;
    let size = node_size(&node.url, 0).await;
    assert_eq!(size, 703);
    let state = wait_cosigned(&county.url, 0, size).await;
    // Anonymous, or with another department's token: refused, before the
    // department's push lock is taken.
    let mut anon = county_client(&county.url).await;
    let e = anon
        .get_mirror_state(v1::GetMirrorStateRequest { origin: origin(0) })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let e = anon
        .get_mirror_state(authed(
            v1::GetMirrorStateRequest { origin: origin(0) },
            &push_token(1),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(state.suspended.is_empty());
    check_mirror(&county.url, &node.url, 0, size).await;

    // The node serves the cosignature beside its own signature.
    let mut status = v1::GetStatusResponse::default();
    for _ in 0..200 {
        status = c
            .get_status(v1::GetStatusRequest { origin: origin(0) })
            .await
            .unwrap()
            .into_inner();
        if status.cosigned_size == size {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status.cosigned_size, size);
    assert_eq!(status.replication_lag, 0);
    assert!(status.last_replicated_ms > 0);
    let cp = c
        .get_checkpoint(v1::GetCheckpointRequest { origin: origin(0) })
        .await
        .unwrap()
        .into_inner();
    SignedCheckpoint::parse(&cp.cosigned_checkpoint)
        .unwrap()
        .verify(&vkey(0), &Verifiers::from(witness_vkey()), 1)
        .unwrap();

    // Content reaches the mirror and is served from it.
    let mut mirror = DisclosureNodeClient::connect(county.url.clone())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..200 {
        if let Ok(r) = mirror
            .get_content(v1::GetContentRequest {
                origin: origin(0),
                digest: content.digest.clone(),
            })
            .await
        {
            let mut s = r.into_inner();
            while let Some(m) = s.message().await.unwrap() {
                if let Some(v1::get_content_response::Part::Chunk(b)) = m.part {
                    got.extend(b);
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got, doc);
    let item = mirror
        .get_item(v1::GetItemRequest {
            origin: origin(0),
            item_id: "budget-2026".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(item.history.len(), 1);
    // Writes to the mirror are refused.
    let e = mirror
        .append(authed(
            v1::AppendRequest {
                idempotency_key: "x".into(),
                event: Some(request_event("x")),
            },
            WRITER,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);

    // The county log holds a leaf with the cosigned checkpoint; the leaf's
    // inclusion proof verifies against the signed county checkpoint.
    let mut cc = county_client(&county.url).await;
    let mut found = None;
    for _ in 0..200 {
        let cp = county_checkpoint(&mut cc).await;
        if cp.checkpoint().size > 0 {
            // Only leaves under this checkpoint: a round may append more
            // between reading the checkpoint and reading the leaves.
            let mut leaves = county_leaves(&mut cc).await;
            leaves.truncate(usize::try_from(cp.checkpoint().size).unwrap());
            if let Some(i) = leaves.iter().position(|l| {
                CountyLeaf::decode(l)
                    .unwrap()
                    .checkpoints
                    .iter()
                    .any(|c| c.checkpoint().size == size)
            }) {
                found = Some((i as u64, cp));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (index, county_cp) = found.expect("a county leaf with the cosigned checkpoint");
    let proof = cc
        .get_county_inclusion_proof(v1::GetCountyInclusionProofRequest {
            index,
            tree_size: county_cp.checkpoint().size,
        })
        .await
        .unwrap()
        .into_inner();
    let proof_hashes: Vec<_> = proof
        .proof
        .iter()
        .map(|h| gongkai_core::Hash::from_slice(h).unwrap())
        .collect();
    merkle::verify_inclusion(
        &leaf_hash(&proof.leaf),
        index,
        county_cp.checkpoint().size,
        &proof_hashes,
        &county_cp.checkpoint().root,
    )
    .unwrap();
    let county_vkey = Checkpoint::log_verifier_key(
        &Origin::new(COUNTY).unwrap(),
        &SigningKey::from_seed([100; 32]).public_key(),
    );
    county_cp
        .verify(&county_vkey, &Verifiers::default(), 0)
        .unwrap();

    // Restarting both sides resumes without a gap.
    node.stop().await;
    county.stop().await;
    let mut county = start_county(root.path(), 2, 300).await;
    let mut node = start_node(&d0, 0, Some(&county.url)).await;
    write_requests(&node.url, "b", 300).await;
    let size = node_size(&node.url, 0).await;
    wait_cosigned(&county.url, 0, size).await;
    check_mirror(&county.url, &node.url, 0, size).await;
    node.stop().await;
    county.stop().await;
}

/// Entries of a department log made directly with its key (for pushes the
/// test crafts itself). `tag` makes two histories differ.
fn history(n: usize, count: usize, tag: &str) -> Vec<Vec<u8>> {
    history_at(n, count, tag, gongkai_node::log::now_ms() - 60_000)
}

/// As [`history`], its entries claiming times from `t` (Unix ms) on.
fn history_at(n: usize, count: usize, tag: &str, t: u64) -> Vec<Vec<u8>> {
    let mut w = LogWriter::new(Origin::new(&origin(n)).unwrap(), dept_key(n));
    let mut out = vec![
        w.append(
            Kind::Genesis(pb::Genesis {
                department: "某某县局".into(),
                division_code: "510122".into(),
            }),
            t,
        )
        .unwrap()
        .into_bytes(),
    ];
    for i in 1..count {
        out.push(
            w.append(
                Kind::RequestReceived(pb::RequestReceived {
                    applicant: pb::ApplicantCategory::NaturalPerson as i32,
                    request_id: format!("{tag}-{i}"),
                    date_received: today(),
                    subject: "subject".into(),
                }),
                t + i as u64,
            )
            .unwrap()
            .into_bytes(),
        );
    }
    out
}

fn signed_checkpoint(n: usize, entries: &[Vec<u8>]) -> String {
    let leaves: Vec<_> = entries.iter().map(|e| leaf_hash(e)).collect();
    let cp = Checkpoint::new(
        Origin::new(&origin(n)).unwrap(),
        leaves.len() as u64,
        merkle::root(&leaves),
    );
    SignedCheckpoint::sign(&cp, &dept_key(n))
        .unwrap()
        .to_string()
}

async fn push(
    c: &mut CountyClient<Channel>,
    n: usize,
    start: u64,
    entries: &[Vec<u8>],
    checkpoint: &str,
) -> Result<v1::MirrorState, tonic::Status> {
    c.push(authed(
        v1::PushRequest {
            origin: origin(n),
            start,
            entries: entries.to_vec(),
            checkpoint: checkpoint.to_owned(),
        },
        &push_token(n),
    ))
    .await
    .map(|r| r.into_inner().state.unwrap_or_default())
}

/// Pushes `entries[from..]` in aligned packages, the last with `checkpoint`.
async fn push_all(
    c: &mut CountyClient<Channel>,
    n: usize,
    entries: &[Vec<u8>],
    from: u64,
    checkpoint: &str,
) -> Result<v1::MirrorState, tonic::Status> {
    let size = entries.len() as u64;
    let mut next = from;
    loop {
        let end = ((next / 256 + 1) * 256).min(size);
        let cp = if end == size { checkpoint } else { "" };
        let s = push(c, n, next, &entries[next as usize..end as usize], cp).await?;
        next = end;
        if end == size {
            return Ok(s);
        }
    }
}

/// The county's signed checkpoint.
async fn county_checkpoint(c: &mut CountyClient<Channel>) -> SignedCheckpoint {
    let cp = c
        .get_county_checkpoint(v1::GetCountyCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .checkpoint;
    SignedCheckpoint::parse(&cp).unwrap()
}

/// The first (up to 100) county leaves.
async fn county_leaves(c: &mut CountyClient<Channel>) -> Vec<Vec<u8>> {
    c.get_county_leaves(v1::GetCountyLeavesRequest {
        start: 0,
        limit: 100,
    })
    .await
    .unwrap()
    .into_inner()
    .leaves
}

/// What must not change when a push is refused.
async fn snapshot(url: &str, n: usize) -> (u64, u64, u64, String) {
    let s = mirror_state(url, n).await;
    (
        s.mirrored_size,
        s.staged_end,
        s.cosigned_size,
        s.cosigned_checkpoint,
    )
}

/// Entries that arrive claiming times well before the county first
/// cosigned the size before them are counted at push time (FORMAT.md § 17,
/// back-dated), and shown in the county's status; entries a minute old are
/// not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_dated_entries_are_recorded_at_push_time() {
    let root = tempfile::tempdir().unwrap();
    let mut county = start_county(root.path(), 2, 60_000).await;
    let mut c = county_client(&county.url).await;
    let status = |c: &mut CountyClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.get_county_status(v1::GetCountyStatusRequest {})
                .await
                .unwrap()
                .into_inner()
                .departments
                .into_iter()
                .find(|d| d.origin == origin(0))
                .unwrap()
        }
    };
    // A minute old (the history's usual times): within the tolerance.
    let fresh = history(1, 20, "fresh");
    push_all(
        &mut c,
        1,
        &fresh[..10],
        0,
        &signed_checkpoint(1, &fresh[..10]),
    )
    .await
    .unwrap();
    push_all(&mut c, 1, &fresh, 10, &signed_checkpoint(1, &fresh))
        .await
        .unwrap();
    // An hour old: the county cosigns size 10 now, then entries 10..30
    // arrive claiming times an hour before that.
    let log = history_at(0, 30, "old", gongkai_node::log::now_ms() - 3_600_000);
    push_all(&mut c, 0, &log[..10], 0, &signed_checkpoint(0, &log[..10]))
        .await
        .unwrap();
    assert_eq!(status(&mut c).await.back_dated, 0);
    push_all(&mut c, 0, &log, 10, &signed_checkpoint(0, &log))
        .await
        .unwrap();
    let d = status(&mut c).await;
    assert_eq!((d.back_dated, d.back_dated_index), (20, 29), "{d:?}");
    let mut others = c.clone();
    let all = others
        .get_county_status(v1::GetCountyStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let d1 = all
        .departments
        .iter()
        .find(|d| d.origin == origin(1))
        .unwrap();
    assert_eq!(d1.back_dated, 0, "{d1:?}");
    county.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_pushes_are_refused_and_change_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut county = start_county(root.path(), 2, 60_000).await;
    let mut c = county_client(&county.url).await;
    let log = history(0, 768, "a");
    let cp300 = signed_checkpoint(0, &log[..300]);
    push_all(&mut c, 0, &log[..300], 0, &cp300).await.unwrap();
    let before = snapshot(&county.url, 0).await;
    assert_eq!(before.2, 300);

    let expect = |r: Result<v1::MirrorState, tonic::Status>, code: Code, words: &str| {
        let e = r.expect_err("must be refused");
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(
            e.message().contains(words),
            "{:?} lacks {words:?}",
            e.message()
        );
    };
    // A flipped byte in a signature, and one in a body.
    let mut bad_sig = log[300..512].to_vec();
    let last = bad_sig[5].len() - 1;
    bad_sig[5][last] ^= 1;
    expect(
        push(&mut c, 0, 300, &bad_sig, "").await,
        Code::InvalidArgument,
        "signature",
    );
    let mut bad_body = log[300..512].to_vec();
    bad_body[7][10] ^= 0x20;
    expect(
        push(&mut c, 0, 300, &bad_body, "").await,
        Code::InvalidArgument,
        "entry",
    );
    // A skipped index and a repeated one.
    let mut skipped = log[300..513].to_vec();
    skipped.remove(3);
    expect(
        push(&mut c, 0, 300, &skipped, "").await,
        Code::InvalidArgument,
        "index",
    );
    let mut repeated = log[300..511].to_vec();
    repeated.insert(3, log[302].clone());
    expect(
        push(&mut c, 0, 300, &repeated, "").await,
        Code::InvalidArgument,
        "index",
    );
    // A gap.
    expect(
        push(&mut c, 0, 301, &log[301..512], "").await,
        Code::FailedPrecondition,
        "gap",
    );
    // Misaligned package (crosses 512).
    expect(
        push(&mut c, 0, 300, &log[300..520], "").await,
        Code::InvalidArgument,
        "aligned",
    );
    // Another department's entries and checkpoint under this origin.
    let other = history(1, 600, "a");
    expect(
        push(&mut c, 0, 300, &other[300..512], "").await,
        Code::InvalidArgument,
        "origin",
    );
    let other_cp = signed_checkpoint(1, &other[..300]);
    expect(
        push(&mut c, 0, 300, &[], &other_cp).await,
        Code::InvalidArgument,
        "checkpoint is for",
    );
    // A checkpoint not signed by the department.
    let forged = {
        let leaves: Vec<_> = log[..300].iter().map(|e| leaf_hash(e)).collect();
        let cp = Checkpoint::new(Origin::new(&origin(0)).unwrap(), 300, merkle::root(&leaves));
        SignedCheckpoint::sign(&cp, &SigningKey::from_seed([99; 32]))
            .unwrap()
            .to_string()
    };
    expect(
        push(&mut c, 0, 300, &[], &forged).await,
        Code::InvalidArgument,
        "signature",
    );
    // Wrong credentials and unknown origins.
    let e = c
        .push(authed(
            v1::PushRequest {
                origin: origin(0),
                start: 300,
                entries: log[300..512].to_vec(),
                checkpoint: String::new(),
            },
            &push_token(1),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = c
        .push(Request::new(v1::PushRequest {
            origin: origin(0),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = c
        .push(authed(
            v1::PushRequest {
                origin: "gongkai.example/510122/unknown".into(),
                ..Default::default()
            },
            &push_token(0),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A stale checkpoint is refused, naming the cosigned size; not evidence.
    let cp200 = signed_checkpoint(0, &log[..200]);
    expect(
        push(&mut c, 0, 300, &[], &cp200).await,
        Code::FailedPrecondition,
        "300",
    );
    assert_eq!(snapshot(&county.url, 0).await, before);
    let ev = c
        .list_evidence(v1::ListEvidenceRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(ev.evidence.is_empty());

    // The honest continuation is still accepted afterwards.
    let cp600 = signed_checkpoint(0, &log[..600]);
    let s = push_all(&mut c, 0, &log[..600], 300, &cp600).await.unwrap();
    assert_eq!(s.cosigned_size, 600);

    // A checkpoint whose note, once cosigned, would not fit a county leaf
    // (a long extension line, signed by the department) is refused before
    // anything is committed; the same checkpoint without it is cosigned.
    push(&mut c, 0, 600, &log[600..768], "").await.unwrap();
    let staged = snapshot(&county.url, 0).await;
    let leaves: Vec<_> = log[..768].iter().map(|e| leaf_hash(e)).collect();
    let mut cp768 = Checkpoint::new(Origin::new(&origin(0)).unwrap(), 768, merkle::root(&leaves));
    cp768.extensions = vec!["x".repeat(county::MAX_NOTE_LEN)];
    let bloated = SignedCheckpoint::sign(&cp768, &dept_key(0)).unwrap();
    expect(
        push(&mut c, 0, 768, &[], &bloated.to_string()).await,
        Code::InvalidArgument,
        "county cosigns notes of at most",
    );
    assert_eq!(snapshot(&county.url, 0).await, staged);
    assert_eq!((staged.0, staged.2), (600, 600));
    cp768.extensions.clear();
    let honest = SignedCheckpoint::sign(&cp768, &dept_key(0)).unwrap();
    let s = push(&mut c, 0, 768, &[], &honest.to_string())
        .await
        .unwrap();
    assert_eq!(s.cosigned_size, 768);
    county.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_department_leaves_evidence() {
    let root = tempfile::tempdir().unwrap();
    let mut county = start_county(root.path(), 1, 60_000).await;
    let mut c = county_client(&county.url).await;
    let honest = history(0, 400, "honest");
    let cp = signed_checkpoint(0, &honest);
    push_all(&mut c, 0, &honest, 0, &cp).await.unwrap();
    let vkeys = [dept_key(0).public_key()];

    let check_evidence = |text: &str, kind: &str| {
        let e = Evidence::parse(text).unwrap();
        assert_eq!(e.what.kind(), kind);
        e.verify(&vkeys).unwrap();
        assert!(e.verify(&[dept_key(5).public_key()]).is_err());
    };
    let latest_evidence = |c: &mut CountyClient<Channel>| {
        let mut c = c.clone();
        async move {
            let list = c
                .list_evidence(v1::ListEvidenceRequest::default())
                .await
                .unwrap()
                .into_inner()
                .evidence;
            let last = list.iter().find(|e| !e.cleared).unwrap().clone();
            c.get_evidence(v1::GetEvidenceRequest { id: last.id })
                .await
                .unwrap()
                .into_inner()
                .text
        }
    };
    let clear = |c: &mut CountyClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.clear_evidence(authed(
                v1::ClearEvidenceRequest { origin: origin(0) },
                ADMIN,
            ))
            .await
            .unwrap();
        }
    };

    // 1. A different history of the same size: checkpoint fork.
    let liar = history(0, 500, "liar");
    let e = push(&mut c, 0, 400, &[], &signed_checkpoint(0, &liar[..400]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("evidence"), "{}", e.message());
    check_evidence(&latest_evidence(&mut c).await, "checkpoint-fork");
    // Cosigning is suspended: even the honest checkpoint is refused.
    let e = push(&mut c, 0, 400, &[], &cp).await.unwrap_err();
    assert!(e.message().contains("suspended"), "{}", e.message());
    let s = mirror_state(&county.url, 0).await;
    assert!(!s.suspended.is_empty());
    // Without the admin token nobody clears it.
    let e = c
        .clear_evidence(authed(
            v1::ClearEvidenceRequest { origin: origin(0) },
            "nope",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    clear(&mut c).await;

    // 2. A smaller, inconsistent checkpoint (an older copy that diverged).
    let e = push(&mut c, 0, 400, &[], &signed_checkpoint(0, &liar[..250]))
        .await
        .unwrap_err();
    assert!(e.message().contains("evidence"), "{}", e.message());
    check_evidence(&latest_evidence(&mut c).await, "inconsistent");
    clear(&mut c).await;

    // 3. Entries that do not link to the cosigned log (broken link).
    let e = push(
        &mut c,
        0,
        400,
        &liar[400..500],
        &signed_checkpoint(0, &liar),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("evidence"), "{}", e.message());
    check_evidence(&latest_evidence(&mut c).await, "broken-link");
    clear(&mut c).await;

    // 4. A different entry at an index the county already holds.
    let e = push(
        &mut c,
        0,
        256,
        &liar[256..500],
        &signed_checkpoint(0, &liar),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("evidence"), "{}", e.message());
    check_evidence(&latest_evidence(&mut c).await, "entry-fork");
    clear(&mut c).await;

    // 5. Honest entries, then a checkpoint whose root is not their
    // extension.
    let more = {
        let mut all = honest.clone();
        // Continue the honest chain with its own writer state.
        let last = gongkai_core::chain::prepare(honest[399].clone(), 399).unwrap();
        let mut w = LogWriter::resume(
            Origin::new(&origin(0)).unwrap(),
            dept_key(0),
            400,
            last.body_hash,
            last.event.time_ms,
        );
        for i in 400..450 {
            all.push(
                w.append(
                    Kind::RequestReceived(pb::RequestReceived {
                        applicant: pb::ApplicantCategory::NaturalPerson as i32,
                        request_id: format!("more-{i}"),
                        date_received: today(),
                        subject: "s".into(),
                    }),
                    last.event.time_ms + 1,
                )
                .unwrap()
                .into_bytes(),
            );
        }
        all
    };
    let wrong_root = signed_checkpoint(0, &liar[..450]);
    let e = push(&mut c, 0, 400, &more[400..450], &wrong_root)
        .await
        .unwrap_err();
    assert!(e.message().contains("evidence"), "{}", e.message());
    check_evidence(&latest_evidence(&mut c).await, "not-extension");
    clear(&mut c).await;

    // After clearing, the honest continuation is cosigned again; the
    // evidence files stay, marked cleared.
    let s = push(
        &mut c,
        0,
        400,
        &more[400..450],
        &signed_checkpoint(0, &more),
    )
    .await
    .unwrap();
    assert_eq!(s.cosigned_size, 450);
    let list = c
        .list_evidence(v1::ListEvidenceRequest::default())
        .await
        .unwrap()
        .into_inner()
        .evidence;
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|e| e.cleared));
    // Evidence files are on disk, self-contained.
    let files: Vec<PathBuf> = std::fs::read_dir(root.path().join("county/evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 5);
    county.stop().await;
}

/// Departments whose cosigned notes do not fit one county leaf together
/// (each note here is over half the leaf limit, padded with an extension
/// line): the round appends several leaves, each within the limit that
/// lets the county log export as entry bundles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_too_large_for_one_county_leaf_takes_several() {
    let root = tempfile::tempdir().unwrap();
    // The first round runs 3 s after the start: all three pushes land in it.
    let mut county = start_county(root.path(), 3, 3_000).await;
    let mut c = county_client(&county.url).await;
    for n in 0..3 {
        let log = history(n, 10, "a");
        let leaves: Vec<_> = log.iter().map(|e| leaf_hash(e)).collect();
        let mut cp = Checkpoint::new(Origin::new(&origin(n)).unwrap(), 10, merkle::root(&leaves));
        cp.extensions = vec!["x".repeat(county::MAX_NOTE_LEN / 2 + 100)];
        let cp = SignedCheckpoint::sign(&cp, &dept_key(n)).unwrap();
        let s = push(&mut c, n, 0, &log, &cp.to_string()).await.unwrap();
        assert_eq!(s.cosigned_size, 10);
    }
    let mut size = 0;
    for _ in 0..300 {
        size = county_checkpoint(&mut c).await.checkpoint().size;
        if size >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(size, 3, "one leaf per department");
    let leaves = county_leaves(&mut c).await;
    assert_eq!(leaves.len(), 3);
    let decoded: Vec<CountyLeaf> = leaves
        .iter()
        .map(|l| {
            assert!(l.len() <= county::MAX_LEAF_LEN, "{} bytes", l.len());
            CountyLeaf::decode(l).unwrap()
        })
        .collect();
    let origins: Vec<String> = decoded
        .iter()
        .flat_map(|l| &l.checkpoints)
        .map(|c| c.checkpoint().origin.to_string())
        .collect();
    assert_eq!(origins, [origin(0), origin(1), origin(2)]);
    assert!(
        decoded.iter().all(|l| l.time_secs == decoded[0].time_secs),
        "one round"
    );
    county.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosigned_size_never_goes_back_under_concurrent_pushes() {
    let root = tempfile::tempdir().unwrap();
    let mut county = start_county(root.path(), 1, 60_000).await;
    let log = history(0, 1024, "a");
    // Stage everything, then race checkpoints of many sizes.
    let mut c = county_client(&county.url).await;
    push_all(
        &mut c,
        0,
        &log[..1000],
        0,
        &signed_checkpoint(0, &log[..1000]),
    )
    .await
    .unwrap();
    let sizes: Vec<usize> = (0..40).map(|i| 500 + (i * 37) % 500).collect();
    let mut tasks = Vec::new();
    for s in sizes {
        let url = county.url.clone();
        let cp = signed_checkpoint(0, &log[..s]);
        tasks.push(tokio::spawn(async move {
            let mut c = county_client(&url).await;
            push(&mut c, 0, 1000, &[], &cp).await
        }));
    }
    // And the growth to 1024 at the same time.
    let url = county.url.clone();
    let tail = log[1000..].to_vec();
    let cp1024 = signed_checkpoint(0, &log);
    tasks.push(tokio::spawn(async move {
        let mut c = county_client(&url).await;
        push(&mut c, 0, 1000, &tail, &cp1024).await
    }));
    let mut seen_max = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(s) => seen_max = seen_max.max(s.cosigned_size),
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
                assert!(e.message().contains("stale"), "{}", e.message());
            }
        }
    }
    assert_eq!(seen_max, 1024);
    let s = mirror_state(&county.url, 0).await;
    assert_eq!(s.cosigned_size, 1024);
    assert!(s.suspended.is_empty());
    county.stop().await;

    // The state survives a restart, and the mirror is whole.
    let mut county = start_county(root.path(), 1, 60_000).await;
    let s = mirror_state(&county.url, 0).await;
    assert_eq!((s.mirrored_size, s.cosigned_size), (1024, 1024));
    county.stop().await;
}

/// The content of a request answer is mirrored like an item's: a pushed
/// answer puts its digest on the missing list, and a county restarted on a
/// mirror whose missing list lacks it (as a mirror written before answers'
/// content was mirrored) asks for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_content_is_mirrored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut county = start_county(tmp.path(), 1, 60_000).await;
    let mut c = county_client(&county.url).await;
    let mut w = LogWriter::new(Origin::new(&origin(0)).unwrap(), dept_key(0));
    let t = gongkai_node::log::now_ms() - 60_000;
    let digest = gongkai_core::Hash([5; 32]);
    let kinds = [
        Kind::Genesis(pb::Genesis {
            department: "某某县局".into(),
            division_code: "510122".into(),
        }),
        Kind::RequestReceived(pb::RequestReceived {
            applicant: pb::ApplicantCategory::NaturalPerson as i32,
            request_id: "r1".into(),
            date_received: today(),
            subject: "subject".into(),
        }),
        Kind::RequestAnswered(pb::RequestAnswered {
            request_id: "r1".into(),
            date_answered: today(),
            decision: pb::Decision::Disclosed as i32,
            content: Some(pb::ContentRef {
                digest: digest.0.to_vec(),
                length: 3,
                media_type: "text/plain".into(),
            }),
            ..Default::default()
        }),
    ];
    let entries: Vec<Vec<u8>> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| w.append(k, t + i as u64).unwrap().into_bytes())
        .collect();
    let s = push_all(&mut c, 0, &entries, 0, &signed_checkpoint(0, &entries))
        .await
        .unwrap();
    assert_eq!(s.cosigned_size, 3);
    assert_eq!(s.missing_content, vec![digest.0.to_vec()]);
    county.stop().await;
    {
        let state =
            gongkai_aggregator::state::State::open(&tmp.path().join("county"), 1 << 20).unwrap();
        state.remove_missing(&origin(0), &digest).unwrap();
        assert_eq!(state.missing_length(&origin(0), &digest).unwrap(), None);
    }
    let mut county = start_county(tmp.path(), 1, 60_000).await;
    assert_eq!(
        mirror_state(&county.url, 0).await.missing_content,
        vec![digest.0.to_vec()]
    );
    county.stop().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (p, t) = (e.path(), to.join(e.file_name()));
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

fn replace_dir(saved: &Path, dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
    copy_dir(saved, dir);
}

/// The mirror serves exactly `log[..size]`, cosigned at `size`, with
/// inclusion proofs against the cosigned root (which need the projection)
/// and the catalog of every entry.
async fn check_served(url: &str, log: &[Vec<u8>], size: usize) {
    let s = mirror_state(url, 0).await;
    assert_eq!(
        (s.mirrored_size, s.staged_end, s.cosigned_size),
        (size as u64, size as u64, size as u64)
    );
    let mut mirror = DisclosureNodeClient::connect(url.to_owned()).await.unwrap();
    let mut got = Vec::new();
    while got.len() < size {
        let r = mirror
            .get_entries(v1::GetEntriesRequest {
                origin: origin(0),
                start: got.len() as u64,
                limit: 1000,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!r.entries.is_empty(), "no entries from {}", got.len());
        got.extend(r.entries);
    }
    assert_eq!(got, log[..size]);
    let cp = mirror
        .get_checkpoint(v1::GetCheckpointRequest { origin: origin(0) })
        .await
        .unwrap()
        .into_inner();
    let signed = SignedCheckpoint::parse(&cp.cosigned_checkpoint).unwrap();
    signed
        .verify(&vkey(0), &Verifiers::from(witness_vkey()), 1)
        .unwrap();
    assert_eq!(signed.checkpoint().size, size as u64);
    for index in [0, size / 2, size - 1] {
        let p = mirror
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                origin: origin(0),
                tree_size: size as u64,
                leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(index as u64)),
            })
            .await
            .unwrap()
            .into_inner();
        let proof: Vec<_> = p
            .proof
            .iter()
            .map(|h| gongkai_core::Hash::from_slice(h).unwrap())
            .collect();
        merkle::verify_inclusion(
            &leaf_hash(&log[index]),
            index as u64,
            size as u64,
            &proof,
            &signed.checkpoint().root,
        )
        .unwrap();
    }
    let mut requests = 0;
    let mut token = String::new();
    loop {
        let r = mirror
            .list_requests(v1::ListRequestsRequest {
                origin: origin(0),
                page_size: 1000,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        requests += r.requests.len();
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(
        requests,
        size - 1,
        "one request record per entry after genesis"
    );
}

/// A crash mid-catch-up, at the two points the commit leaves behind: the
/// mirror journal is synced first, then the cosigned record; the projection
/// is stored after both, on the projector. The states a crash (or power
/// loss) can leave are made here from data directories saved at earlier
/// points (sled's directories copied while closed): the restarted county
/// replays the projection, re-cosigns what its journal already holds, and
/// the catch-up resumes with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_catch_up_resumes_with_no_gap() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("county");
    let projection = gongkai_aggregator::mirror::projections_dir(&data);
    let (saved_state, saved_projection) = (root.path().join("s"), root.path().join("p"));
    let log = history(0, 4000, "a");
    let cp = |n: usize| signed_checkpoint(0, &log[..n]);

    let mut county = start_county(root.path(), 1, 60_000).await;
    let mut c = county_client(&county.url).await;
    push_all(&mut c, 0, &log[..2048], 0, &cp(2048))
        .await
        .unwrap();
    county.stop().await;
    copy_dir(&data.join("county"), &saved_state);
    copy_dir(&projection, &saved_projection);

    let mut county = start_county(root.path(), 1, 60_000).await;
    let mut c = county_client(&county.url).await;
    let s = push_all(&mut c, 0, &log[..3000], 2048, &cp(3000))
        .await
        .unwrap();
    assert_eq!(s.cosigned_size, 3000);
    county.stop().await;

    // 1. Crashed after the journal sync, before the cosigned record: the
    // journal holds 3000, the record and the projection 2048.
    replace_dir(&saved_state, &data.join("county"));
    replace_dir(&saved_projection, &projection);
    let mut county = start_county(root.path(), 1, 60_000).await;
    let s = mirror_state(&county.url, 0).await;
    assert_eq!((s.mirrored_size, s.cosigned_size), (3000, 2048));
    // The node resumes from the county's staged end and presents its
    // checkpoint again: cosigned from the journal, with no entries pushed.
    let mut c = county_client(&county.url).await;
    let s = push(&mut c, 0, s.staged_end, &[], &cp(3000)).await.unwrap();
    assert_eq!(s.cosigned_size, 3000);
    check_served(&county.url, &log, 3000).await;

    // 2. Crashed after the cosignature left, before the projector stored
    // anything: journal and record at 4000, the projection at 2048.
    let s = push_all(&mut c, 0, &log, 3000, &cp(4000)).await.unwrap();
    assert_eq!(s.cosigned_size, 4000);
    county.stop().await;
    replace_dir(&saved_projection, &projection);
    let mut county = start_county(root.path(), 1, 60_000).await;
    check_served(&county.url, &log, 4000).await;
    assert!(mirror_state(&county.url, 0).await.suspended.is_empty());
    county.stop().await;
}

/// A county written before the mirrors shared one projection database kept
/// each mirror's projection in `mirrors/<origin>/projection`. At open it is
/// moved into the shared database — copied, not rebuilt: a checkpoint only
/// the old database held is there afterwards — and the old directory is
/// removed, as is one a crash left renamed but not yet removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_projection_of_its_own_moves_into_the_shared_database() {
    use gongkai_aggregator::mirror::{mirror_dir, open_projections, projections_dir};
    use gongkai_store::projection::Projection;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("county");
    let o = origin(0);
    let dir = mirror_dir(&data, &Origin::new(&o).unwrap());
    let (own, moved) = (dir.join("projection"), dir.join("projection.moved"));
    let log = history(0, 600, "a");
    let mut county = start_county(root.path(), 1, 60_000).await;
    let mut c = county_client(&county.url).await;
    push_all(&mut c, 0, &log, 0, &signed_checkpoint(0, &log))
        .await
        .unwrap();
    check_served(&county.url, &log, 600).await;
    county.stop().await;

    // The layout before: the projection in a database of the mirror's own
    // (made from the shared tree, plus a checkpoint only it holds), and
    // the leftover of an earlier move.
    {
        let shared = open_projections(&data, 1 << 20).unwrap();
        let tree = Projection::open_shared(&shared, &o).unwrap();
        let old = Projection::open_unindexed(&own, &o, 1 << 20).unwrap();
        assert!(old.copy_from(&tree).unwrap() > 600);
        old.put_checkpoint(7, "only in the old database").unwrap();
        old.flush().unwrap();
    }
    std::fs::remove_dir_all(projections_dir(&data)).unwrap();
    copy_dir(&own, &moved);

    let mut county = start_county(root.path(), 1, 60_000).await;
    check_served(&county.url, &log, 600).await;
    county.stop().await;
    assert!(
        !own.exists() && !moved.exists(),
        "the old database is removed"
    );
    let shared = open_projections(&data, 1 << 20).unwrap();
    let tree = Projection::open_shared(&shared, &o).unwrap();
    assert_eq!(tree.applied().unwrap(), 600);
    assert_eq!(
        tree.checkpoint(7).unwrap().as_deref(),
        Some("only in the old database"),
        "moved, not rebuilt from the journal"
    );
}

/// A key rotation inside one package: the entries after the `KeyRotated`
/// are signed by the next key. The county must follow the rotation entry
/// by entry (it used to fix the key in force once per package, refusing
/// the package, and a node behind the rotation resent it forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_inside_one_package_replicates() {
    let root = tempfile::tempdir().unwrap();
    let mut county = start_county(root.path(), 1, 60_000).await;
    let mut c = county_client(&county.url).await;
    let mut w = LogWriter::new(Origin::new(&origin(0)).unwrap(), dept_key(0));
    let t = gongkai_node::log::now_ms() - 60_000;
    let request = |i: u64| {
        Kind::RequestReceived(pb::RequestReceived {
            applicant: pb::ApplicantCategory::NaturalPerson as i32,
            request_id: format!("r-{i}"),
            date_received: today(),
            subject: "subject".into(),
        })
    };
    let genesis = Kind::Genesis(pb::Genesis {
        department: "某某县局".into(),
        division_code: "510122".into(),
    });
    let mut log = vec![w.append(genesis, t).unwrap().into_bytes()];
    for i in 1..5 {
        log.push(w.append(request(i), t + i).unwrap().into_bytes());
    }
    let next = SigningKey::from_seed([77; 32]);
    log.push(
        w.rotate(next.clone(), "年度轮换", t + 5)
            .unwrap()
            .into_bytes(),
    );
    for i in 6..10 {
        log.push(w.append(request(i), t + i).unwrap().into_bytes());
    }
    let leaves: Vec<_> = log.iter().map(|e| leaf_hash(e)).collect();
    let checkpoint = |size: usize, key: &SigningKey| {
        let cp = Checkpoint::new(
            Origin::new(&origin(0)).unwrap(),
            size as u64,
            merkle::root(&leaves[..size]),
        );
        SignedCheckpoint::sign(&cp, key).unwrap().to_string()
    };
    // The county holds the first three entries (the genesis key in force).
    let s = push_all(&mut c, 0, &log[..3], 0, &checkpoint(3, &dept_key(0)))
        .await
        .unwrap();
    assert_eq!(s.cosigned_size, 3);
    // One package: two old-key entries, the rotation, four new-key ones.
    let s = push(&mut c, 0, 3, &log[3..], &checkpoint(10, &next))
        .await
        .expect("a package holding a rotation is accepted");
    assert_eq!(s.cosigned_size, 10);
    county.stop().await;
}

/// The mirror keeps no whole catalog in memory: records leave once the
/// projection holds them (a working catalog, as on the node). The rules
/// must still see them: a request id received 10,000 entries earlier is
/// refused again, and an answer to it is accepted (its record is read
/// back from the projection), both before and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_rules_see_records_that_left_memory() {
    let root = tempfile::tempdir().unwrap();
    let mut county = start_county(root.path(), 1, 60_000).await;
    let mut c = county_client(&county.url).await;
    let t = gongkai_node::log::now_ms() - 60_000;
    let request = |id: &str| {
        Kind::RequestReceived(pb::RequestReceived {
            applicant: pb::ApplicantCategory::NaturalPerson as i32,
            request_id: id.into(),
            date_received: today(),
            subject: "subject".into(),
        })
    };
    let mut w = LogWriter::new(Origin::new(&origin(0)).unwrap(), dept_key(0));
    let genesis = Kind::Genesis(pb::Genesis {
        department: "某某县局".into(),
        division_code: "510122".into(),
    });
    let mut log = vec![w.append(genesis, t).unwrap().into_bytes()];
    // More records than a mirror's working catalog holds.
    let n = gongkai_aggregator::mirror::MAX_HELD + 2_000;
    for i in 1..n {
        log.push(
            w.append(request(&format!("a-{i}")), t + 1)
                .unwrap()
                .into_bytes(),
        );
    }
    let again = {
        let mut w = w.clone();
        w.append(request("a-3"), t + 2).unwrap().into_bytes()
    };
    let answer = w
        .append(
            Kind::RequestAnswered(pb::RequestAnswered {
                request_id: "a-3".into(),
                date_answered: today(),
                decision: pb::Decision::Refused as i32,
                legal_basis: "条例第十四条".into(),
                ..Default::default()
            }),
            t + 2,
        )
        .unwrap()
        .into_bytes();
    let cp = |log: &[Vec<u8>]| signed_checkpoint(0, log);
    // Checkpoints every 1,024 entries, so records are stored and leave.
    let mut from = 0;
    while from < n {
        let end = (from + 1024).min(n);
        let s = push_all(&mut c, 0, &log[..end], from as u64, &cp(&log[..end]))
            .await
            .unwrap();
        assert_eq!(s.cosigned_size, end as u64);
        from = end;
    }
    for restarted in [false, true] {
        let mut dup = log.clone();
        dup.push(again.clone());
        let err = push(&mut c, 0, n as u64, &dup[n..], &cp(&dup))
            .await
            .expect_err("a request id received long ago is received again");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("request-id-unique"), "{err:?}");
        let s = mirror_state(&county.url, 0).await;
        assert_eq!(
            (s.staged_end, s.cosigned_size),
            (n as u64, n as u64),
            "restarted: {restarted}"
        );
        if !restarted {
            county.stop().await;
            county = start_county(root.path(), 1, 60_000).await;
            c = county_client(&county.url).await;
        }
    }
    log.push(answer);
    let s = push(&mut c, 0, n as u64, &log[n..], &cp(&log))
        .await
        .expect("the answer finds its request in the projection");
    assert_eq!(s.cosigned_size, n as u64 + 1);
    county.stop().await;
}

/// A content push that opens with `start` and then sends nothing: the
/// county must answer from `start` alone.
async fn push_content_start_only(
    url: &str,
    n: usize,
    digest: &[u8],
    salt: &[u8; 32],
    length: u64,
) -> Result<bool, tonic::Status> {
    let start = v1::PushContentRequest {
        part: Some(v1::push_content_request::Part::Start(
            v1::PushContentStart {
                origin: origin(n),
                digest: digest.to_vec(),
                salt: salt.to_vec(),
                length,
            },
        )),
    };
    let stream =
        tokio_stream::StreamExt::chain(tokio_stream::iter(vec![start]), tokio_stream::pending());
    let call = async {
        county_client(url)
            .await
            .push_content(authed(stream, &push_token(n)))
            .await
            .map(|r| r.into_inner().stored)
    };
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the county answered before the body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_pushes_are_judged_before_their_body_and_kept_within_quota_and_reserve() {
    let root = tempfile::tempdir().unwrap();
    // A log with one public item whose content the county must fetch.
    let salt = [5u8; 32];
    let data = vec![b'x'; 5000];
    let c = gongkai_core::types::ContentRef::commit(&salt, &data, "text/plain").unwrap();
    let mut entries = history(0, 1, "q");
    let genesis = gongkai_core::chain::prepare(entries[0].clone(), 0).unwrap();
    let t = gongkai_node::log::now_ms() - 30_000;
    let mut w = LogWriter::resume(
        Origin::new(&origin(0)).unwrap(),
        dept_key(0),
        1,
        genesis.body_hash,
        genesis.event.time_ms,
    );
    entries.push(
        w.append(
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "m".into(),
                matter: Some(pb::Matter {
                    category: "财政".into(),
                    level1: "预算".into(),
                    level2: "部门预算".into(),
                    elements: vec!["预算表".into()],
                    legal_basis: "条例".into(),
                    deadline_working_days: 20,
                    responsible_body: "财政局".into(),
                    channels: vec!["网站".into()],
                    audience: pb::Audience::Public as i32,
                    mode: pb::DisclosureMode::Proactive as i32,
                    ..Default::default()
                }),
            }),
            t,
        )
        .unwrap()
        .into_bytes(),
    );
    entries.push(
        w.append(
            Kind::Published(pb::Published {
                item_id: "budget".into(),
                matter_id: "m".into(),
                title: "预算".into(),
                content: Some(gongkai_core::event::content_message(&c)),
                date_formed: today(),
                ..Default::default()
            }),
            t + 1,
        )
        .unwrap()
        .into_bytes(),
    );
    let cp = signed_checkpoint(0, &entries);
    let mut config = county_config(root.path(), 1, 300);
    // Far more than any disk: every document would break the reserve.
    config.free_space_reserve = 1 << 60;
    let mut county = start_county_with(config.clone()).await;
    let mut cc = county_client(&county.url).await;
    push(&mut cc, 0, 0, &entries, &cp).await.unwrap();
    let digest = c.digest().0.to_vec();
    // Not committed, or announced with another length: refused from
    // `start` alone, before any byte of the body.
    let e = push_content_start_only(&county.url, 0, &[9; 32], &salt, 5000)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = push_content_start_only(&county.url, 0, &digest, &salt, 4999)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // The disk reserve.
    let e = push_content_start_only(&county.url, 0, &digest, &salt, 5000)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("reserve"), "{}", e.message());
    county.stop().await;
    // The department's quota.
    config.free_space_reserve = 1 << 20;
    config.departments[0].max_content_total_bytes = 4000;
    let mut county = start_county_with(config.clone()).await;
    let e = push_content_start_only(&county.url, 0, &digest, &salt, 5000)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("4000"), "{}", e.message());
    county.stop().await;
    // Within both: stored, streamed in chunks; once held, not wanted again.
    config.departments[0].max_content_total_bytes = 1 << 20;
    let mut county = start_county_with(config).await;
    let msgs = std::iter::once(v1::PushContentRequest {
        part: Some(v1::push_content_request::Part::Start(
            v1::PushContentStart {
                origin: origin(0),
                digest: digest.clone(),
                salt: salt.to_vec(),
                length: 5000,
            },
        )),
    })
    .chain(data.chunks(1024).map(|b| v1::PushContentRequest {
        part: Some(v1::push_content_request::Part::Chunk(b.to_vec())),
    }))
    .collect::<Vec<_>>();
    let stored = county_client(&county.url)
        .await
        .push_content(authed(tokio_stream::iter(msgs), &push_token(0)))
        .await
        .unwrap()
        .into_inner()
        .stored;
    assert!(stored);
    assert!(
        !push_content_start_only(&county.url, 0, &digest, &salt, 5000)
            .await
            .unwrap()
    );
    assert_eq!(mirror_state(&county.url, 0).await.missing_content.len(), 0);
    county.stop().await;
}

/// A request the county cannot read is the client's fault: bytes that are
/// not protobuf get INVALID_ARGUMENT (tonic would say INTERNAL), a frame
/// over `max_message_bytes` RESOURCE_EXHAUSTED (tonic: OUT_OF_RANGE), on
/// the county service and the mirror's read service, unary and streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_get_client_fault_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = county_config(dir.path(), 1, 60_000);
    config.max_message_bytes = 65_536;
    let mut county = start_county_with(config).await;
    let malformed: &[u8] = &[0xff, 0xff, 0xff];
    let oversized = vec![0x0a; 70_000];
    for path in [
        "/gongkai.v1.County/Push",
        "/gongkai.v1.County/GetCountyStatus",
        "/gongkai.v1.DisclosureNode/GetCheckpoint",
    ] {
        let (code, message) = raw_call(&county.url, path, malformed, false).await;
        assert_eq!(code, Code::InvalidArgument, "{path}: {message}");
        assert!(
            message.contains("not a valid protobuf message"),
            "{message}"
        );
        let (code, message) = raw_call(&county.url, path, &oversized, false).await;
        assert_eq!(code, Code::ResourceExhausted, "{path}: {message}");
    }
    let path = "/gongkai.v1.County/PushContent";
    let (code, message) = raw_call(&county.url, path, malformed, true).await;
    assert_eq!(code, Code::InvalidArgument, "{path}: {message}");
    let (code, message) = raw_call(&county.url, path, &oversized, true).await;
    assert_eq!(code, Code::ResourceExhausted, "{path}: {message}");
    // Without a push credential the department calls are refused from
    // their headers: decoding first answered from the body.
    for (path, stream) in [
        ("/gongkai.v1.County/Push", false),
        ("/gongkai.v1.County/GetMirrorState", false),
        ("/gongkai.v1.County/PushContent", true),
    ] {
        for body in [malformed, &oversized[..]] {
            let (code, message) = raw_call_as(&county.url, path, body, stream, None).await;
            assert_eq!(code, Code::Unauthenticated, "{path}: {message}");
            let (code, message) =
                raw_call_as(&county.url, path, body, stream, Some("not-a-push-token")).await;
            assert_eq!(code, Code::PermissionDenied, "{path}: {message}");
        }
    }
    // The county's own statuses are unchanged.
    let e = county_client(&county.url)
        .await
        .get_county_leaves(v1::GetCountyLeavesRequest { start: 5, limit: 1 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    county.stop().await;
}

/// Sends `body` as one raw gRPC frame (no protobuf encoder), as a unary or
/// a client-streaming call, with department 0's push token; returns the
/// status the server answers with.
async fn raw_call(url: &str, path: &str, body: &[u8], stream: bool) -> (Code, String) {
    raw_call_as(url, path, body, stream, Some(&push_token(0))).await
}

/// As [`raw_call`], with `token` (or none).
async fn raw_call_as(
    url: &str,
    path: &str,
    body: &[u8],
    stream: bool,
    token: Option<&str>,
) -> (Code, String) {
    let with = |r| match token {
        Some(t) => authed(r, t),
        None => Request::new(r),
    };
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = path.parse().unwrap();
    let answer = if stream {
        let req = match token {
            Some(t) => authed(tokio_stream::iter(vec![body.to_vec()]), t),
            None => Request::new(tokio_stream::iter(vec![body.to_vec()])),
        };
        grpc.client_streaming::<_, Vec<u8>, Vec<u8>, _>(req, path, RawCodec)
            .await
            .map(|_| ())
    } else {
        let req = with(body.to_vec());
        grpc.unary::<Vec<u8>, Vec<u8>, _>(req, path, RawCodec)
            .await
            .map(|_| ())
    };
    match answer {
        Ok(()) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

/// A codec that sends and receives bytes as they are.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// A plain HTTP/1.1 GET over a real socket: status and body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

/// The portal serves the county log like a department log (FORMAT.md
/// § 9.4): its checkpoint, signed by the county log key, and the entry
/// bundles and hash tiles of its leaves, under `/logs/<county origin>/`;
/// what they hold verifies against that checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_serves_the_county_log() {
    use gongkai_core::tile::{decode_bundle, decode_tile};
    let root = tempfile::tempdir().unwrap();
    let pages = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let content = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web = pages.local_addr().unwrap();
    let mut county = start_county_serving(
        county_config(root.path(), 2, 100),
        Some(gongkai_aggregator::PortalListeners { pages, content }),
    )
    .await;
    let mut c = county_client(&county.url).await;
    for n in 0..2 {
        let log = history(n, 5 + n, "a");
        push_all(&mut c, n, &log, 0, &signed_checkpoint(n, &log))
            .await
            .unwrap();
    }
    let mut cp = county_checkpoint(&mut c).await;
    for _ in 0..200 {
        if cp.checkpoint().size >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        cp = county_checkpoint(&mut c).await;
    }
    let size = cp.checkpoint().size;
    assert!((1..256).contains(&size), "county size {size}");

    let slug = gongkai_portal::model::slug(COUNTY);
    let (status, body) = http_get(web, &format!("/logs/{slug}/checkpoint")).await;
    assert_eq!(status, 200);
    let served = SignedCheckpoint::parse(std::str::from_utf8(&body).unwrap()).unwrap();
    assert_eq!(served.checkpoint().origin.as_str(), COUNTY);
    let county_vkey = Checkpoint::log_verifier_key(
        &Origin::new(COUNTY).unwrap(),
        &SigningKey::from_seed([100; 32]).public_key(),
    );
    served
        .verify(&county_vkey, &Verifiers::default(), 0)
        .unwrap();
    assert_eq!(served.checkpoint().size, size);

    let (status, bundle) = http_get(web, &format!("/logs/{slug}/tile/entries/000.p/{size}")).await;
    assert_eq!(status, 200);
    let leaves = decode_bundle(&bundle, usize::try_from(size).unwrap()).unwrap();
    assert_eq!(leaves, county_leaves(&mut c).await);
    for l in &leaves {
        CountyLeaf::decode(l).unwrap();
    }
    let hashes: Vec<_> = leaves.iter().map(|l| leaf_hash(l)).collect();
    assert_eq!(merkle::root(&hashes), served.checkpoint().root);
    let (status, tile) = http_get(web, &format!("/logs/{slug}/tile/0/000.p/{size}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        decode_tile(&tile, u16::try_from(size).unwrap()).unwrap(),
        hashes
    );

    // Only the tree of the published checkpoint, and only its right edge.
    for path in [
        format!("/logs/{slug}/tile/entries/000.p/{}", size + 1),
        format!("/logs/{slug}/tile/entries/000"),
        format!("/logs/{slug}/tile/0/000"),
    ] {
        assert_eq!(http_get(web, &path).await.0, 404, "{path}");
    }
    // A department's files are still there, under its own origin.
    let dept = gongkai_portal::model::slug(&origin(0));
    assert_eq!(
        http_get(web, &format!("/logs/{dept}/checkpoint")).await.0,
        200
    );
    county.stop().await;
}
