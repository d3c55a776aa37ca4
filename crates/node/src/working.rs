//! The sequencer's working catalog.
//!
//! The catalog rules read and change only the records an event names
//! ([`Touched`]), and the projection's records hold everything the fold
//! keeps ([`Projection::load_catalog`]). So the sequencer does not keep the
//! whole catalog in memory, which would grow by a few hundred bytes per
//! item for the life of the log. It keeps a working [`Catalog`]:
//!
//! - before a request is checked, the records its events name are loaded
//!   from the projection, unless the working catalog already holds them;
//! - a record the working catalog holds is never reloaded, so records the
//!   sequencer changed but the projector has not stored yet are always
//!   read from here, never stale from the projection;
//! - once the projector has stored every group that touched a record (the
//!   committed size reached the end of the last such group), the record is
//!   dropped: the projection now holds the same state.
//!
//! Memory is thus bounded by the groups in flight, whatever the log's size.

use std::collections::{HashMap, VecDeque};

use gongkai_core::catalog::{Catalog, Touched};
use gongkai_core::event::Event;
use gongkai_core::types::{ItemId, MatterId, RequestId};
use gongkai_store::projection::Projection;

use crate::NodeError;

/// One record of the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Record {
    Item(ItemId),
    Matter(MatterId),
    Request(RequestId),
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct WorkingSet {
    catalog: Catalog,
    /// Per group, oldest first: the log size after it and the records it
    /// loaded or changed.
    groups: VecDeque<(u64, Vec<Record>)>,
    /// For each held record, the end of the last group that touched it.
    last: HashMap<Record, u64>,
    /// Records touched by the group being planned.
    current: Vec<Record>,
}

impl WorkingSet {
    /// Loads from `projection` what the rules will read for `events`.
    pub(crate) fn load(
        &mut self,
        projection: &Projection,
        events: &[Event],
    ) -> Result<(), NodeError> {
        for event in events {
            let t = Touched::of(event);
            projection.load_catalog(&t, &mut self.catalog)?;
            self.current.extend(t.items.into_iter().map(Record::Item));
            self.current.extend(t.matter.map(Record::Matter));
            self.current.extend(t.request.map(Record::Request));
        }
        Ok(())
    }

    /// The working catalog, for [`Catalog::apply_all`] after [`WorkingSet::load`].
    pub(crate) fn catalog(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    /// Closes the group being planned, which ends at log size `size`.
    pub(crate) fn end_group(&mut self, size: u64) {
        let records = std::mem::take(&mut self.current);
        if records.is_empty() {
            return;
        }
        for r in &records {
            self.last.insert(r.clone(), size);
        }
        self.groups.push_back((size, records));
    }

    /// Drops the records whose last group the projection has stored
    /// (`projected` is the committed size the projector published).
    pub(crate) fn evict(&mut self, projected: u64) {
        while let Some((end, _)) = self.groups.front()
            && *end <= projected
        {
            let Some((end, records)) = self.groups.pop_front() else {
                break;
            };
            for r in records {
                if self.last.get(&r) == Some(&end) {
                    self.last.remove(&r);
                    match r {
                        Record::Item(id) => {
                            self.catalog.items.remove(&id);
                        }
                        Record::Matter(id) => {
                            self.catalog.matters.remove(&id);
                        }
                        Record::Request(id) => {
                            self.catalog.requests.remove(&id);
                        }
                    }
                }
            }
        }
    }

    /// Records held in memory.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.catalog.items.len() + self.catalog.matters.len() + self.catalog.requests.len()
    }
}

#[cfg(test)]
mod tests {
    use gongkai_core::calendar::WorkCalendar;
    use gongkai_core::event::{Kind, pb};
    use gongkai_core::hash::leaf_hash;
    use gongkai_core::keys::SigningKey;
    use gongkai_core::types::Origin;
    use gongkai_core::writer::LogWriter;
    use gongkai_store::projection::Applied;

    use super::*;

