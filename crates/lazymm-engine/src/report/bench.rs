//! The report of `lazymm bench`: a terminal table, `results.json`, `results.csv`, SVG
//! charts and an `index.html` that shows them all with no network.
//!
//! The rows' fields are defined once, by [`Row`]'s serde derive: `results.json` and
//! `results.csv` are its serialization, and both tables draw their cells from it through
//! the one column list of [`columns`]. The page is a minijinja template
//! (`report/templates/bench.html`, over the base of [`super::page`]) with HTML autoescape: every text the report puts on it is
//! escaped by the template engine; only the SVG charts go in as markup.
//!
//! [`write_report`] writes every file into a fresh directory beside `--out` and moves it
//! into place only when all of them are written, so a half-written report never replaces
//! a good one.

use super::columns::{self, COLUMNS};
use super::format::{secs, utc};
use super::page::{self, render, Kind, Page};
use super::svg::{self, line_chart, Chart, ChartSpec, Point, Scale, Series, XAxis};
use super::write::{write_dir, ReportError};
use crate::bench::stats::{Verdict, CONFIDENCE, NOISE_THRESHOLD, RESAMPLES};
use crate::bench::{has_pairs, Bench, Mode, Row, NONE, NONE_MB};
use crate::workload::Workload;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;

// ---- the lines above the table -----------------------------------------------------------

/// One line on the host's switch cost and the work realistic mode adds.
pub fn switch_cost_line(b: &Bench) -> String {
    let h = b.host_switch;
    let measured = format!(
        "host context switch {:.0} ns (2 threads ping-ponging a byte on {}; fastest of the trials)",
        h.ns_per_switch,
        if h.pinned {
            "one core"
        } else {
            "unpinned cores"
        }
    );
    let given = if b.spec.switch_work_ns.is_some() {
        " (--switch-work)"
    } else {
        ""
    };
    if b.switch_work_ns == 0 {
        format!("{measured}; bookkeeping mode only{given}")
    } else {
        format!(
            "{measured}; realistic mode adds {} ns of CPU-local work per switch{given}",
            b.switch_work_ns
        )
    }
}

/// One line on what a full barrier costs here, the unit the opt-out schemes pay in.
pub fn fence_cost_line(b: &Bench) -> String {
    format!(
        "host full barrier {:.1} ns (the model's smp_mb, between a store and a load; fastest of the trials)",
        b.host_fence_ns
    )
}

/// One line on how busy the host was: load averages at start and end, stolen time.
pub fn load_line(b: &Bench) -> String {
    let l = &b.load;
    let avg = |h: &Option<crate::hostcost::HostLoad>| {
        h.map_or("unknown".into(), |h| {
            format!("{:.2} {:.2} {:.2}", h.loadavg_1, h.loadavg_5, h.loadavg_15)
        })
    };
    format!(
        "host load average (1, 5, 15 min) {} at start, {} at end; CPU time stolen by the hypervisor during the bench: {}",
        avg(&l.start),
        avg(&l.end),
        l.steal_percent
            .map_or("unknown".into(), |p| format!("{p:.2} %"))
    )
}

/// The warning printed when the host was busy, if it was.
pub fn busy_warning(b: &Bench) -> Option<String> {
    (!b.load.busy.is_empty()).then(|| {
        format!(
            "WARNING: the host was busy ({}): timings are noisy; read the intervals and verdicts, not single numbers",
            b.load.busy.join("; ")
        )
    })
}

/// What `none` is, in one sentence.
pub const NONE_SENTENCE: &str = "none does no bookkeeping at all and never frees an mm: what a switch costs when a lazy use costs nothing.";
/// What `none-mb` is, in one sentence.
pub const NONE_MB_SENTENCE: &str = "none-mb is none plus the one full barrier (smp_mb) membarrier requires per lazy round trip, after the rq->curr store: the least any correct scheme must pay, so a scheme's cost beyond none-mb (vs none-mb, +ns/sw mb) is what it pays beyond that barrier.";

