//! The export directory layout (FORMAT.md § 16), shared by `export` (which
//! writes it) and `audit` (which reads it).
//!
//! ```text
//! DIR/gongkai-export                 "gongkai-export/v1\n" then "log <origin>\n" per log, sorted
//! DIR/logs/<origin>/checkpoint       the newest signed checkpoint, every signature and cosignature
//! DIR/logs/<origin>/checkpoints/<n>  every signed checkpoint known, by tree size (the newest too)
//! DIR/logs/<origin>/tile/<L>/<N>[.p/<W>]        BLAKE3 hash tiles (§ 9)
//! DIR/logs/<origin>/tile/entries/<N>[.p/<W>]    entry bundles (§ 9.3)
//! DIR/logs/<origin>/content/<hex digest>        salt (32 bytes) || content
//! DIR/logs/<origin>/vkeys            the log's keys as the log names them (informational, never trusted)
//! DIR/logs/<origin>/evidence/<id>   gongkai-evidence/v1 files (FORMAT.md § 20), named by their id (filled by the county)
//! DIR/county/…                       the county log as an export of its own: manifest, checkpoint, tiles, bundles (filled by the county)
//! ```

use std::path::{Path, PathBuf};

use gongkai_core::Hash;
use gongkai_core::tile::BundleId;
use gongkai_core::types::Origin;

use crate::VerifyError;

type Result<T> = std::result::Result<T, VerifyError>;

/// Name of the manifest file at the top of an export.
pub const MANIFEST: &str = "gongkai-export";
/// First line of the manifest.
pub const MANIFEST_FORMAT: &str = "gongkai-export/v1";
/// The newest checkpoint of a log.
pub const CHECKPOINT: &str = "checkpoint";
/// Directory of every known checkpoint, by size.
pub const CHECKPOINTS: &str = "checkpoints";
/// Directory of misbehaviour evidence.
pub const EVIDENCE: &str = "evidence";
/// The county log's own export, at the top of an export.
pub const COUNTY: &str = "county";
/// Directory of content blobs.
pub const CONTENT: &str = "content";
/// The informational key list.
pub const VKEYS: &str = "vkeys";

/// The directory of `origin`'s log inside an export at `root`.
///
/// # Errors
/// An origin with a `.` or `..` path segment (allowed by the origin rules,
/// but it would leave the directory).
pub fn log_dir(root: &Path, origin: &Origin) -> Result<PathBuf> {
    let rel = log_rel(origin)?;
    Ok(root.join(rel))
}

/// `logs/<origin>` relative to the export root.
///
/// # Errors
/// As [`log_dir`].
pub fn log_rel(origin: &Origin) -> Result<String> {
    if origin.as_str().split('/').any(|s| s == "." || s == "..") {
        return Err(VerifyError::Layout(format!(
            "origin {origin} has a . or .. segment and cannot be a directory"
        )));
    }
    Ok(format!("logs/{}", origin.as_str()))
}

/// The manifest text for these origins (sorted, deduplicated).
pub fn manifest(origins: &[Origin]) -> String {
    let mut o: Vec<&str> = origins.iter().map(Origin::as_str).collect();
    o.sort_unstable();
    o.dedup();
    let mut s = format!("{MANIFEST_FORMAT}\n");
    for origin in o {
        s.push_str(&format!("log {origin}\n"));
    }
    s
}

/// Parses a manifest (FORMAT.md § 16.2): the format line, then one
/// `log <origin>` line per log, sorted, no duplicates, every line ending in
/// a newline.
///
/// # Errors
/// Wrong first line, a line that is not `log <origin>`, lines out of order
/// or repeated, no log.
pub fn parse_manifest(text: &str) -> Result<Vec<Origin>> {
    let bad = |m: String| VerifyError::Layout(m);
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(MANIFEST_FORMAT) || !text.ends_with('\n') {
        return Err(bad(format!("not a {MANIFEST_FORMAT} manifest")));
    }
    let mut out: Vec<Origin> = Vec::new();
    for l in lines {
        let Some(o) = l.strip_prefix("log ") else {
            return Err(bad(format!("manifest line {l:?} is not `log <origin>`")));
        };
        let o = Origin::new(o).map_err(|e| bad(format!("manifest line {l:?}: {e}")))?;
        if let Some(prev) = out.last()
            && prev.as_str() >= o.as_str()
        {
            return Err(bad(format!(
                "manifest line {l:?}: the logs must be sorted, without duplicates ({prev} comes before it)"
            )));
        }
        out.push(o);
    }
    if out.is_empty() {
        return Err(bad("the manifest lists no log".into()));
    }
    Ok(out)
}

/// Path of a content blob, relative to the log directory.
pub fn content_path(digest: &Hash) -> String {
    format!("{CONTENT}/{}", digest.to_hex())
}

/// Path of a checkpoint of `size` in `checkpoints/`.
pub fn checkpoint_path(size: u64) -> String {
    format!("{CHECKPOINTS}/{size}")
}

/// The entry bundle holding entry `index` in a tree of `size`.
pub fn bundle_of(index: u64, size: u64) -> Option<BundleId> {
    let n = index / 256;
    if index >= size {
        return None;
    }
    let width = (size - n * 256).min(256);
    BundleId::new(n, u16::try_from(width).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_path_safety() {
        let a = Origin::new("gongkai.example/510122/finance").unwrap();
        let b = Origin::new("gongkai.example/510122/edu").unwrap();
        let m = manifest(&[a.clone(), b.clone(), a.clone()]);
        assert_eq!(
            m,
            "gongkai-export/v1\nlog gongkai.example/510122/edu\nlog gongkai.example/510122/finance\n"
        );
        assert_eq!(parse_manifest(&m).unwrap(), vec![b, a]);
        assert!(parse_manifest("gongkai-export/v2\nlog a\n").is_err());
        assert!(parse_manifest("gongkai-export/v1\n").is_err());
        // FORMAT.md § 16.2: sorted, no duplicates.
        assert!(parse_manifest("gongkai-export/v1\nlog b.example/x\nlog a.example/x\n").is_err());
        assert!(parse_manifest("gongkai-export/v1\nlog a.example/x\nlog a.example/x\n").is_err());
        assert!(parse_manifest("gongkai-export/v1\nlog a.example/x").is_err());
        let evil = Origin::new("a/../../etc").unwrap();
        assert!(log_dir(Path::new("/x"), &evil).is_err());
        assert_eq!(bundle_of(300, 600).unwrap().path(), "tile/entries/001");
        assert_eq!(bundle_of(520, 600).unwrap().path(), "tile/entries/002.p/88");
    }
}
