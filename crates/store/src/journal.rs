//! The journal: the authoritative, append-only file of one log's entries.
//!
//! Everything else a node keeps (tree hashes, checkpoints, the catalog) is
//! derived from the journal and can be rebuilt from it.
//!
//! # File format (version 1)
//!
//! All integers are big-endian. The file is a header followed by records:
//!
//! ```text
//! header  = magic           8 bytes  "GKJOURNL"
//!           version         u32      1
//!           origin_len      u16      1..=1024
//!           origin          origin_len bytes of UTF-8 (the log origin)
//!           header_check    4 bytes  BLAKE3(all header bytes before it)[0..4]
//! record  = len             u32      67..=65535 (the entry's length)
//!           len_complement  u32      len XOR 0xFFFF_FFFF
//!           entry           len bytes, first byte 0x01
//!           check           4 bytes  leaf_hash(entry)[0..4]
//!                                    (leaf_hash = BLAKE3(0x00 || entry))
//! ```
//!
//! Record `i` holds the entry with log index `i`. The length complement
//! guards the length field itself, so a damaged length in the middle of the
//! file is reported as corruption rather than mistaken for a torn tail.
//!
//! # Recovery rule
//!
//! [`Journal::open`] scans every record. A record that is incomplete (it
//! reaches past the end of the file), or complete but failing its check and
//! ending exactly at the end of the file, or a tail of all-zero bytes, is a
//! torn write from a crash before its sync: it was never acknowledged, so it
//! is truncated (and the truncation synced) and the number of bytes cut is
//! reported by [`Journal::truncated_on_open`]. A bad record followed by more
//! data is corruption: the open fails with [`StoreError::Corrupt`] naming the
//! byte offset and entry index. A header that does not match (magic, version,
//! origin) refuses to open.
//!
//! Known limit: a filesystem may persist the pages of an unsynced write out
//! of order, so a crash in the middle of a large, unacknowledged group could
//! in principle leave a damaged record followed by intact ones. That is
//! reported as corruption (the safe answer: the journal never silently drops
//! data it cannot prove was unacknowledged); the operator then restores the
//! tail from the county mirror.
//!
//! # Group commit
//!
//! A dedicated writer thread owns all writes. Callers frame and hash their
//! entries on their own thread, queue them and wait; the writer drains the
//! queue, writes everything with one positional write, issues one
//! `fdatasync`, and only then publishes the new entries to readers and
//! acknowledges every waiter. See [`Journal::append`] for the durability
//! contract.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;

use gongkai_core::hash::leaf_hash;

use crate::StoreError;
use crate::sync::{parent_dir, sync_dir};

/// The journal's magic bytes.
pub const MAGIC: [u8; 8] = *b"GKJOURNL";
/// The journal format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Smallest entry the journal frames (FORMAT.md: the smallest signed entry).
pub const MIN_ENTRY_LEN: usize = 67;
/// Largest entry the journal frames.
pub const MAX_ENTRY_LEN: usize = 65_535;
/// The first byte of every entry (the entry type).
pub const ENTRY_TYPE: u8 = 0x01;
/// Longest origin the header stores, in bytes.
pub const MAX_ORIGIN_LEN: usize = 1024;
/// Bytes a record adds around its entry: length, complement, check.
pub const RECORD_OVERHEAD: usize = 12;

const CHECK_LEN: usize = 4;
const SCAN_CHUNK: usize = 1 << 20;

/// The storage a journal lives in: a file that can be read and written at
/// positions, synced, truncated and sized, and that knows the free space of
/// its filesystem.
///
/// The shipped implementation is a `std::fs::File`; tests use an in-memory
/// implementation that injects `ENOSPC` and simulates power loss.
pub trait JournalFile: Send + Sync + 'static {
    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// Any I/O error, including a short read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset` (to the page cache: not yet durable).
    ///
    /// # Errors
    /// Any I/O error; part of `buf` may have been written.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes everything written so far durable (`fdatasync`).
    ///
    /// # Errors
    /// Any I/O error; durability of unsynced data is then unknown.
    fn sync(&self) -> io::Result<()>;
    /// Sets the file's length to `len`.
    ///
    /// # Errors
    /// Any I/O error.
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// The file's current length.
    ///
    /// # Errors
    /// Any I/O error.
    fn size(&self) -> io::Result<u64>;
    /// Bytes available to this process on the file's filesystem.
    ///
    /// # Errors
    /// Any I/O error.
    fn free_space(&self) -> io::Result<u64>;
}

