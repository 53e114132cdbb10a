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
//! # Ordinary flushes trim `mm_cpumask` (review 3, V1)
//! A flush that frees no page tables (`radix__flush_tlb_mm`, `__radix__flush_tlb_range`
//! after `munmap`) first asks `flush_type_needed(mm, fullmm = false)` (6.12
//! `arch/powerpc/mm/book3s64/radix_tlb.c`), which trims the mask while the mm is alive:
//! - the flusher is the only thread of a single-threaded process (`mm_users <= 1 &&
//!   current->mm == mm`) and other CPUs are in the mask: `exit_flush_lazy_tlbs` IPIs
//!   them all (0cef77c7798a7, "flush remote CPUs out of single-threaded mm_cpumask");
//! - otherwise every [`TLB_MM_CPUMASK_TRIM_TIMER`]th such flush on a CPU
//!   (`tick_and_test_trim_clock`) does the same.
//!
//! The handler, `exit_lazy_flush_tlb`, leaves a CPU that runs the mm (`current->mm ==
//! mm`) alone, moves one that uses it lazily to `init_mm`, and clears the bit. A kthread
//! that took an `mm_users` reference with `mmget_not_zero` after the flusher read
//! `mm_users` may be adopting the mm (`kthread_use_mm`) meanwhile: since a665eec0a22e
//! ("powerpc/64s/radix: Fix mm_cpumask trimming race vs kthread_use_mm", Piggin, v5.10)
//! each CPU clears only its own bit, and only if it does not run the mm; before it, the
//! flusher reset the whole mask to itself after the IPIs (`mm_reset_thread_local`), which
//! cleared the bit of a CPU that had adopted the mm in the meantime. Mutant
//! `powerpc-trim-resets-cpumask` restores that.
//!
//! Simplifications: `mm->context.active_cpus` is the weight of the mask (the kernel
//! changes the two together in `switch_mm_irqs_off` and `exit_lazy_flush_tlb`); no
//! coprocessors (`copros`); the TLB itself is not modelled, so the local `tlbiel` and
//! the broadcast `tlbie` of a flush change nothing the model observes. The model's only
//! ordinary flush is `zap_page_range`, made by a task of the mm on its own mm, so the
//! branches for `current->mm != mm` (asynchronous flush sources) are not reached. The
//! trims run under the schemes with `LAZY_TLB_SHOOTDOWN`, the only lazy-TLB mode a
//! Book3S-64 kernel has had since it selected `MMU_LAZY_TLB_SHOOTDOWN` (v6.2): the
//! handler sets `current->active_mm = &init_mm` and drops the lazy reference
//! (`mmdrop_lazy_tlb`) from an interrupt, which the model's schemes that count lazy
//! references have no hook for.
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

/// `powerpc-trim-resets-cpumask`: the single-threaded trim before a665eec0a22e.
pub const TRIM_RESETS_CPUMASK: Mutant = Mutant::declare(&MutantInfo {
    name: "powerpc-trim-resets-cpumask",
    kind: Kind::Broken,
    scheme: "shootdown",
    arch: Some("powerpc"),
    breaks: &[Property::A, Property::B, Property::C],
    exercise: Exercise::TlbFlush,
    description: "the single-threaded trim before a665eec0a22e: after exit_flush_lazy_tlbs the flusher resets mm_cpumask to itself (mm_reset_thread_local), clearing the bit of a kthread that adopted the mm with mmget_not_zero + kthread_use_mm meanwhile; the teardown misses that CPU (c, b, a)",
    configure: &[],
});

/// `powerpc-no-membarrier-arch-switch-mm`: `switch_mm_irqs_off` without
/// `membarrier_arch_switch_mm`.
pub const NO_MEMBARRIER_ARCH_SWITCH_MM: Mutant = Mutant::declare(&MutantInfo {
    name: "powerpc-no-membarrier-arch-switch-mm",
    kind: Kind::Broken,
    scheme: "shootdown",
    arch: Some("powerpc"),
    breaks: &[Property::F],
    exercise: Exercise::Teardown,
    description: "switch_mm_irqs_off without membarrier_arch_switch_mm(): a user->user switch to a registered mm whose mask already has this CPU passes no full barrier after the rq->curr store (f)",
    configure: &[],
});

