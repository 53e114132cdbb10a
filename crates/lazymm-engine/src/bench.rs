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
//! [`crate::hostcost::host_switch_ns`], or given), so a shared cache line costs what it would
//! cost a real kernel in proportion.
//!
//! The parts: [`plan`] (what to run), [`run`] (running it), [`stats`] (the intervals
//! and verdicts); the row is the report's ([`crate::report::row::Row`]), the host's
//! noise judgement is [`crate::hostcost`]'s.

pub mod plan;
pub mod run;
pub mod stats;

pub use crate::hostcost::{HostInfo, LoadReport, BUSY_LOAD_PER_CPU, BUSY_STEAL_PERCENT};
pub use crate::report::row::Row;
pub use plan::{
    default_cpus, has_pairs, host_cpus, BenchSpec, Mode, DEFAULT_WORKLOADS, NONE, NONE_MB,
};
pub use run::{fill_slowdowns, run_bench, teardown_quantiles, Bench, BenchError};
pub use stats::median;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostcost::HostLoad;
    use crate::registry::SCHEMES;
    use crate::workload::Workload;
    use lazymm::TeardownHist;
    use stats::Verdict;

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
            profile: lazymm::Profile::BARE,
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
