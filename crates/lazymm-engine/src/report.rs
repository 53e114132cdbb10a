//! The report of `lazymm bench`: a terminal table, `results.json`, `results.csv`, SVG
//! charts and an `index.html` that shows them all with no network.
//!
//! [`write_report`] writes every file into a fresh directory beside `--out` and moves it
//! into place only when all of them are written, so a half-written report never replaces
//! a good one.

use crate::bench::{Bench, Mode, Row};
use crate::workload::Workload;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// ---- numbers -----------------------------------------------------------------------------

/// `1234567.0` → `1.23M`: three significant digits and an SI suffix.
pub fn si(x: f64) -> String {
    let (v, suffix) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let digits = match v.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    format!("{v:.digits$}{suffix}")
}

/// A tick label: [`si`] without trailing zeros (`50M`, `2k`, `0.5`).
fn si_tick(x: f64) -> String {
    let s = si(x);
    let (num, suffix) = s.split_at(s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{suffix}")
}

/// Seconds with at most three decimals and no trailing zeros (`0.02`, `0.2`, `1`).
fn secs(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// ---- the table ---------------------------------------------------------------------------

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

/// The terminal table.
pub fn table(b: &Bench) -> String {
    let mut s = String::new();
    let (warm, sample, n) = (secs(b.sampling.0), secs(b.sampling.1), b.sampling.2);
    let _ = writeln!(
        s,
        "lazymm bench: {} on {} ({} cpus); warm-up {warm} s, {n} samples of {sample} s per row; wall {:.1} s",
        b.spec.archs.join(","),
        b.host.hostname,
        b.host.cpus,
        b.wall_seconds
    );
    let _ = writeln!(s, "{}", switch_cost_line(b));
    let _ = writeln!(s, "{}", fence_cost_line(b));
    let _ = writeln!(
        s,
        "switches/s: median [min..max]; vs none: times slower than the none lower bound; \
+ns/sw: ns per switch per CPU beyond none's;\nRMW/lazy and mb/lazy: shared atomic RMWs and full barriers per lazy switch; \
IPIs and teardown us: per exit (last mmput); bytes: size of a task"
    );
    let header = format!(
        "{:<11} {:<7} {:<10} {:>4} {:<15} {:>9} {:>19} {:>8} {:>7} {:>8} {:>7} {:>9} {:>11} {:>5}",
        "mode",
        "arch",
        "workload",
        "cpus",
        "scheme",
        "switch/s",
        "[min..max]",
        "vs none",
        "+ns/sw",
        "RMW/lazy",
        "mb/lazy",
        "IPIs/exit",
        "teardown us",
        "bytes"
    );
    let _ = writeln!(s, "{header}");
    let _ = writeln!(s, "{}", "-".repeat(header.len()));
    let mut last_group = None;
    for r in &b.rows {
        let group = (r.mode, r.arch, r.workload, r.cpus);
        if last_group
            .is_some_and(|g: (Mode, &str, Workload, usize)| g.2 != group.2 || g.0 != group.0)
        {
            let _ = writeln!(s);
        }
        last_group = Some(group);
        let _ = writeln!(
            s,
            "{:<11} {:<7} {:<10} {:>4} {:<15} {:>9} {:>19} {:>8} {:>7} {:>8} {:>7} {:>9} {:>11} {:>5}",
            r.mode.name(),
            r.arch,
            r.workload.name(),
            r.cpus,
            r.scheme,
            si(r.switches_per_sec),
            format!("[{}..{}]", si(r.min), si(r.max)),
            r.slowdown_vs_none
                .map_or("-".into(), |x| format!("{x:.2}x")),
            opt(r.extra_ns_per_switch, 1),
            opt(r.shared_rmw_per_lazy_switch, 3),
            opt(r.full_fences_per_lazy_switch, 2),
            opt(r.ipis_per_exit, 2),
            opt(r.teardown_us_per_exit, 2),
            r.task_bytes
        );
    }
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

/// The columns of `results.csv`, in order; every row of `results.json` has these keys.
pub const COLUMNS: &[&str] = &[
    "scheme",
    "arch",
    "workload",
    "cpus",
    "mode",
    "switch_work_ns",
    "host_switch_ns",
    "host_fence_ns",
    "switches_per_sec",
    "min",
    "max",
    "samples",
    "slowdown_vs_none",
    "extra_ns_per_switch",
    "shared_rmw_per_lazy_switch",
    "full_fences_per_lazy_switch",
    "ipis_per_exit",
    "teardown_us_per_exit",
    "exits",
    "lazy_switches",
    "task_bytes",
    "violations",
];

/// One row as a JSON object with exactly [`COLUMNS`] as keys.
pub fn row_json(b: &Bench, r: &Row) -> Value {
    json!({
        "scheme": r.scheme,
        "arch": r.arch,
        "workload": r.workload.name(),
        "cpus": r.cpus,
        "mode": r.mode.name(),
        "switch_work_ns": r.switch_work_ns,
        "host_switch_ns": b.host_switch.ns_per_switch,
        "host_fence_ns": b.host_fence_ns,
        "switches_per_sec": r.switches_per_sec,
        "min": r.min,
        "max": r.max,
        "samples": r.samples,
        "slowdown_vs_none": r.slowdown_vs_none,
        "extra_ns_per_switch": r.extra_ns_per_switch,
        "shared_rmw_per_lazy_switch": r.shared_rmw_per_lazy_switch,
        "full_fences_per_lazy_switch": r.full_fences_per_lazy_switch,
        "ipis_per_exit": r.ipis_per_exit,
        "teardown_us_per_exit": r.teardown_us_per_exit,
        "exits": r.exits,
        "lazy_switches": r.lazy_switches,
        "task_bytes": r.task_bytes,
        "violations": r.violations,
    })
}

/// `results.json`: `{"rows": [...]}` with the machine, the command and the method.
pub fn to_json(b: &Bench) -> Value {
    json!({
        "rows": b.rows.iter().map(|r| row_json(b, r)).collect::<Vec<_>>(),
        "host_switch_ns": b.host_switch.ns_per_switch,
        "host_switch_pinned": b.host_switch.pinned,
        "host_fence_ns": b.host_fence_ns,
        "switch_work_ns": b.switch_work_ns,
        "sampling": {
            "warmup_seconds": b.sampling.0,
            "sample_seconds": b.sampling.1,
            "samples": b.sampling.2,
            "seed": b.spec.seed,
        },
        "host": {
            "hostname": b.host.hostname,
            "cpus": b.host.cpus,
            "os": b.host.os,
            "cpu_model": b.host.cpu_model,
        },
        "command": b.command,
        "date": utc(b.finished_unix),
        "wall_seconds": b.wall_seconds,
        "violations": b.total_violations(),
    })
}

/// `results.csv`: a header of [`COLUMNS`], then one line per row (empty for no value).
pub fn to_csv(b: &Bench) -> String {
    let mut s = COLUMNS.join(",");
    s.push('\n');
    for r in &b.rows {
        let v = row_json(b, r);
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| match &v[*c] {
                Value::Null => String::new(),
                Value::String(x) => x.clone(),
                other => other.to_string(),
            })
            .collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

// ---- SVG charts --------------------------------------------------------------------------

/// Escapes text for XML and HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PALETTE: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f", "#ff7f0e", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22",
];

/// One line of a chart: a series name, its colour slot, its mode and its points.
struct Series {
    name: String,
    color: usize,
    mode: Mode,
    points: Vec<(usize, f64)>,
}

/// A chart: its file name, and the SVG text.
pub struct Chart {
    /// File name (`throughput-idle-storm.svg`).
    pub file: String,
    /// Title.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Ticks of a log10 axis spanning `lo..=hi` (both > 0): the 1, 2, 5 of each decade.
fn log_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let mut d0 = lo.log10().floor();
    let d1 = hi.log10().ceil();
    if d1 <= d0 {
        // One exact power of ten: show the decade below it too.
        d0 -= 1.0;
    }
    let mut ticks = Vec::new();
    let mut d = d0;
    while d <= d1 {
        for m in [1.0, 2.0, 5.0] {
            let t = m * 10f64.powf(d);
            if t >= 10f64.powf(d0) * 0.999 && t <= 10f64.powf(d1) * 1.001 {
                ticks.push(t);
            }
        }
        d += 1.0;
    }
    (10f64.powf(d0), 10f64.powf(d1), ticks)
}

/// Ticks of a linear axis spanning `lo..=hi`: five to ten at a step of 1, 2 or 5 times a
/// power of ten, the range widened to whole steps.
fn lin_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let span = (hi - lo).max(hi.abs() * 0.05).max(1e-9);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|st| span / st <= 8.0)
        .unwrap_or(10.0 * mag);
    let y0 = (lo / step).floor() * step;
    let y1 = (hi / step).ceil() * step;
    let y1 = if y1 <= y0 { y0 + step } else { y1 };
    let n = ((y1 - y0) / step).round() as usize;
    let ticks = (0..=n).map(|i| y0 + step * i as f64).collect();
    (y0, y1, ticks)
}

/// How a chart's y axis is scaled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// log10, for throughputs and times spanning decades.
    Log,
    /// Linear, for ratios near 1.
    Linear,
}

