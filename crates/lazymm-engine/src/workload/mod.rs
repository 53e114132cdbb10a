//! The workloads of DESIGN.md §5: where each simulated CPU's tasks start and what each
//! does when it runs.
//!
//! A workload is a [`Behavior`]: `setup` places the initial tasks on the CPUs'
//! runqueues, `step` runs one step of a task's program and says whether the task blocks,
//! sleeps on the CPU's timer or exits. It reaches other CPUs only through the
//! [`Host`] (a wakeup, a new task placed there), so every host runs it unchanged: the
//! native engine, the checker, the simulator and the replayer. A wakeup from another CPU
//! is a bit in the target CPU's doorbell, as a remote `try_to_wake_up` queues on the
//! target runqueue; a task moves to another CPU only through the runqueue's balancing
//! rule, and only where [`Behavior::may_migrate`] allows it.
//!
//! One file per workload; the `workloads!` table below names them, and
//! [`Workload::check`] / [`Workload::build`] check and make one. To add a workload: a file
//! here with a type implementing [`Behavior`] and [`Size`], its task programs as variants
//! of [`Prog`], and one entry in `workloads!` (which gives it its [`Workload`] and [`Any`]
//! variants, its name and every dispatch arm).

mod exit_storm;
mod hotplug;
mod idle_storm;
mod kthread;
mod migrate_storm;
mod processes;
mod threads;

pub use exit_storm::{ExitStorm, Proc};
pub use hotplug::Hotplug;
pub use idle_storm::IdleStorm;
pub use kthread::{Kthread, Work};
pub use migrate_storm::MigrateStorm;
pub use processes::processes;
pub use threads::Pairs;

use crate::host::{Host, HostTask, Runqueue, Step, Topology};
use lazymm::{Arch, Kernel, Scheme};
use std::sync::Arc;

/// Declares every workload once: its [`Workload`] variant, command-line name, one-line
/// description, the type behind it and how to build it. From that one table come
/// [`Workload::ALL`], `name`, `description`, `has_pairs`, `build`, the [`Any`] variant and
/// every dispatch arm of [`Any`]'s [`Behavior`] and [`Size`], so a workload left out of
/// any of them is a compile error, not a silent absence.
macro_rules! workloads {
    ($(
        $(#[$doc:meta])*
        $variant:ident($ty:ty) {
            name: $name:literal,
            pairs: $pairs:literal,
            description: $desc:literal,
            build: |$cpus:pat_param, $np:pat_param, $topo:pat_param, $pin:pat_param| $build:expr $(,)?
        }
    )*) => {
        /// A workload, by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Workload {
            $($(#[$doc])* $variant,)*
        }

        impl Workload {
            /// Every workload, in the order `lazymm schemes` lists them.
            pub const ALL: &'static [Workload] = &[$(Workload::$variant,)*];

            /// The name on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $(Workload::$variant => $name,)*
                }
            }

            /// One line on what it does.
            pub fn description(self) -> &'static str {
                match self {
                    $(Workload::$variant => $desc,)*
                }
            }

            /// Whether the workload runs will-it-scale pairs, whose number `--pairs` sets.
            pub fn has_pairs(self) -> bool {
                match self {
                    $(Workload::$variant => $pairs,)*
                }
            }

            /// The workload for a machine of `cpus` CPUs of the default topology
            /// ([`Topology::smt2_one_llc`]), unpinned: see [`Workload::build_on`].
            pub fn build(self, cpus: usize, pairs: Option<usize>) -> Any {
                self.build_on(&Topology::smt2_one_llc(cpus), pairs, false)
            }

            /// The workload for a machine of `topo`'s shape; `pairs` is the number of
            /// pairs of `threads` and `processes` (`None`: `cpus.div_ceil(2)`, one thread
            /// per CPU), `pin` binds both threads of each pair to one CPU. Check the CPUs
            /// and pairs with [`Workload::check`] first: a workload built past its limits
            /// may not fit the runqueues or the arena.
            pub fn build_on(self, topo: &Topology, pairs: Option<usize>, pin: bool) -> Any {
                let cpus = topo.nr_cpus();
                let pairs = pairs.unwrap_or(cpus.div_ceil(2));
                match self {
                    $(Workload::$variant => {
                        let $cpus = cpus;
                        let $np = pairs;
                        let $topo = topo;
                        let $pin = pin;
                        Any::$variant($build)
                    })*
                }
            }
        }

        /// Every workload of [`Workload`], as one type the hosts are instantiated with (one
        /// monomorphised engine per scheme and arch, not per workload too).
        pub enum Any {
            $(#[doc = concat!("`", $name, "`.")] $variant($ty),)*
        }

        impl Size for Any {
            fn check(&self, cpus: usize) -> Result<usize, WorkloadError> {
                match self {
                    $(Any::$variant(w) => w.check(cpus),)*
                }
            }
        }

        impl<S: Scheme> Behavior<S> for Any {
            type Prog = Prog;

            fn setup<A: Arch>(&self, k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Prog>]) {
                match self {
                    $(Any::$variant(w) => w.setup(k, rqs),)*
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
                match self {
                    $(Any::$variant(w) => w.step(k, rq, host, i),)*
                }
            }

            fn exited<A: Arch, H: Host<S, Prog>>(
                &self,
                k: &Kernel<S, A>,
                rq: &mut Runqueue<S, A, Prog>,
                host: &H,
                t: HostTask<S, Prog>,
            ) {
                match self {
                    $(Any::$variant(w) => w.exited(k, rq, host, t),)*
                }
            }

            fn quiesce<A: Arch>(&self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, Prog>) {
                match self {
                    $(Any::$variant(w) => w.quiesce(k, rq),)*
                }
            }

            fn may_migrate(&self, prog: &Prog) -> bool {
                match self {
                    $(Any::$variant(w) => Behavior::<S>::may_migrate(w, prog),)*
                }
            }
        }
    };
}

