//! The county's own state, in one sled database (`<data_dir>/county`):
//!
//! * `departments`: per origin, a JSON [`DepartmentRecord`] — the checkpoint
//!   the county last cosigned (the department's note as presented, the
//!   cosigned note, size, time), the largest size seen, push and advance
//!   times, the size last put in a county leaf, the suspension reason;
//! * `evidence`: evidence id → JSON [`EvidenceRecord`] (the file itself is
//!   `<data_dir>/evidence/<id>.txt`);
//! * `missing`: `origin 0x00 digest` → committed length, for content the
//!   mirror lacks;
//! * `county`: the county log (see [`crate::county_log`]).
//!
//! "The size I last cosigned" and the new one are checked and persisted
//! together: [`State::swap_record`] is a sled compare-and-swap against the
//! record the caller read, so a slow request can never roll a cosigned size
//! back (C2SP tlog-witness), even if the per-origin lock were bypassed.
//!
//! **Durability.** sled 0.34's `flush` issues `sync_file_range` on Linux,
//! which persists neither the file size nor the device cache. So
//! [`State::swap_record`] with [`Durability::Synced`] (a new cosignature,
//! a suspension), [`State::put_evidence`] and [`State::sync`] (the county
//! log) also `fdatasync` sled's files after the flush and return only then:
//! nothing the county signs leaves it before the state that signature
//! commits to survives power loss.
//!
//! **Reads without sled.** sled 0.34 serializes every operation of the
//! process against any `apply_batch` through one global lock, so a mirror's
//! projection batch would stall every record read. The records and the
//! number of missing digests per origin are therefore also kept in memory
//! (this database has one writer, [`State`], and the cache changes only
//! after sled accepted the write).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::AggregatorError;

/// What the county keeps per department.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentRecord {
    /// Largest size cosigned (0: none).
    pub cosigned_size: u64,
    /// The department's checkpoint note as presented (its signature lines).
    pub presented_note: String,
    /// The cosigned note served to everyone.
    pub cosigned_note: String,
    /// Unix seconds of the newest cosignature.
    pub cosigned_time: u64,
    /// Largest checkpoint size the department presented.
    pub seen_size: u64,
    /// Unix ms of the last accepted push.
    pub last_push_ms: u64,
    /// Unix ms when the cosigned size last grew.
    pub last_advance_ms: u64,
    /// Cosigned size last included in a county leaf.
    pub leafed_size: u64,
    /// Set while cosigning is suspended (evidence recorded).
    pub suspended: Option<String>,
    /// Content bytes mirrored.
    pub content_bytes: u64,
    /// Entries that arrived claiming times well before the county first
    /// cosigned a checkpoint that lacked them (FORMAT.md § 17), counted at
    /// push time.
    #[serde(default)]
    pub back_dated: u64,
    /// The newest such entry's index.
    #[serde(default)]
    pub back_dated_index: u64,
}

/// An evidence index record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// Evidence id.
    pub id: String,
    /// Department.
    pub origin: String,
    /// Kind (FORMAT.md § 20).
    pub kind: String,
    /// Unix seconds.
    pub observed: u64,
    /// Cleared by an operator.
    pub cleared: bool,
}

/// How durable a record write must be before [`State::swap_record`]
/// returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Flushed and `fdatasync`ed: for anything a signature that leaves the
    /// county relies on (a new cosignature, a suspension).
    Synced,
    /// Flushed only (`sync_file_range`): bookkeeping whose loss in a power
    /// failure is harmless (push times, leafed size, content quota).
    Flushed,
}

