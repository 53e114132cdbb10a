//! The native engine: one OS thread per simulated CPU, real atomics, real contention.
//!
//! Each thread owns its CPU's [`Cpu`] and runqueue and runs a small scheduler: take the
//! wakeups other CPUs posted, pick the next runnable task (or the idle task), call the
//! model's `context_switch`, run one step of the task's program. Between steps the CPU
//! has interrupts enabled, so it runs the IPIs waiting for it; while idle it does the
//! same. The switch path (wakeups, `pick`, `context_switch`) does not lock, allocate or
//! write a shared counter: wakeups are one bit in the target CPU's own wake word, and
//! every metric is a per-CPU counter summed at the end. Two workloads' task programs do,
//! outside the switch path, and their throughput includes it: `kthread` hands work over
//! through a per-CPU mutex-protected queue, and `exit-storm` allocates its process record
//! and places new threads through another CPU's mutex-protected inbox.
//!
//! A run ends by quiescing, in phases separated by barriers (CPUs keep taking IPIs while
//! they wait): every CPU stops running programs; every task exits; every CPU moves its
//! idle task to `init_mm` and runs the scheme's deferred drops; then the oracle checks
//! that nothing leaked.

use crate::hostcost::SwitchWork;
use crate::registry::{self, Unknown, WithKernel};
use crate::workload::{pair_mut, run_work_in_mm, Workload};
use lazymm::sync::CachePadded;
use lazymm::{Arch, Config, Cpu, Kernel, MmCount, Mutant, Scheme, Stats, Task, Violation};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Scheme name (implied by `mutant` when that is set).
    pub scheme: String,
    /// The mutant, if any.
    pub mutant: Option<Mutant>,
    /// Arch name.
    pub arch: String,
    /// The workload.
    pub workload: Workload,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Stop after this long (seconds).
    pub seconds: Option<f64>,
    /// Stop after about this many context switches in total.
    pub switches: Option<u64>,
    /// Seed for every random choice the CPUs make.
    pub seed: u64,
    /// Pin each CPU thread to a host core when there are enough.
    pub pin: bool,
    /// CPU-local work, in nanoseconds, each CPU does after every context switch, standing
    /// in for what a real kernel's switch costs (0: bookkeeping only).
    pub switch_work_ns: u64,
    /// Pairs of tasks for `threads` and `processes` (will-it-scale's `-t N`); `None`:
    /// `cpus.div_ceil(2)` pairs.
    pub pairs: Option<usize>,
}

