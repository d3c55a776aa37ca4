//! The findings of an audit (FORMAT.md § 17), as a pure fold over the
//! verified events of one log.
//!
//! [`Review`] is fed every event of a log that the chain verifier accepted,
//! in order, together with the cosigned checkpoints the auditor holds, and
//! then lists what the inspection office must see: amendments, withdrawals
//! and redactions with their reasons; changed and retired matters; late
//! proactive disclosures; missing periods of periodic matters; requests
//! answered late or still open past their deadline; back-dated entries.
//! Lateness is computed with the working-day calendar (FORMAT.md § 14);
//! where the calendar cannot answer the finding says so ("cannot verify"),
//! it never guesses. Integrity failures (bad signatures, broken chain,
//! tampered files) are the caller's findings; this module only judges a log
//! that verified.
//!
//! ## Which date counts
//!
//! An entry's claimed time is what the department says. A witness
//! cosignature's time is what an independent party saw. A disclosure is
//! judged late against the **first cosignature covering it** (the earliest
//! cosignature time on a checkpoint of size greater than its index), or its
//! claimed date when no cosigned checkpoint covers it; the finding names
//! which. An entry at index `i` with time `t` is **back-dated** if some
//! checkpoint of size at most `i` (so one that did not yet contain it)
//! carries a witness cosignature whose time is later than `t`.
//! Imported items (`published.imported`) are never late.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::calendar::{ClockEvent, Deadline, Period, Periodicity, RequestClock, WorkCalendar};
use crate::date::Date;
use crate::event::{Event, Kind, pb};
use crate::{Error, Hash};

/// How far (ms) an entry's claimed time may precede the first cosignature
/// of a checkpoint that lacked it before it is reported as back-dated
/// (FORMAT.md § 17): an honest entry can be written while the checkpoint
/// before it travels to the county and is cosigned (seconds), and
/// cosignature times are whole seconds.
pub const BACK_DATE_TOLERANCE_MS: u64 = 300_000;

/// How serious a finding is. Only [`Severity::Violation`] makes an audit
/// fail (exit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth reporting, not a broken rule (an amendment with its reason).
    Info,
    /// Could not be judged, or suspicious but not a rule (a matter narrowed).
    Warning,
    /// A broken rule or obligation.
    Violation,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Short stable name, e.g. `late-disclosure` (FORMAT.md § 17).
    pub kind: &'static str,
    /// The log index it concerns, if one.
    pub index: Option<u64>,
    /// The file it concerns (filled in by the caller that knows files).
    pub file: Option<String>,
    /// The item, matter or request id, if one.
    pub subject: String,
    /// What happened, in words.
    pub detail: String,
}

