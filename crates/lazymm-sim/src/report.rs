//! The report of `lazymm predict`, in the bench's formats and look: a table,
//! `results.json`, `results.csv`, SVG charts and `index.html`.
//!
//! A row's fields are defined once, by [`PredictRow`]'s serde derive: `results.json`
//! and `results.csv` (the `csv` crate, through the report layer's
//! [`columns::to_csv`]) are its serialization, and the terminal table draws its cells
//! from it through [`COLUMNS`], the report layer's column mechanism. The charts are the
//! report layer's line charts, the page its base template with `predict.html` as
//! content, and the directory is written by its one atomic writer.

use crate::predict::{Prediction, Row};
use lazymm_engine::bench::Mode;
use lazymm_engine::report::columns::{self, col, Cell, Column};
use lazymm_engine::report::page::{self, Kind, Page};
use lazymm_engine::report::svg::{
    line_chart, stacked_bar_chart, Chart, ChartSpec, Point, Scale, Series, Stack, XAxis,
};
use lazymm_engine::report::write_dir;
pub use lazymm_engine::report::ReportError;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The header every output carries.
pub fn header(p: &Prediction) -> String {
    let m = &p.machine;
    let mut s = format!(
        "PREDICTIONS of a coherence cost model, not measurements: machine '{}' ({}, {}), {} hardware threads",
        m.file.name, m.source, m.file.description, m.nr_cpus
    );
    if let Some((k, v)) = &p.varied {
        let _ = write!(s, "; varied {k} = {v}");
    }
    if let Some(c) = &p.compared {
        let _ = write!(
            s,
            "; what-if: kernel profile {} against {}",
            p.spec.profile.name(),
            c.before.name()
        );
    }
    s
}

/// One row of `results.json` and `results.csv`: the bench's fields, plus the machine,
/// the pairs and `predicted`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PredictRow<'a> {
    /// The scheme.
    pub scheme: &'static str,
    /// The model's arch.
    pub arch: &'static str,
    /// The workload.
    pub workload: &'static str,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Pairs (workloads with pairs only).
    pub pairs: Option<usize>,
    /// The machine file's name.
    pub machine: &'a str,
    /// Always `true`: every number is a prediction.
    pub predicted: bool,
    /// Always `realistic`: each switch costs the machine's context switch.
    pub mode: Mode,
    /// The machine's context-switch cost, charged per switch.
    pub switch_work_ns: f64,
    /// The machine's full-barrier cost.
    pub host_fence_ns: f64,
    /// Predicted context switches per second, all CPUs.
    pub switches_per_sec: f64,
    /// The same (one sample).
    pub min: f64,
    /// The same (one sample).
    pub max: f64,
    /// Samples: one.
    pub samples: usize,
    /// `none`'s switches per second over this row's.
    pub slowdown_vs_none: Option<f64>,
    /// ns per switch per CPU beyond `none`'s.
    pub extra_ns_per_switch: Option<f64>,
    /// Shared RMWs per lazy switch.
    pub shared_rmw_per_lazy_switch: Option<f64>,
    /// Full fences per lazy switch.
    pub full_fences_per_lazy_switch: Option<f64>,
    /// IPIs per exit.
    pub ipis_per_exit: Option<f64>,
    /// Simulated microseconds of teardown per exit.
    pub teardown_us_per_exit: Option<f64>,
    /// Line transfers per switch.
    pub transfers_per_switch: Option<f64>,
    /// Whether both threads of each pair were bound to one CPU (`--pin`).
    pub pinned: bool,
    /// The topology wakeups were placed on.
    pub topology: String,
    /// Fraction of the measured switches into a user task that came from idle.
    pub through_idle: Option<f64>,
    /// Fraction of the pair wakeups placed on the waker's CPU.
    pub wake_on_waker: Option<f64>,
    /// ... on the woken task's previous CPU.
    pub wake_on_prev: Option<f64>,
    /// ... on another idle CPU sharing the LLC with the waker or the previous CPU.
    pub wake_idle_same_llc: Option<f64>,
    /// ... anywhere else.
    pub wake_elsewhere: Option<f64>,
    /// Line transfers per switch by cache line, most first, as `LINE=VALUE` joined by
    /// `;` (one text field, so the CSV keeps one column); each line is named by the
    /// kernel fields the profile puts on it, `+`-joined (`mm_count=0.490;mm_users=0.003`).
    pub transfers_per_switch_by_line: String,
    /// The line with the most transfers per switch (none without transfers).
    pub limiting_line: Option<String>,
    /// The kernel profile the model ran (docs/profiles.md; `+`: items switched).
    pub kernel_profile: String,
    /// Exits.
    pub exits: u64,
    /// Lazy switches in the measured window.
    pub lazy_switches: u64,
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// Violations of the safety properties.
    pub violations: usize,
    /// What-if only (`--vs`, `--what-if`; null otherwise): the profile the change is
    /// measured from (`kernel_profile` names the other, which every field above
    /// describes).
    pub before_kernel_profile: Option<String>,
    /// What-if only: predicted switches per second under `before_kernel_profile`.
    pub before_switches_per_sec: Option<f64>,
    /// What-if only: under `kernel_profile` (`switches_per_sec`).
    pub after_switches_per_sec: Option<f64>,
    /// What-if only: `after / before - 1`.
    pub change: Option<f64>,
    /// What-if only: the lowest change with one value the machine file marks `assumed`
    /// halved or doubled (one at a time, not jointly; the change itself included).
    pub change_low: Option<f64>,
    /// What-if only: the highest.
    pub change_high: Option<f64>,
    /// What-if only: the varied value that gave `change_low`, as `KEY=VALUE` (null when
    /// the unvaried machine did).
    pub change_low_at: Option<String>,
    /// What-if only: the varied value that gave `change_high`.
    pub change_high_at: Option<String>,
}

