//! `lazymm run`: one workload, one scheme, one arch; a table or one JSON object.

use crate::args::{unexpected, Args};
use crate::Failure;
use lazymm_engine::{registry, RunReport, RunSpec, Workload};
use lexopt::Arg;
use serde_json::json;
use std::ffi::OsString;
use std::path::PathBuf;

/// Events each CPU records for `--timeline` (later ones are counted, not kept).
const TIMELINE_EVENTS_PER_CPU: usize = 100_000;

const OPTIONS: &str =
    "--scheme, --mutant, --arch, --workload, --cpus, --pairs, --seconds, --switches, \
--seed, --switch-work, --membarrier, --json, --timeline";

pub fn main(args: Vec<OsString>) -> Result<u8, Failure> {
    let mut a = Args::new(args);
    let mut scheme: Option<String> = None;
    let mut mutant = None;
    let mut arch = "generic".to_string();
    let mut workload: Option<Workload> = None;
    let mut cpus = 2usize;
    let mut seconds = None;
    let mut switches = None;
    let mut seed = 1u64;
    let mut as_json = false;
    let mut switch_work_ns = 0u64;
    let mut membarrier_registered = true;
    let mut arch_given = false;
    let mut pairs = None;
    let mut timeline: Option<PathBuf> = None;
    while let Some(arg) = a.next()? {
        match arg {
            Arg::Long("scheme") => {
                let s = a.string("--scheme")?;
                // A mutant is accepted wherever a scheme is (its scheme is implied).
                match (registry::scheme(&s), registry::mutant(&s)) {
                    (Ok(name), _) => scheme = Some(name.into()),
                    (Err(_), Ok(m)) => mutant = Some(m),
                    (Err(e), Err(_)) => return Err(Failure::Usage(e.to_string())),
                }
            }
            Arg::Long("mutant") => {
                let s = a.string("--mutant")?;
                mutant = Some(registry::mutant(&s).map_err(|e| Failure::Usage(e.to_string()))?);
            }
            Arg::Long("arch") => {
                let s = a.string("--arch")?;
                arch_given = true;
                arch = registry::arch(&s)
                    .map_err(|e| Failure::Usage(e.to_string()))?
                    .into();
            }
            Arg::Long("workload") => {
                let s = a.string("--workload")?;
                workload = Some(registry::workload(&s).map_err(|e| Failure::Usage(e.to_string()))?);
            }
            Arg::Long("cpus") => {
                cpus = a.number("--cpus", 1, lazymm::MAX_CPUS, "a whole number")?;
            }
            Arg::Long("pairs") => {
                pairs = Some(a.number("--pairs", 1usize, usize::MAX / 2, "a whole number")?);
            }
            Arg::Long("seconds") => {
                seconds = Some(a.number("--seconds", 0.001f64, 86_400.0, "a number of seconds")?);
            }
            Arg::Long("switches") => {
                switches = Some(a.number("--switches", 1u64, u64::MAX / 2, "a whole number")?);
            }
            Arg::Long("seed") => seed = a.number("--seed", 0u64, u64::MAX, "a whole number")?,
            Arg::Long("switch-work") => {
                switch_work_ns =
                    a.number("--switch-work", 0u64, 1_000_000, "nanoseconds per switch")?;
            }
            Arg::Long("membarrier") => {
                membarrier_registered = match a.string("--membarrier")?.as_str() {
                    "registered" => true,
                    "unregistered" => false,
                    other => {
                        return Err(Failure::Usage(format!(
                        "--membarrier: unknown value {other:?} (valid: registered, unregistered)"
                    )))
                    }
                }
            }
            Arg::Long("json") => as_json = true,
            Arg::Long("timeline") => timeline = Some(PathBuf::from(a.string("--timeline")?)),
            other => return Err(unexpected(other, OPTIONS)),
        }
    }
    // A scheme given beside a mutant must be the mutant's: `lazymm_engine::run` checks.
    let scheme = match (scheme, mutant) {
        (Some(s), _) => s,
        (None, Some(m)) => m.scheme().to_string(),
        (None, None) => {
            return Err(Failure::Usage(format!(
                "run needs --scheme or --mutant (valid schemes: {})",
                names(&registry::schemes())
            )))
        }
    };
    if let Some(m) = mutant {
        if let Some(arch_needed) = m.arch() {
            if arch_given && arch != arch_needed {
                return Err(Failure::Usage(format!(
                    "mutant '{}' needs arch '{arch_needed}', not '{arch}' (give --arch {arch_needed} or no --arch)",
                    m.name()
                )));
            }
            arch = arch_needed.to_string();
        }
    }
    if seconds.is_some() && switches.is_some() {
        return Err(Failure::Usage(
            "give --seconds or --switches, not both (valid: one of them)".into(),
        ));
    }
    let Some(workload) = workload else {
        let valid: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
        return Err(Failure::Usage(format!(
            "run needs --workload (valid: {})",
            valid.join(", ")
        )));
    };
    let spec = RunSpec {
        scheme,
        mutant,
        arch,
        workload,
        cpus,
        seconds: if switches.is_some() {
            seconds
        } else {
            seconds.or(Some(2.0))
        },
        switches,
        seed,
        pin: true,
        switch_work_ns,
        pairs,
        membarrier_registered,
    };
    // A directory that does not exist fails before the run, not after it.
    if let Some(dir) = timeline
        .as_deref()
        .and_then(|p| p.parent())
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        return Err(Failure::Io(format!(
            "cannot write timeline {}: no directory {}",
            timeline
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string()),
            dir.display()
        )));
    }
    let (report, tl) = match &timeline {
        None => lazymm_engine::run(&spec).map(|r| (r, None)),
        Some(_) => lazymm_engine::run_logged(&spec, TIMELINE_EVENTS_PER_CPU).map(|(r, logs)| {
            let title = format!(
                "lazymm run: {} {} {} on {} cpus",
                r.mutant.map_or(r.scheme, |m| m.name()),
                r.arch,
                r.workload.name(),
                r.cpus
            );
            let tl = lazymm_engine::report::timeline::from_run(
                &logs,
                &r.violations,
                r.cpus,
                r.workload.name(),
                &title,
            );
            (r, Some(tl))
        }),
    }
    .map_err(|e| Failure::Usage(e.to_string()))?;
    if let (Some(path), Some(tl)) = (&timeline, &tl) {
        tl.write(path)
            .map_err(|e| Failure::Io(format!("cannot write timeline {}: {e}", path.display())))?;
        // stderr: with --json, stdout holds the one JSON object.
        eprintln!(
            "timeline: {} (open it in {})",
            path.display(),
            lazymm_engine::report::timeline::svg::opener(path)
        );
    }
    if as_json {
        println!("{}", to_json(&report));
    } else {
        print_table(&report, switch_work_ns);
    }
    if report.total.violations > 0 {
        eprintln!(
            "lazymm: {} violation(s) of the safety properties; the first ones:",
            report.total.violations
        );
        for v in report.violations.iter().take(10) {
            eprintln!("  {v}");
        }
        return Ok(3);
    }
    Ok(0)
}

