//! `deploy/` is checked, not only written: the systemd units pass
//! `systemd-analyze verify` (with ExecStart pointing at the binary under
//! test), with no warning.

use std::path::Path;
use std::process::Command;

#[test]
fn systemd_units_verify_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    let bin = env!("CARGO_BIN_EXE_gongkai");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".service") {
            continue;
        }
        // A template unit is verified as one instance of it.
        let instance = name.replace("@.service", "@finance.service");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/gongkai", bin);
        let target = dir.path().join(&instance);
        std::fs::write(&target, text).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&target)
            .output()
            .expect("systemd-analyze must be installed (scripts/test installs systemd)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{instance}: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "{instance} has warnings:\n{stderr}"
        );
        checked.push(instance);
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "gongkai-aggregator.service",
            "gongkai-node@finance.service",
            "gongkai-witness.service"
        ]
    );
}
