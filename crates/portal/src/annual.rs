//! The annual report (政府信息公开工作年度报告) rendered for people: HTML in
//! the national table layout (printable on A4), Markdown and CSV. The
//! numbers come from `gongkai_core::report`; nothing here counts.

use std::fmt::Write as _;

use gongkai_core::event::pb;
use gongkai_core::report::{
    ANNEX, AnnualReport, TABLE2_ROWS, TABLE3_COLUMNS, TABLE3_RESULTS, TABLE4_PROCEDURES,
    TABLE4_RESULTS, wan_yuan,
};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The printed form of a cell's value (the fee row is in 万元).
pub fn shown(report: &AnnualReport, id: &str) -> String {
    let v = report.value(id);
    if id == "t2.fee.amount" {
        wan_yuan(v)
    } else {
        v.to_string()
    }
}

/// Table 三's rows as shown: the legacy row "理由未记录" only when it
/// counts something (it exists for answers recorded before outcomes).
fn shown_rows(report: &AnnualReport) -> Vec<(&'static str, &'static str, &'static str)> {
    table3_rows()
        .into_iter()
        .filter(|(row, _, _)| {
            *row != "withheld_unrecorded" || report.value("t3.withheld_unrecorded.total") > 0
        })
        .collect()
}

/// Table 三's rows: (id, group, label) with the received/carried rows.
fn table3_rows() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut rows = vec![("new", "一、本年新收政府信息公开申请数量", "")];
    rows.push(("carried_in", "二、上年结转政府信息公开申请数量", ""));
    rows.extend(TABLE3_RESULTS.iter().copied());
    rows.push(("carried_out", "四、结转下年度继续办理", ""));
    rows
}

/// Whether the "类别未记录" column has anything (it exists only for
/// requests recorded before the category field).
fn has_unrecorded(report: &AnnualReport) -> bool {
    report
        .cells
        .iter()
        .any(|c| c.id.ends_with(".unrecorded") && c.value > 0)
}

/// The report's tables as HTML: `link(cell id)` gives the page listing a
/// cell's entries (the portal), or `None` (a file).
pub fn tables(report: &AnnualReport, link: Option<&dyn Fn(&str) -> String>) -> Markup {
    let num = |id: &str| -> Markup {
        let text = shown(report, id);
        match link {
            Some(l)
                if report.value(id) > 0
                    || report.cell(id).is_some_and(|c| !c.subjects.is_empty()) =>
            {
                html! { a href=(l(id)) { (text) } }
            }
            _ => html! { (text) },
        }
    };
    let columns: Vec<(&str, &str)> = TABLE3_COLUMNS
        .iter()
        .copied()
        .filter(|(c, _)| *c != "unrecorded" || has_unrecorded(report))
        .collect();
    let rows = shown_rows(report);
    let org_span = columns
        .iter()
        .filter(|(c, _)| !matches!(*c, "natural_person" | "total"))
        .count();
    html! {
        h2 { "二、主动公开政府信息情况" }
        table.report {
            tr { th colspan="4" { "第二十条第（一）项" } }
            tr { th { "信息内容" } th { "本年制发件数" } th { "本年废止件数" } th { "现行有效件数" } }
            @for (row, _, label) in &TABLE2_ROWS[..2] {
                tr {
                    td { (label) }
                    td.n { (num(&format!("t2.{row}.issued"))) }
                    td.n { (num(&format!("t2.{row}.repealed"))) }
                    td.n { (num(&format!("t2.{row}.in_force"))) }
                }
            }
            tr { th colspan="4" { "第二十条第（五）项" } }
            tr { th { "信息内容" } th colspan="3" { "本年处理决定数量" } }
            tr { td { "行政许可" } td.n colspan="3" { (num("t2.licensing.decisions")) } }
            tr { th colspan="4" { "第二十条第（六）项" } }
            tr { th { "信息内容" } th colspan="3" { "本年处理决定数量" } }
            tr { td { "行政处罚" } td.n colspan="3" { (num("t2.penalty.decisions")) } }
            tr { td { "行政强制" } td.n colspan="3" { (num("t2.coercion.decisions")) } }
            tr { th colspan="4" { "第二十条第（八）项" } }
            tr { th { "信息内容" } th colspan="3" { "本年收费金额（单位：万元）" } }
            tr { td { "行政事业性收费" } td.n colspan="3" { (num("t2.fee.amount")) } }
        }
        h2 { "三、收到和处理政府信息公开申请情况" }
        table.report.t3 {
            tr {
                th colspan="3" rowspan="3" { "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）" }
                th colspan=(columns.len()) { "申请人情况" }
            }
            tr {
                th rowspan="2" { "自然人" }
                th colspan=(org_span) { "法人或其他组织" }
                th rowspan="2" { "总计" }
            }
            tr {
                @for (c, label) in &columns {
                    @if !matches!(*c, "natural_person" | "total") { th { (label) } }
                }
            }
            @for (i, (row, group, label)) in rows.iter().enumerate() {
                tr {
                    @if label.is_empty() {
                        td colspan="3" { (group) }
                    } @else {
                        // The group's name once, spanning its rows, as
                        // the national table prints it.
                        @if i == 0 || rows[i - 1].1 != *group {
                            td.group colspan="2" rowspan=(rows.iter().filter(|r| r.1 == *group).count()) { (group) }
                        }
                        td { (label) }
                    }
                    @for (c, _) in &columns {
                        td.n { (num(&format!("t3.{row}.{c}"))) }
                    }
                }
            }
        }
        h2 { "四、政府信息公开行政复议、行政诉讼情况" }
        table.report.t4 {
            tr {
                th colspan="5" { "行政复议" }
                th colspan="10" { "行政诉讼" }
            }
            tr {
                th colspan="5" {}
                th colspan="5" { "未经复议直接起诉" }
                th colspan="5" { "复议后起诉" }
            }
            tr {
                @for _ in 0..3 { @for (_, label) in TABLE4_RESULTS { th { (label) } } }
            }
            tr {
                @for (p, _) in TABLE4_PROCEDURES {
                    @for (r, _) in TABLE4_RESULTS { td.n { (num(&format!("t4.{p}.{r}"))) } }
                }
            }
        }
        h2 { "附：台账证明的逾期情况" }
        p.note { "国家格式之外，由本台账直接证明的逾期与缺漏（按县级工作日历计算）。" }
        table.report {
            @for (a, label) in ANNEX {
                tr { td { (label) } td.n { (num(&format!("annex.{a}"))) } }
            }
        }
    }
}