impl RunSpec {
    /// A spec with defaults: `generic` arch, 2 seconds, seed 1, pinned.
    pub fn new(scheme: &str, workload: Workload, cpus: usize) -> RunSpec {
        RunSpec {
            scheme: scheme.to_string(),
            mutant: None,
            arch: "generic".to_string(),
            workload,
            cpus,
            seconds: Some(2.0),
            switches: None,
            seed: 1,
            pin: true,
            switch_work_ns: 0,
            pairs: None,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Scheme name.
    pub scheme: &'static str,
    /// Mutant, if any.
    pub mutant: Option<Mutant>,
    /// Arch name.
    pub arch: &'static str,
    /// Workload.
    pub workload: Workload,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Wall time of the measured phase.
    pub seconds: f64,
    /// Counters of the measured phase, summed over CPUs (taken when the CPUs stopped).
    pub measured: Stats,
    /// Counters of the measured phase, per CPU.
    pub per_cpu: Vec<Stats>,
    /// Counters of the whole run, quiescing included (mm counts, violations).
    pub total: Stats,
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// The violations found (the first few per CPU), in CPU-step order.
    pub violations: Vec<Violation>,
}

impl RunReport {
    /// Context switches per second.
    pub fn switches_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.measured.context_switches as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A spec whose values cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A name not in the registry.
    #[error(transparent)]
    Unknown(#[from] Unknown),
    /// A bad CPU count.
    #[error("bad cpu count {0} (valid: 1 to {max})", max = lazymm::MAX_CPUS)]
    Cpus(usize),
    /// The mutant needs another scheme or arch.
    #[error("mutant '{mutant}' breaks scheme '{needs}', not '{given}'")]
    MutantScheme {
        /// The mutant.
        mutant: &'static str,
        /// Its scheme.
        needs: &'static str,
        /// The scheme given.
        given: String,
    },
}

/// Runs one workload on the native engine.
pub fn run(spec: &RunSpec) -> Result<RunReport, SpecError> {
    if spec.cpus == 0 || spec.cpus > lazymm::MAX_CPUS {
        return Err(SpecError::Cpus(spec.cpus));
    }
    if let Some(m) = spec.mutant {
        if m.scheme() != spec.scheme {
            return Err(SpecError::MutantScheme {
                mutant: m.name(),
                needs: m.scheme(),
                given: spec.scheme.clone(),
            });
        }
    }
    registry::scheme(&spec.scheme)?;
    registry::arch(&spec.arch)?;
    Ok(registry::dispatch(&spec.scheme, &spec.arch, Native(spec))?)
}

struct Native<'a>(&'a RunSpec);

impl WithKernel for Native<'_> {
    type Out = RunReport;
    fn with<S: Scheme, A: Arch>(self) -> RunReport {
        run_native::<S, A>(self.0)
    }
}

fn now_ns() -> u64 {
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

// ---- host state ------------------------------------------------------------------------

/// One step's outcome for the task that ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Blocks until another task wakes it.
    Block,
    /// Blocks until this CPU's timer wakes it (after the CPU has gone idle once).
    Sleep,
    /// Exits.
    Exit,
}

/// A process of `exit-storm`: how many of its threads are still alive.
struct Proc {
    threads: AtomicUsize,
    home: usize,
}

/// What a task does each time it runs.
enum Prog {
    /// `threads`/`processes`: wake the partner, block.
    Pair { partner_cpu: usize, partner: u8 },
    /// `idle-storm`: block until this CPU's timer.
    Storm,
    /// `exit-storm`: a kernel thread that starts new processes.
    Spawner,
    /// `exit-storm`: a kernel thread about to exec into a new process.
    Newborn,
    /// `exit-storm`: a thread of a short-lived process.
    Member { proc: Arc<Proc>, quanta: u32 },
    /// `kthread`: a user task that hands work to kernel workers and waits for it.
    Submitter { rounds: u32 },
    /// `kthread`: a kernel worker that runs work in the submitter's address space.
    Worker,
}

struct HostTask<S: Scheme> {
    task: Task<S>,
    prog: Prog,
}

/// Work for a `kthread` worker: the submitter's mm (an `mm_count` reference, as
/// io_uring's context holds one) and whom to wake when done.
struct Work {
    mm: MmCount,
    cpu: usize,
    idx: u8,
}

/// What other CPUs may touch of a CPU's host state.
struct HostCpu<S: Scheme> {
    /// Bit `i`: local task `i` was woken.
    wake: CachePadded<AtomicU64>,
    /// Tasks placed on this CPU by another one (new threads).
    inbox: Mutex<Vec<HostTask<S>>>,
    inbox_flag: AtomicBool,
    /// `kthread`: work for this CPU's worker.
    work: Mutex<Vec<Work>>,
    /// `exit-storm`: processes started from this CPU and still alive.
    live: AtomicUsize,
}

struct Host<S: Scheme> {
    cpus: Box<[CachePadded<HostCpu<S>>]>,
    go: AtomicBool,
    stop: AtomicBool,
    reached: AtomicUsize,
    arrived: AtomicUsize,
    budget: u64,
    oversubscribed: bool,
    workload: Workload,
}

impl<S: Scheme> Host<S> {
    fn wake(&self, cpu: usize, idx: u8) {
        // ORDERING: Release pairs with the Acquire swap in `Runqueue::take_wakeups`:
        // what the waker did before the wakeup is visible to the woken task.
        self.cpus[cpu].wake.fetch_or(1 << idx, Ordering::Release);
    }

