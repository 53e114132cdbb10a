//! The `Scheme` trait: what a lazy use of an mm costs, and how teardown makes it safe.
//!
//! Generic code (`sched.rs`, `lifecycle.rs`) is written once, in the kernel's order, and
//! calls these hooks where `kernel/sched/core.c` and `kernel/fork.c` call
//! `mmgrab_lazy_tlb`, `mmdrop_lazy_tlb` and `cleanup_lazy_tlbs`. A scheme also decides
//! where a lazy reference lives between entering and leaving lazy mode: in the task's
//! `active_mm`, counted (`refcount`) or not (`shootdown`, as merged), or nowhere but the
//! CPU itself (`lazy-percpu` and the hazard-pointer models).
//!
//! # `current->active_mm` in interrupt handlers
//! The kernel's IPI handlers test `current->active_mm` (`do_shoot_lazy_tlb`, powerpc's
//! `exit_lazy_flush_tlb`), and `current` is a per-CPU pointer to the running task. The
//! model's handlers run on a [`Cpu`] and cannot reach the host's task table, so a scheme
//! that keeps an `active_mm` also keeps a per-CPU view of current's, written wherever
//! the kernel assigns `current->active_mm` ([`Scheme::lazy_install`],
//! [`Scheme::lazy_take`], [`Scheme::lazy_hand_over`], [`Scheme::load_current`] at
//! `switch_to` and after `exec_mmap` and `kthread_use_mm`, and
//! [`Scheme::irq_set_active_mm_init`] in a handler). That two-word copy of one kernel
//! word is a simplification: while the task runs, the per-CPU view is the truth.

use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::mutant::{FaultPoint, Mutant};
use core::fmt::Debug;

pub mod hazptr_luto;
pub mod hazptr_mathieu;
pub mod lazy_percpu;
pub mod none;
pub mod refcount;
pub mod shootdown;

pub use hazptr_luto::{HazptrLuto, HazptrLutoCpumask};
pub use hazptr_mathieu::HazptrMathieu;
pub use lazy_percpu::LazyPercpu;
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

    /// Per-task state. `refcount` keeps a counted `active_mm` here and `shootdown` an
    /// uncounted one; `lazy-percpu` (and the hazard-pointer models) define a type
    /// without it.
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
    /// CPU `cpu`'s shared state (its words tagged with that CPU: [`crate::sync::Tag`]).
    fn new_cpu_shared(cpu: usize) -> Self::CpuShared;

    /// A user task's `active_mm` is its own `mm` (fork, exec, `kthread_use_mm`).
    fn set_user_active_mm(ts: &mut Self::TaskState, mm: MmId);

    /// The mm `current` runs on, for `switch_mm(prev, next)` and `enter_lazy_tlb`:
    /// `current->active_mm` where the scheme keeps one, the CPU's loaded mm otherwise.
    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        ts: &Self::TaskState,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g>;

    /// The `active_mm` that generic code read as `earlier` under a guard it has since
    /// given back, used under `irq` (`exec_mmap` on an arch that re-enables interrupts
    /// before `activate_mm`). Where the scheme keeps an `active_mm`, the kernel passes
    /// its local copy on: under `refcount` the lazy reference the caller still holds
    /// keeps it alive, under `shootdown` nothing does. Where it keeps none, the borrow
    /// cannot survive the guard, so the only way to name the lazy mm again is to read
    /// it again: the CPU's loaded mm, now.
    #[inline]
    fn active_mm_again<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        _earlier: MmId,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        cpu.lazy_mm(irq)
    }

    /// `current` is `ts` (`switch_to` made it current, or generic code just assigned
    /// its `active_mm`: `exec_mmap`, `kthread_use_mm`): a scheme that keeps a per-CPU
    /// view of current's `active_mm` for its handlers (see the module doc) reloads it.
    #[inline]
    fn load_current(_cpu: &mut Self::CpuLocal, _ts: &Self::TaskState) {}

    /// `current->active_mm` as this CPU's interrupt handlers test it
    /// (`do_shoot_lazy_tlb`, powerpc's `exit_lazy_flush_tlb`). A scheme without
    /// `active_mm` answers with the mm the CPU has loaded (its per-CPU lazy mm).
    #[inline]
    fn irq_active_mm<A: Arch>(cpu: &Cpu<Self, A>) -> MmId {
        cpu.loaded_mm()
    }

    /// `current->active_mm = &init_mm` in an interrupt handler, before it switches the
    /// CPU to `init_mm` (`do_shoot_lazy_tlb`, powerpc's `exit_lazy_flush_tlb`).
    #[inline]
    fn irq_set_active_mm_init(_cpu: &mut Self::CpuLocal) {}

    /// `mmgrab_lazy_tlb(mm)`: this CPU starts using `mm` lazily. `mm` is a borrow that
    /// something else keeps alive while the hook runs (the irqs-off section of the
    /// switch, the exiting task's real reference, `init_mm`'s immortality), so the
    /// reference the scheme takes is never taken on a freed mm.
    fn mmgrab_lazy_tlb<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        mm: &LazyMm<'_>,
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

    /// The kernel's name for the handler of `Ipi::Scheme(op)`, for timelines.
    fn ipi_name(_op: u8) -> &'static str {
        "scheme IPI"
    }
}
