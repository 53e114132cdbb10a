//! `lazymm bench`: every scheme × workload × CPU count, side by side, sampled as
//! will-it-scale does, with the statistics of [`stats`] to tell signal from noise.
//!
//! # Method
//! Rows come in groups that differ only in the scheme: one (arch, workload, CPU count,
//! pairs, mode). In a group, each scheme first runs once to warm up (caches, the
//! allocator, the host's frequency governor), and that run is thrown away; then the
//! schemes take turns in rounds, one sample each per round, until each has its samples.
//! Taking turns means noise from the host that lasts longer than a round lands on every
//! scheme of the group alike, and the paired ratios of [`stats`] cancel it; each round
//! starts one scheme further along, so no scheme always runs right after another. Every
//! run uses a fixed seed (the bench seed plus the round number), so the workloads'
//! random choices repeat.
//!
//! Each row reports the median of its samples' switches per second with a bootstrap
//! interval, min and max; its slowdown against `none` and `none-mb` with a paired
//! bootstrap interval and a verdict (`faster`, `slower`, `within noise`); the pooled
//! ratios of the counters (shared RMWs and barriers per lazy switch, IPIs and teardown
//! time per exit) over all its samples; and the teardown latency's distribution
//! (p50, p99, max, from the model's per-teardown histogram).
//!
//! # Two lower bounds
//! `none` pays nothing for a lazy use, so no correct scheme can come within a fixed ratio
//! of it on every host. `none-mb` pays only the one full barrier membarrier requires per
//! lazy round trip, which every correct scheme must pay: a scheme's cost beyond
//! `none-mb` is what it pays beyond that.
//!
//! # Two modes
//! `bookkeeping` runs the model as it is: a switch costs what the scheme's bookkeeping
//! costs, nanoseconds. `realistic` adds, after every simulated context switch, CPU-local
//! work as long as a real context switch on this host (measured once per bench by
//! [`hostcost::host_switch_ns`], or given), so a shared cache line costs what it would
//! cost a real kernel in proportion.

pub mod stats;

use crate::hostcost::{self, HostLoad, HostSwitch};
use crate::native::{run, RunReport, RunSpec, SpecError};
use crate::registry::{self, ARCHS, SCHEMES};
use crate::workload::Workload;
use lazymm::TeardownHist;
use serde::{Serialize, Serializer};
use stats::{paired_slowdown, Verdict};
use std::time::Instant;

pub use stats::median;

/// The workloads `bench` runs by default: the four of the side-by-side comparison.
pub const DEFAULT_WORKLOADS: &[Workload] = &[
    Workload::Threads,
    Workload::Processes,
    Workload::IdleStorm,
    Workload::ExitStorm,
];

/// The lower bound that pays nothing.
pub const NONE: &str = "none";
/// The lower bound that pays membarrier's one barrier per lazy round trip.
pub const NONE_MB: &str = "none-mb";

