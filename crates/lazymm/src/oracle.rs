//! The oracle: the safety properties of DESIGN.md §3, checked where they can break, and
//! the counters of what happened.
//!
//! Nothing here stops the model. A violation is recorded with the CPU, that CPU's step
//! and the mm, counted in the kernel-wide total, and the run goes on (a host may stop it
//! early). Accesses through stale handles never touch freed memory: the arena refuses
//! them, so a broken scheme is reported, not undefined behaviour.

use crate::mm::MmId;
use core::fmt;

/// Which property of DESIGN.md §3 a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// (a) no dereference of a freed mm.
    A,
    /// (b) no page tables loaded, even lazily, when freed.
    B,
    /// (c) `shootdown`: `mm_cpumask` covers every lazy user at `cleanup_lazy_tlbs`.
    C,
    /// (d) `hazptr-mathieu`: one lazy mm per CPU.
    D,
    /// (e) no underflow, freed exactly once, nothing leaked.
    E,
    /// (f) for a membarrier-registered mm, a full barrier between user access and the
    /// `rq.curr` store, both ways: after the store before returning to user space
    /// (kernel→user), and after the last user access before the store (user→kernel).
    F,
    /// (g) `x86`: an NMI touches user memory only through `current.mm`.
    G,
    /// (h) `x86`: a CPU touches user memory only through translations that every
    /// completed flush of the mm has reached (no stale TLB entry).
    H,
    /// (w) no debug check of the kernel fires (`VM_WARN_ON_ONCE` under
    /// `CONFIG_DEBUG_VM`): not a safety property, but the kernel prints a splat, so a
    /// configuration that reaches one is a finding.
    W,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self {
            Property::A => 'a',
            Property::B => 'b',
            Property::C => 'c',
            Property::D => 'd',
            Property::E => 'e',
            Property::F => 'f',
            Property::G => 'g',
            Property::H => 'h',
            Property::W => 'w',
        };
        write!(f, "{c}")
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    /// An access through a handle whose mm was already freed.
    UseAfterFree {
        /// Which reference was followed (`active_mm`, `rq.prev_lazy_mm`, …).
        via: &'static str,
    },
    /// The mm was freed while a CPU still had it loaded.
    FreedWhileLoaded {
        /// The CPU whose page-table root was the freed mm.
        holder: usize,
    },
    /// A speculative page walk of a lazy CPU read a freed page-table root.
    SpeculativeWalkOfFreed,
    /// `exit_mmap` freed the page tables below the root while a CPU's paging-structure
    /// caches could still walk into them (no TLB flush reached it).
    TablesFreedWhileCached {
        /// The CPU that could still walk them.
        holder: usize,
    },
    /// A speculative page walk went through a cached entry into freed lower tables.
    SpeculativeWalkOfFreedTables,
    /// `cleanup_lazy_tlbs` ran while a CPU used the mm lazily outside `mm_cpumask`.
    LazyCpuNotInCpumask {
        /// The lazy CPU the shootdown would miss.
        lazy: usize,
    },
    /// A CPU published a second lazy mm while its hazard slot was occupied.
    HazardSlotOccupied {
        /// What the slot already held.
        held: MmId,
    },
    /// A counter was decremented below zero.
    Underflow {
        /// `mm_users` or `mm_count`.
        counter: &'static str,
    },
    /// The same mm was freed twice.
    DoubleFree,
    /// At quiescence, an mm that should have been freed was still live.
    Leak {
        /// `mm_users` at the end.
        users: usize,
        /// `mm_count` at the end.
        count: usize,
    },
    /// A deferred reference lingered on a CPU past its next switch.
    LingeringDeferred,
    /// A CPU that became a user of the mm (a kernel→user or user→user switch,
    /// `kthread_use_mm`, a kernel thread's `exec_mmap`) reached user space with no full
    /// barrier after the `rq.curr` store.
    NoMembarrierBarrier,
    /// A CPU stopped being a user of the mm (a switch away from a user task, `exit_mm`,
    /// `kthread_unuse_mm`, a user task's `exec_mmap`) with no full barrier between its
    /// last user access and the `rq.curr` store (`__schedule`'s or `task_lock`'s
    /// `smp_mb__after_spinlock()`, `membarrier_exec_mmap`'s `smp_mb()` missing).
    NoMembarrierBarrierBeforeCurr,
    /// An NMI accessed user memory while the hardware had a different mm loaded.
    NmiWrongMm {
        /// What CR3 held.
        loaded: MmId,
    },
    /// A CPU touched user memory of an mm through a PCID whose entries are older than a
    /// flush of that mm that has already returned: a flush skipped it and it never
    /// caught up.
    StaleTlb {
        /// The `tlb_gen` the CPU's entries are current with.
        tlb_gen: u64,
        /// The `tlb_gen` of the newest flush that has returned.
        flushed: u64,
    },
    /// A kernel debug check (`VM_WARN_ON_ONCE`) fired on a live mm.
    DebugWarn {
        /// The check, as the kernel writes it.
        check: &'static str,
    },
    /// A synchronous IPI was sent with interrupts disabled (it would deadlock).
    IpiWithIrqsDisabled,
    /// A CPU waits for something that never happens: a host that plays every CPU ran
    /// all it could and the wait is not over (a CPU it waits for is offline, say).
    WaitsForever {
        /// The first CPU it waits for.
        on: usize,
    },
}

