//! The machine-wide state: the mm arena, every CPU's shared per-CPU state, the chosen
//! scheme and arch, and the configuration (including which mutant, if any, is active).
//!
//! Reading order for the model: [`crate::mm`] (the arena and the reference kinds), then
//! [`crate::cpu`] and this file (the machine), then the two traits
//! ([`crate::scheme::Scheme`], [`crate::arch::Arch`]), then [`crate::sched`] and
//! [`crate::lifecycle`] (the kernel paths, in the kernel's order), then the schemes and
//! archs themselves, each telling its protocol in its module doc.

use crate::arch::Arch;
use crate::config::Config;
use crate::cpu::{Cpu, CpuShared};
use crate::cpumask::SharedCpuMask;
use crate::mm::{Arena, MmId};
use crate::mutant::FaultPoint;
use crate::oracle::{Violation, ViolationKind};
use crate::profile::Item::{
    ExitMmMmapLock, MmCidLock, MmCidPercpu, MmCidTask, NohzIdle, PidmapLock, TasklistLock,
    TtwuQueue, TtwuRqLock,
};
use crate::scheme::Scheme;
use crate::smp::IpiHost;
use crate::sync::{raw::AtomicUsize, CachePadded, Field, Ordering, SharedU64, Tag};
use crate::tracepoint::{Span, Tracepoint};
use std::sync::Arc;

/// The most simulated CPUs a machine may have (`CONFIG_NR_CPUS` of the largest
/// distribution kernels). Masks and mailboxes are sized at boot for the CPUs a machine
/// really has.
pub const MAX_CPUS: usize = 4096;

/// `static struct nohz` of `kernel/sched/fair.c`, as far as idle entry and exit touch it.
pub(crate) struct Nohz {
    /// `nohz.idle_cpus_mask`.
    pub(crate) idle_cpus_mask: SharedCpuMask,
    /// `nohz.nr_cpus`.
    pub(crate) nr_cpus: CachePadded<SharedU64>,
}

