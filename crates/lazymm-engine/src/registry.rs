//! The registry: every scheme, arch, workload and mutant by name, and the one place that
//! turns names into monomorphised model types.
//!
//! To add a scheme to lazymm, add one line to `schemes!` below; its mutants come with it
//! (the scheme declares them, `Scheme::MUTANTS`). `lazymm schemes`, `run`, `bench` and
//! `check` pick both up from here.
//!
//! A program built on lazymm (the example in `crates/lazymm-cli/examples/`, see
//! `docs/new-scheme.md`) adds its own scheme without touching this file: it builds a
//! [`Registered`] for its type and hands it to [`register`] before it runs anything
//! (`lazymm_cli::Registry::with_scheme` does both). Every lookup here then knows the
//! name, and [`dispatch`] runs the registered scheme's own instantiations.
//!
//! # Why registered schemes carry their instantiations
//! Running a scheme means monomorphising a host over it (`V::with::<S, A>`), and only
//! code that names `S` can do that. A built-in scheme is named in `schemes!`; a registered
//! one is named only by the program that registers it, so [`Registered::new`] (and the
//! simulator's and replayer's `register`) instantiate each host for it there, once per
//! arch, and store the results as plain function pointers, which [`dispatch`] finds
//! through [`WithKernel::with_registered`]. The registry itself knows names and that job
//! store, nothing of any host: every host registers from its own module.

use crate::workload::Workload;
use lazymm::{Arch, Exercise, Mutant, Scheme};
use std::any::{Any, TypeId};
use std::sync::RwLock;

/// Something to do with one (scheme, arch) pair, as concrete types.
pub trait WithKernel: Sized {
    /// What it produces.
    type Out;
    /// Does it.
    fn with<S: Scheme, A: Arch>(self) -> Self::Out;
    /// Does it with a scheme registered at run time, through the instantiation that
    /// scheme stored for this kind of job ([`Registered::job`]); `None` when it stored
    /// none (the default, for jobs no registered scheme supports).
    fn with_registered(self, scheme: &Registered, arch: &str) -> Option<Self::Out> {
        let _ = (scheme, arch);
        None
    }
}

/// A scheme added at run time by a program built on lazymm, with the instantiations of
/// each host over it (see the module doc).
///
/// # Invariants
/// Each entry of `jobs` is keyed by the `TypeId` of the function-pointer type it holds.
pub struct Registered {
    name: &'static str,
    description: &'static str,
    mutants: &'static [Mutant],
    frees_mms: bool,
    membarrier_safe: bool,
    jobs: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
}

impl Registered {
    /// The registration of `S`, described by `description` (one line, as `lazymm schemes`
    /// prints it), with no host instantiated yet: each host adds its own instantiation
    /// with its `register` function (`lazymm_engine::native::register`,
    /// `lazymm_engine::check::register`, `lazymm_sim::sim::register`,
    /// `lazymm_replay::register`; `lazymm_cli::Registry::with_scheme` calls them all).
    pub fn new<S: Scheme>(description: &'static str) -> Registered {
        Registered {
            name: S::NAME,
            description,
            mutants: S::MUTANTS,
            frees_mms: S::FREES_MMS,
            membarrier_safe: S::MEMBARRIER_SAFE,
            jobs: Vec::new(),
        }
    }

    /// Stores one instantiation: a function pointer, found again by its type.
    pub fn add_job<F: Any + Send + Sync + Copy>(&mut self, job: F) {
        self.jobs.retain(|(t, _)| *t != TypeId::of::<F>());
        self.jobs.push((TypeId::of::<F>(), Box::new(job)));
    }

    /// The instantiation of type `F`, if one was stored.
    pub fn job<F: Any + Copy>(&self) -> Option<F> {
        self.jobs
            .iter()
            .find(|(t, _)| *t == TypeId::of::<F>())
            .and_then(|(_, j)| j.downcast_ref::<F>().copied())
    }

    /// The scheme's name (`Scheme::NAME`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the scheme frees mms or promises the membarrier barrier (as
    /// `check::promises_safety` asks of a built-in scheme).
    pub fn promises_safety(&self) -> bool {
        self.frees_mms || self.membarrier_safe
    }
}

/// The schemes registered at run time, in the order they were registered. Each is leaked
/// once, at startup: lookups hand out `&'static` names.
static REGISTERED: RwLock<Vec<&'static Registered>> = RwLock::new(Vec::new());

fn registered() -> Vec<&'static Registered> {
    REGISTERED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Adds a scheme for the rest of the process. Fails on a name that is already taken,
