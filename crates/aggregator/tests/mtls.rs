//! Replication over mutual TLS: a node pushes with a client certificate
//! from the county CA whose URI SAN names its origin; the same
//! certificate cannot push another origin, and a certificate from another
//! CA is refused by TLS itself.

use std::path::Path;
use std::time::Duration;

use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::{Cosigner, Verifiers};
use gongkai_core::types::{KeyName, Origin};
use gongkai_proto::v1;
use gongkai_proto::{CountyClient, DisclosureNodeClient};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const COUNTY: &str = "gongkai.example/510122/county";
const WITNESS: &str = "gongkai.example/510122/county-witness";

fn origin(n: usize) -> String {
    format!("gongkai.example/510122/dept{n}")
}

fn dept_key(n: usize) -> SigningKey {
    SigningKey::from_seed([n as u8 + 1; 32])
}

struct Pem {
    cert: String,
    key: String,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    dns: &[&str],
    uri: Option<&str>,
    usage: ExtendedKeyUsagePurpose,
) -> Pem {
    let mut params =
        CertificateParams::new(dns.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    if let Some(u) = uri {
        params
            .subject_alt_names
            .push(SanType::URI(u.try_into().unwrap()));
    }
    params.distinguished_name.push(DnType::CommonName, "leaf");
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

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn client(url: &str, ca: &str, id: &Pem) -> CountyClient<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(&id.cert, &id.key))
        .domain_name("localhost");
    CountyClient::new(
        Endpoint::from_shared(url.to_owned())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_lazy(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_over_mutual_tls_are_bound_to_one_origin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = new_ca("county CA");
    let other_ca = new_ca("unrelated CA");
    let server = leaf(
        &ca,
        &["localhost"],
        None,
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let push0 = leaf(
        &ca,
        &[],
        Some(&format!("urn:gongkai:push:{}", origin(0))),
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let stranger = leaf(
        &other_ca,
        &[],
        Some(&format!("urn:gongkai:push:{}", origin(0))),
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let ca_pem = ca.pem();
    let ca_path = write(d, "ca.crt", &ca_pem);
    let mut text = format!(
        "origin = \"{COUNTY}\"\nlog_key = \"unused\"\nwitness_key = \"unused\"\ndata_dir = {:?}\n\
         [tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
        d.join("county"),
        write(d, "server.crt", &server.cert),
        write(d, "server.key", &server.key),
        ca_path
    );
    for n in 0..2 {
        let vkey = Checkpoint::log_verifier_key(
            &Origin::new(&origin(n)).unwrap(),
            &dept_key(n).public_key(),
        );
        text.push_str(&format!(
            "[[departments]]\norigin = \"{}\"\nvkey = \"{vkey}\"\n",
            origin(n)
        ));
    }
    let config = gongkai_aggregator::config::CountyConfig::from_toml(&text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("https://localhost:{port}");
    let (stop, rx) = oneshot::channel::<()>();
    let witness = SigningKey::from_seed([200; 32]);
    let county = tokio::spawn(gongkai_aggregator::run(
        config,
        gongkai_aggregator::Keys {
            log: (
                KeyName::new(COUNTY).unwrap(),
                SigningKey::from_seed([100; 32]),
            ),
            witness: (KeyName::new(WITNESS).unwrap(), witness.clone()),
        },
        listener,
        async {
            let _ = rx.await;
        },
    ));

    // A node replicating with its certificate.
    let node_dir = d.join("node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let witness_vkey = Cosigner::new(KeyName::new(WITNESS).unwrap(), witness).verifier_key();
    let node_text = format!(
        "origin = \"{}\"\ndepartment = \"某某县局\"\ndivision_code = \"510122\"\ndata_dir = {:?}\n\
         key = {:?}\nplaintext = true\nfree_space_reserve = 1048576\n\
         [county]\naddress = \"{url}\"\nca = {:?}\nclient_cert = {:?}\nclient_key = {:?}\n\
         witness_vkey = \"{witness_vkey}\"\ninterval_ms = 200\nmin_backoff_ms = 50\nmax_backoff_ms = 500\n",
        origin(0),
        node_dir.join("data"),
        node_dir.join("k"),
        ca_path,
        write(d, "push0.crt", &push0.cert),
        write(d, "push0.key", &push0.key),
    );
    let node_config = gongkai_node::config::NodeConfig::from_toml(&node_text).unwrap();
    gongkai_node::init(&node_config, &dept_key(0)).unwrap();
    let node_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node_url = format!("http://{}", node_listener.local_addr().unwrap());
    let (node_stop, node_rx) = oneshot::channel::<()>();
    let node = tokio::spawn(gongkai_node::run(
        node_config,
        dept_key(0),
        node_listener,
        async {
            let _ = node_rx.await;
        },
    ));

    let mut c = client(&url, &ca_pem, &push0);
    let mut cosigned = None;
    for _ in 0..600 {
        if let Ok(s) = c
            .get_mirror_state(v1::GetMirrorStateRequest { origin: origin(0) })
            .await
            && s.get_ref().cosigned_size >= 1
        {
            cosigned = Some(s.into_inner());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = cosigned.expect("the node's genesis reached the county over mTLS");
    SignedCheckpoint::parse(&s.cosigned_checkpoint)
        .unwrap()
        .verify(
            &Checkpoint::log_verifier_key(
                &Origin::new(&origin(0)).unwrap(),
                &dept_key(0).public_key(),
            ),
            &Verifiers::from(witness_vkey),
            1,
        )
        .unwrap();
    let mut n = DisclosureNodeClient::connect(node_url).await.unwrap();
    let mut st = v1::GetStatusResponse::default();
    for _ in 0..200 {
        st = n
            .get_status(v1::GetStatusRequest { origin: origin(0) })
            .await
            .unwrap()
            .into_inner();
        if st.cosigned_size == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st.cosigned_size, 1);

    // The same certificate may not push another origin.
    let e = c
        .push(v1::PushRequest {
            origin: origin(1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    assert!(e.message().contains(&origin(0)), "{}", e.message());
    // A certificate from another CA does not even get a TLS session.
    let mut s = client(&url, &ca_pem, &stranger);
    let e = s
        .push(v1::PushRequest {
            origin: origin(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    assert_ne!(e.code(), Code::InvalidArgument);

    let _ = node_stop.send(());
    node.await.unwrap().unwrap();
    let _ = stop.send(());
    county.await.unwrap().unwrap();
}
