//! Per-CPU state: the runqueue fields the schemes use, what the CPU has loaded, the
//! interrupt state, and the IPI mailbox.
//!
//! Each CPU is split in two, as the kernel's per-CPU data effectively is:
//! - [`Cpu`] is what only this CPU touches (its `rq` fields, its counters). The host
//!   thread that plays the CPU owns it and passes it as `&mut` to every model call, so
//!   nothing on the switch path takes a lock, and the model itself writes only lines
//!   this CPU owns (the scheme's own shared writes, such as `mm_count`, aside).
//! - [`CpuShared`] is what other CPUs read or write (the hardware CR3 the oracle watches,
//!   `rq->curr` for membarrier, the IPI mailbox, hazard slots): each part on its own line.

use crate::arch::Arch;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::oracle::{Stats, Violation, ViolationKind};
use crate::scheme::Scheme;
use crate::sync::{fence, spin_wait, AtomicBool, AtomicU64, CachePadded, Ordering};
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

impl IrqGuard {
    /// The CPU whose interrupts this guard keeps disabled.
    pub fn cpu(&self) -> usize {
        self.cpu
    }
}

/// A borrow of the mm this CPU has loaded lazily, valid while interrupts stay disabled.
///
/// This is how generic code reaches the lazy mm when the scheme keeps no `active_mm`:
/// the scheme's guarantee (a shootdown IPI cannot run while interrupts are off, or the
/// published hazard slot) is what keeps the mm alive, so the borrow lives exactly as long
/// as the [`IrqGuard`] and the CPU it was taken from, and cannot cross to another thread.
pub struct LazyMm<'g> {
    id: MmId,
    _borrow: PhantomData<(&'g IrqGuard, *const ())>,
}

