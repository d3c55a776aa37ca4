//! What the portal shows, computed from a log's store: departments, the
//! catalog of matters with their obligations, items with their history and
//! deadlines, requests, and the inspection findings. Pages and the JSON API
//! render the same structures.

use std::collections::BTreeMap;
use std::sync::Arc;

use gongkai_core::Hash;
use gongkai_core::calendar::{Period, Periodicity, WorkCalendar};
use gongkai_core::catalog::ItemStatus;
use gongkai_core::chain::prepare;
use gongkai_core::date::Date;
use gongkai_core::event::{Kind, kind_name, pb};
use gongkai_core::merkle::HashReader;
use gongkai_store::projection::{ItemRecord, MatterRecord, Projection, RequestRecord};
use gongkai_store::{ContentStore, Journal, StoreError};
use serde::Serialize;

/// Read access to one mirrored log (the aggregator's mirror of a
/// department, or a node's own log).
pub trait LogRead: Send + Sync {
    /// The log's origin.
    fn origin(&self) -> &str;
    /// The entries.
    fn journal(&self) -> &Journal;
    /// Tree hashes and the catalog projection.
    fn projection(&self) -> &Projection;
    /// Content blobs.
    fn content(&self) -> &ContentStore;
    /// The newest checkpoint `(size, note)` with every signature and
    /// cosignature it carries.
    fn checkpoint(&self) -> Option<(u64, String)>;
    /// The working-day calendar judgements use: the seed table, unless the
    /// reader knows the tables the county published (FORMAT.md § 14.4).
    fn calendar(&self) -> Arc<WorkCalendar> {
        Arc::new(WorkCalendar::shipped().clone())
    }
}

/// A node's or a mirror's read side: the portal shows the newest checkpoint
/// the county cosigned (falling back to the department's own newest one).
impl LogRead for gongkai_node::view::LogView {
    fn origin(&self) -> &str {
        gongkai_node::view::LogView::origin(self).as_str()
    }
    fn journal(&self) -> &Journal {
        gongkai_node::view::LogView::journal(self)
    }
    fn projection(&self) -> &Projection {
        gongkai_node::view::LogView::projection(self)
    }
    fn content(&self) -> &ContentStore {
        gongkai_node::view::LogView::content(self)
    }
    fn checkpoint(&self) -> Option<(u64, String)> {
        self.cosigned()
            .or_else(|| gongkai_node::view::LogView::checkpoint(self))
    }
}

/// A log read whose judgements use a given calendar (the county's calendar
/// in force, FORMAT.md § 14.4).
pub struct WithCalendar {
    /// The log.
    pub log: Arc<dyn LogRead>,
    /// The calendar.
    pub calendar: Arc<WorkCalendar>,
}

impl LogRead for WithCalendar {
    fn origin(&self) -> &str {
        self.log.origin()
    }
    fn journal(&self) -> &Journal {
        self.log.journal()
    }
    fn projection(&self) -> &Projection {
        self.log.projection()
    }
    fn content(&self) -> &ContentStore {
        self.log.content()
    }
    fn checkpoint(&self) -> Option<(u64, String)> {
        self.log.checkpoint()
    }
    fn calendar(&self) -> Arc<WorkCalendar> {
        Arc::clone(&self.calendar)
    }
}

/// The county as the portal presents it.
#[derive(Clone, Debug, Serialize)]
pub struct CountyInfo {
    /// Display name, e.g. 某某县.
    pub name: String,
    /// The county log's origin.
    pub origin: String,
    /// The county's witness (cosigner) verifier keys.
    pub witnesses: Vec<String>,
    /// Cosignatures a reader requires (k of the witnesses).
    pub quorum: usize,
    /// The newest county checkpoint note, if any.
    pub checkpoint: Option<String>,
    /// The independent witnesses and what each cosigned (FORMAT.md § 21).
    pub independent: Vec<WitnessInfo>,
}

/// One independent witness as the county sees it.
#[derive(Clone, Debug, Serialize)]
pub struct WitnessInfo {
    /// Display name (e.g. 纪委监委).
    pub name: String,
    /// Its verifier key.
    pub vkey: String,
    /// Why it cannot be reached (empty when it answers).
    pub error: String,
    /// Per log: origin, size it cosigned, Unix ms of that cosignature, lag
    /// behind the county's newest, why it did not cosign the newest.
    pub logs: Vec<WitnessLog>,
}

/// What one witness cosigned of one log.
#[derive(Clone, Debug, Serialize)]
pub struct WitnessLog {
    /// The log.
    pub origin: String,
    /// Size cosigned.
    pub size: u64,
    /// Unix ms of the cosignature (0: none known).
    pub cosigned_ms: u64,
    /// Entries behind the county's newest cosigned size.
    pub lag: u64,
    /// Why not the newest (empty when it is).
    pub error: String,
}

