//! What-if: the same simulation under two kernel profiles, the predicted change, and
//! how far it moves when the values the machine file marks `assumed` move.
//!
//! The change is `after / before - 1` of the predicted context switches per second.
//! The interval varies every assumed value of the machine file ([`Machine::assumed`])
//! one at a time to half and to twice its value (the same as `--vary KEY=V/2,2V` per
//! key), reruns both sides on each varied machine, and keeps the lowest and highest
//! change. It is a one-at-a-time interval, not a joint one: two assumed values moving
//! together can move the change further. Sourced values never move.
//!
//! [`what_if`] compares one simulation under two profiles, [`what_if_specs`] any two
//! simulations on one machine (the same workload pinned and unpinned, say), and
//! [`what_if_sweep`] the whole sweep of `lazymm predict` (`--kernel A --vs B`,
//! `--what-if ITEM=on|off`); all three take their interval through one function.

pub use crate::change::{Assumed, Comparison, WhatIf};
use crate::predict::{predict, PredictSpec, Prediction};
use crate::sim::{simulate, SimError, SimSpec};
use lazymm::Profile;
use lazymm_cost::machine::{Machine, MachineError};

/// A what-if that could not run.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    /// The simulation.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A varied machine.
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// The values the interval tries for an assumed value `v`: half and twice it, whole-number
/// fields staying whole (and at least 1).
fn halved_and_doubled(v: f64) -> [f64; 2] {
    [v / 2.0, v * 2.0].map(|x| {
        if v.fract() == 0.0 {
            x.round().max(1.0)
        } else {
            x
        }
    })
}

