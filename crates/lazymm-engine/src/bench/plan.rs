//! What a bench is asked to run: [`BenchSpec`] (schemes, archs, workloads, CPU counts,
//! pairs, sampling), its groups and its defaults.

use crate::registry::{ARCHS, SCHEMES};
use crate::workload::Workload;
use serde::Serialize;

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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
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
    /// The kernel profile every run uses.
    pub profile: lazymm::Profile,
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
            profile: lazymm::Profile::BARE,
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
