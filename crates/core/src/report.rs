//! The statutory annual report (政府信息公开工作年度报告) computed from a
//! log (FORMAT.md § 22).
//!
//! [`ReportFold`] folds the verified events of one log, in order, up to a
//! checkpoint size, and [`ReportFold::finish`] gives the tables of the
//! national format (国办公开办函〔2021〕30号) for one calendar year: table 二
//! (主动公开), table 三 (依申请公开), table 四 (复议/诉讼), and an annex of the
//! lateness the ledger proves. Every [`Cell`] carries the indexes of the
//! entries it counts, so anyone holding the log can recount it; a report is
//! a pure function of the log prefix, the year and the work calendar.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::Review;
use crate::calendar::{Period, WorkCalendar};
use crate::date::Date;
use crate::event::{Event, Kind, pb};

/// The `format` of a report's JSON.
pub const FORMAT: &str = "gongkai-annual-report/v1";
/// The media type of a report published as an item's content: `audit`
/// recomputes every such item (FORMAT.md § 22.5).
pub const MEDIA_TYPE: &str = "application/vnd.gongkai.annual-report+json";

/// One number of the report and the entries it counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Stable id, e.g. `t3.new.natural_person` (FORMAT.md § 22.4).
    pub id: String,
    /// The number: a count, or for `t2.fee.amount` an amount in fen (分).
    pub value: u64,
    /// Log indexes of the entries counted, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<u64>,
    /// For annex cells without an entry (a period with no item): what is
    /// missing, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

/// One department's part of a county report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The department's log origin.
    pub origin: String,
    /// Its name.
    pub department: String,
    /// The checkpoint size its report was computed at.
    pub size: u64,
}

/// The report of one log (or, with `parts`, the sum over a county).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnualReport {
    /// Always [`FORMAT`].
    pub format: String,
    /// The log's origin (the county's for a county report).
    pub origin: String,
    /// The department's name (from the genesis entry).
    pub department: String,
    /// The calendar year reported.
    pub year: i32,
    /// The checkpoint size it was computed at: entries `0..size`.
    pub size: u64,
    /// The tree root at `size`, hex (set by the caller that knows it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root: String,
    /// Every cell, in the order of the national tables.
    pub cells: Vec<Cell>,
    /// For a county report: the department reports summed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