/// A row of the prediction as [`PredictRow`].
pub fn row<'a>(p: &'a Prediction, r: &Row) -> PredictRow<'a> {
    let sps = r.r.switches_per_sec();
    let w = r.change.as_ref();
    let at = |x: &Option<(String, f64)>| x.as_ref().map(|(k, v)| format!("{k}={v}"));
    PredictRow {
        scheme: r.r.scheme,
        arch: r.r.arch,
        workload: r.r.workload.name(),
        cpus: r.r.cpus,
        pairs: r.pairs,
        machine: &p.machine.file.name,
        predicted: true,
        mode: Mode::Realistic,
        switch_work_ns: p.machine.file.cost.context_switch_ns,
        host_fence_ns: p.machine.file.cost.fence_ns,
        switches_per_sec: sps,
        min: sps,
        max: sps,
        samples: 1,
        slowdown_vs_none: r.slowdown_vs_none,
        extra_ns_per_switch: r.extra_ns_per_switch,
        shared_rmw_per_lazy_switch: r.shared_rmw_per_lazy_switch(),
        full_fences_per_lazy_switch: r.full_fences_per_lazy_switch(),
        ipis_per_exit: r.ipis_per_exit(),
        teardown_us_per_exit: r.teardown_us_per_exit(),
        transfers_per_switch: r.transfers_per_switch(),
        pinned: p.spec.pin,
        topology: r.r.topology.clone(),
        through_idle: r.through_idle(),
        wake_on_waker: r.r.sched.wake_frac(r.r.sched.wake_on_waker),
        wake_on_prev: r.r.sched.wake_frac(r.r.sched.wake_on_prev),
        wake_idle_same_llc: r.r.sched.wake_frac(r.r.sched.wake_idle_same_llc),
        wake_elsewhere: r.r.sched.wake_frac(r.r.sched.wake_elsewhere),
        transfers_per_switch_by_line: r
            .transfers_per_switch_by_line()
            .into_iter()
            .map(|(l, t)| format!("{l}={t:.3}"))
            .collect::<Vec<_>>()
            .join(";"),
        limiting_line: r.limiting_line().map(str::to_string),
        kernel_profile: r.r.profile.name(),
        exits: r.r.total.exits,
        lazy_switches: r.r.measured.lazy_switches,
        task_bytes: r.r.task_bytes,
        violations: r.r.violations.len(),
        before_kernel_profile: p.compared.as_ref().map(|c| c.before.name()),
        before_switches_per_sec: w.map(|w| w.before),
        after_switches_per_sec: w.map(|w| w.after),
        change: w.map(|w| w.change),
        change_low: w.map(|w| w.low),
        change_high: w.map(|w| w.high),
        change_low_at: w.and_then(|w| at(&w.low_at)),
        change_high_at: w.and_then(|w| at(&w.high_at)),
    }
}

