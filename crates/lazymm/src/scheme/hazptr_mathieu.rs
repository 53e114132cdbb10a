//! `hazptr-mathieu`: Mathieu Desnoyers' per-CPU hazard pointer for the lazy mm (the
//! October 2024 RFC "sched+mm: Use hazard pointers to track lazy active mm existence",
//! never merged).
//!
//! # The protocol
//! Each CPU has one hazard slot, padded to its own cache line, naming the mm it uses
//! lazily.
//!
//! *Into lazy mode* (user→kernel, `exit_mm`, `kthread_unuse_mm`), `mmgrab_lazy_tlb`
//! issues a full fence and stores the mm into this CPU's slot, which must be empty: a
//! CPU uses at most one mm lazily (property d). `init_mm` is never freed and never
//! published, so the idle task's boot-time grab and `sched_force_init_mm` leave the
//! slot alone.
//!
//! *Out of lazy mode* (kernel→user, `exec_mmap` and `kthread_use_mm` from a kernel
//! thread, `sched_force_init_mm`), `mmdrop_lazy_tlb` issues a full fence and clears the
//! slot with a release store.
//!
//! *Teardown*: at `mm_count == 0`, `__mmdrop` calls `cleanup_lazy_tlbs`, which issues a
//! full fence, scans every possible CPU's slot, and sends a synchronous IPI only to the
//! CPUs whose slot holds the mm (this CPU included, by a direct call). Each one that
//! still has the mm loaded switches to `init_mm`, and clears its slot. The scanner then
//! waits until no slot holds the mm, and the mm is freed.
//!
//! # Why the lifetime is safe: causality, not the fences
//! A CPU publishes its slot before the release of a real reference that the final drop
//! must acquire: on user→kernel, before the task it switched away from can `mmput`; in
//! `exit_mm`, before the task's own `mmput`; in `kthread_unuse_mm`, before the kernel
//! thread's `mmdrop`. Those releases are fully ordered RMWs, and the CPU that sees
//! `mm_count` reach zero has acquired them all, so its scan sees the publication (or a
//! later value of the slot). The clear is a release, so a scanner that sees the slot
//! empty (or holding a later mm) also sees the CPU's switch away from the page tables.
//!
//! # Membarrier (property f)
//! The full fences are there for `membarrier()`: on kernel→user, the fence of
//! `mmdrop_lazy_tlb` is the full barrier after the `rq->curr` store.
//!
//! # When the arch moves a lazy CPU
//! x86 switches lazy CPUs to `init_mm` itself when `exit_mmap` frees page tables; the
//! slot keeps naming the mm. The shootdown IPI then finds nothing loaded to switch away
//! from and only clears the slot. An offline CPU runs nothing and takes no IPIs; a slot
//! it still holds is such a leftover (it left its lazy mm in `sched_force_init_mm`), and
//! the scanner clears it on its behalf.
//!
//! # Its mutants
//! `hazptr-mathieu-no-clear` forgets to clear the slot in `mmdrop_lazy_tlb`: the next
//! publish on that CPU finds the slot occupied (property d).
//!
//! `hazptr-mathieu-no-fence` drops both full fences and keeps the release clear. The
//! lifetime argument above never used the fences, so nothing is freed early; but a
//! kernel→user switch now reaches user space with no full barrier after the `rq->curr`
//! store, which breaks `membarrier()` (property f). A weak-memory checker sees the
//! store-buffering outcome; the native oracle sees that no full fence was counted
//! between the `rq->curr` store and the end of `finish_task_switch`.

use super::Scheme;
use crate::arch::Arch;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::cpumask::CpuMask;
use crate::kernel::{Config, Kernel};
use crate::mm::MmId;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo};
use crate::oracle::Property;
use crate::oracle::ViolationKind;
use crate::smp::Ipi;
use crate::sync::{CachePadded, Ordering, SharedU64};

/// `hazptr-mathieu-no-fence`: no full fences around the slot store and clear.
pub const NO_FENCE: Mutant = Mutant::declare(&MutantInfo {
    name: "hazptr-mathieu-no-fence",
    kind: Kind::Broken,
    scheme: "hazptr-mathieu",
    arch: None,
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "no full fences around the hazard-slot store and clear: kernel->user passes no membarrier barrier (f)",
    configure: None,
});

/// `hazptr-mathieu-no-clear`: `mmdrop_lazy_tlb` leaves the slot set.
pub const NO_CLEAR: Mutant = Mutant::declare(&MutantInfo {
    name: "hazptr-mathieu-no-clear",
    kind: Kind::Broken,
    scheme: "hazptr-mathieu",
    arch: None,
    breaks: &[Property::D],
    exercise: Exercise::Teardown,
    description:
        "mmdrop_lazy_tlb leaves the hazard slot set: the next publish finds it occupied (d)",
    configure: None,
});

/// The `hazptr-mathieu` scheme.
pub struct HazptrMathieu {
    /// Mutant `hazptr-mathieu-no-fence`.
    no_fence: bool,
    /// Mutant `hazptr-mathieu-no-clear`.
    no_clear: bool,
}

/// A task's state under `hazptr-mathieu`: nothing (there is no `active_mm`).
#[derive(Debug, Default)]
pub struct MathieuTask;

/// The token for a lazy use: the hazard pointer itself lives in the CPU's slot.
#[derive(Debug)]
pub struct MathieuLazy;

/// `do_shoot_lazy_tlb`: leave the mm if it is still loaded, and clear the slot.
const IPI_SHOOT_LAZY_TLB: u8 = 0;

