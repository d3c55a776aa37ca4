//! Chain verification on all cores, as `verify`, `audit` and `monitor` do
//! it: worker threads prepare entries (framing, canonical body, field
//! rules, hashes) and batch-verify their signatures (ZIP-215, chunks of
//! 1,024), while the calling thread checks links and catalog rules in log
//! order with core's [`ChainVerifier`]. Errors are reported in log order:
//! a bad signature at index `i` is reported only once entry `i`'s links
//! and everything before it passed (FORMAT.md § 6).

use gongkai_core::Error;
use gongkai_core::chain::{ChainVerifier, Prepared, prepare, verify_queued};
use gongkai_core::keys::BatchVerifier;

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
    // Queued straight into the batch: each message is hashed as it is
    // queued, so none is kept.
    let mut batch = BatchVerifier::new();
    let mut scratch = Vec::new();
    let mut signature_error = None;
    for p in &prepared {
        if let Err(e) = p.queue_signatures(&mut batch, &mut scratch) {
            signature_error = Some(e);
            break;
        }
    }
    if signature_error.is_none() {
        signature_error = verify_queued(batch, &mut rand::rng()).err();
    }
    Part {
        prepared,
        prepare_error,
        signature_error,
    }
}

/// The parallel half of verification: `entries` (at indexes from `start`)
/// prepared and their signatures batch-verified on `threads` threads.
pub struct Checked {
    parts: Vec<Option<Part>>,
}

/// Runs the parallel half on `entries` at indexes from `start`.
pub fn check_parallel(start: u64, entries: Vec<Vec<u8>>, threads: usize) -> Checked {
    // Taken from the front one batch at a time: splitting the remainder off
    // again and again would copy (and page-fault in) the rest each time.
    let mut batches: Vec<(u64, Vec<Vec<u8>>)> = Vec::with_capacity(entries.len().div_ceil(BATCH));
    let mut rest = entries.into_iter();
    let mut at = start;
    loop {
        let batch: Vec<Vec<u8>> = rest.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let n = batch.len() as u64;
        batches.push((at, batch));
        at += n;
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
    Checked { parts }
}

/// The sequential half: links and catalog rules in log order, calling
/// `each` with every accepted entry. Stops at the first failure, in log
/// order; the verifier must then be discarded.
///
/// # Errors
/// The first framing, field, chain, rule or signature error, naming its
/// index.
pub fn apply(
    verifier: &mut ChainVerifier,
    checked: Checked,
    mut each: impl FnMut(&Prepared, &ChainVerifier),
) -> Result<(), Error> {
    for part in checked.parts {
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

/// Verifies `entries`, which continue `verifier`'s log at its size, on
/// `threads` threads, calling `each` with every entry once it is accepted.
///
/// # Errors
/// As [`apply`].
pub fn verify_entries(
    verifier: &mut ChainVerifier,
    entries: Vec<Vec<u8>>,
    threads: usize,
    each: impl FnMut(&Prepared, &ChainVerifier),
) -> Result<(), Error> {
    let checked = check_parallel(verifier.size(), entries, threads);
    apply(verifier, checked, each)
}

/// Verifies a stream of chunks that continue `verifier`'s log, with the
/// parallel half of chunk `k + 1` running while the calling thread does
/// the sequential half of chunk `k` (so the cores never wait for it).
/// `next` yields the chunks in order and `None` at the end.
///
/// # Errors
/// As [`apply`].
pub fn verify_stream(
    verifier: &mut ChainVerifier,
    mut next: impl FnMut() -> Option<Vec<Vec<u8>>>,
    threads: usize,
    mut each: impl FnMut(&Prepared, &ChainVerifier),
) -> Result<(), Error> {
    std::thread::scope(|s| {
        let mut at = verifier.size();
        let spawn = |chunk: Vec<Vec<u8>>, at: &mut u64| {
            let start = *at;
            *at += chunk.len() as u64;
            s.spawn(move || check_parallel(start, chunk, threads))
        };
        let mut pending = next().map(|c| spawn(c, &mut at));
        while let Some(handle) = pending.take() {
            pending = next().map(|c| spawn(c, &mut at));
            let checked = handle
                .join()
                .map_err(|_| Error::HashStore("a verification worker failed".into()))?;
            apply(verifier, checked, &mut each)?;
        }
        Ok(())
    })
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
    }
}