fn names(list: &[(&str, &str)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The one JSON object of `run --json`, with exactly the field names of DESIGN.md §6.
pub fn to_json(r: &RunReport) -> serde_json::Value {
    json!({
        "scheme": r.scheme,
        "mutant": r.mutant.map(|m| m.name()),
        "arch": r.arch,
        "workload": r.workload.name(),
        "cpus": r.cpus,
        "seconds": r.seconds,
        "context_switches": r.measured.context_switches,
        "lazy_switches": r.measured.lazy_switches,
        "switches_per_sec": r.switches_per_sec(),
        "shared_rmw": r.measured.shared_rmw,
        "full_fences": r.measured.full_fences,
        "ipis": r.total.ipis_sent,
        "exits": r.total.exits,
        "lazy_scan_hits": r.total.lazy_scan_hits,
        "mm_created": r.total.mm_created,
        "mm_freed": r.total.mm_freed,
        "violations": r.total.violations,
        "task_bytes": r.task_bytes,
        "task_state_bytes": r.task_state_bytes,
    })
}

fn print_table(r: &RunReport, switch_work_ns: u64) {
    let m = &r.measured;
    let per = |x: u64| {
        if m.lazy_switches > 0 {
            format!("{:.3}", x as f64 / m.lazy_switches as f64)
        } else {
            "-".into()
        }
    };
    println!(
        "lazymm run: scheme {}{} arch {} workload {} on {} cpus for {:.2} s{}",
        r.scheme,
        r.mutant
            .map(|m| format!(" (mutant {})", m.name()))
            .unwrap_or_default(),
        r.arch,
        r.workload.name(),
        r.cpus,
        r.seconds,
        if switch_work_ns > 0 {
            format!(", {switch_work_ns} ns of work per switch")
        } else {
            String::new()
        }
    );
    let rows: Vec<(&str, String)> = vec![
        ("context switches", m.context_switches.to_string()),
        (
            "switches per second",
            format!("{:.0}", r.switches_per_sec()),
        ),
        ("lazy switches (user->kernel)", m.lazy_switches.to_string()),
        ("shared RMWs", m.shared_rmw.to_string()),
        ("shared RMWs per lazy switch", per(m.shared_rmw)),
        ("full fences", m.full_fences.to_string()),
        ("full fences per lazy switch", per(m.full_fences)),
        ("IPIs sent", r.total.ipis_sent.to_string()),
        ("exits (last mmput)", r.total.exits.to_string()),
        (
            "IPIs per exit",
            if r.total.exits > 0 {
                format!("{:.2}", r.total.ipis_sent as f64 / r.total.exits as f64)
            } else {
                "-".into()
            },
        ),
        (
            "teardown us per exit",
            if r.total.exits > 0 {
                format!(
                    "{:.2}",
                    r.total.teardown_ns as f64 / 1000.0 / r.total.exits as f64
                )
            } else {
                "-".into()
            },
        ),
        ("mms created", r.total.mm_created.to_string()),
        ("mms freed", r.total.mm_freed.to_string()),
        ("speculative walks", r.total.speculative_walks.to_string()),
        ("NMIs", r.total.nmis.to_string()),
        ("CPU offlines", r.total.offlines.to_string()),
        ("bytes per task", r.task_bytes.to_string()),
        ("scheme bytes per task", r.task_state_bytes.to_string()),
        ("violations", r.total.violations.to_string()),
    ];
    for (k, v) in rows {
        println!("  {k:<30} {v:>14}");
    }
    println!("  {:<30} {:>14}", "per cpu: switches/s", "");
    for (i, c) in r.per_cpu.iter().enumerate() {
        println!(
            "    cpu {i:<24} {:>14.0}",
            c.context_switches as f64 / r.seconds.max(1e-9)
        );
    }
}
