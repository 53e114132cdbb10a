//! The report of `lazymm predict`, in the bench's formats: a table, `results.json`,
//! `results.csv`, SVG charts and `index.html`.
//!
//! A small renderer of its own: the bench's (`lazymm_engine::report`) renders its own
//! `Bench` rows, is being rewritten, and has no place for the machine, the pairs or the
//! statement that every number here is a prediction.

use crate::predict::{Prediction, Row};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
    s
}

/// The columns of `results.csv`; every row of `results.json` has these keys.
pub const COLUMNS: &[&str] = &[
    "scheme",
    "arch",
    "workload",
    "cpus",
    "pairs",
    "machine",
    "predicted",
    "mode",
    "switch_work_ns",
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
    "transfers_per_switch",
    "exits",
    "lazy_switches",
    "task_bytes",
    "violations",
];

/// One row as JSON, with exactly [`COLUMNS`] as keys.
pub fn row_json(p: &Prediction, r: &Row) -> Value {
    let sps = r.r.switches_per_sec();
    json!({
        "scheme": r.r.scheme,
        "arch": r.r.arch,
        "workload": r.r.workload.name(),
        "cpus": r.r.cpus,
        "pairs": r.pairs,
        "machine": p.machine.file.name,
        "predicted": true,
        "mode": "realistic",
        "switch_work_ns": p.machine.file.cost.context_switch_ns,
        "host_fence_ns": p.machine.file.cost.fence_ns,
        "switches_per_sec": sps,
        "min": sps,
        "max": sps,
        "samples": 1,
        "slowdown_vs_none": r.slowdown_vs_none,
        "extra_ns_per_switch": r.extra_ns_per_switch,
        "shared_rmw_per_lazy_switch": r.shared_rmw_per_lazy_switch(),
        "full_fences_per_lazy_switch": r.full_fences_per_lazy_switch(),
        "ipis_per_exit": r.ipis_per_exit(),
        "teardown_us_per_exit": r.teardown_us_per_exit(),
        "transfers_per_switch": r.transfers_per_switch(),
        "exits": r.r.total.exits,
        "lazy_switches": r.r.measured.lazy_switches,
        "task_bytes": r.r.task_bytes,
        "violations": r.r.violations.len(),
    })
}

/// `results.json`: deterministic (the simulator's own host timings are in
/// `simulator.json`), so the same seed gives the same bytes.
pub fn to_json(p: &Prediction) -> Value {
    let (warmup, window) = p.spec.window();
    json!({
        "predicted": true,
        "header": header(p),
        "machine": {
            "name": p.machine.file.name,
            "source": p.machine.source,
            "description": p.machine.file.description,
            "hardware_threads": p.machine.nr_cpus,
        },
        "varied": p.varied.as_ref().map(|(k, v)| json!({"key": k, "value": v})),
        "seed": p.spec.seed,
        "simulated_warmup_us": warmup as f64 / 1e6,
        "simulated_window_us": window as f64 / 1e6,
        "command": p.command,
        "rows": p.rows.iter().map(|r| row_json(p, r)).collect::<Vec<_>>(),
        "violations": p.rows.iter().map(|r| r.r.violations.len()).sum::<usize>(),
    })
}

/// `simulator.json`: how fast the simulator ran (host time; differs run to run).
pub fn speed_json(p: &Prediction) -> Value {
    json!({
        "host_seconds": p.host_seconds,
        "simulated_accesses": p.accesses,
        "simulated_events": p.events,
        "accesses_per_host_second": p.accesses as f64 / p.host_seconds.max(1e-9),
        "events_per_host_second": p.events as f64 / p.host_seconds.max(1e-9),
        "rows": p.rows.iter().map(|r| json!({
            "scheme": r.r.scheme, "workload": r.r.workload.name(), "cpus": r.r.cpus,
            "pairs": r.pairs, "host_seconds": r.host_seconds,
        })).collect::<Vec<_>>(),
    })
}

/// `results.csv`.
pub fn to_csv(p: &Prediction) -> String {
    let mut s = COLUMNS.join(",") + "\n";
    for r in &p.rows {
        let v = row_json(p, r);
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| match &v[*c] {
                Value::Null => String::new(),
                Value::String(x) => x.clone(),
                other => other.to_string(),
            })
            .collect();
        s += &cells.join(",");
        s.push('\n');
    }
    s
}

/// `1234567.0` -> `1.23M`: the bench report's number format.
pub use lazymm_engine::report::si;

fn opt(x: Option<f64>, d: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.d$}"))
}

