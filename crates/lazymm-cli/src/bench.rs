//! `lazymm bench`: every scheme side by side; a table on the terminal and a whole report
//! (JSON, CSV, SVG charts, HTML) in `--out`.

use crate::cli::BenchArgs;
use crate::Failure;
use lazymm_engine::bench::{run_bench, BenchError, BenchSpec};
use lazymm_engine::report::{self, ReportError};

/// The command line as typed, for the report ("lazymm bench --quick ...").
pub(crate) fn command_line() -> String {
    std::iter::once("lazymm".to_string())
        .chain(
            std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn main(a: BenchArgs) -> Result<u8, Failure> {
    let command = command_line();
    let mut spec = BenchSpec::new();
    let out = a.out;
    spec.quick = a.quick;
    spec.seed = a.seed;
    spec.profile = a.profile.profile();
    spec.switch_work_ns = a.switch_work;
    if !a.schemes.is_empty() {
        spec.schemes = a.schemes;
    }
    if !a.archs.is_empty() {
        spec.archs = a.archs;
    }
    if !a.workloads.is_empty() {
        spec.workloads = a.workloads;
    }
    if !a.cpus.is_empty() {
        spec.cpus = a.cpus;
    }
    if !a.pairs.is_empty() {
        spec.pairs = Some(a.pairs);
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

    let bar = crate::progress::bar(spec.total_runs() as u64, "runs");
    let result = run_bench(&spec, &mut |done, _, what| {
        bar.set_position(done as u64);
        bar.set_message(what.to_string());
    });
    bar.finish_and_clear();
    let mut bench = result.map_err(|e| match e {
        BenchError::Spec(e) => Failure::Usage(e.to_string()),
        BenchError::Empty(_) | BenchError::Pairs => Failure::Usage(e.to_string()),
        BenchError::HostSwitch(_) => Failure::Io(e.to_string()),
    })?;
    bench.command = command;
    // The table carries the busy-host warning, if any, above the rows.
    out!("{}", report::table(&bench));
    let files = report::write_report(&bench, &out).map_err(report_failure)?;
    outln!(
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

pub(crate) fn dedup<T: PartialEq>(v: &mut Vec<T>) {
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
