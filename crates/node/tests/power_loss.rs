//! Power loss under the node: the journal lives on the store's
//! fault-injecting file (`gongkai_store::fault::MemFile`), which keeps apart
//! what the running system wrote (page cache) and what a sync made durable.
//! Concurrent writers append through the real sequencer (planning, signing,
//! key file, group commit, projector, acknowledgement); at a random moment
//! the power goes off — no write or sync reaches the disk any more — and
//! the node is restarted on what was durable, plus a random torn part of
//! the unsynced tail.
//!
//! `kill -9` (`crash.rs`) cannot show this: the page cache survives a
//! process kill, so an acknowledgement sent before `fdatasync` would go
//! unnoticed there. Here it loses the entry, and the test fails. So does a
//! projection that got ahead of the durable journal (the restart refuses
//! it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gongkai_core::event::{Kind, pb};
use gongkai_core::hash::leaf_hash;
use gongkai_core::keys::SigningKey;
use gongkai_core::types::Origin;
use gongkai_node::log::{self, Log, OpenOptions, WriteJob};
use gongkai_store::fault::MemFile;
use gongkai_store::{Journal, JournalOptions};

const ORIGIN: &str = "gongkai.example/510122/finance";

/// Small deterministic generator (xorshift), seeded per round.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn job(id: &str, events: usize) -> (WriteJob, tokio::sync::oneshot::Receiver<WriteResult>) {
    let (reply, rx) = tokio::sync::oneshot::channel();
    let kinds = (0..events)
        .map(|i| {
            Kind::RequestReceived(pb::RequestReceived {
                request_id: format!("{id}-{i}"),
                date_received: "2026-01-05".into(),
                subject: format!("申请公开 {id}"),
            })
        })
        .collect();
    let job = WriteJob {
        key: Some(id.to_owned()),
        fingerprint: leaf_hash(id.as_bytes()),
        kinds,
        reply,
    };
    (job, rx)
}

type WriteResult = Result<log::Appended, gongkai_node::NodeError>;

/// Every acknowledged entry: `(index, bytes)`.
type Acked = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

#[test]
fn power_loss_loses_no_acknowledged_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let origin = Origin::new(ORIGIN).unwrap();
    let key = SigningKey::from_seed([42; 32]);
    let key_path = tmp.path().join("finance.key");
    let opts = OpenOptions {
        origin: &origin,
        data_dir: &root,
        key_path: &key_path,
        key: &key,
        reserve_bytes: 0,
        cache_bytes: 8 << 20,
    };
    Log::create(&opts, "某某县财政局", "510122").unwrap();
    // From here on the journal lives on the simulated disk only.
    let journal_path = root.join("journal");
    let mut disk = MemFile::from_bytes(std::fs::read(&journal_path).unwrap());
    std::fs::remove_file(&journal_path).unwrap();

    let acked: Acked = Arc::default();
    let (mut lost_bytes, mut torn_cut) = (0usize, 0u64);
    for round in 0..8u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (round + 1).wrapping_mul(0x1234_5677));
        // A slow disk widens the window between a write and its sync.
        disk.set_sync_delay(Duration::from_micros(300 + rng.below(700)));
        let journal = Journal::open_with(
            Box::new(disk.clone()),
            &journal_path,
            ORIGIN,
            JournalOptions::default(),
        )
        .unwrap();
        torn_cut += journal.truncated_on_open();
        // The restart verified the chain and replayed the projection from
        // the durable journal (it refuses a projection ahead of it).
        let (log, tx, handle) = log::start_on(&opts, journal)
            .unwrap_or_else(|e| panic!("round {round}: restart after power loss: {e}"));
        for (index, bytes) in acked.lock().unwrap().iter() {
            assert_eq!(
                &log.journal().read(*index).unwrap(),
                bytes,
                "round {round}: acknowledged entry {index} lost or changed by the power loss"
            );
        }

        let writers: Vec<_> = (0..4)
            .map(|w| {
                let tx = tx.clone();
                let acked = Arc::clone(&acked);
                std::thread::spawn(move || {
                    for n in 0.. {
                        let id = format!("r{round}-w{w}-{n}");
                        let (job, rx) = job(&id, 1 + (n % 3));
                        if tx.send(Some(job)).is_err() {
                            return;
                        }
                        match rx.blocking_recv() {
                            Ok(Ok(appended)) => {
                                let mut acked = acked.lock().unwrap();
                                for r in appended.receipts {
                                    acked.push((r.index, r.entry));
                                }
                            }
                            // Refused or unanswered after the power went off.
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + rng.below(60)));
        // The power goes off: what the disk holds now is all a restart
        // will see (the node keeps running until its next sync fails).
        disk.power_off();
        lost_bytes += disk.data().len().saturating_sub(disk.durable().len());
        let torn = usize::try_from(rng.below(600)).unwrap();
        let image = disk.crash(torn);
        for w in writers {
            w.join().unwrap();
        }
        drop(tx);
        handle.join().unwrap();
        assert!(
            log.failed().borrow().is_some(),
            "round {round}: the node must stop after the power loss"
        );
        drop(log);

        disk = image;
    }

    // A last restart sees everything acknowledged, in a log that verifies.
    let journal = Journal::open_with(
        Box::new(disk.clone()),
        &journal_path,
        ORIGIN,
        JournalOptions::default(),
    )
    .unwrap();
    let (log, tx, handle) = log::start_on(&opts, journal).unwrap();
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 100,
        "too few acknowledged entries: {}",
        acked.len()
    );
    for (index, bytes) in acked.iter() {
        assert_eq!(&log.journal().read(*index).unwrap(), bytes, "entry {index}");
    }
    drop(tx);
    handle.join().unwrap();
    eprintln!(
        "{} acknowledged entries survived; unsynced bytes dropped {lost_bytes}, torn bytes cut {torn_cut}",
        acked.len()
    );
    // The power losses did bite: unsynced data was written and dropped.
    assert!(lost_bytes > 0);
}
