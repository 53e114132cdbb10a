//! The `Arch` trait: what `enter_lazy_tlb`, `switch_mm` and the TLB flush that frees
//! page tables do on one architecture.
//!
//! Generic code only ever calls these hooks; it never names an architecture.

use crate::config::Config;
use crate::cpu::{Cpu, IrqGuard, LazyMm};
use crate::kernel::Kernel;
use crate::mm::MmId;
use crate::scheme::Scheme;
use crate::sync::Ordering;
use crate::tracepoint::{Span, Tracepoint};

pub mod arm64;
pub mod generic;
pub mod powerpc;
pub mod x86;

pub use arm64::Arm64;
pub use generic::Generic;
pub use powerpc::Powerpc;
pub use x86::X86;

/// One architecture's MMU-switching layer.
pub trait Arch: Sized + Send + Sync + 'static {
    /// The name on the command line.
    const NAME: &'static str;
    /// The deliberately broken variants of this arch layer (see [`crate::mutant`]).
    const MUTANTS: &'static [crate::Mutant] = &[];
    /// Races of the kernel as written that involve this arch, with the configuration
    /// that exposes each and its fix (see [`crate::mutant`]).
    const FINDINGS: &'static [crate::Mutant] = &[];
    /// Correct schemes under this arch's configurations that are off by default
    /// ([`crate::Kind::Config`]): each must stay clean.
    const CONFIGS: &'static [crate::Mutant] = &[];
    /// Whether `switch_mm` keeps `mm_cpumask(mm)` a superset of the CPUs that have the
    /// mm loaded. An arch whose TLB invalidation is broadcast (arm64) never sets a bit,
    /// so whoever must find every CPU using an mm has to look at every online CPU.
    const MAINTAINS_MM_CPUMASK: bool = true;
    /// `CONFIG_ARCH_WANT_IRQS_OFF_ACTIVATE_MM`: `exec_mmap` keeps interrupts off across
    /// `activate_mm` (powerpc, x86 and s390 select it; arm64 and the asm-generic default
    /// do not). Its Kconfig help: "Architectures that do IPI based TLB shootdowns should
    /// enable this", so the model also keeps them off under a scheme with
    /// `LAZY_TLB_SHOOTDOWN` (`Kernel::irqs_off_activate_mm`).
    const IRQS_OFF_ACTIVATE_MM: bool = false;
    /// Whether the TLB flush that ends `exit_mmap` (the one that frees the page tables)
    /// reaches every CPU that may have the mm loaded and moves the lazy ones to
    /// `init_mm`, so that afterwards no CPU uses the mm at all: x86's `freed_tables`
    /// flush on bare metal does (`flush_tlb_func` switches a lazy CPU to `init_mm`).
    /// A scheme with no `active_mm` can then skip its own shootdown (`lazy-percpu`).
    /// It describes the arch's default configuration: x86 with INVLPGB or in a KVM guest
    /// with the paravirt flush ([`Config::x86_invlpgb`], [`Config::kvm_pv_tlb_flush`])
    /// sends no IPI to some lazy CPUs, and a scheme that trusts it there is a finding.
    const FREEING_FLUSH_UNLAZIES: bool = false;
    /// Whether taking a spinlock is itself a full barrier (x86: `raw_spin_lock` is a
    /// `LOCK`-prefixed RMW, and `smp_mb__after_spinlock()` is empty). Where it is not
    /// (arm64, powerpc: the lock is only an acquire), `smp_mb__after_spinlock()` is
    /// `smp_mb()`.
    const SPIN_LOCK_IS_FULL_BARRIER: bool = false;
    /// Per-CPU state only the CPU itself touches (x86's `cpu_tlbstate`).
    type CpuLocal: Default + Send;
    /// Per-CPU state other CPUs read.
    type CpuShared: Send + Sync;

    /// The arch's machine-wide state.
    fn new(cfg: &Config) -> Self;

    /// Whether this boot's `exit_mmap` flush moves every lazy CPU to `init_mm`: the
    /// arch's [`Arch::FREEING_FLUSH_UNLAZIES`] in its default configuration, and false
    /// where a configuration switch sends no IPI to some lazy CPUs (x86 with INVLPGB, a
    /// KVM guest's paravirt flush). What a scheme that skips its shootdown on such
    /// arches must ask (`Config::lazy_percpu_ask_flush`, the proposed fix of the
    /// `lazy-percpu` findings).
    #[inline]
    fn freeing_flush_unlazies(&self) -> bool {
        Self::FREEING_FLUSH_UNLAZIES
    }

    /// CPU `cpu`'s shared state (its words tagged with that CPU: [`crate::sync::Tag`]).
    fn new_cpu_shared(cpu: usize) -> Self::CpuShared;

    /// `smp_mb__after_spinlock()` after `__schedule`'s `rq_lock`: together with the lock
    /// a full barrier between what the CPU did before `__schedule` (user accesses
    /// included) and the `rq->curr` store (membarrier's scenarios B and C). An arch
    /// whose lock is a full barrier has nothing to add; the others pay `smp_mb()`
    /// (arm64's and powerpc's `asm/spinlock.h`).
    #[inline]
    fn smp_mb_after_spinlock<S: Scheme>(_k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>) {
        if !Self::SPIN_LOCK_IS_FULL_BARRIER {
            // ORDERING: pairs with the full fence membarrier() issues after reading
            // rq->curr: either it saw this CPU still on the user mm (and IPIs it), or
            // it sees every user access made before the rq->curr store.
            cpu.smp_mb();
        }
    }

    /// `enter_lazy_tlb(mm, next)`: the CPU keeps `mm` loaded for a kernel thread.
    #[inline]
    fn enter_lazy_tlb<S: Scheme>(_k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>, _mm: &LazyMm<'_>) {}

    /// `switch_mm_irqs_off(prev, next, tsk)`: load `next`'s page tables. `prev` is the
    /// mm the CPU runs on now, borrowed under the same interrupts-disabled guard.
    fn switch_mm_irqs_off<S: Scheme>(
        k: &Kernel<S, Self>,
        cpu: &mut Cpu<S, Self>,
        prev: LazyMm<'_>,
        next: MmId,
        irq: &IrqGuard,
    );

    /// The TLB flush at the end of `exit_mmap`, which frees the page tables below the
    /// root (`tlb_finish_mmu` with freed tables). Interrupts are enabled.
    fn exit_mmap_flush<S: Scheme>(k: &Kernel<S, Self>, cpu: &mut Cpu<S, Self>, mm: MmId);

    /// A TLB flush of `mm` that frees no page tables (`flush_tlb_mm_range` after
    /// `munmap` or `madvise(MADV_DONTNEED)` of a page). Interrupts are enabled. x86
    /// models its `tlb_gen` and `should_flush_tlb`; powerpc its barrier and the
    /// `mm_cpumask` trims of `flush_type_needed`; on arm64 it does nothing the model can
    /// observe, as its TLB is not modelled.
    fn flush_tlb_mm<S: Scheme>(_k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>, _mm: MmId) {}

    /// `cpu` touches user memory of `mm`, the mm it runs (a user task, or a kernel
    /// thread inside `kthread_use_mm`): the arch's check of the translations it uses
    /// (x86: property h).
    fn user_access<S: Scheme>(_k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>, _mm: MmId) {}

    /// Handles an `Ipi::Arch(op)` sent by this arch.
    fn handle_ipi<S: Scheme>(_k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>, _op: u8, _mm: MmId) {}

    /// The kernel's name for the handler of `Ipi::Arch(op)`, for timelines.
    fn ipi_name(_op: u8) -> &'static str {
        "arch IPI"
    }

    /// `__cpu_disable()`: arch work as a CPU goes offline (after the scheduler has moved
    /// it to `init_mm`, unless the pre-fix order of `shootdown-hotplug-race` is on).
    fn cpu_disable<S: Scheme>(_k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>) {}

    /// `switch_to(prev, next)`: the arch's part of every context switch after
    /// `switch_mm`, as far as the model sees it (the barrier arm64's `__switch_to`
    /// issues for membarrier; nothing elsewhere).
    #[inline]
    fn switch_to<S: Scheme>(_k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>) {}

    /// The NMI handler (perf's user stack walk, `copy_from_user_nmi`). An arch that has
    /// no `nmi_uaccess_okay()` never touches user memory from an NMI, so by default an
    /// NMI does nothing the model can observe (it is still counted).
    fn nmi<S: Scheme>(_k: &Kernel<S, Self>, _cpu: &mut Cpu<S, Self>) {}
}

