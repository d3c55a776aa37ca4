//! A real department log (the node's own sequencer, journal, sled and
//! content store on disk) with a realistic sample, cosigned by a test county
//! witness, served by the portal on real sockets (port 0).

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::date::Date;
use gongkai_core::event::{Kind, pb};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::{Cosigner, KeyType, VerifierKey};
use gongkai_core::types::{ContentRef, KeyName, Origin};
use gongkai_node::log::{Log, OpenOptions, WriteJob};
use gongkai_portal::{CountyInfo, DepartmentInfo, EvidenceInfo, LogRead, PortalConfig, Source};
use gongkai_store::ContentStore;

pub const ORIGIN: &str = "gongkai.example/510122/finance";
pub const WITNESS: &str = "gongkai.example/510122/county";

pub struct County {
    pub log: Arc<Log>,
    pub vkey: String,
    pub witness_vkey: String,
    pub evidence: Vec<EvidenceInfo>,
}

impl Source for County {
    fn county(&self) -> CountyInfo {
        CountyInfo {
            name: "某某县".into(),
            origin: WITNESS.into(),
            witnesses: vec![self.witness_vkey.clone()],
            quorum: 1,
            checkpoint: None,
            independent: Vec::new(),
        }
    }
    fn departments(&self) -> Vec<DepartmentInfo> {
        let size = self.log.size();
        let cosigned = self.log.cosigned().map_or(0, |(s, _)| s);
        vec![DepartmentInfo {
            origin: ORIGIN.into(),
            name: "某某县财政局".into(),
            vkeys: vec![self.vkey.clone()],
            size,
            cosigned_size: cosigned,
            cosigned_ms: 1_780_000_000_000,
            evidence: self.evidence.len(),
            alerts: Vec::new(),
        }]
    }
    fn log(&self, origin: &str) -> Option<Arc<dyn LogRead>> {
        (origin == ORIGIN).then(|| Arc::clone(self.log.view()) as Arc<dyn LogRead>)
    }
    fn evidence(&self) -> Vec<EvidenceInfo> {
        self.evidence.clone()
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub county: Arc<County>,
    pub pages: SocketAddr,
    pub content: SocketAddr,
    pub today: Date,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub runtime: tokio::runtime::Runtime,
    jobs: std::sync::mpsc::Sender<Option<WriteJob>>,
}

impl Fixture {
    /// Appends `n` more request events, signs a checkpoint of the new size
    /// and has the test witness cosign it, as the county would; returns the
    /// new size.
    pub fn grow(&self, n: usize) -> u64 {
        let kinds = (0..n)
            .map(|i| {
                Kind::RequestReceived(pb::RequestReceived {
                    applicant: pb::ApplicantCategory::NaturalPerson as i32,
                    request_id: format!("grow-{}-{i}", self.county.log.size()),
                    date_received: self.today.to_string(),
                    subject: "申请公开".into(),
                })
            })
            .collect();
        submit(&self.jobs, kinds);
        self.county.log.sign_checkpoint(&department_key()).unwrap();
        let (size, note) = self.county.log.checkpoint().unwrap();
        let mut signed = SignedCheckpoint::parse(&note).unwrap();
        signed.cosign(&witness(), 1_780_000_100).unwrap();
        self.county.log.set_cosigned(size, signed.to_string());
        size
    }

    /// Appends events of `kinds` (one group).
    pub fn append(&self, kinds: Vec<Kind>) {
        submit(&self.jobs, kinds);
    }

