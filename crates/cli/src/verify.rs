//! `gongkai verify`: verify whole logs from a server, or incrementally from
//! the newest checkpoint remembered in a state file; also the round that
//! `gongkai monitor` repeats.
//!
//! Per log: the newest checkpoint; against the remembered one a rollback
//! (smaller size), a fork (same size, other root; or a consistency proof
//! that fails); then only the new entries through core's chain verifier
//! (all cores), the root against the checkpoint, the department signature
//! by the key in force, k-of-n witness cosignatures from the trust file,
//! and the content of every new non-redacted item against its commitment.
//! Memory is the compact chain state (tree peaks, catalog fold), never the
//! whole log. The state file is only advanced when a log verified clean.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gongkai_core::Hash;
use gongkai_core::chain::{ChainState, ChainVerifier};
use gongkai_core::checkpoint::SignedCheckpoint;
use gongkai_core::event::{Event, Kind};
use gongkai_core::merkle::verify_consistency;
use gongkai_core::note::VerifierKey;
use gongkai_core::types::{ItemId, Origin};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{Failure, Node};
use crate::fetch::{self, Content};
use crate::output::{Table, print_json};
use crate::trust::{Trust, check_signatures};

/// Entries fetched and verified per round trip to the worker threads.
const CHUNK: u64 = 16 * 1024;

/// `gongkai verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify every log the trust file lists (instead of --origin).
    #[arg(long)]
    pub all: bool,
    /// Remember the newest verified checkpoint and chain state here, and
    /// continue from it next time (incremental; catches rollbacks and
    /// forks against what was verified before).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Where the trusted keys come from.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// The trust file (TOML): department keys per origin, witness keys,
    /// quorum. See docs/FORMAT.md § 16.4.
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// A department verifier key (vkey string or .vkey file); repeatable.
    /// With --vkey and no --trust, no witness is required.
    #[arg(long, value_name = "VKEY")]
    pub vkey: Vec<String>,
}

impl TrustArgs {
    /// The trust they give.
    ///
    /// # Errors
    /// Unreadable or invalid trust file or vkey; neither given.
    pub fn load(&self) -> Result<Trust> {
        let mut trust = match &self.trust {
            Some(p) => Trust::load(p)?,
            None => Trust::default(),
        };
        let mut extra = Vec::new();
        for v in &self.vkey {
            let k = match VerifierKey::parse(v.trim()) {
                Ok(k) => k,
                Err(_) => crate::keyfile::read_vkey(Path::new(v))?,
            };
            extra.push(k);
        }
        for (origin, keys) in Trust::from_vkeys(&extra)?.logs {
            trust.logs.entry(origin).or_default().extend(keys);
        }
        if trust.logs.is_empty() {
            bail!("give the keys you trust: --trust FILE or --vkey VKEY");
        }
        Ok(trust)
    }
}

/// The state file: per origin, the newest checkpoint verified and the
/// compact chain state after it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// `gongkai-verify-state/v1`.
    pub format: String,
    /// Per origin.
    pub logs: BTreeMap<String, LogState>,
}

/// What is remembered about one log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogState {
    /// The newest checkpoint verified (signed note).
    pub checkpoint: String,
    /// The chain state after its entries.
    pub chain: ChainState,
}

const STATE_FORMAT: &str = "gongkai-verify-state/v1";

impl StateFile {
    /// Reads a state file; a missing file is an empty state.
    ///
    /// # Errors
    /// Unreadable or malformed file.
    pub fn load(path: &Path) -> Result<StateFile> {
        match std::fs::read(path) {
            Ok(b) => {
                let s: StateFile = serde_json::from_slice(&b)
                    .with_context(|| format!("state file {} is malformed", path.display()))?;
                if s.format != STATE_FORMAT {
                    bail!("state file {}: format {:?}", path.display(), s.format);
                }
                Ok(s)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateFile {
                format: STATE_FORMAT.into(),
                logs: BTreeMap::new(),
            }),
            Err(e) => Err(e).with_context(|| format!("read state file {}", path.display())),
        }
    }

    /// Writes the state atomically: temp file, fsync, rename, fsync dir.
    ///
    /// # Errors
    /// Local I/O.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).context("encode state")?;
        write_atomic(path, &bytes, 0o600)
    }
}

