//! The demo county's sample disclosures: for each department its standard
//! catalog of matters and a realistic set of events — budget and final
//! accounts, a tender and its award, a subsistence-allowance (低保) list for
//! one village, an approval procedure with its fees, an amendment with its
//! reason, a withdrawal with its legal basis, a redaction of personal data,
//! a request answered late, and a quarterly matter with a missing quarter.
//!
//! Seeding is idempotent: every write carries a fixed idempotency key, and
//! content is committed under a salt derived from the demo's secret, so a
//! second run (or a run after a crash half-way) replays the original
//! receipts instead of recording anything twice. Dates are relative to the
//! day the demo was first set up (kept in the demo directory), so re-runs on
//! later days send exactly the same requests.

use anyhow::{Context as _, Result};
use gongkai_core::date::Date;
use gongkai_core::event::pb;
use gongkai_core::types::ContentRef;
use gongkai_proto::DisclosureNodeClient;
use gongkai_proto::v1::{self, write_event::Kind as W};
use tonic::Request;
use tonic::transport::Channel;

/// One department of the demo county.
#[derive(Clone, Copy, Debug)]
pub struct Department {
    /// Last segment of its origin.
    pub slug: &'static str,
    /// Display name.
    pub name: &'static str,
}

/// The departments, in order; `gongkai demo --departments N` takes the first N.
pub const DEPARTMENTS: &[Department] = &[
    Department {
        slug: "finance",
        name: "某某县财政局",
    },
    Department {
        slug: "education",
        name: "某某县教育局",
    },
    Department {
        slug: "civil-affairs",
        name: "某某县民政局",
    },
    Department {
        slug: "health",
        name: "某某县卫生健康局",
    },
    Department {
        slug: "housing",
        name: "某某县住房和城乡建设局",
    },
    Department {
        slug: "natural-resources",
        name: "某某县自然资源局",
    },
    Department {
        slug: "transport",
        name: "某某县交通运输局",
    },
    Department {
        slug: "agriculture",
        name: "某某县农业农村局",
    },
    Department {
        slug: "market",
        name: "某某县市场监督管理局",
    },
    Department {
        slug: "human-resources",
        name: "某某县人力资源和社会保障局",
    },
];

/// A connection to one department node, with its writer token.
pub struct Writer {
    pub(crate) client: DisclosureNodeClient<Channel>,
    pub(crate) token: String,
    /// Secret for deterministic salts (`<demo dir>/secret`).
    pub(crate) secret: [u8; 32],
    /// The day the demo was set up.
    pub(crate) day0: Date,
    /// Prefix of idempotency keys.
    pub(crate) prefix: String,
}

impl Writer {
    fn date(&self, days_before: i64) -> String {
        self.day0
            .add_days(-days_before)
            .map_or_else(|_| self.day0.to_string(), |d| d.to_string())
    }

