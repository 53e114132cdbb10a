//! `shootdown`: lazy users are not counted; the mm's death shoots them down
//! (`CONFIG_MMU_LAZY_TLB_SHOOTDOWN`, Nicholas Piggin, Linux 6.4, enabled on powerpc).
//!
//! # The protocol
//! On the way into lazy mode a CPU does nothing: `mmgrab_lazy_tlb` takes no reference.
//! The CPU keeps the previous mm loaded, and the kernel thread's `active_mm` names it.
//! On the way out (`finish_task_switch` of the next kernel→user switch),
//! `mmdrop_lazy_tlb` is one full fence and no shared write: no `mm_count` line bounces,
//! however many CPUs run the process's threads.
//!
//! Teardown pays instead. When `mm_count` reaches zero, `__mmdrop` calls
//! `cleanup_lazy_tlbs`, which sends a synchronous IPI to every CPU in `mm_cpumask(mm)`
//! (this one included, as a direct call). A CPU whose `current->active_mm` is the dying
//! one switches to `init_mm` in the handler. When every handler has returned, no CPU
//! has the mm loaded and it can be freed. The debug variant (`shootdown-debug`, the kernel's
//! `DEBUG_VM_SHOOT_LAZIES`) then IPIs every online CPU and reports any that still has it.
//!
//! # `active_mm`, kept and not counted
//! As merged, the shootdown kernel still has `current->active_mm`: `context_switch`
//! hands it from task to task exactly as under refcounting (`next->active_mm =
//! prev->active_mm`, `prev->active_mm = NULL`, `switch_mm_irqs_off(prev->active_mm,
//! ..)`), only no reference goes with it. The model keeps it the same way:
//! [`ShootdownTask::active_mm`] is a plain handle that nothing keeps alive, and the
//! handler tests it as `do_shoot_lazy_tlb` does (`current->active_mm == mm`), through
//! the per-CPU view of current's `active_mm` ([`ShootdownCpu`]; see the
//! [`scheme`](super) module doc for that simplification).
//!
//! What keeps `current->active_mm` valid is the shootdown itself: `__mmdrop` resets
//! it to `init_mm` on every CPU of `mm_cpumask` and waits before it frees, and the IPI
//! cannot run while interrupts are off. So a read of `current->active_mm` with
//! interrupts off names a live mm (generic code gets it as a [`LazyMm`] tied to the
//! guard); a copy kept past the guard does not. Mainline has two such copies, each
//! modelled as written: `sched_force_init_mm` (the finding in `arch/powerpc.rs`) and
//! `exec_mmap` on an arch that re-enables interrupts before `activate_mm`
//! (`Scheme::active_mm_again` passes the copy on unprotected; mutant
//! `exec-mmap-irqs-on-activate` in `arch/powerpc.rs`). Andy Lutomirski's worry was any
//! other code, "somewhere", that follows `->active_mm` believing it counted: mutant
//! `shootdown-active-mm-reader` is such code, and the arena reports its use after free.
//!
//! On x86 (no kernel builds it; a what-if) `active_mm` and the loaded mm part: a flush
//! moves a lazy CPU to `init_mm` without touching `current->active_mm`, which goes on
//! naming the mm. If that was the freeing flush of `exit_mmap`, the CPU keeps its bit
//! and `cleanup_lazy_tlbs` IPIs it again. If it was an earlier flush that reached the
//! CPU after it went lazy, the freeing flush finds `loaded_mm != mm` and clears the bit,
//! and the shootdown misses a CPU whose `current->active_mm` names the mm: the checker
//! finds this (`finding-x86-shootdown-lazy-trim`, listed by `check --all`;
//! `findings/x86-shootdown-lazy-trim.md`). `lazy-percpu` is the design that keys on the
//! loaded mm instead.
//!
//! # The race it must survive
//! The shootdown reaches only the CPUs in `mm_cpumask`, so the mask must be a superset
//! of the CPUs lazily using the mm when `cleanup_lazy_tlbs` runs (property c, checked
//! here against every CPU's hardware CR3). Generic archs never clear bits; x86 clears a
//! bit only on a CPU whose CR3 has left the mm (not its `active_mm`: see above);
//! powerpc clears bits in its final flush only after switching lazy users away. CPU hotplug broke it: powerpc's
//! `__cpu_disable` cleared the outgoing CPU from every `mm_cpumask` while that CPU was
//! still lazily on an mm, and an mm dying in that window was freed under it. The fix
//! (`sched_force_init_mm`) moves the outgoing CPU to `init_mm` first; the mutant
//! `shootdown-hotplug-race` restores the old order, and the oracle catches it.
//!
//! # Membarrier (property f)
//! With no atomic decrement on the kernel→user path, `mmdrop_lazy_tlb` issues an
//! explicit `smp_mb()`: it is the full barrier after the `rq->curr` store.

use super::Scheme;
use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::ipi::Ipi;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::mutant::{Exercise, FaultPoint, Kind, Mutant, MutantInfo, Setting};
use crate::oracle::Property;
use crate::oracle::ViolationKind;

