//! `gongkai prove` writes a proof bundle of one item's history (FORMAT.md
//! § 18); `gongkai check-proof` verifies one offline with core.
//!
//! What a proof shows: these entries are in the log as of the bundle's
//! checkpoint. Not that nothing later changed the item — a bundle made
//! against a newer checkpoint, with the item's full history, shows that.
//!
//! `check-proof --url` also reads the log as it stands now, as static
//! files (a portal, a bucket or a CDN, FORMAT.md § 9.4): its newest
//! checkpoint, signed like the bundle's, and a consistency proof from the
//! bundle's checkpoint to it, computed from the site's hash tiles. A log
//! rewritten or cut back since the bundle was made fails that proof.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use gongkai_core::Hash;
use gongkai_core::event::kind_name;
use gongkai_core::merkle::verify_inclusion;
use gongkai_core::proof::{PROOF_FORMAT, PROOF_STATEMENT, ProofBundle, ProvenEntry, item_of};
use gongkai_core::types::ItemId;
use gongkai_proto::v1;
use serde_json::json;

use crate::client::{Failure, Node};
use crate::output::{cst_time, print_json};
use crate::verify::TrustArgs;

/// `gongkai prove`.
#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The item.
    #[arg(long, value_parser = crate::input::item_id)]
    pub item: ItemId,
    /// Where to write the bundle (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `gongkai check-proof`.
