//! An mm's life, and every other place a lazy use begins or ends: references
//! (`include/linux/sched/mm.h`), fork and teardown (`kernel/fork.c`), `exit_mm`
//! (`kernel/exit.c`), `exec_mmap` (`fs/exec.c`), `kthread_use_mm`/`kthread_unuse_mm`
//! (`kernel/kthread.c`) and CPU hotplug (`sched_force_init_mm`, `__cpu_disable`).
//!
//! Teardown runs in two stages, as in Linux:
//! - `mmput` → `__mmput` when `mm_users` reaches zero: `exit_mmap` frees the mappings and
//!   the page tables below the root, then one `mmdrop`;
//! - `mmdrop` → `__mmdrop` when `mm_count` reaches zero: `cleanup_lazy_tlbs`, then the
//!   root and the struct are freed.

use crate::arch::Arch;
use crate::cpu::{Cpu, LazyMm};
use crate::kernel::Kernel;
use crate::mm::{MmCount, MmId, MmUsers};
use crate::oracle::ViolationKind;
use crate::scheme::Scheme;
use crate::sync::{Ordering, SharedUsize};
use crate::task::{Task, TaskMm};
use crate::tracepoint::{Span, Tracepoint};

impl<S: Scheme, A: Arch> Kernel<S, A> {
    // ---- references -----------------------------------------------------------------

    /// `atomic_dec_and_test` on a counter of `mm`: fully ordered, as Linux defines
    /// value-returning atomics (or, with `fully_ordered == false`, only acquire-release,
    /// for mutants that model a weaker atomic). Reports an underflow instead of wrapping.
    fn dec_and_test(
        &self,
        cpu: &mut Cpu<S, A>,
        counter: &SharedUsize,
        mm: MmId,
        name: &'static str,
        fully_ordered: bool,
    ) -> bool {
        // ORDERING: AcqRel. Release: this CPU's uses of the mm happen before the free on
        // whichever CPU sees zero; Acquire: that CPU sees them all. Fully ordered, the
        // RMW also has a full barrier on each side, as Linux's value-returning atomics
        // do: they pair with the barriers of every other decrement and with
        // membarrier's fence.
        let dec = |a: &mut crate::sync::Acct| counter.fetch_sub(a, 1, Ordering::AcqRel);
        let old = if fully_ordered {
            crate::sync::fully_ordered(&mut cpu.acct, dec)
        } else {
            dec(&mut cpu.acct)
        };
        if old == 0 || old >= crate::mm::POISON / 2 {
            // The oracle undoes the decrement it reports: not kernel traffic.
            counter.oracle_fetch_add(1, Ordering::Relaxed);
            self.report(cpu, mm, ViolationKind::Underflow { counter: name });
            return false;
        }
        old == 1
    }

    /// `mmgrab(mm)`: takes an `mm_count` reference. The caller already holds some
    /// reference to the mm, so the increment needs no ordering.
    pub fn mmgrab(&self, cpu: &mut Cpu<S, A>, mm: MmId) -> MmCount {
        if let Some(m) = self.mm(cpu, mm, "mmgrab") {
            // ORDERING: Relaxed, as atomic_inc: the caller's existing reference keeps
            // the count above zero, so no free can race with this increment.
            m.mm_count.fetch_add(&mut cpu.acct, 1, Ordering::Relaxed);
        }
        MmCount(mm)
    }

    /// `mmdrop(mm)`: drops an `mm_count` reference; the last one frees the mm.
    pub fn mmdrop(&self, cpu: &mut Cpu<S, A>, r: MmCount) {
        self.mmdrop_ordered(cpu, r, true);
    }

    /// `mmdrop(mm)` with an acquire-release decrement that is not a full barrier: what
    /// a scheme's mutant uses to show that property f rests on the drop's full ordering.
    /// Lifetimes stay safe (the release/acquire chain still orders every use before the
    /// free); only the store-buffering litmus of membarrier breaks.
    pub(crate) fn mmdrop_not_fully_ordered(&self, cpu: &mut Cpu<S, A>, r: MmCount) {
        self.mmdrop_ordered(cpu, r, false);
    }

