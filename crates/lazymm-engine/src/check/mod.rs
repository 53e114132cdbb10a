//! The checker: tries to break every scheme with seeded random programs under a
//! deterministic scheduler, and turns a failure into a short, replayable counterexample.
//!
//! One *iteration* is one run of a [`Case`]: 4 to 8 simulated CPUs, a small mm arena (so
//! slots are reused and a stale handle can name a new mm), and for each CPU a random
//! program of operations (switches, fork, clone, exit, exec, `kthread_use_mm`, hotplug,
//! speculative walks); half the cases draw from a random subset of the operation kinds
//! (swarm testing, [`program::Swarm`]). Each CPU is a host thread, but the [`pct`] scheduler lets only one run at a
//! time and moves the turn only at the model's preemption points (inside
//! `context_switch`, the lifecycle operations and teardown, and every spin-wait), so a run
//! is exactly determined by its case and its list of scheduling decisions. The oracle
//! checks every property inline, where it can break; the run stops at the first
//! violation, and otherwise quiesces and checks for leaks.
//!
//! Why our own scheduler and not shuttle: the model's `sync` facade is the one the
//! benchmarks use; shuttle would need its own cfg and a second build of the model, and
//! the `lazymm` binary must both benchmark with std atomics and check. Serialising real
//! threads at explicit points keeps one build, and a recorded decision list is a replay
//! that needs nothing but this crate. Weak-memory behaviour is loom's job
//! (`crates/lazymm/tests/loom.rs`); this checker explores interleavings of larger
//! machines under sequential consistency.
//!
//! A failure is shrunk ([`shrink`]): operations are removed from the programs and the
//! decision list is cut short while the same kind of violation still occurs; the result is
//! written as a replay file ([`replay`]) that `lazymm check --replay` reruns exactly.

pub mod case;
pub mod pct;
pub mod program;
pub mod replay;
pub mod run;
pub mod shard;

pub use case::{iteration_seed, Case, Target};
pub use run::register;

use crate::registry::{self, Unknown, WithKernel};
use lazymm::tracepoint::{Span, Tracepoint};
use lazymm::{Arch, Mutant, Property, Scheme, Violation};
use pct::Policy;
use program::Mix;
use run::{execute, Event, Outcome};
pub use shard::{Shard, Summary};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A violating run: its case, the decisions that replay it, and what it found.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The case.
    pub case: Case,
    /// The decision script that replays it (the fallback fills in after its end).
    pub schedule: Vec<u8>,
    /// What the run found.
    pub outcome: Outcome,
    /// The iteration (0-based) that found it.
    pub iteration: u64,
}

/// Which operation mixes a run's iterations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mixes {
    /// Iteration `i` uses [`Mix::rotation`]`(i)`: every mix in turn (correct-scheme
    /// checks, and the generalisation test of every mutant).
    Rotate,
    /// Every iteration uses the mix the target's mutant declares
    /// ([`Mix::for_exercise`]; the usual mix without a mutant): a mutant hunt.
    Hint,
}

impl Mixes {
    fn of(self, target: Target, i: u64) -> Mix {
        match self {
            Mixes::Rotate => Mix::rotation(i),
            Mixes::Hint => target
                .mutant
                .map_or(Mix::Usual, |m| Mix::for_exercise(m.exercise())),
        }
    }
}

/// Iterations run and violating, under one mix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixCount {
    /// Iterations run under the mix.
    pub iterations: u64,
    /// Of those, iterations that found a violation.
    pub violating: u64,
}

/// What a run reached, counted from the model's own tracepoints
/// ([`lazymm::tracepoint`]) as the checker logged them: so a clean verdict says what
/// it covers.
///
/// # Invariants
/// Every count is of events that happened (no estimate): `ipis_in_windows[w]` counts
/// IPI handlers that ran on a CPU between the `Begin` and `End` of window `w` there.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Coverage {
    /// IPI handlers run, by the kernel's name (`flush_tlb_func`, `do_shoot_lazy_tlb`, …).
    pub ipi_handlers: BTreeMap<String, u64>,
    /// Paths entered, by the kernel's name: the teardown spans (`__mmput`, `__mmdrop`,
    /// `cleanup_lazy_tlbs`), each round of IPIs (`on_each_cpu_mask`) and the unmap flush
    /// (`flush_tlb_mm_range`).
    pub paths: BTreeMap<String, u64>,
    /// The interrupt points inside a switch, by name: times reached with interrupts on.
    pub irq_windows: BTreeMap<String, u64>,
    /// IPI handlers that ran inside each of those windows.
    pub ipis_in_windows: BTreeMap<String, u64>,
}