/// The terminal table.
pub fn table(p: &Prediction) -> String {
    let mut s = header(p) + "\n";
    let _ = writeln!(
        s,
        "{:<20} {:<8} {:<10} {:>5} {:>5} {:>10} {:>8} {:>9} {:>8} {:>8} {:>7} {:>10} {:>8}",
        "scheme",
        "arch",
        "workload",
        "cpus",
        "pairs",
        "switch/s",
        "vs none",
        "ns/sw+",
        "rmw/lazy",
        "mb/lazy",
        "ipi/ex",
        "teardown",
        "xfer/sw"
    );
    for r in &p.rows {
        let _ = writeln!(
            s,
            "{:<20} {:<8} {:<10} {:>5} {:>5} {:>10} {:>8} {:>9} {:>8} {:>8} {:>7} {:>10} {:>8}",
            r.r.scheme,
            r.r.arch,
            r.r.workload.name(),
            r.r.cpus,
            r.pairs.map_or("-".into(), |p| p.to_string()),
            si(r.r.switches_per_sec()),
            opt(r.slowdown_vs_none, 2),
            opt(r.extra_ns_per_switch, 0),
            opt(r.shared_rmw_per_lazy_switch(), 2),
            opt(r.full_fences_per_lazy_switch(), 2),
            opt(r.ipis_per_exit(), 0),
            r.teardown_us_per_exit()
                .map_or("-".into(), |t| format!("{t:.1} us")),
            opt(r.transfers_per_switch(), 2),
        );
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

/// Escapes text for XML and HTML (the bench report's escaping).
pub use lazymm_engine::report::svg::xml_escape as esc;

const PALETTE: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f", "#ff7f0e", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22",
];

/// One SVG line chart: CPUs (log2) on x, `value` (log10 when `log`) on y, one line per scheme.
fn chart(
    p: &Prediction,
    title: &str,
    ylabel: &str,
    log: bool,
    rows: &[&Row],
    value: impl Fn(&Row) -> Option<f64>,
) -> Option<String> {
    let mut series: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for &scheme in &p.spec.schemes {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.r.scheme == scheme)
            .filter_map(|r| {
                value(r)
                    .filter(|v| v.is_finite() && (!log || *v > 0.0))
                    .map(|v| (r.r.cpus as f64, v))
            })
            .collect();
        if !pts.is_empty() {
            series.push((scheme, pts));
        }
    }
    if series.is_empty() {
        return None;
    }
    let ys = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1));
    let (mut lo, mut hi) = ys.fold((f64::MAX, f64::MIN), |(l, h), y| (l.min(y), h.max(y)));
    let xs = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.0));
    let (xlo, xhi) = xs.fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(x), h.max(x)));
    let fy = |y: f64| if log { y.log10() } else { y };
    if !log {
        lo = lo.min(0.0);
    }
    if fy(hi) - fy(lo) < 1e-9 {
        hi = if log { lo * 10.0 } else { lo + 1.0 };
    }
    let (w, h, l, r, t, b) = (760.0, 420.0, 80.0, 170.0, 40.0, 50.0);
    let px =
        |x: f64| l + (x.log2() - xlo.log2()) / (xhi.log2() - xlo.log2()).max(1e-9) * (w - l - r);
    let py = |y: f64| t + (1.0 - (fy(y) - fy(lo)) / (fy(hi) - fy(lo))) * (h - t - b);
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n");
    let _ = writeln!(
        s,
        "<text x=\"{l}\" y=\"20\" font-size=\"14\">{} (predicted, {})</text>",
        esc(title),
        esc(&p.machine.file.name)
    );
    let _ = writeln!(
        s,
        "<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\">{}</text>",
        h / 2.0,
        h / 2.0,
        esc(ylabel)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\">CPUs</text>",
        (w - r + l) / 2.0,
        h - 10.0
    );
    let mut x = 1.0;
    while x <= xhi * 1.001 {
        if x >= xlo * 0.999 {
            let _ = writeln!(s, "<line x1=\"{0:.1}\" y1=\"{t}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>", px(x), h - b, h - b + 16.0, x);
        }
        x *= 2.0;
    }
    for i in 0..=4 {
        let fv = fy(lo) + (fy(hi) - fy(lo)) * i as f64 / 4.0;
        let v = if log { 10f64.powf(fv) } else { fv };
        let _ = writeln!(s, "<line x1=\"{l}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{0:.1}\" text-anchor=\"end\">{3}</text>", py(v), w - r, l - 6.0, si(v));
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in pts {
            let _ = writeln!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"><title>{name}: {} CPUs, {}</title></circle>", px(x), py(y), x, si(y));
        }
        let ly = t + 16.0 * i as f64;
        let _ = writeln!(s, "<line x1=\"{0}\" y1=\"{ly}\" x2=\"{1}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"/><text x=\"{2}\" y=\"{3}\">{4}</text>", w - r + 10.0, w - r + 30.0, w - r + 34.0, ly + 4.0, esc(name));
    }
    s += "</svg>\n";
    Some(s)
}

