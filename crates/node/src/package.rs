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
    std::thread::scope(|s| {
        let handles: Vec<_> = parts(entries, chunk, start)
            .map(|(first, part)| {
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
    let mut parts = parts(entries, chunk, start);
    let Some((head_first, head)) = parts.next() else {
        return check_part(Vec::new(), start);
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .map(|(first, part)| s.spawn(move || check_part(part, first)))
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

#[cfg(test)]
mod tests {
    use super::parts;

    #[test]
    fn parts_are_consecutive_with_their_first_index() {
        let entries: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i]).collect();
        let got: Vec<(u64, Vec<Vec<u8>>)> = parts(entries.clone(), 3, 10).collect();
        assert_eq!(
            got,
            vec![
                (10, entries[0..3].to_vec()),
                (13, entries[3..6].to_vec()),
                (16, entries[6..7].to_vec()),
            ]
        );
        assert_eq!(parts(entries[..6].to_vec(), 3, 0).count(), 2);
        assert_eq!(parts(Vec::new(), 3, 0).count(), 0);
        // A size of 0 is taken as 1, never an endless run of empty parts.
        assert_eq!(parts(entries, 0, 0).count(), 7);
    }
}
