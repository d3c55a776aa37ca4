//! `gongkai export`: write a self-contained, deterministic export of one or
//! more logs in the layout of FORMAT.md § 16 (see [`crate::layout`]).
//!
//! Per log: the newest checkpoint fixes the size; the entry bundles are
//! fetched (a full bundle already on disk from an interrupted run is
//! reused: that is what makes the export resumable), the leaf hashes are
//! checked against the checkpoint's root, the hash tiles are computed with
//! core's tile builder, public content is downloaded and checked against
//! its commitment, and the checkpoint is written last. Files are written
//! with temp-file-and-rename; stale partial tiles of an earlier, smaller
//! export are removed, so the same log always gives the same bytes.
//! Restricted content (a group audience) and redacted content are not
//! exported; `audit` reports them as restricted and redacted.
//!
//! From a county aggregator, also: per log the checkpoints its county log
//! holds (`checkpoints/<m>`) and the evidence it recorded (`evidence/<id>`,
//! FORMAT.md § 20), and the county log itself as `county/`, an export of
//! its own with the same tiles and entry bundles.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gongkai_core::Hash;
use gongkai_core::chain::KeyEpoch;
use gongkai_core::checkpoint::Checkpoint;
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::entry::Entry;
use gongkai_core::event::Kind;
use gongkai_core::evidence::Evidence;
use gongkai_core::keys::PublicKey;
use gongkai_core::merkle::TreeState;
use gongkai_core::tile::{
    TileBuilder, decode_bundle, encode_bundle, encode_tile, entry_bundles_for_size,
};
use gongkai_core::types::Origin;
use serde_json::json;

use crate::client::{Failure, Node};
use crate::fetch::{self, Content};
use crate::layout;
use crate::output::print_json;
use gongkai_verify::content::{check_blob, content_uses};
use gongkai_verify::source::{MAX_LISTED, SafeDir};

/// `gongkai export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Export every log the trust file lists (instead of --origin).
    #[arg(long)]
    pub all: bool,
    /// The trust file, for --all (its origins are exported).
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// The export directory (created; an interrupted export resumes).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What was exported of one log.
#[derive(Debug, serde::Serialize)]
struct Exported {
    origin: String,
    size: u64,
    bundles_fetched: usize,
    bundles_reused: usize,
    content: usize,
    content_not_exported: usize,
    evidence: usize,
}

/// Runs `gongkai export`.
///
/// # Errors
/// Unreachable server, a server whose entries do not match its checkpoint
/// (exit 4), local I/O.
pub async fn run(node: &Node, a: ExportArgs, json: bool) -> Result<()> {
    let origins = if a.all {
        let Some(t) = &a.trust else {
            bail!("--all needs --trust FILE (its logs are exported)");
        };
        crate::trust::Trust::load(t)?.logs.keys().cloned().collect()
    } else {
        vec![node.origin()?.clone()]
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("create {}", a.out.display()))?;
    // Logs already in the manifest stay listed.
    let mut listed = std::fs::read_to_string(a.out.join(layout::MANIFEST))
        .ok()
        .and_then(|t| layout::parse_manifest(&t).ok())
        .unwrap_or_default();
    // The county log first: the department checkpoints its leaves hold are
    // then never newer than the logs exported after it.
    let county = fetch_county(node).await?;
    let mut done = Vec::new();
    for origin in &origins {
        let e = export_log(node, origin, &a.out, county.as_ref()).await?;
        listed.push(origin.clone());
        done.push(e);
    }
    let county = county
        .as_ref()
        .map(|c| export_county(&a.out, c))
        .transpose()?;
    crate::write_file(
        &a.out.join(layout::MANIFEST),
        layout::manifest(&listed).as_bytes(),
        0o644,
    )?;
    if json {
        print_json(&json!({"out": a.out, "logs": done, "county": county}));
    } else {
        for e in &done {
            println!(
                "exported {} ({} entries; {} bundles fetched, {} reused; {} content blobs, {} not exported: restricted or redacted)",
                e.origin,
                e.size,
                e.bundles_fetched,
                e.bundles_reused,
                e.content,
                e.content_not_exported
            );
            if e.evidence > 0 {
                println!(
                    "  {} evidence file(s) of misbehaviour against {}",
                    e.evidence, e.origin
                );
            }
        }
        if let Some(c) = &county {
            println!("exported the county log {} ({} leaves)", c.origin, c.size);
        }
        println!(
            "to {}; check it with: gongkai audit {} --trust FILE",
            a.out.display(),
            a.out.display()
        );
    }
    Ok(())
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(rel);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
    }
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    crate::write_file(&path, bytes, 0o644)
}

