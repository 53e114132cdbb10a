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
//! *`active_mm`*: the patch keeps `current->active_mm`, not refcounted; for a lazy
//! kernel thread it always names what the slot holds (`mmgrab_lazy_tlb` publishes
//! `active_mm`, `do_shoot_lazy_tlb` and `mmdrop_lazy_tlb` retire both). The model keeps
//! it per CPU (`MathieuCpu::active_mm`, the `active_mm` of the kernel thread running
//! there, handed from one kernel thread to the next as the kernel does), because the
//! IPI handler must change it and reaches no task. It matters when the arch moved the
//! CPU off the mm behind the core's back (x86's freed-tables flush): `active_mm` and
//! the slot still name the mm, so `sched_force_init_mm` still retires the slot.
//!
//! *Teardown*: at `mm_count == 0`, `__mmdrop` calls `cleanup_lazy_tlbs`, which is
//! `hp_scan(&hp_domain_sched_lazy_mm, mm, retire_lazy_mm_hp)` (`kernel/hp.c`): a full
//! fence, then for each possible CPU in turn an acquire load of its slot; if it holds
//! the mm, `retire_lazy_mm_hp` sends two synchronous single-CPU IPIs one after the
//! other, `do_shoot_lazy_tlb` (if `current->active_mm` is the mm: switch to `init_mm`
//! and clear the slot) and `do_check_lazy_tlb` (warns if `active_mm` is still the mm);
//! then, for every CPU, it busy-waits while the slot holds the mm. On this CPU the
//! calls run directly. A call to an offline CPU is not delivered
//! (`smp_call_function_single` returns `-ENXIO`), and nothing clears an offline CPU's
//! slot on its behalf: the patch relies on `sched_force_init_mm` having retired it
//! (its `mmdrop_lazy_tlb`) before the CPU left `cpu_online_mask`. If a slot ever
//! outlived that, the scan would wait for ever; a host that plays every CPU reports it
//! (`WaitsForever`, property e).
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
//! On kernel→user, the fence of `mmdrop_lazy_tlb_sched` is the full barrier after the
//! `rq->curr` store. The fence of `mmgrab_lazy_tlb` (the patch: "mmgrab_lazy_tlb must
//! provide a full memory barrier, see the membarrier comment finish_task_switch") also
//! replaces `switch_mm_cid`'s `smp_mb__after_mmgrab()` on user→kernel, which the patch
//! deletes ("we can use the fact that mmgrab() has a full barrier"): that barrier
//! orders the `rq->curr` store before the load of `mm->pcpu_cid[cpu]` for the mm_cid
//! allocator, which the model does not have. Everything else it orders is already
//! ordered: user accesses before the `rq->curr` store by `__schedule`'s
//! `smp_mb__after_spinlock()`, and in `exit_mm` and `kthread_unuse_mm` by their own
//! `smp_mb__after_spinlock()`; the slot store needs no fence for the lifetime argument
//! above. So dropping it alone ([`NO_PUBLISH_FENCE`]) is equivalent in this model: the
//! loom models show that it passes every litmus, and it is not listed in `MUTANTS`.
//!
//! # When the arch moves a lazy CPU
//! x86 switches lazy CPUs to `init_mm` itself when `exit_mmap` frees page tables; the
//! slot and `active_mm` keep naming the mm. The shootdown IPI then switches from what is
//! no longer loaded (x86's `switch_mm` sees `init_mm` loaded and does nothing) and
//! clears the slot.
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
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::cpumask::CpuMask;
use crate::ipi::Ipi;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo};
use crate::oracle::Property;
use crate::oracle::ViolationKind;
use crate::sync::{CachePadded, Field, Ordering, SharedU64, Tag};

/// `hazptr-mathieu-no-fence`: no full fences around the slot store and clear.
pub const NO_FENCE: Mutant = Mutant::declare(&MutantInfo {
    name: "hazptr-mathieu-no-fence",
    kind: Kind::Broken,
    scheme: "hazptr-mathieu",
    arch: None,
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "no full fences around the hazard-slot store and clear: kernel->user passes no membarrier barrier (f)",
    configure: &[],
});