    /// Publishes `bytes` as item `item` of the budget matter; returns the
    /// content digest (hex).
    pub fn publish_document(&self, item: &str, bytes: &[u8]) -> String {
        let salt = [8u8; 32];
        let c = ContentRef::commit(&salt, bytes, "application/pdf").unwrap();
        self.county
            .log
            .content()
            .put(c.digest(), &salt, bytes)
            .unwrap();
        let msg = gongkai_core::event::content_message(&c);
        submit(
            &self.jobs,
            vec![published(item, "budget", item, msg, self.today)],
        );
        c.digest().to_hex()
    }
}

fn department_key() -> SigningKey {
    SigningKey::from_seed([1; 32])
}

fn witness() -> Cosigner {
    Cosigner::new(
        KeyName::new(WITNESS).unwrap(),
        SigningKey::from_seed([9; 32]),
    )
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.jobs.send(None);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn submit(jobs: &std::sync::mpsc::Sender<Option<WriteJob>>, kinds: Vec<Kind>) {
    let (reply, rx) = tokio::sync::oneshot::channel();
    jobs.send(Some(WriteJob {
        key: None,
        fingerprint: gongkai_core::Hash::ZERO,
        kinds,
        reply,
    }))
    .unwrap();
    rx.blocking_recv().unwrap().unwrap();
}

fn put(content: &ContentStore, text: &str, media: &str) -> pb::ContentRef {
    let salt = [7u8; 32];
    let c = ContentRef::commit(&salt, text.as_bytes(), media).unwrap();
    content.put(c.digest(), &salt, text.as_bytes()).unwrap();
    gongkai_core::event::content_message(&c)
}

fn matter(category: &str, name: &str, days: u32, group: Option<&str>) -> pb::Matter {
    pb::Matter {
        category: category.into(),
        level1: category.into(),
        level2: name.into(),
        elements: vec!["全文".into()],
        legal_basis: "《中华人民共和国政府信息公开条例》第二十条".into(),
        deadline_working_days: days,
        responsible_body: "某某县财政局".into(),
        channels: vec!["政府网站".into()],
        audience: if group.is_some() {
            pb::Audience::Group as i32
        } else {
            pb::Audience::Public as i32
        },
        audience_group: group.unwrap_or_default().into(),
        mode: pb::DisclosureMode::Proactive as i32,
        ..Default::default()
    }
}

fn published(item: &str, matter: &str, title: &str, content: pb::ContentRef, formed: Date) -> Kind {
    Kind::Published(pb::Published {
        item_id: item.into(),
        matter_id: matter.into(),
        title: title.into(),
        content: Some(content),
        date_formed: formed.to_string(),
        legal_basis: "《预算法》第十四条".into(),
        ..Default::default()
    })
}

/// Builds the sample log and serves the portal.
pub fn start() -> Fixture {
    start_with_bucket(None)
}

/// As [`start`], the portal redirecting to `bucket` what it holds.
pub fn start_with_bucket(bucket: Option<gongkai_portal::BucketRedirect>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::new(ORIGIN).unwrap();
    let key = department_key();
    let key_path = dir.path().join("finance.key");
    let data = dir.path().join("data");
    let opts = OpenOptions {
        origin: &origin,
        data_dir: &data,
        key_path: &key_path,
        key: &key,
        reserve_bytes: 1 << 20,
        cache_bytes: 8 << 20,
        upload_grace_ms: 7 * 24 * 3_600_000,
    };
    Log::create(&opts, "某某县财政局", "510122").unwrap();
    let (log, jobs, _thread) = gongkai_node::log::start(&opts).unwrap();
    let today = gongkai_portal::model::today().unwrap();
    let days_ago = |n: i64| today.add_days(-n).unwrap();

    submit(
        &jobs,
        vec![
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "budget".into(),
                matter: Some(matter("财政预决算", "部门预算", 20, None)),
            }),
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "dibao".into(),
                matter: Some(matter("社会救助", "低保发放名单", 20, Some("某某村村民"))),
            }),
        ],
    );
    let c1 = put(log.content(), "2026年部门预算", "text/plain");
    let c1b = put(log.content(), "2026年部门预算（更正）", "text/plain");
    let c2 = put(
        log.content(),
        "<html><script>alert(1)</script></html>",
        "text/html",
    );
    let c3 = put(log.content(), "张三 李四 王五", "text/plain");
    let c4 = put(log.content(), "旧决算", "text/plain");
    let c5 = put(log.content(), "含个人信息的附件", "text/plain");
    submit(
        &jobs,
        vec![
            published("budget-2026", "budget", "2026年部门预算", c1, today),
            published(
                "late-notice",
                "budget",
                "<b>迟到的</b>预算说明",
                c2,
                days_ago(120),
            ),
            published("dibao-2026-10", "dibao", "2026年10月低保名单", c3, today),
            published("accounts-2025", "budget", "2025年决算", c4, today),
            published("attachment", "budget", "附件", c5.clone(), today),
        ],
    );
    submit(
        &jobs,
        vec![
            Kind::Amended(pb::Amended {
                quantity: 0,
                item_id: "budget-2026".into(),
                title: "2026年部门预算（更正）".into(),
                content: Some(c1b),
                date_changed: today.to_string(),
                reason: "表3数据有误".into(),
            }),
            Kind::Withdrawn(pb::Withdrawn {
                item_id: "accounts-2025".into(),
                reason: "误发".into(),
                legal_basis: "《政府信息公开条例》第十四条".into(),
            }),
            Kind::Redacted(pb::Redacted {
                item_id: "attachment".into(),
                content_digest: c5.digest.clone(),
                reason: "含个人信息".into(),
                legal_basis: "《个人信息保护法》".into(),
            }),
            Kind::RequestReceived(pb::RequestReceived {
                applicant: pb::ApplicantCategory::NaturalPerson as i32,
                request_id: "req-1".into(),
                date_received: days_ago(100).to_string(),
                subject: "请求公开2025年决算".into(),
            }),
        ],
    );
    // Removing redacted content is the sequencer's job; wait for it.
    log.sign_checkpoint(&key).unwrap();
    let (size, note) = log.checkpoint().unwrap();
    let witness = witness();
    let mut signed = SignedCheckpoint::parse(&note).unwrap();
    signed.cosign(&witness, 1_780_000_000).unwrap();
    let vkey = VerifierKey::new(
        KeyName::new(ORIGIN).unwrap(),
        KeyType::Ed25519,
        key.public_key(),
    );
    log.set_cosigned(size, signed.to_string());
    let county = Arc::new(County {
        log,
        vkey: vkey.to_string(),
        witness_vkey: witness.verifier_key().to_string(),
        evidence: Vec::new(),
    });
    serve(dir, county, today, jobs, bucket)
}