/// One simulated machine running scheme `S` on arch `A`.
pub struct Kernel<S: Scheme, A: Arch> {
    /// Every mm, behind generation-checked handles.
    pub arena: Arena,
    /// Each CPU's state that other CPUs may touch.
    pub cpus: Box<[CpuShared<S, A>]>,
    /// `cpu_online_mask`.
    pub(crate) online: SharedCpuMask,
    /// The nohz idle balancer's machine-wide state (touched only under a profile with
    /// [`crate::profile::Item::NohzIdle`]).
    pub(crate) nohz: Nohz,
    /// `tasklist_lock` (touched only under [`crate::profile::Item::TasklistLock`]).
    pub(crate) tasklist_lock: CachePadded<SharedU64>,
    /// `pidmap_lock` (touched only under [`crate::profile::Item::PidmapLock`]).
    pub(crate) pidmap_lock: CachePadded<SharedU64>,
    /// How CPUs wait for the IPIs they sent, when the host plays them all (see
    /// [`crate::smp`]); `None`: they spin.
    pub(crate) ipi_host: Option<Arc<dyn IpiHost<S, A>>>,
    /// The scheme's machine-wide state.
    pub scheme: S,
    /// The arch's machine-wide state.
    pub arch: A,
    /// The configuration.
    pub cfg: Config,
    violations: AtomicUsize,
}

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// Boots a machine: every CPU starts online, running its idle task on `init_mm`.
    ///
    /// Returns the shared machine and each CPU's local state (hand one to each host
    /// thread).
    pub fn boot(mut cfg: Config) -> (Kernel<S, A>, Vec<Cpu<S, A>>) {
        if let Some(m) = cfg.mutant {
            // MUTANT: the fixes the active mutant turns off (or a finding's configuration).
            for &setting in m.info().configure {
                cfg.apply(setting);
            }
        }
        let n = cfg.nr_cpus.clamp(1, MAX_CPUS);
        let k = Kernel {
            arena: Arena::new(cfg.arena_capacity, n),
            cpus: (0..n).map(|i| CpuShared::new(i, n)).collect(),
            online: crate::smp::boot_online_mask(n),
            nohz: Nohz {
                idle_cpus_mask: SharedCpuMask::new(n, Field::NohzIdleCpusMask, 0),
                nr_cpus: CachePadded(SharedU64::new(0, Tag::new(Field::NohzNrCpus, 0))),
            },
            tasklist_lock: CachePadded(SharedU64::new(0, Tag::new(Field::TasklistLock, 0))),
            pidmap_lock: CachePadded(SharedU64::new(0, Tag::new(Field::PidmapLock, 0))),
            ipi_host: None,
            scheme: S::new(&cfg),
            arch: A::new(&cfg),
            cfg: Config { nr_cpus: n, ..cfg },
            violations: AtomicUsize::new(0),
        };
        let cpus = (0..n).map(|i| Cpu::new(i, &k.cfg)).collect();
        (k, cpus)
    }

    /// Makes `host` the way CPUs wait for the IPIs they sent (a host that plays every
    /// CPU on one thread needs this; see [`crate::smp`]).
    pub fn set_ipi_host(&mut self, host: Arc<dyn IpiHost<S, A>>) {
        self.ipi_host = Some(host);
    }

    /// Number of simulated CPUs.
    #[inline]
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// Violations found so far, on every CPU.
    pub fn violations(&self) -> usize {
        // ORDERING: Relaxed: a poll; the host reads each CPU's list after joining it.
        self.violations.load(Ordering::Relaxed)
    }

    /// A point between two steps of a protocol where another CPU may run: a host that
    /// serialises the CPUs (the checker) switches here; natively it does nothing.
    ///
    /// Model code calls it between the steps of `context_switch`, of every lifecycle
    /// operation and of teardown, so a scheduler can interleave CPUs inside them.
    #[inline]
    pub fn preempt_point(&self) {
        if let Some(preempt) = self.cfg.preempt {
            preempt();
        }
    }

    /// An interrupts-on window that a race needs held open, traced as `span` on `mm`:
    /// a preemption point, the interrupts pending here, a preemption point. Both points
    /// call [`Config::window_preempt`] when the host set it (the checker then may let
    /// every other CPU run first, the window held open), else [`Config::preempt`].
    pub(crate) fn irqs_on_window(&self, cpu: &mut Cpu<S, A>, span: Span, mm: MmId) {
        cpu.trace(Tracepoint::Begin(span, mm));
        let point = self.cfg.window_preempt.or(self.cfg.preempt);
        if let Some(point) = point {
            point();
        }
        self.irq_point(cpu);
        if let Some(point) = point {
            point();
        }
        cpu.trace(Tracepoint::End(span, mm));
    }

    /// A point where an active mutant may act (see [`crate::mutant`]); nothing happens
    /// unless one is on.
    #[inline]
    pub(crate) fn fault_point(&self, cpu: &mut Cpu<S, A>, at: FaultPoint) {
        if self.cfg.mutant.is_some() {
            S::fault_point(self, cpu, at);
        }
    }

    /// Records a violation found by `cpu`.
    #[cold]
    pub fn report(&self, cpu: &mut Cpu<S, A>, mm: MmId, kind: ViolationKind) {
        // ORDERING: Relaxed: a total for hosts to poll; each CPU keeps its own list.
        self.violations.fetch_add(1, Ordering::Relaxed);
        cpu.stats.violations += 1;
        if cpu.violations.len() < 64 {
            cpu.violations.push(Violation {
                cpu: cpu.id,
                step: cpu.step,
                mm,
                kind,
            });
        }
    }

    /// Follows a handle, reporting a use-after-free (property a) if it is stale.
    #[inline]
    pub fn mm(&self, cpu: &mut Cpu<S, A>, id: MmId, via: &'static str) -> Option<&crate::mm::Mm> {
        match self.arena.get(id) {
            Ok(mm) => Some(mm),
            Err(_) => {
                self.report(cpu, id, ViolationKind::UseAfterFree { via });
                None
            }
        }
    }

    /// Property e at quiescence: every mm but `init_mm` freed (unless the scheme never
    /// frees). Call when every task has exited and every CPU has switched to `init_mm`.
    pub fn check_quiescent(&self, cpu: &mut Cpu<S, A>) {
        if !S::FREES_MMS {
            return;
        }
        for id in self.arena.live_ids() {
            let (users, count) = match self.arena.get(id) {
                Ok(mm) => (mm.users(), mm.count()),
                Err(_) => continue,
            };
            self.report(cpu, id, ViolationKind::Leak { users, count });
        }
    }
}