/// One department as the aggregator knows it.
#[derive(Clone, Debug, Serialize)]
pub struct DepartmentInfo {
    /// Origin of its log.
    pub origin: String,
    /// Display name (from config or its Genesis event).
    pub name: String,
    /// Its log verifier keys (the trust roots from the county config).
    pub vkeys: Vec<String>,
    /// Entries mirrored.
    pub size: u64,
    /// Largest size the county cosigned.
    pub cosigned_size: u64,
    /// Unix ms of the newest cosignature (0: never).
    pub cosigned_ms: u64,
    /// Evidence files recorded against it.
    pub evidence: usize,
    /// Current alerts (not advancing, not pushing, evidence).
    pub alerts: Vec<String>,
}

/// A piece of evidence of misbehaviour.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceInfo {
    /// Its id (file name).
    pub id: String,
    /// Department.
    pub origin: String,
    /// What it proves.
    pub kind: String,
    /// Unix ms when recorded.
    pub created_ms: u64,
    /// Whether an operator cleared it.
    pub cleared: bool,
}

/// Read access to the county log (FORMAT.md § 19), which the portal
/// serves as static files like a department log (§ 9.4). Its stored hashes
/// come through the supertrait [`HashReader`].
pub trait CountyLogRead: HashReader + Send + Sync {
    /// The county log's origin.
    fn origin(&self) -> &str;
    /// The newest county checkpoint `(size, note)`, signed by the county
    /// log key.
    fn checkpoint(&self) -> Option<(u64, String)>;
    /// Leaves `[start, end)`, each a county leaf (§ 19) or a calendar leaf
    /// (§ 14.4).
    ///
    /// # Errors
    /// Storage errors, in words.
    fn leaves(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, String>;
}

/// Where the portal gets everything it shows.
pub trait Source: Send + Sync + 'static {
    /// The county.
    fn county(&self) -> CountyInfo;
    /// Every department, in display order.
    fn departments(&self) -> Vec<DepartmentInfo>;
    /// The mirrored log of `origin`.
    fn log(&self, origin: &str) -> Option<Arc<dyn LogRead>>;
    /// Evidence of misbehaviour, newest first.
    fn evidence(&self) -> Vec<EvidenceInfo>;
    /// The county log, if this source has one (the aggregator does).
    fn county_log(&self) -> Option<Arc<dyn CountyLogRead>> {
        None
    }
}

/// Errors reading a log for display.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A stored entry did not verify as an event (should not happen: the
    /// aggregator verified it before storing).
    #[error("entry {index}: {why}")]
    Entry {
        /// Its index.
        index: u64,
        /// What is wrong.
        why: String,
    },
}

/// `origin` ⇄ URL path segment: `/` becomes `~` (origins never contain `~`).
pub fn slug(origin: &str) -> String {
    origin.replace('/', "~")
}

/// The origin of a slug.
pub fn unslug(slug: &str) -> String {
    slug.replace('~', "/")
}

/// Today in China Standard Time (`None` only for a clock past year 9999).
pub fn today() -> Option<Date> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    Date::from_unix_ms_cst(ms).ok()
}

/// One entry of a history, decoded for display.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEvent {
    /// Leaf index.
    pub index: u64,
    /// Kind name (FORMAT.md).
    pub kind: &'static str,
    /// Claimed time, Unix ms.
    pub time_ms: u64,
    /// Its date (CST).
    pub date: String,
    /// Title after this event (published, amended).
    pub title: String,
    /// Reason (amended, withdrawn, redacted, matter changes).
    pub reason: String,
    /// Legal basis (published, withdrawn, retired).
    pub legal_basis: String,
    /// Date the information changed (amended) or was formed (published).
    pub date_info: String,
    /// Content digest (hex) named by the event.
    pub digest: String,
    /// Whether that event met its disclosure deadline (None: no deadline).
    pub on_time: Option<bool>,
    /// The due date, when there is one.
    pub due: String,
    /// The year whose holiday table is missing, when the deadline cannot be
    /// judged yet.
    pub not_judged_year: Option<i32>,
}

/// The salts of the documents `digests` (hex) that the log holds, as
/// `{digest hex: salt base64}` — what a browser needs to check a
/// downloaded file against a verified commitment (FORMAT.md § 13; the
/// salt is public with public content). Redacted or missing ones are left
/// out.
pub fn salts<'a>(
    log: &dyn LogRead,
    digests: impl Iterator<Item = &'a str>,
) -> serde_json::Map<String, serde_json::Value> {
    use base64::Engine as _;
    let mut out = serde_json::Map::new();
    for hex in digests {
        if out.contains_key(hex) {
            continue;
        }
        let Ok(digest) = Hash::from_hex(hex) else {
            continue;
        };
        if let Ok(Some(blob)) = log.content().get(&digest) {
            out.insert(
                hex.to_owned(),
                base64::engine::general_purpose::STANDARD
                    .encode(blob.salt)
                    .into(),
            );
        }
    }
    out
}

