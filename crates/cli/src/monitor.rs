//! `gongkai monitor`: follow logs, verify each new checkpoint against the
//! last one verified (consistency proof, then the new entries; the same
//! round as `gongkai verify --state`), and raise an alert on any violation:
//! one JSON line on stderr and, with `--on-alert CMD`, the same line on the
//! standard input of `sh -c CMD`. Restart-safe: the state file is written
//! atomically (temp, fsync, rename) after every clean round, and a log
//! with a violation is never advanced, so it alerts again after a restart.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::json;

use crate::client::Node;
use crate::verify::{StateFile, TrustArgs, origins, verify_log};

/// `gongkai monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// State file (created if missing): the newest verified checkpoint per log.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Time between rounds, e.g. 10s, 2m, 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Run on every alert with `sh -c`; the alert's JSON line is its standard input.
    #[arg(long, value_name = "CMD")]
    pub on_alert: Option<String>,
    /// Follow every log in the trust file (instead of --origin).
    #[arg(long)]
    pub all: bool,
    /// Run one round and exit: 0 clean, 1 alerts, 2 could not verify.
    #[arg(long)]
    pub once: bool,
    /// An independent witness's base URL (repeatable): each round, compare
    /// what it cosigned for each log with what this monitor verified
    /// (FORMAT.md § 21.4): a checkpoint of the same size with another root
    /// signed by the department is a fork shown to that witness; a larger
    /// one means the server withholds what the witness saw; a smaller one
    /// must be a prefix of the verified log (else it is a fork too); one
    /// that stays smaller than a size verified here for longer than
    /// --witness-grace means the county does not show that witness the
    /// department's newer checkpoints (withholding), or the witness refuses
    /// them.
    #[arg(long, value_name = "URL")]
    pub witness: Vec<String>,
    /// How long a witness may lag behind a size this monitor verified
    /// before it is reported (e.g. 10m; 0s reports any lag at once). The
    /// time is kept in the state file, so it spans `--once` runs.
    #[arg(long, default_value = "10m", value_parser = parse_grace)]
    pub witness_grace: Duration,
    #[command(flatten)]
    pub statics: crate::verify::StaticArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// What a witness holds for a log, next to what this monitor verified.
#[derive(Debug, Default)]
struct Gossip {
    /// The size of the department checkpoint the witness holds, when the
    /// department signed it and it is a prefix of (or equal to) the
    /// verified log.
    consistent: Option<u64>,
    /// Something to report that is not a violation.
    warning: Option<String>,
}

/// What a witness holds for `origin`, compared with `verified` (the
/// checkpoint this monitor verified): `Err(violation)` for a fork (same
/// size, another root; or a smaller size that is not a prefix of the
/// verified log, by the server's consistency proof), a warning for a
/// witness ahead of the server.
async fn gossip(
    node: &Node,
    url: &str,
    origin: &gongkai_core::types::Origin,
    verified: &str,
    trust: &gongkai_verify::trust::Trust,
) -> Result<Gossip, String> {
    use gongkai_core::checkpoint::SignedCheckpoint;
    let path = gongkai_witness::client::checkpoint_path(origin.as_str());
    let theirs = match gongkai_witness::client::latest(
        url,
        origin.as_str(),
        Duration::from_secs(15),
    )
    .await
    {
        Ok(None) => return Ok(Gossip::default()),
        Ok(Some(t)) => t,
        Err(e) => {
            return Ok(Gossip {
                consistent: None,
                warning: Some(format!("witness {url}: {e}")),
            });
        }
    };
    let warn = |w: String| {
        Ok(Gossip {
            consistent: None,
            warning: Some(w),
        })
    };
    let ours = SignedCheckpoint::parse(verified).map_err(|e| e.to_string())?;
    // Only what the department signed counts (a witness could lie).
    let keys = trust.log_keys(origin).map_err(|e| e.to_string())?;
    let signed = gongkai_core::note::Verifiers::new(keys.iter().cloned())
        .ok()
        .is_some_and(|v| theirs.note().verify_quorum(&v, 1).is_ok());
    let (n, m) = (theirs.checkpoint().size, ours.checkpoint().size);
    if n == m && theirs.checkpoint().root != ours.checkpoint().root {
        let what = format!(
            "fork: witness {url} holds a checkpoint of size {n} with another root than the one verified here"
        );
        return if signed {
            Err(format!(
                "{what}, signed by the department: a fork shown to that witness (save {url}{path} and the verified checkpoint as checkpoint-fork evidence)"
            ))
        } else {
            warn(format!("{what}, not signed by a trusted department key"))
        };
    }
    if !signed {
        return Ok(Gossip::default());
    }
    if n > m {
        return warn(format!(
            "witness {url} cosigned size {n}, the server serves {m}: the server withholds what the witness saw, or lags"
        ));
    }
    if n < m && n > 0 {
        // A smaller checkpoint must be a prefix of what was verified; the
        // server's proof is checked, not trusted.
        let proof = match crate::fetch::consistency(node, origin, n, m).await {
            Ok(p) => p,
            Err(e) => {
                return warn(format!(
                    "consistency proof {n}→{m} for witness {url}: {e:#}"
                ));
            }
        };
        if gongkai_core::merkle::verify_consistency(
            n,
            m,
            &theirs.checkpoint().root,
            &ours.checkpoint().root,
            &proof,
        )
        .is_err()
        {
            return Err(format!(
                "fork: witness {url} holds a checkpoint of size {n}, signed by the department, that is not a prefix of the log verified here at size {m} (save {url}{path} and the verified checkpoint as inconsistent-checkpoint evidence)"
            ));
        }
    }
    Ok(Gossip {
        consistent: Some(n),
        warning: None,
    })
}

