//! Deliberately broken variants (rcutorture's `lock_busted`), so that a green checker
//! run means something.
//!
//! A mutant is declared by the scheme or arch it breaks, next to the code it breaks
//! ([`Scheme::MUTANTS`](crate::Scheme::MUTANTS), [`Arch::MUTANTS`](crate::Arch::MUTANTS)),
//! and switched on for one machine with [`Config::mutant`](crate::Config::mutant). It
//! breaks the code in one of two ways, both greppable as `MUTANT` comments:
//! - a flag the scheme or arch reads at boot (`refcount-no-grab` skips the grab);
//! - a fix turned off in the configuration ([`MutantInfo::configure`]):
//!   `shootdown-hotplug-race` restores the CPU-offline order from before the fix.
//!
//! Generic code names no mutant. Where a mutant must act at a point the correct code
//! does not hook (scanning too early, say), generic code calls one fault point,
//! [`Kernel::fault_point`](crate::Kernel), which does nothing unless a mutant is on.
//!
//! # Findings
//! The same declaration also names a *finding*: a race in the kernel as written that
//! the checker found, with the configuration that exposes it ([`Kind::Finding`]), and
//! the same configuration with the proposed fix on, which must stay clean
//! ([`Kind::Fixed`]). Schemes and archs list them in `FINDINGS`; nothing in them is
//! broken on purpose.
//!
//! # Configurations
//! A declaration of [`Kind::Config`] names a correct scheme under a configuration that
//! is off by default (its [`MutantInfo::configure`]); nothing in it is broken either,
//! and it must stay clean. Where such a configuration breaks a scheme, the same
//! configuration is declared again as a [`Kind::Finding`] on that scheme.

use crate::mm::MmId;
use crate::oracle::Property;
use core::fmt;

/// What a mutant needs a host to exercise for its race to open (each host maps this to
/// a workload or an operation mix of its own; the model names none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exercise {
    /// Processes exiting, their mms torn down while other CPUs use them lazily.
    Teardown,
    /// Kernel workers adopting user mms with `kthread_use_mm` and giving them back
    /// with `kthread_unuse_mm`.
    KthreadWork,
    /// CPUs going offline and coming back while mms are torn down.
    Hotplug,
    /// A kernel thread leaves the mm it runs on lazily (it execs a user helper; or, for
    /// `kthread-use-mm-irqs-on`, adopts another mm with `kthread_use_mm`) while that
    /// mm's last user exits on another CPU.
    LazyExec,
    /// Threads of one process on several CPUs unmapping memory (TLB flushes that free no
    /// page tables) while CPUs switch into and out of it.
    TlbFlush,
}

impl Exercise {
    /// Whether a bounded native run of the exercise's workload opens the window often
    /// enough to catch the mutant. `LazyExec` and `TlbFlush` windows are a few
    /// instructions wide: only the checker's weighted programs (and directed tests)
    /// reach them reliably.
    pub fn caught_natively(self) -> bool {
        !matches!(self, Exercise::LazyExec | Exercise::TlbFlush)
    }

    /// How many seeded native runs (3 CPUs, 3,000,000 switches each) a test may try
    /// before it calls a mutant of this exercise missed. `Hotplug` needs more: since
    /// the kernel's wakeup placement, the `hotplug` workload's pairs mostly share a CPU
    /// and only about a hundred of its switches are lazy, so one run catches
    /// `shootdown-hotplug-race` with about one chance in three (2 of seeds 1 to 6 on a
    /// loaded 2-core host); 40 runs miss with odds of about 10^-7.
    pub fn native_seeds(self) -> u64 {
        match self {
            Exercise::Hotplug => 40,
            _ => 12,
        }
    }
}