workloads! {
    /// will-it-scale `context_switch1_threads`: pairs of threads of ONE process, the two
    /// of a pair on different CPUs, ping-ponging through a blocking wakeup.
    Threads(Pairs) {
        name: "threads",
        pairs: true,
        description: "pairs of threads of one process ping-pong across CPUs (context_switch1_threads)",
        build: |_, pairs, topo, pin| Pairs::threads(pairs, topo, pin),
    }
    /// The same with one process per pair: refcounting is uncontended.
    Processes(Pairs) {
        name: "processes",
        pairs: true,
        description: "the same with one process per pair: uncontended refcounts",
        build: |_, pairs, topo, pin| processes(pairs, topo, pin),
    }
    /// Every CPU runs a thread of one shared process that blocks and is woken on the
    /// same CPU: the purest lazy round trip.
    IdleStorm(IdleStorm) {
        name: "idle-storm",
        pairs: false,
        description: "one thread per CPU of one process blocks and wakes on its CPU: pure lazy round trips",
        build: |_, _, _, _| IdleStorm,
    }
    /// Processes are born (a kernel thread execs, as `call_usermodehelper` does), run
    /// briefly on two CPUs, sometimes exec again, and exit: teardown under churn.
    ExitStorm(ExitStorm) {
        name: "exit-storm",
        pairs: false,
        description: "processes are born from kernel threads, run on two CPUs, exec, and exit",
        build: |cpus, _, _, _| ExitStorm::new(cpus),
    }
    /// Kernel workers adopt user mms with `kthread_use_mm` to complete work submitted
    /// from user space (as the USB gadget FunctionFS AIO worker and VFIO's DMA
    /// read/write path do), on the submitter's CPU and on the next one; submitters exit
    /// and are reborn.
    Kthread(Kthread) {
        name: "kthread",
        pairs: false,
        description: "kernel workers adopt user mms with kthread_use_mm; submitters exit and respawn",
        build: |cpus, _, _, _| Kthread::new(cpus),
    }
    /// CPUs other than CPU 0 go offline and come back while `exit-storm` spawners and
    /// `threads` pairs run.
    Hotplug(Hotplug) {
        name: "hotplug",
        pairs: false,
        description: "CPUs go offline and come back while exit-storm and threads tasks run",
        build: |_, _, topo, pin| Hotplug::new(topo, pin),
    }
    /// As many processes as CPUs, each walked across every CPU and then exiting.
    MigrateStorm(MigrateStorm) {
        name: "migrate-storm",
        pairs: false,
        description: "one process per CPU, each walked across every CPU, then exiting: mm_cpumask fills up",
        build: |_, _, _, _| MigrateStorm,
    }
}