/// One version of an item's document, for the item page.
#[derive(Clone, Debug, Serialize)]
pub struct Version {
    /// 1 for the first publication, 2 after the first amendment, …
    pub number: usize,
    /// Content digest (hex).
    pub digest: String,
    /// Media type.
    pub media_type: String,
    /// Length in bytes.
    pub length: u64,
    /// Date of the event that recorded it.
    pub date: String,
    /// Removed by a Redacted event (the commitment stays).
    pub redacted: bool,
    /// The text, for text documents small enough to compare.
    pub text: Option<String>,
}

/// Largest text document compared between versions.
const MAX_DIFF_BYTES: u64 = 64 << 10;

/// Every version of an item's document, oldest first, from its history;
/// text documents are read (up to [`MAX_DIFF_BYTES`]) so a page can show
/// what changed.
pub fn versions(log: &dyn LogRead, rec: &ItemRecord, history: &[HistoryEvent]) -> Vec<Version> {
    let mut out = Vec::new();
    for h in history
        .iter()
        .filter(|h| !h.digest.is_empty() && matches!(h.kind, "published" | "amended"))
    {
        let Some(c) = rec.versions.iter().find(|v| v.digest.to_hex() == h.digest) else {
            continue;
        };
        let redacted = rec.redacted.contains(&c.digest);
        let text = if !redacted && c.media_type.starts_with("text/") && c.length <= MAX_DIFF_BYTES {
            log.content()
                .get(&c.digest)
                .ok()
                .flatten()
                .and_then(|blob| {
                    let mut s = String::new();
                    std::io::Read::read_to_string(
                        &mut std::io::Read::take(blob.file, blob.len),
                        &mut s,
                    )
                    .ok()
                    .map(|_| s)
                })
        } else {
            None
        };
        out.push(Version {
            number: out.len() + 1,
            digest: h.digest.clone(),
            media_type: c.media_type.clone(),
            length: c.length,
            date: h.date.clone(),
            redacted,
            text,
        });
    }
    out
}

/// A line diff of `old` and `new`: (`' '` same, `'-'` removed, `'+'`
/// added, line). Longest common subsequence over at most 400 lines each;
/// longer texts are not compared (`None`).
pub fn line_diff(old: &str, new: &str) -> Option<Vec<(char, String)>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() > 400 || b.len() > 400 {
        return None;
    }
    // lcs[i][j]: common lines of a[i..] and b[j..].
    let mut lcs = vec![vec![0u16; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push((' ', a[i].to_owned()));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as diffs are read.
            out.push(('-', a[i].to_owned()));
            i += 1;
        } else {
            out.push(('+', b[j].to_owned()));
            j += 1;
        }
    }
    Some(out)
}

/// Decodes the entry at `index`.
pub fn event_at(log: &dyn LogRead, index: u64) -> Result<gongkai_core::event::Event, ModelError> {
    let bytes = log.journal().read(index)?;
    prepare(bytes, index)
        .map(|p| p.event)
        .map_err(|e| ModelError::Entry {
            index,
            why: e.to_string(),
        })
}

/// The department's display name from its Genesis event.
pub fn genesis_name(log: &dyn LogRead) -> Option<String> {
    match event_at(log, 0).ok()?.kind {
        Kind::Genesis(g) => Some(g.department),
        _ => None,
    }
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s).ok()
}

/// Whether a disclosure met its deadline, as the calendar in force says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Judged {
    /// Met the deadline (None: no deadline, imported, or not judged yet).
    pub on_time: Option<bool>,
    /// The due date, when there is one.
    pub due: String,
    /// The year whose holiday table is missing, when the judgement cannot
    /// be made yet ("cannot judge yet: no holiday table for YEAR").
    pub not_judged_year: Option<i32>,
    /// The tables the judgement used (FORMAT.md § 14.4).
    pub calendar: String,
}

/// Due date and whether the event at `time_ms` met it.
fn deadline(cal: &WorkCalendar, formed: &str, days: u32, time_ms: u64, imported: bool) -> Judged {
    if days == 0 || imported {
        return Judged::default();
    }
    let (Some(formed), Ok(done)) = (parse_date(formed), Date::from_unix_ms_cst(time_ms)) else {
        return Judged::default();
    };
    match cal.disclosure_due(formed, days) {
        Ok(due) => Judged {
            on_time: Some(done <= due),
            due: due.to_string(),
            not_judged_year: None,
            calendar: cal.describe(formed, due),
        },
        Err(gongkai_core::Error::CalendarYearNotCovered { year }) => Judged {
            not_judged_year: Some(year),
            ..Judged::default()
        },
        Err(_) => Judged::default(),
    }
}

