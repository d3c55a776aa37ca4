//! `gongkai report annual` and its audit end to end: a real node, a real
//! export, the report in its four forms, the report published as an item
//! and recounted by `gongkai audit`, and a forged report named cell by
//! cell (FORMAT.md § 22).

mod common;

use std::path::Path;

use common::*;

const REPORT_MEDIA_TYPE: &str = "application/vnd.gongkai.annual-report+json";

fn export(node: &Node, to: &Path) {
    node.wait_checkpoint();
    let _ = std::fs::remove_dir_all(to);
    expect_code(&node.public(&["export", "--out", to.to_str().unwrap()]), 0);
}

fn report(export: &Path, trust: &Path, year: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "report",
        "annual",
        export.to_str().unwrap(),
        "--year",
        year,
        "--trust",
        trust.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    gongkai(&args)
}

/// Publishes `file` as an annual report item (FORMAT.md § 22.5).
fn publish_report(node: &Node, item: &str, title: &str, file: &Path) {
    node.ok(&[
        "publish",
        "--item",
        item,
        "--matter",
        "reports",
        "--title",
        title,
        "--file",
        file.to_str().unwrap(),
        "--media-type",
        REPORT_MEDIA_TYPE,
        "--date-formed",
        &today(),
    ]);
}

fn audit_findings(export: &Path, trust: &Path) -> (Option<i32>, Vec<serde_json::Value>) {
    let o = gongkai(&[
        "audit",
        export.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let f = v["logs"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (o.status.code(), f)
}

#[test]
fn a_published_report_is_recounted_and_a_forged_cell_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let key = d.join("finance.key");
    let vkey = keygen(&key, ORIGIN, false);
    let node = Node::start(&d.join("node"), &key);
    let today = today();
    let year = &today[..4];
    node.define_matter(
        "regs",
        &format!("{MATTER}report_row = \"normative-document\"\n").replace("部门预算", "规范性文件"),
    );
    node.define_matter("reports", &MATTER.replace("部门预算", "年度报告"));
    node.publish("reg-1", "regs", &today, "管理办法", &[]);
    node.publish(
        "reg-2",
        "regs",
        &today,
        "管理办法（修订）",
        &["--related", "reg-1=repeals"],
    );
    for (id, applicant) in [("r1", "natural-person"), ("r2", "research-institution")] {
        node.ok(&[
            "request",
            "receive",
            "--id",
            id,
            "--date",
            &today,
            "--applicant",
            applicant,
            "--subject",
            "申请公开",
        ]);
    }
    node.ok(&[
        "request",
        "answer",
        "--id",
        "r1",
        "--date",
        &today,
        "--outcome",
        "withheld-third-party",
        "--basis",
        "条例第十五条",
    ]);
    node.ok(&[
        "request",
        "challenge",
        "--id",
        "r1",
        "--case",
        "复议-1",
        "--procedure",
        "reconsideration",
        "--date",
        &today,
    ]);
    // The node refuses an answer without the national table's result.
    let o = node.cli(&[
        "request",
        "answer",
        "--id",
        "r2",
        "--date",
        &today,
        "--decision",
        "disclosed",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("--outcome"), "{}", text(&o.stderr));

    let trust = trust_file(d, "trust.toml", &[&vkey], &[], None);
    let ex = d.join("export");
    export(&node, &ex);

    // The CLI: a department must be named; then the four forms.
    let o = report(&ex, &trust, year, &[]);
    expect_code(&o, 2);
    assert!(text(&o.stderr).contains("--origin"), "{}", text(&o.stderr));
    let json_file = d.join("report.json");
    let o = report(
        &ex,
        &trust,
        year,
        &["--origin", ORIGIN, "--out", json_file.to_str().unwrap()],
    );
    expect_code(&o, 0);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    let value = |r: &serde_json::Value, id: &str| {
        r["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| (c["value"].as_u64().unwrap(), c["entries"].clone()))
            .unwrap()
    };
    assert_eq!(value(&r, "t2.normative_document.issued").0, 2);
    assert_eq!(value(&r, "t2.normative_document.repealed").0, 1);
    assert_eq!(value(&r, "t2.normative_document.in_force").0, 1);
    assert_eq!(value(&r, "t3.new.total").0, 2);
    assert_eq!(value(&r, "t3.new.research_institution").0, 1);
    assert_eq!(value(&r, "t3.withheld_third_party.natural_person").0, 1);
    assert_eq!(value(&r, "t3.carried_out.total").0, 1);
    assert_eq!(value(&r, "t4.reconsideration.pending").0, 1);
    assert!(r["root"].as_str().unwrap().len() == 64);
    for (format, needle) in [
        ("html", "收到和处理政府信息公开申请情况"),
        ("md", "| （三）不予公开 · 4.保护第三方合法权益 | 1 |"),
        ("csv", "t3.new.total,2,2,"),
    ] {
        let o = report(&ex, &trust, year, &["--origin", ORIGIN, "--format", format]);
        expect_code(&o, 0);
        assert!(
            text(&o.stdout).contains(needle),
            "{format}: {}",
            text(&o.stdout)
        );
    }

    // Published as an item, the report is recounted by audit: clean.
    publish_report(
        &node,
        &format!("annual-report-{year}"),
        &format!("{year}年政府信息公开工作年度报告"),
        &json_file,
    );
    export(&node, &ex);
    let (code, findings) = audit_findings(&ex, &trust);
    assert!(
        !findings
            .iter()
            .any(|f| f["kind"] == "annual-report-mismatch"
                || f["detail"].as_str().unwrap_or("").contains("annual report")),
        "the report was recounted and agrees: {findings:?}"
    );
    assert_eq!(code, Some(0), "{findings:?}");

    // A report whose number does not match the log is a violation naming
    // the cell.
    let mut forged = r.clone();
    for c in forged["cells"].as_array_mut().unwrap() {
        if c["id"] == "t3.withheld_third_party.total" {
            c["value"] = 0.into();
            c["entries"] = serde_json::json!([]);
        }
    }
    let forged_file = d.join("forged.json");
    std::fs::write(&forged_file, serde_json::to_vec(&forged).unwrap()).unwrap();
    publish_report(
        &node,
        "annual-report-forged",
        "年度报告（更正）",
        &forged_file,
    );
    export(&node, &ex);
    let (code, findings) = audit_findings(&ex, &trust);
    assert_eq!(code, Some(1), "{findings:#?}");
    let bad: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["kind"] == "annual-report-mismatch")
        .collect();
    assert_eq!(bad.len(), 1, "{findings:?}");
    let detail = bad[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("t3.withheld_third_party.total")
            && detail.contains("says 0")
            && detail.contains("counts 1"),
        "{detail}"
    );
    // A log publishing reports at many sizes cannot make its audit
    // quadratic: past MAX_RECOUNTS (16) distinct recounts, a report is a
    // warning that says it was not recounted, never silently passed.
    for k in 1..=17u64 {
        let mut r = r.clone();
        r["size"] = k.into();
        let f = d.join(format!("many-{k}.json"));
        std::fs::write(&f, serde_json::to_vec(&r).unwrap()).unwrap();
        publish_report(&node, &format!("many-{k}"), "年度报告", &f);
    }
    export(&node, &ex);
    let (code, findings) = audit_findings(&ex, &trust);
    assert_eq!(code, Some(1));
    let skipped = findings
        .iter()
        .filter(|f| {
            f["detail"]
                .as_str()
                .unwrap_or("")
                .contains("was not recounted")
        })
        .count();
    assert!(skipped >= 1, "{findings:?}");
    let recounted = findings
        .iter()
        .filter(|f| f["kind"] == "annual-report-mismatch")
        .count();
    assert!(
        recounted >= 16,
        "the first sizes are recounted: {findings:?}"
    );

    // A log that does not verify gives no report.
    let bundle = ex.join("logs").join(ORIGIN).join("tile/entries/000.p");
    let first = std::fs::read_dir(&bundle)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&first, bytes).unwrap();
    let o = report(&ex, &trust, year, &["--origin", ORIGIN]);
    expect_code(&o, 1);
    assert!(
        text(&o.stderr).contains("does not verify"),
        "{}",
        text(&o.stderr)
    );
}
