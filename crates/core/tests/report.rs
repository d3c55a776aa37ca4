//! The annual report of a fixture log against tables computed by hand
//! (FORMAT.md § 22), including the carry-over across a year boundary and
//! the catalog rules of 复议/诉讼 cases.

mod common;

use common::{TestLog, content, key, matter, origin};
use gongkai_core::Error;
use gongkai_core::calendar::WorkCalendar;
use gongkai_core::chain::ChainVerifier;
use gongkai_core::date::Date;
use gongkai_core::event::{Event, Kind, pb};
use gongkai_core::report::{AnnualReport, Recount};

/// Unix ms of 09:00 CST on `date`.
fn at(date: &str) -> u64 {
    let d = Date::parse(date).unwrap();
    u64::try_from(d.start_unix_ms_cst()).unwrap() + 9 * 3_600_000
}

struct Fixture {
    log: TestLog,
}

impl Fixture {
    fn on(&mut self, date: &str) {
        self.log.time = self.log.time.max(at(date));
    }

    /// Pushes `kind`; returns its index.
    fn push(&mut self, kind: Kind) -> u64 {
        self.log.push(kind);
        self.log.entries.len() as u64 - 1
    }

    fn define(&mut self, id: &str, row: pb::ReportRow) {
        let mut m = matter(pb::Periodicity::None, "");
        m.report_row = row as i32;
        self.push(Kind::MatterDefined(pb::MatterDefined {
            matter_id: id.into(),
            matter: Some(m),
        }));
    }

    fn publish(
        &mut self,
        item: &str,
        matter: &str,
        formed: &str,
        quantity: u64,
        repeals: &[&str],
    ) -> u64 {
        self.push(Kind::Published(pb::Published {
            item_id: item.into(),
            matter_id: matter.into(),
            title: format!("{item} 标题"),
            content: Some(content(item)),
            date_formed: formed.into(),
            related: repeals
                .iter()
                .map(|r| pb::ItemRef {
                    origin: String::new(),
                    item_id: (*r).into(),
                    relation: pb::Relation::Repeals as i32,
                })
                .collect(),
            quantity,
            ..Default::default()
        }))
    }

    fn receive(&mut self, id: &str, date: &str, applicant: pb::ApplicantCategory) -> u64 {
        self.push(Kind::RequestReceived(pb::RequestReceived {
            request_id: id.into(),
            date_received: date.into(),
            subject: format!("{id} 申请内容"),
            applicant: applicant as i32,
        }))
    }

    fn answer(
        &mut self,
        id: &str,
        date: &str,
        decision: pb::Decision,
        outcome: pb::Outcome,
    ) -> u64 {
        self.push(Kind::RequestAnswered(pb::RequestAnswered {
            request_id: id.into(),
            date_answered: date.into(),
            decision: decision as i32,
            outcome: outcome as i32,
            legal_basis: "《政府信息公开条例》第十五条".into(),
            ..Default::default()
        }))
    }

    fn file(&mut self, id: &str, case: &str, p: pb::ChallengeProcedure, date: &str) -> u64 {
        self.push(Kind::ChallengeFiled(pb::ChallengeFiled {
            request_id: id.into(),
            case_id: case.into(),
            procedure: p as i32,
            date_filed: date.into(),
            note: String::new(),
        }))
    }

    fn conclude(&mut self, id: &str, case: &str, r: pb::ChallengeResult, date: &str) -> u64 {
        self.push(Kind::ChallengeConcluded(pb::ChallengeConcluded {
            request_id: id.into(),
            case_id: case.into(),
            result: r as i32,
            date_concluded: date.into(),
            note: String::new(),
        }))
    }

    /// Every entry through the verifier (all rules), then the report.
    fn report(&self, year: i32) -> AnnualReport {
        let mut v = ChainVerifier::new(origin(), &[key(1).public_key()]);
        let mut recount = Recount::new(year, WorkCalendar::shipped().clone()).unwrap();
        for e in &self.log.entries {
            v.push(e.as_bytes().to_vec()).unwrap();
            recount.push(e.as_bytes().to_vec()).unwrap();
        }
        let report = recount.finish();
        assert_eq!(
            report.root,
            v.root().to_string(),
            "the report names the log's root"
        );
        report
    }
}