/// How a row's switches were charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
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
    /// Pair counts for `threads` and `processes` (will-it-scale's `-t N`), each run on
    /// every CPU count; `None`: one pair per two CPUs.
    pub pairs: Option<Vec<usize>>,
    /// Shorter warm-up and fewer, shorter samples, the same rows.
    pub quick: bool,
    /// Work per switch in realistic mode, in ns; `None`: the host's measured switch cost.
    /// `Some(0)` runs bookkeeping mode only.
    pub switch_work_ns: Option<u64>,
    /// The seed of the first round (round `i` uses `seed + i`).
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
            pairs: None,
            quick: false,
            switch_work_ns: None,
            seed: 1,
        }
    }

    /// Samples (rounds) per row.
    pub fn samples(&self) -> usize {
        if self.quick {
            3
        } else {
            12
        }
    }

    /// Seconds of warm-up, seconds per sample, samples per row.
    ///
    /// The default takes 12 samples of 80 ms per row: more, shorter samples give the
    /// paired intervals more rounds at the same cost. `--quick` keeps the whole bench
    /// within about 20 seconds whatever the number of rows: 3 samples of 40 ms, shortened
    /// (to 8 ms at least) when there are so many rows that 40 ms each would not fit; each
    /// run also costs about 15 ms to start and stop.
    pub fn sampling(&self) -> (f64, f64, usize) {
        let samples = self.samples();
        if self.quick {
            const BUDGET_S: f64 = 18.0;
            const RUN_OVERHEAD_S: f64 = 0.015;
            let units = (self.total_runs() / (1 + samples)).max(1) as f64;
            let per_unit = BUDGET_S / units - RUN_OVERHEAD_S * (1 + samples) as f64;
            let d = (per_unit / (0.4 + samples as f64)).clamp(0.008, 0.04);
            (0.4 * d, d, samples)
        } else {
            (0.05, 0.08, samples)
        }
    }

    /// The modes this spec runs.
    pub fn modes(&self) -> Vec<Mode> {
        if self.switch_work_ns == Some(0) {
            vec![Mode::Bookkeeping]
        } else {
            vec![Mode::Bookkeeping, Mode::Realistic]
        }
    }

    /// The pair counts a workload runs with: each of `--pairs` for `threads` and
    /// `processes`, the workload's own layout (`None`) otherwise.
    pub fn pairs_for(&self, w: Workload) -> Vec<Option<usize>> {
        match (&self.pairs, has_pairs(w)) {
            (Some(p), true) => p.iter().map(|&n| Some(n)).collect(),
            _ => vec![None],
        }
    }

    /// Groups of rows in the whole bench: (mode, arch, workload, CPUs, pairs).
    pub fn groups(&self) -> Vec<(Mode, &'static str, Workload, usize, Option<usize>)> {
        let mut out = Vec::new();
        for mode in self.modes() {
            for &arch in &self.archs {
                for &w in &self.workloads {
                    for &cpus in &self.cpus {
                        for pairs in self.pairs_for(w) {
                            out.push((mode, arch, w, cpus, pairs));
                        }
                    }
                }
            }
        }
        out
    }

    /// Runs in the whole bench (warm-ups included), for a progress bar.
    pub fn total_runs(&self) -> usize {
        self.groups().len() * self.schemes.len() * (1 + self.samples())
    }
}

impl Default for BenchSpec {
    fn default() -> Self {
        BenchSpec::new()
    }
}

/// Whether a workload is made of pairs of tasks waking each other (`--pairs` applies).
pub fn has_pairs(w: Workload) -> bool {
    matches!(w, Workload::Threads | Workload::Processes)
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
#[derive(Debug, Clone, Serialize)]
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

/// How busy the host was while the bench ran, and whether that makes the numbers
/// suspect.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Before the first run.
    pub start: Option<HostLoad>,
    /// After the last run.
    pub end: Option<HostLoad>,
    /// CPU time stolen by the hypervisor during the bench, in percent of all CPU time.
    pub steal_percent: Option<f64>,
    /// Why the host counts as busy (empty: it was not).
    pub busy: Vec<String>,
}

/// Above this 1-minute load average per host CPU at the start, other work was running.
pub const BUSY_LOAD_PER_CPU: f64 = 0.5;
/// Above this share of stolen CPU time, in percent, the hypervisor was busy elsewhere.
pub const BUSY_STEAL_PERCENT: f64 = 2.0;

impl LoadReport {
    /// Judges the figures: `own_threads` is how many threads the bench kept busy at
    /// most (its largest CPU count), which the end's load average includes.
    pub fn judge(
        start: Option<HostLoad>,
        end: Option<HostLoad>,
        host_cpus: usize,
        own_threads: usize,
    ) -> LoadReport {
        let steal_percent = match (&start, &end) {
            (Some(a), Some(b)) => a.steal_percent_until(b),
            _ => None,
        };
        let mut busy = Vec::new();
        let cpus = host_cpus.max(1) as f64;
        if let Some(s) = &start {
            if s.loadavg_1 > BUSY_LOAD_PER_CPU * cpus {
                busy.push(format!(
                    "load average {:.2} on {host_cpus} CPUs before the bench started",
                    s.loadavg_1
                ));
            }
        }
        if let Some(e) = &end {
            let others = e.loadavg_1 - own_threads.min(host_cpus) as f64;
            if others > BUSY_LOAD_PER_CPU * cpus {
                busy.push(format!(
                    "load average {:.2} at the end, {others:.2} more than the bench's own {} thread(s)",
                    e.loadavg_1,
                    own_threads.min(host_cpus)
                ));
            }
        }
        if let Some(p) = steal_percent {
            if p > BUSY_STEAL_PERCENT {
                busy.push(format!("{p:.1} % of CPU time stolen by the hypervisor"));
            }
        }
        LoadReport {
            start,
            end,
            steal_percent,
            busy,
        }
    }
}

