//! A mirror's projector: stores the projection (tree hashes, catalog
//! records, leaf index) of committed entries and then publishes them to
//! readers, on its own thread, while the mirror already verifies the next
//! packages (the node's sequencer/projector split, DESIGN.md § Storage).
//!
//! Only entries that are durable in the mirror's journal reach it, so it
//! holds nothing authoritative: a crash loses at most derived state, which
//! [`crate::mirror::Mirror::open`] replays from the journal. Jobs run in
//! the order they were sent; a job's entries and cosigned checkpoint become
//! visible to readers (size, Follow, GetCheckpoint) only after its
//! projection is stored, so the view's "committed size" keeps meaning
//! "durable *and* projected".
//!
//! A committed run is stored in parts of at most [`PART`] entries, one sled
//! batch each: sled 0.34 holds one process-wide lock for the whole of a
//! batch, which would stall every other sled operation of the county (other
//! mirrors' commits and reads) for a whole catch-up step.
//!
//! A failure to store stops the projector; the mirror then refuses pushes
//! until a restart replays the journal.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use gongkai_core::Hash;
use gongkai_core::chain::Prepared;
use gongkai_core::merkle::NodeId;
use gongkai_node::view::LogView;
use gongkai_store::projection::Applied;
use tokio::sync::watch;

use crate::AggregatorError;

/// Jobs the mirror may run ahead of its projector (then sending blocks).
const QUEUE: usize = 2;

/// Most entries stored in one sled batch.
pub(crate) const PART: usize = 1024;

/// Entries durable in the journal, starting at the projection's applied
/// mark, stored in one batch.
pub(crate) struct Part {
    /// The entries.
    pub entries: Vec<Prepared>,
    /// The subtrees their appends completed.
    pub nodes: Vec<(NodeId, Hash)>,
    /// Journal size after them (published once they are stored).
    pub size: u64,
}

/// One unit of work, in commit order.
#[derive(Default)]
pub(crate) struct Job {
    /// Committed entries, in parts of at most [`PART`].
    pub parts: Vec<Part>,
    /// A cosigned checkpoint `(size, note)` to serve after the entries.
    pub cosigned: Option<(u64, String)>,
}

/// Jobs sent, jobs done, and the failure that stopped the projector.
#[derive(Default)]
struct Progress {
    sent: u64,
    done: u64,
    failed: Option<String>,
}

struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
    /// Jobs done, for async waiters.
    done: watch::Sender<u64>,
}

/// The handle a mirror holds. Dropping it lets the thread finish the jobs
/// it holds and joins it (so the projection's database is closed when the
/// mirror is).
pub(crate) struct Projector {
    tx: Option<SyncSender<Job>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Projector {
    /// Starts the projector of `view` (whose projection is caught up with
    /// its journal).
    ///
    /// # Errors
    /// [`AggregatorError::Fatal`] if the thread cannot start.
    pub(crate) fn start(view: Arc<LogView>) -> Result<Projector, AggregatorError> {
        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
            done: watch::channel(0).0,
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("county-projector".into())
                .spawn(move || run(&view, &rx, &shared))
                .map_err(|e| AggregatorError::Fatal(format!("start the projector: {e}")))?
        };
        Ok(Projector {
            tx: Some(tx),
            shared,
            thread: Some(thread),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.shared
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The failure that stopped the projector, as an error to answer.
    fn stopped(reason: &str) -> AggregatorError {
        AggregatorError::Storage(format!(
            "the mirror's projection failed ({reason}); restart the aggregator to replay its journal"
        ))
    }

    /// Refuses work once the projector has failed.
    ///
    /// # Errors
    /// [`AggregatorError::Storage`] naming the failure.
    pub(crate) fn check(&self) -> Result<(), AggregatorError> {
        match &self.lock().failed {
            Some(reason) => Err(Self::stopped(reason)),
            None => Ok(()),
        }
    }

    /// Queues a job (blocks while [`QUEUE`] jobs wait). Call it from a
    /// blocking thread.
    ///
    /// # Errors
    /// [`AggregatorError::Storage`] if the projector has stopped.
    pub(crate) fn send(&self, job: Job) -> Result<(), AggregatorError> {
        self.check()?;
        let tx = self.tx.as_ref().ok_or_else(|| Self::stopped("closed"))?;
        self.lock().sent += 1;
        if tx.send(job).is_err() {
            let mut p = self.lock();
            p.sent -= 1;
            let reason = p.failed.clone().unwrap_or_else(|| "stopped".into());
            return Err(Self::stopped(&reason));
        }
        Ok(())
    }

    /// Jobs sent so far (a ticket for [`Projector::wait_async`]).
    pub(crate) fn sent(&self) -> u64 {
        self.lock().sent
    }

    /// Blocks until every job sent so far is stored and published, so the
    /// projection may be read directly. Call it from a blocking thread.
    ///
    /// # Errors
    /// [`AggregatorError::Storage`] if the projector has stopped.
    pub(crate) fn wait_idle(&self) -> Result<(), AggregatorError> {
        let mut p = self.lock();
        let target = p.sent;
        loop {
            if let Some(reason) = &p.failed {
                return Err(Self::stopped(reason));
            }
            if p.done >= target {
                return Ok(());
            }
            p = self
                .shared
                .changed
                .wait(p)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Waits (async) until the first `ticket` jobs are stored and
    /// published, or the projector stopped.
    pub(crate) async fn wait_async(&self, ticket: u64) {
        let mut done = self.shared.done.subscribe();
        let _ = done
            .wait_for(|&d| d >= ticket || self.lock().failed.is_some())
            .await;
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the county projector panicked");
        }
    }
}

fn run(view: &LogView, rx: &Receiver<Job>, shared: &Shared) {
    for job in rx {
        let result = apply(view, job);
        let mut p = shared
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(()) => p.done += 1,
            Err(e) => {
                tracing::error!(origin = %view.origin(), error = %e, "mirror projection failed: refusing pushes; restart the aggregator to replay the journal");
                p.failed = Some(e.to_string());
            }
        }
        let (done, failed) = (p.done, p.failed.is_some());
        drop(p);
        shared.changed.notify_all();
        // Wakes async waiters (they check `failed` too).
        shared.done.send_replace(done);
        if failed {
            return;
        }
    }
}

/// Stores one job's projection, then publishes its size and checkpoint.
fn apply(view: &LogView, job: Job) -> Result<(), AggregatorError> {
    for part in job.parts {
        let applied: Vec<Applied<'_>> = part
            .entries
            .iter()
            .map(|p| Applied {
                index: p.event.index,
                leaf_hash: p.leaf_hash,
                event: &p.event,
            })
            .collect();
        view.projection().apply(&applied, &part.nodes, &[])?;
        view.publish_size(part.size);
    }
    if let Some((size, note)) = job.cosigned {
        view.projection().put_checkpoint(size, &note)?;
        view.set_checkpoint(size, note.clone());
        view.set_cosigned(size, note);
    }
    Ok(())
}
