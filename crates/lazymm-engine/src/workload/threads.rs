//! `threads` (and, with one process per pair, `processes`): will-it-scale's
//! `context_switch1` pairs.
//!
//! Pair `i`'s two threads start on CPUs `(2i) % P` and `(2i + 1) % P` of the `P` CPUs.
//! One thread wakes its partner and blocks; the partner runs, wakes it back and blocks.
//! With one pair per two CPUs (the default) every hand-off takes each CPU through idle
//! (user → idle → user: a lazy round trip); with more pairs than that (oversubscribed,
//! `2N > P`) a CPU holds several runnable threads and mostly switches user → user.

use super::{wake, Behavior, Prog, Size, WorkloadError};
use crate::host::{Host, HostTask, Runqueue, Step, MAX_TASKS};
use lazymm::{Arch, Kernel, Scheme};

/// will-it-scale's pairs: `pairs` pairs, each two threads of one process (`threads`)
/// or each pair a process of its own (`processes`).
#[derive(Debug, Clone, Copy)]
pub struct Pairs {
    /// Number of pairs.
    pub pairs: usize,
    /// Whether every pair belongs to one process (`threads`) rather than each to its own.
    pub one_process: bool,
}

impl Pairs {
    /// `threads`: `pairs` pairs of threads of one process.
    pub fn threads(pairs: usize) -> Pairs {
        Pairs {
            pairs,
            one_process: true,
        }
    }

    /// The CPUs pair `i` starts on, of `cpus` CPUs.
    pub fn cpus_of(i: usize, cpus: usize) -> (usize, usize) {
        ((2 * i) % cpus, (2 * i + 1) % cpus)
    }

    /// The most threads any one CPU holds with `pairs` pairs on `cpus` CPUs.
    pub fn threads_per_cpu(pairs: usize, cpus: usize) -> usize {
        (2 * pairs).div_ceil(cpus)
    }
}

impl Size for Pairs {
    /// At least one pair, and no CPU holding more than [`MAX_TASKS`] threads; `processes`
    /// holds one mm per pair beyond the arena's default.
    fn check(&self, cpus: usize) -> Result<usize, WorkloadError> {
        if self.pairs == 0 || Pairs::threads_per_cpu(self.pairs, cpus) > MAX_TASKS {
            return Err(WorkloadError::Pairs {
                pairs: self.pairs,
                cpus,
                max: MAX_TASKS * cpus / 2,
            });
        }
        Ok(if self.one_process { 1 } else { self.pairs })
    }
}

impl<S: Scheme> Behavior<S> for Pairs {
    type Prog = Prog;

    fn setup<A: Arch>(&self, k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Prog>]) {
        let n = rqs.len();
        let mut parent = self.one_process.then(|| {
            let pid = rqs[0].pid();
            k.fork(&mut rqs[0].cpu, pid)
                .expect("the arena has room (sized by Workload::check)")
        });
        for p in 0..self.pairs {
            let (ca, cb) = Pairs::cpus_of(p, n);
            let pid = rqs[ca].pid();
            let a = match &parent {
                Some(parent) => k.clone_thread(&mut rqs[ca].cpu, parent, pid),
                None => k.fork(&mut rqs[ca].cpu, pid),
            }
            .expect("the arena has room for the initial tasks (sized by Workload::check)");
            let pid = rqs[cb].pid();
            let b = k
                .clone_thread(&mut rqs[cb].cpu, &a, pid)
                .expect("a has an mm");
            // Place both, then tell each where its partner went.
            let unset = || Prog::Pair { cpu: 0, task: 0 };
            let ia = rqs[ca]
                .place(
                    HostTask {
                        task: a,
                        prog: unset(),
                    },
                    true,
                )
                .ok()
                .expect("the runqueue has room for the initial tasks (checked by Workload::check)");
            let ib = rqs[cb]
                .place(
                    HostTask {
                        task: b,
                        prog: unset(),
                    },
                    false,
                )
                .ok()
                .expect("the runqueue has room for the initial tasks (checked by Workload::check)");
            rqs[ca].parts(ia).1.prog = Prog::Pair { cpu: cb, task: ib };
            rqs[cb].parts(ib).1.prog = Prog::Pair { cpu: ca, task: ia };
        }
        if let Some(parent) = &mut parent {
            // The parent only forked the others; it exits at once.
            rqs[0].kill_unplaced(k, parent);
        }
    }

    #[inline]
    fn step<A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        host: &H,
        i: usize,
    ) -> Step {
        let Prog::Pair { cpu, task } = rq.parts(i).1.prog else {
            unreachable!("a pair workload runs only pair threads")
        };
        wake(k, rq, host, cpu, task);
        Step::Block
    }
}
