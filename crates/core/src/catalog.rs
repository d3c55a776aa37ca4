//! The catalog projection as a pure fold (FORMAT.md § Catalog rules).
//!
//! [`Catalog::apply`] takes one field-valid [`Event`] (or
//! [`Catalog::apply_view`] a view of one) and either updates the
//! state or returns [`Error::RuleViolation`] naming the rule and leaving the
//! state exactly as it was. The node uses it to refuse invalid writes, the
//! aggregator to refuse invalid replication, and every verifier to check a
//! log: there is one implementation of the rules.
//!
//! The state is *compact*: per matter, item and request only what the rules
//! need (status, matter, content digests, the request clock), not titles or
//! content. It is serde-serializable so `verify --state` can resume.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde::{Deserialize, Serialize};

use crate::calendar::{ClockEvent, Period, Periodicity, RequestClock, WorkCalendar};
use crate::date::Date;
use crate::event::view::{self, Kind};
use crate::event::{Event, EventView, pb};
use crate::types::{ItemId, MatterId, RequestId};
use crate::{Error, Hash};

/// Where an item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Published, never amended.
    Current,
    /// Amended at least once; the newest version is current.
    Amended,
    /// Withdrawn (its content stays public unless redacted).
    Withdrawn,
}

/// What the rules need to know about a matter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatterState {
    /// False once retired.
    pub active: bool,
    /// Periodicity, if periodic.
    pub periodicity: Option<Periodicity>,
    /// Deadline in working days.
    pub deadline_working_days: u32,
    /// True if the audience is a specific group (content restricted).
    pub restricted: bool,
    /// Index of the entry that defined it.
    pub defined_at: u64,
}

/// What the rules need to know about an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    /// The matter it fulfils.
    pub matter: MatterId,
    /// Status.
    pub status: ItemStatus,
    /// Date formed (of the first version).
    pub date_formed: Date,
    /// Content digests of every version, oldest first.
    pub versions: Vec<Hash>,
    /// Digests whose content was redacted.
    pub redacted: Vec<Hash>,
    /// Index of the publishing entry.
    pub published_at: u64,
}

/// What the rules need to know about a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestState {
    /// The answer clock (received, clarification, consultation, extension,
    /// answer).
    pub clock: RequestClock,
    /// Index of the receiving entry.
    pub received_at: u64,
    /// 行政复议 and 行政诉讼 cases about the request, in filing order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<CaseState>,
}

/// What the rules need to know about a 复议/诉讼 case (FORMAT.md § 22).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseState {
    /// The case id, unique within its request.
    pub case_id: String,
    /// The date it was filed.
    pub filed: Date,
    /// The date it concluded, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concluded: Option<Date>,
}

/// The compact catalog state of one log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Every matter ever defined (retired ones stay, ids are never reused).
    pub matters: BTreeMap<MatterId, MatterState>,
    /// Every item ever published.
    pub items: BTreeMap<ItemId, ItemState>,
    /// Every request ever received.
    pub requests: BTreeMap<RequestId, RequestState>,
}

/// Every record the rules may read or change for one event: the rules see
/// nothing else of the catalog. So a caller that keeps most of the catalog
/// elsewhere (a node, in its projection) loads these records into a working
/// [`Catalog`] before [`Catalog::apply`] and gets the verdict and the state
/// the whole catalog would give.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// The item an item event names, and the same-log items a publication
    /// relates to or a request answer names.
    pub items: Vec<ItemId>,
    /// The matter a matter event or a publication names.
    pub matter: Option<MatterId>,
    /// The request a request event names.
    pub request: Option<RequestId>,
}

