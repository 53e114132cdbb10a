//! `hotplug`: CPUs other than CPU 0 go offline and come back while the tasks of
//! [`exit-storm`](super::exit_storm) and [`threads`](super::threads) run.
//!
//! Each such CPU runs a hotplug thread (as Linux's `cpuhp/N`) that sleeps on the timer
//! and, about once every [`HOTPLUG_PERIOD`] of its runs, takes its CPU offline for
//! [`HOTPLUG_OFFLINE`] (from `__cpu_disable` to the CPU's death, [`HOTPLUG_DIE_WAIT`]).

use super::{place_kthread, Behavior, ExitStorm, Pairs, Prog, Size};
use crate::host::{Host, Runqueue, Step, Topology};
use lazymm::{Arch, Kernel, Scheme};
use std::time::Duration;

/// A CPU goes offline about once every this many runs of its hotplug thread.
pub const HOTPLUG_PERIOD: u64 = 16;
/// From `__cpu_disable` to the CPU's death.
pub const HOTPLUG_DIE_WAIT: Duration = Duration::from_micros(200);
/// How long a CPU stays offline.
pub const HOTPLUG_OFFLINE: Duration = Duration::from_micros(200);

/// `hotplug`: `exit-storm` and `threads` (the default pairs), plus a hotplug thread on
/// every CPU but CPU 0.
pub struct Hotplug {
    storm: ExitStorm,
    pairs: Pairs,
}

impl Hotplug {
    /// For a machine of `topo`'s shape (its pairs pinned with `pin`).
    pub fn new(topo: &Topology, pin: bool) -> Hotplug {
        let cpus = topo.nr_cpus();
        Hotplug {
            storm: ExitStorm::new(cpus),
            pairs: Pairs::threads(cpus.div_ceil(2), topo, pin),
        }
    }
}

/// Fits any CPU count: one task or a few per CPU, within the arena's default.
impl Size for Hotplug {}

impl<S: Scheme> Behavior<S> for Hotplug {
    type Prog = Prog;

    fn setup<A: Arch>(&self, k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Prog>]) {
        Behavior::<S>::setup(&self.storm, k, rqs);
        Behavior::<S>::setup(&self.pairs, k, rqs);
        for rq in rqs.iter_mut().skip(1) {
            let _ = place_kthread(rq, Prog::Cpuhp, true);
        }
    }

    fn step<A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        host: &H,
        i: usize,
    ) -> Step {
        match rq.parts(i).1.prog {
            Prog::Cpuhp => {
                if rq.cpu.rand() % HOTPLUG_PERIOD == 0 && !host.stopping() {
                    rq.offline_cycle(k, host, HOTPLUG_DIE_WAIT, HOTPLUG_OFFLINE);
                }
                Step::Sleep
            }
            Prog::Pair { .. } => self.pairs.step(k, rq, host, i),
            _ => self.storm.step(k, rq, host, i),
        }
    }

    fn may_migrate(&self, prog: &Prog) -> bool {
        Behavior::<S>::may_migrate(&self.storm, prog)
    }
}