/// Writes `bytes` to `path` atomically: temp file beside it, fsync,
/// rename, fsync of the directory.
///
/// # Errors
/// Local I/O.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.tmp"));
    let run = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    };
    run().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("write {}", path.display()))
    })
}

/// A content commitment an event makes.
#[derive(Debug, Clone)]
pub struct ContentUse {
    /// Digest.
    pub digest: Hash,
    /// Length.
    pub length: u64,
    /// The item, if it is an item's version (else a request answer).
    pub item: Option<String>,
    /// Entry index.
    pub index: u64,
}

/// The content commitments of an event.
pub fn content_uses(e: &Event) -> Vec<ContentUse> {
    let (c, item) = match &e.kind {
        Kind::Published(p) => (p.content.as_ref(), Some(p.item_id.clone())),
        Kind::Amended(a) => (a.content.as_ref(), Some(a.item_id.clone())),
        Kind::RequestAnswered(r) => (r.content.as_ref(), None),
        _ => (None, None),
    };
    c.and_then(|c| Hash::from_slice(&c.digest).ok().map(|d| (d, c.length)))
        .map(|(digest, length)| ContentUse {
            digest,
            length,
            item,
            index: e.index,
        })
        .into_iter()
        .collect()
}

fn content_what(u: &ContentUse) -> String {
    match &u.item {
        Some(i) => format!("content {} of item {i} (entry {})", u.digest, u.index),
        None => format!(
            "content {} of the request answer at entry {}",
            u.digest, u.index
        ),
    }
}

/// Whether `digest` of `item` was redacted, per the catalog fold.
pub fn is_redacted(state: &ChainState, item: Option<&str>, digest: &Hash) -> bool {
    item.and_then(|i| ItemId::new(i).ok())
        .and_then(|i| state.catalog.items.get(&i))
        .is_some_and(|i| i.redacted.contains(digest))
}

/// Whether the content of `item` is restricted, per the catalog fold.
pub fn is_restricted(state: &ChainState, item: Option<&str>) -> bool {
    item.and_then(|i| ItemId::new(i).ok())
        .is_some_and(|i| state.catalog.is_restricted(&i))
}

/// The outcome of verifying one log.
#[derive(Debug, Default, Serialize)]
pub struct LogOutcome {
    /// The log.
    pub origin: String,
    /// Checkpoint size verified (or seen).
    pub size: u64,
    /// Entries verified this time.
    pub new_entries: u64,
    /// Content checked and matching.
    pub content_ok: u64,
    /// Restricted content (not served to this reader).
    pub content_restricted: u64,
    /// Redacted content (skipped).
    pub content_redacted: u64,
    /// Trusted witness cosignatures on the checkpoint.
    pub cosignatures: Vec<(String, u64)>,
    /// Broken rules: rollback, fork, bad entry, bad signature, missing content...
    pub violations: Vec<String>,
    /// Not violations: e.g. not checked for cosignatures.
    pub warnings: Vec<String>,
    /// Why the log could not be verified (unreachable, ...).
    pub error: Option<String>,
    #[serde(skip)]
    /// The state to remember when clean.
    pub new_state: Option<LogState>,
}

/// Verifies one log from `node`, continuing from `prev` if given.
pub async fn verify_log(
    node: &Node,
    origin: &Origin,
    trust: &Trust,
    prev: Option<&LogState>,
    token: Option<&str>,
    progress: bool,
) -> LogOutcome {
    let mut out = LogOutcome {
        origin: origin.to_string(),
        ..LogOutcome::default()
    };
    if let Err(e) = verify_log_inner(node, origin, trust, prev, token, progress, &mut out).await {
        // A server answer that does not verify is a violation; anything
        // else (unreachable, bad local input) means "could not verify".
        match e.chain().find_map(|c| c.downcast_ref::<Failure>()) {
            Some(Failure::Verify(m)) => out.violations.push(m.clone()),
            _ => out.error = Some(format!("{e:#}")),
        }
    }
    if !out.violations.is_empty() || out.error.is_some() {
        out.new_state = None;
    }
    out
}

