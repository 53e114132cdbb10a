//! Running a bench: a group's schemes take turns (see the method in [`super`]), each
//! row gathers its samples, and the rows are compared with the `none` and `none-mb` rows
//! of their group.

use super::plan::{has_pairs, host_cpus, BenchSpec, Mode, NONE, NONE_MB};
use super::stats::{self, median, paired_slowdown, Verdict};
use crate::hostcost::{self, HostInfo, HostLoad, HostSwitch, LoadReport};
use crate::native::{run, RunReport, RunSpec, SpecError};
use crate::registry;
use crate::report::row::Row;
use crate::workload::Workload;
use lazymm::TeardownHist;
use std::time::Instant;

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
    /// Sections predicted by the simulator for other machines (set by the caller, which
    /// runs the simulator: this crate does not depend on it).
    pub predicted: Vec<crate::report::PredictedSection>,
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
/// and max, each the middle of the bucket it falls in (the model's buckets are within
/// 1/16 of their value). A quantile `q` is the bucket of the `ceil(q · n)`-th smallest
/// sample. `None` when nothing was torn down.
pub fn teardown_quantiles(h: &TeardownHist) -> Option<(f64, f64, f64)> {
    let n: u64 = h.counts.iter().map(|&c| u64::from(c)).sum();
    if n == 0 {
        return None;
    }
    let middle = |i: usize| {
        let lo = TeardownHist::lowest(i);
        // The last bucket takes everything above the range: its lowest value stands for it.
        let next = if i + 1 < TeardownHist::BUCKETS {
            TeardownHist::lowest(i + 1)
        } else {
            lo + 1
        };
        lo + (next - lo - 1) / 2
    };
    let at = |q: f64| {
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        let i = h.counts.iter().position(|&c| {
            seen += u64::from(c);
            seen >= rank
        });
        middle(i.unwrap_or(TeardownHist::BUCKETS - 1))
    };
    let last = h.counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    let us = |ns: u64| ns as f64 / 1000.0;
    Some((us(at(0.5)), us(at(0.99)), us(middle(last))))
}

/// Checks a spec before anything runs: no empty list, no zero pairs, every name known,
/// every CPU count in range.
fn check(spec: &BenchSpec) -> Result<(), BenchError> {
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
    Ok(())
}

/// What the host's own operations cost, measured once per bench.
struct HostCosts {
    /// A real context switch.
    switch: HostSwitch,
    /// A full barrier, in ns.
    fence_ns: f64,
    /// Work per switch in realistic mode, in ns (given, or the measured switch).
    work_ns: u64,
}

impl HostCosts {
    fn measure(spec: &BenchSpec) -> Result<HostCosts, BenchError> {
        let (trips, trials) = if spec.quick { (5_000, 3) } else { (20_000, 5) };
        let switch = hostcost::host_switch_ns(trips, trials).map_err(BenchError::HostSwitch)?;
        // Many short trials: the fastest of each kind is the one no other tenant
        // disturbed, and on a busy host a short trial has a better chance of being it.
        let fence_ns = if spec.quick {
            hostcost::host_fence_ns(50_000, 21)
        } else {
            hostcost::host_fence_ns(200_000, 25)
        };
        let work_ns = spec
            .switch_work_ns
            .unwrap_or(switch.ns_per_switch.round().max(1.0) as u64);
        // Calibrate the work loop before the first timed run, not inside it.
        let _ = hostcost::SwitchWork::from_ns(work_ns);
        Ok(HostCosts {
            switch,
            fence_ns,
            work_ns,
        })
    }
}

/// One group: rows that differ only in the scheme.
type Group = (Mode, &'static str, Workload, usize, Option<usize>);

/// The bench while it runs: what it was asked, the host's costs, and progress.
struct Runner<'a> {
    spec: &'a BenchSpec,
    host: &'a HostCosts,
    /// Warm-up seconds, seconds per sample, samples per row.
    sampling: (f64, f64, usize),
    total: usize,
    done: usize,
    /// The first few violations, as text.
    violations: Vec<String>,
    progress: &'a mut dyn FnMut(usize, usize, &str),
}

