//! Per-CPU state: the runqueue fields the schemes use, what the CPU has loaded, and the
//! interrupt state (the IPI mailbox is in [`crate::smp`]).
//!
//! Each CPU is split in two, as the kernel's per-CPU data effectively is:
//! - [`Cpu`] is what only this CPU touches (its `rq` fields, its counters). The host
//!   thread that plays the CPU owns it and passes it as `&mut` to every model call, so
//!   nothing on the switch path takes a lock, and the model itself writes only lines
//!   this CPU owns (the scheme's own shared writes, such as `mm_count`, aside).
//! - [`CpuShared`] is what other CPUs read or write (the hardware CR3 the oracle watches,
//!   `rq->curr` for membarrier, the IPI mailbox, hazard slots): each part on its own line.

use crate::arch::Arch;
use crate::mm::{MmId, MmUsers};
use crate::oracle::{Stats, TeardownHist, Violation};
use crate::scheme::Scheme;
use crate::smp::Mailbox;
use crate::sync::{raw, Acct, CachePadded, Field, Ordering, SharedU64, Tag};
use core::marker::PhantomData;

/// Proof that interrupts are disabled on this CPU: no IPI (and so no shootdown) can run
/// here while it lives.
///
/// # Invariants
/// Made only by [`Cpu::local_irq_disable`] and consumed only by
/// [`Cpu::local_irq_enable`]; it is `!Send`, so it cannot leave the CPU that made it.
#[must_use = "interrupts stay disabled until the guard is given back to local_irq_enable"]
pub struct IrqGuard {
    cpu: usize,
    _not_send: PhantomData<*const ()>,
}

/// A borrow of the mm a task runs on (the CPU's lazily loaded mm, or the task's own),
/// valid while interrupts stay disabled.
///
/// This is how generic code and the arch hooks reach the mm `switch_mm` leaves or
/// `enter_lazy_tlb` keeps when the scheme keeps no `active_mm`: the scheme's guarantee (a
/// shootdown IPI cannot run while interrupts are off, or the published hazard slot) is
/// what keeps the mm alive, so the borrow lives exactly as long as the [`IrqGuard`] it
/// was taken under and cannot cross to another thread.
///
/// # Invariants
/// While a `LazyMm` exists, the mm it names is kept alive by the scheme (a reference,
/// a hazard pointer, or the disabled interrupts that hold off its shootdown), and
/// interrupts stay disabled on the CPU it was taken on: it borrows that CPU's guard.
pub struct LazyMm<'g> {
    id: MmId,
    _borrow: PhantomData<(&'g IrqGuard, *const ())>,
}

impl<'g> LazyMm<'g> {
    pub(crate) fn new(id: MmId, _irq: &'g IrqGuard) -> LazyMm<'g> {
        // INVARIANT: the caller names an mm the scheme keeps alive while `_irq` lives.
        LazyMm {
            id,
            _borrow: PhantomData,
        }
    }

    /// `init_mm`, which is never freed: a borrow that needs no guard.
    pub(crate) fn init() -> LazyMm<'static> {
        // INVARIANT: init_mm lives for the whole run (its slot is never freed).
        LazyMm {
            id: MmId::INIT,
            _borrow: PhantomData,
        }
    }

