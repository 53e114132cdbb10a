//! The report of `lazymm replay --out DIR`, in the bench report's formats: `table.txt`
//! (what the terminal shows), `results.json`, `results.csv`, SVG bar charts and an
//! `index.html` that shows them all with no network.
//!
//! The rows' fields are [`Record`]'s serde derive: `results.json` and `results.csv` (the
//! report layer's [`columns::to_csv`]) are its serialization, and the HTML table draws
//! its cells from it through [`COLUMNS`] (the report layer's [`Column`] type). The page
//! is `report/replay.html` over the report layer's base template ([`page`]), with HTML
//! autoescape: only the SVG charts, drawn by the report layer's [`bar_chart`], go in as
//! markup. The whole directory is written at once by the report layer's [`write_dir`].

use crate::row::{Record, Row};
use lazymm_engine::report::columns::{self, col, Cell, Column};
use lazymm_engine::report::page::{self, Kind as PageKind, Page};
use lazymm_engine::report::svg::{bar_chart, Chart};
use lazymm_engine::report::{write_dir, ReportError};
use lazymm_trace::schedule::Schedule;
use lazymm_trace::tasks::{Census, Kind};
use lazymm_trace::Trace;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// The page template: the base's look, this report's content.
const REPLAY_HTML: &str = include_str!("report/replay.html");

/// The page: its template, its kind and its sections.
const PAGE: Page<'static> = Page {
    name: "replay.html",
    source: REPLAY_HTML,
    subcommand: "replay",
    kind: PageKind::Replay,
    nav: page::REPORT_NAV,
};

/// The sentence that says what the numbers are.
pub const REPLAY_SENTENCE: &str = "These are replays of a recorded schedule: every scheme ran the same context switches, forks, execs and exits, in the trace's timestamp order, on the model; the numbers are what each scheme's bookkeeping did on it, counted by the model, not timed.";

/// The header lines printed above a trace's table (each ends in a newline).
pub fn header(t: &Trace, c: &Census, s: &Schedule) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "lazymm replay {}: {} trace, {} cpus, {:.3} s, {} sched_switch events ({} replayed, {} to itself), {} lost-event markers, {} backwards timestamps",
        t.file,
        t.format.map_or("?", |f| f.name()),
        s.nr_cpus,
        t.seconds(),
        t.stats.count("sched_switch"),
        s.trace_switches,
        s.self_switches,
        t.stats.lost_markers,
        t.stats.backwards
    );
    let _ = writeln!(
        o,
        "  tasks: {} user in {} processes ({} guessed: no TGID in the trace), {} kernel threads; resync: {} initial, {} after lost events",
        c.count(Kind::User),
        c.processes(),
        c.guessed(),
        c.count(Kind::Kthread),
        s.initial_switches,
        s.resync_switches
    );
    if !t.stats.skipped.is_empty() {
        let mut k: Vec<_> = t.stats.skipped.iter().collect();
        k.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let k: Vec<String> = k.iter().take(8).map(|(n, c)| format!("{n}: {c}")).collect();
        let _ = writeln!(o, "  skipped: {}", k.join(", "));
    }
    if let Some(b) = t.stats.first_backwards.first() {
        let _ = writeln!(
            o,
            "  timestamps going backwards on one CPU: {} (first: line {}, cpu {}, {:.6} s after {:.6} s; kept in the file's order)",
            t.stats.backwards,
            b.line,
            b.cpu,
            b.ts_ns as f64 / 1e9,
            b.before_ns as f64 / 1e9
        );
    }
    if s.lost_prev + s.lost_next + s.lost_other > 0 {
        let _ = writeln!(
            o,
            "  lost events: {} switches from a task the CPU was not running, {} to a task still running elsewhere, {} exec/exit of a task not running (each resynchronised)",
            s.lost_prev, s.lost_next, s.lost_other
        );
    }
    if t.stats.malformed > 0 {
        let _ = writeln!(
            o,
            "  malformed lines skipped (--lenient): {}",
            t.stats.malformed
        );
    }
    o
}

/// The name of a row's scheme: the mutant's, when it is one.
fn scheme_name(r: &Row) -> &'static str {
    r.mutant.map_or(r.scheme, |m| m.name())
}