fn serve(
    dir: tempfile::TempDir,
    county: Arc<County>,
    today: Date,
    jobs: std::sync::mpsc::Sender<Option<WriteJob>>,
    bucket: Option<gongkai_portal::BucketRedirect>,
) -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (pages, content) = runtime.block_on(async {
        let pages = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let content = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pa, ca) = (pages.local_addr().unwrap(), content.local_addr().unwrap());
        let config = PortalConfig {
            content_base: format!("http://{ca}"),
            rate_per_sec: 0,
            bucket,
            ..PortalConfig::default()
        };
        let source: Arc<dyn Source> = county.clone();
        let shared = futures_shutdown(stopped);
        tokio::spawn(gongkai_portal::serve(
            pages,
            gongkai_portal::router(Arc::clone(&source), config.clone()),
            shared.clone().wait(),
        ));
        tokio::spawn(gongkai_portal::serve(
            content,
            gongkai_portal::content_router(source, config),
            shared.wait(),
        ));
        (pa, ca)
    });
    Fixture {
        dir,
        county,
        pages,
        content,
        today,
        stop: Some(stop),
        runtime,
        jobs,
    }
}

/// One shutdown signal for several servers.
#[derive(Clone)]
struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    async fn wait(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

fn futures_shutdown(stopped: tokio::sync::oneshot::Receiver<()>) -> Shutdown {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = stopped.await;
        let _ = tx.send(true);
    });
    Shutdown(rx)
}

/// A response: status, headers (lower-case names), body.
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// A plain HTTP/1.1 GET over a real socket.
pub fn get(addr: SocketAddr, path: &str) -> Http {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Http {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let len = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if len == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + len]);
        b = &b[nl + 2 + len + 2..];
    }
}
