//! Arch `arm64` (`arch/arm64/include/asm/mmu_context.h`, `arch/arm64/mm/context.c`).
//!
//! # No `mm_cpumask`
//! arm64 invalidates TLBs by broadcast (`tlbi ... is`): no flush needs to know which
//! CPUs ran an mm, so `switch_mm` never sets a bit in `mm_cpumask`. Whatever must find
//! every CPU that may have an mm loaded (a lazy shootdown, a hazard-pointer scan limited
//! to candidates) has to look at every online CPU instead
//! ([`Arch::MAINTAINS_MM_CPUMASK`] is false). The final flush of `exit_mmap` is a
//! broadcast invalidation of the mm's ASID, page-walk caches included, and sends no IPI:
//! the root stays loaded on lazy CPUs, and keeping it alive is the scheme's business.
//!
//! # ASIDs
//! `switch_mm` (`check_and_switch_context`) gives the next mm an ASID if its generation
//! is stale and writes TTBR0. ASIDs are per mm, not per CPU, and are not returned when
//! an mm dies (the rollover reclaims them), so a lazy CPU's TLB may hold entries tagged
//! with a dead mm's ASID until the next rollover flush: harmless, because nothing runs
//! under that ASID again before it is reused, and reuse comes only after a full flush.
//! The model does not allocate ASIDs (a simplification): their lifetime never depends
//! on which CPU uses an mm lazily, which is all the model is about.
//!
//! # `smp_mb__after_spinlock()`
//! arm64's spinlocks are acquire-only (`LDAXR`/`CASA`), so arm64 defines
//! `smp_mb__after_spinlock()` as `smp_mb()` (`arch/arm64/include/asm/spinlock.h`): the
//! barrier `__schedule` relies on between user accesses and the `rq->curr` store.
//! `arm64-no-mb-after-spinlock` takes the generic no-op definition instead (correct
//! only for archs whose lock is a full barrier): a switch from user space stores
//! `rq->curr` with the user accesses before it still unordered, and a `membarrier()`
//! that sees the new `rq->curr` skips the CPU and may miss them (property f, its
//! user→kernel half: membarrier's scenario C).
//!
//! # `dsb(ish)` in `__switch_to`
//! `__switch_to` (`arch/arm64/kernel/process.c`, 6.12) ends every context switch with
//! `dsb(ish)`: "Complete any pending TLB or cache maintenance on this CPU in case the
//! thread migrates to a different CPU. This full barrier is also required by the
//! membarrier system call." It is arm64's full barrier between the `rq->curr` store
//! and the return to user space where `switch_mm` has none (a user→user switch; the
//! `__schedule` comment lists "switch_to() for arm64"). The model counts it as one
//! `smp_mb()` per switch ([`Arch::switch_to`]).
//!
//! # Lazy mode
//! `enter_lazy_tlb` points the task's saved TTBR0 at the reserved zero page
//! (`update_saved_ttbr0(tsk, &init_mm)`, for software PAN), so that a kernel thread's
//! uaccess faults instead of reaching the previous mm's user memory. The hardware's
//! TTBR0 may still hold the previous mm until the next switch: the model keeps it loaded,
//! as with hardware PAN, where the lazy CPU really does run on the old tables.

use super::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo, Setting};
use crate::oracle::Property;
use crate::scheme::Scheme;

/// `arm64-no-mb-after-spinlock`: `smp_mb__after_spinlock()` as the generic no-op.
pub const NO_MB_AFTER_SPINLOCK: Mutant = Mutant::declare(&MutantInfo {
    name: "arm64-no-mb-after-spinlock",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("arm64"),
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "smp_mb__after_spinlock() is a no-op on arm64: user accesses before __schedule are unordered with the rq->curr store (f)",
    configure: &[],
});

/// `arm64-no-switch-to-dsb`: `__switch_to` without its `dsb(ish)`.
pub const NO_SWITCH_TO_DSB: Mutant = Mutant::declare(&MutantInfo {
    name: "arm64-no-switch-to-dsb",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("arm64"),
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "__switch_to without dsb(ish): a user->user switch between two mms reaches user space with no full barrier after the rq->curr store (f)",
    configure: &[],
});

// The barriers membarrier needs outside `__schedule` (review 3's V5). Each lives in
// generic code, after `task_lock()`; each mutant restores the order before the barrier
// was added, which leaves the lock alone. That is still a full barrier on x86, so the
// mutants name arm64, whose spinlock is an acquire.

/// `exit-mm-no-membarrier-mb`: `exit_mm` before 5bc78502322a.
pub const EXIT_MM_NO_MB: Mutant = Mutant::declare(&MutantInfo {
    name: "exit-mm-no-membarrier-mb",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("arm64"),
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "exit_mm before 5bc78502322a: no smp_mb__after_spinlock() before current->mm = NULL, so the exiting task's user accesses are unordered with the rq->curr store (f)",
    configure: &[Setting::ExitMmNoMb],
});