impl Finding {
    /// A finding with no file.
    pub fn new(
        severity: Severity,
        kind: &'static str,
        index: Option<u64>,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            kind,
            index,
            file: None,
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

/// A checkpoint size with the time of a valid, trusted witness cosignature
/// on it (Unix seconds). Several cosignatures on one checkpoint are several
/// of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cosigned {
    /// Tree size of the checkpoint.
    pub size: u64,
    /// Cosignature time, Unix seconds.
    pub time_secs: u64,
}

#[derive(Clone, Debug)]
struct MatterInfo {
    deadline: u32,
    periodicity: Option<Periodicity>,
    periods_from: Option<Date>,
    elements: Vec<String>,
    retired_on: Option<Date>,
}

#[derive(Clone, Debug)]
struct ItemInfo {
    matter: String,
    imported: bool,
}

#[derive(Clone, Debug)]
struct RequestInfo {
    clock: RequestClock,
    received_at: u64,
}

/// Milliseconds in a second.
const MS: u64 = 1000;

/// The findings fold of one log. Memory: per matter, item and request a
/// few fields (like the catalog fold), plus the findings.
#[derive(Debug)]
pub struct Review {
    calendar: WorkCalendar,
    as_of: Date,
    /// Cosigned, sorted by size.
    cosigned: Vec<Cosigned>,
    /// `prefix_max[j]`: latest time among `cosigned[..=j]`.
    prefix_max: Vec<u64>,
    /// `suffix_min[j]`: earliest time among `cosigned[j..]`.
    suffix_min: Vec<u64>,
    matters: BTreeMap<String, MatterInfo>,
    items: BTreeMap<String, ItemInfo>,
    requests: BTreeMap<String, RequestInfo>,
    /// Periods named by items, per matter.
    periods: BTreeMap<String, Vec<Period>>,
    findings: Vec<Finding>,
}

fn cannot(index: Option<u64>, subject: &str, what: &str, e: &Error) -> Finding {
    Finding::new(
        Severity::Warning,
        "cannot-verify",
        index,
        subject,
        format!("{what}: {e}"),
    )
}

impl Review {
    /// A review judged as of `as_of` (open requests and due periods are
    /// judged against this date), with the trusted cosignatures known.
    pub fn new(as_of: Date, cosigned: &[Cosigned]) -> Review {
        let mut cosigned = cosigned.to_vec();
        cosigned.sort();
        // For back-dating, each size counts with its *earliest* known
        // cosignature: the county re-cosigns an unchanged size for
        // freshness (§ 11.3), also while a department cannot reach it and
        // goes on writing, and such a later cosignature says nothing about
        // when the entries after that size were written.
        let mut prefix_max = Vec::with_capacity(cosigned.len());
        let mut m = 0;
        let mut size = None;
        for c in &cosigned {
            if size != Some(c.size) {
                // Sorted by (size, time): the first of a size is its earliest.
                m = m.max(c.time_secs);
                size = Some(c.size);
            }
            prefix_max.push(m);
        }
        let mut suffix_min = vec![u64::MAX; cosigned.len()];
        let mut m = u64::MAX;
        for (j, c) in cosigned.iter().enumerate().rev() {
            m = m.min(c.time_secs);
            suffix_min[j] = m;
        }
        Review {
            calendar: WorkCalendar::shipped().clone(),
            as_of,
            cosigned,
            prefix_max,
            suffix_min,
            matters: BTreeMap::new(),
            items: BTreeMap::new(),
            requests: BTreeMap::new(),
            periods: BTreeMap::new(),
            findings: Vec::new(),
        }
    }

    /// Judges with `calendar` (the calendar in force: the seed table and
    /// the tables the county published, FORMAT.md § 14.1) instead of the
    /// seed alone.
    #[must_use]
    pub fn with_calendar(mut self, calendar: WorkCalendar) -> Review {
        self.calendar = calendar;
        self
    }

    /// Latest of the earliest cosignature times of the checkpoint sizes
    /// `<= index` (checkpoints that did not contain entry `index`).
    fn latest_before(&self, index: u64) -> Option<u64> {
        let n = self.cosigned.partition_point(|c| c.size <= index);
        n.checked_sub(1).map(|j| self.prefix_max[j])
    }

    /// Earliest cosignature time on a checkpoint of size `> index` (one that
    /// contains entry `index`).
    fn first_covering(&self, index: u64) -> Option<u64> {
        let n = self.cosigned.partition_point(|c| c.size <= index);
        self.suffix_min.get(n).copied()
    }

    /// The date a disclosure at `event` counts as made, and how it was
    /// established.
    fn effective_date(&self, event: &Event) -> (Date, &'static str) {
        match self
            .first_covering(event.index)
            .and_then(|s| Date::from_unix_ms_cst(s.saturating_mul(MS)).ok())
        {
            Some(d) => (d, "first county cosignature"),
            None => (event.date, "claimed time, no cosignature covers it"),
        }
    }

