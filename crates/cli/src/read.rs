//! Read commands. What `gongkai item` prints about history is verified with
//! core before it is printed: each entry's body and signature, and its
//! inclusion in one checkpoint of the log.

use anyhow::{Context as _, Result, bail};
use gongkai_core::Hash;
use gongkai_core::checkpoint::{Checkpoint, SignedCheckpoint};
use gongkai_core::entry::Entry;
use gongkai_core::event::{Event, Kind, kind_name, pb};
use gongkai_core::merkle::verify_inclusion;
use gongkai_core::note::{VerifierKey, Verifiers};
use gongkai_core::types::Origin;
use gongkai_proto::v1;
use serde_json::{Value, json};

use crate::client::{Failure, Node};
use crate::output::{Table, cst_time, print_json};
use crate::{CheckpointArgs, ContentArgs, ItemArgs, ItemsArgs, RequestsArgs, StatusArg};

fn verify_failure(m: impl Into<String>) -> anyhow::Error {
    Failure::Verify(m.into()).into()
}

fn status_name(s: i32) -> &'static str {
    match v1::ItemStatus::try_from(s) {
        Ok(v1::ItemStatus::Current) => "current",
        Ok(v1::ItemStatus::Amended) => "amended",
        Ok(v1::ItemStatus::Withdrawn) => "withdrawn",
        _ => "unknown",
    }
}

fn decision_name(d: i32) -> &'static str {
    match pb::Decision::try_from(d) {
        Ok(pb::Decision::Disclosed) => "disclosed",
        Ok(pb::Decision::PartlyDisclosed) => "partly-disclosed",
        Ok(pb::Decision::Refused) => "refused",
        Ok(pb::Decision::DoesNotExist) => "does-not-exist",
        Ok(pb::Decision::AlreadyPublic) => "already-public",
        Ok(pb::Decision::NotThisAgency) => "not-this-agency",
        Ok(pb::Decision::RepeatRequest) => "repeat-request",
        _ => "",
    }
}

fn content_json(c: Option<&pb::ContentRef>) -> Value {
    c.map_or(Value::Null, |c| {
        json!({"digest": hex::encode(&c.digest), "length": c.length, "media_type": c.media_type})
    })
}

fn ref_json(r: &pb::ItemRef) -> Value {
    let rel = match pb::Relation::try_from(r.relation) {
        Ok(pb::Relation::Draft) => "draft",
        Ok(pb::Relation::Consultation) => "consultation",
        Ok(pb::Relation::Decision) => "decision",
        Ok(pb::Relation::Related) => "related",
        _ => "",
    };
    json!({"origin": r.origin, "item_id": r.item_id, "relation": rel})
}

fn item_json(i: &v1::ItemView) -> Value {
    json!({
        "item_id": i.item_id, "matter_id": i.matter_id, "category": i.category,
        "title": i.title, "content": content_json(i.content.as_ref()),
        "status": status_name(i.status), "date_formed": i.date_formed,
        "date_changed": i.date_changed, "period": i.period, "imported": i.imported,
        "restricted": i.restricted, "redacted": i.redacted,
        "published_index": i.published_index, "last_index": i.last_index,
        "published_time_ms": i.published_time_ms,
        "related": i.related.iter().map(ref_json).collect::<Vec<_>>(),
        "legal_basis": i.legal_basis,
    })
}

