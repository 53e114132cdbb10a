//! `lazymm predict`: the sweep (schemes x archs x workloads x CPUs x pairs on one
//! machine), its rows, and `--validate` beside the native engine.

use crate::sim::{simulate, SimError, SimReport, SimSpec};
use lazymm_cost::machine::{Machine, Ps};
use lazymm_engine::bench::stats::{median, paired_slowdown, Interval};
use lazymm_engine::registry::{ARCHS, SCHEMES};
use lazymm_engine::Workload;
use std::time::Instant;

/// What to predict.
#[derive(Debug, Clone)]
pub struct PredictSpec {
    /// Scheme names.
    pub schemes: Vec<&'static str>,
    /// Arch names.
    pub archs: Vec<&'static str>,
    /// Workloads (any of the registry's).
    pub workloads: Vec<Workload>,
    /// CPU counts.
    pub cpus: Vec<usize>,
    /// Pair counts for `threads` and `processes` (empty: one pair per two CPUs).
    pub pairs: Vec<usize>,
    /// Both threads of pair `i` bound to CPU `i % cpus` (will-it-scale's pinned mode)
    /// rather than placed by the kernel at each wakeup.
    pub pin: bool,
    /// The seed.
    pub seed: u64,
    /// Shorter simulated windows.
    pub quick: bool,
    /// The kernel profile every row runs.
    pub profile: lazymm::Profile,
}

/// The workloads of the default sweep (`--workloads` takes any of the registry's).
pub const DEFAULT_WORKLOADS: &[Workload] = &[Workload::Threads, Workload::IdleStorm];

impl PredictSpec {
    /// The default sweep on `m`: every registered scheme, arch `generic`, `threads` and
    /// `idle-storm`, CPUs 1, 2, 4, ... up to 1024 (or the machine's size).
    pub fn new(m: &Machine) -> PredictSpec {
        PredictSpec {
            schemes: SCHEMES.iter().map(|(n, _)| *n).collect(),
            archs: vec![ARCHS
                .iter()
                .map(|(n, _)| *n)
                .find(|n| *n == "generic")
                .unwrap_or(ARCHS[0].0)],
            workloads: DEFAULT_WORKLOADS.to_vec(),
            cpus: default_cpus(m.nr_cpus.min(1024)),
            pairs: Vec::new(),
            pin: false,
            seed: 1,
            quick: false,
            profile: lazymm::Profile::BARE,
        }
    }

    /// Simulated warm-up and measured window: 50 us and 2 ms (`--quick`: 20 us and 400 us).
    pub fn window(&self) -> (Ps, Ps) {
        if self.quick {
            (20_000_000, 400_000_000)
        } else {
            (50_000_000, 2_000_000_000)
        }
    }
}

/// 1, 2, 4, ... below `max`, and `max`.
pub fn default_cpus(max: usize) -> Vec<usize> {
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |c| Some(c * 2))
        .take_while(|c| *c < max)
        .collect();
    v.push(max.max(1));
    v
}

/// One predicted row.
#[derive(Debug, Clone)]
pub struct Row {
    /// What the simulator reported.
    pub r: SimReport,
    /// Pairs (workloads with pairs only).
    pub pairs: Option<usize>,
    /// `none`'s switches per second over this row's.
    pub slowdown_vs_none: Option<f64>,
    /// ns per switch per CPU beyond `none`'s.
    pub extra_ns_per_switch: Option<f64>,
    /// Host seconds the simulation took.
    pub host_seconds: f64,
    /// In a what-if ([`Prediction::compared`]): this row's change from the other profile,
    /// with its interval.
    pub change: Option<crate::change::WhatIf>,
}

