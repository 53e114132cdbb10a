//! Cross-CPU calls: IPIs (`smp_call_function_many`, `on_each_cpu_mask`), NMIs, the
//! online mask, and how a host lets a CPU wait for the CPUs it called.
//!
//! # The mailbox
//! Each CPU has one outgoing call (`op`, `mm`, and how many targets have yet to run it)
//! and, as its `call_single_queue`, a bitmap of the CPUs that posted a call to it. A
//! sender has at most one call in flight, because `on_each_cpu_mask(.., wait = true)`
//! returns only when every target has run it (IPI handlers run with interrupts off and
//! never send a waiting IPI themselves). So a CPU's mailbox takes `nr_cpus` bits and one
//! padded call record: memory per CPU grows with the CPU count, not with its square.
//!
//! # Waiting is the host's business
//! A sender must wait until its targets have run the call. What waiting means depends
//! on who plays the CPUs, so it is a host capability ([`IpiHost`]):
//! - a host whose CPUs are threads of their own (the native engine, the checker) sets
//!   none: the sender spins, running the calls sent to it meanwhile (it waits with
//!   interrupts enabled, as Linux does, so two CPUs that call each other cannot
//!   deadlock), and the targets answer on their own threads;
//! - a host that plays every CPU on one thread (a trace replayer, a discrete-event
//!   simulator) sets one, and runs the targets' pending calls itself, in its own order
//!   (and, in a simulator, at its own simulated times).

use crate::arch::Arch;
use crate::cpu::Cpu;
use crate::cpumask::{CpuMask, LineWords, SharedCpuMask};
use crate::ipi::Ipi;
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::oracle::ViolationKind;
use crate::scheme::Scheme;
use crate::sync::{spin_wait, Acct, CachePadded, Field, Ordering, SharedU64, Tag};
use crate::tracepoint::{Span, Tracepoint};

/// A CPU's outgoing call (the kernel's `call_function_data`, one per CPU).
struct Call {
    /// The encoded [`Ipi`].
    op: SharedU64,
    /// The encoded mm argument.
    mm: SharedU64,
    /// Targets that have not run the call yet; the sender waits for 0.
    remaining: SharedU64,
}

/// One CPU's IPI mailbox.
///
/// # Invariants
/// Bit `s` of `senders` is set only while CPU `s`'s call is posted here and not yet run;
/// bit `w` of `summary` is set whenever word `w` of `senders` may be non-zero.
pub(crate) struct Mailbox {
    /// Bit `w`: word `w` of `senders` may have bits set (a host's poll reads only this).
    summary: CachePadded<SharedU64>,
    /// Bit `s % 64` of word `s / 64`: CPU `s` has posted its call here.
    senders: LineWords,
    /// This CPU's own outgoing call, on its own line.
    call: CachePadded<Call>,
}

impl Mailbox {
    /// CPU `cpu`'s mailbox on a machine of `nr_cpus` CPUs.
    pub(crate) fn new(nr_cpus: usize, cpu: usize) -> Mailbox {
        let obj = cpu as u32;
        let data = Tag::new(Field::CallSingleData, obj);
        Mailbox {
            summary: CachePadded(SharedU64::new(0, Tag::new(Field::CallSingleQueue, obj))),
            senders: LineWords::new(nr_cpus.div_ceil(64), Field::CallSingleQueue, obj, 1),
            call: CachePadded(Call {
                op: SharedU64::new(0, data),
                mm: SharedU64::new(0, data),
                remaining: SharedU64::new(0, data),
            }),
        }
    }

    /// The head of this CPU's `call_single_queue` as the wake list uses it (the word a
    /// waker's `llist_add` and the owner's `llist_del_all` take).
    #[inline]
    pub(crate) fn wake_list_head(&self) -> &SharedU64 {
        &self.summary
    }

    /// Whether a call may be waiting here (the interrupt line, for a host's poll).
    #[inline]
    pub(crate) fn pending(&self) -> bool {
        self.summary.oracle_load(Ordering::Relaxed) != 0
    }
}

