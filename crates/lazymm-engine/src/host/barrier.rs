//! The phase barrier of threaded hosts, which keeps answering IPIs while it waits.

use lazymm::sync::CachePadded;
use lazymm::{Arch, Cpu, Kernel, Scheme};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A barrier that every CPU of a threaded host passes once per phase (phases 1, 2, ...).
///
/// A CPU waits with interrupts enabled: it keeps running the IPIs sent to it, because a
/// CPU that has not arrived yet may be waiting for this one's answer (a teardown's
/// shootdown), and the two would otherwise deadlock.
pub struct Barrier {
    arrived: CachePadded<AtomicUsize>,
    n: usize,
}

impl Barrier {
    /// A barrier for `n` CPUs.
    pub fn new(n: usize) -> Barrier {
        Barrier {
            arrived: CachePadded(AtomicUsize::new(0)),
            n,
        }
    }

    /// CPU `cpu` arrives at phase `phase` (counting from 1, each CPU passing every phase
    /// in order) and waits until every CPU has, answering IPIs and calling `relax`
    /// between polls (a yield of the host thread, or of the checker's turn).
    pub fn wait<S: Scheme, A: Arch>(
        &self,
        k: &Kernel<S, A>,
        cpu: &mut Cpu<S, A>,
        phase: usize,
        mut relax: impl FnMut(),
    ) {
        // ORDERING: AcqRel: Release publishes what this CPU did before the barrier to
        // the Acquire loads below on the other CPUs; Acquire sees the earlier arrivals.
        self.arrived.fetch_add(1, Ordering::AcqRel);
        loop {
            k.irq_point(cpu);
            // ORDERING: Acquire pairs with the other CPUs' AcqRel arrivals: what they did
            // before the barrier is visible after it.
            if self.arrived.load(Ordering::Acquire) >= self.n * phase {
                break;
            }
            relax();
        }
    }
}