impl ViolationKind {
    /// The property this breaks.
    pub fn property(&self) -> Property {
        match self {
            ViolationKind::UseAfterFree { .. } => Property::A,
            ViolationKind::FreedWhileLoaded { .. }
            | ViolationKind::SpeculativeWalkOfFreed
            | ViolationKind::TablesFreedWhileCached { .. }
            | ViolationKind::SpeculativeWalkOfFreedTables => Property::B,
            ViolationKind::LazyCpuNotInCpumask { .. } => Property::C,
            ViolationKind::HazardSlotOccupied { .. } => Property::D,
            ViolationKind::Underflow { .. }
            | ViolationKind::DoubleFree
            | ViolationKind::Leak { .. }
            | ViolationKind::LingeringDeferred
            | ViolationKind::IpiWithIrqsDisabled
            | ViolationKind::WaitsForever { .. } => Property::E,
            ViolationKind::NoMembarrierBarrier | ViolationKind::NoMembarrierBarrierBeforeCurr => {
                Property::F
            }
            ViolationKind::NmiWrongMm { .. } => Property::G,
            ViolationKind::StaleTlb { .. } => Property::H,
            ViolationKind::DebugWarn { .. } => Property::W,
        }
    }
}

/// One broken property, where and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The CPU that found it.
    pub cpu: usize,
    /// That CPU's step counter when it found it.
    pub step: u64,
    /// The mm involved.
    pub mm: MmId,
    /// What went wrong.
    pub kind: ViolationKind,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "property {}: cpu {} step {}: {}: ",
            self.kind.property(),
            self.cpu,
            self.step,
            self.mm
        )?;
        match &self.kind {
            ViolationKind::UseAfterFree { via } => write!(f, "use after free through {via}"),
            ViolationKind::FreedWhileLoaded { holder } => {
                write!(f, "freed while cpu {holder} still had it loaded")
            }
            ViolationKind::SpeculativeWalkOfFreed => {
                write!(f, "speculative page walk of freed page tables")
            }
            ViolationKind::TablesFreedWhileCached { holder } => write!(
                f,
                "lower page tables freed while cpu {holder} could still walk them from its caches"
            ),
            ViolationKind::SpeculativeWalkOfFreedTables => write!(
                f,
                "speculative page walk through a cached entry into freed lower page tables"
            ),
            ViolationKind::LazyCpuNotInCpumask { lazy } => write!(
                f,
                "cleanup_lazy_tlbs ran while cpu {lazy} used it lazily outside mm_cpumask"
            ),
            ViolationKind::HazardSlotOccupied { held } => {
                write!(f, "hazard slot already held {held}")
            }
            ViolationKind::Underflow { counter } => write!(f, "{counter} underflow"),
            ViolationKind::DoubleFree => write!(f, "freed twice"),
            ViolationKind::Leak { users, count } => {
                write!(f, "leaked (mm_users {users}, mm_count {count})")
            }
            ViolationKind::LingeringDeferred => {
                write!(f, "deferred reference still held after the next switch")
            }
            ViolationKind::NoMembarrierBarrier => write!(
                f,
                "reached user space of the mm with no full barrier after the rq->curr store"
            ),
            ViolationKind::NoMembarrierBarrierBeforeCurr => write!(
                f,
                "left the mm's user space and stored rq->curr with no full barrier after the user accesses"
            ),
            ViolationKind::NmiWrongMm { loaded } => {
                write!(f, "NMI user access while CR3 held {loaded}")
            }
            ViolationKind::StaleTlb { tlb_gen, flushed } => write!(
                f,
                "user access through TLB entries of tlb_gen {tlb_gen} after the flush of tlb_gen {flushed} returned"
            ),
            ViolationKind::DebugWarn { check } => write!(f, "WARNING: {check} fired"),
            ViolationKind::IpiWithIrqsDisabled => {
                write!(f, "synchronous IPI sent with interrupts disabled")
            }
            ViolationKind::WaitsForever { on } => {
                write!(f, "waits for cpu {on} for ever (nothing left to run)")
            }
        }
    }
}