/// The real journal file.
struct DiskFile {
    file: File,
    dir: PathBuf,
}

impl JournalFile for DiskFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        // fdatasync: flushes the data and the metadata needed to read it
        // back, which includes the file size (fdatasync(2)).
        self.file.sync_data()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn free_space(&self) -> io::Result<u64> {
        let st = rustix::fs::statvfs(&self.dir)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

/// A journal file opened read-only: recovery's "cut the torn tail" only
/// shortens the length this handle reports, and writes are refused, so the
/// file is left exactly as found (backups, offline checks).
struct ReadOnlyFile {
    file: File,
    len: AtomicU64,
}

impl JournalFile for ReadOnlyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "journal opened read-only",
        ))
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.len.store(len, Ordering::SeqCst);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.len.load(Ordering::SeqCst))
    }
    fn free_space(&self) -> io::Result<u64> {
        Ok(0)
    }
}

/// Journal settings.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// Bytes that must stay free on the journal's filesystem after a batch
    /// is written; a batch that would eat into the reserve is refused with
    /// [`StoreError::DiskFull`] before anything is written. Default 64 MiB.
    pub reserve_bytes: u64,
    /// Largest number of bytes the writer puts into one group commit.
    /// Default 16 MiB.
    pub max_group_bytes: usize,
}

impl Default for JournalOptions {
    fn default() -> JournalOptions {
        JournalOptions {
            reserve_bytes: 64 << 20,
            max_group_bytes: 16 << 20,
        }
    }
}

/// What readers may see: only entries covered by a completed sync.
struct State {
    /// Byte offset of every durable record; `offsets[i]` is entry `i`.
    offsets: Vec<u64>,
    /// Byte length of the journal covered by the last successful sync.
    end: u64,
}

struct Shared {
    path: PathBuf,
    origin: String,
    file: Box<dyn JournalFile>,
    state: RwLock<State>,
    poisoned: AtomicBool,
    syncs: AtomicU64,
    options: JournalOptions,
    truncated_on_open: u64,
}

/// A batch framed by the caller, waiting for the writer.
struct Request {
    framed: Vec<u8>,
    /// Length of each record in `framed`.
    record_lens: Vec<u32>,
    reply: mpsc::Sender<Result<Range<u64>, StoreError>>,
}

struct Handle {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop once it is drained.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut t) = self.thread.lock()
            && let Some(t) = t.take()
        {
            let _ = t.join();
        }
    }
}

/// An open journal. Cheap to clone; clones share one writer thread, which
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Journal {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.shared().path)
            .field("origin", &self.shared().origin)
            .field("len", &self.len())
            .finish()
    }
}

