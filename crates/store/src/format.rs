//! The data-directory format marker.
//!
//! A node's data directory holds a file `FORMAT` whose whole content is the
//! line `gongkai-store 1\n`, written durably when the directory is first
//! used. Every open checks it: another version refuses to open with a clear
//! message, and a directory that holds files but no marker refuses too (it
//! is not ours, or was damaged), rather than guessing.
//!
//! Layout under the data directory:
//!
//! ```text
//! FORMAT       the marker
//! journal      the journal of the node's log (see [`crate::journal`])
//! content/     the content store (see [`crate::content`])
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::StoreError;
use crate::content::ContentStore;
use crate::journal::{Journal, JournalOptions};
use crate::sync::{parent_dir, sync_dir, write_file_durably};

/// Name of the marker file.
pub const MARKER_FILE: &str = "FORMAT";
/// The marker's content for the format this build reads and writes.
pub const MARKER: &str = "gongkai-store 1";

/// A data directory whose format marker has been checked.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens the data directory at `root`, creating it and writing the
    /// marker if it does not exist or is empty.
    ///
    /// # Errors
    /// [`StoreError::FormatVersion`] if the marker names another version,
    /// [`StoreError::Unversioned`] if the directory holds files but no
    /// marker, [`StoreError::Io`].
    pub fn open(root: impl AsRef<Path>) -> Result<DataDir, StoreError> {
        let root = root.as_ref().to_path_buf();
        let marker = root.join(MARKER_FILE);
        match fs::read(&marker) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let found = text.strip_suffix('\n').unwrap_or(&text);
                if found != MARKER {
                    return Err(StoreError::FormatVersion {
                        path: root,
                        found: found.to_owned(),
                        supported: MARKER,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if root.exists() {
                    let mut entries =
                        fs::read_dir(&root).map_err(|e| StoreError::io(&root, "read dir", e))?;
                    if entries.next().is_some() {
                        return Err(StoreError::Unversioned { path: root });
                    }
                } else {
                    fs::create_dir_all(&root)
                        .map_err(|e| StoreError::io(&root, "create dir", e))?;
                    sync_dir(parent_dir(&root))?;
                }
                write_file_durably(&marker, format!("{MARKER}\n").as_bytes())?;
            }
            Err(e) => return Err(StoreError::io(&marker, "read", e)),
        }
        Ok(DataDir { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the journal file.
    pub fn journal_path(&self) -> PathBuf {
        self.root.join("journal")
    }

    /// Opens the journal of `origin`, creating it if it does not exist.
    ///
    /// # Errors
    /// As [`Journal::create`] and [`Journal::open`].
    pub fn journal(&self, origin: &str, options: JournalOptions) -> Result<Journal, StoreError> {
        let path = self.journal_path();
        if path.exists() {
            Journal::open(&path, origin, options)
        } else {
            Journal::create(&path, origin, options)
        }
    }

    /// Opens the content store under `content/`.
    ///
    /// # Errors
    /// As [`ContentStore::open`].
    pub fn content(&self) -> Result<ContentStore, StoreError> {
        ContentStore::open(self.root.join("content"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_written_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let d = DataDir::open(&root).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("FORMAT")).unwrap(),
            "gongkai-store 1\n"
        );
        drop(d);
        DataDir::open(&root).unwrap();
        fs::write(root.join("FORMAT"), "gongkai-store 2\n").unwrap();
        let err = DataDir::open(&root).unwrap_err();
        assert!(
            matches!(err, StoreError::FormatVersion { ref found, .. } if found == "gongkai-store 2")
        );
        assert!(
            err.to_string().contains("reads \"gongkai-store 1\" only"),
            "{err}"
        );
    }

    #[test]
    fn empty_dir_is_adopted_but_unmarked_data_refused() {
        let tmp = tempfile::tempdir().unwrap();
        DataDir::open(tmp.path()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("journal"), b"something").unwrap();
        assert!(matches!(
            DataDir::open(tmp.path()),
            Err(StoreError::Unversioned { .. })
        ));
        assert!(!tmp.path().join("FORMAT").exists());
    }
}