/// The machine, as `results.json` names it.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo<'a> {
    /// Its name.
    pub name: &'a str,
    /// A preset's name or a path.
    pub source: &'a str,
    /// What it is.
    pub description: &'a str,
    /// Hardware threads.
    pub hardware_threads: usize,
}

/// `--vary KEY=V`.
#[derive(Debug, Clone, Serialize)]
pub struct Varied<'a> {
    /// The machine file's key.
    pub key: &'a str,
    /// Its value.
    pub value: f64,
}

/// One value the machine file marks `assumed`, as `results.json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AssumedValue<'a> {
    /// The machine-file key (as `--vary` takes it).
    pub key: &'a str,
    /// Its value in the file.
    pub value: f64,
    /// Always `assumed`: the file cites no measurement for it.
    pub source: &'static str,
    /// The values the interval tried (half and twice; those the file accepts).
    pub tried: &'a [f64],
}

/// A what-if's comparison, as `results.json` names it.
#[derive(Debug, Clone, Serialize)]
pub struct WhatIfInfo<'a> {
    /// The profile each row's change is measured from.
    pub before_kernel_profile: String,
    /// The profile the rows ran.
    pub after_kernel_profile: String,
    /// How the interval was taken ([`INTERVAL`]).
    pub interval: &'static str,
    /// The values it varied.
    pub assumed: Vec<AssumedValue<'a>>,
}

/// What a what-if's interval is, in every output that shows one.
pub const INTERVAL: &str = "each value the machine file marks assumed, halved and doubled one at a time (not jointly), both profiles rerun; the lowest and highest change";

/// `results.json`: deterministic (the simulator's own host timings are in
/// `simulator.json`), so the same seed gives the same bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Results<'a> {
    /// Always `true`.
    pub predicted: bool,
    /// [`header`].
    pub header: String,
    /// The machine.
    pub machine: MachineInfo<'a>,
    /// `--vary`, if given.
    pub varied: Option<Varied<'a>>,
    /// `--vs` or `--what-if`, if given.
    pub what_if: Option<WhatIfInfo<'a>>,
    /// The seed.
    pub seed: u64,
    /// Simulated warm-up, microseconds.
    pub simulated_warmup_us: f64,
    /// Simulated measured window, microseconds.
    pub simulated_window_us: f64,
    /// The command line.
    pub command: &'a str,
    /// The rows.
    pub rows: Vec<PredictRow<'a>>,
    /// Violations over every row.
    pub violations: usize,
}

/// `results.json`'s document.
pub fn to_json(p: &Prediction) -> Results<'_> {
    let (warmup, window) = p.spec.window();
    Results {
        predicted: true,
        header: header(p),
        machine: MachineInfo {
            name: &p.machine.file.name,
            source: &p.machine.source,
            description: &p.machine.file.description,
            hardware_threads: p.machine.nr_cpus,
        },
        varied: p
            .varied
            .as_ref()
            .map(|(key, value)| Varied { key, value: *value }),
        what_if: what_if_info(p),
        seed: p.spec.seed,
        simulated_warmup_us: warmup as f64 / 1e6,
        simulated_window_us: window as f64 / 1e6,
        command: &p.command,
        rows: p.rows.iter().map(|r| row(p, r)).collect(),
        violations: p.rows.iter().map(|r| r.r.violations.len()).sum(),
    }
}

/// The what-if part of `results.json`, if `p` is a what-if.
pub fn what_if_info(p: &Prediction) -> Option<WhatIfInfo<'_>> {
    let c = p.compared.as_ref()?;
    Some(WhatIfInfo {
        before_kernel_profile: c.before.name(),
        after_kernel_profile: p.spec.profile.name(),
        interval: INTERVAL,
        assumed: c
            .assumed
            .iter()
            .map(|a| AssumedValue {
                key: &a.key,
                value: a.value,
                source: "assumed",
                tried: &a.tried,
            })
            .collect(),
    })
}