/// The terminal table of a trace's rows (each line ends in a newline).
pub fn table(rows: &[Row]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  {:<26} {:<8} {:>9} {:>12} {:>11} {:>12} {:>14} {:>8} {:>9} {:>8} {:>6} {:>9} {:>6} {:>5}",
        "scheme",
        "arch",
        "switches",
        "lazy rt/s",
        "k->k/s",
        "rmw/s",
        "hot line rmw/s",
        "hot cpus",
        "ipi/exit",
        "ipi/s",
        "scans",
        "cpus/scan",
        "bytes",
        "viol"
    );
    for r in rows {
        let _ = writeln!(
            o,
            "  {:<26} {:<8} {:>9} {:>12.1} {:>11.1} {:>12.1} {:>14.1} {:>8} {:>9} {:>8.1} {:>6} {:>9} {:>6} {:>5}",
            scheme_name(r),
            r.arch,
            r.context_switches,
            r.lazy_round_trips_per_sec(),
            r.kernel_handovers_per_sec(),
            r.shared_rmw_per_sec(),
            r.hottest_line_rmw_per_sec(),
            r.hottest.as_ref().map_or(0, |h| h.cpus),
            r.ipis_per_exit().map_or("-".into(), |x| format!("{x:.2}")),
            r.ipis_per_sec(),
            r.hazptr_scans,
            if r.hazptr_scans > 0 {
                format!("{:.1}", r.hazptr_cpus_scanned as f64 / r.hazptr_scans as f64)
            } else {
                "-".into()
            },
            r.task_bytes,
            r.total.violations
        );
    }
    if let Some(m) = rows
        .iter()
        .find_map(|r| r.predicted.as_ref().map(|p| p.machine.as_str()))
    {
        let _ = writeln!(
            o,
            "  PREDICTED bookkeeping on machine '{m}' (a coherence cost model, not a measurement), per second of trace:"
        );
        for r in rows {
            if let Some(us) = r.predicted_bookkeeping_us_per_sec() {
                let _ = writeln!(
                    o,
                    "    {:<26} {:<8} {:>12.1} us/s ({:.4} % of the traced CPUs' time)",
                    scheme_name(r),
                    r.arch,
                    us,
                    us / 1e4 / r.cpus.max(1) as f64
                );
            }
        }
    }
    for r in rows {
        if let Some(h) = &r.hottest {
            let _ = writeln!(
                o,
                "  hottest mm_count line under {} on {}: {} of {} ({} RMWs from {} cpus)",
                scheme_name(r),
                r.arch,
                h.mm,
                h.process,
                h.rmw,
                h.cpus
            );
        }
    }
    o
}

/// The columns of the HTML table, in order, over [`Record`]'s fields.
pub const COLUMNS: &[Column] = &[
    col("trace", "the trace file", Cell::Text("trace"), true),
    col("scheme", "the scheme", Cell::Text("scheme"), true),
    col(
        "mutant",
        "the deliberately broken variant of the scheme, if one was asked for",
        Cell::Text("mutant"),
        true,
    ),
    col("arch", "the model's arch", Cell::Text("arch"), true),
    col(
        "cpus",
        "CPUs of the traced machine",
        Cell::Text("cpus"),
        false,
    ),
    col(
        "trace s",
        "seconds of trace, first event to last",
        Cell::Fixed("trace_seconds", 3),
        false,
    ),
    col(
        "switches",
        "context switches replayed",
        Cell::Text("context_switches"),
        false,
    ),
    col(
        "lazy rt/s",
        "lazy round trips (user to kernel thread and back) per second of trace",
        Cell::Si("lazy_round_trips_per_sec"),
        false,
    ),
    col(
        "k->k/s",
        "kernel thread to kernel thread hand-overs per second of trace",
        Cell::Si("kernel_handovers_per_sec"),
        false,
    ),
    col(
        "RMW/s",
        "atomic RMWs on lines shared between CPUs per second of trace",
        Cell::Si("shared_rmw_per_sec"),
        false,
    ),
    col(
        "hot line RMW/s",
        "RMWs per second of trace on the hottest mm_count line",
        Cell::Si("hottest_line_rmw_per_sec"),
        false,
    ),
    col(
        "hot line mm",
        "the mm whose mm_count line is the hottest",
        Cell::Text("hottest_line_mm"),
        true,
    ),
    col(
        "hot cpus",
        "CPUs that made RMWs on the hottest line",
        Cell::Text("hottest_line_cpus"),
        false,
    ),
    col(
        "IPIs/exit",
        "IPIs sent per exit (last mmput)",
        Cell::Fixed("ipis_per_exit", 2),
        false,
    ),
    col(
        "IPIs/s",
        "IPIs sent per second of trace",
        Cell::Si("ipis_per_sec"),
        false,
    ),
    col(
        "scans",
        "hazard-pointer scans",
        Cell::Text("hazptr_scans"),
        false,
    ),
    col("bytes", "size of a task", Cell::Text("task_bytes"), false),
    col(
        "machine",
        "the machine description the bookkeeping was priced on (--machine)",
        Cell::Text("machine"),
        true,
    ),
    col(
        "pred. us/s",
        "PREDICTED microseconds of the scheme's bookkeeping (summed over CPUs) per second of trace on that machine, from the replay's recorded accesses through its coherence cost model: a prediction, not a measurement",
        Cell::Fixed("predicted_bookkeeping_us_per_sec", 1),
        false,
    ),
    col(
        "viol",
        "violations of the safety properties (must be 0)",
        Cell::Text("violations"),
        false,
    ),
];