fn line_chart(
    file: String,
    title: &str,
    y_label: &str,
    scale: Scale,
    series: &[Series],
    legend_modes: &[Mode],
) -> Chart {
    const W: f64 = 760.0;
    const H: f64 = 460.0;
    let (ml, mr, mt, mb) = (84.0, 200.0, 48.0, 62.0);
    let (pw, ph) = (W - ml - mr, H - mt - mb);
    let mut xs: Vec<usize> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| *y > 0.0)
        .collect();
    let (ylo, yhi) = ys
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    let (ylo, yhi) = if ys.is_empty() {
        (1.0, 10.0)
    } else {
        (ylo, yhi)
    };
    let (y0, y1, yticks) = match scale {
        Scale::Log => log_ticks(ylo, yhi),
        Scale::Linear => lin_ticks(ylo.min(1.0), yhi),
    };
    let x_of = |c: usize| -> f64 {
        // CPUs on a log2 axis: 1, 2, 4, 8 evenly spaced.
        let (a, b) = (
            (*xs.first().unwrap_or(&1) as f64).log2(),
            (*xs.last().unwrap_or(&1) as f64).log2(),
        );
        if b - a < 1e-9 {
            ml + pw / 2.0
        } else {
            ml + pw * 0.04 + pw * 0.92 * ((c as f64).log2() - a) / (b - a)
        }
    };
    let y_of = |v: f64| -> f64 {
        let f = match scale {
            Scale::Log => (v.log10() - y0.log10()) / (y1.log10() - y0.log10()),
            Scale::Linear => (v - y0) / (y1 - y0),
        };
        mt + ph * (1.0 - f)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(s, r##"<rect width="{W}" height="{H}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="26" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        ml + pw / 2.0,
        esc(title)
    );
    // Grid and y ticks.
    for t in &yticks {
        let y = y_of(*t);
        let major = match scale {
            Scale::Log => (t.log10() - t.log10().round()).abs() < 1e-9,
            Scale::Linear => (t - 1.0).abs() < 1e-9,
        };
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="1"/>"##,
            ml + pw,
            if major { "#cccccc" } else { "#eeeeee" }
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            ml - 6.0,
            y + 4.0,
            si_tick(*t)
        );
    }
    // X ticks.
    for &c in &xs {
        let x = x_of(c);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{:.1}" stroke="#eeeeee" stroke-width="1"/>"##,
            mt + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{c}</text>"#,
            mt + ph + 18.0
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">simulated CPUs (log scale)</text>"#,
        ml + pw / 2.0,
        H - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}{}</text>"#,
        mt + ph / 2.0,
        mt + ph / 2.0,
        esc(y_label),
        if scale == Scale::Log {
            " (log scale)"
        } else {
            ""
        }
    );
    // The series.
    for se in series {
        let color = PALETTE[se.color % PALETTE.len()];
        let dash = match se.mode {
            Mode::Bookkeeping => "",
            Mode::Realistic => r#" stroke-dasharray="7 4""#,
        };
        let pts: Vec<(f64, f64)> = se
            .points
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|&(c, v)| (x_of(c), y_of(v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<g class="series" data-scheme="{}" data-mode="{}">"#,
            esc(&se.name),
            se.mode.name()
        );
        if pts.len() > 1 {
            let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
                d.join(" ")
            );
        }
        for (x, y) in &pts {
            let fill = if se.mode == Mode::Bookkeeping {
                color
            } else {
                "#ffffff"
            };
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{fill}" stroke="{color}" stroke-width="1.5"/>"#
            );
        }
        let _ = writeln!(s, "</g>");
    }
    // The legend: one entry per scheme, then one per mode.
    let lx = ml + pw + 16.0;
    let mut ly = mt + 8.0;
    let mut seen: Vec<&str> = Vec::new();
    for se in series {
        if seen.contains(&se.name.as_str()) {
            continue;
        }
        seen.push(&se.name);
        let color = PALETTE[se.color % PALETTE.len()];
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            esc(&se.name)
        );
        ly += 18.0;
    }
    if legend_modes.len() > 1 {
        ly += 8.0;
        for m in legend_modes {
            let (dash, what) = match m {
                Mode::Bookkeeping => ("", "bookkeeping only"),
                Mode::Realistic => (r#" stroke-dasharray="7 4""#, "realistic (+ host switch)"),
            };
            let _ = writeln!(
                s,
                r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="#333333" stroke-width="2"{dash}/><text x="{}" y="{}">{what}</text>"##,
                lx + 24.0,
                lx + 30.0,
                ly + 4.0
            );
            ly += 18.0;
        }
    }
    let _ = writeln!(s, "</svg>");
    Chart {
        file,
        title: title.to_string(),
        svg: s,
    }
}

