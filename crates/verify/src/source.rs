//! Where a verifier reads a log from: the narrow [`LogSource`] trait, and
//! its implementation for an export directory ([`ExportLog`]). The crates
//! that own a transport implement it too: gRPC in the CLI, a node journal
//! in the node.
//!
//! An export directory is untrusted input (FORMAT.md § 16.3): every read
//! here refuses symbolic links and special files at every level below the
//! export root, and is bounded by the largest file of its kind, checked
//! before a byte is read — a link to `/dev/zero`, a directory loop or a
//! 10 GiB "tile" cost nothing.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use gongkai_core::Hash;
use gongkai_core::entry::MAX_ENTRY_LEN;
use gongkai_core::note::MAX_NOTE_SIZE;
use gongkai_core::tile::{BundleId, TileId, decode_bundle};
use gongkai_core::types::Origin;

use crate::VerifyError;
use crate::content::{ContentUse, SALT_LEN};
use crate::layout;

/// Why a source could not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Not there (a missing file, a server's not-found).
    #[error("{0}")]
    Missing(String),
    /// There but not well-formed (too large, not a regular file, a bundle
    /// that does not decode): evidence against the source.
    #[error("{0}")]
    Malformed(String),
    /// Could not be read (network, local I/O): nothing is proven.
    #[error("{0}")]
    Unavailable(String),
}

/// What a source gives for a content commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The stored blob: `salt (32 bytes) || content`, unchecked.
    Blob(Vec<u8>),
    /// Withheld from this reader (restricted to a group).
    Restricted,
    /// Not held, with the source's words.
    NotFound(String),
}

/// A log to verify, read in the shapes of FORMAT.md § 9: the newest
/// checkpoint, entry bundles, hash tiles and content. Sources that cannot
/// serve tiles or list files answer `None` and the checks that need them
/// are skipped.
pub trait LogSource {
    /// The log.
    fn origin(&self) -> &Origin;

    /// The newest signed checkpoint, as bytes (at most
    /// [`MAX_NOTE_SIZE`]).
    ///
    /// # Errors
    /// Not there, too large, unreadable.
    fn checkpoint(&mut self) -> Result<Vec<u8>, SourceError>;

    /// The entries of entry bundle `id` (its width entries, in order).
    ///
    /// # Errors
    /// Not there, malformed, unreadable.
    fn bundle(&mut self, id: &BundleId) -> Result<Vec<Vec<u8>>, SourceError>;