/// `hazptr-mathieu-no-publish-fence`: no full fence before the slot store in
/// `mmgrab_lazy_tlb` (the clear keeps its fence). Equivalent to the correct scheme in
/// this model, which has no mm_cid (see the module doc), so deliberately not in
/// [`Scheme::MUTANTS`]: `check --mutants` could never catch it. The loom models run it
/// to show the equivalence.
pub const NO_PUBLISH_FENCE: Mutant = Mutant::declare(&MutantInfo {
    name: "hazptr-mathieu-no-publish-fence",
    kind: Kind::Broken,
    scheme: "hazptr-mathieu",
    arch: None,
    breaks: &[],
    exercise: Exercise::Teardown,
    description:
        "no full fence before the hazard-slot store: equivalent without mm_cid (not listed)",
    configure: &[],
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
    configure: &[],
});

/// The `hazptr-mathieu` scheme.
pub struct HazptrMathieu {
    /// Mutant `hazptr-mathieu-no-fence`.
    no_fence: bool,
    /// The unlisted `hazptr-mathieu-no-publish-fence`.
    no_publish_fence: bool,
    /// Mutant `hazptr-mathieu-no-clear`.
    no_clear: bool,
}

/// A task's state under `hazptr-mathieu`: nothing (there is no `active_mm`).
#[derive(Debug, Default)]
pub struct MathieuTask;

/// The token for a lazy use: the hazard pointer itself lives in the CPU's slot.
#[derive(Debug)]
pub struct MathieuLazy;

/// What a CPU keeps for itself under `hazptr-mathieu`.
///
/// # Invariants
/// `active_mm` is `MmId::INIT` or the mm this CPU's slot holds (only this CPU and its
/// own IPI handler change either).
#[derive(Debug)]
pub struct MathieuCpu {
    /// `current->active_mm` of the kernel thread running here when it uses an mm
    /// lazily (`MmId::INIT` otherwise; a user task's `active_mm` is its own mm).
    active_mm: MmId,
}

impl Default for MathieuCpu {
    fn default() -> Self {
        MathieuCpu {
            active_mm: MmId::INIT,
        }
    }
}

/// `do_shoot_lazy_tlb`: if `current->active_mm` is the mm, switch to `init_mm` and
/// clear the slot.
const IPI_SHOOT_LAZY_TLB: u8 = 0;
/// `do_check_lazy_tlb`: `WARN_ON_ONCE(current->active_mm == mm)`.
const IPI_CHECK_LAZY_TLB: u8 = 1;

impl HazptrMathieu {
    /// `smp_mb()` before the slot store (`publish`) or clear, unless a mutant dropped it.
    #[inline]
    fn slot_fence<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, publish: bool) {
        if publish && k.scheme.no_publish_fence {
            // MUTANT hazptr-mathieu-no-publish-fence: no fence before the slot store.
            return;
        }
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

    /// `smp_call_function_single(i, func, mm, 1)`: runs the call on CPU `i` (directly if
    /// it is this CPU) and waits for it; nothing happens if `i` is offline (`-ENXIO`).
    fn call_single<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        i: usize,
        op: u8,
        mm: MmId,
    ) {
        let one = CpuMask::of(k.nr_cpus(), i);
        k.on_each_cpu_mask(cpu, &one, Ipi::Scheme(op), mm);
    }
}

impl Scheme for HazptrMathieu {
    const NAME: &'static str = "hazptr-mathieu";
    const MUTANTS: &'static [Mutant] = &[NO_FENCE, NO_CLEAR];
    type TaskState = MathieuTask;
    type CpuLocal = MathieuCpu;
    type CpuShared = CachePadded<SharedU64>;
    type LazyRef = MathieuLazy;

    fn new(cfg: &Config) -> Self {
        HazptrMathieu {
            no_fence: cfg.is(NO_FENCE),
            no_publish_fence: cfg.is(NO_PUBLISH_FENCE),
            no_clear: cfg.is(NO_CLEAR),
        }
    }

    fn new_cpu_shared(cpu: usize) -> CachePadded<SharedU64> {
        CachePadded(SharedU64::new(0, Tag::new(Field::HazardSlot, cpu as u32)))
    }

    #[inline]
    fn set_user_active_mm(_: &mut MathieuTask, _: MmId) {}