impl Journal {
    /// Creates a new, empty journal for `origin` at `path`.
    ///
    /// The header is written to `<path>.creating`, synced, renamed to
    /// `path`, and the directory is synced: after a crash the journal either
    /// exists with a complete header or does not exist.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], [`StoreError::InvalidOrigin`], or
    /// [`StoreError::Io`].
    pub fn create(
        path: impl AsRef<Path>,
        origin: &str,
        options: JournalOptions,
    ) -> Result<Journal, StoreError> {
        let path = path.as_ref();
        let header = encode_header(origin)?;
        if path.exists() {
            return Err(StoreError::AlreadyExists { path: path.into() });
        }
        let dir = parent_dir(path);
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".creating");
        let tmp = dir.join(tmp_name);
        {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| StoreError::io(&tmp, "create", e))?;
            f.write_all_at(&header, 0)
                .map_err(|e| StoreError::io(&tmp, "write", e))?;
            f.sync_all().map_err(|e| StoreError::io(&tmp, "fsync", e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, "rename", e))?;
        sync_dir(dir)?;
        Journal::open(path, origin, options)
    }

    /// Opens an existing journal, checks its header against `origin`, scans
    /// and verifies every record, and truncates a torn tail (see the module
    /// docs for the recovery rule).
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another handle has it open,
    /// [`StoreError::NotAJournal`], [`StoreError::JournalVersion`],
    /// [`StoreError::WrongOrigin`], [`StoreError::Corrupt`], or
    /// [`StoreError::Io`].
    pub fn open(
        path: impl AsRef<Path>,
        origin: &str,
        options: JournalOptions,
    ) -> Result<Journal, StoreError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| StoreError::io(path, "open", e))?;
        // One writer per journal: a second process (or a second open in this
        // one) appending at the same offsets would destroy acknowledged data.
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| StoreError::Locked { path: path.into() })?;
        let dir = parent_dir(path).to_path_buf();
        Journal::open_with(Box::new(DiskFile { file, dir }), path, origin, options)
    }

    /// Opens a journal read-only, without taking its lock: the length is
    /// that of the file now, a torn tail (a record being written by a
    /// running node) is left out but not cut, and appends fail. Because the
    /// journal is append-only, this is a consistent prefix of the log even
    /// while a node appends to it (online backup).
    ///
    /// # Errors
    /// As [`Journal::open`], except [`StoreError::Locked`]; an empty file is
    /// [`StoreError::NotAJournal`].
    pub fn open_read_only(
        path: impl AsRef<Path>,
        origin: &str,
        options: JournalOptions,
    ) -> Result<Journal, StoreError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| StoreError::io(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| StoreError::io(path, "stat", e))?
            .len();
        if len == 0 {
            return Err(StoreError::NotAJournal { path: path.into() });
        }
        let ro = ReadOnlyFile {
            file,
            len: AtomicU64::new(len),
        };
        Journal::open_with(Box::new(ro), path, origin, options)
    }

    /// Opens a journal over any [`JournalFile`] (alternative storage or
    /// fault injection). An empty file is initialised with a header and
    /// synced; otherwise this behaves as [`Journal::open`]. `path` names the
    /// journal in errors.
    ///
    /// # Errors
    /// As [`Journal::open`].
    pub fn open_with(
        file: Box<dyn JournalFile>,
        path: impl Into<PathBuf>,
        origin: &str,
        options: JournalOptions,
    ) -> Result<Journal, StoreError> {
        let path = path.into();
        let file_len = file.size().map_err(|e| StoreError::io(&path, "stat", e))?;
        if file_len == 0 {
            let header = encode_header(origin)?;
            file.write_at(&header, 0)
                .map_err(|e| StoreError::io(&path, "write", e))?;
            file.sync().map_err(|e| StoreError::io(&path, "sync", e))?;
        }
        let scan = scan(file.as_ref(), &path, origin)?;
        let shared = Arc::new(Shared {
            path,
            origin: origin.to_owned(),
            file,
            state: RwLock::new(State {
                offsets: scan.offsets,
                end: scan.end,
            }),
            poisoned: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            options,
            truncated_on_open: scan.truncated,
        });
        let (tx, rx) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(&writer_shared, &rx))
            .map_err(|e| StoreError::io(&shared.path, "spawn writer thread", e))?;
        Ok(Journal {
            handle: Arc::new(Handle {
                shared,
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Appends `entries` as consecutive log entries and returns their index
    /// range.
    ///
    /// # Durability contract
    ///
    /// Returns `Ok` only after the entries are on stable storage: the writer
    /// thread's `fdatasync` covering them has returned. An acknowledged
    /// index survives `kill -9` and power loss and will hold exactly these
    /// bytes after any restart. Many concurrent calls share one sync.
    ///
    /// On `Err` the entries were not acknowledged: they are not visible to
    /// readers of this journal and may or may not be present after a
    /// restart. After a write or sync failure the journal is poisoned: every
    /// later append fails with [`StoreError::Poisoned`] until the journal is
    /// reopened from disk.
    ///
    /// # Errors
    /// [`StoreError::InvalidEntry`] (nothing queued), [`StoreError::DiskFull`]
    /// (nothing written), [`StoreError::Poisoned`], [`StoreError::Io`],
    /// [`StoreError::WriterStopped`].
    pub fn append<E: AsRef<[u8]>>(&self, entries: &[E]) -> Result<Range<u64>, StoreError> {
        let shared = self.shared();
        if entries.is_empty() {
            let len = self.len();
            return Ok(len..len);
        }
        // Frame and hash on the caller's thread, so the writer only copies.
        let mut framed = Vec::with_capacity(
            entries
                .iter()
                .map(|e| e.as_ref().len() + RECORD_OVERHEAD)
                .sum(),
        );
        let mut record_lens = Vec::with_capacity(entries.len());
        for (position, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref();
            check_entry(entry).map_err(|reason| StoreError::InvalidEntry {
                position,
                len: entry.len(),
                reason,
            })?;
            frame_record(entry, &mut framed);
            // The entry length is at most 65,535, so the record fits a u32.
            record_lens.push((entry.len() + RECORD_OVERHEAD) as u32);
        }
        if shared.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::Poisoned {
                path: shared.path.clone(),
            });
        }
        let (reply, wait) = mpsc::channel();
        let stopped = || StoreError::WriterStopped {
            path: shared.path.clone(),
        };
        {
            let tx = self.handle.tx.lock().map_err(|_| stopped())?;
            let tx = tx.as_ref().ok_or_else(stopped)?;
            tx.send(Request {
                framed,
                record_lens,
                reply,
            })
            .map_err(|_| stopped())?;
        }
        wait.recv().map_err(|_| stopped())?
    }

    /// Appends one entry; see [`Journal::append`] for the durability
    /// contract.
    ///
    /// # Errors
    /// As [`Journal::append`].
    pub fn append_one(&self, entry: &[u8]) -> Result<u64, StoreError> {
        Ok(self.append(&[entry])?.start)
    }

    /// Reads the entry at `index`, verifying its record check.
    ///
    /// # Errors
    /// [`StoreError::OutOfRange`], [`StoreError::Corrupt`] if the record no
    /// longer matches its check, [`StoreError::Io`].
    pub fn read(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        let mut v = self.read_range(index, index.saturating_add(1))?;
        v.pop().ok_or(StoreError::OutOfRange {
            index,
            len: self.len(),
        })
    }

    /// Reads entries `start..end` with one positional read, verifying each
    /// record. The caller bounds the range (the node pages by 256).
    ///
    /// # Errors
    /// As [`Journal::read`].
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let shared = self.shared();
        if start >= end {
            return Ok(Vec::new());
        }
        let (from, to) = {
            let st = shared
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let len = st.offsets.len() as u64;
            if end > len {
                return Err(StoreError::OutOfRange {
                    index: len.max(start),
                    len,
                });
            }
            let from = st.offsets[start as usize];
            let to = if end == len {
                st.end
            } else {
                st.offsets[end as usize]
            };
            (from, to)
        };
        let mut buf = vec![0u8; (to - from) as usize];
        shared
            .file
            .read_at(&mut buf, from)
            .map_err(|e| StoreError::io(&shared.path, "read", e))?;
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut pos = 0usize;
        for index in start..end {
            let offset = from + pos as u64;
            let corrupt = |reason: String| StoreError::Corrupt {
                path: shared.path.clone(),
                offset,
                index,
                reason,
            };
            let rec = &buf[pos..];
            let len = match parse_len(rec) {
                Some(Ok(len)) if rec.len() >= len + RECORD_OVERHEAD => len,
                _ => return Err(corrupt("record header damaged since open".into())),
            };
            let entry = &rec[8..8 + len];
            if rec[8 + len..8 + len + CHECK_LEN] != record_check(entry) {
                return Err(corrupt("record check fails (changed since open)".into()));
            }
            out.push(entry.to_vec());
            pos += len + RECORD_OVERHEAD;
        }
        Ok(out)
    }

    /// Number of durable entries (the next index to be assigned).
    pub fn len(&self) -> u64 {
        self.shared()
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .offsets
            .len() as u64
    }

    /// Whether the journal holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Byte length of the journal covered by the last successful sync
    /// (header included).
    pub fn synced_len(&self) -> u64 {
        self.shared()
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .end
    }

    /// Bytes of torn tail cut off when this journal was opened (0 after a
    /// clean shutdown).
    pub fn truncated_on_open(&self) -> u64 {
        self.shared().truncated_on_open
    }

    /// Checks that `bytes` more would leave the free-space reserve intact,
    /// without writing anything. Callers that change in-memory state before
    /// appending ask first, so a full disk is refused cleanly instead of
    /// failing an append whose effects they would have to undo.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] below the reserve; [`StoreError::Io`] if the
    /// free space cannot be read.
    pub fn check_room(&self, bytes: u64) -> Result<(), StoreError> {
        let shared = self.shared();
        let free = shared
            .file
            .free_space()
            .map_err(|e| StoreError::io(&shared.path, "statvfs", e))?;
        if free < bytes + shared.options.reserve_bytes {
            return Err(StoreError::DiskFull {
                path: shared.path.clone(),
                free,
                needed: bytes,
                reserve: shared.options.reserve_bytes,
            });
        }
        Ok(())
    }

    /// Whether an I/O failure has poisoned the journal (reopen to recover).
    pub fn is_poisoned(&self) -> bool {
        self.shared().poisoned.load(Ordering::SeqCst)
    }

    /// Number of successful `fdatasync` calls made by the writer since open.
    pub fn sync_count(&self) -> u64 {
        self.shared().syncs.load(Ordering::SeqCst)
    }

    /// The log origin recorded in the header.
    pub fn origin(&self) -> &str {
        &self.shared().origin
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.shared().path
    }
}

