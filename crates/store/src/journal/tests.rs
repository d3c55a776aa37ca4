//! Journal tests over the fault-injecting in-memory file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::fault::MemFile;

const ORIGIN: &str = "example.gov.cn/dept/finance";

/// A valid-looking entry: 0x01, then bytes derived from `seed`.
fn entry(seed: u64, len: usize) -> Vec<u8> {
    let mut e = Vec::with_capacity(len);
    e.push(ENTRY_TYPE);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while e.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        e.push(x as u8);
    }
    e
}

fn open_mem(f: &MemFile) -> Result<Journal, StoreError> {
    Journal::open_with(
        Box::new(f.clone()),
        "mem-journal",
        ORIGIN,
        JournalOptions::default(),
    )
}

/// Tiny deterministic RNG (xorshift64*) so failures are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn round_trip_and_reopen() {
    let f = MemFile::new();
    let j = open_mem(&f).unwrap();
    assert!(j.is_empty());
    let entries: Vec<Vec<u8>> = (0..50)
        .map(|i| entry(i, 67 + (i as usize * 37) % 900))
        .collect();
    assert_eq!(j.append(&entries[..10]).unwrap(), 0..10);
    for e in &entries[10..] {
        j.append_one(e).unwrap();
    }
    assert_eq!(j.len(), 50);
    assert_eq!(j.read_range(0, 50).unwrap(), entries);
    drop(j);
    let j = open_mem(&f).unwrap();
    assert_eq!(j.truncated_on_open(), 0);
    assert_eq!(j.len(), 50);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(&j.read(i as u64).unwrap(), e);
    }
    assert_eq!(j.read_range(7, 13).unwrap(), entries[7..13]);
    assert!(matches!(
        j.read(50),
        Err(StoreError::OutOfRange { index: 50, len: 50 })
    ));
    assert_eq!(j.synced_len(), f.durable().len() as u64);
}

#[test]
fn exact_bytes_of_the_format() {
    let f = MemFile::new();
    let j = open_mem(&f).unwrap();
    let e = entry(1, 67);
    j.append_one(&e).unwrap();
    let data = f.data();
    let mut want = b"GKJOURNL".to_vec();
    want.extend_from_slice(&1u32.to_be_bytes());
    want.extend_from_slice(&(ORIGIN.len() as u16).to_be_bytes());
    want.extend_from_slice(ORIGIN.as_bytes());
    let check = blake3::hash(&want);
    want.extend_from_slice(&check.as_bytes()[..4]);
    want.extend_from_slice(&[0, 0, 0, 67, 0xFF, 0xFF, 0xFF, 0xBC]);
    want.extend_from_slice(&e);
    want.extend_from_slice(&leaf_hash(&e).0[..4]);
    assert_eq!(data, want);
}