/// What the page's header says about one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceInfo {
    /// The file, as given.
    pub file: String,
    /// Its format's name.
    pub format: &'static str,
    /// CPUs it shows.
    pub cpus: usize,
    /// Seconds from its first event to its last.
    pub seconds: f64,
    /// Tasks whose process had to be guessed (no TGID in the trace).
    pub guessed_tasks: usize,
}

/// One trace's part of the report: what it is, its terminal text and its rows' fields.
#[derive(Debug, Clone)]
struct Section {
    info: TraceInfo,
    text: String,
    rows: Vec<Record>,
    labels: Vec<String>,
}

/// The report of one `lazymm replay`: every trace's header, table and rows.
#[derive(Debug, Clone, Default)]
pub struct Report {
    sections: Vec<Section>,
}

/// A chart and its caption.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The chart.
    pub chart: Chart,
    /// What it shows.
    pub caption: &'static str,
}

impl Report {
    /// Adds a trace's rows; returns the text the terminal shows for it (header and table).
    pub fn add(&mut self, t: &Trace, c: &Census, s: &Schedule, rows: &[Row]) -> String {
        let text = header(t, c, s) + &table(rows);
        self.sections.push(Section {
            info: TraceInfo {
                file: t.file.clone(),
                format: t.format.map_or("?", |f| f.name()),
                cpus: s.nr_cpus,
                seconds: t.seconds(),
                guessed_tasks: c.guessed(),
            },
            text: text.clone(),
            rows: rows.iter().map(|r| r.record(t)).collect(),
            labels: rows
                .iter()
                .map(|r| format!("{}/{}", scheme_name(r), r.arch))
                .collect(),
        });
        text
    }