/// Indexes of the fixture's entries that the expected tables name.
struct Ix {
    reg_b: u64,
    pen_1: u64,
    pen_2: u64,
    fee: u64,
    r_old: u64,
    r_old_answer: u64,
    r1: u64,
    r1_answer: u64,
    r2_answer: u64,
    r3: u64,
    r3_answer: u64,
    r4: u64,
    r4_answer: u64,
    recon_filed: u64,
    recon_done: u64,
    suit_filed: u64,
    suit_done: u64,
}

fn fixture() -> (Fixture, Ix) {
    use pb::ApplicantCategory as A;
    use pb::Decision as D;
    use pb::Outcome as O;
    // A log that starts in 2025 (the shared fixture starts in 2026).
    let mut f = Fixture {
        log: TestLog {
            writer: gongkai_core::writer::LogWriter::new(origin(), key(1)),
            entries: Vec::new(),
            time: at("2025-06-01"),
        },
    };
    f.push(Kind::Genesis(pb::Genesis {
        department: "某某县财政局".into(),
        division_code: "510122".into(),
    }));
    f.define("regs", pb::ReportRow::NormativeDocument);
    f.define("penalties", pb::ReportRow::Penalty);
    f.define("fees", pb::ReportRow::Fee);
    f.define("news", pb::ReportRow::None);
    // 2025: a normative document, a request answered in 2025, one that
    // stays open into 2026.
    f.publish("reg-a", "regs", "2025-05-28", 0, &[]);
    let r_old = f.receive("r-old", "2025-06-01", A::NaturalPerson);
    f.receive("r-2025", "2025-06-01", A::CommercialEnterprise);
    f.on("2025-06-05");
    f.answer("r-2025", "2025-06-05", D::Unspecified, O::Disclosed);
    // 2026.
    f.on("2026-03-02");
    let reg_b = f.publish("reg-b", "regs", "2026-03-01", 0, &["reg-a"]);
    let pen_1 = f.publish("pen-1", "penalties", "2026-03-01", 3, &[]);
    let pen_2 = f.publish("pen-2", "penalties", "2026-03-01", 0, &[]);
    f.publish("pen-3", "penalties", "2026-03-01", 0, &[]);
    f.log.withdraw("pen-3");
    let fee = f.publish("fee-2026", "fees", "2026-03-01", 12_345_600, &[]);
    f.publish("news-1", "news", "2026-03-01", 7, &[]);
    let r_old_answer = f.answer("r-old", "2026-03-02", D::Refused, O::WithheldThirdParty);
    let r1 = f.receive("r1", "2026-03-02", A::ResearchInstitution);
    let r1_answer = f.answer("r1", "2026-03-02", D::Unspecified, O::Disclosed);
    f.receive("r2", "2026-03-02", A::NaturalPerson);
    // An answer written before outcomes existed: decision only.
    let r2_answer = f.answer("r2", "2026-03-02", D::Refused, O::Unspecified);
    let r3 = f.receive("r3", "2026-03-02", A::LegalServiceInstitution);
    let r4 = f.receive("r4", "2026-03-02", A::Unspecified);
    let r4_answer = f.answer("r4", "2026-03-02", D::AlreadyPublic, O::Unspecified);
    let recon_filed = f.file(
        "r-old",
        "复议-1",
        pb::ChallengeProcedure::Reconsideration,
        "2026-03-02",
    );
    let recon_done = f.conclude(
        "r-old",
        "复议-1",
        pb::ChallengeResult::Corrected,
        "2026-03-02",
    );
    let suit_filed = f.file(
        "r1",
        "(2026)行初12号",
        pb::ChallengeProcedure::Litigation,
        "2026-03-02",
    );
    // 2027: r3 answered late, the lawsuit ends.
    f.on("2027-01-05");
    let r3_answer = f.answer("r3", "2027-01-05", D::Unspecified, O::UnavailableNotHeld);
    let suit_done = f.conclude(
        "r1",
        "(2026)行初12号",
        pb::ChallengeResult::Upheld,
        "2027-01-05",
    );
    let ix = Ix {
        reg_b,
        pen_1,
        pen_2,
        fee,
        r_old,
        r_old_answer,
        r1,
        r1_answer,
        r2_answer,
        r3,
        r3_answer,
        r4,
        r4_answer,
        recon_filed,
        recon_done,
        suit_filed,
        suit_done,
    };
    (f, ix)
}