impl Touched {
    /// The records `event` touches. Ids that do not parse are left out (the
    /// rules refuse such an event before reading any record).
    pub fn of(event: &Event) -> Touched {
        let kind = event.kind.view();
        let mut t = Touched::default();
        let mut item = |id: &str| {
            if let Ok(id) = ItemId::new(id) {
                t.items.push(id);
            }
        };
        match &kind {
            Kind::Published(p) => {
                item(p.item_id);
                for r in p.related.iter().filter(|r| r.origin.is_empty()) {
                    item(r.item_id);
                }
            }
            Kind::Amended(x) => item(x.item_id),
            Kind::Withdrawn(x) => item(x.item_id),
            Kind::Redacted(x) => item(x.item_id),
            Kind::RequestAnswered(r) => {
                for i in r.items.iter().filter(|i| i.origin.is_empty()) {
                    item(i.item_id);
                }
            }
            _ => {}
        }
        let matter = match &kind {
            Kind::MatterDefined(m) => Some(&m.matter_id),
            Kind::MatterChanged(m) => Some(&m.matter_id),
            Kind::MatterRetired(m) => Some(&m.matter_id),
            Kind::Published(p) => Some(&p.matter_id),
            _ => None,
        };
        t.matter = matter.and_then(|m| MatterId::new(m).ok());
        let request = match &kind {
            Kind::RequestReceived(r) => Some(&r.request_id),
            Kind::RequestClarification(r) => Some(&r.request_id),
            Kind::ThirdPartyConsultation(r) => Some(&r.request_id),
            Kind::RequestExtended(r) => Some(&r.request_id),
            Kind::RequestAnswered(r) => Some(&r.request_id),
            Kind::ChallengeFiled(c) => Some(&c.request_id),
            Kind::ChallengeConcluded(c) => Some(&c.request_id),
            _ => None,
        };
        t.request = request.and_then(|r| RequestId::new(r).ok());
        t
    }
}

/// The record of a newly published item, after the checks that follow
/// the item id's: the matter, the period, the related items (in `items`;
/// `None` only when there are none), the date and the content.
fn new_item(
    matters: &BTreeMap<MatterId, MatterState>,
    items: Option<&BTreeMap<ItemId, ItemState>>,
    index: u64,
    p: &view::Published,
) -> Result<ItemState, Error> {
    let matter_id = checked(index, p.matter_id, MatterId::check)?;
    let (matter_key, matter) = matters
        .get_key_value(matter_id)
        .filter(|(_, m)| m.active)
        .ok_or_else(|| {
            violation(
                index,
                "publication-names-active-matter",
                format!("matter {matter_id} is not defined or retired"),
            )
        })?;
    match (matter.periodicity, p.period.is_empty()) {
        (None, true) => {}
        (None, false) => {
            return Err(violation(
                index,
                "period-matches-matter",
                format!(
                    "matter {matter_id} is not periodic, but the item names period {}",
                    p.period
                ),
            ));
        }
        (Some(_), true) => {
            return Err(violation(
                index,
                "period-matches-matter",
                format!("matter {matter_id} is periodic: the item must name its period"),
            ));
        }
        (Some(want), false) => {
            let period = Period::parse(p.period)?;
            if period.periodicity() != want {
                return Err(violation(
                    index,
                    "period-matches-matter",
                    format!("period {} is not {want:?}", p.period),
                ));
            }
        }
    }
    references_exist(items, index, &p.related, "related item")?;
    let date_formed = Date::parse(p.date_formed)?;
    let digest = content_digest(p.content.as_ref())?;
    Ok(ItemState {
        matter: matter_key.clone(),
        status: ItemStatus::Current,
        date_formed,
        versions: vec![digest],
        redacted: Vec::new(),
        published_at: index,
    })
}

/// Rule `reference-exists`: every same-log reference in `refs` (those
/// with an empty origin) names an item published earlier; `items` is
/// `None` only when `refs` is empty. References to other logs are not
/// checked (the ledger never reads another log).
fn references_exist(
    items: Option<&BTreeMap<ItemId, ItemState>>,
    index: u64,
    refs: &[view::ItemRef],
    what: &str,
) -> Result<(), Error> {
    for r in refs.iter().filter(|r| r.origin.is_empty()) {
        let target = checked(index, r.item_id, ItemId::check)?;
        if !items.is_some_and(|items| items.contains_key(target)) {
            return Err(violation(
                index,
                "reference-exists",
                format!("{what} {target} does not exist"),
            ));
        }
    }
    Ok(())
}

/// Rule `date-order` for request events: not dated before the receipt.
fn not_before_receipt(index: u64, id: &str, req: &RequestState, date: Date) -> Result<(), Error> {
    if date < req.clock.received() {
        return Err(violation(
            index,
            "date-order",
            format!(
                "{date} is before request {id} was received on {}",
                req.clock.received()
            ),
        ));
    }
    Ok(())
}