/// Teardown latencies in nanoseconds, as a log-linear histogram: exact below 16 ns, then
/// 16 buckets per power of two, each within 1/16 of its lower bound, up to 2^35 ns. Each
/// CPU keeps its own beside its [`Stats`] ([`crate::Cpu::teardowns`]), not inside them:
/// at 2 KiB it would make every copy of the counters (the simulator takes two per step)
/// expensive; a host merges the CPUs' histograms once, when it reports.
///
/// # Invariants
/// `counts[i]` counts the samples `v` with `TeardownHist::bucket(v) == i`.
#[derive(Clone, PartialEq, Eq)]
pub struct TeardownHist {
    /// Samples per bucket.
    pub counts: [u32; TeardownHist::BUCKETS],
}

impl TeardownHist {
    /// Buckets in the histogram.
    pub const BUCKETS: usize = 512;

    /// The bucket of `ns`; the last bucket takes everything above the range.
    pub fn bucket(ns: u64) -> usize {
        if ns < 16 {
            return ns as usize;
        }
        let e = 63 - ns.leading_zeros() as usize;
        ((e - 3) * 16 + ((ns >> (e - 4)) & 15) as usize).min(Self::BUCKETS - 1)
    }

    /// The smallest value in bucket `i`.
    pub fn lowest(i: usize) -> u64 {
        if i < 16 {
            return i as u64;
        }
        (16 + (i as u64 & 15)) << (i / 16 - 1)
    }

    /// Counts one sample.
    pub fn record(&mut self, ns: u64) {
        let c = &mut self.counts[Self::bucket(ns)];
        *c = c.saturating_add(1);
    }

    /// Adds another histogram's samples into this one.
    pub fn add(&mut self, o: &TeardownHist) {
        for (c, x) in self.counts.iter_mut().zip(o.counts) {
            *c = c.saturating_add(x);
        }
    }
}

impl Default for TeardownHist {
    fn default() -> Self {
        TeardownHist {
            counts: [0; Self::BUCKETS],
        }
    }
}

impl core::fmt::Debug for TeardownHist {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        write!(f, "TeardownHist({n} samples)")
    }
}

