//! The bench report's row: one scheme on one (arch, workload, CPU count, pairs, mode).
//! Its serde derive is the one definition of the fields of `results.json` and
//! `results.csv`; the tables show them through [`super::columns`].

use crate::bench::plan::Mode;
use crate::bench::stats::Verdict;
use crate::workload::Workload;
use serde::{Serialize, Serializer};

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
    /// cost per switch, to be read against [`crate::bench::Bench::host_fence_ns`] and a real switch's.
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
