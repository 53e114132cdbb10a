//! Quiescing, written once for every host: the three phases that end a run, in their
//! order, with each host's part (its barrier, its mailbox delivery, what its workload
//! holds, what it logs) behind [`Quiescer`].
//!
//! A threaded host (native, checker) runs [`quiesce_cpu`] on each CPU's thread, its
//! [`Quiescer::begin`] waiting at a [`Barrier`](super::Barrier) so that every CPU
//! finishes a phase before any begins the next. A single-threaded host runs each phase
//! on every CPU in turn ([`quiesce_each`]), which orders the phases the same way with no
//! barrier: the discrete-event host through [`quiesce_phase`] (phase one is a step of
//! each CPU in simulated time, the others are not charged), the replay host, which keeps
//! the trace's task table instead of runqueues, with its own body per phase.

use super::Runqueue;
use lazymm::{Arch, Kernel, Scheme};

/// A phase of quiescing. Every CPU finishes one before any CPU begins the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The CPU takes the tasks and wakeups other CPUs sent it, every task exits
    /// ([`Runqueue::quiesce_tasks`]), and the workload lets go of what it holds for the
    /// CPU. After it no CPU runs a user task.
    Tasks = 1,
    /// The idle task leaves its lazy mm for `init_mm` and the scheme's deferred drops
    /// parked on the CPU run ([`Runqueue::quiesce_idle`]).
    Idle = 2,
    /// CPU 0 asks the oracle whether every mm was freed
    /// ([`Kernel::check_quiescent`]).
    Oracle = 3,
}

impl Phase {
    /// The phases, in order.
    pub const ALL: [Phase; 3] = [Phase::Tasks, Phase::Idle, Phase::Oracle];

    /// The phase's number, from 1: the phase a threaded host's
    /// [`Barrier::wait`](super::Barrier::wait) is given before it.
    pub fn number(self) -> usize {
        self as usize
    }
}

/// A host's part in quiescing a CPU whose runqueue is `Runqueue<S, A, P>`.
pub trait Quiescer<S: Scheme, A: Arch, P> {
    /// Before `phase` on the CPU of `rq`: a threaded host waits at its barrier until
    /// every CPU finished the phase before (answering IPIs); a single-threaded host,
    /// which runs each phase on every CPU in turn, has nothing to wait for. `false`
    /// skips the phase on this CPU (the checker after a violation runs only barriers).
    fn begin(&mut self, _k: &Kernel<S, A>, _rq: &mut Runqueue<S, A, P>, _phase: Phase) -> bool {
        true
    }

    /// Phase one, first: the mailbox delivery. The tasks other CPUs placed here before
    /// they stopped are adopted (not runnable: they only exit) and pending wakeups
    /// taken, so that every task the workload made exits on some CPU.
    fn deliver(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, P>);

    /// Phase one: task slot `i` is about to be switched to and exit (the checker logs
    /// it).
    fn exiting(&mut self, _rq: &mut Runqueue<S, A, P>, _i: usize) {}

    /// Phase one, last: what the host holds for this CPU is let go (the workload's
    /// [`Behavior::quiesce`](crate::workload::Behavior::quiesce); the checker's CPU 0
    /// drops the references its kernel workers still hold).
    fn release(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, P>);

    /// After `phase` ran on the CPU of `rq` (not after a skipped one).
    fn end(&mut self, _k: &Kernel<S, A>, _rq: &mut Runqueue<S, A, P>, _phase: Phase) {}
}

/// Phase `phase` on the CPU of `rq`: `q.begin`, what every host does in the phase with
/// `q`'s part, `q.end`.
pub fn quiesce_phase<S, A, P, Q>(
    q: &mut Q,
    k: &Kernel<S, A>,
    rq: &mut Runqueue<S, A, P>,
    phase: Phase,
) where
    S: Scheme,
    A: Arch,
    Q: Quiescer<S, A, P> + ?Sized,
{
    if !q.begin(k, rq, phase) {
        return;
    }
    match phase {
        Phase::Tasks => {
            q.deliver(k, rq);
            rq.quiesce_tasks(k, |rq, i| q.exiting(rq, i));
            q.release(k, rq);
        }
        Phase::Idle => rq.quiesce_idle(k),
        Phase::Oracle => {
            if rq.cpu.id == 0 {
                k.check_quiescent(&mut rq.cpu);
            }
        }
    }
    q.end(k, rq, phase);
}

/// Quiescing on one CPU of a threaded host: every phase, in order (`q.begin` waits for
/// the other CPUs before each).
pub fn quiesce_cpu<S, A, P, Q>(q: &mut Q, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, P>)
where
    S: Scheme,
    A: Arch,
    Q: Quiescer<S, A, P> + ?Sized,
{
    for phase in Phase::ALL {
        quiesce_phase(q, k, rq, phase);
    }
}

/// Quiescing on a single-threaded host of `n` CPUs: each of `phases`, in order, on every
/// CPU in turn (`on(phase, Some(cpu))`), then `on(phase, None)` once the phase is done
/// on every CPU (what the host does once per phase).
pub fn quiesce_each(n: usize, phases: &[Phase], mut on: impl FnMut(Phase, Option<usize>)) {
    for &phase in phases {
        for cpu in 0..n {
            on(phase, Some(cpu));
        }
        on(phase, None);
    }
}
