//! An opt-in per-CPU event log for timelines (`lazymm run --timeline`).
//!
//! Each [`Runqueue`](super::Runqueue) may own one [`EventLog`]; when it has none (the
//! default), its switch and exit paths pay one branch on a field of the runqueue, which
//! only the CPU that owns it reads. A log is written only by its own CPU, stamped with
//! [`now_ns`](super::now_ns), and holds at most its cap of events: later ones are counted
//! in [`EventLog::dropped`], never stored.

use lazymm::tracepoint::{TraceEvent, Tracepoint};
use lazymm::MmId;

/// Which task a CPU ran before or after a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The CPU's idle task.
    Idle,
    /// A kernel thread (no `mm` of its own: it runs lazily on what it inherits).
    Kernel(u32),
    /// A user task and the mm it owns.
    User(u32, MmId),
}

/// What happened on a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A context switch from `prev` to `next`, after which the CPU's page tables hold
    /// `cr3` (the next task's mm, or, for a kernel thread or idle, the mm it keeps lazily).
    Switch {
        /// The task switched away from.
        prev: Who,
        /// The task switched to.
        next: Who,
        /// What the CPU has loaded after the switch (`Kernel::oracle_cr3`).
        cr3: MmId,
    },
    /// Task `pid` calls `exit_mm` on its mm `mm`.
    Exit {
        /// The exiting task.
        pid: u32,
        /// Its mm.
        mm: MmId,
    },
    /// A model tracepoint (an IPI sent or handled, a teardown span's start or end), with
    /// the kernel's name for it (the IPI handler's, or the span's).
    Trace(Tracepoint, &'static str),
}

/// One recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// [`now_ns`](super::now_ns) when it was recorded.
    pub ts: u64,
    /// The CPU's step counter then (`Cpu::step`; violations carry the same counter).
    pub step: u64,
    /// What happened.
    pub kind: EventKind,
}

/// One CPU's event log.
///
/// # Invariants
/// - `events.len() <= cap`; `dropped` counts the events offered once it was full.
/// - Events are in the order the CPU recorded them (`ts` and `step` never decrease).
#[derive(Debug, Clone)]
pub struct EventLog {
    /// The CPU that recorded it.
    pub cpu: usize,
    events: Vec<Event>,
    cap: usize,
    dropped: u64,
}

impl EventLog {
    /// An empty log of CPU `cpu` that keeps the first `cap` events.
    pub fn new(cpu: usize, cap: usize) -> EventLog {
        EventLog {
            cpu,
            events: Vec::new(),
            cap,
            dropped: 0,
        }
    }

    /// Records `kind` at the CPU's step `step`, stamped now (counted as dropped when
    /// the log is full).
    pub fn record(&mut self, step: u64, kind: EventKind) {
        self.push(Event {
            ts: super::now_ns(),
            step,
            kind,
        });
    }

    /// Records the model's tracepoints `trace` (stamped by the model with
    /// [`now_ns`](super::now_ns) as they happened), naming each with `name`.
    pub fn record_trace(
        &mut self,
        trace: Vec<TraceEvent>,
        name: impl Fn(Tracepoint) -> &'static str,
    ) {
        for e in trace {
            self.push(Event {
                ts: e.ts,
                step: e.step,
                kind: EventKind::Trace(e.tp, name(e.tp)),
            });
        }
    }

    fn push(&mut self, e: Event) {
        if self.events.len() < self.cap {
            self.events.push(e);
        } else {
            self.dropped += 1;
        }
    }

    /// The recorded events, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The most events the log keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Events offered after the log was full (not recorded).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The timestamp of the last event at or before `step` (the first event's, when
    /// every event is later; `None` for an empty log): where a violation stamped with
    /// `step` goes on the timeline.
    pub fn ts_at_step(&self, step: u64) -> Option<u64> {
        let i = self.events.partition_point(|e| e.step <= step);
        self.events.get(i.saturating_sub(1)).map(|e| e.ts)
    }
}
