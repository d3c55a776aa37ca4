//! Transport security and shutdown, end to end over real gRPC on a real
//! socket (port 0) with TLS: certificates made at test time by `rcgen` (a
//! county CA, a server certificate for `localhost`/127.0.0.1, a client
//! certificate from that CA and one from an unrelated CA).
//!
//! Reads are public over TLS; writes need a bearer token or a client
//! certificate verified against `[tls] client_ca`; a certificate from any
//! other CA fails the handshake; plaintext clients get nowhere; a config
//! without TLS is refused unless it says `plaintext = true`. Shutdown ends
//! open `Follow` streams, returns promptly, and loses no acknowledged write.

use std::path::Path;
use std::time::Duration;

use gongkai_core::event::pb;
use gongkai_core::keys::SigningKey;
use gongkai_node::config::NodeConfig;
use gongkai_proto::DisclosureNodeClient;
use gongkai_proto::v1::{self, write_event::Kind as W};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request};

const ORIGIN: &str = "gongkai.example/510122/finance";
const TOKEN: &str = "clerk-secret-token";
/// Bound on anything that should finish at once; only a hang detector.
const HANG: Duration = Duration::from_secs(30);

/// A PEM certificate and its PEM private key.
struct Pem {
    cert: String,
    key: String,
}

impl Pem {
    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert, &self.key)
    }
}

/// The certificates of one test run.
struct Pki {
    /// The county CA: signs the server's and the good client's certificates.
    ca: String,
    server: Pem,
    /// A writer of this node (`urn:gongkai:write:<ORIGIN>`).
    client: Pem,
    /// A client certificate from an unrelated CA.
    stranger: Pem,
    /// County-CA certificates that may not write here: a writer of another
    /// department, this department's push certificate, a reader.
    other_dept: Pem,
    push: Pem,
    reader: Pem,
}

/// A client certificate of `issuer` with the URI names `uris`.
fn client_leaf(issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str, uris: &[String]) -> Pem {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = uris
        .iter()
        .map(|u| rcgen::SanType::URI(u.clone().try_into().unwrap()))
        .collect();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Pem {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().map_or("client", |s| s));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn pki() -> Pki {
    let county = new_ca("county CA");
    let other = new_ca("unrelated CA");
    Pki {
        ca: county.pem(),
        server: leaf(
            &county,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: client_leaf(&county, "clerk", &[format!("urn:gongkai:write:{ORIGIN}")]),
        stranger: client_leaf(&other, "clerk", &[format!("urn:gongkai:write:{ORIGIN}")]),
        other_dept: client_leaf(
            &county,
            "education-oa",
            &["urn:gongkai:write:gongkai.example/510122/education".to_owned()],
        ),
        push: client_leaf(&county, ORIGIN, &[format!("urn:gongkai:push:{ORIGIN}")]),
        reader: client_leaf(
            &county,
            "inspection",
            &[format!("urn:gongkai:read:{ORIGIN}")],
        ),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Config text for a node in `dir`; `transport` is the TLS (or plaintext)
/// part, placed before the tables.
fn config_text(dir: &Path, transport: &str) -> String {
    let hash = hex(&Sha256::digest(TOKEN.as_bytes()));
    format!(
        r#"
origin = "{ORIGIN}"
department = "某某县财政局"
division_code = "510122"
data_dir = "{}"
key = "{}"
checkpoint_interval_ms = 50
free_space_reserve = 1048576
{transport}
[[writers]]
name = "clerk"
token_sha256 = "{hash}"
"#,
        dir.join("data").display(),
        dir.join("finance.key").display()
    )
}

/// A TLS node with `client_ca`, writing its certificates into `dir`.
fn tls_config(dir: &Path, pki: &Pki) -> NodeConfig {
    std::fs::write(dir.join("node.crt"), &pki.server.cert).unwrap();
    std::fs::write(dir.join("node.key"), &pki.server.key).unwrap();
    std::fs::write(dir.join("county-ca.crt"), &pki.ca).unwrap();
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        dir.join("node.crt").display(),
        dir.join("node.key").display(),
        dir.join("county-ca.crt").display()
    );
    NodeConfig::from_toml(&config_text(dir, &tls)).unwrap()
}

struct TestNode {
    dir: tempfile::TempDir,
    pki: Pki,
    key: SigningKey,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), gongkai_node::NodeError>>>,
    port: u16,
}

impl TestNode {
    async fn create() -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki();
        let key = SigningKey::from_seed([42; 32]);
        gongkai_node::init(&tls_config(dir.path(), &pki), &key).unwrap();
        let mut node = TestNode {
            dir,
            pki,
            key,
            stop: None,
            task: None,
            port: 0,
        };
        node.start().await;
        node
    }

    async fn start(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.port = listener.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel::<()>();
        let cfg = tls_config(self.dir.path(), &self.pki);
        let task = tokio::spawn(gongkai_node::run(cfg, self.key.clone(), listener, async {
            let _ = rx.await;
        }));
        self.stop = Some(tx);
        self.task = Some(task);
        for _ in 0..200 {
            assert!(
                !self.task.as_ref().unwrap().is_finished(),
                "node stopped while starting"
            );
            if let Ok(mut c) = self.try_client(self.tls()).await
                && c.get_status(status_req()).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("node did not start");
    }

    /// Signals shutdown and returns what `run` returned, within [`HANG`].
    async fn stop(&mut self) -> Result<(), gongkai_node::NodeError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let task = self.task.take().expect("node is running");
        timeout(HANG, task)
            .await
            .expect("run did not return after shutdown")
            .unwrap()
    }

    /// TLS trusting the county CA, for `localhost`, no client certificate.
    fn tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.pki.ca))
            .domain_name("localhost")
    }

    async fn try_client(
        &self,
        tls: ClientTlsConfig,
    ) -> Result<DisclosureNodeClient<Channel>, tonic::transport::Error> {
        let channel = Channel::from_shared(format!("https://localhost:{}", self.port))
            .unwrap()
            .tls_config(tls)?
            .connect_timeout(HANG)
            .timeout(HANG)
            .connect()
            .await?;
        Ok(DisclosureNodeClient::new(channel))
    }

    async fn client(&self, tls: ClientTlsConfig) -> DisclosureNodeClient<Channel> {
        self.try_client(tls).await.unwrap()
    }
}