    /// Folds one verified event (in log order).
    pub fn observe(&mut self, event: &Event) {
        let index = event.index;
        if let Some(latest) = self.latest_before(index)
            && latest.saturating_mul(MS) > event.time_ms.saturating_add(BACK_DATE_TOLERANCE_MS)
        {
            // A warning, not a violation: a department that could not reach
            // the county (its entries written, not yet pushed) looks the
            // same as one that back-dated. Lateness is judged from the first
            // cosignature covering an entry either way.
            self.findings.push(Finding::new(
                Severity::Warning,
                "back-dated",
                Some(index),
                "",
                format!(
                    "entry claims time {} ms, but a checkpoint that did not yet contain it was \
                     first cosigned at {latest} s (Unix): either back-dated, or held back \
                     before it reached the county (e.g. while the county was unreachable); \
                     its deadlines count from its first cosignature",
                    event.time_ms
                ),
            ));
        }
        match &event.kind {
            Kind::MatterDefined(m) => {
                if let Some(matter) = &m.matter {
                    self.matters
                        .insert(m.matter_id.clone(), matter_info(matter, None));
                }
            }
            Kind::MatterChanged(m) => {
                let Some(new) = &m.matter else { return };
                let old = self.matters.get(&m.matter_id).cloned();
                let mut info = matter_info(new, None);
                let mut detail = format!("reason: {}", m.reason);
                let mut severity = Severity::Info;
                if let Some(old) = &old {
                    let dropped: Vec<&String> = old
                        .elements
                        .iter()
                        .filter(|e| !info.elements.contains(e))
                        .collect();
                    if !dropped.is_empty() || info.deadline > old.deadline {
                        severity = Severity::Warning;
                        detail = format!(
                            "narrowed: elements dropped {dropped:?}, deadline {} -> {} working days; {detail}",
                            old.deadline, info.deadline
                        );
                    }
                    // Periods already due under the old definition stay due.
                    if info.periods_from.is_none() || old.periodicity == info.periodicity {
                        info.periods_from = old.periods_from.or(info.periods_from);
                    }
                }
                self.matters.insert(m.matter_id.clone(), info);
                self.findings.push(Finding::new(
                    severity,
                    "matter-changed",
                    Some(index),
                    &m.matter_id,
                    detail,
                ));
            }
            Kind::MatterRetired(m) => {
                if let Some(info) = self.matters.get_mut(&m.matter_id) {
                    info.retired_on = Some(event.date);
                }
                self.findings.push(Finding::new(
                    Severity::Info,
                    "matter-retired",
                    Some(index),
                    &m.matter_id,
                    format!("reason: {}; basis: {}", m.reason, or_none(&m.legal_basis)),
                ));
            }
            Kind::Published(p) => self.published(event, p),
            Kind::Amended(a) => {
                self.findings.push(Finding::new(
                    Severity::Info,
                    "amendment",
                    Some(index),
                    &a.item_id,
                    format!(
                        "new title {:?}, changed {}; reason: {}",
                        a.title, a.date_changed, a.reason
                    ),
                ));
                let item = self.items.get(&a.item_id).cloned();
                if let Some(item) = item
                    && !item.imported
                {
                    self.judge_lateness(
                        event,
                        &a.item_id,
                        &item.matter,
                        &a.date_changed,
                        "amendment",
                    );
                }
            }
            Kind::Withdrawn(w) => self.findings.push(Finding::new(
                Severity::Info,
                "withdrawal",
                Some(index),
                &w.item_id,
                format!("reason: {}; basis: {}", w.reason, w.legal_basis),
            )),
            Kind::Redacted(r) => self.findings.push(Finding::new(
                Severity::Info,
                "redaction",
                Some(index),
                &r.item_id,
                format!(
                    "content {} removed; reason: {}; basis: {}",
                    Hash::from_slice(&r.content_digest).map_or_else(|_| "?".into(), |h| h.to_hex()),
                    r.reason,
                    r.legal_basis
                ),
            )),
            Kind::RequestReceived(r) => {
                if let Ok(d) = Date::parse(&r.date_received) {
                    self.requests.insert(
                        r.request_id.clone(),
                        RequestInfo {
                            clock: RequestClock::new(d),
                            received_at: index,
                        },
                    );
                }
            }
            Kind::RequestClarification(r) => {
                let step = if r.stage == pb::ClarificationStage::Asked as i32 {
                    ClockEvent::ClarificationAsked
                } else {
                    ClockEvent::ClarificationCorrected
                };
                self.clock_step(index, &r.request_id, &r.date, step);
            }
            Kind::ThirdPartyConsultation(r) => {
                let step = if r.stage == pb::ConsultationStage::Started as i32 {
                    ClockEvent::ConsultationStarted
                } else {
                    ClockEvent::ConsultationEnded
                };
                self.clock_step(index, &r.request_id, &r.date, step);
            }
            Kind::RequestExtended(r) => {
                self.clock_step(index, &r.request_id, &r.date, ClockEvent::Extended);
                self.judge_extension(index, &r.request_id);
            }
            Kind::RequestAnswered(r) => {
                if let (Some(req), Ok(answered)) = (
                    self.requests.get(&r.request_id),
                    Date::parse(&r.date_answered),
                ) {
                    match (
                        req.clock.is_late(&self.calendar, answered),
                        req.clock.deadline(&self.calendar),
                    ) {
                        (Ok(true), deadline) => {
                            let due = match deadline {
                                Ok(Some(Deadline::Due { date })) => format!("deadline {date}"),
                                _ => "deadline passed".into(),
                            };
                            let late_by = match deadline {
                                Ok(Some(Deadline::Due { date })) => self
                                    .calendar
                                    .working_days_between(date, answered)
                                    .map_or_else(
                                        |_| String::new(),
                                        |n| format!(", {n} working days late"),
                                    ),
                                _ => String::new(),
                            };
                            self.findings.push(Finding::new(
                                Severity::Violation,
                                "late-answer",
                                Some(index),
                                &r.request_id,
                                format!(
                                    "answered {answered}, {due}{late_by} (received at index {}; {})",
                                    req.received_at,
                                    self.calendar.describe(req.clock.received(), answered)
                                ),
                            ));
                        }
                        (Ok(false), _) => {}
                        (Err(e), _) => {
                            let f = cannot(Some(index), &r.request_id, "answer lateness", &e);
                            self.findings.push(f);
                        }
                    }
                }
                self.clock_step(index, &r.request_id, &r.date_answered, ClockEvent::Answered);
            }
            Kind::Genesis(_) | Kind::KeyRotated(_) => {}
            Kind::ChallengeFiled(c) => self.findings.push(Finding::new(
                Severity::Info,
                "challenge",
                Some(index),
                &c.request_id,
                format!(
                    "case {} ({}) filed on {}",
                    c.case_id,
                    pb::ChallengeProcedure::try_from(c.procedure).map_or("?", |p| p.as_str_name()),
                    c.date_filed
                ),
            )),
            Kind::ChallengeConcluded(c) => self.findings.push(Finding::new(
                Severity::Info,
                "challenge",
                Some(index),
                &c.request_id,
                format!(
                    "case {} concluded on {}: {}",
                    c.case_id,
                    c.date_concluded,
                    pb::ChallengeResult::try_from(c.result).map_or("?", |r| r.as_str_name())
                ),
            )),
        }
    }

