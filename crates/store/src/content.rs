//! The content store: documents addressed by their salted commitment.
//!
//! An event commits to a document by `digest = BLAKE3-keyed(salt, bytes)`
//! with a random 32-byte `salt` (FORMAT.md § Content). The store keeps each
//! document in one file named by the digest's lowercase hex, fanned out by
//! its first byte:
//!
//! ```text
//! <root>/objects/ab/cdef…(62 more hex digits)   one blob
//! <root>/tmp/                                    temp files of puts in flight
//! ```
//!
//! A blob file is `magic || salt || bytes`:
//!
//! ```text
//! magic  8 bytes  "GKBLOB01"
//! salt   32 bytes
//! bytes  the document
//! ```
//!
//! Keeping the salt in the same file as the bytes makes a put or a removal
//! one atomic rename or unlink: there is never a blob without its salt.
//!
//! # Durability
//!
//! `put` writes to a temp file under `tmp/`, `fsync`s it, renames it into
//! place and `fsync`s the fan-out directory; it returns only after all of
//! that. `remove` (redaction) unlinks and `fsync`s the directory. A crash
//! leaves at most temp files, which [`ContentStore::open`] deletes.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gongkai_core::hash::Hash;

use crate::StoreError;
use crate::sync::sync_dir;

/// Magic bytes at the start of every blob file.
pub const BLOB_MAGIC: [u8; 8] = *b"GKBLOB01";
/// Bytes before the document in a blob file (magic and salt).
pub const BLOB_HEADER_LEN: u64 = 40;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A stored document, opened for reading.
#[derive(Debug)]
pub struct Blob {
    /// The salt the digest was computed with.
    pub salt: [u8; 32],
    /// Length of the document in bytes.
    pub len: u64,
    /// The file, positioned at the first byte of the document.
    pub file: File,
}

impl Blob {
    /// Reads the whole document.
    ///
    /// # Errors
    /// Any I/O error.
    pub fn read_to_vec(mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        self.file.read_to_end(&mut v)?;
        Ok(v)
    }
}

/// A stored document read whole and verified against its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The salt the digest was computed with.
    pub salt: [u8; 32],
    /// The document's bytes.
    pub bytes: Vec<u8>,
}

/// The content store under one directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    /// Free bytes every write leaves on the disk (the journal's reserve:
    /// documents must not take the room the log needs).
    reserve: u64,
}

/// A document being written into the store: hashed while it is written to
/// a temp file, renamed into place by [`PendingBlob::commit`] only if its
/// length and digest match the commitment; dropped uncommitted, the temp
/// file is removed. Nothing is held in memory but one chunk.
pub struct PendingBlob {
    root: PathBuf,
    tmp: TempGuard,
    file: File,
    hasher: blake3::Hasher,
    written: u64,
    len: u64,
}

