//! The working-day calendar as data (FORMAT.md § 14.4), with the real
//! binaries: a county and a department node on port 0.
//!
//! "Today" (the real date) lies within 20 working days of a year the seed
//! table does not cover, as it does every December: a request received
//! today has its deadline there. Nothing may be refused or broken for
//! that — record, extend, publish, push, kill -9 and replay, `node check`,
//! export and audit all work, and every judgement that needs the missing
//! year says "cannot judge yet". Once the county publishes the year's table
//! (`gongkai calendar publish`), the same records are judged, naming the
//! table; bad tables and repeated publications are refused and change
//! nothing; an amendment is a new, reasoned version that audits list.
//!
//! The table published here is invented test data, not a transcription of
//! a State Council notice.

mod common;

use common::{
    ADMIN_TOKEN, County, MATTER, Node, ORIGIN, expect_code, gongkai, keygen, text, today,
    trust_file,
};

fn calendar(county: &County, args: &[&str], token: Option<&str>) -> std::process::Output {
    let mut all = vec!["--server", &county.url, "calendar"];
    all.extend_from_slice(args);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gongkai"));
    cmd.args(&all)
        .env_remove("GONGKAI_SERVER")
        .env_remove("GONGKAI_TOKEN");
    if let Some(t) = token {
        cmd.env("GONGKAI_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn requests_json(county: &County) -> serde_json::Value {
    let o = county.public(&["requests", "--json"]);
    expect_code(&o, 0);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `audit --json` of a fresh export of the county; returns the findings
/// of the department log and of the county log.
fn export_and_audit(
    county: &County,
    dir: &std::path::Path,
    trust: &std::path::Path,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let _ = std::fs::remove_dir_all(dir);
    expect_code(
        &county.public(&["export", "--out", dir.to_str().unwrap()]),
        0,
    );
    let o = gongkai(&[
        "audit",
        dir.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("audit output: {e}\n{}{}", text(&o.stdout), text(&o.stderr)));
    assert_eq!(o.status.code(), Some(0), "audit: {v}");
    let findings = |origin: &str| -> Vec<serde_json::Value> {
        v["logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["origin"] == origin || (origin == "county" && l["county"] == true))
            .flat_map(|l| l["findings"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    (findings(ORIGIN), findings("county"))
}

#[test]
fn nothing_waits_for_a_holiday_table_and_judgements_appear_once_published() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, ORIGIN, false);
    let mut county = County::start(&d.join("county"), &vkey);
    let mut node = Node::start_with_county(&d.join("node"), &key, &county);
    let today = today();

    // The first year without a table: after the seed's last year, and not
    // before this one.
    let seed: serde_json::Value =
        serde_json::from_slice(&gongkai(&["--json", "calendar", "show", "--seed"]).stdout).unwrap();
    let last_seed = seed["years"].as_array().unwrap().last().unwrap()["year"]
        .as_i64()
        .unwrap();
    let this_year: i64 = today[..4].parse().unwrap();
    let year = (last_seed + 1).max(this_year);
    let waiting = format!("cannot judge yet: no holiday table for {year}");

    // 1. Record, extend and publish while the year has no table.
    node.define_matter("budget", MATTER);
    node.ok(&[
        "request",
        "receive",
        "--id",
        "req-1",
        "--date",
        &today,
        "--applicant",
        "natural-person",
        "--subject",
        "请求公开2026年决算",
    ]);
    node.ok(&[
        "request",
        "extend",
        "--id",
        "req-1",
        "--date",
        &today,
        "--approved-by",
        "局长办公室",
        "--reason",
        "需要协调",
    ]);
    node.publish("budget-a", "budget", &today, "2027年部门预算草案", &[]);
    let size = node.wait_checkpoint();
    county.wait_cosigned(size);

    // The node and the county say why they cannot judge, not a guess.
    for (who, o) in [
        ("node", node.public(&["requests", "--json"])),
        ("county", county.public(&["requests", "--json"])),
    ] {
        expect_code(&o, 0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let r = &v["requests"][0];
        assert_eq!(r["not_judged"], waiting.as_str(), "{who}: {r}");
        assert_eq!(r["deadline"], "", "{who}: {r}");
    }
    let human = text(&county.public(&["requests"]).stdout);
    assert!(human.contains("cannot judge yet"), "{human}");

    // 2. Replay: kill -9, restart, write again; the offline check agrees.
    node.restart();
    node.ok(&[
        "request",
        "receive",
        "--id",
        "req-2",
        "--date",
        &today,
        "--applicant",
        "natural-person",
        "--subject",
        "请求公开会议纪要",
    ]);
    let size = node.wait_checkpoint();
    county.wait_cosigned(size);
    let _ = node.child.kill();
    let _ = node.child.wait();
    let cfg = node.dir.join("node.toml");
    expect_code(
        &gongkai(&["node", "check", "--config", cfg.to_str().unwrap()]),
        0,
    );
    node.restart();

    // 3. Audit: clean, with the missing year named.
    let witness = county.witness_vkey.as_str();
    let plain = trust_file(d, "trust-plain.toml", &[&vkey], &[witness], None);
    let trust = d.join("trust.toml");
    std::fs::write(
        &trust,
        format!(
            "county_log = \"{}\"\n{}",
            county.log_vkey,
            std::fs::read_to_string(&plain).unwrap()
        ),
    )
    .unwrap();
    let (dept, _) = export_and_audit(&county, &d.join("export1"), &trust);
    let cannot: Vec<&serde_json::Value> = dept
        .iter()
        .filter(|f| f["kind"] == "cannot-verify")
        .collect();
    assert!(
        cannot
            .iter()
            .any(|f| f["detail"].as_str().unwrap().contains(&waiting)),
        "{dept:?}"
    );

    // 4. Bad publications are refused, clearly, and change nothing.
    let table = d.join(format!("{year}.toml"));
    let write_table = |holidays: &str| {
        std::fs::write(
            &table,
            format!(
                "year = {year}\nnotice = \"测试通知〔{}〕1号\"\nholidays = [{holidays}]\n",
                year - 1
            ),
        )
        .unwrap();
    };
    write_table(&format!("\"{year}-01-01\", \"{}-01-02\"", year + 1));
    let o = calendar(
        &county,
        &[
            "publish",
            "--year",
            &year.to_string(),
            "--file",
            table.to_str().unwrap(),
        ],
        Some(ADMIN_TOKEN),
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains(&format!("{}-01-02", year + 1)),
        "{}",
        text(&o.stderr)
    );
    write_table(&format!("\"{year}-01-01\", \"{year}-10-01..{year}-10-07\""));
    let publish = [
        "publish",
        "--year",
        &year.to_string(),
        "--file",
        table.to_str().unwrap(),
    ];
    let o = calendar(&county, &publish, None);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("admin token"),
        "{}",
        text(&o.stderr)
    );
    let o = calendar(&county, &publish, Some("wrong-token"));
    assert_ne!(o.status.code(), Some(0));
    let shown = calendar(&county, &["show"], None);
    assert!(
        !text(&shown.stdout).contains(&format!("{year}  v")),
        "{}",
        text(&shown.stdout)
    );

    // 5. Publish: the same records are judged now, naming the table.
    let o = calendar(&county, &publish, Some(ADMIN_TOKEN));
    expect_code(&o, 0);
    assert!(text(&o.stdout).contains("version 1"), "{}", text(&o.stdout));
    let again = calendar(&county, &publish, Some(ADMIN_TOKEN));
    assert_ne!(again.status.code(), Some(0));
    assert!(
        text(&again.stderr).contains("already published"),
        "{}",
        text(&again.stderr)
    );
    let v = requests_json(&county);
    let r = &v["requests"][0];
    assert_eq!(r["not_judged"], "", "{r}");
    assert!(
        r["deadline"]
            .as_str()
            .unwrap()
            .starts_with(&year.to_string()),
        "{r}"
    );
    assert!(
        r["calendar"]
            .as_str()
            .unwrap()
            .contains(&format!("{year} v1")),
        "{r}"
    );
    let shown = text(&calendar(&county, &["show", "--year", &year.to_string()], None).stdout);
    // Printed in canonical form: weekday holidays only, in runs.
    assert!(
        shown.starts_with(&format!("{year}: v1 (测试通知")),
        "{shown}"
    );
    assert!(shown.contains(&format!("year {year}\nholiday ")), "{shown}");

    // The node takes the county's tables on its next replication round.
    let started = std::time::Instant::now();
    loop {
        let o = node.public(&["requests", "--json"]);
        expect_code(&o, 0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let r = &v["requests"][0];
        if r["calendar"]
            .as_str()
            .unwrap()
            .contains(&format!("{year} v1"))
        {
            assert_eq!(r["not_judged"], "", "{r}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the node did not take the county's table: {r}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The export carries the table; the audit judges with it and lists it.
    let (dept, county_findings) = export_and_audit(&county, &d.join("export2"), &trust);
    assert!(
        !dept
            .iter()
            .any(|f| f["detail"].as_str().unwrap_or("").contains(&waiting)),
        "{dept:?}"
    );
    assert!(
        county_findings
            .iter()
            .any(|f| f["kind"] == "calendar-published"),
        "{county_findings:?}"
    );

    // 6. An amendment: reasoned, a new version; unchanged content refused.
    let amend = |reason: &str| {
        calendar(
            &county,
            &[
                "amend",
                "--year",
                &year.to_string(),
                "--file",
                table.to_str().unwrap(),
                "--reason",
                reason,
            ],
            Some(ADMIN_TOKEN),
        )
    };
    let o = amend("没有变化");
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("already says exactly this"),
        "{}",
        text(&o.stderr)
    );
    write_table(&format!("\"{year}-01-01\", \"{year}-10-01..{year}-10-08\""));
    expect_code(&amend("通知更正：国庆假期延长一天"), 0);
    let v = requests_json(&county);
    assert!(
        v["requests"][0]["calendar"]
            .as_str()
            .unwrap()
            .contains(&format!("{year} v2")),
        "{v}"
    );
    let (_, county_findings) = export_and_audit(&county, &d.join("export3"), &trust);
    let amended: Vec<_> = county_findings
        .iter()
        .filter(|f| f["kind"] == "calendar-amended")
        .collect();
    assert_eq!(amended.len(), 1, "{county_findings:?}");
    assert!(
        amended[0]["detail"]
            .as_str()
            .unwrap()
            .contains("国庆假期延长一天")
    );

    // 7. A county restarted (kill -9) reads its tables back from its log.
    county.restart();
    let v = requests_json(&county);
    assert!(
        v["requests"][0]["calendar"]
            .as_str()
            .unwrap()
            .contains(&format!("{year} v2")),
        "{v}"
    );
}