/// How the intervals and verdicts are computed, in a few sentences.
pub fn method(b: &Bench) -> String {
    let (warm, sample, n) = (secs(b.sampling.0), secs(b.sampling.1), b.sampling.2);
    format!(
        "Per group of rows a warm-up run of {warm} s per scheme (discarded), then {n} rounds in which every scheme runs one sample of {sample} s, each round starting one scheme further along; seeds from {}. \
vs none is the median over the rounds of none's switches per second over the scheme's in the same round (the pairing cancels noise that lasts longer than a round); \
its {:.0} % interval is a percentile bootstrap over the rounds ({RESAMPLES} resamples, seeded from the samples, so the same samples give the same interval). \
The verdict is slower (faster) when the whole interval lies above {:.2} (below {:.2}), within noise otherwise. \
switch/s is the median of the samples with its bootstrap interval. Teardown p50/p99/max are read from the model's per-teardown latency histogram (16 buckets per power of two), pooled over the samples' measured phases.",
        b.spec.seed,
        CONFIDENCE * 100.0,
        1.0 + NOISE_THRESHOLD,
        1.0 - NOISE_THRESHOLD
    )
}

// ---- the table ---------------------------------------------------------------------------

/// The rows as serde serializes them (what `results.json` holds).
pub fn row_values(b: &Bench) -> Vec<Value> {
    b.rows
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect()
}

/// The terminal table.
pub fn table(b: &Bench) -> String {
    let mut s = String::new();
    let (warm, sample, n) = (secs(b.sampling.0), secs(b.sampling.1), b.sampling.2);
    let _ = writeln!(
        s,
        "lazymm bench: {} on {} ({} cpus); warm-up {warm} s, {n} rounds of {sample} s samples per row; wall {:.1} s",
        b.spec.archs.join(","),
        b.host.hostname,
        b.host.cpus,
        b.wall_seconds
    );
    let _ = writeln!(s, "{}", switch_cost_line(b));
    let _ = writeln!(s, "{}", fence_cost_line(b));
    let _ = writeln!(s, "{}", load_line(b));
    if let Some(w) = busy_warning(b) {
        let _ = writeln!(s, "{w}");
    }
    let _ = writeln!(s, "{NONE_SENTENCE}\n{NONE_MB_SENTENCE}");
    let _ = writeln!(
        s,
        "vs none: median of the rounds' paired ratios with its {:.0} % bootstrap interval; verdict: slower/faster when the whole interval is beyond {:.0} %, within noise otherwise",
        CONFIDENCE * 100.0,
        NOISE_THRESHOLD * 100.0
    );
    let keys: Vec<(Mode, Workload)> = b.rows.iter().map(|r| (r.mode, r.workload)).collect();
    s += &columns::text_table(COLUMNS, &row_values(b), |i| keys[i] != keys[i - 1]);
    let v = b.total_violations();
    if v > 0 {
        let _ = writeln!(
            s,
            "\n{v} VIOLATION(S) of the safety properties; the first ones:"
        );
        for line in &b.violations {
            let _ = writeln!(s, "  {line}");
        }
    }
    s
}

// ---- JSON and CSV ------------------------------------------------------------------------

/// `results.json`: `{"rows": [...]}` with the machine, its load, the command and the
/// method.
pub fn to_json(b: &Bench) -> Value {
    json!({
        "rows": row_values(b),
        "host_switch_ns": b.host_switch.ns_per_switch,
        "host_switch_pinned": b.host_switch.pinned,
        "host_fence_ns": b.host_fence_ns,
        "switch_work_ns": b.switch_work_ns,
        "host_load": b.load,
        "sampling": {
            "warmup_seconds": b.sampling.0,
            "sample_seconds": b.sampling.1,
            "samples": b.sampling.2,
            "seed": b.spec.seed,
        },
        "statistics": {
            "method": method(b),
            "confidence": CONFIDENCE,
            "resamples": RESAMPLES,
            "noise_threshold": NOISE_THRESHOLD,
        },
        "lower_bounds": {
            NONE: NONE_SENTENCE,
            NONE_MB: NONE_MB_SENTENCE,
        },
        "host": b.host,
        "command": b.command,
        "date": utc(b.finished_unix),
        "wall_seconds": b.wall_seconds,
        "violations": b.total_violations(),
    })
}

/// `results.csv`: a header of the rows' fields, then one line per row (empty for no
/// value), from the same serde derive as `results.json`.
pub fn to_csv(b: &Bench) -> Result<String, csv::Error> {
    columns::to_csv(&b.rows)
}

// ---- charts ------------------------------------------------------------------------------

/// Where a chart's points come from: one workload, and either every CPU count (x =
/// CPUs) or one CPU count with several pair counts (x = pairs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct View {
    workload: Workload,
    /// `Some(cpus)`: x is pairs, at this CPU count.
    pairs_at: Option<usize>,
}