async fn verify_log_inner(
    node: &Node,
    origin: &Origin,
    trust: &Trust,
    prev: Option<&LogState>,
    token: Option<&str>,
    progress: bool,
    out: &mut LogOutcome,
) -> Result<()> {
    let (text, cp) = fetch::checkpoint(node, origin).await?;
    let new = cp.checkpoint().clone();
    out.size = new.size;
    let mut verifier = match prev {
        Some(p) => {
            let old_cp = SignedCheckpoint::parse(&p.checkpoint)
                .context("the state file's checkpoint does not parse")?;
            let old = old_cp.checkpoint();
            if new.size < old.size {
                out.violations.push(format!(
                    "rollback: the server's checkpoint has size {} (root {}), but size {} (root {}) \
                     was verified before",
                    new.size, new.root, old.size, old.root
                ));
                return Ok(());
            }
            if new.size == old.size && new.root != old.root {
                out.violations.push(format!(
                    "fork: two checkpoints of size {} with different roots: {} verified before, {} now",
                    new.size, old.root, new.root
                ));
                return Ok(());
            }
            if new.size > old.size {
                let proof = fetch::consistency(node, origin, old.size, new.size).await?;
                // RFC 9162 §2.1.4.2: verify consistency.
                if let Err(e) = verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
                {
                    out.violations.push(format!(
                        "fork: the checkpoint of size {} (root {}) does not extend the one of size {} \
                         (root {}) verified before: {e}",
                        new.size, new.root, old.size, old.root
                    ));
                    return Ok(());
                }
            }
            ChainVerifier::resume(p.chain.clone()).context("the state file's chain state")?
        }
        None => ChainVerifier::new(origin.clone(), &trust.genesis_keys(origin)?),
    };
    let start = verifier.size();
    let bar = progress_bar(progress, new.size - start, origin);
    // Content is checked chunk by chunk, so memory stays the compact chain
    // state; only content the server does not serve is kept until the end,
    // when a later Redacted event or the matter's audience may explain it.
    let mut deferred: Vec<(ContentUse, Content)> = Vec::new();
    let threads = crate::engine::threads();
    while verifier.size() < new.size {
        let from = verifier.size();
        let to = new.size.min(from + CHUNK);
        let entries = fetch::entries(node, origin, from, to).await?;
        let mut uses = Vec::new();
        let result = crate::engine::verify_entries(&mut verifier, entries, threads, |p, _| {
            uses.extend(content_uses(&p.event));
        });
        if let Err(e) = result {
            out.violations.push(format!("entry {}", e));
            bar.finish_and_clear();
            return Ok(());
        }
        for u in uses {
            if is_redacted(verifier.state(), u.item.as_deref(), &u.digest) {
                deferred.push((u, Content::NotFound(String::new())));
                continue;
            }
            match fetch::content(node, origin, &u.digest, u.length, token).await? {
                Content::Verified { .. } => out.content_ok += 1,
                Content::Mismatch(m) => out.violations.push(format!(
                    "{}: does not match its commitment: {m}",
                    content_what(&u)
                )),
                other => deferred.push((u, other)),
            }
        }
        bar.set_position(verifier.size() - start);
    }
    bar.finish_and_clear();
    out.new_entries = new.size - start;
    if let Err(e) = verifier.check_checkpoint(&new) {
        out.violations.push(format!("checkpoint: {e}"));
        return Ok(());
    }
    let keys = crate::trust::key_for_size(&verifier.state().keys, new.size);
    let verdict = check_signatures(&cp, &keys, trust);
    out.cosignatures = verdict.cosignatures;
    if let Some(v) = verdict.violation {
        out.violations
            .push(format!("checkpoint of size {}: {v}", new.size));
    }
    if let Some(c) = verdict.cosign_issue {
        if trust.quorum > 0 {
            out.violations
                .push(format!("checkpoint of size {}: {c}", new.size));
        } else {
            out.warnings.push(c);
        }
    }
    let state = verifier.into_state();
    for (u, got) in deferred {
        let what = content_what(&u);
        if is_redacted(&state, u.item.as_deref(), &u.digest) {
            out.content_redacted += 1;
            continue;
        }
        match got {
            Content::Restricted if is_restricted(&state, u.item.as_deref()) => {
                out.content_restricted += 1;
            }
            Content::Restricted => out
                .violations
                .push(format!("{what}: withheld, but its matter is public")),
            Content::NotFound(m) if u.item.is_none() => out.violations.push(format!(
                "{what}: not served ({m}); an answer's content cannot be redacted"
            )),
            Content::NotFound(m) => out
                .violations
                .push(format!("{what}: missing without a Redacted event ({m})")),
            Content::Verified { .. } | Content::Mismatch(_) => {}
        }
    }
    out.new_state = Some(LogState {
        checkpoint: text,
        chain: state,
    });
    Ok(())
}

