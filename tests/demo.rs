//! `gongkai demo` end to end: the real binary sets up a county, publishes
//! the sample, waits for the county to cosign, verifies, and prints one JSON
//! line; the portal answers; Ctrl-C stops it; a second run resumes the same
//! county without publishing anything twice.

mod common;

use common::demo::{http_get, port_base, sigint, start, this_year};

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
