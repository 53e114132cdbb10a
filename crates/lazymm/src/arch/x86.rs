//! Arch `x86`: `cpu_tlbstate` (`arch/x86/mm/tlb.c`).
//!
//! # What the CPU knows
//! Each CPU keeps `loaded_mm`, the mm its CR3 belongs to, and `is_lazy`, whether it runs
//! that mm only lazily. `switch_mm_irqs_off` ignores its `prev` argument and reads
//! `loaded_mm` instead: the arch, not the task, knows what is loaded. This is what lets
//! a scheme drop `active_mm` on x86.
//!
//! # The switch window, and NMIs
//! An NMI can hit anywhere, inside `switch_mm_irqs_off` too, and perf's NMI handler walks
//! the user stack with `copy_from_user_nmi()`. It first asks `nmi_uaccess_okay()`: is
//! `loaded_mm` the mm of `current`? During a context switch `current` is still `prev`
//! (it changes in `switch_to`, after `switch_mm`), so in the window after the CR3 write
//! and before the `loaded_mm` store, `loaded_mm == current->mm == prev` while the
//! hardware already runs `next`'s page tables. The switch therefore writes the sentinel
//! `LOADED_MM_SWITCHING` before the CR3 write and the new mm after it: an NMI in the
//! window sees the sentinel and refuses (property g). The mutant
//! `x86-no-switching-sentinel` skips the sentinel; the engine's NMIs inside the window
//! catch it.
//!
//! # Freeing page tables
//! When `exit_mmap` frees page tables, the flush IPIs every CPU in `mm_cpumask`, lazy
//! ones included: a lazy CPU's paging-structure caches could otherwise walk the freed
//! lower tables (Rik van Riel's 2018 bug; mutant `x86-no-freed-tables-flush` skips the
//! lazy CPUs again, and property b's check of the lower tables catches it). A lazy CPU handles it by switching to `init_mm` (`flush_tlb_func`), which
//! is the "no `active_mm`" proposal of 2024 falling out of the TLB flush: after
//! `exit_mmap`, no CPU has the mm loaded, so `lazy-percpu` needs no shootdown of its
//! own (`shootdown`, whose `current->active_mm` still names the mm, IPIs again). A flush that reaches a CPU no longer running the mm clears its bit (lazy
//! `mm_cpumask` trimming), so the mask shrinks back to the CPUs that may cache the mm.

use super::{cpumask_clear_cpu, cpumask_set_cpu, Arch};
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::cpumask::CpuMask;
use crate::kernel::{Config, Kernel};
use crate::mm::MmId;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo};
use crate::oracle::Property;
use crate::oracle::ViolationKind;
use crate::scheme::Scheme;
use crate::smp::Ipi;
use crate::sync::Ordering;

/// `x86-no-switching-sentinel`: no `LOADED_MM_SWITCHING` around the CR3 write.
pub const NO_SWITCHING_SENTINEL: Mutant = Mutant::declare(&MutantInfo {
    name: "x86-no-switching-sentinel",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[Property::G],
    exercise: Exercise::Teardown,
    description: "no LOADED_MM_SWITCHING: an NMI in the CR3 switch window reads user memory of the wrong mm (g)",
    configure: None,
});

/// `x86-no-freed-tables-flush`: the exit flush skips lazy CPUs (Rik van Riel's 2018
/// bug, before `freed_tables` made such flushes reach lazy CPUs too).
pub const NO_FREED_TABLES_FLUSH: Mutant = Mutant::declare(&MutantInfo {
    name: "x86-no-freed-tables-flush",
    kind: Kind::Broken,
    scheme: "refcount",
    arch: Some("x86"),
    breaks: &[Property::B],
    exercise: Exercise::Teardown,
    description: "exit_mmap's flush skips lazy CPUs: their paging-structure caches still walk the freed lower tables (b)",
    configure: None,
});

/// The `x86` arch.
pub struct X86 {
    no_sentinel: bool,
    no_freed_tables_flush: bool,
}

/// `cpu_tlbstate.loaded_mm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedMm {
    /// This mm's page tables are loaded in CR3.
    Mm(MmId),
    /// `LOADED_MM_SWITCHING`: a CR3 write is in progress.
    Switching,
}

/// `cpu_tlbstate`, the part this model needs.
///
/// # Invariants
/// Outside `switch_mm_irqs_off`, `loaded_mm` is `Mm(cr3)` and agrees with the generic
/// the generic `Cpu::loaded_mm`; inside it, with the sentinel on, it is `Switching` from before
/// the CR3 write until after it.
#[derive(Debug)]
pub struct TlbState {
    /// `cpu_tlbstate.loaded_mm`.
    pub loaded_mm: LoadedMm,
    /// `cpu_tlbstate_shared.is_lazy`. Linux shares it so that ordinary flushes can skip
    /// lazy CPUs; the only flush modelled here frees page tables, which skips no one,
    /// so only this CPU reads it.
    pub is_lazy: bool,
}

impl Default for TlbState {
    fn default() -> Self {
        TlbState {
            loaded_mm: LoadedMm::Mm(MmId::INIT),
            is_lazy: false,
        }
    }
}

/// `flush_tlb_func` for a flush that freed page tables.
const IPI_FLUSH_TLB_FUNC: u8 = 0;

/// `nmi_uaccess_okay()`: may an NMI on this CPU touch current's user memory?
pub fn nmi_uaccess_okay<S: Scheme>(cpu: &Cpu<S, X86>) -> bool {
    match cpu.arch.loaded_mm {
        LoadedMm::Switching => false,
        LoadedMm::Mm(mm) => cpu.current_mm() == Some(mm),
    }
}