/// `kthread-use-mm-irqs-on`: `kthread_use_mm` before 38cf307c1f20. Its window (the
/// exit flush of the worker's lazy mm landing between `tsk->active_mm = mm` and
/// `switch_mm`, and the teardown finishing before the switch) is an interrupts-on
/// window the checker holds open (`Kernel::irqs_on_window`); the `lazy-exec` mix's
/// adopting half lines the programs up. `crates/lazymm-engine/tests/kthread_use_mm.rs`
/// also searches it directly.
pub const KTHREAD_USE_MM_IRQS_ON: Mutant = Mutant::declare(&MutantInfo {
    name: "kthread-use-mm-irqs-on",
    kind: Kind::Broken,
    scheme: "shootdown",
    arch: Some("powerpc"),
    breaks: &[Property::B, Property::C],
    exercise: Exercise::LazyExec,
    description: "kthread_use_mm before 38cf307c1f20: irqs on between tsk->active_mm = mm and switch_mm, so the exit flush IPI of the old lazy mm sees active_mm == the new mm, clears the bit and leaves the old mm loaded (b, c)",
    configure: &[Setting::KthreadUseMmIrqsOn],
});

/// `tlb_mm_cpumask_trim_timer` (radix_tlb.c): a CPU's flushes of a multi-threaded mm
/// trim the mask once in this many (`tick_and_test_trim_clock`).
pub const TLB_MM_CPUMASK_TRIM_TIMER: u32 = 1073;

/// The `powerpc` arch.
pub struct Powerpc {
    /// MUTANT `powerpc-trim-resets-cpumask`.
    trim_resets_cpumask: bool,
    /// MUTANT `powerpc-no-membarrier-arch-switch-mm`.
    no_membarrier_arch_switch_mm: bool,
}

/// Per-CPU state of the powerpc layer.
#[derive(Debug, Default)]
pub struct PowerpcCpu {
    /// `mm_cpumask_trim_clock`: this CPU's flushes since its last periodic trim.
    mm_cpumask_trim_clock: u32,
}

/// `do_exit_flush_lazy_tlb`.
const IPI_EXIT_FLUSH_LAZY_TLB: u8 = 0;

impl Powerpc {
    /// `tick_and_test_trim_clock()`: whether this flush is the CPU's periodic trim.
    fn tick_and_test_trim_clock(c: &mut PowerpcCpu) -> bool {
        c.mm_cpumask_trim_clock += 1;
        if c.mm_cpumask_trim_clock == TLB_MM_CPUMASK_TRIM_TIMER {
            c.mm_cpumask_trim_clock = 0;
            return true;
        }
        false
    }

