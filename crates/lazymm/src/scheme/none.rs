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
//!
//! # `none-mb`
//! The second lower bound: `none` plus the full barrier membarrier requires on a lazy
//! round trip. No correct scheme can come within a fixed ratio of `none` on every host,
//! because every correct scheme must give `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`
//! its full barrier after the `rq->curr` store of a kernel→user switch (property f).
//! `none-mb` pays exactly that: its `mmdrop_lazy_tlb` is one `smp_mb()` (the same barrier
//! as `shootdown`'s), and nothing else; it promises property f (`MEMBARRIER_SAFE`, which
//! the oracle checks) and, like `none`, never frees an mm. A scheme's cost beyond
//! `none-mb` is what it pays beyond the one barrier any correct scheme must pay.

use super::Scheme;
use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::Kernel;
use crate::mm::MmId;

/// The `none` baselines; `MB` adds membarrier's full barrier (`none-mb`).
pub struct NoRefsScheme<const MB: bool>;

/// The `none` baseline.
pub type NoRefs = NoRefsScheme<false>;
/// The `none-mb` baseline: `none` plus membarrier's full barrier.
pub type NoRefsMb = NoRefsScheme<true>;

/// A task's state under `none`: nothing (there is no `active_mm`).
#[derive(Debug, Default)]
pub struct NoneTask;

/// The token for a lazy use under `none`: it costs nothing and protects nothing.
#[derive(Debug)]
pub struct NoneLazy;

impl<const MB: bool> Scheme for NoRefsScheme<MB> {
    const NAME: &'static str = if MB { "none-mb" } else { "none" };
    const FREES_MMS: bool = false;
    const MEMBARRIER_SAFE: bool = MB;
    type TaskState = NoneTask;
    type CpuLocal = ();
    type CpuShared = ();
    type LazyRef = NoneLazy;

    fn new(_: &Config) -> Self {
        NoRefsScheme
    }

    fn new_cpu_shared(_cpu: usize) {}

    #[inline]
    fn set_user_active_mm(_: &mut NoneTask, _: MmId) {}

    #[inline]
    fn active_mm<'g, A: Arch>(cpu: &Cpu<Self, A>, _: &NoneTask, irq: &'g IrqGuard) -> LazyMm<'g> {
        cpu.lazy_mm(irq)
    }

    #[inline]
    fn mmgrab_lazy_tlb<A: Arch>(
        _: &Kernel<Self, A>,
        _: &mut Cpu<Self, A>,
        _: &LazyMm<'_>,
    ) -> NoneLazy {
        NoneLazy
    }

    #[inline]
    fn mmdrop_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: NoneLazy) {
        if MB {
            // ORDERING: the full barrier membarrier relies on after the rq->curr store
            // (finish_task_switch); pairs with membarrier()'s fence before it reads
            // rq->curr.
            cpu.smp_mb();
        }
    }

    #[inline]
    fn lazy_install(_: &mut (), _: &mut NoneTask, _: NoneLazy) {}

    #[inline]
    fn lazy_take(_: &mut (), _: &mut NoneTask) -> Option<NoneLazy> {
        Some(NoneLazy)
    }

    #[inline]
    fn lazy_hand_over(_: &mut (), _: &mut NoneTask, _: &mut NoneTask) {}
}