/// by a built-in scheme or an earlier registration.
pub fn register(r: Registered) -> Result<(), String> {
    if SCHEMES.iter().any(|(n, _)| *n == r.name) || registered().iter().any(|o| o.name == r.name) {
        return Err(format!("scheme '{}' is registered twice", r.name));
    }
    let mut list = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    list.push(Box::leak(Box::new(r)));
    Ok(())
}

/// Every scheme, built-in then registered: name and one-line description.
pub fn schemes() -> Vec<(&'static str, &'static str)> {
    let mut all = SCHEMES.to_vec();
    all.extend(registered().iter().map(|r| (r.name, r.description)));
    all
}

/// The registered scheme named, if any.
pub fn registered_scheme(name: &str) -> Option<&'static Registered> {
    registered().into_iter().find(|r| r.name == name)
}

/// A name that is not in the registry, with the valid choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}' (valid: {valid})")]
pub struct Unknown {
    /// What kind of name (`scheme`, `arch`, `workload`, `mutant`).
    pub what: &'static str,
    /// The name given.
    pub value: String,
    /// The valid names, comma-separated.
    pub valid: String,
}

impl Unknown {
    fn new(what: &'static str, value: &str, valid: &[&str]) -> Unknown {
        Unknown {
            what,
            value: value.to_string(),
            valid: valid.join(", "),
        }
    }
}

macro_rules! schemes {
    ($($ty:ty, $desc:literal;)*) => {
        /// Every scheme: name (its `Scheme::NAME`) and one-line description.
        pub const SCHEMES: &[(&str, &str)] = &[$((<$ty as Scheme>::NAME, $desc)),*];

        fn by_scheme<A: Arch, V: WithKernel>(scheme: &str, v: V) -> Option<V::Out> {
            $(if scheme == <$ty as Scheme>::NAME {
                return Some(v.with::<$ty, A>());
            })*
            v.with_registered(registered_scheme(scheme)?, A::NAME)
        }

        /// Every scheme's declared mutants, in table order.
        fn scheme_mutants() -> Vec<Mutant> {
            [$(<$ty as Scheme>::MUTANTS),*].concat()
        }
    };
}

macro_rules! archs {
    ($($name:literal => $ty:ty, $desc:literal;)*) => {
        /// Every arch: name and one-line description.
        pub const ARCHS: &[(&str, &str)] = &[$(($name, $desc)),*];

        /// Every arch's declared mutants, in table order.
        fn arch_mutants() -> Vec<Mutant> {
            [$(<$ty as Arch>::MUTANTS),*].concat()
        }

        /// Every arch's declared findings (and their fixes), in table order.
        fn arch_findings() -> Vec<Mutant> {
            [$(<$ty as Arch>::FINDINGS),*].concat()
        }

        /// Every arch's declared configurations (correct schemes under a configuration
        /// that is off by default), in table order.
        fn arch_configs() -> Vec<Mutant> {
            [$(<$ty as Arch>::CONFIGS),*].concat()
        }

        /// Runs `v` with `S` on the arch named: what a registered scheme's
        /// instantiations call ([`Registered::add_job`]).
        pub fn by_arch<S: Scheme, V: WithKernel>(arch: &str, v: V) -> Option<V::Out> {
            match arch {
                $($name => Some(v.with::<S, $ty>()),)*
                _ => None,
            }
        }

        /// Runs `v` with the scheme and arch named, as concrete types.
        pub fn dispatch<V: WithKernel>(scheme: &str, arch: &str, v: V) -> Result<V::Out, Unknown> {
            let out = match arch {
                $($name => by_scheme::<$ty, V>(scheme, v),)*
                _ => return Err(Unknown::new("arch", arch, &names(ARCHS))),
            };
            out.ok_or_else(|| {
                let all = schemes();
                Unknown::new("scheme", scheme, &all.iter().map(|(n, _)| *n).collect::<Vec<_>>())
            })
        }
    };
}

schemes! {
    lazymm::scheme::Refcount, "Linux's default: every lazy CPU holds an mm_count reference";
    lazymm::scheme::Shootdown, "lazy users not counted; __mmdrop IPIs mm_cpumask and lazy CPUs switch to init_mm";
    lazymm::scheme::ShootdownDebug, "shootdown plus DEBUG_VM_SHOOT_LAZIES: also IPI every online CPU to check";
    lazymm::scheme::LazyPercpu, "no active_mm: the lazy mm is per-CPU, reachable only with irqs off; __mmdrop shootdown, piggy-backed on x86's freeing flush";
    lazymm::scheme::HazptrLuto, "Lutomirski: rq.lazy_mm hazard pointer; at mm_users == 0 scan online CPUs, hand refs via rq.drop_mm";
    lazymm::scheme::HazptrLutoCpumask, "hazptr-luto scanning only mm_cpumask(mm) at teardown";
    lazymm::scheme::HazptrMathieu, "Desnoyers: fenced per-CPU hazard slot; at mm_count == 0 scan all, IPI only holders";
    lazymm::scheme::NoRefs, "no bookkeeping, mms never freed: the lower bound, for benchmarks only";
    lazymm::scheme::NoRefsMb, "none plus the one smp_mb membarrier requires per lazy round trip: the lower bound of a correct scheme";
}

