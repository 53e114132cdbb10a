//! `lazymm replay TRACE...`: every scheme on a real machine's schedule.

use crate::bench::report_failure;
use crate::cli::ReplayArgs;
use crate::json::print_row;
use crate::Failure;
use lazymm_cost::machine::Machine;
use lazymm_cost::price::Pricer;
use lazymm_engine::report::check_out;
use lazymm_replay::report::Report;
use lazymm_replay::{counterexample, replay_all, Input, Row, Variant};
use lazymm_trace::schedule::schedule;
use lazymm_trace::tasks::{census, KthreadRules};
use lazymm_trace::{read_file, Format, Options};
use std::path::{Path, PathBuf};

pub fn main(a: ReplayArgs) -> Result<u8, Failure> {
    let files = a.traces;
    let opts = Options {
        format: a.format,
        lenient: a.lenient,
    };
    let schemes = if a.schemes.is_empty() {
        Variant::every_scheme()
    } else {
        a.schemes
    };
    let archs = if a.archs.is_empty() {
        vec!["generic"]
    } else {
        a.archs
    };
    let (as_json, out, timeline) = (a.json, a.out, a.timeline);
    let machine = match &a.machine {
        Some(name) => Some(Machine::load(name).map_err(|e| Failure::Usage(e.to_string()))?),
        None => None,
    };
    let rules = match &a.kthreads {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                Failure::Usage(format!(
                    "cannot read --kthreads file '{}': {e}",
                    f.display()
                ))
            })?;
            KthreadRules::parse(&text)
        }
        None => KthreadRules::builtin(),
    };
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
            profile: a.profile.profile(),
        };
        let rows =
            replay_all(&schemes, &archs, &input).map_err(|e| Failure::Usage(e.to_string()))?;
        let text = report.add(&trace, &c, &s, &rows);
        if !as_json {
            out!("{text}");
        }
        for r in &rows {
            if as_json {
                print_row(&r.record(&trace))?;
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
                        outln!("timeline: {}", path.display());
                    }
                }
            }
        }
    }
    if let Some(dir) = out {
        let files = report.write(&dir).map_err(report_failure)?;
        if !as_json {
            outln!(
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