/// The history of an item, each entry decoded.
pub fn item_history(
    log: &dyn LogRead,
    rec: &ItemRecord,
    matter: Option<&pb::Matter>,
) -> Result<Vec<HistoryEvent>, ModelError> {
    rec.history
        .iter()
        .map(|&index| {
            Ok(history_event(
                &log.calendar(),
                event_at(log, index)?,
                rec,
                matter,
            ))
        })
        .collect()
}

/// One entry of an item's history, for display.
fn history_event(
    cal: &WorkCalendar,
    ev: gongkai_core::event::Event,
    rec: &ItemRecord,
    matter: Option<&pb::Matter>,
) -> HistoryEvent {
    let days = matter.map_or(0, |m| m.deadline_working_days);
    let mut h = HistoryEvent {
        index: ev.index,
        kind: kind_name(&ev.kind),
        time_ms: ev.time_ms,
        date: ev.date.to_string(),
        title: String::new(),
        reason: String::new(),
        legal_basis: String::new(),
        date_info: String::new(),
        digest: String::new(),
        on_time: None,
        due: String::new(),
        not_judged_year: None,
    };
    match ev.kind {
        Kind::Published(p) => {
            let j = deadline(cal, &p.date_formed, days, ev.time_ms, p.imported);
            (h.on_time, h.due, h.not_judged_year) = (j.on_time, j.due, j.not_judged_year);
            h.title = p.title;
            h.legal_basis = p.legal_basis;
            h.date_info = p.date_formed;
            h.digest = p.content.map(|c| hex::encode(c.digest)).unwrap_or_default();
        }
        Kind::Amended(a) => {
            let j = deadline(cal, &a.date_changed, days, ev.time_ms, rec.imported);
            (h.on_time, h.due, h.not_judged_year) = (j.on_time, j.due, j.not_judged_year);
            h.title = a.title;
            h.reason = a.reason;
            h.date_info = a.date_changed;
            h.digest = a.content.map(|c| hex::encode(c.digest)).unwrap_or_default();
        }
        Kind::Withdrawn(w) => {
            h.reason = w.reason;
            h.legal_basis = w.legal_basis;
        }
        Kind::Redacted(r) => {
            h.reason = r.reason;
            h.legal_basis = r.legal_basis;
            h.digest = hex::encode(r.content_digest);
        }
        _ => {}
    }
    h
}

/// An item, for lists and its page.
#[derive(Clone, Debug, Serialize)]
pub struct ItemSummary {
    /// Id.
    pub item_id: String,
    /// Matter id.
    pub matter_id: String,
    /// Matter name (level 1 / level 2).
    pub matter_name: String,
    /// Category of the matter.
    pub category: String,
    /// Current title.
    pub title: String,
    /// `current`, `amended`, `withdrawn` or `redacted`.
    pub status: &'static str,
    /// Date formed.
    pub date_formed: String,
    /// Date published (CST).
    pub date_published: String,
    /// Period (periodic matters).
    pub period: String,
    /// Bulk-imported.
    pub imported: bool,
    /// Audience is a specific group: content not served publicly.
    pub restricted: bool,
    /// Current content digest (hex), length and media type.
    pub digest: String,
    /// Length.
    pub length: u64,
    /// Media type.
    pub media_type: String,
    /// Whether the current content is still held (not redacted).
    pub content_available: bool,
    /// Publication met the matter's deadline (None: no deadline or imported).
    pub on_time: Option<bool>,
    /// The year whose holiday table is missing, when the deadline cannot be
    /// judged yet.
    pub not_judged_year: Option<i32>,
    /// Related items `(origin, id, relation)`.
    pub related: Vec<(String, String, &'static str)>,
    /// Index of the publishing entry.
    pub published_index: u64,
}

/// `level1 / level2` (or just level 1).
pub fn matter_name(m: &pb::Matter) -> String {
    if m.level2.is_empty() {
        m.level1.clone()
    } else {
        format!("{} / {}", m.level1, m.level2)
    }
}

fn relation_name(r: i32) -> &'static str {
    match pb::Relation::try_from(r) {
        Ok(pb::Relation::Draft) => "draft",
        Ok(pb::Relation::Consultation) => "consultation",
        Ok(pb::Relation::Decision) => "decision",
        _ => "related",
    }
}

/// The status name used in filters, URLs and JSON.
pub fn status_name(rec: &ItemRecord) -> &'static str {
    match rec.status {
        ItemStatus::Withdrawn => "withdrawn",
        _ if !rec.redacted.is_empty() => "redacted",
        ItemStatus::Amended => "amended",
        ItemStatus::Current => "current",
    }
}

