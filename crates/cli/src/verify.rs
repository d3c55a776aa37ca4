//! `gongkai verify`: verify whole logs from a server, or incrementally from
//! the newest checkpoint remembered in a state file; also the round that
//! `gongkai monitor` repeats.
//!
//! Per log, the one check of `gongkai-verify`
//! ([`gongkai_verify::check::check_log`]) over the server
//! ([`crate::fetch::ServerLog`]): the newest checkpoint; against the
//! remembered one a rollback (smaller size), a fork (same size, other root;
//! or a consistency proof that fails); then only the new entries through
//! the engine (all cores), the root against the checkpoint, the department
//! signature by the key in force, k-of-n witness cosignatures from the
//! trust file, and the content of every new commitment. Memory is the
//! compact chain state and one small record per content commitment, never
//! the entries. The state file is only advanced when a log verified clean.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gongkai_core::audit::Severity;
use gongkai_core::chain::ChainState;
use gongkai_core::note::VerifierKey;
use gongkai_core::types::Origin;
use gongkai_verify::check::{LogAudit, Options, check_log};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::Node;
use crate::fetch::ServerLog;
use crate::output::{Table, print_json};
use crate::trust::Trust;

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
    #[command(flatten)]
    pub statics: StaticArgs,
}

/// Reading the logs as static files over HTTP(S) instead of over gRPC.
#[derive(Debug, Clone, Args)]
pub struct StaticArgs {
    /// Read the logs as static files (FORMAT.md § 9.4: `<URL>/logs/<log>/…`)
    /// from a county portal, a CDN in front of it, or a bucket holding the
    /// same files, instead of over gRPC from --server. Everything read is
    /// checked against the signed checkpoint.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Where the documents are (`<URL>/content/<log>/<digest>`, the
    /// portal's download address). Without it the documents are not
    /// checked, and the result says so (exit 2).
    #[arg(long, value_name = "URL", requires = "url")]
    pub content_url: Option<String>,
}

impl StaticArgs {
    /// The site, when --url was given.
    ///
    /// # Errors
    /// A malformed URL; an unreadable CA file.
    pub fn site(&self, ca: Option<&Path>) -> Result<Option<crate::static_http::Site>> {
        self.url
            .as_deref()
            .map(|u| crate::static_http::Site::new(u, self.content_url.as_deref(), ca))
            .transpose()
    }
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
    /// `monitor --witness`: per `origin witness-url`, since when the
    /// witness has lagged behind a size verified here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub witness_lag: BTreeMap<String, WitnessLag>,
}

/// A witness seen behind a verified size (see [`StateFile::witness_lag`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessLag {
    /// The size verified here when the witness was first seen behind it.
    pub size: u64,
    /// Unix ms of that moment.
    pub since_ms: u64,
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
                ..StateFile::default()
            }),
            Err(e) => Err(e).with_context(|| format!("read state file {}", path.display())),
        }
    }

    /// Tracks a witness that holds size `n` of `origin` while size `m` was
    /// verified here: returns a report once it has stayed behind the size
    /// it first lagged for longer than `grace`. A witness that reaches that
    /// size starts a new count (a busy log keeps every witness a little
    /// behind; only one that stops advancing is reported).
    pub fn witness_lag(
        &mut self,
        origin: &str,
        url: &str,
        n: u64,
        m: u64,
        grace: std::time::Duration,
    ) -> Option<String> {
        let key = format!("{origin} {url}");
        if n >= m {
            self.witness_lag.remove(&key);
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let lag = self.witness_lag.entry(key).or_insert(WitnessLag {
            size: m,
            since_ms: now,
        });
        if n >= lag.size {
            *lag = WitnessLag {
                size: m,
                since_ms: now,
            };
        }
        let behind = std::time::Duration::from_millis(now.saturating_sub(lag.since_ms));
        (behind >= grace).then(|| {
            format!(
                "witness {url} has cosigned size {n}; size {} was verified here {} s ago and the witness has not cosigned it: the county does not show it the department's newer checkpoints (withholding), or the witness refuses them (see `gongkai county status`)",
                lag.size,
                behind.as_secs()
            )
        })
    }

    /// Writes the state atomically: temp file, fsync, rename, fsync dir.
    ///
    /// # Errors
    /// Local I/O.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).context("encode state")?;
        crate::write_file(path, &bytes, 0o600)
    }
}