impl std::fmt::Debug for PendingBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingBlob")
            .field("written", &self.written)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl PendingBlob {
    fn tmp_path(&self) -> &Path {
        self.tmp.0.as_deref().unwrap_or(Path::new("?"))
    }

    /// Appends `chunk`.
    ///
    /// # Errors
    /// [`StoreError::LengthMismatch`] past the committed length (nothing
    /// more is written), [`StoreError::Io`].
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let after = self.written.saturating_add(chunk.len() as u64);
        if after > self.len {
            return Err(StoreError::LengthMismatch {
                digest: String::new(),
                expected: self.len,
                found: after,
            });
        }
        self.file
            .write_all(chunk)
            .map_err(|e| StoreError::io(self.tmp_path(), "write", e))?;
        self.hasher.update(chunk);
        self.written = after;
        Ok(())
    }

    /// The digest of what was written (`BLAKE3-keyed(salt, bytes)`).
    pub fn digest(&self) -> Hash {
        Hash(*self.hasher.finalize().as_bytes())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the document durable under `digest` if it is complete and
    /// hashes to it: fsync, rename into place, fsync of the directory.
    /// Returns `false` if the digest was already stored (then fsynced again
    /// with its directory, since an earlier commit's directory fsync may
    /// have failed; the temp file is removed).
    ///
    /// # Errors
    /// [`StoreError::LengthMismatch`], [`StoreError::DigestMismatch`]
    /// (nothing stored), [`StoreError::Io`].
    pub fn commit(mut self, digest: &Hash) -> Result<bool, StoreError> {
        if self.written != self.len {
            return Err(StoreError::LengthMismatch {
                digest: digest.to_hex(),
                expected: self.len,
                found: self.written,
            });
        }
        let found = self.digest();
        if found != *digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.to_hex(),
                found: found.to_hex(),
            });
        }
        let dest = blob_path(&self.root, digest);
        if dest.exists() {
            // Uploaded again: its age restarts, so a collection of
            // unreferenced uploads does not take it just before it is used.
            let _ = File::options()
                .append(true)
                .open(&dest)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            // Visible is not durable: an earlier commit may have renamed
            // it into place and then failed to fsync the directory (EIO),
            // and this retry is the caller's only way to learn it is safe.
            // So it is made durable again before "already stored" is said.
            File::open(&dest)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io(&dest, "fsync", e))?;
            if let Some(fan) = dest.parent() {
                sync_dir(fan)?;
            }
            sync_dir(&self.root.join("objects"))?;
            return Ok(false);
        }
        // 1. Temp file complete and fsynced: durable, but not yet visible.
        let tmp = self.tmp_path().to_path_buf();
        self.file
            .sync_all()
            .map_err(|e| StoreError::io(&tmp, "fsync", e))?;
        let fan = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.join("objects"));
        if !fan.exists() {
            fs::create_dir_all(&fan).map_err(|e| StoreError::io(&fan, "create dir", e))?;
        }
        // The fan-out directory's own entry, every time: a first commit
        // whose fsync of it failed leaves the directory there, and a retry
        // must not take that for durable.
        sync_dir(&self.root.join("objects"))?;
        // 2. Rename: atomically visible to readers, not yet durable.
        fs::rename(&tmp, &dest).map_err(|e| StoreError::io(&dest, "rename", e))?;
        self.tmp.0 = None;
        // 3. Directory fsynced: the blob survives power loss. Only now
        //    return success.
        sync_dir(&fan)?;
        Ok(true)
    }
}

fn blob_path(root: &Path, digest: &Hash) -> PathBuf {
    let hex = digest.to_hex();
    root.join("objects").join(&hex[..2]).join(&hex[2..])
}