impl Row {
    /// Shared RMWs per lazy switch.
    pub fn shared_rmw_per_lazy_switch(&self) -> Option<f64> {
        ratio(self.r.measured.shared_rmw, self.r.measured.lazy_switches)
    }
    /// Full fences per lazy switch.
    pub fn full_fences_per_lazy_switch(&self) -> Option<f64> {
        ratio(self.r.measured.full_fences, self.r.measured.lazy_switches)
    }
    /// IPIs per exit (whole run).
    pub fn ipis_per_exit(&self) -> Option<f64> {
        ratio(self.r.total.ipis_sent, self.r.total.exits)
    }
    /// Simulated microseconds of teardown per exit.
    pub fn teardown_us_per_exit(&self) -> Option<f64> {
        (self.r.total.exits > 0)
            .then(|| self.r.teardown_ps as f64 / 1e6 / self.r.total.exits as f64)
    }
    /// Fraction of switches into a user task that came from idle.
    pub fn through_idle(&self) -> Option<f64> {
        self.r.sched.through_idle()
    }
    /// Line transfers between CPUs per context switch (the HITM-equivalent count).
    pub fn transfers_per_switch(&self) -> Option<f64> {
        ratio(self.r.counts.transfers, self.r.total.context_switches)
    }
    /// [`Row::transfers_per_switch`] by cache line, each named by the kernel fields on
    /// it; most first.
    pub fn transfers_per_switch_by_line(&self) -> Vec<(&str, f64)> {
        self.r
            .transfers_by_line
            .iter()
            .filter_map(|(l, t)| Some((l.as_str(), ratio(*t, self.r.total.context_switches)?)))
            .collect()
    }
    /// The line with the most transfers per switch: the one that limits the scheme.
    pub fn limiting_line(&self) -> Option<&str> {
        self.r.transfers_by_line.first().map(|(l, _)| l.as_str())
    }
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// A finished sweep.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The machine.
    pub machine: Machine,
    /// What was asked.
    pub spec: PredictSpec,
    /// The rows, grouped by arch, workload, CPUs, pairs, in scheme order.
    pub rows: Vec<Row>,
    /// Host seconds of the whole sweep.
    pub host_seconds: f64,
    /// Simulated memory accesses over every row.
    pub accesses: u64,
    /// Simulator events over every row.
    pub events: u64,
    /// The command line (set by the caller).
    pub command: String,
    /// `--vary KEY=V` that produced this machine, if any.
    pub varied: Option<(String, f64)>,
    /// A what-if's comparison with another profile (`crate::whatif::what_if_sweep`);
    /// each row's change from it is in [`Row::change`].
    pub compared: Option<crate::change::Comparison>,
}

/// Runs the sweep. `progress(done, total)` after each row.
pub fn predict(
    m: &Machine,
    spec: &PredictSpec,
    mut progress: impl FnMut(usize, usize),
) -> Result<Prediction, SimError> {
    let t0 = Instant::now();
    let (warmup, window) = spec.window();
    let mut groups: Vec<(&str, Workload, usize, Option<usize>)> = Vec::new();
    for &arch in &spec.archs {
        for &w in &spec.workloads {
            for &cpus in &spec.cpus {
                if w.has_pairs() && !spec.pairs.is_empty() {
                    for &p in &spec.pairs {
                        groups.push((arch, w, cpus, Some(p)));
                    }
                } else {
                    groups.push((arch, w, cpus, None));
                }
            }
        }
    }
    let total = groups.len() * spec.schemes.len();
    let mut rows = Vec::with_capacity(total);
    let (mut accesses, mut events) = (0, 0);
    for (arch, w, cpus, pairs) in groups {
        let start = rows.len();
        for &scheme in &spec.schemes {
            let t = Instant::now();
            let r = simulate(
                m,
                &SimSpec {
                    scheme: scheme.to_string(),
                    arch: arch.to_string(),
                    workload: w,
                    pairs,
                    pin: spec.pin,
                    cpus,
                    seed: spec.seed,
                    warmup,
                    window,
                    profile: spec.profile,
                },
            )?;
            accesses += r.counts.accesses();
            events += r.counts.events;
            rows.push(Row {
                pairs: r.pairs,
                r,
                slowdown_vs_none: None,
                extra_ns_per_switch: None,
                host_seconds: t.elapsed().as_secs_f64(),
                change: None,
            });
            progress(rows.len(), total);
        }
        fill_vs_none(&mut rows[start..]);
    }
    Ok(Prediction {
        machine: m.clone(),
        spec: spec.clone(),
        rows,
        host_seconds: t0.elapsed().as_secs_f64(),
        accesses,
        events,
        command: String::new(),
        varied: None,
        compared: None,
    })
}

