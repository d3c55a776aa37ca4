//! The in-browser verifier (`assets/verify.mjs`) against `docs/vectors/`,
//! run with Node.js's built-in test runner: the JavaScript and the Rust
//! implementations of docs/FORMAT.md must agree on every vector.
//! `scripts/test` makes sure `node` is installed.

use std::path::Path;
use std::process::Command;

#[test]
fn javascript_verifier_agrees_with_the_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let out = Command::new("node")
        .arg("--test")
        .arg(dir.join("vectors.test.mjs"))
        .output()
        .expect("node must be installed (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