    fn give(&self, cpu: usize, t: HostTask<S>) {
        let c = &self.cpus[cpu];
        c.inbox.lock().unwrap_or_else(|e| e.into_inner()).push(t);
        // ORDERING: Release pairs with the Acquire in `quiesce`; the mutex orders the
        // task itself for `adopt`.
        c.inbox_flag.store(true, Ordering::Release);
    }
}

const MAX_TASKS: usize = 64;
/// Quanta an `exit-storm` thread runs before it exits.
const QUANTA: u32 = 4;
/// Processes an `exit-storm` spawner keeps alive at once.
const LIVE_PER_CPU: usize = 2;
/// Rounds a `kthread` submitter runs before it exits and is reborn.
const SUBMIT_ROUNDS: u32 = 32;
/// An NMI hits a CPU about once every this many NMI points (between steps, and inside
/// x86's CR3 switch window).
const NMI_PERIOD: u32 = 8;
/// `hotplug`: a CPU other than CPU 0 goes offline about once every this many loop turns.
const HOTPLUG_PERIOD: u64 = 4096;
/// `hotplug`: from `__cpu_disable` to the CPU's death.
const HOTPLUG_DIE_WAIT: Duration = Duration::from_micros(50);
/// `hotplug`: how long a CPU stays offline.
const HOTPLUG_OFFLINE: Duration = Duration::from_micros(200);

/// One CPU's runqueue and everything its thread owns.
struct Runqueue<'h, S: Scheme, A: Arch> {
    k: &'h Kernel<S, A>,
    host: &'h Host<S>,
    cpu: Cpu<S, A>,
    idle: Task<S>,
    tasks: Vec<Option<HostTask<S>>>,
    runnable: u64,
    timers: u64,
    /// The running task's index, `None` for the idle task.
    cur: Option<usize>,
    next_pid: u32,
    budget_reached: bool,
    /// Work after each context switch (realistic mode).
    work: SwitchWork,
}

impl<'h, S: Scheme, A: Arch> Runqueue<'h, S, A> {
    fn new(k: &'h Kernel<S, A>, host: &'h Host<S>, mut cpu: Cpu<S, A>, work: SwitchWork) -> Self {
        let id = cpu.id as u32;
        let idle = k.idle_task(&mut cpu, id << 20);
        Runqueue {
            k,
            host,
            cpu,
            idle,
            tasks: (0..MAX_TASKS).map(|_| None).collect(),
            runnable: 0,
            timers: 0,
            cur: None,
            next_pid: (id << 20) + 1,
            budget_reached: false,
            work,
        }
    }

