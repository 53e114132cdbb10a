//! `refcount`: Linux's default (`CONFIG_MMU_LAZY_TLB_REFCOUNT=y`).
//!
//! # The protocol
//! A CPU that enters lazy mode takes a real `mm_count` reference on the mm it keeps
//! loaded: on user→kernel, `context_switch` calls `mmgrab_lazy_tlb(prev->active_mm)`
//! and stores the reference in the kernel thread's `active_mm`. A kernel→kernel switch
//! hands `active_mm` (and the reference) to the next kernel thread. On kernel→user the
//! reference moves to `rq->prev_lazy_mm`, and `finish_task_switch` drops it with
//! `mmdrop_lazy_tlb` once the rq lock is released; if that was the last reference, this
//! CPU frees the mm right there.
//!
//! Teardown needs nothing extra: an mm whose `mm_count` is zero has no lazy user,
//! because each lazy user holds a count.
//!
//! # The cost
//! Every user→kernel→user round trip is an atomic increment and a fully ordered atomic
//! decrement of the same `mm_count` line. When the threads of one process block and wake
//! on many CPUs, every CPU bounces that line: this is what collapses context-switch
//! throughput on large machines.
//!
//! # Membarrier (property f)
//! The decrement is `atomic_dec_and_test`, which Linux defines as fully ordered; it is
//! the full barrier after the `rq->curr` store on the kernel→user path.
//!
//! # The race it must survive, and its mutant
//! Without the grab (`refcount-no-grab`), the last `mmput` on another CPU frees the mm
//! while this CPU still has its page tables loaded: the oracle sees the free with CR3
//! still pointing at it (b), a speculative walk of freed tables (b), or the late
//! `mmdrop` of a reference never taken (a, e). With a drop that is only
//! acquire-release (`refcount-relaxed-drop`), every lifetime stays safe but the
//! kernel→user path loses its full barrier: `membarrier()` can read the old `rq->curr`
//! while this CPU reads user memory from before membarrier's store (f).

use super::Scheme;
use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::Kernel;
use crate::mm::{MmCount, MmId};
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo};
use crate::oracle::Property;

/// `refcount-no-grab`: no `mmgrab_lazy_tlb`, so a lazy CPU holds no reference.
pub const NO_GRAB: Mutant = Mutant::declare(&MutantInfo {
    name: "refcount-no-grab",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: None,
    breaks: &[Property::A, Property::B],
    exercise: Exercise::Teardown,
    description:
        "skips mmgrab_lazy_tlb: a lazy CPU holds no mm_count, so the mm is freed under it (a, b)",
    configure: &[],
});

/// `refcount-relaxed-drop`: the lazy drop is acquire-release, not fully ordered.
pub const RELAXED_DROP: Mutant = Mutant::declare(&MutantInfo {
    name: "refcount-relaxed-drop",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: None,
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "the lazy drop in finish_task_switch is acq_rel, not fully ordered: membarrier can miss the CPU (f)",
    configure: &[],
});

/// The `refcount` scheme.
pub struct Refcount {
    no_grab: bool,
    relaxed_drop: bool,
}

/// What `current->active_mm` holds under `refcount`.
#[derive(Debug, Default)]
pub enum ActiveMm {
    /// No mm (a task that has not run yet).
    #[default]
    None,
    /// A user task's own `mm` (kept alive by its `mm_users` reference).
    Own(MmId),
    /// A kernel thread's lazily used mm, with the `mm_count` reference it holds.
    Lazy(MmCount),
}

impl ActiveMm {
    /// The mm, if any.
    pub fn id(&self) -> Option<MmId> {
        match self {
            ActiveMm::None => None,
            ActiveMm::Own(id) => Some(*id),
            ActiveMm::Lazy(r) => Some(r.id()),
        }
    }
}

/// A task's state under `refcount`: it has an `active_mm`.
///
/// # Invariants
/// - A task with an `mm` (a user task, or a kernel thread between `kthread_use_mm`
///   and `kthread_unuse_mm`) has [`ActiveMm::Own`] of that mm (fork, exec and
///   `kthread_use_mm` set it; it holds no reference of its own).
/// - [`ActiveMm::Lazy`] is held only by the kernel thread (or idle task) a CPU is
///   running lazily, from the user→kernel switch that grabbed it until the kernel→user
///   switch that moves it to `rq->prev_lazy_mm`; a kernel→kernel switch hands it over, so
///   at most one task per CPU holds one.
/// - A kernel thread that is not running has [`ActiveMm::None`].
#[derive(Debug, Default)]
pub struct RefcountTask {
    /// `task->active_mm`.
    pub active_mm: ActiveMm,
}

impl Scheme for Refcount {
    const NAME: &'static str = "refcount";
    const MUTANTS: &'static [Mutant] = &[NO_GRAB, RELAXED_DROP];
    type TaskState = RefcountTask;
    type CpuLocal = ();
    type CpuShared = ();
    type LazyRef = MmCount;

    fn new(cfg: &Config) -> Self {
        Refcount {
            no_grab: cfg.is(NO_GRAB),
            relaxed_drop: cfg.is(RELAXED_DROP),
        }
    }

    fn new_cpu_shared(_cpu: usize) {}

    fn set_user_active_mm(ts: &mut RefcountTask, mm: MmId) {
        ts.active_mm = ActiveMm::Own(mm);
    }

    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        ts: &RefcountTask,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        match ts.active_mm.id() {
            Some(id) => LazyMm::new(id, irq),
            // A task with no active_mm yet runs on whatever the CPU has loaded.
            None => cpu.lazy_mm(irq),
        }
    }

    fn mmgrab_lazy_tlb<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        mm: &LazyMm<'_>,
    ) -> MmCount {
        let mm = mm.id();
        if k.scheme.no_grab && !mm.is_init() {
            // MUTANT refcount-no-grab: pretend a reference was taken on a user mm.
            return MmCount(mm);
        }
        k.mmgrab(cpu, mm)
    }

    fn mmdrop_lazy_tlb<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, lazy: MmCount) {
        k.mmdrop(cpu, lazy);
    }

    fn mmdrop_lazy_tlb_sched<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, lazy: MmCount) {
        if k.scheme.relaxed_drop {
            // MUTANT refcount-relaxed-drop: the drop is no longer the full barrier
            // membarrier needs after the rq->curr store.
            return k.mmdrop_not_fully_ordered(cpu, lazy);
        }
        k.mmdrop(cpu, lazy);
    }

    fn lazy_install(_: &mut (), ts: &mut RefcountTask, lazy: MmCount) {
        // INVARIANT: a kernel thread's active_mm holds the lazy reference it runs on.
        ts.active_mm = ActiveMm::Lazy(lazy);
    }

    fn lazy_take(_: &mut (), ts: &mut RefcountTask) -> Option<MmCount> {
        match core::mem::take(&mut ts.active_mm) {
            ActiveMm::Lazy(r) => Some(r),
            other => {
                ts.active_mm = other;
                None
            }
        }
    }

    fn lazy_hand_over(_: &mut (), prev: &mut RefcountTask, next: &mut RefcountTask) {
        next.active_mm = core::mem::take(&mut prev.active_mm);
    }
}