    fn request<T>(&self, message: T) -> Result<Request<T>> {
        let mut r = Request::new(message);
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token)
                .parse()
                .context("token is not a valid header value")?,
        );
        Ok(r)
    }

    /// The salt of document `name`, derived from the secret, so its
    /// commitment is the same on every run.
    fn salt(&self, name: &str) -> [u8; 32] {
        *blake3::keyed_hash(&self.secret, format!("{}/{name}", self.prefix).as_bytes()).as_bytes()
    }

    /// Uploads `text` as document `name`.
    async fn upload(&mut self, name: &str, text: &str, media_type: &str) -> Result<pb::ContentRef> {
        let salt = self.salt(name);
        let commitment = ContentRef::commit(&salt, text.as_bytes(), media_type)?;
        let parts = vec![
            v1::UploadContentRequest {
                part: Some(v1::upload_content_request::Part::Start(v1::UploadStart {
                    media_type: media_type.into(),
                    length: text.len() as u64,
                    salt: salt.to_vec(),
                    expected_digest: commitment.digest().0.to_vec(),
                })),
            },
            v1::UploadContentRequest {
                part: Some(v1::upload_content_request::Part::Chunk(
                    text.as_bytes().to_vec(),
                )),
            },
        ];
        let req = self.request(tokio_stream::iter(parts))?;
        let out = self
            .client
            .upload_content(req)
            .await
            .with_context(|| format!("upload {name}"))?
            .into_inner();
        out.content.context("the node answered no commitment")
    }

    /// Appends one event under a fixed idempotency key.
    async fn append(&mut self, key: &str, kind: W) -> Result<bool> {
        let req = self.request(v1::AppendRequest {
            idempotency_key: format!("{}/{key}", self.prefix),
            event: Some(v1::WriteEvent { kind: Some(kind) }),
        })?;
        let out = self
            .client
            .append(req)
            .await
            .with_context(|| format!("append {key}"))?
            .into_inner();
        Ok(out.replayed)
    }

    async fn publish(
        &mut self,
        item: &str,
        matter: &str,
        title: &str,
        text: &str,
        formed: String,
        extra: impl FnOnce(&mut pb::Published),
    ) -> Result<bool> {
        let content = self.upload(item, text, "text/plain").await?;
        let mut p = pb::Published {
            item_id: item.into(),
            matter_id: matter.into(),
            title: title.into(),
            content: Some(content),
            date_formed: formed,
            legal_basis: "《中华人民共和国政府信息公开条例》第二十条".into(),
            ..Default::default()
        };
        extra(&mut p);
        self.append(&format!("publish/{item}"), W::Published(p))
            .await
    }

    async fn define(&mut self, id: &str, m: pb::Matter) -> Result<bool> {
        self.append(
            &format!("matter/{id}"),
            W::MatterDefined(pb::MatterDefined {
                matter_id: id.into(),
                matter: Some(m),
            }),
        )
        .await
    }
}

fn matter(category: &str, level1: &str, level2: &str, days: u32) -> pb::Matter {
    pb::Matter {
        responsible_body: "本部门".into(),
        category: category.into(),
        level1: level1.into(),
        level2: level2.into(),
        elements: vec!["全文".into()],
        legal_basis: "《中华人民共和国政府信息公开条例》第二十条".into(),
        deadline_working_days: days,
        channels: vec!["县政府门户网站".into()],
        audience: pb::Audience::Public as i32,
        mode: pb::DisclosureMode::Proactive as i32,
        ..Default::default()
    }
}

/// Every result of table 三 (FORMAT.md § 22.2), with the legal basis it
/// cites: the annual report sample answers one request with each.
const OUTCOMES: &[(pb::Outcome, &str)] = &[
    (pb::Outcome::Disclosed, "第三十六条第（二）项"),
    (pb::Outcome::PartlyDisclosed, "第三十七条"),
    (pb::Outcome::WithheldStateSecret, "第十四条"),
    (pb::Outcome::WithheldProhibitedByLaw, "第十四条"),
    (pb::Outcome::WithheldSecurityStability, "第十四条"),
    (pb::Outcome::WithheldThirdParty, "第十五条"),
    (pb::Outcome::WithheldInternalAffairs, "第十六条第一款"),
    (pb::Outcome::WithheldProcessInformation, "第十六条第二款"),
    (pb::Outcome::WithheldEnforcementFile, "第十六条第二款"),
    (
        pb::Outcome::WithheldAdministrativeQuery,
        "第三十六条第（七）项",
    ),
    (pb::Outcome::UnavailableNotHeld, "第三十六条第（四）项"),
    (pb::Outcome::UnavailableNeedsCreation, "第三十八条"),
    (pb::Outcome::UnavailableStillUnclear, "第三十条"),
    (pb::Outcome::NotProcessedPetition, "第三十九条第一款"),
    (pb::Outcome::NotProcessedRepeat, "第三十六条第（六）项"),
    (pb::Outcome::NotProcessedPublication, "第三十九条第二款"),
    (pb::Outcome::NotProcessedExcessive, "第三十五条"),
    (pb::Outcome::NotProcessedConfirmation, "第三十九条第二款"),
    (pb::Outcome::OtherNotCorrected, "第三十条"),
    (pb::Outcome::OtherFeeUnpaid, "第四十二条"),
    (pb::Outcome::Other, "第三十六条"),
];