/// A configuration switch a mutant or a finding turns on at boot
/// (`lazymm::Config::apply`): each one a kernel configuration or the order before a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// `Config::offline_pre_fix_order`: CPU offline in the order before the 2024 fix.
    OfflinePreFixOrder,
    /// `Config::force_init_mm_reread`: the proposed fix of the `sched_force_init_mm`
    /// finding.
    ForceInitMmReread,
    /// `Config::activate_mm_irqs_on`: `exec_mmap` before d53c3dfb23c4.
    ActivateMmIrqsOn,
    /// `Config::kthread_use_mm_irqs_on`: `kthread_use_mm` before 38cf307c1f20.
    KthreadUseMmIrqsOn,
    /// `Config::exit_mm_no_mb`: `exit_mm` before 5bc78502322a.
    ExitMmNoMb,
    /// `Config::kthread_unuse_mm_no_mb`: `kthread_unuse_mm` before 618758ed3a4f.
    KthreadUnuseMmNoMb,
    /// `Config::kthread_use_mm_no_mb`: `kthread_use_mm` before 618758ed3a4f.
    KthreadUseMmNoMb,
    /// `Config::exec_mmap_no_mb`: `exec_mmap` without `membarrier_exec_mmap`'s barrier.
    ExecMmapNoMb,
    /// `Config::debug_vm`: `CONFIG_DEBUG_VM`.
    DebugVm,
    /// `Config::x86_invlpgb`: x86 with `X86_FEATURE_INVLPGB`, every user mm on a global
    /// ASID flushed by INVLPGB broadcast (v6.15+).
    X86Invlpgb,
    /// `Config::kvm_pv_tlb_flush`: an x86 KVM guest with `KVM_FEATURE_PV_TLB_FLUSH`
    /// (`kvm_flush_tlb_multi` skips preempted vCPUs).
    KvmPvTlbFlush,
    /// `Config::lazy_percpu_ask_flush`: the proposed fix of the `lazy-percpu` findings.
    LazyPercpuAskFlush,
}

/// What a declaration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A deliberately broken variant: the checkers must catch it.
    Broken,
    /// The kernel as written, under a configuration that exposes a race the checker
    /// found: the checkers find it.
    Finding,
    /// A finding's configuration with its proposed fix on: must stay clean.
    Fixed,
    /// A correct scheme under a kernel or hardware configuration that is off by
    /// default (x86 INVLPGB, a KVM guest's paravirt flush): must stay clean. Archs list
    /// them in `CONFIGS`; `check --all` checks them beside the default configuration.
    Config,
}

/// A mutant's (or a finding's) declaration.
#[derive(Debug)]
pub struct MutantInfo {
    /// The name accepted on the command line.
    pub name: &'static str,
    /// A mutant, a finding, or a finding's fix.
    pub kind: Kind,
    /// The scheme it runs on (an arch mutant runs on `refcount`, the kernel's default).
    pub scheme: &'static str,
    /// The arch it needs, if it breaks an arch layer (or an arch's part of a race).
    pub arch: Option<&'static str>,
    /// The properties the oracle sees it break.
    pub breaks: &'static [Property],
    /// What a host must exercise to open its race.
    pub exercise: Exercise,
    /// What it breaks, in one line.
    pub description: &'static str,
    /// The configuration settings it turns on at boot: the fix it turns off, or the
    /// configuration a finding needs (empty for most).
    pub configure: &'static [Setting],
}

/// A handle to one declared mutant.
#[derive(Clone, Copy)]
pub struct Mutant(&'static MutantInfo);

impl Mutant {
    /// The handle of a declaration (a `const` next to the code the mutant breaks).
    pub const fn declare(info: &'static MutantInfo) -> Mutant {
        Mutant(info)
    }

    /// The declaration.
    pub fn info(self) -> &'static MutantInfo {
        self.0
    }

    /// The name accepted on the command line.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// The scheme it runs on.
    pub fn scheme(self) -> &'static str {
        self.0.scheme
    }

    /// The arch it needs, if any.
    pub fn arch(self) -> Option<&'static str> {
        self.0.arch
    }

    /// A mutant, a finding, or a finding's fix.
    pub fn kind(self) -> Kind {
        self.0.kind
    }

    /// What a host must exercise to open its race.
    pub fn exercise(self) -> Exercise {
        self.0.exercise
    }

    /// What it breaks, in one line.
    pub fn description(self) -> &'static str {
        self.0.description
    }
}

impl PartialEq for Mutant {
    fn eq(&self, other: &Mutant) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Mutant {}

impl core::hash::Hash for Mutant {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.0.name.hash(h)
    }
}

impl fmt::Debug for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mutant({})", self.0.name)
    }
}

/// Where generic code lets an active mutant act (see the module doc). Correct schemes
/// ignore every point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultPoint {
    /// In `mmput`, before `mm_users` is decremented, while the caller still holds its
    /// real reference to the mm.
    MmputEntry(MmId),
    /// At an interrupt point with interrupts enabled: the current task runs kernel code
    /// here, and pending IPIs run next (the "somewhere" of code that keeps a copy of
    /// `current->active_mm`).
    IrqsOn,
}