pub(crate) async fn items(node: &Node, a: ItemsArgs, json: bool) -> Result<()> {
    let origin = node.origin()?.as_str().to_owned();
    let limit = a.limit.map(|l| l as usize);
    let mut req = v1::ListItemsRequest {
        origin,
        category: a.category.unwrap_or_default(),
        matter_id: a.matter.map(|m| m.as_str().to_owned()).unwrap_or_default(),
        status: match a.status {
            None => v1::ItemStatus::Unspecified,
            Some(StatusArg::Current) => v1::ItemStatus::Current,
            Some(StatusArg::Amended) => v1::ItemStatus::Amended,
            Some(StatusArg::Withdrawn) => v1::ItemStatus::Withdrawn,
        } as i32,
        date_from: a.from.map(|d| d.to_string()).unwrap_or_default(),
        date_to: a.to.map(|d| d.to_string()).unwrap_or_default(),
        title_contains: a.search.unwrap_or_default(),
        page_size: a.limit.unwrap_or(0).min(1000),
        page_token: String::new(),
    };
    let mut all = Vec::new();
    loop {
        let resp = node
            .client()
            .list_items(req.clone())
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner();
        all.extend(resp.items);
        if limit.is_some_and(|l| all.len() >= l) || resp.next_page_token.is_empty() {
            break;
        }
        if resp.next_page_token == req.page_token {
            bail!("the node returned the same page token twice");
        }
        req.page_token = resp.next_page_token;
    }
    if let Some(l) = limit {
        all.truncate(l);
    }
    if json {
        print_json(&json!({"items": all.iter().map(item_json).collect::<Vec<_>>()}));
        return Ok(());
    }
    if all.is_empty() {
        println!("no items");
        return Ok(());
    }
    let mut t = Table::new(&["ID", "STATUS", "FORMED", "MATTER", "CATEGORY", "TITLE"]);
    for i in &all {
        let mut status = status_name(i.status).to_owned();
        if i.redacted {
            status.push_str(",redacted");
        }
        if i.restricted {
            status.push_str(",restricted");
        }
        t.row(vec![
            i.item_id.clone(),
            status,
            i.date_formed.clone(),
            i.matter_id.clone(),
            i.category.clone(),
            i.title.clone(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

/// One history entry, decoded and checked.
#[derive(Debug)]
struct Checked {
    index: u64,
    event: Event,
    leaf_hash: Hash,
}

/// A one-line summary of an event.
fn summary(kind: &Kind) -> String {
    match kind {
        Kind::Published(p) => format!("{} (formed {})", p.title, p.date_formed),
        Kind::Amended(a) => format!("{} (changed {}): {}", a.title, a.date_changed, a.reason),
        Kind::Withdrawn(w) => format!("{} [basis: {}]", w.reason, w.legal_basis),
        Kind::Redacted(r) => format!(
            "content {}: {} [basis: {}]",
            hex::encode(&r.content_digest),
            r.reason,
            r.legal_basis
        ),
        other => kind_name(other).to_owned(),
    }
}

/// Decodes a history entry with core and checks its signature under the
/// signer its body names, and that it belongs to `origin` at `index`.
fn check_entry(origin: &Origin, index: u64, bytes: &[u8]) -> Result<Checked> {
    let fail = |m: String| verify_failure(format!("history entry {index}: {m}"));
    let entry = Entry::parse(bytes.to_vec(), index).map_err(|e| fail(e.to_string()))?;
    let event = entry.decode_event(index).map_err(|e| fail(e.to_string()))?;
    if event.index != index {
        return Err(fail(format!("the entry claims index {}", event.index)));
    }
    if &event.origin != origin {
        return Err(fail(format!("the entry belongs to log {}", event.origin)));
    }
    entry
        .verify_signature(&event.signer, index)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Checked {
        index,
        event,
        leaf_hash: entry.leaf_hash(),
    })
}

/// Parses a checkpoint from the server and checks it is for `origin`; with
/// a vkey, verifies the department's signature on it.
fn check_checkpoint(
    origin: &Origin,
    text: &str,
    vkey: Option<&VerifierKey>,
) -> Result<SignedCheckpoint> {
    let cp = SignedCheckpoint::parse(text)
        .map_err(|e| verify_failure(format!("the node's checkpoint does not parse: {e}")))?;
    if &cp.checkpoint().origin != origin {
        return Err(verify_failure(format!(
            "the node sent a checkpoint of log {}, not {origin}",
            cp.checkpoint().origin
        )));
    }
    if let Some(vkey) = vkey {
        cp.verify(vkey, &Verifiers::default(), 0).map_err(|e| {
            verify_failure(format!("checkpoint of size {}: {e}", cp.checkpoint().size))
        })?;
    }
    Ok(cp)
}

/// Proves `c` is included in the checkpoint of `size` (0: the newest); the
/// first proof fixes the checkpoint, later ones must use the same one.
async fn prove(
    node: &Node,
    origin: &Origin,
    c: &Checked,
    bytes: &[u8],
    cp: &mut Option<SignedCheckpoint>,
    vkey: Option<&VerifierKey>,
) -> Result<()> {
    let size = cp.as_ref().map_or(0, |c| c.checkpoint().size);
    let resp = node
        .client()
        .get_inclusion_proof(v1::GetInclusionProofRequest {
            origin: origin.as_str().to_owned(),
            tree_size: size,
            leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(c.index)),
        })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner();
    let fail = |m: String| verify_failure(format!("inclusion of entry {}: {m}", c.index));
    if cp.is_none() {
        let text = if resp.checkpoint.is_empty() {
            node.client()
                .get_checkpoint(v1::GetCheckpointRequest {
                    origin: origin.as_str().to_owned(),
                })
                .await
                .map_err(|s| node.fail(&s))?
                .into_inner()
                .checkpoint
        } else {
            resp.checkpoint.clone()
        };
        *cp = Some(check_checkpoint(origin, &text, vkey)?);
    }
    let Some(checkpoint) = cp.as_ref().map(SignedCheckpoint::checkpoint) else {
        return Err(fail("no checkpoint".into()));
    };
    check_proof(c, bytes, &resp, checkpoint)
}

/// Checks an inclusion-proof answer for the checked entry `c` (whose bytes
/// are `bytes`) against `checkpoint` (RFC 9162 §2.1.3.2, by core).
fn check_proof(
    c: &Checked,
    bytes: &[u8],
    resp: &v1::GetInclusionProofResponse,
    checkpoint: &Checkpoint,
) -> Result<()> {
    let fail = |m: String| verify_failure(format!("inclusion of entry {}: {m}", c.index));
    if resp.index != c.index || resp.tree_size != checkpoint.size {
        return Err(fail(format!(
            "asked for entry {} in size {}, got entry {} in size {}",
            c.index, checkpoint.size, resp.index, resp.tree_size
        )));
    }
    if resp.entry != bytes {
        return Err(fail(
            "the proof's entry differs from the history's entry".into(),
        ));
    }
    let proof = resp
        .proof
        .iter()
        .map(|h| Hash::from_slice(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    verify_inclusion(
        &c.leaf_hash,
        c.index,
        checkpoint.size,
        &proof,
        &checkpoint.root,
    )
    .map_err(|e| fail(e.to_string()))
}

pub(crate) async fn item(node: &Node, a: ItemArgs, json: bool) -> Result<()> {
    let origin = node.origin()?.clone();
    let vkey = a
        .vkey
        .as_deref()
        .map(crate::keyfile::read_vkey)
        .transpose()?;
    let resp = node
        .client()
        .get_item(v1::GetItemRequest {
            origin: origin.as_str().to_owned(),
            item_id: a.id.as_str().to_owned(),
        })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner();
    let view = resp.item.context("the node's answer holds no item")?;
    if view.item_id != a.id.as_str() {
        return Err(verify_failure(format!(
            "asked for item {}, the node answered with {}",
            a.id, view.item_id
        )));
    }
    // The newest entry may be younger than the newest checkpoint (the node
    // signs one every checkpoint interval): wait a little for one that
    // covers the whole history, then prove everything against it.
    let needed = resp.history.iter().map(|h| h.index + 1).max().unwrap_or(0);
    let mut cp = None;
    for _ in 0..40 {
        let text = node
            .client()
            .get_checkpoint(v1::GetCheckpointRequest {
                origin: origin.as_str().to_owned(),
            })
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner()
            .checkpoint;
        let signed = check_checkpoint(&origin, &text, vkey.as_ref())?;
        if signed.checkpoint().size >= needed {
            cp = Some(signed);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    if cp.is_none() {
        return Err(verify_failure(format!(
            "the node has no signed checkpoint covering entry {} yet; try again shortly",
            needed.saturating_sub(1)
        )));
    }
    // Verify every history entry before printing any of it.
    let mut checked = Vec::with_capacity(resp.history.len());
    for h in &resp.history {
        let c = check_entry(&origin, h.index, &h.entry)?;
        prove(node, &origin, &c, &h.entry, &mut cp, vkey.as_ref()).await?;
        checked.push(c);
    }
    let size = cp.as_ref().map_or(0, |c| c.checkpoint().size);
    let sig_note = if vkey.is_some() {
        "checkpoint signature verified with --vkey"
    } else {
        "checkpoint signature NOT checked (give the department's key with --vkey FILE)"
    };
    if json {
        print_json(&json!({
            "item": item_json(&view),
            "history": checked.iter().map(|c| json!({
                "index": c.index, "time_ms": c.event.time_ms, "kind": kind_name(&c.event.kind),
                "summary": summary(&c.event.kind), "leaf_hash": c.leaf_hash.to_hex(),
                "signer": c.event.signer.to_hex(),
            })).collect::<Vec<_>>(),
            "verified": {
                "entries": checked.len(), "checkpoint_size": size,
                "checkpoint_signature_checked": vkey.is_some(),
            },
        }));
        return Ok(());
    }
    println!("item {}  ({})", view.item_id, status_name(view.status));
    println!("  title:     {}", view.title);
    println!(
        "  matter:    {}  category: {}",
        view.matter_id, view.category
    );
    println!("  formed:    {}", view.date_formed);
    if !view.date_changed.is_empty() {
        println!("  changed:   {}", view.date_changed);
    }
    if !view.period.is_empty() {
        println!("  period:    {}", view.period);
    }
    if let Some(c) = &view.content {
        println!(
            "  content:   {} ({} bytes, {}){}{}",
            hex::encode(&c.digest),
            c.length,
            c.media_type,
            if view.restricted { " [restricted]" } else { "" },
            if view.redacted {
                " [a version was redacted]"
            } else {
                ""
            }
        );
    }
    for r in &view.related {
        let o = if r.origin.is_empty() {
            String::new()
        } else {
            format!("{}:", r.origin)
        };
        println!(
            "  related:   {o}{} ({})",
            r.item_id,
            ref_json(r)["relation"]
        );
    }
    if view.imported {
        println!("  imported from the earlier catalog");
    }
    println!();
    let mut t = Table::new(&["INDEX", "TIME (CST)", "KIND", "SUMMARY"]);
    for c in &checked {
        t.row(vec![
            c.index.to_string(),
            cst_time(c.event.time_ms),
            kind_name(&c.event.kind).to_owned(),
            summary(&c.event.kind),
        ]);
    }
    print!("{}", t.render());
    println!();
    if checked.is_empty() {
        println!("no history entries to verify");
    } else {
        println!(
            "{} entries: signatures valid; verified inclusion in checkpoint of size {size}; {sig_note}",
            checked.len()
        );
    }
    Ok(())
}

pub(crate) async fn matters(node: &Node, json: bool) -> Result<()> {
    let origin = node.origin()?.as_str().to_owned();
    let resp = node
        .client()
        .list_matters(v1::ListMattersRequest { origin })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner();
    if json {
        let ms: Vec<Value> = resp
            .matters
            .iter()
            .map(|m| {
                let d = m.matter.clone().unwrap_or_default();
                json!({
                    "matter_id": m.matter_id, "active": m.active,
                    "defined_index": m.defined_index, "last_index": m.last_index,
                    "category": d.category, "level1": d.level1, "level2": d.level2,
                    "elements": d.elements, "legal_basis": d.legal_basis,
                    "deadline_working_days": d.deadline_working_days,
                    "responsible_body": d.responsible_body, "channels": d.channels,
                    "audience_group": d.audience_group, "periods_from": d.periods_from,
                    "audience": pb::Audience::try_from(d.audience).map(|a| a.as_str_name()).unwrap_or(""),
                    "mode": pb::DisclosureMode::try_from(d.mode).map(|a| a.as_str_name()).unwrap_or(""),
                    "periodicity": pb::Periodicity::try_from(d.periodicity).map(|a| a.as_str_name()).unwrap_or(""),
                })
            })
            .collect();
        print_json(&json!({ "matters": ms }));
        return Ok(());
    }
    if resp.matters.is_empty() {
        println!("no matters defined");
        return Ok(());
    }
    let mut t = Table::new(&["ID", "ACTIVE", "DAYS", "CATEGORY", "MATTER"]);
    for m in &resp.matters {
        let d = m.matter.clone().unwrap_or_default();
        t.row(vec![
            m.matter_id.clone(),
            if m.active { "yes" } else { "retired" }.into(),
            d.deadline_working_days.to_string(),
            d.category,
            format!("{} / {}", d.level1, d.level2),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

pub(crate) async fn requests(node: &Node, a: RequestsArgs, json: bool) -> Result<()> {
    let origin = node.origin()?.as_str().to_owned();
    let limit = a.limit.map(|l| l as usize);
    let mut req = v1::ListRequestsRequest {
        origin,
        page_size: a.limit.unwrap_or(0).min(1000),
        page_token: String::new(),
    };
    let mut all = Vec::new();
    loop {
        let resp = node
            .client()
            .list_requests(req.clone())
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner();
        all.extend(resp.requests);
        if limit.is_some_and(|l| all.len() >= l) || resp.next_page_token.is_empty() {
            break;
        }
        if resp.next_page_token == req.page_token {
            bail!("the node returned the same page token twice");
        }
        req.page_token = resp.next_page_token;
    }
    if let Some(l) = limit {
        all.truncate(l);
    }
    if json {
        let rs: Vec<Value> = all
            .iter()
            .map(|r| {
                json!({
                    "request_id": r.request_id, "subject": r.subject,
                    "date_received": r.date_received, "deadline": r.deadline,
                    "date_answered": r.date_answered, "decision": decision_name(r.decision),
                    "late": r.late, "extended": r.extended,
                    "received_index": r.received_index, "last_index": r.last_index,
                    "not_judged": r.not_judged, "calendar": r.calendar,
                })
            })
            .collect();
        print_json(&json!({ "requests": rs }));
        return Ok(());
    }
    if all.is_empty() {
        println!("no requests");
        return Ok(());
    }
    let mut t = Table::new(&[
        "ID", "RECEIVED", "DEADLINE", "ANSWERED", "DECISION", "FLAGS", "SUBJECT",
    ]);
    for r in &all {
        let mut flags = Vec::new();
        if r.late {
            flags.push("LATE");
        }
        if r.extended {
            flags.push("extended");
        }
        t.row(vec![
            r.request_id.clone(),
            r.date_received.clone(),
            if !r.deadline.is_empty() {
                r.deadline.clone()
            } else if !r.not_judged.is_empty() {
                "cannot judge yet".into()
            } else {
                "-".into()
            },
            r.date_answered.clone(),
            decision_name(r.decision).into(),
            flags.join(","),
            r.subject.clone(),
        ]);
    }
    print!("{}", t.render());
    // Say once per reason why some requests have no judgement, and which
    // tables the others were judged with.
    let mut waiting: Vec<&str> = all
        .iter()
        .map(|r| r.not_judged.as_str())
        .filter(|w| !w.is_empty())
        .collect();
    waiting.sort_unstable();
    waiting.dedup();
    for w in waiting {
        let ids: Vec<&str> = all
            .iter()
            .filter(|r| r.not_judged == w)
            .map(|r| r.request_id.as_str())
            .collect();
        println!(
            "{w} ({}): the judgement appears once the county publishes it",
            ids.join(", ")
        );
    }
    let mut tables: Vec<&str> = all
        .iter()
        .map(|r| r.calendar.as_str())
        .filter(|c| !c.is_empty())
        .collect();
    tables.sort_unstable();
    tables.dedup();
    if !tables.is_empty() {
        println!("deadlines judged with: {}", tables.join("; "));
    }
    Ok(())
}

pub(crate) async fn status(node: &Node, json: bool) -> Result<()> {
    let origin = node.origin()?.as_str().to_owned();
    let s = node
        .client()
        .get_status(v1::GetStatusRequest { origin })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner();
    if json {
        print_json(&json!({
            "origin": s.origin, "size": s.size, "checkpoint_size": s.checkpoint_size,
            "cosigned_size": s.cosigned_size, "replication_lag": s.replication_lag,
            "last_replicated_ms": s.last_replicated_ms,
        }));
        return Ok(());
    }
    println!("log:               {}", s.origin);
    println!("entries:           {}", s.size);
    println!("checkpoint size:   {}", s.checkpoint_size);
    println!("county cosigned:   {}", s.cosigned_size);
    println!("not yet at county: {} entries", s.replication_lag);
    println!(
        "last replicated:   {}",
        if s.last_replicated_ms == 0 {
            "never".to_owned()
        } else {
            cst_time(s.last_replicated_ms)
        }
    );
    Ok(())
}

pub(crate) async fn checkpoint(node: &Node, a: CheckpointArgs, json: bool) -> Result<()> {
    let origin = node.origin()?.clone();
    let vkey = a
        .vkey
        .as_deref()
        .map(crate::keyfile::read_vkey)
        .transpose()?;
    let text = node
        .client()
        .get_checkpoint(v1::GetCheckpointRequest {
            origin: origin.as_str().to_owned(),
        })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner()
        .checkpoint;
    let cp = check_checkpoint(&origin, &text, vkey.as_ref())?;
    if json {
        print_json(&json!({
            "checkpoint": cp.to_string(), "origin": cp.checkpoint().origin.as_str(),
            "size": cp.checkpoint().size, "root": cp.checkpoint().root.to_hex(),
            "signature_checked": vkey.is_some(),
        }));
    } else {
        print!("{cp}");
        if vkey.is_some() {
            eprintln!("checkpoint signature verified with --vkey");
        }
    }
    Ok(())
}

/// Downloads a document, checks its length and salted digest with core,
/// and only then moves it into place (write temp, fsync, rename).
pub(crate) async fn content(node: &Node, a: ContentArgs, json: bool) -> Result<()> {
    let origin = node.origin()?.as_str().to_owned();
    if !a.force && a.out.exists() {
        bail!("{} exists; use --force to overwrite it", a.out.display());
    }
    let mut stream = node
        .client()
        .get_content(v1::GetContentRequest {
            origin,
            digest: a.digest.0.to_vec(),
        })
        .await
        .map_err(|s| node.fail(&s))?
        .into_inner();
    let mut header: Option<v1::ContentHeader> = None;
    let mut data = Vec::new();
    while let Some(msg) = stream.message().await.map_err(|s| node.fail(&s))? {
        match (msg.part, &header) {
            (Some(v1::get_content_response::Part::Header(h)), None) => {
                // Never trust the announced length for a big allocation.
                data.reserve(usize::try_from(h.length.min(1 << 24)).unwrap_or(0));
                header = Some(h);
            }
            (Some(v1::get_content_response::Part::Chunk(c)), Some(h)) => {
                if data.len() as u64 + c.len() as u64 > h.length {
                    return Err(verify_failure(format!(
                        "the node sent more than the {} bytes it announced",
                        h.length
                    )));
                }
                data.extend_from_slice(&c);
            }
            _ => {
                return Err(verify_failure(
                    "the node's content stream is out of order (header must come first, once)",
                ));
            }
        }
    }
    let h = header.ok_or_else(|| verify_failure("the node sent no content header"))?;
    if data.len() as u64 != h.length {
        return Err(verify_failure(format!(
            "the node sent {} bytes, announced {}",
            data.len(),
            h.length
        )));
    }
    let salt: [u8; 32] = h
        .salt
        .as_slice()
        .try_into()
        .map_err(|_| verify_failure(format!("the salt is {} bytes, not 32", h.salt.len())))?;
    if let Err(m) = gongkai_verify::content::check(&a.digest, h.length, &salt, &data) {
        return Err(verify_failure(format!(
            "the content does not match digest {} ({m}); nothing was saved",
            a.digest
        )));
    }
    if a.out.file_name().is_none() {
        bail!("--out must name a file");
    }
    crate::write_file(&a.out, &data, 0o644)?;
    if json {
        print_json(&json!({
            "out": a.out, "digest": a.digest.to_hex(), "length": h.length,
            "media_type": h.media_type, "verified": true,
        }));
    } else {
        println!(
            "saved {} ({} bytes, {}); content matches digest {}",
            a.out.display(),
            h.length,
            h.media_type,
            a.digest
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gongkai_core::checkpoint::Checkpoint;
    use gongkai_core::keys::SigningKey;
    use gongkai_core::merkle::{MemoryHashes, inclusion_proof};
    use gongkai_core::writer::LogWriter;

    use super::*;

    const T0: u64 = 1_767_283_200_000;

    fn origin() -> Origin {
        Origin::new("gongkai.example/510122/finance").unwrap()
    }

    /// A small real log written with core: genesis, publish, withdraw.
    fn log() -> (Vec<Entry>, SigningKey) {
        let key = SigningKey::from_seed([5; 32]);
        let mut w = LogWriter::new(origin(), key.clone());
        let mut entries = vec![
            w.append(
                Kind::Genesis(pb::Genesis {
                    department: "某某县财政局".into(),
                    division_code: "510122".into(),
                }),
                T0,
            )
            .unwrap(),
        ];
        entries.push(
            w.append(
                Kind::Published(pb::Published {
                    item_id: "budget-2026".into(),
                    matter_id: "budget".into(),
                    title: "2026年部门预算".into(),
                    content: Some(pb::ContentRef {
                        digest: vec![1; 32],
                        length: 10,
                        media_type: "application/pdf".into(),
                    }),
                    date_formed: "2026-01-02".into(),
                    ..Default::default()
                }),
                T0 + 1,
            )
            .unwrap(),
        );
        entries.push(
            w.append(
                Kind::Withdrawn(pb::Withdrawn {
                    item_id: "budget-2026".into(),
                    reason: "错误".into(),
                    legal_basis: "第十条".into(),
                }),
                T0 + 2,
            )
            .unwrap(),
        );
        (entries, key)
    }

    fn proof_response(
        entries: &[Entry],
        index: u64,
    ) -> (v1::GetInclusionProofResponse, Checkpoint) {
        let leaves: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
        let hashes = MemoryHashes::from_leaf_hashes(&leaves);
        let size = entries.len() as u64;
        let proof = inclusion_proof(&hashes, index, size).unwrap();
        let cp = Checkpoint::new(origin(), size, gongkai_core::merkle::root(&leaves));
        (
            v1::GetInclusionProofResponse {
                index,
                tree_size: size,
                proof: proof.iter().map(|h| h.0.to_vec()).collect(),
                entry: entries[index as usize].as_bytes().to_vec(),
                checkpoint: String::new(),
            },
            cp,
        )
    }

    #[test]
    fn genuine_history_verifies() {
        let (entries, _) = log();
        for i in 1..3u64 {
            let bytes = entries[i as usize].as_bytes();
            let c = check_entry(&origin(), i, bytes).unwrap();
            let (resp, cp) = proof_response(&entries, i);
            check_proof(&c, bytes, &resp, &cp).unwrap();
        }
        assert!(
            summary(
                &check_entry(&origin(), 1, entries[1].as_bytes())
                    .unwrap()
                    .event
                    .kind
            )
            .starts_with("2026年部门预算")
        );
    }

    #[test]
    fn tampering_is_caught() {
        let (entries, _) = log();
        let bytes = entries[1].as_bytes();
        // A flipped signature bit.
        let mut bad = bytes.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let e = check_entry(&origin(), 1, &bad).unwrap_err();
        assert_eq!(crate::describe(&e).0, crate::client::EXIT_VERIFY);
        // The right entry shown at the wrong index, or for another log.
        assert!(check_entry(&origin(), 2, bytes).is_err());
        assert!(check_entry(&Origin::new("other.log/1").unwrap(), 1, bytes).is_err());
        // A proof against another root, or for another entry.
        let c = check_entry(&origin(), 1, bytes).unwrap();
        let (resp, mut cp) = proof_response(&entries, 1);
        cp.root = Hash([7; 32]);
        assert!(check_proof(&c, bytes, &resp, &cp).is_err());
        let (mut resp, cp) = proof_response(&entries, 1);
        resp.entry = entries[2].as_bytes().to_vec();
        assert!(check_proof(&c, bytes, &resp, &cp).is_err());
        let (mut resp, cp) = proof_response(&entries, 1);
        resp.proof.pop();
        assert!(check_proof(&c, bytes, &resp, &cp).is_err());
    }

    #[test]
    fn checkpoint_signature_checked_only_with_a_vkey() {
        let (entries, key) = log();
        let leaves: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
        let cp = Checkpoint::new(origin(), 3, gongkai_core::merkle::root(&leaves));
        let signed = SignedCheckpoint::sign(&cp, &key).unwrap().to_string();
        let vkey = Checkpoint::log_verifier_key(&origin(), &key.public_key());
        check_checkpoint(&origin(), &signed, Some(&vkey)).unwrap();
        let other =
            Checkpoint::log_verifier_key(&origin(), &SigningKey::from_seed([6; 32]).public_key());
        // Signed by a key we do not trust: refused with --vkey ...
        assert!(check_checkpoint(&origin(), &signed, Some(&other)).is_err());
        // ... and only parsed (and said so) without it.
        check_checkpoint(&origin(), &signed, None).unwrap();
        // A checkpoint of another log is refused either way.
        assert!(check_checkpoint(&Origin::new("other.log/1").unwrap(), &signed, None).is_err());
    }
}