/// Per-CPU counters of what happened. Each CPU owns its own; a host sums them at the end,
/// so counting never adds a shared write to the path being measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls of `context_switch`.
    pub context_switches: u64,
    /// user→kernel switches (entries into lazy TLB mode from a user task).
    pub lazy_switches: u64,
    /// Atomic read-modify-writes the scheme and arch made on lines shared between CPUs.
    pub shared_rmw: u64,
    /// Full barriers (each `smp_mb`, and each side of a fully ordered RMW).
    pub full_fences: u64,
    /// IPIs this CPU sent.
    pub ipis_sent: u64,
    /// IPIs this CPU handled.
    pub ipis_received: u64,
    /// mms this CPU allocated.
    pub mm_created: u64,
    /// mms this CPU freed.
    pub mm_freed: u64,
    /// `__mmput` teardowns this CPU ran (exits of a last user).
    pub exits: u64,
    /// Nanoseconds spent in `__mmput` and `__mmdrop` (when the host gave a clock).
    pub teardown_ns: u64,
    /// Speculative page walks made by this CPU.
    pub speculative_walks: u64,
    /// NMIs this CPU took.
    pub nmis: u64,
    /// Times this CPU went offline.
    pub offlines: u64,
    /// CPUs a teardown scan of hazard pointers found still naming the dying mm
    /// (`hazptr-luto`'s scan after `exit_mmap`), summed over the scans this CPU made.
    pub lazy_scan_hits: u64,
    /// Violations this CPU found.
    pub violations: u64,
}

impl Stats {
    /// Adds another CPU's counters into these.
    pub fn add(&mut self, o: &Stats) {
        self.context_switches += o.context_switches;
        self.lazy_switches += o.lazy_switches;
        self.shared_rmw += o.shared_rmw;
        self.full_fences += o.full_fences;
        self.ipis_sent += o.ipis_sent;
        self.ipis_received += o.ipis_received;
        self.mm_created += o.mm_created;
        self.mm_freed += o.mm_freed;
        self.exits += o.exits;
        self.teardown_ns += o.teardown_ns;
        self.speculative_walks += o.speculative_walks;
        self.nmis += o.nmis;
        self.offlines += o.offlines;
        self.lazy_scan_hits += o.lazy_scan_hits;
        self.violations += o.violations;
    }

    /// What was counted since `earlier`, a copy of these counters taken before.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            context_switches: self.context_switches - earlier.context_switches,
            lazy_switches: self.lazy_switches - earlier.lazy_switches,
            shared_rmw: self.shared_rmw - earlier.shared_rmw,
            full_fences: self.full_fences - earlier.full_fences,
            ipis_sent: self.ipis_sent - earlier.ipis_sent,
            ipis_received: self.ipis_received - earlier.ipis_received,
            mm_created: self.mm_created - earlier.mm_created,
            mm_freed: self.mm_freed - earlier.mm_freed,
            exits: self.exits - earlier.exits,
            teardown_ns: self.teardown_ns - earlier.teardown_ns,
            speculative_walks: self.speculative_walks - earlier.speculative_walks,
            nmis: self.nmis - earlier.nmis,
            offlines: self.offlines - earlier.offlines,
            lazy_scan_hits: self.lazy_scan_hits - earlier.lazy_scan_hits,
            violations: self.violations - earlier.violations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter is non-zero and distinct, so a field `add` or `since` forgets shows.
    fn every_field() -> Stats {
        Stats {
            context_switches: 1,
            lazy_switches: 2,
            shared_rmw: 3,
            full_fences: 4,
            ipis_sent: 5,
            ipis_received: 6,
            mm_created: 7,
            mm_freed: 8,
            exits: 9,
            teardown_ns: 10,
            speculative_walks: 11,
            nmis: 12,
            offlines: 13,
            lazy_scan_hits: 14,
            violations: 15,
        }
    }

    #[test]
    fn since_undoes_add_on_every_field() {
        let b = every_field();
        let mut a = b;
        a.add(&b);
        assert_ne!(a, b);
        assert_eq!(a.since(&b), b);
        assert_eq!(b.since(&b), Stats::default());
    }

    #[test]
    fn stats_stay_small_enough_to_copy_per_step() {
        assert!(core::mem::size_of::<Stats>() <= 16 * 8);
    }
}
