//! Write commands: key generation, uploads and appends.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use gongkai_core::Hash;
use gongkai_core::entry::Entry;
use gongkai_core::event::{kind_name, pb};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::KeyType;
use gongkai_core::types::{KeyName, Origin};
use gongkai_proto::v1::{self, WriteEvent, write_event};
use tokio::io::AsyncReadExt as _;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{Failure, Node, new_idempotency_key};
use crate::output::{ContentOut, ReceiptOut, print_json};
use crate::{
    AmendArgs, ChallengeResultArg, ClarifyStage, ConsultStage, DecisionArg, KeygenArgs,
    MatterCommand, ProcedureArg, PublishArgs, RedactArgs, RequestCommand, UploadArgs, WithdrawArgs,
    WriteOpts, input,
};

/// Upload chunk size.
const CHUNK: usize = 64 * 1024;
/// Longest idempotency key the node accepts.
const MAX_IDEMPOTENCY_KEY: usize = 128;

pub(crate) fn keygen(a: &KeygenArgs, json: bool) -> Result<()> {
    let (name, key_type) = if a.cosigner {
        (KeyName::new(&a.name)?, KeyType::CosignatureV1)
    } else {
        let origin = Origin::new(&a.name).context(
            "a department key is named for its log origin (e.g. gongkai.example/510122/finance)",
        )?;
        (KeyName::from(&origin), KeyType::Ed25519)
    };
    let key = SigningKey::from_seed(rand::random::<[u8; 32]>());
    let vkey = crate::keyfile::write_key(&a.out, &name, key_type, &key, a.force)?;
    let vkey_path = crate::keyfile::vkey_path(&a.out);
    if json {
        print_json(&serde_json::json!({
            "vkey": vkey.to_string(),
            "fingerprint": vkey.fingerprint(),
            "key_file": a.out,
            "vkey_file": vkey_path,
            "type": if a.cosigner { "cosignature/v1" } else { "ed25519" },
        }));
    } else {
        println!("{vkey}");
        println!(
            "fingerprint: {} (publish it with the key: readers compare it)",
            vkey.fingerprint()
        );
        println!(
            "private key: {} (mode 0600; keep it secret, back it up)",
            a.out.display()
        );
        println!(
            "public key:  {} (give it to verifiers and the county)",
            vkey_path.display()
        );
    }
    Ok(())
}

/// Streams `path` to the node in 64 KiB chunks; returns the commitment.
/// With `preset` (salt, expected digest), the node must hash the content
/// to that digest under that salt (used by import, so a re-run yields the
/// same events).
pub(crate) async fn upload_file(
    node: &Node,
    path: &Path,
    media_type: &str,
    preset: Option<([u8; 32], Hash)>,
) -> Result<pb::ContentRef> {
    let length = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if length == 0 {
        bail!("{} is empty: there is nothing to publish", path.display());
    }
    let what = format!("uploading {}", path.display());
    let content = node
        .retry(&what, || {
            upload_once(node, path, media_type, length, preset)
        })
        .await
        .with_context(|| what.clone())?;
    let c = content.with_context(|| format!("{what}: reading the file"))?;
    if let Some((_, expected)) = preset
        && c.digest != expected.0
    {
        return Err(Failure::Verify(format!(
            "{what}: the node committed to digest {}, expected {expected}",
            hex::encode(&c.digest)
        ))
        .into());
    }
    if c.length != length {
        return Err(Failure::Verify(format!(
            "{what}: the node committed to {} bytes, the file has {length}",
            c.length
        ))
        .into());
    }
    Ok(c)
}

