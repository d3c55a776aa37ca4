//! The sequencer's working catalog (also the county mirrors', which fold
//! the same rules over the logs they verify).
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
//! - item and request records leave memory in generations: when half of
//!   [`MAX_HELD`] records are held, they become the *old* generation,
//!   tagged with the log size then; a record touched again moves back, and
//!   the rest are dropped together once the projector has stored the log up
//!   to that size (the projection then holds the same state). If
//!   [`MAX_HELD`] records are held while the old generation still waits for
//!   the projector, the sequencer waits for it. Matters stay: a catalog has
//!   few, and nearly every write names one.
//!
//! Reads from the projection are kept off the common path, because sled
//! 0.34 takes one process-wide lock for every read and holds it for a whole
//! batch write: a sequencer reading while the projector writes would wait
//! for it. A new item or request id (a publication, a received request) is
//! looked up only if [`MaybeKnown`] says it may exist; it has no false
//! negatives, so "no" means the projection does not have it either.
//!
//! Memory is thus at most [`MAX_HELD`] records, plus the matters, plus
//! about 3 bytes per id for the filter (3 MB at a million ids) instead of a
//! few hundred bytes per record.

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};

use gongkai_core::catalog::{Catalog, Touched};
use gongkai_core::event::{Event, Kind};
use gongkai_store::projection::Projection;

use crate::NodeError;

/// Item and request records held before the sequencer waits for the
/// projector to catch up (about 16 MB).
pub const MAX_HELD: usize = 65_536;

/// See the module docs.
pub struct WorkingSet {
    /// The records the rules see: matters, and the young generation of
    /// items and requests.
    catalog: Catalog,
    /// The old generation of items and requests, and the log size it was
    /// set aside at: once the projection reaches that size, it goes.
    old: Option<(u64, Catalog)>,
    /// Item and request ids that may have a record in the projection.
    known: MaybeKnown,
    /// [`MAX_HELD`] (smaller in tests).
    max_held: usize,
    /// Events whose records were looked up in the projection.
    reads: u64,
}

impl Default for WorkingSet {
    fn default() -> WorkingSet {
        WorkingSet::new(MaybeKnown::default())
    }
}

impl WorkingSet {
    /// An empty working catalog over a projection whose item and request
    /// ids are all in `known`.
    pub fn new(known: MaybeKnown) -> WorkingSet {
        WorkingSet {
            catalog: Catalog::new(),
            old: None,
            known,
            max_held: MAX_HELD,
            reads: 0,
        }
    }

    /// An empty working catalog that holds at most `max_held` item and
    /// request records before its owner waits for the projection (the
    /// county keeps a smaller one per mirror: it holds many logs).
    pub fn with_max_held(known: MaybeKnown, max_held: usize) -> WorkingSet {
        WorkingSet {
            max_held: max_held.max(2),
            ..WorkingSet::new(known)
        }
    }

    /// True when the sequencer must wait for the projector before the next
    /// group (both generations are full).
    pub fn full(&self) -> bool {
        self.held() >= self.max_held
    }

    /// Loads what the rules will read for `events`: from the old generation
    /// if it holds the record, else from `projection` if the id may be
    /// there.
    pub fn load<'a>(
        &mut self,
        projection: &Projection,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<(), NodeError> {
        for event in events {
            let mut t = Touched::of(event);
            let Self {
                catalog,
                old,
                known,
                ..
            } = self;
            // The matter is read once; then it stays.
            t.matter = t.matter.filter(|id| !catalog.matters.contains_key(id));
            // Every id an event names joins the filter before its record
            // can exist (a superset of the ids the projection will hold).
            t.items.retain(|id| {
                let old = old.as_mut().map(|(_, o)| &mut o.items);
                must_read(id, id.as_str(), b'i', &mut catalog.items, old, known)
            });
            t.request = t.request.filter(|id| {
                let old = old.as_mut().map(|(_, o)| &mut o.requests);
                must_read(id, id.as_str(), b'r', &mut catalog.requests, old, known)
            });
            if !t.items.is_empty() || t.request.is_some() || t.matter.is_some() {
                self.reads += 1;
            }
            projection.load_catalog(&t, catalog)?;
        }
        Ok(())
    }

