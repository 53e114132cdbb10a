//! The one column list of the report's tables.
//!
//! A row's data is its serde serialization ([`crate::bench::Row`]): that is what
//! `results.json` and `results.csv` hold, field for field. The terminal table and the
//! HTML table show a selection of those fields, each through one [`Column`] here: its
//! header, what it means, and how its cell is formatted from the serialized fields. Both
//! tables are drawn from [`COLUMNS`], so they cannot disagree on a column or a digit.
//!
//! The same mechanism serves every table the tool prints: a report declares its own
//! `&[Column]` over its own row type, draws its terminal table with [`text_table`] and
//! its HTML table from [`Column::cell`], and writes its CSV with [`to_csv`], the one CSV
//! writer (the `csv` crate, so a field with a comma or a quote stays one field).

use super::si;
use serde_json::Value;

/// How a cell is made from a row's serialized fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The field as text (`-` when null).
    Text(&'static str),
    /// A number with three significant digits and an SI suffix.
    Si(&'static str),
    /// `[lo..hi]` of two fields, each as [`Cell::Si`].
    SiRange(&'static str, &'static str),
    /// A ratio with its interval: `1.23x [1.10..1.40]`.
    RatioCi(&'static str, &'static str, &'static str),
    /// A number with this many decimals.
    Fixed(&'static str, usize),
    /// A fraction as a signed percentage with its interval, from three fields (value,
    /// low, high): `+51.6 % [+49.5..+53.4]`.
    PercentCi(&'static str, &'static str, &'static str),
}

/// One column of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The header.
    pub head: &'static str,
    /// What it means (the HTML header's tooltip and the key under the table).
    pub means: &'static str,
    /// How a cell is made.
    pub cell: Cell,
    /// Left-aligned (text) rather than right-aligned (numbers).
    pub left: bool,
}

/// A column named `head` (meaning `means`) showing `cell`, left-aligned if `left`.
pub const fn col(head: &'static str, means: &'static str, cell: Cell, left: bool) -> Column {
    Column {
        head,
        means,
        cell,
        left,
    }
}

/// The columns of the terminal and HTML tables, in order.
pub const COLUMNS: &[Column] = &[
    col("mode", "bookkeeping only, or realistic (+ a host context switch of work per switch)", Cell::Text("mode"), true),
    col("arch", "the model's arch", Cell::Text("arch"), true),
    col("workload", "the workload", Cell::Text("workload"), true),
    col("cpus", "simulated CPUs", Cell::Text("cpus"), false),
    col("pairs", "pairs of tasks waking each other (threads, processes)", Cell::Text("pairs"), false),
    col("scheme", "the scheme", Cell::Text("scheme"), true),
    col("switch/s", "context switches per second, all CPUs: the median of the samples", Cell::Si("switches_per_sec"), false),
    col("[95% CI]", "the median's 95% bootstrap interval", Cell::SiRange("switches_per_sec_lo", "switches_per_sec_hi"), false),
    col("vs none [95% CI]", "times slower than none: the median of the rounds' paired ratios, with its 95% bootstrap interval", Cell::RatioCi("vs_none", "vs_none_lo", "vs_none_hi"), false),
    col("verdict", "faster / slower than none when the whole interval is past 2 %, within noise otherwise", Cell::Text("verdict"), true),
    col("vs none-mb [95% CI]", "times slower than none-mb (none plus membarrier's barrier), paired as vs none", Cell::RatioCi("vs_none_mb", "vs_none_mb_lo", "vs_none_mb_hi"), false),
    col("+ns/sw", "ns per switch per CPU beyond none's", Cell::Fixed("extra_ns_per_switch", 1), false),
    col("+ns/sw mb", "ns per switch per CPU beyond none-mb's", Cell::Fixed("extra_ns_vs_none_mb", 1), false),
    col("lazy/s", "lazy (user to kernel) switches per second, median", Cell::Si("lazy_switches_per_sec"), false),
    col("RMW/lazy", "atomic RMWs on lines shared between CPUs per lazy switch", Cell::Fixed("shared_rmw_per_lazy_switch", 3), false),
    col("mb/lazy", "full barriers per lazy switch (weigh them against the host's barrier cost)", Cell::Fixed("full_fences_per_lazy_switch", 2), false),
    col("IPIs/exit", "IPIs sent per exit (last mmput)", Cell::Fixed("ipis_per_exit", 2), false),
    col("td us/exit", "teardown (__mmput + __mmdrop) microseconds per exit, mean", Cell::Fixed("teardown_us_per_exit", 2), false),
    col("td p50", "teardown latency, median, microseconds", Cell::Fixed("teardown_us_p50", 2), false),
    col("td p99", "teardown latency, 99th percentile, microseconds", Cell::Fixed("teardown_us_p99", 2), false),
    col("td max", "teardown latency, longest, microseconds", Cell::Fixed("teardown_us_max", 2), false),
    col("bytes", "size of a task", Cell::Text("task_bytes"), false),
    col("state B", "bytes of task state the scheme adds (its active_mm, if it keeps one)", Cell::Text("task_state_bytes"), false),
    col("viol", "violations of the safety properties (must be 0)", Cell::Text("violations"), false),
];

impl Cell {
    /// The serialized fields this cell reads.
    pub fn keys(self) -> Vec<&'static str> {
        match self {
            Cell::Text(k) | Cell::Si(k) | Cell::Fixed(k, _) => vec![k],
            Cell::SiRange(a, b) => vec![a, b],
            Cell::RatioCi(a, b, c) | Cell::PercentCi(a, b, c) => vec![a, b, c],
        }
    }

    /// The cell's text for a serialized row.
    pub fn format(self, row: &Value) -> String {
        let num = |k: &str| row.get(k).and_then(Value::as_f64);
        match self {
            Cell::Text(k) => match row.get(k) {
                None | Some(Value::Null) => "-".into(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            },
            Cell::Si(k) => num(k).map_or("-".into(), si),
            Cell::SiRange(a, b) => match (num(a), num(b)) {
                (Some(a), Some(b)) => format!("[{}..{}]", si(a), si(b)),
                _ => "-".into(),
            },
            Cell::RatioCi(m, lo, hi) => match (num(m), num(lo), num(hi)) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:.2}x [{lo:.2}..{hi:.2}]"),
                _ => "-".into(),
            },
            Cell::Fixed(k, d) => num(k).map_or("-".into(), |v| format!("{v:.d$}")),
            Cell::PercentCi(m, lo, hi) => match (num(m), num(lo), num(hi)) {
                (Some(m), Some(lo), Some(hi)) => format!(
                    "{:+.1} % [{:+.1}..{:+.1}]",
                    m * 100.0,
                    lo * 100.0,
                    hi * 100.0
                ),
                _ => "-".into(),
            },
        }
    }
}

/// The cells of one serialized row, one per column of the bench's [`COLUMNS`].
pub fn cells(row: &Value) -> Vec<String> {
    cells_of(COLUMNS, row)
}

/// The cells of one serialized row, one per column of `columns`.
pub fn cells_of(columns: &[Column], row: &Value) -> Vec<String> {
    columns.iter().map(|c| c.cell.format(row)).collect()
}

/// A terminal table of serialized `rows` under `columns`: a header, a rule, and a line
/// per row, each column as wide as its widest cell, text left and numbers right. A blank
/// line goes before row `i` when `gap_before(i)`.
pub fn text_table(
    columns: &[Column],
    rows: &[Value],
    gap_before: impl Fn(usize) -> bool,
) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| cells_of(columns, r)).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.head.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |texts: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = texts
            .zip(columns.iter().zip(&widths))
            .map(|(t, (c, &w))| {
                if c.left {
                    format!("{t:<w$}")
                } else {
                    format!("{t:>w$}")
                }
            })
            .collect();
        parts.join(" ").trim_end().to_string()
    };
    let header = line(&mut columns.iter().map(|c| c.head));
    let mut s = format!("{header}\n{}\n", "-".repeat(header.chars().count()));
    for (i, row) in cells.iter().enumerate() {
        if i > 0 && gap_before(i) {
            s.push('\n');
        }
        s += &line(&mut row.iter().map(String::as_str));
        s.push('\n');
    }
    s
}

/// The CSV of `rows`: a header of the fields' names, then one record per row, through
/// the `csv` crate (quoting as RFC 4180 asks).
pub fn to_csv<T: serde::Serialize>(
    rows: impl IntoIterator<Item = T>,
) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    // The writer was given only UTF-8 text.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_cell_shows_the_sign_and_its_interval() {
        let c = Cell::PercentCi("c", "lo", "hi");
        let row = serde_json::json!({"c": 0.516, "lo": -0.0171, "hi": 0.534});
        assert_eq!(c.format(&row), "+51.6 % [-1.7..+53.4]");
        assert_eq!(c.format(&serde_json::json!({"c": 0.5, "lo": null})), "-");
        assert_eq!(c.keys(), ["c", "lo", "hi"]);
    }
}
