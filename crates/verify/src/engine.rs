//! The one verification engine: every run of entries in this project —
//! a node's start, a county mirror's open and every push it receives,
//! `verify`, `audit`, `monitor`, backup and restore — is checked here, with
//! one thread policy ([`threads`]).
//!
//! Worker threads prepare entries (framing, canonical body, field rules,
//! hashes) and batch-verify their signatures (ZIP-215, the same verdict as
//! one by one). The links, keys and catalog rules stay in log order with
//! core's [`ChainVerifier`]: a verified signature proves an entry only once
//! `push_verified` has accepted the signer the entry names as the key in
//! force. Two shapes over the same per-part work:
//!
//! - [`check_package`] for one package that is in memory (a push, a
//!   journal chunk): the calling thread takes the first part, a scoped
//!   thread each of the others; the caller applies the result.
//! - [`verify_stream`] for a log read chunk by chunk (an export, a server):
//!   the worker that holds the next batch in log order applies it.
//!
//! Errors are reported in log order: a bad signature at index `i` is
//! reported only once entry `i`'s links and everything before it passed
//! (FORMAT.md § 6).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, mpsc};

use gongkai_core::Error;
use gongkai_core::chain::{ChainVerifier, Prepared, prepare, verify_queued};
use gongkai_core::keys::BatchVerifier;

/// Entries per signature batch.
pub const BATCH: usize = 1024;

/// Threads for verification: the cores, at most 8 (beyond that a push's
/// latency gains nothing and the county's other work loses). Asked once: on
/// Linux `available_parallelism` reads the cgroup files on every call.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(8)
    })
}

/// `entries` (the first at index `start`) cut into consecutive parts of
/// `size` entries (the last may be shorter), each with the index of its
/// first entry. Parts are taken from the front one at a time: splitting
/// the remainder off again and again would copy (and page-fault in) the
/// rest each time.
pub fn parts(
    entries: Vec<Vec<u8>>,
    size: usize,
    start: u64,
) -> impl Iterator<Item = (u64, Vec<Vec<u8>>)> {
    let mut rest = entries.into_iter();
    let mut at = start;
    std::iter::from_fn(move || {
        let part: Vec<Vec<u8>> = rest.by_ref().take(size.max(1)).collect();
        if part.is_empty() {
            return None;
        }
        let first = at;
        at += part.len() as u64;
        Some((first, part))
    })
}

/// One batch for a worker: its position, first index and entries.
type Batch = (usize, u64, Vec<Vec<u8>>);

/// The result of one part on a worker.
struct Part {
    prepared: Vec<Prepared>,
    /// The error that stopped preparing (at `start + prepared.len()`).
    prepare_error: Option<Error>,
    /// The first entry whose signature checks could not be built (a
    /// malformed rotation proof); the checks stop there.
    unchecked: Option<(u64, Error)>,
    /// The batch verdict of every check built.
    verdict: Result<(), Error>,
}

impl Part {
    /// The first signature failure in log order: the batch verdict (it
    /// covers only the entries before one whose checks could not be
    /// built), else that entry.
    fn signature_error(&self) -> Option<&Error> {
        self.verdict
            .as_ref()
            .err()
            .or(self.unchecked.as_ref().map(|(_, e)| e))
    }

    fn into_signature_error(self) -> Option<Error> {
        Signatures {
            unchecked: self.unchecked,
            verdict: self.verdict,
        }
        .first_error()
    }
}