/// The heading lines of a report: who, which year, which checkpoint.
pub fn provenance(report: &AnnualReport) -> Markup {
    html! {
        p.provenance {
            @if report.parts.is_empty() {
                "本报告由 gongkai 台账自动计算：日志 " code { (report.origin) }
                " 的第 0 至 " (report.size.saturating_sub(1)) " 条（共 " (report.size) " 条）"
                @if !report.root.is_empty() { "，树根 " code.hash { (report.root) } }
                "。每个数字所计的条目均可逐一核对（gongkai audit 重新计算）。"
            } @else {
                "本报告为全县 " (report.parts.len()) " 个部门报告之和："
                @for (i, p) in report.parts.iter().enumerate() {
                    @if i > 0 { "、" }
                    (p.department) "（" (p.size) " 条）"
                }
                "。"
            }
        }
    }
}

/// A standalone HTML page of the report, printable on A4.
pub fn html_document(report: &AnnualReport) -> String {
    html! {
        (DOCTYPE)
        html lang="zh" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (report.department) (report.year) "年政府信息公开工作年度报告" }
                style { (PreEscaped(PRINT_CSS)) }
            }
            body {
                h1 { (report.department) br; (report.year) "年政府信息公开工作年度报告（统计表）" }
                (provenance(report))
                (tables(report, None))
            }
        }
    }
    .into_string()
}