/// How a host lets a CPU wait for the CPUs it sent IPIs to (the host capability).
///
/// The model calls [`IpiHost::run_ipis`] while `waiter` waits, with `targets` the CPUs
/// whose calls it waits for; the host makes them run what is pending for them
/// (`Kernel::flush_smp_call_function_queue` on each target's own [`Cpu`]) and returns
/// whether any of them ran anything. When a host has run everything it can and the wait
/// is still not over, the model reports the CPU stuck (property e) instead of spinning
/// for ever.
pub trait IpiHost<S: Scheme, A: Arch>: Send + Sync {
    /// Lets `targets` run the calls pending for them while `waiter` waits.
    fn run_ipis(&self, k: &Kernel<S, A>, waiter: &mut Cpu<S, A>, targets: &CpuMask) -> bool;
}

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// `cpu_online_mask`, read by `cpu` (one load per word).
    pub fn cpu_online_mask(&self, cpu: &mut Cpu<S, A>) -> CpuMask {
        // ORDERING: Acquire pairs with the Release in `set_online`: a CPU seen online has
        // finished coming up.
        self.online.read(&mut cpu.acct, Ordering::Acquire)
    }

    /// `cpu_online_mask` as the oracle and hosts see it (never counted).
    pub fn oracle_online_mask(&self) -> CpuMask {
        self.online.oracle_read()
    }

    /// Whether CPU `i` is online, as the oracle and hosts see it (never counted).
    pub fn oracle_cpu_online(&self, i: usize) -> bool {
        self.online.oracle_test(i)
    }

    /// Marks this CPU online or offline in `cpu_online_mask`.
    pub fn set_online(&self, cpu: &mut Cpu<S, A>, online: bool) {
        cpu.online = online;
        // ORDERING: Release pairs with the Acquire in `cpu_online_mask`.
        if online {
            self.online.set(&mut cpu.acct, cpu.id, Ordering::Release);
        } else {
            self.online.clear(&mut cpu.acct, cpu.id, Ordering::Release);
        }
    }

    /// An interrupt point: if interrupts are enabled, run the IPIs waiting for this CPU,
    /// and now and then let a lazy CPU's hardware make a speculative page walk.
    ///
    /// Hosts call this between steps and while idle; model code calls it where the
    /// kernel could take an interrupt.
    #[inline]
    pub fn irq_point(&self, cpu: &mut Cpu<S, A>) {
        if !cpu.irqs_disabled {
            self.fault_point(cpu, crate::mutant::FaultPoint::IrqsOn);
        }
        if !cpu.irqs_disabled && self.cpus[cpu.id].ipi_pending() {
            self.flush_smp_call_function_queue(cpu);
        }
        self.maybe_speculate(cpu);
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
            self.nmi(cpu);
        }
    }

    #[cold]
    fn nmi(&self, cpu: &mut Cpu<S, A>) {
        cpu.nmi_countdown = 1 + (cpu.rand() % (2 * cpu.nmi_period as u64)) as u32;
        self.nmi_now(cpu);
    }

    /// An NMI hits this CPU now: counted, and the arch's NMI handler runs. For hosts
    /// that decide themselves when NMIs hit between their steps (model code inside a
    /// switch uses [`Kernel::nmi_point`]).
    pub fn nmi_now(&self, cpu: &mut Cpu<S, A>) {
        cpu.stats.nmis += 1;
        A::nmi(self, cpu);
    }

    /// From an interrupt handler: this CPU leaves `prev`, which it uses lazily, for
    /// `init_mm` (what every lazy shootdown and freeing flush does to a lazy CPU).
    /// Public for schemes outside this crate.
    pub fn switch_to_init_mm_in_irq(&self, cpu: &mut Cpu<S, A>, prev: MmId) {
        let irq = cpu.hardirq_guard();
        // The handler runs because the CPU still has prev loaded (the handler checked),
        // and the caller waits for this handler before freeing it.
        let prev = crate::cpu::LazyMm::new(prev, &irq);
        A::switch_mm_irqs_off(self, cpu, prev, MmId::INIT, &irq);
    }

    /// Runs every call waiting in this CPU's mailbox (as the IPI handler does); returns
    /// whether it ran any.
    #[inline(never)]
    pub fn flush_smp_call_function_queue(&self, cpu: &mut Cpu<S, A>) -> bool {
        let me = &self.cpus[cpu.id].ipi;
        // ORDERING: Acquire pairs with the Release `fetch_or` of the summary in
        // `post_ipis`: the sender's word bits are visible.
        // INVARIANT: the summary is cleared before the words it covers are, so a bit a
        // sender sets in a word from now on sets the summary bit again.
        let mut summary = me.summary.swap(&mut cpu.acct, 0, Ordering::Acquire);
        let mut ran = false;
        while summary != 0 {
            let w = summary.trailing_zeros() as usize;
            summary &= summary - 1;
            // ORDERING: Acquire pairs with the Release `fetch_or` in `post_ipis`: the
            // sender's call record is visible.
            // INVARIANT: the senders taken out here have their calls run below; a sender
            // bit is cleared only by the run of its call.
            let mut bits = me.senders.get(w).swap(&mut cpu.acct, 0, Ordering::Acquire);
            while bits != 0 {
                let sender = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let call = &self.cpus[sender].ipi.call;
                let op = call.op.load(&mut cpu.acct, Ordering::Relaxed);
                let mm = MmId::decode(call.mm.load(&mut cpu.acct, Ordering::Relaxed))
                    .unwrap_or(MmId::INIT);
                if let Some(ipi) = Ipi::decode(op) {
                    cpu.trace(Tracepoint::IpiHandler {
                        from: sender,
                        ipi,
                        mm,
                    });
                    self.run_ipi(cpu, ipi, mm);
                    cpu.trace(Tracepoint::End(Span::IpiHandler, mm));
                }
                // ORDERING: Release pairs with the sender's Acquire load of `remaining`:
                // everything the handler did (a switch to init_mm, a cleared slot)
                // happens before the sender goes on.
                call.remaining
                    .fetch_sub(&mut cpu.acct, 1, Ordering::Release);
                ran = true;
            }
        }
        ran
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

    /// Posts this CPU's call to every CPU in `targets` (`smp_call_function_many`).
    fn post_ipis(&self, cpu: &mut Cpu<S, A>, targets: &CpuMask, ipi: Ipi, mm: MmId) {
        let call = &self.cpus[cpu.id].ipi.call;
        let a: &mut Acct = &mut cpu.acct;
        call.op.store(a, ipi.encode(), Ordering::Relaxed);
        call.mm.store(a, mm.encode(), Ordering::Relaxed);
        call.remaining
            .store(a, targets.weight() as u64, Ordering::Relaxed);
        let (w, bit) = (cpu.id / 64, 1u64 << (cpu.id % 64));
        for t in targets.iter() {
            cpu.stats.ipis_sent += 1;
            // Traced before it is posted: the handler may run at once.
            cpu.trace(Tracepoint::IpiSend { to: t, ipi, mm });
            let mb = &self.cpus[t].ipi;
            // ORDERING: Release pairs with the target's Acquire swap in
            // `flush_smp_call_function_queue`: the call record above, and everything
            // this CPU did before the call (the sender's side of the IPI's implied
            // barrier), are visible to the handler.
            mb.senders
                .get(w)
                .fetch_or(&mut cpu.acct, bit, Ordering::Release);
            // INVARIANT: the word's bit is set before the summary's, so a summary bit is
            // set whenever its word may be non-zero.
            // ORDERING: Release, as above, for the summary the target swaps first.
            mb.summary
                .fetch_or(&mut cpu.acct, 1 << w, Ordering::Release);
            cpu.acct.ipi_send(t);
        }
    }

    /// Waits until `done` holds, letting `targets` run their pending calls: by spinning
    /// (running this CPU's own calls meanwhile) when the host's CPUs have threads of
    /// their own, or through the host's [`IpiHost`]. Returns `false` (after reporting
    /// the CPU stuck) if a host that plays every CPU has nothing left to run and `done`
    /// still does not hold.
    pub(crate) fn wait_until(
        &self,
        cpu: &mut Cpu<S, A>,
        targets: &CpuMask,
        mm: MmId,
        mut done: impl FnMut(&Self, &mut Acct) -> bool,
    ) -> bool {
        let mut turns = 0;
        loop {
            if done(self, &mut cpu.acct) {
                return true;
            }
            match &self.ipi_host {
                None => {
                    // Waiting with interrupts enabled, as Linux does: calls sent to this
                    // CPU meanwhile run, so two CPUs that IPI each other cannot deadlock.
                    self.flush_smp_call_function_queue(cpu);
                    spin_wait(&mut turns);
                }
                Some(host) => {
                    let ran_here = self.flush_smp_call_function_queue(cpu);
                    let ran = host.run_ipis(self, cpu, targets) || ran_here;
                    if !ran && !done(self, &mut cpu.acct) {
                        let on = targets.iter().next().unwrap_or(cpu.id);
                        self.report(cpu, mm, ViolationKind::WaitsForever { on });
                        return false;
                    }
                }
            }
        }
    }

    /// `on_each_cpu_mask(mask, func, info, wait = true)`: runs the call on every online
    /// CPU in `mask`, this one included (directly, with interrupts off), and waits for
    /// all of them. Must be called with interrupts enabled.
    pub fn on_each_cpu_mask(&self, cpu: &mut Cpu<S, A>, mask: &CpuMask, ipi: Ipi, mm: MmId) {
        if cpu.irqs_disabled {
            self.report(cpu, mm, ViolationKind::IpiWithIrqsDisabled);
            return;
        }
        cpu.trace(Tracepoint::Begin(Span::OnEachCpuMask, mm));
        let mut targets = mask.clone();
        targets.and(&self.cpu_online_mask(cpu));
        targets.clear(cpu.id);
        let remote = !targets.is_empty();
        if remote {
            self.post_ipis(cpu, &targets, ipi, mm);
        }
        if mask.test(cpu.id) {
            cpu.trace(Tracepoint::IpiHandler {
                from: cpu.id,
                ipi,
                mm,
            });
            self.run_ipi(cpu, ipi, mm);
            cpu.trace(Tracepoint::End(Span::IpiHandler, mm));
        }
        if remote {
            let me = cpu.id;
            // The batch of IPIs posted above ends here: the sender waits for them.
            cpu.acct.ipi_wait();
            self.wait_until(cpu, &targets, mm, |k, a| {
                // ORDERING: Acquire pairs with each target's Release decrement: what its
                // handler did is visible once the count is seen at zero.
                k.cpus[me].ipi.call.remaining.load(a, Ordering::Acquire) == 0
            });
        }
        cpu.trace(Tracepoint::End(Span::OnEachCpuMask, mm));
    }
}