fn cell(r: &AnnualReport, id: &str) -> (u64, Vec<u64>) {
    let c = r.cell(id).unwrap_or_else(|| panic!("no cell {id}"));
    (c.value, c.entries.clone())
}

/// Every non-zero cell: (id, value).
fn nonzero(r: &AnnualReport) -> Vec<(String, u64)> {
    r.cells
        .iter()
        .filter(|c| c.value > 0)
        .map(|c| (c.id.clone(), c.value))
        .collect()
}

#[test]
fn the_2026_report_matches_the_hand_computed_tables() {
    let (f, ix) = fixture();
    let r = f.report(2026);
    assert_eq!(r.department, "某某县财政局");
    assert_eq!(r.size, f.log.entries.len() as u64);
    let expected: Vec<(&str, u64)> = vec![
        // 表二: reg-b issued, reg-a repealed by it, only reg-b in force;
        // 3 + 1 penalty decisions (pen-3 withdrawn); 12.3456 万元.
        ("t2.normative_document.issued", 1),
        ("t2.normative_document.repealed", 1),
        ("t2.normative_document.in_force", 1),
        ("t2.penalty.decisions", 4),
        ("t2.fee.amount", 12_345_600),
        // 表三.
        ("t3.new.natural_person", 1),
        ("t3.new.research_institution", 1),
        ("t3.new.legal_service_institution", 1),
        ("t3.new.unrecorded", 1),
        ("t3.new.total", 4),
        ("t3.carried_in.natural_person", 1),
        ("t3.carried_in.total", 1),
        ("t3.disclosed.research_institution", 1),
        ("t3.disclosed.unrecorded", 1),
        ("t3.disclosed.total", 2),
        ("t3.withheld_third_party.natural_person", 1),
        ("t3.withheld_third_party.total", 1),
        ("t3.withheld_unrecorded.natural_person", 1),
        ("t3.withheld_unrecorded.total", 1),
        ("t3.results_total.natural_person", 2),
        ("t3.results_total.research_institution", 1),
        ("t3.results_total.unrecorded", 1),
        ("t3.results_total.total", 4),
        ("t3.carried_out.legal_service_institution", 1),
        ("t3.carried_out.total", 1),
        // 表四: the reconsideration ended in 2026, the lawsuit did not.
        ("t4.reconsideration.corrected", 1),
        ("t4.reconsideration.total", 1),
        ("t4.litigation.pending", 1),
        ("t4.litigation.total", 1),
        // Annex: r-old answered in 2026 long after its deadline; r3 open
        // and past its deadline at the year's end.
        ("annex.late_answer", 1),
        ("annex.overdue_request", 1),
    ];
    let expected: Vec<(String, u64)> = expected.into_iter().map(|(k, v)| (k.into(), v)).collect();
    assert_eq!(nonzero(&r), expected);
    // The identity the national table states: 一 + 二 = 三 + 四.
    assert_eq!(
        r.value("t3.new.total") + r.value("t3.carried_in.total"),
        r.value("t3.results_total.total") + r.value("t3.carried_out.total")
    );
    // Provenance: each number names its entries.
    assert_eq!(cell(&r, "t2.normative_document.issued").1, vec![ix.reg_b]);
    assert_eq!(cell(&r, "t2.normative_document.repealed").1, vec![ix.reg_b]);
    assert_eq!(cell(&r, "t2.penalty.decisions").1, vec![ix.pen_1, ix.pen_2]);
    assert_eq!(cell(&r, "t2.fee.amount").1, vec![ix.fee]);
    assert_eq!(cell(&r, "t3.carried_in.total").1, vec![ix.r_old]);
    assert_eq!(cell(&r, "t3.new.research_institution").1, vec![ix.r1]);
    assert_eq!(cell(&r, "t3.new.unrecorded").1, vec![ix.r4]);
    assert_eq!(
        cell(&r, "t3.results_total.total").1,
        vec![ix.r_old_answer, ix.r1_answer, ix.r2_answer, ix.r4_answer]
    );
    assert_eq!(
        cell(&r, "t3.withheld_unrecorded.total").1,
        vec![ix.r2_answer]
    );
    assert_eq!(cell(&r, "t3.carried_out.total").1, vec![ix.r3]);
    assert_eq!(
        cell(&r, "t4.reconsideration.corrected").1,
        vec![ix.recon_filed, ix.recon_done]
    );
    assert_eq!(cell(&r, "t4.litigation.pending").1, vec![ix.suit_filed]);
    assert_eq!(cell(&r, "annex.late_answer").1, vec![ix.r_old_answer]);
    assert_eq!(cell(&r, "annex.overdue_request").1, vec![ix.r3]);
}

