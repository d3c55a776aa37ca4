//! `gongkai import`: bulk import of an existing catalog through
//! `AppendBatch`, safe to re-run after an interruption.
//!
//! A re-run must send byte-identical batches under the same idempotency
//! keys, so the node answers with the original receipts instead of
//! appending twice. Two things would otherwise differ between runs: the
//! content salts (the node draws random ones) and the keys. Both are
//! derived, with core's keyed BLAKE3 ([`content_digest`]), from a random
//! 32-byte secret kept in `FILE.import-key` (mode 0600, created on the
//! first run): salts stay unguessable, and keys and salts are stable.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use gongkai_core::Hash;
use gongkai_core::date::Date;
use gongkai_core::event::pb;
use gongkai_core::types::{ItemId, MatterId, content_digest};
use gongkai_proto::v1::{self, WriteEvent, write_event};
use serde::Deserialize;

use crate::ImportArgs;
use crate::client::Node;
use crate::output::print_json;
use crate::{input, write};

/// One line of the import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    item: ItemId,
    matter: MatterId,
    title: String,
    file: PathBuf,
    date_formed: Date,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    basis: Option<String>,
    #[serde(default)]
    related: Vec<String>,
}

/// A parsed line: the event without its content, and the content file.
struct Pending {
    line_no: usize,
    event: pb::Published,
    file: PathBuf,
    media_type: String,
}

fn parse_lines(text: &str, base: &Path) -> Result<Vec<Pending>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(raw).with_context(|| format!("line {line_no}"))?;
        let related = l
            .related
            .iter()
            .map(|r| input::related(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("line {line_no}: {e}"))?;
        let file = base.join(&l.file);
        let media_type = match l.media_type {
            Some(m) => input::media_type(&m).map_err(|e| anyhow::anyhow!("line {line_no}: {e}"))?,
            None => input::guess_media_type(&file).to_owned(),
        };
        let event = pb::Published {
            quantity: 0,
            item_id: l.item.as_str().to_owned(),
            matter_id: l.matter.as_str().to_owned(),
            title: l.title,
            content: Some(pb::ContentRef {
                digest: vec![0; 32],
                length: 1,
                media_type: media_type.clone(),
            }),
            date_formed: l.date_formed.to_string(),
            legal_basis: l.basis.unwrap_or_default(),
            related,
            period: l.period.unwrap_or_default(),
            imported: true,
        };
        input::check_event(&write_event::Kind::Published(event.clone()))
            .with_context(|| format!("line {line_no}"))?;
        out.push(Pending {
            line_no,
            event,
            file,
            media_type,
        });
    }
    Ok(out)
}

fn secret_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".import-key");
    PathBuf::from(p)
}

/// Reads the import secret, or creates it (0600) on the first run.
fn import_secret(file: &Path) -> Result<[u8; 32]> {
    let path = secret_path(file);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is accessible by group or others: chmod 600 {}",
                    path.display(),
                    path.display()
                );
            }
            let hex_text = String::from_utf8_lossy(&bytes);
            let mut secret = [0u8; 32];
            hex::decode_to_slice(hex_text.trim(), &mut secret)
                .with_context(|| format!("{} is not 64 hex digits", path.display()))?;
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = rand::random::<[u8; 32]>();
            crate::keyfile::write_file(
                &path,
                format!("{}\n", hex::encode(secret)).as_bytes(),
                0o600,
                false,
            )?;
            Ok(secret)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    }
}

/// The salt of line `line_no`: keyed by the secret, bound to the file.
fn line_salt(secret: &[u8; 32], file_hash: &Hash, line_no: usize) -> [u8; 32] {
    content_digest(
        secret,
        format!("gongkai import salt v1\n{file_hash}\n{line_no}\n").as_bytes(),
    )
    .0
}

/// The idempotency key of batch `n` (0-based) of the file.
fn batch_key(file_hash: &Hash, n: usize) -> String {
    format!("import-{}-{n}", &file_hash.to_hex()[..32])
}