/// Sets this CPU's bit in `mm_cpumask(mm)` if it is not set yet (one shared RMW when it
/// was not), as every arch does when it loads an mm.
#[inline]
pub fn cpumask_set_cpu<S: Scheme, A: Arch>(k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, mm: MmId) {
    if mm.is_init() {
        return;
    }
    let me = cpu.id;
    if let Some(m) = k.mm(cpu, mm, "mm_cpumask") {
        // Test before set, so a CPU that already has its bit does not bounce the line.
        if !m.cpumask.test(&mut cpu.acct, me, Ordering::Relaxed) {
            // ORDERING: Relaxed. The bit is set while a task of this mm holds an
            // `mm_users` reference (or a kthread an `mm_count` one); its release is fully
            // ordered and teardown acquires it, so `cleanup_lazy_tlbs` sees the bit.
            m.cpumask.set(&mut cpu.acct, me, Ordering::Relaxed);
        }
    }
}

/// Clears this CPU's bit in `mm_cpumask(mm)` (trimming).
#[inline]
pub fn cpumask_clear_cpu<S: Scheme, A: Arch>(k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, mm: MmId) {
    if mm.is_init() {
        return;
    }
    let me = cpu.id;
    if let Some(m) = k.mm(cpu, mm, "mm_cpumask") {
        if m.cpumask.test(&mut cpu.acct, me, Ordering::Relaxed) {
            // ORDERING: Relaxed; a flusher that misses the clear only sends one IPI too many.
            m.cpumask.clear(&mut cpu.acct, me, Ordering::Relaxed);
        }
    }
}

