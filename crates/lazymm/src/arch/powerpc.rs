//! Arch `powerpc`: 64-bit Book3S with the radix MMU (`arch/powerpc/mm/book3s64/`).
//!
//! # Switching
//! `switch_mm_irqs_off(prev, next)` needs `prev`: it marks `next` used on this CPU
//! (setting the `mm_cpumask` bit, then a full barrier so the bit is visible before any
//! page-table walk through `next`), and returns without touching the MMU when
//! `prev == next`. A wrong `prev` would skip a needed switch or check the wrong mask,
//! so `prev` must be what is really loaded: `active_mm` under `refcount`, the CPU's
//! borrowed lazy mm ([`Cpu::lazy_mm`]) under the opt-out schemes.
//!
//! # The final flush carries the shootdown
//! With `CONFIG_MMU_LAZY_TLB_SHOOTDOWN`, the full-mm flush at the end of `exit_mmap`
//! (`radix__tlb_flush` with `fullmm`) IPIs the other CPUs of `mm_cpumask` anyway
//! (`exit_flush_lazy_tlbs`): each one that runs the mm lazily switches to `init_mm`
//! there, and clears its bit. So when `cleanup_lazy_tlbs` runs at `__mmdrop`, the mask
//! holds at most this CPU (the exiting task's own lazy use, handled by a direct call),
//! and the shootdown usually sends no IPI at all. Without shootdown, the final flush is
//! a broadcast `tlbie` and sends nothing.
//!
//! # exec
//! powerpc selects `ARCH_WANT_IRQS_OFF_ACTIVATE_MM`: `exec_mmap` keeps interrupts off
//! from the `active_mm` swap through `activate_mm`. Before d53c3dfb23c4 it did not, and
//! with shootdown the final flush's IPI could land in between: `exit_lazy_flush_tlb`
//! found `current->active_mm` already the new mm, cleared this CPU's bit and left the
//! old mm loaded, so `cleanup_lazy_tlbs` missed it and the mm was freed under the CPU.
//! Mutant `exec-mmap-irqs-on-activate` restores that order.
//!
//! # Hotplug
//! `__cpu_disable` clears the outgoing CPU from every live mm's `mm_cpumask`
//! (`cleanup_cpu_mmu_context` → `clear_tasks_mm_cpumask`). That is safe only once the
//! CPU has left any lazy mm for `init_mm` (`sched_force_init_mm`); before that fix, an
//! mm dying in the window escaped the shootdown (mutant `shootdown-hotplug-race`).

use super::{cpumask_clear_cpu, cpumask_set_cpu, Arch};
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::ipi::Ipi;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo, Setting};
use crate::oracle::{Property, ViolationKind};
use crate::scheme::Scheme;
use crate::sync::Ordering;

/// Finding: mainline `sched_force_init_mm` reads `current->active_mm` with interrupts
/// on; under `CONFIG_MMU_LAZY_TLB_SHOOTDOWN` the exit flush's IPI can move the outgoing
/// CPU to `init_mm` in that window, the mm is freed, and `switch_mm_irqs_off` then
/// follows the stale `prev` in `CONFIG_DEBUG_VM`'s `mm_cpumask(prev)` check.
pub const FORCE_INIT_MM_DEBUG_VM: Mutant = Mutant::declare(&MutantInfo {
    name: "finding-force-init-mm-debug-vm",
    kind: Kind::Finding,
    scheme: "shootdown",
    arch: Some("powerpc"),
    breaks: &[Property::A, Property::W],
    exercise: Exercise::Hotplug,
    description: "mainline sched_force_init_mm with CONFIG_DEBUG_VM: switch_mm reads mm_cpumask(prev) of an mm freed while irqs were on (a), or warns on a live one whose bit an IPI cleared (w)",
    configure: &[Setting::DebugVm],
});

/// The same configuration with the re-read under interrupts off: clean.
pub const FORCE_INIT_MM_REREAD: Mutant = Mutant::declare(&MutantInfo {
    name: "fixed-force-init-mm-reread",
    kind: Kind::Fixed,
    scheme: "shootdown",
    arch: Some("powerpc"),
    breaks: &[],
    exercise: Exercise::Hotplug,
    description: "the finding's configuration with sched_force_init_mm reading the lazy mm again with irqs off: clean",
    configure: &[Setting::DebugVm, Setting::ForceInitMmReread],
});

/// `exec-mmap-irqs-on-activate`: `exec_mmap` re-enables interrupts before
/// `activate_mm`, as before d53c3dfb23c4 ("mm: fix exec activate_mm vs TLB shootdown
/// and lazy tlb switching race", with "powerpc: select ARCH_WANT_IRQS_OFF_ACTIVATE_MM").
pub const EXEC_IRQS_ON_ACTIVATE: Mutant = Mutant::declare(&MutantInfo {
    name: "exec-mmap-irqs-on-activate",
    kind: Kind::Broken,
    scheme: "shootdown",
    arch: Some("powerpc"),
    breaks: &[Property::B, Property::C],
    exercise: Exercise::LazyExec,
    description: "exec_mmap enables irqs before activate_mm: the exit flush IPI sees active_mm == the new mm, clears the bit and leaves the old mm loaded (b, c)",
    configure: &[Setting::ActivateMmIrqsOn],
});

/// The `powerpc` arch.
pub struct Powerpc;

/// `do_exit_flush_lazy_tlb`.
const IPI_EXIT_FLUSH_LAZY_TLB: u8 = 0;

