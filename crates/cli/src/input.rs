//! Local parsing of what the clerk typed: ids, dates, related items, media
//! types, matter files. Every check uses core's parsers, so a typo is
//! reported here, before anything is sent to the node.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use gongkai_core::date::Date;
use gongkai_core::event::{Event, Kind, pb};
use gongkai_core::types::{ItemId, MatterId, Origin, RequestId};
use gongkai_proto::v1::write_event;
use serde::Deserialize;

/// clap value parser for item ids.
pub fn item_id(s: &str) -> Result<ItemId, String> {
    ItemId::new(s).map_err(|e| e.to_string())
}

/// clap value parser for matter ids.
pub fn matter_id(s: &str) -> Result<MatterId, String> {
    MatterId::new(s).map_err(|e| e.to_string())
}

/// clap value parser for request ids.
pub fn request_id(s: &str) -> Result<RequestId, String> {
    RequestId::new(s).map_err(|e| e.to_string())
}

/// clap value parser for `YYYY-MM-DD` dates.
pub fn date(s: &str) -> Result<Date, String> {
    Date::parse(s).map_err(|e| e.to_string())
}

/// The kebab-case names of a protobuf enum's values after `prefix`
/// (`OUTCOME_WITHHELD_STATE_SECRET` → `withheld-state-secret`), without
/// the unspecified value.
fn enum_names(prefix: &str, names: impl Iterator<Item = &'static str>) -> Vec<String> {
    names
        .filter_map(|n| n.strip_prefix(prefix))
        .filter(|n| *n != "UNSPECIFIED" && *n != "NONE")
        .map(|n| n.to_ascii_lowercase().replace('_', "-"))
        .collect()
}

/// Parses a kebab-case enum value name into its number.
fn enum_value(
    what: &str,
    prefix: &str,
    s: &str,
    names: impl Iterator<Item = &'static str> + Clone,
    from: fn(&str) -> Option<i32>,
) -> Result<i32, String> {
    let wire = format!("{prefix}{}", s.to_ascii_uppercase().replace('-', "_"));
    match from(&wire) {
        Some(v) if v != 0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a {what}; one of: {}",
            enum_names(prefix, names).join(", ")
        )),
    }
}

/// clap value parser for an applicant category (table 三's columns).
pub fn applicant(s: &str) -> Result<i32, String> {
    let names = (1..=6).filter_map(|v| {
        pb::ApplicantCategory::try_from(v)
            .ok()
            .map(|c| c.as_str_name())
    });
    enum_value("applicant category", "APPLICANT_CATEGORY_", s, names, |n| {
        pb::ApplicantCategory::from_str_name(n).map(|v| v as i32)
    })
}

/// clap value parser for an answer's outcome (table 三's result rows).
pub fn outcome(s: &str) -> Result<i32, String> {
    let names = (1..=21).filter_map(|v| pb::Outcome::try_from(v).ok().map(|c| c.as_str_name()));
    enum_value("result of table 三", "OUTCOME_", s, names, |n| {
        pb::Outcome::from_str_name(n).map(|v| v as i32)
    })
}

/// clap value parser for a matter's annual report row (table 二).
pub fn report_row(s: &str) -> Result<i32, String> {
    let names = (1..=6).filter_map(|v| pb::ReportRow::try_from(v).ok().map(|c| c.as_str_name()));
    enum_value("report row", "REPORT_ROW_", s, names, |n| {
        pb::ReportRow::from_str_name(n).map(|v| v as i32)
    })
}

/// clap value parser for a 32-byte digest in hex.
pub fn digest(s: &str) -> Result<gongkai_core::Hash, String> {
    gongkai_core::Hash::from_hex(s).map_err(|e| format!("{e} (expected 64 hex digits)"))
}

/// clap value parser for media types (`type/subtype`, lowercase, no
/// parameters: FORMAT.md's rule).
pub fn media_type(s: &str) -> Result<String, String> {
    gongkai_core::types::ContentRef::new(gongkai_core::Hash::ZERO, 1, s)
        .map(|c| c.media_type().to_owned())
        .map_err(|e| e.to_string())
}