/// Fills each row's comparison with `none` in its group.
fn fill_vs_none(group: &mut [Row]) {
    let Some(none) = group
        .iter()
        .find(|r| r.r.scheme == "none")
        .map(|r| r.r.switches_per_sec())
    else {
        return;
    };
    for row in group {
        let sps = row.r.switches_per_sec();
        if sps > 0.0 && none > 0.0 {
            row.slowdown_vs_none = Some(none / sps);
            let cpus = row.r.cpus as f64;
            row.extra_ns_per_switch = Some(cpus * 1e9 / sps - cpus * 1e9 / none);
        }
    }
}

/// One line of `--validate`: a scheme's slowdown against `none`, predicted and native.
#[derive(Debug, Clone)]
pub struct Validation {
    /// Scheme.
    pub scheme: &'static str,
    /// Workload.
    pub workload: Workload,
    /// CPUs.
    pub cpus: usize,
    /// Predicted switches/s.
    pub predicted: f64,
    /// Native switches/s: the median of the rounds.
    pub native: f64,
    /// Predicted: `none`'s switches/s over the scheme's.
    pub predicted_slowdown: f64,
    /// Native: the median over the rounds of `none`'s switches/s over the scheme's in
    /// the same round, with its bootstrap interval (the bench's paired statistic).
    pub native_slowdown: Interval,
    /// Native rounds.
    pub rounds: usize,
}

impl Validation {
    /// How far the predicted ratio is from the native one (predicted / native - 1; the
    /// same whichever way round the ratios are taken, up to the sign).
    pub fn error(&self) -> f64 {
        self.native_slowdown.estimate / self.predicted_slowdown - 1.0
    }
}

/// Native rounds per group of `--validate` (the bench's count), and with `--quick`.
pub const VALIDATE_ROUNDS: (usize, usize) = (12, 5);
/// Seconds of each native sample (the bench's), and of its warm-up run.
pub const VALIDATE_SAMPLE_S: (f64, f64) = (0.08, 0.05);

