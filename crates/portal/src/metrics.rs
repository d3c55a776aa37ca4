//! `/metrics`: the county's state in the Prometheus text exposition format
//! (version 0.0.4), for the operator's monitoring — mirror and cosigned
//! sizes per department, what each independent witness cosigned and how far
//! it lags, refusals, and evidence. Everything here is already public on
//! the portal's pages and `/api/v1/county`; this is the same state in the
//! form an alerting system scrapes (docs/OPERATIONS.md § Monitoring).

use std::fmt::Write as _;

use crate::model::{CountyInfo, DepartmentInfo, EvidenceInfo};

/// The media type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the metrics of one snapshot of the county.
pub fn render(
    county: &CountyInfo,
    departments: &[DepartmentInfo],
    evidence: &[EvidenceInfo],
) -> String {
    let mut m = Metrics::default();

    m.family(
        "gongkai_department_size",
        "Entries of the department's log mirrored by the county.",
    );
    for d in departments {
        m.sample(&[("origin", &d.origin)], d.size);
    }
    m.family(
        "gongkai_department_cosigned_size",
        "Largest size of the department's log the county verified and cosigned.",
    );
    for d in departments {
        m.sample(&[("origin", &d.origin)], d.cosigned_size);
    }
    m.family(
        "gongkai_department_cosigned_timestamp_seconds",
        "Unix time of the county's newest cosignature on the department's log (0: never).",
    );
    for d in departments {
        m.sample(&[("origin", &d.origin)], d.cosigned_ms / 1000);
    }
    m.family(
        "gongkai_department_alerts",
        "Current alerts about the department (not pushing, not advancing, evidence).",
    );
    for d in departments {
        m.sample(&[("origin", &d.origin)], d.alerts.len() as u64);
    }
    m.family(
        "gongkai_department_evidence",
        "Evidence files recorded against the department.",
    );
    for d in departments {
        m.sample(&[("origin", &d.origin)], d.evidence as u64);
    }

    m.family(
        "gongkai_county_log_size",
        "Size of the county log's newest checkpoint.",
    );
    m.sample(&[], county_size(county));
    m.family(
        "gongkai_county_quorum",
        "Cosignatures a reader of the county's trust file requires.",
    );
    m.sample(&[], county.quorum as u64);
    m.family(
        "gongkai_evidence_uncleared",
        "Evidence of misbehaviour not cleared by an operator.",
    );
    m.sample(&[], evidence.iter().filter(|e| !e.cleared).count() as u64);

    m.family(
        "gongkai_witness_up",
        "1 when the independent witness answered its last request, 0 when it could not be reached.",
    );
    for w in &county.independent {
        m.sample(&[("witness", &w.name)], u64::from(w.error.is_empty()));
    }
    m.family(
        "gongkai_witness_cosigned_size",
        "Largest size of a log the witness cosigned, as the county learned it.",
    );
    for w in &county.independent {
        for l in &w.logs {
            m.sample(&[("witness", &w.name), ("origin", &l.origin)], l.size);
        }
    }
    m.family(
        "gongkai_witness_lag_entries",
        "Entries the witness's cosignature lags behind the county's newest cosigned size.",
    );
    for w in &county.independent {
        for l in &w.logs {
            m.sample(&[("witness", &w.name), ("origin", &l.origin)], l.lag);
        }
    }
    m.family(
        "gongkai_witness_cosigned_timestamp_seconds",
        "Unix time of the witness's newest cosignature on the log (0: none known).",
    );
    for w in &county.independent {
        for l in &w.logs {
            m.sample(
                &[("witness", &w.name), ("origin", &l.origin)],
                l.cosigned_ms / 1000,
            );
        }
    }
    m.family(
        "gongkai_witness_refusing",
        "1 when the witness did not cosign the county's newest checkpoint of the log for a reason other than being unreachable (a refusal, a conflict, a fork).",
    );
    for w in &county.independent {
        for l in &w.logs {
            m.sample(
                &[("witness", &w.name), ("origin", &l.origin)],
                u64::from(!l.error.is_empty() && w.error.is_empty()),
            );
        }
    }
    m.out
}

/// The size on the second line of the county's newest checkpoint note.
fn county_size(county: &CountyInfo) -> u64 {
    county
        .checkpoint
        .as_deref()
        .and_then(|n| n.lines().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Metrics {
    out: String,
    name: &'static str,
}

impl Metrics {
    fn family(&mut self, name: &'static str, help: &str) {
        self.name = name;
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} gauge");
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value: backslash, double quote and line feed escaped (the
/// format's only escapes); other control characters cannot come from a
/// validated origin or a configured name, and are dropped if they do.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c if c.is_control() => {}
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{WitnessInfo, WitnessLog};

    fn county(independent: Vec<WitnessInfo>) -> CountyInfo {
        CountyInfo {
            name: "某某县".into(),
            origin: "gongkai.example/510122/county".into(),
            witnesses: vec![],
            quorum: 2,
            checkpoint: Some("gongkai.example/510122/county\n7\nAAAA\n\n— x y\n".into()),
            independent,
        }
    }

    #[test]
    fn witnesses_lag_and_refusals_are_labelled_and_escaped() {
        let c = county(vec![
            WitnessInfo {
                name: "纪委监委".into(),
                vkey: "k".into(),
                error: String::new(),
                logs: vec![WitnessLog {
                    origin: "gongkai.example/510122/finance".into(),
                    size: 10,
                    cosigned_ms: 1_700_000_000_123,
                    lag: 2,
                    error: "refused (HTTP 403): unknown key".into(),
                }],
            },
            WitnessInfo {
                name: "a \"b\"\\c\nd".into(),
                vkey: "k".into(),
                error: "connection refused".into(),
                logs: vec![WitnessLog {
                    origin: "o".into(),
                    size: 0,
                    cosigned_ms: 0,
                    lag: 12,
                    error: "connection refused".into(),
                }],
            },
        ]);
        let text = render(&c, &[], &[]);
        assert!(text.contains("gongkai_county_log_size 7\n"), "{text}");
        assert!(text.contains("gongkai_county_quorum 2\n"), "{text}");
        assert!(
            text.contains("gongkai_witness_up{witness=\"纪委监委\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gongkai_witness_up{witness=\"a \\\"b\\\"\\\\c\\nd\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "gongkai_witness_lag_entries{witness=\"纪委监委\",origin=\"gongkai.example/510122/finance\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "gongkai_witness_cosigned_timestamp_seconds{witness=\"纪委监委\",origin=\"gongkai.example/510122/finance\"} 1700000000\n"
            ),
            "{text}"
        );
        // A refusal counts; an unreachable witness is `up 0`, not refusing.
        assert!(text.contains("gongkai_witness_refusing{witness=\"纪委监委\",origin=\"gongkai.example/510122/finance\"} 1\n"));
        assert!(text.contains(
            "gongkai_witness_refusing{witness=\"a \\\"b\\\"\\\\c\\nd\",origin=\"o\"} 0\n"
        ));
        // Every family is declared once, before its samples.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let decl = format!("# TYPE {name} gauge");
            let at = text.find(&decl).unwrap_or(usize::MAX);
            assert!(
                at < text.find(line).unwrap_or(0),
                "{name} undeclared before its sample"
            );
            assert_eq!(text.matches(&decl).count(), 1, "{name}");
        }
    }
}
