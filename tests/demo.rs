//! `gongkai demo` end to end: the real binary sets up a county, publishes
//! the sample, waits for the county to cosign, verifies, and prints one JSON
//! line; the portal answers; Ctrl-C stops it; a second run resumes the same
//! county without publishing anything twice.

mod common;

use common::demo::{http_get, port_base, sigint, start, this_year};
use common::{expect_code, gongkai};

#[test]
fn the_county_comes_up_verified_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let base = port_base();
    let (demo, ready) = start(dir.path(), base);
    assert_eq!(ready["verified"], true, "{ready}");
    assert_eq!(ready["departments"].as_array().unwrap().len(), 3);
    assert!(ready["new_events"].as_u64().unwrap() > 30);
    let portal = ready["county"]["portal"].as_str().unwrap().to_owned();
    let (status, home) = http_get(&format!("{portal}/"));
    assert_eq!(status, 200);
    assert!(home.contains("某某县财政局") && home.contains("某某县民政局"));
    // Every page ends with the guide and who runs the portal (issue 20,
    // item 9); the guide says how to ask, the limits, and where to complain.
    assert!(
        home.contains("href=\"/guide\"") && home.contains("主办单位：某某县人民政府办公室"),
        "{home}"
    );
    let (status, guide) = http_get(&format!("{portal}/guide"));
    assert_eq!(status, 200);
    for words in [
        "政府信息公开指南",
        "依申请公开",
        "20 个工作日",
        "0000-0000000",
        "某某县教育局",
        "行政复议",
    ] {
        assert!(guide.contains(words), "the guide lacks {words}: {guide}");
    }
    // The operator's scrape: both independent witnesses answer and cosigned
    // every department the county cosigned (the demo waits for them).
    let (status, metrics) = http_get(&format!("{portal}/metrics"));
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    for w in ["纪委监委", "第三方"] {
        assert!(
            metrics.contains(&format!("gongkai_witness_up{{witness=\"{w}\"}} 1\n")),
            "{metrics}"
        );
    }
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("gongkai_department_size{"))
            .count(),
        3,
        "{metrics}"
    );
    assert!(
        metrics.contains("gongkai_evidence_uncleared 0\n"),
        "{metrics}"
    );
    // Both witnesses cosign the county log too (FORMAT.md § 21.1).
    let since = std::time::Instant::now();
    loop {
        let (_, metrics) = http_get(&format!("{portal}/metrics"));
        let county_cosigned = |w: &str| {
            let label = format!(
                "gongkai_witness_cosigned_size{{witness=\"{w}\",origin=\"gongkai.example/510122/county\"}} "
            );
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&label))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if county_cosigned("纪委监委") > 0 && county_cosigned("第三方") > 0 {
            break;
        }
        assert!(
            since.elapsed() < std::time::Duration::from_secs(120),
            "the witnesses did not cosign the county log: {metrics}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, inspection) = http_get(&format!("{portal}/inspection"));
    assert_eq!(status, 200);
    // The education bureau's quarterly matter lacks 2026-Q3 (computable
    // while the shipped working-day table covers this year).
    let year = this_year();
    if gongkai_core::calendar::WorkCalendar::shipped().covers(year) {
        assert!(
            inspection.contains("2026-Q3"),
            "the missing quarter is shown"
        );
    }

    // The annual report: the finance bureau's sample fills every row of
    // table 三 and the rows of table 四 (issue 19), each number linked to
    // the entries it counts.
    let slug = home
        .split("href=\"/d/")
        .skip(1)
        .map(|rest| &rest[..rest.find('/').unwrap()])
        .find(|s| s.ends_with("finance"))
        .expect("the finance bureau is on the home page");
    let (status, json) = http_get(&format!("{portal}/api/v1/logs/{slug}/report/{year}"));
    assert_eq!(status, 200, "{json}");
    let body = json.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let report: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {json:.300}"));
    assert_eq!(report["department"], "某某县财政局");
    let value = |id: &str| {
        report["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .and_then(|c| c["value"].as_u64())
            .unwrap_or_else(|| panic!("no cell {id}"))
    };
    let rows: Vec<String> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .filter(|id| id.starts_with("t3.") && id.ends_with(".total"))
        .map(str::to_owned)
        .collect();
    for row in &rows {
        if row != "t3.withheld_unrecorded.total" {
            assert!(value(row) > 0, "{row} is empty in the demo's report");
        }
    }
    for cell in [
        "t2.normative_document.issued",
        "t2.normative_document.repealed",
        "t2.penalty.decisions",
        "t2.fee.amount",
        "t4.reconsideration.upheld",
        "t4.litigation.pending",
        "t4.litigation_after_reconsideration.corrected",
    ] {
        assert!(value(cell) > 0, "{cell} is empty in the demo's report");
    }
    let (status, page) = http_get(&format!("{portal}/d/{slug}/report/{year}"));
    assert_eq!(status, 200);
    assert!(
        page.contains("予以公开")
            && page.contains(&format!("/d/{slug}/report/{year}/t3.new.total"))
    );
    let (status, cell) = http_get(&format!("{portal}/d/{slug}/report/{year}/t3.new.total"));
    assert_eq!(status, 200);
    assert!(cell.contains("收到申请"), "the cell lists its entries");
    // Answers in the words of the national table, not the format's names.
    let (_, requests) = http_get(&format!("{portal}/d/{slug}/requests"));
    assert!(
        requests.contains("（三）不予公开 · 4.保护第三方合法权益")
            && !requests.contains(">disclosed<"),
        "{requests}"
    );
    let (status, county) = http_get(&format!("{portal}/report/{year}"));
    assert_eq!(status, 200);
    assert!(county.contains("全县合计") && county.contains("某某县民政局"));

    // Every log read as static files from the portal (FORMAT.md § 9.4), as
    // from a CDN or a bucket: no gRPC, the same verdict, documents checked.
    let content = ready["county"]["content"].as_str().unwrap();
    let trust = dir.path().join("trust.toml");
    let trust = trust.to_str().unwrap();
    let verify = |url: &str, extra: &[&str]| {
        let mut args = vec!["verify", "--all", "--trust", trust, "--url", url];
        args.extend_from_slice(extra);
        gongkai(&args)
    };
    // (--server is never used.)
    let o = verify(
        &portal,
        &[
            "--json",
            "--content-url",
            content,
            "--server",
            "http://127.0.0.1:9",
        ],
    );
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["logs"].as_array().unwrap().len(), 3, "{v}");
    assert!(
        v["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["content_ok"].as_u64() > Some(0) && l["violations"] == serde_json::json!([])),
        "{v}"
    );
    // --ca names the static site's CA (here unused: plain HTTP), not the
    // gRPC server's: accepted with the default http:// --server.
    let ca_dir = dir.path().join("ca");
    expect_code(
        &gongkai(&["certs", "ca", "--out", ca_dir.to_str().unwrap()]),
        0,
    );
    let ca = ca_dir.join("ca.crt");
    expect_code(
        &verify(
            &portal,
            &["--content-url", content, "--ca", ca.to_str().unwrap()],
        ),
        0,
    );
    // A cache or mirror that changes one byte of an entry bundle: caught.
    let proxy = tampering_proxy(&portal);
    expect_code(&verify(&proxy, &["--content-url", content]), 1);
    // Without the download address the documents are not checked, and the
    // result says so.
    let o = verify(&portal, &[]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--content-url"));
    // An item's printable proof, and its proof file checked offline with
    // the demo's trust file (issue 20, item 9).
    let (status, proof) = http_get(&format!("{portal}/d/{slug}/proof/budget-2026"));
    assert_eq!(status, 200);
    assert!(
        proof.contains("公开信息存证") && proof.contains("gongkai check-proof"),
        "{proof}"
    );
    let (status, raw) = http_get(&format!(
        "{portal}/api/v1/logs/{slug}/proof/budget-2026?format=bundle"
    ));
    assert_eq!(status, 200, "{raw}");
    assert!(raw.contains("filename=\"budget-2026.proof.json\""), "{raw}");
    let file = dir.path().join("budget-2026.proof.json");
    std::fs::write(&file, raw.split_once("\r\n\r\n").unwrap().1).unwrap();
    expect_code(
        &gongkai(&["check-proof", file.to_str().unwrap(), "--trust", trust]),
        0,
    );

    sigint(&demo.0);
    let mut demo = demo;
    let exit = demo.0.wait().unwrap();
    assert!(exit.success(), "Ctrl-C stops the county cleanly: {exit}");

    // A resumed county keeps its shape: other settings are refused, not
    // silently ignored.
    for (flag, value) in [
        ("--departments", "5".to_owned()),
        ("--port-base", (base + 1000).to_string()),
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_gongkai"))
            .args(["demo", "--dir", dir.path().to_str().unwrap(), flag, &value])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("use another --dir"));
    }

    let (_again, ready) = start(dir.path(), base);
    assert_eq!(ready["verified"], true, "{ready}");
    assert_eq!(
        ready["new_events"], 0,
        "a second run publishes nothing twice"
    );
}

/// A plain-HTTP proxy in front of `portal` that flips the last byte of
/// every entry bundle it passes on (as a poisoned cache would); its URL.
fn tampering_proxy(portal: &str) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let portal = portal.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let path = common::request_path(&mut s);
            let host = portal.trim_start_matches("http://");
            let Ok(mut up) = std::net::TcpStream::connect(host) else {
                continue;
            };
            let _ = write!(
                up,
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            );
            let mut raw = Vec::new();
            let _ = up.read_to_end(&mut raw);
            if path.contains("/tile/entries/") && raw.len() > 1 {
                let last = raw.len() - 1;
                raw[last] ^= 0x01;
            }
            let _ = s.write_all(&raw);
        }
    });
    url
}
