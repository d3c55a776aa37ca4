//! Every page, JSON endpoint, static log file and content download of the
//! portal over real HTTP, including bad parameters and 404s.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{ORIGIN, get};
use std::time::Duration;

use gongkai_core::Hash;
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::hash::leaf_hash;
use gongkai_core::merkle;
use gongkai_core::tile::{decode_bundle, decode_tile};

const SLUG: &str = "gongkai.example~510122~finance";

fn calendar_covers_today(f: &common::Fixture) -> bool {
    // Lateness needs the working-day table for this year (shipped: 2024–2026).
    let cal = WorkCalendar::shipped();
    cal.covers(f.today.year()) && cal.covers(f.today.year() - 1)
}

#[test]
fn pages_render_with_security_headers_in_both_languages() {
    let f = common::start();
    let home = get(f.pages, "/");
    assert_eq!(home.status, 200);
    assert!(home.text().contains("某某县财政局"), "{}", home.text());
    assert!(home.text().contains("政务公开门户"));
    // Atom feeds for watchers (issue 20, item 9), linked from the pages.
    assert!(
        t_has(&home.text(), "href=\"/feed.atom\"") && t_has(&home.text(), "href=\"/alerts.atom\"")
    );
    for path in [
        "/feed.atom".to_owned(),
        "/alerts.atom".to_owned(),
        format!("/d/{SLUG}/feed.atom"),
    ] {
        let feed = get(f.pages, &path);
        assert_eq!(feed.status, 200, "{path}");
        assert_eq!(
            feed.header("content-type"),
            Some("application/atom+xml; charset=utf-8")
        );
        let x = feed.text();
        assert!(
            x.starts_with("<?xml") && x.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\">"),
            "{x}"
        );
        assert_eq!(x.matches("<entry>").count(), x.matches("</entry>").count());
        assert!(x.contains("<entry>"), "{path} has entries: {x}");
    }
    let alerts = get(f.pages, "/alerts.atom").text();
    assert!(
        alerts.contains("撤回 · ") && alerts.contains("更正 · "),
        "{alerts}"
    );
    // The newest publications, newest first (issue 20, item 3).
    let t = home.text();
    let latest = t
        .split("<h2>最新公开</h2>")
        .nth(1)
        .expect("a 最新公开 list on the home page");
    assert!(latest.contains(&format!("/d/{SLUG}/items/")), "{latest}");

    // The catalog: newest publication first, a total, messages for empty
    // results and an inverted date range.
    let catalog = get(f.pages, &format!("/d/{SLUG}/")).text();
    assert!(catalog.contains("共 "), "a total: {catalog}");
    let titles: Vec<&str> = catalog
        .split("class=\"items\"")
        .nth(1)
        .unwrap()
        .split(&format!("href=\"/d/{SLUG}/items/"))
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    let oldest = get(f.pages, &format!("/d/{SLUG}/?sort=oldest")).text();
    let first_oldest = oldest
        .split("class=\"items\"")
        .nth(1)
        .unwrap()
        .split(&format!("href=\"/d/{SLUG}/items/"))
        .nth(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .unwrap();
    assert_eq!(
        titles.last().copied(),
        Some(first_oldest),
        "oldest first reverses newest first: {titles:?}"
    );
    let none = get(
        f.pages,
        &format!("/d/{SLUG}/?q=%E6%97%A0%E6%AD%A4%E6%A0%87%E9%A2%98"),
    )
    .text();
    assert!(none.contains("没有符合条件的条目"), "{none}");
    let inverted = get(
        f.pages,
        &format!("/d/{SLUG}/?from=2026-12-01&to=2026-01-01"),
    )
    .text();
    assert!(inverted.contains("起始日期晚于截止日期"), "{inverted}");
    assert_eq!(get(f.pages, &format!("/d/{SLUG}/?page=0")).status, 400);
    // Annual reports exist for the years a log has lived through, no
    // others (each is a whole-log computation, one at a time).
    let year = gongkai_core::date::Date::from_unix_ms_cst(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    )
    .unwrap()
    .year();
    assert_eq!(
        get(f.pages, &format!("/d/{SLUG}/report/{year}")).status,
        200
    );
    assert_eq!(
        get(f.pages, &format!("/d/{SLUG}/report/{}", year + 1)).status,
        404
    );
    assert_eq!(get(f.pages, &format!("/d/{SLUG}/report/2001")).status, 404);
    assert_eq!(
        get(f.pages, &format!("/api/v1/logs/{SLUG}/report/{year}")).status,
        200
    );
    assert_eq!(
        get(f.pages, "/report/2001").status,
        200,
        "a county page with no department yet"
    );
    // Errors in the page's language (issue 20, item 4).
    let missing = get(f.pages, &format!("/d/{SLUG}/items/nope"));
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("没有这条信息：nope") && !missing.text().contains("no item"),
        "{}",
        missing.text()
    );
    let en = get(f.pages, &format!("/d/{SLUG}/items/nope?lang=en")).text();
    assert!(en.contains("no item nope"), "{en}");
    let bad = get(f.pages, &format!("/d/{SLUG}/?status=gone")).text();
    assert!(bad.contains("状态筛选的值无效"), "{bad}");
    assert!(
        get(f.pages, &format!("/d/{SLUG}/?page=9"))
            .text()
            .contains(&format!("/d/{SLUG}/items/")),
        "a page past the end shows the last page"
    );
    assert_eq!(get(f.pages, &format!("/d/{SLUG}/?sort=random")).status, 400);
    assert_eq!(
        home.header("content-security-policy"),
        Some(gongkai_portal::PAGE_CSP)
    );
    assert_eq!(home.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(home.header("x-frame-options"), Some("DENY"));
    let en = get(f.pages, "/?lang=en");
    assert!(en.text().contains("Disclosure portal"));
    assert!(
        en.text().contains(&format!("/d/{SLUG}/?lang=en")),
        "links keep the language"
    );

    let catalog = get(f.pages, &format!("/d/{SLUG}/"));
    assert_eq!(catalog.status, 200);
    let t = catalog.text();
    for s in [
        "部门预算",
        "低保发放名单",
        "某某村村民",
        "2026年部门预算（更正）",
        "2025年决算",
    ] {
        assert!(t.contains(s), "catalog lacks {s}");
    }
    let withdrawn = get(f.pages, &format!("/d/{SLUG}/?status=withdrawn")).text();
    assert!(withdrawn.contains("2025年决算"));
    assert!(!withdrawn.contains("2026年部门预算（更正）"));
    let search = get(f.pages, &format!("/d/{SLUG}/?q=%E5%86%B3%E7%AE%97")).text(); // 决算
    assert!(search.contains("2025年决算") && !search.contains("低保名单"));

    let item = get(f.pages, &format!("/d/{SLUG}/items/budget-2026"));
    assert_eq!(item.status, 200);
    let t = item.text();
    assert!(t.contains("表3数据有误"), "amendment reason shown");
    // History rows in words, not the format's names (issue 20, item 4).
    assert!(t.contains("发布：") && t.contains("更正："), "{t}");
    assert!(!t.contains("published:") && !t.contains("amended:"), "{t}");
    let en = get(f.pages, &format!("/d/{SLUG}/items/budget-2026?lang=en")).text();
    assert!(en.contains("amended："), "English keeps English words");
    let inspection = get(f.pages, "/inspection").text();
    assert!(
        inspection.contains("更正") && inspection.contains(&format!("/d/{SLUG}/items/budget-2026")),
        "inspection rows are translated and link the item"
    );
    assert!(t.contains("id=\"verify\""));
    assert!(
        t.contains("application/json"),
        "trust keys embedded as data"
    );
    assert!(
        t.contains(&f.county.vkey),
        "the page names the keys it verifies against"
    );

    // Untrusted titles are escaped, never markup.
    let late = get(f.pages, &format!("/d/{SLUG}/items/late-notice")).text();
    assert!(late.contains("&lt;b&gt;迟到的&lt;/b&gt;"), "{late}");
    assert!(!late.contains("<b>迟到的"));

    let withdrawn = get(f.pages, &format!("/d/{SLUG}/items/accounts-2025")).text();
    assert!(withdrawn.contains("误发") && withdrawn.contains("《政府信息公开条例》第十四条"));
    // A withdrawn item says so at the top, with why, and that withdrawn
    // content stays public (issue 20, item 5).
    let banner = withdrawn.find("本信息已撤回").expect("a withdrawn banner");
    assert!(
        banner < withdrawn.find("<dl").unwrap(),
        "the banner comes first"
    );
    assert!(withdrawn.contains("撤回不等于删除"));
    // An amended item links every version and shows what changed.
    let amended = get(f.pages, &format!("/d/{SLUG}/items/budget-2026")).text();
    assert!(
        amended.contains("第 1 版") && amended.contains("第 2 版"),
        "{amended}"
    );
    assert!(
        amended.contains("<del>") && amended.contains("<ins>"),
        "a text diff: {amended}"
    );
    let redacted = get(f.pages, &format!("/d/{SLUG}/items/attachment")).text();
    assert!(redacted.contains("含个人信息") && redacted.contains("该版本正文已依法删除"));
    let restricted = get(f.pages, &format!("/d/{SLUG}/items/dibao-2026-10")).text();
    assert!(restricted.contains("本事项仅向特定对象公开"));
    // ... and says how a resident obtains it (issue 20, item 6).
    assert!(
        restricted.contains("请通过") && restricted.contains("申请获取"),
        "{restricted}"
    );
    // Plain words, explained on a glossary page every page links to.
    assert!(
        restricted.contains("href=\"/glossary#digest\"") && !restricted.contains("BLAKE3-keyed")
    );
    for (lang, words) in [
        ("", ["台账记录", "内容摘要", "见证方"]),
        ("?lang=en", ["Log entry", "Content digest", "Witness"]),
    ] {
        let g = get(f.pages, &format!("/glossary{lang}"));
        assert_eq!(g.status, 200);
        let t = g.text();
        for w in words {
            assert!(t.contains(w), "glossary lacks {w}");
        }
        assert!(t.contains("id=\"digest\"") && t.contains("id=\"fingerprint\""));
    }
    assert!(
        !restricted.contains("class=\"download\""),
        "no download link for restricted content"
    );

    let requests = get(f.pages, &format!("/d/{SLUG}/requests"));
    assert_eq!(requests.status, 200);
    assert!(requests.text().contains("请求公开2025年决算"));
    let inspection = get(f.pages, "/inspection");
    assert_eq!(inspection.status, 200);
    let t = inspection.text();
    assert!(t.contains("误发") && t.contains("表3数据有误") && t.contains("含个人信息"));
    if calendar_covers_today(&f) {
        assert!(
            requests.text().contains("超期未答复"),
            "the request is 100 days old"
        );
        assert!(
            t.contains("&lt;b&gt;迟到的"),
            "a disclosure 120 days after formation is late"
        );
        assert!(t.contains("超期未答复"));
    }
}

