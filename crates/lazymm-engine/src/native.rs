//! The native engine: one OS thread per simulated CPU, real atomics, real contention.
//!
//! A thin host on [`crate::host`]: each thread owns its CPU's [`Runqueue`] and loops over
//! one turn: answer the IPIs waiting for the CPU (interrupts are enabled between steps),
//! maybe take an NMI (from a countdown the loop keeps in a register), take the wakeups and tasks other CPUs sent
//! ([`Mailboxes::deliver`]), then [`Runqueue::turn`]: pick the next runnable task (or the
//! idle task), call the model's `context_switch`, run one step of the task's program. An
//! idle CPU whose timer fires does the whole lazy round trip in one turn.
//!
//! The engine's side of the switch path does not lock, allocate or write a shared
//! counter: a wakeup is one bit in the target CPU's doorbell; the only host line the loop
//! reads every turn is its own doorbell, written by other CPUs only when they have news
//! for it (the stop flag and the budget are looked at every 256 turns); every metric is a
//! per-CPU counter summed at the end. Wakeup placement adds host lines: each CPU
//! publishes its runnable count when it changes, a pair thread's wakeup reads the counts
//! of the CPUs the kernel's choice looks at and writes its pair's location word, and a
//! thread woken to run elsewhere is handed over by the CPU it blocked on through the
//! target's inbox (a mutex). Two workloads do lock, in their task programs and
//! outside the switch path, and their throughput includes it: `kthread` hands work over
//! through a per-CPU mutex-protected queue, and `exit-storm` places each new process's
//! second thread through the next CPU's mutex-protected inbox. What the model's own
//! switch path reads and writes is the model's (and is counted by it).
//!
//! More simulated CPUs than host cores is allowed (up to [`lazymm::MAX_CPUS`]): the
//! engine then yields the host thread whenever a CPU idles or waits at a barrier (the
//! model's IPI waits yield every few dozen polls), so every CPU makes progress, only more
//! slowly; each CPU thread has a small stack ([`CPU_STACK`]).
//!
//! A run ends by quiescing ([`crate::host`]), the phases separated by a [`Barrier`]
//! (CPUs keep taking IPIs while they wait).

use crate::host::quiesce::{self, Phase, Quiescer};
use crate::host::{
    Barrier, EventLog, Host, HostTask, Mailboxes, RqView, Runqueue, SchedCounts, Topology, Turn,
    MAX_TASKS,
};
use crate::hostcost::SwitchWork;
use crate::registry::{self, Unknown, WithKernel};
use crate::workload::{Any, Behavior, Prog, Sizing, Workload, WorkloadError};
use lazymm::sync::CachePadded;
use lazymm::{Arch, Config, Cpu, Kernel, Mutant, Scheme, Stats, Task, TeardownHist, Violation};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
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
    /// `threads` and `processes`: how many pairs (`None`: `cpus.div_ceil(2)`, one thread
    /// per CPU). Where they run is the kernel's wakeup placement on [`Topology::smt2_one_llc`]
    /// (see [`crate::host::placement`]).
    pub pairs: Option<usize>,
    /// `threads` and `processes`: both threads of pair `i` bound to CPU `i % cpus`
    /// (will-it-scale's pinned mode) instead of placed at each wakeup.
    pub pin_pairs: bool,
    /// Whether every process registers for expedited membarrier as it is created
    /// (`Config::membarrier_registered`; default true). Off, no scheme owes property f,
    /// and `hazptr-luto` skips its membarrier barrier.
    pub membarrier_registered: bool,
    /// The kernel profile (`Config::profile`; default `bare`).
    pub profile: lazymm::Profile,
}

