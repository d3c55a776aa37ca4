//! Human output (tables that line up with Chinese text) and machine output
//! (`--json`: one JSON object per command).

use gongkai_core::date::Date;
use gongkai_core::event::pb;
use serde::Serialize;

/// Columns of a display width: CJK characters take two terminal cells.
pub fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            let wide = matches!(c,
                0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
                | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide { 2 } else { 1 }
        })
        .sum()
}

/// A plain text table: a header row and aligned columns, two spaces apart.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| display_width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().take(n).enumerate() {
                widths[i] = widths[i].max(display_width(c));
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = r.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < n {
                    line.extend(std::iter::repeat_n(' ', w - display_width(cell) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `YYYY-MM-DD HH:MM:SS` in China Standard Time for a Unix-ms time.
pub fn cst_time(ms: u64) -> String {
    let Ok(date) = Date::from_unix_ms_cst(ms) else {
        return format!("{ms} ms");
    };
    let secs = (ms / 1000 + 8 * 3600) % 86_400;
    format!(
        "{date} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// What a write prints: where the event landed in the log.
#[derive(Debug, Serialize, PartialEq)]
pub struct ReceiptOut {
    /// Leaf index of the new entry.
    pub index: u64,
    /// Leaf hash, hex.
    pub leaf_hash: String,
    /// Event kind, e.g. `published`.
    pub kind: String,
    /// True if the node returned the receipt of an earlier identical request.
    pub replayed: bool,
    /// The idempotency key the request carried.
    pub idempotency_key: String,
    /// The uploaded content, for events that carry one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentOut>,
}

impl ReceiptOut {
    /// The human line(s).
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} recorded at index {}\nleaf hash {}{}\n",
            self.kind,
            self.index,
            self.leaf_hash,
            if self.replayed {
                "\n(already recorded earlier with this idempotency key: nothing new was appended)"
            } else {
                ""
            }
        );
        if let Some(c) = &self.content {
            s.push_str(&c.human());
        }
        s
    }
}

/// A content commitment, for output.
#[derive(Debug, Serialize, PartialEq)]
pub struct ContentOut {
    /// Salted digest, hex.
    pub digest: String,
    /// Length in bytes.
    pub length: u64,
    /// Media type.
    pub media_type: String,
}

impl ContentOut {
    /// From the message.
    pub fn from_message(c: &pb::ContentRef) -> ContentOut {
        ContentOut {
            digest: hex::encode(&c.digest),
            length: c.length,
            media_type: c.media_type.clone(),
        }
    }

    /// The human line.
    pub fn human(&self) -> String {
        format!(
            "content {} ({} bytes, {})\n",
            self.digest, self.length, self.media_type
        )
    }
}

/// Prints `value` as one line of JSON.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(s) => println!("{s}"),
        // Serializing plain structs and `Value`s cannot fail.
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_json_shape() {
        let r = ReceiptOut {
            index: 7,
            leaf_hash: "ab".repeat(32),
            kind: "published".into(),
            replayed: false,
            idempotency_key: "k1".into(),
            content: Some(ContentOut {
                digest: "cd".repeat(32),
                length: 12,
                media_type: "application/pdf".into(),
            }),
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "index": 7,
                "leaf_hash": "ab".repeat(32),
                "kind": "published",
                "replayed": false,
                "idempotency_key": "k1",
                "content": {"digest": "cd".repeat(32), "length": 12, "media_type": "application/pdf"}
            })
        );
        let r = ReceiptOut { content: None, ..r };
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("content").is_none());
        assert!(r.human().starts_with("published recorded at index 7\n"));
    }

    #[test]
    fn tables_align_chinese_text() {
        let mut t = Table::new(&["ID", "TITLE", "DATE"]);
        t.row(vec!["a".into(), "预算".into(), "2026-01-01".into()]);
        t.row(vec!["bb".into(), "budget".into(), "2026-01-02".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID  TITLE   DATE");
        assert_eq!(lines[1], "a   预算    2026-01-01");
        assert_eq!(lines[2], "bb  budget  2026-01-02");
    }

    #[test]
    fn cst_times() {
        // 2026-01-01T16:00:00Z is midnight on 2 January in Beijing.
        assert_eq!(cst_time(1_767_283_200_000), "2026-01-02 00:00:00");
        assert_eq!(
            cst_time(1_767_283_200_000 + 3_723_000),
            "2026-01-02 01:02:03"
        );
    }
}