const APPLICANTS: &[pb::ApplicantCategory] = &[
    pb::ApplicantCategory::NaturalPerson,
    pb::ApplicantCategory::CommercialEnterprise,
    pb::ApplicantCategory::ResearchInstitution,
    pb::ApplicantCategory::SocialWelfareOrganization,
    pb::ApplicantCategory::LegalServiceInstitution,
    pb::ApplicantCategory::OtherOrganization,
];

impl Writer {
    /// `date(days_before)`, but never before 1 January of the set-up year,
    /// so the annual report sample stays in one year whatever day it runs.
    fn this_year(&self, days_before: i64) -> String {
        let first = Date::new(self.day0.year(), 1, 1).unwrap_or(self.day0);
        self.day0
            .add_days(-days_before)
            .map_or(first, |d| d.max(first))
            .to_string()
    }
}

/// The finance department's sample for the annual report (FORMAT.md § 22):
/// a request answered with every result of table 三, from every kind of
/// applicant; one carried over from last year and one still open; a
/// 复议 and two 诉讼; normative documents (one repealing another), penalty
/// decisions and fees for table 二. Returns how many writes were new.
async fn annual_sample(w: &mut Writer) -> Result<usize> {
    let mut fresh = 0;
    let mut count = |replayed: bool| fresh += usize::from(!replayed);
    let basis = |article: &str| format!("《中华人民共和国政府信息公开条例》{article}");
    // Table 二.
    for (id, row, level2) in [
        (
            "normative-docs",
            pb::ReportRow::NormativeDocument,
            "行政规范性文件",
        ),
        ("penalties", pb::ReportRow::Penalty, "行政处罚决定"),
        ("fees", pb::ReportRow::Fee, "行政事业性收费"),
    ] {
        let mut m = matter("财政管理", "财政管理", level2, 20);
        m.report_row = row as i32;
        count(w.define(id, m).await?);
    }
    count(
        w.publish(
            "ndoc-1",
            "normative-docs",
            "某某县财政专项资金管理办法",
            "某某县财政专项资金管理办法（全文）",
            w.this_year(45),
            |_| {},
        )
        .await?,
    );
    count(
        w.publish(
            "ndoc-2",
            "normative-docs",
            "某某县财政专项资金管理办法（修订）",
            "某某县财政专项资金管理办法（修订，原办法同时废止）",
            w.this_year(30),
            |p| {
                p.related = vec![pb::ItemRef {
                    origin: String::new(),
                    item_id: "ndoc-1".into(),
                    relation: pb::Relation::Repeals as i32,
                }];
            },
        )
        .await?,
    );
    count(
        w.publish(
            "penalties-batch-1",
            "penalties",
            "行政处罚决定公示（第一批）",
            "5 件行政处罚决定书",
            w.this_year(28),
            |p| p.quantity = 5,
        )
        .await?,
    );
    count(
        w.publish(
            "fees-year",
            "fees",
            "行政事业性收费情况",
            "本年收费 3.4567 万元",
            w.this_year(15),
            |p| p.quantity = 3_456_700,
        )
        .await?,
    );
    // Table 三: one request per result.
    for (i, (outcome, article)) in OUTCOMES.iter().enumerate() {
        let id = format!("ar-{:02}", i + 1);
        let days = 40 - i64::try_from(i).unwrap_or(0);
        count(
            w.append(
                &format!("annual/receive/{id}"),
                W::RequestReceived(pb::RequestReceived {
                    request_id: id.clone(),
                    date_received: w.this_year(days),
                    subject: format!("申请公开财政信息（样例第 {} 件）", i + 1),
                    applicant: APPLICANTS[i % APPLICANTS.len()] as i32,
                }),
            )
            .await?,
        );
        count(
            w.append(
                &format!("annual/answer/{id}"),
                W::RequestAnswered(pb::RequestAnswered {
                    request_id: id,
                    date_answered: w.this_year(days - 5),
                    outcome: *outcome as i32,
                    legal_basis: basis(article),
                    ..Default::default()
                }),
            )
            .await?,
        );
    }
    // Carried in from last year, and carried to next year.
    let last_year =
        Date::new(w.day0.year() - 1, 12, 28).map_or_else(|_| w.date(30), |d| d.to_string());
    count(
        w.append(
            "annual/receive/carried-in",
            W::RequestReceived(pb::RequestReceived {
                request_id: "ar-carried-in".into(),
                date_received: last_year,
                subject: "申请公开上年度专项资金拨付明细".into(),
                applicant: pb::ApplicantCategory::NaturalPerson as i32,
            }),
        )
        .await?,
    );
    count(
        w.append(
            "annual/answer/carried-in",
            W::RequestAnswered(pb::RequestAnswered {
                request_id: "ar-carried-in".into(),
                // 1 January of this year (the earliest date this_year gives).
                date_answered: w.this_year(366),
                outcome: pb::Outcome::Disclosed as i32,
                legal_basis: basis("第三十六条"),
                ..Default::default()
            }),
        )
        .await?,
    );
    count(
        w.append(
            "annual/receive/open",
            W::RequestReceived(pb::RequestReceived {
                request_id: "ar-open".into(),
                date_received: w.date(1),
                subject: "申请公开本月专项资金拨付进度".into(),
                applicant: pb::ApplicantCategory::CommercialEnterprise as i32,
            }),
        )
        .await?,
    );
    // Table 四: a 复议 upheld, a lawsuit pending, one after 复议 corrected.
    for (request, case, procedure, filed, result) in [
        (
            "ar-03",
            "复议〔样例〕1号",
            pb::ChallengeProcedure::Reconsideration,
            20,
            Some(pb::ChallengeResult::Upheld),
        ),
        (
            "ar-06",
            "（样例）行初1号",
            pb::ChallengeProcedure::Litigation,
            15,
            None,
        ),
        (
            "ar-04",
            "（样例）行初2号",
            pb::ChallengeProcedure::LitigationAfterReconsideration,
            18,
            Some(pb::ChallengeResult::Corrected),
        ),
    ] {
        count(
            w.append(
                &format!("annual/challenge/{case}"),
                W::ChallengeFiled(pb::ChallengeFiled {
                    request_id: request.into(),
                    case_id: case.into(),
                    procedure: procedure as i32,
                    date_filed: w.this_year(filed),
                    note: String::new(),
                }),
            )
            .await?,
        );
        if let Some(result) = result {
            count(
                w.append(
                    &format!("annual/concluded/{case}"),
                    W::ChallengeConcluded(pb::ChallengeConcluded {
                        request_id: request.into(),
                        case_id: case.into(),
                        result: result as i32,
                        date_concluded: w.this_year(filed - 10),
                        note: String::new(),
                    }),
                )
                .await?,
            );
        }
    }
    Ok(fresh)
}