    fn mmdrop_ordered(&self, cpu: &mut Cpu<S, A>, r: MmCount, fully_ordered: bool) {
        let mm = r.0;
        self.preempt_point();
        let Some(m) = self.mm(cpu, mm, "mmdrop") else {
            return;
        };
        if self.dec_and_test(cpu, &m.mm_count, mm, "mm_count", fully_ordered) {
            self.preempt_point();
            self.timed_teardown(cpu, |k, cpu| k.__mmdrop(cpu, mm));
        }
    }

    /// `mmget(mm)`: one more real user of an mm that already has one (`CLONE_VM`).
    pub fn mmget(&self, cpu: &mut Cpu<S, A>, u: &MmUsers) -> MmUsers {
        if let Some(m) = self.mm(cpu, u.0, "mmget") {
            // ORDERING: Relaxed, as atomic_inc: `u` keeps mm_users above zero.
            m.mm_users.fetch_add(&mut cpu.acct, 1, Ordering::Relaxed);
        }
        MmUsers(u.0)
    }

    /// `mmget_not_zero(mm)`: a real user, if the mm still has one. The caller holds an
    /// `mm_count` reference so the struct itself is alive.
    pub fn mmget_not_zero(&self, cpu: &mut Cpu<S, A>, r: &MmCount) -> Option<MmUsers> {
        let m = self.mm(cpu, r.0, "mmget_not_zero")?;
        let mut cur = m.mm_users.load(&mut cpu.acct, Ordering::Relaxed);
        loop {
            if cur == 0 || cur >= crate::mm::POISON / 2 {
                return None;
            }
            // ORDERING: Acquire on success, as atomic_inc_not_zero: the new user sees the
            // mappings as the previous users left them.
            match m.mm_users.compare_exchange(
                &mut cpu.acct,
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(MmUsers(r.0)),
                Err(now) => cur = now,
            }
        }
    }

    /// `mmput(mm)`: drops a real user; the last one tears the address space down.
    pub fn mmput(&self, cpu: &mut Cpu<S, A>, u: MmUsers) {
        let mm = u.0;
        self.preempt_point();
        let Some(m) = self.mm(cpu, mm, "mmput") else {
            return;
        };
        self.fault_point(cpu, crate::mutant::FaultPoint::MmputEntry(mm));
        if self.dec_and_test(cpu, &m.mm_users, mm, "mm_users", true) {
            self.preempt_point();
            cpu.stats.exits += 1;
            self.timed_teardown(cpu, |k, cpu| k.__mmput(cpu, mm));
        }
    }

    /// Runs a teardown stage, adding its time to `teardown_ns` once even when stages nest
    /// (`__mmput` ends in `mmdrop`, which may run `__mmdrop`).
    fn timed_teardown(&self, cpu: &mut Cpu<S, A>, f: impl FnOnce(&Self, &mut Cpu<S, A>)) {
        if cpu.teardown_depth > 0 {
            return f(self, cpu);
        }
        cpu.teardown_depth += 1;
        let t0 = (self.cfg.clock)();
        f(self, cpu);
        let ns = (self.cfg.clock)().saturating_sub(t0);
        cpu.stats.teardown_ns += ns;
        cpu.teardowns.record(ns);
        cpu.teardown_depth -= 1;
    }

    /// `__mmput(mm)`: the last real user is gone.
    fn __mmput(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        cpu.step += 1;
        cpu.trace(Tracepoint::Begin(Span::Mmput, mm));
        self.exit_mmap(cpu, mm);
        self.preempt_point();
        S::after_exit_mmap(self, cpu, mm);
        // The mm_count reference that mm_users held as a whole.
        self.mmdrop(cpu, MmCount(mm));
        cpu.trace(Tracepoint::End(Span::Mmput, mm));
    }

