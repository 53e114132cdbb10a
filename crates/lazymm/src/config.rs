//! How a machine is set up: CPUs, arena size, the active mutant, and the kernel's
//! configuration switches (`CONFIG_DEBUG_VM`, membarrier registration, the orders before
//! a fix) that a mutant or a finding turns on through [`Setting`].

use crate::mutant::{Mutant, Setting};
use crate::profile::Profile;

/// How a machine is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated CPUs (1 to [`MAX_CPUS`](crate::MAX_CPUS)).
    pub nr_cpus: usize,
    /// mm slots besides `init_mm`; forks fail (and the host retries) when all are live.
    pub arena_capacity: usize,
    /// The active mutant, if any.
    pub mutant: Option<Mutant>,
    /// CPU offline in the order before the 2024 hotplug fix: the outgoing CPU leaves
    /// every `mm_cpumask` (powerpc's `__cpu_disable`) while still lazily on an mm, and
    /// moves to `init_mm` only as it dies. Off by default; mutants that reproduce the
    /// race turn it on.
    pub offline_pre_fix_order: bool,
    /// `sched_force_init_mm` reads the lazy mm again with interrupts off (the proposed
    /// fix; off by default: mainline reads it once, with interrupts on).
    pub force_init_mm_reread: bool,
    /// `exec_mmap` re-enables interrupts before `activate_mm` even where the arch selects
    /// `ARCH_WANT_IRQS_OFF_ACTIVATE_MM`: the order before d53c3dfb23c4 ("mm: fix exec
    /// activate_mm vs TLB shootdown and lazy tlb switching race"). Off by default; the
    /// mutant `exec-mmap-irqs-on-activate` turns it on.
    pub activate_mm_irqs_on: bool,
    /// `kthread_use_mm` re-enables interrupts between `tsk->active_mm = mm` and
    /// `switch_mm`: the order before 38cf307c1f20 ("mm: fix kthread_use_mm() vs TLB
    /// invalidate", v5.9), where `switch_mm` disabled them only inside. Off by default;
    /// the mutant `kthread-use-mm-irqs-on` turns it on.
    pub kthread_use_mm_irqs_on: bool,
    /// `exit_mm` without its `smp_mb__after_spinlock()` before `current->mm = NULL`: the
    /// order before 5bc78502322a ("sched: fix exit_mm vs membarrier (v4)", v5.10), where
    /// only `task_lock` came first (a full barrier on x86, an acquire elsewhere). Off by
    /// default; the mutant `exit-mm-no-membarrier-mb` turns it on.
    pub exit_mm_no_mb: bool,
    /// `kthread_unuse_mm` without its `smp_mb__after_spinlock()` before `tsk->mm = NULL`:
    /// the order before 618758ed3a4f ("sched: membarrier: cover kthread_use_mm (v4)",
    /// v5.10). Off by default; the mutant `kthread-unuse-mm-no-membarrier-mb` turns it on.
    pub kthread_unuse_mm_no_mb: bool,
    /// `kthread_use_mm` with no full barrier after `tsk->mm = mm` when the mm adopted is
    /// the one the thread already ran on lazily: the order before 618758ed3a4f, whose
    /// `if (active_mm != mm) mmdrop(active_mm); else smp_mb();` added the `else`. Off by
    /// default; the mutant `kthread-use-mm-no-membarrier-mb` turns it on.
    pub kthread_use_mm_no_mb: bool,
    /// `exec_mmap` without `membarrier_exec_mmap()`'s `smp_mb()` (only `task_lock`
    /// before `tsk->mm = mm`). Off by default; the mutant `exec-mmap-no-membarrier-mb`
    /// turns it on.
    pub exec_mmap_no_mb: bool,
    /// `CONFIG_DEBUG_VM`: debug checks that read kernel state (powerpc's
    /// `VM_WARN_ON_ONCE(!cpumask_test_cpu(cpu, mm_cpumask(prev)))` in `switch_mm`).
    /// Off by default, as in production kernels.
    pub debug_vm: bool,
    /// x86 with `X86_FEATURE_INVLPGB` (AMD; Rik van Riel's series, v6.15): every user
    /// mm has a global ASID, and `flush_tlb_mm_range` flushes it with an INVLPGB
    /// broadcast (`broadcast_tlb_flush`) instead of IPIs. Off by default (bare metal
    /// without INVLPGB). No effect on other archs.
    pub x86_invlpgb: bool,
    /// An x86 KVM guest with `KVM_FEATURE_PV_TLB_FLUSH`: `kvm_flush_tlb_multi` sends no
    /// flush IPI to a vCPU the host has preempted; the host flushes that vCPU's TLB when
    /// it next enters it. Off by default (bare metal). No effect on other archs.
    pub kvm_pv_tlb_flush: bool,
    /// The proposed fix of the `lazy-percpu` findings: `lazy-percpu` skips its
    /// shootdown only when this boot's arch says its freeing flush reached every lazy
    /// CPU (`Arch::freeing_flush_unlazies`), not whenever the arch's default
    /// configuration does (`Arch::FREEING_FLUSH_UNLAZIES`). Off: the scheme as proposed.
    pub lazy_percpu_ask_flush: bool,
    /// Every new mm registers for expedited membarrier as it is created, as if each
    /// process called `membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)` first
    /// thing (on by default, so property f is checked everywhere; off, no mm is
    /// registered and no scheme owes property f: what a process that never uses
    /// membarrier sees, and what `hazptr-luto`'s conditional barrier saves).
    pub membarrier_registered: bool,
    /// A lazy CPU makes a speculative page walk about once every this many interrupt
    /// points (0: never).
    pub speculative_walk_period: u32,
    /// An NMI hits a CPU about once every this many NMI points (0: never). NMI points
    /// are between the engine's steps and inside x86's CR3 switch window.
    pub nmi_period: u32,
    /// The kernel profile: the scheme-independent shared accesses the switch, the
    /// remote wakeup and idle make, and which fields share a line
    /// ([`Profile::BARE`] by default).
    pub profile: Profile,
    /// A monotonic clock in nanoseconds, for teardown timing (the model reads no clock of
    /// its own).
    pub clock: fn() -> u64,
    /// Called at every [`Kernel::preempt_point`](crate::Kernel::preempt_point): a deterministic scheduler (the checker)
    /// switches to another simulated CPU there. `None` (the default) costs one
    /// well-predicted branch per point.
    pub preempt: Option<fn()>,
    /// Called at the two preemption points of an interrupts-on window a race needs held
    /// open (`Kernel::irqs_on_window`:
    /// `sched_force_init_mm`'s, and the windows the mutants of `exec_mmap` and
    /// `kthread_use_mm` reopen) instead of [`Config::preempt`]: the checker may let every
    /// other CPU run there before this one goes on. `None`: [`Config::preempt`].
    pub window_preempt: Option<fn()>,
}