impl RunSpec {
    /// A spec with defaults: `generic` arch, 2 seconds, seed 1, pinned, default pairs.
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
            pin_pairs: false,
            membarrier_registered: true,
            profile: lazymm::Profile::BARE,
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
    /// Teardown times of the measured phase, merged over CPUs.
    pub teardowns: TeardownHist,
    /// Counters of the measured phase, per CPU.
    pub per_cpu: Vec<Stats>,
    /// Placement counters of the measured phase, summed over CPUs.
    pub sched: SchedCounts,
    /// The topology wakeups were placed on.
    pub topology: String,
    /// Whether pairs were pinned ([`RunSpec::pin_pairs`]).
    pub pinned: bool,
    /// Counters of the whole run, quiescing included (mm counts, violations).
    pub total: Stats,
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// Bytes of that the scheme adds per task ([`Task::SCHEME_BYTES`]).
    pub task_state_bytes: usize,
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
    /// The mutant needs another scheme.
    #[error("mutant '{mutant}' breaks scheme '{needs}', not '{given}' (valid: '{needs}', or the mutant alone)")]
    MutantScheme {
        /// The mutant.
        mutant: &'static str,
        /// Its scheme.
        needs: &'static str,
        /// The scheme given.
        given: String,
    },
    /// The workload cannot run at this size (CPUs, pairs).
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The host could not start a thread for a CPU (its thread limit, or memory).
    #[error("cannot start a thread for cpu {cpu} of {cpus}: {message} (valid: fewer --cpus, or a higher thread limit)")]
    Thread {
        /// The CPU whose thread did not start.
        cpu: usize,
        /// The CPUs asked for.
        cpus: usize,
        /// What the host said.
        message: String,
    },
    /// The CPU threads' stacks do not fit the process's address-space limit.
    #[error("{cpus} cpus need {need_mib} MiB of address space for their thread stacks but the limit (ulimit -v) leaves {room_mib} MiB (valid: --cpus 1 to {fit}, or a higher limit)")]
    Stacks {
        /// The CPUs asked for.
        cpus: usize,
        /// The stacks' address space.
        need_mib: u64,
        /// The limit less what the process maps already.
        room_mib: u64,
        /// The CPUs whose stacks fit.
        fit: u64,
    },
}

/// Checks that `mutant` breaks `scheme` (a mutant's scheme is implied wherever it is
/// given; naming another one is an error).
pub fn check_mutant_scheme(mutant: Mutant, scheme: &str) -> Result<(), SpecError> {
    if mutant.scheme() == scheme {
        Ok(())
    } else {
        Err(SpecError::MutantScheme {
            mutant: mutant.name(),
            needs: mutant.scheme(),
            given: scheme.to_string(),
        })
    }
}

/// Runs one workload on the native engine.
pub fn run(spec: &RunSpec) -> Result<RunReport, SpecError> {
    run_inner(spec, None).map(|(r, _)| r)
}

/// Runs one workload on the native engine with each CPU recording its first `cap`
/// switches and exits in its own [`EventLog`] (for a timeline); the logs come back in
/// CPU order.
pub fn run_logged(spec: &RunSpec, cap: usize) -> Result<(RunReport, Vec<EventLog>), SpecError> {
    run_inner(spec, Some(cap))
}

fn run_inner(
    spec: &RunSpec,
    log_cap: Option<usize>,
) -> Result<(RunReport, Vec<EventLog>), SpecError> {
    if let Some(m) = spec.mutant {
        check_mutant_scheme(m, &spec.scheme)?;
    }
    let sizing = spec.workload.check(spec.cpus, spec.pairs)?;
    registry::scheme(&spec.scheme)?;
    registry::arch(&spec.arch)?;
    registry::dispatch(&spec.scheme, &spec.arch, Native(spec, log_cap, sizing))?
}

pub(crate) struct Native<'a>(&'a RunSpec, Option<usize>, Sizing);

/// What a native run produces: its report and each CPU's event log, or why the host
/// could not run it.
pub(crate) type NativeOut = Result<(RunReport, Vec<EventLog>), SpecError>;

/// A native run of a registered scheme on the arch named.
type NativeJob = for<'a> fn(&str, Native<'a>) -> Option<NativeOut>;

/// Instantiates the native host (runs and benches) for a scheme registered at run time
/// (see [`registry`]).
pub fn register<S: Scheme>(r: &mut registry::Registered) {
    let job: NativeJob = |arch, v| registry::by_arch::<S, _>(arch, v);
    r.add_job(job);
}

impl WithKernel for Native<'_> {
    type Out = NativeOut;
    fn with<S: Scheme, A: Arch>(self) -> NativeOut {
        run_native::<S, A>(self.0, self.1, self.2)
    }
    fn with_registered(self, s: &registry::Registered, arch: &str) -> Option<NativeOut> {
        s.job::<NativeJob>()?(arch, self)
    }
}