/// Builds the summary of an item.
pub fn summarize(cal: &WorkCalendar, rec: &ItemRecord, matter: Option<&pb::Matter>) -> ItemSummary {
    let current = rec.current();
    let digest = current.map(|c| c.digest).unwrap_or(Hash::ZERO);
    let published = Date::from_unix_ms_cst(rec.published_time_ms)
        .map(|d| d.to_string())
        .unwrap_or_default();
    let days = matter.map_or(0, |m| m.deadline_working_days);
    let judged = deadline(
        cal,
        &rec.date_formed,
        days,
        rec.published_time_ms,
        rec.imported,
    );
    ItemSummary {
        item_id: rec.item_id.clone(),
        matter_id: rec.matter_id.clone(),
        matter_name: matter.map(matter_name).unwrap_or_default(),
        category: matter.map(|m| m.category.clone()).unwrap_or_default(),
        title: rec.title.clone(),
        status: status_name(rec),
        date_formed: rec.date_formed.clone(),
        date_published: published,
        period: rec.period.clone(),
        imported: rec.imported,
        restricted: matter.is_some_and(|m| m.audience == pb::Audience::Group as i32),
        digest: hex::encode(digest.0),
        length: current.map_or(0, |c| c.length),
        media_type: current.map(|c| c.media_type.clone()).unwrap_or_default(),
        content_available: !rec.redacted.contains(&digest),
        on_time: judged.on_time,
        not_judged_year: judged.not_judged_year,
        related: rec
            .related
            .iter()
            .map(|r| {
                (
                    r.origin.clone(),
                    r.item_id.clone(),
                    relation_name(r.relation),
                )
            })
            .collect(),
        published_index: rec.published_index,
    }
}

/// Every matter of a log by id.
pub fn matters(log: &dyn LogRead) -> Result<BTreeMap<String, MatterRecord>, ModelError> {
    let mut out = BTreeMap::new();
    for m in log.projection().matters() {
        let m = m?;
        out.insert(m.matter_id.clone(), m);
    }
    Ok(out)
}

/// Filters for item lists (all optional).
#[derive(Clone, Debug, Default, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemFilter {
    /// Matter id.
    pub matter: String,
    /// Category.
    pub category: String,
    /// `current`, `amended`, `withdrawn`, `redacted`.
    pub status: String,
    /// Formed on or after (YYYY-MM-DD).
    pub from: String,
    /// Formed on or before.
    pub to: String,
    /// Title contains.
    pub q: String,
    /// Page token: the last item id of the previous page (the API's id
    /// order).
    pub after: String,
    /// Order of the catalog page: `newest` (default), `oldest`, `title`.
    pub sort: String,
    /// Page of the catalog page, from 1.
    pub page: String,
    /// Language of pages (`zh`, `en`).
    pub lang: String,
}

impl ItemFilter {
    /// Checks the filter's values.
    ///
    /// # Errors
    /// A message naming the bad parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(
            self.status.as_str(),
            "" | "current" | "amended" | "withdrawn" | "redacted"
        ) {
            return Err(format!("status: unknown value {:?}", self.status));
        }
        if !matches!(self.sort.as_str(), "" | "newest" | "oldest" | "title") {
            return Err(format!("sort: unknown value {:?}", self.sort));
        }
        if !self.page.is_empty() && self.page.parse::<usize>().map_or(true, |p| p == 0) {
            return Err(format!("page: not a page number {:?}", self.page));
        }
        for (name, d) in [("from", &self.from), ("to", &self.to)] {
            if !d.is_empty() && Date::parse(d).is_err() {
                return Err(format!("{name}: not a date (YYYY-MM-DD)"));
            }
        }
        if [&self.matter, &self.category, &self.q, &self.after]
            .iter()
            .any(|s| s.len() > 256)
        {
            return Err("a parameter is longer than 256 bytes".into());
        }
        Ok(())
    }

    fn keep(&self, s: &ItemSummary) -> bool {
        (self.matter.is_empty() || s.matter_id == self.matter)
            && (self.category.is_empty() || s.category == self.category)
            && (self.status.is_empty() || s.status == self.status)
            && (self.from.is_empty() || s.date_formed >= self.from)
            && (self.to.is_empty() || s.date_formed <= self.to)
            && (self.q.is_empty() || s.title.contains(&self.q))
    }
}

/// A recent publication or amendment, for the home page.
#[derive(Clone, Debug, Serialize)]
pub struct Recent {
    /// The department's log.
    pub origin: String,
    /// The department's name.
    pub department: String,
    /// Item id.
    pub item_id: String,
    /// Title (of the version recorded).
    pub title: String,
    /// `published` or `amended`.
    pub kind: &'static str,
    /// Entry time, Unix ms.
    pub time_ms: u64,
}

/// Entries read from the end of each log for [`recent`].
const RECENT_SCAN: u64 = 256;

/// The `n` newest publications and amendments across the county's
/// departments, from the last entries of each log up to its checkpoint
/// (so the cost does not grow with the logs).
pub fn recent(source: &dyn Source, n: usize) -> Vec<Recent> {
    let mut out = Vec::new();
    for d in source.departments() {
        if let Some(log) = source.log(&d.origin) {
            out.extend(recent_in(log.as_ref(), &d, n));
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.time_ms));
    out.truncate(n);
    out
}