/// Every file under `dir`, relative, with `/` separators; links are listed,
/// never followed.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    SafeDir::new(dir)
        .files("", MAX_LISTED)
        .with_context(|| format!("list {}", dir.display()))
}

/// The county log as a county aggregator serves it: its signed
/// checkpoint and the leaves `[0, size)` of that checkpoint.
struct CountyLog {
    text: String,
    cp: SignedCheckpoint,
    leaves: Vec<Vec<u8>>,
}

/// Fetches the county log; `None` when the server is not a county
/// aggregator. Fetched before the department logs, so every department
/// checkpoint its leaves hold is at most the size exported for that log.
async fn fetch_county(node: &Node) -> Result<Option<CountyLog>> {
    let mut client = node.county();
    let text = match client
        .get_county_checkpoint(gongkai_proto::v1::GetCountyCheckpointRequest {})
        .await
    {
        Ok(r) => r.into_inner().checkpoint,
        Err(s) if s.code() == tonic::Code::Unimplemented => return Ok(None),
        Err(s) => return Err(node.fail(&s)),
    };
    let cp = SignedCheckpoint::parse(&text)
        .map_err(|e| Failure::Verify(format!("the county checkpoint does not parse: {e}")))?;
    let size = cp.checkpoint().size;
    let mut leaves: Vec<Vec<u8>> = Vec::new();
    while (leaves.len() as u64) < size {
        let start = leaves.len() as u64;
        let page = client
            .get_county_leaves(gongkai_proto::v1::GetCountyLeavesRequest { start, limit: 256 })
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner();
        if page.start != start || page.leaves.is_empty() {
            return Err(Failure::Verify(format!(
                "the county sent no leaves from {start} of its log of size {size}"
            ))
            .into());
        }
        let want = usize::try_from(size - start).unwrap_or(usize::MAX);
        leaves.extend(page.leaves.into_iter().take(want));
    }
    Ok(Some(CountyLog { text, cp, leaves }))
}