    fn published(&mut self, event: &Event, p: &pb::Published) {
        self.items.insert(
            p.item_id.clone(),
            ItemInfo {
                matter: p.matter_id.clone(),
                imported: p.imported,
            },
        );
        if let Ok(period) = Period::parse(&p.period) {
            self.periods
                .entry(p.matter_id.clone())
                .or_default()
                .push(period);
        }
        if !p.imported {
            self.judge_lateness(
                event,
                &p.item_id,
                &p.matter_id,
                &p.date_formed,
                "publication",
            );
        }
    }

    /// A disclosure of `item` (formed or changed on `date`) is late if it
    /// counts as made after the matter's deadline.
    fn judge_lateness(&mut self, event: &Event, item: &str, matter: &str, date: &str, what: &str) {
        let Some(m) = self.matters.get(matter) else {
            return;
        };
        let Ok(from) = Date::parse(date) else { return };
        // Periodic items are judged by their period (missing periods), not
        // by the date formed.
        if m.periodicity.is_some() {
            return;
        }
        let deadline = m.deadline;
        let (made, basis) = self.effective_date(event);
        match self.calendar.disclosure_due(from, deadline) {
            Ok(due) if made > due => {
                let late_by = self
                    .calendar
                    .working_days_between(due, made)
                    .map_or_else(|_| String::new(), |n| format!(" ({n} working days late)"));
                self.findings.push(Finding::new(
                    Severity::Violation,
                    "late-disclosure",
                    Some(event.index),
                    item,
                    format!(
                        "{what} made {made} ({basis}), due {due}{late_by}: {deadline} working days \
                         after {date} under matter {matter} ({})",
                        self.calendar.describe(from, made)
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => {
                let f = cannot(Some(event.index), item, "disclosure deadline", &e);
                self.findings.push(f);
            }
        }
    }

    /// An extension after the deadline in force is void (Article 33): the
    /// ledger records it, the judgement reports it and counts no extra days.
    fn judge_extension(&mut self, index: u64, id: &str) {
        let Some(req) = self.requests.get(id) else {
            return;
        };
        let Some(on) = req.clock.extended_on() else {
            return;
        };
        match req.clock.extension_in_time(&self.calendar) {
            Ok(Some(false)) => self.findings.push(Finding::new(
                Severity::Violation,
                "late-extension",
                Some(index),
                id,
                format!(
                    "extended {on}, after the deadline in force (received at index {}; {}): the \
                     extension is void and the answer is judged without it",
                    req.received_at,
                    self.calendar.describe(req.clock.received(), on)
                ),
            )),
            Ok(_) => {}
            Err(e) => {
                let f = cannot(Some(index), id, "extension deadline", &e);
                self.findings.push(f);
            }
        }
    }

    fn clock_step(&mut self, index: u64, id: &str, date: &str, step: fn(Date) -> ClockEvent) {
        let Ok(date) = Date::parse(date) else { return };
        if let Some(req) = self.requests.get_mut(id)
            && let Err(e) = req.clock.apply(step(date))
        {
            let f = cannot(Some(index), id, "request clock", &e);
            self.findings.push(f);
        }
    }

    /// Ends the fold: adds the findings that need the whole log (missing
    /// periods, overdue open requests) and returns every finding, in log
    /// order (findings without an index last).
    pub fn finish(mut self) -> Vec<Finding> {
        let calendar = &self.calendar;
        for (id, m) in &self.matters {
            let (Some(periodicity), Some(from)) = (m.periodicity, m.periods_from) else {
                continue;
            };
            let until = m.retired_on.map_or(self.as_of, |r| r.min(self.as_of));
            match calendar.periods_due(periodicity, from, m.deadline, until) {
                Ok(due) => {
                    let have = self.periods.get(id);
                    for (period, due_on) in due {
                        if !have.is_some_and(|h| h.contains(&period)) {
                            self.findings.push(Finding::new(
                                Severity::Violation,
                                "missing-disclosure",
                                None,
                                id,
                                format!(
                                    "no item for period {period} of matter {id} (due {due_on}, \
                                     judged as of {until}; {})",
                                    calendar.describe(period.last_day(), due_on)
                                ),
                            ));
                        }
                    }
                }
                Err(e) => self.findings.push(cannot(None, id, "periods due", &e)),
            }
        }
        for (id, r) in &self.requests {
            if r.clock.answered_on().is_some() {
                continue;
            }
            match r.clock.deadline(calendar) {
                Ok(Some(Deadline::Due { date })) if date < self.as_of => {
                    let over = calendar
                        .working_days_between(date, self.as_of)
                        .map_or_else(|_| String::new(), |n| format!(", {n} working days over"));
                    self.findings.push(Finding::new(
                        Severity::Violation,
                        "overdue-request",
                        Some(r.received_at),
                        id,
                        format!(
                            "still open on {}; deadline {date}{over} ({})",
                            self.as_of,
                            calendar.describe(r.clock.received(), self.as_of)
                        ),
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    self.findings
                        .push(cannot(Some(r.received_at), id, "request deadline", &e))
                }
            }
        }
        self.findings
            .sort_by_key(|f| (f.index.is_none(), f.index, f.kind));
        self.findings
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

fn matter_info(m: &pb::Matter, retired_on: Option<Date>) -> MatterInfo {
    let periodicity = match pb::Periodicity::try_from(m.periodicity) {
        Ok(pb::Periodicity::Monthly) => Some(Periodicity::Monthly),
        Ok(pb::Periodicity::Quarterly) => Some(Periodicity::Quarterly),
        Ok(pb::Periodicity::HalfYearly) => Some(Periodicity::HalfYearly),
        Ok(pb::Periodicity::Yearly) => Some(Periodicity::Yearly),
        _ => None,
    };
    MatterInfo {
        deadline: m.deadline_working_days,
        periodicity,
        periods_from: Date::parse(&m.periods_from).ok(),
        elements: m.elements.clone(),
        retired_on,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::types::Origin;
    use crate::writer::LogWriter;

    fn at(date: &str) -> u64 {
        // 10:00 CST on `date`.
        (Date::parse(date).unwrap().start_unix_ms_cst() + 10 * 3_600_000) as u64
    }

    fn matter(deadline: u32, periodicity: pb::Periodicity, from: &str) -> pb::Matter {
        pb::Matter {
            category: "财政预决算".into(),
            level1: "预决算".into(),
            level2: "部门预算".into(),
            elements: vec!["预算表".into()],
            legal_basis: "条例第二十条".into(),
            deadline_working_days: deadline,
            responsible_body: "县财政局".into(),
            channels: vec!["政府网站".into()],
            audience: pb::Audience::Public as i32,
            mode: pb::DisclosureMode::Proactive as i32,
            periodicity: periodicity as i32,
            periods_from: from.into(),
            ..Default::default()
        }
    }

    fn published(item: &str, matter: &str, formed: &str, period: &str, imported: bool) -> Kind {
        Kind::Published(pb::Published {
            item_id: item.into(),
            matter_id: matter.into(),
            title: "标题".into(),
            content: Some(pb::ContentRef {
                digest: vec![1; 32],
                length: 3,
                media_type: "text/plain".into(),
            }),
            date_formed: formed.into(),
            period: period.into(),
            imported,
            ..Default::default()
        })
    }

    /// Writes `kinds` at the given times and reviews them.
    fn review(kinds: Vec<(Kind, u64)>, as_of: &str, cosigned: &[Cosigned]) -> Vec<Finding> {
        let origin = Origin::new("gongkai.example/510122/finance").unwrap();
        let mut w = LogWriter::new(origin, SigningKey::from_seed([3; 32]));
        let mut r = Review::new(Date::parse(as_of).unwrap(), cosigned);
        let genesis = Kind::Genesis(pb::Genesis {
            department: "某某县财政局".into(),
            division_code: "510122".into(),
        });
        let first = kinds.first().map_or(at("2026-01-01"), |k| k.1);
        for (i, (kind, t)) in std::iter::once((genesis, first)).chain(kinds).enumerate() {
            let e = w.append(kind, t).unwrap();
            r.observe(&e.decode_event(i as u64).unwrap());
        }
        r.finish()
    }

    fn kinds(f: &[Finding]) -> Vec<(&'static str, Option<u64>, String)> {
        f.iter()
            .map(|f| (f.kind, f.index, f.subject.clone()))
            .collect()
    }

    #[test]
    fn late_and_timely_disclosures_by_working_days() {
        let define = Kind::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter(20, pb::Periodicity::None, "")),
        });
        let f = review(
            vec![
                (define, at("2026-01-05")),
                // Formed 2026-01-05: 20 working days later is 2026-02-02.
                (
                    published("on-time", "budget", "2026-01-05", "", false),
                    at("2026-02-02"),
                ),
                (
                    published("late", "budget", "2026-01-05", "", false),
                    at("2026-02-03"),
                ),
                (
                    published("old", "budget", "2026-01-05", "", true),
                    at("2026-02-03"),
                ),
            ],
            "2026-02-03",
            &[],
        );
        assert_eq!(kinds(&f), vec![("late-disclosure", Some(3), "late".into())]);
        assert!(f[0].detail.contains("due 2026-02-02"), "{}", f[0].detail);
    }

    #[test]
    fn lateness_counts_from_the_first_covering_cosignature() {
        let define = Kind::MatterDefined(pb::MatterDefined {
            matter_id: "budget".into(),
            matter: Some(matter(20, pb::Periodicity::None, "")),
        });
        // The entry claims 2026-01-06, but the first checkpoint containing
        // it (size 3 > index 2) was cosigned on 2026-03-02.
        let cosigned = [Cosigned {
            size: 3,
            time_secs: at("2026-03-02") / 1000,
        }];
        let f = review(
            vec![
                (define, at("2026-01-05")),
                (
                    published("p", "budget", "2026-01-05", "", false),
                    at("2026-01-06"),
                ),
            ],
            "2026-03-02",
            &cosigned,
        );
        assert_eq!(kinds(&f), vec![("late-disclosure", Some(2), "p".into())]);
        assert!(
            f[0].detail.contains("first county cosignature"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn back_dated_entries_are_found() {
        // A checkpoint of size 2 (entries 0 and 1) cosigned on 2026-03-10;
        // entry 2 then claims 2026-03-01: it was not in that checkpoint,
        // so it cannot be older than the cosignature.
        let cosigned = [Cosigned {
            size: 2,
            time_secs: at("2026-03-10") / 1000,
        }];
        let r = |t| {
            Kind::RequestReceived(pb::RequestReceived {
                applicant: 0,
                request_id: format!("r{t}"),
                date_received: "2026-02-27".into(),
                subject: "决算".into(),
            })
        };
        let f = review(
            vec![(r(1), at("2026-02-28")), (r(2), at("2026-03-01"))],
            "2026-03-02",
            &cosigned,
        );
        let back: Vec<_> = f.iter().filter(|f| f.kind == "back-dated").collect();
        assert_eq!(back.len(), 1, "{f:?}");
        assert_eq!(back[0].index, Some(2));
        assert_eq!(back[0].severity, Severity::Warning);

        // The county first cosigned size 2 on 2026-02-28 and re-cosigned it
        // on 2026-03-10 (freshness, while the department was cut off and
        // wrote entry 2 on 2026-03-01): the re-cosignature proves nothing
        // about entry 2.
        let recosigned = [
            Cosigned {
                size: 2,
                time_secs: at("2026-03-10") / 1000,
            },
            Cosigned {
                size: 2,
                time_secs: at("2026-02-28") / 1000,
            },
        ];
        let f = review(
            vec![(r(1), at("2026-02-28")), (r(2), at("2026-03-01"))],
            "2026-03-02",
            &recosigned,
        );
        assert!(!f.iter().any(|f| f.kind == "back-dated"), "{f:?}");

        // Entry 2 written a minute before size 2 was first cosigned (it
        // was on its way): within the tolerance.
        let close = [Cosigned {
            size: 2,
            time_secs: (at("2026-03-01") + 60_000) / 1000,
        }];
        let f = review(
            vec![(r(1), at("2026-02-28")), (r(2), at("2026-03-01"))],
            "2026-03-02",
            &close,
        );
        assert!(!f.iter().any(|f| f.kind == "back-dated"), "{f:?}");
    }

    #[test]
    fn requests_late_overdue_and_missing_periods() {
        let quarterly = Kind::MatterDefined(pb::MatterDefined {
            matter_id: "dibao".into(),
            matter: Some(matter(20, pb::Periodicity::Quarterly, "2026-01-01")),
        });
        let received = |id: &str, d: &str| {
            Kind::RequestReceived(pb::RequestReceived {
                applicant: 0,
                request_id: id.into(),
                date_received: d.into(),
                subject: "决算".into(),
            })
        };
        let answered = |id: &str, d: &str| {
            Kind::RequestAnswered(pb::RequestAnswered {
                request_id: id.into(),
                date_answered: d.into(),
                decision: pb::Decision::Disclosed as i32,
                ..Default::default()
            })
        };
        let f = review(
            vec![
                (quarterly, at("2026-01-05")),
                (
                    published("q1", "dibao", "2026-04-01", "2026-Q1", false),
                    at("2026-04-02"),
                ),
                (received("late", "2026-01-05"), at("2026-04-02")),
                (answered("late", "2026-03-02"), at("2026-04-02")),
                (received("open", "2026-02-02"), at("2026-04-02")),
                (received("fresh", "2026-04-01"), at("2026-04-02")),
            ],
            "2026-08-20",
            &[],
        );
        let k = kinds(&f);
        assert!(
            k.contains(&("late-answer", Some(4), "late".into())),
            "{k:?}"
        );
        assert!(
            k.contains(&("overdue-request", Some(5), "open".into())),
            "{k:?}"
        );
        assert!(
            k.contains(&("overdue-request", Some(6), "fresh".into())),
            "{k:?}"
        );
        // Q2 ends 2026-06-30 and is due 20 working days later: missing.
        let missing: Vec<_> = f
            .iter()
            .filter(|f| f.kind == "missing-disclosure")
            .collect();
        assert_eq!(missing.len(), 1, "{k:?}");
        assert!(
            missing[0].detail.contains("2026-Q2"),
            "{}",
            missing[0].detail
        );
    }

    /// A late extension is on the ledger but void: reported, and the answer
    /// is judged without its 20 extra days. In a year without a holiday
    /// table, the judgement says it cannot be made yet.
    #[test]
    fn late_extensions_are_void_and_uncovered_years_wait() {
        let received = |id: &str, d: &str| {
            Kind::RequestReceived(pb::RequestReceived {
                applicant: 0,
                request_id: id.into(),
                date_received: d.into(),
                subject: "决算".into(),
            })
        };
        let extended = |id: &str, d: &str| {
            Kind::RequestExtended(pb::RequestExtended {
                request_id: id.into(),
                date: d.into(),
                approved_by: "局长".into(),
                reason: "需要协调".into(),
            })
        };
        let answered = |id: &str, d: &str| {
            Kind::RequestAnswered(pb::RequestAnswered {
                request_id: id.into(),
                date_answered: d.into(),
                decision: pb::Decision::Disclosed as i32,
                ..Default::default()
            })
        };
        let next = WorkCalendar::shipped().last_year() + 1;
        let (r, e) = (format!("{next}-01-05"), format!("{next}-01-06"));
        let f = review(
            vec![
                // Due 2026-03-30; extended 03-31 (void); answered 04-10.
                (received("late", "2026-03-02"), at("2026-03-02")),
                (extended("late", "2026-03-31"), at("2026-03-31")),
                (answered("late", "2026-04-10"), at("2026-04-10")),
                (received("next", &r), at(&r)),
                (extended("next", &e), at(&e)),
            ],
            &format!("{next}-01-07"),
            &[],
        );
        let k = kinds(&f);
        assert!(
            k.contains(&("late-extension", Some(2), "late".into())),
            "{k:?}"
        );
        assert!(
            k.contains(&("late-answer", Some(3), "late".into())),
            "{k:?}"
        );
        // Every judgement names the tables it used.
        for f in f.iter().filter(|f| f.subject == "late") {
            assert!(
                f.detail.contains("calendar 2026 seed table"),
                "{}",
                f.detail
            );
        }
        let waiting: Vec<_> = f
            .iter()
            .filter(|f| f.subject == "next")
            .map(|f| (f.kind, f.detail.as_str()))
            .collect();
        assert!(
            waiting.iter().any(|(kind, detail)| *kind == "cannot-verify"
                && detail.contains(&format!("cannot judge yet: no holiday table for {next}"))),
            "{waiting:?}"
        );
        assert!(
            waiting.iter().all(|(kind, _)| *kind == "cannot-verify"),
            "{waiting:?}"
        );
    }
}