impl View {
    fn suffix(&self) -> String {
        match self.pairs_at {
            None => self.workload.name().to_string(),
            Some(c) => format!("{}-{c}cpus", self.workload.name()),
        }
    }

    fn title(&self) -> String {
        match self.pairs_at {
            None => self.workload.name().to_string(),
            Some(c) => format!("{} on {c} CPUs", self.workload.name()),
        }
    }

    fn x_axis(&self) -> XAxis {
        self.pairs_at.map_or_else(XAxis::cpus, XAxis::pairs)
    }

    fn x(&self, r: &Row) -> Option<f64> {
        if r.workload != self.workload {
            return None;
        }
        match self.pairs_at {
            None => Some(r.cpus as f64),
            Some(c) => (r.cpus == c).then(|| r.pairs.unwrap_or(0) as f64),
        }
    }
}

/// The views of a bench: one per workload, or, where `--pairs` gave a workload several
/// pair counts, one per (workload, CPU count).
fn views(b: &Bench) -> Vec<View> {
    let mut out = Vec::new();
    for &w in &b.spec.workloads {
        let mut pairs: Vec<Option<usize>> = b
            .rows
            .iter()
            .filter(|r| r.workload == w)
            .map(|r| r.pairs)
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        if has_pairs(w) && pairs.len() > 1 {
            out.extend(b.spec.cpus.iter().map(|&c| View {
                workload: w,
                pairs_at: Some(c),
            }));
        } else {
            out.push(View {
                workload: w,
                pairs_at: None,
            });
        }
    }
    out
}

type Value3 = fn(&Row) -> Option<(f64, Option<(f64, f64)>)>;

/// The series of a chart: one per (mode, arch, scheme) with points in `view`, the
/// schemes in `skip` left out.
fn series_for(
    b: &Bench,
    view: View,
    value: Value3,
    with_verdict: bool,
    skip: &[&str],
) -> Vec<Series> {
    let many_archs = b.spec.archs.len() > 1;
    let mut out = Vec::new();
    for mode in b.modes() {
        for (ai, arch) in b.spec.archs.iter().enumerate() {
            for (si, scheme) in b.spec.schemes.iter().enumerate() {
                if skip.contains(scheme) {
                    continue;
                }
                let mut points: Vec<Point> = b
                    .rows
                    .iter()
                    .filter(|r| r.mode == mode && r.arch == *arch && r.scheme == *scheme)
                    .filter_map(|r| svg::point(r, view.x(r)?, value, with_verdict))
                    .collect();
                points.sort_by(|a, b| a.x.total_cmp(&b.x));
                if points.is_empty() {
                    continue;
                }
                out.push(Series {
                    name: if many_archs {
                        format!("{scheme}/{arch}")
                    } else {
                        scheme.to_string()
                    },
                    color: si + ai * b.spec.schemes.len(),
                    mode,
                    points,
                });
            }
        }
    }
    out
}

/// The charts: throughput (with its interval) and slowdown against none (with its
/// interval and verdict) for each view, and teardown latency p50..p99 on `exit-storm`
/// (when it ran).
pub fn charts(b: &Bench) -> Vec<Chart> {
    let modes = b.modes();
    let views = views(b);
    let mut out = Vec::new();
    for &v in &views {
        out.push(line_chart(ChartSpec {
            file: format!("throughput-{}.svg", v.suffix()),
            title: format!("{}: context switches per second", v.title()),
            y_label: "context switches per second",
            scale: Scale::Log,
            x_axis: v.x_axis(),
            series: series_for(
                b,
                v,
                |r| {
                    Some((
                        r.switches_per_sec,
                        Some((r.switches_per_sec_lo, r.switches_per_sec_hi)),
                    ))
                },
                false,
                &[],
            ),
            legend_modes: modes.clone(),
            bar_note: "bar: 95% CI of the median",
        }));
    }
    if b.spec.schemes.contains(&NONE) {
        for &v in &views {
            out.push(line_chart(ChartSpec {
                file: format!("slowdown-{}.svg", v.suffix()),
                title: format!("{}: cost of each scheme against none", v.title()),
                y_label: "times slower than none (1 = no cost)",
                scale: Scale::Linear,
                x_axis: v.x_axis(),
                series: series_for(
                    b,
                    v,
                    |r| Some((r.vs_none?, Some((r.vs_none_lo?, r.vs_none_hi?)))),
                    true,
                    // none against itself is the reference line at 1.
                    &[NONE],
                ),
                legend_modes: modes.clone(),
                bar_note: "bar: 95% CI (paired)",
            }));
        }
    }
    for &v in views.iter().filter(|v| v.workload == Workload::ExitStorm) {
        out.push(line_chart(ChartSpec {
            file: if v.pairs_at.is_none() {
                "teardown.svg".into()
            } else {
                format!("teardown-{}.svg", v.suffix())
            },
            title: format!(
                "{}: teardown latency (__mmput + __mmdrop), p50 and p99",
                v.title()
            ),
            y_label: "microseconds per teardown",
            scale: Scale::Log,
            x_axis: v.x_axis(),
            series: series_for(
                b,
                v,
                |r| {
                    let (p50, p99) = (r.teardown_us_p50?, r.teardown_us_p99?);
                    Some((p50, Some((p50, p99))))
                },
                false,
                &[],
            ),
            legend_modes: modes.clone(),
            bar_note: "dot: p50; bar up to p99",
        }));
    }
    out
}