    /// `exit_flush_lazy_tlbs(mm)`: `smp_call_function_many(mm_cpumask(mm),
    /// do_exit_flush_lazy_tlb, mm, 1)`, to the other CPUs of the mask, waiting for them.
    /// The caller has issued the full fence before the mask is read.
    fn exit_flush_lazy_tlbs<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        let Some(m) = k.mm(cpu, mm, "exit_flush_lazy_tlbs") else {
            return;
        };
        // ORDERING: Relaxed, ordered by the caller's full fence.
        let mut others = m.cpumask.read(&mut cpu.acct, Ordering::Relaxed);
        others.clear(cpu.id);
        k.on_each_cpu_mask(cpu, &others, Ipi::Arch(IPI_EXIT_FLUSH_LAZY_TLB), mm);
    }

    /// `flush_type_needed(mm, false)` as the flush of a task of `mm` (`current->mm ==
    /// mm`) asks it: trims the mask where the kernel does (see the module doc). What it
    /// returns (none, a local `tlbiel`, a broadcast `tlbie`) changes nothing the model
    /// observes, so it returns nothing.
    fn flush_type_needed<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        debug_assert_eq!(cpu.current_mm(), Some(mm), "flush of an mm by another task");
        let me = cpu.id;
        let Some(m) = k.mm(cpu, mm, "flush_type_needed") else {
            return;
        };
        // ORDERING: Relaxed, as the kernel's atomic_read(&mm->context.active_cpus) and
        // cpumask_test_cpu: ordered by the caller's full fence.
        let mask = m.cpumask.read(&mut cpu.acct, Ordering::Relaxed);
        let active_cpus = mask.weight();
        if active_cpus == 0 || (active_cpus == 1 && mask.test(me)) {
            // FLUSH_TYPE_NONE, or FLUSH_TYPE_LOCAL: nobody else to trim.
            return;
        }
        // Not fullmm (exit_mmap's flush is Arch::exit_mmap_flush), no coprocessors.
        // ORDERING: Relaxed, as atomic_read(&mm->mm_users).
        let single_threaded = m.mm_users.load(&mut cpu.acct, Ordering::Relaxed) <= 1;
        if single_threaded {
            // The only thread of a single-threaded process: trim the rest of the mask.
            Self::exit_flush_lazy_tlbs(k, cpu, mm);
            if k.arch.trim_resets_cpumask {
                // MUTANT powerpc-trim-resets-cpumask: mm_reset_thread_local(mm), as
                // before a665eec0a22e: cpumask_clear(mm_cpumask(mm)), then this CPU's
                // bit. A CPU that adopted the mm since the IPIs loses its bit too.
                for i in 0..k.nr_cpus() {
                    if i != me {
                        // ORDERING: Relaxed, as cpumask_clear.
                        m.cpumask.clear(&mut cpu.acct, i, Ordering::Relaxed);
                    }
                }
            }
            // FLUSH_TYPE_LOCAL.
            return;
        }
        if Self::tick_and_test_trim_clock(&mut cpu.arch) {
            // Occasionally try to trim the mask; current->mm == mm, so FLUSH_TYPE_LOCAL.
            Self::exit_flush_lazy_tlbs(k, cpu, mm);
        }
        // Otherwise FLUSH_TYPE_GLOBAL: a broadcast tlbie, no IPI.
    }
}

impl Arch for Powerpc {
    const NAME: &'static str = "powerpc";
    const MUTANTS: &'static [Mutant] = &[
        EXEC_IRQS_ON_ACTIVATE,
        KTHREAD_USE_MM_IRQS_ON,
        TRIM_RESETS_CPUMASK,
        NO_MEMBARRIER_ARCH_SWITCH_MM,
    ];
    const FINDINGS: &'static [Mutant] = &[FORCE_INIT_MM_DEBUG_VM, FORCE_INIT_MM_REREAD];
    // arch/powerpc/Kconfig: select ARCH_WANT_IRQS_OFF_ACTIVATE_MM.
    const IRQS_OFF_ACTIVATE_MM: bool = true;
    type CpuLocal = PowerpcCpu;
    type CpuShared = ();

    fn new(cfg: &Config) -> Self {
        Powerpc {
            trim_resets_cpumask: cfg.is(TRIM_RESETS_CPUMASK),
            no_membarrier_arch_switch_mm: cfg.is(NO_MEMBARRIER_ARCH_SWITCH_MM),
        }
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
        let mut new_on_cpu = false;
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
                new_on_cpu = true;
            }
        }
        // Nothing else to do if we aren't actually switching.
        if prev.is(next) {
            return;
        }
        // MUTANT powerpc-no-membarrier-arch-switch-mm: the call is left out.
        if !new_on_cpu && !k.arch.no_membarrier_arch_switch_mm {
            // membarrier_arch_switch_mm(prev, next, tsk): only when the CPU was already
            // in next's mask (otherwise the barrier after setting the bit serves; B4).
            k.membarrier_arch_switch_mm(cpu, next);
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
        Self::exit_flush_lazy_tlbs(k, cpu, mm);
        // Then the broadcast tlbie of the whole PID, page walk cache included.
        k.broadcast_flush(mm);
    }

    fn flush_tlb_mm<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        // radix__flush_tlb_mm / __radix__flush_tlb_range (not fullmm).
        // ORDERING: smp_mb() "Order loads of mm_cpumask (in flush_type_needed) vs
        // previous stores to clear ptes before the invalidate": pairs with the full
        // barrier after a switching CPU sets its bit in switch_mm_irqs_off.
        cpu.smp_mb();
        // Only the shootdown kernels' trims are modelled (see the module doc).
        if S::LAZY_TLB_SHOOTDOWN {
            Self::flush_type_needed(k, cpu, mm);
        }
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