    /// `exit_mmap(mm)`: unmaps everything and frees the page tables below the root
    /// (`free_pgtables`); the tables go back only after the arch's TLB flush
    /// (`tlb_finish_mmu`), so no CPU's paging-structure caches still point into them.
    /// The root stays until `__mmdrop`.
    fn exit_mmap(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        let Some(m) = self.mm(cpu, mm, "exit_mmap") else {
            return;
        };
        A::exit_mmap_flush(self, cpu, mm);
        if !S::FREES_MMS {
            // The `none` baseline frees nothing: its slots are reused in place.
            return;
        }
        self.preempt_point();
        // Property b, below the root: no CPU may still walk the tables being freed.
        for (i, c) in self.cpus.iter().enumerate() {
            if c.oracle_walk_cached(mm) {
                self.report(cpu, mm, ViolationKind::TablesFreedWhileCached { holder: i });
            }
        }
        // free_pgtables(), as the mmu_gather finally frees them.
        // ORDERING: Release pairs with the Acquire in `Mm::tables_live`: the flushes above
        // happen before any CPU sees the tables freed.
        m.tables_live.store(false, Ordering::Release);
    }

    /// `__mmdrop(mm)`: the last `mm_count` reference is gone: clean up lazy users the
    /// scheme's way, then free the page-table root and the struct.
    fn __mmdrop(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        cpu.step += 1;
        if !S::FREES_MMS {
            // The `none` baseline never frees; it reuses the slot in place.
            self.arena.recycle(mm);
            return;
        }
        cpu.trace(Tracepoint::Begin(Span::Mmdrop, mm));
        cpu.trace(Tracepoint::Begin(Span::CleanupLazyTlbs, mm));
        S::cleanup_lazy_tlbs(self, cpu, mm);
        cpu.trace(Tracepoint::End(Span::CleanupLazyTlbs, mm));
        self.preempt_point();
        // Property b: no CPU may still have this root loaded, even lazily.
        for (i, c) in self.cpus.iter().enumerate() {
            if c.oracle_cr3() == mm {
                self.report(cpu, mm, ViolationKind::FreedWhileLoaded { holder: i });
            }
        }
        // pgd_free() and free_mm().
        match self.arena.free(mm) {
            Ok(()) => cpu.stats.mm_freed += 1,
            Err(_) => self.report(cpu, mm, ViolationKind::DoubleFree),
        }
        cpu.trace(Tracepoint::End(Span::Mmdrop, mm));
    }

    // ---- fork -----------------------------------------------------------------------

    /// `mm_alloc()`: a new, empty address space with one user (and so one count).
    pub fn mm_alloc(&self, cpu: &mut Cpu<S, A>) -> Option<MmUsers> {
        let mm = self.arena.alloc()?;
        cpu.step += 1;
        cpu.stats.mm_created += 1;
        if self.cfg.membarrier_registered {
            // The new process's first act (see `Config::membarrier_registered`).
            self.membarrier_register_private_expedited(cpu, mm);
        }
        Some(MmUsers(mm))
    }

    /// `fork()` of a new process: a user task with a new mm. `None` when the arena is full.
    ///
    /// In `copy_process`'s order: the mm (`copy_mm`; the model's new process gets a
    /// fresh mm rather than a copy of its parent's), then the profile's shared accesses
    /// of `alloc_pid` and of linking the child under `tasklist_lock`
    /// (`Kernel::fork_accesses`).
    pub fn fork(&self, cpu: &mut Cpu<S, A>, pid: u32) -> Option<Task<S>> {
        let mm = self.mm_alloc(cpu)?;
        self.fork_accesses(cpu);
        Some(Task::user(pid, mm))
    }

    /// `clone(CLONE_VM)`: a new thread sharing `parent`'s mm. `None` if `parent` has no
    /// address space of its own. As [`Kernel::fork`], `copy_mm` (here `mmget`) comes
    /// before `alloc_pid` and `tasklist_lock`.
    pub fn clone_thread(&self, cpu: &mut Cpu<S, A>, parent: &Task<S>, pid: u32) -> Option<Task<S>> {
        let Some(TaskMm::User(u)) = &parent.mm else {
            return None;
        };
        let mm = self.mmget(cpu, u);
        self.fork_accesses(cpu);
        Some(Task::user(pid, mm))
    }

    /// The kernel profile's shared accesses of `copy_process` after `copy_mm`:
    /// `alloc_pid` (`pidmap_lock`), then `write_lock_irq(&tasklist_lock)` to link the
    /// child into the task list (`nr_threads++`, `total_forks++` under it).
    fn fork_accesses(&self, cpu: &mut Cpu<S, A>) {
        self.alloc_pid(cpu);
        self.tasklist_write(cpu);
    }

