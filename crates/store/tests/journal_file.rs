//! The journal on a real file: round trip, group commit with real
//! `fdatasync`, torn tails cut at every byte, corruption and header checks.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use common::entry;
use gongkai_store::journal::RECORD_OVERHEAD;
use gongkai_store::{DataDir, Journal, JournalOptions, StoreError};

const ORIGIN: &str = "example.gov.cn/county/education";

fn opts() -> JournalOptions {
    JournalOptions {
        // The test machine's disk may be fuller than a production one.
        reserve_bytes: 1 << 20,
        ..JournalOptions::default()
    }
}

#[test]
fn round_trip_and_reopen_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let j = Journal::create(&path, ORIGIN, opts()).unwrap();
    assert!(matches!(
        Journal::create(&path, ORIGIN, opts()),
        Err(StoreError::AlreadyExists { .. })
    ));
    let entries: Vec<Vec<u8>> = (0..100)
        .map(|i| entry(i, 67 + (i as usize * 131) % 5000))
        .collect();
    assert_eq!(j.append(&entries[..60]).unwrap(), 0..60);
    assert_eq!(j.append(&entries[60..]).unwrap(), 60..100);
    assert_eq!(j.synced_len(), fs::metadata(&path).unwrap().len());
    assert!(matches!(
        Journal::open(&path, ORIGIN, opts()),
        Err(StoreError::Locked { .. })
    ));
    drop(j);
    let j = Journal::open(&path, ORIGIN, opts()).unwrap();
    assert_eq!(j.len(), 100);
    assert_eq!(j.truncated_on_open(), 0);
    assert_eq!(j.read_range(0, 100).unwrap(), entries);
    assert_eq!(j.read(42).unwrap(), entries[42]);
    assert!(!dir.path().join("journal.creating").exists());
}

#[test]
fn concurrent_writers_on_disk_share_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let j = Journal::create(&path, ORIGIN, opts()).unwrap();
    let (threads, per) = (16u64, 200u64);
    let got = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..threads {
            let j = j.clone();
            let got = Arc::clone(&got);
            s.spawn(move || {
                for k in 0..per {
                    let e = entry(t << 32 | k, 67 + (k as usize * 7) % 400);
                    let i = j.append_one(&e).unwrap();
                    got.lock().unwrap().push((i, e));
                }
            });
        }
    });
    let mut got = Arc::try_unwrap(got).unwrap().into_inner().unwrap();
    got.sort();
    let n = threads * per;
    assert!(got.iter().enumerate().all(|(k, (i, _))| *i == k as u64));
    let syncs = j.sync_count();
    eprintln!("{n} appends on disk, {syncs} fdatasync calls");
    assert!(syncs < n, "{syncs} syncs for {n} appends");
    drop(j);
    let j = Journal::open(&path, ORIGIN, opts()).unwrap();
    for (i, e) in got {
        assert_eq!(j.read(i).unwrap(), e);
    }
}

#[test]
fn torn_tail_on_disk_cut_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let j = Journal::create(&path, ORIGIN, opts()).unwrap();
    let entries: Vec<Vec<u8>> = (0..5).map(|i| entry(i, 67 + 10 * i as usize)).collect();
    j.append(&entries).unwrap();
    drop(j);
    let full = fs::read(&path).unwrap();
    let last = full.len() - (entries[4].len() + RECORD_OVERHEAD);
    for cut in last..full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let j = Journal::open(&path, ORIGIN, opts()).unwrap();
        assert_eq!(j.len(), 4, "cut at {cut}");
        assert_eq!(j.truncated_on_open(), (cut - last) as u64);
        assert_eq!(fs::metadata(&path).unwrap().len(), last as u64);
        assert_eq!(j.read_range(0, 4).unwrap(), entries[..4]);
    }
}

#[test]
fn corruption_and_wrong_header_refused_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let j = Journal::create(&path, ORIGIN, opts()).unwrap();
    j.append(&[entry(1, 100), entry(2, 100), entry(3, 100)])
        .unwrap();
    drop(j);
    let header = (14 + ORIGIN.len() + 4) as u64;
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xEE], header + 112 + 20).unwrap();
    drop(f);
    let err = Journal::open(&path, ORIGIN, opts()).unwrap_err();
    match &err {
        StoreError::Corrupt { offset, index, .. } => {
            assert_eq!((*offset, *index), (header + 112, 1));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("byte offset {}", header + 112)),
        "{msg}"
    );
    assert!(matches!(
        Journal::open(&path, "another/origin", opts()),
        Err(StoreError::WrongOrigin { .. })
    ));
    let other = dir.path().join("not-a-journal");
    fs::write(&other, b"PK\x03\x04 a zip file, not a journal at all").unwrap();
    assert!(matches!(
        Journal::open(&other, ORIGIN, opts()),
        Err(StoreError::NotAJournal { .. })
    ));
}

#[test]
fn reserve_larger_than_the_disk_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::create(
        dir.path().join("journal"),
        ORIGIN,
        JournalOptions {
            reserve_bytes: u64::MAX / 4,
            ..JournalOptions::default()
        },
    )
    .unwrap();
    let before = j.synced_len();
    assert!(matches!(
        j.append_one(&entry(1, 100)),
        Err(StoreError::DiskFull { .. })
    ));
    assert_eq!(fs::metadata(j.path()).unwrap().len(), before);
    assert!(!j.is_poisoned());
}

#[test]
fn data_dir_wires_journal_and_content() {
    let tmp = tempfile::tempdir().unwrap();
    let d = DataDir::open(tmp.path().join("node")).unwrap();
    let j = d.journal(ORIGIN, opts()).unwrap();
    j.append_one(&entry(1, 80)).unwrap();
    drop(j);
    let j = d.journal(ORIGIN, opts()).unwrap();
    assert_eq!(j.len(), 1);
    let c = d.content().unwrap();
    let salt = [9u8; 32];
    let digest = gongkai_core::hash::Hash(*blake3::keyed_hash(&salt, b"doc").as_bytes());
    assert!(c.put(&digest, &salt, b"doc").unwrap());
    assert_eq!(c.get_bytes(&digest).unwrap().unwrap().bytes, b"doc");
}