impl<S: Scheme, A: Arch> Kernel<S, A> {
    /// Whether `exec_mmap` keeps interrupts off across `activate_mm`: the arch's
    /// `ARCH_WANT_IRQS_OFF_ACTIVATE_MM`, which a shootdown scheme needs too (see
    /// [`Arch::IRQS_OFF_ACTIVATE_MM`]), unless `Config::activate_mm_irqs_on` restores
    /// the order before d53c3dfb23c4.
    #[inline]
    pub(crate) fn irqs_off_activate_mm(&self) -> bool {
        (A::IRQS_OFF_ACTIVATE_MM || S::LAZY_TLB_SHOOTDOWN) && !self.cfg.activate_mm_irqs_on
    }

    /// `current` on `cpu` touches its user memory, `mm`: the arena checks the mm is
    /// alive (property a) and the arch checks the translations (property h on x86).
    #[inline]
    pub fn user_access(&self, cpu: &mut Cpu<S, A>, mm: MmId, via: &'static str) {
        if self.mm(cpu, mm, via).is_some() {
            A::user_access(self, cpu, mm);
        }
    }

    /// `current` on `cpu` unmaps a page of its own mm, `mm` (`munmap`,
    /// `madvise(MADV_DONTNEED)`): no page table is freed, and the arch flushes the TLBs
    /// that may cache it (`tlb_finish_mmu` → `flush_tlb_mm_range`). Interrupts are on.
    pub fn zap_page_range(&self, cpu: &mut Cpu<S, A>, mm: MmId) {
        cpu.step += 1;
        if self.mm(cpu, mm, "zap_page_range").is_some() {
            cpu.trace(Tracepoint::Begin(Span::FlushTlbMmRange, mm));
            A::flush_tlb_mm(self, cpu, mm);
            cpu.trace(Tracepoint::End(Span::FlushTlbMmRange, mm));
        }
    }

    /// The CPUs that may have `mm` loaded, lazily or not, as a shootdown or a scan must
    /// find them: `mm_cpumask(mm)` where the arch maintains it, every online CPU where it
    /// does not (arm64).
    pub(crate) fn mm_cpus(&self, cpu: &mut Cpu<S, A>, mm: MmId) -> crate::CpuMask {
        if !A::MAINTAINS_MM_CPUMASK {
            return self.cpu_online_mask(cpu);
        }
        match self.mm(cpu, mm, "mm_cpumask") {
            // ORDERING: Relaxed, as the kernel's reads of mm_cpumask: callers are past a
            // fully ordered decrement of the mm's last reference (or a full fence), after
            // every CPU's switch to the mm set its bit.
            Some(m) => m.cpumask.read(&mut cpu.acct, Ordering::Relaxed),
            None => crate::CpuMask::new(self.nr_cpus()),
        }
    }
}
