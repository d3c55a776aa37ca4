//! Chain verification throughput, printed beside the raw ZIP-215 Ed25519
//! rates of the same library measured in the same run.
//!
//! `cargo bench -p gongkai-core --bench chain` prints a table:
//! raw single verify, raw batch verify (batches of 1,024, one key) on one and
//! on all threads, and chain verification single-threaded (`push`) and
//! parallelized the way callers do it (prepare and batch-verify batches on
//! all threads, link and fold checks in order by the worker whose batch is
//! next, reading each entry in place), with the ratio to the raw batch
//! rate on the same number of threads. The rates a ratio compares are
//! measured in interleaved rounds (`GONGKAI_BENCH_ROUNDS`, default 5).
//!
//! Set `GONGKAI_BENCH_ENTRIES` to change the log size (default 32,768).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{ORIGIN, T0, content, key, matter};
use gongkai_core::chain::{ChainVerifier, PreparedView, prepare, prepare_view, verify_queued};
use gongkai_core::entry::signed_message;
use gongkai_core::event::{Kind, pb};
use gongkai_core::keys::{BatchVerifier, PublicKey, Signature, SigningKey};
use gongkai_core::types::Origin;
use gongkai_core::writer::LogWriter;

const BATCH: usize = 1024;

fn build_log(n: usize, signer: &SigningKey) -> Vec<Vec<u8>> {
    let mut w = LogWriter::new(Origin::new(ORIGIN).unwrap(), signer.clone());
    let mut out = Vec::with_capacity(n);
    let mut t = T0;
    let mut push = |w: &mut LogWriter, kind| {
        t += 1;
        out.push(w.append(kind, t).unwrap().into_bytes());
    };
    push(
        &mut w,
        Kind::Genesis(pb::Genesis {
            department: "某某县财政局".into(),
            division_code: "510122".into(),
        }),
    );
    push(
        &mut w,
        Kind::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter(pb::Periodicity::None, "")),
        }),
    );
    for i in 2..n {
        push(
            &mut w,
            Kind::Published(pb::Published {
                quantity: 0,
                item_id: format!("item-{i}"),
                matter_id: "budget".into(),
                title: format!("2026年第{i}号部门预算公开"),
                content: Some(content(&format!("document {i}"))),
                date_formed: "2026-03-01".into(),
                legal_basis: "《中华人民共和国预算法》第十四条".into(),
                related: vec![],
                period: String::new(),
                imported: false,
            }),
        );
    }
    out
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Best of `rounds` runs of `f`, which processes `n` items.
fn best<F: FnMut()>(rounds: usize, n: usize, mut f: F) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            rate(n, start.elapsed())
        })
        .fold(0.0, f64::max)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn raw_batch(items: &[(PublicKey, Vec<u8>, Signature)]) {
    let mut b = BatchVerifier::new();
    for (i, (k, m, s)) in items.iter().enumerate() {
        b.queue(i, k, m, s);
    }
    b.verify(&mut rand::rng()).unwrap();
}

/// Batches prepared and verified, waiting for their turn in log order.
struct Ready<'a> {
    parts: BTreeMap<usize, (Vec<PreparedView<'a>>, Result<(), gongkai_core::Error>)>,
    next: usize,
    applying: bool,
}

/// Parallel chain verification of a log held in memory, scheduled as
/// `gongkai`'s verification engine (`crates/cli/src/engine.rs`) schedules
/// it: `threads` workers take batches of 1,024 entries, prepare each entry
/// as a view of the caller's bytes ([`prepare_view`]: framing, decoding,
/// canonical check, field rules, hashes; nothing is copied), queue the
/// signatures the entries claim ([`PreparedView::queue_signatures`]) and
/// batch-verify them. Then the worker holding the next batch in log order
/// checks links and catalog rules with `push_verified_view` (the checks
/// `push_prepared` would return are the ones already verified), for its
/// batch and every batch ready after it. No third thread. (The engine
/// prepares owned entries, copying each event out, because its callers
/// report on every event; the "prepare, copying" line prices that.)
fn chain_parallel(entries: &[Vec<u8>], trusted: &[PublicKey], threads: usize) -> ChainVerifier {
    let origin = Origin::new(ORIGIN).unwrap();
    let verifier = Mutex::new(ChainVerifier::new(origin, trusted));
    let total = entries.len().div_ceil(BATCH);
    let jobs = AtomicUsize::new(0);
    let ready = Mutex::new(Ready {
        parts: BTreeMap::new(),
        next: 0,
        applying: false,
    });
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let c = jobs.fetch_add(1, Ordering::Relaxed);
                    if c >= total {
                        return;
                    }
                    let base = c * BATCH;
                    let chunk = &entries[base..(base + BATCH).min(entries.len())];
                    let prepared: Vec<PreparedView> = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, e)| prepare_view(e, (base + i) as u64).unwrap())
                        .collect();
                    let mut batch = BatchVerifier::new();
                    let mut scratch = Vec::new();
                    for p in &prepared {
                        p.queue_signatures(&mut batch, &mut scratch).unwrap();
                    }
                    let verdict = verify_queued(batch, &mut rand::rng());
                    let mut r = ready.lock().unwrap();
                    r.parts.insert(c, (prepared, verdict));
                    if r.applying {
                        continue;
                    }
                    r.applying = true;
                    loop {
                        let n = r.next;
                        let Some((part, verdict)) = r.parts.remove(&n) else {
                            r.applying = false;
                            break;
                        };
                        r.next += 1;
                        drop(r);
                        let mut v = verifier.lock().unwrap();
                        // Errors in log order: a bad signature at index i
                        // counts only once the entries before it, and its
                        // own links, passed.
                        let bad = verdict.as_ref().err().and_then(gongkai_core::Error::index);
                        for p in &part {
                            v.push_verified_view(p).unwrap();
                            if Some(p.position) == bad {
                                break;
                            }
                        }
                        verdict.unwrap();
                        drop(v);
                        drop(part);
                        r = ready.lock().unwrap();
                    }
                }
            });
        }
    });
    verifier.into_inner().unwrap()
}