    /// The working catalog, for [`Catalog::apply_all`] after [`WorkingSet::load`].
    pub fn catalog(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    /// Item and request records held, in both generations.
    pub fn held(&self) -> usize {
        let count = |c: &Catalog| c.items.len() + c.requests.len();
        count(&self.catalog) + self.old.as_ref().map_or(0, |(_, o)| count(o))
    }

    /// Before the group that starts at log size `size`, with the projection
    /// stored up to `projected`: drops what the projection holds, and sets
    /// the young generation aside once it is large.
    pub fn settle(&mut self, projected: u64, size: u64) {
        if projected >= size {
            self.catalog.items.clear();
            self.catalog.requests.clear();
            self.old = None;
            return;
        }
        if self.old.as_ref().is_some_and(|(at, _)| projected >= *at) {
            self.old = None;
        }
        let young = self.catalog.items.len() + self.catalog.requests.len();
        if self.old.is_none() && young >= self.max_held / 2 {
            let aside = Catalog {
                matters: Default::default(),
                items: std::mem::take(&mut self.catalog.items),
                requests: std::mem::take(&mut self.catalog.requests),
            };
            tracing::debug!(
                records = young,
                at = size,
                reads = self.reads,
                "working catalog: records set aside until projected"
            );
            self.old = Some((size, aside));
        }
    }
}

/// Whether the record of `id` (whose text is `text`) must be read from the
/// projection: not if the working catalog holds it, nor if the old
/// generation does (it moves back), nor if no event ever named the id. An
/// id not held joins the filter here, before its record can exist.
fn must_read<K: Ord + Clone, V>(
    id: &K,
    text: &str,
    tag: u8,
    live: &mut BTreeMap<K, V>,
    old: Option<&mut BTreeMap<K, V>>,
    known: &mut MaybeKnown,
) -> bool {
    if live.contains_key(id) {
        return false;
    }
    if let Some(rec) = old.and_then(|o| o.remove(id)) {
        live.insert(id.clone(), rec);
        return false;
    }
    let read = known.may_hold(tag, text);
    known.insert(tag, text);
    read
}

/// A set of ids with no false negatives and few false positives: a
/// scalable Bloom filter (a list of filters, each twice the capacity of the
/// one before, about 24 bits per id in all). Ids of items and of requests
/// are kept apart by a one-byte tag. An id added again counts again: the
/// filters fill a little faster, and that is all.
pub struct MaybeKnown {
    filters: Vec<Filter>,
}

struct Filter {
    bits: Vec<u64>,
    /// Ids it takes before the next filter starts.
    capacity: usize,
    count: usize,
}

/// Hash functions per filter; with 24 bits per id, about one false
/// positive in 100,000 per filter: a false positive costs a read from sled,
/// which may wait for a whole projector batch.
const PROBES: u64 = 16;
const BITS_PER_ID: usize = 24;
const FIRST_CAPACITY: usize = 1 << 16;

impl Default for MaybeKnown {
    fn default() -> MaybeKnown {
        MaybeKnown {
            filters: vec![Filter::new(FIRST_CAPACITY)],
        }
    }
}

impl Filter {
    fn new(capacity: usize) -> Filter {
        Filter {
            bits: vec![0; (capacity * BITS_PER_ID).div_ceil(64)],
            capacity,
            count: 0,
        }
    }

    /// The bit positions of an id (double hashing).
    fn probes(&self, h: (u64, u64)) -> impl Iterator<Item = usize> + '_ {
        let m = (self.bits.len() * 64) as u64;
        (0..PROBES).map(move |i| (h.0.wrapping_add(i.wrapping_mul(h.1)) % m) as usize)
    }
}

impl MaybeKnown {
    fn hash(tag: u8, id: &str) -> (u64, u64) {
        // Fixed keys: the same hash for the life of the process, which is
        // all a filter kept in memory needs. Ids chosen to collide cost
        // extra reads, never a wrong answer.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (tag, id).hash(&mut h);
        let h = h.finish();
        (h & 0xffff_ffff, (h >> 32) | 1)
    }

    /// Adds an id of kind `tag` (`b'i'` items, `b'r'` requests).
    pub fn insert(&mut self, tag: u8, id: &str) {
        let h = MaybeKnown::hash(tag, id);
        if self
            .filters
            .iter()
            .any(|f| f.probes(h).all(|b| f.bits[b / 64] >> (b % 64) & 1 == 1))
        {
            return;
        }
        let full = self.filters.last().is_none_or(|f| f.count >= f.capacity);
        if full {
            let next = self
                .filters
                .last()
                .map_or(FIRST_CAPACITY, |f| f.capacity * 2);
            self.filters.push(Filter::new(next));
        }
        if let Some(f) = self.filters.last_mut() {
            let probes: Vec<usize> = f.probes(h).collect();
            for b in probes {
                f.bits[b / 64] |= 1 << (b % 64);
            }
            f.count += 1;
        }
    }