    /// The idle task of a booting CPU (`sched_init`, `start_secondary`): a kernel
    /// thread whose `active_mm` is `init_mm`, with the lazy reference that goes with it.
    pub fn idle_task(&self, cpu: &mut Cpu<S, A>, pid: u32) -> Task<S> {
        let mut idle = Task::kthread(pid);
        idle.idle = true;
        let lazy = S::mmgrab_lazy_tlb(self, cpu, &LazyMm::init());
        let irq = cpu.local_irq_disable();
        A::enter_lazy_tlb(self, cpu, &LazyMm::new(MmId::INIT, &irq));
        cpu.local_irq_enable(irq);
        S::lazy_install(&mut cpu.scheme, &mut idle.scheme, lazy);
        idle
    }

    // ---- membarrier ------------------------------------------------------------------

    /// `task_lock(tsk)` followed by the full barrier membarrier needs between a task's
    /// last user access and the store that stops it counting as a user of its mm
    /// (`smp_mb__after_spinlock()` in `exit_mm` and `kthread_unuse_mm`,
    /// `membarrier_exec_mmap()`'s `smp_mb()` in `exec_mmap`): property f's user→kernel
    /// half, which [`Kernel::membarrier_mark_entry`] armed. Counted as one `smp_mb()` on
    /// every arch (review 3's B5: x86 pays the lock's `LOCK` instead, and its
    /// `smp_mb__after_spinlock()` is empty; the same cost class). The lock itself is
    /// not modelled otherwise.
    ///
    /// `dropped` (a mutant's setting: the order before the barrier was added) leaves
    /// only the lock, which is a full barrier where [`Arch::SPIN_LOCK_IS_FULL_BARRIER`]
    /// (x86) and an acquire elsewhere: on arm64 and powerpc the user accesses are then
    /// unordered with the store, and a `membarrier()` that reads the new `rq->curr`
    /// skips the CPU and may miss them.
    fn task_lock_membarrier_mb(&self, cpu: &mut Cpu<S, A>, dropped: bool) {
        if !dropped || A::SPIN_LOCK_IS_FULL_BARRIER {
            // ORDERING: pairs with membarrier()'s full fence after it reads rq->curr:
            // either it saw this CPU still on the mm (and IPIs it), or it sees every
            // user access made before the store that follows.
            cpu.smp_mb();
        }
    }

    // ---- exit -----------------------------------------------------------------------

    /// `exit_mm()`: the exiting task stops owning its mm but keeps running on it, as a
    /// lazy user, then drops its real reference. Teardown may run right here, on a CPU
    /// that still has the mm loaded.
    pub fn exit_mm(&self, cpu: &mut Cpu<S, A>, task: &mut Task<S>) {
        cpu.step += 1;
        let Some(mm) = task.take_user_mm() else {
            return;
        };
        let id = mm.id();
        // Property f, user→kernel half: the task's user accesses end here.
        self.membarrier_mark_entry(cpu, Some(id));
        // mmap_read_lock(mm): the core-dump handshake (the profile's).
        self.exit_mm_mmap_lock(cpu, id, true);
        let lazy = S::mmgrab_lazy_tlb(self, cpu, &LazyMm::of_user(&mm));
        // task_lock(current); smp_mb__after_spinlock() (5bc78502322a): user accesses
        // happen before current->mm is cleared. MUTANT exit-mm-no-membarrier-mb: the
        // order before that commit, the lock alone.
        self.task_lock_membarrier_mb(cpu, self.cfg.exit_mm_no_mb);
        let irq = cpu.local_irq_disable();
        // current->mm = NULL; membarrier_update_current_mm(NULL).
        cpu.set_current_mm(None);
        self.rq_set_curr(cpu, None, false);
        // The exiting task's own mm, kept alive by the mm_users reference it still holds.
        A::enter_lazy_tlb(self, cpu, &LazyMm::new(id, &irq));
        S::lazy_install(&mut cpu.scheme, &mut task.scheme, lazy);
        cpu.local_irq_enable(irq);
        // task_unlock(current); mmap_read_unlock(mm).
        self.exit_mm_mmap_lock(cpu, id, false);
        self.preempt_point();
        self.mmput(cpu, mm);
    }