impl<'g> LazyMm<'g> {
    pub(crate) fn new(id: MmId, _irq: &'g IrqGuard) -> LazyMm<'g> {
        LazyMm {
            id,
            _borrow: PhantomData,
        }
    }

    /// The mm, for model code that must name it (switch_mm's `prev`).
    pub(crate) fn id(&self) -> MmId {
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

/// Whom an IPI is for: the scheme's handler or the arch's, with an operation code each
/// defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipi {
    /// Handled by `Scheme::handle_ipi`.
    Scheme(u8),
    /// Handled by `Arch::handle_ipi`.
    Arch(u8),
}

impl Ipi {
    fn encode(self) -> u64 {
        match self {
            Ipi::Scheme(op) => 0x100 | op as u64,
            Ipi::Arch(op) => 0x200 | op as u64,
        }
    }

    fn decode(w: u64) -> Option<Ipi> {
        match w >> 8 {
            1 => Some(Ipi::Scheme(w as u8)),
            2 => Some(Ipi::Arch(w as u8)),
            _ => None,
        }
    }
}

/// One sender's slot in a CPU's mailbox: at most one call from each sender is in flight
/// to each target, because `on_each_cpu_mask` waits for all of them before it returns.
struct CallSlot {
    /// The encoded [`Ipi`]; 0 when empty (the target clears it when the call is done).
    op: AtomicU64,
    /// The encoded mm argument.
    mm: AtomicU64,
}

/// A CPU's IPI mailbox (the kernel's per-CPU `call_single_queue`).
struct Mailbox {
    /// Bit `n`: CPU `n` has posted a call here.
    pending: CachePadded<AtomicU64>,
    /// One slot per sender.
    slots: Box<[CachePadded<CallSlot>]>,
}

/// The part of a CPU that other CPUs read or write.
pub struct CpuShared<S: Scheme, A: Arch> {
    /// The hardware page-table root (CR3), watched by the oracle when an mm is freed.
    cr3: CachePadded<AtomicU64>,
    /// The mm of `rq->curr` (0 for a kernel thread): what `membarrier()` reads.
    rq_curr_mm: CachePadded<AtomicU64>,
    /// `cpu_online_mask` bit.
    online: AtomicBool,
    ipi: Mailbox,
    /// The scheme's per-CPU state that other CPUs touch (hazard slots, `rq.lazy_mm`).
    pub scheme: S::CpuShared,
    /// The arch's per-CPU state that other CPUs touch.
    pub arch: A::CpuShared,
}

impl<S: Scheme, A: Arch> CpuShared<S, A> {
    pub(crate) fn new(_id: usize, nr_cpus: usize) -> Self {
        CpuShared {
            cr3: CachePadded(AtomicU64::new(MmId::INIT.encode())),
            rq_curr_mm: CachePadded(AtomicU64::new(0)),
            online: AtomicBool::new(true),
            ipi: Mailbox {
                pending: CachePadded(AtomicU64::new(0)),
                slots: (0..nr_cpus)
                    .map(|_| {
                        CachePadded(CallSlot {
                            op: AtomicU64::new(0),
                            mm: AtomicU64::new(0),
                        })
                    })
                    .collect(),
            },
            scheme: S::new_cpu_shared(),
            arch: A::new_cpu_shared(),
        }
    }

    /// The mm this CPU's hardware has loaded (for the oracle and for reports).
    pub fn cr3(&self) -> MmId {
        MmId::decode(self.cr3.load(Ordering::Relaxed)).unwrap_or(MmId::INIT)
    }

    /// The mm of this CPU's `rq->curr`, as `membarrier()` reads it.
    pub fn rq_curr_mm(&self) -> Option<MmId> {
        MmId::decode(self.rq_curr_mm.load(Ordering::Relaxed))
    }

    /// Whether the CPU is online.
    pub fn is_online(&self) -> bool {
        // ORDERING: Acquire pairs with the Release in `set_online`: a CPU seen online has
        // finished coming up.
        self.online.load(Ordering::Acquire)
    }

    /// Whether a call is waiting in this CPU's mailbox (a cheap poll for hosts).
    #[inline]
    pub fn ipi_pending(&self) -> bool {
        self.ipi.pending.load(Ordering::Relaxed) != 0
    }
}

/// The part of a CPU that only the CPU itself touches (its thread owns it).
pub struct Cpu<S: Scheme, A: Arch> {
    /// The CPU number.
    pub id: usize,
    /// Steps taken (context switches and lifecycle events); violations are stamped with it.
    pub step: u64,
    /// What this CPU counted.
    pub stats: Stats,
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
    irqs_disabled: bool,
    online: bool,
    /// `stats.full_fences` when a kernel→user switch stored `rq->curr` (property f).
    membarrier_mark: Option<u64>,
    /// `current->mm` as an NMI on this CPU reads it: the per-CPU `current` changes in
    /// `switch_to`, after `switch_mm`, so during a switch it is still `prev`'s.
    current_mm: Option<MmId>,
    nmi_countdown: u32,
    nmi_period: u32,
    rng: u64,
    walk_countdown: u32,
    walk_period: u32,
}

impl<S: Scheme, A: Arch> Cpu<S, A> {
    pub(crate) fn new(id: usize, cfg: &crate::kernel::Config) -> Self {
        Cpu {
            id,
            step: 0,
            stats: Stats::default(),
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
            current_mm: None,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
            walk_countdown: cfg.speculative_walk_period,
            walk_period: cfg.speculative_walk_period,
            nmi_countdown: cfg.nmi_period,
            nmi_period: cfg.nmi_period,
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
    pub fn lazy_mm<'g>(&'g self, irq: &'g IrqGuard) -> LazyMm<'g> {
        LazyMm::new(self.loaded_mm, irq)
    }

    /// The mm the hardware has loaded (CR3).
    pub fn cr3(&self) -> MmId {
        self.cr3
    }

    /// The mm generic code believes is loaded (x86's `loaded_mm` without the sentinel).
    pub fn loaded_mm(&self) -> MmId {
        self.loaded_mm
    }

    /// Records a new software view of the loaded mm (arch `switch_mm` calls this).
    #[inline]
    pub fn set_loaded_mm(&mut self, mm: MmId) {
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

    /// `smp_mb()`: a full fence, counted.
    #[inline]
    pub fn smp_mb(&mut self) {
        // ORDERING: callers name the access on another CPU this pairs with.
        fence(Ordering::SeqCst);
        self.stats.full_fences += 1;
    }

    /// A fully ordered atomic RMW (`atomic_dec_and_test`, `xchg`, `cmpxchg`), counted as
    /// the two full barriers Linux's memory model puts around it. See
    /// [`crate::sync::fully_ordered`] for what the host really executes.
    #[inline]
    pub fn fully_ordered<T>(&mut self, rmw: impl FnOnce() -> T) -> T {
        self.stats.full_fences += 2;
        crate::sync::fully_ordered(rmw)
    }

    /// Counts one atomic RMW on a line shared between CPUs.
    #[inline]
    pub fn count_shared_rmw(&mut self) {
        self.stats.shared_rmw += 1;
    }
}

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// Writes the hardware page-table root (the CR3 write).
    #[inline]
    pub fn load_cr3(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        cpu.cr3 = mm;
        // ORDERING: Relaxed. The oracle reads this only after the scheme's own
        // synchronisation (a reference drop, an IPI acknowledgement) orders the read after
        // this CPU's switch; the oracle must not add synchronisation the scheme lacks.
        self.cpus[cpu.id].cr3.store(mm.encode(), Ordering::Relaxed);
    }

    /// `rq->curr = next`, as `membarrier()` sees it (the mm of the new current task).
    #[inline]
    pub(crate) fn rq_set_curr(
        &self,
        cpu: &mut Cpu<S, A>,
        mm: Option<MmId>,
        to_user_from_kernel: bool,
    ) {
        // ORDERING: Relaxed, like RCU_INIT_POINTER(rq->curr, next). Property f is that a
        // full barrier follows this store before the next user access; `membarrier()`
        // pairs its own full fence with that barrier.
        self.cpus[cpu.id]
            .rq_curr_mm
            .store(mm.map_or(0, MmId::encode), Ordering::Relaxed);
        cpu.membarrier_mark = to_user_from_kernel.then_some(cpu.stats.full_fences);
    }

    /// Property f: called as a kernel→user switch returns to user space.
    #[inline]
    pub(crate) fn membarrier_check(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        if let Some(mark) = cpu.membarrier_mark.take() {
            if S::MEMBARRIER_SAFE && cpu.stats.full_fences == mark {
                self.report(cpu, mm, ViolationKind::NoMembarrierBarrier);
            }
        }
    }

    /// The CPUs `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` would IPI for `mm`:
    /// after a full fence, every other online CPU whose `rq->curr` runs `mm`.
    ///
    /// The IPIs themselves are not sent: a CPU in the mask runs a full barrier in its
    /// handler, so it cannot break property f. Property f is about the CPUs left out,
    /// which must already have passed a full barrier between their `rq->curr` store and
    /// their next user-space access; the litmus of DESIGN.md §3 f calls this.
    pub fn membarrier_targets(&self, cpu: &mut Cpu<S, A>, mm: MmId) -> u64 {
        // ORDERING: pairs with the full barrier each CPU passes between its `rq->curr`
        // store and its return to user space (property f): either the load below sees
        // that CPU's new `rq->curr`, or that CPU sees every store made here before.
        cpu.smp_mb();
        let mut mask = 0;
        for (i, c) in self.cpus.iter().enumerate() {
            if i != cpu.id && c.is_online() && c.rq_curr_mm() == Some(mm) {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// Marks this CPU online or offline in `cpu_online_mask`.
    pub fn set_online(&self, cpu: &mut Cpu<S, A>, online: bool) {
        cpu.online = online;
        // ORDERING: Release pairs with the Acquire in `CpuShared::is_online`.
        self.cpus[cpu.id].online.store(online, Ordering::Release);
    }

    /// The mask of online CPUs.
    pub fn cpu_online_mask(&self) -> u64 {
        self.cpus
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_online())
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    /// An interrupt point: if interrupts are enabled, run the IPIs waiting for this CPU,
    /// and now and then let a lazy CPU's hardware make a speculative page walk.
    ///
    /// Hosts call this between steps and while idle; model code calls it where the
    /// kernel could take an interrupt.
    #[inline]
    pub fn irq_point(&self, cpu: &mut Cpu<S, A>) {
        if !cpu.irqs_disabled && self.cpus[cpu.id].ipi_pending() {
            self.flush_smp_call_function_queue(cpu);
        }
        self.maybe_speculate(cpu);
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

    /// An NMI point: now and then (about once every `Config::nmi_period` calls; never
    /// when it is 0) an NMI hits this CPU and runs the arch's NMI handler. NMIs ignore
    /// the interrupt flag, so this may be called anywhere, inside `switch_mm` included.
    #[inline]
    pub fn nmi_point(&self, cpu: &mut Cpu<S, A>) {
        if cpu.nmi_period == 0 {
            return;
        }
        cpu.nmi_countdown -= 1;
        if cpu.nmi_countdown == 0 {
            cpu.nmi_countdown = 1 + (cpu.rand() % (2 * cpu.nmi_period as u64)) as u32;
            cpu.stats.nmis += 1;
            A::nmi(self, cpu);
        }
    }

    /// One speculative page walk through CR3.
    pub fn speculative_walk(&self, cpu: &mut Cpu<S, A>) {
        cpu.stats.speculative_walks += 1;
        let mm = cpu.cr3;
        if !self.arena.is_live(mm) {
            self.report(cpu, mm, ViolationKind::SpeculativeWalkOfFreed);
        }
    }

    /// From an interrupt handler: this CPU leaves `prev`, which it uses lazily, for
    /// `init_mm` (what every lazy shootdown and freeing flush does to a lazy CPU).
    pub(crate) fn switch_to_init_mm_in_irq(&self, cpu: &mut Cpu<S, A>, prev: MmId) {
        let irq = cpu.hardirq_guard();
        A::switch_mm_irqs_off(self, cpu, prev, MmId::INIT, &irq);
    }

    /// Runs every call waiting in this CPU's mailbox (as the IPI handler does).
    pub fn flush_smp_call_function_queue(&self, cpu: &mut Cpu<S, A>) {
        let me = &self.cpus[cpu.id].ipi;
        // ORDERING: Acquire pairs with the Release `fetch_or` in `post_ipi`: the call's
        // op and argument are visible.
        let mut pending = me.pending.swap(0, Ordering::Acquire);
        while pending != 0 {
            let sender = pending.trailing_zeros() as usize;
            pending &= pending - 1;
            let slot = &me.slots[sender];
            // ORDERING: Acquire pairs with the Release store of `op` in `post_ipi`.
            let op = slot.op.load(Ordering::Acquire);
            let mm = MmId::decode(slot.mm.load(Ordering::Relaxed)).unwrap_or(MmId::INIT);
            if let Some(ipi) = Ipi::decode(op) {
                self.run_ipi(cpu, ipi, mm);
            }
            // ORDERING: Release pairs with the Acquire in `wait_ipi`: everything the
            // handler did (a switch to init_mm, a cleared slot) happens before the sender
            // goes on.
            slot.op.store(0, Ordering::Release);
        }
    }

    fn run_ipi(&self, cpu: &mut Cpu<S, A>, ipi: Ipi, mm: MmId) {
        cpu.stats.ipis_received += 1;
        // A handler runs in hard-irq context: interrupts are off while it runs.
        let was = cpu.irqs_disabled;
        cpu.irqs_disabled = true;
        match ipi {
            Ipi::Scheme(op) => S::handle_ipi(self, cpu, op, mm),
            Ipi::Arch(op) => A::handle_ipi(self, cpu, op, mm),
        }
        cpu.irqs_disabled = was;
    }

    fn post_ipi(&self, cpu: &mut Cpu<S, A>, target: usize, ipi: Ipi, mm: MmId) {
        cpu.stats.ipis_sent += 1;
        let t = &self.cpus[target].ipi;
        let slot = &t.slots[cpu.id];
        slot.mm.store(mm.encode(), Ordering::Relaxed);
        // ORDERING: Release pairs with the Acquire load of `op` in
        // `flush_smp_call_function_queue`; also orders everything this CPU did before
        // the call (the sender's side of the IPI's implied barrier).
        slot.op.store(ipi.encode(), Ordering::Release);
        // ORDERING: Release pairs with the Acquire `swap` in the target's flush.
        t.pending.fetch_or(1 << cpu.id, Ordering::Release);
    }

    fn wait_ipi(&self, cpu: &mut Cpu<S, A>, target: usize) {
        let mut turns = 0;
        // ORDERING: Acquire pairs with the target's Release clear of `op`: what its
        // handler did is visible once the call is seen done.
        while self.cpus[target].ipi.slots[cpu.id]
            .op
            .load(Ordering::Acquire)
            != 0
        {
            // Waiting with interrupts enabled, as Linux does: calls sent to this CPU
            // meanwhile run, so two CPUs that IPI each other cannot deadlock.
            self.flush_smp_call_function_queue(cpu);
            spin_wait(&mut turns);
        }
    }

    /// `on_each_cpu_mask(mask, func, info, wait = true)`: runs the call on every online
    /// CPU in `mask`, this one included (directly, with interrupts off), and waits for
    /// all of them. Must be called with interrupts enabled.
    pub fn on_each_cpu_mask(&self, cpu: &mut Cpu<S, A>, mask: u64, ipi: Ipi, mm: MmId) {
        if cpu.irqs_disabled {
            self.report(cpu, mm, ViolationKind::IpiWithIrqsDisabled);
            return;
        }
        let targets = mask & self.cpu_online_mask() & !(1u64 << cpu.id);
        let mut m = targets;
        while m != 0 {
            let t = m.trailing_zeros() as usize;
            m &= m - 1;
            self.post_ipi(cpu, t, ipi, mm);
        }
        if mask & (1 << cpu.id) != 0 {
            self.run_ipi(cpu, ipi, mm);
        }
        let mut m = targets;
        while m != 0 {
            let t = m.trailing_zeros() as usize;
            m &= m - 1;
            self.wait_ipi(cpu, t);
        }
    }
}
