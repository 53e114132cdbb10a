//! `lazymm run`: one workload, one scheme, one arch; a table or one JSON row.

use crate::cli::{Membarrier, RunArgs};
use crate::json::{print_row, RunRow};
use crate::Failure;
use lazymm_engine::{registry, RunReport, RunSpec, Workload};
use lazymm_replay::Variant;

/// Events each CPU records for `--timeline` (later ones are counted, not kept).
const TIMELINE_EVENTS_PER_CPU: usize = 100_000;

pub fn main(a: RunArgs) -> Result<u8, Failure> {
    let RunArgs {
        scheme,
        mutant,
        arch,
        workload,
        cpus,
        pairs,
        pin: pin_pairs,
        seconds,
        switches,
        seed,
        switch_work: switch_work_ns,
        membarrier,
        json: as_json,
        timeline,
        profile,
    } = a;
    let profile = profile.profile();
    // A mutant is accepted wherever a scheme is (its scheme is implied).
    let (scheme, mutant) = match scheme {
        Some(Variant {
            scheme,
            mutant: Some(m),
        }) if mutant.is_none() => (Some(scheme.to_string()), Some(m)),
        Some(v) => (Some(v.scheme.to_string()), mutant),
        None => (None, mutant),
    };
    let arch_given = arch.is_some();
    let mut arch = arch.unwrap_or("generic").to_string();
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
        pin_pairs,
        membarrier_registered: membarrier == Membarrier::Registered,
        profile,
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
        print_row(&RunRow::from(&report))?;
    } else {
        print_table(&report, switch_work_ns)?;
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

fn print_table(r: &RunReport, switch_work_ns: u64) -> Result<(), Failure> {
    let m = &r.measured;
    let per = |x: u64| {
        if m.lazy_switches > 0 {
            format!("{:.3}", x as f64 / m.lazy_switches as f64)
        } else {
            "-".into()
        }
    };
    outln!(
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
        outln!("  {k:<30} {v:>14}");
    }
    outln!("  {:<30} {:>14}", "per cpu: switches/s", "");
    for (i, c) in r.per_cpu.iter().enumerate() {
        outln!(
            "    cpu {i:<24} {:>14.0}",
            c.context_switches as f64 / r.seconds.max(1e-9)
        );
    }
    Ok(())
}