/// `shootdown-hotplug-race`: CPU offline in the order before the fix, on powerpc (whose
/// `__cpu_disable` clears the outgoing CPU from every `mm_cpumask`).
pub const HOTPLUG_RACE: Mutant = Mutant::declare(&MutantInfo {
    name: "shootdown-hotplug-race",
    kind: Kind::Broken,
    scheme: "shootdown",
    arch: Some("powerpc"),
    breaks: &[Property::B, Property::C],
    exercise: Exercise::Hotplug,
    description:
        "pre-fix offline order: the outgoing CPU leaves every mm_cpumask while still lazy (b, c)",
    configure: &[Setting::OfflinePreFixOrder],
});

/// `shootdown-active-mm-reader`: kernel code that copies `current->active_mm` and
/// follows the copy after interrupts were on (Lutomirski: code "somewhere" that
/// dereferences `->active_mm` when nothing keeps it alive).
pub const ACTIVE_MM_READER: Mutant = Mutant::declare(&MutantInfo {
    name: "shootdown-active-mm-reader",
    kind: Kind::Broken,
    scheme: "shootdown",
    arch: None,
    breaks: &[Property::A],
    exercise: Exercise::Teardown,
    description: "a kernel thread keeps a copy of current->active_mm across interrupts and follows it: the shootdown moved the CPU off and the mm was freed (a)",
    configure: &[],
});

/// How many times the `shootdown-active-mm-reader` mutant's kernel thread takes
/// interrupts between copying `current->active_mm` and following the copy. The checker
/// sees two preemption points in that stretch either way; the length is for a run on
/// real threads, where an exit on another CPU must land inside the window: with two
/// interrupt windows, a 2-core host loaded by a second test missed the mutant in twelve
/// runs of 3·10^6 switches.
const READER_IRQ_WINDOWS: usize = 64;

/// The shootdown scheme; `DEBUG` adds the `DEBUG_VM_SHOOT_LAZIES` check.
pub struct ShootdownScheme<const DEBUG: bool> {
    /// Mutant `shootdown-active-mm-reader`.
    active_mm_reader: bool,
}

/// `shootdown`.
pub type Shootdown = ShootdownScheme<false>;
/// `shootdown-debug`: `shootdown` with `DEBUG_VM_SHOOT_LAZIES`.
pub type ShootdownDebug = ShootdownScheme<true>;

/// A task's state under `shootdown`: `task->active_mm`, which holds no reference.
#[derive(Debug, Default)]
pub struct ShootdownTask {
    /// `task->active_mm`: the mm the task runs on (its own `mm` for a user task, the
    /// inherited lazy mm for a kernel thread, `None` (NULL) for a kernel thread that is
    /// not running). Nothing keeps it alive: the shootdown resets it before the mm is
    /// freed, but only on the CPU where the task is current.
    pub active_mm: Option<MmId>,
}

/// What only this CPU touches under `shootdown`.
///
/// # Invariants
/// `active_mm` is current's `active_mm` (see the [`scheme`](super) module doc):
/// every write of current's in the model writes it too.
#[derive(Debug)]
pub struct ShootdownCpu {
    /// `current->active_mm`, as this CPU's handlers read and write it.
    active_mm: MmId,
}

impl Default for ShootdownCpu {
    fn default() -> Self {
        // A CPU boots running its idle task on init_mm.
        ShootdownCpu {
            active_mm: MmId::INIT,
        }
    }
}

/// A lazy use under `shootdown`: the lazy mm, as a plain pointer (`rq->prev_mm`) that
/// holds nothing. What keeps the mm alive is the shootdown at teardown, not this.
#[derive(Debug)]
pub struct LazyTlb(MmId);

/// `do_shoot_lazy_tlb`.
const IPI_SHOOT_LAZY_TLB: u8 = 0;
/// `do_check_lazy_tlb`.
const IPI_CHECK_LAZY_TLB: u8 = 1;