    /// `do_exit()` as far as the model goes: `exit_mm`, then the kernel profile's
    /// shared accesses of `exit_notify` (`write_lock_irq(&tasklist_lock)`) and of
    /// `release_task` (`tasklist_lock` again, and `free_pid` under it: `pidmap_lock`).
    /// The last switch away (`do_task_dead`) is the caller's.
    ///
    /// `release_task` runs here, on the exiting CPU, as it does for a thread that
    /// reaps itself in `exit_notify`; a process's parent would run it from `wait`, on
    /// its own CPU (a named simplification). A kernel thread exits the same way,
    /// without `exit_mm`'s work.
    pub fn do_exit(&self, cpu: &mut Cpu<S, A>, task: &mut Task<S>) {
        self.exit_mm(cpu, task);
        // exit_notify().
        self.tasklist_write(cpu);
        // release_task(): __exit_signal() → __unhash_process() → detach_pid() →
        // free_pid(), under tasklist_lock (the model takes the two in turn; neither
        // waits).
        self.tasklist_write(cpu);
        self.free_pid(cpu);
    }

    // ---- exec -----------------------------------------------------------------------

    /// `exec_mmap(mm)`: `task` (user task or kernel thread) replaces its address space
    /// with the new `mm`. A user task drops its old mm with `mmput`; a kernel thread
    /// drops the lazy mm it was running on, and becomes a user task.
    ///
    /// In the order of `fs/exec.c`: `membarrier_exec_mmap`'s full barrier, then with
    /// interrupts off `active_mm = tsk->active_mm; tsk->active_mm = mm; tsk->mm = mm`,
    /// then `activate_mm(active_mm, mm)`, with interrupts still off only where the
    /// arch selects `ARCH_WANT_IRQS_OFF_ACTIVATE_MM` (`Kernel::irqs_off_activate_mm`).
    /// Elsewhere interrupts come back on first: an IPI in that window sees
    /// `current->active_mm == mm` while the old mm is still loaded (the window of
    /// d53c3dfb23c4), and `activate_mm` gets the old `active_mm` as the kernel kept it
    /// ([`Scheme::active_mm_again`]). `activate_mm` is `switch_mm`, which disables
    /// interrupts around `switch_mm_irqs_off` itself (a simplification: x86's does,
    /// others need not).
    pub fn exec_mmap(&self, cpu: &mut Cpu<S, A>, task: &mut Task<S>, mm: MmUsers) {
        cpu.step += 1;
        let old_mm = task.take_user_mm();
        let from_kernel = old_mm.is_none();
        let new = mm.id();
        if let Some(old) = &old_mm {
            // Property f, user→kernel half: the old image's user accesses end here.
            self.membarrier_mark_entry(cpu, Some(old.id()));
        }
        // task_lock(tsk); membarrier_exec_mmap(mm): smp_mb() before the new mm's
        // membarrier state is cleared, so no user access from before the exec is
        // reordered after tsk->mm = mm (membarrier scenarios B/C). MUTANT
        // exec-mmap-no-membarrier-mb: the lock alone.
        self.task_lock_membarrier_mb(cpu, self.cfg.exec_mmap_no_mb);
        let irq = cpu.local_irq_disable();
        // active_mm = tsk->active_mm;
        let active = S::active_mm(cpu, &task.scheme, &irq);
        let active_id = active.id();
        let lazy = if from_kernel {
            S::lazy_take(&mut cpu.scheme, &mut task.scheme)
        } else {
            None
        };
        // tsk->active_mm = mm; tsk->mm = mm;
        S::set_user_active_mm(&mut task.scheme, new);
        S::load_current(&mut cpu.scheme, &task.scheme);
        task.mm = Some(TaskMm::User(mm));
        cpu.set_current_mm(Some(new));
        // rq->curr->mm as membarrier() reads it. A kernel thread becomes a user of the
        // new mm here: as on a kernel→user switch, property f asks for a full barrier
        // between this store and its first user access.
        self.rq_set_curr(cpu, Some(new), from_kernel);
        task.set_kthread(false);
        self.preempt_point();
        if self.irqs_off_activate_mm() {
            // activate_mm(active_mm, mm), interrupts still off.
            A::switch_mm_irqs_off(self, cpu, active, new, &irq);
            cpu.local_irq_enable(irq);
        } else {
            // if (!IS_ENABLED(CONFIG_ARCH_WANT_IRQS_OFF_ACTIVATE_MM))
            //         local_irq_enable();
            // The borrow of the old mm ends with the guard.
            cpu.local_irq_enable(irq);
            self.irqs_on_window(cpu, Span::ExecMmapIrqsOn, active_id);
            // activate_mm(active_mm, mm) → switch_mm(), which disables interrupts.
            let irq = cpu.local_irq_disable();
            let prev = S::active_mm_again(cpu, active_id, &irq);
            A::switch_mm_irqs_off(self, cpu, prev, new, &irq);
            cpu.local_irq_enable(irq);
        }
        self.preempt_point();
        if let Some(old) = old_mm {
            self.mmput(cpu, old);
        } else if let Some(lazy) = lazy {
            // The full barrier membarrier needs after the tsk->mm store is implied by
            // mmdrop_lazy_tlb().
            S::mmdrop_lazy_tlb(self, cpu, lazy);
        }
        if from_kernel {
            self.membarrier_check(cpu, new);
        }
    }