    fn events() -> Vec<(gongkai_core::Hash, Event)> {
        let matter = pb::Matter {
            category: "财政预决算".into(),
            level1: "财政预决算".into(),
            level2: "部门预算".into(),
            elements: vec!["预算表".into()],
            legal_basis: "《预算法》第十四条".into(),
            deadline_working_days: 20,
            responsible_body: "县财政局".into(),
            channels: vec!["政府网站".into()],
            audience: pb::Audience::Public as i32,
            mode: pb::DisclosureMode::Proactive as i32,
            ..Default::default()
        };
        let content = |n: u8| pb::ContentRef {
            digest: vec![n; 32],
            length: 1,
            media_type: "text/plain".into(),
        };
        let publish = Kind::Published(pb::Published {
            item_id: "a".into(),
            matter_id: "m".into(),
            title: "a".into(),
            content: Some(content(1)),
            date_formed: "2026-03-02".into(),
            ..Default::default()
        });
        let amend = |n: u8| {
            Kind::Amended(pb::Amended {
                item_id: "a".into(),
                title: "a".into(),
                content: Some(content(n)),
                date_changed: "2026-03-03".into(),
                reason: "更正".into(),
            })
        };
        let kinds = vec![
            Kind::Genesis(pb::Genesis {
                department: "财政局".into(),
                division_code: "510122".into(),
            }),
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "m".into(),
                matter: Some(matter),
            }),
            publish.clone(),
            amend(2),
            Kind::Redacted(pb::Redacted {
                item_id: "a".into(),
                content_digest: vec![2; 32],
                reason: "个人信息".into(),
                legal_basis: "第十五条".into(),
            }),
            publish,
            amend(3),
        ];
        let mut w = LogWriter::new(
            Origin::new("example.gov.cn/test").unwrap(),
            SigningKey::from_seed([1; 32]),
        );
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let e = w.append(k, 1_775_100_000_000 + i as u64).unwrap();
                (leaf_hash(e.as_bytes()), e.decode_event(i as u64).unwrap())
            })
            .collect()
    }

    fn project(p: &Projection, events: &[(gongkai_core::Hash, Event)], from: usize, to: usize) {
        let applied: Vec<Applied<'_>> = (from..to)
            .map(|i| Applied {
                index: i as u64,
                leaf_hash: events[i].0,
                event: &events[i].1,
            })
            .collect();
        p.apply(&applied, &[], &[], WorkCalendar::shipped())
            .unwrap();
    }

    /// Records changed by groups the projector has not stored are read from
    /// memory, not stale from the projection; once stored they leave
    /// memory, and later checks load them back from the projection.
    #[test]
    fn unprojected_records_stay_until_stored() {
        let cal = WorkCalendar::shipped();
        let ev = events();
        let tmp = tempfile::tempdir().unwrap();
        let p = Projection::open(tmp.path(), "example.gov.cn/test", 1 << 20).unwrap();
        project(&p, &ev, 0, 1);
        let mut ws = WorkingSet::default();
        let group = |ws: &mut WorkingSet, at: usize, end: u64| {
            let batch = [ev[at].1.clone()];
            ws.load(&p, &batch).unwrap();
            let verdict = ws.catalog().apply_all(&batch, cal);
            ws.end_group(end);
            verdict
        };

        // Define m and publish a, in two groups; nothing stored yet.
        group(&mut ws, 1, 2).unwrap();
        group(&mut ws, 2, 3).unwrap();
        ws.evict(1);
        assert_eq!(ws.held(), 2);
        // Amending a works although the projection does not know it.
        group(&mut ws, 3, 4).unwrap();

        // The projector stores up to the publication: m goes, a (changed
        // again by the amendment, not yet stored) stays.
        project(&p, &ev, 1, 3);
        ws.evict(3);
        assert_eq!(ws.held(), 1);
        // Redacting the second version passes only on the record in
        // memory: the stored one does not have that version yet.
        group(&mut ws, 4, 5).unwrap();
        project(&p, &ev, 3, 5);
        ws.evict(5);
        assert_eq!(ws.held(), 0);

        // From the projection alone: a cannot be published again, and its
        // next amendment sees both earlier versions and the redaction.
        let err = group(&mut ws, 5, 5).unwrap_err();
        assert!(err.to_string().contains("item-id-unique"), "{err}");
        group(&mut ws, 6, 5).unwrap();
        let a = ws.catalog().items.values().next().cloned().unwrap();
        assert_eq!(a.versions.len(), 3);
        assert_eq!(a.redacted, vec![gongkai_core::Hash([2; 32])]);
    }
}