fn status_req() -> v1::GetStatusRequest {
    v1::GetStatusRequest {
        origin: ORIGIN.into(),
    }
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

/// An append defining matter `id`, with no credential attached.
fn define(id: &str) -> v1::AppendRequest {
    v1::AppendRequest {
        idempotency_key: format!("define-{id}"),
        event: Some(v1::WriteEvent {
            kind: Some(W::MatterDefined(pb::MatterDefined {
                matter_id: id.into(),
                matter: Some(matter()),
            })),
        }),
    }
}

fn with_token<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

async fn size(c: &mut DisclosureNodeClient<Channel>) -> u64 {
    c.get_status(status_req()).await.unwrap().into_inner().size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_by_token_or_county_certificate() {
    let mut node = TestNode::create().await;

    // No client certificate: reads are public, writes need a credential.
    let mut anon = node.client(node.tls()).await;
    assert_eq!(size(&mut anon).await, 1, "just the Genesis entry");
    let cp = anon
        .get_checkpoint(v1::GetCheckpointRequest {
            origin: ORIGIN.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!cp.checkpoint.is_empty());
    let err = anon.append(define("anon")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert_eq!(size(&mut anon).await, 1);

    // Same connection kind, with a bearer token: the write is accepted.
    let r = anon.append(with_token(define("by-token"))).await.unwrap();
    assert_eq!(r.into_inner().receipt.unwrap().index, 1);

    // A county-CA certificate naming this log as a writer is a credential
    // by itself.
    let mut clerk = node
        .client(node.tls().identity(node.pki.client.identity()))
        .await;
    let r = clerk.append(define("by-cert")).await.unwrap();
    assert_eq!(r.into_inner().receipt.unwrap().index, 2);
    assert_eq!(size(&mut clerk).await, 3);

    // Certificates of the same CA bound to another department or another
    // role may not write (they used to: any county-CA certificate could).
    for (pem, who) in [
        (&node.pki.other_dept, "another department's writer"),
        (&node.pki.push, "this department's push certificate"),
        (&node.pki.reader, "a reader of restricted content"),
    ] {
        let mut c = node.client(node.tls().identity(pem.identity())).await;
        let err = c.append(define("not-mine")).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
        assert!(err.message().contains("may not write to"), "{who}: {err:?}");
    }
    assert_eq!(size(&mut clerk).await, 3, "nothing written by them");

    // A certificate from an unrelated CA fails the handshake: neither reads
    // nor writes get through (with TLS 1.3 the client may only learn of it
    // on its first request, so accept failure at either point).
    let stranger = node.tls().identity(node.pki.stranger.identity());
    match node.try_client(stranger).await {
        Err(_) => {}
        Ok(mut c) => {
            let read = c.get_status(status_req()).await;
            assert!(read.is_err(), "read over a refused handshake: {read:?}");
            let write = c.append(define("stranger")).await;
            assert!(write.is_err(), "write over a refused handshake: {write:?}");
        }
    }
    assert_eq!(size(&mut anon).await, 3, "the stranger wrote nothing");

    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_client_gets_nowhere() {
    let mut node = TestNode::create().await;
    let url = format!("http://127.0.0.1:{}", node.port);
    let endpoint = Channel::from_shared(url)
        .unwrap()
        .connect_timeout(HANG)
        .timeout(HANG);
    let outcome = timeout(HANG, async {
        let mut c = DisclosureNodeClient::new(endpoint.connect().await?);
        let read = c.get_status(status_req()).await;
        let write = c.append(with_token(define("plain"))).await;
        Ok::<_, tonic::transport::Error>((read, write))
    })
    .await
    .expect("a plaintext client should fail, not hang");
    if let Ok((read, write)) = outcome {
        assert!(read.is_err(), "plaintext read answered: {read:?}");
        assert!(write.is_err(), "plaintext write answered: {write:?}");
    }
    let mut c = node.client(node.tls()).await;
    assert_eq!(size(&mut c).await, 1, "nothing written over plaintext");
    node.stop().await.unwrap();
}

#[test]
fn config_without_tls_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = NodeConfig::from_toml(&config_text(dir.path(), "")).unwrap_err();
    assert!(err.contains("tls") || err.contains("TLS"), "{err}");

    let explicit =
        NodeConfig::from_toml(&config_text(dir.path(), "plaintext = false")).unwrap_err();
    assert!(explicit.to_lowercase().contains("tls"), "{explicit}");

    let ok = NodeConfig::from_toml(&config_text(dir.path(), "plaintext = true")).unwrap();
    assert!(ok.plaintext && ok.tls.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_follow_streams_and_loses_no_acknowledged_write() {
    let mut node = TestNode::create().await;
    let mut c = node.client(node.tls()).await;
    c.append(with_token(define("before"))).await.unwrap();

    // A follower that has caught up and waits for more.
    let mut follow = c
        .follow(v1::FollowRequest {
            origin: ORIGIN.into(),
            start: 0,
        })
        .await
        .unwrap()
        .into_inner();
    for i in 0..2 {
        let m = timeout(HANG, follow.message()).await.unwrap().unwrap();
        assert_eq!(m.unwrap().index, i);
    }

    // Writes from several connections, in flight as shutdown is signalled.
    let mut writers = Vec::new();
    for conn in 0..4 {
        let w = node
            .client(node.tls().identity(node.pki.client.identity()))
            .await;
        for n in 0..8 {
            let mut w = w.clone();
            let id = format!("q{conn}-{n}");
            writers.push(tokio::spawn(async move {
                let r = w.append(define(&id)).await;
                (id, r.map(tonic::Response::into_inner))
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    node.stop().await.expect("a graceful shutdown returns Ok");

    // The follow stream ended (cleanly or with an error), rather than hang.
    let mut followed = 2;
    loop {
        match timeout(HANG, follow.message()).await {
            Err(_) => panic!("follow stream still open after shutdown"),
            Ok(Ok(Some(m))) => {
                assert_eq!(m.index, followed);
                followed += 1;
            }
            Ok(Ok(None) | Err(_)) => break,
        }
    }

    // Every write was answered, one way or the other.
    let mut acked = Vec::new();
    for w in writers {
        let (id, r) = timeout(HANG, w)
            .await
            .expect("write never answered")
            .unwrap();
        match r {
            Ok(resp) => acked.push((id, resp.receipt.unwrap())),
            Err(e) => assert!(
                matches!(
                    e.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled
                ),
                "{id}: {e:?}"
            ),
        }
    }

    // After a restart every acknowledged write is there, byte for byte.
    node.start().await;
    let mut c = node.client(node.tls()).await;
    let size = size(&mut c).await;
    assert!(size >= 2 + acked.len() as u64);
    for (id, receipt) in &acked {
        let got = c
            .get_entries(v1::GetEntriesRequest {
                origin: ORIGIN.into(),
                start: receipt.index,
                limit: 1,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.entries, vec![receipt.entry.clone()], "{id} lost");
    }
    eprintln!(
        "{} of 32 writes acknowledged before shutdown; {followed} entries followed; size {size}",
        acked.len()
    );
    node.stop().await.unwrap();
}

/// A follower that stops reading while it has a large backlog must not keep
/// `run` from returning after shutdown: its task watches the shutdown
/// signal while it waits to send, and the server drops connections whose
/// responses have not ended within the shutdown grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_stalled_follower() {
    let mut node = TestNode::create().await;
    let mut c = node.client(node.tls()).await;
    for b in 0..12 {
        let events = (0..1000)
            .map(|i| v1::WriteEvent {
                kind: Some(W::MatterDefined(pb::MatterDefined {
                    matter_id: format!("m{b}-{i}"),
                    matter: Some(matter()),
                })),
            })
            .collect();
        c.append_batch(with_token(v1::AppendBatchRequest {
            idempotency_key: format!("b{b}"),
            events,
        }))
        .await
        .unwrap();
    }
    let _unread = c
        .follow(v1::FollowRequest {
            origin: ORIGIN.into(),
            start: 0,
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.stop().await.unwrap();
}