archs! {
    "generic" => lazymm::arch::Generic, "switch_mm needs prev; mm_cpumask only grows; broadcast TLB flush";
    "x86" => lazymm::arch::X86, "loaded_mm with LOADED_MM_SWITCHING, nmi_uaccess_okay; freeing flush IPIs lazy CPUs; mask trimming";
    "powerpc" => lazymm::arch::Powerpc, "switch_mm needs prev; with shootdown the final exit_mmap flush shoots lazy CPUs";
    "arm64" => lazymm::arch::Arm64, "no mm_cpumask (broadcast TLBI): shootdowns and candidate scans look at every online CPU; lazy TTBR0 saved as reserved";
}

fn names(list: &'static [(&'static str, &'static str)]) -> Vec<&'static str> {
    list.iter().map(|(n, _)| *n).collect()
}

/// Checks a scheme name (built-in or registered).
pub fn scheme(name: &str) -> Result<&'static str, Unknown> {
    schemes()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, _)| *n)
        .ok_or_else(|| {
            let all = schemes();
            Unknown::new(
                "scheme",
                name,
                &all.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
        })
}

/// Checks an arch name.
pub fn arch(name: &str) -> Result<&'static str, Unknown> {
    ARCHS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, _)| *n)
        .ok_or_else(|| Unknown::new("arch", name, &names(ARCHS)))
}

/// Every mutant the registered schemes and archs declare, in the order `lazymm schemes`
/// lists them (schemes first, then archs; each name once).
pub fn mutants() -> Vec<Mutant> {
    let mut all = scheme_mutants();
    all.extend(registered().iter().flat_map(|r| r.mutants.iter().copied()));
    all.extend(arch_mutants());
    let mut seen = std::collections::HashSet::new();
    all.retain(|m| seen.insert(m.name()));
    all
}

/// Every finding on the kernel as written that the archs declare, each followed by the
/// configuration with its fix (see `lazymm::mutant`).
pub fn findings() -> Vec<Mutant> {
    arch_findings()
}

/// Every correct scheme under a configuration the archs declare off by default
/// (`lazymm::Kind::Config`; see `lazymm::mutant`): each must stay clean.
pub fn configs() -> Vec<Mutant> {
    arch_configs()
}

/// The finding that scheme `scheme` on arch `arch` *is*, if one is declared: a finding
/// with no setting of its own, so the configuration it breaks is the plain scheme × arch
/// that `check --all` runs. `check --all` lists such a target as that finding instead of
/// failing on the properties it declares (any other violation still fails).
pub fn listed_finding(scheme: &str, arch: &str) -> Option<Mutant> {
    findings().into_iter().find(|m| {
        m.kind() == lazymm::Kind::Finding
            && m.scheme() == scheme
            && m.arch() == Some(arch)
            && m.info().configure.is_empty()
    })
}

/// Looks a mutant (or a finding, a finding's fix, or a configuration) up by name.
pub fn mutant(name: &str) -> Result<Mutant, Unknown> {
    let mut all = mutants();
    all.extend(findings());
    all.extend(configs());
    all.iter()
        .copied()
        .find(|m| m.name() == name)
        .ok_or_else(|| {
            let valid: Vec<&str> = all.iter().map(|m| m.name()).collect();
            Unknown::new("mutant", name, &valid)
        })
}

/// The workload on which the native engine reaches the race a mutant opens.
pub fn mutant_workload(m: Mutant) -> Workload {
    match m.exercise() {
        Exercise::Teardown | Exercise::LazyExec => Workload::ExitStorm,
        Exercise::Hotplug => Workload::Hotplug,
        Exercise::KthreadWork => Workload::Kthread,
        Exercise::TlbFlush => Workload::ExitStorm,
    }
}

/// Looks a workload up by name.
pub fn workload(name: &str) -> Result<Workload, Unknown> {
    Workload::from_name(name).ok_or_else(|| {
        let valid: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        Unknown::new("workload", name, &valid)
    })
}
