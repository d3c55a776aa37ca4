//! Shared fixtures: deterministic keys and a small but complete sample log.
#![allow(dead_code)]

use gongkai_core::entry::Entry;
use gongkai_core::event::{Kind, pb};
use gongkai_core::keys::SigningKey;
use gongkai_core::types::{ContentRef, Origin};
use gongkai_core::writer::LogWriter;

pub const ORIGIN: &str = "gongkai.example/510122/finance";
/// 2026-03-02 09:00 CST.
pub const T0: u64 = 1_772_413_200_000;
pub const DAY_MS: u64 = 86_400_000;

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_seed([n; 32])
}

pub fn origin() -> Origin {
    Origin::new(ORIGIN).unwrap()
}

pub fn content(text: &str) -> pb::ContentRef {
    let c = ContentRef::commit(&[7; 32], text.as_bytes(), "text/plain").unwrap();
    gongkai_core::event::content_message(&c)
}

pub fn matter(periodicity: pb::Periodicity, periods_from: &str) -> pb::Matter {
    pb::Matter {
        report_row: 0,
        category: "财政预决算".into(),
        level1: "财政预决算".into(),
        level2: "部门预算".into(),
        elements: vec!["预算报告".into(), "预算表".into()],
        legal_basis: "《中华人民共和国预算法》第十四条".into(),
        deadline_working_days: 20,
        responsible_body: "县财政局".into(),
        channels: vec!["政府网站".into()],
        audience: pb::Audience::Public as i32,
        audience_group: String::new(),
        mode: pb::DisclosureMode::Proactive as i32,
        periodicity: periodicity as i32,
        periods_from: periods_from.into(),
    }
}

/// A log under construction, keeping every entry.
pub struct TestLog {
    pub writer: LogWriter,
    pub entries: Vec<Entry>,
    pub time: u64,
}

impl TestLog {
    pub fn new(k: SigningKey) -> TestLog {
        let mut log = TestLog {
            writer: LogWriter::new(origin(), k),
            entries: Vec::new(),
            time: T0,
        };
        log.push(Kind::Genesis(pb::Genesis {
            department: "某某县财政局".into(),
            division_code: "510122".into(),
        }));
        log
    }

    pub fn push(&mut self, kind: Kind) -> &Entry {
        self.time += 60_000;
        let e = self.writer.append(kind, self.time).unwrap();
        self.entries.push(e);
        self.entries.last().unwrap()
    }

    pub fn bytes(&self) -> Vec<Vec<u8>> {
        self.entries.iter().map(|e| e.as_bytes().to_vec()).collect()
    }

    pub fn define(&mut self, id: &str, periodicity: pb::Periodicity, from: &str) {
        self.push(Kind::MatterDefined(pb::MatterDefined {
            matter_id: id.into(),
            matter: Some(matter(periodicity, from)),
        }));
    }

    pub fn publish(&mut self, item: &str, matter: &str, period: &str) {
        self.push(Kind::Published(pb::Published {
            quantity: 0,
            item_id: item.into(),
            matter_id: matter.into(),
            title: format!("{item} 的标题"),
            content: Some(content(item)),
            date_formed: "2026-03-01".into(),
            legal_basis: String::new(),
            related: vec![],
            period: period.into(),
            imported: false,
        }));
    }

    pub fn amend(&mut self, item: &str, text: &str) {
        self.push(Kind::Amended(pb::Amended {
            quantity: 0,
            item_id: item.into(),
            title: format!("{item} 更正"),
            content: Some(content(text)),
            date_changed: "2026-03-02".into(),
            reason: "数据有误".into(),
        }));
    }

    pub fn withdraw(&mut self, item: &str) {
        self.push(Kind::Withdrawn(pb::Withdrawn {
            item_id: item.into(),
            reason: "信息已失效".into(),
            legal_basis: "《政府信息公开条例》第二十六条".into(),
        }));
    }
}