impl Arch for Powerpc {
    const NAME: &'static str = "powerpc";
    const MUTANTS: &'static [Mutant] = &[EXEC_IRQS_ON_ACTIVATE];
    const FINDINGS: &'static [Mutant] = &[FORCE_INIT_MM_DEBUG_VM, FORCE_INIT_MM_REREAD];
    // arch/powerpc/Kconfig: select ARCH_WANT_IRQS_OFF_ACTIVATE_MM.
    const IRQS_OFF_ACTIVATE_MM: bool = true;
    type CpuLocal = ();
    type CpuShared = ();

    fn new(_: &Config) -> Self {
        Powerpc
    }

    fn new_cpu_shared(_cpu: usize) {}

    #[inline]
    fn switch_mm_irqs_off<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        prev: LazyMm<'_>,
        next: MmId,
        _irq: &IrqGuard,
    ) {
        // Mark this context as used on this CPU.
        if !next.is_init() {
            let me = cpu.id;
            let marked = k
                .mm(cpu, next, "switch_mm next")
                .is_none_or(|m| m.cpumask.test(&mut cpu.acct, me, Ordering::Relaxed));
            if !marked {
                cpumask_set_cpu(k, cpu, next);
                // ORDERING: the bit is visible before this CPU's first page-table walk
                // through next; pairs with the full barrier a flusher issues before it
                // reads mm_cpumask (radix__flush_tlb_mm's smp_mb).
                cpu.smp_mb();
            }
        }
        // Nothing else to do if we aren't actually switching.
        if prev.is(next) {
            return;
        }
        // switch_mmu_context(prev, next): the PID register write.
        k.load_cr3(cpu, next);
        if k.cfg.debug_vm {
            // VM_WARN_ON_ONCE(!cpumask_test_cpu(cpu, mm_cpumask(prev))): prev is
            // followed, so a stale prev is a use after free; a live prev whose bit this
            // CPU no longer has (an exit_lazy_flush_tlb IPI cleared it) fires the
            // warning (linuxppc/issues#469). init_mm's mask is not modelled: the kernel
            // sets each CPU in it as the CPU comes up (start_secondary) and no hotplug
            // or flush clears it, so the check always passes for it.
            let me = cpu.id;
            let prev_mm = if prev.id().is_init() {
                None
            } else {
                k.mm(cpu, prev.id(), "switch_mm prev (CONFIG_DEBUG_VM)")
            };
            if let Some(m) = prev_mm {
                // ORDERING: Relaxed, as the kernel's cpumask_test_cpu.
                if !m.cpumask.test(&mut cpu.acct, me, Ordering::Relaxed) {
                    k.report(
                        cpu,
                        prev.id(),
                        ViolationKind::DebugWarn {
                            check: "VM_WARN_ON_ONCE(!cpumask_test_cpu(cpu, mm_cpumask(prev))) in switch_mm_irqs_off",
                        },
                    );
                }
            }
        }
        cpu.set_loaded_mm(next);
    }

    fn exit_mmap_flush<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        if !S::LAZY_TLB_SHOOTDOWN {
            // __flush_all_mm(mm, fullmm): a broadcast tlbie (RIC_FLUSH_ALL: the page
            // walk cache too), no IPIs.
            k.broadcast_flush(mm);
            return;
        }
        // Shootdown IPIs everyone in mm_cpumask soon anyway, so do it as part of the
        // final flush: exit_flush_lazy_tlbs(), to the other CPUs of the mask.
        // ORDERING: the full fence before reading mm_cpumask, as before every flush that
        // reads it: pairs with the switching CPU's bit set and CR3 load, so a CPU that
        // loaded the mm is in the mask read below.
        cpu.smp_mb();
        let Some(m) = k.mm(cpu, mm, "exit_flush_lazy_tlbs") else {
            return;
        };
        // ORDERING: Relaxed, ordered by the full fence above.
        let mut others = m.cpumask.read(&mut cpu.acct, Ordering::Relaxed);
        others.clear(cpu.id);
        k.on_each_cpu_mask(cpu, &others, Ipi::Arch(IPI_EXIT_FLUSH_LAZY_TLB), mm);
        // Then the broadcast tlbie of the whole PID, page walk cache included.
        k.broadcast_flush(mm);
    }

    fn ipi_name(_op: u8) -> &'static str {
        "do_exit_flush_lazy_tlb"
    }

    fn handle_ipi<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, op: u8, mm: MmId) {
        if op != IPI_EXIT_FLUSH_LAZY_TLB {
            return;
        }
        // do_exit_flush_lazy_tlb() → exit_lazy_flush_tlb(). A kthread that adopted the
        // mm keeps it and its bit.
        if cpu.current_mm() == Some(mm) {
            return;
        }
        if S::irq_active_mm(cpu) == mm {
            // A kernel thread uses mm as its lazy mm: current->active_mm = &init_mm,
            // and switch it to init_mm.
            S::irq_set_active_mm_init(&mut cpu.scheme);
            k.switch_to_init_mm_in_irq(cpu, mm);
        }
        cpumask_clear_cpu(k, cpu, mm);
    }

    fn cpu_disable<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>) {
        // cleanup_cpu_mmu_context() → clear_tasks_mm_cpumask(cpu). Linux walks the
        // live processes under RCU; here an mm that dies between the snapshot and the
        // clear is skipped, not reported, since this is not a use of the mm.
        let me = cpu.id;
        for mm in k.arena.live_ids() {
            if let Ok(m) = k.arena.get(mm) {
                if m.cpumask.test(&mut cpu.acct, me, Ordering::Relaxed) {
                    // ORDERING: Relaxed, as cpumask_clear_cpu; the shootdown that must
                    // not miss this CPU is exactly what the fixed order makes moot.
                    m.cpumask.clear(&mut cpu.acct, me, Ordering::Relaxed);
                }
            }
        }
    }
}
