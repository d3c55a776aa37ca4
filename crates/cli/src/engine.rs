//! Chain verification on all cores, as `verify`, `audit` and `monitor` do
//! it: worker threads prepare entries (framing, canonical body, field
//! rules, hashes) and batch-verify their signatures (ZIP-215, chunks of
//! 1,024), while the calling thread checks links and catalog rules in log
//! order with core's [`ChainVerifier`]. Errors are reported in log order:
//! a bad signature at index `i` is reported only once entry `i`'s links
//! and everything before it passed (FORMAT.md § 6).

use gongkai_core::Error;
use gongkai_core::chain::{ChainVerifier, Prepared, prepare, verify_signatures};

/// Entries per signature batch.
pub const BATCH: usize = 1024;

/// Worker threads to use: every core.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |p| p.get())
}

/// One batch for a worker: its position, first index and entries.
type Batch = (usize, u64, Vec<Vec<u8>>);

/// The result of one batch on a worker.
struct Part {
    prepared: Vec<Prepared>,
    /// The error that stopped preparing (at `start + prepared.len()`).
    prepare_error: Option<Error>,
    /// The first signature that failed.
    signature_error: Option<Error>,
}

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
    let mut checks = Vec::with_capacity(prepared.len());
    let mut signature_error = None;
    for p in &prepared {
        match p.signature_checks() {
            Ok(c) => checks.extend(c),
            Err(e) => {
                signature_error = Some(e);
                break;
            }
        }
    }
    if signature_error.is_none() {
        signature_error = verify_signatures(&checks, &mut rand::rng()).err();
    }
    Part {
        prepared,
        prepare_error,
        signature_error,
    }
}

/// Verifies `entries`, which continue `verifier`'s log at its size, on
/// `threads` threads, calling `each` with every entry once it is accepted
/// (and the verifier advanced past it). Stops at the first failure, in log
/// order; the verifier must then be discarded.
///
/// # Errors
/// The first framing, field, chain, rule or signature error, naming its
/// index.
pub fn verify_entries(
    verifier: &mut ChainVerifier,
    entries: Vec<Vec<u8>>,
    threads: usize,
    mut each: impl FnMut(&Prepared, &ChainVerifier),
) -> Result<(), Error> {
    let start = verifier.size();
    let mut batches: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
    let mut rest = entries;
    let mut at = start;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(BATCH));
        let n = rest.len() as u64;
        batches.push((at, rest));
        at += n;
        rest = tail;
    }
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
    for part in parts {
        let Some(part) = part else {
            return Err(Error::HashStore("a verification worker failed".into()));
        };
        let bad = part.signature_error.as_ref().and_then(Error::index);
        for p in &part.prepared {
            if Some(p.event.index) == bad {
                // Links and rules first, then the signature.
                verifier.push_prepared(p)?;
                break;
            }
            verifier.push_verified(p)?;
            each(p, verifier);
        }
        if let Some(e) = part.signature_error {
            return Err(e);
        }
        if let Some(e) = part.prepare_error {
            return Err(e);
        }
    }
    Ok(())
}
