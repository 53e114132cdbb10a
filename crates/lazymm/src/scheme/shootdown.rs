//! `shootdown`: lazy users are not counted; the mm's death shoots them down
//! (`CONFIG_MMU_LAZY_TLB_SHOOTDOWN`, Nicholas Piggin, Linux 6.4, enabled on powerpc).
//!
//! # The protocol
//! On the way into lazy mode a CPU does nothing: `mmgrab_lazy_tlb` takes no reference,
//! and there is no `active_mm` to store one in. The CPU simply keeps the previous mm
//! loaded. On the way out (`finish_task_switch` of the next kernel→user switch),
//! `mmdrop_lazy_tlb` is one full fence and no shared write: no `mm_count` line bounces,
//! however many CPUs run the process's threads.
//!
//! Teardown pays instead. When `mm_count` reaches zero, `__mmdrop` calls
//! `cleanup_lazy_tlbs`, which sends a synchronous IPI to every CPU in `mm_cpumask(mm)`
//! (this one included, as a direct call). A CPU whose lazily loaded mm is the dying one
//! switches to `init_mm` in the handler. When every handler has returned, no CPU has the
//! mm loaded and it can be freed. The debug variant (`shootdown-debug`, the kernel's
//! `DEBUG_VM_SHOOT_LAZIES`) then IPIs every online CPU and reports any that still has it.
//!
//! # Why generic code may still name the lazy mm
//! A lazy CPU holds nothing, so the mm it runs on may be freed at any moment, except
//! while interrupts are disabled on that CPU: the shootdown is an IPI, and it cannot run
//! there until interrupts come back on, and `__mmdrop` waits for it. So the only way to
//! reach the lazy mm is [`Cpu::lazy_mm`], a borrow of the CPU tied to an
//! [`IrqGuard`]: it cannot outlive the guard, cannot move to another CPU, and cannot be
//! stored in the task, which under this scheme has no `active_mm` field at all.
//!
//! # The race it must survive
//! The shootdown reaches only the CPUs in `mm_cpumask`, so the mask must be a superset
//! of the CPUs lazily using the mm when `cleanup_lazy_tlbs` runs (property c, checked
//! here against every CPU's hardware CR3). Generic archs never clear bits; x86 clears a
//! bit only on a CPU that has stopped using the mm; powerpc clears bits in its final
//! flush only after switching lazy users away. CPU hotplug broke it: powerpc's
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
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::{Config, Kernel};
use crate::mm::MmId;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo};
use crate::oracle::Property;
use crate::oracle::ViolationKind;
use crate::smp::Ipi;

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
    configure: Some(|cfg| cfg.offline_pre_fix_order = true),
});

/// The shootdown scheme; `DEBUG` adds the `DEBUG_VM_SHOOT_LAZIES` check.
pub struct ShootdownScheme<const DEBUG: bool>;

/// `shootdown`.
pub type Shootdown = ShootdownScheme<false>;
/// `shootdown-debug`: `shootdown` with `DEBUG_VM_SHOOT_LAZIES`.
pub type ShootdownDebug = ShootdownScheme<true>;

/// A task's state under `shootdown`: nothing. There is no `active_mm`.
#[derive(Debug, Default)]
pub struct ShootdownTask;

/// A lazy use under `shootdown`: a token that costs nothing. What keeps the mm alive is
/// the shootdown at teardown, not this.
#[derive(Debug)]
pub struct LazyTlb;

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
    const MUTANTS: &'static [Mutant] = if DEBUG { &[] } else { &[HOTPLUG_RACE] };
    type TaskState = ShootdownTask;
    type CpuLocal = ();
    type CpuShared = ();
    type LazyRef = LazyTlb;

    fn new(_: &Config) -> Self {
        ShootdownScheme
    }

    fn new_cpu_shared() {}

    #[inline]
    fn set_user_active_mm(_: &mut ShootdownTask, _: MmId) {}

    #[inline]
    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        _: &ShootdownTask,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        cpu.lazy_mm(irq)
    }

    #[inline]
    fn mmgrab_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, _: &mut Cpu<Self, A>, _: MmId) -> LazyTlb {
        LazyTlb
    }

    #[inline]
    fn mmdrop_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: LazyTlb) {
        // ORDERING: the full barrier membarrier relies on after the rq->curr store
        // (finish_task_switch); pairs with membarrier()'s fence before it reads rq->curr.
        cpu.smp_mb();
    }

    #[inline]
    fn lazy_install(_: &mut (), _: &mut ShootdownTask, _: LazyTlb) {}

    #[inline]
    fn lazy_take(_: &mut (), _: &mut ShootdownTask) -> Option<LazyTlb> {
        Some(LazyTlb)
    }

    #[inline]
    fn lazy_hand_over(_: &mut (), _: &mut ShootdownTask, _: &mut ShootdownTask) {}

    fn cleanup_lazy_tlbs<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) {
        if k.mm(cpu, mm, "cleanup_lazy_tlbs").is_none() {
            return;
        }
        // mm_cpumask(mm) (every online CPU on an arch that does not maintain it). The
        // full fences of the mm_count decrement that brought us here order this read
        // after every CPU's last switch to the mm, each of which set its bit before
        // loading the mm and before releasing its own reference.
        let mask = k.mm_cpus(cpu, mm);
        // Property c: the mask must cover every CPU that still has the mm loaded.
        for (i, c) in k.cpus.iter().enumerate() {
            if !mask.test(i) && c.oracle_cr3() == mm {
                k.report(cpu, mm, ViolationKind::LazyCpuNotInCpumask { lazy: i });
            }
        }
        k.on_each_cpu_mask(cpu, &mask, Ipi::Scheme(IPI_SHOOT_LAZY_TLB), mm);
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
            // do_shoot_lazy_tlb(): if current->active_mm == mm, leave it for init_mm.
            IPI_SHOOT_LAZY_TLB if cpu.loaded_mm() == mm => {
                debug_assert_eq!(cpu.current_mm(), None, "a user of a dying mm");
                k.switch_to_init_mm_in_irq(cpu, mm);
            }
            // do_check_lazy_tlb(): WARN_ON_ONCE(current->active_mm == mm).
            IPI_CHECK_LAZY_TLB if cpu.loaded_mm() == mm || cpu.cr3() == mm => {
                k.report(cpu, mm, ViolationKind::LazyCpuNotInCpumask { lazy: cpu.id });
            }
            _ => {}
        }
    }
}