fn workload_name<S: Serializer>(w: &Workload, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(w.name())
}

/// One row of the comparison: one scheme on one (arch, workload, CPU count, pairs,
/// mode). Its serde fields, in order, are the columns of `results.json` and
/// `results.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scheme.
    pub scheme: &'static str,
    /// Arch.
    pub arch: &'static str,
    /// Workload.
    #[serde(serialize_with = "workload_name")]
    pub workload: Workload,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Pairs of tasks (`threads`, `processes`); `None` for the other workloads.
    pub pairs: Option<usize>,
    /// Mode.
    pub mode: Mode,
    /// Work added per switch, in ns (0 in bookkeeping mode).
    pub switch_work_ns: u64,
    /// The host's measured context-switch cost (the bench's, on every row).
    pub host_switch_ns: f64,
    /// The host's measured full-barrier cost (the bench's, on every row).
    pub host_fence_ns: f64,
    /// Median over the samples of context switches per second.
    pub switches_per_sec: f64,
    /// The median's bootstrap interval, lower end.
    pub switches_per_sec_lo: f64,
    /// The median's bootstrap interval, upper end.
    pub switches_per_sec_hi: f64,
    /// The slowest sample.
    pub min: f64,
    /// The fastest sample.
    pub max: f64,
    /// Samples taken (after the warm-up).
    pub samples: usize,
    /// How many times slower than `none` (the median of the rounds' paired ratios).
    pub vs_none: Option<f64>,
    /// `vs_none`'s bootstrap interval, lower end.
    pub vs_none_lo: Option<f64>,
    /// `vs_none`'s bootstrap interval, upper end.
    pub vs_none_hi: Option<f64>,
    /// What the interval says: `faster`, `slower` or `within noise` than `none`.
    pub verdict: Option<Verdict>,
    /// `vs_none`, under the name earlier reports used.
    pub slowdown_vs_none: Option<f64>,
    /// The same comparison in time: the nanoseconds each simulated CPU spends per
    /// context switch beyond what it spends under `none` (CPUs / switches per second,
    /// less `none`'s, from the medians). In bookkeeping mode this is the scheme's own
    /// cost per switch, to be read against [`Bench::host_fence_ns`] and a real switch's.
    pub extra_ns_per_switch: Option<f64>,
    /// How many times slower than `none-mb` (paired, as `vs_none`).
    pub vs_none_mb: Option<f64>,
    /// `vs_none_mb`'s interval, lower end.
    pub vs_none_mb_lo: Option<f64>,
    /// `vs_none_mb`'s interval, upper end.
    pub vs_none_mb_hi: Option<f64>,
    /// Nanoseconds per switch per CPU beyond `none-mb`'s: the cost beyond the barrier
    /// every correct scheme pays.
    pub extra_ns_vs_none_mb: Option<f64>,
    /// Median over the samples of lazy (user→kernel) switches per second.
    pub lazy_switches_per_sec: f64,
    /// Shared RMWs per lazy switch (pooled over the samples); `None` without lazy switches.
    pub shared_rmw_per_lazy_switch: Option<f64>,
    /// Full fences per lazy switch (pooled).
    pub full_fences_per_lazy_switch: Option<f64>,
    /// IPIs sent per exit (pooled); `None` without exits.
    pub ipis_per_exit: Option<f64>,
    /// Microseconds of teardown (`__mmput` and `__mmdrop`) per exit (pooled).
    pub teardown_us_per_exit: Option<f64>,
    /// Median teardown latency in µs (per timed teardown of the samples' measured
    /// phases; `None` when none ran there, as in the workloads that only exit at the end).
    pub teardown_us_p50: Option<f64>,
    /// 99th percentile of the teardown latency in µs.
    pub teardown_us_p99: Option<f64>,
    /// The longest teardown in µs.
    pub teardown_us_max: Option<f64>,
    /// Exits (last `mmput`s) over all samples.
    pub exits: u64,
    /// Lazy switches over all samples.
    pub lazy_switches: u64,
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// Bytes of task state the scheme adds (`size_of::<S::TaskState>()`: its
    /// `active_mm` where it keeps one).
    pub task_state_bytes: usize,
    /// Safety violations found over the warm-up and all samples (must be 0).
    pub violations: u64,
    /// Each sample's switches per second, in round order (what the intervals come from).
    #[serde(skip)]
    pub sample_switches_per_sec: Vec<f64>,
}