impl Workload {
    /// Looks a workload up by name.
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.iter().copied().find(|w| w.name() == name)
    }

    /// Checks that this workload can run on `cpus` CPUs with `pairs` pairs (`None`: the
    /// default), the one check every host makes before it builds the workload: the CPU
    /// count, `--pairs` only where the workload has pairs, and the workload's own limits
    /// ([`Size::check`]: its tasks fit the runqueues). The [`Sizing`] it returns says how
    /// big the arena must be for the mms the workload holds at once.
    pub fn check(self, cpus: usize, pairs: Option<usize>) -> Result<Sizing, WorkloadError> {
        if cpus == 0 || cpus > lazymm::MAX_CPUS {
            return Err(WorkloadError::Cpus {
                cpus,
                max: lazymm::MAX_CPUS,
            });
        }
        if pairs.is_some() && !self.has_pairs() {
            return Err(WorkloadError::PairsWorkload(self.name()));
        }
        let extra = self.build(cpus, pairs).check(cpus)?;
        Ok(Sizing {
            arena_capacity: lazymm::Config::new(cpus).arena_capacity + extra,
        })
    }
}

/// What [`Workload::check`] found a workload needs of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// The arena's capacity (`Config::arena_capacity`): the default for the CPU count
    /// plus the mms the workload holds beyond it.
    pub arena_capacity: usize,
}

/// A workload a host cannot run at the size asked for (every host reports these the same
/// way: the native engine's `SpecError`, the simulator's `SimError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// A CPU count outside what the model holds.
    #[error("bad cpu count {cpus} (valid: 1 to {max})")]
    Cpus {
        /// Asked.
        cpus: usize,
        /// The most.
        max: usize,
    },
    /// A pair count for a workload without pairs.
    #[error("workload '{0}' has no pairs (valid: --pairs with threads or processes)")]
    PairsWorkload(&'static str),
    /// More pairs than the CPUs' runqueues hold.
    #[error("bad pair count {pairs} for {cpus} cpus (valid: 1 to {max})")]
    Pairs {
        /// The pairs asked for.
        pairs: usize,
        /// The CPUs.
        cpus: usize,
        /// The most pairs that fit.
        max: usize,
    },
}

/// A workload's limits, checked before any host builds a machine for it.
pub trait Size {
    /// Checks that the workload fits `cpus` CPUs (its tasks fit the runqueues'
    /// [`MAX_TASKS`](crate::host::MAX_TASKS)) and returns how many mms it holds at once
    /// beyond the arena's default capacity for `cpus` CPUs (`Config::new`).
    fn check(&self, _cpus: usize) -> Result<usize, WorkloadError> {
        Ok(0)
    }
}

/// What a workload's tasks do: where they start, and what each does when it runs.
///
/// Hosts call `setup` once, before any CPU runs; `step` each time a task runs (from
/// [`Runqueue::turn`], with the task current and interrupts enabled); `exited` after a
/// task's step ended with [`Step::Exit`] and it has exited; `quiesce` on each CPU after
/// its tasks exited at the end of a run.
pub trait Behavior<S: Scheme>: Sync {
    /// The program state each task carries.
    type Prog: Send;

    /// Places the initial tasks on the runqueues (every CPU's, indexed by CPU).
    fn setup<A: Arch>(&self, k: &Kernel<S, A>, rqs: &mut [Runqueue<S, A, Self::Prog>]);

    /// Runs one step of task `i`, the current task of `rq`.
    fn step<A: Arch, H: Host<S, Self::Prog>>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Self::Prog>,
        host: &H,
        i: usize,
    ) -> Step;

    /// Task `t` has exited on `rq` (its slot is free again).
    fn exited<A: Arch, H: Host<S, Self::Prog>>(
        &self,
        _k: &Kernel<S, A>,
        _rq: &mut Runqueue<S, A, Self::Prog>,
        _host: &H,
        _t: HostTask<S, Self::Prog>,
    ) {
    }

    /// Drops what the workload still holds for `rq`'s CPU once its tasks have exited
    /// (work items holding references).
    fn quiesce<A: Arch>(&self, _k: &Kernel<S, A>, _rq: &mut Runqueue<S, A, Self::Prog>) {}

    /// Whether the load balancer may move a task running `prog` to another CPU when it
    /// wakes ([`Runqueue`]'s balancing rule). Tasks that other tasks wake by their slot,
    /// and per-CPU kernel threads, must not move; by default none does.
    fn may_migrate(&self, _prog: &Self::Prog) -> bool {
        false
    }
}

