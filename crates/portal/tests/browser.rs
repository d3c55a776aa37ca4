//! The portal in a real browser: headless Chromium (Debian's `chromium`)
//! driven by playwright-core (crates/portal/js, installed by `scripts/test`)
//! opens a running portal, verifies an item in the browser, sees a tampered
//! proof fail with its reason, and saves screenshots under
//! `target/test-artifacts/portal/`.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn verify_button_in_headless_chromium() {
    let f = common::start();
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        js.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/test (or `npm ci` in {})",
        js.display()
    );
    let out = Command::new("node")
        .arg(js.join("browser.test.mjs"))
        .arg(format!("http://{}", f.pages))
        .arg("/d/gongkai.example~510122~finance/items/budget-2026")
        .arg(common::artifacts())
        .output()
        .expect("node must be installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