/// The county's database.
pub struct State {
    db: sled::Db,
    departments: sled::Tree,
    evidence: sled::Tree,
    missing: sled::Tree,
    county: sled::Tree,
    evidence_dir: PathBuf,
    /// sled's directory, whose files [`State::sync`] `fdatasync`s.
    dir: PathBuf,
    /// Records as stored (the stored bytes and the decoded record).
    records: Mutex<HashMap<String, (sled::IVec, DepartmentRecord)>>,
    /// Missing digests per origin.
    missing_counts: Mutex<HashMap<String, u64>>,
    /// One lock per origin, held by a record swap from its compare-and-swap
    /// until the cache shows the durable result, and by a read of the
    /// record: a reader waits for a swap in flight instead of reading the
    /// record it replaces (and failing its own swap).
    origin_locks: Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
    /// Evidence not cleared, per origin: the status answers from here,
    /// never by scanning the evidence (anyone may ask for the status).
    open_evidence: Mutex<HashMap<String, u64>>,
    /// Set when a sync failed: after a failed fsync the kernel may have
    /// dropped the dirty pages, so what sled holds in memory may never
    /// reach the disk. Every later sync and record swap is refused until
    /// a restart reads back what the disk really holds.
    failed: tokio::sync::watch::Sender<Option<String>>,
    /// Tests: fail the next syncs with EIO.
    #[cfg(test)]
    fail_sync: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, AggregatorError> {
    serde_json::to_vec(v).map_err(|e| AggregatorError::Storage(format!("encode: {e}")))
}

fn unjson<T: for<'de> Deserialize<'de>>(v: &[u8]) -> Result<T, AggregatorError> {
    serde_json::from_slice(v).map_err(|e| AggregatorError::Storage(format!("damaged record: {e}")))
}

/// Format mark of the county database.
const FORMAT: &[u8] = b"gongkai-county 1";

impl State {
    /// Opens (or creates) the database under `data_dir`.
    ///
    /// # Errors
    /// [`AggregatorError::Fatal`] if sled fails or the format differs.
    pub fn open(data_dir: &Path, cache_bytes: u64) -> Result<State, AggregatorError> {
        let fatal = |e: sled::Error| AggregatorError::Fatal(format!("county database: {e}"));
        let db = gongkai_store::open_sled(
            &sled::Config::new()
                .path(data_dir.join("county"))
                .cache_capacity(cache_bytes),
        )
        .map_err(fatal)?;
        match db.get("format").map_err(fatal)? {
            Some(f) if f.as_ref() != FORMAT => {
                return Err(AggregatorError::Fatal(format!(
                    "{} has format {:?}; this binary reads {:?}",
                    data_dir.join("county").display(),
                    String::from_utf8_lossy(&f),
                    String::from_utf8_lossy(FORMAT)
                )));
            }
            Some(_) => {}
            None => {
                db.insert("format", FORMAT).map_err(fatal)?;
            }
        }
        let evidence_dir = data_dir.join("evidence");
        std::fs::create_dir_all(&evidence_dir)
            .map_err(|e| AggregatorError::Fatal(format!("{}: {e}", evidence_dir.display())))?;
        let departments = db.open_tree("departments").map_err(fatal)?;
        let missing = db.open_tree("missing").map_err(fatal)?;
        let mut records = HashMap::new();
        for kv in &departments {
            let (k, v) = kv.map_err(fatal)?;
            let rec = unjson(&v)?;
            records.insert(String::from_utf8_lossy(&k).into_owned(), (v, rec));
        }
        let mut missing_counts: HashMap<String, u64> = HashMap::new();
        for k in missing.iter().keys() {
            let k = k.map_err(fatal)?;
            let origin = k.split(|&b| b == 0).next().unwrap_or_default();
            *missing_counts
                .entry(String::from_utf8_lossy(origin).into_owned())
                .or_default() += 1;
        }
        let evidence = db.open_tree("evidence").map_err(fatal)?;
        let mut open_evidence: HashMap<String, u64> = HashMap::new();
        for kv in &evidence {
            let (_, v) = kv.map_err(fatal)?;
            let rec: EvidenceRecord = unjson(&v)?;
            if !rec.cleared {
                *open_evidence.entry(rec.origin).or_default() += 1;
            }
        }
        Ok(State {
            departments,
            evidence,
            missing,
            county: db.open_tree("county").map_err(fatal)?,
            db,
            evidence_dir,
            dir: data_dir.join("county"),
            records: Mutex::new(records),
            missing_counts: Mutex::new(missing_counts),
            open_evidence: Mutex::new(open_evidence),
            origin_locks: Mutex::new(HashMap::new()),
            failed: tokio::sync::watch::Sender::new(None),
            #[cfg(test)]
            fail_sync: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Makes everything written so far durable: sled's flush, then
    /// `fdatasync` of its log file (and of any blob files, stored beside it
    /// for values too large for the log). Returns only after the sync.
    ///
    /// # Errors
    /// Storage errors.
    pub fn sync(&self) -> Result<(), AggregatorError> {
        self.check_failed()?;
        let r = self.sync_inner();
        if let Err(e) = &r {
            tracing::error!(error = %e, "the county state could not be made durable; refusing writes until a restart");
            self.fail(e.to_string());
        }
        r
    }

    /// Marks the county failed (a storage failure whose effect on disk is
    /// unknown): every later sync and swap is refused, and the server stops
    /// so that its supervisor restarts it (exit 75) and it reads back what
    /// the disk holds. The first reason is kept.
    pub fn fail(&self, reason: String) {
        self.failed.send_if_modified(|f| {
            if f.is_some() {
                return false;
            }
            tracing::error!(%reason, "the county stops after a storage failure; a restart reloads from disk");
            *f = Some(reason);
            true
        });
    }

    /// Why the county failed, as it changes (see [`State::fail`]).
    pub fn failed(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.failed.subscribe()
    }

    fn origin_lock(&self, origin: &str) -> std::sync::Arc<Mutex<()>> {
        std::sync::Arc::clone(
            lock(&self.origin_locks)
                .entry(origin.to_owned())
                .or_default(),
        )
    }

    /// Refuses work after a failed sync (see `failed`).
    fn check_failed(&self) -> Result<(), AggregatorError> {
        match &*self.failed.borrow() {
            Some(e) => Err(AggregatorError::Fatal(format!(
                "the county state failed to sync ({e}); nothing more is written or cosigned until the county is restarted, which reads back what the disk holds"
            ))),
            None => Ok(()),
        }
    }

    fn sync_inner(&self) -> Result<(), AggregatorError> {
        #[cfg(test)]
        if self.fail_sync.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(AggregatorError::Storage(format!(
                "fdatasync {}: {}",
                self.dir.display(),
                std::io::Error::from_raw_os_error(5)
            )));
        }
        self.db.flush()?;
        sync_sled_files(&self.dir)
    }

    /// The county-log tree.
    pub fn county_tree(&self) -> &sled::Tree {
        &self.county
    }

    /// The record of `origin` (default when none yet).
    ///
    /// # Errors
    /// Storage errors.
    pub fn record(&self, origin: &str) -> Result<DepartmentRecord, AggregatorError> {
        Ok(self.versioned(origin)?.1)
    }

    /// The record of `origin` with the stored bytes it was read from, for
    /// [`State::swap_record`].
    ///
    /// # Errors
    /// Storage errors.
    pub fn versioned(
        &self,
        origin: &str,
    ) -> Result<(Option<sled::IVec>, DepartmentRecord), AggregatorError> {
        let l = self.origin_lock(origin);
        let _in_order = lock(&l);
        Ok(match lock(&self.records).get(origin) {
            Some((v, rec)) => (Some(v.clone()), rec.clone()),
            None => (None, DepartmentRecord::default()),
        })
    }

    /// Stores `new` atomically only if the stored record is still `read`
    /// (the bytes [`State::versioned`] returned), and returns once it is
    /// as durable as `durability` says.
    ///
    /// # Errors
    /// [`AggregatorError::Precondition`] if the record changed meanwhile
    /// (nothing is written); storage errors.
    pub fn swap_record(
        &self,
        origin: &str,
        read: Option<sled::IVec>,
        new: &DepartmentRecord,
        durability: Durability,
    ) -> Result<(), AggregatorError> {
        self.check_failed()?;
        let bytes = sled::IVec::from(json(new)?);
        // The cache changes only once the new record is as durable as
        // asked, so nothing reads (or serves) a record, such as a cosigned
        // note, that a failed fsync could still lose. The origin's lock
        // makes readers of this origin wait until then.
        let l = self.origin_lock(origin);
        let _in_order = lock(&l);
        let swapped = {
            let _records = lock(&self.records);
            self.departments
                .compare_and_swap(origin, read.clone(), Some(bytes.clone()))?
        };
        if swapped.is_err() {
            return Err(AggregatorError::Precondition(format!(
                "the county's state for {origin} changed during this request; retry"
            )));
        }
        match durability {
            Durability::Synced => self.sync()?,
            Durability::Flushed => {
                self.check_failed()?;
                if let Err(e) = self.db.flush() {
                    self.fail(e.to_string());
                    return Err(e.into());
                }
            }
        }
        let mut records = lock(&self.records);
        if records.get(origin).map(|(b, _)| b) == read.as_ref() {
            records.insert(origin.to_owned(), (bytes, new.clone()));
        }
        Ok(())
    }

    /// Every department record.
    ///
    /// # Errors
    /// Storage errors.
    pub fn records(&self) -> Result<Vec<(String, DepartmentRecord)>, AggregatorError> {
        let mut out: Vec<(String, DepartmentRecord)> = lock(&self.records)
            .iter()
            .map(|(k, (_, rec))| (k.clone(), rec.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes an evidence file durably (temp, fsync, rename, dir fsync) and
    /// indexes it.
    ///
    /// # Errors
    /// Storage errors.
    pub fn put_evidence(
        &self,
        rec: &EvidenceRecord,
        text: &str,
    ) -> Result<PathBuf, AggregatorError> {
        let path = self.evidence_dir.join(format!("{}.txt", rec.id));
        gongkai_store::write_file_durably(&path, text.as_bytes())
            .map_err(|e| AggregatorError::Storage(format!("evidence file: {e}")))?;
        let old = self.evidence.insert(rec.id.as_bytes(), json(rec)?)?;
        let was_open = match old {
            Some(v) => !unjson::<EvidenceRecord>(&v)?.cleared,
            None => false,
        };
        if !rec.cleared && !was_open {
            *lock(&self.open_evidence)
                .entry(rec.origin.clone())
                .or_default() += 1;
        }
        self.sync()?;
        Ok(path)
    }

    /// Evidence of `origin` not cleared, counted without a scan.
    pub fn open_evidence(&self, origin: &str) -> u64 {
        lock(&self.open_evidence).get(origin).copied().unwrap_or(0)
    }

    /// Missing digests of `origin`, counted without a scan.
    pub fn missing_count(&self, origin: &str) -> u64 {
        lock(&self.missing_counts).get(origin).copied().unwrap_or(0)
    }

    /// Evidence records, optionally of one origin.
    ///
    /// # Errors
    /// Storage errors.
    pub fn evidence(&self, origin: Option<&str>) -> Result<Vec<EvidenceRecord>, AggregatorError> {
        let mut out = Vec::new();
        for kv in &self.evidence {
            let (_, v) = kv?;
            let rec: EvidenceRecord = unjson(&v)?;
            if origin.is_none_or(|o| o == rec.origin) {
                out.push(rec);
            }
        }
        out.sort_by_key(|r| (r.observed, r.id.clone()));
        Ok(out)
    }

    /// One evidence record and its file text.
    ///
    /// # Errors
    /// [`AggregatorError::NotFound`]; storage errors.
    pub fn evidence_file(&self, id: &str) -> Result<(EvidenceRecord, String), AggregatorError> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AggregatorError::NotFound(format!("no evidence {id:?}")));
        }
        let rec: EvidenceRecord = match self.evidence.get(id.as_bytes())? {
            Some(v) => unjson(&v)?,
            None => return Err(AggregatorError::NotFound(format!("no evidence {id}"))),
        };
        let text = std::fs::read_to_string(self.evidence_dir.join(format!("{id}.txt")))
            .map_err(|e| AggregatorError::Storage(format!("evidence file {id}: {e}")))?;
        Ok((rec, text))
    }

    /// Marks the evidence of `origin` cleared; returns how many.
    ///
    /// # Errors
    /// Storage errors.
    pub fn clear_evidence(&self, origin: &str) -> Result<u32, AggregatorError> {
        let mut n = 0;
        for mut rec in self.evidence(Some(origin))? {
            if !rec.cleared {
                rec.cleared = true;
                self.evidence.insert(rec.id.as_bytes(), json(&rec)?)?;
                n += 1;
            }
        }
        lock(&self.open_evidence).remove(origin);
        self.sync()?;
        Ok(n)
    }

    fn missing_key(origin: &str, digest: &gongkai_core::Hash) -> Vec<u8> {
        let mut k = origin.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(digest.as_bytes());
        k
    }

    /// Notes content the mirror lacks (`length` bytes committed).
    ///
    /// # Errors
    /// Storage errors.
    pub fn add_missing(
        &self,
        origin: &str,
        digest: &gongkai_core::Hash,
        length: u64,
    ) -> Result<(), AggregatorError> {
        let mut counts = lock(&self.missing_counts);
        if self
            .missing
            .insert(Self::missing_key(origin, digest), &length.to_be_bytes())?
            .is_none()
        {
            *counts.entry(origin.to_owned()).or_default() += 1;
        }
        Ok(())
    }

    /// Content no longer missing (stored or redacted).
    ///
    /// # Errors
    /// Storage errors.
    pub fn remove_missing(
        &self,
        origin: &str,
        digest: &gongkai_core::Hash,
    ) -> Result<(), AggregatorError> {
        let mut counts = lock(&self.missing_counts);
        if self
            .missing
            .remove(Self::missing_key(origin, digest))?
            .is_some()
            && let Some(n) = counts.get_mut(origin)
        {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }

    /// Whether `digest` is missing for `origin`, with its committed length.
    ///
    /// # Errors
    /// Storage errors.
    pub fn missing_length(
        &self,
        origin: &str,
        digest: &gongkai_core::Hash,
    ) -> Result<Option<u64>, AggregatorError> {
        Ok(self
            .missing
            .get(Self::missing_key(origin, digest))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
    }

    /// Up to `limit` missing digests of `origin`, and the total count.
    ///
    /// # Errors
    /// Storage errors.
    pub fn missing(
        &self,
        origin: &str,
        limit: usize,
    ) -> Result<(Vec<gongkai_core::Hash>, u64), AggregatorError> {
        if lock(&self.missing_counts)
            .get(origin)
            .is_none_or(|&n| n == 0)
        {
            return Ok((Vec::new(), 0));
        }
        let mut prefix = origin.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        let mut total = 0;
        for kv in self.missing.scan_prefix(&prefix) {
            let (k, _) = kv?;
            total += 1;
            if out.len() < limit
                && let Ok(h) = gongkai_core::Hash::from_slice(&k[prefix.len()..])
            {
                out.push(h);
            }
        }
        Ok((out, total))
    }

    /// Flushes sled.
    ///
    /// # Errors
    /// Storage errors.
    pub fn flush(&self) -> Result<(), AggregatorError> {
        self.db.flush()?;
        Ok(())
    }
}

/// `fdatasync` of the files of the sled database in `dir` (after its
/// flush, which on Linux is only `sync_file_range`): its log file, and any
/// blob files, stored beside it for values too large for the log.
pub(crate) fn sync_sled_files(dir: &Path) -> Result<(), AggregatorError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        AggregatorError::Storage(format!("{what} {}: {e}", p.display()))
    };
    // fdatasync covers the file's data and its size (fdatasync(2)),
    // whichever descriptor wrote them.
    let log = dir.join("db");
    std::fs::File::open(&log)
        .and_then(|f| f.sync_data())
        .map_err(|e| io("fdatasync", &log, e))?;
    let blobs = dir.join("blobs");
    if let Ok(list) = std::fs::read_dir(&blobs) {
        let mut any = false;
        for entry in list {
            let path = entry.map_err(|e| io("list", &blobs, e))?.path();
            std::fs::File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(|e| io("fdatasync", &path, e))?;
            any = true;
        }
        if any {
            std::fs::File::open(&blobs)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("fsync", &blobs, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn a_record_is_read_only_once_durable_and_a_failed_sync_stops_all_writes() {
        let d = tempfile::tempdir().unwrap();
        let state = State::open(d.path(), 1 << 20).unwrap();
        let (read, mut rec) = state.versioned("o").unwrap();
        rec.cosigned_size = 5;
        state
            .swap_record("o", read, &rec, Durability::Synced)
            .unwrap();
        assert_eq!(state.versioned("o").unwrap().1.cosigned_size, 5);
        // EIO on fsync: the record that may not be on disk is never read
        // (the cache keeps the durable one), and nothing more is written.
        state.fail_sync.store(true, Ordering::Relaxed);
        let (read, mut rec) = state.versioned("o").unwrap();
        rec.cosigned_size = 9;
        assert!(
            state
                .swap_record("o", read, &rec, Durability::Synced)
                .is_err()
        );
        assert_eq!(state.versioned("o").unwrap().1.cosigned_size, 5);
        state.fail_sync.store(false, Ordering::Relaxed);
        let (read, mut rec) = state.versioned("p").unwrap();
        rec.cosigned_size = 1;
        let e = state
            .swap_record("p", read, &rec, Durability::Synced)
            .unwrap_err();
        assert!(e.to_string().contains("restarted"), "{e}");
        assert!(state.sync().is_err());
        // And it says so, for the server to stop and be restarted.
        assert!(state.failed().borrow().is_some());
        // A restart reads back what the disk holds and works again.
        drop(state);
        let state = State::open(d.path(), 1 << 20).unwrap();
        let (read, rec) = state.versioned("p").unwrap();
        state
            .swap_record("p", read, &rec, Durability::Synced)
            .unwrap();
    }
}