/// One attempt. The outer `Result` is the RPC's; the inner one reports a
/// local read error (which no retry would cure).
async fn upload_once(
    node: &Node,
    path: &Path,
    media_type: &str,
    length: u64,
    preset: Option<([u8; 32], Hash)>,
) -> Result<Result<pb::ContentRef>, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let start = v1::UploadContentRequest {
        part: Some(v1::upload_content_request::Part::Start(v1::UploadStart {
            media_type: media_type.to_owned(),
            length,
            salt: preset.map(|p| p.0.to_vec()).unwrap_or_default(),
            expected_digest: preset.map(|p| p.1.0.to_vec()).unwrap_or_default(),
        })),
    };
    let path_owned = path.to_owned();
    let reader = tokio::spawn(async move {
        if tx.send(start).await.is_err() {
            return Ok(());
        }
        let mut f = tokio::fs::File::open(&path_owned).await?;
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            sent += n as u64;
            let chunk = v1::UploadContentRequest {
                part: Some(v1::upload_content_request::Part::Chunk(buf)),
            };
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
        if sent != length {
            return Err(std::io::Error::other(format!(
                "the file changed while it was being sent ({sent} bytes read, {length} expected)"
            )));
        }
        Ok::<(), std::io::Error>(())
    });
    let req = node
        .write_request(ReceiverStream::new(rx))
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let result = node.client().upload_content(req).await;
    let read = match reader.await {
        Ok(r) => r,
        Err(e) => Err(std::io::Error::other(e.to_string())),
    };
    if let Err(e) = read {
        return Ok(Err(e.into()));
    }
    let resp = result?.into_inner();
    Ok(resp
        .content
        .context("the node's answer holds no content reference"))
}

fn idempotency_key(w: &WriteOpts) -> Result<String> {
    match &w.idempotency_key {
        Some(k) if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY => {
            bail!("--idempotency-key must be 1 to {MAX_IDEMPOTENCY_KEY} bytes")
        }
        Some(k) => Ok(k.clone()),
        None => Ok(new_idempotency_key()),
    }
}