/// Each row's change from `base` (its switches per second before and after), widened
/// over the machines that vary one assumed value of `m` (loaded as `name`) at a time:
/// `run` gives the rows' (before, after) on a varied machine, in `base`'s order. Without
/// `vary_assumed`, no interval and no assumed values.
fn intervals(
    name: &str,
    m: &Machine,
    base: &[(f64, f64)],
    vary_assumed: bool,
    mut run: impl FnMut(&Machine) -> Result<Vec<(f64, f64)>, WhatIfError>,
) -> Result<(Vec<WhatIf>, Vec<Assumed>), WhatIfError> {
    let mut changes: Vec<WhatIf> = base.iter().map(|&(b, a)| WhatIf::new(b, a)).collect();
    let mut assumed = Vec::new();
    if !vary_assumed {
        return Ok((changes, assumed));
    }
    for (key, v) in &m.assumed {
        let mut tried = Vec::new();
        // A whole-number 1 halves to itself: that is no variation, so no run.
        for x in halved_and_doubled(*v).into_iter().filter(|x| x != v) {
            let vm = match Machine::load_varied(name, &[(key.clone(), x)]) {
                Ok(vm) => vm,
                // A halved or doubled value the file refuses (out of its range): skip.
                Err(MachineError::Invalid { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            tried.push(x);
            for (w, (b, a)) in changes.iter_mut().zip(run(&vm)?) {
                w.widen(b, a, key, x);
            }
        }
        assumed.push(Assumed {
            key: key.clone(),
            value: *v,
            tried,
        });
    }
    Ok((changes, assumed))
}

/// How many machines a what-if runs on `m`: the machine itself, and two per assumed
/// value (some may be refused and skipped, so this is an upper bound).
pub fn machines_to_run(m: &Machine, vary_assumed: bool) -> usize {
    1 + if vary_assumed { 2 * m.assumed.len() } else { 0 }
}

/// Switches per second of `a` and of `b` on `m`.
fn pair(m: &Machine, a: &SimSpec, b: &SimSpec) -> Result<(f64, f64), WhatIfError> {
    let rate = |s: &SimSpec| simulate(m, s).map(|r| r.switches_per_sec());
    Ok((rate(a)?, rate(b)?))
}

/// Runs `a` and `b` on machine `name` (a preset or a file), and again with each assumed
/// value halved and doubled (`vary_assumed`; off: no interval). The two specs may differ
/// in anything (the profile, `pin`, the pairs).
pub fn what_if_specs(
    name: &str,
    a: &SimSpec,
    b: &SimSpec,
    vary_assumed: bool,
) -> Result<WhatIf, WhatIfError> {
    let m = Machine::load(name)?;
    let base = [pair(&m, a, b)?];
    let (mut w, _) = intervals(name, &m, &base, vary_assumed, |vm| {
        Ok(vec![pair(vm, a, b)?])
    })?;
    Ok(w.remove(0))
}

/// Runs `spec` on machine `name` (a preset or a file) under `a` and `b`, and again
/// with each assumed value halved and doubled (`vary_assumed`; off: no interval).
pub fn what_if(
    name: &str,
    spec: &SimSpec,
    a: Profile,
    b: Profile,
    vary_assumed: bool,
) -> Result<WhatIf, WhatIfError> {
    let with = |p: Profile| SimSpec {
        profile: p,
        ..spec.clone()
    };
    what_if_specs(name, &with(a), &with(b), vary_assumed)
}

/// The sweep of `spec` on machine `name` under `spec.profile` and under `after`: the
/// prediction under `after` (every field of its rows), with each row's change from
/// `spec.profile` and its interval in its `change`, and the assumed values varied in
/// [`Prediction::compared`]. `progress(done, total)`
/// counts simulations: each row twice on every machine of [`machines_to_run`]. The
/// prediction's host time, accesses and events are those of every simulation run.
pub fn what_if_sweep(
    name: &str,
    spec: &PredictSpec,
    after: Profile,
    vary_assumed: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<Prediction, WhatIfError> {
    let m = Machine::load(name)?;
    let after_spec = PredictSpec {
        profile: after,
        ..spec.clone()
    };
    let (mut done, mut total) = (0, 0);
    let (mut seconds, mut accesses, mut events) = (0.0, 0, 0);
    // Both sweeps on one machine, each row's (before, after); the counters and the
    // progress follow every simulation.
    let mut both = |vm: &Machine| -> Result<(Prediction, Vec<(f64, f64)>), WhatIfError> {
        let mut sides = Vec::with_capacity(2);
        for s in [spec, &after_spec] {
            let p = predict(vm, s, |n, all| {
                if total == 0 {
                    total = 2 * all * machines_to_run(&m, vary_assumed);
                }
                progress(done + n, total);
            })?;
            done += p.rows.len();
            seconds += p.host_seconds;
            accesses += p.accesses;
            events += p.events;
            sides.push(p);
        }
        let a = sides.pop().expect("two sides");
        let b = sides.pop().expect("two sides");
        let rates = b
            .rows
            .iter()
            .zip(&a.rows)
            .map(|(x, y)| (x.r.switches_per_sec(), y.r.switches_per_sec()))
            .collect();
        Ok((a, rates))
    };
    let (mut out, base) = both(&m)?;
    let (changes, assumed) = intervals(name, &m, &base, vary_assumed, |vm| {
        both(vm).map(|(_, rates)| rates)
    })?;
    out.host_seconds = seconds;
    out.accesses = accesses;
    out.events = events;
    for (row, w) in out.rows.iter_mut().zip(changes) {
        row.change = Some(w);
    }
    out.compared = Some(Comparison {
        before: spec.profile,
        assumed,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazymm_engine::Workload;

    /// A small sweep: refcount and shootdown, x86, `threads`, 2 and 16 CPUs, quick.
    fn small(m: &Machine, profile: Profile) -> PredictSpec {
        let mut s = PredictSpec::new(m);
        s.schemes = vec!["refcount", "shootdown"];
        s.archs = vec!["x86"];
        s.workloads = vec![Workload::Threads];
        s.cpus = vec![2, 16];
        s.quick = true;
        s.profile = profile;
        s
    }

    #[test]
    fn the_sweep_is_the_two_predictions_and_each_change_lies_in_its_interval() {
        let m = Machine::load("spr-2s").unwrap();
        let (a, b) = (
            Profile::by_name("pre-c1753fd02a00").unwrap(),
            Profile::by_name("c1753fd02a00").unwrap(),
        );
        let mut calls = 0;
        let w = what_if_sweep("spr-2s", &small(&m, a), b, true, |done, total| {
            calls += 1;
            assert!(done <= total && total == 2 * 4 * machines_to_run(&m, true));
        })
        .unwrap();
        assert!(calls > 0);
        let before = predict(&m, &small(&m, a), |_, _| {}).unwrap();
        let after = predict(&m, &small(&m, b), |_, _| {}).unwrap();
        assert_eq!(w.rows.len(), 4);
        assert_eq!(w.spec.profile, b);
        for ((r, x), y) in w.rows.iter().zip(&before.rows).zip(&after.rows) {
            let c = r.change.as_ref().expect("every row has its change");
            assert_eq!(c.before, x.r.switches_per_sec());
            assert_eq!(c.after, y.r.switches_per_sec());
            assert_eq!(r.r.switches_per_sec(), c.after);
            assert!(c.low <= c.change && c.change <= c.high, "{c:?}");
            for at in [&c.low_at, &c.high_at].into_iter().flatten() {
                assert!(m.assumed.iter().any(|(k, _)| *k == at.0), "{at:?}");
            }
        }
        let cmp = w.compared.as_ref().expect("a comparison");
        assert_eq!(cmp.before, a);
        let keys: Vec<&str> = cmp.assumed.iter().map(|x| x.key.as_str()).collect();
        let file: Vec<&str> = m.assumed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, file);
        // Moving mm_count to its own line is felt by refcount at 16 CPUs, whose lazy
        // reference is an RMW on it, and by no shootdown row, which never touches it.
        let refcount16 = w
            .rows
            .iter()
            .find(|r| r.r.scheme == "refcount" && r.r.cpus == 16);
        assert!(refcount16.unwrap().change.as_ref().unwrap().change > 0.0);
        for r in w.rows.iter().filter(|r| r.r.scheme == "shootdown") {
            assert_eq!(r.change.as_ref().unwrap().change, 0.0, "{:?}", r.change);
        }
    }

    #[test]
    fn without_the_interval_nothing_is_varied() {
        let m = Machine::load("spr-2s").unwrap();
        let b = Profile::by_name("6.12").unwrap();
        let w = what_if_sweep("spr-2s", &small(&m, Profile::BARE), b, false, |_, _| {}).unwrap();
        assert!(w.compared.unwrap().assumed.is_empty());
        for r in &w.rows {
            let c = r.change.as_ref().unwrap();
            assert_eq!((c.low, c.high), (c.change, c.change));
        }
    }

    #[test]
    fn a_whole_number_one_is_only_doubled() {
        assert_eq!(halved_and_doubled(1.0), [1.0, 2.0]);
        assert_eq!(halved_and_doubled(7.0), [4.0, 14.0]);
        assert_eq!(halved_and_doubled(0.5), [0.25, 1.0]);
    }
}

/// Published kernel changes against the what-if prediction, in the style of
/// `lazymm-cost`'s `curves.rs`: each test names its source, and the factor the
/// prediction must fall within was stated here before the prediction was first run:
/// the predicted change over the published one within [0.5, 2] (so the sign is always
/// right). A miss keeps its bound and is marked `#[ignore = "miss: ..."]` with what
/// the model lacks; nothing sourced is tuned to make one fit.
///
/// Every test runs `threads` (will-it-scale `context_switch1`, thread mode: one pipe
/// ping-pong pair per two CPUs) under x86's `refcount` (the kernel's default,
/// `CONFIG_MMU_LAZY_TLB_REFCOUNT`), before and after the commit's profile, over the
/// predictor's own window (50 us warm-up, 2 ms measured). A first run over a 500 us
/// window was dominated by the start-up transient (shootdown at 1.1 M switches/s
/// against 43 M over 2 ms on `power8-192`); its figures are kept in the docs.
/// `cargo test -p lazymm-sim whatif::published::intervals -- --ignored --nocapture`
/// prints each change with its interval over the machine's assumed values
/// (docs/design.md, "What-if").
#[cfg(test)]
mod published {
    use super::*;
    use lazymm_engine::Workload;

    /// The stated factor: predicted change / published change.
    const FACTOR: (f64, f64) = (0.5, 2.0);

    struct Case {
        /// Commit and what it did.
        what: &'static str,
        /// Where the published number is.
        source: &'static str,
        machine: &'static str,
        cpus: usize,
        pairs: usize,
        before: &'static str,
        after: &'static str,
        /// The published change of `per_thread_ops`, as a fraction.
        published: f64,
    }

    const C1753: Case = Case {
        what: "c1753fd02a00 (mm_count on its own line)",
        source: "LKP: will-it-scale per_thread_ops +92.2 % on lkp-spr-r02 (2 x SPR, 224 threads), reported as addressing the af7f588d8f regression (scale-anchors.md section 4)",
        machine: "spr-2s",
        cpus: 224,
        pairs: 112,
        before: "pre-c1753fd02a00",
        after: "c1753fd02a00",
        published: 0.922,
    };

    const E7E33: Case = Case {
        what: "7e33001b8b (the mm_cpumask test under CONFIG_DEBUG_VM)",
        source: "LKP 202411301528.342383d8-lkp@intel.com: context_switch1 thread mode 100 %, lkp-skl-fpga01 (2 x Skylake, 104 threads), per_thread_ops 164,459 -> 198,448 (+20.7 %)",
        machine: "skl-2s",
        cpus: 104,
        pairs: 52,
        before: "pre-7e33001b8b",
        after: "7e33001b8b",
        published: 198_448.0 / 164_459.0 - 1.0,
    };

    const AF7_SPR: Case = Case {
        what: "af7f588d8f (mm_cid under mm->cid_lock), SPR x2",
        source: "LKP 202305151017.27581d75-yujie.liu@intel.com: context_switch1 per_thread_ops -13.9 % on lkp-spr-r02 (2 x SPR, 224 threads)",
        machine: "spr-2s",
        cpus: 224,
        pairs: 112,
        before: "pre-af7f588d8f",
        after: "af7f588d8f",
        published: -0.139,
    };

    const AF7_SKL: Case = Case {
        what: "af7f588d8f (mm_cid under mm->cid_lock), Skylake x2, 16 copies",
        source: "LKP 202305151017.27581d75-yujie.liu@intel.com: context_switch1 thread mode, 16 copies, -57.9 % on the 104-thread Skylake x2",
        machine: "skl-2s",
        cpus: 104,
        pairs: 16,
        before: "pre-af7f588d8f",
        after: "af7f588d8f",
        published: -0.579,
    };

    fn run(c: &Case, vary: bool) -> WhatIf {
        let spec = SimSpec {
            scheme: "refcount".into(),
            arch: "x86".into(),
            workload: Workload::Threads,
            pairs: Some(c.pairs),
            cpus: c.cpus,
            seed: 7,
            warmup: 50_000_000,
            window: 2_000_000_000,
            profile: Profile::BARE,
            pin: false,
        };
        let p = |n: &str| Profile::by_name(n).unwrap_or_else(|| panic!("no profile {n}"));
        what_if(c.machine, &spec, p(c.before), p(c.after), vary).unwrap()
    }

    fn check(c: &Case) {
        let w = run(c, false);
        let f = w.change / c.published;
        assert!(
            (FACTOR.0..=FACTOR.1).contains(&f),
            "{}: predicted {:+.1} % ({:.3e} -> {:.3e} switches/s), published {:+.1} % ({}): factor {f:.2}, stated {FACTOR:?}",
            c.what,
            w.change * 100.0,
            w.before,
            w.after,
            c.published * 100.0,
            c.source
        );
    }

    /// Predicted +58.9 % [+53.0, +65.5] against +92.2 %: factor 0.64, a hit (first run,
    /// before the wakeup placement and the idle path: +51.6 % [+49.5, +53.4], 0.56).
    #[test]
    fn c1753fd02a00_on_spr() {
        check(&C1753);
    }

    #[test]
    #[ignore = "miss: predicted +0.0 % [-1.1, +1.1] against +20.7 % (factor 0.00; first run +0.5 %): in the model nothing writes the mm_cpumask line in steady state, so the test of a bit already set stays a shared hit; the LKP report's -49 % perf-c2c HITM says the real line has a writer the model lacks"]
    fn e7e33001b8b_on_skylake() {
        check(&E7E33);
    }

    #[test]
    #[ignore = "miss: predicted -49.5 % [-49.8, -48.7] against -13.9 % (factor 3.56; first run -51.9 %): the model serialises every switch of the mm's 224 threads on cid_lock, while the LKP figure's mode and copies are not in our source (the same report has -73.8 % for 16 thread-mode copies); the per-CPU cid slots and their reuse are not modelled"]
    fn af7f588d8f_on_spr() {
        check(&AF7_SPR);
    }

    #[test]
    #[ignore = "miss: predicted -19.9 % [-32.1, -11.8] against -57.9 % (factor 0.34; first run -20.1 %): with 16 pairs the model's cid_lock is rarely contended; the kernel's cid bitmap scan and the line's false sharing with the mm's hot fields are not modelled"]
    fn af7f588d8f_on_skylake() {
        check(&AF7_SKL);
    }

    /// Piggin's POWER8 figure: a scheme change, not a profile change. Source: Nicholas
    /// Piggin, the lazy-TLB shootdown series (scale-anchors.md section 5): 192 cores,
    /// `context_switch1`, 1 M switches/s with refcounting against 118 M with
    /// shootdown. Stated before this run: shootdown / refcount within [59, 236] (2x of
    /// 118); the issue reports 116x from an earlier model. Predicted: 441 k against
    /// 43.0 M switches/s, 97.5x (factor 0.83), a hit.
    #[test]
    fn piggin_power8_refcount_against_shootdown() {
        let m = Machine::load("power8-192").unwrap();
        let rate = |scheme: &str| {
            let spec = SimSpec {
                scheme: scheme.into(),
                arch: "powerpc".into(),
                workload: Workload::Threads,
                pairs: Some(96),
                cpus: 192,
                seed: 7,
                warmup: 50_000_000,
                window: 2_000_000_000,
                profile: Profile::BARE,
                pin: false,
            };
            simulate(&m, &spec).unwrap().switches_per_sec()
        };
        let (r, s) = (rate("refcount"), rate("shootdown"));
        assert!(
            (59.0..=236.0).contains(&(s / r)),
            "refcount {r:.3e}/s, shootdown {s:.3e}/s: {:.1}x, published 118x",
            s / r
        );
    }

    /// Chen Yu's SIS_CURRENT series: will-it-scale `context_switch1`, unpinned against
    /// pinned. Source: Chen Yu, "[RFC PATCH v4 2/2] sched/fair: Choose the CPU where
    /// short task is running during wake up", LKML, 16 Dec 2022,
    /// <https://lore.kernel.org/r/3479fdc1eb255fe16f570230f807e009f919f7de.1671158588.git.yu.c.chen@intel.com>:
    /// v6.1-rc8, 56 cores (112 CPUs) in one LLC, C-states deeper than C1E disabled, turbo
    /// off; no task bound to a CPU; above 56 instances (112 tasks, one per CPU) the
    /// throughput falls as instances are added, with the system 20 % to 30 % idle
    /// (a race between `select_task_rq` and the enqueue through the wake list stacks
    /// wakees on one CPU while their wakers' CPUs idle); with every task bound to a CPU
    /// the idle share drops to nearly 0 % and the throughput rises by "about 300 %".
    ///
    /// The model's run: `spr-2s` (the lkp-spr-r02 of the LKP reports, 56 cores x SMT2 per
    /// socket) on 112 CPUs, one socket and so one LLC; 112 pairs, will-it-scale's largest
    /// instance count on that box; kernel profile `6.1`, x86, `refcount`, seed 7, the
    /// predictor's window. Unpinned: the model's `select_task_rq_fair`; pinned (`--pin`):
    /// both tasks of pair i on CPU i. Stated before the first run: the change of pinned
    /// over unpinned, published +300 %, within the module's factor [0.5, 2], so
    /// +150 % to +600 %. Predicted +352.6 % [+334.5, +389.9] (17.6 M -> 79.7 M
    /// switches/s; 55.8 % of the unpinned run's switches through idle): factor 1.18, a hit.
    #[test]
    fn chen_yu_pinned_against_unpinned() {
        let (w, idle) = chen_yu(false);
        let f = w.change / CHEN_YU_PUBLISHED;
        assert!(
            (FACTOR.0..=FACTOR.1).contains(&f),
            "pinned over unpinned: predicted {:+.1} % ({:.3e} -> {:.3e} switches/s, unpinned through idle {idle:?}), published about +300 %: factor {f:.2}, stated {FACTOR:?}",
            w.change * 100.0,
            w.before,
            w.after,
        );
    }

    /// The published change of Chen Yu's pinned `context_switch1` over unpinned.
    const CHEN_YU_PUBLISHED: f64 = 3.0;

    /// Chen Yu's case (see [`chen_yu_pinned_against_unpinned`]): the change from
    /// unpinned to pinned, and the unpinned run's fraction of switches through idle.
    fn chen_yu(vary: bool) -> (WhatIf, Option<f64>) {
        let unpinned = SimSpec {
            scheme: "refcount".into(),
            arch: "x86".into(),
            workload: Workload::Threads,
            pairs: Some(112),
            cpus: 112,
            seed: 7,
            warmup: 50_000_000,
            window: 2_000_000_000,
            profile: Profile::by_name("6.1").expect("preset 6.1"),
            pin: false,
        };
        let pinned = SimSpec {
            pin: true,
            ..unpinned.clone()
        };
        let m = Machine::load("spr-2s").unwrap();
        let idle = simulate(&m, &unpinned).unwrap().sched.through_idle();
        (
            what_if_specs("spr-2s", &unpinned, &pinned, vary).unwrap(),
            idle,
        )
    }

    #[test]
    #[ignore = "slow (every assumed value halved and doubled): prints the what-if table of docs/design.md"]
    fn intervals() {
        for c in [&C1753, &E7E33, &AF7_SPR, &AF7_SKL] {
            let w = run(c, true);
            println!(
                "{} on {}: published {:+.1} %, predicted {:+.1} % [{:+.1} %, {:+.1} %] (low at {:?}, high at {:?}), factor {:.2}",
                c.what,
                c.machine,
                c.published * 100.0,
                w.change * 100.0,
                w.low * 100.0,
                w.high * 100.0,
                w.low_at,
                w.high_at,
                w.change / c.published
            );
        }
        let (w, idle) = chen_yu(true);
        println!(
            "Chen Yu pinned over unpinned on spr-2s (112 CPUs, 112 pairs, 6.1): published about +300 %, predicted {:+.1} % [{:+.1} %, {:+.1} %] ({:.3e} -> {:.3e} switches/s; unpinned through idle {idle:?}; low at {:?}, high at {:?}), factor {:.2}",
            w.change * 100.0,
            w.low * 100.0,
            w.high * 100.0,
            w.before,
            w.after,
            w.low_at,
            w.high_at,
            w.change / CHEN_YU_PUBLISHED
        );
    }
}