// ---- the predicted section ---------------------------------------------------------------

/// Charts the simulator predicted for one machine, shown in the bench's report beside the
/// measurement and marked as a prediction. The caller (the CLI) runs the simulator and
/// draws the charts: this crate does not depend on `lazymm-sim`.
#[derive(Debug, Clone)]
pub struct PredictedSection {
    /// The machine file's name (`big-1024`).
    pub machine: String,
    /// Why this machine: the default large machine, or the rule that chose the preset
    /// nearest the host.
    pub why: String,
    /// The kernel profile the simulator ran (`6.12`).
    pub profile: String,
    /// What ran: workload, arch, CPU counts, simulated window.
    pub what: String,
    /// The charts; each title ends in "(predicted, MACHINE)".
    pub charts: Vec<Chart>,
}

/// The sentence above the predicted section.
pub const PREDICTED_NOTE: &str = "The charts in this section were not measured: the simulator computed them from the model's own recorded accesses, priced by the coherence cost model of the machine file named above each group, under the kernel profile it names. They answer what the schemes would cost on that machine, not on this host.";

// ---- HTML --------------------------------------------------------------------------------

/// The page template: the base's look, this report's content.
const BENCH_HTML: &str = include_str!("templates/bench.html");

/// The page: its template, its kind and its sections.
const PAGE: Page<'static> = Page {
    name: "bench.html",
    source: BENCH_HTML,
    subcommand: "bench",
    kind: Kind::Measurement,
    nav: BENCH_NAV,
};

/// The bench page's sections: the report's, and the predicted one.
const BENCH_NAV: &[(&str, &str)] = &[
    ("summary", "Summary"),
    ("charts", "Charts"),
    ("predicted", "Predicted"),
    ("table", "Table"),
    ("terminal", "Terminal table"),
];

/// `index.html`: the charts inline, the table, the machine, its load and the command,
/// rendered from the template with HTML autoescape.
pub fn html(b: &Bench, charts: &[Chart]) -> Result<String, minijinja::Error> {
    use minijinja::context;
    let groups: Vec<_> = b.rows.iter().map(Row::group).collect();
    let rows = page::rows(
        COLUMNS,
        &row_values(b),
        |i| match (
            b.rows[i].violations > 0,
            i > 0 && groups[i] != groups[i - 1],
        ) {
            (true, _) => "bad",
            (false, true) => "first",
            _ => "",
        },
        |i, c| match (c.cell, b.rows[i].verdict) {
            (columns::Cell::Text("verdict"), Some(Verdict::Slower)) => "v-slower",
            (columns::Cell::Text("verdict"), Some(Verdict::Faster)) => "v-faster",
            (columns::Cell::Text("verdict"), Some(Verdict::WithinNoise)) => "v-noise",
            _ => "",
        },
    );
    let charts = page::charts(charts.iter().map(|c| (c, c.title.as_str())));
    let predicted: Vec<minijinja::Value> = b
        .predicted
        .iter()
        .map(|s| {
            context! {
                machine => s.machine,
                why => s.why,
                profile => s.profile,
                what => s.what,
                charts => page::charts(s.charts.iter().map(|c| (c, c.title.as_str()))),
            }
        })
        .collect();
    let machine = format!(
        "{} ({} CPUs available, {}{})",
        b.host.hostname,
        b.host.cpus,
        b.host.os,
        b.host
            .cpu_model
            .as_ref()
            .map(|m| format!(", {m}"))
            .unwrap_or_default()
    );
    render(
        &PAGE,
        context! {
        busy => b.load.busy,
        command => b.command,
        date => utc(b.finished_unix),
        wall => format!("{:.1}", b.wall_seconds),
        machine => machine,
        lines => vec![switch_cost_line(b), fence_cost_line(b), load_line(b)],
        violation_count => b.total_violations(),
        none_sentence => NONE_SENTENCE,
        none_mb_sentence => NONE_MB_SENTENCE,
        method => method(b),
        charts => charts,
        predicted => predicted,
        predicted_note => PREDICTED_NOTE,
        columns => page::columns(COLUMNS),
        rows => rows,
        violations => b.violations,
        table => table(b),
        },
    )
}