#[test]
fn bad_parameters_and_unknown_things_get_clear_errors() {
    let f = common::start();
    for (path, status) in [
        ("/nope", 404),
        ("/d/gongkai.example~510122~unknown/", 404),
        (&format!("/d/{SLUG}/items/no-such-item") as &str, 404),
        (&format!("/d/{SLUG}/?status=bogus"), 400),
        (&format!("/d/{SLUG}/?from=2026-13-01"), 400),
        (&format!("/d/{SLUG}/?surprise=1"), 400),
        ("/inspection?from=2026-02-30", 400),
        ("/inspection?from=2026-05-01&to=2026-04-01", 400),
        ("/assets/../Cargo.toml", 404),
        ("/assets/nope.js", 404),
    ] {
        let r = get(f.pages, path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }
    for (path, status) in [
        (format!("/api/v1/logs/{SLUG}/item/nope"), 404),
        (format!("/api/v1/logs/{SLUG}/proof/nope"), 404),
        (format!("/api/v1/logs/{SLUG}/items?status=bogus"), 400),
        ("/api/v1/logs/nope/items".into(), 404),
        ("/api/v1/inspection?to=yesterday".into(), 400),
    ] {
        let r = get(f.pages, &path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{path}: JSON error body");
    }
}

#[test]
fn json_api_and_the_proof_bundle_verify_with_core() {
    let f = common::start();
    let county = get(f.pages, "/api/v1/county").json();
    assert_eq!(county["departments"][0]["origin"], ORIGIN);
    assert_eq!(county["county"]["witnesses"][0], f.county.witness_vkey);

    let amended = get(
        f.pages,
        &format!("/api/v1/logs/{SLUG}/items?status=amended"),
    )
    .json();
    let ids: Vec<&str> = amended["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["budget-2026"]);
    let matters = get(f.pages, &format!("/api/v1/logs/{SLUG}/matters")).json();
    assert_eq!(matters.as_array().unwrap().len(), 2);
    let requests = get(f.pages, &format!("/api/v1/logs/{SLUG}/requests")).json();
    assert_eq!(requests[0]["request_id"], "req-1");
    let item = get(f.pages, &format!("/api/v1/logs/{SLUG}/item/budget-2026")).json();
    assert_eq!(item["history"].as_array().unwrap().len(), 2);
    assert_eq!(item["history"][1]["reason"], "表3数据有误");

    // The proof bundle is FORMAT.md § 18's, and core's checker accepts it.
    let answer = get(f.pages, &format!("/api/v1/logs/{SLUG}/proof/budget-2026")).json();
    let bundle: gongkai_core::proof::ProofBundle =
        serde_json::from_value(answer["bundle"].clone()).unwrap();
    let log_key: gongkai_core::note::VerifierKey = f.county.vkey.parse().unwrap();
    let witness: gongkai_core::note::VerifierKey = f.county.witness_vkey.parse().unwrap();
    let proven = bundle
        .verify(&[log_key], &gongkai_core::note::Verifiers::from(witness), 1)
        .unwrap();
    assert_eq!(proven.events.len(), 2);
    // The links: the entry before each, included in the same tree.
    let cp = SignedCheckpoint::parse(&bundle.checkpoint).unwrap();
    let (size, root) = (cp.checkpoint().size, cp.checkpoint().root);
    let links = answer["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    for l in links {
        let index = l["index"].as_u64().unwrap() - 1;
        let entry = B64.decode(l["prev_entry"].as_str().unwrap()).unwrap();
        let proof: Vec<Hash> = l["prev_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Hash::from_slice(&B64.decode(p.as_str().unwrap()).unwrap()).unwrap())
            .collect();
        merkle::verify_inclusion(&leaf_hash(&entry), index, size, &proof, &root).unwrap();
    }
    let evidence = get(f.pages, "/api/v1/evidence").json();
    assert_eq!(evidence.as_array().unwrap().len(), 0);
    let inspection = get(f.pages, "/api/v1/inspection").json();
    assert_eq!(inspection["departments"][0]["origin"], ORIGIN);
}

#[test]
fn tiles_and_checkpoint_as_static_files() {
    let f = common::start();
    let cp = get(f.pages, &format!("/logs/{SLUG}/checkpoint"));
    assert_eq!(cp.status, 200);
    assert_eq!(cp.header("cache-control"), Some("public, max-age=5"));
    let signed = SignedCheckpoint::parse(&cp.text()).unwrap();
    let size = signed.checkpoint().size;
    assert!(size > 0 && size < 256);

    let bundle = get(f.pages, &format!("/logs/{SLUG}/tile/entries/000.p/{size}"));
    assert_eq!(bundle.status, 200);
    assert_eq!(
        bundle.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let entries = decode_bundle(&bundle.body, usize::try_from(size).unwrap()).unwrap();
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut tree = gongkai_core::merkle::TreeState::new();
    for l in &leaves {
        tree.append(*l);
    }
    assert_eq!(
        tree.root(),
        signed.checkpoint().root,
        "the bundle hashes to the checkpoint"
    );

    let tile = get(f.pages, &format!("/logs/{SLUG}/tile/0/000.p/{size}"));
    assert_eq!(tile.status, 200);
    assert_eq!(
        decode_tile(&tile.body, u16::try_from(size).unwrap()).unwrap(),
        leaves
    );

    for path in [
        format!("/logs/{SLUG}/tile/entries/000.p/{}", size + 1), // beyond the checkpoint
        format!("/logs/{SLUG}/tile/entries/000"),                // full tile not there yet
        format!("/logs/{SLUG}/tile/entries/0.p/1"),              // not canonical
        format!("/logs/{SLUG}/tile/9/000"),
        "/logs/nope/checkpoint".to_string(),
    ] {
        assert_eq!(get(f.pages, &path).status, 404, "{path}");
    }
}

/// A partial tile or bundle is published only at the right edge of the
/// tree of the published checkpoint, with exactly the edge's width
/// (FORMAT.md § 9.1, § 9.4): a partial of a tile that is full, or of
/// another width, is 404.
#[test]
fn partial_tiles_only_at_the_right_edge() {
    let f = common::start();
    let size = f.grow(300);
    let cp = get(f.pages, &format!("/logs/{SLUG}/checkpoint"));
    assert_eq!(
        SignedCheckpoint::parse(&cp.text())
            .unwrap()
            .checkpoint()
            .size,
        size
    );
    assert!(size > 256 + 2 && size < 512, "{size}");
    let edge = size - 256;
    for (path, status) in [
        // Level 0: tile 0 is full, tile 1 is the right edge.
        ("tile/0/000".to_owned(), 200),
        ("tile/0/000.p/5".to_owned(), 404),
        ("tile/0/000.p/255".to_owned(), 404),
        (format!("tile/0/001.p/{edge}"), 200),
        (format!("tile/0/001.p/{}", edge - 1), 404),
        (format!("tile/0/001.p/{}", edge + 1), 404),
        ("tile/0/001".to_owned(), 404),
        // Level 1: one hash, the edge tile of width 1.
        ("tile/1/000.p/1".to_owned(), 200),
        ("tile/1/000.p/2".to_owned(), 404),
        // Entry bundles alike.
        ("tile/entries/000".to_owned(), 200),
        ("tile/entries/000.p/100".to_owned(), 404),
        (format!("tile/entries/001.p/{edge}"), 200),
        (format!("tile/entries/001.p/{}", edge - 1), 404),
    ] {
        let r = get(f.pages, &format!("/logs/{SLUG}/{path}"));
        assert_eq!(r.status, status, "{path}: {}", r.text());
        if status == 404 && path.contains(".p/") && !path.starts_with("tile/1") {
            assert!(r.text().contains("right edge"), "{path}: {}", r.text());
        }
    }
    let full = get(f.pages, &format!("/logs/{SLUG}/tile/0/000"));
    let edge_tile = get(f.pages, &format!("/logs/{SLUG}/tile/0/001.p/{edge}"));
    let level1 = get(f.pages, &format!("/logs/{SLUG}/tile/1/000.p/1"));
    let mut leaves = decode_tile(&full.body, 256).unwrap();
    leaves.extend(decode_tile(&edge_tile.body, u16::try_from(edge).unwrap()).unwrap());
    assert_eq!(
        decode_tile(&level1.body, 1).unwrap()[0],
        merkle::root(&leaves[..256]),
        "the level-1 hash covers the full tile"
    );
}

fn t_has(t: &str, s: &str) -> bool {
    t.contains(s)
}

#[test]
fn content_is_a_download_on_its_own_origin() {
    let f = common::start();
    let digest = |id: &str| {
        get(f.pages, &format!("/api/v1/logs/{SLUG}/item/{id}")).json()["item"]["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ok = get(
        f.content,
        &format!("/content/{SLUG}/{}", digest("budget-2026")),
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "2026年部门预算（更正）");
    // Named after the item and its version, not the digest; text says
    // its charset.
    let disposition = ok.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"budget-2026-v2.txt\"; filename*=UTF-8''"),
        "{disposition}"
    );
    let encoded = disposition.split("UTF-8''").nth(1).unwrap();
    let bytes: Vec<u8> = {
        let b = encoded.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&encoded[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    };
    assert!(
        String::from_utf8(bytes).unwrap().ends_with("（第2版）.txt"),
        "{disposition}"
    );
    assert_eq!(ok.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));

    let html = get(
        f.content,
        &format!("/content/{SLUG}/{}", digest("late-notice")),
    );
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("content-type"),
        Some("application/octet-stream"),
        "HTML never served as HTML"
    );
    assert_eq!(
        html.header("content-security-policy"),
        Some("default-src 'none'; sandbox")
    );

    assert_eq!(
        get(
            f.content,
            &format!("/content/{SLUG}/{}", digest("dibao-2026-10"))
        )
        .status,
        403
    );
    let redacted = get(f.pages, &format!("/api/v1/logs/{SLUG}/item/attachment")).json();
    let gone = redacted["history"][1]["digest"].as_str().unwrap();
    assert_eq!(
        get(f.content, &format!("/content/{SLUG}/{gone}")).status,
        410
    );
    assert_eq!(get(f.content, &format!("/content/{SLUG}/xyz")).status, 400);
    assert_eq!(
        get(f.content, &format!("/content/{SLUG}/{}", "ab".repeat(32))).status,
        404
    );
    // The page origin does not serve content at all.
    assert_eq!(
        get(
            f.pages,
            &format!("/content/{SLUG}/{}", digest("budget-2026"))
        )
        .status,
        404
    );
}

/// The portal runs inside the county aggregator: what anonymous readers
/// can hold of it is bounded — slow or idle connections, downloads at
/// once, and what caches keep of content that may be redacted.
#[test]
fn slow_idle_and_crowding_readers_are_bounded() {
    use std::io::{Read as _, Write as _};
    let f = common::start();
    // Large enough that a reader who stops reading stalls the server.
    let big = vec![b'%'; 8 << 20];
    let digest = f.publish_document("big-report", &big);
    let path = format!("/content/{SLUG}/{digest}");
    // Downloads are streamed, revalidated by caches, and named by digest.
    let ok = get(f.content, &path);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body.len(), big.len());
    assert_eq!(ok.header("cache-control"), Some("public, no-cache"));
    assert_eq!(ok.header("etag"), Some(format!("\"{digest}\"").as_str()));
    // A server with tight limits over the same data.
    let limits = gongkai_portal::ServeLimits {
        max_connections: 3,
        header_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(1),
        slow_reader: Duration::from_secs(1),
    };
    let source: std::sync::Arc<dyn gongkai_portal::Source> = f.county.clone();
    let addr = f.runtime.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let config = gongkai_portal::PortalConfig {
            rate_per_sec: 0,
            max_downloads: 1,
            ..gongkai_portal::PortalConfig::default()
        };
        tokio::spawn(gongkai_portal::serve_with(
            l,
            gongkai_portal::content_router(source, config),
            limits,
            std::future::pending(),
        ));
        addr
    });
    // A slow-loris client: half a request line, then nothing. Dropped.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /content/").unwrap();
    let mut buf = [0u8; 64];
    let started = std::time::Instant::now();
    let n = slow.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
        "the slow client was answered: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // One download at a time here: a reader who takes the headers and then
    // stops reading holds it; the next is told to come back...
    let mut stalled = std::net::TcpStream::connect(addr).unwrap();
    write!(stalled, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 512];
    let n = stalled.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    let busy = get(addr, &path);
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after"), Some("5"));
    // ...until the stalled reader is cut off (it took no data for the
    // slow-reader limit), which frees the download for the next one.
    let mut served = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let r = get(addr, &path);
        if r.status == 200 {
            served = Some(r);
            break;
        }
    }
    let served = served.expect("the stalled download was cut off");
    assert_eq!(served.body.len(), big.len());
    drop(stalled);
}