#[test]
fn invalid_entries_are_refused_before_queueing() {
    let f = MemFile::new();
    let j = open_mem(&f).unwrap();
    let short = entry(1, 66);
    let mut wrong_type = entry(2, 100);
    wrong_type[0] = 0x02;
    let long = entry(3, 65_536);
    for (bad, reason) in [
        (&short, "shorter"),
        (&wrong_type, "0x01"),
        (&long, "longer"),
    ] {
        let batch = [entry(9, 80), bad.clone()];
        match j.append(&batch) {
            Err(StoreError::InvalidEntry {
                position: 1,
                reason: r,
                ..
            }) => assert!(r.contains(reason), "{r}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(j.len(), 0);
    assert_eq!(j.append_one(&entry(4, MAX_ENTRY_LEN)).unwrap(), 0);
}

#[test]
fn concurrent_writers_share_syncs() {
    let f = MemFile::new();
    // Model a disk whose flush takes a while, so writers pile up behind it.
    f.set_sync_delay(Duration::from_micros(300));
    let j = open_mem(&f).unwrap();
    let syncs_before = f.syncs();
    let threads = 16u64;
    let per = 200u64;
    let got = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..threads {
            let j = j.clone();
            let got = Arc::clone(&got);
            s.spawn(move || {
                for k in 0..per {
                    let e = entry(t * 1000 + k, 67 + (k as usize % 50));
                    let i = j.append_one(&e).unwrap();
                    got.lock().unwrap().push((i, e));
                }
            });
        }
    });
    let mut got = Arc::try_unwrap(got).unwrap().into_inner().unwrap();
    got.sort();
    let n = threads * per;
    assert_eq!(got.len() as u64, n);
    for (k, (i, e)) in got.iter().enumerate() {
        assert_eq!(*i, k as u64, "indexes distinct and contiguous");
        assert_eq!(&j.read(*i).unwrap(), e);
    }
    let syncs = f.syncs() - syncs_before;
    assert_eq!(syncs, j.sync_count());
    assert!(syncs < n, "group commit: {syncs} syncs for {n} appends");
    eprintln!("{n} appends, {syncs} syncs");
}

#[test]
fn torn_tail_truncated_at_every_cut() {
    let f = MemFile::new();
    let j = open_mem(&f).unwrap();
    let entries: Vec<Vec<u8>> = (0..4).map(|i| entry(i, 70 + i as usize)).collect();
    j.append(&entries).unwrap();
    drop(j);
    let full = f.data();
    let last_start = full.len() - (entries[3].len() + RECORD_OVERHEAD);
    for cut in last_start..full.len() {
        let f = MemFile::from_bytes(full[..cut].to_vec());
        let j = open_mem(&f).unwrap();
        assert_eq!(j.len(), 3, "cut at {cut}");
        assert_eq!(j.truncated_on_open(), (cut - last_start) as u64);
        assert_eq!(f.durable().len(), last_start, "truncation synced");
        assert_eq!(j.read_range(0, 3).unwrap(), entries[..3]);
        // The journal keeps working after recovery.
        assert_eq!(j.append_one(&entries[3]).unwrap(), 3);
        assert_eq!(f.data(), full);
    }
}

#[test]
fn bad_last_record_and_zero_tail_are_torn() {
    let f = MemFile::new();
    let j = open_mem(&f).unwrap();
    j.append(&[entry(1, 100), entry(2, 100)]).unwrap();
    drop(j);
    let full = f.data();
    // Flip a byte in the last record's entry: check fails, nothing follows.
    let mut bad = full.clone();
    let n = bad.len();
    bad[n - 10] ^= 0x40;
    let j = open_mem(&MemFile::from_bytes(bad)).unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j.truncated_on_open(), 112);
    // Zeros after the last record (size extended, data never written).
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0u8; 300]);
    let j = open_mem(&MemFile::from_bytes(zeros)).unwrap();
    assert_eq!(j.len(), 2);
    assert_eq!(j.truncated_on_open(), 300);
}

