//! The one chart module of every report: SVG drawn by hand, in one palette and one
//! look. [`line_chart`] (bench, predict): every point with its interval as an error bar,
//! an x axis of any quantity (CPUs, pairs), a log or linear y axis. [`bar_chart`]
//! (replay): one horizontal bar per row, each a `<g class="bar" data-row=…>`.
//! [`stacked_bar_chart`] (predict's limiting lines): one horizontal bar per row, split
//! into segments by key (a cache line), each a `<rect class="seg" data-key=…>`, with a
//! legend of the keys and a note at the end of each bar.
//!
//! A point that is within noise is drawn hollow and grey, its line segment faint, so the
//! eye does not read a difference into it. Tests read the charts back: each series is a
//! `<g class="series" data-scheme=… data-mode=…>`, each point a `<circle class="pt">`
//! with `data-verdict` where it has one, each interval a `<line class="err">`.

use super::si;
use crate::bench::{Mode, Row};
use std::fmt::Write as _;

/// Escapes text for XML (the charts' titles, labels and scheme names).
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PALETTE: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f", "#ff7f0e", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22",
];

/// The colour of points within noise.
const NOISE_GREY: &str = "#9a9a9a";

/// One point of a series: its value, its interval, and whether it is within noise.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Position on the x axis.
    pub x: f64,
    /// The value.
    pub y: f64,
    /// The interval around it (`lo <= y <= hi` for a confidence interval; a teardown
    /// point's bar runs from its p50 up to its p99).
    pub bar: Option<(f64, f64)>,
    /// The verdict's name, when the point has one (`within noise` draws it grey).
    pub verdict: Option<&'static str>,
}

/// One line of a chart: a series name, its colour slot, its mode and its points.
#[derive(Debug, Clone)]
pub struct Series {
    /// The name in the legend (a scheme, or `scheme/arch`).
    pub name: String,
    /// The palette slot.
    pub color: usize,
    /// Solid for bookkeeping, dashed for realistic.
    pub mode: Mode,
    /// The points, in x order.
    pub points: Vec<Point>,
}

/// What the x axis shows.
#[derive(Debug, Clone, PartialEq)]
pub struct XAxis {
    /// The label under the axis.
    pub label: String,
    /// log2 spacing (1, 2, 4, 8 evenly apart) instead of linear.
    pub log2: bool,
}

impl XAxis {
    /// Simulated CPUs on a log2 axis.
    pub fn cpus() -> XAxis {
        XAxis {
            label: "simulated CPUs (log scale)".into(),
            log2: true,
        }
    }

    /// Pairs of tasks on a log2 axis.
    pub fn pairs(cpus: usize) -> XAxis {
        XAxis {
            label: format!("pairs of tasks on {cpus} simulated CPUs (log scale)"),
            log2: true,
        }
    }
}

/// How a chart's y axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// log10, for throughputs and times spanning decades.
    Log,
    /// Linear, for ratios near 1 (a reference line is drawn at 1).
    Linear,
}

/// A chart: its file name, its title, and the SVG text.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name (`throughput-idle-storm.svg`).
    pub file: String,
    /// Title.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// What a chart is made of, before it is drawn.
pub struct ChartSpec<'a> {
    /// File name.
    pub file: String,
    /// Title.
    pub title: String,
    /// The y axis label.
    pub y_label: &'a str,
    /// The y axis scale.
    pub scale: Scale,
    /// The x axis.
    pub x_axis: XAxis,
    /// The lines.
    pub series: Vec<Series>,
    /// The modes to explain in the legend.
    pub legend_modes: Vec<Mode>,
    /// A note under the legend on what a bar means.
    pub bar_note: &'a str,
}

/// A tick label: [`si`] without trailing zeros (`50M`, `2k`, `0.5`).
pub fn si_tick(x: f64) -> String {
    let s = si(x);
    let (num, suffix) = s.split_at(s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{suffix}")
}

/// Ticks of a log10 axis spanning `lo..=hi` (both > 0): the 1, 2, 5 of each decade.
pub fn log_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
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
pub fn lin_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
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

/// An x tick label: whole numbers without decimals.
fn x_tick(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        si_tick(x)
    }
}