    // ---- kernel threads ---------------------------------------------------------------

    /// `kthread_use_mm(mm)`: a kernel thread adopts a user address space; the caller
    /// holds a real user (`u`) for as long as it is adopted.
    ///
    /// The mm may be the one the thread already runs on lazily; it still takes its own
    /// `mmgrab` and drops the lazy reference, because the two are not equivalent.
    pub fn kthread_use_mm(&self, cpu: &mut Cpu<S, A>, task: &mut Task<S>, u: &MmUsers) {
        cpu.step += 1;
        debug_assert!(task.is_kthread() && task.mm.is_none());
        let mm = u.id();
        let r = self.mmgrab(cpu, mm);
        self.preempt_point();
        // task_lock(tsk); local_irq_disable() ("Hold off tlb flush IPIs while
        // switching mm's", 38cf307c1f20).
        let irq = cpu.local_irq_disable();
        let active = S::active_mm(cpu, &task.scheme, &irq);
        let active_id = active.id();
        let mut lazy = S::lazy_take(&mut cpu.scheme, &mut task.scheme);
        if self.cfg.kthread_use_mm_no_mb && active.is(mm) {
            // MUTANT kthread-use-mm-no-membarrier-mb: before 618758ed3a4f, adopting the
            // mm the thread already ran on lazily kept the lazy reference as its own (no
            // mmgrab, no mmdrop) and so passed no barrier after tsk->mm = mm. The model
            // has no such hand-over of a reference between types; it drops the lazy
            // reference here instead, before the store, which leaves the same thing:
            // nothing between the store and the first user access.
            if let Some(l) = lazy.take() {
                S::mmdrop_lazy_tlb(self, cpu, l);
            }
        }
        // tsk->active_mm = mm; tsk->mm = mm;
        S::set_user_active_mm(&mut task.scheme, mm);
        S::load_current(&mut cpu.scheme, &task.scheme);
        task.mm = Some(TaskMm::Kthread(r));
        cpu.set_current_mm(Some(mm));
        // membarrier_update_current_mm(mm): like a kernel→user switch, property f asks
        // for a full barrier between this store and the first user access.
        self.rq_set_curr(cpu, Some(mm), true);
        if self.cfg.kthread_use_mm_irqs_on {
            // MUTANT kthread-use-mm-irqs-on: the order before 38cf307c1f20, where
            // switch_mm() disabled interrupts only inside. An IPI in this window sees
            // current->active_mm == mm while the old mm is still loaded: a lazy
            // shootdown or powerpc's exit flush of the old mm leaves this CPU alone and
            // clears its bit, and switch_mm then switches from a mm nothing protects.
            cpu.local_irq_enable(irq);
            self.irqs_on_window(cpu, Span::KthreadUseMmIrqsOn, active_id);
            // switch_mm(active_mm, mm, tsk), which disables interrupts itself.
            let irq = cpu.local_irq_disable();
            let prev = S::active_mm_again(cpu, active_id, &irq);
            A::switch_mm_irqs_off(self, cpu, prev, mm, &irq);
            cpu.local_irq_enable(irq);
        } else {
            A::switch_mm_irqs_off(self, cpu, active, mm, &irq);
            cpu.local_irq_enable(irq);
        }
        self.preempt_point();
        // The full barrier membarrier needs after the tsk->mm store is implied by
        // mmdrop_lazy_tlb().
        if let Some(lazy) = lazy {
            S::mmdrop_lazy_tlb(self, cpu, lazy);
        }
        self.membarrier_check(cpu, mm);
    }

