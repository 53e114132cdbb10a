//! `lazy-percpu`: no `active_mm` at all. The lazy mm is a per-CPU variable, reachable
//! only while interrupts are off, and teardown shoots lazy CPUs down, piggy-backed on
//! x86's freed-tables flush (never merged; the design of the 2024 discussion).
//!
//! # Where it comes from
//! Replying to Mathieu Desnoyers' hazard-pointer series ("Re: [RFC PATCH 0/4]
//! sched+mm: Track lazy active mm existence with hazard pointers", 2 Oct 2024,
//! `<CAHk-=wgztWbA4z85xKob4eS9P=Nt5h4j=HnN+Pc90expskiCRA@mail.gmail.com>`), Linus
//! Torvalds argued that not only the lazy refcount but "all of 'active_mm', is largely
//! pointless to begin with": a task switch does not lose the mm, it only has to be
//! invalidated before it is torn down, "but we do that *anyway* as part of TLB
//! flushing"; and on x86 "we ALREADY has a better replacement: it's the percpu
//! 'cpu_tlbstate'" (its `loaded_mm` "is basically the true 'active' mm", and is
//! "atomic wrt the low-level code in ways that 'current->active_mm' isn't"). Peter
//! Zijlstra answered with an `x86/lazy` branch along those lines (as the project's
//! fidelity review reports; that message is not in the archive searched here). It is
//! what Andy Lutomirski had asked for since his 2021-2022 series: no `->active_mm` for
//! anyone to follow when nothing keeps it alive.
//!
//! # The protocol
//! A task carries nothing ([`LazyPercpuTask`] has no field). The mm a kernel thread runs
//! on is the CPU's own loaded mm (x86's `cpu_tlbstate.loaded_mm`), and generic code can
//! name it only as [`Cpu::lazy_mm`]: a [`LazyMm`] borrowed from an [`IrqGuard`], which
//! cannot outlive the guard, be stored in a task, or cross to another CPU. Entering and
//! leaving lazy mode write nothing shared; leaving it is one `smp_mb()` (membarrier's
//! barrier after the `rq->curr` store, property f).
//!
//! Teardown, at `__mmdrop` (`cleanup_lazy_tlbs`):
//! - **x86** ([`Arch::FREEING_FLUSH_UNLAZIES`]): nothing. `exit_mmap`'s flush frees page
//!   tables, so it IPIs every CPU of `mm_cpumask`, lazy ones included, and a lazy CPU
//!   leaves for `init_mm` in `flush_tlb_func`. After `exit_mmap` no CPU uses the mm:
//!   nobody can start (`mm_users` is zero) and the flush moved everyone off. The
//!   shootdown is the flush the kernel sends anyway. (Bare metal without INVLPGB only:
//!   with INVLPGB, or in a KVM guest whose paravirt flush skips preempted vCPUs, no IPI
//!   reaches some lazy CPUs and the piggy-back does not hold. The model's x86 has both
//!   as configuration switches, and the checker breaks property b under each: findings
//!   `finding-lazy-percpu-x86-invlpgb` and `finding-lazy-percpu-x86-kvm-pv-flush`,
//!   `findings/lazy-percpu-x86-configs.report.txt`. Their fix,
//!   `Config::lazy_percpu_ask_flush`, asks this boot's arch instead
//!   ([`Arch::freeing_flush_unlazies`]): the fixed pairs stay clean.)
//! - **powerpc**: the final flush carries the shootdown already (`exit_flush_lazy_tlbs`,
//!   because the scheme sets `LAZY_TLB_SHOOTDOWN`), so `mm_cpumask` holds at most this
//!   CPU by `__mmdrop`, and the shootdown below is a direct call.
//! - **generic and arm64**: the final flush is a broadcast invalidation that sends no IPI
//!   and leaves the root loaded on lazy CPUs, so there is nothing to piggy-back on, and
//!   `__mmdrop` IPIs `mm_cpumask` (every online CPU on arm64, which keeps no mask), as
//!   `shootdown` does. Each CPU tests its own lazy mm, not a task's `active_mm`.
//!
//! # Why the per-CPU variable closes windows `active_mm` opens
//! The handler tests what the CPU really has loaded. In `exec_mmap` on an arch that
//! re-enables interrupts before `activate_mm`, a shootdown in the window finds the old
//! mm still loaded and moves the CPU off it, and `activate_mm` re-reads the per-CPU mm
//! under its new guard (the type system gives it no other way): the window of
//! d53c3dfb23c4 is harmless here, where under `shootdown` it frees the mm under the CPU.
//!
//! # The race it must survive, and its mutant
//! The piggy-back is sound only where the freeing flush reaches the lazy CPUs. Mutant
//! `lazy-percpu-no-shootdown` skips the shootdown on every arch, as if every
//! flush un-lazied: on an arch whose flush is a broadcast TLBI the root is freed while
//! lazy CPUs still have it loaded (b).

use super::Scheme;
use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::ipi::Ipi;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::mutant::{Exercise, Kind, Mutant, MutantInfo};
use crate::oracle::Property;

