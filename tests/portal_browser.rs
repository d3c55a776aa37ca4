//! The portal of a running county in a real browser: `gongkai demo` (the
//! real binary: aggregator, portal, three departments, cosigned) and
//! headless Chromium driven by playwright-core (crates/portal/js, installed
//! by `scripts/test`): open the county home, a department, an item; press
//! verify and see "verified" (department signature, county cosignature,
//! chain links, inclusion); a tampered proof fails with its reason.
//! Screenshots go to `target/test-artifacts/portal/`.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn verify_in_the_browser_against_a_running_county() {
    let dir = tempfile::tempdir().unwrap();
    let (_demo, ready) = common::demo::start(dir.path(), common::demo::port_base());
    assert_eq!(ready["verified"], true, "{ready}");
    let portal = ready["county"]["portal"].as_str().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let js = root.join("crates/portal/js");
    assert!(
        js.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/test (or `npm ci` in {})",
        js.display()
    );
    let artifacts = root.join("target/test-artifacts/portal");
    std::fs::create_dir_all(&artifacts).unwrap();
    let out = Command::new("node")
        .arg(js.join("browser.test.mjs"))
        .arg(portal)
        .arg("/d/gongkai.example~510122~finance/items/budget-2026")
        .arg(&artifacts)
        .output()
        .expect("node must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
