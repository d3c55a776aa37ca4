//! The catalog rules read only the records [`Touched`] names. A node keeps
//! most of its catalog in its projection and loads just those records into
//! a small working catalog before each write; this checks, over random
//! event sequences full of rule violations, that the working catalog gives
//! the same verdict and the same resulting records as the whole catalog.

mod common;

use common::{TestLog, content, key, matter};
use gongkai_core::Error;
use gongkai_core::catalog::{Catalog, Touched};
use gongkai_core::event::{Event, Kind, pb};
use proptest::prelude::*;

const ITEMS: [&str; 4] = ["a", "b", "c", "d"];
const MATTERS: [&str; 3] = ["m", "q", "gone"];
const REQUESTS: [&str; 2] = ["r1", "r2"];
const DATES: [&str; 4] = ["2026-02-27", "2026-03-02", "2026-03-20", "2026-05-06"];

/// One event, chosen from small pools of ids so that duplicates, unknown
/// ids and out-of-order steps are common.
fn kind() -> impl Strategy<Value = Kind> {
    let item = prop::sample::select(&ITEMS[..]);
    let matter_id = prop::sample::select(&MATTERS[..]);
    let request = prop::sample::select(&REQUESTS[..]);
    let date = prop::sample::select(&DATES[..]);
    // Weighted so that publications often meet an active matter and an
    // existing related item, and amendments an existing item.
    prop_oneof![
        2 => (matter_id.clone(), any::<bool>()).prop_map(|(m, periodic)| {
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: m.into(),
                matter: Some(periodicity(periodic)),
            })
        }),
        1 => (matter_id.clone(), any::<bool>()).prop_map(|(m, periodic)| {
            Kind::MatterChanged(pb::MatterChanged {
                matter_id: m.into(),
                matter: Some(periodicity(periodic)),
                reason: "改".into(),
            })
        }),
        1 => matter_id.clone().prop_map(|m| Kind::MatterRetired(pb::MatterRetired {
            matter_id: m.into(),
            reason: "撤".into(),
            legal_basis: String::new(),
        })),
        6 => (
            item.clone(),
            matter_id,
            prop::option::of(item.clone()),
            any::<bool>(),
            date.clone()
        )
            .prop_map(|(i, m, related, period, formed)| {
                Kind::Published(pb::Published { quantity: 0,
                    item_id: i.into(),
                    matter_id: m.into(),
                    title: "t".into(),
                    content: Some(content(i)),
                    date_formed: formed.into(),
                    legal_basis: String::new(),
                    related: related
                        .map(|r| pb::ItemRef {
                            origin: String::new(),
                            item_id: r.into(),
                            relation: pb::Relation::Related as i32,
                        })
                        .into_iter()
                        .collect(),
                    period: if period { "2026-Q1".into() } else { String::new() },
                    imported: false,
                })
            }),
        2 => (item.clone(), date.clone(), any::<bool>()).prop_map(|(i, d, same)| {
            Kind::Amended(pb::Amended { quantity: 0,
                item_id: i.into(),
                title: "t2".into(),
                content: Some(content(if same { i } else { "v2" })),
                date_changed: d.into(),
                reason: "更正".into(),
            })
        }),
        1 => item.clone().prop_map(|i| Kind::Withdrawn(pb::Withdrawn {
            item_id: i.into(),
            reason: "失效".into(),
            legal_basis: "《政府信息公开条例》第二十六条".into(),
        })),
        1 => (item, any::<bool>()).prop_map(|(i, first)| Kind::Redacted(pb::Redacted {
            item_id: i.into(),
            content_digest: content(if first { i } else { "v2" }).digest,
            reason: "个人信息".into(),
            legal_basis: "《政府信息公开条例》第十五条".into(),
        })),
        2 => (request.clone(), date.clone()).prop_map(|(r, d)| {
            Kind::RequestReceived(pb::RequestReceived { applicant: 0,
                request_id: r.into(),
                date_received: d.into(),
                subject: "申请".into(),
            })
        }),
        1 => (request.clone(), date.clone(), any::<bool>()).prop_map(|(r, d, asked)| {
            Kind::RequestClarification(pb::RequestClarification {
                request_id: r.into(),
                stage: if asked {
                    pb::ClarificationStage::Asked
                } else {
                    pb::ClarificationStage::Corrected
                } as i32,
                date: d.into(),
                note: String::new(),
            })
        }),
        1 => (request.clone(), date.clone(), any::<bool>()).prop_map(|(r, d, started)| {
            Kind::ThirdPartyConsultation(pb::ThirdPartyConsultation {
                request_id: r.into(),
                stage: if started {
                    pb::ConsultationStage::Started
                } else {
                    pb::ConsultationStage::Ended
                } as i32,
                date: d.into(),
                note: String::new(),
            })
        }),
        1 => (request.clone(), date.clone()).prop_map(|(r, d)| {
            Kind::RequestExtended(pb::RequestExtended {
                request_id: r.into(),
                date: d.into(),
                approved_by: "局长".into(),
                reason: "复杂".into(),
            })
        }),
        1 => (request, date, prop::option::of(prop::sample::select(&ITEMS[..]))).prop_map(
            |(r, d, answered)| Kind::RequestAnswered(pb::RequestAnswered { outcome: 0,
                request_id: r.into(),
                date_answered: d.into(),
                decision: pb::Decision::Disclosed as i32,
                legal_basis: String::new(),
                content: None,
                items: answered
                    .map(|i| pb::ItemRef {
                        origin: String::new(),
                        item_id: i.into(),
                        relation: pb::Relation::Related as i32,
                    })
                    .into_iter()
                    .collect(),
            })
        ),
    ]
}

