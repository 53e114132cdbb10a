//! A timeline drawn as SVG, for documents (`--timeline FILE.svg`; any other name writes
//! the Chrome Trace Event JSON of [`super`]).
//!
//! It draws exactly what the timeline holds, from its typed events ([`super::event`]):
//! one lane per CPU with four rows, one per [`Track`] (the CPU's task or checker operation
//! slices; the mm its page tables hold, lazy uses in orange; teardown marks and IPI
//! arrivals as ticks; the model's kernel spans, `__mmput`, `__mmdrop`,
//! `cleanup_lazy_tlbs`, IPI handlers, nested spans stacked within the row), an arrow for
//! each flow (an IPI, or a free under a CPU that still used the mm) from the sender's row
//! to the receiver's, and a red marker for each violation, named by its property below
//! the lanes. The drawing is a pure function of the events, so the same run draws the same
//! bytes (`docs/img/` is regenerated and compared by the command test).

use super::event::{Category, Phase, TraceEvent, Track, TRACKS};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Width of the drawing, in SVG units (pixels at 100%).
const WIDTH: f64 = 960.0;
/// Left margin, for the lane labels.
const LEFT: f64 = 96.0;
/// Right margin.
const RIGHT: f64 = 16.0;
/// Height of the title band.
const TOP: f64 = 40.0;
/// Heights of a lane's rows, one per track: tasks, page tables, teardown and IPIs, kernel.
const ROWS: [f64; TRACKS] = [26.0, 16.0, 14.0, LEVEL * LEVELS as f64 + 2.0];
/// The kernel row stacks nested spans (flame-graph style): the height of one level.
const LEVEL: f64 = 11.0;
/// Levels drawn; deeper spans share the last one.
const LEVELS: usize = 5;
/// The row of nested kernel spans.
const KERNEL: usize = Track::Kernel as usize;
/// The rows drawn as ticks with their labels to the right.
const TICKS: usize = Track::Events as usize;
/// Space between two CPUs' lanes.
const LANE_GAP: f64 = 14.0;
/// Height of one line of the legend or of the violations list.
const LINE: f64 = 16.0;
/// Average width of one character of the 11-unit sans-serif labels, to clip them.
const CHAR_W: f64 = 6.0;

/// What opens a timeline written to `path`: a browser for a drawing, Perfetto for JSON.
pub fn opener(path: &std::path::Path) -> &'static str {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        "a browser or an image viewer"
    } else {
        "https://ui.perfetto.dev"
    }
}

/// A row of the drawing: (CPU, which of its rows).
type Row = (usize, usize);

/// An arrow: where it leaves (time, row), where it arrives, and what it is.
struct Flow<'a> {
    from: (f64, Row),
    to: (f64, Row),
    what: &'a str,
}

/// One slice of a row.
struct Slice<'a> {
    row: Row,
    ts: f64,
    dur: f64,
    name: &'a str,
    cat: Option<Category>,
}

