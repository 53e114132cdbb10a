//! `migrate-storm`: as many processes as CPUs, each walked across every CPU and then
//! exiting: Peter Zijlstra's worst case for `shootdown`.
//!
//! On CPU `c` a process starts with one thread; it runs [`QUANTA_PER_CPU`] quanta there
//! (sleeping on the timer between them, so the CPU goes lazy on its mm while it waits),
//! then moves to the next CPU ([`Step::Migrate`]), until it has run on all of them; on
//! the last one it exits and its CPU forks the next process in its place. Every CPU it
//! ran on set its bit in `mm_cpumask`. Where the arch never trims the mask (generic,
//! powerpc), the mask of every dying mm is every CPU, so `shootdown` sends an IPI per
//! CPU per exit, while `hazptr-mathieu` IPIs only the CPUs whose hazard slot still
//! names the mm (the few that went idle on it since it left them). On x86 the mask is
//! trimmed by flushes, and the freeing flush at `exit_mmap` does the shootdown's work.

use super::{Behavior, Prog, Size};
use crate::host::{Host, HostTask, Runqueue, Step};
use lazymm::{Arch, Kernel, Scheme};

/// Quanta a process runs on each CPU before it moves on.
pub const QUANTA_PER_CPU: u32 = 2;

/// `migrate-storm`.
#[derive(Debug, Clone, Copy)]
pub struct MigrateStorm;

impl MigrateStorm {
    /// Forks a new process on `rq`'s CPU, runnable, to walk every CPU from there.
    fn spawn<S: Scheme, A: Arch>(k: &Kernel<S, A>, rq: &mut Runqueue<S, A, Prog>) {
        let pid = rq.pid();
        let Some(task) = k.fork(&mut rq.cpu, pid) else {
            // The arena is full: this CPU gets its next process when another exits here.
            return;
        };
        let prog = Prog::Walker {
            cpus_left: k.nr_cpus() as u32,
            quanta: QUANTA_PER_CPU,
        };
        rq.adopt(k, HostTask { task, prog }, true);
    }
}

/// Fits any CPU count: one task or a few per CPU, within the arena's default.
impl Size for MigrateStorm {}

impl<S: Scheme> Behavior<S> for MigrateStorm {
    type Prog = Prog;

    fn setup<A: Arch>(&self, k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Prog>]) {
        for rq in rqs.iter_mut() {
            Self::spawn(k, rq);
        }
    }

    fn step<A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        _host: &H,
        i: usize,
    ) -> Step {
        let me = rq.cpu.id;
        let Prog::Walker { cpus_left, quanta } = &mut rq.parts(i).1.prog else {
            unreachable!("migrate-storm runs only walkers")
        };
        *quanta -= 1;
        if *quanta > 0 {
            return Step::Sleep;
        }
        *cpus_left -= 1;
        if *cpus_left == 0 {
            return Step::Exit;
        }
        *quanta = QUANTA_PER_CPU;
        Step::Migrate((me + 1) % k.nr_cpus())
    }

    fn exited<A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        host: &H,
        _t: HostTask<S, Prog>,
    ) {
        if !host.stopping() {
            Self::spawn(k, rq);
        }
    }
}
