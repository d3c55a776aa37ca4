//! Entries checked in bulk, over the cores: framing, canonical body, field
//! rules and hashes ([`prepare`]), and every signature the entries claim,
//! batch-verified (ZIP-215: the same verdict as one by one). The links,
//! keys and catalog rules stay with the caller, in log order: a verified
//! signature proves an entry only once the caller's `push_verified` has
//! accepted the signer the entry names as the key in force.
//!
//! Used wherever a whole run of entries is verified: a node's start, a
//! county mirror's open and every push it receives.

use gongkai_core::chain::{Prepared, prepare, verify_queued};
use gongkai_core::keys::BatchVerifier;

/// Threads for verification: the cores, at most 8. Asked once: on Linux
/// `available_parallelism` reads the cgroup files on every call.
fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(8)
    })
}

/// Prepares entries (framing, canonical body, field rules, hashes), split
/// over the cores for large batches.
pub fn prepare_all(
    entries: Vec<Vec<u8>>,
    start: u64,
) -> Result<Vec<Prepared>, gongkai_core::Error> {
    let threads = threads();
    if threads < 2 || entries.len() < 64 {
        return entries
            .into_iter()
            .zip(start..)
            .map(|(e, i)| prepare(e, i))
            .collect();
    }
    let chunk = entries.len().div_ceil(threads);
    let mut parts: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut it = entries.into_iter();
    loop {
        let part: Vec<Vec<u8>> = it.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(k, part)| {
                let first = start + (k * chunk) as u64;
                s.spawn(move || {
                    part.into_iter()
                        .zip(first..)
                        .map(|(e, i)| prepare(e, i))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => out.extend(r?),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(out)
    })
}

/// The signature verdict of a package.
pub struct Signatures {
    /// The first entry whose signature checks could not be built (a
    /// malformed rotation proof), with the error; the checks stop there.
    pub unchecked: Option<(u64, gongkai_core::Error)>,
    /// The batch verdict (ZIP-215) of every check built: the error of the
    /// first invalid signature in log order.
    pub verdict: Result<(), gongkai_core::Error>,
}

/// One part of a package: prepared entries and their signature verdict.
fn check_part(
    entries: Vec<Vec<u8>>,
    first: u64,
) -> Result<(Vec<Prepared>, Signatures), gongkai_core::Error> {
    let prepared = entries
        .into_iter()
        .zip(first..)
        .map(|(e, i)| prepare(e, i))
        .collect::<Result<Vec<_>, _>>()?;
    // Queued straight into the batch, which hashes each message as it is
    // queued (as the verifiers' engine does).
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
    Ok((prepared, Signatures { unchecked, verdict }))
}

/// Prepares a package (framing, canonical body, field rules, hashes) and
/// batch-verifies its signatures, split over the cores in one pass: the
/// calling thread takes the first part, one scoped thread each of the
/// others. Errors and verdicts come back in log order.
///
/// # Errors
/// The first entry (in log order) that does not prepare.
pub fn check_package(
    entries: Vec<Vec<u8>>,
    start: u64,
) -> Result<(Vec<Prepared>, Signatures), gongkai_core::Error> {
    let threads = threads();
    if threads < 2 || entries.len() < 64 {
        return check_part(entries, start);
    }
    let chunk = entries.len().div_ceil(threads);
    let mut parts: Vec<(Vec<Vec<u8>>, u64)> = Vec::new();
    let mut it = entries.into_iter();
    let mut first = start;
    loop {
        let part: Vec<Vec<u8>> = it.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        let n = part.len() as u64;
        parts.push((part, first));
        first += n;
    }
    let mut parts = parts.into_iter();
    let Some((head, head_first)) = parts.next() else {
        return check_part(Vec::new(), start);
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .map(|(part, first)| s.spawn(move || check_part(part, first)))
            .collect();
        let mut results = vec![check_part(head, head_first)];
        for h in handles {
            match h.join() {
                Ok(r) => results.push(r),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        let mut prepared = Vec::new();
        let mut unchecked = None;
        let mut verdict = Ok(());
        for r in results {
            let (p, sig) = r?;
            prepared.extend(p);
            if unchecked.is_none() {
                unchecked = sig.unchecked;
            }
            if verdict.is_ok() {
                verdict = sig.verdict;
            }
        }
        Ok((prepared, Signatures { unchecked, verdict }))
    })
}