/// Draws a chart.
pub fn line_chart(c: ChartSpec<'_>) -> Chart {
    const W: f64 = 760.0;
    const H: f64 = 460.0;
    let (ml, mr, mt, mb) = (84.0, 210.0, 48.0, 62.0);
    let (pw, ph) = (W - ml - mr, H - mt - mb);
    let positive = |v: f64| c.scale == Scale::Linear || v > 0.0;
    let mut xs: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let ys: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .flat_map(|p| {
            let (lo, hi) = p.bar.unwrap_or((p.y, p.y));
            [p.y, lo, hi]
        })
        .filter(|y| y.is_finite() && positive(*y))
        .collect();
    let (ylo, yhi) = if ys.is_empty() {
        (1.0, 10.0)
    } else {
        ys.iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)))
    };
    let (y0, y1, yticks) = match c.scale {
        Scale::Log => log_ticks(ylo, yhi),
        Scale::Linear => lin_ticks(ylo.min(1.0), yhi.max(1.0)),
    };
    let fx = |x: f64| if c.x_axis.log2 { x.max(1e-9).log2() } else { x };
    let (xa, xb) = (
        xs.first().map_or(0.0, |&x| fx(x)),
        xs.last().map_or(0.0, |&x| fx(x)),
    );
    let x_of = |x: f64| -> f64 {
        if xb - xa < 1e-9 {
            ml + pw / 2.0
        } else {
            ml + pw * 0.06 + pw * 0.88 * (fx(x) - xa) / (xb - xa)
        }
    };
    let y_of = |v: f64| -> f64 {
        let f = match c.scale {
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
    let _ = writeln!(s, "<title>{}</title>", xml_escape(&c.title));
    let _ = writeln!(s, r##"<rect width="{W}" height="{H}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="26" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        ml + pw / 2.0,
        xml_escape(&c.title)
    );
    // Grid and y ticks.
    for t in &yticks {
        let y = y_of(*t);
        let major = match c.scale {
            Scale::Log => (t.log10() - t.log10().round()).abs() < 1e-9,
            Scale::Linear => (t - 1.0).abs() < 1e-9,
        };
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="{}"/>"##,
            ml + pw,
            if major { "#aaaaaa" } else { "#eeeeee" },
            if major && c.scale == Scale::Linear {
                1.5
            } else {
                1.0
            }
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
    for &x in &xs {
        let px = x_of(x);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{mt}" x2="{px:.1}" y2="{:.1}" stroke="#eeeeee" stroke-width="1"/>"##,
            mt + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            mt + ph + 18.0,
            x_tick(x)
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        H - 18.0,
        xml_escape(&c.x_axis.label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}{}</text>"#,
        mt + ph / 2.0,
        mt + ph / 2.0,
        xml_escape(c.y_label),
        if c.scale == Scale::Log {
            " (log scale)"
        } else {
            ""
        }
    );
    // The series, each nudged sideways a little so their bars do not hide each other.
    let nseries = c.series.len().max(1) as f64;
    let spread = (pw * 0.1).min(4.0 * nseries);
    for (k, se) in c.series.iter().enumerate() {
        let color = PALETTE[se.color % PALETTE.len()];
        let dash = match se.mode {
            Mode::Bookkeeping => "",
            Mode::Realistic => r#" stroke-dasharray="7 4""#,
        };
        let nudge = if nseries > 1.0 {
            spread * (k as f64 / (nseries - 1.0) - 0.5)
        } else {
            0.0
        };
        let pts: Vec<(f64, f64, &Point)> = se
            .points
            .iter()
            .filter(|p| p.y.is_finite() && positive(p.y))
            .map(|p| (x_of(p.x) + nudge, y_of(p.y), p))
            .collect();
        let _ = writeln!(
            s,
            r#"<g class="series" data-scheme="{}" data-mode="{}">"#,
            xml_escape(&se.name),
            se.mode.name()
        );
        if pts.len() > 1 {
            let d: Vec<String> = pts
                .iter()
                .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.6" stroke-opacity="0.7"{dash}/>"#,
                d.join(" ")
            );
        }
        for &(x, y, p) in &pts {
            let noise = p.verdict == Some("within noise");
            let stroke = if noise { NOISE_GREY } else { color };
            if let Some((lo, hi)) = p.bar {
                let (lo, hi) = (lo.min(p.y), hi.max(p.y));
                if positive(lo) && positive(hi) {
                    let (ylo, yhi) = (y_of(lo), y_of(hi));
                    let _ = writeln!(
                        s,
                        r#"<line class="err" x1="{x:.1}" y1="{ylo:.1}" x2="{x:.1}" y2="{yhi:.1}" stroke="{stroke}" stroke-width="1.5"/>"#
                    );
                    for cap in [ylo, yhi] {
                        let _ = writeln!(
                            s,
                            r#"<line x1="{:.1}" y1="{cap:.1}" x2="{:.1}" y2="{cap:.1}" stroke="{stroke}" stroke-width="1.5"/>"#,
                            x - 3.5,
                            x + 3.5
                        );
                    }
                }
            }
            let verdict = p
                .verdict
                .map_or(String::new(), |v| format!(r#" data-verdict="{v}""#));
            let fill = if noise { "#ffffff" } else { color };
            let _ = writeln!(
                s,
                r#"<circle class="pt"{verdict} cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#
            );
        }
        let _ = writeln!(s, "</g>");
    }
    // The legend: one entry per scheme, then one per mode, then what the marks mean.
    let lx = ml + pw + 16.0;
    let mut ly = mt + 8.0;
    let mut seen: Vec<&str> = Vec::new();
    for se in &c.series {
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
            xml_escape(&se.name)
        );
        ly += 18.0;
    }
    if c.legend_modes.len() > 1 {
        ly += 8.0;
        for m in &c.legend_modes {
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
    ly += 8.0;
    let _ = writeln!(
        s,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#333333" stroke-width="1.5"/><circle cx="{}" cy="{ly}" r="3.5" fill="#333333"/><text x="{}" y="{}">{}</text>"##,
        lx + 12.0,
        ly - 7.0,
        lx + 12.0,
        ly + 7.0,
        lx + 12.0,
        lx + 30.0,
        ly + 4.0,
        xml_escape(c.bar_note)
    );
    if c.series
        .iter()
        .flat_map(|s| &s.points)
        .any(|p| p.verdict.is_some())
    {
        ly += 20.0;
        let _ = writeln!(
            s,
            r##"<circle cx="{}" cy="{ly}" r="3.5" fill="#ffffff" stroke="{NOISE_GREY}" stroke-width="1.5"/><text x="{}" y="{}">within noise</text>"##,
            lx + 12.0,
            lx + 30.0,
            ly + 4.0
        );
    }
    let _ = writeln!(s, "</svg>");
    Chart {
        file: c.file,
        title: c.title,
        svg: s,
    }
}

/// A series' point of a row, at `x`, with `value` (the point and its bar) and the
/// row's verdict when `with_verdict`.
pub fn point(
    r: &Row,
    x: f64,
    value: impl Fn(&Row) -> Option<(f64, Option<(f64, f64)>)>,
    with_verdict: bool,
) -> Option<Point> {
    let (y, bar) = value(r)?;
    Some(Point {
        x,
        y,
        bar,
        verdict: if with_verdict {
            r.verdict.map(|v| v.name())
        } else {
            None
        },
    })
}

/// The frame both horizontal bar charts draw alike: the SVG head, the title, the value
/// axis's grid lines and ticks under the plot, the plot's box, and the axis label at
/// `label_y`. The caller adds the bars and closes the `<svg>`.
fn horizontal_frame(
    (w, h): (f64, f64),
    (ml, mt, pw, ph): (f64, f64, f64, f64),
    (title, x_label, label_y): (&str, &str, f64),
    ticks: &[f64],
    x_of: impl Fn(f64) -> f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, "<title>{}</title>", xml_escape(title));
    let _ = writeln!(s, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="26" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );
    for t in ticks {
        let x = x_of(*t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
            mt + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            mt + ph + 16.0,
            si_tick(*t)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        label_y,
        xml_escape(x_label)
    );
    s
}

/// A horizontal bar chart, one `<g class="bar">` per `(label, value)` (with a
/// `<rect>` when the value is known), on a linear axis from 0.
pub fn bar_chart(
    file: &str,
    title: &str,
    x_label: &str,
    bars: &[(String, Option<f64>)],
    color: usize,
) -> Chart {
    const W: f64 = 760.0;
    const ROW: f64 = 22.0;
    let longest = bars
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let ml = (longest as f64 * 6.8 + 16.0).clamp(120.0, 380.0);
    let (mr, mt, mb) = (70.0, 48.0, 56.0);
    let pw = W - ml - mr;
    let ph = ROW * bars.len().max(1) as f64;
    let h = mt + ph + mb;
    let max = bars
        .iter()
        .filter_map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (x0, x1, ticks) = lin_ticks(0.0, if max > 0.0 { max } else { 1.0 });
    let x_of = |v: f64| ml + pw * (v - x0) / (x1 - x0);
    let fill = PALETTE[color % PALETTE.len()];
    let mut s = horizontal_frame(
        (W, h),
        (ml, mt, pw, ph),
        (title, x_label, h - 16.0),
        &ticks,
        x_of,
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = mt + ROW * i as f64;
        let _ = writeln!(s, r#"<g class="bar" data-row="{}">"#, xml_escape(label));
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            ml - 6.0,
            y + ROW / 2.0 + 4.0,
            xml_escape(label)
        );
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                let _ = writeln!(
                    s,
                    r#"<rect x="{ml}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" data-value="{v}"/>"#,
                    y + 3.0,
                    (x_of(v) - ml).max(0.0),
                    ROW - 6.0
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    x_of(v) + 4.0,
                    y + ROW / 2.0 + 4.0,
                    si_tick(v)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" fill="#888888">no value</text>"##,
                    ml + 4.0,
                    y + ROW / 2.0 + 4.0
                );
            }
        }
        let _ = writeln!(s, "</g>");
    }
    let _ = writeln!(s, "</svg>");
    Chart {
        file: file.into(),
        title: title.into(),
        svg: s,
    }
}

/// One bar of a [`stacked_bar_chart`]: its label, its segments (key, value; drawn
/// left to right in this order) and a note drawn after the bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The label left of the bar.
    pub label: String,
    /// The segments, each a key (coloured by the legend) and a value `>= 0`.
    pub segments: Vec<(String, f64)>,
    /// Text right of the bar.
    pub note: String,
}

/// A horizontal stacked bar chart on a linear axis from 0: one `<g class="bar"
/// data-row=…>` per [`Stack`], one `<rect class="seg" data-key=… data-value=…>` per
/// segment above zero, each key in its palette colour (slot by first appearance), and
/// a legend of those keys under the plot.
pub fn stacked_bar_chart(file: &str, title: &str, x_label: &str, bars: &[Stack]) -> Chart {
    const W: f64 = 960.0;
    const ROW: f64 = 26.0;
    const LEGEND_ROW: f64 = 18.0;
    let mut keys: Vec<&str> = Vec::new();
    for b in bars {
        for (k, v) in &b.segments {
            if v.is_finite() && *v > 0.0 && !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    let color = |k: &str| PALETTE[keys.iter().position(|x| *x == k).unwrap_or(0) % PALETTE.len()];
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let ml = (longest as f64 * 6.8 + 16.0).clamp(110.0, 300.0);
    let longest_note = bars
        .iter()
        .map(|b| b.note.chars().count())
        .max()
        .unwrap_or(0);
    let mr = (longest_note as f64 * 6.4 + 16.0).clamp(60.0, 420.0);
    let (mt, mb) = (48.0, 56.0);
    let pw = (W - ml - mr).max(200.0);
    let ph = ROW * bars.len().max(1) as f64;
    // The legend: keys in columns of LEGEND_COL across the plot's width, row by row.
    const LEGEND_COL: f64 = 280.0;
    let per_row = ((W - ml) / LEGEND_COL).floor().max(1.0) as usize;
    let legend_h = LEGEND_ROW * keys.len().div_ceil(per_row) as f64 + 8.0;
    let h = mt + ph + mb + legend_h;
    let total = |b: &Stack| -> f64 {
        b.segments
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite() && *v > 0.0)
            .sum()
    };
    let max = bars.iter().map(total).fold(0.0f64, f64::max);
    let (x0, x1, ticks) = lin_ticks(0.0, if max > 0.0 { max } else { 1.0 });
    let x_of = |v: f64| ml + pw * (v - x0) / (x1 - x0);
    let mut s = horizontal_frame(
        (W, h),
        (ml, mt, pw, ph),
        (title, x_label, mt + ph + 36.0),
        &ticks,
        x_of,
    );
    for (i, b) in bars.iter().enumerate() {
        let y = mt + ROW * i as f64;
        let _ = writeln!(s, r#"<g class="bar" data-row="{}">"#, xml_escape(&b.label));
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            ml - 6.0,
            y + ROW / 2.0 + 4.0,
            xml_escape(&b.label)
        );
        let mut at = 0.0;
        for (k, v) in &b.segments {
            if !(v.is_finite() && *v > 0.0) {
                continue;
            }
            let _ = writeln!(
                s,
                r##"<rect class="seg" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" stroke="#ffffff" stroke-width="0.5" data-key="{}" data-value="{v}"><title>{}: {}</title></rect>"##,
                x_of(at),
                y + 3.0,
                (x_of(at + v) - x_of(at)).max(0.0),
                ROW - 6.0,
                color(k),
                xml_escape(k),
                xml_escape(k),
                si_tick(*v)
            );
            at += v;
        }
        let _ = writeln!(
            s,
            r#"<text class="note" x="{:.1}" y="{:.1}">{}</text>"#,
            x_of(at) + 4.0,
            y + ROW / 2.0 + 4.0,
            xml_escape(&b.note)
        );
        let _ = writeln!(s, "</g>");
    }
    let ly = mt + ph + mb;
    for (i, k) in keys.iter().enumerate() {
        let y = ly + LEGEND_ROW * (i / per_row) as f64;
        let x = ml + LEGEND_COL * (i % per_row) as f64;
        let _ = writeln!(
            s,
            r#"<g class="key"><rect x="{x:.1}" y="{:.1}" width="14" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
            y,
            color(k),
            x + 20.0,
            y + 10.5,
            xml_escape(k)
        );
    }
    let _ = writeln!(s, "</svg>");
    Chart {
        file: file.into(),
        title: title.into(),
        svg: s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_chart_has_a_bar_per_row_and_escapes_its_labels() {
        let bars = vec![
            ("a<b/generic".to_string(), Some(3.0)),
            ("c&d/x86".to_string(), None),
            ("e/generic".to_string(), Some(0.0)),
        ];
        let c = bar_chart("x.svg", "t <1>", "x & y", &bars, 1);
        assert_eq!(c.svg.matches(r#"<g class="bar""#).count(), 3);
        assert_eq!(c.svg.matches("data-value=").count(), 2);
        assert!(c.svg.contains("a&lt;b/generic") && !c.svg.contains("a<b"));
        assert!(c.svg.contains("c&amp;d/x86"));
        // A zero is a bar of no width; the largest value (3, the last tick) spans the plot
        // (760 wide, less the 120 of the labels and the 70 of the right margin).
        assert!(c
            .svg
            .contains(r##"width="0.0" height="16.0" fill="#1f77b4" data-value="0""##));
        assert!(c
            .svg
            .contains(r##"width="570.0" height="16.0" fill="#1f77b4" data-value="3""##));
    }

    #[test]
    fn a_stacked_bar_chart_draws_each_segment_in_its_keys_colour_with_a_legend() {
        let bars = vec![
            Stack {
                label: "refcount".into(),
                segments: vec![("mm_count".into(), 3.0), ("rq->lock".into(), 1.0)],
                note: "limit: mm_count".into(),
            },
            Stack {
                label: "a<b".into(),
                segments: vec![("rq->lock".into(), 0.5), ("gone".into(), 0.0)],
                note: "limit: rq->lock".into(),
            },
        ];
        let c = stacked_bar_chart("x.svg", "t", "transfers", &bars);
        assert_eq!(c.svg.matches(r#"<g class="bar""#).count(), 2);
        assert_eq!(
            c.svg.matches(r#"class="seg""#).count(),
            3,
            "zero draws nothing"
        );
        assert_eq!(
            c.svg.matches(r#"<g class="key">"#).count(),
            2,
            "no key for a zero"
        );
        // One colour per key, whichever bar it is in.
        let red = c.svg.matches(r##"fill="#d62728""##).count();
        let blue = c.svg.matches(r##"fill="#1f77b4""##).count();
        assert_eq!(
            (red, blue),
            (2, 3),
            "mm_count: bar + key; rq->lock: 2 bars + key"
        );
        assert!(c.svg.contains("a&lt;b") && c.svg.contains("rq-&gt;lock"));
        assert!(c.svg.contains(">limit: mm_count</text>"));
        // The longest bar (4) ends at the last tick, the plot's right edge.
        let ends: Vec<f64> = c
            .svg
            .lines()
            .filter(|l| l.contains(r#"class="seg""#))
            .map(|l| {
                let num = |k: &str| -> f64 {
                    let i = l.find(k).unwrap() + k.len();
                    l[i..].split('"').next().unwrap().parse().unwrap()
                };
                num(r#" x=""#) + num(r#"width=""#)
            })
            .collect();
        let right = ends.iter().cloned().fold(0.0, f64::max);
        assert!(ends[1] == right, "{ends:?}");
    }
}