impl Row {
    /// The group the row belongs to: rows of a group differ only in the scheme.
    pub fn group(&self) -> (Mode, &'static str, Workload, usize, Option<usize>) {
        (self.mode, self.arch, self.workload, self.cpus, self.pairs)
    }
}

/// A finished bench.
#[derive(Debug, Clone)]
pub struct Bench {
    /// What was asked.
    pub spec: BenchSpec,
    /// Every row, grouped by mode, arch, workload, CPUs, pairs, in the spec's scheme order.
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
    /// How busy the machine was.
    pub load: LoadReport,
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
    /// A pair count of 0.
    #[error("bad pair count 0 (valid: whole numbers from 1)")]
    Pairs,
    /// The host's switch cost could not be measured.
    #[error("cannot measure the host's context-switch cost: {0}")]
    HostSwitch(std::io::Error),
}

/// Counters of one row, gathered over its samples.
struct Acc {
    sps: Vec<f64>,
    lazy_ps: Vec<f64>,
    lazy: u64,
    rmw: u64,
    fences: u64,
    ipis: u64,
    exits: u64,
    teardown_ns: u64,
    teardowns: TeardownHist,
    violations: u64,
    task_bytes: usize,
    task_state_bytes: usize,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            sps: Vec::new(),
            lazy_ps: Vec::new(),
            lazy: 0,
            rmw: 0,
            fences: 0,
            ipis: 0,
            exits: 0,
            teardown_ns: 0,
            teardowns: TeardownHist::default(),
            violations: 0,
            task_bytes: 0,
            task_state_bytes: 0,
        }
    }

    fn add(&mut self, r: &RunReport) {
        self.sps.push(r.switches_per_sec());
        self.lazy_ps.push(if r.seconds > 0.0 {
            r.measured.lazy_switches as f64 / r.seconds
        } else {
            0.0
        });
        self.lazy += r.measured.lazy_switches;
        self.rmw += r.measured.shared_rmw;
        self.fences += r.measured.full_fences;
        self.ipis += r.total.ipis_sent;
        self.exits += r.total.exits;
        self.teardown_ns += r.total.teardown_ns;
        // The distribution is the measured phase's: the teardowns of quiescing, where
        // the other CPUs wait at a barrier, are an artefact of stopping.
        self.teardowns.add(&r.teardowns);
        self.violations += r.total.violations;
        self.task_bytes = r.task_bytes;
        self.task_state_bytes = r.task_state_bytes;
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Teardown latency quantiles, in µs, of the model's per-teardown histogram: p50, p99
/// and max. Each bucket's samples are recorded into an HDR histogram at the bucket's
/// middle (the model's buckets are within 1/16 of their value), and the quantiles are
/// read from it. `None` when nothing was torn down.
pub fn teardown_quantiles(h: &TeardownHist) -> Option<(f64, f64, f64)> {
    let mut hdr = hdrhistogram::Histogram::<u64>::new(3).ok()?;
    for (i, &n) in h.counts.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let lo = TeardownHist::lowest(i);
        let next = if i + 1 < TeardownHist::BUCKETS {
            TeardownHist::lowest(i + 1)
        } else {
            lo + 1
        };
        hdr.record_n(lo + (next - lo - 1) / 2, u64::from(n)).ok()?;
    }
    if hdr.is_empty() {
        return None;
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    Some((
        us(hdr.value_at_quantile(0.5)),
        us(hdr.value_at_quantile(0.99)),
        us(hdr.max()),
    ))
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
        ("pairs", spec.pairs.as_ref().is_some_and(Vec::is_empty)),
    ] {
        if empty {
            return Err(BenchError::Empty(what));
        }
    }
    if spec.pairs.as_ref().is_some_and(|p| p.contains(&0)) {
        return Err(BenchError::Pairs);
    }
    for s in &spec.schemes {
        registry::scheme(s).map_err(SpecError::from)?;
    }
    for a in &spec.archs {
        registry::arch(a).map_err(SpecError::from)?;
    }
    for &c in &spec.cpus {
        if c == 0 || c > lazymm::MAX_CPUS {
            return Err(SpecError::Workload(crate::workload::WorkloadError::Cpus {
                cpus: c,
                max: lazymm::MAX_CPUS,
            })
            .into());
        }
    }
    let load_start = HostLoad::now();
    let t0 = Instant::now();
    let (trips, trials) = if spec.quick { (5_000, 3) } else { (20_000, 5) };
    let host_switch = hostcost::host_switch_ns(trips, trials).map_err(BenchError::HostSwitch)?;
    // Many short trials: the fastest of each kind is the one no other tenant disturbed,
    // and on a busy host a short trial has a better chance of being that one.
    let host_fence_ns = if spec.quick {
        hostcost::host_fence_ns(50_000, 21)
    } else {
        hostcost::host_fence_ns(200_000, 25)
    };
    let work_ns = spec
        .switch_work_ns
        .unwrap_or(host_switch.ns_per_switch.round().max(1.0) as u64);
    // Calibrate the work loop before the first timed run, not inside it.
    let _ = hostcost::SwitchWork::from_ns(work_ns);
    let spec_run = BenchSpec {
        switch_work_ns: Some(work_ns),
        ..spec.clone()
    };
    let (warmup, sample_s, samples) = spec.sampling();
    let total = spec.total_runs();
    let n = spec.schemes.len();
    let mut done = 0usize;
    let mut rows = Vec::new();
    let mut violations = Vec::new();
    for (mode, arch, workload, cpus, pairs) in spec_run.groups() {
        let mode_ns = if mode == Mode::Realistic { work_ns } else { 0 };
        let run_one = |scheme: &str, seconds: f64, seed: u64| {
            run(&RunSpec {
                arch: arch.to_string(),
                seconds: Some(seconds),
                seed,
                switch_work_ns: mode_ns,
                pairs,
                ..RunSpec::new(scheme, workload, cpus)
            })
        };
        let label = |scheme: &str| {
            let pairs = pairs.map_or(String::new(), |p| format!(" {p} pairs"));
            format!(
                "{} {arch} {} {cpus} cpus{pairs} {scheme}",
                mode.name(),
                workload.name()
            )
        };
        let mut accs: Vec<Acc> = spec.schemes.iter().map(|_| Acc::new()).collect();
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
            // Round i starts at scheme i: no scheme always follows the same one.
            for k in 0..n {
                let j = (i + k) % n;
                let scheme = spec.schemes[j];
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
            let mid = stats::median_interval(&a.sps).unwrap_or(stats::Interval {
                estimate: 0.0,
                lo: 0.0,
                hi: 0.0,
            });
            let q = teardown_quantiles(&a.teardowns);
            rows.push(Row {
                scheme,
                arch,
                workload,
                cpus,
                pairs: pairs.or(has_pairs(workload).then(|| cpus.div_ceil(2))),
                mode,
                switch_work_ns: mode_ns,
                host_switch_ns: host_switch.ns_per_switch,
                host_fence_ns,
                switches_per_sec: mid.estimate,
                switches_per_sec_lo: mid.lo,
                switches_per_sec_hi: mid.hi,
                min,
                max,
                samples: a.sps.len(),
                vs_none: None,
                vs_none_lo: None,
                vs_none_hi: None,
                verdict: None,
                slowdown_vs_none: None,
                extra_ns_per_switch: None,
                vs_none_mb: None,
                vs_none_mb_lo: None,
                vs_none_mb_hi: None,
                extra_ns_vs_none_mb: None,
                lazy_switches_per_sec: median(&a.lazy_ps),
                shared_rmw_per_lazy_switch: ratio(a.rmw, a.lazy),
                full_fences_per_lazy_switch: ratio(a.fences, a.lazy),
                ipis_per_exit: ratio(a.ipis, a.exits),
                teardown_us_per_exit: ratio(a.teardown_ns, a.exits).map(|ns| ns / 1000.0),
                teardown_us_p50: q.map(|q| q.0),
                teardown_us_p99: q.map(|q| q.1),
                teardown_us_max: q.map(|q| q.2),
                exits: a.exits,
                lazy_switches: a.lazy,
                task_bytes: a.task_bytes,
                task_state_bytes: a.task_state_bytes,
                violations: a.violations,
                sample_switches_per_sec: a.sps,
            });
        }
    }
    fill_slowdowns(&mut rows);
    let wall_seconds = t0.elapsed().as_secs_f64();
    let own_threads = spec.cpus.iter().copied().max().unwrap_or(1);
    let load = LoadReport::judge(load_start, HostLoad::now(), host_cpus(), own_threads);
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
        load,
        wall_seconds,
        finished_unix,
        violations,
        command: String::new(),
    })
}