    /// Hash tile `id`, encoded; `Ok(None)` when the source serves no tiles.
    ///
    /// # Errors
    /// Not there, too large, unreadable.
    fn tile(&mut self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError>;

    /// The content a commitment names.
    ///
    /// # Errors
    /// Unreadable, or larger than committed (not read).
    fn content(&mut self, u: &ContentUse) -> Result<Fetched, SourceError>;

    /// Every file under `sub` of the log's directory (relative to `sub`,
    /// sorted), for the checks for files that should not be there;
    /// `None` for a source that is not a directory.
    ///
    /// # Errors
    /// A directory that cannot be listed.
    fn files(&mut self, _sub: &str) -> Result<Option<Vec<String>>, SourceError> {
        Ok(None)
    }

    /// A file [`LogSource::files`] listed (`rel` relative to the log's
    /// directory), of at most `max` bytes.
    ///
    /// # Errors
    /// Missing, too large, unreadable.
    fn read_listed(&mut self, rel: &str, _max: u64) -> Result<Vec<u8>, SourceError> {
        Err(SourceError::Missing(format!(
            "{rel}: not a directory source"
        )))
    }

    /// A consistency proof from `old` to `new` (RFC 9162 § 2.1.4), or
    /// `None` when the source serves none (the walk from a verified state
    /// proves consistency entry by entry).
    ///
    /// # Errors
    /// Refused or unreadable.
    fn consistency(&mut self, _old: u64, _new: u64) -> Result<Option<Vec<Hash>>, SourceError> {
        Ok(None)
    }

    /// The log's directory relative to the export root, naming the files
    /// of findings; `None` for a server.
    fn dir(&self) -> Option<&str> {
        None
    }
}

/// Largest manifest read (a county of thousands of departments).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest encoded entry bundle: 256 entries of at most 65,535 bytes, each
/// with its 2-byte length.
pub const MAX_BUNDLE: u64 = 256 * (2 + MAX_ENTRY_LEN as u64);
/// Largest hash tile: 256 hashes.
pub const MAX_TILE: u64 = 256 * 32;

/// Reads files below an export root, refusing symbolic links and special
/// files at every level below it, and anything larger than `max`.
#[derive(Debug, Clone)]
pub struct SafeDir {
    root: PathBuf,
}

impl SafeDir {
    /// The directory at `root` (itself may be reached through a link: the
    /// user named it).
    pub fn new(root: &Path) -> SafeDir {
        SafeDir {
            root: root.to_path_buf(),
        }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks every component of `rel` below the root: directories that
    /// are directories, no links, no `..`.
    fn walk(&self, rel: &str) -> Result<PathBuf, SourceError> {
        let mut path = self.root.clone();
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            if *part == "." || *part == ".." || part.contains('\\') {
                return Err(SourceError::Malformed(format!("{rel}: not a plain path")));
            }
            path.push(part);
            let last = i + 1 == parts.len();
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(SourceError::Missing(format!("{rel}: no such file")));
                }
                Err(e) => return Err(SourceError::Unavailable(format!("{rel}: {e}"))),
            };
            let t = meta.file_type();
            if t.is_symlink() {
                return Err(SourceError::Malformed(format!(
                    "{rel}: a symbolic link (an export holds plain files only)"
                )));
            }
            if !last && !t.is_dir() {
                return Err(SourceError::Missing(format!("{rel}: no such file")));
            }
        }
        Ok(path)
    }

    /// Reads the regular file `rel`, of at most `max` bytes.
    ///
    /// # Errors
    /// Missing; a link, a directory or a special file, or larger than
    /// `max` (malformed); unreadable.
    pub fn read(&self, rel: &str, max: u64) -> Result<Vec<u8>, SourceError> {
        let path = self.walk(rel)?;
        let f = std::fs::File::open(&path)
            .map_err(|e| SourceError::Unavailable(format!("{rel}: {e}")))?;
        read_opened(f, rel, max)
    }

    /// Whether `rel` is a directory (not a link to one).
    pub fn is_dir(&self, rel: &str) -> bool {
        self.walk(rel)
            .is_ok_and(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir()))
    }

    /// Every file under the directory `rel`, relative to it, sorted; links
    /// are listed (so that a check can report them) but never followed.
    /// Empty when `rel` does not exist.
    ///
    /// # Errors
    /// A directory that cannot be read, or more than `max` files.
    pub fn files(&self, rel: &str, max: usize) -> Result<Vec<String>, SourceError> {
        let base = match self.walk(rel) {
            Ok(p) => p,
            Err(SourceError::Missing(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut stack = vec![(base, String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotADirectory
                        || (prefix.is_empty() && e.kind() == std::io::ErrorKind::NotFound) =>
                {
                    continue;
                }
                Err(e) => return Err(SourceError::Unavailable(format!("{rel}/{prefix}: {e}"))),
            };
            for e in rd {
                let e = e.map_err(|e| SourceError::Unavailable(format!("{rel}/{prefix}: {e}")))?;
                let name = e.file_name().to_string_lossy().into_owned();
                let path = format!("{prefix}{name}");
                // The entry's own type: a link is never followed.
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                if is_dir {
                    stack.push((e.path(), format!("{path}/")));
                } else {
                    out.push(path);
                }
                if out.len() + stack.len() > max {
                    return Err(SourceError::Malformed(format!(
                        "{rel}: more than {max} files"
                    )));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Reads a file a user named (a proof bundle, a trust file): links are
/// followed (the user named it), but anything other than a regular file,
/// or larger than `max`, is refused before it is read.
///
/// # Errors
/// Missing, not a regular file, too large, unreadable.
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, SourceError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SourceError::Missing(format!("{name}: no such file"))
        } else {
            SourceError::Unavailable(format!("{name}: {e}"))
        }
    })?;
    read_opened(f, &name, max)
}

/// Reads an opened file of at most `max` bytes: the file opened, not the
/// name, is checked, so a swap after a check is caught.
fn read_opened(mut f: std::fs::File, name: &str, max: u64) -> Result<Vec<u8>, SourceError> {
    let meta = f
        .metadata()
        .map_err(|e| SourceError::Unavailable(format!("{name}: {e}")))?;
    if !meta.is_file() {
        return Err(SourceError::Malformed(format!(
            "{name}: not a regular file"
        )));
    }
    if meta.len() > max {
        return Err(SourceError::Malformed(format!(
            "{name}: {} bytes, more than the {max} such a file may hold",
            meta.len()
        )));
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // Bounded again: a file that grows while read stops at max + 1.
    f.by_ref()
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| SourceError::Unavailable(format!("{name}: {e}")))?;
    if out.len() as u64 > max {
        return Err(SourceError::Malformed(format!(
            "{name}: more than the {max} bytes such a file may hold"
        )));
    }
    Ok(out)
}

/// Files listed under one directory at most (a log of 10^9 entries has
/// about 4·10^6 bundles and as many tiles).
pub const MAX_LISTED: usize = 64 << 20;

/// One log of an export directory, as a [`LogSource`].
#[derive(Debug, Clone)]
pub struct ExportLog {
    dir: SafeDir,
    /// The log directory relative to the export root (for findings).
    rel: String,
    origin: Origin,
}

impl ExportLog {
    /// `origin`'s log in the export at `root` (`logs/<origin>`).
    ///
    /// # Errors
    /// An origin with a `.` or `..` segment.
    pub fn open(root: &Path, origin: &Origin) -> Result<ExportLog, VerifyError> {
        let rel = layout::log_rel(origin)?;
        Ok(ExportLog {
            dir: SafeDir::new(root),
            rel,
            origin: origin.clone(),
        })
    }

    /// The county log's part of an export at `root`: `county/logs/<origin>`.
    ///
    /// # Errors
    /// As [`ExportLog::open`].
    pub fn open_county(root: &Path, origin: &Origin) -> Result<ExportLog, VerifyError> {
        let rel = format!("{}/{}", layout::COUNTY, layout::log_rel(origin)?);
        Ok(ExportLog {
            dir: SafeDir::new(root),
            rel,
            origin: origin.clone(),
        })
    }

    /// The log directory relative to the export root.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// Reads `rel` (relative to the log directory), at most `max` bytes.
    ///
    /// # Errors
    /// As [`SafeDir::read`].
    pub fn read(&self, rel: &str, max: u64) -> Result<Vec<u8>, SourceError> {
        self.dir.read(&format!("{}/{rel}", self.rel), max)
    }
}

impl LogSource for ExportLog {
    fn origin(&self) -> &Origin {
        &self.origin
    }

    fn checkpoint(&mut self) -> Result<Vec<u8>, SourceError> {
        self.read(layout::CHECKPOINT, MAX_NOTE_SIZE as u64)
    }

    fn bundle(&mut self, id: &BundleId) -> Result<Vec<Vec<u8>>, SourceError> {
        let bytes = self.read(&id.path(), MAX_BUNDLE)?;
        let entries = decode_bundle(&bytes, usize::from(id.width()))
            .map_err(|e| SourceError::Malformed(e.to_string()))?;
        Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
    }

    fn tile(&mut self, id: &TileId) -> Result<Option<Vec<u8>>, SourceError> {
        self.read(&id.path(), MAX_TILE).map(Some)
    }

    fn content(&mut self, u: &ContentUse) -> Result<Fetched, SourceError> {
        // Never more than the commitment allows: a longer file is
        // malformed without being read.
        match self.read(
            &layout::content_path(&u.digest),
            u.length.saturating_add(SALT_LEN as u64),
        ) {
            Ok(b) => Ok(Fetched::Blob(b)),
            Err(SourceError::Missing(m)) => Ok(Fetched::NotFound(m)),
            Err(e) => Err(e),
        }
    }

    fn files(&mut self, sub: &str) -> Result<Option<Vec<String>>, SourceError> {
        self.dir
            .files(&format!("{}/{sub}", self.rel), MAX_LISTED)
            .map(Some)
    }

    fn read_listed(&mut self, rel: &str, max: u64) -> Result<Vec<u8>, SourceError> {
        self.read(rel, max)
    }

    fn dir(&self) -> Option<&str> {
        Some(&self.rel)
    }
}

/// The digest a `content/<hex>` file name claims, if it is one.
pub fn content_file_digest(name: &str) -> Option<Hash> {
    Hash::from_hex(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_special_files_and_oversized_files_are_refused_unread() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), b"12345").unwrap();
        let s = SafeDir::new(root);
        assert_eq!(s.read("a/b/f", 5).unwrap(), b"12345");
        assert!(matches!(s.read("a/b/f", 4), Err(SourceError::Malformed(_))));
        assert!(matches!(s.read("a/b/g", 4), Err(SourceError::Missing(_))));
        assert!(matches!(
            s.read("a/../a/b/f", 9),
            Err(SourceError::Malformed(_))
        ));
        // A link to /dev/zero, a link to a directory, a directory as a file.
        std::os::unix::fs::symlink("/dev/zero", root.join("a/zero")).unwrap();
        assert!(matches!(
            s.read("a/zero", 9),
            Err(SourceError::Malformed(_))
        ));
        std::os::unix::fs::symlink(root.join("a/b"), root.join("a/l")).unwrap();
        assert!(matches!(s.read("a/l/f", 9), Err(SourceError::Malformed(_))));
        assert!(matches!(s.read("a/b", 9), Err(SourceError::Malformed(_))));
        // A loop: listed (so it can be reported), never followed.
        std::os::unix::fs::symlink(root.join("a"), root.join("a/b/loop")).unwrap();
        assert_eq!(s.files("a", 100).unwrap(), ["b/f", "b/loop", "l", "zero"]);
        assert!(matches!(s.files("a", 2), Err(SourceError::Malformed(_))));
        assert_eq!(s.files("nothing", 100).unwrap(), Vec::<String>::new());
        // A root that does not exist lists nothing (an export being made).
        let none = SafeDir::new(&root.join("not-yet"));
        assert_eq!(none.files("", 100).unwrap(), Vec::<String>::new());
    }
}