/// The timeline's events as SVG (see the module doc).
pub fn render(events: &[TraceEvent]) -> String {
    let mut title = String::from("lazymm timeline");
    let mut slices = Vec::new();
    let mut flows_from: BTreeMap<u64, (f64, Row, &str)> = BTreeMap::new();
    let mut flows: Vec<Flow<'_>> = Vec::new();
    let mut instants = Vec::new();
    let mut cpus = 0usize;
    let (mut t0, mut t1) = (f64::INFINITY, f64::NEG_INFINITY);
    for e in events {
        let row = (e.cpu(), e.row());
        let name = e.name.as_str();
        let ts = e.ts.unwrap_or(0.0);
        let dur = e.dur.unwrap_or(0.0);
        if e.ph != Phase::Metadata {
            cpus = cpus.max(row.0 + 1);
            t0 = t0.min(ts);
            t1 = t1.max(ts + dur);
        }
        match e.ph {
            Phase::Metadata if name == "process_name" => {
                if let Some(t) = e.args.as_ref().and_then(|a| a.name.as_ref()) {
                    title = t.clone();
                }
            }
            Phase::Metadata if name == "thread_name" => cpus = cpus.max(row.0 + 1),
            Phase::Metadata => {}
            Phase::Complete => slices.push(Slice {
                row,
                ts,
                dur,
                name,
                cat: e.cat,
            }),
            Phase::FlowStart => {
                flows_from.insert(e.id.unwrap_or(0), (ts, row, name));
            }
            Phase::FlowEnd => {
                if let Some((fts, from, what)) = flows_from.remove(&e.id.unwrap_or(0)) {
                    flows.push(Flow {
                        from: (fts, from),
                        to: (ts, row),
                        what,
                    });
                }
            }
            Phase::Instant => instants.push((ts, row, name, e.cat)),
        }
    }
    if !t0.is_finite() {
        (t0, t1) = (0.0, 1.0);
    }
    let span = (t1 - t0).max(1e-9);
    let x = |ts: f64| LEFT + (ts - t0) / span * (WIDTH - LEFT - RIGHT);
    let lane_h: f64 = ROWS.iter().sum::<f64>() + LANE_GAP;
    let y = |(cpu, r): (usize, usize)| {
        TOP + cpu as f64 * lane_h + ROWS[..r.min(TRACKS - 1)].iter().sum::<f64>()
    };
    let violations: Vec<&str> = instants
        .iter()
        .filter(|i| i.3 == Some(Category::Violation))
        .map(|i| i.2)
        .collect();
    let lanes_end = TOP + cpus as f64 * lane_h;
    let height = lanes_end + 2.0 * LINE + violations.len() as f64 * LINE + 8.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    s.push_str(concat!(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">"##,
        r##"<path d="M0,0 L10,5 L0,10 z" fill="#7b2cbf"/></marker></defs>"##,
        "\n"
    ));
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="8" y="18" font-size="13" font-weight="bold">{}</text>"##,
        esc(&title)
    );
    let _ = writeln!(
        s,
        r##"<text x="8" y="32" fill="#555555">time runs left to right ({:.1} us; a checker replay advances one unit per event)</text>"##,
        span
    );
    for cpu in 0..cpus {
        let top = y((cpu, 0));
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#f4f4f4"/>"##,
            WIDTH - LEFT - RIGHT,
            ROWS.iter().sum::<f64>()
        );
        let _ = writeln!(
            s,
            r##"<text x="8" y="{:.1}" font-weight="bold">cpu {cpu}</text>"##,
            top + 16.0
        );
        let _ = writeln!(
            s,
            r##"<text x="8" y="{:.1}" fill="#555555" font-size="9">page tables</text>"##,
            y((cpu, 1)) + 11.0
        );
        let _ = writeln!(
            s,
            r##"<text x="8" y="{:.1}" fill="#555555" font-size="9">teardown, IPIs</text>"##,
            y((cpu, 2)) + 10.0
        );
        let _ = writeln!(
            s,
            r##"<text x="8" y="{:.1}" fill="#555555" font-size="9">kernel</text>"##,
            y((cpu, 3)) + 11.0
        );
    }
    for (i, sl) in slices.iter().enumerate() {
        let (x0, x1) = (x(sl.ts), x(sl.ts + sl.dur));
        let w = (x1 - x0).max(1.5);
        // A kernel span inside others is drawn one level down per enclosing span (the
        // timeline lists nested spans as they close, innermost first).
        let depth = slices
            .iter()
            .enumerate()
            .filter(|&(j, o)| {
                j != i
                    && o.row == sl.row
                    && o.ts <= sl.ts
                    && sl.ts + sl.dur <= o.ts + o.dur
                    && (o.dur > sl.dur || j > i)
            })
            .count()
            .min(LEVELS - 1) as f64;
        let (top, h) = if sl.row.1 == KERNEL {
            (y(sl.row) + 1.0 + depth * LEVEL, LEVEL - 1.0)
        } else {
            (y(sl.row) + 1.0, ROWS[sl.row.1.min(TRACKS - 1)] - 2.0)
        };
        let fill = fill(sl);
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}" stroke="#ffffff" stroke-width="0.5"><title>{}</title></rect>"##,
            esc(sl.name)
        );
        let room = if sl.row.1 == TICKS {
            // A tick: its label runs on to the right.
            (WIDTH - RIGHT - x0 - 4.0).min(200.0)
        } else {
            w - 4.0
        };
        let label = clip(sl.name, room);
        if !label.is_empty() {
            let (tx, color) = if sl.row.1 == TICKS {
                (x0 + w + 2.0, "#333333")
            } else {
                (x0 + 2.0, text_color(fill))
            };
            let size = match sl.row.1 {
                0 => 11,
                KERNEL => 8,
                _ => 9,
            };
            let _ = writeln!(
                s,
                r##"<text x="{tx:.1}" y="{:.1}" fill="{color}" font-size="{size}">{}</text>"##,
                top + h - if sl.row.1 == KERNEL { 2.0 } else { 4.0 },
                esc(&label)
            );
        }
    }
    for Flow {
        from: (fts, from),
        to: (tts, to),
        what,
    } in &flows
    {
        // An end on the kernel row is at the innermost span there at that time.
        let level = |(ts, row): (f64, Row)| {
            let inside = slices
                .iter()
                .filter(|o| o.row == row && o.ts <= ts && ts <= o.ts + o.dur)
                .count();
            inside.saturating_sub(1).min(LEVELS - 1) as f64 * LEVEL
        };
        let tail = if from.1 == KERNEL {
            level((*fts, *from)) + LEVEL / 2.0
        } else {
            ROWS[from.1.min(TRACKS - 1)] / 2.0
        };
        let (x0, y0) = (x(*fts), y(*from) + tail);
        let head = if to.1 == KERNEL {
            level((*tts, *to)) + LEVEL / 2.0
        } else {
            ROWS[to.1.min(TRACKS - 1)] / 2.0
        };
        let (x1, y1) = (x(*tts), y(*to) + head);
        // A flow at one instant would be a vertical line over the slices it crosses:
        // bend it to the right so that its head stays visible.
        let _ = writeln!(
            s,
            r##"<path d="M{x0:.1},{y0:.1} C{:.1},{y0:.1} {:.1},{y1:.1} {x1:.1},{y1:.1}" fill="none" stroke="#7b2cbf" stroke-width="1.5" marker-end="url(#arrow)"><title>{}</title></path>"##,
            x0 + 24.0,
            x1 - 24.0,
            esc(what)
        );
    }
    for (i, (ts, row, name, cat)) in instants.iter().enumerate() {
        let (cx, cy) = (x(*ts), y(*row) + ROWS[0] / 2.0);
        if *cat == Some(Category::Violation) {
            let n = violations.iter().position(|v| v == name).unwrap_or(i) + 1;
            let _ = writeln!(
                s,
                r##"<path d="M{cx:.1},{:.1} l6,11 h-12 z" fill="#d00000" stroke="#ffffff"><title>{}</title></path>"##,
                cy - 7.0,
                esc(name)
            );
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#d00000" font-weight="bold">{n}</text>"##,
                cx + 7.0,
                cy + 4.0
            );
        } else {
            let _ = writeln!(
                s,
                r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="3" fill="#000000"><title>{}</title></circle>"##,
                esc(name)
            );
        }
    }
    // The legend, then each violation in full.
    let ly = lanes_end + 6.0;
    let mut lx = LEFT;
    for (fill, what) in [
        ("#4c78a8", "user task"),
        ("#9d9d9d", "idle or kthread"),
        ("#8fc98f", "page tables"),
        ("#f28e2b", "used lazily"),
        ("#b5403a", "teardown"),
        ("#e6c88c", "kernel span"),
        ("#c9a0ec", "IPI handler"),
        ("#7b2cbf", "IPI, or a free under a user"),
    ] {
        let _ = writeln!(
            s,
            r##"<rect x="{lx:.1}" y="{ly:.1}" width="10" height="10" fill="{fill}"/><text x="{:.1}" y="{:.1}">{what}</text>"##,
            lx + 13.0,
            ly + 9.0
        );
        lx += 13.0 + what.len() as f64 * CHAR_W + 14.0;
    }
    for (i, v) in violations.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="{LEFT}" y="{:.1}" fill="#d00000">{}. {}</text>"##,
            ly + LINE * (i as f64 + 1.0) + 10.0,
            i + 1,
            esc(v)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The colour of a slice, by its row and what its name says.
