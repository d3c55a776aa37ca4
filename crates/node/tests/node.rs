//! The node end to end over real gRPC on a real socket (port 0), with a real
//! journal and sled on disk: writes, reads, proofs, idempotency, bad input,
//! restart, projection rebuild, and the restore-safety check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::entry::Entry;
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::merkle;
use gongkai_core::note::Verifiers;
use gongkai_core::types::Origin;
use gongkai_core::{Hash, event::pb};
use gongkai_node::config::NodeConfig;
use gongkai_proto::DisclosureNodeClient;
use gongkai_proto::v1::{self, write_event::Kind as W};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request};

const ORIGIN: &str = "gongkai.example/510122/finance";
const TOKEN: &str = "clerk-secret-token";

struct TestNode {
    dir: tempfile::TempDir,
    key: SigningKey,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), gongkai_node::NodeError>>>,
    url: String,
}

fn config(dir: &Path) -> NodeConfig {
    config_with_reserve(dir, 1 << 20)
}

fn config_with_reserve(dir: &Path, reserve: u64) -> NodeConfig {
    let hash = hex(&Sha256::digest(TOKEN.as_bytes()));
    let text = format!(
        r#"
origin = "{ORIGIN}"
department = "某某县财政局"
division_code = "510122"
data_dir = "{}"
key = "{}"
plaintext = true
checkpoint_interval_ms = 50
free_space_reserve = {reserve}
[[writers]]
name = "clerk"
token_sha256 = "{hash}"
[limits]
max_message_bytes = 65536
max_content_bytes = 100000
"#,
        dir.join("data").display(),
        dir.join("finance.key").display()
    );
    NodeConfig::from_toml(&text).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl TestNode {
    async fn create() -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_seed([42; 32]);
        gongkai_node::init(&config(dir.path()), &key).unwrap();
        let mut node = TestNode {
            dir,
            key,
            stop: None,
            task: None,
            url: String::new(),
        };
        node.start().await.unwrap();
        node
    }

    async fn start(&mut self) -> Result<(), String> {
        self.start_with(config(self.dir.path())).await
    }

    async fn start_with(&mut self, cfg: NodeConfig) -> Result<(), String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let key = self.key.clone();
        let task = tokio::spawn(gongkai_node::run(cfg, key, listener, async {
            let _ = rx.await;
        }));
        // Wait until it serves (or failed to start).
        for _ in 0..200 {
            if task.is_finished() {
                return Err(format!("{:?}", task.await.unwrap().err()));
            }
            let status = v1::GetStatusRequest {
                origin: ORIGIN.into(),
            };
            if let Ok(mut c) = DisclosureNodeClient::connect(self.url.clone()).await
                && c.get_status(status).await.is_ok()
            {
                self.stop = Some(tx);
                self.task = Some(task);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err("node did not start".into())
    }

    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    async fn client(&self) -> DisclosureNodeClient<Channel> {
        DisclosureNodeClient::connect(self.url.clone())
            .await
            .unwrap()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

fn authed<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

fn matter() -> pb::Matter {
    pb::Matter {
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
    }
}

/// Appends `kind` under idempotency key `key`, or under a fresh key when
/// `key` is empty (every write needs one).
async fn append(
    c: &mut DisclosureNodeClient<Channel>,
    key: &str,
    kind: W,
) -> Result<v1::AppendResponse, tonic::Status> {
    c.append(authed(v1::AppendRequest {
        idempotency_key: if key.is_empty() {
            fresh_key()
        } else {
            key.into()
        },
        event: Some(v1::WriteEvent { kind: Some(kind) }),
    }))
    .await
    .map(tonic::Response::into_inner)
}

/// A key no other write of the test uses.
fn fresh_key() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "test-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

async fn upload(c: &mut DisclosureNodeClient<Channel>, bytes: &[u8]) -> pb::ContentRef {
    let msgs = vec![v1::UploadContentRequest {
        part: Some(v1::upload_content_request::Part::Start(v1::UploadStart {
            media_type: "text/plain".into(),
            length: bytes.len() as u64,
            ..Default::default()
        })),
    }];
    // In chunks below the message limit.
    let msgs: Vec<_> = msgs
        .into_iter()
        .chain(bytes.chunks(32 << 10).map(|b| v1::UploadContentRequest {
            part: Some(v1::upload_content_request::Part::Chunk(b.to_vec())),
        }))
        .collect();
    c.upload_content(authed(tokio_stream::iter(msgs)))
        .await
        .unwrap()
        .into_inner()
        .content
        .unwrap()
}

fn today() -> String {
    gongkai_core::date::Date::from_unix_ms_cst(gongkai_node::log::now_ms())
        .unwrap()
        .to_string()
}

fn published(item: &str, content: pb::ContentRef) -> W {
    W::Published(pb::Published {
        item_id: item.into(),
        matter_id: "budget".into(),
        title: format!("{item} 部门预算"),
        content: Some(content),
        date_formed: today(),
        ..Default::default()
    })
}

/// (size, root) as the node's newest checkpoint says, once it covers `size`.
async fn checkpoint_at_least(c: &mut DisclosureNodeClient<Channel>, size: u64) -> SignedCheckpoint {
    for _ in 0..200 {
        let r = c
            .get_checkpoint(v1::GetCheckpointRequest {
                origin: ORIGIN.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let cp = SignedCheckpoint::parse(&r.checkpoint).unwrap();
        if cp.checkpoint().size >= size {
            return cp;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no checkpoint of size {size}");
}

/// The inclusion proof of the entry with `leaf_hash`, at the newest size.
async fn proof_by_leaf(
    c: &mut DisclosureNodeClient<Channel>,
    leaf_hash: &[u8],
) -> v1::GetInclusionProofResponse {
    c.get_inclusion_proof(v1::GetInclusionProofRequest {
        origin: ORIGIN.into(),
        tree_size: 0,
        leaf: Some(v1::get_inclusion_proof_request::Leaf::LeafHash(
            leaf_hash.to_vec(),
        )),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn all_entries(c: &mut DisclosureNodeClient<Channel>) -> Vec<Vec<u8>> {
    let size = c
        .get_status(v1::GetStatusRequest {
            origin: ORIGIN.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .size;
    let mut out = Vec::new();
    while (out.len() as u64) < size {
        let r = c
            .get_entries(v1::GetEntriesRequest {
                origin: ORIGIN.into(),
                start: out.len() as u64,
                limit: 3,
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.entries);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_read_prove_and_restart() {
    let mut node = TestNode::create().await;
    let mut c = node.client().await;
    append(
        &mut c,
        "m1",
        W::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter()),
        }),
    )
    .await
    .unwrap();
    let content = upload(&mut c, "2026年部门预算".as_bytes()).await;
    let r = append(&mut c, "p1", published("budget-2026", content.clone()))
        .await
        .unwrap();
    let receipt = r.receipt.unwrap();
    assert_eq!(receipt.index, 2);
    assert!(!r.replayed);
    assert_eq!(receipt.leaf_hash, leaf_hash(&receipt.entry).0.to_vec());

    // Idempotency: the same key and request gives the same receipt...
    let again = append(&mut c, "p1", published("budget-2026", content.clone()))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.receipt.unwrap().entry, receipt.entry);
    // ...the same key for something else is refused.
    let err = append(&mut c, "p1", published("other", content.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // The whole log verifies with core, and matches a signed checkpoint.
    let cp = checkpoint_at_least(&mut c, 3).await;
    let vkey = Checkpoint::log_verifier_key(&Origin::new(ORIGIN).unwrap(), &node.key.public_key());
    cp.verify(&vkey, &Verifiers::default(), 0).unwrap();
    let entries = all_entries(&mut c).await;
    assert_eq!(entries.len(), 3);
    let mut v = gongkai_core::chain::ChainVerifier::new(
        Origin::new(ORIGIN).unwrap(),
        &[node.key.public_key()],
    );
    for e in &entries {
        v.push(e.clone()).unwrap();
    }
    v.check_checkpoint(cp.checkpoint()).unwrap();

    // Inclusion proof by leaf hash.
    let p = proof_by_leaf(&mut c, &receipt.leaf_hash).await;
    let proof: Vec<Hash> = p
        .proof
        .iter()
        .map(|h| Hash::from_slice(h).unwrap())
        .collect();
    merkle::verify_inclusion(
        &Hash::from_slice(&receipt.leaf_hash).unwrap(),
        p.index,
        p.tree_size,
        &proof,
        &cp.checkpoint().root,
    )
    .unwrap();

    // Item with history; content round trip.
    let item = c
        .get_item(v1::GetItemRequest {
            origin: ORIGIN.into(),
            item_id: "budget-2026".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(item.history.len(), 1);
    assert_eq!(item.item.as_ref().unwrap().category, "财政预决算");
    Entry::parse(item.history[0].entry.clone(), 2).unwrap();
    let mut stream = c
        .get_content(v1::GetContentRequest {
            origin: ORIGIN.into(),
            digest: content.digest.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut salt = Vec::new();
    let mut body = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        match m.part.unwrap() {
            v1::get_content_response::Part::Header(h) => salt = h.salt,
            v1::get_content_response::Part::Chunk(b) => body.extend(b),
        }
    }
    let salt: [u8; 32] = salt.try_into().unwrap();
    assert_eq!(
        gongkai_core::types::content_digest(&salt, &body).0.to_vec(),
        content.digest
    );

    // A restart over the whole projection rebuilds the leaf index from the
    // journal: the proof by leaf hash is still found.
    node.stop().await;
    node.start().await.unwrap();
    let mut c = node.client().await;
    let again = proof_by_leaf(&mut c, &receipt.leaf_hash).await;
    assert_eq!((again.index, again.proof), (p.index, p.proof));

    // Restart: everything is still there, and the projection rebuilt from
    // the journal is identical to the live one.
    node.stop().await;
    let live: Vec<_> = {
        let p = gongkai_store::projection::Projection::open(
            &node.data().join("projection"),
            ORIGIN,
            1 << 20,
        )
        .unwrap();
        p.dump()
            .map(Result::unwrap)
            .filter(|(k, _)| k[0] != b'c')
            .collect()
    };
    std::fs::remove_dir_all(node.data().join("projection")).unwrap();
    node.start().await.unwrap();
    let mut c = node.client().await;
    assert_eq!(all_entries(&mut c).await, entries);
    node.stop().await;
    let rebuilt: Vec<_> = {
        let p = gongkai_store::projection::Projection::open(
            &node.data().join("projection"),
            ORIGIN,
            1 << 20,
        )
        .unwrap();
        p.dump()
            .map(Result::unwrap)
            .filter(|(k, _)| k[0] != b'c')
            .collect()
    };
    // Everything is rebuilt: the catalog from the journal, the idempotency
    // keys from the node's key file.
    assert!(live.iter().any(|(k, _)| k[0] == b'k'));
    assert_eq!(rebuilt, live);

    // `node check` folds the catalog rules over the whole journal and
    // compares the result with the projection's records, which a start
    // trusts for the entries they cover: a changed record is caught.
    let cfg = config(node.dir.path());
    let report = gongkai_node::check(&cfg, &node.key).unwrap();
    assert_eq!(report.catalog_records, 2);
    {
        use gongkai_store::projection::ItemRecord;
        let db = sled::open(node.data().join("projection")).unwrap();
        let k = b"ibudget-2026";
        let mut rec: ItemRecord = serde_json::from_slice(&db.get(k).unwrap().unwrap()).unwrap();
        rec.status = gongkai_core::catalog::ItemStatus::Withdrawn;
        db.insert(k, serde_json::to_vec(&rec).unwrap()).unwrap();
        db.flush().unwrap();
    }
    let err = gongkai_node::check(&cfg, &node.key).unwrap_err();
    assert!(
        err.to_string().contains("item budget-2026 differs"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_changes_nothing() {
    let mut node = TestNode::create().await;
    let mut c = node.client().await;
    append(
        &mut c,
        "",
        W::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter()),
        }),
    )
    .await
    .unwrap();
    let content = upload(&mut c, b"v1").await;
    append(&mut c, "", published("a", content.clone()))
        .await
        .unwrap();
    append(
        &mut c,
        "",
        W::Withdrawn(pb::Withdrawn {
            item_id: "a".into(),
            reason: "失效".into(),
            legal_basis: "条例".into(),
        }),
    )
    .await
    .unwrap();
    append(
        &mut c,
        "",
        W::RequestReceived(pb::RequestReceived {
            applicant: pb::ApplicantCategory::NaturalPerson as i32,
            request_id: "r8".into(),
            date_received: today(),
            subject: "申请公开".into(),
        }),
    )
    .await
    .unwrap();
    let before = all_entries(&mut c).await;

    // No credential / wrong credential.
    let e = c
        .append(v1::AppendRequest {
            idempotency_key: String::new(),
            event: Some(v1::WriteEvent {
                kind: Some(published("b", content.clone())),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut wrong = Request::new(v1::AppendRequest::default());
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        c.append(wrong).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // State-machine rules.
    let withdraw_again = W::Withdrawn(pb::Withdrawn {
        item_id: "a".into(),
        reason: "再次".into(),
        legal_basis: "条例".into(),
    });
    let e = append(&mut c, "", withdraw_again).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("item-not-withdrawn"),
        "{}",
        e.message()
    );
    let amend_unknown = W::Amended(pb::Amended {
        quantity: 0,
        item_id: "nope".into(),
        title: "t".into(),
        content: Some(content.clone()),
        date_changed: today(),
        reason: "r".into(),
    });
    assert_eq!(
        append(&mut c, "", amend_unknown).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let answer_unknown = W::RequestAnswered(pb::RequestAnswered {
        request_id: "r9".into(),
        date_answered: today(),
        decision: pb::Decision::DoesNotExist as i32,
        outcome: pb::Outcome::UnavailableNotHeld as i32,
        ..Default::default()
    });
    assert_eq!(
        append(&mut c, "", answer_unknown).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // Content that was never uploaded.
    let mut missing = content.clone();
    missing.digest = vec![9; 32];
    assert_eq!(
        append(&mut c, "", published("c", missing))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    // A request answer must name content the node holds too (it serves
    // and replicates it).
    let mut missing = content.clone();
    missing.digest = vec![8; 32];
    let answer_missing = W::RequestAnswered(pb::RequestAnswered {
        request_id: "r8".into(),
        date_answered: today(),
        decision: pb::Decision::Disclosed as i32,
        content: Some(missing),
        outcome: pb::Outcome::Disclosed as i32,
        ..Default::default()
    });
    let e = append(&mut c, "", answer_missing).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("content-uploaded"), "{}", e.message());
    // Fields that decode but are invalid.
    let bad_id = published("bad id", content.clone());
    assert_eq!(
        append(&mut c, "", bad_id).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        c.append(authed(v1::AppendRequest::default()))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    // A batch is all or nothing: the second event fails, the first is not kept.
    let batch = v1::AppendBatchRequest {
        idempotency_key: fresh_key(),
        events: vec![
            v1::WriteEvent {
                kind: Some(published("d", content.clone())),
            },
            v1::WriteEvent {
                kind: Some(published("d", content.clone())),
            },
        ],
    };
    let e = c.append_batch(authed(batch)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Content that does not match the commitment the client expects.
    let msgs = vec![
        v1::UploadContentRequest {
            part: Some(v1::upload_content_request::Part::Start(v1::UploadStart {
                media_type: "text/plain".into(),
                length: 2,
                salt: vec![1; 32],
                expected_digest: vec![2; 32],
            })),
        },
        v1::UploadContentRequest {
            part: Some(v1::upload_content_request::Part::Chunk(b"xy".to_vec())),
        },
    ];
    let e = c
        .upload_content(authed(tokio_stream::iter(msgs)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Content over the limit.
    let msgs = vec![v1::UploadContentRequest {
        part: Some(v1::upload_content_request::Part::Start(v1::UploadStart {
            media_type: "text/plain".into(),
            length: 1_000_000,
            ..Default::default()
        })),
    }];
    let e = c
        .upload_content(authed(tokio_stream::iter(msgs)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    // A message over the decoding limit (65,536 bytes here): tonic answers
    // before our code runs, with RESOURCE_EXHAUSTED (not its OUT_OF_RANGE).
    let huge = published(
        "e",
        pb::ContentRef {
            media_type: "x".repeat(70_000),
            ..content.clone()
        },
    );
    let e = append(&mut c, "", huge).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("larger than"), "{e:?}");
    // Raw frames: bytes that are not protobuf at all are INVALID_ARGUMENT
    // (not INTERNAL: the client is at fault), an oversized frame is
    // RESOURCE_EXHAUSTED, on a unary call and on a client stream alike.
    for path in [
        "/gongkai.v1.DisclosureNode/Append",
        "/gongkai.v1.DisclosureNode/GetCheckpoint",
    ] {
        let (code, message) = raw_unary(&node.url, path, &[0xff, 0xff, 0xff]).await;
        assert_eq!(code, Code::InvalidArgument, "{path}: {message}");
        assert!(
            message.contains("not a valid protobuf message"),
            "{message}"
        );
        let (code, message) = raw_unary(&node.url, path, &vec![0x0a; 70_000]).await;
        assert_eq!(code, Code::ResourceExhausted, "{path}: {message}");
    }
    let (code, message) = raw_stream(
        &node.url,
        "/gongkai.v1.DisclosureNode/UploadContent",
        &[0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let (code, message) = raw_stream(
        &node.url,
        "/gongkai.v1.DisclosureNode/UploadContent",
        &vec![0x0a; 70_000],
    )
    .await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    // Reads of another origin are NOT_FOUND.
    let e = c
        .get_checkpoint(v1::GetCheckpointRequest {
            origin: "gongkai.example/510122/other".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    assert_eq!(
        all_entries(&mut c).await,
        before,
        "refused requests changed the log"
    );
    node.stop().await;
}

/// Every write needs an idempotency key of 1 to 128 bytes (node.proto):
/// without one, a client that retries after a lost answer appends twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_an_idempotency_key_of_1_to_128_bytes() {
    let mut node = TestNode::create().await;
    let mut c = node.client().await;
    let before = all_entries(&mut c).await;
    let define = |id: &str| {
        W::MatterDefined(pb::MatterDefined {
            matter_id: id.into(),
            matter: Some(matter()),
        })
    };
    let request = |key: String, id: &str| v1::AppendRequest {
        idempotency_key: key,
        event: Some(v1::WriteEvent {
            kind: Some(define(id)),
        }),
    };
    for key in [String::new(), "k".repeat(129)] {
        let e = c
            .append(authed(request(key.clone(), "m1")))
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Code::InvalidArgument,
            "{} bytes: {e:?}",
            key.len()
        );
        assert!(e.message().contains("idempotency_key"), "{}", e.message());
        let e = c
            .append_batch(authed(v1::AppendBatchRequest {
                idempotency_key: key.clone(),
                events: vec![v1::WriteEvent {
                    kind: Some(define("m1")),
                }],
            }))
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Code::InvalidArgument,
            "batch, {} bytes",
            key.len()
        );
        assert!(e.message().contains("idempotency_key"), "{}", e.message());
    }
    assert_eq!(
        all_entries(&mut c).await,
        before,
        "a refused write appended"
    );
    // 1 and 128 bytes are fine, and a retry replays the first receipt.
    for key in ["k".to_owned(), "k".repeat(128)] {
        let id = format!("m{}", key.len());
        let first = c
            .append(authed(request(key.clone(), &id)))
            .await
            .unwrap()
            .into_inner();
        let again = c
            .append(authed(request(key.clone(), &id)))
            .await
            .unwrap()
            .into_inner();
        assert!(!first.replayed && again.replayed);
        assert_eq!(first.receipt, again.receipt);
    }
    assert_eq!(all_entries(&mut c).await.len(), before.len() + 2);
    node.stop().await;
}

/// Sends `body` as one gRPC frame of a unary request, without a protobuf
/// encoder, and returns the status the server answers with.
async fn raw_unary(url: &str, path: &str, body: &[u8]) -> (Code, String) {
    raw_unary_as(url, path, body, Some(TOKEN)).await
}

/// As [`raw_unary`], with `token` (or none).
async fn raw_unary_as(url: &str, path: &str, body: &[u8], token: Option<&str>) -> (Code, String) {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = RawCodec;
    let mut req = Request::new(body.to_vec());
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match grpc
        .unary::<Vec<u8>, Vec<u8>, _>(req, path.parse().unwrap(), codec)
        .await
    {
        Ok(_) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

/// As [`raw_unary`], as the one frame of a client-streaming request.
async fn raw_stream(url: &str, path: &str, body: &[u8]) -> (Code, String) {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut req = Request::new(tokio_stream::iter(vec![body.to_vec()]));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    match grpc
        .client_streaming::<_, Vec<u8>, Vec<u8>, _>(req, path.parse().unwrap(), RawCodec)
        .await
    {
        Ok(_) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_from_an_old_backup() {
    let mut node = TestNode::create().await;
    let mut c = node.client().await;
    checkpoint_at_least(&mut c, 1).await;
    node.stop().await;
    // Back up the data dir at size 1.
    let backup = node.dir.path().join("backup");
    copy_dir(&node.data(), &backup);
    node.start().await.unwrap();
    let mut c = node.client().await;
    append(
        &mut c,
        "",
        W::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter()),
        }),
    )
    .await
    .unwrap();
    checkpoint_at_least(&mut c, 2).await;
    node.stop().await;
    // Restore the old backup: the node must refuse to start.
    std::fs::remove_dir_all(node.data()).unwrap();
    copy_dir(&backup, &node.data());
    let err = node.start().await.unwrap_err();
    assert!(
        err.contains("already signed a checkpoint of size 2"),
        "{err}"
    );
    assert!(err.contains("gongkai node restore"), "{err}");

    // `gongkai node restore` verifies the old data without touching it: the
    // shorter journal is reported, not refused, and not a byte changes.
    let snapshot = |dir: &Path| {
        let mut files = Vec::new();
        walk(dir, &mut files);
        files
    };
    let before = snapshot(&node.data());
    let v = gongkai_node::verify_read_only(&config(node.dir.path()), &node.key).unwrap();
    assert_eq!((v.size, v.signed_size, v.torn_bytes), (1, 2, 0));
    assert_eq!(v.department, "某某县财政局");
    assert_eq!(v.division_code, "510122");
    assert_eq!(
        v.root,
        merkle::root(&[leaf_hash(&journal_entry(&node.data(), 0))])
    );
    assert_eq!(snapshot(&node.data()), before);
}

#[test]
fn read_only_verification_reports_a_torn_tail_without_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_seed([42; 32]);
    let cfg = config(dir.path());
    gongkai_node::init(&cfg, &key).unwrap();
    let journal = dir.path().join("data/journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(&[7, 0, 0]); // a torn record header
    std::fs::write(&journal, &bytes).unwrap();
    let v = gongkai_node::verify_read_only(&cfg, &key).unwrap();
    assert_eq!((v.size, v.torn_bytes), (1, 3));
    assert_eq!(std::fs::read(&journal).unwrap(), bytes);
    // Another key is refused.
    let err = gongkai_node::verify_read_only(&cfg, &SigningKey::from_seed([1; 32])).unwrap_err();
    assert!(err.to_string().contains("not the key in force"), "{err}");
}

/// Every file under `dir` with its bytes, sorted by path.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
}

/// A start verifies every signature in the journal (in batches, over the
/// cores) and refuses to serve a journal holding an entry whose signature
/// does not verify, naming it: here entry 2, after a good entry 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_entry_in_the_journal_is_refused_at_start() {
    use gongkai_core::event::Kind;
    use gongkai_core::writer::LogWriter;

    let mut node = TestNode::create().await;
    node.stop().await;
    let genesis = Entry::parse(journal_entry(&node.data(), 0), 0).unwrap();
    let time = genesis.decode_event(0).unwrap().time_ms;
    let mut w = LogWriter::resume(
        Origin::new(ORIGIN).unwrap(),
        node.key.clone(),
        1,
        genesis.body_hash(),
        time,
    );
    let good = w
        .append(
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "budget".into(),
                matter: Some(matter()),
            }),
            time + 1,
        )
        .unwrap();
    // Names the node's key as signer, but another key signed it.
    let body = w.next_body(
        Kind::MatterRetired(pb::MatterRetired {
            matter_id: "budget".into(),
            reason: "撤销".into(),
            legal_basis: String::new(),
        }),
        time + 2,
    );
    let forged = Entry::sign(&body, &SigningKey::from_seed([7; 32])).unwrap();
    {
        let j = gongkai_store::Journal::open(
            node.data().join("journal"),
            ORIGIN,
            gongkai_store::JournalOptions::default(),
        )
        .unwrap();
        j.append_one(good.as_bytes()).unwrap();
        j.append_one(forged.as_bytes()).unwrap();
    }
    let err = node.start().await.unwrap_err();
    assert!(err.contains("entry 2: signature does not verify"), "{err}");
    // `node check` says the same.
    let err = gongkai_node::check(&config(node.dir.path()), &node.key).unwrap_err();
    assert!(
        err.to_string()
            .contains("entry 2: signature does not verify"),
        "{err}"
    );
}

/// Entry `index` of the journal in `data`, read with the store's reader.
fn journal_entry(data: &Path, index: u64) -> Vec<u8> {
    let j = gongkai_store::Journal::open(
        data.join("journal"),
        ORIGIN,
        gongkai_store::JournalOptions::default(),
    )
    .unwrap();
    j.read(index).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_disk_reserve_writes_are_refused_cleanly() {
    let mut node = TestNode::create().await;
    node.stop().await;
    // A reserve larger than any disk: every write must be refused up front.
    let cfg = config_with_reserve(node.dir.path(), u64::MAX / 4);
    node.start_with(cfg).await.unwrap();
    let mut c = node.client().await;
    let before = all_entries(&mut c).await;
    let e = append(
        &mut c,
        "k1",
        W::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter()),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // The node keeps serving, and nothing changed.
    assert_eq!(all_entries(&mut c).await, before);
    checkpoint_at_least(&mut c, 1).await;
    node.stop().await;
    // With room again, the same request (same key) is appended normally.
    node.start().await.unwrap();
    let mut c = node.client().await;
    let r = append(
        &mut c,
        "k1",
        W::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter()),
        }),
    )
    .await
    .unwrap();
    assert!(!r.replayed);
    assert_eq!(r.receipt.unwrap().index, 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_downloads_are_capped_per_client_and_do_not_stall_writes() {
    let mut node = TestNode::create().await;
    node.stop().await;
    let mut cfg = config(node.dir.path());
    cfg.limits.max_content_bytes = 8 << 20;
    node.start_with(cfg).await.unwrap();
    let mut c = node.client().await;
    append(
        &mut c,
        "m1",
        W::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter()),
        }),
    )
    .await
    .unwrap();
    // Large enough that a reader who stops reading leaves the server with
    // chunks it cannot send.
    let doc = vec![7u8; 4 << 20];
    let content = upload(&mut c, &doc).await;
    append(&mut c, "p1", published("budget-2026", content.clone()))
        .await
        .unwrap();
    let open = |url: String, digest: Vec<u8>| async move {
        let mut c = DisclosureNodeClient::connect(url).await.unwrap();
        c.get_content(v1::GetContentRequest {
            origin: ORIGIN.into(),
            digest,
        })
        .await
    };
    // Eight streams from this address, each read to its header and then
    // left unread.
    let mut held = Vec::new();
    for _ in 0..gongkai_node::view::MAX_DOWNLOADS_PER_PEER {
        let mut s = open(node.url.clone(), content.digest.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(s.message().await.unwrap().is_some());
        held.push(s);
    }
    // A ninth is refused with a status clients understand...
    let e = open(node.url.clone(), content.digest.clone())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    // ...and writes go on while the eight hang.
    for i in 0..20 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            append(
                &mut c,
                &format!("r{i}"),
                W::RequestReceived(pb::RequestReceived {
                    applicant: pb::ApplicantCategory::NaturalPerson as i32,
                    request_id: format!("r{i}"),
                    date_received: today(),
                    subject: "请求公开".into(),
                }),
            ),
        )
        .await
        .expect("an append while downloads hang");
        r.unwrap();
    }
    // A reader that leaves gives its slot back.
    held.pop();
    let mut again = None;
    for _ in 0..200 {
        if let Ok(s) = open(node.url.clone(), content.digest.clone()).await {
            again = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut s = again.expect("a slot came back").into_inner();
    let mut n = 0;
    while let Some(m) = s.message().await.unwrap() {
        if let Some(v1::get_content_response::Part::Chunk(b)) = m.part {
            n += b.len();
        }
    }
    assert_eq!(n, doc.len());
    drop(held);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_dated_ahead_of_the_clock_takes_no_write_and_says_why() {
    // The clock was an hour ahead when the last entry was written (here:
    // written straight into the journal while the node was stopped, as a
    // node with that clock would have), and is right again now.
    let mut node = TestNode::create().await;
    node.stop().await;
    {
        let data = gongkai_store::DataDir::open(node.data()).unwrap();
        let journal = data
            .journal(ORIGIN, gongkai_store::JournalOptions::default())
            .unwrap();
        let len = journal.len();
        let last = gongkai_core::chain::prepare(journal.read(len - 1).unwrap(), len - 1).unwrap();
        let mut w = gongkai_core::writer::LogWriter::resume(
            Origin::new(ORIGIN).unwrap(),
            node.key.clone(),
            len,
            last.body_hash,
            last.event.time_ms,
        );
        let ahead = gongkai_node::log::now_ms() + 3_600_000;
        let entry = w
            .append(
                gongkai_core::event::Kind::RequestReceived(pb::RequestReceived {
                    applicant: pb::ApplicantCategory::NaturalPerson as i32,
                    request_id: "dated-ahead".into(),
                    date_received: today(),
                    subject: "请求公开".into(),
                }),
                ahead,
            )
            .unwrap();
        journal.append(&[entry.into_bytes()]).unwrap();
    }
    node.start().await.unwrap();
    let mut c = node.client().await;
    let e = append(
        &mut c,
        "after",
        W::RequestReceived(pb::RequestReceived {
            applicant: pb::ApplicantCategory::NaturalPerson as i32,
            request_id: "after".into(),
            date_received: today(),
            subject: "请求公开".into(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("ahead of this machine's clock")
            && e.message().contains("writes resume by themselves"),
        "{}",
        e.message()
    );
    // Reads go on.
    assert!(
        c.get_status(v1::GetStatusRequest {
            origin: ORIGIN.into()
        })
        .await
        .is_ok()
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_no_entry_refers_to_are_collected_after_the_grace_period() {
    let mut node = TestNode::create().await;
    node.stop().await;
    let mut cfg = config(node.dir.path());
    cfg.upload_grace_ms = 1000;
    node.start_with(cfg).await.unwrap();
    let mut c = node.client().await;
    append(
        &mut c,
        "m1",
        W::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter()),
        }),
    )
    .await
    .unwrap();
    let used = upload(&mut c, "2026年部门预算".as_bytes()).await;
    append(&mut c, "p1", published("budget-2026", used.clone()))
        .await
        .unwrap();
    let orphan = upload(&mut c, "从未公开的草稿".as_bytes()).await;
    let store = gongkai_store::DataDir::open(node.data())
        .unwrap()
        .content()
        .unwrap();
    let digest = |c: &pb::ContentRef| Hash::from_slice(&c.digest).unwrap();
    assert!(store.contains(&digest(&orphan)).unwrap());
    let mut gone = false;
    for _ in 0..200 {
        if !store.contains(&digest(&orphan)).unwrap() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gone, "the orphan upload was collected");
    assert!(
        store.contains(&digest(&used)).unwrap(),
        "published content stays"
    );
    // Publishing the collected upload now fails with a clear reason.
    let e = append(&mut c, "p2", published("draft", orphan))
        .await
        .unwrap_err();
    assert!(e.message().contains("upload it first"), "{}", e.message());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_without_a_credential_is_refused_before_its_body_is_read() {
    let mut node = TestNode::create().await;
    let url = node.url.clone();
    let malformed: &[u8] = &[0xff, 0xff, 0xff];
    let oversized = vec![0x0a; 70_000];
    for path in [
        "/gongkai.v1.DisclosureNode/Append",
        "/gongkai.v1.DisclosureNode/AppendBatch",
    ] {
        // Anonymous: refused from the headers. Decoding first answered
        // INVALID_ARGUMENT and RESOURCE_EXHAUSTED: the body was read.
        for body in [malformed, &oversized[..]] {
            let (code, m) = raw_unary_as(&url, path, body, None).await;
            assert_eq!(code, Code::Unauthenticated, "{path}: {m}");
            let (code, m) = raw_unary_as(&url, path, body, Some("not-the-token")).await;
            assert_eq!(code, Code::PermissionDenied, "{path}: {m}");
        }
        // With the credential the body is read (and judged).
        let (code, _) = raw_unary(&url, path, malformed).await;
        assert_eq!(code, Code::InvalidArgument, "{path}");
    }
    // Reads stay anonymous: read and answered (here: no origin given).
    let (code, m) = raw_unary_as(&url, "/gongkai.v1.DisclosureNode/GetStatus", &[], None).await;
    assert_eq!(code, Code::InvalidArgument, "{m}");
    assert!(m.contains("origin"), "{m}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let mut node = TestNode::create().await;
    node.stop().await;
    let mut cfg = config(node.dir.path());
    cfg.limits.max_connections = 3;
    node.start_with(cfg).await.unwrap();
    let addr = node.url.trim_start_matches("http://").to_owned();
    // Three idle connections that never speak (a slow-loris client).
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = || async {
        let mut c = DisclosureNodeClient::connect(node.url.clone()).await?;
        c.get_status(v1::GetStatusRequest {
            origin: ORIGIN.into(),
        })
        .await
        .map_err(Into::into)
        .map(|_| ())
    };
    // A fourth is not served while they are open...
    let r: Result<Result<(), Box<dyn std::error::Error + Send + Sync>>, _> =
        tokio::time::timeout(Duration::from_secs(2), status()).await;
    assert!(r.is_err(), "served past the cap: {r:?}");
    // ...and is as soon as one of them goes.
    idle.pop();
    let r = tokio::time::timeout(Duration::from_secs(10), status()).await;
    assert!(matches!(r, Ok(Ok(()))), "{r:?}");
    drop(idle);
    node.stop().await;
}