fn periodicity(periodic: bool) -> pb::Matter {
    if periodic {
        matter(pb::Periodicity::Quarterly, "2026-01-01")
    } else {
        matter(pb::Periodicity::None, "")
    }
}

/// A working catalog holding only the records of `whole` that `t` names.
fn load(whole: &Catalog, t: &Touched) -> Catalog {
    let mut w = Catalog::new();
    for id in &t.items {
        if let Some(v) = whole.items.get(id) {
            w.items.insert(id.clone(), v.clone());
        }
    }
    if let Some(id) = &t.matter
        && let Some(v) = whole.matters.get(id)
    {
        w.matters.insert(id.clone(), v.clone());
    }
    if let Some(id) = &t.request
        && let Some(v) = whole.requests.get(id)
    {
        w.requests.insert(id.clone(), v.clone());
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn touched_records_decide_like_the_whole_catalog(
        kinds in prop::collection::vec(kind(), 1..60)
    ) {
        let mut log = TestLog::new(key(1));
        for k in kinds {
            log.push(k);
        }
        let mut whole = Catalog::new();
        let (mut accepted, mut refused, mut invalid) = (0, 0, 0);
        for (i, entry) in log.entries.iter().enumerate() {
            // Field rules come before the catalog (a publication relating
            // an item to itself, say): such an entry never reaches the fold.
            let event: Event = match entry.decode_event(i as u64) {
                Ok(e) => e,
                Err(e) => {
                    invalid += 1;
                    prop_assert!(matches!(e, Error::InvalidField { .. }), "{}", e);
                    continue;
                }
            };
            let touched = Touched::of(&event);
            let mut working = load(&whole, &touched);
            let mut next = whole.clone();
            let by_whole = next.apply(&event).map_err(|e| e.to_string());
            let by_working = working.apply(&event).map_err(|e| e.to_string());
            prop_assert_eq!(&by_whole, &by_working, "verdicts differ at {}", i);
            if by_whole.is_ok() {
                accepted += 1;
                // The working catalog now holds exactly the touched records
                // of the whole one: what a node writes back.
                prop_assert_eq!(load(&next, &touched), working);
                whole = next;
            } else {
                refused += 1;
                prop_assert_eq!(&next, &whole, "a refusal changed the catalog");
            }
        }
        // Genesis always passes; the sequences are built to have both.
        prop_assert!(accepted >= 1 && refused + accepted + invalid == log.entries.len());
    }
}