/// What one CPU measured: its counters, its teardown times and its placement counters,
/// taken when it stopped.
type Measured = (Stats, TeardownHist, SchedCounts);

/// An NMI hits a CPU about once every this many NMI points (between steps, and inside
/// x86's CR3 switch window). A power of two: the engine draws its gaps with a mask.
const NMI_PERIOD: u32 = 8;
/// Stack of each CPU thread: the model's calls are shallow, and a run may have
/// thousands of CPU threads.
pub const CPU_STACK: usize = 256 << 10;
/// Turns between two looks at the stop flag and the switch budget.
const POLL_TURNS: u32 = 256;

/// CPU threads of every native run going on in this process (runs may overlap, as
/// parallel tests do): more than the host's cores, and idle CPUs yield their core.
static CPU_THREADS: AtomicUsize = AtomicUsize::new(0);

/// What the CPU threads of one run share besides the kernel.
struct NativeHost<S: Scheme> {
    mail: Mailboxes<S, Prog>,
    barrier: Barrier,
    /// The main thread says stop.
    stop: CachePadded<AtomicBool>,
    /// CPUs that have run their share of the switch budget.
    reached: CachePadded<AtomicUsize>,
    /// Each CPU's share of the switch budget.
    budget: u64,
    host_cores: usize,
    /// The run's seed (each CPU draws its NMI gaps from it).
    seed: u64,
}

impl<S: Scheme> Host<S, Prog> for NativeHost<S> {
    #[inline]
    fn wake(&self, cpu: usize, task: usize) {
        self.mail.wake(cpu, task);
    }

    fn wake_to(&self, cpu: usize, task: usize, to: usize) {
        self.mail.wake_to(cpu, task, to);
    }

    fn view(&self) -> &RqView {
        self.mail.view()
    }

    fn place(&self, cpu: usize, task: HostTask<S, Prog>) {
        self.mail.place(cpu, task);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn pass_time<A: Arch>(&self, k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, d: Duration) {
        let t0 = Instant::now();
        let mut turns = 0u32;
        while t0.elapsed() < d {
            k.irq_point(cpu);
            lazymm::sync::spin_wait(&mut turns);
        }
    }
}

impl<S: Scheme> NativeHost<S> {
    fn oversubscribed(&self) -> bool {
        CPU_THREADS.load(Ordering::Relaxed) > self.host_cores
    }

