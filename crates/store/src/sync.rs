//! Small durable-filesystem helpers shared by the journal, content store and
//! format marker.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::StoreError;

/// `fsync`s a directory so that entries created, renamed or removed in it
/// survive power loss.
///
/// # Errors
/// [`StoreError::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let d = File::open(dir).map_err(|e| StoreError::io(dir, "open directory", e))?;
    d.sync_all()
        .map_err(|e| StoreError::io(dir, "fsync directory", e))
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file beside it,
/// write, `fsync`, rename over `path`, `fsync` of the directory. After a
/// crash `path` holds the old bytes or the new, never a mix.
///
/// # Errors
/// [`StoreError::Io`] naming the file and the step that failed.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent_dir(path);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, "create", e))?;
    f.write_all(bytes)
        .map_err(|e| StoreError::io(&tmp, "write", e))?;
    f.sync_all().map_err(|e| StoreError::io(&tmp, "fsync", e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, "rename", e))?;
    sync_dir(dir)
}