impl Runner<'_> {
    /// What the progress line says about a run of `scheme` in group `g`.
    fn label(g: Group, scheme: &str) -> String {
        let (mode, arch, workload, cpus, pairs) = g;
        let pairs = pairs.map_or(String::new(), |p| format!(" {p} pairs"));
        format!(
            "{} {arch} {} {cpus} cpus{pairs} {scheme}",
            mode.name(),
            workload.name()
        )
    }

    /// Runs `scheme` in group `g` for `seconds`, keeps its first violations and counts
    /// the run.
    fn run_one(
        &mut self,
        g: Group,
        scheme: &str,
        seconds: f64,
        seed: u64,
    ) -> Result<RunReport, BenchError> {
        let (mode, arch, workload, cpus, pairs) = g;
        let r = run(&RunSpec {
            arch: arch.to_string(),
            seconds: Some(seconds),
            seed,
            switch_work_ns: self.mode_ns(mode),
            pairs,
            profile: self.spec.profile,
            ..RunSpec::new(scheme, workload, cpus)
        })?;
        let label = Self::label(g, scheme);
        if self.violations.len() < 20 {
            self.violations
                .extend(r.violations.iter().take(5).map(|v| format!("{label}: {v}")));
        }
        self.done += 1;
        (self.progress)(self.done, self.total, &label);
        Ok(r)
    }

    /// Work per switch in `mode`.
    fn mode_ns(&self, mode: Mode) -> u64 {
        if mode == Mode::Realistic {
            self.host.work_ns
        } else {
            0
        }
    }

    /// Runs a group: a discarded warm-up per scheme, then rounds in which the schemes
    /// take turns, each round starting one scheme further along. Returns its rows.
    fn group(&mut self, g: Group) -> Result<Vec<Row>, BenchError> {
        let spec = self.spec;
        let (warmup, sample_s, samples) = self.sampling;
        let n = spec.schemes.len();
        let mut accs: Vec<Acc> = spec.schemes.iter().map(|_| Acc::new()).collect();
        for (j, &scheme) in spec.schemes.iter().enumerate() {
            // The warm-up's numbers are thrown away, but not its violations.
            let r = self.run_one(g, scheme, warmup, spec.seed)?;
            accs[j].violations += r.total.violations;
        }
        for i in 0..samples {
            // Round i starts at scheme i: no scheme always follows the same one.
            for k in 0..n {
                let j = (i + k) % n;
                let seed = spec.seed.wrapping_add(i as u64);
                let r = self.run_one(g, spec.schemes[j], sample_s, seed)?;
                accs[j].add(&r);
            }
        }
        Ok(spec
            .schemes
            .iter()
            .zip(accs)
            .map(|(&scheme, a)| self.row(g, scheme, a))
            .collect())
    }

    /// The row of `scheme` in group `g` from its samples (slowdowns not yet filled).
    fn row(&self, g: Group, scheme: &'static str, a: Acc) -> Row {
        let (mode, arch, workload, cpus, pairs) = g;
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
        Row {
            scheme,
            arch,
            workload,
            cpus,
            pairs: pairs.or(has_pairs(workload).then(|| cpus.div_ceil(2))),
            mode,
            switch_work_ns: self.mode_ns(mode),
            host_switch_ns: self.host.switch.ns_per_switch,
            host_fence_ns: self.host.fence_ns,
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
        }
    }
}

/// Runs the bench. `progress(done, total, what)` is called after every run.
pub fn run_bench(
    spec: &BenchSpec,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Bench, BenchError> {
    check(spec)?;
    let load_start = HostLoad::now();
    let t0 = Instant::now();
    let host = HostCosts::measure(spec)?;
    let spec_run = BenchSpec {
        switch_work_ns: Some(host.work_ns),
        ..spec.clone()
    };
    let mut runner = Runner {
        spec,
        host: &host,
        sampling: spec.sampling(),
        total: spec.total_runs(),
        done: 0,
        violations: Vec::new(),
        progress,
    };
    let mut rows = Vec::new();
    for g in spec_run.groups() {
        rows.extend(runner.group(g)?);
    }
    fill_slowdowns(&mut rows);
    let own_threads = spec.cpus.iter().copied().max().unwrap_or(1);
    let finished_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Bench {
        spec: spec.clone(),
        rows,
        host_switch: host.switch,
        host_fence_ns: host.fence_ns,
        switch_work_ns: host.work_ns,
        sampling: runner.sampling,
        host: HostInfo::this(),
        load: LoadReport::judge(load_start, HostLoad::now(), host_cpus(), own_threads),
        wall_seconds: t0.elapsed().as_secs_f64(),
        finished_unix,
        violations: runner.violations,
        command: String::new(),
        predicted: Vec::new(),
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