/// Runs the native engine beside every predicted group of `p` that fits this host (CPUs
/// it has, the default pairs, `none` predicted beside it), with the machine's
/// context-switch cost as the native realistic mode's work per switch, and sets each
/// scheme's slowdown against `none` both ways.
///
/// The native side is measured as the bench measures (`lazymm_engine::bench::stats`):
/// after a discarded warm-up run of each scheme, `rounds` rounds in which every scheme of
/// the group runs one sample, each round starting one scheme further along; a scheme's
/// slowdown is the median over the rounds of `none`'s rate over its own in the same
/// round, so noise slower than a round (other tenants, frequency changes) cancels and a
/// burst spoils one round, which the median ignores.
pub fn validate(
    p: &Prediction,
    rounds: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Validation>, lazymm_engine::SpecError> {
    let host = lazymm_engine::bench::host_cpus();
    let work = p.machine.context_switch / 1000;
    let (sample_s, warmup_s) = VALIDATE_SAMPLE_S;
    // Groups: the predicted rows that differ only in the scheme.
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for row in &p.rows {
        let r = &row.r;
        if r.cpus > host || (row.pairs.is_some() && row.pairs != Some(r.cpus.div_ceil(2))) {
            continue;
        }
        match groups.iter_mut().find(|g| {
            let x = &g[0].r;
            (x.arch, x.workload, x.cpus, g[0].pairs) == (r.arch, r.workload, r.cpus, row.pairs)
        }) {
            Some(g) => g.push(row),
            None => groups.push(vec![row]),
        }
    }
    groups.retain(|g| g.iter().any(|r| r.r.scheme == "none"));
    let total: usize = groups.iter().map(|g| g.len() * (1 + rounds)).sum();
    let mut done = 0;
    let mut out = Vec::new();
    for g in groups {
        let run_one = |row: &Row, seconds: f64, seed: u64| {
            let mut spec = lazymm_engine::RunSpec::new(row.r.scheme, row.r.workload, row.r.cpus);
            spec.arch = row.r.arch.to_string();
            spec.seconds = Some(seconds);
            spec.seed = seed;
            spec.switch_work_ns = work;
            spec.profile = p.spec.profile;
            spec.pin_pairs = p.spec.pin;
            lazymm_engine::run(&spec).map(|r| r.switches_per_sec())
        };
        for row in &g {
            run_one(row, warmup_s, p.spec.seed)?;
            done += 1;
            progress(done, total);
        }
        let n = g.len();
        let mut samples = vec![Vec::with_capacity(rounds); n];
        for i in 0..rounds {
            for k in 0..n {
                let j = (i + k) % n;
                samples[j].push(run_one(g[j], sample_s, p.spec.seed.wrapping_add(i as u64))?);
                done += 1;
                progress(done, total);
            }
        }
        let none = g
            .iter()
            .position(|r| r.r.scheme == "none")
            .expect("groups without none were dropped");
        let pred_none = g[none].r.switches_per_sec();
        for (j, row) in g.iter().enumerate() {
            let Some(native_slowdown) = paired_slowdown(&samples[none], &samples[j]) else {
                continue;
            };
            out.push(Validation {
                scheme: row.r.scheme,
                workload: row.r.workload,
                cpus: row.r.cpus,
                predicted: row.r.switches_per_sec(),
                native: median(&samples[j]),
                predicted_slowdown: pred_none / row.r.switches_per_sec(),
                native_slowdown,
                rounds,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report;

    fn small(m: &Machine) -> PredictSpec {
        let mut s = PredictSpec::new(m);
        s.schemes = vec!["refcount", "shootdown", "none"];
        s.cpus = vec![1, 16];
        s.pairs = vec![3, 8];
        s.quick = true;
        s
    }

    #[test]
    fn the_same_seed_writes_the_same_results_json() {
        let m = Machine::load("spr-2s").unwrap();
        let a = predict(&m, &small(&m), |_, _| {}).unwrap();
        let b = predict(&m, &small(&m), |_, _| {}).unwrap();
        let (ja, jb) = (
            serde_json::to_string(&report::to_json(&a)).unwrap(),
            serde_json::to_string(&report::to_json(&b)).unwrap(),
        );
        assert_eq!(ja, jb);
        let mut other = small(&m);
        other.seed = 99;
        let c = predict(&m, &other, |_, _| {}).unwrap();
        assert_ne!(
            ja,
            serde_json::to_string(&report::to_json(&c)).unwrap(),
            "the seed changes nothing"
        );
    }

    #[test]
    fn rows_carry_the_bench_fields_plus_machine_pairs_and_predicted() {
        let m = Machine::load("spr-2s").unwrap();
        let p = predict(&m, &small(&m), |_, _| {}).unwrap();
        // 2 workloads: threads with 2 pair counts, idle-storm; 2 CPU counts; 3 schemes.
        assert_eq!(p.rows.len(), (2 + 1) * 2 * 3);
        let csv = report::to_csv(&p).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        for r in &p.rows {
            let v = serde_json::to_value(report::row(&p, r)).unwrap();
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            assert_eq!(keys, header, "results.json and results.csv disagree");
            assert_eq!(v["predicted"], true);
            assert_eq!(v["machine"], "spr-2s");
            assert_eq!(v["violations"], 0);
        }
        let none = p.rows.iter().find(|r| r.r.scheme == "none").unwrap();
        assert_eq!(none.slowdown_vs_none, Some(1.0));
        assert!(report::table(&p).starts_with("PREDICTIONS of a coherence cost model"));
        assert_eq!(csv.lines().count(), p.rows.len() + 1);
        assert!(!report::charts(&p).is_empty());
    }

    #[test]
    fn the_limiting_line_chart_stacks_each_schemes_lines_at_the_largest_cpu_count() {
        let m = Machine::load("spr-2s").unwrap();
        let mut s = small(&m);
        s.profile = lazymm::Profile::by_name("6.12").unwrap();
        let p = predict(&m, &s, |_, _| {}).unwrap();
        let charts = report::limiting_line_charts(&p);
        // One per group: threads with 3 and with 8 pairs, idle-storm.
        assert_eq!(
            charts.len(),
            3,
            "{:?}",
            charts.iter().map(|c| &c.file).collect::<Vec<_>>()
        );
        let c = charts
            .iter()
            .find(|c| c.file == "limits-threads-generic-pairs8.svg")
            .unwrap();
        assert!(c.title.contains("at 16 CPUs (predicted, spr-2s)") && c.title.contains("6.12"));
        for scheme in ["refcount", "shootdown", "none"] {
            let r = p
                .rows
                .iter()
                .find(|r| r.r.scheme == scheme && r.r.cpus == 16 && r.pairs == Some(8))
                .unwrap();
            let bar = c
                .svg
                .split(r#"<g class="bar""#)
                .find(|b| b.starts_with(&format!(r#" data-row="{scheme}""#)))
                .unwrap();
            // The segments add up to the row's transfers per switch (rounded as drawn).
            let sum: f64 = bar
                .split(r#"data-value=""#)
                .skip(1)
                .map(|v| v.split('"').next().unwrap().parse::<f64>().unwrap())
                .sum();
            let want = r.transfers_per_switch().unwrap_or(0.0);
            assert!(
                (sum - want).abs() < 1e-9 * want.max(1.0),
                "{scheme}: {sum} vs {want}"
            );
            match r.limiting_line() {
                Some(l) => {
                    let esc = l.replace('>', "&gt;");
                    assert!(bar.contains(&format!("limit: {esc} (")), "{scheme}: {bar}");
                    assert!(bar.contains(&format!(r#"data-key="{esc}""#)), "{scheme}");
                }
                None => assert!(bar.contains("no line transfers"), "{scheme}"),
            }
        }
        let refcount = p
            .rows
            .iter()
            .find(|r| r.r.scheme == "refcount" && r.r.cpus == 16 && r.pairs == Some(8))
            .unwrap();
        assert!(
            refcount.limiting_line().is_some(),
            "refcount moves lines at 16 CPUs"
        );
        let page = report::html(&p, &report::charts(&p)).unwrap();
        assert!(page.contains(r#"<h2 id="limits">"#));
        assert_eq!(
            page.matches(r#"class="seg""#).count(),
            charts
                .iter()
                .map(|c| c.svg.matches(r#"class="seg""#).count())
                .sum::<usize>()
        );
    }

    #[test]
    fn a_field_with_a_comma_or_a_quote_stays_one_csv_field() {
        let m = Machine::load("spr-2s").unwrap();
        let mut s = small(&m);
        s.schemes = vec!["refcount", "none"];
        s.cpus = vec![2];
        s.pairs = vec![];
        let mut p = predict(&m, &s, |_, _| {}).unwrap();
        let odd = "my box, \"rev 2\"\nsecond line";
        p.machine.file.name = odd.into();
        let csv = report::to_csv(&p).unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header = reader.headers().unwrap().clone();
        let at = header.iter().position(|h| h == "machine").unwrap();
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), p.rows.len());
        for r in &records {
            assert_eq!(r.len(), header.len(), "a field was split: {r:?}");
            assert_eq!(&r[at], odd);
            assert_eq!(
                &r[header.iter().position(|h| h == "predicted").unwrap()],
                "true"
            );
        }
    }

    #[test]
    fn the_report_is_written_whole_and_refuses_a_foreign_directory() {
        let m = Machine::load("spr-2s").unwrap();
        let mut s = small(&m);
        s.schemes = vec!["none"];
        s.cpus = vec![2];
        s.pairs = vec![];
        let p = predict(&m, &s, |_, _| {}).unwrap();
        let dir = std::env::temp_dir().join(format!("lazymm-sim-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = report::write(&p, &dir).unwrap();
        for f in [
            "results.json",
            "results.csv",
            "table.txt",
            "index.html",
            "simulator.json",
        ] {
            assert!(files.iter().any(|x| x == f) && dir.join(f).is_file(), "{f}");
        }
        // A second write replaces the report; a directory that is not one is refused.
        report::write(&p, &dir).unwrap();
        let foreign = dir.join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("keep.txt"), "x").unwrap();
        assert!(matches!(
            report::write(&p, &foreign),
            Err(report::ReportError::NotAReport(_))
        ));
        assert!(foreign.join("keep.txt").is_file());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