#[test]
fn what_2026_carries_out_2027_carries_in() {
    let (f, ix) = fixture();
    let y2026 = f.report(2026);
    let y2027 = f.report(2027);
    assert_eq!(
        cell(&y2026, "t3.carried_out.legal_service_institution"),
        cell(&y2027, "t3.carried_in.legal_service_institution")
    );
    assert_eq!(y2027.value("t3.new.total"), 0);
    assert_eq!(
        cell(&y2027, "t3.unavailable_not_held.legal_service_institution").1,
        vec![ix.r3_answer]
    );
    assert_eq!(y2027.value("t3.carried_out.total"), 0);
    // The lawsuit pending at the end of 2026 is counted again in 2027,
    // with its result; the reconsideration that ended in 2026 is not.
    assert_eq!(
        cell(&y2027, "t4.litigation.upheld").1,
        vec![ix.suit_filed, ix.suit_done]
    );
    assert_eq!(y2027.value("t4.reconsideration.total"), 0);
    // 2026's normative documents still in force at the end of 2027.
    assert_eq!(y2027.value("t2.normative_document.in_force"), 1);
    assert_eq!(y2027.value("t2.normative_document.issued"), 0);
    // A recount of the same log agrees, and a changed cell is named.
    assert!(y2026.differences(&f.report(2026)).is_empty());
    let mut forged = y2026.clone();
    for c in &mut forged.cells {
        if c.id == "t3.withheld_unrecorded.total" {
            c.value = 0;
        }
    }
    assert_eq!(
        forged.differences(&y2026),
        vec![("t3.withheld_unrecorded.total".to_owned(), 0, 1)]
    );
}

#[test]
fn case_rules() {
    let verify = |f: &Fixture| -> Result<(), Error> {
        let mut v = ChainVerifier::new(origin(), &[key(1).public_key()]);
        for e in &f.log.entries {
            v.push(e.as_bytes().to_vec())?;
        }
        Ok(())
    };
    assert!(verify(&fixture().0).is_ok());
    let rule = |add: &dyn Fn(&mut Fixture)| {
        let (mut f, _) = fixture();
        add(&mut f);
        match verify(&f) {
            Err(Error::RuleViolation { rule, .. }) => rule,
            other => panic!("{other:?}"),
        }
    };
    // The same case id twice on one request.
    assert_eq!(
        rule(&|f| {
            f.file(
                "r1",
                "(2026)行初12号",
                pb::ChallengeProcedure::Litigation,
                "2027-01-05",
            );
        }),
        "case-id-unique"
    );
    // A case on a request that does not exist.
    assert_eq!(
        rule(&|f| {
            f.file(
                "nope",
                "x",
                pb::ChallengeProcedure::Litigation,
                "2027-01-05",
            );
        }),
        "request-exists"
    );
    // Concluding twice, or a case never filed.
    assert_eq!(
        rule(&|f| {
            f.conclude("r-old", "复议-1", pb::ChallengeResult::Upheld, "2027-01-05");
        }),
        "case-open"
    );
    assert_eq!(
        rule(&|f| {
            f.conclude("r2", "复议-9", pb::ChallengeResult::Upheld, "2027-01-05");
        }),
        "case-exists"
    );
    // Filed before the request was received.
    assert_eq!(
        rule(&|f| {
            f.receive("r9", "2027-01-05", pb::ApplicantCategory::NaturalPerson);
            f.file(
                "r9",
                "y",
                pb::ChallengeProcedure::Reconsideration,
                "2027-01-04",
            );
        }),
        "date-order"
    );
}