fn bump(m: &mut BTreeMap<String, u64>, k: &str, n: u64) {
    match m.get_mut(k) {
        Some(v) => *v += n,
        None => {
            m.insert(k.to_string(), n);
        }
    }
}

impl Coverage {
    /// Counts what one run's log shows.
    pub fn count(&mut self, events: &[Event]) {
        // The window each CPU is in, if any.
        let mut open: Vec<Option<&'static str>> = Vec::new();
        for e in events {
            let Event::Trace { cpu, tp, name } = e else {
                continue;
            };
            if open.len() <= *cpu {
                open.resize(cpu + 1, None);
            }
            match tp {
                Tracepoint::IpiHandler { .. } => {
                    bump(&mut self.ipi_handlers, name, 1);
                    if let Some(w) = open[*cpu] {
                        bump(&mut self.ipis_in_windows, w, 1);
                    }
                }
                Tracepoint::Begin(span, _) if span.is_irq_window() => {
                    bump(&mut self.irq_windows, name, 1);
                    open[*cpu] = Some(span.name());
                }
                Tracepoint::End(span, _) if span.is_irq_window() => open[*cpu] = None,
                Tracepoint::Begin(span, _) if *span != Span::IpiHandler => {
                    bump(&mut self.paths, name, 1)
                }
                _ => {}
            }
        }
    }

    /// Adds another run's counts.
    pub fn add(&mut self, o: &Coverage) {
        for (mine, theirs) in [
            (&mut self.ipi_handlers, &o.ipi_handlers),
            (&mut self.paths, &o.paths),
            (&mut self.irq_windows, &o.irq_windows),
            (&mut self.ipis_in_windows, &o.ipis_in_windows),
        ] {
            for (k, v) in theirs {
                bump(mine, k, *v);
            }
        }
    }
}

/// What checking one target found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub target: Target,
    /// Iterations run.
    pub iterations: u64,
    /// Iterations that found at least one violation.
    pub violating: u64,
    /// Iterations that hit the decision limit (a livelock under the scheduler).
    pub stalled: u64,
    /// The first violating run, as found (not shrunk).
    pub first: Option<Finding>,
    /// Scheduling decisions made in all iterations.
    pub decisions: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Iterations per operation mix.
    pub per_mix: BTreeMap<Mix, MixCount>,
    /// Violating iterations by the property their first violation breaks.
    pub by_property: BTreeMap<Property, u64>,
    /// What the iterations reached.
    pub coverage: Coverage,
    /// The part of the iteration space this report covers.
    pub shard: Shard,
}

/// Whether a scheme promises anything the oracle can check (the `none` baseline frees
/// nothing and promises no barrier, so its checks are vacuous).
pub fn promises_safety(scheme: &str) -> Result<bool, Unknown> {
    struct Promises;
    impl WithKernel for Promises {
        type Out = bool;
        fn with<S: Scheme, A: Arch>(self) -> bool {
            S::FREES_MMS || S::MEMBARRIER_SAFE
        }
        fn with_registered(self, s: &registry::Registered, _: &str) -> Option<bool> {
            Some(s.promises_safety())
        }
    }
    let arch = registry::ARCHS.first().map_or("generic", |(a, _)| *a);
    registry::dispatch(scheme, arch, Promises)
}

/// Runs `iterations` iterations of `target` from `base_seed`, rotating through every
/// operation mix ([`Mixes::Rotate`]); with `stop_at_first`, stops at the first violating
/// one. `tick` is called after each.
pub fn check(
    target: Target,
    base_seed: u64,
    iterations: u64,
    stop_at_first: bool,
    tick: &mut dyn FnMut(),
) -> Result<Report, Unknown> {
    check_shard(
        target,
        base_seed,
        iterations,
        stop_at_first,
        Shard::WHOLE,
        tick,
    )
}