impl Arch for X86 {
    const NAME: &'static str = "x86";
    // raw_spin_lock is a LOCK-prefixed cmpxchg: smp_mb__after_spinlock() is empty.
    const SPIN_LOCK_IS_FULL_BARRIER: bool = true;
    const MUTANTS: &'static [Mutant] = &[NO_SWITCHING_SENTINEL, NO_FREED_TABLES_FLUSH];
    // arch/x86/Kconfig: select ARCH_WANT_IRQS_OFF_ACTIVATE_MM.
    const IRQS_OFF_ACTIVATE_MM: bool = true;
    // The freed-tables flush below IPIs every CPU of mm_cpumask and un-lazies them (on
    // bare metal: INVLPGB and paravirt flushes send no such IPI, not modelled).
    const FREEING_FLUSH_UNLAZIES: bool = true;
    type CpuLocal = TlbState;
    type CpuShared = ();

    fn new(cfg: &Config) -> Self {
        X86 {
            no_sentinel: cfg.is(NO_SWITCHING_SENTINEL),
            no_freed_tables_flush: cfg.is(NO_FREED_TABLES_FLUSH),
        }
    }

    fn new_cpu_shared() {}

    #[inline]
    fn enter_lazy_tlb<S: Scheme>(_k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, _mm: &LazyMm<'_>) {
        if cpu.arch.loaded_mm == LoadedMm::Mm(MmId::INIT) {
            return;
        }
        cpu.arch.is_lazy = true;
    }

    #[inline]
    fn switch_mm_irqs_off<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        _prev: LazyMm<'_>,
        next: MmId,
        _irq: &IrqGuard,
    ) {
        // The argument prev is ignored: what is loaded is what cpu_tlbstate says.
        let LoadedMm::Mm(real_prev) = cpu.arch.loaded_mm else {
            unreachable!("cpu {}: switch_mm inside switch_mm", cpu.id);
        };
        cpu.arch.is_lazy = false;
        if real_prev == next {
            // Not actually switching (leaving lazy mode on the same mm): no CR3 write.
            // Even in lazy mode the CPU stayed in mm_cpumask (a flush trims only CPUs
            // that left the mm), so this finds the bit set and writes nothing; Linux's
            // CONFIG_DEBUG_VM check sets it if not.
            cpumask_set_cpu(k, cpu, next);
            return;
        }
        // Start receiving flushes for next before loading it.
        cpumask_set_cpu(k, cpu, next);
        if k.arch.no_sentinel {
            // MUTANT x86-no-switching-sentinel: loaded_mm keeps naming prev during the
            // CR3 write.
        } else {
            // INVARIANT: loaded_mm is the sentinel for the whole CR3 write.
            cpu.arch.loaded_mm = LoadedMm::Switching;
        }
        k.nmi_point(cpu);
        // load_new_mm_cr3().
        k.load_cr3(cpu, next);
        k.nmi_point(cpu);
        // INVARIANT: loaded_mm names the mm whose CR3 is now loaded.
        cpu.arch.loaded_mm = LoadedMm::Mm(next);
        cpu.set_loaded_mm(next);
    }

    fn exit_mmap_flush<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId) {
        // flush_tlb_mm_range() with freed_tables: every CPU in mm_cpumask, lazy ones too.
        let Some(m) = k.mm(cpu, mm, "flush_tlb_mm_range") else {
            return;
        };
        // ORDERING: Relaxed, as the kernel's read of mm_cpumask: the full barrier of the
        // fully ordered mm_users decrement that started teardown orders it after every
        // CPU's switch to the mm (each set its bit before loading it).
        let mut mask = m.cpumask.read(&mut cpu.acct, Ordering::Relaxed);
        if k.arch.no_freed_tables_flush {
            // MUTANT x86-no-freed-tables-flush: the flush is not marked as freeing page
            // tables, so it skips lazy CPUs (should_flush_tlb); at exit_mmap every other
            // CPU that has the mm loaded is lazy, so only this one is flushed.
            let me = cpu.id;
            mask = CpuMask::new(k.nr_cpus());
            mask.set(me);
        }
        k.on_each_cpu_mask(cpu, &mask, Ipi::Arch(IPI_FLUSH_TLB_FUNC), mm);
    }

    fn ipi_name(_op: u8) -> &'static str {
        "flush_tlb_func"
    }

    fn handle_ipi<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, op: u8, mm: MmId) {
        if op != IPI_FLUSH_TLB_FUNC {
            return;
        }
        // flush_tlb_func().
        let LoadedMm::Mm(loaded) = cpu.arch.loaded_mm else {
            unreachable!("cpu {}: flush IPI inside switch_mm", cpu.id);
        };
        if loaded != mm {
            // The CPU was left in the mm_cpumask of the target mm. Clear it.
            cpumask_clear_cpu(k, cpu, mm);
            return;
        }
        if cpu.arch.is_lazy {
            // Lazy mode: switching to init_mm is barely slower than a minimal flush and
            // keeps speculation away from the freed tables.
            k.switch_to_init_mm_in_irq(cpu, mm);
        } else {
            // The CPU runs the mm for real: it flushes its TLB and paging-structure caches.
            k.cpus[cpu.id].flush_walk_cache(mm);
        }
    }

    fn nmi<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>) {
        // perf's user stack walk: copy_from_user_nmi().
        if !nmi_uaccess_okay(cpu) {
            return;
        }
        let cr3 = cpu.cr3();
        match cpu.current_mm() {
            Some(mm) if mm == cr3 => {
                let _ = k.mm(cpu, mm, "NMI user access");
            }
            Some(mm) => k.report(cpu, mm, ViolationKind::NmiWrongMm { loaded: cr3 }),
            None => {}
        }
    }
}