/// Styles for the standalone report (also used by the portal page).
pub const PRINT_CSS: &str = "\
@page { size: A4; margin: 15mm 12mm; }
body { font-family: 'SimSun', 'Songti SC', 'WenQuanYi Zen Hei', serif; font-size: 10.5pt; color: #000; max-width: 190mm; margin: 0 auto; padding: 0 8px; }
h1 { font-size: 16pt; text-align: center; }
h2 { font-size: 12pt; margin: 14pt 0 6pt; break-after: avoid; }
table.report { border-collapse: collapse; width: 100%; break-inside: auto; }
table.report th, table.report td { border: 1px solid #000; padding: 2pt 4pt; font-weight: normal; }
table.report th { text-align: center; }
table.report td.n { text-align: center; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.report td.group { white-space: nowrap; }
table.report tr { break-inside: avoid; }
p.provenance, p.note { font-size: 9pt; color: #333; overflow-wrap: anywhere; }
code.hash { font-size: 8pt; }
";

/// The report as Markdown (the same tables, one row per line).
pub fn markdown(report: &AnnualReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {}{}年政府信息公开工作年度报告（统计表）\n",
        report.department, report.year
    );
    if report.parts.is_empty() {
        let _ = writeln!(
            s,
            "日志 `{}`，第 0 至 {} 条（共 {} 条）{}。\n",
            report.origin,
            report.size.saturating_sub(1),
            report.size,
            if report.root.is_empty() {
                String::new()
            } else {
                format!("，树根 `{}`", report.root)
            }
        );
    }
    s.push_str("## 二、主动公开政府信息情况\n\n| 信息内容 | 本年制发件数 | 本年废止件数 | 现行有效件数 |\n|---|---|---|---|\n");
    for (row, _, label) in &TABLE2_ROWS[..2] {
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} |",
            shown(report, &format!("t2.{row}.issued")),
            shown(report, &format!("t2.{row}.repealed")),
            shown(report, &format!("t2.{row}.in_force"))
        );
    }
    s.push_str("\n| 信息内容 | 本年处理决定数量 / 本年收费金额（万元） |\n|---|---|\n");
    for (row, r, label) in &TABLE2_ROWS[2..] {
        let col = if *r == pb::ReportRow::Fee {
            "amount"
        } else {
            "decisions"
        };
        let _ = writeln!(
            s,
            "| {label} | {} |",
            shown(report, &format!("t2.{row}.{col}"))
        );
    }
    let columns: Vec<(&str, &str)> = TABLE3_COLUMNS
        .iter()
        .copied()
        .filter(|(c, _)| *c != "unrecorded" || has_unrecorded(report))
        .collect();
    s.push_str("\n## 三、收到和处理政府信息公开申请情况\n\n| 项目 |");
    for (_, label) in &columns {
        let _ = write!(s, " {label} |");
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(columns.len()));
    s.push('\n');
    for (row, group, label) in shown_rows(report) {
        if label.is_empty() {
            let _ = write!(s, "| {group} |");
        } else {
            let _ = write!(s, "| {group} · {label} |");
        }
        for (c, _) in &columns {
            let _ = write!(s, " {} |", shown(report, &format!("t3.{row}.{c}")));
        }
        s.push('\n');
    }
    s.push_str("\n## 四、政府信息公开行政复议、行政诉讼情况\n\n| 类别 |");
    for (_, label) in TABLE4_RESULTS {
        let _ = write!(s, " {label} |");
    }
    s.push_str("\n|---|---|---|---|---|---|\n");
    for (p, label) in TABLE4_PROCEDURES {
        let _ = write!(s, "| {label} |");
        for (r, _) in TABLE4_RESULTS {
            let _ = write!(s, " {} |", shown(report, &format!("t4.{p}.{r}")));
        }
        s.push('\n');
    }
    s.push_str("\n## 附：台账证明的逾期情况\n\n| 项目 | 数量 |\n|---|---|\n");
    for (a, label) in ANNEX {
        let _ = writeln!(s, "| {label} | {} |", shown(report, &format!("annex.{a}")));
    }
    s
}

/// The report as CSV: one line per cell (id, table, value, the value as
/// printed, the entries counted separated by spaces).
pub fn csv(report: &AnnualReport) -> String {
    let mut s = String::from("cell,value,shown,entries\n");
    for c in &report.cells {
        let entries: Vec<String> = c.entries.iter().map(u64::to_string).collect();
        let _ = writeln!(
            s,
            "{},{},{},{}",
            c.id,
            c.value,
            shown(report, &c.id),
            entries.join(" ")
        );
    }
    s
}

/// The Chinese label of a table 三 result row, e.g. `（三）不予公开 · 4.保护
/// 第三方合法权益`.
pub fn result_label(row: &str) -> String {
    TABLE3_RESULTS.iter().find(|r| r.0 == row).map_or_else(
        || row.to_owned(),
        |(_, group, label)| {
            if label.is_empty() {
                (*group).to_owned()
            } else {
                format!("{group} · {label}")
            }
        },
    )
}

/// The report of `year` over a log the county verified, at its newest
/// checkpoint (entries `0..size`).
///
/// # Errors
/// A message when the log has no checkpoint yet or an entry cannot be read.
pub fn compute(log: &dyn crate::model::LogRead, year: i32) -> Result<AnnualReport, String> {
    let (size, _) = log
        .checkpoint()
        .ok_or_else(|| "the log has no checkpoint yet".to_owned())?;
    let mut recount = gongkai_core::report::Recount::new(year, (*log.calendar()).clone())
        .map_err(|e| e.to_string())?;
    while recount.size() < size {
        let start = recount.size();
        let entries = log
            .journal()
            .read_range(start, size.min(start + 4096))
            .map_err(|e| e.to_string())?;
        for bytes in entries {
            recount.push(bytes).map_err(|e| e.to_string())?;
        }
    }
    Ok(recount.finish())
}

/// The Chinese label of a cell id (for the page listing its entries).
pub fn cell_label(id: &str) -> String {
    let mut parts = id.splitn(3, '.');
    let (table, row, col) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let find = |list: &[(&str, &str)], k: &str| {
        list.iter()
            .find(|(i, _)| *i == k)
            .map_or_else(|| k.to_owned(), |(_, l)| (*l).to_owned())
    };
    match table {
        "t2" => {
            let label = TABLE2_ROWS.iter().find(|r| r.0 == row).map_or(row, |r| r.2);
            let col = match col {
                "issued" => "本年制发件数",
                "repealed" => "本年废止件数",
                "in_force" => "现行有效件数",
                "amount" => "本年收费金额（万元）",
                _ => "本年处理决定数量",
            };
            format!("表二 · {label} · {col}")
        }
        "t3" => {
            let label = table3_rows()
                .into_iter()
                .find(|r| r.0 == row)
                .map_or_else(|| row.to_owned(), |r| format!("{}{}", r.1, r.2));
            format!("表三 · {label} · {}", find(TABLE3_COLUMNS, col))
        }
        "t4" => format!(
            "表四 · {} · {}",
            find(TABLE4_PROCEDURES, row),
            find(TABLE4_RESULTS, col)
        ),
        "annex" => format!("附 · {}", find(ANNEX, row)),
        _ => id.to_owned(),
    }
}
