//! The scheduler's part: `context_switch` and `finish_task_switch`, in the order of
//! `kernel/sched/core.c`.
//!
//! The four cases of `context_switch`:
//!
//! | prev → next     | what happens to the mm                                          |
//! |-----------------|-----------------------------------------------------------------|
//! | user → kernel   | `enter_lazy_tlb`; `next` inherits `prev`'s mm; `mmgrab_lazy_tlb` |
//! | kernel → kernel | `enter_lazy_tlb`; the lazy mm is handed over; no reference work  |
//! | kernel → user   | `switch_mm_irqs_off`; the lazy mm goes to `rq->prev_lazy_mm` and is dropped in `finish_task_switch` |
//! | user → user     | `switch_mm_irqs_off`; no reference work                         |
//!
//! Where Linux reads `prev->active_mm`, this code asks the scheme for the mm `prev` runs
//! on ([`Scheme::active_mm`]): a scheme that refcounts lazy users answers from the task,
//! one that opts out answers with a borrow of what the CPU has loaded, valid only while
//! interrupts are off.

use crate::arch::Arch;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::scheme::Scheme;
use crate::task::Task;

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// `context_switch(rq, prev, next)`: switches this CPU from `prev` to `next`.
    ///
    /// Runs with interrupts disabled (as under `__schedule`'s rq lock) until
    /// `finish_task_switch` enables them; it includes `__schedule`'s rq lock with
    /// `smp_mb__after_spinlock()` and its store to `rq->curr`, which `membarrier()`
    /// reads.
    ///
    /// # Membarrier
    /// Both halves of property f meet here. Before the `rq->curr` store, the rq lock and
    /// `smp_mb__after_spinlock()` order everything `prev` did in user space
    /// (`Kernel::rq_lock`): the scheduler's barrier, in every scheme. After it, the
    /// scheme's lazy-mm bookkeeping (or the arch's `switch_mm`) must provide the full
    /// barrier before `next` runs in user space; on a user→user switch between two
    /// mms, the arch's `switch_mm` or `switch_to` must (x86's CR3 write and
    /// `mm_cpumask` barrier, powerpc's `membarrier_arch_switch_mm`, arm64's
    /// `dsb(ish)` in `__switch_to`). `none` pays the scheduler's barrier
    /// too: it is the lower bound of lazy-mm bookkeeping, not of the scheduler, and
    /// leaving the barrier out of it would charge every scheme's ratio to `none` with
    /// a cost the kernel pays whatever the scheme.
    #[inline]
    pub fn context_switch(
        &self,
        cpu: &mut crate::cpu::Cpu<S, A>,
        prev: &mut Task<S>,
        next: &mut Task<S>,
    ) {
        cpu.step += 1;
        cpu.stats.context_switches += 1;
        if prev.idle {
            // Leaving the idle loop (the profile's nohz accounting).
            self.idle_exit(cpu);
        }
        // The wake list's drain (sched_ttwu_pending), when wakeups were queued here.
        self.ttwu_drain(cpu);
        // (The hardware may walk prev's page tables at any point: hosts call `irq_point`,
        // which makes the speculative walks, right before every switch.)
        // Property f's user→kernel half: prev's user accesses came before this point.
        self.membarrier_mark_entry(cpu, prev.mm_id());
        let irq = cpu.local_irq_disable();
        // __schedule(): rq_lock(rq); smp_mb__after_spinlock(): the full barrier
        // membarrier needs after user accesses, before the rq->curr store (scenarios B
        // and C of kernel/sched/membarrier.c), paid by every scheme, `none` included.
        self.rq_lock(cpu);
        // __schedule(): RCU_INIT_POINTER(rq->curr, next). Property f's kernel→user half
        // is owed whenever the mm membarrier() sees on this CPU becomes next's: from a
        // kernel thread, and from a user task of another mm (user→user).
        let enters_mm = next.is_user() && prev.mm_id() != next.mm_id();
        self.rq_set_curr(cpu, next.mm_id(), enters_mm);
        self.preempt_point();

        match next.mm_id() {
            // to kernel
            None => {
                let active = S::active_mm(cpu, &prev.scheme, &irq);
                A::enter_lazy_tlb(self, cpu, &active);
                if prev.is_user() {
                    // from user
                    cpu.stats.lazy_switches += 1;
                    let lazy = S::mmgrab_lazy_tlb(self, cpu, &active);
                    S::lazy_install(&mut cpu.scheme, &mut next.scheme, lazy);
                } else {
                    // from kernel
                    S::lazy_hand_over(&mut cpu.scheme, &mut prev.scheme, &mut next.scheme);
                }
            }
            // to user
            Some(mm) => {
                let active = S::active_mm(cpu, &prev.scheme, &irq);
                A::switch_mm_irqs_off(self, cpu, active, mm, &irq);
                if !prev.is_user() {
                    // from kernel: will mmdrop_lazy_tlb() in finish_task_switch().
                    cpu.prev_lazy_mm = S::lazy_take(&mut cpu.scheme, &mut prev.scheme);
                }
            }
        }

        // switch_mm_cid(rq, prev, next): after the mm switch, as in context_switch().
        self.switch_mm_cid(cpu, prev.mm_id(), next.mm_id());
        self.preempt_point();
        // switch_to(prev, next): this model has no stacks to switch, but `current`
        // becomes next only here, after switch_mm (an NMI in switch_mm sees prev).
        A::switch_to(self, cpu);
        cpu.set_current_mm(next.mm_id());
        S::load_current(&mut cpu.scheme, &next.scheme);
        self.finish_task_switch(cpu, irq, next.mm_id());
        if next.idle {
            // do_idle() in the idle task (the profile's nohz accounting).
            self.idle_enter(cpu);
        }
    }

    /// `finish_task_switch(prev)`: releases the rq lock (enabling interrupts), then
    /// drops the lazy mm a kernel→user switch left in `rq->prev_lazy_mm`.
    #[inline(always)]
    fn finish_task_switch(
        &self,
        cpu: &mut crate::cpu::Cpu<S, A>,
        irq: crate::cpu::IrqGuard,
        next_mm: Option<MmId>,
    ) {
        let lazy = cpu.prev_lazy_mm.take();
        // finish_lock_switch(): raw_spin_rq_unlock_irq(rq).
        self.rq_unlock(cpu);
        cpu.local_irq_enable(irq);
        if let Some(lazy) = lazy {
            self.preempt_point();
            S::mmdrop_lazy_tlb_sched(self, cpu, lazy);
        }
        self.preempt_point();
        S::finish_switch(self, cpu);
        if let Some(mm) = next_mm {
            // Returning to user space: property f must hold by now.
            self.membarrier_check(cpu, mm);
        }
    }
}
