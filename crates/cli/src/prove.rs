//! `gongkai prove` writes a proof bundle of one item's history (FORMAT.md
//! § 18); `gongkai check-proof` verifies one offline with core.
//!
//! What a proof shows: these entries are in the log as of the bundle's
//! checkpoint. Not that nothing later changed the item — a bundle made
//! against a newer checkpoint, with the item's full history, shows that.

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
pub fn check(a: CheckProofArgs, json: bool) -> Result<u8> {
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
            if json {
                print_json(&json!({
                    "verified": true, "origin": bundle.origin, "item": bundle.item_id,
                    "checkpoint_size": h.size, "root": h.root.to_hex(),
                    "signed_by": h.signed_by, "cosigned_by": h.cosigned_by,
                    "entries": h.events.iter().map(|e| json!({"index": e.index, "kind": kind_name(&e.kind), "time_ms": e.time_ms})).collect::<Vec<_>>(),
                    "statement": PROOF_STATEMENT,
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
            }
            Ok(0)
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
