//! `lazymm bench`: every scheme side by side; a table on the terminal and a whole report
//! (JSON, CSV, SVG charts, HTML) in `--out`.

use crate::args::{unexpected, Args};
use crate::progress::Progress;
use crate::Failure;
use lazymm_engine::bench::{run_bench, BenchError, BenchSpec};
use lazymm_engine::registry;
use lazymm_engine::report::{self, ReportError};
use lexopt::Arg;
use std::ffi::OsString;
use std::path::PathBuf;

const OPTIONS: &str =
    "--quick, --out, --schemes, --workloads, --cpus, --pairs, --archs, --switch-work, --seed";

/// The most pairs `--pairs` takes.
const MAX_PAIRS: usize = 4096;

/// Splits a comma-separated list and checks each element with `check`.
pub(crate) fn list<T>(
    a: &mut Args,
    opt: &str,
    mut check: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<T>, Failure> {
    let s = a.string(opt)?;
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(Failure::Usage(format!(
                "empty element in '{s}' for {opt} (give a comma-separated list)"
            )));
        }
        out.push(check(part).map_err(|e| Failure::Usage(format!("{opt}: {e}")))?);
    }
    Ok(out)
}

pub fn main(args: Vec<OsString>) -> Result<u8, Failure> {
    let command = std::iter::once("lazymm bench".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut a = Args::new(args);
    let mut spec = BenchSpec::new();
    let mut out = PathBuf::from("lazymm-report");
    while let Some(arg) = a.next()? {
        match arg {
            Arg::Long("quick") => spec.quick = true,
            Arg::Long("out") => {
                let s = a.string("--out")?;
                if s.is_empty() {
                    return Err(Failure::Usage("--out needs a directory".into()));
                }
                out = PathBuf::from(s);
            }
            Arg::Long("schemes") => {
                spec.schemes = list(&mut a, "--schemes", |s| {
                    registry::scheme(s).map_err(|e| e.to_string())
                })?;
            }
            Arg::Long("archs") => {
                spec.archs = list(&mut a, "--archs", |s| {
                    registry::arch(s).map_err(|e| e.to_string())
                })?;
            }
            Arg::Long("workloads") => {
                spec.workloads = list(&mut a, "--workloads", |s| {
                    registry::workload(s).map_err(|e| e.to_string())
                })?;
            }
            Arg::Long("cpus") => {
                spec.cpus = list(&mut a, "--cpus", |s| match s.parse::<usize>() {
                    Ok(n) if (1..=lazymm::MAX_CPUS).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "bad cpu count '{s}' (valid: whole numbers from 1 to {})",
                        lazymm::MAX_CPUS
                    )),
                })?;
            }
            Arg::Long("pairs") => {
                spec.pairs = Some(list(&mut a, "--pairs", |s| match s.parse::<usize>() {
                    Ok(n) if (1..=MAX_PAIRS).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "bad pair count '{s}' (valid: whole numbers from 1 to {MAX_PAIRS})"
                    )),
                })?);
            }
            Arg::Long("switch-work") => {
                spec.switch_work_ns =
                    Some(a.number("--switch-work", 0u64, 1_000_000, "nanoseconds per switch")?);
            }
            Arg::Long("seed") => {
                spec.seed = a.number("--seed", 0u64, u64::MAX, "a whole number")?
            }
            other => return Err(unexpected(other, OPTIONS)),
        }
    }
    dedup(&mut spec.schemes);
    dedup(&mut spec.archs);
    dedup(&mut spec.workloads);
    dedup(&mut spec.cpus);
    if let Some(p) = &mut spec.pairs {
        dedup(p);
    }
    // Refuse a bad --out before spending minutes on the bench.
    report::check_out(&out).map_err(report_failure)?;

    let bar = Progress::new(spec.total_runs() as u64, "runs");
    let result = run_bench(&spec, &mut |done, _, what| {
        bar.set(done as u64);
        bar.label(what.to_string());
    });
    bar.clear();
    let mut bench = result.map_err(|e| match e {
        BenchError::Spec(e) => Failure::Usage(e.to_string()),
        BenchError::Empty(_) | BenchError::Pairs => Failure::Usage(e.to_string()),
        BenchError::HostSwitch(_) => Failure::Io(e.to_string()),
    })?;
    bench.command = command;
    // The table carries the busy-host warning, if any, above the rows.
    print!("{}", report::table(&bench));
    let files = report::write_report(&bench, &out).map_err(report_failure)?;
    println!(
        "report: {} ({})",
        out.join("index.html").display(),
        files.join(", ")
    );
    if bench.total_violations() > 0 {
        eprintln!(
            "lazymm: {} violation(s) of the safety properties during the bench",
            bench.total_violations()
        );
        return Ok(3);
    }
    Ok(0)
}

fn dedup<T: PartialEq>(v: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(v.len());
    for x in v.drain(..) {
        if !seen.contains(&x) {
            seen.push(x);
        }
    }
    *v = seen;
}

pub(crate) fn report_failure(e: ReportError) -> Failure {
    match e {
        ReportError::NotAReport(_) => Failure::Usage(e.to_string()),
        ReportError::Io { .. } | ReportError::Render { .. } => Failure::Io(e.to_string()),
    }
}