/// [`check`] of one shard: the iterations `i < iterations` that `shard` owns, each
/// exactly as the whole run makes it.
pub fn check_shard(
    target: Target,
    base_seed: u64,
    iterations: u64,
    stop_at_first: bool,
    shard: Shard,
    tick: &mut dyn FnMut(),
) -> Result<Report, Unknown> {
    registry::dispatch(target.scheme, target.arch, Nothing)?;
    iterate(
        target,
        &[target.arch],
        base_seed,
        iterations,
        stop_at_first,
        Mixes::Rotate,
        shard,
        tick,
    )
}

/// Hunts a mutant: up to `budget` iterations from `base_seed`, until one catches it,
/// every iteration under the mix its declaration asks for ([`Mixes::Hint`]).
/// A mutant that names its arch runs there; one that breaks its scheme on every arch
/// runs on each registered arch in turn. `tick` is called after each iteration.
pub fn hunt(
    mutant: Mutant,
    base_seed: u64,
    budget: u64,
    tick: &mut dyn FnMut(),
) -> Result<Report, Unknown> {
    hunt_with(
        mutant,
        lazymm::Profile::BARE,
        base_seed,
        budget,
        Mixes::Hint,
        Shard::WHOLE,
        tick,
    )
}

/// [`hunt`] with the mixes and the shard given: with [`Mixes::Rotate`] the mutant runs
/// under exactly what a correct-scheme check runs (the generalisation test), on kernel
/// profile `profile`.
pub fn hunt_with(
    mutant: Mutant,
    profile: lazymm::Profile,
    base_seed: u64,
    budget: u64,
    mixes: Mixes,
    shard: Shard,
    tick: &mut dyn FnMut(),
) -> Result<Report, Unknown> {
    let archs: Vec<&'static str> = match mutant.arch() {
        Some(a) => vec![registry::arch(a)?],
        None => registry::ARCHS.iter().map(|(a, _)| *a).collect(),
    };
    let target = Target {
        scheme: registry::scheme(mutant.scheme())?,
        arch: archs[0],
        mutant: Some(mutant),
        profile,
    };
    iterate(target, &archs, base_seed, budget, true, mixes, shard, tick)
}

/// Iteration `i` of `target` runs on `archs[i % archs.len()]` under `mixes.of(i)`, for
/// every `i < iterations` that `shard` owns; the report's target is the arch of the
/// first violating iteration (the first arch when none violates).
#[allow(clippy::too_many_arguments)]
fn iterate(
    target: Target,
    archs: &[&'static str],
    base_seed: u64,
    iterations: u64,
    stop_at_first: bool,
    mixes: Mixes,
    shard: Shard,
    tick: &mut dyn FnMut(),
) -> Result<Report, Unknown> {
    let t0 = Instant::now();
    let mut rep = Report {
        target,
        iterations: 0,
        violating: 0,
        stalled: 0,
        first: None,
        decisions: 0,
        elapsed: Duration::ZERO,
        per_mix: BTreeMap::new(),
        by_property: BTreeMap::new(),
        coverage: Coverage::default(),
        shard,
    };
    for i in shard.iterations(iterations) {
        let t = Target {
            arch: archs[i as usize % archs.len()],
            ..target
        };
        let mix = mixes.of(target, i);
        let (case, policy) = Case::generate(t, iteration_seed(base_seed, i), mix);
        let out = execute(&case, policy)?;
        rep.iterations += 1;
        rep.decisions += out.schedule.len() as u64;
        rep.stalled += out.stalled as u64;
        rep.coverage.count(&out.events);
        let per = rep.per_mix.entry(mix).or_default();
        per.iterations += 1;
        per.violating += !out.violations.is_empty() as u64;
        tick();
        if let Some(v) = out.violations.first() {
            rep.violating += 1;
            *rep.by_property.entry(v.kind.property()).or_default() += 1;
            if rep.first.is_none() {
                rep.target = t;
                rep.first = Some(Finding {
                    case,
                    schedule: out.schedule.clone(),
                    outcome: out,
                    iteration: i,
                });
            }
            if stop_at_first {
                break;
            }
        }
    }
    rep.elapsed = t0.elapsed();
    Ok(rep)
}

struct Nothing;
impl WithKernel for Nothing {
    type Out = ();
    fn with<S: Scheme, A: Arch>(self) {}
    fn with_registered(self, _: &registry::Registered, _: &str) -> Option<()> {
        Some(())
    }
}

/// Whether two violations are the same kind of failure (for shrinking).
pub fn same_kind(a: &Violation, b: &Violation) -> bool {
    std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind)
}