    /// One CPU's thread: the scheduler loop until the main thread says stop, then
    /// quiescing. Returns the counters and teardown times of the measured phase.
    fn cpu_main<A: Arch>(
        &self,
        k: &Kernel<S, A>,
        rq: &mut Runqueue<S, A, Prog>,
        w: &Any,
    ) -> Measured {
        let mut turns: u32 = 0;
        let mut idle_turns: u32 = 0;
        let mut reached = false;
        let mut oversubscribed = self.oversubscribed();
        // NMIs between steps: a countdown in a register, reloaded with a random gap of 1
        // to 2 * NMI_PERIOD turns (the model's own NMI points, inside switches, count
        // down its `Config::nmi_period`).
        let mut rng = (self.seed ^ (rq.cpu.id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        let mut nmi_in: u32 = 1;
        loop {
            // Interrupts are on between steps (and the hardware may walk the loaded page
            // tables): an interrupt point before every turn's switch.
            k.irq_point(&mut rq.cpu);
            nmi_in -= 1;
            if nmi_in == 0 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                nmi_in = 1 + (rng as u32 & (2 * NMI_PERIOD - 1));
                k.nmi_now(&mut rq.cpu);
            }
            self.mail.deliver(k, rq, true);
            match rq.turn(k, w, self) {
                Turn::Ran => {}
                Turn::Tick => {
                    if oversubscribed {
                        // Idle is where a CPU with no host core of its own lets the
                        // others run, or it starves the ones it waits for.
                        std::thread::yield_now();
                    }
                }
                Turn::Idle => {
                    idle_turns = idle_turns.wrapping_add(1);
                    if oversubscribed || idle_turns % 256 == 0 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
            turns = turns.wrapping_add(1);
            if turns % POLL_TURNS == 0 {
                if !reached && rq.cpu.stats().context_switches >= self.budget {
                    reached = true;
                    self.reached.fetch_add(1, Ordering::Relaxed);
                }
                oversubscribed = self.oversubscribed();
                // ORDERING: Acquire pairs with the main thread's Release store of `stop`.
                if self.stop.load(Ordering::Acquire) {
                    break;
                }
            }
        }
        let measured = (
            rq.cpu.stats(),
            rq.cpu.teardowns().clone(),
            rq.sched_counts(),
        );
        self.quiesce(k, rq, w);
        measured
    }

    /// Ends the run on this CPU: the three phases of [`crate::host::quiesce`], with
    /// barriers.
    fn quiesce<A: Arch>(&self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, Prog>, w: &Any) {
        quiesce::quiesce_cpu(&mut NativeQuiesce { host: self, w }, k, rq);
    }
}

/// The native host's part in quiescing one CPU: its barrier (the thread yields while it
/// waits), its mailboxes, the workload.
struct NativeQuiesce<'a, S: Scheme> {
    host: &'a NativeHost<S>,
    w: &'a Any,
}

impl<S: Scheme, A: Arch> Quiescer<S, A, Prog> for NativeQuiesce<'_, S> {
    fn begin(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, Prog>, phase: Phase) -> bool {
        let relax = std::thread::yield_now;
        self.host
            .barrier
            .wait(k, &mut rq.cpu, phase.number(), relax);
        true
    }

    fn deliver(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, Prog>) {
        // Every CPU has stopped running programs: no new tasks, work or wakeups.
        self.host.mail.deliver(k, rq, false);
    }

    fn release(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, Prog>) {
        Behavior::<S>::quiesce(self.w, k, rq);
    }
}

/// Address space one CPU thread takes: its stack, a guard page and the thread's own
/// descriptor and TLS (a generous bound).
const THREAD_SPAN: u64 = CPU_STACK as u64 + (64 << 10);

/// Fails when `cpus` CPU threads' stacks cannot fit under `RLIMIT_AS`. Checked before any
/// thread starts: once the address space runs out, whether the next stack or the next heap
/// allocation fails first is a race, and a failed allocation aborts the process.
fn check_stack_room(cpus: usize) -> Result<(), SpecError> {
    let Some(limit) = address_space_limit() else {
        return Ok(());
    };
    let mapped = mapped_bytes().unwrap_or(0);
    let room = limit.saturating_sub(mapped);
    let need = cpus as u64 * THREAD_SPAN;
    if need <= room {
        return Ok(());
    }
    Err(SpecError::Stacks {
        cpus,
        need_mib: need >> 20,
        room_mib: room >> 20,
        fit: room / THREAD_SPAN,
    })
}

/// The soft `RLIMIT_AS` in bytes from `/proc/self/limits`; `None` when unlimited or
/// unreadable (not Linux).
fn address_space_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The process's mapped address space (`VmSize`) in bytes.
fn mapped_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib << 10)
}