/// The charts: throughput, slowdown against `none` and teardown per exit, against CPUs,
/// per workload (and per pair count when several were asked).
pub fn charts(p: &Prediction) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut keys: Vec<(&str, &str, Option<usize>)> = Vec::new();
    for r in &p.rows {
        let k = (
            r.r.arch,
            r.r.workload.name(),
            if p.spec.pairs.len() > 1 {
                r.pairs
            } else {
                None
            },
        );
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (arch, w, pairs) in keys {
        let rows: Vec<&Row> = p
            .rows
            .iter()
            .filter(|r| {
                r.r.arch == arch
                    && r.r.workload.name() == w
                    && (pairs.is_none() || r.pairs == pairs)
            })
            .collect();
        let tag = format!(
            "{w}-{arch}{}",
            pairs.map_or(String::new(), |p| format!("-pairs{p}"))
        );
        let what = format!(
            "{w} ({arch}{})",
            pairs.map_or(String::new(), |p| format!(", {p} pairs"))
        );
        let charts = [
            (
                "throughput",
                format!("{what}: context switches per second"),
                "switches per second",
                true,
                0,
            ),
            (
                "slowdown",
                format!("{what}: times slower than none"),
                "times slower than none",
                false,
                1,
            ),
            (
                "teardown",
                format!("{what}: teardown per exit"),
                "microseconds per exit",
                true,
                2,
            ),
        ];
        for (name, title, ylabel, log, which) in charts {
            let svg = chart(p, &title, ylabel, log, &rows, |r| match which {
                0 => Some(r.r.switches_per_sec()),
                1 => r.slowdown_vs_none,
                _ => r.teardown_us_per_exit(),
            });
            if let Some(svg) = svg {
                out.push((format!("{name}-{tag}.svg"), svg));
            }
        }
    }
    out
}

/// `index.html`: the header, the charts inline and the table.
pub fn html(p: &Prediction, charts: &[(String, String)]) -> String {
    let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>lazymm predict</title>\n<style>body{font-family:sans-serif;margin:2em}pre{font-size:12px}.warn{background:#fff3cd;padding:.6em;border:1px solid #e0c060}</style>\n</head>\n<body>\n<h1>lazymm predict</h1>\n");
    let _ = writeln!(s, "<p class=\"warn\">{}</p>", esc(&header(p)));
    let _ = writeln!(s, "<p>Command: <code>{}</code>. Every number below is computed by the simulator from the model's own recorded accesses, priced by the machine file; see its comments for where each value comes from.</p>", esc(&p.command));
    for (_, svg) in charts {
        s += svg;
    }
    let _ = writeln!(s, "<pre>{}</pre>\n</body>\n</html>", esc(&table(p)));
    s
}

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `--out` names something that is not a previous report.
    #[error("'{0}' exists and is not a lazymm report (no results.json in it); give another --out")]
    NotAReport(PathBuf),
    /// A file could not be written.
    #[error("cannot write the report to '{path}': {err}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        err: std::io::Error,
    },
}

/// Writes every file into a fresh directory beside `out`, then moves it into place, so a
/// failure leaves `out` as it was. Returns the file names.
pub fn write(p: &Prediction, out: &Path) -> Result<Vec<String>, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |err| ReportError::Io { path, err }
    };
    if let Ok(md) = std::fs::metadata(out) {
        let ok = md.is_dir()
            && (out.join("results.json").is_file()
                || std::fs::read_dir(out).map_err(io(out))?.next().is_none());
        if !ok {
            return Err(ReportError::NotAReport(out.to_path_buf()));
        }
    }
    let parent = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = out.file_name().map_or("lazymm-predict".into(), |n| {
        n.to_string_lossy().into_owned()
    });
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    let charts = charts(p);
    let mut files: Vec<(String, String)> = vec![
        ("table.txt".into(), table(p)),
        (
            "results.json".into(),
            serde_json::to_string_pretty(&to_json(p)).unwrap_or_default() + "\n",
        ),
        ("results.csv".into(), to_csv(p)),
        (
            "simulator.json".into(),
            serde_json::to_string_pretty(&speed_json(p)).unwrap_or_default() + "\n",
        ),
    ];
    files.push(("index.html".into(), html(p, &charts)));
    files.extend(charts);
    for (f, text) in &files {
        let path = tmp.join(f);
        if let Err(e) = std::fs::write(&path, text) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io(&path)(e));
        }
    }
    let had_old = out.exists();
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(out, &old).map_err(io(out))?;
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
    Ok(files.into_iter().map(|(f, _)| f).collect())
}