fn fill(sl: &Slice<'_>) -> &'static str {
    match sl.row.1 {
        0 => {
            let n = sl.name;
            let kernel = ["idle", "kthread", "kworker", "quiesce", "boot", "offline"]
                .iter()
                .any(|k| n.ends_with(k) || n.contains(&format!("-> {k}")) || n.starts_with(k));
            if kernel {
                "#9d9d9d"
            } else {
                "#4c78a8"
            }
        }
        1 if sl.name.contains("lazy") => "#f28e2b",
        1 if sl.name.contains("init_mm") => "#d9d9d9",
        1 => "#8fc98f",
        3 if sl.cat == Some(Category::Ipi)
            || sl.name.starts_with("do_")
            || sl.name.contains("IPI") =>
        {
            "#c9a0ec"
        }
        3 => "#e6c88c",
        _ if sl.cat == Some(Category::Ipi) => "#7b2cbf",
        _ => "#b5403a",
    }
}

fn text_color(fill: &str) -> &'static str {
    match fill {
        "#4c78a8" => "#ffffff",
        _ => "#000000",
    }
}

/// `name`, cut to what fits in `room` units (with an ellipsis), or nothing.
fn clip(name: &str, room: f64) -> String {
    let fits = (room / CHAR_W).floor() as usize;
    let n = name.chars().count();
    if n <= fits {
        name.to_string()
    } else if fits >= 4 {
        name.chars().take(fits - 1).collect::<String>() + "…"
    } else {
        String::new()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_lanes_slices_arrows_and_violations() {
        // The events as a document on disk reads back: the reader's types are the writer's.
        let doc = r#"[
            {"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "t & <x>"}},
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": 4, "args": {"name": "cpu 1"}},
            {"name": "pid 101 (mm#1.1)", "cat": "task", "ph": "X", "pid": 1, "tid": 0, "ts": 1.0, "dur": 2.0},
            {"name": "lazy on mm#1.1", "cat": "lazy", "ph": "X", "pid": 1, "tid": 5, "ts": 2.0, "dur": 1.0},
            {"name": "__mmdrop", "cat": "kernel", "ph": "X", "pid": 1, "tid": 3, "ts": 2.4, "dur": 0.5},
            {"name": "shoot", "cat": "ipi", "ph": "s", "id": 1, "pid": 1, "tid": 0, "ts": 2.5},
            {"name": "shoot", "cat": "ipi", "ph": "f", "id": 1, "pid": 1, "tid": 6, "ts": 2.5},
            {"name": "violation (b): x", "cat": "violation", "ph": "i", "pid": 1, "tid": 4, "ts": 3.0}
        ]"#;
        let events: Vec<TraceEvent> = serde_json::from_str(doc).expect("typed events");
        let svg = render(&events);
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains("t &amp; &lt;x&gt;"), "the title, escaped");
        assert!(svg.contains(">cpu 1</text>"), "a lane per CPU");
        assert!(svg.contains("#4c78a8"), "a user task slice");
        assert!(svg.contains(r##"fill="#f28e2b""##), "a lazy slice");
        assert!(svg.contains(r##"fill="#e6c88c""##), "a kernel span");
        assert_eq!(svg.matches("marker-end").count(), 1, "one arrow");
        assert!(svg.contains("1. violation (b): x"), "the violation, listed");
        assert_eq!(svg, render(&events), "deterministic");
    }
}
