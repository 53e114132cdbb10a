//! `threads` (and, with one process per pair, `processes`): will-it-scale's
//! `context_switch1` pairs.
//!
//! One thread wakes its partner and blocks (a one-byte pipe write, then a read); the
//! partner runs, wakes it back and blocks. Where the woken thread runs is the kernel's
//! choice, made at each wakeup ([`RqView::select_task_rq_fair`], a `WF_SYNC` wakeup:
//! `pipe_write` wakes the reader with `wake_up_interruptible_sync_poll`); a thread that
//! is to run elsewhere moves there ([`Host::wake_to`]). The threads start where fork
//! balancing puts new tasks on an idle machine ([`Topology::fork_order`]: one thread of
//! every core first). With one pair per two CPUs or fewer, each woken thread goes back
//! to its previous CPU, idle, and every hand-off takes both CPUs through idle (a lazy
//! round trip); with more, a CPU holds several runnable threads and mostly switches
//! user → user.
//!
//! Pinned (`--pin`, will-it-scale's pinned mode as `lazymm lab --pin` runs it): both
//! threads of pair `i` are bound to CPU `i % P`, so the kernel never calls
//! `select_task_rq` for them (`nr_cpus_allowed == 1`): the woken thread runs on its
//! waker's CPU and no hand-off goes through idle.
//!
//! Each thread finds its partner through the pair's location words: a thread publishes
//! its CPU and slot when it runs, before it wakes its partner, and a thread is moved
//! only by its partner's wakeup, so the location a thread reads is where its partner
//! blocked.

use super::{Behavior, Prog, Size, WorkloadError};
use crate::host::{Host, HostTask, Runqueue, Step, Topology, WakeKind, MAX_TASKS};
use lazymm::sync::CachePadded;
use lazymm::{Arch, Kernel, Scheme};
use std::sync::atomic::{AtomicU64, Ordering};

/// A runqueue that holds this many tasks takes no more moved threads: a wakeup that
/// would move one there leaves it on its previous CPU (so a moved thread always finds a
/// slot, [`MAX_TASKS`] less a margin for moves already on their way).
const MOVE_ROOM: usize = MAX_TASKS - 16;

/// will-it-scale's pairs: `pairs` pairs, each two threads of one process (`threads`)
/// or each pair a process of its own (`processes`).
pub struct Pairs {
    /// Number of pairs.
    pub pairs: usize,
    /// Whether every pair belongs to one process (`threads`) rather than each to its own.
    pub one_process: bool,
    /// Whether both threads of pair `i` are pinned to CPU `i % P` (will-it-scale's
    /// pinned mode) rather than placed by the kernel at each wakeup.
    pub pin: bool,
    /// Where new threads start, in order ([`Topology::fork_order`]).
    order: Vec<usize>,
    /// Per pair, each thread's CPU and slot (`cpu << 32 | slot`), as it last ran.
    loc: Box<[CachePadded<[AtomicU64; 2]>]>,
}

impl Pairs {
    /// `threads`: `pairs` pairs of threads of one process, placed by the kernel on a
    /// machine of `topo`'s shape (or pinned, with `pin`).
    pub fn threads(pairs: usize, topo: &Topology, pin: bool) -> Pairs {
        Pairs::new(pairs, true, topo, pin)
    }

    /// Pairs of threads, of one process (`one_process`) or each pair a process of its
    /// own, on a machine of `topo`'s shape.
    pub fn new(pairs: usize, one_process: bool, topo: &Topology, pin: bool) -> Pairs {
        Pairs {
            pairs,
            one_process,
            pin,
            order: topo.fork_order(),
            loc: (0..pairs)
                .map(|_| CachePadded([AtomicU64::new(0), AtomicU64::new(0)]))
                .collect(),
        }
    }

    /// The CPUs pair `i`'s two threads start on.
    pub fn cpus_of(&self, i: usize) -> (usize, usize) {
        let n = self.order.len();
        if self.pin {
            (i % n, i % n)
        } else {
            (self.order[(2 * i) % n], self.order[(2 * i + 1) % n])
        }
    }