fn progress_bar(show: bool, len: u64, origin: &Origin) -> indicatif::ProgressBar {
    if !show || len < 4096 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} entries ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(origin.to_string());
    bar
}

/// The origins to verify: `--origin`, or with `--all` every log in the
/// trust.
///
/// # Errors
/// Neither given.
pub fn origins(node_origin: Option<&Origin>, all: bool, trust: &Trust) -> Result<Vec<Origin>> {
    match (all, node_origin) {
        (true, _) => Ok(trust.logs.keys().cloned().collect()),
        (false, Some(o)) => Ok(vec![o.clone()]),
        (false, None) => {
            bail!("which log? give --origin ORIGIN, or --all for every log in the trust file")
        }
    }
}

/// Exit code: logs verified clean.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: violations found.
pub const EXIT_VIOLATIONS: u8 = 1;
/// Exit code: could not verify.
pub const EXIT_COULD_NOT: u8 = 2;

/// Runs `gongkai verify`; returns the exit code.
///
/// # Errors
/// Bad arguments or local I/O (exit 2).
pub async fn run(node: &Node, token: Option<&str>, a: VerifyArgs, json: bool) -> Result<u8> {
    let trust = a.trust.load()?;
    let origins = origins(node.origin_opt(), a.all, &trust)?;
    let mut state = match &a.state {
        Some(p) => StateFile::load(p)?,
        None => StateFile::default(),
    };
    let mut outcomes = Vec::new();
    for origin in &origins {
        let prev = state.logs.get(origin.as_str());
        let mut o = verify_log(node, origin, &trust, prev, token, !json).await;
        if let Some(s) = o.new_state.take() {
            state.logs.insert(origin.to_string(), s);
        }
        outcomes.push(o);
    }
    if let Some(p) = &a.state {
        state.format = STATE_FORMAT.into();
        state.save(p)?;
    }
    let code = exit_code(&outcomes);
    if json {
        print_json(&json!({
            "result": match code { EXIT_CLEAN => "clean", EXIT_VIOLATIONS => "violations", _ => "could-not-verify" },
            "logs": outcomes,
        }));
    } else {
        print!("{}", summary(&outcomes));
    }
    Ok(code)
}

/// 1 if any log has violations, else 2 if any could not be verified, else 0.
pub fn exit_code(outcomes: &[LogOutcome]) -> u8 {
    if outcomes.iter().any(|o| !o.violations.is_empty()) {
        EXIT_VIOLATIONS
    } else if outcomes.iter().any(|o| o.error.is_some()) {
        EXIT_COULD_NOT
    } else {
        EXIT_CLEAN
    }
}

/// The summary table and the lines under it.
pub fn summary(outcomes: &[LogOutcome]) -> String {
    let mut t = Table::new(&["LOG", "SIZE", "NEW", "CONTENT", "COSIGNED", "RESULT"]);
    let mut notes = String::new();
    for o in outcomes {
        let result = if !o.violations.is_empty() {
            format!("VIOLATIONS ({})", o.violations.len())
        } else if o.error.is_some() {
            "COULD NOT VERIFY".into()
        } else {
            "ok".into()
        };
        t.row(vec![
            o.origin.clone(),
            o.size.to_string(),
            o.new_entries.to_string(),
            format!(
                "{} ok, {} restricted, {} redacted",
                o.content_ok, o.content_restricted, o.content_redacted
            ),
            if o.cosignatures.is_empty() {
                "no".into()
            } else {
                o.cosignatures
                    .iter()
                    .map(|c| c.0.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            result,
        ]);
        for v in &o.violations {
            notes.push_str(&format!("VIOLATION {}: {v}\n", o.origin));
        }
        for w in &o.warnings {
            notes.push_str(&format!("warning {}: {w}\n", o.origin));
        }
        if let Some(e) = &o.error {
            notes.push_str(&format!("could not verify {}: {e}\n", o.origin));
        }
    }
    format!("{}{notes}", t.render())
}