/// `lazy-percpu-no-shootdown`: `cleanup_lazy_tlbs` trusts every arch's freeing
/// flush to have moved the lazy CPUs off, as only x86's does.
pub const NO_SHOOTDOWN: Mutant = Mutant::declare(&MutantInfo {
    name: "lazy-percpu-no-shootdown",
    kind: Kind::Broken,
    scheme: "lazy-percpu",
    arch: Some("generic"),
    breaks: &[Property::B],
    exercise: Exercise::Teardown,
    description: "no shootdown at __mmdrop on an arch whose freeing flush is a broadcast TLBI: lazy CPUs keep the freed root loaded (b)",
    configure: &[],
});

/// The `lazy-percpu` scheme.
pub struct LazyPercpu {
    /// Mutant `lazy-percpu-no-shootdown`.
    no_shootdown: bool,
}

/// A task's state under `lazy-percpu`: nothing. There is no `active_mm`.
#[derive(Debug, Default)]
pub struct LazyPercpuTask;

/// A lazy use under `lazy-percpu`: a token that costs nothing; the lazy mm is the CPU's.
#[derive(Debug)]
pub struct PercpuLazy;

/// The shootdown handler: leave the mm if this CPU still runs on it.
const IPI_SHOOT_LAZY_TLB: u8 = 0;

impl Scheme for LazyPercpu {
    const NAME: &'static str = "lazy-percpu";
    const MUTANTS: &'static [Mutant] = &[NO_SHOOTDOWN];
    const LAZY_TLB_SHOOTDOWN: bool = true;
    type TaskState = LazyPercpuTask;
    type CpuLocal = ();
    type CpuShared = ();
    type LazyRef = PercpuLazy;

    fn new(cfg: &Config) -> Self {
        LazyPercpu {
            no_shootdown: cfg.is(NO_SHOOTDOWN),
        }
    }

    fn new_cpu_shared(_cpu: usize) {}

    #[inline]
    fn set_user_active_mm(_: &mut LazyPercpuTask, _: MmId) {}

    #[inline]
    fn active_mm<'g, A: Arch>(
        cpu: &Cpu<Self, A>,
        _: &LazyPercpuTask,
        irq: &'g IrqGuard,
    ) -> LazyMm<'g> {
        // The per-CPU lazy mm: alive while `irq` holds off the shootdown (or, on x86,
        // the freeing flush that replaces it).
        cpu.lazy_mm(irq)
    }

    #[inline]
    fn mmgrab_lazy_tlb<A: Arch>(
        _: &Kernel<Self, A>,
        _: &mut Cpu<Self, A>,
        _: &LazyMm<'_>,
    ) -> PercpuLazy {
        PercpuLazy
    }

    #[inline]
    fn mmdrop_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: PercpuLazy) {
        // ORDERING: the full barrier membarrier relies on after the rq->curr store
        // (finish_task_switch); pairs with membarrier()'s fence before it reads rq->curr.
        cpu.smp_mb();
    }

    #[inline]
    fn lazy_install(_: &mut (), _: &mut LazyPercpuTask, _: PercpuLazy) {}

    #[inline]
    fn lazy_take(_: &mut (), _: &mut LazyPercpuTask) -> Option<PercpuLazy> {
        // A kernel thread always runs on some lazy mm (init_mm at worst).
        Some(PercpuLazy)
    }

    #[inline]
    fn lazy_hand_over(_: &mut (), _: &mut LazyPercpuTask, _: &mut LazyPercpuTask) {}

    fn cleanup_lazy_tlbs<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, mm: MmId) {
        // As proposed, the scheme trusts the arch's default configuration; the fix of
        // its x86 findings asks this boot's arch (INVLPGB, KVM's PV flush: no).
        let flushed = if k.cfg.lazy_percpu_ask_flush {
            k.arch.freeing_flush_unlazies()
        } else {
            A::FREEING_FLUSH_UNLAZIES
        };
        if flushed || k.scheme.no_shootdown {
            // exit_mmap's flush already moved every lazy CPU to init_mm (MUTANT
            // lazy-percpu-no-shootdown: on any arch). __mmdrop checks that no
            // CPU still has the root loaded.
            return;
        }
        if k.mm(cpu, mm, "cleanup_lazy_tlbs").is_none() {
            return;
        }
        // As under `shootdown`.
        k.shoot_lazy_tlbs(cpu, mm, Ipi::Scheme(IPI_SHOOT_LAZY_TLB));
    }

    fn ipi_name(_op: u8) -> &'static str {
        "do_shoot_lazy_tlb"
    }

    fn handle_ipi<A: Arch>(k: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, op: u8, mm: MmId) {
        // If this CPU's lazy mm is the dying one, leave it for init_mm (the per-CPU
        // variable, not a task's active_mm, so what is tested is what is loaded).
        if op == IPI_SHOOT_LAZY_TLB && cpu.loaded_mm() == mm {
            debug_assert_eq!(cpu.current_mm(), None, "a user of a dying mm");
            k.switch_to_init_mm_in_irq(cpu, mm);
        }
    }
}