/// Parses a related-item reference `[ORIGIN:]ID=RELATION`, where RELATION
/// is draft, consultation, decision or related.
///
/// # Errors
/// A message naming what is wrong.
pub fn related(s: &str) -> Result<pb::ItemRef, String> {
    let (target, relation) = s.rsplit_once('=').ok_or_else(|| {
        format!("{s:?}: expected [ORIGIN:]ID=draft|consultation|decision|related")
    })?;
    let relation = match relation {
        "draft" => pb::Relation::Draft,
        "consultation" => pb::Relation::Consultation,
        "decision" => pb::Relation::Decision,
        "related" => pb::Relation::Related,
        "repeals" => pb::Relation::Repeals,
        other => {
            return Err(format!(
                "{s:?}: relation {other:?} is not one of draft, consultation, decision, \
                 related, repeals"
            ));
        }
    };
    let (origin, id) = match target.split_once(':') {
        Some((o, id)) => (
            Origin::new(o)
                .map_err(|e| format!("{s:?}: {e}"))?
                .as_str()
                .to_owned(),
            id,
        ),
        None => (String::new(), target),
    };
    let id = ItemId::new(id).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(pb::ItemRef {
        origin,
        item_id: id.as_str().to_owned(),
        relation: relation as i32,
    })
}