/// The values of the machine file that no measurement backs (`assumed` in the file),
/// as one line: every prediction on the page rests on them (`--vary KEY=V1,V2` moves
/// one; a what-if takes its interval over all of them).
pub fn assumed_note(p: &Prediction) -> String {
    if p.machine.assumed.is_empty() {
        return format!(
            "machine '{}' marks no value assumed: every value cites a source",
            p.machine.file.name
        );
    }
    let list: Vec<String> = p
        .machine
        .assumed
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!(
        "these predictions rest on values machine '{}' marks assumed (no measurement backs them; --vary KEY=V1,V2 moves one): {}",
        p.machine.file.name,
        list.join(", ")
    )
}

/// The lines under the table: for a what-if, how the interval was taken and over which
/// values; otherwise the machine's assumed values ([`assumed_note`]).
pub fn assumed_lines(p: &Prediction) -> Vec<String> {
    let Some(info) = what_if_info(p) else {
        return vec![assumed_note(p)];
    };
    let mut out = vec![format!(
        "change = after / before - 1 of switches/s, from kernel profile {} to {}; interval: {INTERVAL}:",
        info.before_kernel_profile, info.after_kernel_profile
    )];
    if info.assumed.is_empty() {
        out.push("  (none: the interval was not taken)".into());
    }
    for a in &info.assumed {
        let tried: Vec<String> = a.tried.iter().map(f64::to_string).collect();
        out.push(format!(
            "  {} = {} ({}; tried {})",
            a.key,
            a.value,
            a.source,
            if tried.is_empty() {
                "none: the file refused both".into()
            } else {
                tried.join(", ")
            }
        ));
    }
    out
}

/// One row of `simulator.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedRow {
    /// The scheme.
    pub scheme: &'static str,
    /// The workload.
    pub workload: &'static str,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Pairs.
    pub pairs: Option<usize>,
    /// Host seconds the row took.
    pub host_seconds: f64,
}

/// `simulator.json`: how fast the simulator ran (host time; differs run to run).
#[derive(Debug, Clone, Serialize)]
pub struct Speed {
    /// Host seconds of the whole sweep.
    pub host_seconds: f64,
    /// Simulated memory accesses.
    pub simulated_accesses: u64,
    /// Simulator events.
    pub simulated_events: u64,
    /// Accesses per host second.
    pub accesses_per_host_second: f64,
    /// Events per host second.
    pub events_per_host_second: f64,
    /// Per row.
    pub rows: Vec<SpeedRow>,
}

/// `simulator.json`'s document.
pub fn speed_json(p: &Prediction) -> Speed {
    Speed {
        host_seconds: p.host_seconds,
        simulated_accesses: p.accesses,
        simulated_events: p.events,
        accesses_per_host_second: p.accesses as f64 / p.host_seconds.max(1e-9),
        events_per_host_second: p.events as f64 / p.host_seconds.max(1e-9),
        rows: p
            .rows
            .iter()
            .map(|r| SpeedRow {
                scheme: r.r.scheme,
                workload: r.r.workload.name(),
                cpus: r.r.cpus,
                pairs: r.pairs,
                host_seconds: r.host_seconds,
            })
            .collect(),
    }
}

/// `results.csv`: [`PredictRow`]'s fields, through the `csv` crate.
pub fn to_csv(p: &Prediction) -> Result<String, csv::Error> {
    columns::to_csv(p.rows.iter().map(|r| row(p, r)))
}

/// `1234567.0` -> `1.23M`: the bench report's number format.
pub use lazymm_engine::report::si;

// The columns that name a row, first in both tables.
const SCHEME: Column = col("scheme", "the scheme", Cell::Text("scheme"), true);
const ARCH: Column = col("arch", "the model's arch", Cell::Text("arch"), true);
const WORKLOAD: Column = col("workload", "the workload", Cell::Text("workload"), true);
const CPUS: Column = col("cpus", "simulated CPUs", Cell::Text("cpus"), false);
const PAIRS: Column = col(
    "pairs",
    "pairs of tasks waking each other",
    Cell::Text("pairs"),
    false,
);