fn run_native<S: Scheme, A: Arch>(
    spec: &RunSpec,
    log_cap: Option<usize>,
    sizing: Sizing,
) -> NativeOut {
    let n = spec.cpus;
    check_stack_room(n)?;
    let mut cfg = Config::new(n);
    cfg.arena_capacity = sizing.arena_capacity;
    cfg.mutant = spec.mutant;
    cfg.membarrier_registered = spec.membarrier_registered;
    cfg.profile = spec.profile;
    cfg.clock = crate::host::now_ns;
    cfg.nmi_period = NMI_PERIOD;
    let (k, cpus) = Kernel::<S, A>::boot(cfg);
    let work = SwitchWork::from_ns(spec.switch_work_ns);
    let host_cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let topo = Topology::smt2_one_llc(n);
    let host = NativeHost::<S> {
        mail: Mailboxes::new(topo.clone()),
        barrier: Barrier::new(n),
        stop: CachePadded(AtomicBool::new(false)),
        reached: CachePadded(AtomicUsize::new(0)),
        budget: spec.switches.map_or(u64::MAX, |s| s.div_ceil(n as u64)),
        host_cores,
        seed: spec.seed,
    };
    let w = spec.workload.build_on(&topo, spec.pairs, spec.pin_pairs);
    let mut rqs: Vec<Runqueue<S, A, Prog>> = cpus
        .into_iter()
        .map(|mut c| {
            c.seed(spec.seed);
            let id = c.id as u32;
            let mut rq = Runqueue::new(&k, c, MAX_TASKS, id << 20, id << 20);
            rq.set_switch_work(work);
            rq.set_balance(crate::host::BALANCE_ODDS, spec.seed);
            if let Some(cap) = log_cap {
                rq.set_event_log(cap);
            }
            rq
        })
        .collect();
    Behavior::<S>::setup(&w, &k, &mut rqs);
    // The initial tasks are runnable before any CPU's first turn.
    for rq in &mut rqs {
        rq.publish(host.mail.view());
    }

    let cores = if spec.pin && n <= host_cores {
        core_affinity::get_core_ids().filter(|c| c.len() >= n)
    } else {
        None
    };
    let deadline = spec.seconds.map(Duration::from_secs_f64);
    CPU_THREADS.fetch_add(n, Ordering::Relaxed);
    // The CPU threads wait for `start` to leave WAIT: GO once every thread has started,
    // ABORT when one could not be (the others then return without running, since a run
    // needs every CPU at its barriers).
    const WAIT: u8 = 0;
    const GO: u8 = 1;
    const ABORT: u8 = 2;
    let start = AtomicU8::new(WAIT);
    let ran = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(n);
        for mut rq in rqs {
            let core = cores.as_ref().map(|c| c[rq.cpu.id]);
            let id = rq.cpu.id;
            let (k, host, w, start) = (&k, &host, &w, &start);
            let spawned = std::thread::Builder::new()
                .name(format!("cpu{id}"))
                .stack_size(CPU_STACK)
                .spawn_scoped(s, move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    // ORDERING: Acquire pairs with the main thread's Release store of
                    // `start`: setup is visible.
                    let go = loop {
                        match start.load(Ordering::Acquire) {
                            WAIT => std::thread::yield_now(),
                            state => break state == GO,
                        }
                    };
                    if !go {
                        return None;
                    }
                    let measured = host.cpu_main(k, &mut rq, w);
                    let log = rq.take_event_log();
                    Some((measured, rq.cpu, log))
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // ORDERING: Release pairs with the CPU threads' Acquire loads of
                    // `start` (they return without touching the kernel).
                    start.store(ABORT, Ordering::Release);
                    return Err(SpecError::Thread {
                        cpu: id,
                        cpus: n,
                        message: e.to_string(),
                    });
                }
            }
        }
        let t0 = Instant::now();
        // ORDERING: Release pairs with the CPU threads' Acquire loads of `start`.
        start.store(GO, Ordering::Release);
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
        // ORDERING: Release pairs with the Acquire load of `stop` in `cpu_main`.
        host.stop.store(true, Ordering::Release);
        let seconds = t0.elapsed().as_secs_f64();
        let results: Vec<(Measured, Cpu<S, A>, Option<EventLog>)> = handles
            .into_iter()
            .filter_map(|h| h.join().expect("a CPU thread panicked"))
            .collect();
        Ok((seconds, results))
    });
    CPU_THREADS.fetch_sub(n, Ordering::Relaxed);
    let (seconds, results) = ran?;

    let mut measured = Stats::default();
    let mut teardowns = TeardownHist::default();
    let mut total = Stats::default();
    let mut per_cpu = Vec::with_capacity(n);
    let mut violations = Vec::new();
    let mut logs = Vec::new();
    let mut sched = SchedCounts::default();
    for ((m, hist, placed), cpu, log) in results {
        logs.extend(log);
        measured.add(&m);
        sched.add(&placed);
        teardowns.add(&hist);
        total.add(&cpu.stats());
        per_cpu.push(m);
        violations.extend(cpu.violations);
    }
    violations.sort_by_key(|v| (v.step, v.cpu));
    let report = RunReport {
        scheme: registry::scheme(S::NAME).unwrap_or(S::NAME),
        mutant: spec.mutant,
        arch: registry::arch(A::NAME).unwrap_or(A::NAME),
        workload: spec.workload,
        cpus: n,
        seconds,
        measured,
        teardowns,
        per_cpu,
        sched,
        topology: topo.name().to_string(),
        pinned: spec.pin_pairs,
        total,
        task_bytes: core::mem::size_of::<Task<S>>(),
        task_state_bytes: Task::<S>::SCHEME_BYTES,
        violations,
    };
    Ok((report, logs))
}