fn violation(index: u64, rule: &'static str, detail: String) -> Error {
    Error::RuleViolation {
        index,
        rule,
        detail,
    }
}

/// `text` if `check` accepts it, to search the maps with: the field rules
/// checked every id already.
fn checked(index: u64, text: &str, check: fn(&str) -> Result<(), Error>) -> Result<&str, Error> {
    parse(index, check(text)).map(|()| text)
}

/// Ids were checked by the field rules; this re-parses them into types.
fn parse<T>(index: u64, r: Result<T, Error>) -> Result<T, Error> {
    r.map_err(|e| Error::InvalidField {
        index,
        field: "id",
        reason: e.to_string(),
    })
}

fn periodicity(p: i32) -> Option<Periodicity> {
    match pb::Periodicity::try_from(p) {
        Ok(pb::Periodicity::Monthly) => Some(Periodicity::Monthly),
        Ok(pb::Periodicity::Quarterly) => Some(Periodicity::Quarterly),
        Ok(pb::Periodicity::HalfYearly) => Some(Periodicity::HalfYearly),
        Ok(pb::Periodicity::Yearly) => Some(Periodicity::Yearly),
        _ => None,
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// True if the content of `item` is restricted to a specific audience
    /// (its matter's current audience is a group).
    pub fn is_restricted(&self, item: &ItemId) -> bool {
        self.items
            .get(item)
            .and_then(|i| self.matters.get(&i.matter))
            .is_some_and(|m| m.restricted)
    }

    /// Applies one event. On error the catalog is unchanged.
    ///
    /// The rules need no working-day calendar: what the ledger accepts
    /// never depends on holiday data, so a log verifies the same whatever
    /// tables a verifier has (FORMAT.md § Working days). Deadlines are
    /// judgements made later, with the calendar in force.
    ///
    /// # Errors
    /// [`Error::RuleViolation`] naming the rule (see FORMAT.md § Catalog
    /// rules).
    pub fn apply(&mut self, event: &Event) -> Result<(), Error> {
        self.apply_view(&event.view())
    }

    /// [`Catalog::apply`] on a view of the event.
    ///
    /// # Errors
    /// As [`Catalog::apply`].
    pub fn apply_view(&mut self, event: &EventView) -> Result<(), Error> {
        let index = event.index;
        match &event.kind {
            Kind::Genesis(_) => {
                if index != 0 {
                    return Err(violation(
                        index,
                        "genesis-first",
                        "a genesis event after index 0".into(),
                    ));
                }
            }
            Kind::KeyRotated(_) => {}
            Kind::MatterDefined(m) => {
                let id = parse(index, MatterId::new(m.matter_id))?;
                if self.matters.contains_key(&id) {
                    return Err(violation(
                        index,
                        "matter-id-unique",
                        format!("matter {id} already defined"),
                    ));
                }
                let state = matter_state(m.matter.as_ref(), index);
                self.matters.insert(id, state);
            }
            Kind::MatterChanged(m) => {
                let id = checked(index, m.matter_id, MatterId::check)?;
                let old = self.active_matter(index, id)?;
                let mut state = matter_state(m.matter.as_ref(), index);
                state.defined_at = old.defined_at;
                if let Some(old) = self.matters.get_mut(id) {
                    *old = state;
                }
            }
            Kind::MatterRetired(m) => {
                let id = checked(index, m.matter_id, MatterId::check)?;
                self.active_matter(index, id)?;
                if let Some(state) = self.matters.get_mut(id) {
                    state.active = false;
                }
            }
            Kind::Published(p) => self.publish(event, p)?,
            Kind::Amended(a) => {
                let id = checked(index, a.item_id, ItemId::check)?;
                let item = self.live_item(index, id)?;
                let changed = Date::parse(a.date_changed)?;
                if changed < item.date_formed {
                    return Err(violation(
                        index,
                        "date-order",
                        format!(
                            "date changed {changed} is before the date formed {}",
                            item.date_formed
                        ),
                    ));
                }
                let digest = content_digest(a.content.as_ref())?;
                if let Some(item) = self.items.get_mut(id) {
                    item.status = ItemStatus::Amended;
                    item.versions.push(digest);
                }
            }
            Kind::Withdrawn(w) => {
                let id = checked(index, w.item_id, ItemId::check)?;
                self.live_item(index, id)?;
                if let Some(item) = self.items.get_mut(id) {
                    item.status = ItemStatus::Withdrawn;
                }
            }
            Kind::Redacted(r) => {
                let id = checked(index, r.item_id, ItemId::check)?;
                let digest = Hash::from_slice(r.content_digest)?;
                let item = self
                    .items
                    .get(id)
                    .ok_or_else(|| violation(index, "item-exists", format!("no item {id}")))?;
                if !item.versions.contains(&digest) {
                    return Err(violation(
                        index,
                        "redaction-names-version",
                        format!("item {id} has no version with content {digest}"),
                    ));
                }
                if item.redacted.contains(&digest) {
                    return Err(violation(
                        index,
                        "redaction-once",
                        format!("content {digest} of {id} already redacted"),
                    ));
                }
                if let Some(item) = self.items.get_mut(id) {
                    item.redacted.push(digest);
                }
            }
            Kind::RequestReceived(r) => {
                let id = parse(index, RequestId::new(r.request_id))?;
                if self.requests.contains_key(&id) {
                    return Err(violation(
                        index,
                        "request-id-unique",
                        format!("request {id} already received"),
                    ));
                }
                let received = Date::parse(r.date_received)?;
                self.requests.insert(
                    id,
                    RequestState {
                        clock: RequestClock::new(received),
                        received_at: index,
                        cases: Vec::new(),
                    },
                );
            }
            Kind::RequestClarification(r) => {
                let step = match pb::ClarificationStage::try_from(r.stage) {
                    Ok(pb::ClarificationStage::Asked) => ClockEvent::ClarificationAsked,
                    _ => ClockEvent::ClarificationCorrected,
                };
                self.clock_step(index, r.request_id, r.date, step)?;
            }
            Kind::ThirdPartyConsultation(r) => {
                let step = match pb::ConsultationStage::try_from(r.stage) {
                    Ok(pb::ConsultationStage::Started) => ClockEvent::ConsultationStarted,
                    _ => ClockEvent::ConsultationEnded,
                };
                self.clock_step(index, r.request_id, r.date, step)?;
            }
            Kind::RequestExtended(r) => {
                self.clock_step(index, r.request_id, r.date, ClockEvent::Extended)?;
            }
            Kind::RequestAnswered(r) => {
                // The request first, then the items it names; nothing
                // changes unless both hold.
                let (id, clock) =
                    self.stepped_clock(index, r.request_id, r.date_answered, ClockEvent::Answered)?;
                references_exist(Some(&self.items), index, &r.items, "answered item")?;
                if let Some(req) = self.requests.get_mut(id) {
                    req.clock = clock;
                }
            }
            Kind::ChallengeFiled(c) => {
                let (id, date) = self.request_on(index, c.request_id, c.date_filed)?;
                let req = &self.requests[id];
                if req.cases.iter().any(|k| k.case_id == c.case_id) {
                    return Err(violation(
                        index,
                        "case-id-unique",
                        format!("request {id} already has a case {}", c.case_id),
                    ));
                }
                if let Some(req) = self.requests.get_mut(id) {
                    req.cases.push(CaseState {
                        case_id: c.case_id.to_owned(),
                        filed: date,
                        concluded: None,
                    });
                }
            }
            Kind::ChallengeConcluded(c) => {
                let (id, date) = self.request_on(index, c.request_id, c.date_concluded)?;
                let case = self.requests[id]
                    .cases
                    .iter()
                    .position(|k| k.case_id == c.case_id)
                    .ok_or_else(|| {
                        violation(
                            index,
                            "case-exists",
                            format!("request {id} has no case {}", c.case_id),
                        )
                    })?;
                let state = &self.requests[id].cases[case];
                if let Some(on) = state.concluded {
                    return Err(violation(
                        index,
                        "case-open",
                        format!("case {} of request {id} concluded on {on}", c.case_id),
                    ));
                }
                if date < state.filed {
                    return Err(violation(
                        index,
                        "date-order",
                        format!(
                            "{date} is before case {} was filed on {}",
                            c.case_id, state.filed
                        ),
                    ));
                }
                if let Some(req) = self.requests.get_mut(id) {
                    req.cases[case].concluded = Some(date);
                }
            }
        }
        Ok(())
    }

    /// The request (answered or not) a case names, and the case event's
    /// date, which may not be before the request was received.
    fn request_on<'a>(
        &self,
        index: u64,
        request_id: &'a str,
        date: &str,
    ) -> Result<(&'a str, Date), Error> {
        let id = checked(index, request_id, RequestId::check)?;
        let date = Date::parse(date)?;
        let req = self.received_request(index, id)?;
        not_before_receipt(index, id, req, date)?;
        Ok((id, date))
    }

    /// Applies several events in order, all or nothing: on error the
    /// catalog is unchanged. The events are first applied to a scratch
    /// catalog holding only the matters, items and requests they name, so
    /// the cost does not grow with the size of the catalog.
    ///
    /// # Errors
    /// As [`Catalog::apply`], for the first event that fails.
    pub fn apply_all(&mut self, events: &[Event]) -> Result<(), Error> {
        if let [one] = events {
            return self.apply(one);
        }
        let mut scratch = Catalog::new();
        for event in events {
            self.copy_touched(event, &mut scratch);
        }
        for event in events {
            scratch.apply(event)?;
        }
        for event in events {
            // Cannot fail: the same rules passed on the same relevant state.
            self.apply(event)?;
        }
        Ok(())
    }

    /// The write policy a node adds to the rules (FORMAT.md § 7): an
    /// extension it can judge to be after the deadline in force is refused,
    /// since it would be void. Not a rule of the ledger: a verifier records
    /// such an entry and reports it as `late-extension` (§ 17), and where
    /// `calendar` cannot judge the date yet the write goes ahead, so no
    /// write ever waits for holiday data. Reads the catalog as it is before
    /// `events`, which must pass [`Catalog::apply_all`].
    ///
    /// The policy also requires what the annual report counts (FORMAT.md
    /// § 22.1): a new request records its applicant category and a new
    /// answer its outcome (`report-fields`); older entries without them
    /// stay valid.
    ///
    /// # Errors
    /// [`Error::RuleViolation`] `extension-in-time` naming the request, or
    /// `report-fields` naming the missing field.
    pub fn check_write_policy(
        &self,
        events: &[Event],
        calendar: &WorkCalendar,
    ) -> Result<(), Error> {
        for e in events {
            let missing = match &e.kind {
                crate::event::Kind::RequestReceived(r) if r.applicant == 0 => {
                    "request_received.applicant (the applicant's category: natural person, \
                     or which kind of legal person or organization)"
                }
                crate::event::Kind::RequestAnswered(r) if r.outcome == 0 => {
                    "request_answered.outcome (the result as the annual report's table 三 \
                     counts it)"
                }
                _ => continue,
            };
            return Err(violation(
                e.index,
                "report-fields",
                format!("a new entry must record {missing}"),
            ));
        }
        if !events
            .iter()
            .any(|e| matches!(e.kind, crate::event::Kind::RequestExtended(_)))
        {
            return Ok(());
        }
        let mut scratch = Catalog::new();
        for event in events {
            self.copy_touched(event, &mut scratch);
        }
        for event in events {
            scratch.apply(event)?;
            let crate::event::Kind::RequestExtended(r) = &event.kind else {
                continue;
            };
            let Some(req) = scratch.requests.get(r.request_id.as_str()) else {
                continue;
            };
            if req.clock.extension_in_time(calendar) == Ok(Some(false)) {
                return Err(violation(
                    event.index,
                    "extension-in-time",
                    format!(
                        "request {} is past its deadline: an extension on {} would be void \
                         (it must be made on or before the deadline in force)",
                        r.request_id, r.date
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Copies into `scratch` every record the rules may read for `event`.
    fn copy_touched(&self, event: &Event, scratch: &mut Catalog) {
        let t = Touched::of(event);
        for id in t.items {
            if let Some(v) = self.items.get(&id) {
                scratch.items.insert(id, v.clone());
            }
        }
        if let Some(id) = t.matter
            && let Some(v) = self.matters.get(&id)
        {
            scratch.matters.insert(id, v.clone());
        }
        if let Some(id) = t.request
            && let Some(v) = self.requests.get(&id)
        {
            scratch.requests.insert(id, v.clone());
        }
    }

    fn publish(&mut self, event: &EventView, p: &view::Published) -> Result<(), Error> {
        let index = event.index;
        let id = parse(index, ItemId::new(p.item_id))?;
        let taken = |id: &ItemId| {
            violation(
                index,
                "item-id-unique",
                format!("item {id} already published"),
            )
        };
        if p.related.is_empty() {
            // One search of the item map, not two: the checks of a
            // publication without related items do not read it.
            return match self.items.entry(id) {
                Entry::Occupied(o) => Err(taken(o.key())),
                Entry::Vacant(slot) => {
                    slot.insert(new_item(&self.matters, None, index, p)?);
                    Ok(())
                }
            };
        }
        if self.items.contains_key(&id) {
            return Err(taken(&id));
        }
        let item = new_item(&self.matters, Some(&self.items), index, p)?;
        self.items.insert(id, item);
        Ok(())
    }

    fn active_matter(&self, index: u64, id: &str) -> Result<&MatterState, Error> {
        match self.matters.get(id) {
            Some(m) if m.active => Ok(m),
            Some(_) => Err(violation(
                index,
                "matter-active",
                format!("matter {id} is retired"),
            )),
            None => Err(violation(index, "matter-exists", format!("no matter {id}"))),
        }
    }

    fn live_item(&self, index: u64, id: &str) -> Result<&ItemState, Error> {
        match self.items.get(id) {
            Some(i) if i.status != ItemStatus::Withdrawn => Ok(i),
            Some(_) => Err(violation(
                index,
                "item-not-withdrawn",
                format!("item {id} is withdrawn"),
            )),
            None => Err(violation(index, "item-exists", format!("no item {id}"))),
        }
    }

    /// The request, if it exists, is not answered, and `date` is not before
    /// its receipt.
    fn open_request(&self, index: u64, id: &str, date: Date) -> Result<&RequestState, Error> {
        let req = self.received_request(index, id)?;
        if let Some(answered) = req.clock.answered_on() {
            return Err(violation(
                index,
                "request-open",
                format!("request {id} was answered on {answered}"),
            ));
        }
        not_before_receipt(index, id, req, date)?;
        Ok(req)
    }

    /// Rule `request-exists`.
    fn received_request(&self, index: u64, id: &str) -> Result<&RequestState, Error> {
        self.requests
            .get(id)
            .ok_or_else(|| violation(index, "request-exists", format!("no request {id}")))
    }

    /// Advances the clock of an open request by one step; atomic.
    fn clock_step(
        &mut self,
        index: u64,
        request_id: &str,
        date: &str,
        step: fn(Date) -> ClockEvent,
    ) -> Result<(), Error> {
        let (id, clock) = self.stepped_clock(index, request_id, date, step)?;
        if let Some(req) = self.requests.get_mut(id) {
            req.clock = clock;
        }
        Ok(())
    }

    /// The clock of an open request after one more step, and the request's
    /// id; the catalog is not changed.
    fn stepped_clock<'a>(
        &self,
        index: u64,
        request_id: &'a str,
        date: &str,
        step: fn(Date) -> ClockEvent,
    ) -> Result<(&'a str, RequestClock), Error> {
        let id = checked(index, request_id, RequestId::check)?;
        let date = Date::parse(date)?;
        let mut clock = self.open_request(index, id, date)?.clock.clone();
        clock
            .apply(step(date))
            .map_err(|e| violation(index, "request-clock", e.to_string()))?;
        Ok((id, clock))
    }
}

impl MatterState {
    /// The state of an active matter defined at `defined_at` whose current
    /// definition is `m` (the same state the rules build).
    pub fn of(m: Option<&pb::Matter>, defined_at: u64) -> MatterState {
        matter_state(m.map(pb::Matter::view).as_ref(), defined_at)
    }
}

fn matter_state(m: Option<&view::Matter>, index: u64) -> MatterState {
    let (p, deadline_working_days, audience) = m.map_or((0, 0, 0), |m| {
        (m.periodicity, m.deadline_working_days, m.audience)
    });
    MatterState {
        active: true,
        periodicity: periodicity(p),
        deadline_working_days,
        restricted: audience == pb::Audience::Group as i32,
        defined_at: index,
    }
}

fn content_digest(c: Option<&view::ContentRef>) -> Result<Hash, Error> {
    match c {
        Some(c) => Hash::from_slice(c.digest),
        None => Ok(Hash::ZERO),
    }
}
