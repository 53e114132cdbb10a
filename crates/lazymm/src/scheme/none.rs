//! `none`: no bookkeeping at all, and mms are never freed.
//!
//! Not a scheme but a baseline: it shows what a context switch costs when a lazy use
//! costs nothing, so the benchmarks can show every real scheme as a ratio to it. It
//! never frees an mm: when the last reference goes, the slot is reused in place for the
//! next mm (`Arena::recycle`), so a churning workload does not fill the arena, and a CPU
//! still lazily on the old mm silently runs on the new one's page tables — the bug every
//! real scheme exists to prevent, which the oracle cannot see here because nothing is
//! freed. It promises nothing about membarrier (property f), and the leak check of
//! property e is off.

use super::Scheme;
use crate::arch::Arch;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::{Config, Kernel};
use crate::mm::MmId;

/// The `none` baseline.
pub struct NoRefs;

/// A task's state under `none`: nothing (there is no `active_mm`).
#[derive(Debug, Default)]
pub struct NoneTask;

/// The token for a lazy use under `none`: it costs nothing and protects nothing.
#[derive(Debug)]
pub struct NoneLazy;

impl Scheme for NoRefs {
    const NAME: &'static str = "none";
    const FREES_MMS: bool = false;
    const MEMBARRIER_SAFE: bool = false;
    type TaskState = NoneTask;
    type CpuLocal = ();
    type CpuShared = ();
    type LazyRef = NoneLazy;

    fn new(_: &Config) -> Self {
        NoRefs
    }

    fn new_cpu_shared() {}

    #[inline]
    fn set_user_active_mm(_: &mut NoneTask, _: MmId) {}

    #[inline]
    fn active_mm<'g, A: Arch>(cpu: &Cpu<Self, A>, _: &NoneTask, irq: &'g IrqGuard) -> LazyMm<'g> {
        cpu.lazy_mm(irq)
    }

    #[inline]
    fn mmgrab_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, _: &mut Cpu<Self, A>, _: MmId) -> NoneLazy {
        NoneLazy
    }

    #[inline]
    fn mmdrop_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, _: &mut Cpu<Self, A>, _: NoneLazy) {}

    #[inline]
    fn lazy_install(_: &mut (), _: &mut NoneTask, _: NoneLazy) {}

    #[inline]
    fn lazy_take(_: &mut (), _: &mut NoneTask) -> Option<NoneLazy> {
        Some(NoneLazy)
    }

    #[inline]
    fn lazy_hand_over(_: &mut (), _: &mut NoneTask, _: &mut NoneTask) {}
}
