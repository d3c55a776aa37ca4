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
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Parses `10s`, `2m`, `500ms`, `1h`.
///
/// # Errors
/// Anything else, or zero.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = n.parse().map_err(|_| format!("invalid interval {s:?}"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("invalid interval {s:?} (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("the interval must be more than zero".into());
    }
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
pub async fn run(node: &Node, token: Option<&str>, a: MonitorArgs) -> Result<u8> {
    let trust = a.trust.load()?;
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
            let mut o = verify_log(node, origin, &trust, prev.as_ref(), token, false).await;
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
            if let Some(s) = o.new_state.take() {
                if o.new_entries > 0 {
                    eprintln!(
                        "{}",
                        json!({"verified": origin.as_str(), "size": o.size, "new_entries": o.new_entries})
                    );
                }
                state.logs.insert(origin.to_string(), s);
                state.save(&a.state).context("save the monitor state")?;
            }
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
    }
}