    #[inline]
    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        _: &MathieuTask,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        if cpu.scheme.active_mm.is_init() {
            // A user task's own mm, or init_mm: what the CPU has loaded.
            cpu.lazy_mm(irq)
        } else {
            // current->active_mm of a lazy kernel thread, which the slot keeps alive
            // while interrupts stay off (the shootdown IPI cannot run).
            LazyMm::new(cpu.scheme.active_mm, irq)
        }
    }

    fn mmgrab_lazy_tlb<A: Arch>(
        k: &Kernel<Self, A>,
        cpu: &mut Cpu<Self, A>,
        mm: &LazyMm<'_>,
    ) -> MathieuLazy {
        let mm = mm.id();
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
        Self::slot_fence(k, cpu, true);
        // INVARIANT: the slot names the mm this CPU uses lazily. The caller holds, or
        // runs for a task that holds, a reference to mm whose fully ordered release
        // comes later (see the module doc), so mm_count is not zero and no scan of mm
        // has started.
        // ORDERING: Release pairs with the Acquire loads in `cleanup_lazy_tlbs`: a
        // scanner that sees this later value also sees the clear of the slot's previous
        // value and what came before it.
        slot.store(&mut cpu.acct, mm.encode(), Ordering::Release);
        cpu.scheme.active_mm = mm;
        MathieuLazy
    }

    fn mmdrop_lazy_tlb<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: MathieuLazy) {
        Self::slot_fence(k, cpu, false);
        cpu.scheme.active_mm = MmId::INIT;
        if k.scheme.no_clear {
            // MUTANT hazptr-mathieu-no-clear: the slot keeps naming the mm.
            return;
        }
        Self::slot_clear(k, cpu);
    }

    #[inline]
    fn lazy_install(_: &mut MathieuCpu, _: &mut MathieuTask, _: MathieuLazy) {}

    #[inline]
    fn lazy_take(_: &mut MathieuCpu, _: &mut MathieuTask) -> Option<MathieuLazy> {
        // A kernel thread always runs on some lazy mm (init_mm at worst).
        Some(MathieuLazy)
    }

    #[inline]
    fn lazy_hand_over(_: &mut MathieuCpu, _: &mut MathieuTask, _: &mut MathieuTask) {
        // next->active_mm = prev->active_mm: the per-CPU active_mm stays as it is.
    }

    fn cleanup_lazy_tlbs<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) {
        // hp_scan(): "Memory ordering: Store A before Load B."
        // ORDERING: the scan's full fence: pairs with the full fence before each slot
        // store and clear.
        cpu.smp_mb();
        let want = mm.encode();
        // for_each_possible_cpu(cpu), one CPU at a time.
        for i in 0..k.nr_cpus() {
            let slot = &k.cpus[i].scheme;
            // ORDERING: Acquire (smp_load_acquire, "Load B") pairs with the Release
            // store and clear of the slot.
            if slot.load(&mut cpu.acct, Ordering::Acquire) == want {
                // retire_lazy_mm_hp(): two synchronous single-CPU IPIs, one after the
                // other.
                Self::call_single(k, cpu, i, IPI_SHOOT_LAZY_TLB, mm);
                Self::call_single(k, cpu, i, IPI_CHECK_LAZY_TLB, mm);
            }
            // Busy-wait while the slot holds mm (nobody clears it for an offline CPU).
            let one = CpuMask::of(k.nr_cpus(), i);
            k.wait_until(cpu, &one, mm, |_, a| {
                // ORDERING: Acquire pairs with the Release clear, as above.
                slot.load(a, Ordering::Acquire) != want
            });
        }
    }

    fn ipi_name(op: u8) -> &'static str {
        match op {
            IPI_CHECK_LAZY_TLB => "do_check_lazy_tlb",
            _ => "do_shoot_lazy_tlb",
        }
    }

    fn handle_ipi<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, op: u8, mm: MmId) {
        match op {
            IPI_SHOOT_LAZY_TLB => {
                // do_shoot_lazy_tlb(): if (current->active_mm == mm).
                if cpu.scheme.active_mm != mm {
                    return;
                }
                if cpu.loaded_mm() == mm || cpu.cr3() == mm {
                    // switch_mm(mm, &init_mm, current). (Where the arch already left
                    // mm, x86's freed-tables flush, its switch_mm has nothing to do.)
                    k.switch_to_init_mm_in_irq(cpu, mm);
                }
                // current->active_mm = &init_mm; WRITE_ONCE(slot->addr, NULL).
                cpu.scheme.active_mm = MmId::INIT;
                Self::slot_clear(k, cpu);
            }
            // do_check_lazy_tlb(): WARN_ON_ONCE(current->active_mm == mm): a lazy
            // user the shootdown left on the mm about to be freed.
            IPI_CHECK_LAZY_TLB if cpu.scheme.active_mm == mm => {
                k.report(cpu, mm, ViolationKind::HazardSlotOccupied { held: mm });
            }
            _ => {}
        }
    }
}
