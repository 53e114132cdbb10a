//! `lazymm replay TRACE...`: every scheme on a real machine's schedule.

use crate::args::{unexpected, Args};
use crate::bench::list;
use crate::Failure;
use lazymm_engine::registry;
use lazymm_trace::replay::{counterexample, replay_all, Input, Row, Variant};
use lazymm_trace::schedule::schedule;
use lazymm_trace::tasks::{census, Kind, KthreadRules};
use lazymm_trace::timeline::write_whole;
use lazymm_trace::{read_file, Format, Options, Trace};
use lexopt::Arg;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const OPTIONS: &str =
    "TRACE..., --format, --schemes, --archs, --json, --out, --lenient, --kthreads, --timeline";

pub fn main(args: Vec<OsString>) -> Result<u8, Failure> {
    let mut a = Args::new(args);
    let mut files: Vec<PathBuf> = Vec::new();
    let mut opts = Options::default();
    let mut schemes = Variant::every_scheme();
    let mut archs: Vec<&'static str> = vec!["generic"];
    let mut as_json = false;
    let mut out: Option<PathBuf> = None;
    let mut rules = KthreadRules::builtin();
    let mut timeline: Option<PathBuf> = None;
    while let Some(arg) = a.next()? {
        match arg {
            Arg::Value(v) => files.push(PathBuf::from(v)),
            Arg::Long("format") => {
                let s = a.string("--format")?;
                opts.format = Some(Format::from_name(&s).ok_or_else(|| {
                    Failure::Usage(format!("unknown format '{s}' (valid: {})", Format::names()))
                })?);
            }
            Arg::Long("schemes") => {
                // A mutant is accepted wherever a scheme is.
                schemes = list(&mut a, "--schemes", |s| {
                    Variant::by_name(s)
                        .map_err(|e| format!("{e} (or a mutant; see lazymm schemes)"))
                })?;
            }
            Arg::Long("archs") => {
                archs = list(&mut a, "--archs", |s| {
                    registry::arch(s).map_err(|e| e.to_string())
                })?;
            }
            Arg::Long("json") => as_json = true,
            Arg::Long("lenient") => opts.lenient = true,
            Arg::Long("out") => out = Some(PathBuf::from(a.string("--out")?)),
            Arg::Long("timeline") => timeline = Some(PathBuf::from(a.string("--timeline")?)),
            Arg::Long("kthreads") => {
                let f = a.string("--kthreads")?;
                let text = std::fs::read_to_string(&f).map_err(|e| {
                    Failure::Usage(format!("cannot read --kthreads file '{f}': {e}"))
                })?;
                rules = KthreadRules::parse(&text);
            }
            other => return Err(unexpected(other, OPTIONS)),
        }
    }
    if files.is_empty() {
        return Err(Failure::Usage(format!(
            "replay needs at least one trace file (formats: {})",
            Format::names()
        )));
    }
    let mut all: Vec<serde_json::Value> = Vec::new();
    let mut violated = false;
    for file in &files {
        let trace = read_file(file, &opts).map_err(|e| Failure::Usage(e.to_string()))?;
        let c = census(&trace, &rules);
        let s = schedule(&trace);
        if s.trace_switches == 0 {
            return Err(Failure::Usage(format!(
                "{}: no sched_switch events to replay (a {} trace; record with the sched_switch event)",
                file.display(),
                trace.format.map_or("?", |f| f.name())
            )));
        }
        if s.nr_cpus > lazymm::MAX_CPUS {
            return Err(Failure::Usage(format!(
                "{}: the trace shows {} CPUs; the model has at most {}",
                file.display(),
                s.nr_cpus,
                lazymm::MAX_CPUS
            )));
        }
        let input = Input {
            trace: &trace,
            census: &c,
            schedule: &s,
            timeline: timeline.is_some(),
        };
        let rows =
            replay_all(&schemes, &archs, &input).map_err(|e| Failure::Usage(e.to_string()))?;
        if !as_json {
            print_header(&trace, &c, &s);
            print_table(&rows);
        }
        for r in &rows {
            let j = r.to_json(&trace);
            if as_json {
                println!("{j}");
            }
            all.push(j);
            if r.total.violations > 0 {
                violated = true;
                eprintln!(
                    "lazymm: replay of {} under {} on {}: {} violation(s); counterexample:",
                    file.display(),
                    r.mutant.map_or(r.scheme, |m| m.name()),
                    r.arch,
                    r.total.violations
                );
                for l in counterexample(r) {
                    eprintln!("  {l}");
                }
            }
        }
        if let Some(t) = &timeline {
            for r in &rows {
                let path = timeline_path(t, r, rows.len() * files.len() > 1, file, files.len() > 1);
                if let Some(tl) = &r.timeline {
                    tl.write(&path).map_err(|e| {
                        Failure::Io(format!("cannot write {}: {e}", path.display()))
                    })?;
                    if !as_json {
                        println!("timeline: {}", path.display());
                    }
                }
            }
        }
    }
    if let Some(dir) = out {
        write_out(&dir, &all)?;
        if !as_json {
            println!(
                "results: {}/results.json, {}/results.csv",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(if violated { 3 } else { 0 })
}

/// `t.json`, or `t.SCHEME-ARCH.json` (and the trace's name) when there are several.
fn timeline_path(t: &Path, r: &Row, several: bool, file: &Path, several_files: bool) -> PathBuf {
    if !several {
        return t.to_path_buf();
    }
    let stem = t
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = t
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "json".into());
    let trace = if several_files {
        format!(
            ".{}",
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    } else {
        String::new()
    };
    t.with_file_name(format!("{stem}{trace}.{}-{}.{ext}", r.scheme, r.arch))
}

fn print_header(t: &Trace, c: &lazymm_trace::tasks::Census, s: &lazymm_trace::schedule::Schedule) {
    println!(
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
    println!(
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
        println!("  skipped: {}", k.join(", "));
    }
    if let Some(b) = t.stats.first_backwards.first() {
        println!(
            "  timestamps going backwards on one CPU: {} (first: line {}, cpu {}, {:.6} s after {:.6} s; kept in the file's order)",
            t.stats.backwards,
            b.line,
            b.cpu,
            b.ts_ns as f64 / 1e9,
            b.before_ns as f64 / 1e9
        );
    }
    if s.lost_prev + s.lost_next + s.lost_other > 0 {
        println!(
            "  lost events: {} switches from a task the CPU was not running, {} to a task still running elsewhere, {} exec/exit of a task not running (each resynchronised)",
            s.lost_prev, s.lost_next, s.lost_other
        );
    }
    if t.stats.malformed > 0 {
        println!(
            "  malformed lines skipped (--lenient): {}",
            t.stats.malformed
        );
    }
}

fn print_table(rows: &[Row]) {
    println!(
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
        println!(
            "  {:<26} {:<8} {:>9} {:>12.1} {:>11.1} {:>12.1} {:>14.1} {:>8} {:>9} {:>8.1} {:>6} {:>9} {:>6} {:>5}",
            r.mutant.map_or(r.scheme, |m| m.name()),
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
    for r in rows {
        if let Some(h) = &r.hottest {
            println!(
                "  hottest mm_count line under {} on {}: {} of {} ({} RMWs from {} cpus)",
                r.mutant.map_or(r.scheme, |m| m.name()),
                r.arch,
                h.mm,
                h.process,
                h.rmw,
                h.cpus
            );
        }
    }
}

fn write_out(dir: &Path, rows: &[serde_json::Value]) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::Io(format!("cannot write into {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let json = serde_json::to_string_pretty(&serde_json::Value::Array(rows.to_vec()))
        .map_err(|e| Failure::Io(e.to_string()))?;
    write_whole(&dir.join("results.json"), json.as_bytes()).map_err(io)?;
    let mut csv = String::new();
    if let Some(serde_json::Value::Object(first)) = rows.first() {
        let keys: Vec<&String> = first.keys().collect();
        csv.push_str(
            &keys
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
        for r in rows {
            let cells: Vec<String> = keys
                .iter()
                .map(|k| match &r[k.as_str()] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) if s.contains([',', '"', '\n']) => {
                        format!("\"{}\"", s.replace('"', "\"\""))
                    }
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect();
            csv.push_str(&cells.join(","));
            csv.push('\n');
        }
    }
    write_whole(&dir.join("results.csv"), csv.as_bytes()).map_err(io)?;
    Ok(())
}