/// The media type for a file, guessed from its extension.
pub fn guess_media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("html" | "htm") => "text/html",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// A matter definition file (TOML), mapped onto `pb::Matter`:
///
/// ```toml
/// category = "财政预决算"              # one of the pilot areas
/// level1 = "财政预决算"                # first-level matter name
/// level2 = "部门预算"                  # second-level matter name
/// elements = ["预算说明", "收支总表"]   # content elements to disclose
/// legal_basis = "《预算法》第十四条"
/// deadline_working_days = 20          # 1 to 366
/// responsible_body = "县财政局"
/// channels = ["政府网站", "公开栏"]
/// audience = "public"                 # or "group" (then audience_group)
/// # audience_group = "某某村村民"
/// mode = "proactive"                  # or "on-request"
/// periodicity = "yearly"              # none (default), monthly, quarterly,
///                                     # half-yearly, yearly
/// periods_from = "2026-01-01"         # periodic matters: first period due
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterFile {
    category: String,
    level1: String,
    level2: String,
    elements: Vec<String>,
    legal_basis: String,
    deadline_working_days: u32,
    responsible_body: String,
    channels: Vec<String>,
    audience: AudienceArg,
    #[serde(default)]
    audience_group: String,
    mode: ModeArg,
    #[serde(default)]
    periodicity: PeriodicityArg,
    #[serde(default)]
    periods_from: String,
    /// The annual report row its items count in (table 二).
    #[serde(default)]
    report_row: ReportRowArg,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ReportRowArg {
    #[default]
    None,
    Regulation,
    NormativeDocument,
    Licensing,
    Penalty,
    Coercion,
    Fee,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AudienceArg {
    Public,
    Group,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ModeArg {
    Proactive,
    OnRequest,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PeriodicityArg {
    #[default]
    None,
    Monthly,
    Quarterly,
    HalfYearly,
    Yearly,
}

impl MatterFile {
    /// Parses the TOML text.
    ///
    /// # Errors
    /// TOML syntax errors, unknown keys, bad enum values.
    pub fn parse(text: &str) -> Result<MatterFile> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    /// The protobuf message.
    pub fn into_message(self) -> pb::Matter {
        pb::Matter {
            report_row: match self.report_row {
                ReportRowArg::None => pb::ReportRow::None,
                ReportRowArg::Regulation => pb::ReportRow::Regulation,
                ReportRowArg::NormativeDocument => pb::ReportRow::NormativeDocument,
                ReportRowArg::Licensing => pb::ReportRow::Licensing,
                ReportRowArg::Penalty => pb::ReportRow::Penalty,
                ReportRowArg::Coercion => pb::ReportRow::Coercion,
                ReportRowArg::Fee => pb::ReportRow::Fee,
            } as i32,
            category: self.category,
            level1: self.level1,
            level2: self.level2,
            elements: self.elements,
            legal_basis: self.legal_basis,
            deadline_working_days: self.deadline_working_days,
            responsible_body: self.responsible_body,
            channels: self.channels,
            audience: match self.audience {
                AudienceArg::Public => pb::Audience::Public,
                AudienceArg::Group => pb::Audience::Group,
            } as i32,
            audience_group: self.audience_group,
            mode: match self.mode {
                ModeArg::Proactive => pb::DisclosureMode::Proactive,
                ModeArg::OnRequest => pb::DisclosureMode::OnRequest,
            } as i32,
            periodicity: match self.periodicity {
                PeriodicityArg::None => pb::Periodicity::None,
                PeriodicityArg::Monthly => pb::Periodicity::Monthly,
                PeriodicityArg::Quarterly => pb::Periodicity::Quarterly,
                PeriodicityArg::HalfYearly => pb::Periodicity::HalfYearly,
                PeriodicityArg::Yearly => pb::Periodicity::Yearly,
            } as i32,
            periods_from: self.periods_from,
        }
    }
}

/// Reads and parses a matter file.
///
/// # Errors
/// I/O and parse errors, naming the file.
pub fn read_matter(path: &Path) -> Result<pb::Matter> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading matter file {}", path.display()))?;
    Ok(MatterFile::parse(&text)
        .with_context(|| format!("matter file {}", path.display()))?
        .into_message())
}

/// The core event kind of a write event.
pub fn core_kind(k: &write_event::Kind) -> Kind {
    use write_event::Kind as W;
    match k.clone() {
        W::MatterDefined(m) => Kind::MatterDefined(m),
        W::MatterChanged(m) => Kind::MatterChanged(m),
        W::MatterRetired(m) => Kind::MatterRetired(m),
        W::Published(m) => Kind::Published(m),
        W::Amended(m) => Kind::Amended(m),
        W::Withdrawn(m) => Kind::Withdrawn(m),
        W::Redacted(m) => Kind::Redacted(m),
        W::RequestReceived(m) => Kind::RequestReceived(m),
        W::RequestClarification(m) => Kind::RequestClarification(m),
        W::ThirdPartyConsultation(m) => Kind::ThirdPartyConsultation(m),
        W::RequestExtended(m) => Kind::RequestExtended(m),
        W::RequestAnswered(m) => Kind::RequestAnswered(m),
        W::ChallengeFiled(m) => Kind::ChallengeFiled(m),
        W::ChallengeConcluded(m) => Kind::ChallengeConcluded(m),
    }
}

/// Checks a write event against core's field rules (FORMAT.md § Field
/// rules) as the node will, with today's date as the event date, so that a
/// mistake gets a local message. Rules that need the log's history (unique
/// ids, the item and request state machines) are the node's to check.
///
/// # Errors
/// The first field that breaks a rule, e.g. `published.title: required`.
pub fn check_event(kind: &write_event::Kind) -> Result<()> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let body = pb::EventBody {
        origin: "local.check".into(),
        index: 1,
        prev_hash: vec![0; 32],
        time_ms: now_ms,
        signer: vec![0; 32],
        kind: Some(core_kind(kind)),
    };
    match Event::from_message(body, 1) {
        Ok(_) => Ok(()),
        Err(gongkai_core::Error::InvalidField { field, reason, .. }) => {
            bail!("{field}: {reason}")
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATTER: &str = r#"
category = "财政预决算"
level1 = "财政预决算"
level2 = "部门预算"
elements = ["预算说明", "收支总表"]
legal_basis = "《预算法》第十四条"
deadline_working_days = 20
responsible_body = "县财政局"
channels = ["政府网站"]
audience = "group"
audience_group = "某某村村民"
mode = "on-request"
periodicity = "half-yearly"
periods_from = "2026-01-01"
"#;

    #[test]
    fn matter_toml_maps_onto_the_message() {
        let m = MatterFile::parse(MATTER).unwrap().into_message();
        assert_eq!(m.category, "财政预决算");
        assert_eq!(m.level2, "部门预算");
        assert_eq!(m.elements, vec!["预算说明", "收支总表"]);
        assert_eq!(m.deadline_working_days, 20);
        assert_eq!(m.audience, pb::Audience::Group as i32);
        assert_eq!(m.audience_group, "某某村村民");
        assert_eq!(m.mode, pb::DisclosureMode::OnRequest as i32);
        assert_eq!(m.periodicity, pb::Periodicity::HalfYearly as i32);
        assert_eq!(m.periods_from, "2026-01-01");
        let kind = write_event::Kind::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(m),
        });
        check_event(&kind).unwrap();
    }

    #[test]
    fn matter_toml_defaults_and_mistakes() {
        let public = MATTER
            .replace("\"group\"", "\"public\"")
            .replace("audience_group = \"某某村村民\"\n", "")
            .replace("periodicity = \"half-yearly\"\n", "")
            .replace("periods_from = \"2026-01-01\"\n", "");
        let m = MatterFile::parse(&public).unwrap().into_message();
        assert_eq!(m.periodicity, pb::Periodicity::None as i32);
        assert!(m.periods_from.is_empty());
        // Unknown keys (typos) and bad values are refused.
        assert!(MatterFile::parse(&format!("{MATTER}deadline = 5\n")).is_err());
        assert!(MatterFile::parse(&MATTER.replace("\"on-request\"", "\"sometimes\"")).is_err());
        assert!(MatterFile::parse(&MATTER.replace("level1 = \"财政预决算\"\n", "")).is_err());
        // Core's field rules run locally: 0 days is not a deadline.
        let mut m = MatterFile::parse(MATTER).unwrap().into_message();
        m.deadline_working_days = 0;
        let err = check_event(&write_event::Kind::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(m),
        }))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("matter.deadline_working_days"),
            "{err}"
        );
    }

    #[test]
    fn related_items_parse() {
        let r = related("draft-2026=draft").unwrap();
        assert_eq!((r.origin.as_str(), r.item_id.as_str()), ("", "draft-2026"));
        assert_eq!(r.relation, pb::Relation::Draft as i32);
        let r = related("gongkai.example/510122/dev:plan-7=decision").unwrap();
        assert_eq!(r.origin, "gongkai.example/510122/dev");
        assert_eq!(r.item_id, "plan-7");
        assert_eq!(r.relation, pb::Relation::Decision as i32);
        assert_eq!(
            related("x=consultation").unwrap().relation,
            pb::Relation::Consultation as i32
        );
        assert_eq!(
            related("x=related").unwrap().relation,
            pb::Relation::Related as i32
        );
        for bad in [
            "x",
            "x=",
            "x=parent",
            "=draft",
            "bad origin:x=draft",
            "a:b c=draft",
        ] {
            assert!(related(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn media_types_from_extensions() {
        let g = |p: &str| guess_media_type(Path::new(p));
        assert_eq!(g("budget.pdf"), "application/pdf");
        assert_eq!(g("BUDGET.PDF"), "application/pdf");
        assert_eq!(g("notes.txt"), "text/plain");
        assert_eq!(g("list.csv"), "text/csv");
        assert!(g("a.xlsx").contains("spreadsheetml"));
        assert!(g("a.docx").contains("wordprocessingml"));
        assert_eq!(g("a.html"), "text/html");
        assert_eq!(g("a.png"), "image/png");
        assert_eq!(g("a.jpg"), "image/jpeg");
        assert_eq!(g("a.jpeg"), "image/jpeg");
        assert_eq!(g("archive.7z"), "application/octet-stream");
        assert_eq!(g("README"), "application/octet-stream");
    }

    #[test]
    fn local_checks_catch_future_dates_and_blank_titles() {
        let published = |title: &str, date: &str| {
            write_event::Kind::Published(pb::Published {
                item_id: "i".into(),
                matter_id: "m".into(),
                title: title.into(),
                content: Some(pb::ContentRef {
                    digest: vec![1; 32],
                    length: 3,
                    media_type: "text/plain".into(),
                }),
                date_formed: date.into(),
                ..Default::default()
            })
        };
        check_event(&published("预算", "2026-01-05")).unwrap();
        assert!(check_event(&published("", "2026-01-05")).is_err());
        let err = check_event(&published("t", "2999-01-01")).unwrap_err();
        assert!(
            err.to_string().contains("after the event's own date"),
            "{err}"
        );
    }
}