    fn pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }

    fn place(&mut self, t: HostTask<S>, runnable: bool) -> Option<u8> {
        let i = self.tasks.iter().position(Option::is_none)?;
        self.tasks[i] = Some(t);
        if runnable {
            self.runnable |= 1 << i;
        }
        Some(i as u8)
    }

    fn set_prog(&mut self, i: u8, prog: Prog) {
        if let Some(t) = &mut self.tasks[i as usize] {
            t.prog = prog;
        }
    }

    #[inline]
    fn take_wakeups(&mut self) {
        let hc = &self.host.cpus[self.cpu.id];
        if hc.wake.load(Ordering::Relaxed) != 0 {
            // ORDERING: Acquire pairs with the Release fetch_or in `Host::wake`.
            self.runnable |= hc.wake.swap(0, Ordering::Acquire);
        }
        if hc.inbox_flag.load(Ordering::Relaxed) {
            self.adopt();
        }
    }

    #[cold]
    fn adopt(&mut self) {
        let hc = &self.host.cpus[self.cpu.id];
        hc.inbox_flag.store(false, Ordering::Relaxed);
        let new: Vec<_> = std::mem::take(&mut *hc.inbox.lock().unwrap_or_else(|e| e.into_inner()));
        for t in new {
            if let Some(t) = self.place_or_return(t) {
                // No room: the task exits at once, in this CPU's context.
                self.kill_unplaced(t);
            }
        }
    }

    fn place_or_return(&mut self, t: HostTask<S>) -> Option<HostTask<S>> {
        match self.tasks.iter().position(Option::is_none) {
            Some(i) => {
                self.tasks[i] = Some(t);
                self.runnable |= 1 << i;
                None
            }
            None => Some(t),
        }
    }

    fn kill_unplaced(&mut self, mut t: HostTask<S>) {
        self.kill_unplaced_task(&mut t.task);
    }

    #[inline]
    fn pick(&self) -> Option<usize> {
        let m = self.runnable;
        if m == 0 {
            return None;
        }
        let start = self.cur.map_or(0, |c| (c + 1) % MAX_TASKS) as u32;
        let rot = m.rotate_right(start);
        Some(((rot.trailing_zeros() + start) % MAX_TASKS as u32) as usize)
    }

    /// Switches this CPU to `next` (`None`: the idle task).
    #[inline]
    fn switch_to(&mut self, next: Option<usize>) {
        if next == self.cur {
            return;
        }
        let k = self.k;
        match (self.cur, next) {
            (None, Some(j)) => {
                let n = &mut self.tasks[j].as_mut().expect("runnable task exists").task;
                k.context_switch(&mut self.cpu, &mut self.idle, n);
            }
            (Some(i), None) => {
                let p = &mut self.tasks[i].as_mut().expect("current task exists").task;
                k.context_switch(&mut self.cpu, p, &mut self.idle);
            }
            (Some(i), Some(j)) => {
                let (p, n) = pair_mut(&mut self.tasks, i, j);
                let (p, n) = (
                    p.as_mut().expect("switched-from task exists"),
                    n.as_mut().expect("switched-to task exists"),
                );
                k.context_switch(&mut self.cpu, &mut p.task, &mut n.task);
            }
            (None, None) => {}
        }
        // What a real kernel's switch costs beyond the bookkeeping: CPU-local only.
        self.work.run();
        self.cur = next;
    }

    /// The scheduler loop, until the host says stop.
    fn run(&mut self) {
        let mut iter: u32 = 0;
        let mut idle_turns: u32 = 0;
        let hotplug = self.host.workload == Workload::Hotplug && self.cpu.id != 0;
        loop {
            self.k.irq_point(&mut self.cpu);
            self.k.nmi_point(&mut self.cpu);
            if hotplug && self.cpu.rand() % HOTPLUG_PERIOD == 0 {
                self.hotplug_cycle();
            }
            self.take_wakeups();
            let next = self.pick();
            self.switch_to(next);
            match self.cur {
                None => {
                    if self.timers != 0 {
                        // The local timer fires while the CPU idles.
                        self.runnable |= self.timers;
                        self.timers = 0;
                        if self.host.oversubscribed {
                            // Idle is where a CPU with no host core of its own lets
                            // the others run, or it starves the ones it waits for.
                            std::thread::yield_now();
                        }
                    } else {
                        idle_turns = idle_turns.wrapping_add(1);
                        if self.host.oversubscribed || idle_turns % 256 == 0 {
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                }
                Some(i) => self.step(i),
            }
            iter = iter.wrapping_add(1);
            if iter % 256 == 0 && self.should_stop() {
                break;
            }
        }
    }

    #[inline(never)]
    fn should_stop(&mut self) -> bool {
        if !self.budget_reached && self.cpu.stats().context_switches >= self.host.budget {
            self.budget_reached = true;
            self.host.reached.fetch_add(1, Ordering::Relaxed);
        }
        // ORDERING: Acquire pairs with the main thread's Release store of `stop`.
        self.host.stop.load(Ordering::Acquire)
    }

    /// Runs one step of task `i`'s program.
    fn step(&mut self, i: usize) {
        let k = self.k;
        let host = self.host;
        let me = self.cpu.id;
        let ht = self.tasks[i].as_mut().expect("current task exists");
        // A user task touches its own memory while it runs (property a on task->mm).
        if let Some(mm) = ht.task.mm_id() {
            let _ = k.mm(&mut self.cpu, mm, "user access");
        }
        let step = match &mut ht.prog {
            Prog::Pair {
                partner_cpu,
                partner,
            } => {
                host.wake(*partner_cpu, *partner);
                Step::Block
            }
            Prog::Storm => Step::Sleep,
            Prog::Spawner => {
                let hc = &host.cpus[me];
                if hc.live.load(Ordering::Relaxed) < LIVE_PER_CPU
                    && !host.stop.load(Ordering::Relaxed)
                {
                    hc.live.fetch_add(1, Ordering::Relaxed);
                    let pid = self.pid();
                    let t = HostTask {
                        task: Task::kthread(pid),
                        prog: Prog::Newborn,
                    };
                    if self.place(t, true).is_none() {
                        host.cpus[me].live.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Step::Sleep
            }
            Prog::Newborn => return self.newborn(i),
            Prog::Member { proc, quanta } => {
                *quanta -= 1;
                if *quanta == 0 {
                    // ORDERING: AcqRel: the last thread out sees the others' exits.
                    if proc.threads.fetch_sub(1, Ordering::AcqRel) == 1 {
                        host.cpus[proc.home].live.fetch_sub(1, Ordering::Relaxed);
                    }
                    Step::Exit
                } else {
                    Step::Sleep
                }
            }
            Prog::Submitter { rounds } => {
                *rounds += 1;
                if *rounds > SUBMIT_ROUNDS {
                    Step::Exit
                } else {
                    let worker_cpu = if *rounds % 2 == 0 {
                        me
                    } else {
                        (me + 1) % k.nr_cpus()
                    };
                    let mm = ht.task.mm_id().expect("submitter has an mm");
                    let r = k.mmgrab(&mut self.cpu, mm);
                    host.cpus[worker_cpu]
                        .work
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Work {
                            mm: r,
                            cpu: me,
                            idx: i as u8,
                        });
                    host.wake(worker_cpu, 0);
                    Step::Block
                }
            }
            Prog::Worker => return self.worker(i),
        };
        self.finish_step(i, step);
    }

    fn finish_step(&mut self, i: usize, step: Step) {
        match step {
            Step::Block => self.runnable &= !(1 << i),
            Step::Sleep => {
                self.runnable &= !(1 << i);
                self.timers |= 1 << i;
            }
            Step::Exit => self.exit(i),
        }
    }

    /// The current task `i` exits: `exit_mm`, then the final switch away.
    fn exit(&mut self, i: usize) {
        let k = self.k;
        let respawn = matches!(
            self.tasks[i].as_ref().map(|t| &t.prog),
            Some(Prog::Submitter { .. })
        ) && !self.host.stop.load(Ordering::Relaxed);
        {
            let t = &mut self.tasks[i].as_mut().expect("exiting task exists").task;
            k.exit_mm(&mut self.cpu, t);
        }
        self.runnable &= !(1 << i);
        self.timers &= !(1 << i);
        // do_task_dead(): the last switch away from the dead task.
        let next = self.pick();
        self.switch_to(next);
        if self.cur == Some(i) {
            // Only the dead task was runnable (impossible: its bit is clear); be safe.
            self.switch_to(None);
        }
        self.tasks[i] = None;
        if respawn {
            let pid = self.pid();
            if let Some(task) = k.fork(&mut self.cpu, pid) {
                self.tasks[i] = Some(HostTask {
                    task,
                    prog: Prog::Submitter { rounds: 0 },
                });
                self.runnable |= 1 << i;
            }
        }
    }

    /// `exit-storm`: a kernel thread execs into a new process (as `call_usermodehelper`
    /// does), sometimes execs once more from user space, starts a second thread on the
    /// next CPU, and both run a few quanta.
    fn newborn(&mut self, i: usize) {
        let k = self.k;
        let me = self.cpu.id;
        let Some(mm) = k.mm_alloc(&mut self.cpu) else {
            // The arena is full: retry later.
            return self.finish_step(i, Step::Sleep);
        };
        let exec_again = self.cpu.rand() % 2 == 0;
        let second = if exec_again {
            k.mm_alloc(&mut self.cpu)
        } else {
            None
        };
        let pid = self.pid();
        let ht = self.tasks[i].as_mut().expect("newborn exists");
        k.exec_mmap(&mut self.cpu, &mut ht.task, mm);
        if let Some(mm2) = second {
            k.exec_mmap(&mut self.cpu, &mut ht.task, mm2);
        }
        let proc = Arc::new(Proc {
            threads: AtomicUsize::new(2),
            home: me,
        });
        let thread = k
            .clone_thread(&mut self.cpu, &ht.task, pid)
            .expect("a process that just exec'd has an mm");
        ht.prog = Prog::Member {
            proc: proc.clone(),
            quanta: QUANTA,
        };
        let t = HostTask {
            task: thread,
            prog: Prog::Member {
                proc,
                quanta: QUANTA,
            },
        };
        let target = (me + 1) % k.nr_cpus();
        if target == me {
            if let Some(t) = self.place_or_return(t) {
                self.kill_unplaced(t);
            }
        } else {
            self.host.give(target, t);
        }
        self.finish_step(i, Step::Sleep);
    }

    /// `kthread`: run every queued work item in its submitter's address space.
    fn worker(&mut self, i: usize) {
        for w in self.take_work() {
            let t = &mut self.tasks[i].as_mut().expect("worker exists").task;
            run_work_in_mm(self.k, &mut self.cpu, t, w.mm);
            self.host.wake(w.cpu, w.idx);
        }
        self.finish_step(i, Step::Block);
    }

    /// Takes every work item queued for this CPU's worker.
    fn take_work(&self) -> Vec<Work> {
        std::mem::take(
            &mut *self.host.cpus[self.cpu.id]
                .work
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// `hotplug`: this CPU goes offline for a while and comes back. Its tasks are frozen
    /// meanwhile (Linux would migrate them; here tasks are pinned), and its idle task is
    /// current. Offline, it keeps answering IPIs, because a sender may have seen it
    /// online just before it left.
    #[cold]
    fn hotplug_cycle(&mut self) {
        let k = self.k;
        self.switch_to(None);
        k.cpu_offline(&mut self.cpu, &mut self.idle, |k, cpu| {
            answer_ipis_for(k, cpu, HOTPLUG_DIE_WAIT)
        });
        answer_ipis_for(k, &mut self.cpu, HOTPLUG_OFFLINE);
        k.cpu_online(&mut self.cpu);
    }

    /// Waits at a barrier with interrupts enabled, so IPIs keep being answered.
    fn barrier(&mut self, phase: usize) {
        let n = self.k.nr_cpus();
        // ORDERING: AcqRel: Release publishes what this CPU did before the barrier to
        // the Acquire loads below on the other CPUs.
        self.host.arrived.fetch_add(1, Ordering::AcqRel);
        // ORDERING: Acquire pairs with the other CPUs' AcqRel arrivals: what they did
        // before the barrier is visible after it.
        while self.host.arrived.load(Ordering::Acquire) < n * phase {
            self.k.irq_point(&mut self.cpu);
            std::thread::yield_now();
        }
    }

    /// Ends the run: every task exits, the CPU leaves its lazy mm, the oracle checks.
    fn quiesce(&mut self) -> Stats {
        let measured = self.cpu.stats();
        self.barrier(1);
        // Every CPU has stopped running programs: no new tasks, work or wakeups.
        // ORDERING: Acquire pairs with the Release store in `Host::give`.
        if self.host.cpus[self.cpu.id]
            .inbox_flag
            .load(Ordering::Acquire)
        {
            self.adopt();
        }
        let k = self.k;
        for i in 0..MAX_TASKS {
            if self.tasks[i].is_none() {
                continue;
            }
            self.switch_to(Some(i));
            self.exit(i);
        }
        self.switch_to(None);
        for w in self.take_work() {
            k.mmdrop(&mut self.cpu, w.mm);
        }
        self.barrier(2);
        k.quiesce_cpu(&mut self.cpu, &mut self.idle);
        self.barrier(3);
        if self.cpu.id == 0 {
            k.check_quiescent(&mut self.cpu);
        }
        measured
    }
}

/// Lets time pass on a CPU that runs nothing but its interrupts.
fn answer_ipis_for<S: Scheme, A: Arch>(k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, d: Duration) {
    let t0 = Instant::now();
    let mut turns = 0u32;
    while t0.elapsed() < d {
        k.irq_point(cpu);
        lazymm::sync::spin_wait(&mut turns);
    }
}

/// Places the workload's initial tasks on each CPU.
fn setup<S: Scheme, A: Arch>(rqs: &mut [Runqueue<'_, S, A>], w: Workload) {
    let n = rqs.len();
    let k = rqs[0].k;
    match w {
        Workload::Threads | Workload::Processes => {
            // `threads`: every pair is threads of one process; `processes`: one each.
            let mut parent = (w == Workload::Threads).then(|| {
                let pid = rqs[0].pid();
                k.fork(&mut rqs[0].cpu, pid).expect("arena has room")
            });
            for p in 0..n.div_ceil(2) {
                let (ca, cb) = ((2 * p) % n, (2 * p + 1) % n);
                let pid = rqs[ca].pid();
                let a = match &parent {
                    Some(parent) => k.clone_thread(&mut rqs[ca].cpu, parent, pid),
                    None => k.fork(&mut rqs[ca].cpu, pid),
                }
                .expect("arena has room for the initial tasks");
                let pid = rqs[cb].pid();
                let b = k
                    .clone_thread(&mut rqs[cb].cpu, &a, pid)
                    .expect("a has an mm");
                // Place both, then tell each where its partner went.
                let ia = rqs[ca]
                    .place(
                        HostTask {
                            task: a,
                            prog: Prog::Storm,
                        },
                        true,
                    )
                    .expect("room for the initial tasks");
                let ib = rqs[cb]
                    .place(
                        HostTask {
                            task: b,
                            prog: Prog::Storm,
                        },
                        false,
                    )
                    .expect("room for the initial tasks");
                rqs[ca].set_prog(
                    ia,
                    Prog::Pair {
                        partner_cpu: cb,
                        partner: ib,
                    },
                );
                rqs[cb].set_prog(
                    ib,
                    Prog::Pair {
                        partner_cpu: ca,
                        partner: ia,
                    },
                );
            }
            if let Some(parent) = &mut parent {
                // The parent only forked the others; it exits at once.
                rqs[0].kill_unplaced_task(parent);
            }
        }
        Workload::IdleStorm => {
            let pid = rqs[0].pid();
            let mut parent = k.fork(&mut rqs[0].cpu, pid).expect("arena has room");
            for rq in rqs.iter_mut() {
                let pid = rq.pid();
                let t = k
                    .clone_thread(&mut rq.cpu, &parent, pid)
                    .expect("parent has an mm");
                rq.place(
                    HostTask {
                        task: t,
                        prog: Prog::Storm,
                    },
                    true,
                );
            }
            rqs[0].kill_unplaced_task(&mut parent);
        }
        Workload::ExitStorm => {
            for rq in rqs.iter_mut() {
                let pid = rq.pid();
                rq.place(
                    HostTask {
                        task: Task::kthread(pid),
                        prog: Prog::Spawner,
                    },
                    true,
                );
            }
        }
        Workload::Hotplug => {
            setup(rqs, Workload::ExitStorm);
            setup(rqs, Workload::Threads);
        }
        Workload::Kthread => {
            for rq in rqs.iter_mut() {
                let pid = rq.pid();
                // The worker must be slot 0: submitters wake (cpu, 0).
                rq.place(
                    HostTask {
                        task: Task::kthread(pid),
                        prog: Prog::Worker,
                    },
                    false,
                );
                let pid = rq.pid();
                let t = k.fork(&mut rq.cpu, pid).expect("arena has room");
                rq.place(
                    HostTask {
                        task: t,
                        prog: Prog::Submitter { rounds: 0 },
                    },
                    true,
                );
            }
        }
    }
}

impl<S: Scheme, A: Arch> Runqueue<'_, S, A> {
    /// A task that was never scheduled exits on this CPU.
    fn kill_unplaced_task(&mut self, t: &mut Task<S>) {
        let k = self.k;
        self.switch_to(None);
        k.context_switch(&mut self.cpu, &mut self.idle, t);
        k.exit_mm(&mut self.cpu, t);
        k.context_switch(&mut self.cpu, t, &mut self.idle);
    }
}

fn run_native<S: Scheme, A: Arch>(spec: &RunSpec) -> RunReport {
    let n = spec.cpus;
    let mut cfg = Config::new(n);
    cfg.mutant = spec.mutant;
    cfg.clock = now_ns;
    cfg.nmi_period = NMI_PERIOD;
    let (k, cpus) = Kernel::<S, A>::boot(cfg);
    let work = SwitchWork::from_ns(spec.switch_work_ns);
    let host_cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let host = Host::<S> {
        cpus: (0..n)
            .map(|_| {
                CachePadded(HostCpu {
                    wake: CachePadded(AtomicU64::new(0)),
                    inbox: Mutex::new(Vec::new()),
                    inbox_flag: AtomicBool::new(false),
                    work: Mutex::new(Vec::new()),
                    live: AtomicUsize::new(0),
                })
            })
            .collect(),
        go: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        reached: AtomicUsize::new(0),
        arrived: AtomicUsize::new(0),
        budget: spec.switches.map_or(u64::MAX, |s| s.div_ceil(n as u64)),
        oversubscribed: n > host_cores,
        workload: spec.workload,
    };
    let mut rqs: Vec<Runqueue<'_, S, A>> = cpus
        .into_iter()
        .map(|mut c| {
            c.seed(spec.seed);
            Runqueue::new(&k, &host, c, work)
        })
        .collect();
    setup(&mut rqs, host.workload);

    let cores = if spec.pin && n <= host_cores {
        core_affinity::get_core_ids().filter(|c| c.len() >= n)
    } else {
        None
    };
    let deadline = spec.seconds.map(Duration::from_secs_f64);
    let (seconds, results) = std::thread::scope(|s| {
        let handles: Vec<_> = rqs
            .into_iter()
            .map(|mut rq| {
                let core = cores.as_ref().map(|c| c[rq.cpu.id]);
                let host = &host;
                s.spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    // ORDERING: Acquire pairs with the main thread's Release store of `go`.
                    while !host.go.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    rq.run();
                    let measured = rq.quiesce();
                    (measured, rq.cpu)
                })
            })
            .collect();
        let t0 = Instant::now();
        host.go.store(true, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_millis(1));
            let elapsed = t0.elapsed();
            let done = deadline.is_some_and(|d| elapsed >= d)
                || host.reached.load(Ordering::Relaxed) >= n
                || k.violations() > 0
                || elapsed >= Duration::from_secs(24 * 3600);
            if done {
                break;
            }
        }
        // ORDERING: Release pairs with the Acquire in `should_stop`.
        host.stop.store(true, Ordering::Release);
        let seconds = t0.elapsed().as_secs_f64();
        let results: Vec<(Stats, Cpu<S, A>)> = handles
            .into_iter()
            .map(|h| h.join().expect("a CPU thread panicked"))
            .collect();
        (seconds, results)
    });

    let mut measured = Stats::default();
    let mut total = Stats::default();
    let mut per_cpu = Vec::with_capacity(n);
    let mut violations = Vec::new();
    for (m, cpu) in results {
        measured.add(&m);
        total.add(&cpu.stats());
        per_cpu.push(m);
        violations.extend(cpu.violations);
    }
    violations.sort_by_key(|v| (v.step, v.cpu));
    RunReport {
        scheme: registry::scheme(S::NAME).unwrap_or(S::NAME),
        mutant: spec.mutant,
        arch: registry::arch(A::NAME).unwrap_or(A::NAME),
        workload: spec.workload,
        cpus: n,
        seconds,
        measured,
        per_cpu,
        total,
        task_bytes: core::mem::size_of::<Task<S>>(),
        violations,
    }
}
