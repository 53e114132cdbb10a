//! `lazymm bench`: every scheme × workload × CPU count, side by side, sampled as
//! will-it-scale does.
//!
//! # Method
//! Rows come in groups that differ only in the scheme: one (arch, workload, CPU count,
//! mode). In a group, each scheme first runs once to warm up (caches, the allocator, the
//! host's frequency governor), and that run is thrown away; then the schemes take turns,
//! one sample each, until each has its samples. Taking turns means a burst of noise from
//! the host (another process, a frequency change) lands on every scheme of the group
//! alike, instead of on whichever one happened to run then. Every run uses a fixed seed
//! (the bench seed plus the sample number), so the workloads' random choices repeat.
//!
//! Each row reports the median of its samples' switches per second with the min and max,
//! and the pooled ratios of the counters (shared RMWs per lazy switch, IPIs and
//! teardown time per exit) over all its samples.
//!
//! # Two modes
//! `bookkeeping` runs the model as it is: a switch costs what the scheme's bookkeeping
//! costs, nanoseconds. `realistic` adds, after every simulated context switch, CPU-local
//! work as long as a real context switch on this host (measured once per bench by
//! [`hostcost::host_switch_ns`], or given), so a shared cache line costs what it would
//! cost a real kernel in proportion.

use crate::hostcost::{self, HostSwitch};
use crate::native::{run, RunReport, RunSpec, SpecError};
use crate::registry::{self, ARCHS, SCHEMES};
use crate::workload::Workload;
use std::time::Instant;

/// The workloads `bench` runs by default: the four of the side-by-side comparison.
pub const DEFAULT_WORKLOADS: &[Workload] = &[
    Workload::Threads,
    Workload::Processes,
    Workload::IdleStorm,
    Workload::ExitStorm,
];

/// How a row's switches were charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// The model's bookkeeping only.
    Bookkeeping,
    /// Bookkeeping plus a real context switch's worth of CPU-local work per switch.
    Realistic,
}

impl Mode {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Bookkeeping => "bookkeeping",
            Mode::Realistic => "realistic",
        }
    }
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Scheme names (each in the registry).
    pub schemes: Vec<&'static str>,
    /// Arch names (each in the registry).
    pub archs: Vec<&'static str>,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// CPU counts.
    pub cpus: Vec<usize>,
    /// Shorter warm-up and samples, the same rows.
    pub quick: bool,
    /// Work per switch in realistic mode, in ns; `None`: the host's measured switch cost.
    /// `Some(0)` runs bookkeeping mode only.
    pub switch_work_ns: Option<u64>,
    /// The seed of the first sample (sample `i` uses `seed + i`).
    pub seed: u64,
}

impl BenchSpec {
    /// The default bench: every registered scheme, arch `generic`, the four workloads of
    /// the comparison, CPU counts from 1 to this host's CPUs, both modes.
    pub fn new() -> BenchSpec {
        BenchSpec {
            schemes: SCHEMES.iter().map(|(n, _)| *n).collect(),
            archs: vec![ARCHS
                .iter()
                .map(|(n, _)| *n)
                .find(|n| *n == "generic")
                .unwrap_or(ARCHS[0].0)],
            workloads: DEFAULT_WORKLOADS.to_vec(),
            cpus: default_cpus(host_cpus()),
            quick: false,
            switch_work_ns: None,
            seed: 1,
        }
    }

    /// Seconds of warm-up, seconds per sample, samples per row.
    ///
    /// `--quick` keeps the whole bench within about 20 seconds whatever the number of
    /// rows: samples of 50 ms, shortened (to 10 ms at least) when there are so many rows
    /// that 50 ms each would not fit; each run also costs about 15 ms to start and stop.
    pub fn sampling(&self) -> (f64, f64, usize) {
        if self.quick {
            const BUDGET_S: f64 = 18.0;
            const RUN_OVERHEAD_S: f64 = 0.015;
            let samples = 3;
            let units = (self.total_runs() / (1 + samples)).max(1) as f64;
            let per_unit = BUDGET_S / units - RUN_OVERHEAD_S * (1 + samples) as f64;
            let d = (per_unit / (0.4 + samples as f64)).clamp(0.01, 0.05);
            (0.4 * d, d, samples)
        } else {
            (0.1, 0.2, 5)
        }
    }

