//! The host layer: what every host that runs the model needs besides the model itself,
//! written once.
//!
//! A *host* plays the simulated CPUs: the native engine (one OS thread per CPU), the
//! checker (threads serialised by a deterministic scheduler), and single-threaded hosts
//! (a trace replayer, a discrete-event simulator) that step every CPU from one thread.
//! They all share:
//!
//! - [`Runqueue`]: one CPU's task table (runnable and timer bits, `pick`, `switch_to`,
//!   exit with the last switch away, killing a task that could not be placed, adopting
//!   tasks another CPU placed), one scheduler [`turn`](Runqueue::turn), and the two
//!   quiescing phases. It owns the CPU's [`Cpu`] and holds no reference to
//!   the machine, so a host may keep runqueues wherever it likes (one per thread, or all
//!   of them behind mutexes that an IPI host reaches);
//! - [`Host`]: the small trait through which a runqueue and its workload reach other
//!   CPUs (wake a task there, place a new task there) and let time pass;
//! - [`Mailboxes`]: a ready [`Host`] building block for threaded hosts: each CPU's
//!   doorbell line (wake bits and a "tasks placed" flag, written only by the CPUs that
//!   ring it) and its mutex-protected inbox of placed tasks, off the switch path;
//! - [`Barrier`]: the phase barrier of quiescing for threaded hosts, which keeps
//!   answering IPIs while it waits;
//! - [`placement`]: the machine's [`Topology`], each CPU's load as others see it
//!   ([`RqView`]) and the kernel's choice of a CPU for a woken task
//!   ([`RqView::select_task_rq_fair`]); a woken task that is to run elsewhere moves
//!   there ([`Host::wake_to`]).
//!
//! Workloads ([`crate::workload`]) are written against [`Runqueue`] and [`Host`] only,
//! so every host runs them unchanged.
//!
//! A single-threaded host whose CPUs send IPIs that must be answered installs an
//! [`IpiHost`](lazymm::IpiHost) that can reach the targets' `Cpu`s while one CPU waits
//! (as [`crate::serial`] does for bare `Cpu`s): it keeps each runqueue behind its own
//! mutex and flushes the target's `rq.cpu`.
//!
//! Quiescing ends every run in three phases, each finished by every CPU before the next
//! begins (a threaded host separates them with a [`Barrier`]; a single-threaded host runs
//! each phase on every CPU in turn): [`Runqueue::quiesce_tasks`] (every task exits),
//! [`Runqueue::quiesce_idle`] (the idle task leaves its lazy mm, deferred drops run),
//! then one CPU asks the oracle ([`Kernel::check_quiescent`](lazymm::Kernel::check_quiescent)).
//! [`quiesce`] writes the sequence once; every host runs it with its own part.

mod barrier;
pub mod events;
mod mailbox;
pub mod placement;
pub mod quiesce;
mod runqueue;

pub use barrier::Barrier;
pub use events::EventLog;
pub use mailbox::Mailboxes;
pub use placement::{RqView, SchedCounts, Topology, WakeKind};
pub use runqueue::{trace_name, Runqueue, Turn, BALANCE_ODDS, MAX_TASKS};

use lazymm::{Arch, Cpu, Kernel, Scheme, Task};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A task as a host keeps it: the model's task and the workload's program state for it.
pub struct HostTask<S: Scheme, P> {
    /// The model's task.
    pub task: Task<S>,
    /// What the task does when it runs (the workload's state for it).
    pub prog: P,
}

/// What a task's step ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Blocks until another task wakes it.
    Block,
    /// Blocks until this CPU's timer wakes it (after the CPU has gone idle once).
    Sleep,
    /// Exits (`exit_mm`, then the last switch away).
    Exit,
    /// Moves to CPU `n`, runnable (`sched_setaffinity`, or a load balancer's push):
    /// this CPU switches away from it first, so it never runs on two CPUs at once.
    Migrate(usize),
}

/// What a runqueue and its workload ask of the host that runs them: the operations that
/// reach another CPU, and the passing of time.
///
/// A threaded host answers them with shared memory ([`Mailboxes`]); a single-threaded
/// host may queue them as events. None of them is called inside `context_switch`.
pub trait Host<S: Scheme, P> {
    /// Marks task `task` of CPU `cpu` runnable (a remote `try_to_wake_up`). `cpu` is
    /// never the caller's own CPU: local wakeups go straight to the runqueue.
    fn wake(&self, cpu: usize, task: usize);

    /// Wakes task `task` of CPU `cpu` (it is blocked there, or just blocking) to run on
    /// CPU `to` instead (`to != cpu`, and `cpu` is not the caller's own CPU): `cpu`
    /// hands the task over once it is off it (`set_task_cpu`, then the enqueue on `to`),
    /// and it runs once `to` adopts it ([`Runqueue::adopt`]).
    fn wake_to(&self, cpu: usize, task: usize, to: usize);

    /// The machine's topology and each CPU's load as this CPU sees it, for wakeup
    /// placement.
    fn view(&self) -> &RqView;

    /// Hands a new task to CPU `cpu` (a remote `wake_up_new_task`); it runs there once
    /// that CPU adopts it ([`Runqueue::adopt`]).
    fn place(&self, cpu: usize, task: HostTask<S, P>);

    /// Whether the run is ending: workloads stop starting new work.
    fn stopping(&self) -> bool;

    /// Lets about `d` of time pass on a CPU that runs nothing but the interrupts sent to
    /// it (a CPU going offline, or offline).
    fn pass_time<A: Arch>(&self, k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, d: Duration);
}

/// Nanoseconds since the first call in this process: the monotonic clock hosts give the
/// model (`Config::clock`) for teardown timing.
pub fn now_ns() -> u64 {
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