/// The per-part work every shape shares: prepare, then queue every
/// signature straight into one batch (each message is hashed as it is
/// queued, so none is kept) and verify it.
fn work(start: u64, entries: Vec<Vec<u8>>) -> Part {
    let mut prepared = Vec::with_capacity(entries.len());
    let mut prepare_error = None;
    for (i, bytes) in entries.into_iter().enumerate() {
        match prepare(bytes, start + i as u64) {
            Ok(p) => prepared.push(p),
            Err(e) => {
                prepare_error = Some(e);
                break;
            }
        }
    }
    let mut batch = BatchVerifier::new();
    let mut scratch = Vec::new();
    let mut unchecked = None;
    for p in &prepared {
        if let Err(e) = p.queue_signatures(&mut batch, &mut scratch) {
            unchecked = Some((p.position, e));
            break;
        }
    }
    let verdict = verify_queued(batch, &mut rand::rng());
    Part {
        prepared,
        prepare_error,
        unchecked,
        verdict,
    }
}

/// Runs `f` over `parts` on the calling thread (the first) and one scoped
/// thread each (the others); results in order. A panic in a thread is
/// raised again here.
fn fan_out<T: Send>(
    parts: impl Iterator<Item = (u64, Vec<Vec<u8>>)>,
    f: impl Fn(u64, Vec<Vec<u8>>) -> T + Sync,
) -> Vec<T> {
    let mut parts = parts;
    let Some((head_first, head)) = parts.next() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = parts
            .map(|(first, part)| s.spawn(move || f(first, part)))
            .collect();
        let mut out = vec![f(head_first, head)];
        for h in handles {
            match h.join() {
                Ok(r) => out.push(r),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

/// Prepares entries (framing, canonical body, field rules, hashes), split
/// over the cores for large runs; no signature is checked.
///
/// # Errors
/// The first entry, in log order, that does not prepare.
pub fn prepare_all(entries: Vec<Vec<u8>>, start: u64) -> Result<Vec<Prepared>, Error> {
    let prep = |first: u64, part: Vec<Vec<u8>>| {
        part.into_iter()
            .zip(first..)
            .map(|(e, i)| prepare(e, i))
            .collect::<Result<Vec<_>, _>>()
    };
    if threads() < 2 || entries.len() < 64 {
        return prep(start, entries);
    }
    let chunk = entries.len().div_ceil(threads());
    let mut out = Vec::new();
    for r in fan_out(parts(entries, chunk, start), prep) {
        out.extend(r?);
    }
    Ok(out)
}

/// The signature verdict of a package.
pub struct Signatures {
    /// The first entry whose signature checks could not be built (a
    /// malformed rotation proof), with the error; the checks stop there.
    pub unchecked: Option<(u64, Error)>,
    /// The batch verdict (ZIP-215) of every check built: the error of the
    /// first invalid signature in log order.
    pub verdict: Result<(), Error>,
}

impl Signatures {
    /// The first failure, in log order of the parts.
    pub fn first_error(self) -> Option<Error> {
        match (self.verdict, self.unchecked) {
            (Err(e), _) | (Ok(()), Some((_, e))) => Some(e),
            (Ok(()), None) => None,
        }
    }
}

/// Prepares a package (framing, canonical body, field rules, hashes) and
/// batch-verifies its signatures, split over the cores in one pass.
/// Errors and verdicts come back in log order; the caller applies links,
/// keys and rules with `push_verified` up to the first bad signature.
///
/// # Errors
/// The first entry (in log order) that does not prepare.
pub fn check_package(
    entries: Vec<Vec<u8>>,
    start: u64,
) -> Result<(Vec<Prepared>, Signatures), Error> {
    let results = if threads() < 2 || entries.len() < 64 {
        vec![work(start, entries)]
    } else {
        let chunk = entries.len().div_ceil(threads());
        fan_out(parts(entries, chunk, start), work)
    };
    let mut prepared = Vec::new();
    let mut unchecked = None;
    let mut verdict = Ok(());
    for part in results {
        if let Some(e) = part.prepare_error {
            return Err(e);
        }
        prepared.extend(part.prepared);
        if unchecked.is_none() {
            unchecked = part.unchecked;
        }
        if verdict.is_ok() {
            verdict = part.verdict;
        }
    }
    Ok((prepared, Signatures { unchecked, verdict }))
}

/// Entries read per step of [`walk`].
pub const WALK_CHUNK: u64 = 4096;

/// The one genesis walker: verifies a stored log from `verifier`'s size to
/// `len`, reading `[start, end)` through `read` in chunks of
/// [`WALK_CHUNK`], and hands every chunk, once its links, keys (and
/// catalog rules, unless the verifier skips them) are applied, to `each`.
/// With `check_signatures`, every signature is batch-verified over the
/// cores ([`check_package`]) and the first failure is reported in log
/// order; without, the entries are only prepared — for a store that
/// verified every entry before it wrote it and is read back under its own
/// lock (a county mirror's open).
///
/// The node's start, `node check`, backup and restore, and the county
/// mirror's open all walk their journals with it.
///
/// # Errors
/// The first framing, field, chain, rule or signature error in log order,
/// or what `read` or `each` return.
pub fn walk<E: From<Error>>(
    verifier: &mut ChainVerifier,
    len: u64,
    check_signatures: bool,
    mut read: impl FnMut(u64, u64) -> Result<Vec<Vec<u8>>, E>,
    mut each: impl FnMut(&[Prepared], &ChainVerifier) -> Result<(), E>,
) -> Result<(), E> {
    let mut start = verifier.size();
    while start < len {
        let end = (start + WALK_CHUNK).min(len);
        let entries = read(start, end)?;
        if entries.len() as u64 != end - start {
            return Err(Error::HashStore(format!(
                "asked for entries {start}..{end}, read {}",
                entries.len()
            ))
            .into());
        }
        let prepared = if check_signatures {
            let (prepared, signatures) = check_package(entries, start)?;
            let bad = signatures.first_error();
            let bad_at = bad.as_ref().and_then(Error::index);
            for p in &prepared {
                // Links and rules first, then the signature.
                verifier.push_verified(p)?;
                if Some(p.position) == bad_at {
                    break;
                }
            }
            if let Some(e) = bad {
                return Err(e.into());
            }
            prepared
        } else {
            let prepared = prepare_all(entries, start)?;
            for p in &prepared {
                verifier.push_verified(p)?;
            }
            prepared
        };
        each(&prepared, verifier)?;
        start = end;
    }
    Ok(())
}

/// The parallel half of verification alone: `entries` (at indexes from
/// `start`) prepared and their signatures batch-verified on `threads`
/// threads. `gongkai bench audit` times it to show what the sequential
/// half costs.
pub struct Checked {
    parts: Vec<Option<Part>>,
}

impl Checked {
    /// The first failure of the parallel half, if any (a worker that
    /// panicked, an entry that did not prepare, a signature that did not
    /// verify).
    pub fn first_error(&self) -> Option<String> {
        self.parts.iter().find_map(|p| match p {
            None => Some("a verification worker failed".into()),
            Some(p) => p
                .prepare_error
                .as_ref()
                .or(p.signature_error())
                .map(ToString::to_string),
        })
    }
}

/// Runs the parallel half on `entries` at indexes from `start`.
pub fn check_parallel(start: u64, entries: Vec<Vec<u8>>, threads: usize) -> Checked {
    let batches: Vec<(u64, Vec<Vec<u8>>)> = parts(entries, BATCH, start).collect();
    let threads = threads.max(1);
    // Batches round-robin over the threads; results back in order.
    let mut parts: Vec<Option<Part>> = (0..batches.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let mut lanes: Vec<Vec<Batch>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, (at, b)) in batches.into_iter().enumerate() {
            lanes[i % threads].push((i, at, b));
        }
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                s.spawn(move || {
                    lane.into_iter()
                        .map(|(i, at, b)| (i, work(at, b)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            // A worker that panicked leaves its parts empty: reported below.
            if let Ok(done) = h.join() {
                for (i, p) in done {
                    parts[i] = Some(p);
                }
            }
        }
    });
    Checked { parts }
}

/// The sequential half for one part: links and catalog rules in log order,
/// calling `each` with every accepted entry. Stops at the first failure, in
/// log order; the verifier must then be discarded.
fn apply_part(
    verifier: &mut ChainVerifier,
    mut part: Part,
    each: &mut impl FnMut(&Prepared, &ChainVerifier),
) -> Result<(), Error> {
    let bad = part.signature_error().and_then(Error::index);
    for p in &part.prepared {
        if Some(p.position) == bad {
            // Links and rules first, then the signature.
            verifier.push_prepared(p)?;
            break;
        }
        verifier.push_verified(p)?;
        each(p, verifier);
    }
    let prepare_error = part.prepare_error.take();
    if let Some(e) = part.into_signature_error() {
        return Err(e);
    }
    prepare_error.map_or(Ok(()), Err)
}

/// Verifies `entries`, which continue `verifier`'s log at its size, on
/// `threads` threads, calling `each` with every entry once it is accepted.
///
/// # Errors
/// As [`verify_stream`].
pub fn verify_entries(
    verifier: &mut ChainVerifier,
    entries: Vec<Vec<u8>>,
    threads: usize,
    each: impl FnMut(&Prepared, &ChainVerifier) + Send,
) -> Result<(), Error> {
    let mut once = Some(entries);
    verify_stream(verifier, || once.take(), threads, each)
}

/// One batch for a worker: its place in the stream, first index, entries.
struct Job {
    seq: usize,
    start: u64,
    entries: Vec<Vec<u8>>,
}

/// Parts done by the workers, waiting for their turn in log order.
struct Ready {
    parts: BTreeMap<usize, Part>,
    /// The next part in log order.
    next: usize,
    /// True while a worker applies parts; it applies every part that is
    /// ready in order before it clears this.
    applying: bool,
}

/// The sequential half's state.
struct Sequence<'v, F> {
    verifier: &'v mut ChainVerifier,
    each: F,
    error: Option<Error>,
    /// A panic in `each` (or in the verifier), raised again on the calling
    /// thread once every worker has stopped.
    panic: Option<Box<dyn std::any::Any + Send>>,
}

/// Locks `m`, also after a panic elsewhere (every panic is caught and
/// handled; the state behind the lock stays usable for the error path).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Verifies a stream of chunks that continue `verifier`'s log. `next`
/// yields the chunks in order (called on this thread, so it may read
/// files) and `None` at the end.
///
/// The chunks are cut into batches of [`BATCH`] for `threads` workers.
/// Each worker prepares its batch and batch-verifies its signatures; then
/// the worker that holds the next batch in log order applies it, and every
/// batch ready after it, to the verifier: links, catalog rules and `each`.
/// There is no third thread for the sequential half, and most batches are
/// applied, and their memory freed, by the thread that made them: with
/// glibc's allocator, freeing on another thread costs an arena lock per
/// block, and a coordinating thread took CPU time from the two workers.
///
/// # Errors
/// The first framing, field, chain, rule or signature error in log order,
/// naming its index. After an error no more chunks are read.
///
/// # Panics
/// If `each` panics (after every worker has stopped).
pub fn verify_stream<F>(
    verifier: &mut ChainVerifier,
    mut next: impl FnMut() -> Option<Vec<Vec<u8>>>,
    threads: usize,
    each: F,
) -> Result<(), Error>
where
    F: FnMut(&Prepared, &ChainVerifier) + Send,
{
    let threads = threads.max(1);
    let mut at = verifier.size();
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(2 * threads);
    let job_rx = Mutex::new(job_rx);
    let ready = Mutex::new(Ready {
        parts: BTreeMap::new(),
        next: 0,
        applying: false,
    });
    let sequence = Mutex::new(Sequence {
        verifier,
        each,
        error: None,
        panic: None,
    });
    let failed = AtomicBool::new(false);
    let turn = Condvar::new();
    // Batches read but not yet applied, at most: bounds memory when one
    // worker falls behind while the others read on.
    let window = 4 * threads;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| worker(&job_rx, &ready, &turn, &sequence, &failed));
        }
        let mut seq = 0;
        'feed: while !failed.load(Ordering::Relaxed) {
            let Some(chunk) = next() else { break };
            for (first, entries) in parts(chunk, BATCH, at) {
                let n = entries.len() as u64;
                let mut r = lock(&ready);
                while seq >= r.next + window && !failed.load(Ordering::Relaxed) {
                    r = turn.wait(r).unwrap_or_else(PoisonError::into_inner);
                }
                drop(r);
                let job = Job {
                    seq,
                    start: first,
                    entries,
                };
                if failed.load(Ordering::Relaxed) || job_tx.send(job).is_err() {
                    break 'feed;
                }
                seq += 1;
                at += n;
            }
        }
        drop(job_tx);
    });
    let sequence = sequence
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = sequence.panic {
        std::panic::resume_unwind(p);
    }
    sequence.error.map_or(Ok(()), Err)
}