/// The columns of the terminal table, over [`PredictRow`]'s fields.
pub const COLUMNS: &[Column] = &[
    SCHEME,
    ARCH,
    WORKLOAD,
    CPUS,
    PAIRS,
    col(
        "switch/s",
        "predicted context switches per second, all CPUs",
        Cell::Si("switches_per_sec"),
        false,
    ),
    col(
        "vs none",
        "times slower than none",
        Cell::Fixed("slowdown_vs_none", 2),
        false,
    ),
    col(
        "ns/sw+",
        "ns per switch per CPU beyond none's",
        Cell::Fixed("extra_ns_per_switch", 0),
        false,
    ),
    col(
        "rmw/lazy",
        "shared RMWs per lazy switch",
        Cell::Fixed("shared_rmw_per_lazy_switch", 2),
        false,
    ),
    col(
        "mb/lazy",
        "full barriers per lazy switch",
        Cell::Fixed("full_fences_per_lazy_switch", 2),
        false,
    ),
    col(
        "ipi/ex",
        "IPIs per exit",
        Cell::Fixed("ipis_per_exit", 0),
        false,
    ),
    col(
        "td us/ex",
        "simulated microseconds of teardown per exit",
        Cell::Fixed("teardown_us_per_exit", 1),
        false,
    ),
    col(
        "xfer/sw",
        "line transfers per switch",
        Cell::Fixed("transfers_per_switch", 2),
        false,
    ),
    col(
        "limit",
        "the cache line with the most transfers per switch (its kernel fields)",
        Cell::Text("limiting_line"),
        false,
    ),
];

/// The columns of a what-if's table (`--vs`, `--what-if`), over [`PredictRow`]'s fields.
pub const WHAT_IF_COLUMNS: &[Column] = &[
    SCHEME, ARCH, WORKLOAD, CPUS, PAIRS,
    col(
        "before/s",
        "predicted context switches per second under the profile compared from",
        Cell::Si("before_switches_per_sec"),
        false,
    ),
    col(
        "after/s",
        "predicted context switches per second under the profile compared to",
        Cell::Si("after_switches_per_sec"),
        false,
    ),
    col(
        "change [assumed halved..doubled]",
        "after / before - 1, with its lowest and highest over the machine's assumed values, each halved and doubled one at a time (not jointly)",
        Cell::PercentCi("change", "change_low", "change_high"),
        false,
    ),
    col(
        "limit after",
        "the cache line with the most transfers per switch under the profile compared to",
        Cell::Text("limiting_line"),
        false,
    ),
];

/// The rows of `p` as JSON values, for the tables.
fn values(p: &Prediction) -> Vec<serde_json::Value> {
    p.rows
        .iter()
        .map(|r| serde_json::to_value(row(p, r)).unwrap_or(serde_json::Value::Null))
        .collect()
}

/// The terminal table: the header, then a line per row (a what-if's own columns and the
/// assumed values under them when `p` is a what-if).
pub fn table(p: &Prediction) -> String {
    let mut s = header(p) + "\n";
    let values = values(p);
    let groups: Vec<_> = p
        .rows
        .iter()
        .map(|r| (r.r.arch, r.r.workload, r.pairs))
        .collect();
    let columns = if p.compared.is_some() {
        WHAT_IF_COLUMNS
    } else {
        COLUMNS
    };
    s += &columns::text_table(columns, &values, |i| groups[i] != groups[i - 1]);
    for line in assumed_lines(p) {
        s += &line;
        s.push('\n');
    }
    let v: usize = p.rows.iter().map(|r| r.r.violations.len()).sum();
    if v > 0 {
        let _ = writeln!(s, "\n{v} VIOLATION(S) of the safety properties:");
        for r in &p.rows {
            for line in r.r.violations.iter().take(3) {
                let _ = writeln!(s, "  {} {}: {line}", r.r.scheme, r.r.workload.name());
            }
        }
    }
    s
}