    /// The most threads any one CPU holds at the start with `pairs` pairs on `cpus`
    /// CPUs.
    pub fn threads_per_cpu(pairs: usize, cpus: usize) -> usize {
        (2 * pairs).div_ceil(cpus)
    }

    fn set_loc(&self, pair: usize, end: usize, cpu: usize, slot: usize) {
        // Relaxed: published to the partner by the wakeup that follows (the doorbell's
        // Release, or the inbox's mutex).
        self.loc[pair][end].store((cpu as u64) << 32 | slot as u64, Ordering::Relaxed);
    }

    fn loc(&self, pair: usize, end: usize) -> (usize, usize) {
        // Relaxed: ordered after the partner's store by the wakeup that made this
        // thread run (see `set_loc`).
        let v = self.loc[pair][end].load(Ordering::Relaxed);
        ((v >> 32) as usize, (v & 0xffff_ffff) as usize)
    }
}

impl Size for Pairs {
    /// At least one pair, and no CPU holding more than [`MAX_TASKS`] threads; `processes`
    /// holds one mm per pair beyond the arena's default.
    fn check(&self, cpus: usize) -> Result<usize, WorkloadError> {
        let per_cpu = if self.pin {
            2 * self.pairs.div_ceil(cpus)
        } else {
            Pairs::threads_per_cpu(self.pairs, cpus)
        };
        if self.pairs == 0 || per_cpu > MAX_TASKS {
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
        debug_assert_eq!(n, self.order.len(), "the topology has the machine's CPUs");
        for p in 0..self.pairs {
            let (ca, cb) = self.cpus_of(p);
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
            // Place both, then tell each which pair it belongs to and where its partner is.
            let unset = || Prog::Pair {
                pair: 0,
                end: 0,
                recent: 0,
            };
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
            rqs[ca].parts(ia).1.prog = Prog::Pair {
                pair: p as u32,
                end: 0,
                recent: cb as u32,
            };
            rqs[cb].parts(ib).1.prog = Prog::Pair {
                pair: p as u32,
                end: 1,
                recent: ca as u32,
            };
            self.set_loc(p, 0, ca, ia);
            self.set_loc(p, 1, cb, ib);
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
        let me = rq.cpu.id;
        let Prog::Pair { pair, end, recent } = rq.parts(i).1.prog else {
            unreachable!("a pair workload runs only pair threads")
        };
        let (pair, end) = (pair as usize, end as usize);
        let mut partner_recent = recent as usize;
        self.set_loc(pair, end, me, i);
        let (prev, task) = self.loc(pair, 1 - end);
        let view = host.view();
        let target = if self.pin {
            // Bound to one CPU: no select_task_rq (nr_cpus_allowed == 1).
            prev
        } else {
            let t = view.select_task_rq_fair(me, prev, &mut partner_recent, true);
            // The host's own view of the online mask and of room for one more task:
            // a CPU that could not take the thread leaves it where it was.
            if t == prev
                || (k.oracle_online_mask().test(t) && (view.nr_running(t) as usize) < MOVE_ROOM)
            {
                t
            } else {
                prev
            }
        };
        let kind = WakeKind::of(view.topology(), me, prev, target, view.idle(target));
        if let Prog::Pair { recent, .. } = &mut rq.parts(i).1.prog {
            *recent = partner_recent as u32;
        }
        rq.count_wakeup(kind);
        // The wakeup's shared accesses (`ttwu_queue` on `target`'s runqueue: its wake
        // list or its `rq->lock`), made where the kernel makes them, once `target` is
        // known, with the target's real idle state and cache.
        if target != me {
            let idle = view.idle(target);
            let shares_cache = view.topology().share_cache(me, target);
            k.ttwu_accesses(&mut rq.cpu, target, idle, shares_cache);
        }
        if target == prev {
            if prev == me {
                rq.wake(task);
            } else {
                host.wake(prev, task);
            }
        } else if prev == me {
            // The partner blocked on this CPU: it leaves from here.
            rq.migrate(k, task, host, target);
        } else {
            host.wake_to(prev, task, target);
        }
        Step::Block
    }
}
