//! `exit-storm`: processes are born, run briefly on two CPUs and exit, so teardown
//! (IPIs, scans, frees) runs all the time.
//!
//! Each CPU runs a spawner kernel thread that keeps [`LIVE_PER_CPU`] processes alive.
//! A new process starts as a kernel thread that execs (as `call_usermodehelper` does),
//! sometimes execs once more, and starts a second thread on the next CPU; both threads
//! run [`QUANTA`] quanta and exit, the last one out tearing the mm down; in quantum
//! [`UNMAP_AT`] each unmaps a page (`munmap`), a TLB flush that frees no page tables.
//! Members sleep on the timer, so the load balancer may move them between CPUs.

use super::{place_kthread, Behavior, Prog, Size};
use crate::host::{Host, HostTask, Runqueue, Step};
use lazymm::sync::CachePadded;
use lazymm::{Arch, Kernel, Scheme};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Quanta an `exit-storm` thread runs before it exits.
pub const QUANTA: u32 = 4;
/// The quantum (counting down) in which a thread unmaps a page of its process.
pub const UNMAP_AT: u32 = 2;
/// Processes a spawner keeps alive at once.
pub const LIVE_PER_CPU: usize = 2;

/// A process of `exit-storm`: how many of its threads are still alive.
pub struct Proc {
    threads: AtomicUsize,
    home: usize,
}

/// `exit-storm`: per CPU, the number of live processes its spawner started.
pub struct ExitStorm {
    live: Box<[CachePadded<AtomicUsize>]>,
}

impl ExitStorm {
    /// For a machine of `cpus` CPUs.
    pub fn new(cpus: usize) -> ExitStorm {
        ExitStorm {
            live: (0..cpus)
                .map(|_| CachePadded(AtomicUsize::new(0)))
                .collect(),
        }
    }

    /// The spawner: start a process if this CPU has fewer than [`LIVE_PER_CPU`].
    fn spawn<S: Scheme, A: Arch, H: Host<S, Prog>>(&self, rq: &mut Runqueue<S, A, Prog>, host: &H) {
        let live = &self.live[rq.cpu.id];
        if live.load(Ordering::Relaxed) >= LIVE_PER_CPU || host.stopping() {
            return;
        }
        live.fetch_add(1, Ordering::Relaxed);
        if place_kthread(rq, Prog::Newborn, true).is_err() {
            live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A newborn kernel thread execs into a new process (sometimes twice), starts a
    /// second thread on the next CPU, and both become members.
    fn newborn<S: Scheme, A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        host: &H,
        i: usize,
    ) {
        let me = rq.cpu.id;
        let Some(mm) = k.mm_alloc(&mut rq.cpu) else {
            // The arena is full: retry later.
            return;
        };
        let second = if rq.cpu.rand() % 2 == 0 {
            k.mm_alloc(&mut rq.cpu)
        } else {
            None
        };
        let pid = rq.pid();
        let (cpu, ht) = rq.parts(i);
        k.exec_mmap(cpu, &mut ht.task, mm);
        if let Some(mm2) = second {
            k.exec_mmap(cpu, &mut ht.task, mm2);
        }
        let proc = Arc::new(Proc {
            threads: AtomicUsize::new(2),
            home: me,
        });
        let thread = k
            .clone_thread(cpu, &ht.task, pid)
            .expect("a process that just exec'd has an mm");
        ht.prog = Prog::Member {
            proc: proc.clone(),
            quanta: QUANTA,
        };
        let t = HostTask {
            task: thread,
            prog: Prog::Member {
                proc: proc.clone(),
                quanta: QUANTA,
            },
        };
        let target = (me + 1) % k.nr_cpus();
        if target != me {
            host.place(target, t);
        } else if rq.adopt(k, t, true).is_none() {
            // No room: the thread exited before it ran.
            proc.threads.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Fits any CPU count: one task or a few per CPU, within the arena's default.
impl Size for ExitStorm {}

impl<S: Scheme> Behavior<S> for ExitStorm {
    type Prog = Prog;

    fn setup<A: Arch>(&self, _k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Prog>]) {
        for rq in rqs.iter_mut() {
            let _ = place_kthread(rq, Prog::Spawner, true);
        }
    }

    fn step<A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        host: &H,
        i: usize,
    ) -> Step {
        match &mut rq.parts(i).1.prog {
            Prog::Spawner => self.spawn(rq, host),
            Prog::Newborn => self.newborn(k, rq, host, i),
            Prog::Member { proc, quanta } => {
                *quanta -= 1;
                if *quanta == UNMAP_AT {
                    // munmap() of a page: a flush that frees no page tables, while the
                    // process's other thread may sleep on its CPU, which is lazy then.
                    if let Some(mm) = rq.current().and_then(|t| t.mm_id()) {
                        k.zap_page_range(&mut rq.cpu, mm);
                    }
                    return Step::Sleep;
                }
                if *quanta == 0 {
                    // ORDERING: AcqRel: the last thread out sees the others' exits.
                    if proc.threads.fetch_sub(1, Ordering::AcqRel) == 1 {
                        self.live[proc.home].fetch_sub(1, Ordering::Relaxed);
                    }
                    return Step::Exit;
                }
            }
            _ => unreachable!("exit-storm runs only spawners and their processes"),
        }
        Step::Sleep
    }

    /// A process's threads sleep on the timer and are woken by nobody else: the load
    /// balancer may move them. Spawners and newborns are per-CPU kernel threads.
    fn may_migrate(&self, prog: &Prog) -> bool {
        matches!(prog, Prog::Member { .. })
    }
}