#[derive(Debug, Args)]
pub struct CheckProofArgs {
    /// The proof bundle.
    pub file: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Also check the bundle against the log as it stands now, read as
    /// static files from this address (the county portal, its bucket or a
    /// CDN in front: `<URL>/logs/<log>/…`): the newest checkpoint there,
    /// signed by the same trusted keys, must be consistent with the
    /// bundle's, so the entries proven are still in the log and nothing
    /// before them was rewritten. --ca names a private CA for https.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// What the log at `--url` says of a verified bundle now.
enum Now {
    /// Its newest checkpoint is consistent with the bundle's.
    Consistent { size: u64, root: Hash },
    /// The log there contradicts the bundle (or the site serves a
    /// checkpoint or tiles that do not verify).
    Violation(String),
    /// The site could not be read: nothing is proven either way.
    Unavailable(String),
}

/// Reads the newest checkpoint of `origin` at `url`, checks it with the
/// trusted keys, and proves it consistent with the bundle's checkpoint
/// (`size`, `root`) from the site's hash tiles.
fn against_site(
    url: &str,
    ca: Option<&std::path::Path>,
    origin: &gongkai_core::types::Origin,
    keys: &[gongkai_core::note::VerifierKey],
    trust: &gongkai_verify::trust::Trust,
    size: u64,
    root: Hash,
) -> Result<Now> {
    use gongkai_core::checkpoint::SignedCheckpoint;
    use gongkai_core::merkle::{consistency_proof, root_at, verify_consistency};
    use gongkai_core::tile::{TileHashReader, TileId};
    use gongkai_verify::source::{LogSource as _, SourceError};

    let site = crate::static_http::Site::new(url, None, ca)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let log = std::cell::RefCell::new(site.log(
        origin.clone(),
        runtime.handle().clone(),
        indicatif::ProgressBar::hidden(),
    ));
    let note = match log.borrow_mut().checkpoint() {
        Ok(n) => n,
        Err(SourceError::Malformed(m)) => return Ok(Now::Violation(m)),
        Err(e) => return Ok(Now::Unavailable(e.to_string())),
    };
    let cp = match SignedCheckpoint::from_bytes(&note) {
        Ok(cp) => cp,
        Err(e) => {
            return Ok(Now::Violation(format!(
                "its checkpoint does not parse: {e}"
            )));
        }
    };
    if &cp.checkpoint().origin != origin {
        return Ok(Now::Violation(format!(
            "its checkpoint is of log {}",
            cp.checkpoint().origin
        )));
    }
    // The verification engine's checkpoint rule, as `verify --url` applies it.
    let log_keys: Vec<_> = keys.iter().map(|k| *k.public_key()).collect();
    let verdict = gongkai_verify::trust::check_signatures(&cp, &log_keys, trust);
    if let Some(v) = verdict.violation {
        return Ok(Now::Violation(format!("its checkpoint: {v}")));
    }
    if verdict.cosignatures.len() < trust.quorum {
        let why = verdict.cosign_issue.unwrap_or_default();
        return Ok(Now::Violation(format!("its checkpoint: {why}")));
    }
    let (now_size, now_root) = (cp.checkpoint().size, cp.checkpoint().root);
    if now_size < size {
        return Ok(Now::Violation(format!(
            "its signed checkpoint covers {now_size} entries, fewer than the {size} of the bundle's: the log was cut back or replaced (keep both checkpoints: they are evidence)"
        )));
    }
    let unread = std::cell::RefCell::new(None);
    let tiles = TileHashReader::new(
        |id: &TileId| -> Result<Vec<u8>, gongkai_core::Error> {
            match log.borrow_mut().tile(id) {
                Ok(Some(t)) => Ok(t),
                Ok(None) => Err(gongkai_core::Error::HashStore("no tiles served".into())),
                Err(e) => {
                    let m = e.to_string();
                    if !matches!(e, SourceError::Malformed(_)) {
                        *unread.borrow_mut() = Some(m.clone());
                    }
                    Err(gongkai_core::Error::HashStore(m))
                }
            }
        },
        now_size,
    );
    let computed = root_at(&tiles, now_size)
        .and_then(|r| consistency_proof(&tiles, size, now_size).map(|p| (r, p)));
    let (tiles_root, proof) = match computed {
        Ok(v) => v,
        Err(e) => {
            return Ok(match unread.into_inner() {
                Some(m) => Now::Unavailable(m),
                None => Now::Violation(format!("its hash tiles: {e}")),
            });
        }
    };
    if tiles_root != now_root {
        return Ok(Now::Violation(format!(
            "its hash tiles do not lead to the root of its own checkpoint of size {now_size}: the site serves damaged or altered tiles"
        )));
    }
    if let Err(e) = verify_consistency(size, now_size, &root, &now_root, &proof) {
        return Ok(Now::Violation(format!(
            "its signed checkpoint of size {now_size} is not consistent with the bundle's of size {size} ({e}): the log was rewritten since the bundle was made (keep both checkpoints: they are evidence)"
        )));
    }
    Ok(Now::Consistent {
        size: now_size,
        root: now_root,
    })
}

/// Runs `gongkai prove`.
///
/// # Errors
/// Unreachable server; an answer that does not verify (exit 4).
pub async fn prove(node: &Node, a: ProveArgs, json: bool) -> Result<()> {
    let origin = node.origin()?.clone();
    let resp = node
        .client()
        .get_item(v1::GetItemRequest {
            origin: origin.as_str().to_owned(),
            item_id: a.item.as_str().to_owned(),
        })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner();
    if resp.history.is_empty() {
        bail!(Failure::Verify(format!(
            "the server sent no history for item {}",
            a.item
        )));
    }
    let needed = resp.history.iter().map(|h| h.index + 1).max().unwrap_or(0);
    // The newest entry may be younger than the newest checkpoint: wait a
    // little for one that covers the whole history.
    let mut cp = None;
    for _ in 0..40 {
        let (text, signed) = crate::fetch::checkpoint(node, &origin).await?;
        if signed.checkpoint().size >= needed {
            cp = Some((text, signed));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let Some((text, signed)) = cp else {
        bail!(Failure::Verify(format!(
            "the server has no checkpoint covering entry {} yet; try again shortly",
            needed - 1
        )));
    };
    let size = signed.checkpoint().size;
    let mut entries = Vec::new();
    for h in &resp.history {
        let p = node
            .client()
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                origin: origin.as_str().to_owned(),
                tree_size: size,
                leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(h.index)),
            })
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner();
        if p.entry != h.entry || p.index != h.index || p.tree_size != size {
            bail!(Failure::Verify(format!(
                "the inclusion proof of entry {} is for something else",
                h.index
            )));
        }
        let proof = p
            .proof
            .iter()
            .map(|x| Hash::from_slice(x))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::Verify(format!("entry {}: {e}", h.index)))?;
        verify_inclusion(
            &gongkai_core::hash::leaf_hash(&h.entry),
            h.index,
            size,
            &proof,
            &signed.checkpoint().root,
        )
        .map_err(|e| Failure::Verify(format!("entry {}: {e}", h.index)))?;
        entries.push(ProvenEntry {
            index: h.index,
            entry: STANDARD.encode(&h.entry),
            proof: p.proof.iter().map(|x| STANDARD.encode(x)).collect(),
        });
    }
    let bundle = ProofBundle {
        format: PROOF_FORMAT.into(),
        origin: origin.to_string(),
        item_id: a.item.to_string(),
        checkpoint: text,
        entries,
        statement: PROOF_STATEMENT.into(),
    };
    let mut bytes = serde_json::to_vec_pretty(&bundle).context("encode the bundle")?;
    bytes.push(b'\n');
    crate::write_file(&a.out, &bytes, 0o644)?;
    if json {
        print_json(
            &json!({"out": a.out, "item": a.item.as_str(), "entries": bundle.entries.len(), "checkpoint_size": size}),
        );
    } else {
        println!(
            "wrote {}: {} entries of item {} with inclusion proofs against the checkpoint of size {size}",
            a.out.display(),
            bundle.entries.len(),
            a.item
        );
        println!("{PROOF_STATEMENT}");
    }
    Ok(())
}