/// One line chart: CPUs (log2) on x, `value` on y, one line per scheme.
fn chart(
    p: &Prediction,
    file: String,
    title: String,
    y_label: &str,
    scale: Scale,
    rows: &[&Row],
    value: impl Fn(&Row) -> Option<f64>,
) -> Option<Chart> {
    let series: Vec<Series> = p
        .spec
        .schemes
        .iter()
        .enumerate()
        .map(|(i, &scheme)| Series {
            name: scheme.to_string(),
            color: i,
            mode: Mode::Realistic,
            points: rows
                .iter()
                .filter(|r| r.r.scheme == scheme)
                .filter_map(|r| {
                    value(r)
                        .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
                        .map(|y| Point {
                            x: r.r.cpus as f64,
                            y,
                            bar: None,
                            verdict: None,
                        })
                })
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        return None;
    }
    Some(line_chart(ChartSpec {
        file,
        title: format!("{title} (predicted, {})", p.machine.file.name),
        y_label,
        scale,
        x_axis: XAxis::cpus(),
        series,
        legend_modes: vec![Mode::Realistic],
        bar_note: "dot: the prediction",
    }))
}

/// The rows one set of charts draws: one arch and workload, and one pair count when
/// several were asked (one set per pair count), in row order.
struct Group<'a> {
    arch: &'static str,
    workload: &'static str,
    pairs: Option<usize>,
    rows: Vec<&'a Row>,
}

impl Group<'_> {
    /// The part of the group's chart file names after the chart's kind:
    /// `WORKLOAD-ARCH[-pairsN]`.
    fn tag(&self) -> String {
        let pairs = self.pairs.map_or(String::new(), |p| format!("-pairs{p}"));
        format!("{}-{}{pairs}", self.workload, self.arch)
    }
}

/// The prediction's rows in chart groups, in the order each group first appears.
fn groups(p: &Prediction) -> Vec<Group<'_>> {
    let mut out: Vec<Group<'_>> = Vec::new();
    for r in &p.rows {
        let pairs = if p.spec.pairs.len() > 1 {
            r.pairs
        } else {
            None
        };
        let (arch, workload) = (r.r.arch, r.r.workload.name());
        match out
            .iter_mut()
            .find(|g| g.arch == arch && g.workload == workload && g.pairs == pairs)
        {
            Some(g) => g.rows.push(r),
            None => out.push(Group {
                arch,
                workload,
                pairs,
                rows: vec![r],
            }),
        }
    }
    out
}

/// The charts: throughput, slowdown against `none` and teardown per exit, against CPUs,
/// per workload (and per pair count when several were asked).
pub fn charts(p: &Prediction) -> Vec<Chart> {
    let mut out = Vec::new();
    for g in groups(p) {
        let (arch, w, pairs, rows) = (g.arch, g.workload, g.pairs, &g.rows);
        let tag = g.tag();
        let what = format!(
            "{w} ({arch}{})",
            pairs.map_or(String::new(), |p| format!(", {p} pairs"))
        );
        let charts = [
            (
                "throughput",
                format!("{what}: context switches per second"),
                "switches per second",
                Scale::Log,
                0,
            ),
            (
                "slowdown",
                format!("{what}: times slower than none"),
                "times slower than none",
                Scale::Linear,
                1,
            ),
            (
                "teardown",
                format!("{what}: teardown per exit"),
                "microseconds per exit",
                Scale::Log,
                2,
            ),
        ];
        for (name, title, ylabel, scale, which) in charts {
            let file = format!("{name}-{tag}.svg");
            let made = chart(p, file, title, ylabel, scale, rows, |r| match which {
                0 => Some(r.r.switches_per_sec()),
                1 => r.slowdown_vs_none,
                _ => r.teardown_us_per_exit(),
            });
            out.extend(made);
        }
    }
    out
}

/// How many lines a limiting-line chart names (beyond every row's limiting line); the
/// rest are summed as `other lines`.
const LIMIT_CHART_LINES: usize = 6;