fn series_for(b: &Bench, workload: Workload, value: impl Fn(&Row) -> Option<f64>) -> Vec<Series> {
    let many_archs = b.spec.archs.len() > 1;
    let mut out = Vec::new();
    for mode in b.modes() {
        for (ai, arch) in b.spec.archs.iter().enumerate() {
            for (si, scheme) in b.spec.schemes.iter().enumerate() {
                let points: Vec<(usize, f64)> = b
                    .rows
                    .iter()
                    .filter(|r| {
                        r.mode == mode
                            && r.arch == *arch
                            && r.scheme == *scheme
                            && r.workload == workload
                    })
                    .filter_map(|r| value(r).map(|v| (r.cpus, v)))
                    .collect();
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

/// The charts: throughput against CPUs for each workload, and teardown time per exit
/// against CPUs (on `exit-storm`, when it ran).
pub fn charts(b: &Bench) -> Vec<Chart> {
    let modes = b.modes();
    let mut out = Vec::new();
    for &w in &b.spec.workloads {
        let series = series_for(b, w, |r| Some(r.switches_per_sec));
        out.push(line_chart(
            format!("throughput-{}.svg", w.name()),
            &format!("{}: context switches per second", w.name()),
            "context switches per second",
            Scale::Log,
            &series,
            &modes,
        ));
    }
    if b.spec.schemes.contains(&"none") {
        for &w in &b.spec.workloads {
            let series = series_for(b, w, |r| r.slowdown_vs_none);
            out.push(line_chart(
                format!("slowdown-{}.svg", w.name()),
                &format!("{}: cost of each scheme against none", w.name()),
                "times slower than none (1 = no cost)",
                Scale::Linear,
                &series,
                &modes,
            ));
        }
    }
    if b.spec.workloads.contains(&Workload::ExitStorm) {
        let series = series_for(b, Workload::ExitStorm, |r| r.teardown_us_per_exit);
        out.push(line_chart(
            "teardown.svg".into(),
            "exit-storm: teardown (__mmput + __mmdrop) per exit",
            "microseconds per exit",
            Scale::Log,
            &series,
            &modes,
        ));
    }
    out
}

// ---- HTML --------------------------------------------------------------------------------

/// `index.html`: the charts inline, the table, the machine and the command.
pub fn html(b: &Bench, charts: &[Chart]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>lazymm bench report</title>\n<style>\nbody {{ font-family: sans-serif; margin: 2em; color: #222; }}\ntable {{ border-collapse: collapse; font-size: 13px; }}\nth, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}\nth {{ background: #f0f0f0; }}\ntd.l {{ text-align: left; }}\ntr.bad td {{ background: #fdd; }}\n.charts {{ display: flex; flex-wrap: wrap; }}\n.charts figure {{ flex: 1 1 560px; max-width: 780px; margin: 0 1em 1em 0; }}\n.charts svg {{ border: 1px solid #ddd; width: 100%; height: auto; }}\ncode {{ background: #f4f4f4; padding: 1px 4px; }}\n</style>\n</head>\n<body>"
    );
    let _ = writeln!(s, "<h1>lazymm bench</h1>");
    let _ = writeln!(s, "<ul>");
    let _ = writeln!(s, "<li>Command: <code>{}</code></li>", esc(&b.command));
    let _ = writeln!(
        s,
        "<li>Finished: {}; wall time {:.1} s</li>",
        utc(b.finished_unix),
        b.wall_seconds
    );
    let _ = writeln!(
        s,
        "<li>Machine: {} ({} CPUs available, {}{})</li>",
        esc(&b.host.hostname),
        b.host.cpus,
        esc(&b.host.os),
        b.host
            .cpu_model
            .as_ref()
            .map(|m| format!(", {}", esc(m)))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "<li>{}</li>", esc(&switch_cost_line(b)));
    let _ = writeln!(s, "<li>{}</li>", esc(&fence_cost_line(b)));
    let (warm, sample, n) = (secs(b.sampling.0), secs(b.sampling.1), b.sampling.2);
    let _ = writeln!(
        s,
        "<li>Method: per row a warm-up run of {warm} s (discarded), then {n} samples of {sample} s, the schemes taking turns; median, min and max of switches per second; seeds from {}.</li>",
        b.spec.seed
    );
    let _ = writeln!(
        s,
        "<li>Violations of the safety properties: {}</li>",
        b.total_violations()
    );
    let _ = writeln!(s, "</ul>");
    let _ = writeln!(
        s,
        "<p>Solid lines and filled markers: bookkeeping only (the model's switch costs what the scheme's bookkeeping costs). Dashed lines and open markers: realistic (each switch also does as much CPU-local work as a real context switch on this host costs).</p>"
    );
    let _ = writeln!(s, "<h2>Charts</h2>\n<div class=\"charts\">");
    for c in charts {
        let _ = writeln!(
            s,
            "<figure>\n{}<figcaption>{} (<a href=\"{}\">{}</a>)</figcaption>\n</figure>",
            c.svg,
            esc(&c.title),
            esc(&c.file),
            esc(&c.file)
        );
    }
    let _ = writeln!(s, "</div>\n<h2>Table</h2>");
    let _ = writeln!(
        s,
        "<p>vs none: how many times slower than the <code>none</code> lower bound in the same group; +ns/switch: the nanoseconds each CPU spends per switch beyond what it spends under <code>none</code>. RMW/lazy: atomic read-modify-writes on lines shared between CPUs per lazy (user→kernel) switch; fences/lazy: full barriers per lazy switch (read them against the host's full-barrier cost above). IPIs and teardown µs: per exit (last <code>mmput</code>). Also in <a href=\"results.csv\">results.csv</a> and <a href=\"results.json\">results.json</a>.</p>"
    );
    let _ = writeln!(
        s,
        "<table>\n<tr><th>mode</th><th>arch</th><th>workload</th><th>CPUs</th><th>scheme</th><th>switches/s (median)</th><th>min</th><th>max</th><th>vs none</th><th>+ns/switch</th><th>RMW/lazy</th><th>fences/lazy</th><th>IPIs/exit</th><th>teardown µs/exit</th><th>bytes/task</th><th>violations</th></tr>"
    );
    for r in &b.rows {
        let _ = writeln!(
            s,
            "<tr{}><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if r.violations > 0 { " class=\"bad\"" } else { "" },
            r.mode.name(),
            r.arch,
            r.workload.name(),
            r.cpus,
            esc(r.scheme),
            si(r.switches_per_sec),
            si(r.min),
            si(r.max),
            r.slowdown_vs_none.map_or("-".into(), |x| format!("{x:.2}×")),
            opt(r.extra_ns_per_switch, 1),
            opt(r.shared_rmw_per_lazy_switch, 3),
            opt(r.full_fences_per_lazy_switch, 3),
            opt(r.ipis_per_exit, 2),
            opt(r.teardown_us_per_exit, 2),
            r.task_bytes,
            r.violations
        );
    }
    let _ = writeln!(s, "</table>");
    if !b.violations.is_empty() {
        let _ = writeln!(s, "<h2>Violations</h2>\n<pre>");
        for v in &b.violations {
            let _ = writeln!(s, "{}", esc(v));
        }
        let _ = writeln!(s, "</pre>");
    }
    let _ = writeln!(s, "<h2>Terminal table</h2>\n<pre>{}</pre>", esc(&table(b)));
    let _ = writeln!(s, "</body>\n</html>");
    s
}

// ---- writing it all ----------------------------------------------------------------------

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `--out` names something that is not a previous report: it is left alone.
    #[error("'{0}' exists and is not a lazymm report (no results.json in it); give another --out")]
    NotAReport(PathBuf),
    /// A file could not be written or moved.
    #[error("cannot write the report to '{path}': {err}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        err: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |err| ReportError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Checks that `out` may receive a report: it does not exist, or is an empty directory,
/// or holds a previous report (`results.json`). Anything else is left alone.
pub fn check_out(out: &Path) -> Result<(), ReportError> {
    match std::fs::metadata(out) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            let empty = std::fs::read_dir(out).map_err(io(out))?.next().is_none();
            if empty || out.join("results.json").is_file() {
                Ok(())
            } else {
                Err(ReportError::NotAReport(out.to_path_buf()))
            }
        }
        Ok(_) => Err(ReportError::NotAReport(out.to_path_buf())),
    }
}

/// Writes the whole report into `out`: `table.txt`, `results.json`, `results.csv`, the
/// charts and `index.html`. Returns the files written (names inside `out`).
///
/// Everything is first written into a new directory beside `out`; only when every file
/// is there does it replace `out` (a previous report is moved aside, then removed). A
/// failure leaves `out` as it was.
pub fn write_report(b: &Bench, out: &Path) -> Result<Vec<String>, ReportError> {
    check_out(out)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = out
        .file_name()
        .map_or("lazymm-report".into(), |n| n.to_string_lossy().into_owned());
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.tmp-{pid}"));
    let old = parent.join(format!(".{name}.old-{pid}"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    let result = (|| {
        let charts = charts(b);
        let mut files: Vec<(String, String)> = vec![
            ("table.txt".into(), table(b)),
            (
                "results.json".into(),
                serde_json::to_string_pretty(&to_json(b)).unwrap_or_default() + "\n",
            ),
            ("results.csv".into(), to_csv(b)),
        ];
        files.extend(charts.iter().map(|c| (c.file.clone(), c.svg.clone())));
        files.push(("index.html".into(), html(b, &charts)));
        for (f, text) in &files {
            let p = tmp.join(f);
            std::fs::write(&p, text).map_err(io(&p))?;
        }
        Ok(files.into_iter().map(|(f, _)| f).collect::<Vec<_>>())
    })();
    let files = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let had_old = out.exists();
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
        if let Err(e) = std::fs::rename(out, &old) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io(out)(e));
        }
    }
    if let Err(e) = std::fs::rename(&tmp, out) {
        if had_old {
            let _ = std::fs::rename(&old, out);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(io(out)(e));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{fill_slowdowns, BenchSpec, HostInfo};
    use crate::hostcost::HostSwitch;

    fn row(scheme: &'static str, mode: Mode, cpus: usize, sps: f64) -> Row {
        Row {
            scheme,
            arch: "generic",
            workload: Workload::ExitStorm,
            cpus,
            mode,
            switch_work_ns: if mode == Mode::Realistic { 900 } else { 0 },
            switches_per_sec: sps,
            min: sps * 0.9,
            max: sps * 1.1,
            samples: 3,
            slowdown_vs_none: None,
            extra_ns_per_switch: None,
            shared_rmw_per_lazy_switch: Some(2.0),
            full_fences_per_lazy_switch: Some(1.0),
            ipis_per_exit: Some(0.5),
            teardown_us_per_exit: Some(1.5 * cpus as f64),
            exits: 10,
            lazy_switches: 100,
            task_bytes: 32,
            violations: 0,
        }
    }

    /// A bench made by hand: two schemes, one workload, CPUs 1 and 4, both modes.
    fn bench() -> Bench {
        let spec = BenchSpec {
            schemes: vec!["refcount", "none"],
            archs: vec!["generic"],
            workloads: vec![Workload::ExitStorm],
            cpus: vec![1, 4],
            quick: true,
            switch_work_ns: None,
            seed: 1,
        };
        let mut rows = Vec::new();
        for mode in [Mode::Bookkeeping, Mode::Realistic] {
            for cpus in [1, 4] {
                rows.push(row("refcount", mode, cpus, 1e6 * cpus as f64));
                rows.push(row("none", mode, cpus, 3e6 * cpus as f64));
            }
        }
        fill_slowdowns(&mut rows);
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
            sampling: (0.02, 0.05, 3),
            host: HostInfo::this(),
            wall_seconds: 1.0,
            finished_unix: 0,
            violations: vec![],
            command: "lazymm bench <test>".into(),
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
    fn numbers_and_dates_print_as_people_read_them() {
        assert_eq!(si(1_234_567.0), "1.23M");
        assert_eq!(si(98_765.0), "98.8k");
        assert_eq!(si(5.0), "5.00");
        assert_eq!(si_tick(5e7), "50M");
        assert_eq!(si_tick(2e3), "2k");
        assert_eq!(si_tick(0.5), "0.5");
        assert_eq!(si_tick(100.0), "100");
        assert_eq!(secs(0.020000000000000004), "0.02");
        assert_eq!(secs(0.2), "0.2");
        assert_eq!(secs(1.0), "1");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400 + 3_661), "2000-02-29 01:01:01 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
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
            let want = if r.scheme == "none" { 1.0 } else { 3.0 };
            let got = r.slowdown_vs_none.expect("none ran");
            assert!((got - want).abs() < 1e-9, "{}: {got}", r.scheme);
            // refcount: 1000 ns per switch per CPU, none: 333 ns, whatever the CPUs.
            let want = if r.scheme == "none" {
                0.0
            } else {
                2000.0 / 3.0
            };
            let got = r.extra_ns_per_switch.expect("none ran");
            assert!((got - want).abs() < 1e-6, "{}: {got}", r.scheme);
        }
    }

    #[test]
    fn json_and_csv_carry_every_column_for_every_row() {
        let b = bench();
        let j = to_json(&b);
        let rows = j["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), b.rows.len());
        for r in rows {
            let keys: Vec<&str> = r
                .as_object()
                .expect("object")
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(keys, COLUMNS);
        }
        assert_eq!(rows[0]["mode"], "bookkeeping");
        assert_eq!(rows[4]["mode"], "realistic");
        assert_eq!(rows[0]["host_switch_ns"], 900.0);
        assert_eq!(rows[0]["host_fence_ns"], 5.0);
        assert_eq!(j["host_fence_ns"], 5.0);
        let csv = to_csv(&b);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + b.rows.len());
        assert_eq!(lines[0], COLUMNS.join(","));
        assert!(lines[1].starts_with("refcount,generic,exit-storm,1,bookkeeping,0,900"));
        for l in &lines {
            assert_eq!(l.split(',').count(), COLUMNS.len(), "{l}");
        }
    }

    #[test]
    fn charts_have_a_series_per_scheme_and_mode() {
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
            assert_eq!(
                c.svg.matches("<g class=\"series\"").count(),
                4,
                "{}",
                c.file
            );
            assert_eq!(c.svg.matches("<polyline").count(), 4, "{}", c.file);
            assert_eq!(
                c.svg.matches("stroke-dasharray").count(),
                2 + 1,
                "{}",
                c.file
            );
            assert!(c.svg.contains("simulated CPUs"));
        }
        let page = html(&b, &cs);
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(page.contains("lazymm bench &lt;test&gt;"));
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