/// The writer thread: drain, write, sync, publish, acknowledge.
fn writer_loop(shared: &Shared, rx: &mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut size = first.framed.len();
        let mut group = vec![first];
        while size < shared.options.max_group_bytes {
            match rx.try_recv() {
                Ok(r) => {
                    size += r.framed.len();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        commit_group(shared, group);
    }
}

fn commit_group(shared: &Shared, group: Vec<Request>) {
    let path = &shared.path;
    if shared.poisoned.load(Ordering::SeqCst) {
        fail_all(group, || StoreError::Poisoned { path: path.clone() });
        return;
    }
    let (first_index, end) = {
        let st = shared
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (st.offsets.len() as u64, st.end)
    };
    let needed: usize = group.iter().map(|r| r.framed.len()).sum();

    // Free-space reserve: refuse the whole group before writing anything.
    match shared.file.free_space() {
        Ok(free) if free < needed as u64 + shared.options.reserve_bytes => {
            let reserve = shared.options.reserve_bytes;
            fail_all(group, || StoreError::DiskFull {
                path: path.clone(),
                free,
                needed: needed as u64,
                reserve,
            });
            return;
        }
        Ok(_) => {}
        Err(e) => {
            fail_all(group, || StoreError::io(path, "statvfs", clone_io(&e)));
            return;
        }
    }

    let mut buf = Vec::with_capacity(needed);
    let mut offsets = Vec::new();
    for req in &group {
        let mut at = end + buf.len() as u64;
        for &l in &req.record_lens {
            offsets.push(at);
            at += u64::from(l);
        }
        buf.extend_from_slice(&req.framed);
    }

    // Commit point 1: bytes handed to the kernel (page cache). Not durable:
    // a crash now may keep none, some or all of them, possibly a torn last
    // record, which recovery truncates. Nothing is acknowledged.
    if let Err(e) = shared.file.write_at(&buf, end) {
        poison_and_fail(shared, group, end, "write", &e);
        return;
    }
    // Commit point 2: fdatasync returned. The group is durable: recovery
    // after any crash from here on finds every record of it.
    if let Err(e) = shared.file.sync() {
        poison_and_fail(shared, group, end, "sync", &e);
        return;
    }
    shared.syncs.fetch_add(1, Ordering::SeqCst);
    // Commit point 3: publish to readers. Only durable entries are ever
    // visible, so nothing a reader saw (or forwarded) can be lost.
    {
        let mut st = shared
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.offsets.extend_from_slice(&offsets);
        st.end = end + buf.len() as u64;
    }
    // Commit point 4: acknowledge every waiter with its index range. Only
    // now may a caller report an index as assigned.
    let mut next = first_index;
    for req in group {
        let n = req.record_lens.len() as u64;
        let _ = req.reply.send(Ok(next..next + n));
        next += n;
    }
}

/// A write or sync failed: the state of the unsynced bytes is unknown.
/// Poison first (so no later append can run on this state), cut the file
/// back to the last synced length (best effort), then fail every waiter.
fn poison_and_fail(
    shared: &Shared,
    group: Vec<Request>,
    synced_end: u64,
    op: &'static str,
    e: &io::Error,
) {
    shared.poisoned.store(true, Ordering::SeqCst);
    if shared.file.truncate(synced_end).is_ok() {
        let _ = shared.file.sync();
    }
    fail_all(group, || StoreError::io(&shared.path, op, clone_io(e)));
}

fn fail_all(group: Vec<Request>, err: impl Fn() -> StoreError) {
    for req in group {
        let _ = req.reply.send(Err(err()));
    }
}

fn clone_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

fn check_entry(entry: &[u8]) -> Result<(), &'static str> {
    if entry.len() < MIN_ENTRY_LEN {
        return Err("shorter than 67 bytes");
    }
    if entry.len() > MAX_ENTRY_LEN {
        return Err("longer than 65,535 bytes");
    }
    if entry[0] != ENTRY_TYPE {
        return Err("first byte is not 0x01");
    }
    Ok(())
}

fn record_check(entry: &[u8]) -> [u8; CHECK_LEN] {
    let h = leaf_hash(entry);
    let mut c = [0u8; CHECK_LEN];
    c.copy_from_slice(&h.0[..CHECK_LEN]);
    c
}

fn frame_record(entry: &[u8], out: &mut Vec<u8>) {
    let len = entry.len() as u32;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&(!len).to_be_bytes());
    out.extend_from_slice(entry);
    out.extend_from_slice(&record_check(entry));
}