    /// False only if the id was never inserted.
    pub fn may_hold(&self, tag: u8, id: &str) -> bool {
        let h = MaybeKnown::hash(tag, id);
        self.filters
            .iter()
            .any(|f| f.probes(h).all(|b| f.bits[b / 64] >> (b % 64) & 1 == 1))
    }

    /// Adds the ids `event` creates, if any (for a start, which reads every
    /// entry of the journal).
    pub fn insert_created(&mut self, event: &Event) {
        match &event.kind {
            Kind::Published(p) => self.insert(b'i', &p.item_id),
            Kind::RequestReceived(r) => self.insert(b'r', &r.request_id),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use gongkai_core::event::{Kind, pb};
    use gongkai_core::hash::leaf_hash;
    use gongkai_core::keys::SigningKey;
    use gongkai_core::types::Origin;
    use gongkai_core::writer::LogWriter;
    use gongkai_store::projection::Applied;

    use super::*;

    fn content(n: u8) -> pb::ContentRef {
        pb::ContentRef {
            digest: vec![n; 32],
            length: 1,
            media_type: "text/plain".into(),
        }
    }

    fn publish(item: &str) -> Kind {
        Kind::Published(pb::Published {
            item_id: item.into(),
            matter_id: "m".into(),
            title: item.into(),
            content: Some(content(1)),
            date_formed: "2026-03-02".into(),
            ..Default::default()
        })
    }

    fn amend(item: &str, n: u8) -> Kind {
        Kind::Amended(pb::Amended {
            quantity: 0,
            item_id: item.into(),
            title: item.into(),
            content: Some(content(n)),
            date_changed: "2026-03-03".into(),
            reason: "更正".into(),
        })
    }

    fn redact(item: &str, n: u8) -> Kind {
        Kind::Redacted(pb::Redacted {
            item_id: item.into(),
            content_digest: vec![n; 32],
            reason: "个人信息".into(),
            legal_basis: "第十五条".into(),
        })
    }

    /// A log of genesis, the definition of matter `m`, then `kinds`.
    fn log_of(kinds: Vec<Kind>) -> Vec<(gongkai_core::Hash, Event)> {
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
        let head = [
            Kind::Genesis(pb::Genesis {
                department: "财政局".into(),
                division_code: "510122".into(),
            }),
            Kind::MatterDefined(pb::MatterDefined {
                matter_id: "m".into(),
                matter: Some(matter),
            }),
        ];
        let mut w = LogWriter::new(
            Origin::new("example.gov.cn/test").unwrap(),
            SigningKey::from_seed([1; 32]),
        );
        head.into_iter()
            .chain(kinds)
            .enumerate()
            .map(|(i, k)| {
                let e = w.append(k, 1_775_100_000_000 + i as u64).unwrap();
                (leaf_hash(e.as_bytes()), e.decode_event(i as u64).unwrap())
            })
            .collect()
    }

    fn events() -> Vec<(gongkai_core::Hash, Event)> {
        log_of(vec![
            publish("a"),
            amend("a", 2),
            redact("a", 2),
            publish("a"),
            amend("a", 3),
        ])
    }

    fn project(p: &Projection, events: &[(gongkai_core::Hash, Event)], from: usize, to: usize) {
        let applied: Vec<Applied<'_>> = (from..to)
            .map(|i| Applied {
                index: i as u64,
                leaf_hash: events[i].0,
                event: &events[i].1,
            })
            .collect();
        p.apply(&applied, &[], &[]).unwrap();
    }

    /// The filter never forgets an id, across the growth of its filters,
    /// keeps items and requests apart, and rarely claims an unknown id.
    #[test]
    fn maybe_known_has_no_false_negatives() {
        let mut k = MaybeKnown::default();
        let n = 300_000;
        for i in 0..n {
            k.insert(b'i', &format!("item-{i}"));
        }
        assert!(k.filters.len() >= 3, "{} filters", k.filters.len());
        assert!((0..n).all(|i| k.may_hold(b'i', &format!("item-{i}"))));
        let false_positives = (0..100_000)
            .filter(|i| {
                k.may_hold(b'i', &format!("other-{i}")) || k.may_hold(b'r', &format!("item-{i}"))
            })
            .count();
        assert!(false_positives < 100, "{false_positives} false positives");
        let bytes: usize = k.filters.iter().map(|f| f.bits.len() * 8).sum();
        assert!(bytes < n * 6, "{bytes} bytes for {n} ids");
    }

    /// Records changed by groups the projector has not stored are read from
    /// memory, not stale from the projection; once everything is stored
    /// they leave memory, and later checks load them back from the
    /// projection (and only for ids that may be there).
    #[test]
    fn unprojected_records_stay_until_stored() {
        let ev = events();
        let tmp = tempfile::tempdir().unwrap();
        let p = Projection::open(tmp.path(), "example.gov.cn/test", 1 << 20).unwrap();
        project(&p, &ev, 0, 1);
        let mut ws = WorkingSet::default();
        let group = |ws: &mut WorkingSet, at: usize| {
            let batch = [ev[at].1.clone()];
            ws.load(&p, &batch).unwrap();
            ws.catalog().apply_all(&batch)
        };

        // Define m, publish a and amend it; nothing stored yet.
        group(&mut ws, 1).unwrap();
        group(&mut ws, 2).unwrap();
        group(&mut ws, 3).unwrap();
        ws.settle(1, 4);
        assert_eq!(ws.held(), 1);

        // The projector stores up to the publication: a (changed again by
        // the amendment, not yet stored) stays.
        project(&p, &ev, 1, 3);
        ws.settle(3, 4);
        assert_eq!(ws.held(), 1);
        // Redacting the second version passes only on the record in
        // memory: the stored one does not have that version yet.
        group(&mut ws, 4).unwrap();
        project(&p, &ev, 3, 5);
        ws.settle(5, 5);
        assert_eq!(ws.held(), 0);
        assert_eq!(ws.catalog().matters.len(), 1, "matters stay");

        // From the projection alone: a cannot be published again, and its
        // next amendment sees both earlier versions and the redaction.
        let err = group(&mut ws, 5).unwrap_err();
        assert!(err.to_string().contains("item-id-unique"), "{err}");
        group(&mut ws, 6).unwrap();
        let a = ws.catalog().items.values().next().cloned().unwrap();
        assert_eq!(a.versions.len(), 3);
        assert_eq!(a.redacted, vec![gongkai_core::Hash([2; 32])]);
    }

    /// The young generation is set aside when large; a record touched
    /// again moves back and outlives the old generation, which goes once
    /// the projection holds the log up to where it was set aside.
    #[test]
    fn generations_drop_only_what_is_stored() {
        let ev = log_of(vec![
            publish("a"),   // 2
            publish("b"),   // 3
            amend("a", 2),  // 4
            publish("c"),   // 5
            redact("a", 2), // 6
            amend("b", 3),  // 7
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let p = Projection::open(tmp.path(), "example.gov.cn/test", 1 << 20).unwrap();
        project(&p, &ev, 0, 2);
        let mut ws = WorkingSet {
            max_held: 4,
            ..WorkingSet::default()
        };
        let group = |ws: &mut WorkingSet, projected: u64, at: usize| {
            ws.settle(projected, at as u64);
            let batch = [ev[at].1.clone()];
            ws.load(&p, &batch).unwrap();
            ws.catalog().apply_all(&batch).unwrap();
        };
        group(&mut ws, 2, 2);
        group(&mut ws, 2, 3);
        assert!(ws.old.is_none());
        // New ids are not looked up (the filter says so); the matter once.
        assert_eq!(ws.reads, 1);
        // Two records: set aside at size 4; amending a moves it back.
        group(&mut ws, 2, 4);
        let (at, old) = ws.old.as_ref().unwrap();
        assert_eq!((*at, old.items.len()), (4, 1));
        assert_eq!(ws.catalog.items.len(), 1);
        assert!(!ws.full());
        // The projection reaches 4: the old generation (b) goes, a stays.
        project(&p, &ev, 2, 4);
        group(&mut ws, 4, 5);
        assert!(ws.old.is_none());
        assert_eq!(ws.held(), 2);
        // Redacting a's second version needs the record in memory (the
        // stored one lacks it); amending b loads it back from the store.
        group(&mut ws, 4, 6);
        assert_eq!(ws.reads, 1);
        group(&mut ws, 4, 7);
        assert_eq!(ws.reads, 2);
        let b = ws.catalog.items.values().find(|i| i.published_at == 3);
        assert_eq!(b.map(|b| b.versions.len()), Some(2));
    }
}
