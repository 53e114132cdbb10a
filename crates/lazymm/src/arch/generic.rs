//! Arch `generic`: the least an architecture does.
//!
//! `switch_mm(prev, next)` loads `next` and sets this CPU's bit in `mm_cpumask(next)`;
//! bits are never cleared, so the mask grows to every CPU that ever ran the mm. The TLB
//! flush that ends `exit_mmap` is a broadcast invalidation (as arm64's `tlbi ... is`),
//! so freeing page tables sends no IPIs: a lazy CPU keeps the root loaded, and after the
//! flush its speculative walks find only cleared entries. What keeps the root itself
//! alive is the scheme's business.
//!
//! # membarrier
//! Every arch must give membarrier a full barrier between the `rq->curr` store and the
//! return to user space (the comment in `__schedule`). `generic` gives it as the archs
//! that select `CONFIG_ARCH_HAS_MEMBARRIER_CALLBACKS` (powerpc, riscv) do:
//! `membarrier_arch_switch_mm` in `switch_mm`, an `smp_mb()` when the mm switched to is
//! registered for expedited membarrier and differs from the one left, a user mm (a
//! kernel→user switch back to the lazy mm, or from `init_mm`, gets its barrier from the
//! scheme's `mmdrop_lazy_tlb`; riscv issues one there too, which `generic` leaves out,
//! a simplification: the model's `generic` is no particular arch).

use super::{cpumask_set_cpu, Arch};
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::scheme::Scheme;

/// The `generic` arch.
pub struct Generic;

impl Arch for Generic {
    const NAME: &'static str = "generic";
    type CpuLocal = ();
    type CpuShared = ();

    fn new(_: &Config) -> Self {
        Generic
    }

    fn new_cpu_shared(_cpu: usize) {}

    #[inline(always)]
    fn switch_mm_irqs_off<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        prev: LazyMm<'_>,
        next: MmId,
        _irq: &IrqGuard,
    ) {
        if !prev.is(next) || cpu.cr3() != next {
            cpumask_set_cpu(k, cpu, next);
            if !prev.is(next) && !prev.is_init() {
                // membarrier_arch_switch_mm(prev, next, tsk).
                k.membarrier_arch_switch_mm(cpu, next);
            }
            k.load_cr3(cpu, next);
        }
        cpu.set_loaded_mm(next);
    }

    fn exit_mmap_flush<S: Scheme>(k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>, mm: MmId) {
        // A broadcast invalidation: every CPU's cached walks of mm go, with no IPI.
        k.broadcast_flush(mm);
    }
}