impl<const DEBUG: bool> Scheme for ShootdownScheme<DEBUG> {
    const NAME: &'static str = if DEBUG {
        "shootdown-debug"
    } else {
        "shootdown"
    };
    const LAZY_TLB_SHOOTDOWN: bool = true;
    const MUTANTS: &'static [Mutant] = if DEBUG {
        &[]
    } else {
        &[HOTPLUG_RACE, ACTIVE_MM_READER]
    };
    type TaskState = ShootdownTask;
    type CpuLocal = ShootdownCpu;
    type CpuShared = ();
    type LazyRef = LazyTlb;

    fn new(cfg: &Config) -> Self {
        ShootdownScheme {
            active_mm_reader: cfg.is(ACTIVE_MM_READER),
        }
    }

    fn new_cpu_shared(_cpu: usize) {}

    #[inline]
    fn set_user_active_mm(ts: &mut ShootdownTask, mm: MmId) {
        ts.active_mm = Some(mm);
    }

    #[inline]
    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        _: &ShootdownTask,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        // INVARIANT: current->active_mm, read with interrupts off: __mmdrop's
        // shootdown resets it before any free, and cannot run here while `irq` lives.
        LazyMm::new(cpu.scheme.active_mm, irq)
    }

    #[inline]
    fn active_mm_again<'g, A: Arch>(
        _: &Cpu<Self, A>,
        earlier: MmId,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        // The local copy the kernel keeps: interrupts were on since it was read, and a
        // shootdown may have run and the mm been freed meanwhile.
        LazyMm::unprotected(earlier, irq)
    }

    #[inline]
    fn load_current(cpu: &mut ShootdownCpu, ts: &ShootdownTask) {
        if let Some(mm) = ts.active_mm {
            cpu.active_mm = mm;
        }
    }

    #[inline]
    fn irq_active_mm<A: Arch>(cpu: &Cpu<Self, A>) -> MmId {
        cpu.scheme.active_mm
    }

    #[inline]
    fn irq_set_active_mm_init(cpu: &mut ShootdownCpu) {
        cpu.active_mm = MmId::INIT;
    }

    #[inline]
    fn mmgrab_lazy_tlb<A: Arch>(
        _: &Kernel<Self, A>,
        _: &mut Cpu<Self, A>,
        mm: &LazyMm<'_>,
    ) -> LazyTlb {
        let mm = mm.id();
        LazyTlb(mm)
    }

    #[inline]
    fn mmdrop_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: LazyTlb) {
        // ORDERING: the full barrier membarrier relies on after the rq->curr store
        // (finish_task_switch); pairs with membarrier()'s fence before it reads rq->curr.
        cpu.smp_mb();
    }

    #[inline]
    fn lazy_install(cpu: &mut ShootdownCpu, ts: &mut ShootdownTask, lazy: LazyTlb) {
        // next->active_mm = prev->active_mm (or the exiting task's own mm, which it
        // already is). In context_switch `ts` is next, current from switch_to on, with
        // interrupts off all along, so no handler sees the view early.
        ts.active_mm = Some(lazy.0);
        cpu.active_mm = lazy.0;
    }

    #[inline]
    fn lazy_take(cpu: &mut ShootdownCpu, ts: &mut ShootdownTask) -> Option<LazyTlb> {
        // rq->prev_mm = prev->active_mm; prev->active_mm = NULL.
        ts.active_mm = None;
        Some(LazyTlb(cpu.active_mm))
    }

    #[inline]
    fn lazy_hand_over(cpu: &mut ShootdownCpu, prev: &mut ShootdownTask, next: &mut ShootdownTask) {
        // next->active_mm = prev->active_mm; prev->active_mm = NULL.
        next.active_mm = Some(cpu.active_mm);
        prev.active_mm = None;
    }

    fn fault_point<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, at: FaultPoint) {
        if !k.scheme.active_mm_reader || at != FaultPoint::IrqsOn || cpu.current_mm().is_some() {
            return;
        }
        // MUTANT shootdown-active-mm-reader: a kernel thread, interrupts on, takes
        // `mm = current->active_mm` as if it were counted, ...
        let mm = cpu.scheme.active_mm;
        if mm.is_init() {
            return;
        }
        // ... takes interrupts for a while (a shootdown may move this CPU to init_mm and
        // let the mm be freed) ...
        for i in 0..READER_IRQ_WINDOWS {
            if i % (READER_IRQ_WINDOWS / 2) == 0 {
                k.preempt_point();
            }
            k.flush_smp_call_function_queue(cpu);
            core::hint::spin_loop();
        }
        k.preempt_point();
        // ... and follows its copy.
        let _ = k.mm(cpu, mm, "a copy of current->active_mm");
    }

    fn cleanup_lazy_tlbs<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) {
        if k.mm(cpu, mm, "cleanup_lazy_tlbs").is_none() {
            return;
        }
        k.shoot_lazy_tlbs(cpu, mm, Ipi::Scheme(IPI_SHOOT_LAZY_TLB));
        if DEBUG {
            let online = k.cpu_online_mask(cpu);
            k.on_each_cpu_mask(cpu, &online, Ipi::Scheme(IPI_CHECK_LAZY_TLB), mm);
        }
    }

    fn ipi_name(op: u8) -> &'static str {
        match op {
            IPI_SHOOT_LAZY_TLB => "do_shoot_lazy_tlb",
            _ => "do_check_lazy_tlb",
        }
    }

    fn handle_ipi<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, op: u8, mm: MmId) {
        match op {
            // do_shoot_lazy_tlb(): if (current->active_mm == mm) { current->active_mm =
            // &init_mm; switch_mm(mm, &init_mm, current); }
            IPI_SHOOT_LAZY_TLB if Self::irq_active_mm(cpu) == mm => {
                debug_assert_eq!(cpu.current_mm(), None, "a user of a dying mm");
                Self::irq_set_active_mm_init(&mut cpu.scheme);
                k.switch_to_init_mm_in_irq(cpu, mm);
            }
            // do_check_lazy_tlb(): WARN_ON_ONCE(current->active_mm == mm).
            IPI_CHECK_LAZY_TLB if Self::irq_active_mm(cpu) == mm => {
                k.report(cpu, mm, ViolationKind::LazyCpuNotInCpumask { lazy: cpu.id });
            }
            _ => {}
        }
    }
}