    /// Every row, trace by trace.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.sections.iter().flat_map(|s| s.rows.iter())
    }

    /// Every row's fields as JSON values, trace by trace (for the tables' cells).
    pub fn rows(&self) -> Result<Vec<Value>, serde_json::Error> {
        self.records().map(serde_json::to_value).collect()
    }

    /// What the terminal showed: every trace's header and table.
    pub fn text(&self) -> String {
        self.sections.iter().map(|s| s.text.as_str()).collect()
    }

    /// `results.csv`: a header line of [`Record`]'s fields, then one line per row,
    /// through the `csv` crate.
    pub fn csv(&self) -> Result<String, csv::Error> {
        columns::to_csv(self.records())
    }

    /// One bar per row of every trace: `(label, value of field)`; the label names the
    /// trace too when there are several.
    fn bars(&self, field: &str) -> Vec<(String, Option<f64>)> {
        let several = self.sections.len() > 1;
        self.sections
            .iter()
            .flat_map(|s| {
                let trace = Path::new(&s.info.file)
                    .file_name()
                    .map_or(s.info.file.clone(), |n| n.to_string_lossy().into_owned());
                s.rows.iter().zip(&s.labels).map(move |(r, l)| {
                    let label = if several {
                        format!("{trace}: {l}")
                    } else {
                        l.clone()
                    };
                    let v = serde_json::to_value(r).ok();
                    (label, v.and_then(|v| v.get(field).and_then(Value::as_f64)))
                })
            })
            .collect()
    }

    /// The charts: shared RMWs per second of trace and on the hottest line, IPIs per
    /// exit, and lazy round trips per second.
    pub fn charts(&self) -> Vec<Figure> {
        let specs: [(&str, &str, &str, &str, &'static str); 4] = [
            (
                "shared-rmw-per-sec.svg",
                "Shared RMWs per second of trace",
                "atomic RMWs on lines shared between CPUs per second of trace",
                "shared_rmw_per_sec",
                "Atomic read-modify-writes on cache lines shared between CPUs, per second of trace, for each scheme and arch.",
            ),
            (
                "hottest-line-rmw-per-sec.svg",
                "RMWs on the hottest mm_count line per second",
                "RMWs per second of trace on the hottest mm_count line",
                "hottest_line_rmw_per_sec",
                "RMWs per second of trace on the one mm_count line that received the most: the line every CPU contends on.",
            ),
            (
                "ipis-per-exit.svg",
                "IPIs per exit",
                "IPIs sent per exit (last mmput)",
                "ipis_per_exit",
                "IPIs sent per exit (last mmput) over the whole replay; a row without a bar saw no exit.",
            ),
            (
                "lazy-round-trips-per-sec.svg",
                "Lazy round trips per second of trace",
                "lazy round trips per second of trace",
                "lazy_round_trips_per_sec",
                "Lazy round trips (user task to kernel thread and back) per second of trace: a property of the schedule, so the same for every scheme and arch of one trace; it is what every scheme's per-switch bookkeeping is multiplied by.",
            ),
        ];
        specs
            .iter()
            .enumerate()
            .map(|(i, &(file, title, x_label, field, caption))| Figure {
                chart: bar_chart(file, title, x_label, &self.bars(field), i),
                caption,
            })
            .collect()
    }

    /// `index.html`: the traces, the table and the charts, rendered from the template
    /// with HTML autoescape.
    pub fn html(&self, figures: &[Figure]) -> Result<String, minijinja::Error> {
        use minijinja::{context, Value as J};
        let traces: Vec<J> = self
            .sections
            .iter()
            .map(|s| {
                context! {
                    file => s.info.file,
                    format => s.info.format,
                    cpus => s.info.cpus,
                    seconds => format!("{:.3}", s.info.seconds),
                    guessed => s.info.guessed_tasks,
                }
            })
            .collect();
        let values = self.rows().map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
        })?;
        let records: Vec<&Record> = self.records().collect();
        let rows = page::rows(
            COLUMNS,
            &values,
            |i| if records[i].violations > 0 { "bad" } else { "" },
            |_, _| "",
        );
        let charts = page::charts(figures.iter().map(|f| (&f.chart, f.caption)));
        page::render(
            &PAGE,
            context! {
                traces => traces,
                sentence => REPLAY_SENTENCE,
                charts => charts,
                columns => page::columns(COLUMNS),
                rows => rows,
                table => self.text(),
            },
        )
    }

    /// Writes the whole report into `out` (`table.txt`, `results.json`, `results.csv`,
    /// the charts, `index.html`), all or nothing; returns the files written.
    pub fn write(&self, out: &Path) -> Result<Vec<String>, ReportError> {
        let render = ReportError::render;
        let records: Vec<&Record> = self.records().collect();
        let json =
            serde_json::to_string_pretty(&records).map_err(|e| render("results.json")(&e))?;
        let csv = self.csv().map_err(|e| render("results.csv")(&e))?;
        let figures = self.charts();
        let page = self.html(&figures).map_err(|e| render("index.html")(&e))?;
        let mut files: Vec<(String, String)> = vec![
            ("table.txt".into(), self.text()),
            ("results.json".into(), json + "\n"),
            ("results.csv".into(), csv),
        ];
        files.extend(
            figures
                .iter()
                .map(|f| (f.chart.file.clone(), f.chart.svg.clone())),
        );
        files.push(("index.html".into(), page));
        write_dir(out, &files)
    }
}