impl AnnualReport {
    /// The cell with this id.
    pub fn cell(&self, id: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.id == id)
    }

    /// The value of a cell (0 if there is none).
    pub fn value(&self, id: &str) -> u64 {
        self.cell(id).map_or(0, |c| c.value)
    }

    /// Compares this (published) report with `fresh`, a recount of the
    /// same log at the same size: the ids of cells whose value or entries
    /// differ, with both values, in table order.
    pub fn differences(&self, fresh: &AnnualReport) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        for want in &fresh.cells {
            match self.cell(&want.id) {
                Some(have) if have.value == want.value && have.entries == want.entries => {}
                Some(have) => out.push((want.id.clone(), have.value, want.value)),
                None => out.push((want.id.clone(), 0, want.value)),
            }
        }
        for have in &self.cells {
            if fresh.cell(&have.id).is_none() {
                out.push((have.id.clone(), have.value, 0));
            }
        }
        out
    }

    /// The county's report: the sum of its departments' reports for one
    /// year. Cells keep no entries (each department's report has them).
    pub fn sum(origin: &str, name: &str, year: i32, reports: &[AnnualReport]) -> AnnualReport {
        let mut cells: Vec<Cell> = layout()
            .into_iter()
            .map(|id| Cell {
                id,
                value: 0,
                entries: Vec::new(),
                subjects: Vec::new(),
            })
            .collect();
        for r in reports {
            for c in &mut cells {
                c.value = c.value.saturating_add(r.value(&c.id));
            }
        }
        AnnualReport {
            format: FORMAT.into(),
            origin: origin.into(),
            department: name.into(),
            year,
            size: 0,
            root: String::new(),
            cells,
            parts: reports
                .iter()
                .map(|r| Part {
                    origin: r.origin.clone(),
                    department: r.department.clone(),
                    size: r.size,
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// The national tables' rows and columns.

/// Table 二's rows: (id, report row, label).
pub const TABLE2_ROWS: &[(&str, pb::ReportRow, &str)] = &[
    ("regulation", pb::ReportRow::Regulation, "规章"),
    (
        "normative_document",
        pb::ReportRow::NormativeDocument,
        "行政规范性文件",
    ),
    ("licensing", pb::ReportRow::Licensing, "行政许可"),
    ("penalty", pb::ReportRow::Penalty, "行政处罚"),
    ("coercion", pb::ReportRow::Coercion, "行政强制"),
    ("fee", pb::ReportRow::Fee, "行政事业性收费"),
];

/// Table 三's applicant columns: (id, label). `unrecorded` counts requests
/// recorded before the category existed; `total` is every column.
pub const TABLE3_COLUMNS: &[(&str, &str)] = &[
    ("natural_person", "自然人"),
    ("commercial_enterprise", "商业企业"),
    ("research_institution", "科研机构"),
    ("social_welfare_organization", "社会公益组织"),
    ("legal_service_institution", "法律服务机构"),
    ("other_organization", "其他"),
    ("unrecorded", "类别未记录"),
    ("total", "总计"),
];

/// Table 三's result rows: (id, group label, label). The id of an outcome
/// row is its `pb::Outcome` name without the prefix, lower case.
pub const TABLE3_RESULTS: &[(&str, &str, &str)] = &[
    ("disclosed", "（一）予以公开", ""),
    (
        "partly_disclosed",
        "（二）部分公开（区分处理的，只计这一情形，不计其他情形）",
        "",
    ),
    ("withheld_state_secret", "（三）不予公开", "1.属于国家秘密"),
    (
        "withheld_prohibited_by_law",
        "（三）不予公开",
        "2.其他法律行政法规禁止公开",
    ),
    (
        "withheld_security_stability",
        "（三）不予公开",
        "3.危及“三安全一稳定”",
    ),
    (
        "withheld_third_party",
        "（三）不予公开",
        "4.保护第三方合法权益",
    ),
    (
        "withheld_internal_affairs",
        "（三）不予公开",
        "5.属于三类内部事务信息",
    ),
    (
        "withheld_process_information",
        "（三）不予公开",
        "6.属于四类过程性信息",
    ),
    (
        "withheld_enforcement_file",
        "（三）不予公开",
        "7.属于行政执法案卷",
    ),
    (
        "withheld_administrative_query",
        "（三）不予公开",
        "8.属于行政查询事项",
    ),
    (
        "withheld_unrecorded",
        "（三）不予公开",
        "（理由未记录：本字段启用前的答复）",
    ),
    (
        "unavailable_not_held",
        "（四）无法提供",
        "1.本机关不掌握相关政府信息",
    ),
    (
        "unavailable_needs_creation",
        "（四）无法提供",
        "2.没有现成信息需要另行制作",
    ),
    (
        "unavailable_still_unclear",
        "（四）无法提供",
        "3.补正后申请内容仍不明确",
    ),
    (
        "not_processed_petition",
        "（五）不予处理",
        "1.信访举报投诉类申请",
    ),
    ("not_processed_repeat", "（五）不予处理", "2.重复申请"),
    (
        "not_processed_publication",
        "（五）不予处理",
        "3.要求提供公开出版物",
    ),
    (
        "not_processed_excessive",
        "（五）不予处理",
        "4.无正当理由大量反复申请",
    ),
    (
        "not_processed_confirmation",
        "（五）不予处理",
        "5.要求行政机关确认或重新出具已获取信息",
    ),
    (
        "other_not_corrected",
        "（六）其他处理",
        "1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
    ),
    (
        "other_fee_unpaid",
        "（六）其他处理",
        "2.申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
    ),
    ("other", "（六）其他处理", "3.其他"),
    ("results_total", "（七）总计", ""),
];

/// Table 四's procedures: (id, label).
pub const TABLE4_PROCEDURES: &[(&str, &str)] = &[
    ("reconsideration", "行政复议"),
    ("litigation", "行政诉讼（未经复议直接起诉）"),
    ("litigation_after_reconsideration", "行政诉讼（复议后起诉）"),
];

/// Table 四's result columns: (id, label).
pub const TABLE4_RESULTS: &[(&str, &str)] = &[
    ("upheld", "结果维持"),
    ("corrected", "结果纠正"),
    ("other", "其他结果"),
    ("pending", "尚未审结"),
    ("total", "总计"),
];

/// The annex (lateness the ledger proves): (id, label).
pub const ANNEX: &[(&str, &str)] = &[
    ("late_disclosure", "本年逾期主动公开（条）"),
    ("missing_disclosure", "截至年末应公开未公开的定期信息（期）"),
    ("late_answer", "本年逾期答复的申请（件）"),
    ("overdue_request", "截至年末已逾期仍未答复的申请（件）"),
];

/// Every cell id, in table order.
pub fn layout() -> Vec<String> {
    let mut ids = Vec::new();
    for (row, r, _) in TABLE2_ROWS {
        match r {
            pb::ReportRow::Regulation | pb::ReportRow::NormativeDocument => {
                for col in ["issued", "repealed", "in_force"] {
                    ids.push(format!("t2.{row}.{col}"));
                }
            }
            pb::ReportRow::Fee => ids.push(format!("t2.{row}.amount")),
            _ => ids.push(format!("t2.{row}.decisions")),
        }
    }
    let rows = ["new", "carried_in"]
        .into_iter()
        .chain(TABLE3_RESULTS.iter().map(|r| r.0))
        .chain(["carried_out"]);
    for row in rows {
        for (col, _) in TABLE3_COLUMNS {
            ids.push(format!("t3.{row}.{col}"));
        }
    }
    for (p, _) in TABLE4_PROCEDURES {
        for (r, _) in TABLE4_RESULTS {
            ids.push(format!("t4.{p}.{r}"));
        }
    }
    for (a, _) in ANNEX {
        ids.push(format!("annex.{a}"));
    }
    ids
}

// ---------------------------------------------------------------------------
// Decisions and outcomes.

/// The table 三 row of an answer: its outcome if recorded, else the row its
/// legacy decision maps to (FORMAT.md § 22.2).
pub fn result_row(decision: i32, outcome: i32) -> &'static str {
    use pb::Outcome as O;
    match O::try_from(outcome).unwrap_or(O::Unspecified) {
        O::Unspecified => {}
        o => return outcome_id(o),
    }
    match pb::Decision::try_from(decision) {
        Ok(pb::Decision::Disclosed | pb::Decision::AlreadyPublic) => "disclosed",
        Ok(pb::Decision::PartlyDisclosed) => "partly_disclosed",
        Ok(pb::Decision::DoesNotExist | pb::Decision::NotThisAgency) => "unavailable_not_held",
        Ok(pb::Decision::RepeatRequest) => "not_processed_repeat",
        _ => "withheld_unrecorded",
    }
}

/// The row id of an outcome (`OUTCOME_WITHHELD_STATE_SECRET` →
/// `withheld_state_secret`).
fn outcome_id(o: pb::Outcome) -> &'static str {
    TABLE3_RESULTS
        .iter()
        .map(|r| r.0)
        .find(|id| o.as_str_name().strip_prefix("OUTCOME_") == Some(&id.to_ascii_uppercase()))
        .unwrap_or("other")
}

/// Whether an answer's decision and outcome agree (either may be absent).
pub fn decision_allows(decision: pb::Decision, outcome: pb::Outcome) -> bool {
    use pb::Decision as D;
    use pb::Outcome as O;
    if decision == D::Unspecified || outcome == O::Unspecified {
        return true;
    }
    match decision {
        D::Disclosed | D::AlreadyPublic => outcome == O::Disclosed,
        D::PartlyDisclosed => outcome == O::PartlyDisclosed,
        D::Refused => withheld(outcome),
        D::DoesNotExist => matches!(outcome, O::UnavailableNotHeld | O::UnavailableNeedsCreation),
        D::NotThisAgency => outcome == O::UnavailableNotHeld,
        D::RepeatRequest => outcome == O::NotProcessedRepeat,
        D::Unspecified => true,
    }
}

fn withheld(o: pb::Outcome) -> bool {
    (pb::Outcome::WithheldStateSecret as i32..=pb::Outcome::WithheldAdministrativeQuery as i32)
        .contains(&(o as i32))
}

/// Whether an answer must give its legal basis: refusals and partial
/// disclosures, by decision or outcome.
pub fn needs_legal_basis(decision: pb::Decision, outcome: pb::Outcome) -> bool {
    matches!(
        decision,
        pb::Decision::Refused | pb::Decision::PartlyDisclosed
    ) || outcome == pb::Outcome::PartlyDisclosed
        || withheld(outcome)
}

/// The table 三 column of an applicant category.
fn applicant_column(a: i32) -> &'static str {
    match pb::ApplicantCategory::try_from(a) {
        Ok(pb::ApplicantCategory::NaturalPerson) => "natural_person",
        Ok(pb::ApplicantCategory::CommercialEnterprise) => "commercial_enterprise",
        Ok(pb::ApplicantCategory::ResearchInstitution) => "research_institution",
        Ok(pb::ApplicantCategory::SocialWelfareOrganization) => "social_welfare_organization",
        Ok(pb::ApplicantCategory::LegalServiceInstitution) => "legal_service_institution",
        Ok(pb::ApplicantCategory::OtherOrganization) => "other_organization",
        _ => "unrecorded",
    }
}

// ---------------------------------------------------------------------------
// The fold.

#[derive(Debug)]
struct ItemInfo {
    row: pb::ReportRow,
    /// The year the item counts in: its period's, else its date formed's.
    year: i32,
    date_formed: Date,
    quantity: u64,
    published_at: u64,
    withdrawn: bool,
    /// The first repealing item: its date formed and entry index.
    repealed: Option<(Date, u64)>,
}

#[derive(Debug)]
struct CaseInfo {
    procedure: i32,
    filed: Date,
    filed_at: u64,
    concluded: Option<(Date, i32, u64)>,
}

#[derive(Debug)]
struct RequestInfo {
    column: &'static str,
    received: Date,
    received_at: u64,
    answered: Option<(Date, &'static str, u64)>,
    cases: BTreeMap<String, CaseInfo>,
}

/// Folds one log's verified events (in order) into the report of one year.
#[derive(Debug)]
pub struct ReportFold {
    year: i32,
    start: Date,
    end: Date,
    origin: String,
    department: String,
    size: u64,
    matters: BTreeMap<String, pb::ReportRow>,
    items: BTreeMap<String, ItemInfo>,
    requests: BTreeMap<String, RequestInfo>,
    /// The lateness fold, fed the events dated up to the year's end.
    review: Review,
    /// Index of the first entry dated in or after the year (entries are in
    /// time order, so later indexes are too).
    first_in_year: Option<u64>,
}

impl ReportFold {
    /// A fold for `year`, judging deadlines with `calendar`.
    ///
    /// # Errors
    /// [`crate::Error`] for a year outside the dates the ledger can write.
    pub fn new(year: i32, calendar: WorkCalendar) -> Result<ReportFold, crate::Error> {
        let start = Date::new(year, 1, 1)?;
        let end = Date::new(year, 12, 31)?;
        Ok(ReportFold {
            year,
            start,
            end,
            origin: String::new(),
            department: String::new(),
            size: 0,
            matters: BTreeMap::new(),
            items: BTreeMap::new(),
            requests: BTreeMap::new(),
            review: Review::new(end, &[]).with_calendar(calendar),
            first_in_year: None,
        })
    }

    /// Folds the next event of the log (verified, in log order).
    pub fn observe(&mut self, event: &Event) {
        let index = event.index;
        self.size = index + 1;
        if event.date.year() >= self.year && self.first_in_year.is_none() {
            self.first_in_year = Some(index);
        }
        if event.date <= self.end {
            self.review.observe(event);
        }
        match &event.kind {
            Kind::Genesis(g) => {
                self.origin = event.origin.as_str().to_owned();
                self.department.clone_from(&g.department);
            }
            Kind::MatterDefined(m) => self.define(&m.matter_id, m.matter.as_ref()),
            Kind::MatterChanged(m) => self.define(&m.matter_id, m.matter.as_ref()),
            Kind::Published(p) => {
                let row = self
                    .matters
                    .get(&p.matter_id)
                    .copied()
                    .unwrap_or(pb::ReportRow::None);
                let Ok(date_formed) = Date::parse(&p.date_formed) else {
                    return;
                };
                let year = Period::parse(&p.period).map_or(date_formed.year(), Period::year);
                for r in &p.related {
                    if r.origin.is_empty()
                        && r.relation == pb::Relation::Repeals as i32
                        && let Some(target) = self.items.get_mut(&r.item_id)
                        && target.repealed.is_none()
                    {
                        target.repealed = Some((date_formed, index));
                    }
                }
                self.items.insert(
                    p.item_id.clone(),
                    ItemInfo {
                        row,
                        year,
                        date_formed,
                        quantity: p.quantity,
                        published_at: index,
                        withdrawn: false,
                        repealed: None,
                    },
                );
            }
            Kind::Amended(a) => {
                if a.quantity != 0
                    && let Some(item) = self.items.get_mut(&a.item_id)
                {
                    item.quantity = a.quantity;
                }
            }
            Kind::Withdrawn(w) => {
                if let Some(item) = self.items.get_mut(&w.item_id) {
                    item.withdrawn = true;
                }
            }
            Kind::RequestReceived(r) => {
                if let Ok(received) = Date::parse(&r.date_received) {
                    self.requests.insert(
                        r.request_id.clone(),
                        RequestInfo {
                            column: applicant_column(r.applicant),
                            received,
                            received_at: index,
                            answered: None,
                            cases: BTreeMap::new(),
                        },
                    );
                }
            }
            Kind::RequestAnswered(r) => {
                if let (Some(req), Ok(on)) = (
                    self.requests.get_mut(&r.request_id),
                    Date::parse(&r.date_answered),
                ) {
                    req.answered = Some((on, result_row(r.decision, r.outcome), index));
                }
            }
            Kind::ChallengeFiled(c) => {
                if let (Some(req), Ok(filed)) = (
                    self.requests.get_mut(&c.request_id),
                    Date::parse(&c.date_filed),
                ) {
                    req.cases.insert(
                        c.case_id.clone(),
                        CaseInfo {
                            procedure: c.procedure,
                            filed,
                            filed_at: index,
                            concluded: None,
                        },
                    );
                }
            }
            Kind::ChallengeConcluded(c) => {
                if let (Some(case), Ok(on)) = (
                    self.requests
                        .get_mut(&c.request_id)
                        .and_then(|r| r.cases.get_mut(&c.case_id)),
                    Date::parse(&c.date_concluded),
                ) {
                    case.concluded = Some((on, c.result, index));
                }
            }
            _ => {}
        }
    }

    fn define(&mut self, id: &str, m: Option<&pb::Matter>) {
        let row = m
            .and_then(|m| pb::ReportRow::try_from(m.report_row).ok())
            .unwrap_or(pb::ReportRow::None);
        self.matters.insert(id.to_owned(), row);
    }

    /// The report of the events folded so far (entries `0..size`).
    pub fn finish(self) -> AnnualReport {
        let (year, start, end) = (self.year, self.start, self.end);
        let mut cells: BTreeMap<String, Cell> = layout()
            .into_iter()
            .map(|id| {
                (
                    id.clone(),
                    Cell {
                        id,
                        value: 0,
                        entries: Vec::new(),
                        subjects: Vec::new(),
                    },
                )
            })
            .collect();
        let mut add = |id: String, value: u64, entries: &[u64]| {
            if let Some(c) = cells.get_mut(&id) {
                c.value = c.value.saturating_add(value);
                c.entries.extend_from_slice(entries);
            }
        };

        // Table 二.
        for item in self.items.values().filter(|i| !i.withdrawn) {
            let Some((row, _, _)) = TABLE2_ROWS.iter().find(|r| r.1 == item.row) else {
                continue;
            };
            match item.row {
                pb::ReportRow::Regulation | pb::ReportRow::NormativeDocument => {
                    if item.year == year {
                        add(format!("t2.{row}.issued"), 1, &[item.published_at]);
                    }
                    match item.repealed {
                        Some((on, at)) if on.year() == year => {
                            add(format!("t2.{row}.repealed"), 1, &[at]);
                        }
                        _ => {}
                    }
                    let repealed_by_end = item.repealed.is_some_and(|(on, _)| on <= end);
                    if item.date_formed <= end && !repealed_by_end {
                        add(format!("t2.{row}.in_force"), 1, &[item.published_at]);
                    }
                }
                pb::ReportRow::Fee if item.year == year => {
                    add(
                        format!("t2.{row}.amount"),
                        item.quantity,
                        &[item.published_at],
                    );
                }
                pb::ReportRow::Licensing | pb::ReportRow::Penalty | pb::ReportRow::Coercion
                    if item.year == year =>
                {
                    add(
                        format!("t2.{row}.decisions"),
                        item.quantity.max(1),
                        &[item.published_at],
                    );
                }
                _ => {}
            }
        }

        // Table 三 and 四.
        for req in self.requests.values() {
            let mut both = |row: &str, at: u64| {
                add(format!("t3.{row}.{}", req.column), 1, &[at]);
                add(format!("t3.{row}.total"), 1, &[at]);
            };
            let answered_before = req.answered.is_some_and(|(on, _, _)| on < start);
            let open_at_end = req.answered.is_none_or(|(on, _, _)| on > end);
            if req.received >= start && req.received <= end {
                both("new", req.received_at);
            } else if req.received < start && !answered_before {
                both("carried_in", req.received_at);
            }
            if let Some((on, row, at)) = req.answered
                && on >= start
                && on <= end
            {
                both(row, at);
                both("results_total", at);
            }
            if req.received <= end && open_at_end {
                both("carried_out", req.received_at);
            }
            for case in req.cases.values() {
                let Some((procedure, _)) = TABLE4_PROCEDURES
                    .get(usize::try_from(case.procedure - 1).unwrap_or(usize::MAX))
                else {
                    continue;
                };
                if case.filed > end || case.concluded.is_some_and(|(on, _, _)| on < start) {
                    continue;
                }
                let (column, entries) = match case.concluded {
                    Some((on, result, at)) if on <= end => (
                        match pb::ChallengeResult::try_from(result) {
                            Ok(pb::ChallengeResult::Upheld) => "upheld",
                            Ok(pb::ChallengeResult::Corrected) => "corrected",
                            _ => "other",
                        },
                        vec![case.filed_at, at],
                    ),
                    _ => ("pending", vec![case.filed_at]),
                };
                add(format!("t4.{procedure}.{column}"), 1, &entries);
                add(format!("t4.{procedure}.total"), 1, &entries);
            }
        }

        // The annex: what the findings fold proves about the year.
        let first_in_year = self.first_in_year.unwrap_or(u64::MAX);
        for f in self.review.finish() {
            let counted = match f.kind {
                "late-disclosure" | "late-answer" => f.index.is_some_and(|i| i >= first_in_year),
                "missing-disclosure" | "overdue-request" => true,
                _ => false,
            };
            if !counted {
                continue;
            }
            let id = format!("annex.{}", f.kind.replace('-', "_"));
            if let Some(c) = cells.get_mut(&id) {
                c.value += 1;
                match f.index {
                    Some(i) => c.entries.push(i),
                    None => c.subjects.push(f.detail),
                }
            }
        }

        let order = layout();
        let cells = order
            .iter()
            .filter_map(|id| cells.remove(id))
            .map(|mut c| {
                c.entries.sort_unstable();
                c.entries.dedup();
                c
            })
            .collect();
        AnnualReport {
            format: FORMAT.into(),
            origin: self.origin,
            department: self.department,
            year,
            size: self.size,
            root: String::new(),
            cells,
            parts: Vec::new(),
        }
    }
}

/// A report recounted from a log's entries in order: each entry is parsed,
/// decoded, folded and hashed into the tree, so the report names the root
/// of the prefix it counts. The entries must have been verified already
/// (this checks framing and the field rules only). One implementation for
/// every place that recounts: `audit`, `report annual`, the portal.
#[derive(Debug)]
pub struct Recount {
    fold: ReportFold,
    tree: crate::merkle::TreeState,
}

impl Recount {
    /// A recount of `year`, judging deadlines with `calendar`.
    ///
    /// # Errors
    /// As [`ReportFold::new`].
    pub fn new(year: i32, calendar: WorkCalendar) -> Result<Recount, crate::Error> {
        Ok(Recount {
            fold: ReportFold::new(year, calendar)?,
            tree: crate::merkle::TreeState::new(),
        })
    }

    /// Entries counted so far.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Counts the next entry (at index [`Recount::size`]).
    ///
    /// # Errors
    /// A malformed entry or body.
    pub fn push(&mut self, bytes: Vec<u8>) -> Result<(), crate::Error> {
        let index = self.tree.size();
        let entry = crate::entry::Entry::parse(bytes, index)?;
        let event = Event::decode(entry.body(), index)?;
        self.tree.append_leaf(entry.leaf_hash());
        self.fold.observe(&event);
        Ok(())
    }

    /// The report of the entries counted, with their tree's root.
    pub fn finish(self) -> AnnualReport {
        let mut report = self.fold.finish();
        report.root = self.tree.root().to_string();
        report
    }
}

/// An amount in fen written in 万元 (10,000 yuan = 1,000,000 fen), with as
/// many decimals as it needs.
pub fn wan_yuan(fen: u64) -> String {
    let whole = fen / 1_000_000;
    let frac = fen % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let s = format!("{frac:06}");
    format!("{whole}.{}", s.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_a_row() {
        for v in 1..=21 {
            let o = pb::Outcome::try_from(v).unwrap();
            let id = outcome_id(o);
            assert_eq!(
                o.as_str_name(),
                format!("OUTCOME_{}", id.to_ascii_uppercase())
            );
        }
        assert_eq!(
            result_row(pb::Decision::AlreadyPublic as i32, 0),
            "disclosed"
        );
        assert_eq!(
            result_row(pb::Decision::Refused as i32, 0),
            "withheld_unrecorded"
        );
        assert_eq!(
            result_row(
                pb::Decision::Refused as i32,
                pb::Outcome::WithheldThirdParty as i32
            ),
            "withheld_third_party"
        );
    }

    #[test]
    fn decisions_and_outcomes_agree_only_within_their_group() {
        use pb::Decision as D;
        use pb::Outcome as O;
        assert!(decision_allows(D::Refused, O::WithheldStateSecret));
        assert!(decision_allows(D::Refused, O::WithheldAdministrativeQuery));
        assert!(!decision_allows(D::Refused, O::Disclosed));
        assert!(!decision_allows(D::Disclosed, O::PartlyDisclosed));
        assert!(decision_allows(D::Unspecified, O::OtherFeeUnpaid));
        assert!(decision_allows(
            D::DoesNotExist,
            O::UnavailableNeedsCreation
        ));
        assert!(!decision_allows(
            D::NotThisAgency,
            O::UnavailableNeedsCreation
        ));
        assert!(needs_legal_basis(D::Unspecified, O::WithheldThirdParty));
        assert!(!needs_legal_basis(D::Unspecified, O::NotProcessedRepeat));
    }

    #[test]
    fn amounts_in_wan_yuan() {
        assert_eq!(wan_yuan(0), "0");
        assert_eq!(wan_yuan(1_000_000), "1");
        assert_eq!(wan_yuan(12_345_600), "12.3456");
        assert_eq!(wan_yuan(1), "0.000001");
    }

    #[test]
    fn layout_ids_are_unique() {
        let ids = layout();
        let set: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
        // 6 table-二 rows, 26 × 8 table-三 cells, 3 × 5 table-四, 4 annex.
        assert_eq!(ids.len(), 3 + 3 + 3 + 1 + 26 * 8 + 15 + 4);
    }
}