/// The largest proof bundle read.
const MAX_PROOF_BUNDLE: u64 = 256 << 20;

/// Runs `gongkai check-proof`; returns the exit code (0 verified, 1 does
/// not verify).
///
/// # Errors
/// Unreadable file or keys (exit 2).
pub fn check(a: CheckProofArgs, json: bool, ca: Option<&std::path::Path>) -> Result<u8> {
    let trust = a.trust.load()?;
    // A proof bundle holds an item's entries and their proofs: far below
    // this, and a link to /dev/zero is not read.
    let bytes = gongkai_verify::source::read_file(&a.file, MAX_PROOF_BUNDLE)?;
    let bundle: ProofBundle = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return Ok(fail(
                json,
                &format!("{} is not a proof bundle: {e}", a.file.display()),
            ));
        }
    };
    let keys = gongkai_core::types::Origin::new(&bundle.origin)
        .ok()
        .and_then(|o| trust.logs.get(&o).cloned())
        .unwrap_or_default();
    if keys.is_empty() {
        bail!(
            "no trusted key for {} (give --vkey or --trust)",
            bundle.origin
        );
    }
    match bundle.verify(&keys, &trust.witnesses, trust.quorum) {
        Ok(h) => {
            let now = match (&a.url, gongkai_core::types::Origin::new(&bundle.origin)) {
                (Some(url), Ok(origin)) => Some((
                    url,
                    against_site(url, ca, &origin, &keys, &trust, h.size, h.root)?,
                )),
                _ => None,
            };
            if json {
                let site = now.as_ref().map(|(url, n)| match n {
                    Now::Consistent { size, root } => {
                        json!({"url": url, "consistent": true, "size": size, "root": root.to_hex()})
                    }
                    Now::Violation(m) => json!({"url": url, "consistent": false, "error": m}),
                    Now::Unavailable(m) => json!({"url": url, "unavailable": m}),
                });
                print_json(&json!({
                    "verified": !matches!(now, Some((_, Now::Violation(_)))),
                    "origin": bundle.origin, "item": bundle.item_id,
                    "checkpoint_size": h.size, "root": h.root.to_hex(),
                    "signed_by": h.signed_by, "cosigned_by": h.cosigned_by,
                    "entries": h.events.iter().map(|e| json!({"index": e.index, "kind": kind_name(&e.kind), "time_ms": e.time_ms})).collect::<Vec<_>>(),
                    "statement": PROOF_STATEMENT,
                    "now": site,
                }));
            } else {
                println!(
                    "verified: {} entries of item {} are in {} as of its checkpoint of size {} (root {})",
                    h.events.len(),
                    bundle.item_id,
                    bundle.origin,
                    h.size,
                    h.root
                );
                println!("  signed by   {}", h.signed_by.join(", "));
                if h.cosigned_by.is_empty() {
                    println!("  cosigned by nobody the trust lists");
                }
                for (w, t) in &h.cosigned_by {
                    println!("  cosigned by {w} at {}", cst_time(t.saturating_mul(1000)));
                }
                for e in &h.events {
                    debug_assert!(item_of(&e.kind).is_some());
                    println!(
                        "  #{:<8} {}  {}",
                        e.index,
                        cst_time(e.time_ms),
                        kind_name(&e.kind)
                    );
                }
                println!("{PROOF_STATEMENT}");
                match &now {
                    Some((url, Now::Consistent { size, root })) => println!(
                        "still in the log at {url}: its checkpoint of size {size} (root {root}) is consistent with the bundle's"
                    ),
                    Some((url, Now::Violation(m))) => {
                        eprintln!("error: the log at {url} contradicts the bundle: {m}");
                    }
                    Some((url, Now::Unavailable(m))) => {
                        eprintln!(
                            "error: the log at {url} could not be read, so it was not checked: {m}"
                        );
                    }
                    None => {}
                }
            }
            Ok(match now {
                Some((_, Now::Violation(_))) => 1,
                Some((_, Now::Unavailable(_))) => 2,
                _ => 0,
            })
        }
        Err(e) => Ok(fail(
            json,
            &format!("{}: does not verify: {e}", a.file.display()),
        )),
    }
}

fn fail(json: bool, m: &str) -> u8 {
    if json {
        print_json(&json!({"verified": false, "error": m}));
    } else {
        eprintln!("error: {m}");
    }
    1
}
