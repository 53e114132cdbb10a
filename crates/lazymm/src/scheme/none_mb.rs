//! `none-mb`: `none` plus the full barrier membarrier requires on a lazy round trip.
//!
//! The second lower bound of the benchmarks. `none` pays nothing, so no correct scheme
//! can come within a fixed ratio of it on every host: every correct scheme must at least
//! give `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` its full barrier after the
//! `rq->curr` store of a kernel→user switch (property f), and that barrier costs what a
//! full fence costs on the host. `none-mb` pays exactly that and nothing else: its
//! `mmdrop_lazy_tlb` is one `smp_mb()` (the same barrier as `shootdown`'s), it keeps no
//! reference, writes no shared line and, like `none`, never frees an mm (the slot is
//! recycled in place; see [`super::none`] for what that leaves unprotected). A scheme's
//! cost beyond `none-mb` is therefore what it pays beyond the one barrier any correct
//! scheme must pay.
//!
//! It promises property f (`MEMBARRIER_SAFE`), and the oracle checks it; it promises
//! nothing about the lifetime of mms (`FREES_MMS = false`), so the leak check of
//! property e is off, as under `none`.

use super::none::{NoneLazy, NoneTask};
use super::Scheme;
use crate::arch::Arch;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::{Config, Kernel};
use crate::mm::MmId;

/// The `none-mb` baseline: `none` plus membarrier's full barrier.
pub struct NoRefsMb;

impl Scheme for NoRefsMb {
    const NAME: &'static str = "none-mb";
    const FREES_MMS: bool = false;
    const MEMBARRIER_SAFE: bool = true;
    type TaskState = NoneTask;
    type CpuLocal = ();
    type CpuShared = ();
    type LazyRef = NoneLazy;

    fn new(_: &Config) -> Self {
        NoRefsMb
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
    fn mmdrop_lazy_tlb<A: Arch>(_: &Kernel<Self, A>, cpu: &mut Cpu<Self, A>, _: NoneLazy) {
        // ORDERING: the full barrier membarrier relies on after the rq->curr store
        // (finish_task_switch); pairs with membarrier()'s fence before it reads rq->curr.
        cpu.smp_mb();
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