    /// The mm of a real user reference, alive while `users` is borrowed (`mm_users`
    /// above zero keeps `mm_count` above zero).
    pub fn of_user(users: &'g MmUsers) -> LazyMm<'g> {
        // INVARIANT: `users` holds mm_users, so the mm is not freed while it is borrowed.
        LazyMm {
            id: users.id(),
            _borrow: PhantomData,
        }
    }

    /// A borrow that does not have the invariant: `id` was read before `_irq` was taken,
    /// and nothing may have kept it alive since. Only for modelling kernel code that
    /// does exactly this (mainline's `sched_force_init_mm`); the arena reports every use
    /// of it after the mm was freed.
    pub(crate) fn unprotected(id: MmId, _irq: &'g IrqGuard) -> LazyMm<'g> {
        LazyMm {
            id,
            _borrow: PhantomData,
        }
    }

    /// The mm, for model code that must name it (to compare it, to follow it through the
    /// arena while the borrow keeps it alive, to record it in a scheme's own words).
    pub fn id(&self) -> MmId {
        self.id
    }

    /// Whether the borrowed mm is `mm`.
    pub fn is(&self, mm: MmId) -> bool {
        self.id == mm
    }

    /// Whether the CPU is on `init_mm` (nothing lazy to protect).
    pub fn is_init(&self) -> bool {
        self.id.is_init()
    }
}

/// The part of a CPU that other CPUs read or write.
pub struct CpuShared<S: Scheme, A: Arch> {
    /// The hardware page-table root (CR3), mirrored for the oracle: it watches this when
    /// an mm is freed. The register is CPU-local; other CPUs never read it in a kernel.
    cr3: CachePadded<raw::AtomicU64>,
    /// The mm whose page tables below the root this CPU's paging-structure caches may
    /// hold (an encoded [`MmId`], 0 for none): set by a CR3 write, cleared by a TLB
    /// flush of that mm. One word, so the oracle never sees it torn from CR3.
    /// Hardware state the oracle tracks: never counted.
    walk_cache: CachePadded<raw::AtomicU64>,
    /// The mm of `rq->curr` (0 for a kernel thread): what `membarrier()` reads.
    pub(crate) rq_curr_mm: CachePadded<SharedU64>,
    /// `rq->__lock`, as far as the model needs it: the word whose `LOCK`-prefixed RMW is
    /// x86's barrier before the `rq->curr` store (see [`Kernel::rq_lock`]). Only this
    /// CPU takes it in the model (the hosts' wakeups do not go through it).
    rq_lock: CachePadded<SharedU64>,
    /// The CPU's IPI mailbox (`call_single_queue`) and its outgoing call.
    pub(crate) ipi: Mailbox,
    /// Whether wakeups wait on this CPU's wake list (model bookkeeping: see
    /// [`crate::profile::WakeListPending`]).
    pub(crate) wake_pending: crate::profile::WakeListPending,
    /// The scheme's per-CPU state that other CPUs touch (hazard slots, `rq.lazy_mm`).
    pub scheme: S::CpuShared,
    /// The arch's per-CPU state that other CPUs touch.
    pub arch: A::CpuShared,
}

impl<S: Scheme, A: Arch> CpuShared<S, A> {
    /// CPU `cpu`'s shared state on a machine of `nr_cpus` CPUs.
    pub(crate) fn new(cpu: usize, nr_cpus: usize) -> Self {
        let obj = cpu as u32;
        CpuShared {
            cr3: CachePadded(raw::AtomicU64::new(MmId::INIT.encode())),
            walk_cache: CachePadded(raw::AtomicU64::new(0)),
            rq_curr_mm: CachePadded(SharedU64::new(0, Tag::new(Field::RqCurr, obj))),
            rq_lock: CachePadded(SharedU64::new(0, Tag::new(Field::RqLock, obj))),
            ipi: Mailbox::new(nr_cpus, cpu),
            wake_pending: Default::default(),
            scheme: S::new_cpu_shared(cpu),
            arch: A::new_cpu_shared(cpu),
        }
    }

    /// The mm this CPU's hardware has loaded, as the oracle sees it (never counted).
    pub fn oracle_cr3(&self) -> MmId {
        MmId::decode(self.cr3.load(Ordering::Relaxed)).unwrap_or(MmId::INIT)
    }

    /// Mirrors a CR3 write for the oracle.
    #[inline]
    pub(crate) fn mirror_cr3(&self, mm: MmId) {
        // ORDERING: Relaxed. The oracle reads this only after the scheme's own
        // synchronisation (a reference drop, an IPI acknowledgement) orders the read after
        // this CPU's switch; the oracle must not add synchronisation the scheme lacks.
        self.cr3.store(mm.encode(), Ordering::Relaxed);
    }

    /// Whether this CPU's paging-structure caches may still hold entries below `mm`'s
    /// root (the oracle's view of hardware).
    pub fn oracle_walk_cached(&self, mm: MmId) -> bool {
        self.walk_cache.load(Ordering::Relaxed) == mm.encode()
    }

    /// A TLB flush of `mm` on this CPU empties its paging-structure caches of it.
    #[inline]
    pub(crate) fn flush_walk_cache(&self, mm: MmId) {
        // ORDERING: Relaxed: hardware state the oracle keeps; a CR3 write that replaced
        // the cached mm meanwhile wins.
        let _ =
            self.walk_cache
                .compare_exchange(mm.encode(), 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The mm of this CPU's `rq->curr`, as the oracle and reports see it.
    pub fn oracle_rq_curr_mm(&self) -> Option<MmId> {
        MmId::decode(self.rq_curr_mm.oracle_load(Ordering::Relaxed))
    }

    /// Whether a call is waiting in this CPU's mailbox: a host's poll between steps,
    /// standing in for the interrupt line (never counted).
    #[inline]
    pub fn ipi_pending(&self) -> bool {
        self.ipi.pending()
    }
}

/// The part of a CPU that only the CPU itself touches (its host thread owns it).
///
/// # Invariants
/// - `prev_lazy_mm` is `Some` only inside a kernel→user `context_switch`, from the
///   switch of the mm until `finish_task_switch` drops it.
/// - `cr3` is what this CPU last wrote to its page-table root, and the shared mirror
///   ([`CpuShared::oracle_cr3`]) holds the same value.
/// - `irqs_disabled` is true exactly while an [`IrqGuard`] made by
///   [`Cpu::local_irq_disable`] is alive, or an IPI handler runs.
pub struct Cpu<S: Scheme, A: Arch> {
    /// The CPU number.
    pub id: usize,
    /// Steps taken (context switches and lifecycle events); violations are stamped with it.
    pub step: u64,
    /// What this CPU counted (`shared_rmw` and `full_fences` live in `acct`, see
    /// [`Cpu::stats`]).
    pub(crate) stats: Stats,
    /// The time of each teardown this CPU timed (kept beside `stats`, not in it: see
    /// [`TeardownHist`]).
    pub(crate) teardowns: TeardownHist,
    /// The accounting of this CPU's protocol accesses (counts, and the access log while
    /// recording).
    pub acct: Acct,
    /// Violations this CPU found (the first 64).
    pub violations: Vec<Violation>,
    /// `rq->prev_lazy_mm`: the lazy mm to drop in `finish_task_switch`.
    pub(crate) prev_lazy_mm: Option<S::LazyRef>,
    /// The mm this CPU's page tables belong to, as generic code may know it (set by the
    /// arch's `switch_mm`; x86 keeps its own `loaded_mm` with the switching sentinel).
    pub(crate) loaded_mm: MmId,
    /// Local copy of the hardware CR3.
    pub(crate) cr3: MmId,
    /// The scheme's per-CPU state that only this CPU touches.
    pub scheme: S::CpuLocal,
    /// The arch's per-CPU state that only this CPU touches.
    pub arch: A::CpuLocal,
    /// Nesting depth of teardown stages, so their time is counted once.
    pub(crate) teardown_depth: u32,
    pub(crate) irqs_disabled: bool,
    pub(crate) online: bool,
    /// The full fences counted when a kernel→user switch stored `rq->curr` (property f,
    /// kernel→user half: a fence must follow before user space runs).
    pub(crate) membarrier_mark: Option<u64>,
    /// The full fences counted, and the mm, when a task's user accesses ended (a switch
    /// away from a user task entering `__schedule`, `exit_mm`, `kthread_unuse_mm`, a
    /// user task's `exec_mmap`; property f, user→kernel half: a fence must come before
    /// the `rq->curr` store).
    pub(crate) membarrier_entry_mark: Option<(u64, MmId)>,
    /// `current->mm` as an NMI on this CPU reads it: the per-CPU `current` changes in
    /// `switch_to`, after `switch_mm`, so during a switch it is still `prev`'s.
    current_mm: Option<MmId>,
    pub(crate) nmi_countdown: u32,
    pub(crate) nmi_period: u32,
    rng: u64,
    pub(crate) walk_countdown: u32,
    pub(crate) walk_period: u32,
    /// Tracepoints, while a host has turned them on (see [`crate::tracepoint`]).
    tracing: Option<Box<crate::tracepoint::Tracing>>,
}

impl<S: Scheme, A: Arch> Cpu<S, A> {
    pub(crate) fn new(id: usize, cfg: &crate::config::Config) -> Self {
        Cpu {
            id,
            step: 0,
            stats: Stats::default(),
            teardowns: TeardownHist::default(),
            acct: Acct::with_layout(cfg.profile.layout()),
            violations: Vec::new(),
            prev_lazy_mm: None,
            loaded_mm: MmId::INIT,
            cr3: MmId::INIT,
            scheme: Default::default(),
            arch: Default::default(),
            teardown_depth: 0,
            irqs_disabled: false,
            online: true,
            membarrier_mark: None,
            membarrier_entry_mark: None,
            current_mm: None,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
            walk_countdown: cfg.speculative_walk_period,
            walk_period: cfg.speculative_walk_period,
            nmi_countdown: cfg.nmi_period,
            nmi_period: cfg.nmi_period,
            tracing: None,
        }
    }

    /// Reseeds this CPU's random choices (speculative walks, NMIs).
    pub fn seed(&mut self, seed: u64) {
        self.rng = (seed ^ (self.id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)) | 1;
    }

    /// A pseudo-random number from this CPU's own generator (xorshift64*).
    #[inline]
    pub fn rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `local_irq_disable()`.
    #[inline]
    pub fn local_irq_disable(&mut self) -> IrqGuard {
        debug_assert!(
            !self.irqs_disabled,
            "cpu {}: irqs already disabled",
            self.id
        );
        self.irqs_disabled = true;
        IrqGuard {
            cpu: self.id,
            _not_send: PhantomData,
        }
    }

    /// `local_irq_enable()`: gives the guard back.
    #[inline]
    pub fn local_irq_enable(&mut self, irq: IrqGuard) {
        debug_assert_eq!(irq.cpu, self.id, "irq guard from another cpu");
        self.irqs_disabled = false;
    }

    /// The guard an interrupt handler runs under: interrupts are already off (the
    /// handler runs in hard-irq context) and stay off when it is dropped. It lets a
    /// handler call hooks that need proof of disabled interrupts (`switch_mm_irqs_off`);
    /// it must never be given to [`Cpu::local_irq_enable`].
    pub(crate) fn hardirq_guard(&self) -> IrqGuard {
        debug_assert!(self.irqs_disabled, "cpu {}: handler with irqs on", self.id);
        IrqGuard {
            cpu: self.id,
            _not_send: PhantomData,
        }
    }

    /// Whether interrupts are disabled.
    pub fn irqs_disabled(&self) -> bool {
        self.irqs_disabled
    }

    /// Whether this CPU is online.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// The mm this CPU has loaded, borrowed for as long as interrupts stay disabled.
    #[inline]
    pub fn lazy_mm<'g>(&self, irq: &'g IrqGuard) -> LazyMm<'g> {
        LazyMm::new(self.loaded_mm, irq)
    }

    /// The mm the hardware has loaded (CR3).
    pub(crate) fn cr3(&self) -> MmId {
        self.cr3
    }

    /// The mm generic code believes is loaded (x86's `loaded_mm` without the sentinel).
    /// Public for schemes outside this crate (an IPI handler asks it, as
    /// `do_shoot_lazy_tlb` asks `current->active_mm`).
    pub fn loaded_mm(&self) -> MmId {
        self.loaded_mm
    }

    /// Records a new software view of the loaded mm (arch `switch_mm` calls this).
    #[inline]
    pub(crate) fn set_loaded_mm(&mut self, mm: MmId) {
        self.loaded_mm = mm;
    }

    /// `current->mm` as an NMI would read it now (`None` for a kernel thread).
    pub fn current_mm(&self) -> Option<MmId> {
        self.current_mm
    }

    /// `current->mm` changes: `switch_to` made `next` current, or current itself took or
    /// gave up an mm (`exit_mm`, `exec_mmap`, `kthread_use_mm`, `kthread_unuse_mm`).
    #[inline]
    pub(crate) fn set_current_mm(&mut self, mm: Option<MmId>) {
        self.current_mm = mm;
    }

    /// Whether `rq->prev_lazy_mm` holds a lazy reference.
    pub fn has_prev_lazy_mm(&self) -> bool {
        self.prev_lazy_mm.is_some()
    }

    /// What this CPU counted, with `shared_rmw` and `full_fences` derived from its
    /// protocol accesses.
    #[inline]
    pub fn stats(&self) -> Stats {
        Stats {
            shared_rmw: self.acct.rmw(),
            full_fences: self.acct.fences(),
            ..self.stats
        }
    }

    /// The time of each teardown this CPU timed (`__mmput` and `__mmdrop`, when the host
    /// gave a clock).
    pub fn teardowns(&self) -> &TeardownHist {
        &self.teardowns
    }

    /// Turns the recording of this CPU's protocol accesses on or off (see
    /// [`crate::sync`]).
    pub fn set_recording(&mut self, on: bool) {
        self.acct.set_recording(on);
    }

    /// Turns this CPU's tracepoints on, stamped with `clock` (the host's), or off
    /// (`None`, dropping what was not taken). See [`crate::tracepoint`].
    pub fn set_tracing(&mut self, clock: Option<fn() -> u64>) {
        self.tracing = clock.map(|clock| {
            Box::new(crate::tracepoint::Tracing {
                clock,
                events: Vec::new(),
            })
        });
    }

    /// Takes the tracepoints recorded since the last call, oldest first (empty when
    /// tracing is off).
    pub fn take_trace(&mut self) -> Vec<crate::tracepoint::TraceEvent> {
        self.tracing
            .as_mut()
            .map_or_else(Vec::new, |t| std::mem::take(&mut t.events))
    }

    /// Records `tp` if tracing is on (one branch when it is off).
    #[inline]
    pub(crate) fn trace(&mut self, tp: crate::tracepoint::Tracepoint) {
        if self.tracing.is_some() {
            self.trace_slow(tp);
        }
    }

    #[cold]
    fn trace_slow(&mut self, tp: crate::tracepoint::Tracepoint) {
        let step = self.step;
        if let Some(t) = self.tracing.as_mut() {
            let ts = (t.clock)();
            t.events
                .push(crate::tracepoint::TraceEvent { ts, step, tp });
        }
    }

    /// `smp_mb()`: a full fence, counted.
    #[inline]
    pub fn smp_mb(&mut self) {
        crate::sync::smp_mb(&mut self.acct);
    }
}

impl<S: Scheme, A: Arch> crate::Kernel<S, A> {
    /// Writes the hardware page-table root (the CR3 write).
    #[inline]
    pub(crate) fn load_cr3(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        cpu.cr3 = mm;
        cpu.acct.root_write();
        let me = &self.cpus[cpu.id];
        me.mirror_cr3(mm);
        // Without PCIDs, a CR3 write flushes what was cached of the old tables, and the
        // walks that follow cache entries of the new ones (a simplification: with PCIDs
        // x86 keeps the old mm's entries tagged; the model's x86 flushes them).
        let cached = if mm.is_init() { 0 } else { mm.encode() };
        me.walk_cache.store(cached, Ordering::Relaxed);
    }

    /// A broadcast TLB invalidation of `mm` (arm64's `tlbi ... is`, powerpc's `tlbie`):
    /// the hardware empties every CPU's paging-structure caches for it, with no IPI.
    pub(crate) fn broadcast_flush(&self, mm: MmId) {
        for c in self.cpus.iter() {
            c.flush_walk_cache(mm);
        }
    }

    /// The mm CPU `i`'s hardware has loaded, as the oracle sees it (for hosts' reports
    /// and timelines; never counted or recorded).
    pub fn oracle_cr3(&self, i: usize) -> MmId {
        self.cpus[i].oracle_cr3()
    }

    /// `raw_spin_rq_lock(rq)` in `__schedule`, followed by `smp_mb__after_spinlock()`:
    /// a full barrier before the `rq->curr` store, for every scheme (the scheduler's,
    /// not the scheme's).
    ///
    /// What each arch pays for it: on x86 the lock's `LOCK`-prefixed RMW is the barrier
    /// (one RMW, counted with the two barriers of a fully ordered RMW; natively the
    /// locked instruction alone), and `smp_mb__after_spinlock()` is empty; elsewhere the
    /// barrier is `smp_mb__after_spinlock()`'s `smp_mb()`, and the lock's acquire RMW is
    /// not modelled (a simplification: it orders nothing the model checks, and costs
    /// every scheme the same).
    #[inline]
    pub(crate) fn rq_lock(&self, cpu: &mut Cpu<S, A>) {
        if A::SPIN_LOCK_IS_FULL_BARRIER {
            let lock = &self.cpus[cpu.id].rq_lock;
            // ORDERING: fully ordered (the LOCK prefix): user accesses before
            // __schedule happen before the rq->curr store; pairs with membarrier()'s
            // full fence after it reads rq->curr. Only this CPU takes the lock in the
            // model, so the swap always finds it free.
            crate::sync::fully_ordered(&mut cpu.acct, |a| lock.swap(a, 1, Ordering::SeqCst));
        }
        A::smp_mb_after_spinlock(self, cpu);
    }

    /// A remote CPU's `rq_lock(rq)` as `ttwu_queue` takes it to wake a task on
    /// `target`: one RMW on the target's lock word.
    ///
    /// # Simplification
    /// The model does not wait for the lock (nobody else holds it across a step, and
    /// mutual exclusion of the runqueue is the host's), and the unlock store, a hit on
    /// the line the RMW just took, is not recorded; the lock word's value is left as it
    /// was (an RMW that adds nothing), so the target's own `rq_lock` is undisturbed.
    #[inline]
    pub(crate) fn rq_lock_remote(&self, cpu: &mut Cpu<S, A>, target: usize) {
        // ORDERING: Acquire, as spin_lock.
        self.cpus[target]
            .rq_lock
            .fetch_or(&mut cpu.acct, 0, Ordering::Acquire);
    }

    /// `raw_spin_rq_unlock_irq(rq)` in `finish_lock_switch`: a release store on x86 (the
    /// only arch whose lock word the model keeps).
    #[inline]
    pub(crate) fn rq_unlock(&self, cpu: &mut Cpu<S, A>) {
        if A::SPIN_LOCK_IS_FULL_BARRIER {
            // ORDERING: Release, as spin_unlock.
            self.cpus[cpu.id]
                .rq_lock
                .store(&mut cpu.acct, 0, Ordering::Release);
        }
    }

    /// Whether `mm` is registered for expedited membarrier
    /// (`MEMBARRIER_STATE_PRIVATE_EXPEDITED` in `mm->membarrier_state`), as the oracle
    /// sees it (never counted). `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` fails
    /// with `-EPERM` for any other mm, so property f is owed only to registered mms.
    pub fn oracle_membarrier_registered(&self, mm: MmId) -> bool {
        !mm.is_init()
            && self
                .arena
                .get(mm)
                .is_ok_and(|m| m.membarrier_state.oracle_load(Ordering::Relaxed) != 0)
    }

    /// `atomic_read(&mm->membarrier_state)` on a switch to `mm` (what
    /// `membarrier_switch_mm` copies into `rq->membarrier_state`; the model reads the mm
    /// directly, a simplification: the two agree whenever nobody is registering at
    /// that moment). The caller keeps `mm` alive (it is the mm being switched to).
    #[inline]
    pub(crate) fn membarrier_state(&self, cpu: &mut Cpu<S, A>, mm: MmId) -> u64 {
        match self.arena.get(mm) {
            // ORDERING: Relaxed, as atomic_read(): registration orders itself with
            // the runqueues by its own barriers and IPIs.
            Ok(m) => m.membarrier_state.load(&mut cpu.acct, Ordering::Relaxed),
            Err(_) => 0,
        }
    }

    /// `membarrier_arch_switch_mm(prev, next, tsk)` (powerpc's and riscv's
    /// `asm/membarrier.h`), for an arch's `switch_mm` that has decided the switch needs
    /// it: a full barrier when `next` is registered for expedited membarrier. `init_mm`
    /// never registers; the global-expedited state is not modelled.
    #[inline]
    pub(crate) fn membarrier_arch_switch_mm(&self, cpu: &mut Cpu<S, A>, next: MmId) {
        if next.is_init()
            || self.membarrier_state(cpu, next) & crate::mm::MEMBARRIER_STATE_PRIVATE_EXPEDITED == 0
        {
            return;
        }
        // ORDERING: "The membarrier system call requires a full memory barrier after
        // storing to rq->curr, before going back to user-space": pairs with the full
        // barrier membarrier() issues before it reads rq->curr.
        cpu.smp_mb();
    }

    /// `membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0)` by a task of `mm`:
    /// `atomic_or(MEMBARRIER_STATE_PRIVATE_EXPEDITED | ..._READY, &mm->membarrier_state)`
    /// and the full barrier after it (`sync_runqueues_membarrier_state`'s single-user
    /// path). The multi-user path (`synchronize_rcu()`, then IPIs to the CPUs running
    /// `mm` so that their `rq->membarrier_state` catches up) is not modelled: the model
    /// has no per-runqueue copy of the state to bring up to date.
    pub fn membarrier_register_private_expedited(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        let Ok(m) = self.arena.get(mm) else {
            self.report(
                cpu,
                mm,
                crate::oracle::ViolationKind::UseAfterFree {
                    via: "membarrier register",
                },
            );
            return;
        };
        // ORDERING: Relaxed, as atomic_or(); the fence below publishes it.
        m.membarrier_state.fetch_or(
            &mut cpu.acct,
            crate::mm::MEMBARRIER_STATE_PRIVATE_EXPEDITED,
            Ordering::Relaxed,
        );
        // ORDERING: no memory access following registration is reordered before it.
        cpu.smp_mb();
    }

    /// `rq->curr = next`, as `membarrier()` sees it (the mm of the new current task).
    ///
    /// Property f is checked around it. Before: if [`Kernel::membarrier_mark_entry`]
    /// armed the user→kernel half (a switch away from a user task, `exit_mm`,
    /// `kthread_unuse_mm`, a user task's `exec_mmap`), a full barrier must have been
    /// counted since. After: `enters_mm` (the CPU becomes a user of `mm` it was not:
    /// kernel→user, user→user between two mms, `kthread_use_mm`, a kernel thread's
    /// `exec_mmap`) arms the kernel→user half, which [`Kernel::membarrier_check`]
    /// settles as the CPU returns to user space.
    #[inline]
    pub(crate) fn rq_set_curr(&self, cpu: &mut Cpu<S, A>, mm: Option<MmId>, enters_mm: bool) {
        if let Some((mark, prev)) = cpu.membarrier_entry_mark.take() {
            // Property f, user→kernel half: a full barrier since the user accesses ended.
            if cpu.acct.fences() == mark {
                self.report(
                    cpu,
                    prev,
                    crate::oracle::ViolationKind::NoMembarrierBarrierBeforeCurr,
                );
            }
        }
        // ORDERING: Relaxed, like RCU_INIT_POINTER(rq->curr, next). Property f is that a
        // full barrier precedes this store (after the previous task's user accesses)
        // and follows it before the next user access; `membarrier()` pairs its own
        // full fences with those barriers.
        self.cpus[cpu.id].rq_curr_mm.store(
            &mut cpu.acct,
            mm.map_or(0, MmId::encode),
            Ordering::Relaxed,
        );
        if S::MEMBARRIER_SAFE {
            cpu.membarrier_mark = (enters_mm
                && mm.is_some_and(|mm| self.oracle_membarrier_registered(mm)))
            .then_some(cpu.acct.fences());
        }
    }

    /// Property f, user→kernel half: called where a task's user accesses to `prev_mm`
    /// end (`__schedule` switching away from a user task, before the rq lock;
    /// `exit_mm`, `kthread_unuse_mm` and a user task's `exec_mmap`, before their
    /// barrier). Only registered mms are owed it.
    #[inline]
    pub(crate) fn membarrier_mark_entry(&self, cpu: &mut Cpu<S, A>, prev_mm: Option<MmId>) {
        if S::MEMBARRIER_SAFE {
            cpu.membarrier_entry_mark = prev_mm
                .filter(|&mm| self.oracle_membarrier_registered(mm))
                .map(|mm| (cpu.acct.fences(), mm));
        }
    }

    /// Property f: called as a kernel→user switch returns to user space.
    #[inline]
    pub(crate) fn membarrier_check(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        if let Some(mark) = cpu.membarrier_mark.take() {
            if S::MEMBARRIER_SAFE && cpu.acct.fences() == mark {
                self.report(cpu, mm, crate::oracle::ViolationKind::NoMembarrierBarrier);
            }
        }
    }

    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` for `mm`, called by a task of `mm`
    /// on `cpu`: a full fence, the CPUs to IPI (every other online CPU whose `rq->curr`
    /// runs `mm`), and the full fence after the IPIs (the `mb` guard's two ends).
    ///
    /// The IPIs themselves are not sent: a CPU in the mask runs a full barrier in its
    /// handler, so it cannot break property f. Property f is about the CPUs left out,
    /// which must already have passed a full barrier between their `rq->curr` store and
    /// their next user-space access (scenario A, kernel→user), and between their last
    /// user access and the `rq->curr` store that made them look idle (scenarios B and
    /// C, user→kernel); the membarrier litmus tests call this. The caller's accesses
    /// after it returns come after its closing fence. An unregistered `mm` gets
    /// `-EPERM` in the kernel; here `None`.
    pub fn membarrier_targets(&self, cpu: &mut Cpu<S, A>, mm: MmId) -> Option<crate::CpuMask> {
        if !self.oracle_membarrier_registered(mm) {
            return None;
        }
        // ORDERING: (a) pairs with the full barrier each CPU passes between its
        // `rq->curr` store and its return to user space: either the load below sees
        // that CPU's new `rq->curr`, or that CPU sees every store made here before.
        cpu.smp_mb();
        let online = self.cpu_online_mask(cpu);
        let mut mask = crate::CpuMask::new(self.nr_cpus());
        for i in online.iter().filter(|&i| i != cpu.id) {
            // ORDERING: Relaxed, as membarrier's READ_ONCE(rq->curr): the fences order it.
            let curr = self.cpus[i]
                .rq_curr_mm
                .load(&mut cpu.acct, Ordering::Relaxed);
            if MmId::decode(curr) == Some(mm) {
                mask.set(i);
            }
        }
        // ORDERING: (c) pairs with the full barrier each CPU passes between its last
        // user access and its `rq->curr` store: if the load above saw the CPU gone
        // from mm, the caller's later loads see that CPU's earlier user stores.
        cpu.smp_mb();
        Some(mask)
    }

    /// Now and then, a speculative page walk through whatever CR3 holds (property b):
    /// hardware may walk the loaded page tables at any time, lazily loaded ones included.
    #[inline]
    pub fn maybe_speculate(&self, cpu: &mut Cpu<S, A>) {
        if cpu.walk_period == 0 {
            return;
        }
        cpu.walk_countdown -= 1;
        if cpu.walk_countdown == 0 {
            cpu.walk_countdown = 1 + (cpu.rand() % (2 * cpu.walk_period as u64)) as u32;
            self.speculative_walk(cpu);
        }
    }

    /// One speculative page walk through CR3.
    pub fn speculative_walk(&self, cpu: &mut Cpu<S, A>) {
        use crate::oracle::ViolationKind;
        cpu.stats.speculative_walks += 1;
        let mm = cpu.cr3;
        match self.arena.get(mm) {
            Err(_) => self.report(cpu, mm, ViolationKind::SpeculativeWalkOfFreed),
            // Through an entry its paging-structure caches still hold, the walk reaches
            // the lower tables even after exit_mmap cleared the root's entries.
            Ok(m) if !m.tables_live() && self.cpus[cpu.id].oracle_walk_cached(mm) => {
                self.report(cpu, mm, ViolationKind::SpeculativeWalkOfFreedTables)
            }
            Ok(_) => {}
        }
    }
}