/// Removes a temp file on drop unless it was renamed into place.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root` and deletes temp files
    /// left by a crash.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn open(root: impl AsRef<Path>) -> Result<ContentStore, StoreError> {
        let root = root.as_ref().to_path_buf();
        for dir in [root.clone(), root.join("objects"), root.join("tmp")] {
            if !dir.exists() {
                fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, "create dir", e))?;
            }
        }
        let tmp = root.join("tmp");
        let mut removed = false;
        for e in fs::read_dir(&tmp).map_err(|e| StoreError::io(&tmp, "read dir", e))? {
            let e = e.map_err(|e| StoreError::io(&tmp, "read dir", e))?;
            let p = e.path();
            fs::remove_file(&p).map_err(|e| StoreError::io(&p, "remove leftover temp", e))?;
            removed = true;
        }
        if removed {
            sync_dir(&tmp)?;
        }
        sync_dir(&root)?;
        Ok(ContentStore { root, reserve: 0 })
    }

    /// The same store, leaving `bytes` free on its disk at every write.
    #[must_use]
    pub fn with_reserve(mut self, bytes: u64) -> ContentStore {
        self.reserve = bytes;
        self
    }

    /// Path of the blob file for `digest`.
    pub fn blob_path(&self, digest: &Hash) -> PathBuf {
        blob_path(&self.root, digest)
    }

    /// Starts writing a document of committed length `len` hashed with
    /// `salt`, after checking the disk keeps the reserve with it.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] (nothing written), [`StoreError::Io`].
    pub fn begin(&self, salt: &[u8; 32], len: u64) -> Result<PendingBlob, StoreError> {
        let tmp_dir = self.root.join("tmp");
        let st = rustix::fs::statvfs(&tmp_dir)
            .map_err(|e| StoreError::io(&tmp_dir, "statvfs", e.into()))?;
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        let needed = len.saturating_add(BLOB_HEADER_LEN);
        if free < needed.saturating_add(self.reserve) {
            return Err(StoreError::DiskFull {
                path: tmp_dir,
                free,
                needed,
                reserve: self.reserve,
            });
        }
        let tmp = tmp_dir.join(format!(
            "{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let guard = TempGuard(Some(tmp.clone()));
        let mut file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, "create", e))?;
        let werr = |e| StoreError::io(&tmp, "write", e);
        file.write_all(&BLOB_MAGIC).map_err(werr)?;
        file.write_all(salt).map_err(werr)?;
        Ok(PendingBlob {
            root: self.root.clone(),
            tmp: guard,
            file,
            hasher: blake3::Hasher::new_keyed(salt),
            written: 0,
            len,
        })
    }

    /// Stores `bytes` under `digest` after checking
    /// `BLAKE3-keyed(salt, bytes) == digest`. Idempotent: returns `false`
    /// if the digest was already stored, `true` if it was stored now.
    /// Returns only after the blob is durable (see the module docs).
    ///
    /// # Errors
    /// [`StoreError::DigestMismatch`] (nothing written), [`StoreError::Io`].
    pub fn put(&self, digest: &Hash, salt: &[u8; 32], bytes: &[u8]) -> Result<bool, StoreError> {
        let found = blake3::keyed_hash(salt, bytes);
        if found.as_bytes() != digest.as_bytes() {
            return Err(StoreError::DigestMismatch {
                expected: digest.to_hex(),
                found: found.to_hex().to_string(),
            });
        }
        self.put_from_reader(digest, salt, bytes.len() as u64, bytes)
    }

    /// Streams a document of committed length `len` from `reader` into the
    /// store, hashing while writing to a temp file; renames it into place
    /// only if both the length and the digest match the commitment.
    /// Idempotent like [`ContentStore::put`]; durable on return.
    ///
    /// # Errors
    /// [`StoreError::LengthMismatch`] or [`StoreError::DigestMismatch`]
    /// (the temp file is removed; nothing is stored), [`StoreError::Io`].
    pub fn put_from_reader(
        &self,
        digest: &Hash,
        salt: &[u8; 32],
        len: u64,
        reader: impl Read,
    ) -> Result<bool, StoreError> {
        if self.blob_path(digest).exists() {
            return Ok(false);
        }
        let mut pending = self.begin(salt, len)?;
        // Read at most one byte more than committed, to detect a longer
        // stream without reading it all.
        let mut reader = reader.take(len.saturating_add(1));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io(pending.tmp_path(), "read source", e)),
            };
            pending.write(&buf[..n]).map_err(|e| match e {
                StoreError::LengthMismatch { expected, .. } => StoreError::LengthMismatch {
                    digest: digest.to_hex(),
                    expected,
                    found: expected + 1,
                },
                e => e,
            })?;
        }
        pending.commit(digest)
    }

    /// Whether a blob is stored under `digest`.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the filesystem cannot answer.
    pub fn contains(&self, digest: &Hash) -> Result<bool, StoreError> {
        let p = self.blob_path(digest);
        match fs::metadata(&p) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&p, "stat", e)),
        }
    }

    /// Opens the blob stored under `digest`, or `None`. The bytes are not
    /// re-hashed (use [`ContentStore::get_bytes`] for a verified read).
    ///
    /// # Errors
    /// [`StoreError::CorruptContent`] on a bad header, [`StoreError::Io`].
    pub fn get(&self, digest: &Hash) -> Result<Option<Blob>, StoreError> {
        let p = self.blob_path(digest);
        let mut file = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&p, "open", e)),
        };
        let size = file
            .metadata()
            .map_err(|e| StoreError::io(&p, "stat", e))?
            .len();
        let corrupt = |reason: &str| StoreError::CorruptContent {
            path: p.clone(),
            reason: reason.to_owned(),
        };
        if size < BLOB_HEADER_LEN {
            return Err(corrupt("shorter than its header"));
        }
        let mut header = [0u8; BLOB_HEADER_LEN as usize];
        file.read_exact(&mut header)
            .map_err(|e| StoreError::io(&p, "read", e))?;
        if header[..8] != BLOB_MAGIC {
            return Err(corrupt("bad magic"));
        }
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&header[8..]);
        file.seek(SeekFrom::Start(BLOB_HEADER_LEN))
            .map_err(|e| StoreError::io(&p, "seek", e))?;
        Ok(Some(Blob {
            salt,
            len: size - BLOB_HEADER_LEN,
            file,
        }))
    }

    /// Reads the whole blob stored under `digest` and verifies it against
    /// the digest, or `None`.
    ///
    /// # Errors
    /// [`StoreError::CorruptContent`] if the bytes no longer match,
    /// [`StoreError::Io`].
    pub fn get_bytes(&self, digest: &Hash) -> Result<Option<Document>, StoreError> {
        let Some(blob) = self.get(digest)? else {
            return Ok(None);
        };
        let salt = blob.salt;
        let p = self.blob_path(digest);
        let bytes = blob
            .read_to_vec()
            .map_err(|e| StoreError::io(&p, "read", e))?;
        if blake3::keyed_hash(&salt, &bytes).as_bytes() != digest.as_bytes() {
            return Err(StoreError::CorruptContent {
                path: p,
                reason: "bytes do not match the digest".into(),
            });
        }
        Ok(Some(Document { salt, bytes }))
    }

    /// Removes the blob of `digest` (see [`ContentStore::remove`]) only if
    /// it was last written before `cutoff`: one uploaded again meanwhile is
    /// kept.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn remove_if_older(
        &self,
        digest: &Hash,
        cutoff: std::time::SystemTime,
    ) -> Result<bool, StoreError> {
        let p = self.blob_path(digest);
        match fs::metadata(&p).and_then(|m| m.modified()) {
            Ok(t) if t < cutoff => self.remove(digest),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&p, "stat", e)),
        }
    }

    /// The digests of every blob last written before `cutoff`.
    ///
    /// # Errors
    /// [`StoreError::Io`] if a directory cannot be listed.
    pub fn stored_before(&self, cutoff: std::time::SystemTime) -> Result<Vec<Hash>, StoreError> {
        let objects = self.root.join("objects");
        let mut out = Vec::new();
        let list = |d: &Path| fs::read_dir(d).map_err(|e| StoreError::io(d, "read dir", e));
        for fan in list(&objects)? {
            let fan = fan.map_err(|e| StoreError::io(&objects, "read dir", e))?;
            let prefix = fan.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !fan.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for f in list(&fan.path())? {
                let f = f.map_err(|e| StoreError::io(fan.path(), "read dir", e))?;
                let name = format!("{prefix}{}", f.file_name().to_string_lossy());
                let Ok(digest) = Hash::from_hex(&name) else {
                    continue;
                };
                if f.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cutoff)
                {
                    out.push(digest);
                }
            }
        }
        Ok(out)
    }

    /// Removes the blob (and with it its salt) durably, for a redaction.
    /// Returns whether it was present.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn remove(&self, digest: &Hash) -> Result<bool, StoreError> {
        let p = self.blob_path(digest);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io(&p, "remove", e)),
        }
        // The unlink is durable only once the directory is synced.
        if let Some(dir) = p.parent() {
            sync_dir(dir)?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(salt: &[u8; 32], bytes: &[u8]) -> Hash {
        Hash(*blake3::keyed_hash(salt, bytes).as_bytes())
    }

    fn tmp_entries(store: &ContentStore) -> usize {
        fs::read_dir(store.root.join("tmp")).unwrap().count()
    }

    #[test]
    fn put_get_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        let salt = [7u8; 32];
        let doc = b"2025 budget and final accounts of the finance bureau".to_vec();
        let d = commit(&salt, &doc);
        assert!(!s.contains(&d).unwrap());
        assert!(s.get(&d).unwrap().is_none());
        assert!(s.put(&d, &salt, &doc).unwrap());
        assert!(!s.put(&d, &salt, &doc).unwrap(), "idempotent");
        assert!(s.contains(&d).unwrap());
        let hex = d.to_hex();
        let path = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
        assert_eq!(s.blob_path(&d), path);
        let raw = fs::read(&path).unwrap();
        assert_eq!(&raw[..8], b"GKBLOB01");
        assert_eq!(&raw[8..40], &salt);
        assert_eq!(&raw[40..], &doc[..]);
        let blob = s.get(&d).unwrap().unwrap();
        assert_eq!(blob.salt, salt);
        assert_eq!(blob.len, doc.len() as u64);
        assert_eq!(blob.read_to_vec().unwrap(), doc);
        assert_eq!(
            s.get_bytes(&d).unwrap().unwrap(),
            Document {
                salt,
                bytes: doc.clone()
            }
        );
        assert!(s.remove(&d).unwrap());
        assert!(!s.remove(&d).unwrap());
        assert!(!s.contains(&d).unwrap());
        assert!(!path.exists());
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn mismatches_refused_and_nothing_left() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        let salt = [1u8; 32];
        let doc = vec![42u8; 200_000];
        let d = commit(&salt, &doc);
        let wrong = commit(&[2u8; 32], &doc);
        assert!(matches!(
            s.put(&wrong, &salt, &doc),
            Err(StoreError::DigestMismatch { .. })
        ));
        // Streaming: wrong digest, too short, too long.
        assert!(matches!(
            s.put_from_reader(&wrong, &salt, doc.len() as u64, &doc[..]),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(matches!(
            s.put_from_reader(&d, &salt, doc.len() as u64, &doc[..1000]),
            Err(StoreError::LengthMismatch { found: 1000, .. })
        ));
        let mut longer = doc.clone();
        longer.push(0);
        assert!(matches!(
            s.put_from_reader(&d, &salt, doc.len() as u64, &longer[..]),
            Err(StoreError::LengthMismatch { .. })
        ));
        assert!(!s.contains(&d).unwrap());
        assert!(!s.contains(&wrong).unwrap());
        assert_eq!(tmp_entries(&s), 0, "temp files removed");
        assert!(
            s.put_from_reader(&d, &salt, doc.len() as u64, &doc[..])
                .unwrap()
        );
        assert_eq!(s.get_bytes(&d).unwrap().unwrap().bytes, doc);
    }

    #[test]
    fn leftover_temp_files_cleaned_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        fs::write(
            dir.path().join("tmp").join("abc.1.2.tmp"),
            b"half a document",
        )
        .unwrap();
        assert_eq!(tmp_entries(&s), 1);
        let s = ContentStore::open(dir.path()).unwrap();
        assert_eq!(tmp_entries(&s), 0);
    }

    #[test]
    fn damaged_blob_detected_on_verified_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        let salt = [3u8; 32];
        let d = commit(&salt, b"name list");
        s.put(&d, &salt, b"name list").unwrap();
        let p = s.blob_path(&d);
        let mut raw = fs::read(&p).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(&p, &raw).unwrap();
        assert!(matches!(
            s.get_bytes(&d),
            Err(StoreError::CorruptContent { .. })
        ));
        fs::write(&p, b"GKBLOB").unwrap();
        assert!(matches!(s.get(&d), Err(StoreError::CorruptContent { .. })));
    }
}