fn main() {
    let n: usize = std::env::var("GONGKAI_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32_768);
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let signer = key(1);
    let pk = signer.public_key();
    let entries = build_log(n, &signer);
    let items: Vec<(PublicKey, Vec<u8>, Signature)> = entries
        .iter()
        .map(|e| {
            let body = &e[3..e.len() - 64];
            let sig = Signature::from_slice(&e[e.len() - 64..]).unwrap();
            (pk, signed_message(body), sig)
        })
        .collect();
    let trusted = [pk];
    let rounds: usize = std::env::var("GONGKAI_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    let single = best(3, n.min(8192), || {
        for (k, m, s) in &items[..n.min(8192)] {
            k.verify(m, s).unwrap();
        }
    });
    let chain1 = best(1, n, || {
        let mut v = ChainVerifier::new(Origin::new(ORIGIN).unwrap(), &trusted);
        for e in &entries {
            v.push(e.clone()).unwrap();
        }
        black_box(v.root());
    });
    // The four rates the ratios compare are measured in interleaved rounds,
    // so a slow spell of a shared machine hits both sides of a ratio alike.
    // Each rate is the best of its rounds; each round's own ratio is kept
    // too, and the median of those is printed beside the ratio of the bests.
    let (mut batch1, mut batch_t, mut chain_1t_batched, mut chain_t) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let (mut paired_1, mut paired_t) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let b1 = best(1, n, || {
            for chunk in items.chunks(BATCH) {
                raw_batch(chunk);
            }
        });
        let c1 = best(1, n, || {
            black_box(chain_parallel(&entries, &trusted, 1).root());
        });
        let bt = best(1, n, || {
            let per = items.len().div_ceil(threads);
            std::thread::scope(|s| {
                for part in items.chunks(per) {
                    s.spawn(move || {
                        for chunk in part.chunks(BATCH) {
                            raw_batch(chunk);
                        }
                    });
                }
            });
        });
        let ct = best(1, n, || {
            black_box(chain_parallel(&entries, &trusted, threads).root());
        });
        paired_1.push(c1 / b1);
        paired_t.push(ct / bt);
        batch1 = batch1.max(b1);
        chain_1t_batched = chain_1t_batched.max(c1);
        batch_t = batch_t.max(bt);
        chain_t = chain_t.max(ct);
    }
    let prepare_only = best(3, n, || {
        for (i, e) in entries.iter().enumerate() {
            black_box(prepare_view(e, i as u64).unwrap());
        }
    });
    let prepare_owned = best(3, n, || {
        for (i, e) in entries.iter().enumerate() {
            black_box(prepare(e.clone(), i as u64).unwrap());
        }
    });
    let prepared: Vec<PreparedView> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| prepare_view(e, i as u64).unwrap())
        .collect();
    let links_only = best(3, n, || {
        let mut v = ChainVerifier::new(Origin::new(ORIGIN).unwrap(), &trusted);
        for p in &prepared {
            v.push_verified_view(p).unwrap();
        }
        black_box(v.root());
    });
    let sign = best(3, 4096, || {
        for (_, m, _) in &items[..4096.min(n)] {
            black_box(signer.sign(m));
        }
    });

    println!();
    println!("chain verification, {n} entries, one key, {threads} threads, batches of {BATCH}");
    println!("{:<48} {:>14}", "measurement", "per second");
    println!(
        "{:<48} {:>14.0}",
        "raw Ed25519 sign (ed25519-dalek), 1 thread", sign
    );
    println!(
        "{:<48} {:>14.0}",
        "raw ZIP-215 single verify, 1 thread", single
    );
    println!(
        "{:<48} {:>14.0}",
        "raw ZIP-215 batch verify, 1 thread", batch1
    );
    println!(
        "{:<48} {:>14.0}",
        format!("raw ZIP-215 batch verify, {threads} threads"),
        batch_t
    );
    println!(
        "{:<48} {:>14.0}",
        "  prepare only (decode, canonical, hashes)", prepare_only
    );
    println!(
        "{:<48} {:>14.0}",
        "  prepare, copying the entry and its event", prepare_owned
    );
    println!(
        "{:<48} {:>14.0}",
        "  links + catalog rules + tree only", links_only
    );
    println!(
        "{:<48} {:>14.0}",
        "chain verify, push (single verify), 1 thread", chain1
    );
    println!(
        "{:<48} {:>14.0}",
        "chain verify, batched, 1 thread", chain_1t_batched
    );
    println!(
        "{:<48} {:>14.0}",
        format!("chain verify, batched, {threads} threads"),
        chain_t
    );
    println!(
        "ratio chain/raw batch, best of {rounds} rounds each: 1 thread {:.2}x, {threads} threads {:.2}x (goal >= 0.80x)",
        chain_1t_batched / batch1,
        chain_t / batch_t
    );
    println!(
        "ratio chain/raw batch, median of the rounds' own ratios: 1 thread {:.2}x, {threads} threads {:.2}x",
        median(&mut paired_1),
        median(&mut paired_t)
    );
}
