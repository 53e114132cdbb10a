//! Tracepoints: what the model did inside a step, for timelines.
//!
//! A host's own log sees only the steps it drives (a context switch, an exit); the work
//! inside them, an `__mmput` that shoots lazy CPUs down with IPIs or a hazard-pointer scan
//! at `__mmdrop`, happens in model code. Like the kernel's tracepoints, these are off by
//! default and cost one branch on a CPU-local field when off. A host turns them on per
//! CPU with [`Cpu::set_tracing`](crate::cpu::Cpu::set_tracing), giving the clock to stamp
//! them with (the model itself has none), and takes what was recorded with
//! [`Cpu::take_trace`](crate::cpu::Cpu::take_trace).
//!
//! What is recorded:
//! - every IPI a CPU sends, with its target ([`Tracepoint::IpiSend`]), and every handler it
//!   runs, with its sender, as a span ([`Tracepoint::IpiHandler`]);
//! - the teardown paths as spans: `__mmput` (`exit_mmap` and the arch's final flush),
//!   `__mmdrop`, and inside it the scheme's `cleanup_lazy_tlbs` (a shootdown or a scan),
//!   and each `on_each_cpu_mask` (the sender's side of a round of IPIs);
//! - the flush of an unmap (`flush_tlb_mm_range`, from `zap_page_range`) as a span;
//! - the two windows where model code enables interrupts in the middle of an mm switch
//!   (`exec_mmap` before `activate_mm` on an arch without
//!   `ARCH_WANT_IRQS_OFF_ACTIVATE_MM`, and `sched_force_init_mm` between its read of
//!   `current->active_mm` and the switch), as spans around their interrupt point, so a
//!   checker can count how often an IPI landed inside one.

use crate::ipi::Ipi;
use crate::mm::MmId;

/// A stretch of model work that a timeline draws as a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    /// `__mmput`: the last real user is gone (`exit_mmap`, the arch's final flush, and
    /// the scheme's `after_exit_mmap`).
    Mmput,
    /// `__mmdrop`: the last reference is gone and the mm is freed.
    Mmdrop,
    /// The scheme's `cleanup_lazy_tlbs` inside `__mmdrop`: a shootdown, a hazard-pointer
    /// scan, or nothing.
    CleanupLazyTlbs,
    /// `on_each_cpu_mask(.., wait = true)`: the sender posts its IPIs, runs its own
    /// handler if it is in the mask, and waits for its targets' handlers.
    OnEachCpuMask,
    /// An IPI handler running on this CPU (see [`Tracepoint::IpiHandler`]).
    IpiHandler,
    /// The flush of an unmap: `flush_tlb_mm_range` (the arch's ordinary flush, which
    /// frees no page tables).
    FlushTlbMmRange,
    /// `exec_mmap`'s interrupt point between `local_irq_enable()` and `activate_mm`
    /// (archs without `ARCH_WANT_IRQS_OFF_ACTIVATE_MM`).
    ExecMmapIrqsOn,
    /// `sched_force_init_mm`'s interrupt point between its read of
    /// `current->active_mm` and `local_irq_disable()`.
    ForceInitMmIrqsOn,
    /// `kthread_use_mm`'s interrupt point between `tsk->active_mm = mm` and
    /// `switch_mm` (only in the order before 38cf307c1f20, mutant
    /// `kthread-use-mm-irqs-on`).
    KthreadUseMmIrqsOn,
}

impl Span {
    /// The interrupt windows: spans around one interrupt point inside a switch.
    pub fn is_irq_window(self) -> bool {
        matches!(
            self,
            Span::ExecMmapIrqsOn | Span::ForceInitMmIrqsOn | Span::KthreadUseMmIrqsOn
        )
    }

    /// The kernel's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Span::Mmput => "__mmput",
            Span::Mmdrop => "__mmdrop",
            Span::CleanupLazyTlbs => "cleanup_lazy_tlbs",
            Span::OnEachCpuMask => "on_each_cpu_mask",
            Span::IpiHandler => "IPI handler",
            Span::FlushTlbMmRange => "flush_tlb_mm_range",
            Span::ExecMmapIrqsOn => "exec_mmap irqs-on window",
            Span::ForceInitMmIrqsOn => "sched_force_init_mm irqs-on window",
            Span::KthreadUseMmIrqsOn => "kthread_use_mm irqs-on window",
        }
    }
}

/// One thing the model did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracepoint {
    /// This CPU posted `ipi` about `mm` to CPU `to`.
    IpiSend {
        /// The target CPU.
        to: usize,
        /// The call.
        ipi: Ipi,
        /// Its mm argument.
        mm: MmId,
    },
    /// This CPU starts running the handler of `ipi` that CPU `from` sent about `mm`;
    /// its [`Tracepoint::End`] of [`Span::IpiHandler`] follows.
    IpiHandler {
        /// The sender.
        from: usize,
        /// The call.
        ipi: Ipi,
        /// Its mm argument.
        mm: MmId,
    },
    /// A span starts, about `mm`.
    Begin(Span, MmId),
    /// The innermost open span of that kind ends.
    End(Span, MmId),
}

/// A recorded tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    /// The host's clock when it was recorded.
    pub ts: u64,
    /// The CPU's step counter then (`Cpu::step`; violations carry the same counter).
    pub step: u64,
    /// What happened.
    pub tp: Tracepoint,
}

/// A CPU's tracing state while tracing is on.
///
/// # Invariants
/// `events` are in the order this CPU recorded them (`step` never decreases; `ts` never
/// decreases as long as the host's clock does not).
#[derive(Debug)]
pub(crate) struct Tracing {
    pub(crate) clock: fn() -> u64,
    pub(crate) events: Vec<TraceEvent>,
}
