//! `idle-storm`: every CPU runs one thread of one shared process that sleeps on the
//! CPU's timer, so each CPU goes user → idle → user over and over: the purest lazy
//! round trip, with nothing shared between CPUs but the mm itself.

use super::{Behavior, Prog, Size};
use crate::host::{Host, HostTask, Runqueue, Step};
use lazymm::{Arch, Kernel, Scheme};

/// `idle-storm`.
#[derive(Debug, Clone, Copy)]
pub struct IdleStorm;

/// Fits any CPU count: one task or a few per CPU, within the arena's default.
impl Size for IdleStorm {}

impl<S: Scheme> Behavior<S> for IdleStorm {
    type Prog = Prog;

    fn setup<A: Arch>(&self, k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Prog>]) {
        let pid = rqs[0].pid();
        let mut parent = k
            .fork(&mut rqs[0].cpu, pid)
            .expect("the arena has room (sized by Workload::check)");
        for rq in rqs.iter_mut() {
            let pid = rq.pid();
            let t = k
                .clone_thread(&mut rq.cpu, &parent, pid)
                .expect("parent has an mm");
            let _ = rq.place(
                HostTask {
                    task: t,
                    prog: Prog::Sleeper,
                },
                true,
            );
        }
        rqs[0].kill_unplaced(k, &mut parent);
    }

    #[inline]
    fn step<A: Arch, H: Host<S, Prog>>(
        &self,
        _k: &Kernel<S, A>,
        _rq: &mut Runqueue<S, A, Prog>,
        _host: &H,
        _i: usize,
    ) -> Step {
        Step::Sleep
    }
}