    /// Runs in the whole bench (warm-ups included), for a progress bar.
    pub fn total_runs(&self) -> usize {
        let samples = if self.quick { 3 } else { 5 };
        let modes = if self.switch_work_ns == Some(0) { 1 } else { 2 };
        self.archs.len()
            * self.workloads.len()
            * self.cpus.len()
            * modes
            * self.schemes.len()
            * (1 + samples)
    }
}

impl Default for BenchSpec {
    fn default() -> Self {
        BenchSpec::new()
    }
}

/// This host's CPUs (`available_parallelism`).
pub fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU counts from 1 to `max`: the powers of two below it, and `max` itself.
pub fn default_cpus(max: usize) -> Vec<usize> {
    let max = max.clamp(1, lazymm::MAX_CPUS);
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |c| Some(c * 2))
        .take_while(|c| *c < max)
        .collect();
    v.push(max);
    v
}

/// The machine that produced a report.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// The host name.
    pub hostname: String,
    /// `available_parallelism`.
    pub cpus: usize,
    /// Operating system and architecture (`linux x86_64`).
    pub os: String,
    /// The CPU model from `/proc/cpuinfo`, if there is one.
    pub cpu_model: Option<String>,
}

impl HostInfo {
    /// Describes this host.
    pub fn this() -> HostInfo {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".into());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("cpu\t"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        HostInfo {
            hostname,
            cpus: host_cpus(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu_model,
        }
    }
}

/// One row of the comparison: one scheme on one (arch, workload, CPU count, mode).
#[derive(Debug, Clone)]
pub struct Row {
    /// Scheme.
    pub scheme: &'static str,
    /// Arch.
    pub arch: &'static str,
    /// Workload.
    pub workload: Workload,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Mode.
    pub mode: Mode,
    /// Work added per switch, in ns (0 in bookkeeping mode).
    pub switch_work_ns: u64,
    /// Median over the samples of context switches per second.
    pub switches_per_sec: f64,
    /// The slowest sample.
    pub min: f64,
    /// The fastest sample.
    pub max: f64,
    /// Samples taken (after the warm-up).
    pub samples: usize,
    /// `none`'s median over this row's (same arch, workload, CPUs, mode), when `none`
    /// ran: how many times slower this scheme is than the lower bound.
    pub slowdown_vs_none: Option<f64>,
    /// The same comparison in time: the nanoseconds each simulated CPU spends per
    /// context switch beyond what it spends under `none` (CPUs / switches per second,
    /// less `none`'s). In bookkeeping mode this is the scheme's own cost per switch, to
    /// be read against [`Bench::host_fence_ns`] and a real switch's cost.
    pub extra_ns_per_switch: Option<f64>,
    /// Shared RMWs per lazy switch (pooled over the samples); `None` without lazy switches.
    pub shared_rmw_per_lazy_switch: Option<f64>,
    /// Full fences per lazy switch (pooled).
    pub full_fences_per_lazy_switch: Option<f64>,
    /// IPIs sent per exit (pooled); `None` without exits.
    pub ipis_per_exit: Option<f64>,
    /// Microseconds of teardown (`__mmput` and `__mmdrop`) per exit (pooled).
    pub teardown_us_per_exit: Option<f64>,
    /// Exits (last `mmput`s) over all samples.
    pub exits: u64,
    /// Lazy switches over all samples.
    pub lazy_switches: u64,
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// Safety violations found over the warm-up and all samples (must be 0).
    pub violations: u64,
}

/// A finished bench.
#[derive(Debug, Clone)]
pub struct Bench {
    /// What was asked.
    pub spec: BenchSpec,
    /// Every row, grouped by mode, arch, workload, CPUs, in the spec's scheme order.
    pub rows: Vec<Row>,
    /// The host's measured switch cost (measured even when the work was given).
    pub host_switch: HostSwitch,
    /// What one full barrier (the model's `smp_mb`) costs on this host, in ns.
    pub host_fence_ns: f64,
    /// Work per switch in realistic mode, in ns (0: bookkeeping mode only).
    pub switch_work_ns: u64,
    /// Warm-up seconds, seconds per sample, samples per row.
    pub sampling: (f64, f64, usize),
    /// The machine.
    pub host: HostInfo,
    /// Wall time of the whole bench.
    pub wall_seconds: f64,
    /// When it finished, in seconds since the Unix epoch.
    pub finished_unix: u64,
    /// The first few safety violations found, as text.
    pub violations: Vec<String>,
    /// The command line that ran the bench, for the report (set by the caller).
    pub command: String,
}