/// `kthread-unuse-mm-no-membarrier-mb`: `kthread_unuse_mm` before 618758ed3a4f.
pub const KTHREAD_UNUSE_MM_NO_MB: Mutant = Mutant::declare(&MutantInfo {
    name: "kthread-unuse-mm-no-membarrier-mb",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("arm64"),
    breaks: &[Property::F],
    exercise: Exercise::KthreadWork,
    description: "kthread_unuse_mm before 618758ed3a4f: no smp_mb__after_spinlock() before tsk->mm = NULL, so the kthread's user accesses are unordered with the rq->curr store (f)",
    configure: &[Setting::KthreadUnuseMmNoMb],
});

/// `kthread-use-mm-no-membarrier-mb`: `kthread_use_mm` before 618758ed3a4f.
pub const KTHREAD_USE_MM_NO_MB: Mutant = Mutant::declare(&MutantInfo {
    name: "kthread-use-mm-no-membarrier-mb",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("arm64"),
    breaks: &[Property::F],
    exercise: Exercise::KthreadWork,
    description: "kthread_use_mm before 618758ed3a4f: adopting the mm it already ran on lazily, the kthread passes no full barrier between tsk->mm = mm and its user accesses (f)",
    configure: &[Setting::KthreadUseMmNoMb],
});

/// `exec-mmap-no-membarrier-mb`: `exec_mmap` without `membarrier_exec_mmap`'s barrier.
pub const EXEC_MMAP_NO_MB: Mutant = Mutant::declare(&MutantInfo {
    name: "exec-mmap-no-membarrier-mb",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("arm64"),
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "exec_mmap without membarrier_exec_mmap()'s smp_mb(): the old image's user accesses are unordered with tsk->mm = mm and the rq->curr view of it (f)",
    configure: &[Setting::ExecMmapNoMb],
});

/// The `arm64` arch.
pub struct Arm64 {
    /// Mutant `arm64-no-mb-after-spinlock`.
    no_mb_after_spinlock: bool,
    /// Mutant `arm64-no-switch-to-dsb`.
    no_switch_to_dsb: bool,
}

/// What an arm64 CPU keeps for itself.
#[derive(Debug, Default)]
pub struct Arm64Cpu {
    /// The saved TTBR0 of the running task points at the reserved page (lazy mode:
    /// no uaccess through the previous mm).
    pub saved_ttbr0_reserved: bool,
}

impl Arch for Arm64 {
    const NAME: &'static str = "arm64";
    const MAINTAINS_MM_CPUMASK: bool = false;
    const MUTANTS: &'static [Mutant] = &[
        NO_MB_AFTER_SPINLOCK,
        NO_SWITCH_TO_DSB,
        EXIT_MM_NO_MB,
        KTHREAD_UNUSE_MM_NO_MB,
        KTHREAD_USE_MM_NO_MB,
        EXEC_MMAP_NO_MB,
    ];
    type CpuLocal = Arm64Cpu;
    type CpuShared = ();

    fn new(cfg: &Config) -> Self {
        Arm64 {
            no_mb_after_spinlock: cfg.is(NO_MB_AFTER_SPINLOCK),
            no_switch_to_dsb: cfg.is(NO_SWITCH_TO_DSB),
        }
    }

    #[inline]
    fn smp_mb_after_spinlock<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>) {
        if k.arch.no_mb_after_spinlock {
            // MUTANT arm64-no-mb-after-spinlock: the generic empty definition.
            return;
        }
        // ORDERING: pairs with the full fence membarrier() issues after reading
        // rq->curr (the lock itself is only an acquire).
        cpu.smp_mb();
    }

    fn new_cpu_shared(_cpu: usize) {}

    #[inline]
    fn switch_to<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>) {
        if k.arch.no_switch_to_dsb {
            // MUTANT arm64-no-switch-to-dsb: no barrier here.
            return;
        }
        // __switch_to(): dsb(ish).
        // ORDERING: the full barrier membarrier needs after the rq->curr store, before
        // user space runs; pairs with the full fence membarrier() issues before it
        // reads rq->curr.
        cpu.smp_mb();
    }

    #[inline]
    fn enter_lazy_tlb<S: Scheme>(_k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, _mm: &LazyMm<'_>) {
        // update_saved_ttbr0(tsk, &init_mm).
        cpu.arch.saved_ttbr0_reserved = true;
    }

    #[inline]
    fn switch_mm_irqs_off<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        prev: LazyMm<'_>,
        next: MmId,
        _irq: &IrqGuard,
    ) {
        // switch_mm(): the task's saved TTBR0 is next's again.
        cpu.arch.saved_ttbr0_reserved = next.is_init();
        if prev.is(next) && cpu.cr3() == next {
            return;
        }
        // check_and_switch_context(next), then cpu_switch_mm(): the TTBR0 write. No
        // mm_cpumask bit: flushes are broadcast.
        k.load_cr3(cpu, next);
        cpu.set_loaded_mm(next);
    }

    fn exit_mmap_flush<S: Scheme>(k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>, mm: MmId) {
        // flush_tlb_mm(): tlbi aside1is, a broadcast of the mm's ASID, no IPI.
        k.broadcast_flush(mm);
    }
}