/// Parses a grace period: as [`parse_interval`], and zero is allowed.
fn parse_grace(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// Parses `10s`, `2m`, `500ms`, `1h`.
///
/// # Errors
/// Anything else, or zero.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("the interval must be more than zero".into());
    }
    Ok(d)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = n.parse().map_err(|_| format!("invalid interval {s:?}"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("invalid interval {s:?} (use ms, s, m or h)")),
    };
    Ok(d)
}

fn alert(cmd: Option<&str>, line: &str) {
    eprintln!("{line}");
    if let Some(cmd) = cmd {
        let spawned = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::piped())
            .spawn();
        match spawned {
            Ok(mut child) => {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = writeln!(stdin, "{line}");
                }
                let _ = child.wait();
            }
            Err(e) => eprintln!(
                "{}",
                json!({"alert": "on-alert-failed", "error": e.to_string()})
            ),
        }
    }
}

/// Runs `gongkai monitor`; returns the exit code (only with --once, or on
/// a fatal local error).
///
/// # Errors
/// Bad arguments, unreadable trust or state file.
pub async fn run(
    node: &Node,
    token: Option<&str>,
    a: MonitorArgs,
    ca: Option<&std::path::Path>,
) -> Result<u8> {
    let trust = a.trust.load()?;
    let site = a.statics.site(ca)?;
    let origins = origins(node.origin_opt(), a.all, &trust)?;
    let mut state = StateFile::load(&a.state)?;
    state.format = "gongkai-verify-state/v1".into();
    // Alerts already raised in this process, so a persisting violation is
    // not repeated every round (it is again after a restart).
    let mut raised: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut code = 0u8;
        for origin in &origins {
            let prev = state.logs.get(origin.as_str()).cloned();
            let mut o = verify_log(
                node,
                site.as_ref(),
                origin,
                &trust,
                prev.as_ref(),
                token,
                false,
            )
            .await;
            for v in &o.violations {
                code = 1;
                let line = json!({"alert": "violation", "origin": origin.as_str(), "size": o.size, "detail": v}).to_string();
                if raised.insert(line.clone()) {
                    alert(a.on_alert.as_deref(), &line);
                }
            }
            if let Some(e) = &o.error {
                if code == 0 {
                    code = 2;
                }
                eprintln!(
                    "{}",
                    json!({"warning": "could-not-verify", "origin": origin.as_str(), "detail": e})
                );
            }
            let verified = o
                .new_state
                .as_ref()
                .map(|s| s.checkpoint.clone())
                .or_else(|| prev.as_ref().map(|p| p.checkpoint.clone()));
            if let Some(verified) = verified {
                let m = gongkai_core::checkpoint::SignedCheckpoint::parse(&verified)
                    .map_or(0, |c| c.checkpoint().size);
                for url in &a.witness {
                    match gossip(node, url, origin, &verified, &trust).await {
                        Ok(g) => {
                            if let Some(w) = g.warning {
                                eprintln!(
                                    "{}",
                                    json!({"warning": "witness", "origin": origin.as_str(), "detail": w})
                                );
                            }
                            if let Some(n) = g.consistent
                                && let Some(w) =
                                    state.witness_lag(origin.as_str(), url, n, m, a.witness_grace)
                            {
                                eprintln!(
                                    "{}",
                                    json!({"warning": "witness-lag", "origin": origin.as_str(), "detail": w})
                                );
                            }
                        }
                        Err(v) => {
                            code = 1;
                            let line = json!({"alert": "violation", "origin": origin.as_str(), "detail": v}).to_string();
                            if raised.insert(line.clone()) {
                                alert(a.on_alert.as_deref(), &line);
                            }
                        }
                    }
                }
            }
            if let Some(s) = o.new_state.take() {
                if o.new_entries > 0 {
                    eprintln!(
                        "{}",
                        json!({"verified": origin.as_str(), "size": o.size, "new_entries": o.new_entries})
                    );
                }
                state.logs.insert(origin.to_string(), s);
            }
            state.save(&a.state).context("save the monitor state")?;
        }
        if a.once {
            return Ok(code);
        }
        tokio::time::sleep(a.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_interval("7"), Ok(Duration::from_secs(7)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("10 parsecs").is_err());
        assert_eq!(parse_grace("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_grace("").is_err());
        assert!(parse_grace("m").is_err());
    }
}