    /// `kthread_unuse_mm(mm)`: the kernel thread gives the address space back and keeps
    /// running on it lazily.
    pub fn kthread_unuse_mm(&self, cpu: &mut Cpu<S, A>, task: &mut Task<S>) {
        cpu.step += 1;
        let Some(TaskMm::Kthread(r)) = task.mm.take() else {
            return;
        };
        let mm = r.id();
        // Property f, user→kernel half: the thread's accesses to mm end here.
        self.membarrier_mark_entry(cpu, Some(mm));
        // task_lock(tsk); smp_mb__after_spinlock() (618758ed3a4f): user accesses
        // happen before tsk->mm is cleared. MUTANT kthread-unuse-mm-no-membarrier-mb:
        // the order before that commit, the lock alone.
        self.task_lock_membarrier_mb(cpu, self.cfg.kthread_unuse_mm_no_mb);
        self.preempt_point();
        let irq = cpu.local_irq_disable();
        cpu.set_current_mm(None);
        self.rq_set_curr(cpu, None, false);
        // active_mm is still mm, kept alive by the mm_count reference `r` still held.
        let active = LazyMm::new(mm, &irq);
        let lazy = S::mmgrab_lazy_tlb(self, cpu, &active);
        A::enter_lazy_tlb(self, cpu, &active);
        S::lazy_install(&mut cpu.scheme, &mut task.scheme, lazy);
        cpu.local_irq_enable(irq);
        self.preempt_point();
        self.mmdrop(cpu, r);
    }

    // ---- CPU hotplug ------------------------------------------------------------------

    /// `sched_force_init_mm()`: the current (kernel) task leaves its lazy mm for
    /// `init_mm`, so this CPU uses no mm at all (called as a CPU goes offline).
    ///
    /// As mainline writes it, `current->active_mm` is read with interrupts on and never
    /// read again: an IPI that lands before `local_irq_disable()` may move this CPU to
    /// `init_mm` (a lazy shootdown, or powerpc's exit flush), after which nothing keeps
    /// the mm alive, and the stale pointer is what `switch_mm_irqs_off` gets as `prev`.
    /// The model does the same (the arena reports any use of a freed `prev`); with
    /// `Config::force_init_mm_reread`, the proposed fix, it reads the lazy mm again under
    /// the second interrupts-off section.
    pub fn sched_force_init_mm(&self, cpu: &mut Cpu<S, A>, current: &mut Task<S>) {
        cpu.step += 1;
        // struct mm_struct *mm = current->active_mm;
        let irq = cpu.local_irq_disable();
        let mm = S::active_mm(cpu, &current.scheme, &irq).id();
        cpu.local_irq_enable(irq);
        if mm.is_init() {
            return;
        }
        // Interrupts are on: other CPUs run, and IPIs they send may run here.
        self.irqs_on_window(cpu, Span::ForceInitMmIrqsOn, mm);
        let init_lazy = S::mmgrab_lazy_tlb(self, cpu, &LazyMm::init());
        let irq = cpu.local_irq_disable();
        let prev = if self.cfg.force_init_mm_reread {
            // The fix: what this CPU runs on now, borrowed under this guard.
            S::active_mm(cpu, &current.scheme, &irq)
        } else {
            // Mainline: the pointer read above, which nothing protected while
            // interrupts were on.
            LazyMm::unprotected(mm, &irq)
        };
        let old = S::lazy_take(&mut cpu.scheme, &mut current.scheme);
        S::lazy_install(&mut cpu.scheme, &mut current.scheme, init_lazy);
        A::switch_mm_irqs_off(self, cpu, prev, MmId::INIT, &irq);
        cpu.local_irq_enable(irq);
        self.preempt_point();
        if let Some(old) = old {
            S::mmdrop_lazy_tlb(self, cpu, old);
        }
    }

