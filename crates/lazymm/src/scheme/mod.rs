//! The `Scheme` trait: what a lazy use of an mm costs, and how teardown makes it safe.
//!
//! Generic code (`sched.rs`, `lifecycle.rs`) is written once, in the kernel's order, and
//! calls these hooks where `kernel/sched/core.c` and `kernel/fork.c` call
//! `mmgrab_lazy_tlb`, `mmdrop_lazy_tlb` and `cleanup_lazy_tlbs`. A scheme also decides
//! where a lazy reference lives between entering and leaving lazy mode: in the task's
//! `active_mm` (`refcount`) or nowhere but the CPU itself (the opt-out schemes).

use crate::arch::Arch;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::{Config, Kernel};
use crate::mm::MmId;
use crate::mutant::{FaultPoint, Mutant};
use core::fmt::Debug;

pub mod hazptr_luto;
pub mod hazptr_mathieu;
pub mod none;
pub mod refcount;
pub mod shootdown;

pub use hazptr_luto::{HazptrLuto, HazptrLutoCpumask};
pub use hazptr_mathieu::HazptrMathieu;
pub use none::{NoRefs, NoRefsMb};
pub use refcount::Refcount;
pub use shootdown::{Shootdown, ShootdownDebug};

/// One way of keeping lazily used mms alive.
pub trait Scheme: Sized + Send + Sync + 'static {
    /// The name on the command line.
    const NAME: &'static str;
    /// The deliberately broken variants of this scheme (see [`crate::mutant`]).
    const MUTANTS: &'static [Mutant] = &[];
    /// Whether mms are ever freed (`false` only for the `none` baseline).
    const FREES_MMS: bool = true;
    /// Whether the scheme promises property f (the membarrier barrier); `false` only for
    /// the `none` baseline, which does no bookkeeping at all.
    const MEMBARRIER_SAFE: bool = true;
    /// `CONFIG_MMU_LAZY_TLB_SHOOTDOWN`: lazy users are not counted, and `__mmdrop` shoots
    /// them down with IPIs to `mm_cpumask`. An arch may piggy-back that shootdown on an
    /// IPI it sends anyway (powerpc's final full-mm flush), as Linux's arch code tests
    /// the Kconfig symbol.
    const LAZY_TLB_SHOOTDOWN: bool = false;
    /// Lutomirski's `unlazy_mm_irqs_off()`: when an arch's flush IPI moves a lazy CPU
    /// to `init_mm` (x86's `flush_tlb_func`), the scheduler is told, and the CPU gives up
    /// its lazy reference there and then by running [`Scheme::finish_switch`]. Only for
    /// a scheme whose lazy reference is the CPU's own, not a task's.
    const UNLAZY_MM_IN_FLUSH: bool = false;

    /// Per-task state. `refcount` keeps `active_mm` here; schemes that opt out of
    /// refcounting define a type without it.
    type TaskState: Default + Send + Debug;
    /// Per-CPU state only the CPU itself touches.
    type CpuLocal: Default + Send;
    /// Per-CPU state other CPUs read or write, each part padded to its own line.
    type CpuShared: Send + Sync;
    /// What a CPU holds for its lazy mm from user→kernel until `finish_task_switch` of
    /// the next kernel→user switch (`rq->prev_lazy_mm`).
    type LazyRef: Send + Debug;

    /// The scheme's machine-wide state.
    fn new(cfg: &Config) -> Self;
    /// One CPU's shared state.
    fn new_cpu_shared() -> Self::CpuShared;

    /// A user task's `active_mm` is its own `mm` (fork, exec, `kthread_use_mm`).
    fn set_user_active_mm(ts: &mut Self::TaskState, mm: MmId);

    /// The mm `current` runs on, for `switch_mm(prev, next)` and `enter_lazy_tlb`:
    /// `current->active_mm` where the scheme keeps one, the CPU's loaded mm otherwise.
    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        ts: &Self::TaskState,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g>;

    /// `mmgrab_lazy_tlb(mm)`: this CPU starts using `mm` lazily.
    fn mmgrab_lazy_tlb<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        mm: MmId,
    ) -> Self::LazyRef;

    /// `mmdrop_lazy_tlb(mm)`: this CPU no longer uses the mm lazily (it has switched away).
    fn mmdrop_lazy_tlb<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, lazy: Self::LazyRef);

    /// `mmdrop_lazy_tlb_sched(mm)`: the drop in `finish_task_switch`, which must also be
    /// the full barrier membarrier needs after the `rq->curr` store (property f).
    fn mmdrop_lazy_tlb_sched<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        lazy: Self::LazyRef,
    ) {
        Self::mmdrop_lazy_tlb(k, cpu, lazy)
    }

    /// Makes `lazy` current's `active_mm` (user→kernel, `exit_mm`, `kthread_unuse_mm`).
    fn lazy_install(cpu: &mut Self::CpuLocal, ts: &mut Self::TaskState, lazy: Self::LazyRef);

    /// Takes current's lazy reference back (kernel→user, `exec_mmap` and
    /// `kthread_use_mm` from a kernel thread, `sched_force_init_mm`).
    fn lazy_take(cpu: &mut Self::CpuLocal, ts: &mut Self::TaskState) -> Option<Self::LazyRef>;

    /// kernel→kernel: `next->active_mm = prev->active_mm; prev->active_mm = NULL`.
    fn lazy_hand_over(
        cpu: &mut Self::CpuLocal,
        prev: &mut Self::TaskState,
        next: &mut Self::TaskState,
    );

    /// Where an active mutant of this scheme acts at a point no correct scheme hooks
    /// (see [`crate::mutant`]); called only while a mutant is on.
    #[inline]
    fn fault_point<A: Arch>(_k: &Kernel<Self, A>, _cpu: &mut Cpu<Self, A>, _at: FaultPoint) {}

    /// Called from `__mmput` after `exit_mmap`, when `mm_users` has reached zero.
    fn after_exit_mmap<A: Arch>(_k: &Kernel<Self, A>, _cpu: &mut Cpu<Self, A>, _mm: MmId) {}

    /// `cleanup_lazy_tlbs(mm)`: called from `__mmdrop` before the mm is freed.
    fn cleanup_lazy_tlbs<A: Arch>(_k: &Kernel<Self, A>, _cpu: &mut Cpu<Self, A>, _mm: MmId) {}

    /// Called at the end of every `finish_task_switch`, interrupts enabled.
    #[inline]
    fn finish_switch<A: Arch>(_k: &Kernel<Self, A>, _cpu: &mut Cpu<Self, A>) {}

    /// Handles an `Ipi::Scheme(op)` sent by this scheme.
    fn handle_ipi<A: Arch>(_k: &Kernel<Self, A>, _cpu: &mut Cpu<Self, A>, _op: u8, _mm: MmId) {}
}
