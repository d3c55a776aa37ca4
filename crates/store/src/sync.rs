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
/// crash `path` holds the old bytes or the new, never a mix. The file is
/// created with mode 0644 (less the umask).
///
/// # Errors
/// [`StoreError::Io`] naming the file and the step that failed.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_file_durably_mode(path, bytes, 0o644)
}

/// [`write_file_durably`] with the file's mode (0600 for a private key or
/// a token): the temp file is created with it, so the bytes are never
/// readable by others, not even for a moment. The one durable-write helper
/// of the project: the node, the aggregator and the CLI all use it.
///
/// # Errors
/// [`StoreError::Io`] naming the file and the step that failed; the temp
/// file is removed.
pub fn write_file_durably_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = parent_dir(path);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    // A temp file left by a crash keeps its old mode if reopened: remove it.
    let _ = fs::remove_file(&tmp);
    let write = || -> Result<(), StoreError> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, "create", e))?;
        f.write_all(bytes)
            .map_err(|e| StoreError::io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, "fsync", e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| StoreError::io(path, "rename", e))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn replaces_whole_files_with_the_mode_asked_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        // A temp file left by a crash, readable by everyone.
        fs::write(d.path().join(".secret.tmp"), b"old").unwrap();
        fs::set_permissions(
            d.path().join(".secret.tmp"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        write_file_durably_mode(&p, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_file_durably(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"]);
        // A directory that does not exist: an error naming the file.
        let e = write_file_durably(&d.path().join("no/such"), b"x").unwrap_err();
        assert!(e.to_string().contains(".such.tmp"), "{e}");
    }
}