    /// Takes this CPU offline. `idle` is the CPU's idle task, now current;
    /// `die_wait` is the time between `__cpu_disable()` and the CPU's death
    /// (stop_machine completing, the idle loop reaching `arch_cpu_idle_dead`), during
    /// which the other CPUs run on: the host runs it, answering late IPIs.
    ///
    /// The fixed order: `sched_cpu_wait_empty()` moves the CPU to `init_mm` first
    /// (`sched_force_init_mm`), then `__cpu_disable()` lets the arch forget it (powerpc
    /// clears it from every `mm_cpumask`), then it leaves `cpu_online_mask`. The
    /// pre-fix order (mutant `shootdown-hotplug-race`) leaves the lazy mm only in
    /// `idle_task_exit()` as the CPU dies, after `die_wait`: meanwhile the CPU still
    /// has the mm loaded but is in no `mm_cpumask`, so a shootdown misses it.
    pub fn cpu_offline(
        &self,
        cpu: &mut Cpu<S, A>,
        idle: &mut Task<S>,
        die_wait: impl FnOnce(&Self, &mut Cpu<S, A>),
    ) {
        cpu.step += 1;
        cpu.stats.offlines += 1;
        let pre_fix = self.cfg.offline_pre_fix_order;
        if !pre_fix {
            // sched_cpu_wait_empty() → sched_force_init_mm().
            self.sched_force_init_mm(cpu, idle);
        }
        // take_cpu_down() → __cpu_disable().
        A::cpu_disable(self, cpu);
        self.preempt_point();
        self.set_online(cpu, false);
        die_wait(self, cpu);
        if pre_fix {
            // The pre-fix order (mutants shootdown-hotplug-race): idle_task_exit() is the
            // first switch away.
            self.sched_force_init_mm(cpu, idle);
        }
    }

    /// Brings this CPU back online, running its idle task on `init_mm`.
    pub fn cpu_online(&self, cpu: &mut Cpu<S, A>) {
        cpu.step += 1;
        self.set_online(cpu, true);
    }

    /// Drains the lazy state a quiescing CPU still holds: its idle task (`current`)
    /// moves to `init_mm`, and any deferred drop the scheme parked on this CPU runs.
    pub fn quiesce_cpu(&self, cpu: &mut Cpu<S, A>, current: &mut Task<S>) {
        self.sched_force_init_mm(cpu, current);
        S::finish_switch(self, cpu);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::arch::Generic;
    use crate::mm::MmCount;
    use crate::oracle::{Property, ViolationKind};
    use crate::scheme::Refcount;
    use crate::sync::Ordering;
    use crate::{Config, Kernel};

    /// Property e: a decrement below zero is reported and not wrapped. The public API
    /// cannot reach it on a live mm (reaching zero frees), so force the count to zero.
    #[test]
    fn underflow_is_reported_not_wrapped() {
        let mut cfg = Config::new(1);
        cfg.speculative_walk_period = 0;
        let (k, mut cpus) = Kernel::<Refcount, Generic>::boot(cfg);
        let cpu = &mut cpus[0];
        let u = k.mm_alloc(cpu).unwrap();
        let id = u.id();
        k.arena
            .get(id)
            .unwrap()
            .mm_count
            .oracle_store(0, Ordering::Relaxed);
        k.mmdrop(cpu, MmCount(id));
        assert_eq!(k.arena.get(id).unwrap().count(), 0, "the counter wrapped");
        assert!(k.arena.is_live(id), "an underflow must not free");
        let v = &cpu.violations;
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].kind,
            ViolationKind::Underflow {
                counter: "mm_count"
            }
        );
        assert_eq!(v[0].kind.property(), Property::E);
        assert_eq!(v[0].mm, id);
    }
}
