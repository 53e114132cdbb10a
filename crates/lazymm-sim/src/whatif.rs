//! What-if: the same simulation under two kernel profiles, the predicted change, and
//! how far it moves when the values the machine file marks `assumed` move.
//!
//! The change is `after / before - 1` of the predicted context switches per second.
//! The interval varies every assumed value of the machine file ([`Machine::assumed`])
//! one at a time to half and to twice its value (the same as `--vary KEY=V/2,2V` per
//! key), reruns both profiles on each varied machine, and keeps the lowest and highest
//! change. Sourced values never move.

use crate::sim::{simulate, SimError, SimSpec};
use lazymm::Profile;
use lazymm_cost::machine::{Machine, MachineError};

/// A predicted change and its interval over the assumed values.
#[derive(Debug, Clone)]
pub struct WhatIf {
    /// Switches per second under the first profile.
    pub before: f64,
    /// Under the second.
    pub after: f64,
    /// `after / before - 1`.
    pub change: f64,
    /// The lowest change over the varied machines (the change itself included).
    pub low: f64,
    /// The highest.
    pub high: f64,
    /// The key and value that gave the lowest change, if a varied machine did.
    pub low_at: Option<(String, f64)>,
    /// The key and value that gave the highest change.
    pub high_at: Option<(String, f64)>,
}

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

fn change(m: &Machine, spec: &SimSpec, a: Profile, b: Profile) -> Result<(f64, f64), SimError> {
    let run = |p: Profile| {
        let mut s = spec.clone();
        s.profile = p;
        simulate(m, &s).map(|r| r.switches_per_sec())
    };
    Ok((run(a)?, run(b)?))
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
    let m = Machine::load(name)?;
    let (before, after) = change(&m, spec, a, b)?;
    let c = after / before - 1.0;
    let mut w = WhatIf {
        before,
        after,
        change: c,
        low: c,
        high: c,
        low_at: None,
        high_at: None,
    };
    if !vary_assumed {
        return Ok(w);
    }
    for (key, v) in &m.assumed {
        let v = *v;
        for x in [v / 2.0, v * 2.0] {
            // Whole-number fields stay whole.
            let x = if v.fract() == 0.0 {
                x.round().max(1.0)
            } else {
                x
            };
            let vm = match Machine::load_varied(name, &[(key.clone(), x)]) {
                Ok(vm) => vm,
                // A halved or doubled value the file refuses (out of its range): skip.
                Err(MachineError::Invalid { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let (b0, a0) = change(&vm, spec, a, b)?;
            let cx = a0 / b0 - 1.0;
            if cx < w.low {
                w.low = cx;
                w.low_at = Some((key.clone(), x));
            }
            if cx > w.high {
                w.high = cx;
                w.high_at = Some((key.clone(), x));
            }
        }
    }
    Ok(w)
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

    /// Predicted +51.6 % [+49.5, +53.4] against +92.2 %: factor 0.56, a hit.
    #[test]
    fn c1753fd02a00_on_spr() {
        check(&C1753);
    }

    #[test]
    #[ignore = "miss: predicted +0.5 % [-1.7, +4.2] against +20.7 % (factor 0.02): in the model nothing writes the mm_cpumask line in steady state, so the test of a bit already set stays a shared hit; the LKP report's -49 % perf-c2c HITM says the real line has a writer the model lacks"]
    fn e7e33001b8b_on_skylake() {
        check(&E7E33);
    }

    #[test]
    #[ignore = "miss: predicted -51.9 % [-52.3, -51.4] against -13.9 % (factor 3.7): the model serialises every switch of the mm's 224 threads on cid_lock, while the LKP figure's mode and copies are not in our source (the same report has -73.8 % for 16 thread-mode copies); the per-CPU cid slots and their reuse are not modelled"]
    fn af7f588d8f_on_spr() {
        check(&AF7_SPR);
    }

    #[test]
    #[ignore = "miss: predicted -20.1 % [-28.4, -12.4] against -57.9 % (factor 0.35): with 16 pairs the model's cid_lock is rarely contended; the kernel's cid bitmap scan and the line's false sharing with the mm's hot fields are not modelled"]
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
    }
}