impl Bench {
    /// The modes the bench ran.
    pub fn modes(&self) -> Vec<Mode> {
        if self.switch_work_ns == 0 {
            vec![Mode::Bookkeeping]
        } else {
            vec![Mode::Bookkeeping, Mode::Realistic]
        }
    }

    /// Violations over every row.
    pub fn total_violations(&self) -> u64 {
        self.rows.iter().map(|r| r.violations).sum()
    }
}

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A run's spec was refused (a name not in the registry, a bad CPU count).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A list of the spec is empty.
    #[error("nothing to run: the {0} list is empty")]
    Empty(&'static str),
    /// The host's switch cost could not be measured.
    #[error("cannot measure the host's context-switch cost: {0}")]
    HostSwitch(std::io::Error),
}

/// Counters of one row, gathered over its samples.
#[derive(Default)]
struct Acc {
    sps: Vec<f64>,
    lazy: u64,
    rmw: u64,
    fences: u64,
    ipis: u64,
    exits: u64,
    teardown_ns: u64,
    violations: u64,
    task_bytes: usize,
}

impl Acc {
    fn add(&mut self, r: &RunReport) {
        self.sps.push(r.switches_per_sec());
        self.lazy += r.measured.lazy_switches;
        self.rmw += r.measured.shared_rmw;
        self.fences += r.measured.full_fences;
        self.ipis += r.total.ipis_sent;
        self.exits += r.total.exits;
        self.teardown_ns += r.total.teardown_ns;
        self.violations += r.total.violations;
        self.task_bytes = r.task_bytes;
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The median of a non-empty list.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the bench. `progress(done, total, what)` is called after every run.
pub fn run_bench(
    spec: &BenchSpec,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Bench, BenchError> {
    for (what, empty) in [
        ("scheme", spec.schemes.is_empty()),
        ("arch", spec.archs.is_empty()),
        ("workload", spec.workloads.is_empty()),
        ("cpus", spec.cpus.is_empty()),
    ] {
        if empty {
            return Err(BenchError::Empty(what));
        }
    }
    for s in &spec.schemes {
        registry::scheme(s).map_err(SpecError::from)?;
    }
    for a in &spec.archs {
        registry::arch(a).map_err(SpecError::from)?;
    }
    for &c in &spec.cpus {
        if c == 0 || c > lazymm::MAX_CPUS {
            return Err(SpecError::Cpus(c).into());
        }
    }
    let t0 = Instant::now();
    let (trips, trials) = if spec.quick { (5_000, 3) } else { (20_000, 5) };
    let host_switch = hostcost::host_switch_ns(trips, trials).map_err(BenchError::HostSwitch)?;
    let host_fence_ns = hostcost::host_fence_ns(if spec.quick { 200_000 } else { 1_000_000 }, 5);
    let work_ns = spec
        .switch_work_ns
        .unwrap_or(host_switch.ns_per_switch.round().max(1.0) as u64);
    // Calibrate the work loop before the first timed run, not inside it.
    let _ = hostcost::SwitchWork::from_ns(work_ns);
    let modes = if work_ns == 0 {
        vec![Mode::Bookkeeping]
    } else {
        vec![Mode::Bookkeeping, Mode::Realistic]
    };
    let (warmup, sample_s, samples) = spec.sampling();
    let total = spec.total_runs();
    let mut done = 0usize;
    let mut rows = Vec::new();
    let mut violations = Vec::new();
    for &mode in &modes {
        let mode_ns = if mode == Mode::Realistic { work_ns } else { 0 };
        for &arch in &spec.archs {
            for &workload in &spec.workloads {
                for &cpus in &spec.cpus {
                    let run_one = |scheme: &str, seconds: f64, seed: u64| {
                        run(&RunSpec {
                            arch: arch.to_string(),
                            seconds: Some(seconds),
                            seed,
                            switch_work_ns: mode_ns,
                            ..RunSpec::new(scheme, workload, cpus)
                        })
                    };
                    let label = |scheme: &str| {
                        format!(
                            "{} {arch} {} {cpus} cpus {scheme}",
                            mode.name(),
                            workload.name()
                        )
                    };
                    let mut accs: Vec<Acc> = spec.schemes.iter().map(|_| Acc::default()).collect();
                    let mut keep = |r: &RunReport, scheme: &str| {
                        if violations.len() < 20 {
                            violations.extend(
                                r.violations
                                    .iter()
                                    .take(5)
                                    .map(|v| format!("{}: {v}", label(scheme))),
                            );
                        }
                    };
                    for (j, &scheme) in spec.schemes.iter().enumerate() {
                        // The warm-up's numbers are thrown away, but not its violations.
                        let r = run_one(scheme, warmup, spec.seed)?;
                        keep(&r, scheme);
                        accs[j].violations += r.total.violations;
                        done += 1;
                        progress(done, total, &label(scheme));
                    }
                    for i in 0..samples {
                        for (j, &scheme) in spec.schemes.iter().enumerate() {
                            let r = run_one(scheme, sample_s, spec.seed.wrapping_add(i as u64))?;
                            keep(&r, scheme);
                            accs[j].add(&r);
                            done += 1;
                            progress(done, total, &label(scheme));
                        }
                    }
                    for (&scheme, a) in spec.schemes.iter().zip(accs) {
                        let (min, max) = a
                            .sps
                            .iter()
                            .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                        rows.push(Row {
                            scheme,
                            arch,
                            workload,
                            cpus,
                            mode,
                            switch_work_ns: mode_ns,
                            switches_per_sec: median(&a.sps),
                            min,
                            max,
                            samples: a.sps.len(),
                            slowdown_vs_none: None,
                            extra_ns_per_switch: None,
                            shared_rmw_per_lazy_switch: ratio(a.rmw, a.lazy),
                            full_fences_per_lazy_switch: ratio(a.fences, a.lazy),
                            ipis_per_exit: ratio(a.ipis, a.exits),
                            teardown_us_per_exit: ratio(a.teardown_ns, a.exits)
                                .map(|ns| ns / 1000.0),
                            exits: a.exits,
                            lazy_switches: a.lazy,
                            task_bytes: a.task_bytes,
                            violations: a.violations,
                        });
                    }
                }
            }
        }
    }
    fill_slowdowns(&mut rows);
    let finished_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Bench {
        spec: spec.clone(),
        rows,
        host_switch,
        host_fence_ns,
        switch_work_ns: work_ns,
        sampling: (warmup, sample_s, samples),
        host: HostInfo::this(),
        wall_seconds: t0.elapsed().as_secs_f64(),
        finished_unix,
        violations,
        command: String::new(),
    })
}

/// Sets each row's slowdown against the `none` row of its group, as a ratio and in
/// nanoseconds per switch, where `none` ran.
pub fn fill_slowdowns(rows: &mut [Row]) {
    let baselines: Vec<(Mode, &'static str, Workload, usize, f64)> = rows
        .iter()
        .filter(|r| r.scheme == "none")
        .map(|r| (r.mode, r.arch, r.workload, r.cpus, r.switches_per_sec))
        .collect();
    for r in rows.iter_mut() {
        let none = baselines
            .iter()
            .find(|b| (b.0, b.1, b.2, b.3) == (r.mode, r.arch, r.workload, r.cpus))
            .map(|b| b.4)
            .filter(|&none| none > 0.0 && r.switches_per_sec > 0.0);
        r.slowdown_vs_none = none.map(|none| none / r.switches_per_sec);
        // Each CPU spends cpus / (switches per second) seconds per switch.
        let ns_per_switch = |sps: f64| r.cpus as f64 * 1e9 / sps;
        r.extra_ns_per_switch =
            none.map(|none| ns_per_switch(r.switches_per_sec) - ns_per_switch(none));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cpu_counts_run_from_one_to_the_host() {
        assert_eq!(default_cpus(1), [1]);
        assert_eq!(default_cpus(2), [1, 2]);
        assert_eq!(default_cpus(6), [1, 2, 4, 6]);
        assert_eq!(default_cpus(8), [1, 2, 4, 8]);
        assert_eq!(
            default_cpus(1000),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
        );
        assert_eq!(default_cpus(10_000).last(), Some(&lazymm::MAX_CPUS));
    }

    #[test]
    fn the_default_bench_covers_the_registry() {
        let s = BenchSpec::new();
        let names: Vec<&str> = SCHEMES.iter().map(|(n, _)| *n).collect();
        assert_eq!(s.schemes, names);
        assert_eq!(s.archs, ["generic"]);
        assert_eq!(s.workloads, DEFAULT_WORKLOADS);
        assert_eq!(s.cpus, default_cpus(host_cpus()));
    }

    #[test]
    fn quick_fits_its_budget_however_many_rows() {
        let mut s = BenchSpec::new();
        s.quick = true;
        s.schemes = vec!["refcount", "none", "refcount", "none", "none"];
        s.cpus = vec![1, 2];
        // Five schemes on two CPU counts: nearly the full 50 ms samples.
        let (w, d, n) = s.sampling();
        assert_eq!(n, 3);
        assert!(
            (0.045..=0.05).contains(&d) && (w - 0.4 * d).abs() < 1e-12,
            "{d}"
        );
        let estimate = |s: &BenchSpec, d: f64| {
            let runs = s.total_runs() as f64;
            runs / 4.0 * 3.4 * d + runs * 0.015
        };
        assert!(estimate(&s, d) < 20.0);
        // On 64 CPUs: shorter samples, and still within 30 seconds.
        s.cpus = default_cpus(64);
        let (_, d, _) = s.sampling();
        assert!((0.01..0.05).contains(&d), "{d}");
        assert!(estimate(&s, d) < 27.0, "{}", estimate(&s, d));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_tiny_bench_fills_every_row() {
        let spec = BenchSpec {
            schemes: vec!["refcount", "none"],
            archs: vec!["generic"],
            workloads: vec![Workload::IdleStorm],
            cpus: vec![2],
            quick: true,
            switch_work_ns: Some(200),
            seed: 3,
        };
        let mut calls = 0;
        let b = run_bench(&spec, &mut |done, total, _| {
            calls += 1;
            assert_eq!(done, calls);
            assert_eq!(total, spec.total_runs());
        })
        .expect("runs");
        assert_eq!(calls, spec.total_runs());
        assert_eq!(b.rows.len(), 4);
        assert_eq!(b.switch_work_ns, 200);
        for r in &b.rows {
            assert_eq!(r.violations, 0);
            assert_eq!(r.samples, 3);
            assert!(r.min <= r.switches_per_sec && r.switches_per_sec <= r.max);
            let rmw = r
                .shared_rmw_per_lazy_switch
                .expect("idle-storm switches lazily");
            // refcount: an inc and a dec per lazy round trip; none: nothing.
            let want = if r.scheme == "refcount" { 2.0 } else { 0.0 };
            assert!(
                (rmw - want).abs() < 0.05,
                "{} {:?}: {rmw}",
                r.scheme,
                r.mode
            );
        }
        let modes: Vec<Mode> = b.rows.iter().map(|r| r.mode).collect();
        assert_eq!(
            modes,
            [
                Mode::Bookkeeping,
                Mode::Bookkeeping,
                Mode::Realistic,
                Mode::Realistic
            ]
        );
    }

    #[test]
    fn empty_lists_and_bad_cpus_are_refused() {
        let mut spec = BenchSpec::new();
        spec.schemes.clear();
        assert!(matches!(
            run_bench(&spec, &mut |_, _, _| {}),
            Err(BenchError::Empty("scheme"))
        ));
        let mut spec = BenchSpec::new();
        spec.cpus = vec![0];
        assert!(matches!(
            run_bench(&spec, &mut |_, _, _| {}),
            Err(BenchError::Spec(_))
        ));
    }
}
