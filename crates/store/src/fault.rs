//! Fault-injecting journal file for tests: an in-memory file that fails
//! writes or syncs with `ENOSPC` on demand and simulates power loss.
//!
//! Built for this crate's tests and, with the `fault-injection` feature,
//! for other crates' tests (the node's power-loss test); never in a
//! release build.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::JournalFile;

#[derive(Default)]
struct Inner {
    /// What the running system sees (page cache).
    data: Vec<u8>,
    /// What is on stable storage: `data` as of the last successful sync.
    durable: Vec<u8>,
    fail_writes: u32,
    fail_syncs: u32,
    fail_truncates: u32,
    free: u64,
    syncs: u64,
    sync_delay: Option<Duration>,
    /// The power is off: the disk is frozen as it was at that instant.
    powered_off: bool,
    /// Power goes off at the start of this many more syncs that find
    /// unsynced bytes (0: not armed).
    power_off_at_sync: u64,
}

/// An in-memory [`JournalFile`]. Clones share the same "disk", so a test
/// keeps one clone as the controller while the journal owns another.
#[derive(Clone)]
pub struct MemFile(Arc<Mutex<Inner>>);

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28) // ENOSPC
}

fn power_is_off() -> io::Error {
    io::Error::from_raw_os_error(5) // EIO
}

impl MemFile {
    /// An empty disk.
    #[allow(clippy::new_without_default)]
    pub fn new() -> MemFile {
        MemFile(Arc::new(Mutex::new(Inner {
            free: u64::MAX / 2,
            ..Inner::default()
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `n` writes fail with ENOSPC (after writing half their bytes).
    pub fn fail_writes(&self, n: u32) {
        self.lock().fail_writes = n;
    }
    /// The next `n` syncs fail with ENOSPC (persisting nothing).
    pub fn fail_syncs(&self, n: u32) {
        self.lock().fail_syncs = n;
    }
    /// The next `n` truncates fail.
    pub fn fail_truncates(&self, n: u32) {
        self.lock().fail_truncates = n;
    }
    /// Free space the file reports.
    pub fn set_free(&self, free: u64) {
        self.lock().free = free;
    }
    /// Every sync takes `d`.
    pub fn set_sync_delay(&self, d: Duration) {
        self.lock().sync_delay = Some(d);
    }
    /// Successful syncs so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }
    /// What the running system sees (page cache).
    pub fn data(&self) -> Vec<u8> {
        self.lock().data.clone()
    }
    /// What is on stable storage.
    pub fn durable(&self) -> Vec<u8> {
        self.lock().durable.clone()
    }

    /// Power loss: a new disk holding only what the last sync covered, plus
    /// (if the running image extends it) up to `torn` bytes of the unsynced
    /// tail — a torn write.
    pub fn crash(&self, torn: usize) -> MemFile {
        let g = self.lock();
        let mut image = g.durable.clone();
        if g.data.len() > image.len() && g.data.starts_with(&image) {
            let extra = &g.data[image.len()..];
            image.extend_from_slice(&extra[..torn.min(extra.len())]);
        }
        let f = MemFile::new();
        {
            let mut n = f.lock();
            n.data = image.clone();
            n.durable = image;
        }
        f
    }

    /// Power goes off: the disk is frozen as it is at this instant. Every
    /// later write, sync and truncate fails with EIO and changes nothing,
    /// as nothing a dying system does reaches the platters.
    /// [`MemFile::crash`] then gives what a restart sees.
    pub fn power_off(&self) {
        self.lock().powered_off = true;
    }

    /// Arms a power cut at a point where unsynced bytes exist: the `n`-th
    /// sync from now that finds written-but-unsynced bytes (`n >= 1`) cuts
    /// the power instead of persisting them, as [`MemFile::power_off`]
    /// does. Unlike a cut at a moment chosen by a timer, this one always
    /// lands between a write and its sync, however the threads are
    /// scheduled.
    pub fn power_off_at_sync(&self, n: u64) {
        assert!(n >= 1, "power_off_at_sync counts from 1");
        self.lock().power_off_at_sync = n;
    }

    /// Whether the power is off.
    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    /// Bytes written but not synced: what a power cut now would drop.
    pub fn unsynced_len(&self) -> usize {
        let g = self.lock();
        if g.data.starts_with(&g.durable) {
            g.data.len() - g.durable.len()
        } else {
            g.data.len()
        }
    }

    /// A disk holding exactly `bytes`, all durable.
    pub fn from_bytes(bytes: Vec<u8>) -> MemFile {
        let f = MemFile::new();
        {
            let mut n = f.lock();
            n.data = bytes.clone();
            n.durable = bytes;
        }
        f
    }
}

impl JournalFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let g = self.lock();
        let start = offset as usize;
        let end = start + buf.len();
        if end > g.data.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&g.data[start..end]);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut g = self.lock();
        if g.powered_off {
            return Err(power_is_off());
        }
        let (buf, fail) = if g.fail_writes > 0 {
            g.fail_writes -= 1;
            (&buf[..buf.len() / 2], true)
        } else {
            (buf, false)
        };
        let start = offset as usize;
        if g.data.len() < start {
            g.data.resize(start, 0);
        }
        let end = start + buf.len();
        if g.data.len() < end {
            g.data.resize(end, 0);
        }
        g.data[start..end].copy_from_slice(buf);
        if fail { Err(enospc()) } else { Ok(()) }
    }

    fn sync(&self) -> io::Result<()> {
        let delay = self.lock().sync_delay;
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let mut g = self.lock();
        if g.powered_off {
            return Err(power_is_off());
        }
        if g.power_off_at_sync > 0 && g.data != g.durable {
            g.power_off_at_sync -= 1;
            if g.power_off_at_sync == 0 {
                g.powered_off = true;
                return Err(power_is_off());
            }
        }
        if g.fail_syncs > 0 {
            g.fail_syncs -= 1;
            return Err(enospc());
        }
        g.durable = g.data.clone();
        g.syncs += 1;
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut g = self.lock();
        if g.powered_off {
            return Err(power_is_off());
        }
        if g.fail_truncates > 0 {
            g.fail_truncates -= 1;
            return Err(io::Error::other("injected truncate failure"));
        }
        g.data.resize(len as usize, 0);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.lock().data.len() as u64)
    }

    fn free_space(&self) -> io::Result<u64> {
        Ok(self.lock().free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_off_at_sync_cuts_only_where_bytes_are_unsynced() {
        let f = MemFile::new();
        f.power_off_at_sync(2);
        f.write_at(b"ab", 0).unwrap();
        f.sync().unwrap(); // 1st sync with unsynced bytes: persists
        f.sync().unwrap(); // nothing unsynced: not counted
        f.write_at(b"cd", 2).unwrap();
        assert_eq!(f.unsynced_len(), 2);
        assert!(f.sync().is_err(), "2nd sync with unsynced bytes: the cut");
        assert!(f.is_powered_off());
        // The disk is frozen: nothing a dying system does reaches it.
        assert!(f.write_at(b"ef", 4).is_err());
        assert!(f.truncate(2).is_err());
        assert!(f.sync().is_err());
        assert_eq!(f.data(), b"abcd");
        assert_eq!(f.durable(), b"ab");
        assert_eq!(f.crash(1).data(), b"abc");
        assert_eq!(f.crash(9).data(), b"abcd");
        assert_eq!(f.crash(0).data(), b"ab");
    }
}
