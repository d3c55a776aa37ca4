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

use std::path::{Path, PathBuf};

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

/// The county's database.
pub struct State {
    db: sled::Db,
    departments: sled::Tree,
    evidence: sled::Tree,
    missing: sled::Tree,
    county: sled::Tree,
    evidence_dir: PathBuf,
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
        let db = sled::Config::new()
            .path(data_dir.join("county"))
            .cache_capacity(cache_bytes)
            .open()
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
        Ok(State {
            departments: db.open_tree("departments").map_err(fatal)?,
            evidence: db.open_tree("evidence").map_err(fatal)?,
            missing: db.open_tree("missing").map_err(fatal)?,
            county: db.open_tree("county").map_err(fatal)?,
            db,
            evidence_dir,
        })
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
        match self.departments.get(origin)? {
            Some(v) => {
                let rec = unjson(&v)?;
                Ok((Some(v), rec))
            }
            None => Ok((None, DepartmentRecord::default())),
        }
    }

    /// Stores `new` atomically and durably (sled flush) only if the stored
    /// record is still `read` (the bytes [`State::versioned`] returned).
    ///
    /// # Errors
    /// [`AggregatorError::Precondition`] if the record changed meanwhile
    /// (nothing is written); storage errors.
    pub fn swap_record(
        &self,
        origin: &str,
        read: Option<sled::IVec>,
        new: &DepartmentRecord,
    ) -> Result<(), AggregatorError> {
        match self
            .departments
            .compare_and_swap(origin, read, Some(json(new)?))?
        {
            Ok(()) => {
                self.db.flush()?;
                Ok(())
            }
            Err(_) => Err(AggregatorError::Precondition(format!(
                "the county's state for {origin} changed during this request; retry"
            ))),
        }
    }

    /// Every department record.
    ///
    /// # Errors
    /// Storage errors.
    pub fn records(&self) -> Result<Vec<(String, DepartmentRecord)>, AggregatorError> {
        let mut out = Vec::new();
        for kv in &self.departments {
            let (k, v) = kv?;
            out.push((String::from_utf8_lossy(&k).into_owned(), unjson(&v)?));
        }
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
        use std::io::Write as _;
        let path = self.evidence_dir.join(format!("{}.txt", rec.id));
        let tmp = self.evidence_dir.join(format!("{}.tmp", rec.id));
        let io = |e: std::io::Error| AggregatorError::Storage(format!("evidence file: {e}"));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(&self.evidence_dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        self.evidence.insert(rec.id.as_bytes(), json(rec)?)?;
        self.db.flush()?;
        Ok(path)
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
        self.db.flush()?;
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
        self.missing
            .insert(Self::missing_key(origin, digest), &length.to_be_bytes())?;
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
        self.missing.remove(Self::missing_key(origin, digest))?;
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
