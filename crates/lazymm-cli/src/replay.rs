//! `lazymm replay TRACE...`: every scheme on a real machine's schedule.

use crate::args::{unexpected, Args};
use crate::bench::list;
use crate::bench::report_failure;
use crate::Failure;
use lazymm_cost::machine::Machine;
use lazymm_cost::price::Pricer;
use lazymm_engine::registry;
use lazymm_engine::report::check_out;
use lazymm_replay::report::Report;
use lazymm_replay::{counterexample, replay_all, Input, Row, Variant};
use lazymm_trace::schedule::schedule;
use lazymm_trace::tasks::{census, KthreadRules};
use lazymm_trace::{read_file, Format, Options};
use lexopt::Arg;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const OPTIONS: &str =
    "TRACE..., --format, --schemes, --archs, --json, --out, --lenient, --kthreads, --timeline, --machine";

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
    let mut machine: Option<Machine> = None;
    while let Some(arg) = a.next()? {
        match arg {
            Arg::Long("machine") => {
                let name = a.string("--machine")?;
                machine = Some(Machine::load(&name).map_err(|e| Failure::Usage(e.to_string()))?);
            }
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
    if let Some(dir) = &out {
        check_out(dir).map_err(report_failure)?;
    }
    let mut report = Report::default();
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
        if let Some(m) = &machine {
            // The machine must hold every CPU of the trace.
            Pricer::new(m, s.nr_cpus).map_err(|e| {
                Failure::Usage(format!("--machine: {}: the trace's {e}", file.display()))
            })?;
        }
        let input = Input {
            trace: &trace,
            census: &c,
            schedule: &s,
            timeline: timeline.is_some(),
            machine: machine.as_ref(),
        };
        let rows =
            replay_all(&schemes, &archs, &input).map_err(|e| Failure::Usage(e.to_string()))?;
        let text = report.add(&trace, &c, &s, &rows);
        if !as_json {
            print!("{text}");
        }
        for r in &rows {
            if as_json {
                let line = serde_json::to_string(&r.record(&trace))
                    .map_err(|e| Failure::Io(format!("cannot serialise a replay row: {e}")))?;
                println!("{line}");
            }
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
        let files = report.write(&dir).map_err(report_failure)?;
        if !as_json {
            println!(
                "report: {} ({})",
                dir.join("index.html").display(),
                files.join(", ")
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
