//! The durable record of idempotency keys (`<data_dir>/idempotency`).
//!
//! A client that lost an acknowledgement retries with the same key and must
//! get the original receipt, even across a crash. The journal holds only
//! entries, and sled's projection is not synced before acknowledgements, so
//! the keys of a group are appended to this file and `fdatasync`ed **before**
//! the group's entries are written to the journal:
//!
//! * crash before the key sync: nothing of the group is durable or
//!   acknowledged;
//! * crash between the key sync and the journal sync: the file names
//!   entries the journal does not have; at open such records (and anything
//!   after them) are cut off, so they can never match later entries at the
//!   same indexes;
//! * after the journal sync: both are durable, and the keys are loaded into
//!   the projection at start.
//!
//! Format: one JSON object per line, `{"key":…,"fingerprint":…,"start":…,"count":…}`,
//! in index order. A torn last line (no newline, or not JSON) is cut.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use gongkai_store::projection::IdempotencyRecord;
use serde::{Deserialize, Serialize};

use crate::NodeError;

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(flatten)]
    record: IdempotencyRecord,
}

/// The open key file.
pub struct KeyLog {
    file: File,
    path: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> NodeError {
    NodeError::Storage(format!("{}: {e}", path.display()))
}

impl KeyLog {
    /// Opens (or creates) the key file, keeping only the records whose
    /// entries are all in a journal of `journal_len` entries; returns them.
    ///
    /// # Errors
    /// [`NodeError::Storage`] on an I/O failure.
    pub fn open(
        path: &Path,
        journal_len: u64,
    ) -> Result<(KeyLog, Vec<(String, IdempotencyRecord)>), NodeError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        let mut records = Vec::new();
        let mut keep = 0u64;
        {
            let mut reader = BufReader::new(&file);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(|e| io(path, e))?;
                if n == 0 || !line.ends_with('\n') {
                    break;
                }
                let Ok(parsed) = serde_json::from_str::<Line>(&line) else {
                    break;
                };
                if parsed.record.start.saturating_add(parsed.record.count) > journal_len {
                    break;
                }
                keep += n as u64;
                records.push((parsed.key, parsed.record));
            }
        }
        let len = file.metadata().map_err(|e| io(path, e))?.len();
        if keep < len {
            tracing::info!(path = %path.display(), cut = len - keep, "cut idempotency records the journal does not reach");
            file.set_len(keep).map_err(|e| io(path, e))?;
            file.sync_all().map_err(|e| io(path, e))?;
        }
        file.seek(SeekFrom::End(0)).map_err(|e| io(path, e))?;
        Ok((
            KeyLog {
                file,
                path: path.to_owned(),
            },
            records,
        ))
    }

    /// Appends `records` and returns only after `fdatasync` covered them.
    ///
    /// # Errors
    /// [`NodeError::Storage`] on an I/O failure (the caller then treats the
    /// group as failed; partial lines are cut at the next open).
    pub fn append(&mut self, records: &[(String, IdempotencyRecord)]) -> Result<(), NodeError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for (key, record) in records {
            let line = Line {
                key: key.clone(),
                record: record.clone(),
            };
            serde_json::to_writer(&mut buf, &line)
                .map_err(|e| NodeError::Storage(e.to_string()))?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(|e| io(&self.path, e))?;
        self.file.sync_data().map_err(|e| io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use gongkai_core::Hash;

    use super::*;

    fn rec(start: u64, count: u64) -> IdempotencyRecord {
        IdempotencyRecord {
            fingerprint: Hash([start as u8; 32]),
            start,
            count,
        }
    }

    #[test]
    fn records_past_the_journal_and_torn_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idempotency");
        let (mut log, loaded) = KeyLog::open(&path, 0).unwrap();
        assert!(loaded.is_empty());
        log.append(&[("a".into(), rec(1, 1)), ("b".into(), rec(2, 3))])
            .unwrap();
        log.append(&[("c".into(), rec(5, 1))]).unwrap();
        drop(log);
        // A torn line at the end.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\":\"d\"")
            .unwrap();
        // The journal holds 5 entries: "c" (index 5) never made it.
        let (mut log, loaded) = KeyLog::open(&path, 5).unwrap();
        let keys: Vec<_> = loaded.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        // Later appends follow the kept records, and survive a reopen.
        log.append(&[("e".into(), rec(5, 2))]).unwrap();
        drop(log);
        let (_, loaded) = KeyLog::open(&path, 7).unwrap();
        let keys: Vec<_> = loaded.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "e"]);
        assert_eq!(loaded[2].1, rec(5, 2));
    }
}