/// The limiting-line charts: per arch and workload (and pair count when several were
/// asked, as [`charts`] groups them), at the group's largest CPU count, one stacked bar
/// per scheme of its line transfers per switch by cache line
/// ([`Row::transfers_per_switch_by_line`]), with its limiting line named after the bar.
/// Each row's limiting line has a segment of its own; so do the largest lines over the
/// group, up to `LIMIT_CHART_LINES` (6); the rest are summed as `other lines`.
pub fn limiting_line_charts(p: &Prediction) -> Vec<Chart> {
    let mut out = Vec::new();
    for g in groups(p) {
        let (arch, w, pairs, group) = (g.arch, g.workload, g.pairs, &g.rows);
        let Some(cpus) = group.iter().map(|r| r.r.cpus).max() else {
            continue;
        };
        let rows: Vec<&Row> = p
            .spec
            .schemes
            .iter()
            .filter_map(|s| group.iter().find(|r| r.r.scheme == *s && r.r.cpus == cpus))
            .copied()
            .collect();
        let by_line: Vec<Vec<(&str, f64)>> = rows
            .iter()
            .map(|r| r.transfers_per_switch_by_line())
            .collect();
        // The lines named: every limiting line, then the largest over the group.
        let mut named: Vec<&str> = Vec::new();
        for l in rows.iter().filter_map(|r| r.limiting_line()) {
            if !named.contains(&l) {
                named.push(l);
            }
        }
        let mut sums: Vec<(&str, f64)> = Vec::new();
        for (l, v) in by_line.iter().flatten() {
            match sums.iter_mut().find(|(k, _)| k == l) {
                Some((_, s)) => *s += v,
                None => sums.push((l, *v)),
            }
        }
        sums.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (l, _) in sums {
            if named.len() >= LIMIT_CHART_LINES {
                break;
            }
            if !named.contains(&l) {
                named.push(l);
            }
        }
        let bars: Vec<Stack> = rows
            .iter()
            .zip(&by_line)
            .map(|(r, lines)| {
                let mut segments: Vec<(String, f64)> = named
                    .iter()
                    .map(|n| {
                        let v = lines.iter().find(|(l, _)| l == n).map_or(0.0, |(_, v)| *v);
                        (n.to_string(), v)
                    })
                    .collect();
                let other: f64 = lines
                    .iter()
                    .filter(|(l, _)| !named.contains(l))
                    .map(|(_, v)| v)
                    .sum();
                segments.push(("other lines".into(), other));
                let note = match (r.limiting_line(), lines.first()) {
                    (Some(l), Some((_, v))) => format!("limit: {l} ({v:.2}/switch)"),
                    _ => "no line transfers".into(),
                };
                Stack {
                    label: r.r.scheme.to_string(),
                    segments,
                    note,
                }
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        let what = format!(
            "{w} ({arch}{}, kernel {})",
            pairs
                .or(rows.first().and_then(|r| r.pairs))
                .map_or(String::new(), |p| format!(", {p} pairs")),
            p.spec.profile.name()
        );
        out.push(stacked_bar_chart(
            &format!("limits-{}.svg", g.tag()),
            &format!(
                "{what}: line transfers per switch by line at {cpus} CPUs (predicted, {})",
                p.machine.file.name
            ),
            "line transfers per context switch",
            &bars,
        ));
    }
    out
}

/// The charts of the bench's predicted section: per workload and arch, each scheme's
/// context switches per second and its speed against `refcount` (its switches per second
/// over refcount's in the same group; above 1 is faster), against CPUs, each title naming
/// the kernel profile and ending in "(predicted, MACHINE)". File names start with
/// `predicted-MACHINE-` so they never collide with the bench's own charts.
pub fn against_refcount_charts(p: &Prediction) -> Vec<Chart> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in &p.rows {
        let k = (r.r.arch, r.r.workload.name());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let profile = p.spec.profile.name();
    let machine = &p.machine.file.name;
    let mut out = Vec::new();
    for (arch, w) in keys {
        let rows: Vec<&Row> = p
            .rows
            .iter()
            .filter(|r| r.r.arch == arch && r.r.workload.name() == w)
            .collect();
        let refcount = |r: &Row| {
            rows.iter()
                .find(|o| o.r.scheme == "refcount" && o.r.cpus == r.r.cpus && o.pairs == r.pairs)
                .map(|o| o.r.switches_per_sec())
        };
        let what = format!("{w} ({arch}, kernel {profile})");
        let tag = format!("predicted-{machine}-{w}-{arch}");
        out.extend(chart(
            p,
            format!("{tag}-throughput.svg"),
            format!("{what}: context switches per second"),
            "switches per second",
            Scale::Log,
            &rows,
            |r| Some(r.r.switches_per_sec()),
        ));
        out.extend(chart(
            p,
            format!("{tag}-vs-refcount.svg"),
            format!("{what}: times faster than refcount"),
            "refcount's time per switch over the scheme's (1 = same)",
            Scale::Linear,
            &rows,
            |r| {
                if r.r.scheme == "refcount" {
                    return None;
                }
                let base = refcount(r)?;
                (base > 0.0).then(|| r.r.switches_per_sec() / base)
            },
        ));
    }
    out
}

/// The page template: the base's look, this report's content.
const PREDICT_HTML: &str = include_str!("predict.html");

/// The page: its template, its kind and its sections.
const PAGE: Page<'static> = Page {
    name: "predict.html",
    source: PREDICT_HTML,
    subcommand: "predict",
    kind: Kind::Prediction,
    nav: page::REPORT_NAV,
};

/// `index.html`: the header, the charts and the limiting-line charts inline and the
/// tables, rendered from the
/// template with HTML autoescape.
pub fn html(p: &Prediction, charts: &[Chart]) -> Result<String, minijinja::Error> {
    use minijinja::context;
    let values: Vec<serde_json::Value> = p
        .rows
        .iter()
        .map(|r| serde_json::to_value(row(p, r)))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
        })?;
    let rows = page::rows(
        COLUMNS,
        &values,
        |i| {
            if p.rows[i].r.violations.is_empty() {
                ""
            } else {
                "bad"
            }
        },
        |_, _| "",
    );
    let charts = page::charts(charts.iter().map(|c| (c, c.title.as_str())));
    let what_if_rows = page::rows(WHAT_IF_COLUMNS, &values, |_| "", |_, _| "");
    let limit_charts = limiting_line_charts(p);
    let limits = page::charts(limit_charts.iter().map(|c| (c, c.title.as_str())));
    let (warmup, window) = p.spec.window();
    page::render(
        &PAGE,
        context! {
            header => header(p),
            command => p.command,
            machine => format!("{} ({}, {}), {} hardware threads", p.machine.file.name, p.machine.source, p.machine.file.description, p.machine.nr_cpus),
            seed => p.spec.seed,
            window => format!("{:.0} us simulated after {:.0} us of warm-up", window as f64 / 1e6, warmup as f64 / 1e6),
            violation_count => p.rows.iter().map(|r| r.r.violations.len()).sum::<usize>(),
            charts => charts,
            limits => limits,
            columns => page::columns(COLUMNS),
            rows => rows,
            what_if => p.compared.is_some(),
            what_if_columns => page::columns(WHAT_IF_COLUMNS),
            what_if_rows => what_if_rows,
            what_if_notes => assumed_lines(p),
            assumed_note => assumed_note(p),
            table => table(p),
        },
    )
}

/// Writes every file (`table.txt`, `results.json`, `results.csv`, `simulator.json`,
/// the charts, the limiting-line charts, `index.html`) with the report layer's
/// [`write_dir`], all or nothing. Returns the file names.
pub fn write(p: &Prediction, out: &Path) -> Result<Vec<String>, ReportError> {
    let render = ReportError::render;
    let json = serde_json::to_string_pretty(&to_json(p)).map_err(|e| render("results.json")(&e))?;
    let speed =
        serde_json::to_string_pretty(&speed_json(p)).map_err(|e| render("simulator.json")(&e))?;
    let csv = to_csv(p).map_err(|e| render("results.csv")(&e))?;
    let charts = charts(p);
    let page = html(p, &charts).map_err(|e| render("index.html")(&e))?;
    let mut files: Vec<(String, String)> = vec![
        ("table.txt".into(), table(p)),
        ("results.json".into(), json + "\n"),
        ("results.csv".into(), csv),
        ("simulator.json".into(), speed + "\n"),
        ("index.html".into(), page),
    ];
    files.extend(charts.into_iter().map(|c| (c.file, c.svg)));
    files.extend(limiting_line_charts(p).into_iter().map(|c| (c.file, c.svg)));
    write_dir(out, &files)
}