/// A task's program, for every workload of [`Workload`].
pub enum Prog {
    /// `threads`/`processes`: wake the partner, block.
    Pair {
        /// The pair.
        pair: u32,
        /// Which of its two threads this is (0 or 1).
        end: u8,
        /// The partner's `recent_used_cpu`, which only this thread's wakeups of it
        /// read and write.
        recent: u32,
    },
    /// `idle-storm`: block until this CPU's timer.
    Sleeper,
    /// `exit-storm`: a kernel thread that starts new processes.
    Spawner,
    /// `exit-storm`: a kernel thread about to exec into a new process.
    Newborn,
    /// `exit-storm`: a thread of a short-lived process.
    Member {
        /// The process.
        proc: Arc<Proc>,
        /// Quanta left before it exits.
        quanta: u32,
    },
    /// `kthread`: a user task that hands work to kernel workers and waits for it.
    Submitter {
        /// Rounds done.
        rounds: u32,
    },
    /// `kthread`: a kernel worker that runs work in the submitter's address space.
    Worker,
    /// `hotplug`: the CPU's hotplug thread, which now and then takes the CPU offline.
    Cpuhp,
    /// `migrate-storm`: a process's only thread, walking the CPUs.
    Walker {
        /// CPUs still to run on, this one included.
        cpus_left: u32,
        /// Quanta left on this CPU.
        quanta: u32,
    },
}

/// Wakes task `task` of CPU `cpu`: straight into `rq` when that is this CPU, through
/// the host otherwise.
#[inline]
pub fn wake<S: Scheme, A: Arch, P, H: Host<S, P>>(
    k: &Kernel<S, A>,
    rq: &mut Runqueue<S, A, P>,
    host: &H,
    cpu: usize,
    task: usize,
) {
    if cpu == rq.cpu.id {
        rq.wake(task);
    } else {
        rq.wake_remote(k, host, cpu, task);
    }
}

/// Starts a kernel thread on `rq` (a new pid, no mm) running `prog`, runnable or blocked:
/// its slot, or the task back when every slot is taken.
pub(crate) fn place_kthread<S: Scheme, A: Arch, P>(
    rq: &mut Runqueue<S, A, P>,
    prog: P,
    runnable: bool,
) -> Result<usize, HostTask<S, P>> {
    let pid = rq.pid();
    rq.place(
        HostTask {
            task: lazymm::Task::kthread(pid),
            prog,
        },
        runnable,
    )
}

/// Two distinct elements of one slice, both mutable (the prev and next of a switch).
pub(crate) fn pair_mut<T>(v: &mut [T], i: usize, j: usize) -> (&mut T, &mut T) {
    assert_ne!(i, j);
    if i < j {
        let (lo, hi) = v.split_at_mut(j);
        (&mut lo[i], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(i);
        (&mut hi[0], &mut lo[j])
    }
}

/// One `kthread` work item, run by kernel thread `worker` on `cpu`: if the submitter's
/// mm still has a user, adopt it with `kthread_use_mm`, touch its memory, give it back,
/// and drop the `mm_count` reference the work item took when it was submitted.
pub(crate) fn run_work_in_mm<S: Scheme, A: Arch>(
    k: &Kernel<S, A>,
    cpu: &mut lazymm::Cpu<S, A>,
    worker: &mut lazymm::Task<S>,
    mm: lazymm::MmCount,
) {
    if let Some(users) = k.mmget_not_zero(cpu, &mm) {
        k.kthread_use_mm(cpu, worker, &users);
        k.user_access(cpu, users.id(), "kthread user access");
        k.kthread_unuse_mm(cpu, worker);
        k.mmput(cpu, users);
    }
    k.mmdrop(cpu, mm);
}
