//! `gongkai node backup | recover | rotate-key`: the operator's tasks on a
//! node's data (the work is `gongkai_node::admin`'s; this is the wiring,
//! the mirror download and the output).

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use gongkai_core::keys::SigningKey;
use gongkai_core::note::KeyType;
use gongkai_core::types::{KeyName, Origin};
use gongkai_node::config::NodeConfig;
use gongkai_node::open_options;
use gongkai_proto::v1;

use crate::client::{Connection, Failure, Node};

fn origin(cfg: &NodeConfig) -> Result<Origin> {
    Origin::new(&cfg.origin).map_err(|e| anyhow::anyhow!("origin in the config: {e}"))
}

/// `gongkai node backup`.
pub fn backup(cfg: &NodeConfig, key: &SigningKey, out: &Path, json: bool) -> Result<()> {
    let origin = origin(cfg)?;
    let r = gongkai_node::admin::backup(&open_options(cfg, &origin, key), out)
        .map_err(|e| Failure::Refused(format!("backup: {e}")))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "origin": origin.as_str(), "size": r.size, "root": r.root.to_hex(),
                "blobs": r.blobs, "dir": r.dir,
            })
        );
    } else {
        println!(
            "backed up {} entries of {origin} (root {}) and {} content blobs to {}",
            r.size,
            r.root,
            r.blobs,
            r.dir.display()
        );
    }
    Ok(())
}

/// `gongkai node recover --server MIRROR`.
pub fn recover(cfg: &NodeConfig, key: &SigningKey, conn: &Connection, json: bool) -> Result<()> {
    let origin = origin(cfg)?;
    let opts = open_options(cfg, &origin, key);
    // Read-only first: the local state, and a refusal if the node runs.
    let local = gongkai_node::verify_read_only(cfg, key)
        .map_err(|e| Failure::Refused(format!("the local data: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let conn = Connection {
        origin: Some(origin.clone()),
        ..conn.clone()
    };
    let (note, tail) = runtime.block_on(async {
        let node = Node::connect(&conn)?;
        let mut client = node.client();
        let note = client
            .get_checkpoint(v1::GetCheckpointRequest {
                origin: origin.to_string(),
            })
            .await
            .map_err(|s| node.fail(&s))?
            .into_inner()
            .checkpoint;
        let size = gongkai_core::checkpoint::SignedCheckpoint::parse(&note)
            .map_err(|e| Failure::Verify(format!("the mirror's checkpoint: {e}")))?
            .checkpoint()
            .size;
        let mut tail = Vec::new();
        let mut next = local.size;
        while next < size {
            let page = client
                .get_entries(v1::GetEntriesRequest {
                    origin: origin.to_string(),
                    start: next,
                    limit: 1000,
                })
                .await
                .map_err(|s| node.fail(&s))?
                .into_inner();
            if page.start != next || page.entries.is_empty() {
                bail!(Failure::Verify(format!(
                    "the mirror answered entries from {} (asked {next})",
                    page.start
                )));
            }
            for e in page.entries {
                if next < size {
                    tail.push(e);
                    next += 1;
                }
            }
        }
        anyhow::Ok((note, tail))
    })?;
    if tail.is_empty() {
        let msg = format!(
            "the mirror has nothing past the local {} entries (the key signed {})",
            local.size, local.signed_size
        );
        if local.size < local.signed_size {
            bail!(Failure::Refused(format!(
                "{msg}: the signed tail is lost; see `gongkai node restore --help`"
            )));
        }
        if gongkai_node::admin::clear_read_only(opts.data_dir)? {
            println!("{msg}; the node holds all the mirror holds: it takes writes again");
        } else {
            println!("{msg}; nothing to do");
        }
        return Ok(());
    }
    let r = gongkai_node::admin::append_tail(&opts, &tail, &note)
        .map_err(|e| Failure::Verify(format!("recover: {e}")))?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "origin": origin.as_str(), "from": r.from, "to": r.to, "signed": local.signed_size })
        );
    } else {
        println!(
            "recovered entries {}..{} of {origin} from {}; the key signed up to {}; \
             the node takes writes again when started",
            r.from, r.to, conn.server, local.signed_size
        );
        if r.to < local.signed_size {
            println!(
                "the mirror does not reach the signed size: the node will still refuse to start (see `gongkai node restore --help`)"
            );
        }
    }
    Ok(())
}

/// `gongkai node rotate-key`.
pub fn rotate_key(
    config_path: &Path,
    cfg: &NodeConfig,
    key: &SigningKey,
    new_key: &Path,
    reason: &str,
    json: bool,
) -> Result<()> {
    let origin = origin(cfg)?;
    if new_key.exists() {
        bail!(
            "{} already exists; the new key goes to a new file",
            new_key.display()
        );
    }
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("read {}", config_path.display()))?;
    let rewritten = rewrite_key_line(&text, new_key).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no single top-level `key = \"…\"` line to update",
            config_path.display()
        )
    })?;
    // Refuse before writing anything if the node runs or the data is bad.
    gongkai_node::verify_read_only(cfg, key)
        .map_err(|e| Failure::Refused(format!("rotate-key: {e}")))?;
    let next = SigningKey::generate(&mut rand::rng());
    let name = KeyName::new(origin.as_str())?;
    crate::keyfile::write_key(new_key, &name, KeyType::Ed25519, &next, false)?;
    let rotated =
        gongkai_node::admin::rotate_key(&open_options(cfg, &origin, key), &next, new_key, reason)
            .map_err(|e| {
            // The new key was never used: take it away again.
            let _ = std::fs::remove_file(new_key);
            let _ = std::fs::remove_file(crate::keyfile::vkey_path(new_key));
            Failure::Refused(format!("rotate-key: {e}"))
        })?;
    // Point the config at the new key, atomically, keeping its mode.
    let mode = {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(config_path).map_or(0o600, |m| m.permissions().mode() & 0o777)
    };
    crate::write_file(config_path, rewritten.as_bytes(), mode)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "index": rotated.index, "vkey": rotated.vkey.to_string(), "key": new_key })
        );
    } else {
        println!(
            "entry {}: the log of {origin} is now signed by the key in {}",
            rotated.index,
            new_key.display()
        );
        println!(
            "new verifier key (give it to the county and your verifiers): {}",
            rotated.vkey
        );
        println!(
            "{} now names the new key; keep the old key file offline",
            config_path.display()
        );
    }
    Ok(())
}

/// Replaces the value of the single top-level `key = "…"` line (before any
/// `[table]`), or `None` if there is not exactly one.
fn rewrite_key_line(text: &str, new_key: &Path) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut found = 0;
    let mut in_table = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_table = true;
        }
        let is_key = !in_table
            && t.strip_prefix("key")
                .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_key {
            found += 1;
            let value = toml::Value::String(new_key.display().to_string());
            out.push_str(&format!("key = {value}\n"));
        } else {
            out.push_str(line);
        }
    }
    (found == 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_top_level_key_line_changes() {
        let text =
            "origin = \"o\"\nkey = \"/etc/old.key\"\nkeys = 1\n[tls]\nkey = \"/etc/tls.key\"\n";
        let out = rewrite_key_line(text, Path::new("/etc/new.key")).unwrap();
        assert_eq!(
            out,
            "origin = \"o\"\nkey = \"/etc/new.key\"\nkeys = 1\n[tls]\nkey = \"/etc/tls.key\"\n"
        );
        assert!(rewrite_key_line("[tls]\nkey = \"x\"\n", Path::new("n")).is_none());
        assert!(rewrite_key_line("key = \"a\"\nkey = \"b\"\n", Path::new("n")).is_none());
    }
}