// ---- writing it all ----------------------------------------------------------------------

/// Writes the whole report into `out`: `table.txt`, `results.json`, `results.csv`, the
/// charts and `index.html`. Returns the files written (names inside `out`).
///
/// Every file is rendered first, then written with [`write_dir`]: a failure leaves `out`
/// as it was.
pub fn write_report(b: &Bench, out: &Path) -> Result<Vec<String>, ReportError> {
    let charts = charts(b);
    let render = ReportError::render;
    let json = serde_json::to_string_pretty(&to_json(b)).map_err(|e| render("results.json")(&e))?;
    let csv = to_csv(b).map_err(|e| render("results.csv")(&e))?;
    let page = html(b, &charts).map_err(|e| render("index.html")(&e))?;
    let mut files: Vec<(String, String)> = vec![
        ("table.txt".into(), table(b)),
        ("results.json".into(), json + "\n"),
        ("results.csv".into(), csv),
    ];
    files.extend(charts.iter().map(|c| (c.file.clone(), c.svg.clone())));
    files.extend(
        b.predicted
            .iter()
            .flat_map(|s| &s.charts)
            .map(|c| (c.file.clone(), c.svg.clone())),
    );
    files.push(("index.html".into(), page));
    write_dir(out, &files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Verdict;
    use crate::bench::{fill_slowdowns, BenchSpec, HostInfo, LoadReport};
    use crate::hostcost::{HostLoad, HostSwitch};
    use crate::report::svg::{lin_ticks, log_ticks, si_tick};
    use std::path::PathBuf;

    /// A row of `scheme` whose rounds ran at `sps` times the `round` factors.
    fn row(scheme: &'static str, mode: Mode, cpus: usize, sps: f64, rounds: &[f64]) -> Row {
        let samples: Vec<f64> = rounds.iter().map(|f| sps * f).collect();
        Row {
            scheme,
            arch: "generic",
            workload: Workload::ExitStorm,
            cpus,
            pairs: None,
            mode,
            switch_work_ns: if mode == Mode::Realistic { 900 } else { 0 },
            host_switch_ns: 900.0,
            host_fence_ns: 5.0,
            switches_per_sec: sps,
            switches_per_sec_lo: sps * 0.95,
            switches_per_sec_hi: sps * 1.05,
            min: sps * 0.9,
            max: sps * 1.1,
            samples: samples.len(),
            vs_none: None,
            vs_none_lo: None,
            vs_none_hi: None,
            verdict: None,
            slowdown_vs_none: None,
            extra_ns_per_switch: None,
            vs_none_mb: None,
            vs_none_mb_lo: None,
            vs_none_mb_hi: None,
            extra_ns_vs_none_mb: None,
            lazy_switches_per_sec: sps / 2.0,
            shared_rmw_per_lazy_switch: Some(2.0),
            full_fences_per_lazy_switch: Some(1.0),
            ipis_per_exit: Some(0.5),
            teardown_us_per_exit: Some(1.5 * cpus as f64),
            teardown_us_p50: Some(1.0 * cpus as f64),
            teardown_us_p99: Some(4.0 * cpus as f64),
            teardown_us_max: Some(9.0 * cpus as f64),
            exits: 10,
            lazy_switches: 100,
            task_bytes: 32,
            task_state_bytes: 16,
            violations: 0,
            sample_switches_per_sec: samples,
        }
    }

    /// A bench made by hand: refcount (3x slower than none), none-mb (the same as none
    /// but for one noisy round) and none, one workload, CPUs 1 and 4, both modes.
    fn bench() -> Bench {
        let spec = BenchSpec {
            schemes: vec!["refcount", "none-mb", "none"],
            archs: vec!["generic"],
            workloads: vec![Workload::ExitStorm],
            cpus: vec![1, 4],
            pairs: None,
            quick: true,
            switch_work_ns: None,
            seed: 1,
            profile: lazymm::Profile::BARE,
        };
        let drift = [1.0, 0.7, 1.2, 0.9, 1.1];
        let mut noisy = drift;
        noisy[2] *= 0.5;
        let mut rows = Vec::new();
        for mode in [Mode::Bookkeeping, Mode::Realistic] {
            for cpus in [1, 4] {
                let c = cpus as f64;
                rows.push(row("refcount", mode, cpus, 1e6 * c, &drift));
                rows.push(row("none-mb", mode, cpus, 3e6 * c, &noisy));
                rows.push(row("none", mode, cpus, 3e6 * c, &drift));
            }
        }
        fill_slowdowns(&mut rows);
        let quiet = HostLoad {
            loadavg_1: 0.25,
            loadavg_5: 0.5,
            loadavg_15: 0.75,
            steal_ticks: 0,
            total_ticks: 1000,
        };
        Bench {
            spec,
            rows,
            host_switch: HostSwitch {
                ns_per_switch: 900.0,
                pinned: true,
                round_trips: 10,
            },
            host_fence_ns: 5.0,
            switch_work_ns: 900,
            sampling: (0.02, 0.05, 5),
            host: HostInfo::this(),
            load: LoadReport::judge(Some(quiet), Some(quiet), 2, 1),
            wall_seconds: 1.0,
            finished_unix: 0,
            violations: vec![],
            command: "lazymm bench <test> & \"more\"".into(),
            predicted: vec![],
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("lazymm-report-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn chart_ticks_print_as_people_read_them() {
        assert_eq!(si_tick(5e7), "50M");
        assert_eq!(si_tick(2e3), "2k");
        assert_eq!(si_tick(0.5), "0.5");
        assert_eq!(si_tick(100.0), "100");
    }

    #[test]
    fn linear_ticks_cover_the_data_in_round_steps() {
        let (lo, hi, t) = lin_ticks(1.0, 2.38);
        assert!(
            (lo - 1.0).abs() < 1e-9 && (hi - 2.4).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert_eq!(t.len(), 8);
        let (lo, hi, t) = lin_ticks(0.81, 1.2);
        assert!(lo <= 0.81 && hi >= 1.2 && t.len() >= 4, "{lo} {hi} {t:?}");
        let (lo, hi, _) = lin_ticks(1.0, 1.0);
        assert!(lo <= 1.0 && hi > 1.0);
    }

    #[test]
    fn log_ticks_cover_the_data() {
        let (lo, hi, t) = log_ticks(3.1e5, 4.2e7);
        assert!(lo <= 3.1e5 && hi >= 4.2e7);
        assert_eq!(lo, 1e5);
        assert_eq!(hi, 1e8);
        assert!(t.contains(&2e6) && t.contains(&5e7));
        let (lo, hi, _) = log_ticks(1e6, 1e6);
        assert!(lo < 1e6 && hi >= 1e6);
    }

    #[test]
    fn slowdowns_compare_within_the_same_group_only() {
        let b = bench();
        for r in &b.rows {
            let got = r.vs_none.expect("none ran");
            let (lo, hi) = (r.vs_none_lo.expect("lo"), r.vs_none_hi.expect("hi"));
            match r.scheme {
                // Every round 3x: the drift cancels in the pairs.
                "refcount" => {
                    assert!((got - 3.0).abs() < 1e-9 && (lo - 3.0).abs() < 1e-9, "{got}");
                    assert_eq!(r.verdict, Some(Verdict::Slower));
                }
                // One round of five at half speed: the median ignores it, the interval
                // reaches it, and the verdict will not call it.
                "none-mb" => {
                    assert!((got - 1.0).abs() < 1e-9 && hi > 1.5, "{got} {hi}");
                    assert_eq!(r.verdict, Some(Verdict::WithinNoise));
                }
                _ => assert_eq!((got, lo, hi), (1.0, 1.0, 1.0)),
            }
            // refcount: 1000 ns per switch per CPU, none: 333 ns, whatever the CPUs.
            let want = if r.scheme == "refcount" {
                2000.0 / 3.0
            } else {
                0.0
            };
            let got = r.extra_ns_per_switch.expect("none ran");
            assert!((got - want).abs() < 1e-6, "{}: {got}", r.scheme);
            assert!(r.vs_none_mb.is_some() && r.extra_ns_vs_none_mb.is_some());
        }
    }

    #[test]
    fn json_and_csv_carry_the_same_fields_for_every_row() {
        let b = bench();
        let j = to_json(&b);
        let rows = j["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), b.rows.len());
        let keys: Vec<&str> = rows[0]
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        for want in [
            "scheme",
            "cpus",
            "pairs",
            "mode",
            "switches_per_sec",
            "min",
            "max",
            "vs_none",
            "vs_none_lo",
            "vs_none_hi",
            "verdict",
            "slowdown_vs_none",
            "extra_ns_per_switch",
            "vs_none_mb",
            "teardown_us_per_exit",
            "teardown_us_p50",
            "teardown_us_p99",
            "teardown_us_max",
            "host_switch_ns",
            "host_fence_ns",
            "violations",
        ] {
            assert!(keys.contains(&want), "rows lack {want}");
        }
        for r in rows {
            let k: Vec<&str> = r
                .as_object()
                .expect("object")
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(k, keys);
        }
        assert_eq!(rows[0]["mode"], "bookkeeping");
        assert_eq!(rows[0]["workload"], "exit-storm");
        assert_eq!(rows[0]["verdict"], "slower");
        assert_eq!(rows[1]["verdict"], "within noise");
        assert_eq!(rows[6]["mode"], "realistic");
        assert_eq!(rows[0]["host_fence_ns"], 5.0);
        assert_eq!(j["host_fence_ns"], 5.0);
        assert_eq!(j["host_load"]["start"]["loadavg_1"], 0.25);
        assert_eq!(j["host_load"]["busy"], serde_json::json!([]));
        assert!(j["lower_bounds"]["none-mb"]
            .as_str()
            .expect("sentence")
            .contains("membarrier"));
        // The CSV: the same fields, in the same order, a line per row.
        let csv = to_csv(&b).expect("csv");
        let mut rd = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = rd
            .headers()
            .expect("header")
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(header, keys);
        let recs: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("record")).collect();
        assert_eq!(recs.len(), b.rows.len());
        let col = |name: &str| header.iter().position(|h| h == name).expect("column");
        assert_eq!(&recs[1][col("verdict")], "within noise");
        assert_eq!(&recs[0][col("scheme")], "refcount");
        assert_eq!(&recs[0][col("pairs")], "");
    }

    #[test]
    fn both_tables_come_from_the_one_column_list() {
        let b = bench();
        let values = row_values(&b);
        // Every column reads fields the rows have.
        for c in COLUMNS {
            for k in c.cell.keys() {
                assert!(values[0].get(k).is_some(), "{}: no field {k}", c.head);
            }
        }
        let t = table(&b);
        let header = t
            .lines()
            .find(|l| l.starts_with("mode"))
            .expect("a header line");
        for c in COLUMNS {
            assert!(header.contains(c.head), "terminal table lacks {}", c.head);
        }
        assert!(t.contains("3.00x [3.00..3.00]") && t.contains("slower"));
        assert!(t.contains("within noise"));
        assert!(t.contains(NONE_MB_SENTENCE));
        assert!(t.contains("load average (1, 5, 15 min) 0.25 0.50 0.75 at start"));
        assert!(!t.contains("WARNING"));
        // The HTML table: the same headers and the same cells.
        let page = html(&b, &charts(&b)).expect("renders");
        for c in COLUMNS {
            assert!(
                page.contains(&format!(">{}</th>", minijinja_escape(c.head))),
                "{}",
                c.head
            );
        }
        for cell in columns::cells(&values[0]) {
            let cell = minijinja_escape(&cell);
            assert!(page.contains(&format!(">{cell}</td>")), "{cell}");
        }
    }

    /// Text as minijinja's HTML escaping writes it.
    fn minijinja_escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
            .replace('/', "&#x2f;")
    }

    #[test]
    fn a_busy_host_is_warned_about() {
        let mut b = bench();
        b.load.busy = vec!["load average 3.00 on 2 CPUs before the bench started".into()];
        assert!(table(&b).contains("WARNING: the host was busy (load average 3.00"));
        let page = html(&b, &[]).expect("renders");
        assert!(page.contains("The host was busy"));
        assert!(to_json(&b)["host_load"]["busy"][0]
            .as_str()
            .expect("reason")
            .contains("3.00"));
    }

    #[test]
    fn the_page_is_escaped_by_the_template_engine() {
        let b = bench();
        let page = html(&b, &charts(&b)).expect("renders");
        assert!(page.contains("lazymm bench &lt;test&gt; &amp; &quot;more&quot;"));
        assert!(!page.contains("<test>"));
        // The charts go in as markup.
        assert_eq!(page.matches("<svg").count(), 3);
    }

    #[test]
    fn charts_have_a_series_per_scheme_and_mode_and_a_bar_per_point() {
        let b = bench();
        let cs = charts(&b);
        let files: Vec<&str> = cs.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "throughput-exit-storm.svg",
                "slowdown-exit-storm.svg",
                "teardown.svg"
            ]
        );
        for c in &cs {
            let doc = roxmltree_free_count(&c.svg);
            // 3 schemes x 2 modes, each with a point and a bar at 1 and 4 CPUs; the
            // slowdown chart leaves none (its reference line at 1) out.
            let schemes = if c.file.starts_with("slowdown") { 2 } else { 3 };
            assert_eq!(doc.series, schemes * 2, "{}", c.file);
            assert_eq!(
                c.svg.matches("<polyline").count(),
                schemes * 2,
                "{}",
                c.file
            );
            assert_eq!(doc.points, schemes * 4, "{}", c.file);
            assert!(c.svg.contains("simulated CPUs"));
        }
        // Within-noise points are hollow and grey; the others filled.
        let slow = &cs[1].svg;
        let noise: Vec<&str> = slow
            .lines()
            .filter(|l| l.contains(r#"data-verdict="within noise""#))
            .collect();
        // none-mb, both modes, both CPU counts.
        assert_eq!(noise.len(), 4);
        assert!(noise.iter().all(|l| l.contains(r##"fill="#ffffff""##)));
        assert!(slow
            .lines()
            .filter(|l| l.contains(r#"data-verdict="slower""#))
            .all(|l| !l.contains(r##"fill="#ffffff""##)));
        // The teardown chart's bars run from p50 (the dot) up to p99.
        assert!(cs[2].svg.contains("p50") && cs[2].svg.contains("p99"));
    }

    struct Counts {
        series: usize,
        points: usize,
    }

    /// Series and points with a bar, counted from the SVG's classes.
    fn roxmltree_free_count(svg: &str) -> Counts {
        let points = svg.matches(r#"class="pt""#).count();
        let bars = svg.matches(r#"class="err""#).count();
        assert_eq!(points, bars, "a point without its bar");
        Counts {
            series: svg.matches(r#"<g class="series""#).count(),
            points,
        }
    }

    #[test]
    fn pairs_give_the_pair_workloads_a_pairs_axis() {
        let mut b = bench();
        b.spec.workloads = vec![Workload::Threads];
        b.spec.cpus = vec![2];
        b.rows.retain(|r| r.cpus == 1);
        let mut rows = Vec::new();
        for p in [1, 2, 4] {
            for r in &b.rows {
                rows.push(Row {
                    workload: Workload::Threads,
                    cpus: 2,
                    pairs: Some(p),
                    ..r.clone()
                });
            }
        }
        fill_slowdowns(&mut rows);
        b.rows = rows;
        let cs = charts(&b);
        let files: Vec<&str> = cs.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(
            files,
            ["throughput-threads-2cpus.svg", "slowdown-threads-2cpus.svg"]
        );
        assert!(cs[0].svg.contains("pairs of tasks on 2 simulated CPUs"));
        for p in ["1", "2", "4"] {
            assert!(cs[0]
                .svg
                .contains(&format!(r#"text-anchor="middle">{p}</text>"#)));
        }
    }

    #[test]
    fn a_report_replaces_a_report_but_nothing_else() {
        let d = tmpdir("replace");
        let out = d.join("rep");
        let b = bench();
        let files = write_report(&b, &out).expect("first report");
        assert!(files.contains(&"index.html".to_string()));
        for f in &files {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        std::fs::write(out.join("stale.txt"), "old").expect("write");
        write_report(&b, &out).expect("second report");
        assert!(
            !out.join("stale.txt").exists(),
            "the old report was not replaced"
        );
        assert!(out.join("results.json").is_file());
        // No temporary or old directory is left beside it.
        let left: Vec<_> = std::fs::read_dir(&d).expect("dir").collect();
        assert_eq!(left.len(), 1);
        // A directory that is not a report is refused and left as it was.
        let other = d.join("precious");
        std::fs::create_dir(&other).expect("mkdir");
        std::fs::write(other.join("notes.txt"), "keep me").expect("write");
        assert!(matches!(
            write_report(&b, &other),
            Err(ReportError::NotAReport(_))
        ));
        assert_eq!(
            std::fs::read_to_string(other.join("notes.txt")).expect("kept"),
            "keep me"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