pub(crate) async fn run(node: &Node, a: ImportArgs, json: bool) -> Result<()> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{} is not UTF-8", a.file.display()))?;
    let base = a.file.parent().unwrap_or(Path::new("."));
    // Check every line before sending anything.
    let pending = parse_lines(text, base).with_context(|| a.file.display().to_string())?;
    if pending.is_empty() {
        bail!("{} holds no events", a.file.display());
    }
    let secret = import_secret(&a.file)?;
    let file_hash = content_digest(&secret, &bytes);
    let batches: Vec<&[Pending]> = pending.chunks(a.batch_size as usize).collect();
    let mut report = Vec::new();
    for (n, batch) in batches.iter().enumerate() {
        let mut events = Vec::with_capacity(batch.len());
        for p in *batch {
            let content = std::fs::read(&p.file)
                .with_context(|| format!("line {}: reading {}", p.line_no, p.file.display()))?;
            let salt = line_salt(&secret, &file_hash, p.line_no);
            let expected = content_digest(&salt, &content);
            drop(content);
            let c = write::upload_file(node, &p.file, &p.media_type, Some((salt, expected)))
                .await
                .with_context(|| format!("line {}", p.line_no))?;
            let mut e = p.event.clone();
            e.content = Some(c);
            events.push(WriteEvent {
                kind: Some(write_event::Kind::Published(e)),
            });
        }
        let key = batch_key(&file_hash, n);
        let request = v1::AppendBatchRequest {
            idempotency_key: key.clone(),
            events,
        };
        let what = format!("batch {} of {}", n + 1, batches.len());
        let resp = node
            .retry(&what, || {
                let req = node.write_request(request.clone());
                async move {
                    let req = req.map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
                    node.client().append_batch(req).await
                }
            })
            .await
            .with_context(|| what.clone())?
            .into_inner();
        if resp.receipts.len() != batch.len() {
            return Err(crate::client::Failure::Verify(format!(
                "{what}: sent {} events, got {} receipts",
                batch.len(),
                resp.receipts.len()
            ))
            .into());
        }
        for r in &resp.receipts {
            write::check_receipt(r, "published").with_context(|| what.clone())?;
        }
        let first = resp.receipts.first().map_or(0, |r| r.index);
        let last = resp.receipts.last().map_or(0, |r| r.index);
        if !json {
            println!(
                "{what}: lines {}-{} recorded at indexes {first}-{last}{}",
                batch.first().map_or(0, |p| p.line_no),
                batch.last().map_or(0, |p| p.line_no),
                if resp.replayed {
                    " (already recorded by an earlier run)"
                } else {
                    ""
                }
            );
        }
        report.push(serde_json::json!({
            "batch": n + 1, "idempotency_key": key, "events": batch.len(),
            "first_index": first, "last_index": last, "replayed": resp.replayed,
        }));
    }
    if json {
        print_json(&serde_json::json!({
            "file": a.file, "events": pending.len(), "batches": report,
        }));
    } else {
        println!("imported {} items from {}", pending.len(), a.file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_are_checked_locally() {
        let text = r#"{"item":"budget-2019","matter":"budget","title":"2019年部门预算","file":"docs/b.pdf","date_formed":"2019-02-01","related":["draft-2019=draft"]}

{"item":"list-2019","matter":"aid","title":"低保名单","file":"l.csv","date_formed":"2019-03-01","period":"2019-Q1"}
"#;
        let p = parse_lines(text, Path::new("/data")).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].line_no, 1);
        assert_eq!(p[0].file, Path::new("/data/docs/b.pdf"));
        assert_eq!(p[0].media_type, "application/pdf");
        assert!(p[0].event.imported);
        assert_eq!(p[0].event.related.len(), 1);
        assert_eq!(p[1].line_no, 3);
        assert_eq!(p[1].media_type, "text/csv");
        for bad in [
            r#"{"item":"bad id","matter":"m","title":"t","file":"f","date_formed":"2019-02-01"}"#,
            r#"{"item":"i","matter":"m","title":"t","file":"f","date_formed":"2019-02-30"}"#,
            r#"{"item":"i","matter":"m","title":"","file":"f","date_formed":"2019-02-01"}"#,
            r#"{"item":"i","matter":"m","title":"t","file":"f","date_formed":"2019-02-01","tilte":"x"}"#,
        ] {
            assert!(parse_lines(bad, Path::new(".")).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn reruns_derive_the_same_keys_and_salts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.jsonl");
        std::fs::write(&file, "{}\n").unwrap();
        let s1 = import_secret(&file).unwrap();
        let s2 = import_secret(&file).unwrap();
        assert_eq!(s1, s2);
        let mode = std::fs::metadata(secret_path(&file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let h = content_digest(&s1, b"file");
        assert_eq!(batch_key(&h, 3), batch_key(&h, 3));
        assert_ne!(batch_key(&h, 3), batch_key(&h, 4));
        assert!(batch_key(&h, 3).len() <= 128);
        assert_eq!(line_salt(&s1, &h, 1), line_salt(&s1, &h, 1));
        assert_ne!(line_salt(&s1, &h, 1), line_salt(&s1, &h, 2));
    }
}
