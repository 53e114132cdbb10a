//! `lazymm bench`: every scheme side by side; a table on the terminal and a whole report
//! (JSON, CSV, SVG charts, HTML) in `--out`.

use crate::cli::BenchArgs;
use crate::Failure;
use lazymm_cost::machine::{Machine, PRESETS};
use lazymm_engine::bench::{host_cpus, run_bench, BenchError, BenchSpec};
use lazymm_engine::report::{self, PredictedSection, ReportError};
use lazymm_engine::Workload;
use lazymm_sim::predict::{default_cpus, predict, PredictSpec};

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
    bench.predicted = predicted_sections(spec.quick, spec.profile)?;
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

/// The schemes of the predicted section: Linux's default and each scheme that opts out
/// of its per-switch reference.
const PREDICTED_SCHEMES: &[&str] = &[
    "refcount",
    "shootdown",
    "lazy-percpu",
    "hazptr-luto",
    "hazptr-luto-cpumask",
    "hazptr-mathieu",
];

/// The default large machine of `lazymm predict`, always in the predicted section.
const LARGE_MACHINE: &str = "big-1024";

/// The preset nearest this host, and the rule that chose it: `host` (the machine file
/// `predict --calibrate` wrote) when its hardware threads are this host's; otherwise the
/// preset closest in hardware threads (the first listed on a tie).
fn nearest_host() -> Result<(Machine, String), Failure> {
    let n = host_cpus();
    let load = |name: &str| Machine::load(name).map_err(|e| Failure::Io(e.to_string()));
    let host = load("host")?;
    if host.nr_cpus == n {
        return Ok((
            host,
            format!("The preset nearest this host: the calibrated `host` machine file, whose {n} hardware threads match this host's."),
        ));
    }
    let mut best: Option<Machine> = None;
    for (name, _) in PRESETS.iter().filter(|(name, _)| *name != "host") {
        let m = load(name)?;
        if best
            .as_ref()
            .is_none_or(|b| m.nr_cpus.abs_diff(n) < b.nr_cpus.abs_diff(n))
        {
            best = Some(m);
        }
    }
    let why = format!(
        "The preset nearest this host: the `host` machine file has {} hardware threads and this host {n}, so the preset closest in hardware threads",
        host.nr_cpus
    );
    let m = best.unwrap_or(host);
    let why = format!("{why} ({}).", m.nr_cpus);
    Ok((m, why))
}

/// Runs the simulator for the bench's predicted section: refcount against each opt-out
/// scheme on `threads`, arch `generic`, on the default large machine and on the preset
/// nearest this host, over the predictor's window (its quick one with `--quick`).
fn predicted_sections(
    quick: bool,
    profile: lazymm::Profile,
) -> Result<Vec<PredictedSection>, Failure> {
    let large = Machine::load(LARGE_MACHINE).map_err(|e| Failure::Io(e.to_string()))?;
    let mut machines = vec![(
        large,
        "The default large machine of `lazymm predict`.".to_string(),
    )];
    let (near, why) = nearest_host()?;
    if near.file.name != LARGE_MACHINE {
        machines.push((near, why));
    }
    let mut out = Vec::new();
    for (m, why) in machines {
        let mut spec = PredictSpec::new(&m);
        spec.schemes = PREDICTED_SCHEMES.to_vec();
        spec.workloads = vec![Workload::Threads];
        // 1 to the machine's size in powers of two: a simulated row is cheap (the whole
        // section takes about a second of host time with --quick's window).
        spec.cpus = default_cpus(m.nr_cpus.min(lazymm::MAX_CPUS).min(1024));
        spec.quick = quick;
        spec.profile = profile;
        let total = spec.schemes.len() * spec.cpus.len();
        let bar = crate::progress::bar(total as u64, "predicted rows");
        let p = predict(&m, &spec, |done, _| bar.set_position(done as u64))
            .map_err(|e| Failure::Io(format!("predicted section on '{}': {e}", m.file.name)))?;
        bar.finish_and_clear();
        let (warmup, window) = spec.window();
        let cpus: Vec<String> = spec.cpus.iter().map(|c| c.to_string()).collect();
        out.push(PredictedSection {
            machine: m.file.name.clone(),
            why,
            profile: profile.name(),
            what: format!(
                "Workload threads (one pair per two CPUs), arch {}, CPUs {}; {} us simulated warm-up and {} us measured per row; {:.1} s of host time.",
                spec.archs.join(", "),
                cpus.join(", "),
                warmup / 1_000_000,
                window / 1_000_000,
                p.host_seconds
            ),
            charts: lazymm_sim::report::against_refcount_charts(&p),
        });
    }
    Ok(out)
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