/// Parses a record's 8-byte length header: `None` if fewer than 8 bytes,
/// `Some(Err)` if the length or its complement is wrong.
fn parse_len(rec: &[u8]) -> Option<Result<usize, String>> {
    let len = u32::from_be_bytes(rec.get(0..4)?.try_into().ok()?);
    let comp = u32::from_be_bytes(rec.get(4..8)?.try_into().ok()?);
    if comp != !len {
        return Some(Err(format!(
            "length field {len} does not match its complement {comp:#010x}"
        )));
    }
    let len = len as usize;
    if !(MIN_ENTRY_LEN..=MAX_ENTRY_LEN).contains(&len) {
        return Some(Err(format!("record length {len} outside 67..=65535")));
    }
    Some(Ok(len))
}

fn validate_origin(origin: &str) -> Result<(), StoreError> {
    let reason = if origin.is_empty() {
        "empty"
    } else if origin.len() > MAX_ORIGIN_LEN {
        "longer than 1024 bytes"
    } else if origin.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidOrigin {
        origin: origin.to_owned(),
        reason,
    })
}

fn encode_header(origin: &str) -> Result<Vec<u8>, StoreError> {
    validate_origin(origin)?;
    let mut h = Vec::with_capacity(18 + origin.len());
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    h.extend_from_slice(&(origin.len() as u16).to_be_bytes());
    h.extend_from_slice(origin.as_bytes());
    let check = blake3::hash(&h);
    h.extend_from_slice(&check.as_bytes()[..CHECK_LEN]);
    Ok(h)
}