impl HazptrMathieu {
    /// `smp_mb()` around the slot store and clear, unless the mutant dropped it.
    #[inline]
    fn slot_fence<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>) {
        if k.scheme.no_fence {
            // MUTANT hazptr-mathieu-no-fence: no full fence.
            return;
        }
        // ORDERING: pairs with membarrier()'s full fence between its store and its
        // reads of rq->curr (property f), and with the full fence that starts
        // `cleanup_lazy_tlbs`.
        cpu.smp_mb();
    }

    /// Clears this CPU's slot.
    #[inline]
    fn slot_clear<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>) {
        // ORDERING: Release pairs with the Acquire loads in `cleanup_lazy_tlbs`: this
        // CPU's switch away from the mm's page tables happens before a scanner that
        // sees the slot empty goes on to free them.
        k.cpus[cpu.id]
            .scheme
            .store(&mut cpu.acct, 0, Ordering::Release);
    }
}

impl Scheme for HazptrMathieu {
    const NAME: &'static str = "hazptr-mathieu";
    const MUTANTS: &'static [Mutant] = &[NO_FENCE, NO_CLEAR];
    type TaskState = MathieuTask;
    type CpuLocal = ();
    type CpuShared = CachePadded<SharedU64>;
    type LazyRef = MathieuLazy;

    fn new(cfg: &Config) -> Self {
        HazptrMathieu {
            no_fence: cfg.is(NO_FENCE),
            no_clear: cfg.is(NO_CLEAR),
        }
    }

    fn new_cpu_shared() -> CachePadded<SharedU64> {
        CachePadded(SharedU64::new(0))
    }

    #[inline]
    fn set_user_active_mm(_: &mut MathieuTask, _: MmId) {}

    #[inline]
    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        _: &MathieuTask,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        cpu.lazy_mm(irq)
    }

    fn mmgrab_lazy_tlb<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        mm: MmId,
    ) -> MathieuLazy {
        if mm.is_init() {
            // init_mm is never freed: there is nothing to protect.
            return MathieuLazy;
        }
        let slot = &k.cpus[cpu.id].scheme;
        // ORDERING: Relaxed: only this CPU (or its own IPI handler) writes its slot.
        let held = slot.load(&mut cpu.acct, Ordering::Relaxed);
        if let Some(held) = MmId::decode(held) {
            k.report(cpu, mm, ViolationKind::HazardSlotOccupied { held });
        }
        Self::slot_fence(k, cpu);
        // INVARIANT: the slot names the mm this CPU uses lazily. The caller holds, or
        // runs for a task that holds, a reference to mm whose fully ordered release
        // comes later (see the module doc), so mm_count is not zero and no scan of mm
        // has started.
        // ORDERING: Release pairs with the Acquire loads in `cleanup_lazy_tlbs`: a
        // scanner that sees this later value also sees the clear of the slot's previous
        // value and what came before it.
        slot.store(&mut cpu.acct, mm.encode(), Ordering::Release);
        MathieuLazy
    }

    fn mmdrop_lazy_tlb<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: MathieuLazy) {
        Self::slot_fence(k, cpu);
        if k.scheme.no_clear {
            // MUTANT hazptr-mathieu-no-clear: the slot keeps naming the mm.
            return;
        }
        Self::slot_clear(k, cpu);
    }

    #[inline]
    fn lazy_install(_: &mut (), _: &mut MathieuTask, _: MathieuLazy) {}

    #[inline]
    fn lazy_take(_: &mut (), _: &mut MathieuTask) -> Option<MathieuLazy> {
        // A kernel thread always runs on some lazy mm (init_mm at worst).
        Some(MathieuLazy)
    }

    #[inline]
    fn lazy_hand_over(_: &mut (), _: &mut MathieuTask, _: &mut MathieuTask) {}

    fn cleanup_lazy_tlbs<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) {
        // ORDERING: the scan's full fence (hazptr_scan's smp_mb): pairs with the full
        // fence before each slot store and clear.
        cpu.smp_mb();
        let want = mm.encode();
        let mut holders = CpuMask::new(k.nr_cpus());
        for (i, c) in k.cpus.iter().enumerate() {
            // ORDERING: Acquire pairs with the Release store and clear of the slot.
            if c.scheme.load(&mut cpu.acct, Ordering::Acquire) == want {
                holders.set(i);
            }
        }
        if holders.is_empty() {
            return;
        }
        k.on_each_cpu_mask(cpu, &holders, Ipi::Scheme(IPI_SHOOT_LAZY_TLB), mm);
        // Wait until no slot holds mm.
        for i in holders.iter() {
            let slot = &k.cpus[i].scheme;
            let one = CpuMask::of(k.nr_cpus(), i);
            k.wait_until(cpu, &one, mm, |k, a| {
                // ORDERING: Acquire pairs with the Release clear, as above.
                if slot.load(a, Ordering::Acquire) != want {
                    return true;
                }
                if !k.oracle_cpu_online(i) {
                    // An offline CPU's leftover (see the module doc): clear it for it.
                    // ORDERING: Release, as the owner's clear; Relaxed on failure.
                    let _ = slot.compare_exchange(a, want, 0, Ordering::Release, Ordering::Relaxed);
                }
                false
            });
        }
    }

    fn ipi_name(_op: u8) -> &'static str {
        "do_shoot_lazy_tlb"
    }

    fn handle_ipi<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, op: u8, mm: MmId) {
        if op != IPI_SHOOT_LAZY_TLB {
            return;
        }
        // do_shoot_lazy_tlb().
        // ORDERING: Relaxed: this CPU's own slot.
        if k.cpus[cpu.id].scheme.load(&mut cpu.acct, Ordering::Relaxed) != mm.encode() {
            return;
        }
        if cpu.loaded_mm() == mm || cpu.cr3() == mm {
            // A kernel thread still uses mm lazily: move it to init_mm.
            k.switch_to_init_mm_in_irq(cpu, mm);
        }
        Self::slot_clear(k, cpu);
    }
}