/// One worker of [`verify_stream`]: takes batches until the stream ends.
fn worker<F: FnMut(&Prepared, &ChainVerifier)>(
    jobs: &Mutex<mpsc::Receiver<Job>>,
    ready: &Mutex<Ready>,
    turn: &Condvar,
    sequence: &Mutex<Sequence<'_, F>>,
    failed: &AtomicBool,
) {
    loop {
        let Ok(job) = lock(jobs).recv() else { return };
        if failed.load(Ordering::Relaxed) {
            // Drain what was queued before the failure, unread.
            continue;
        }
        let part = std::panic::catch_unwind(AssertUnwindSafe(|| work(job.start, job.entries)))
            .unwrap_or_else(|_| Part {
                prepared: Vec::new(),
                prepare_error: Some(Error::HashStore("a verification worker failed".into())),
                unchecked: None,
                verdict: Ok(()),
            });
        let mut r = lock(ready);
        r.parts.insert(job.seq, part);
        if r.applying {
            // The worker applying now takes this part when its turn comes.
            continue;
        }
        r.applying = true;
        loop {
            let n = r.next;
            let Some(part) = r.parts.remove(&n) else {
                r.applying = false;
                break;
            };
            r.next += 1;
            turn.notify_all();
            drop(r);
            let mut sq = lock(sequence);
            if sq.error.is_none() && sq.panic.is_none() {
                let Sequence { verifier, each, .. } = &mut *sq;
                match std::panic::catch_unwind(AssertUnwindSafe(|| {
                    apply_part(verifier, part, each)
                })) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        sq.error = Some(e);
                        failed.store(true, Ordering::Relaxed);
                    }
                    Err(p) => {
                        sq.panic = Some(p);
                        failed.store(true, Ordering::Relaxed);
                    }
                }
            }
            drop(sq);
            r = lock(ready);
            // Wakes the reader if it waits for room and the stream failed
            // (it checks `failed` under this lock, so it cannot miss it).
            turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use gongkai_core::event::{Kind, pb};
    use gongkai_core::keys::SigningKey;
    use gongkai_core::types::Origin;
    use gongkai_core::writer::LogWriter;

    use super::*;

    const T0: u64 = 1_772_413_200_000;

    fn log(n: u64) -> (Vec<Vec<u8>>, SigningKey) {
        let key = SigningKey::from_seed([21; 32]);
        let mut w = LogWriter::new(
            Origin::new("gongkai.example/510122/finance").unwrap(),
            key.clone(),
        );
        let mut out = Vec::new();
        for i in 0..n {
            let kind = if i == 0 {
                Kind::Genesis(pb::Genesis {
                    department: "某某县财政局".into(),
                    division_code: "510122".into(),
                })
            } else {
                Kind::RequestReceived(pb::RequestReceived {
                    applicant: 0,
                    request_id: format!("r{i}"),
                    date_received: "2026-03-02".into(),
                    subject: "请求公开".into(),
                })
            };
            out.push(w.append(kind, T0 + i).unwrap().into_bytes());
        }
        (out, key)
    }

    fn stream(entries: &[Vec<u8>], key: &SigningKey, chunk: usize) -> (Result<(), Error>, u64) {
        let mut v = ChainVerifier::new(
            Origin::new("gongkai.example/510122/finance").unwrap(),
            &[key.public_key()],
        );
        let mut chunks = entries.chunks(chunk).map(<[Vec<u8>]>::to_vec);
        let mut seen = 0;
        let r = verify_stream(
            &mut v,
            || chunks.next(),
            3,
            |p, _| {
                assert_eq!(p.event.index, seen, "in order");
                seen += 1;
            },
        );
        (r, seen)
    }

    #[test]
    fn streamed_chunks_verify_in_order_and_errors_come_in_log_order() {
        let (entries, key) = log(3000);
        let (r, seen) = stream(&entries, &key, 700);
        r.unwrap();
        assert_eq!(seen, 3000);
        // A bad signature at 2500 and a broken link at 1500 (entry 1500
        // replaced by 1499: wrong index): the link, which comes first.
        let mut bad = entries.clone();
        let last = bad[2500].len() - 1;
        bad[2500][last] ^= 1;
        let (r, _) = stream(&bad, &key, 700);
        assert!(
            matches!(r, Err(Error::BadSignature { index: 2500, .. })),
            "{r:?}"
        );
        bad[1500] = entries[1499].clone();
        let (r, seen) = stream(&bad, &key, 700);
        assert_eq!(r.unwrap_err().index(), Some(1500));
        assert_eq!(seen, 1500);
        // A signature failing in the same batch as, but after, a link
        // failure: still the link.
        let mut bad = entries.clone();
        bad[10] = entries[9].clone();
        let last = bad[20].len() - 1;
        bad[20][last] ^= 1;
        let (r, _) = stream(&bad, &key, 5000);
        assert_eq!(r.unwrap_err().index(), Some(10));
        // A badly signed copy of entry 1400 at 1500: the fault is at 1500,
        // although the copy claims index 1400 (the signature error names
        // the position, not the index the body claims).
        let mut bad = entries.clone();
        bad[1500] = entries[1400].clone();
        let last = bad[1500].len() - 1;
        bad[1500][last] ^= 1;
        let (r, seen) = stream(&bad, &key, 700);
        assert!(
            matches!(r, Err(Error::ChainBroken { index: 1500, .. })),
            "{r:?}"
        );
        assert_eq!(seen, 1500);
    }

    #[test]
    fn reading_stops_after_an_error_and_a_panic_in_each_reaches_the_caller() {
        let (entries, key) = log(6000);
        let verifier = || {
            ChainVerifier::new(
                Origin::new("gongkai.example/510122/finance").unwrap(),
                &[key.public_key()],
            )
        };
        // Broken at 1,500 (batch 15): of 60 chunks of one batch each, only
        // those up to the error and the read-ahead window of 4 batches per
        // worker are read.
        let mut bad = entries.clone();
        bad[1500] = entries[1499].clone();
        let mut chunks = bad.chunks(100).map(<[Vec<u8>]>::to_vec);
        let mut read = 0;
        let r = verify_stream(
            &mut verifier(),
            || {
                read += 1;
                chunks.next()
            },
            3,
            |_, _| {},
        );
        assert_eq!(r.unwrap_err().index(), Some(1500));
        assert!(read <= 16 + 12 + 1, "{read} chunks read");
        // A panic in the caller's callback is the caller's, not a verdict.
        let mut chunks = entries.chunks(100).map(<[Vec<u8>]>::to_vec);
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            verify_stream(
                &mut verifier(),
                || chunks.next(),
                3,
                |p, _| assert!(p.event.index != 2000, "callback failed at 2000"),
            )
        }));
        assert!(caught.is_err());
    }
}