fn no_clock() -> u64 {
    0
}

impl Config {
    /// A machine of `nr_cpus` CPUs with default settings.
    pub fn new(nr_cpus: usize) -> Config {
        Config {
            nr_cpus,
            arena_capacity: 64 + 16 * nr_cpus,
            mutant: None,
            offline_pre_fix_order: false,
            force_init_mm_reread: false,
            activate_mm_irqs_on: false,
            kthread_use_mm_irqs_on: false,
            exit_mm_no_mb: false,
            kthread_unuse_mm_no_mb: false,
            kthread_use_mm_no_mb: false,
            exec_mmap_no_mb: false,
            debug_vm: false,
            x86_invlpgb: false,
            kvm_pv_tlb_flush: false,
            lazy_percpu_ask_flush: false,
            membarrier_registered: true,
            speculative_walk_period: 61,
            nmi_period: 0,
            profile: Profile::BARE,
            clock: no_clock,
            preempt: None,
            window_preempt: None,
        }
    }

    /// Turns one setting on (what a mutant's or finding's [`MutantInfo::configure`](crate::MutantInfo::configure) lists).
    pub fn apply(&mut self, setting: Setting) {
        match setting {
            Setting::OfflinePreFixOrder => self.offline_pre_fix_order = true,
            Setting::ForceInitMmReread => self.force_init_mm_reread = true,
            Setting::ActivateMmIrqsOn => self.activate_mm_irqs_on = true,
            Setting::KthreadUseMmIrqsOn => self.kthread_use_mm_irqs_on = true,
            Setting::ExitMmNoMb => self.exit_mm_no_mb = true,
            Setting::KthreadUnuseMmNoMb => self.kthread_unuse_mm_no_mb = true,
            Setting::KthreadUseMmNoMb => self.kthread_use_mm_no_mb = true,
            Setting::ExecMmapNoMb => self.exec_mmap_no_mb = true,
            Setting::DebugVm => self.debug_vm = true,
            Setting::X86Invlpgb => self.x86_invlpgb = true,
            Setting::KvmPvTlbFlush => self.kvm_pv_tlb_flush = true,
            Setting::LazyPercpuAskFlush => self.lazy_percpu_ask_flush = true,
        }
    }

    /// Whether `m` is the active mutant.
    #[inline]
    pub fn is(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }
}