/// The outcome of verifying one log, as `verify` and `monitor` print it.
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

impl From<LogAudit> for LogOutcome {
    fn from(a: LogAudit) -> LogOutcome {
        let mut violations = Vec::new();
        let mut warnings = Vec::new();
        for f in &a.findings {
            let at = f
                .index
                .map_or_else(String::new, |i| format!(" (entry {i})"));
            let line = format!("{}{at}: {}", f.kind, f.detail);
            match f.severity {
                Severity::Violation => violations.push(line),
                Severity::Warning => warnings.push(f.detail.clone()),
                Severity::Info => {}
            }
        }
        LogOutcome {
            origin: a.origin,
            size: a.size,
            new_entries: a.new_entries,
            content_ok: a.content_ok,
            content_restricted: a.content_restricted,
            content_redacted: a.content_redacted,
            cosignatures: a.cosignatures,
            violations,
            warnings,
            error: a.error,
            new_state: a
                .verified
                .map(|(checkpoint, chain)| LogState { checkpoint, chain }),
        }
    }
}

/// Verifies one log from `node`, continuing from `prev` if given: the one
/// check of `gongkai-verify` ([`check_log`]) over the server.
pub async fn verify_log(
    node: &Node,
    site: Option<&crate::static_http::Site>,
    origin: &Origin,
    trust: &Trust,
    prev: Option<&LogState>,
    token: Option<&str>,
    progress: bool,
) -> LogOutcome {
    let node = node.clone();
    let site = site.cloned();
    let origin = origin.clone();
    let trust = trust.clone();
    let prev = prev.cloned();
    let token = token.map(str::to_owned);
    let runtime = tokio::runtime::Handle::current();
    let name = origin.to_string();
    let checked = tokio::task::spawn_blocking(move || {
        let bar = progress_bar(progress, &origin);
        let opts = Options {
            trust: &trust,
            review: None,
            county_notes: &[],
            resume: prev.as_ref().map(|p| (p.checkpoint.as_str(), &p.chain)),
        };
        let out = match site {
            Some(site) => check_log(&mut site.log(origin, runtime, bar.clone()), &opts),
            None => check_log(
                &mut ServerLog::new(node, origin, token, runtime, bar.clone()),
                &opts,
            ),
        };
        bar.finish_and_clear();
        out
    })
    .await;
    let mut out = match checked {
        Ok(a) => LogOutcome::from(a),
        Err(e) => LogOutcome {
            origin: name,
            error: Some(format!("the verification failed: {e}")),
            ..LogOutcome::default()
        },
    };
    if !out.violations.is_empty() || out.error.is_some() {
        out.new_state = None;
    }
    out
}

fn progress_bar(show: bool, origin: &Origin) -> indicatif::ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::no_length();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {pos} entries ({per_sec})") {
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
pub async fn run(
    node: &Node,
    token: Option<&str>,
    a: VerifyArgs,
    json: bool,
    ca: Option<&Path>,
) -> Result<u8> {
    let trust = a.trust.load()?;
    let site = a.statics.site(ca)?;
    let origins = origins(node.origin_opt(), a.all, &trust)?;
    let mut state = match &a.state {
        Some(p) => StateFile::load(p)?,
        None => StateFile::default(),
    };
    let mut outcomes = Vec::new();
    for origin in &origins {
        let prev = state.logs.get(origin.as_str());
        let mut o = verify_log(node, site.as_ref(), origin, &trust, prev, token, !json).await;
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
