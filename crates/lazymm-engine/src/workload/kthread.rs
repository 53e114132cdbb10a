//! `kthread`: kernel workers adopt user mms with `kthread_use_mm`.
//!
//! Today's users of `kthread_use_mm` are drivers' kernel workers that complete work
//! submitted from user space in the submitter's address space: the USB gadget
//! FunctionFS AIO completion worker (`ffs_user_copy_worker`) and VFIO's DMA read/write
//! path (`vfio_iommu_type1_dma_rw_chunk`). (io_uring's SQPOLL thread and vhost's worker
//! used to; they are now threads of the submitting process, with its mm as their own.)
//!
//! Each CPU runs one worker (slot 0) and one submitter. A submitter takes an `mm_count`
//! reference on its mm, queues it for the worker of its own CPU or of the next one, wakes
//! that worker and blocks until the work is done. The worker adopts the mm if it still
//! has a user, touches it, gives it back, drops the reference and wakes the submitter.
//! After [`SUBMIT_ROUNDS`] rounds a submitter exits, and a new process takes its place.

use super::{place_kthread, run_work_in_mm, wake, Behavior, Prog, Size};
use crate::host::{Host, HostTask, Runqueue, Step};
use lazymm::sync::CachePadded;
use lazymm::{Arch, Kernel, MmCount, Scheme};
use std::sync::Mutex;

/// Rounds a submitter runs before it exits and is reborn.
pub const SUBMIT_ROUNDS: u32 = 32;

/// The worker's slot on every CPU.
const WORKER: usize = 0;

/// A work item: the submitter's mm (an `mm_count` reference) and whom to wake when done.
pub struct Work {
    mm: MmCount,
    cpu: usize,
    task: usize,
}

/// `kthread`: each CPU's worker queue (a mutex-protected list, as a workqueue's
/// pool lock; taken in the submitter's and the worker's steps, never while switching).
pub struct Kthread {
    queues: Box<[CachePadded<Mutex<Vec<Work>>>]>,
}

impl Kthread {
    /// For a machine of `cpus` CPUs.
    pub fn new(cpus: usize) -> Kthread {
        Kthread {
            queues: (0..cpus)
                .map(|_| CachePadded(Mutex::new(Vec::new())))
                .collect(),
        }
    }

    fn take(&self, cpu: usize) -> Vec<Work> {
        std::mem::take(&mut *self.queues[cpu].lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Fits any CPU count: one task or a few per CPU, within the arena's default.
impl Size for Kthread {}

impl<S: Scheme> Behavior<S> for Kthread {
    type Prog = Prog;

    fn setup<A: Arch>(&self, k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Prog>]) {
        for rq in rqs.iter_mut() {
            let w = place_kthread(rq, Prog::Worker, false);
            assert_eq!(w.ok(), Some(WORKER), "the worker is the first task");
            let pid = rq.pid();
            let t = k
                .fork(&mut rq.cpu, pid)
                .expect("the arena has room (sized by Workload::check)");
            let _ = rq.place(
                HostTask {
                    task: t,
                    prog: Prog::Submitter { rounds: 0 },
                },
                true,
            );
        }
    }

    fn step<A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        host: &H,
        i: usize,
    ) -> Step {
        let me = rq.cpu.id;
        let (cpu, ht) = rq.parts(i);
        match &mut ht.prog {
            Prog::Submitter { rounds } => {
                *rounds += 1;
                if *rounds > SUBMIT_ROUNDS {
                    return Step::Exit;
                }
                let worker_cpu = if *rounds % 2 == 0 {
                    me
                } else {
                    (me + 1) % k.nr_cpus()
                };
                let mm = ht.task.mm_id().expect("a submitter has an mm");
                let r = k.mmgrab(cpu, mm);
                self.queues[worker_cpu]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Work {
                        mm: r,
                        cpu: me,
                        task: i,
                    });
                wake(k, rq, host, worker_cpu, WORKER);
            }
            Prog::Worker => {
                for w in self.take(me) {
                    let (cpu, ht) = rq.parts(i);
                    run_work_in_mm(k, cpu, &mut ht.task, w.mm);
                    wake(k, rq, host, w.cpu, w.task);
                }
            }
            _ => unreachable!("kthread runs only workers and submitters"),
        }
        Step::Block
    }

    fn exited<A: Arch, H: Host<S, Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        host: &H,
        t: HostTask<S, Prog>,
    ) {
        // A submitter that exits is reborn as a new process.
        if matches!(t.prog, Prog::Submitter { .. }) && !host.stopping() {
            let pid = rq.pid();
            if let Some(task) = k.fork(&mut rq.cpu, pid) {
                let _ = rq.place(
                    HostTask {
                        task,
                        prog: Prog::Submitter { rounds: 0 },
                    },
                    true,
                );
            }
        }
    }

    fn quiesce<A: Arch>(&self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, Prog>) {
        for w in self.take(rq.cpu.id) {
            k.mmdrop(&mut rq.cpu, w.mm);
        }
    }
}