/// The online mask of a machine of `nr` CPUs, all online at boot.
pub(crate) fn boot_online_mask(nr: usize) -> SharedCpuMask {
    let m = SharedCpuMask::new(nr, Field::CpuOnlineMask, 0);
    let mut a = Acct::default();
    for i in 0..nr {
        m.set(&mut a, i, Ordering::Relaxed);
    }
    m
}

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// The kernel's name for the handler of `ipi` (`do_shoot_lazy_tlb`, `flush_tlb_func`,
    /// ...), for timelines.
    pub fn ipi_name(ipi: Ipi) -> &'static str {
        match ipi {
            Ipi::Scheme(op) => S::ipi_name(op),
            Ipi::Arch(op) => A::ipi_name(op),
        }
    }
}

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// The shootdown of `cleanup_lazy_tlbs` (kernel/fork.c): `ipi` to every CPU of
    /// `mm_cpumask(mm)` (every online CPU on an arch that does not maintain it), whose
    /// handler moves a CPU still lazy on `mm` to `init_mm`, and a wait for them all.
    ///
    /// The full fences of the `mm_count` decrement that brought the caller here order
    /// the mask's read after every CPU's last switch to the mm, each of which set its
    /// bit before loading the mm and before releasing its own reference. The oracle
    /// checks property c on the mask read: it must cover every CPU that still has the
    /// mm loaded.
    pub(crate) fn shoot_lazy_tlbs(&self, cpu: &mut Cpu<S, A>, mm: MmId, ipi: Ipi) {
        let mask = self.mm_cpus(cpu, mm);
        for (i, c) in self.cpus.iter().enumerate() {
            if !mask.test(i) && c.oracle_cr3() == mm {
                self.report(cpu, mm, ViolationKind::LazyCpuNotInCpumask { lazy: i });
            }
        }
        self.on_each_cpu_mask(cpu, &mask, ipi, mm);
    }
}
