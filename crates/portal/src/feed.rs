//! Atom feeds (RFC 4287) for people who watch a county: what is newly
//! published, per county and per department, and the alerts an inspector
//! follows (amendments, withdrawals, removals, late and missing
//! disclosures, late requests, evidence of misbehaviour).

use std::fmt::Write as _;

/// One entry of a feed.
#[derive(Clone, Debug)]
pub struct Entry {
    /// A stable, unique id (a `tag:` URI).
    pub id: String,
    /// Title.
    pub title: String,
    /// Link (relative to the feed's URL).
    pub link: String,
    /// When, RFC 3339.
    pub updated: String,
    /// A line of text.
    pub summary: String,
}

/// Text escaped for XML content and attribute values.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if c.is_control() && !matches!(c, '\n' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// Unix ms as RFC 3339 in China Standard Time.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0) + 8 * 3600;
    let day = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let date = gongkai_core::date::Date::from_days_since_epoch(day)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "1970-01-01".into());
    format!(
        "{date}T{:02}:{:02}:{:02}+08:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A date (YYYY-MM-DD) as RFC 3339, midnight CST.
pub fn rfc3339_date(date: &str) -> String {
    format!("{date}T00:00:00+08:00")
}

/// The feed document. `entries` are newest first; the feed's `updated` is
/// the newest entry's (or `fallback` when there is none).
pub fn atom(id: &str, title: &str, self_link: &str, fallback: &str, entries: &[Entry]) -> String {
    let updated = entries.first().map_or(fallback, |e| e.updated.as_str());
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = writeln!(
        s,
        "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<id>{}</id>\n<title>{}</title>\n\
         <link rel=\"self\" href=\"{}\"/>\n<updated>{}</updated>\n<author><name>gongkai</name></author>",
        xml(id),
        xml(title),
        xml(self_link),
        xml(updated)
    );
    for e in entries {
        let _ = writeln!(
            s,
            "<entry>\n<id>{}</id>\n<title>{}</title>\n<link href=\"{}\"/>\n<updated>{}</updated>\n\
             <summary>{}</summary>\n</entry>",
            xml(&e.id),
            xml(&e.title),
            xml(&e.link),
            xml(&e.updated),
            xml(&e.summary)
        );
    }
    s.push_str("</feed>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped_and_times_are_cst() {
        let f = atom(
            "tag:x,2026:feed",
            "标题 <b>&",
            "/feed.atom",
            "2026-01-01T00:00:00+08:00",
            &[Entry {
                id: "tag:x,2026:1".into(),
                title: "a\"b'<script>\u{7}".into(),
                link: "/d/x/items/a?b=1&c=2".into(),
                updated: rfc3339_ms(1_767_283_200_000),
                summary: "s".into(),
            }],
        );
        assert!(f.contains("<title>标题 &lt;b&gt;&amp;</title>"));
        assert!(f.contains("a&quot;b&apos;&lt;script&gt;</title>"));
        assert!(f.contains("href=\"/d/x/items/a?b=1&amp;c=2\""));
        assert!(
            f.contains("<updated>2026-01-02T00:00:00+08:00</updated>"),
            "{f}"
        );
        assert!(!f.contains('\u{7}'));
    }
}