struct Scan {
    offsets: Vec<u64>,
    end: u64,
    truncated: u64,
}

/// A sliding read window over the journal file for the open-time scan.
struct Window<'a> {
    file: &'a dyn JournalFile,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl Window<'_> {
    /// Bytes `off..off + n`; the caller ensures `off + n <= file_len`.
    fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]> {
        let have_end = self.start + self.buf.len() as u64;
        if off < self.start || off + n as u64 > have_end {
            let want = n.max(SCAN_CHUNK).min((self.file_len - off) as usize);
            self.buf.resize(want, 0);
            self.file.read_at(&mut self.buf, off)?;
            self.start = off;
        }
        let s = (off - self.start) as usize;
        Ok(&self.buf[s..s + n])
    }

    fn all_zero_from(&mut self, mut off: u64) -> io::Result<bool> {
        while off < self.file_len {
            let n = (self.file_len - off).min(SCAN_CHUNK as u64) as usize;
            if self.get(off, n)?.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            off += n as u64;
        }
        Ok(true)
    }
}

fn parse_header(w: &mut Window<'_>, path: &Path, origin: &str) -> Result<u64, StoreError> {
    let io = |e| StoreError::io(path, "read", e);
    let not_journal = || StoreError::NotAJournal { path: path.into() };
    if w.file_len < 14 {
        return Err(not_journal());
    }
    let fixed = w.get(0, 14).map_err(io)?.to_vec();
    if fixed[..8] != MAGIC {
        return Err(not_journal());
    }
    let version = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    if version != FORMAT_VERSION {
        return Err(StoreError::JournalVersion {
            path: path.into(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let origin_len = usize::from(u16::from_be_bytes([fixed[12], fixed[13]]));
    let header_len = 14 + origin_len + CHECK_LEN;
    if origin_len > MAX_ORIGIN_LEN || w.file_len < header_len as u64 {
        return Err(not_journal());
    }
    let header = w.get(0, header_len).map_err(io)?;
    let body = &header[..header_len - CHECK_LEN];
    if header[header_len - CHECK_LEN..] != blake3::hash(body).as_bytes()[..CHECK_LEN] {
        return Err(not_journal());
    }
    let found = String::from_utf8_lossy(&body[14..]).into_owned();
    if found != origin {
        return Err(StoreError::WrongOrigin {
            path: path.into(),
            found,
            expected: origin.to_owned(),
        });
    }
    Ok(header_len as u64)
}

/// Scans the whole journal: header, then every record, applying the
/// recovery rule of the module docs.
fn scan(file: &dyn JournalFile, path: &Path, origin: &str) -> Result<Scan, StoreError> {
    let io = |e| StoreError::io(path, "read", e);
    let file_len = file.size().map_err(|e| StoreError::io(path, "stat", e))?;
    let mut w = Window {
        file,
        file_len,
        start: 0,
        buf: Vec::new(),
    };
    let mut off = parse_header(&mut w, path, origin)?;
    let mut offsets = Vec::new();
    // Where a torn tail starts, if there is one.
    let mut torn_at = None;
    while off < file_len {
        let index = offsets.len() as u64;
        let remaining = file_len - off;
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.into(),
            offset: off,
            index,
            reason,
        };
        if remaining < 8 {
            // Incomplete length header: torn.
            torn_at = Some(off);
            break;
        }
        let len = match parse_len(w.get(off, 8).map_err(io)?) {
            Some(Ok(len)) => len,
            Some(Err(reason)) => {
                // Zero-filled tail: size extended, data never written.
                if w.all_zero_from(off).map_err(io)? {
                    torn_at = Some(off);
                    break;
                }
                return Err(corrupt(reason));
            }
            None => return Err(corrupt("short record header".into())),
        };
        let rec_len = (len + RECORD_OVERHEAD) as u64;
        if remaining < rec_len {
            // The record reaches past the end of the file: torn.
            torn_at = Some(off);
            break;
        }
        let rec = w.get(off, len + RECORD_OVERHEAD).map_err(io)?;
        let entry = &rec[8..8 + len];
        let problem = if rec[8 + len..] != record_check(entry) {
            Some("record check fails")
        } else if entry[0] != ENTRY_TYPE {
            Some("entry does not start with 0x01")
        } else {
            None
        };
        if let Some(problem) = problem {
            if remaining == rec_len {
                // The bad record is the last thing in the file: torn.
                torn_at = Some(off);
                break;
            }
            return Err(corrupt(format!("{problem}, and more data follows")));
        }
        offsets.push(off);
        off += rec_len;
    }
    let mut truncated = 0;
    let end = match torn_at {
        Some(at) => {
            // Recovery: cut the torn tail and make the cut durable before
            // any new append can be placed after it.
            file.truncate(at)
                .map_err(|e| StoreError::io(path, "truncate torn tail", e))?;
            file.sync()
                .map_err(|e| StoreError::io(path, "sync after truncate", e))?;
            truncated = file_len - at;
            at
        }
        None => file_len,
    };
    Ok(Scan {
        offsets,
        end,
        truncated,
    })
}

#[cfg(test)]
mod tests;
