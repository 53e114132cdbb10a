//! The workloads of DESIGN.md §5: what the tasks on each simulated CPU do.
//!
//! A workload is a set of task programs placed on CPUs. Tasks stay on the CPU they were
//! placed on (a wakeup from another CPU sets a bit in the target CPU's wake word, as a
//! remote `try_to_wake_up` queues on the target runqueue), so the switch path never
//! migrates, allocates or locks.

/// A workload, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// will-it-scale `context_switch1_threads`: pairs of threads of ONE process, the two
    /// of a pair on different CPUs, ping-ponging through a blocking wakeup.
    Threads,
    /// The same with one process per pair: refcounting is uncontended.
    Processes,
    /// Every CPU runs a thread of one shared process that blocks and is woken on the
    /// same CPU: the purest lazy round trip.
    IdleStorm,
    /// Processes are born (a kernel thread execs, as `call_usermodehelper` does), run
    /// briefly on two CPUs, sometimes exec again, and exit: teardown under churn.
    ExitStorm,
    /// Kernel workers adopt user mms with `kthread_use_mm` (io_uring-style), on the
    /// submitter's CPU and on the next one; submitters exit and are reborn.
    Kthread,
    /// CPUs other than CPU 0 go offline and come back while `exit-storm` spawners and
    /// `threads` pairs run.
    Hotplug,
}

impl Workload {
    /// Every workload, in the order `lazymm schemes` lists them.
    pub const ALL: &'static [Workload] = &[
        Workload::Threads,
        Workload::Processes,
        Workload::IdleStorm,
        Workload::ExitStorm,
        Workload::Kthread,
        Workload::Hotplug,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Threads => "threads",
            Workload::Processes => "processes",
            Workload::IdleStorm => "idle-storm",
            Workload::ExitStorm => "exit-storm",
            Workload::Kthread => "kthread",
            Workload::Hotplug => "hotplug",
        }
    }

    /// One line on what it does.
    pub fn description(self) -> &'static str {
        match self {
            Workload::Threads => "pairs of threads of one process ping-pong across CPUs (context_switch1_threads)",
            Workload::Processes => "the same with one process per pair: uncontended refcounts",
            Workload::IdleStorm => "one thread per CPU of one process blocks and wakes on its CPU: pure lazy round trips",
            Workload::ExitStorm => "processes are born from kernel threads, run on two CPUs, exec, and exit",
            Workload::Kthread => "kernel workers adopt user mms with kthread_use_mm; submitters exit and respawn",
            Workload::Hotplug => "CPUs go offline and come back while exit-storm and threads tasks run",
        }
    }

    /// Looks a workload up by name.
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.iter().copied().find(|w| w.name() == name)
    }
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
/// and drop the work item's `mm_count` reference (as io_uring's SQPOLL thread does).
pub(crate) fn run_work_in_mm<S: lazymm::Scheme, A: lazymm::Arch>(
    k: &lazymm::Kernel<S, A>,
    cpu: &mut lazymm::Cpu<S, A>,
    worker: &mut lazymm::Task<S>,
    mm: lazymm::MmCount,
) {
    if let Some(users) = k.mmget_not_zero(cpu, &mm) {
        k.kthread_use_mm(cpu, worker, &users);
        let _ = k.mm(cpu, users.id(), "kthread user access");
        k.kthread_unuse_mm(cpu, worker);
        k.mmput(cpu, users);
    }
    k.mmdrop(cpu, mm);
}