/// The write policy `report-fields` (FORMAT.md § 7): a node refuses a new
/// request without its applicant category and a new answer without its
/// outcome, while the ledger's rules accept both (older logs stay valid).
#[test]
fn new_requests_and_answers_must_carry_what_the_report_counts() {
    use gongkai_core::catalog::Catalog;
    let (mut f, _) = fixture();
    let mut catalog = Catalog::new();
    for (i, e) in f.log.entries.iter().enumerate() {
        catalog
            .apply(&Event::decode(e.body(), i as u64).unwrap())
            .unwrap();
    }
    let cal = WorkCalendar::shipped();
    let last = |f: &Fixture| {
        let i = f.log.entries.len() - 1;
        Event::decode(f.log.entries[i].body(), i as u64).unwrap()
    };
    let refused = |catalog: &Catalog, e: &Event, field: &str| match catalog
        .check_write_policy(std::slice::from_ref(e), cal)
    {
        Err(Error::RuleViolation {
            rule: "report-fields",
            detail,
            ..
        }) => assert!(detail.contains(field), "{detail}"),
        other => panic!("{other:?}"),
    };
    f.receive("new-1", "2027-01-05", pb::ApplicantCategory::Unspecified);
    let e = last(&f);
    refused(&catalog, &e, "request_received.applicant");
    catalog.apply(&e).unwrap();
    f.answer(
        "new-1",
        "2027-01-05",
        pb::Decision::Disclosed,
        pb::Outcome::Unspecified,
    );
    let e = last(&f);
    refused(&catalog, &e, "request_answered.outcome");
    catalog.apply(&e).unwrap();
    f.receive(
        "new-2",
        "2027-01-05",
        pb::ApplicantCategory::OtherOrganization,
    );
    let e = last(&f);
    catalog
        .check_write_policy(std::slice::from_ref(&e), cal)
        .unwrap();
}

/// Field rules of the new fields (FORMAT.md § 4.2): an answer needs a
/// decision or an outcome, the two must agree, withheld outcomes need a
/// legal basis, enum values must be defined.
#[test]
fn outcome_field_rules() {
    let check = |decision: i32, outcome: i32, basis: &str| {
        let body = pb::EventBody {
            origin: common::ORIGIN.into(),
            index: 1,
            prev_hash: vec![0; 32],
            time_ms: at("2026-03-02"),
            signer: vec![1; 32],
            kind: Some(Kind::RequestAnswered(pb::RequestAnswered {
                request_id: "r".into(),
                date_answered: "2026-03-02".into(),
                decision,
                outcome,
                legal_basis: basis.into(),
                ..Default::default()
            })),
        };
        Event::from_message(body, 1)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    use pb::Decision as D;
    use pb::Outcome as O;
    assert!(check(0, O::Disclosed as i32, "").is_ok());
    assert!(check(D::Disclosed as i32, 0, "").is_ok());
    assert!(check(0, 0, "").unwrap_err().contains("must be set"));
    assert!(
        check(D::Disclosed as i32, O::PartlyDisclosed as i32, "x")
            .unwrap_err()
            .contains("does not agree")
    );
    assert!(
        check(0, O::WithheldStateSecret as i32, "")
            .unwrap_err()
            .contains("legal_basis")
    );
    assert!(check(0, O::WithheldStateSecret as i32, "条例第十四条").is_ok());
    assert!(
        check(0, 22, "x")
            .unwrap_err()
            .contains("not a defined value")
    );
}