/// Checks a receipt's entry against what it claims: the leaf hash is the
/// hash of the entry, the entry holds the event kind asked for, and its
/// signature verifies under the key it names (core does each check).
pub(crate) fn check_receipt(r: &v1::Receipt, kind: &str) -> Result<()> {
    let fail = |m: String| -> anyhow::Error { Failure::Verify(format!("receipt: {m}")).into() };
    let entry = Entry::parse(r.entry.clone(), r.index).map_err(|e| fail(e.to_string()))?;
    if entry.leaf_hash().0.as_slice() != r.leaf_hash.as_slice() {
        return Err(fail(format!(
            "leaf hash {} is not the hash of the entry ({})",
            hex::encode(&r.leaf_hash),
            entry.leaf_hash()
        )));
    }
    let event = entry
        .decode_event(r.index)
        .map_err(|e| fail(e.to_string()))?;
    if event.index != r.index {
        return Err(fail(format!(
            "entry claims index {}, receipt says {}",
            event.index, r.index
        )));
    }
    if kind_name(&event.kind) != kind {
        return Err(fail(format!(
            "entry holds a {} event, not {kind}",
            kind_name(&event.kind)
        )));
    }
    entry
        .verify_signature(&event.signer, r.index)
        .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Checks `kind` locally, appends it (retrying with one idempotency key)
/// and prints the receipt.
async fn append(
    node: &Node,
    w: &WriteOpts,
    kind: write_event::Kind,
    content: Option<&pb::ContentRef>,
    json: bool,
) -> Result<()> {
    input::check_event(&kind)?;
    let name = kind_name(&input::core_kind(&kind));
    let key = idempotency_key(w)?;
    let request = v1::AppendRequest {
        idempotency_key: key.clone(),
        event: Some(WriteEvent { kind: Some(kind) }),
    };
    let resp = node
        .retry(&format!("recording {name}"), || {
            let req = node.write_request(request.clone());
            async move {
                let req = req.map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
                node.client().append(req).await
            }
        })
        .await?
        .into_inner();
    let receipt = resp.receipt.context("the node's answer holds no receipt")?;
    check_receipt(&receipt, name)?;
    let out = ReceiptOut {
        index: receipt.index,
        leaf_hash: hex::encode(&receipt.leaf_hash),
        kind: name.to_owned(),
        replayed: resp.replayed,
        idempotency_key: key,
        content: content.map(ContentOut::from_message),
    };
    if json {
        print_json(&out);
    } else {
        print!("{}", out.human());
    }
    Ok(())
}

fn media_type_for(path: &Path, given: Option<&String>) -> String {
    given
        .cloned()
        .unwrap_or_else(|| input::guess_media_type(path).to_owned())
}

pub(crate) async fn upload(node: &Node, a: UploadArgs, json: bool) -> Result<()> {
    let mt = media_type_for(&a.file, a.media_type.as_ref());
    let c = upload_file(node, &a.file, &mt, None).await?;
    let out = ContentOut::from_message(&c);
    if json {
        print_json(&out);
    } else {
        print!("{}", out.human());
    }
    Ok(())
}

pub(crate) async fn matter(node: &Node, c: MatterCommand, json: bool) -> Result<()> {
    let (kind, w) = match c {
        MatterCommand::Define { id, file, write } => (
            write_event::Kind::MatterDefined(pb::MatterDefined {
                matter_id: id.as_str().to_owned(),
                matter: Some(input::read_matter(&file)?),
            }),
            write,
        ),
        MatterCommand::Change {
            id,
            file,
            reason,
            write,
        } => (
            write_event::Kind::MatterChanged(pb::MatterChanged {
                matter_id: id.as_str().to_owned(),
                matter: Some(input::read_matter(&file)?),
                reason,
            }),
            write,
        ),
        MatterCommand::Retire {
            id,
            reason,
            basis,
            write,
        } => (
            write_event::Kind::MatterRetired(pb::MatterRetired {
                matter_id: id.as_str().to_owned(),
                reason,
                legal_basis: basis.unwrap_or_default(),
            }),
            write,
        ),
    };
    append(node, &w, kind, None, json).await
}

pub(crate) async fn publish(node: &Node, a: PublishArgs, json: bool) -> Result<()> {
    let mut event = pb::Published {
        quantity: a.quantity.unwrap_or(0),
        item_id: a.item.as_str().to_owned(),
        matter_id: a.matter.as_str().to_owned(),
        title: a.title,
        content: None,
        date_formed: a.date_formed.to_string(),
        legal_basis: a.basis.unwrap_or_default(),
        related: a.related,
        period: a.period.unwrap_or_default(),
        imported: a.imported,
    };
    // Check everything but the content before uploading anything.
    event.content = Some(placeholder_content());
    input::check_event(&write_event::Kind::Published(event.clone()))?;
    let mt = media_type_for(&a.file, a.media_type.as_ref());
    let c = upload_file(node, &a.file, &mt, None).await?;
    event.content = Some(c.clone());
    append(
        node,
        &a.write,
        write_event::Kind::Published(event),
        Some(&c),
        json,
    )
    .await
}

/// A well-formed stand-in content reference, for checking the other fields
/// of an event before the upload.
fn placeholder_content() -> pb::ContentRef {
    pb::ContentRef {
        digest: vec![0; 32],
        length: 1,
        media_type: "application/octet-stream".into(),
    }
}

pub(crate) async fn amend(node: &Node, a: AmendArgs, json: bool) -> Result<()> {
    let mut event = pb::Amended {
        quantity: a.quantity.unwrap_or(0),
        item_id: a.item.as_str().to_owned(),
        title: a.title,
        content: Some(placeholder_content()),
        date_changed: a.date_changed.to_string(),
        reason: a.reason,
    };
    input::check_event(&write_event::Kind::Amended(event.clone()))?;
    let mt = media_type_for(&a.file, a.media_type.as_ref());
    let c = upload_file(node, &a.file, &mt, None).await?;
    event.content = Some(c.clone());
    append(
        node,
        &a.write,
        write_event::Kind::Amended(event),
        Some(&c),
        json,
    )
    .await
}

pub(crate) async fn withdraw(node: &Node, a: WithdrawArgs, json: bool) -> Result<()> {
    let kind = write_event::Kind::Withdrawn(pb::Withdrawn {
        item_id: a.item.as_str().to_owned(),
        reason: a.reason,
        legal_basis: a.basis,
    });
    append(node, &a.write, kind, None, json).await
}

pub(crate) async fn redact(node: &Node, a: RedactArgs, json: bool) -> Result<()> {
    let kind = write_event::Kind::Redacted(pb::Redacted {
        item_id: a.item.as_str().to_owned(),
        content_digest: a.digest.0.to_vec(),
        reason: a.reason,
        legal_basis: a.basis,
    });
    append(node, &a.write, kind, None, json).await
}

fn decision(d: DecisionArg) -> pb::Decision {
    match d {
        DecisionArg::Disclosed => pb::Decision::Disclosed,
        DecisionArg::PartlyDisclosed => pb::Decision::PartlyDisclosed,
        DecisionArg::Refused => pb::Decision::Refused,
        DecisionArg::DoesNotExist => pb::Decision::DoesNotExist,
        DecisionArg::AlreadyPublic => pb::Decision::AlreadyPublic,
        DecisionArg::NotThisAgency => pb::Decision::NotThisAgency,
        DecisionArg::RepeatRequest => pb::Decision::RepeatRequest,
    }
}

pub(crate) async fn request(node: &Node, c: RequestCommand, json: bool) -> Result<()> {
    let (kind, w, content) = match c {
        RequestCommand::Receive {
            id,
            date,
            subject,
            applicant,
            write,
        } => (
            write_event::Kind::RequestReceived(pb::RequestReceived {
                request_id: id.as_str().to_owned(),
                date_received: date.to_string(),
                subject,
                applicant,
            }),
            write,
            None,
        ),
        RequestCommand::Clarify {
            id,
            stage,
            date,
            note,
            write,
        } => (
            write_event::Kind::RequestClarification(pb::RequestClarification {
                request_id: id.as_str().to_owned(),
                stage: match stage {
                    ClarifyStage::Asked => pb::ClarificationStage::Asked,
                    ClarifyStage::Corrected => pb::ClarificationStage::Corrected,
                } as i32,
                date: date.to_string(),
                note: note.unwrap_or_default(),
            }),
            write,
            None,
        ),
        RequestCommand::Consult {
            id,
            stage,
            date,
            note,
            write,
        } => (
            write_event::Kind::ThirdPartyConsultation(pb::ThirdPartyConsultation {
                request_id: id.as_str().to_owned(),
                stage: match stage {
                    ConsultStage::Started => pb::ConsultationStage::Started,
                    ConsultStage::Ended => pb::ConsultationStage::Ended,
                } as i32,
                date: date.to_string(),
                note: note.unwrap_or_default(),
            }),
            write,
            None,
        ),
        RequestCommand::Extend {
            id,
            date,
            approved_by,
            reason,
            write,
        } => (
            write_event::Kind::RequestExtended(pb::RequestExtended {
                request_id: id.as_str().to_owned(),
                date: date.to_string(),
                approved_by,
                reason,
            }),
            write,
            None,
        ),
        RequestCommand::Answer {
            id,
            date,
            outcome,
            decision: d,
            basis,
            file,
            items,
            write,
        } => {
            let mut event = pb::RequestAnswered {
                request_id: id.as_str().to_owned(),
                date_answered: date.to_string(),
                decision: d.map_or(0, |d| decision(d) as i32),
                legal_basis: basis.unwrap_or_default(),
                content: file.as_ref().map(|_| placeholder_content()),
                items: items
                    .iter()
                    .map(|i| pb::ItemRef {
                        origin: String::new(),
                        item_id: i.as_str().to_owned(),
                        relation: pb::Relation::Related as i32,
                    })
                    .collect(),
                outcome,
            };
            input::check_event(&write_event::Kind::RequestAnswered(event.clone()))?;
            if let Some(f) = &file {
                let mt = input::guess_media_type(f);
                event.content = Some(upload_file(node, f, mt, None).await?);
            }
            let content = event.content.clone();
            (write_event::Kind::RequestAnswered(event), write, content)
        }
        RequestCommand::Challenge {
            id,
            case,
            procedure,
            date,
            note,
            write,
        } => (
            write_event::Kind::ChallengeFiled(pb::ChallengeFiled {
                request_id: id.as_str().to_owned(),
                case_id: case,
                procedure: match procedure {
                    ProcedureArg::Reconsideration => pb::ChallengeProcedure::Reconsideration,
                    ProcedureArg::Litigation => pb::ChallengeProcedure::Litigation,
                    ProcedureArg::LitigationAfterReconsideration => {
                        pb::ChallengeProcedure::LitigationAfterReconsideration
                    }
                } as i32,
                date_filed: date.to_string(),
                note: note.unwrap_or_default(),
            }),
            write,
            None,
        ),
        RequestCommand::Concluded {
            id,
            case,
            result,
            date,
            note,
            write,
        } => (
            write_event::Kind::ChallengeConcluded(pb::ChallengeConcluded {
                request_id: id.as_str().to_owned(),
                case_id: case,
                result: match result {
                    ChallengeResultArg::Upheld => pb::ChallengeResult::Upheld,
                    ChallengeResultArg::Corrected => pb::ChallengeResult::Corrected,
                    ChallengeResultArg::Other => pb::ChallengeResult::Other,
                } as i32,
                date_concluded: date.to_string(),
                note: note.unwrap_or_default(),
            }),
            write,
            None,
        ),
    };
    append(node, &w, kind, content.as_ref(), json).await
}