/// The cosigned checkpoints of `origin` up to `size` that the county log's
/// leaves hold, as `(size, note)`. Each note's signatures are checked by
/// `audit`, not trusted here.
fn county_checkpoints(
    county: &CountyLog,
    origin: &Origin,
    size: u64,
) -> Result<Vec<(u64, String)>> {
    let mut out = std::collections::BTreeMap::new();
    for (i, leaf) in county.leaves.iter().enumerate() {
        let leaf = gongkai_core::county::CountyRecord::decode(leaf)
            .map_err(|e| Failure::Verify(format!("county leaf {i}: {e}")))?;
        for cp in leaf.checkpoints() {
            let c = cp.checkpoint();
            if c.origin == *origin && c.size <= size {
                out.insert(c.size, cp.to_string());
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Writes the evidence the county recorded against `origin` to
/// `evidence/<id>` (FORMAT.md § 16.1, § 20), the id being the first 16 hex
/// digits of BLAKE3 of the file. Returns how many; none from a department
/// node. `audit` verifies them; a file that does not parse as evidence
/// against this log is not written (and said so on stderr).
async fn export_evidence(node: &Node, origin: &Origin, dir: &Path) -> Result<usize> {
    let mut client = node.county();
    let list = match client
        .list_evidence(gongkai_proto::v1::ListEvidenceRequest {
            origin: origin.to_string(),
        })
        .await
    {
        Ok(r) => r.into_inner().evidence,
        Err(s) if s.code() == tonic::Code::Unimplemented => return Ok(0),
        Err(s) => return Err(node.fail(&s)),
    };
    let mut n = 0;
    for summary in list.iter().filter(|e| e.origin == origin.as_str()) {
        let text = client
            .get_evidence(gongkai_proto::v1::GetEvidenceRequest {
                id: summary.id.clone(),
            })
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner()
            .text;
        match Evidence::parse(&text) {
            Ok(e) if e.origin == *origin => {
                write(
                    dir,
                    &format!("{}/{}", layout::EVIDENCE, e.id()),
                    text.as_bytes(),
                )?;
                n += 1;
            }
            Ok(e) => eprintln!(
                "warning: the county's evidence {} is about {}, not {origin}; not exported",
                summary.id, e.origin
            ),
            Err(e) => eprintln!(
                "warning: the county's evidence {} does not parse ({e}); not exported",
                summary.id
            ),
        }
    }
    Ok(n)
}

/// What was exported of the county log.
#[derive(Debug, serde::Serialize)]
struct CountyExported {
    origin: String,
    size: u64,
}

/// Writes `county/`: the county log as an export of its own (FORMAT.md
/// § 16.1) — manifest, entry bundles of its leaves, hash tiles, and the
/// checkpoint last — with the tile and bundle code of the department logs.
fn export_county(root: &Path, county: &CountyLog) -> Result<CountyExported> {
    let origin = county.cp.checkpoint().origin.clone();
    let size = county.cp.checkpoint().size;
    let base = root.join(layout::COUNTY);
    let dir = layout::log_dir(&base, &origin)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let mut tree = TreeState::new();
    let mut tiles = TileBuilder::new();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for b in entry_bundles_for_size(size) {
        let first = usize::try_from(b.first_entry()).context("county log too large")?;
        let leaves = county
            .leaves
            .get(first..first + usize::from(b.width()))
            .context("the county sent fewer leaves than its checkpoint's size")?;
        for leaf in leaves {
            let h = gongkai_core::hash::leaf_hash(leaf);
            tree.append_leaf(h);
            for (id, hashes) in tiles.push(h) {
                write(&dir, &id.path(), &encode_tile(&hashes))?;
                expected.insert(id.path());
            }
        }
        let refs: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
        let bundle = encode_bundle(&refs).with_context(|| {
            format!(
                "county log bundle {}: an entry bundle holds leaves of at most 65,535 bytes",
                b.path()
            )
        })?;
        write(&dir, &b.path(), &bundle)?;
        expected.insert(b.path());
    }
    if tree.root() != county.cp.checkpoint().root {
        return Err(Failure::Verify(format!(
            "the county's leaves give root {} for size {size}, its checkpoint says {}",
            tree.root(),
            county.cp.checkpoint().root
        ))
        .into());
    }
    for (id, hashes) in tiles.partial_tiles() {
        write(&dir, &id.path(), &encode_tile(&hashes))?;
        expected.insert(id.path());
    }
    for f in files_under(&dir.join("tile"))? {
        let rel = format!("tile/{f}");
        if !expected.contains(&rel) {
            std::fs::remove_file(dir.join(&rel)).with_context(|| format!("remove stale {rel}"))?;
        }
    }
    write(
        &base,
        layout::MANIFEST,
        layout::manifest(std::slice::from_ref(&origin)).as_bytes(),
    )?;
    // Last: the checkpoint marks the county export complete.
    write(&dir, layout::CHECKPOINT, county.text.as_bytes())?;
    Ok(CountyExported {
        origin: origin.to_string(),
        size,
    })
}

async fn export_log(
    node: &Node,
    origin: &Origin,
    root: &Path,
    county: Option<&CountyLog>,
) -> Result<Exported> {
    let dir = layout::log_dir(root, origin)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let (text, cp) = fetch::checkpoint(node, origin).await?;
    let size = cp.checkpoint().size;
    let mut tree = TreeState::new();
    let mut tiles = TileBuilder::new();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut keys: Vec<KeyEpoch> = Vec::new();
    let mut uses = Vec::new();
    let mut redacted: BTreeSet<Hash> = BTreeSet::new();
    let (mut fetched, mut reused) = (0, 0);
    for b in entry_bundles_for_size(size) {
        let path = b.path();
        let width = usize::from(b.width());
        let on_disk = if b.is_partial() {
            None
        } else {
            std::fs::read(dir.join(&path))
                .ok()
                .filter(|bytes| decode_bundle(bytes, width).is_ok())
        };
        let entries: Vec<Vec<u8>> = match &on_disk {
            Some(bytes) => {
                reused += 1;
                decode_bundle(bytes, width)?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect()
            }
            None => {
                fetched += 1;
                fetch::entries(
                    node,
                    origin,
                    b.first_entry(),
                    b.first_entry() + width as u64,
                )
                .await?
            }
        };
        for (i, bytes) in entries.iter().enumerate() {
            let index = b.first_entry() + i as u64;
            let leaf = gongkai_core::hash::leaf_hash(bytes);
            tree.append_leaf(leaf);
            for (id, hashes) in tiles.push(leaf) {
                write(&dir, &id.path(), &encode_tile(&hashes))?;
                expected.insert(id.path());
            }
            // Decode for the content and key lists; the audit verifies.
            if let Ok(event) =
                Entry::parse(bytes.clone(), index).and_then(|e| e.decode_event(index))
            {
                uses.extend(content_uses(&event));
                match &event.kind {
                    Kind::Genesis(_) => keys.push(KeyEpoch {
                        from_index: 0,
                        key: event.signer,
                    }),
                    Kind::KeyRotated(r) => {
                        if let Ok(k) = PublicKey::from_slice(&r.next_key) {
                            keys.push(KeyEpoch {
                                from_index: index + 1,
                                key: k,
                            });
                        }
                    }
                    Kind::Redacted(r) => {
                        if let Ok(h) = Hash::from_slice(&r.content_digest) {
                            redacted.insert(h);
                        }
                    }
                    _ => {}
                }
            }
        }
        if on_disk.is_none() {
            let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
            write(&dir, &path, &encode_bundle(&refs)?)?;
        }
        expected.insert(path);
    }
    if tree.root() != cp.checkpoint().root {
        return Err(Failure::Verify(format!(
            "{origin}: the server's entries give root {} for size {size}, its checkpoint says {}; nothing trustworthy to export",
            tree.root(),
            cp.checkpoint().root
        ))
        .into());
    }
    for (id, hashes) in tiles.partial_tiles() {
        write(&dir, &id.path(), &encode_tile(&hashes))?;
        expected.insert(id.path());
    }
    // Stale tiles and bundles (partials of an earlier, smaller export).
    for f in files_under(&dir.join("tile"))? {
        let rel = format!("tile/{f}");
        if !expected.contains(&rel) {
            std::fs::remove_file(dir.join(&rel)).with_context(|| format!("remove stale {rel}"))?;
        }
    }
    // Content: public, not redacted; checked before it is written.
    let mut content = 0;
    let mut skipped = 0;
    let mut wanted = BTreeSet::new();
    for u in &uses {
        if redacted.contains(&u.digest) || !wanted.insert(u.digest) {
            continue;
        }
        let rel = layout::content_path(&u.digest);
        // A blob from an interrupted run is kept only if it matches (length
        // and digest), read no further than the commitment allows.
        if let Ok(bytes) = SafeDir::new(&dir).read(&rel, u.length.saturating_add(32))
            && check_blob(&u.digest, u.length, &bytes).is_ok()
        {
            content += 1;
            continue;
        }
        match fetch::content(node, origin, &u.digest, u.length, None).await? {
            Content::Verified { salt, data } => {
                let mut blob = salt.to_vec();
                blob.extend_from_slice(&data);
                write(&dir, &rel, &blob)?;
                content += 1;
            }
            Content::Restricted | Content::NotFound(_) => skipped += 1,
            Content::Mismatch(m) => {
                return Err(Failure::Verify(format!(
                    "{origin}: content {} does not match its commitment: {m}",
                    u.digest
                ))
                .into());
            }
        }
    }
    for f in files_under(&dir.join(layout::CONTENT))? {
        if Hash::from_hex(&f).is_ok_and(|h| redacted.contains(&h)) {
            std::fs::remove_file(dir.join(layout::CONTENT).join(&f))
                .with_context(|| format!("remove redacted content {f}"))?;
        }
    }
    let vkeys: String = keys
        .iter()
        .map(|k| format!("{}\n", Checkpoint::log_verifier_key(origin, &k.key)))
        .collect();
    write(&dir, layout::VKEYS, vkeys.as_bytes())?;
    // From a county aggregator: every checkpoint of this log it cosigned
    // (its county log's leaves), so back-dating can be judged against them.
    if let Some(county) = county {
        for (m, note) in county_checkpoints(county, origin, size)? {
            write(&dir, &layout::checkpoint_path(m), note.as_bytes())?;
        }
    }
    let evidence = export_evidence(node, origin, &dir).await?;
    write(&dir, &layout::checkpoint_path(size), text.as_bytes())?;
    // Last: the checkpoint marks the export of this log complete.
    write(&dir, layout::CHECKPOINT, text.as_bytes())?;
    Ok(Exported {
        origin: origin.to_string(),
        size,
        bundles_fetched: fetched,
        bundles_reused: reused,
        content,
        content_not_exported: skipped,
        evidence,
    })
}