/// As [`recent`], for one department's log.
pub fn recent_in(log: &dyn LogRead, d: &DepartmentInfo, n: usize) -> Vec<Recent> {
    let mut out = Vec::new();
    {
        let Some((size, _)) = log.checkpoint() else {
            return out;
        };
        let start = size.saturating_sub(RECENT_SCAN);
        let Ok(entries) = log.journal().read_range(start, size) else {
            return out;
        };
        for (index, bytes) in (start..).zip(entries) {
            let Ok(entry) = gongkai_core::entry::Entry::parse(bytes, index) else {
                continue;
            };
            let Ok(e) = gongkai_core::event::Event::decode(entry.body(), index) else {
                continue;
            };
            let (item_id, title, kind) = match &e.kind {
                Kind::Published(p) => (p.item_id.clone(), p.title.clone(), "published"),
                Kind::Amended(a) => (a.item_id.clone(), a.title.clone(), "amended"),
                _ => continue,
            };
            out.push(Recent {
                origin: d.origin.clone(),
                department: d.name.clone(),
                item_id,
                title,
                kind,
                time_ms: e.time_ms,
            });
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.time_ms));
    out.truncate(n);
    out
}

/// A page of the catalog for people: items matching `filter` in its
/// order (newest publication first by default), page `filter.page` of
/// `page` items, and how many match in all. Reads every item record (as
/// the matter summaries of the same page do).
pub fn list_items_sorted(
    log: &dyn LogRead,
    matters: &BTreeMap<String, MatterRecord>,
    filter: &ItemFilter,
    page: usize,
) -> Result<(Vec<ItemSummary>, usize), ModelError> {
    let decoded: BTreeMap<&String, pb::Matter> =
        matters.iter().map(|(id, m)| (id, m.matter())).collect();
    let cal = log.calendar();
    let mut all = Vec::new();
    for rec in log.projection().items_after("") {
        let rec = rec?;
        let s = summarize(&cal, &rec, decoded.get(&rec.matter_id));
        if filter.keep(&s) {
            all.push(s);
        }
    }
    match filter.sort.as_str() {
        "oldest" => all.sort_by_key(|s| s.published_index),
        "title" => all.sort_by(|a, b| a.title.cmp(&b.title).then(a.item_id.cmp(&b.item_id))),
        _ => all.sort_by_key(|s| std::cmp::Reverse(s.published_index)),
    }
    let total = all.len();
    // A page past the end shows the last one (as the page's links do).
    let pages = total.div_ceil(page.max(1)).max(1);
    let n = filter.page.parse::<usize>().unwrap_or(1).clamp(1, pages);
    let items = all
        .into_iter()
        .skip((n - 1).saturating_mul(page.max(1)))
        .take(page.max(1))
        .collect();
    Ok((items, total))
}

/// One page of items matching `filter`, and the token of the next page.
pub fn list_items(
    log: &dyn LogRead,
    matters: &BTreeMap<String, MatterRecord>,
    filter: &ItemFilter,
    page: usize,
) -> Result<(Vec<ItemSummary>, Option<String>), ModelError> {
    let decoded: BTreeMap<&String, pb::Matter> =
        matters.iter().map(|(id, m)| (id, m.matter())).collect();
    let cal = log.calendar();
    let mut out = Vec::new();
    for rec in log.projection().items_after(&filter.after) {
        let rec = rec?;
        let s = summarize(&cal, &rec, decoded.get(&rec.matter_id));
        if filter.keep(&s) {
            if out.len() == page {
                let next = out.last().map(|x: &ItemSummary| x.item_id.clone());
                return Ok((out, next));
            }
            out.push(s);
        }
    }
    Ok((out, None))
}

/// A matter of the standard catalog with how its obligations stand.
#[derive(Clone, Debug, Serialize)]
pub struct MatterSummary {
    /// Id.
    pub matter_id: String,
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Legal basis of the obligation.
    pub basis: String,
    /// Working days to disclose.
    pub deadline_working_days: u32,
    /// `public` or the group it is for.
    pub audience: String,
    /// Periodicity name (`none`, `annual`, …).
    pub periodicity: &'static str,
    /// Still in force.
    pub active: bool,
    /// Items published under it.
    pub items: usize,
    /// Items published late.
    pub late: usize,
    /// Periods due with no item (periodic matters).
    pub missing_periods: Vec<String>,
    /// How many times it was changed.
    pub changes: usize,
}