/// Sets each row's slowdown against the `none` and `none-mb` rows of its group, where
/// they ran: the paired ratio with its interval (from the rows' samples, round by
/// round), the verdict against `none`, and the extra nanoseconds per switch (from the
/// medians).
pub fn fill_slowdowns(rows: &mut [Row]) {
    let baseline = |rows: &[Row], name: &str, g| {
        rows.iter()
            .find(|b| b.scheme == name && b.group() == g)
            .map(|b| (b.sample_switches_per_sec.clone(), b.switches_per_sec))
    };
    // Each CPU spends cpus / (switches per second) seconds per switch.
    let extra = |r: &Row, base: f64| {
        (base > 0.0 && r.switches_per_sec > 0.0)
            .then(|| r.cpus as f64 * 1e9 * (1.0 / r.switches_per_sec - 1.0 / base))
    };
    for i in 0..rows.len() {
        let g = rows[i].group();
        let none = baseline(rows, NONE, g);
        let none_mb = baseline(rows, NONE_MB, g);
        let r = &mut rows[i];
        if let Some((samples, median)) = none {
            if let Some(s) = paired_slowdown(&samples, &r.sample_switches_per_sec) {
                r.vs_none = Some(s.estimate);
                r.vs_none_lo = Some(s.lo);
                r.vs_none_hi = Some(s.hi);
                r.verdict = Some(Verdict::of(s.lo, s.hi));
                r.slowdown_vs_none = Some(s.estimate);
            }
            r.extra_ns_per_switch = extra(r, median);
        }
        if let Some((samples, median)) = none_mb {
            if let Some(s) = paired_slowdown(&samples, &r.sample_switches_per_sec) {
                r.vs_none_mb = Some(s.estimate);
                r.vs_none_mb_lo = Some(s.lo);
                r.vs_none_mb_hi = Some(s.hi);
            }
            r.extra_ns_vs_none_mb = extra(r, median);
        }
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
        assert!(names.contains(&NONE) && names.contains(&NONE_MB));
        assert_eq!(s.archs, ["generic"]);
        assert_eq!(s.workloads, DEFAULT_WORKLOADS);
        assert_eq!(s.cpus, default_cpus(host_cpus()));
        assert_eq!(s.pairs, None);
    }

    /// Seconds a spec's runs take: samples and warm-ups, plus each run's start and stop.
    fn estimate(s: &BenchSpec) -> f64 {
        let (w, d, n) = s.sampling();
        let runs = s.total_runs() as f64;
        runs / (1 + n) as f64 * (w + n as f64 * d) + runs * 0.015
    }

    #[test]
    fn quick_fits_its_budget_however_many_rows() {
        let mut s = BenchSpec::new();
        s.quick = true;
        s.schemes = vec!["refcount", "none", "refcount", "none", "none"];
        s.cpus = vec![1, 2];
        // Five schemes on two CPU counts: samples of 40 ms or a little less.
        let (w, d, n) = s.sampling();
        assert_eq!(n, 3);
        assert!(
            (0.03..=0.04).contains(&d) && (w - 0.4 * d).abs() < 1e-12,
            "{d}"
        );
        assert!(estimate(&s) < 20.0);
        // On 64 CPUs: shorter samples, and still within 30 seconds.
        s.cpus = default_cpus(64);
        let (_, d, _) = s.sampling();
        assert!((0.008..0.04).contains(&d), "{d}");
        assert!(estimate(&s) < 27.0, "{}", estimate(&s));
    }

    #[test]
    fn the_default_bench_takes_minutes_not_more() {
        // Every scheme on a 2-CPU host: 2 modes x 4 workloads x 2 CPU counts.
        let mut s = BenchSpec::new();
        s.cpus = vec![1, 2];
        let secs = estimate(&s);
        assert!((100.0..200.0).contains(&secs), "{secs}");
    }

    #[test]
    fn pairs_multiply_only_the_pair_workloads() {
        let mut s = BenchSpec::new();
        s.cpus = vec![2];
        s.switch_work_ns = Some(0);
        s.pairs = Some(vec![1, 2, 4]);
        let groups = s.groups();
        // threads and processes: 3 pair counts each; idle-storm and exit-storm: once.
        assert_eq!(groups.len(), 3 + 3 + 1 + 1);
        let threads: Vec<Option<usize>> = groups
            .iter()
            .filter(|g| g.2 == Workload::Threads)
            .map(|g| g.4)
            .collect();
        assert_eq!(threads, [Some(1), Some(2), Some(4)]);
        assert!(groups
            .iter()
            .filter(|g| !has_pairs(g.2))
            .all(|g| g.4.is_none()));
        assert_eq!(s.total_runs(), 8 * s.schemes.len() * (1 + s.samples()));
    }

    #[test]
    fn teardown_quantiles_come_from_the_histogram() {
        let mut h = TeardownHist::default();
        assert_eq!(teardown_quantiles(&h), None);
        // 98 teardowns of 1 us, one of 10 us and one of 100 us.
        for _ in 0..98 {
            h.record(1_000);
        }
        h.record(10_000);
        h.record(100_000);
        let (p50, p99, max) = teardown_quantiles(&h).expect("samples");
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.04;
        assert!(near(p50, 1.0), "{p50}");
        assert!(near(p99, 10.0), "{p99}");
        assert!(near(max, 100.0), "{max}");
    }

    #[test]
    fn the_model_histogram_buckets_hold_their_values() {
        for v in [0u64, 1, 15, 16, 17, 31, 32, 33, 1000, 123_456, 1 << 30] {
            let i = TeardownHist::bucket(v);
            assert!(TeardownHist::lowest(i) <= v, "{v}");
            assert!(v < TeardownHist::lowest(i + 1), "{v}");
            // Within 1/16 of the value.
            assert!((v - TeardownHist::lowest(i)) * 16 <= v.max(1), "{v}");
        }
        assert_eq!(TeardownHist::bucket(u64::MAX), TeardownHist::BUCKETS - 1);
    }

    #[test]
    fn a_busy_host_is_named_and_a_quiet_one_is_not() {
        let quiet = HostLoad {
            loadavg_1: 0.1,
            loadavg_5: 0.1,
            loadavg_15: 0.1,
            steal_ticks: 10,
            total_ticks: 10_000,
        };
        // At the end the bench's own 2 threads are in the load average.
        let end = HostLoad {
            loadavg_1: 2.1,
            steal_ticks: 11,
            total_ticks: 20_000,
            ..quiet
        };
        let l = LoadReport::judge(Some(quiet), Some(end), 2, 2);
        assert!(l.busy.is_empty(), "{:?}", l.busy);
        assert!((l.steal_percent.expect("steal") - 0.01).abs() < 1e-9);
        let start = HostLoad {
            loadavg_1: 3.0,
            ..quiet
        };
        let stolen = HostLoad {
            steal_ticks: 1_010,
            ..end
        };
        let l = LoadReport::judge(Some(start), Some(stolen), 2, 2);
        assert_eq!(l.busy.len(), 2, "{:?}", l.busy);
        assert!(l.busy[0].contains("3.00") && l.busy[1].contains("stolen"));
        assert!(LoadReport::judge(None, None, 2, 2).busy.is_empty());
    }

    #[test]
    fn a_tiny_bench_fills_every_row() {
        let spec = BenchSpec {
            schemes: vec!["refcount", "none-mb", "none"],
            archs: vec!["generic"],
            workloads: vec![Workload::IdleStorm],
            cpus: vec![2],
            pairs: None,
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
        assert_eq!(b.rows.len(), 6);
        assert_eq!(b.switch_work_ns, 200);
        for r in &b.rows {
            assert_eq!(r.violations, 0);
            assert_eq!(r.samples, 3);
            assert_eq!(r.sample_switches_per_sec.len(), 3);
            assert_eq!(r.pairs, None);
            assert!(r.min <= r.switches_per_sec && r.switches_per_sec <= r.max);
            assert!(
                r.switches_per_sec_lo <= r.switches_per_sec
                    && r.switches_per_sec <= r.switches_per_sec_hi
            );
            let (lo, mid, hi) = (
                r.vs_none_lo.expect("none ran"),
                r.vs_none.expect("none ran"),
                r.vs_none_hi.expect("none ran"),
            );
            assert!(lo <= mid && mid <= hi, "{lo} {mid} {hi}");
            assert_eq!(r.verdict, Some(Verdict::of(lo, hi)));
            assert!(r.vs_none_mb.is_some() && r.extra_ns_vs_none_mb.is_some());
            let rmw = r
                .shared_rmw_per_lazy_switch
                .expect("idle-storm switches lazily");
            // refcount: an inc and a dec per lazy round trip; none and none-mb: nothing.
            let want = if r.scheme == "refcount" { 2.0 } else { 0.0 };
            assert!(
                (rmw - want).abs() < 0.05,
                "{} {:?}: {rmw}",
                r.scheme,
                r.mode
            );
            // none-mb pays membarrier's one barrier per round trip, none nothing; every
            // scheme pays the scheduler's smp_mb__after_spinlock() on both switches of a
            // round trip (generic: two more barriers).
            let mb = r.full_fences_per_lazy_switch.expect("lazy switches");
            let want = 2.0
                + match r.scheme {
                    "refcount" => 2.0,
                    "none-mb" => 1.0,
                    _ => 0.0,
                };
            assert!((mb - want).abs() < 0.01, "{}: {mb}", r.scheme);
            assert!(r.lazy_switches_per_sec > 0.0);
        }
        // none against itself: a ratio of exactly 1 in every round.
        let none = b.rows.iter().find(|r| r.scheme == "none").expect("none");
        assert_eq!(
            (none.vs_none, none.vs_none_lo, none.vs_none_hi),
            (Some(1.0), Some(1.0), Some(1.0))
        );
        assert_eq!(none.verdict, Some(Verdict::WithinNoise));
        let modes: Vec<Mode> = b.rows.iter().map(|r| r.mode).collect();
        assert_eq!(
            modes,
            [Mode::Bookkeeping; 3]
                .iter()
                .chain(&[Mode::Realistic; 3])
                .copied()
                .collect::<Vec<_>>()
        );
        assert!(b.load.start.is_some() == cfg!(target_os = "linux"));
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
        let mut spec = BenchSpec::new();
        spec.pairs = Some(vec![1, 0]);
        assert!(matches!(
            run_bench(&spec, &mut |_, _, _| {}),
            Err(BenchError::Pairs)
        ));
    }
}