/// The kernel profile's shared accesses ([`crate::profile`]): the remote wakeup, the
/// wake list's drain, nohz idle entry and exit, and `mm_cid` on a switch. They live here,
/// beside the kernel they act on, so the profile module stays a leaf of the model.
impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// The shared accesses of a remote wakeup (`try_to_wake_up` → `ttwu_queue`) made by
    /// `cpu` to wake a task on `target`, under the machine's profile: the wake list
    /// (`llist_add` on `target`'s `call_single_queue`) when `TTWU_QUEUE` is on and
    /// `ttwu_queue_cond` holds (the two CPUs share no cache, or the target is idle), else
    /// the target's `rq->lock` (lock and unlock). The host layer calls it once per
    /// remote wakeup, where it decides the target.
    pub fn ttwu_accesses(
        &self,
        cpu: &mut Cpu<S, A>,
        target: usize,
        target_idle: bool,
        shares_cache: bool,
    ) {
        let p = &self.cfg.profile;
        if target == cpu.id || !p.has(TtwuRqLock) {
            return;
        }
        let t = &self.cpus[target];
        if p.has(TtwuQueue) && (!shares_cache || target_idle) {
            // ORDERING: Release, as llist_add's cmpxchg publishes the entry.
            t.ipi
                .wake_list_head()
                .fetch_or(&mut cpu.acct, 0, Ordering::Release);
            // ORDERING: Relaxed: model bookkeeping standing for the list's content.
            t.wake_pending.0.store(true, Ordering::Relaxed);
        } else {
            self.rq_lock_remote(cpu, target);
        }
    }

    /// The target side of the wake list: `sched_ttwu_pending`'s `llist_del_all` on this
    /// CPU's own `call_single_queue`, when wakeups were queued there (performed at the
    /// CPU's next switch: a named simplification). Called on every context switch: a
    /// profile without `TTWU_QUEUE` queues nothing, and pays nothing here.
    #[inline]
    pub(crate) fn ttwu_drain(&self, cpu: &mut Cpu<S, A>) {
        if !self.cfg.profile.has(TtwuQueue) {
            return;
        }
        let me = &self.cpus[cpu.id];
        // ORDERING: Relaxed: model bookkeeping (see WakeListPending).
        if me.wake_pending.0.swap(false, Ordering::Relaxed) {
            // ORDERING: Acquire, as llist_del_all's xchg takes the entries.
            me.ipi
                .wake_list_head()
                .fetch_or(&mut cpu.acct, 0, Ordering::Acquire);
        }
    }

    /// Idle entry's profile accesses (`do_idle` → `tick_nohz_idle_stop_tick` →
    /// `nohz_balance_enter_idle`).
    #[inline]
    pub(crate) fn idle_enter(&self, cpu: &mut Cpu<S, A>) {
        if !self.cfg.profile.has(NohzIdle) {
            return;
        }
        // ORDERING: Relaxed, as cpumask_set_cpu and atomic_inc (unordered RMWs); the
        // balancer reads them racily.
        self.nohz
            .idle_cpus_mask
            .set(&mut cpu.acct, cpu.id, Ordering::Relaxed);
        self.nohz
            .nr_cpus
            .fetch_add(&mut cpu.acct, 1, Ordering::Relaxed);
    }

    /// Idle exit's profile accesses (`nohz_balance_exit_idle`).
    #[inline]
    pub(crate) fn idle_exit(&self, cpu: &mut Cpu<S, A>) {
        if !self.cfg.profile.has(NohzIdle) {
            return;
        }
        // ORDERING: Relaxed, as cpumask_clear_cpu and atomic_dec.
        self.nohz
            .idle_cpus_mask
            .clear(&mut cpu.acct, cpu.id, Ordering::Relaxed);
        self.nohz
            .nr_cpus
            .fetch_sub(&mut cpu.acct, 1, Ordering::Relaxed);
    }

    /// `switch_mm_cid(rq, prev, next)`'s shared accesses under the profile: `prev_user`
    /// and `next_mm` say whether a user task is switched out and which mm is switched
    /// in.
    #[inline]
    pub(crate) fn switch_mm_cid(
        &self,
        cpu: &mut Cpu<S, A>,
        prev_mm: Option<crate::mm::MmId>,
        next_mm: Option<crate::mm::MmId>,
    ) {
        let p = &self.cfg.profile;
        if p.has(MmCidLock) {
            if prev_mm.is_some() && prev_mm == next_mm {
                // Same mm: the CID is handed from prev to next without the lock.
                return;
            }
            if let Some(mm) = prev_mm {
                self.mm_cid_locked(cpu, mm); // mm_cid_put
            }
            if let Some(mm) = next_mm {
                self.mm_cid_locked(cpu, mm); // mm_cid_get
            }
        } else if p.has(MmCidPercpu) {
            for mm in [prev_mm, next_mm].into_iter().flatten() {
                if let Some(m) = self.mm(cpu, mm, "mm->pcpu_cid") {
                    // ORDERING: Relaxed: a plain read of a read-mostly pointer.
                    m.cid.load(&mut cpu.acct, Ordering::Relaxed);
                }
            }
        } else if p.has(MmCidTask) {
            if let Some(mm) = next_mm {
                if let Some(m) = self.mm(cpu, mm, "mm->mm_cid") {
                    // ORDERING: Relaxed: a plain read of the mode word.
                    m.cid.load(&mut cpu.acct, Ordering::Relaxed);
                }
            }
        }
    }

    /// One `mm_cid_get` or `mm_cid_put` of v6.3: `raw_spin_lock(&mm->cid_lock)`, a
    /// search and update of `mm_cidmask(mm)`, `raw_spin_unlock`.
    fn mm_cid_locked(&self, cpu: &mut Cpu<S, A>, mm: crate::mm::MmId) {
        if mm.is_init() {
            return;
        }
        let Some(m) = self.mm(cpu, mm, "mm->cid_lock") else {
            return;
        };
        // ORDERING: the lock's acquire and release; the model keeps no CID (nothing
        // reads it), so the lock word is only taken and given back.
        m.cid.fetch_add(&mut cpu.acct, 1, Ordering::Acquire);
        m.cidmask.load(&mut cpu.acct, Ordering::Relaxed);
        m.cidmask.fetch_or(&mut cpu.acct, 0, Ordering::Relaxed);
        m.cid.fetch_sub(&mut cpu.acct, 1, Ordering::Release);
    }

    // ---- fork and exit ----------------------------------------------------------------

    /// A spinlock or the write side of an rwlock taken and released by `cpu`, as a
    /// queued lock does it without contention: an acquiring RMW on the lock word, a
    /// release store at unlock. The model's critical sections never wait (nothing else
    /// the model does holds these locks), so only the line's traffic is modelled.
    fn lock_unlock(cpu: &mut Cpu<S, A>, lock: &SharedU64) {
        // ORDERING: Acquire, as spin_lock / write_lock (queued locks: an acquiring
        // cmpxchg).
        lock.fetch_or(&mut cpu.acct, 0, Ordering::Acquire);
        // ORDERING: Release, as spin_unlock / write_unlock (a release store).
        lock.store(&mut cpu.acct, 0, Ordering::Release);
    }

    /// `write_lock_irq(&tasklist_lock)` ... `write_unlock_irq`, under the profile.
    pub(crate) fn tasklist_write(&self, cpu: &mut Cpu<S, A>) {
        if self.cfg.profile.has(TasklistLock) {
            Self::lock_unlock(cpu, &self.tasklist_lock);
        }
    }

    /// `alloc_pid`'s shared accesses in the root PID namespace: `pidmap_lock` around
    /// `idr_alloc_cyclic`, then again around `idr_replace` and `pid_allocated++`.
    pub(crate) fn alloc_pid(&self, cpu: &mut Cpu<S, A>) {
        if self.cfg.profile.has(PidmapLock) {
            Self::lock_unlock(cpu, &self.pidmap_lock);
            Self::lock_unlock(cpu, &self.pidmap_lock);
        }
    }

    /// `free_pid`'s shared access: `spin_lock_irqsave(&pidmap_lock)` around
    /// `idr_remove` and `pid_allocated--`.
    pub(crate) fn free_pid(&self, cpu: &mut Cpu<S, A>) {
        if self.cfg.profile.has(PidmapLock) {
            Self::lock_unlock(cpu, &self.pidmap_lock);
        }
    }

    /// `mmap_read_lock(mm)` (`down_read`: an acquiring add to the rwsem's count) when
    /// `lock`, `mmap_read_unlock(mm)` (a releasing add) otherwise, under the profile's
    /// [`crate::profile::Item::ExitMmMmapLock`].
    pub(crate) fn exit_mm_mmap_lock(&self, cpu: &mut Cpu<S, A>, mm: crate::mm::MmId, lock: bool) {
        if !self.cfg.profile.has(ExitMmMmapLock) {
            return;
        }
        let Some(m) = self.mm(cpu, mm, "mmap_lock") else {
            return;
        };
        if lock {
            // ORDERING: Acquire, as down_read's atomic_long_add_return_acquire.
            m.mmap_lock.fetch_add(&mut cpu.acct, 1, Ordering::Acquire);
        } else {
            // ORDERING: Release, as up_read's atomic_long_add_return_release.
            m.mmap_lock.fetch_sub(&mut cpu.acct, 1, Ordering::Release);
        }
    }
}