/// Seeds one department. Returns how many writes were new (0 on a re-run).
///
/// # Errors
/// The node refused a write or could not be reached.
pub async fn seed(w: &mut Writer, dept: &Department) -> Result<usize> {
    let mut fresh = 0;
    let mut count = |replayed: bool| fresh += usize::from(!replayed);
    let name = dept.name;
    // Every department: budget and final accounts (yearly), with an
    // amendment, and a request answered within the deadline.
    let mut budget = matter("财政预决算", "部门预决算", "部门预算", 20);
    budget.responsible_body = name.into();
    budget.periodicity = pb::Periodicity::Yearly as i32;
    budget.periods_from = "2025-01-01".into();
    count(w.define("budget", budget).await?);
    let mut accounts = matter("财政预决算", "部门预决算", "部门决算", 20);
    accounts.responsible_body = name.into();
    count(w.define("final-accounts", accounts).await?);
    let day = w.date(0);
    count(
        w.publish(
            "budget-2026",
            "budget",
            "2026年部门预算",
            &format!("{name}2026年部门预算\n一般公共预算支出 1,234.56 万元。"),
            w.date(10),
            |p| p.period = "2026".into(),
        )
        .await?,
    );
    let corrected = w
        .upload(
            "budget-2026-v2",
            &format!("{name}2026年部门预算（更正）\n一般公共预算支出 1,243.56 万元。"),
            "text/plain",
        )
        .await?;
    let changed = w.date(2);
    count(
        w.append(
            "amend/budget-2026",
            W::Amended(pb::Amended {
                quantity: 0,
                item_id: "budget-2026".into(),
                title: "2026年部门预算（更正）".into(),
                content: Some(corrected),
                date_changed: changed,
                reason: "表3“一般公共预算支出”数字录入错误，更正为1,243.56万元".into(),
            }),
        )
        .await?,
    );
    count(
        w.publish(
            "accounts-2025",
            "final-accounts",
            "2025年部门决算",
            &format!("{name}2025年部门决算"),
            w.date(30),
            |_| {},
        )
        .await?,
    );
    count(
        w.append(
            "request/r1",
            W::RequestReceived(pb::RequestReceived {
                applicant: pb::ApplicantCategory::NaturalPerson as i32,
                request_id: "2026-001".into(),
                date_received: w.date(12),
                subject: "申请公开2025年“三公”经费支出明细".into(),
            }),
        )
        .await?,
    );
    count(
        w.append(
            "answer/r1",
            W::RequestAnswered(pb::RequestAnswered {
                request_id: "2026-001".into(),
                date_answered: day.clone(),
                decision: pb::Decision::Disclosed as i32,
                outcome: pb::Outcome::Disclosed as i32,
                legal_basis: "《中华人民共和国政府信息公开条例》第三十六条".into(),
                ..Default::default()
            }),
        )
        .await?,
    );

    match dept.slug {
        "finance" => {
            // A withdrawal with its legal basis, and a redaction.
            count(
                w.publish(
                    "subsidy-notice",
                    "final-accounts",
                    "关于2025年度财政补助资金分配的说明",
                    "财政补助资金分配说明（含联系人手机号 139xxxx0000）",
                    w.date(20),
                    |_| {},
                )
                .await?,
            );
            let withdrawn = w
                .publish(
                    "draft-notice",
                    "final-accounts",
                    "关于调整部分收费标准的通知（征求意见稿）",
                    "征求意见稿全文",
                    w.date(25),
                    |_| {},
                )
                .await?;
            count(withdrawn);
            count(
                w.append(
                    "withdraw/draft-notice",
                    W::Withdrawn(pb::Withdrawn {
                        item_id: "draft-notice".into(),
                        reason: "误将内部征求意见稿公开，该稿不属于主动公开范围".into(),
                        legal_basis: "《中华人民共和国政府信息公开条例》第十六条".into(),
                    }),
                )
                .await?,
            );
            // The commitment the publication above made (no upload needed).
            let digest = ContentRef::commit(
                &w.salt("subsidy-notice"),
                "财政补助资金分配说明（含联系人手机号 139xxxx0000）".as_bytes(),
                "text/plain",
            )?
            .digest()
            .0
            .to_vec();
            count(
                w.append(
                    "redact/subsidy-notice",
                    W::Redacted(pb::Redacted {
                        item_id: "subsidy-notice".into(),
                        content_digest: digest,
                        reason: "附件含个人手机号码".into(),
                        legal_basis: "《中华人民共和国个人信息保护法》第十三条".into(),
                    }),
                )
                .await?,
            );
            fresh += annual_sample(w).await?;
        }
        "education" => {
            // A tender and its award; a quarterly matter with a missing quarter.
            count(
                w.define(
                    "procurement",
                    matter("政府采购", "采购项目", "招标公告与中标结果", 5),
                )
                .await?,
            );
            count(
                w.publish(
                    "tender-2026-07",
                    "procurement",
                    "某某县中小学课桌椅采购项目招标公告",
                    "采购需求：课桌椅 2,000 套；预算金额 160 万元。",
                    w.date(40),
                    |_| {},
                )
                .await?,
            );
            count(
                w.publish(
                    "award-2026-07",
                    "procurement",
                    "某某县中小学课桌椅采购项目中标结果公告",
                    "中标供应商：某某教学设备有限公司；中标金额 152.8 万元。",
                    w.date(3),
                    |p| {
                        p.related = vec![pb::ItemRef {
                            origin: String::new(),
                            item_id: "tender-2026-07".into(),
                            relation: pb::Relation::Draft as i32,
                        }]
                    },
                )
                .await?,
            );
            let mut quarterly = matter("教育经费", "教育经费", "教育经费季度执行情况", 20);
            quarterly.periodicity = pb::Periodicity::Quarterly as i32;
            quarterly.periods_from = "2026-01-01".into();
            count(w.define("edu-funds", quarterly).await?);
            for (q, formed) in [("2026-Q1", "2026-04-03"), ("2026-Q2", "2026-07-03")] {
                count(
                    w.publish(
                        &format!("edu-funds-{q}"),
                        "edu-funds",
                        &format!("{q} 教育经费执行情况"),
                        &format!("{q} 教育经费执行情况表"),
                        formed.into(),
                        |p| p.period = q.into(),
                    )
                    .await?,
                );
            }
        }
        "civil-affairs" => {
            // The 低保 list of one village (restricted content), an approval
            // procedure with fees, and a request answered late.
            let mut dibao = matter("社会救助", "最低生活保障", "低保对象名单及发放情况", 20);
            dibao.audience = pb::Audience::Group as i32;
            dibao.audience_group = "某某镇某某村村民".into();
            count(w.define("dibao", dibao).await?);
            count(
                w.publish(
                    "dibao-2026-10",
                    "dibao",
                    "某某村2026年10月低保发放名单",
                    "户主 张某某 保障人数 3 发放金额 1,860 元\n户主 李某某 保障人数 1 发放金额 620 元",
                    w.date(25),
                    |_| {},
                )
                .await?,
            );
            count(
                w.define(
                    "licensing",
                    matter("行政许可", "行政许可事项", "办事指南及收费标准", 20),
                )
                .await?,
            );
            count(
                w.publish(
                    "guide-charity-registration",
                    "licensing",
                    "社会团体成立登记办事指南（含收费标准）",
                    "办理依据：《社会团体登记管理条例》\n办理时限：20个工作日\n收费标准：不收费",
                    w.date(15),
                    |_| {},
                )
                .await?,
            );
            count(
                w.append(
                    "request/r2",
                    W::RequestReceived(pb::RequestReceived {
                        applicant: pb::ApplicantCategory::NaturalPerson as i32,
                        request_id: "2026-017".into(),
                        date_received: w.date(60),
                        subject: "申请公开本村2025年度低保资金发放总额".into(),
                    }),
                )
                .await?,
            );
            count(
                w.append(
                    "answer/r2",
                    W::RequestAnswered(pb::RequestAnswered {
                        request_id: "2026-017".into(),
                        date_answered: day.clone(),
                        decision: pb::Decision::PartlyDisclosed as i32,
                        outcome: pb::Outcome::PartlyDisclosed as i32,
                        legal_basis: "《中华人民共和国政府信息公开条例》第三十七条".into(),
                        ..Default::default()
                    }),
                )
                .await?,
            );
        }
        _ => {}
    }
    Ok(fresh)
}