/// A small log that uses every event kind, including a key rotation.
/// Returns the log and the key in force at its end.
pub fn sample_log() -> TestLog {
    let mut log = TestLog::new(key(1));
    log.define("budget", pb::Periodicity::None, "");
    log.define("allowance", pb::Periodicity::Quarterly, "2026-01-01");
    log.publish("budget-2026", "budget", "");
    log.publish("allowance-2026-q1", "allowance", "2026-Q1");
    log.amend("budget-2026", "budget v2");
    log.push(Kind::Redacted(pb::Redacted {
        item_id: "allowance-2026-q1".into(),
        content_digest: content("allowance-2026-q1").digest,
        reason: "含个人信息".into(),
        legal_basis: "《政府信息公开条例》第十五条".into(),
    }));
    log.withdraw("budget-2026");
    log.push(Kind::MatterChanged(pb::MatterChanged {
        matter_id: "budget".into(),
        matter: Some(matter(pb::Periodicity::Yearly, "2026-01-01")),
        reason: "改为按年度公开".into(),
    }));
    log.push(Kind::RequestReceived(pb::RequestReceived {
        applicant: 0,
        request_id: "req-1".into(),
        date_received: "2026-03-02".into(),
        subject: "请求公开2025年部门决算".into(),
    }));
    log.push(Kind::RequestClarification(pb::RequestClarification {
        request_id: "req-1".into(),
        stage: pb::ClarificationStage::Asked as i32,
        date: "2026-03-02".into(),
        note: String::new(),
    }));
    log.push(Kind::RequestClarification(pb::RequestClarification {
        request_id: "req-1".into(),
        stage: pb::ClarificationStage::Corrected as i32,
        date: "2026-03-02".into(),
        note: String::new(),
    }));
    log.push(Kind::ThirdPartyConsultation(pb::ThirdPartyConsultation {
        request_id: "req-1".into(),
        stage: pb::ConsultationStage::Started as i32,
        date: "2026-03-02".into(),
        note: "征求第三方意见".into(),
    }));
    log.push(Kind::ThirdPartyConsultation(pb::ThirdPartyConsultation {
        request_id: "req-1".into(),
        stage: pb::ConsultationStage::Ended as i32,
        date: "2026-03-02".into(),
        note: String::new(),
    }));
    log.push(Kind::RequestExtended(pb::RequestExtended {
        request_id: "req-1".into(),
        date: "2026-03-02".into(),
        approved_by: "局长".into(),
        reason: "需调取档案".into(),
    }));
    log.writer
        .rotate(key(2), "年度轮换", log.time + 1)
        .map(|e| log.entries.push(e))
        .unwrap();
    log.push(Kind::RequestAnswered(pb::RequestAnswered {
        outcome: 0,
        request_id: "req-1".into(),
        date_answered: "2026-03-02".into(),
        decision: pb::Decision::Disclosed as i32,
        legal_basis: String::new(),
        content: Some(content("answer")),
        items: vec![],
    }));
    log.push(Kind::MatterRetired(pb::MatterRetired {
        matter_id: "allowance".into(),
        reason: "职能划转".into(),
        legal_basis: String::new(),
    }));
    // The annual report's fields (FORMAT.md § 22): an applicant category,
    // an outcome with its decision, a 复议 filed and concluded.
    log.push(Kind::RequestReceived(pb::RequestReceived {
        request_id: "req-2".into(),
        date_received: "2026-03-02".into(),
        subject: "请求公开某项目评审材料".into(),
        applicant: pb::ApplicantCategory::LegalServiceInstitution as i32,
    }));
    log.push(Kind::RequestAnswered(pb::RequestAnswered {
        request_id: "req-2".into(),
        date_answered: "2026-03-02".into(),
        decision: pb::Decision::Refused as i32,
        legal_basis: "《政府信息公开条例》第十五条".into(),
        outcome: pb::Outcome::WithheldThirdParty as i32,
        ..Default::default()
    }));
    log.push(Kind::ChallengeFiled(pb::ChallengeFiled {
        request_id: "req-2".into(),
        case_id: "复议-1".into(),
        procedure: pb::ChallengeProcedure::Reconsideration as i32,
        date_filed: "2026-03-02".into(),
        note: String::new(),
    }));
    log.push(Kind::ChallengeConcluded(pb::ChallengeConcluded {
        request_id: "req-2".into(),
        case_id: "复议-1".into(),
        result: pb::ChallengeResult::Corrected as i32,
        date_concluded: "2026-03-02".into(),
        note: "责令重新答复".into(),
    }));
    log
}