fn periodicity(m: &pb::Matter) -> Option<Periodicity> {
    match pb::Periodicity::try_from(m.periodicity) {
        Ok(pb::Periodicity::Yearly) => Some(Periodicity::Yearly),
        Ok(pb::Periodicity::HalfYearly) => Some(Periodicity::HalfYearly),
        Ok(pb::Periodicity::Quarterly) => Some(Periodicity::Quarterly),
        Ok(pb::Periodicity::Monthly) => Some(Periodicity::Monthly),
        _ => None,
    }
}

/// The catalog of matters with their obligations as of `today`.
pub fn matter_summaries(
    log: &dyn LogRead,
    matters: &BTreeMap<String, MatterRecord>,
    today: Date,
) -> Result<Vec<MatterSummary>, ModelError> {
    let mut items: BTreeMap<String, (usize, usize, Vec<String>)> = BTreeMap::new();
    for rec in log.projection().items_after("") {
        let rec = rec?;
        let m = matters.get(&rec.matter_id).map(MatterRecord::matter);
        let s = summarize(&log.calendar(), &rec, m.as_ref());
        let e = items.entry(rec.matter_id.clone()).or_default();
        e.0 += 1;
        if s.on_time == Some(false) {
            e.1 += 1;
        }
        if !rec.period.is_empty() && rec.status != ItemStatus::Withdrawn {
            e.2.push(rec.period.clone());
        }
    }
    let cal = log.calendar();
    let mut out = Vec::new();
    for (id, rec) in matters {
        let m = rec.matter();
        let (count, late, periods) = items.remove(id).unwrap_or_default();
        let mut missing = Vec::new();
        if let (Some(p), Some(from), true) =
            (periodicity(&m), parse_date(&m.periods_from), rec.active)
            && let Ok(due) = cal.periods_due(p, from, m.deadline_working_days, today)
        {
            for (period, due_on) in due {
                let label = period.to_string();
                if due_on < today
                    && !periods
                        .iter()
                        .any(|x| Period::parse(x).ok() == Some(period))
                {
                    missing.push(label);
                }
            }
        }
        out.push(MatterSummary {
            matter_id: id.clone(),
            name: matter_name(&m),
            category: m.category.clone(),
            basis: m.legal_basis.clone(),
            deadline_working_days: m.deadline_working_days,
            audience: if m.audience == pb::Audience::Group as i32 {
                m.audience_group.clone()
            } else {
                "public".into()
            },
            periodicity: periodicity(&m).map_or("none", |p| match p {
                Periodicity::Yearly => "yearly",
                Periodicity::HalfYearly => "half-yearly",
                Periodicity::Quarterly => "quarterly",
                Periodicity::Monthly => "monthly",
            }),
            active: rec.active,
            items: count,
            late,
            missing_periods: missing,
            changes: rec.history.len().saturating_sub(1),
        });
    }
    Ok(out)
}

/// A disclosure request, for display.
#[derive(Clone, Debug, Serialize)]
pub struct RequestSummary {
    /// Id.
    pub request_id: String,
    /// Subject.
    pub subject: String,
    /// Date received.
    pub received: String,
    /// Answer deadline (empty while the clock is paused).
    pub deadline: String,
    /// Date answered (empty: open).
    pub answered: String,
    /// Decision name (empty: open).
    pub decision: String,
    /// Extended.
    pub extended: bool,
    /// Answered after the deadline.
    pub late: bool,
    /// Open past the deadline as of today.
    pub overdue: bool,
    /// The year whose holiday table is missing, when the deadline or the
    /// lateness cannot be judged yet.
    pub not_judged_year: Option<i32>,
    /// The tables the judgement used (FORMAT.md § 14.4).
    pub calendar: String,
}

/// Every request, in id order.
pub fn requests(log: &dyn LogRead, today: Date) -> Result<Vec<RequestSummary>, ModelError> {
    let cal = log.calendar();
    let cal = cal.as_ref();
    let mut out = Vec::new();
    for r in log.projection().requests_after("") {
        let r: RequestRecord = r?;
        let judged = gongkai_node::view::RequestJudgement::of(&r.clock, cal);
        let due = judged.deadline;
        let answered = r.clock.answered_on();
        out.push(RequestSummary {
            request_id: r.request_id.clone(),
            subject: r.subject.clone(),
            received: r.clock.received().to_string(),
            deadline: due.map(|d| d.to_string()).unwrap_or_default(),
            answered: answered.map(|d| d.to_string()).unwrap_or_default(),
            // The row of the annual report's table 三 (FORMAT.md § 22.2):
            // the same words for new and older answers.
            decision: if answered.is_some() {
                crate::annual::result_label(gongkai_core::report::result_row(r.decision, r.outcome))
            } else {
                String::new()
            },
            extended: r.clock.extended_on().is_some(),
            late: judged.late,
            overdue: answered.is_none() && due.is_some_and(|d| d < today),
            not_judged_year: judged.not_judged_year,
            calendar: judged.calendar,
        });
    }
    Ok(out)
}