#[test]
fn corruption_in_the_middle_is_refused() {
    let f = MemFile::new();
    let j = open_mem(&f).unwrap();
    let entries: Vec<Vec<u8>> = (0..5).map(|i| entry(i, 100)).collect();
    j.append(&entries).unwrap();
    drop(j);
    let full = f.data();
    let header_len = (14 + ORIGIN.len() + 4) as u64;
    let rec = 112u64;
    // Damage record 2's entry bytes, then separately its length field.
    for (at, what) in [
        (header_len + 2 * rec + 50, "check"),
        (header_len + 2 * rec + 3, "length"),
    ] {
        let mut bad = full.clone();
        bad[at as usize] ^= 0x01;
        match open_mem(&MemFile::from_bytes(bad)) {
            Err(StoreError::Corrupt {
                offset,
                index,
                reason,
                ..
            }) => {
                assert_eq!(offset, header_len + 2 * rec, "{what}");
                assert_eq!(index, 2);
                assert!(reason.contains(what), "{reason}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn wrong_header_is_refused() {
    let f = MemFile::new();
    drop(open_mem(&f).unwrap());
    let good = f.data();
    let r = Journal::open_with(
        Box::new(f.clone()),
        "j",
        "other/origin",
        JournalOptions::default(),
    );
    assert!(matches!(r, Err(StoreError::WrongOrigin { ref found, .. }) if found == ORIGIN));
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(
        open_mem(&MemFile::from_bytes(bad)),
        Err(StoreError::NotAJournal { .. })
    ));
    let mut bad = good.clone();
    bad[11] = 2;
    assert!(matches!(
        open_mem(&MemFile::from_bytes(bad)),
        Err(StoreError::JournalVersion {
            found: 2,
            supported: 1,
            ..
        })
    ));
    let mut bad = good.clone();
    bad[16] ^= 1; // inside the origin: header check fails
    assert!(matches!(
        open_mem(&MemFile::from_bytes(bad)),
        Err(StoreError::NotAJournal { .. })
    ));
    assert!(matches!(
        open_mem(&MemFile::from_bytes(good[..10].to_vec())),
        Err(StoreError::NotAJournal { .. })
    ));
}

#[test]
fn enospc_on_write_fails_batch_and_poisons() {
    for fail_sync in [false, true] {
        let f = MemFile::new();
        let j = open_mem(&f).unwrap();
        let synced: Vec<Vec<u8>> = (0..3).map(|i| entry(i, 90)).collect();
        j.append(&synced).unwrap();
        let durable_before = f.durable();
        if fail_sync {
            f.fail_syncs(1);
        } else {
            f.fail_writes(1);
        }
        // Several waiters queue while the writer is busy: all must fail.
        f.set_sync_delay(Duration::from_millis(2));
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|t| {
                    let j = j.clone();
                    s.spawn(move || j.append_one(&entry(100 + t, 80)))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // The first group fails with the I/O error; anything after it is
        // refused as poisoned. Nothing succeeds.
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(StoreError::Io { .. })))
        );
        assert!(j.is_poisoned());
        assert!(matches!(
            j.append_one(&entry(7, 80)),
            Err(StoreError::Poisoned { .. })
        ));
        assert_eq!(j.len(), 3, "failed entries never visible");
        assert_eq!(f.data(), durable_before, "cut back to synced length");
        drop(j);
        let j = open_mem(&f).unwrap();
        assert!(!j.is_poisoned());
        assert_eq!(j.read_range(0, 3).unwrap(), synced);
        assert_eq!(j.len(), 3);
        assert_eq!(j.append_one(&entry(8, 80)).unwrap(), 3);
    }
}

#[test]
fn reserve_refuses_without_writing() {
    let f = MemFile::new();
    let j = Journal::open_with(
        Box::new(f.clone()),
        "j",
        ORIGIN,
        JournalOptions {
            reserve_bytes: 1000,
            ..JournalOptions::default()
        },
    )
    .unwrap();
    j.append_one(&entry(1, 100)).unwrap();
    let before = f.data();
    f.set_free(1000 + 111); // one byte short of a 100-byte entry's record
    match j.append_one(&entry(2, 100)) {
        Err(StoreError::DiskFull {
            free,
            needed,
            reserve,
            ..
        }) => {
            assert_eq!((free, needed, reserve), (1111, 112, 1000));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.data(), before, "nothing written");
    assert!(!j.is_poisoned(), "a refused batch does not poison");
    f.set_free(1000 + 112);
    assert_eq!(j.append_one(&entry(2, 100)).unwrap(), 1);
}

/// Seeded model test: random appends, write/sync/truncate faults and power
/// losses with torn tails. Invariant: every acknowledged entry is present
/// with identical bytes after every recovery.
#[test]
fn power_loss_never_loses_acknowledged_entries() {
    let (mut torn_cut, mut survivors) = (0u64, 0u64);
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x1234_5678_9ABC_DEF1));
        let mut disk = MemFile::new();
        let mut j = open_mem(&disk).unwrap();
        let mut acked: Vec<Option<Vec<u8>>> = Vec::new();
        let check = |j: &Journal, acked: &[Option<Vec<u8>>]| {
            assert!(j.len() >= acked.len() as u64, "seed {seed}");
            for (i, e) in acked.iter().enumerate() {
                if let Some(e) = e {
                    assert_eq!(&j.read(i as u64).unwrap(), e, "seed {seed} index {i}");
                }
            }
        };
        for step in 0..120u64 {
            match rng.below(10) {
                0..=5 => {
                    let n = 1 + rng.below(4);
                    let batch: Vec<Vec<u8>> = (0..n)
                        .map(|k| {
                            entry(seed * 100_000 + step * 10 + k, 67 + rng.below(300) as usize)
                        })
                        .collect();
                    let len_before = j.len();
                    match j.append(&batch) {
                        Ok(r) => {
                            assert_eq!(r, len_before..len_before + n);
                            acked.resize(r.start as usize, None);
                            acked.extend(batch.into_iter().map(Some));
                        }
                        Err(_) => assert!(j.is_poisoned() || j.len() == len_before),
                    }
                }
                6 => disk.fail_writes(1),
                7 => disk.fail_syncs(1),
                8 => {
                    disk.fail_truncates(1);
                    disk.fail_syncs(1);
                }
                _ => {
                    // Power loss, keeping a random torn prefix of whatever
                    // was written but not synced.
                    let torn = rng.below(400) as usize;
                    drop(j);
                    disk = disk.crash(torn);
                    j = open_mem(&disk).unwrap();
                    torn_cut += j.truncated_on_open();
                    check(&j, &acked);
                }
            }
            if j.is_poisoned() {
                // Fatal error: reload from disk, as the node does. An
                // injected fault still armed may fail the first reopen (its
                // truncate or sync): opening is retried, as an operator would.
                drop(j);
                j = match open_mem(&disk) {
                    Ok(j) => j,
                    Err(StoreError::Io { .. }) => open_mem(&disk).unwrap(),
                    Err(e) => panic!("seed {seed}: {e}"),
                };
                check(&j, &acked);
            }
        }
        drop(j);
        let j = open_mem(&disk.crash(0)).unwrap();
        check(&j, &acked);
        torn_cut += j.truncated_on_open();
        survivors += j.len() - acked.len() as u64;
    }
    // The faults did bite: some recoveries cut torn tails, and some
    // unacknowledged entries survived (allowed by the contract).
    eprintln!("torn bytes cut {torn_cut}, unacknowledged survivors {survivors}");
    assert!(torn_cut > 0 && survivors > 0);
}

/// Power loss at an arbitrary moment while many threads append: every entry
/// acknowledged before the crash is in the crash image.
#[test]
fn crash_snapshot_during_concurrent_appends() {
    let f = MemFile::new();
    f.set_sync_delay(Duration::from_micros(100));
    let j = open_mem(&f).unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut images = Vec::new();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let j = j.clone();
            let acked = Arc::clone(&acked);
            s.spawn(move || {
                for k in 0..150 {
                    let e = entry(t * 10_000 + k, 67 + (k as usize % 200));
                    let i = j.append_one(&e).unwrap();
                    acked.lock().unwrap().push((i, e));
                }
            });
        }
        for round in 0..20 {
            std::thread::sleep(Duration::from_millis(3));
            // Acks recorded before this clone happened before the crash.
            let before = acked.lock().unwrap().clone();
            images.push((before, f.crash(round * 37)));
        }
    });
    for (before, image) in images {
        let j = open_mem(&image).unwrap();
        for (i, e) in before {
            assert_eq!(j.read(i).unwrap(), e);
        }
    }
}