/// Reruns a case under a script.
pub fn rerun(case: &Case, schedule: &[u8]) -> Result<Outcome, Unknown> {
    execute(case, Policy::Script(schedule.to_vec()))
}

/// Shrinks a finding with at most `reruns` reruns: removes CPUs and operations and cuts
/// the decision script short while the first violation stays of the same kind. The result
/// replays exactly with [`rerun`], and depends only on the finding and `reruns`, never on
/// the machine's speed.
pub fn shrink(f: &Finding, reruns: u32) -> Result<Finding, Unknown> {
    let mut left = reruns;
    let Some(want) = f.outcome.first().cloned() else {
        return Ok(f.clone());
    };
    let mut best = f.clone();
    let reproduces = |o: &Outcome| o.first().is_some_and(|v| same_kind(v, &want));
    for _round in 0..2 {
        // Fewer CPUs: drop one (its program and its decisions) and renumber the rest;
        // clone targets wrap modulo the CPUs, so the programs stay valid.
        let mut c = best.case.cpus;
        while c > 0 && best.case.cpus > 1 {
            c -= 1;
            if left == 0 {
                return Ok(best);
            }
            if c >= best.case.cpus {
                continue;
            }
            let mut case = best.case.clone();
            case.cpus -= 1;
            case.programs.remove(c);
            let script: Vec<u8> = best
                .schedule
                .iter()
                .filter(|&&x| x as usize != c)
                .map(|&x| if x as usize > c { x - 1 } else { x })
                .collect();
            left -= 1;
            let out = rerun(&case, &script)?;
            if reproduces(&out) {
                best = Finding {
                    case,
                    schedule: out.schedule.clone(),
                    outcome: out,
                    iteration: best.iteration,
                };
            }
        }
        // Fewer operations: try removing each one, last first.
        for c in 0..best.case.cpus {
            let mut i = best.case.programs[c].len();
            while i > 0 {
                i -= 1;
                if left == 0 {
                    return Ok(best);
                }
                if i >= best.case.programs[c].len() {
                    continue;
                }
                let mut case = best.case.clone();
                case.programs[c].remove(i);
                left -= 1;
                let out = rerun(&case, &best.schedule)?;
                if reproduces(&out) {
                    best = Finding {
                        case,
                        schedule: out.schedule.clone(),
                        outcome: out,
                        iteration: best.iteration,
                    };
                }
            }
        }
        // A shorter script: the shortest prefix found by bisection that still fails.
        let (mut lo, mut hi) = (0usize, best.schedule.len());
        while lo < hi {
            if left == 0 {
                return Ok(best);
            }
            let mid = (lo + hi) / 2;
            let prefix = best.schedule[..mid].to_vec();
            left -= 1;
            let out = rerun(&best.case, &prefix)?;
            if reproduces(&out) {
                hi = mid;
                best = Finding {
                    case: best.case.clone(),
                    schedule: prefix,
                    outcome: out,
                    iteration: best.iteration,
                };
            } else {
                lo = mid + 1;
            }
        }
    }
    Ok(best)
}

/// The events of a failing run that matter: those naming the violated mm, the violating
/// CPU's operation in progress when it was found, and the violation itself.
pub fn timeline(out: &Outcome) -> Vec<String> {
    let Some(v) = out.first() else {
        return Vec::new();
    };
    let end = out
        .events
        .iter()
        .position(|e| matches!(e, Event::Violation(x) if x == v))
        .unwrap_or(out.events.len().saturating_sub(1));
    let events = &out.events[..=end.min(out.events.len().saturating_sub(1))];
    // The last operation the violating CPU began before the violation.
    let last_op = events
        .iter()
        .rposition(|e| matches!(e, Event::Op { cpu, .. } if *cpu == v.cpu));
    events
        .iter()
        .enumerate()
        .filter(|(i, e)| e.names(v.mm) || matches!(e, Event::Violation(_)) || last_op == Some(*i))
        .map(|(_, e)| e.to_string())
        .collect()
}