/// The inspection office's view of one department.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// Department origin.
    pub origin: String,
    /// Department name.
    pub name: String,
    /// Items published after their matter's deadline.
    pub late_items: Vec<ItemSummary>,
    /// `(matter id, matter name, period)` due with no item.
    pub missing: Vec<(String, String, String)>,
    /// Requests answered late or open past their deadline.
    pub late_requests: Vec<RequestSummary>,
    /// Amendments, withdrawals and redactions in the period, with the item.
    pub changes: Vec<(String, HistoryEvent)>,
    /// Matter changes and retirements in the period.
    pub catalog_changes: Vec<(String, HistoryEvent)>,
}

/// Builds the inspection view of one log for events dated in `[from, to]`.
pub fn inspect(
    log: &dyn LogRead,
    name: &str,
    from: Date,
    to: Date,
    today: Date,
) -> Result<Inspection, ModelError> {
    let matters = matters(log)?;
    let mut late_items = Vec::new();
    let mut changes = Vec::new();
    for rec in log.projection().items_after("") {
        let rec = rec?;
        let m = matters.get(&rec.matter_id).map(MatterRecord::matter);
        let s = summarize(&log.calendar(), &rec, m.as_ref());
        if s.on_time == Some(false) {
            late_items.push(s);
        }
        for &index in rec.history.iter().skip(1) {
            let ev = event_at(log, index)?;
            if ev.date < from || ev.date > to {
                continue;
            }
            changes.push((
                rec.item_id.clone(),
                history_event(&log.calendar(), ev, &rec, m.as_ref()),
            ));
        }
    }
    let mut missing = Vec::new();
    let mut catalog_changes = Vec::new();
    for s in matter_summaries(log, &matters, today)? {
        for p in &s.missing_periods {
            missing.push((s.matter_id.clone(), s.name.clone(), p.clone()));
        }
    }
    for (id, rec) in &matters {
        for &index in rec.history.iter().skip(1) {
            let ev = event_at(log, index)?;
            if ev.date < from || ev.date > to {
                continue;
            }
            let (reason, basis) = match &ev.kind {
                Kind::MatterChanged(c) => (c.reason.clone(), String::new()),
                Kind::MatterRetired(r) => (r.reason.clone(), r.legal_basis.clone()),
                _ => (String::new(), String::new()),
            };
            catalog_changes.push((
                id.clone(),
                HistoryEvent {
                    index,
                    kind: kind_name(&ev.kind),
                    time_ms: ev.time_ms,
                    date: ev.date.to_string(),
                    title: matter_name(&rec.matter()),
                    reason,
                    legal_basis: basis,
                    date_info: String::new(),
                    digest: String::new(),
                    on_time: None,
                    due: String::new(),
                    not_judged_year: None,
                },
            ));
        }
    }
    let late_requests = requests(log, today)?
        .into_iter()
        .filter(|r| r.late || r.overdue)
        .collect();
    Ok(Inspection {
        origin: log.origin().to_owned(),
        name: name.to_owned(),
        late_items,
        missing,
        late_requests,
        changes,
        catalog_changes,
    })
}

#[cfg(test)]
mod diff_tests {
    use super::line_diff;

    #[test]
    fn line_diff_marks_removed_and_added_lines() {
        let d = line_diff(
            "标题\n支出 1,234.56 万元\n附表",
            "标题\n支出 1,243.56 万元\n附表",
        )
        .unwrap();
        assert_eq!(
            d,
            vec![
                (' ', "标题".to_owned()),
                ('-', "支出 1,234.56 万元".to_owned()),
                ('+', "支出 1,243.56 万元".to_owned()),
                (' ', "附表".to_owned()),
            ]
        );
        assert_eq!(line_diff("", "a").unwrap(), vec![('+', "a".to_owned())]);
        assert_eq!(line_diff("a", "").unwrap(), vec![('-', "a".to_owned())]);
        // Both texts come back from every diff (all pairs of small texts
        // over a three-line alphabet).
        let texts: Vec<String> = (0..81u32)
            .map(|n| {
                (0..4)
                    .filter_map(|k| match (n / 3u32.pow(k)) % 3 {
                        0 => None,
                        1 => Some("a"),
                        _ => Some("b"),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        for old in &texts {
            for new in &texts {
                let d = line_diff(old, new).unwrap();
                let side = |keep: char| {
                    d.iter()
                        .filter(|(m, _)| *m == ' ' || *m == keep)
                        .map(|(_, l)| l.as_str())
                        .collect::<Vec<_>>()
                };
                assert_eq!(side('-'), old.lines().collect::<Vec<_>>());
                assert_eq!(side('+'), new.lines().collect::<Vec<_>>());
            }
        }
        let long = "x\n".repeat(401);
        assert!(
            line_diff(&long, "y").is_none(),
            "long texts are not compared"
        );
    }
}
