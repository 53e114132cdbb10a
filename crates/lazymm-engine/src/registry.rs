//! The registry: every scheme, arch, workload and mutant by name, and the one place that
//! turns names into monomorphised model types.
//!
//! To add a scheme, add one line to `schemes!` below; its mutants come with it (the
//! scheme declares them, `Scheme::MUTANTS`). `lazymm schemes`, `run`, `bench` and `check`
//! pick both up from here.

use crate::workload::Workload;
use lazymm::{Arch, Exercise, Mutant, Scheme};

/// Something to do with one (scheme, arch) pair, as concrete types.
pub trait WithKernel {
    /// What it produces.
    type Out;
    /// Does it.
    fn with<S: Scheme, A: Arch>(self) -> Self::Out;
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
    ($($name:literal => $ty:ty, $desc:literal;)*) => {
        /// Every scheme: name and one-line description.
        pub const SCHEMES: &[(&str, &str)] = &[$(($name, $desc)),*];

        fn by_scheme<A: Arch, V: WithKernel>(scheme: &str, v: V) -> Option<V::Out> {
            match scheme {
                $($name => Some(v.with::<$ty, A>()),)*
                _ => None,
            }
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

        /// Runs `v` with the scheme and arch named, as concrete types.
        pub fn dispatch<V: WithKernel>(scheme: &str, arch: &str, v: V) -> Result<V::Out, Unknown> {
            let out = match arch {
                $($name => by_scheme::<$ty, V>(scheme, v),)*
                _ => return Err(Unknown::new("arch", arch, &names(ARCHS))),
            };
            out.ok_or_else(|| Unknown::new("scheme", scheme, &names(SCHEMES)))
        }
    };
}

schemes! {
    "refcount" => lazymm::scheme::Refcount, "Linux's default: every lazy CPU holds an mm_count reference";
    "shootdown" => lazymm::scheme::Shootdown, "lazy users not counted; __mmdrop IPIs mm_cpumask and lazy CPUs switch to init_mm";
    "shootdown-debug" => lazymm::scheme::ShootdownDebug, "shootdown plus DEBUG_VM_SHOOT_LAZIES: also IPI every online CPU to check";
    "hazptr-luto" => lazymm::scheme::HazptrLuto, "Lutomirski: rq.lazy_mm hazard pointer; at mm_users == 0 scan online CPUs, hand refs via rq.drop_mm";
    "hazptr-luto-cpumask" => lazymm::scheme::HazptrLutoCpumask, "hazptr-luto scanning only mm_cpumask(mm) at teardown";
    "hazptr-mathieu" => lazymm::scheme::HazptrMathieu, "Desnoyers: fenced per-CPU hazard slot; at mm_count == 0 scan all, IPI only holders";
    "none" => lazymm::scheme::NoRefs, "no bookkeeping, mms never freed: the lower bound, for benchmarks only";
    "none-mb" => lazymm::scheme::NoRefsMb, "none plus the one smp_mb membarrier requires per lazy round trip: the lower bound of a correct scheme";
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

/// Checks a scheme name.
pub fn scheme(name: &str) -> Result<&'static str, Unknown> {
    SCHEMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, _)| *n)
        .ok_or_else(|| Unknown::new("scheme", name, &names(SCHEMES)))
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

/// Looks a mutant (or a finding, or a finding's fix) up by name.
pub fn mutant(name: &str) -> Result<Mutant, Unknown> {
    let mut all = mutants();
    all.extend(findings());
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
        Exercise::Teardown => Workload::ExitStorm,
        Exercise::Hotplug => Workload::Hotplug,
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
