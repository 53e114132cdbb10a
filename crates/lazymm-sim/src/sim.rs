//! The discrete-event simulator host: one host thread plays N simulated CPUs through the
//! real model code, on the engine's host layer, and the coherence model prices what each
//! step did.
//!
//! # The host
//! Each simulated CPU is a [`Runqueue`] of the engine's host layer, running the registry's
//! workloads through the shared [`Behavior`] trait, exactly as the native engine's CPU
//! threads do: every workload of [`Workload::ALL`] (and any added there) runs here with
//! no change. The runqueues live in a [`Serial`] machine, which is also the kernel's
//! [`IpiHost`](lazymm::IpiHost): a CPU that waits for its IPIs makes the targets run
//! their handlers on their own runqueue's `Cpu` at once.
//!
//! One *step* of a CPU is one iteration of the native engine's scheduler loop: an
//! interrupt point and an NMI point, the wakeups and tasks other CPUs sent it, then
//! [`Runqueue::turn`] (pick, `context_switch`, one step of the task's program). The step
//! runs with recording on: the model logs each protocol access it made, and the step
//! becomes a list of [`Op`]s (its loads, stores and RMWs on the lines they touched, its
//! fences and page-table-root writes, its IPIs, and the machine's context-switch cost for
//! every switch it made). The [`Engine`] always advances the CPU whose clock is earliest,
//! so a step's model code runs when that CPU's simulated clock reaches it, and what it
//! makes other CPUs do arrives at their clocks later (see below). No scheme, arch or
//! workload is named here: whatever they do shows up as accesses.
//!
//! # Cross-CPU work
//! A wakeup or a new task for another CPU ([`Host::wake`], [`Host::place`]) is kept
//! until the sender's ops of that step have run, then rung at the target (a parked
//! target becomes ready after the machine's wakeup latency) and delivered at the
//! target's next step, as the native engine's mailboxes deliver them before each turn.
//!
//! # IPIs
//! The sender pays the send (fixed, plus per target); each target runs its handler as
//! the IPI arrives (delivery latency after the send): the handler's entry cost plus its
//! own accesses, priced on the directory, delay that target. A waiting sender is blocked
//! until the last target has finished its handler: delivery plus the slowest handler.
//!
//! # Simplifications
//! - A step is atomic in the model: other CPUs see all of its effects at once, at the
//!   time it starts; its ops then take their simulated time.
//! - A CPU that goes offline (`hotplug`) does so within one step: its offline time is
//!   charged to it ([`Host::pass_time`]), but other CPUs' steps never fall inside it, so
//!   none of them sees it offline.
//! - Quiescing at the end runs one CPU after the other, so each teardown there is timed
//!   on an otherwise quiet machine (every other CPU idle or lazy), not behind every
//!   CPU's simultaneous `mmput`.

use lazymm::sync::{Access, AccessKind, Field};
use lazymm::{Arch, Config, Cpu, Kernel, Scheme, Stats, Task};
use lazymm_cost::coherence::{Counts, Directory, Driver, Engine, Kind, LineMap, Next, Op};
use lazymm_cost::machine::{IdleChoice, Machine, Ps};
use lazymm_engine::host::quiesce::{self, Quiescer};
use lazymm_engine::host::{
    Host, HostTask, RqView, Runqueue, SchedCounts, Topology, Turn, MAX_TASKS,
};
use lazymm_engine::registry::{self, WithKernel};
use lazymm_engine::serial::Serial;
use lazymm_engine::workload::{Any, Behavior, Prog, Sizing, WorkloadError};
use lazymm_engine::Workload;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// Scheme name.
    pub scheme: String,
    /// Arch name.
    pub arch: String,
    /// The workload (any of the registry's).
    pub workload: Workload,
    /// Pairs of `threads` and `processes` (`None`: one pair per two CPUs); only for
    /// workloads with pairs.
    pub pairs: Option<usize>,
    /// Both threads of pair `i` bound to CPU `i % cpus` (will-it-scale's pinned mode)
    /// rather than placed at each wakeup.
    pub pin: bool,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Seed of every CPU's random choices.
    pub seed: u64,
    /// Simulated warm-up before the measured window.
    pub warmup: Ps,
    /// The measured window of simulated time.
    pub window: Ps,
    /// The kernel profile the model runs.
    pub profile: lazymm::Profile,
}

impl SimSpec {
    /// The pair count the workload runs with (`None` for workloads without pairs).
    pub fn pairs(&self) -> Option<usize> {
        self.workload
            .has_pairs()
            .then(|| self.pairs.unwrap_or(self.cpus.div_ceil(2)))
    }
}

/// What one simulation predicted.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// Scheme.
    pub scheme: &'static str,
    /// Arch.
    pub arch: &'static str,
    /// Workload.
    pub workload: Workload,
    /// Pairs (workloads with pairs only).
    pub pairs: Option<usize>,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Simulated seconds of the measured window.
    pub seconds: f64,
    /// Counters of the measured window, summed over CPUs.
    pub measured: Stats,
    /// Counters of the whole run (warm-up and the final exits included).
    pub total: Stats,
    /// Placement counters of the measured window, summed over CPUs.
    pub sched: SchedCounts,
    /// The topology wakeups were placed on (the machine's, on its first `cpus` CPUs).
    pub topology: String,
    /// Simulated picoseconds of the steps that ran a teardown (an `exit_mm` of a last
    /// user: `__mmput`, `__mmdrop`, the IPIs and their waits, the switch away), over the
    /// whole run.
    pub teardown_ps: Ps,
    /// What the coherence model counted over the whole run.
    pub counts: Counts,
    /// The idle path over the measured window.
    pub idle: IdleCounts,
    /// [`Counts::transfers`] by cache line, each line named by the kernel fields the
    /// profile puts on it (`mm_count`, `mm_cid+mm_count+mm_users`, ...), summed over
    /// the objects (every mm's, every CPU's); most transfers first.
    pub transfers_by_line: Vec<(String, u64)>,
    /// The kernel profile the model ran.
    pub profile: lazymm::Profile,
    /// `size_of::<Task<S>>()`.
    pub task_bytes: usize,
    /// The violations found, as text (must be none).
    pub violations: Vec<String>,
}

impl SimReport {
    /// Context switches per simulated second.
    pub fn switches_per_sec(&self) -> f64 {
        self.measured.context_switches as f64 / self.seconds
    }

    /// The fraction of the measured window's context switches after which the CPU went
    /// idle (a switch to the idle task with nothing to run): 0 when none were made.
    pub fn idle_fraction(&self) -> f64 {
        if self.measured.context_switches == 0 {
            0.0
        } else {
            self.idle.entries as f64 / self.measured.context_switches as f64
        }
    }
}

/// What the idle path did, counted by the simulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleCounts {
    /// Times a CPU went idle (`do_idle` entered with nothing to run).
    pub entries: u64,
    /// Wakeups of an idle CPU in a polling state, or still in its idle entry work: no
    /// IPI, the waker's store to the idle task's flags line woke it.
    pub polling_wakeups: u64,
    /// Wakeups of an idle CPU in a state that does not poll: an IPI.
    pub ipi_wakeups: u64,
    /// Idle entries that stopped the tick.
    pub tick_stops: u64,
}

impl IdleCounts {
    /// The counts since `before`.
    pub fn since(&self, before: &IdleCounts) -> IdleCounts {
        IdleCounts {
            entries: self.entries - before.entries,
            polling_wakeups: self.polling_wakeups - before.polling_wakeups,
            ipi_wakeups: self.ipi_wakeups - before.ipi_wakeups,
            tick_stops: self.tick_stops - before.tick_stops,
        }
    }
}

/// A spec the simulator cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A name not in the registry.
    #[error(transparent)]
    Unknown(#[from] registry::Unknown),
    /// More CPUs than the machine has.
    #[error("bad cpu count {cpus} (valid: 1 to {max} on this machine)")]
    Cpus {
        /// Asked.
        cpus: usize,
        /// The most.
        max: usize,
    },
    /// The workload cannot run at this size (CPUs, pairs).
    #[error(transparent)]
    Workload(#[from] WorkloadError),
}

/// Simulates one (scheme, arch, workload, CPUs) on machine `m`.
pub fn simulate(m: &Machine, spec: &SimSpec) -> Result<SimReport, SimError> {
    let max = m.nr_cpus.min(lazymm::MAX_CPUS);
    if spec.cpus == 0 || spec.cpus > max {
        return Err(SimError::Cpus {
            cpus: spec.cpus,
            max,
        });
    }
    let sizing = spec.workload.check(spec.cpus, spec.pairs)?;
    registry::scheme(&spec.scheme)?;
    registry::arch(&spec.arch)?;
    Ok(registry::dispatch(
        &spec.scheme,
        &spec.arch,
        Job { m, spec, sizing },
    )?)
}

struct Job<'a> {
    m: &'a Machine,
    spec: &'a SimSpec,
    sizing: Sizing,
}

impl WithKernel for Job<'_> {
    type Out = SimReport;
    fn with<S: Scheme, A: Arch>(self) -> SimReport {
        run::<S, A>(self.m, self.spec, self.sizing)
    }
    fn with_registered(self, s: &registry::Registered, arch: &str) -> Option<SimReport> {
        s.job::<SimJob>()?(arch, self)
    }
}

/// A simulation of a registered scheme on the arch named.
type SimJob = for<'a> fn(&str, Job<'a>) -> Option<SimReport>;

/// Instantiates the simulator for a scheme registered at run time (see
/// `lazymm_engine::registry::Registered`), so that `lazymm predict` can run it.
pub fn register<S: Scheme>(r: &mut registry::Registered) {
    let job: SimJob = |arch, v| registry::by_arch::<S, _>(arch, v);
    r.add_job(job);
}

/// An NMI about once every this many NMI points, as the native engine.
const NMI_PERIOD: u32 = 8;

/// `Op::Notify` tokens.
mod token {
    /// The step about to run its ops tears an mm down: the teardown's time starts.
    pub const TEARDOWN_BEGIN: u32 = 1;
    /// The teardown's ops have run.
    pub const TEARDOWN_END: u32 = 2;
    /// The step's ops have run: ring the CPUs it woke or gave tasks to.
    pub const DELIVER: u32 = 3;
    /// Quiescing: this CPU has exited its tasks; the next CPU's turn.
    pub const QUIESCED: u32 = 4;
    /// The CPU's idle entry work is done: it sleeps in the state the governor chose.
    pub const IDLE: u32 = 5;
}

/// What a step sent to another CPU.
enum Sent<S: Scheme> {
    /// Wake task `.1` of CPU `.0`.
    Wake(usize, usize),
    /// Wake task `.1` of CPU `.0` to run on CPU `.2`.
    Move(usize, usize, usize),
    /// A new task for CPU `.0`.
    Place(usize, HostTask<S, Prog>),
}

/// The [`Host`] the runqueues and the workload see during one step: what they send to
/// other CPUs waits here until the step's ops have run.
struct Outbox<S: Scheme> {
    sent: RefCell<Vec<Sent<S>>>,
    /// The CPUs' load as wakeups see it.
    view: RqView,
    stopping: Cell<bool>,
    /// Time the step let pass on its CPU (`pass_time`).
    passed: Cell<Ps>,
}

impl<S: Scheme> Host<S, Prog> for Outbox<S> {
    fn wake(&self, cpu: usize, task: usize) {
        // The wakeup's enqueue is part of the waker's step: the target is busy from now
        // on for every later placement (`ttwu_pending`), though the task arrives at the
        // end of the step's ops.
        self.view.ring(cpu);
        self.sent.borrow_mut().push(Sent::Wake(cpu, task));
    }

    fn wake_to(&self, cpu: usize, task: usize, to: usize) {
        self.view.ring(to);
        self.sent.borrow_mut().push(Sent::Move(cpu, task, to));
    }

    fn view(&self) -> &RqView {
        &self.view
    }

    fn place(&self, cpu: usize, task: HostTask<S, Prog>) {
        self.sent.borrow_mut().push(Sent::Place(cpu, task));
    }

    fn stopping(&self) -> bool {
        self.stopping.get()
    }

    fn pass_time<A: Arch>(&self, k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, d: Duration) {
        // The CPU only answers interrupts meanwhile; in this host none can arrive within
        // a step (see the module docs), so one interrupt point, and the time charged.
        k.irq_point(cpu);
        self.passed
            .set(self.passed.get() + d.as_nanos() as Ps * 1000);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The workload runs.
    Run,
    /// No new steps: every CPU finishes the ops it has.
    Drain,
    /// CPU `turn` exits its tasks; the others wait.
    Quiesce { turn: usize },
}

type Rq<S, A> = Runqueue<S, A, Prog>;

/// One CPU's undelivered wakeups, placed tasks and moves, as [`Sim::deliver`] takes them.
type Mail<'a, S> = (
    &'a mut u64,
    &'a mut Vec<HostTask<S, Prog>>,
    &'a mut Vec<(usize, usize)>,
);

struct Sim<'m, S: Scheme, A: Arch> {
    m: &'m Machine,
    k: Kernel<S, A>,
    serial: Arc<Serial<S, A, Rq<S, A>>>,
    w: Any,
    out: Outbox<S>,
    /// Per CPU: wakeups rung and not yet delivered (slot bits).
    doorbell: Vec<u64>,
    /// Per CPU: tasks placed there and not yet adopted.
    inbox: Vec<Vec<HostTask<S, Prog>>>,
    /// Per CPU: tasks of its own woken to run elsewhere while still current there
    /// (slot, destination), handed over at its next step.
    moves: Vec<Vec<(usize, usize)>>,
    /// Per CPU: what its current ops deliver at their `DELIVER`.
    in_flight: Vec<Vec<Sent<S>>>,
    lines: LineMap<u64>,
    /// Per dense line id: the fields met on it (bit `f` for [`Field`] `f`).
    line_fields: Vec<u32>,
    log: Vec<Access>,
    other: Vec<Access>,
    /// The targets of the IPI batch being translated.
    batch: Vec<usize>,
    phase: Phase,
    /// Per CPU: when its teardown began, while one runs.
    teardown_begin: Vec<Option<Ps>>,
    teardown_ps: Ps,
    /// Per CPU: its idle path.
    idle: Vec<IdleCpu>,
    idle_counts: IdleCounts,
}

/// One CPU's idle path, as the simulator follows it.
#[derive(Debug, Clone, Copy, Default)]
struct IdleCpu {
    /// While the CPU idles: when its entry work ended and what the governor chose (the
    /// state it is in once a polling state gave up).
    since: Option<(Ps, IdleChoice)>,
    /// Its previous idle time: the governor's prediction of the next.
    last: Ps,
}

/// A line key no model access has (a field group above every `Field`'s):
/// the idle task's `thread_info->flags` of each CPU, where `TIF_POLLING_NRFLAG` and
/// `TIF_NEED_RESCHED` live; the CPU number goes in the low bits.
const FLAGS_LINES: u64 = 0xFF << 56;
const _: () = assert!(lazymm::field::Field::COUNT < 0xFF);

impl<S: Scheme, A: Arch> Sim<'_, S, A> {
    /// A dense id for the cache line `a` touched under the kernel profile's layout
    /// ([`Access::line`]: field group, object, line of the object), in first-seen
    /// order, so the same seed gives the same numbers.
    fn line(&mut self, a: &Access) -> u64 {
        let n = self.lines.len() as u64;
        let id = *self.lines.entry(a.line()).or_insert(n);
        if id == n {
            self.line_fields.push(0);
        }
        self.line_fields[id as usize] |= 1 << a.tag.field as u32;
        id
    }

    /// The idle task's flags line of CPU `c`.
    fn flags_line(&mut self, c: usize) -> u64 {
        let n = self.lines.len() as u64;
        let id = *self.lines.entry(FLAGS_LINES | c as u64).or_insert(n);
        if id == n {
            self.line_fields.push(IDLE_FLAGS);
        }
        id
    }

    /// CPU `c`'s idle state at `now`: `None` if it does not idle, `Some(None)` while
    /// it is in its idle entry work (`TIF_POLLING_NRFLAG` already set, no state
    /// entered), `Some(Some(choice))` asleep (a polling state gives up after its limit).
    fn idle_state(&self, c: usize, now: Ps) -> Option<Option<IdleChoice>> {
        let (since, choice) = self.idle[c].since?;
        Some((now >= since).then(|| self.m.idle.after(choice, now - since)))
    }

    /// How long after a wakeup sent at `now` CPU `to` runs, if it is asleep: the IPI's
    /// delivery unless its state polls (then the waker's store to the flags line woke
    /// it; that line's transfers are priced on the directory), the state's exit
    /// latency, the exit work, and the tick's restart if it was stopped. A CPU still in
    /// its entry work polls already (no IPI) and runs on at once, as does one that is
    /// not idle.
    fn wake_latency(&mut self, to: usize, now: Ps) -> Ps {
        let Some(choice) = self.idle_state(to, now) else {
            return 0;
        };
        let Some(choice) = choice else {
            self.idle_counts.polling_wakeups += 1;
            return 0;
        };
        let idle = &self.m.idle;
        let state = &idle.states[choice.state];
        let signal = if state.polling {
            self.idle_counts.polling_wakeups += 1;
            0
        } else {
            self.idle_counts.ipi_wakeups += 1;
            self.m.ipi_delivery
        };
        let tick = if choice.tick_stopped {
            idle.tick_restart
        } else {
            0
        };
        signal + state.exit_latency + idle.exit + tick
    }

    fn kind(k: AccessKind) -> Kind {
        match k {
            AccessKind::Load => Kind::Load,
            AccessKind::Store => Kind::Store,
            AccessKind::Rmw => Kind::Rmw,
            other => unreachable!("{other:?} is not a memory access"),
        }
    }

    /// Turns CPU `c`'s log of this step into ops; IPI targets' handlers are priced here.
    fn translate(&mut self, c: usize, now: Ps, ops: &mut Vec<Op>, dir: &mut Directory<'_>) {
        let mut log = std::mem::take(&mut self.log);
        self.serial.cpu(c).cpu.acct.drain_into(&mut log);
        let m = self.m;
        let mut batch = std::mem::take(&mut self.batch);
        let mut i = 0;
        while i < log.len() {
            let a = log[i];
            i += 1;
            match a.kind {
                AccessKind::Fence => ops.push(Op::Fence),
                AccessKind::RootWrite => ops.push(Op::Work(m.cr3_write)),
                AccessKind::IpiSend => {
                    if batch.is_empty() {
                        ops.push(Op::Work(m.ipi_send));
                    }
                    ops.push(Op::Work(m.ipi_per_target));
                    batch.push(a.ipi_target());
                }
                // The sender starts waiting for the batch it posted (logged where the
                // model waits, not inferred).
                AccessKind::IpiWait => {
                    let wait = self.handlers(&batch, now, dir);
                    ops.push(Op::Work(wait));
                    batch.clear();
                }
                k => {
                    let line = self.line(&a);
                    ops.push(Op::Access {
                        line,
                        kind: Self::kind(k),
                    });
                }
            }
        }
        log.clear();
        self.log = log;
        batch.clear();
        self.batch = batch;
    }

    /// The targets of one IPI batch ran their handlers (the serial machine ran them
    /// while the sender waited): price each, delay each target by its own, and return
    /// how long the sender waits (delivery plus the slowest handler).
    fn handlers(&mut self, targets: &[usize], now: Ps, dir: &mut Directory<'_>) -> Ps {
        let m = self.m;
        let mut slowest = 0;
        for &t in targets {
            let mut other = std::mem::take(&mut self.other);
            self.serial.cpu(t).cpu.acct.drain_into(&mut other);
            let mut cost = m.ipi_handler;
            if let Some(Some(choice)) = self.idle_state(t, now) {
                // The IPI wakes an idle target out of its state first; it goes back to
                // idle after the handler (the governor's second pass is not charged).
                cost += m.idle.states[choice.state].exit_latency + m.idle.exit;
            }
            for a in &other {
                match a.kind {
                    AccessKind::Fence => cost += m.fence,
                    AccessKind::RootWrite => cost += m.cr3_write,
                    AccessKind::IpiSend => cost += m.ipi_per_target,
                    AccessKind::IpiWait => {}
                    k => {
                        let line = self.line(a);
                        cost += dir.access_direct(t, line, Self::kind(k));
                    }
                }
            }
            other.clear();
            self.other = other;
            dir.steal(t, cost);
            slowest = slowest.max(cost);
        }
        m.ipi_delivery + slowest
    }

    /// The ops of a step that made `switches` context switches and `teardowns` last
    /// exits, from its recorded accesses; what it sent goes out at its end.
    fn ops_of_step(
        &mut self,
        c: usize,
        now: Ps,
        switches: u64,
        teardowns: u64,
        ops: &mut Vec<Op>,
        dir: &mut Directory<'_>,
    ) {
        if teardowns > 0 {
            ops.push(Op::Notify(token::TEARDOWN_BEGIN));
        }
        self.translate(c, now, ops, dir);
        if switches > 0 {
            ops.push(Op::Work(switches * self.m.context_switch));
        }
        let passed = self.out.passed.take();
        if passed > 0 {
            ops.push(Op::Work(passed));
        }
        if teardowns > 0 {
            ops.push(Op::Notify(token::TEARDOWN_END));
        }
        let sent = self.out.sent.take();
        // Waking an idle CPU (ttwu's send_call_function_single_ipi): a polling target
        // gets TIF_NEED_RESCHED set on its idle task's flags line (set_nr_if_polling,
        // a cmpxchg), any other an IPI. Once per target, however many tasks it gets.
        let mut woken: Vec<usize> = Vec::new();
        // A moved task wakes the CPU it moves to (the CPU it blocked on, if it is still
        // current there, is busy and needs no waking).
        for to in sent.iter().map(|x| match x {
            Sent::Wake(to, _) | Sent::Move(_, _, to) | Sent::Place(to, _) => *to,
        }) {
            if to == c || woken.contains(&to) {
                continue;
            }
            woken.push(to);
            if let Some(choice) = self.idle_state(to, now) {
                let polls = choice.is_none_or(|ch| self.m.idle.states[ch.state].polling);
                if polls {
                    let line = self.flags_line(to);
                    ops.push(Op::Access {
                        line,
                        kind: Kind::Rmw,
                    });
                } else {
                    ops.push(Op::Work(self.m.ipi_send + self.m.ipi_per_target));
                }
            }
        }
        if !sent.is_empty() {
            debug_assert!(self.in_flight[c].is_empty());
            self.in_flight[c] = sent;
            ops.push(Op::Notify(token::DELIVER));
        }
    }

    /// Takes the wakeups, moves and tasks sent to `rq`'s CPU (new tasks runnable or
    /// not), as the native engine's mailboxes do before each turn; a task woken to run
    /// elsewhere leaves through `out` (unless quiescing).
    fn deliver(
        k: &Kernel<S, A>,
        c: usize,
        (doorbell, inbox, moves): Mail<'_, S>,
        out: &Outbox<S>,
        rq: &mut Rq<S, A>,
        runnable: bool,
    ) {
        out.view.delivered(c);
        let bits = std::mem::take(doorbell);
        if bits != 0 {
            rq.wake_bits(bits);
        }
        for (slot, to) in moves.drain(..) {
            // Quiescing (`runnable` false), a task stays to exit here: the CPUs before
            // this one have exited theirs already.
            if runnable {
                let t = rq.take_moving(k, slot);
                out.place(to, t);
            }
        }
        for t in inbox.drain(..) {
            rq.adopt(k, t, runnable);
        }
        rq.publish(&out.view);
    }

    /// One step of CPU `c`, at `now`.
    fn step(&mut self, c: usize, now: Ps, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        match self.phase {
            Phase::Run => {}
            Phase::Drain => return Next::Park,
            Phase::Quiesce { turn } if turn != c => return Next::Park,
            Phase::Quiesce { .. } => return self.quiesce_step(c, now, ops, dir),
        }
        let (switches, teardowns, turn) = {
            let mut guard = self.serial.cpu(c);
            let rq = &mut *guard;
            self.k.irq_point(&mut rq.cpu);
            self.k.nmi_point(&mut rq.cpu);
            let mail = (
                &mut self.doorbell[c],
                &mut self.inbox[c],
                &mut self.moves[c],
            );
            Self::deliver(&self.k, c, mail, &self.out, rq, true);
            let before = rq.cpu.stats();
            let turn = rq.turn(&self.k, &self.w, &self.out);
            let after = rq.cpu.stats();
            (
                after.context_switches - before.context_switches,
                after.exits - before.exits,
                turn,
            )
        };
        if let Some((since, _)) = self.idle[c].since {
            if turn != Turn::Idle {
                // Woken: do_idle's exit clears TIF_POLLING_NRFLAG (current_clr_polling),
                // which brings the flags line back if a waker took it; the exit latency
                // and tick restart were the wakeup's latency. The idle time is the
                // governor's next prediction.
                self.idle[c] = IdleCpu {
                    since: None,
                    last: now.saturating_sub(since),
                };
                let line = self.flags_line(c);
                ops.push(Op::Access {
                    line,
                    kind: Kind::Rmw,
                });
            }
        }
        self.ops_of_step(c, now, switches, teardowns, ops, dir);
        if turn == Turn::Idle && self.idle[c].since.is_none() {
            // do_idle, after the switch to the idle task: the governor picks a state
            // for the predicted idle time and may stop the tick; __current_set_polling
            // sets TIF_POLLING_NRFLAG on the idle task's flags line. The CPU sleeps
            // from the end of this work (`token::IDLE`); a wakeup before that finds
            // it awake and costs it nothing more.
            let idle = &self.m.idle;
            let choice = idle.select(self.idle[c].last);
            let work = idle.entry
                + if choice.tick_stopped {
                    idle.tick_stop
                } else {
                    0
                };
            self.idle_counts.entries += 1;
            self.idle_counts.tick_stops += u64::from(choice.tick_stopped);
            self.idle[c].since = Some((Ps::MAX, choice));
            let line = self.flags_line(c);
            ops.push(Op::Access {
                line,
                kind: Kind::Rmw,
            });
            ops.push(Op::Work(work));
            ops.push(Op::Notify(token::IDLE));
            return Next::Run;
        }
        if ops.is_empty() {
            if turn == Turn::Idle {
                // Idle: nothing to run until a wakeup.
                return Next::Park;
            }
            // A task ran on without a switch or a protocol access: its step still takes
            // the CPU a moment (one cached access), so simulated time moves on.
            ops.push(Op::Work(self.m.load_hit.max(1)));
        }
        Next::Run
    }

    /// Quiescing, phase one, on CPU `c`: it takes what was sent to it, every task exits
    /// and the workload drops what it holds for the CPU; then the next CPU's turn.
    fn quiesce_step(
        &mut self,
        c: usize,
        now: Ps,
        ops: &mut Vec<Op>,
        dir: &mut Directory<'_>,
    ) -> Next {
        let (switches, teardowns) = {
            let mut guard = self.serial.cpu(c);
            let rq = &mut *guard;
            let before = rq.cpu.stats();
            let mut q = SimQuiesce {
                c,
                mail: (
                    &mut self.doorbell[c],
                    &mut self.inbox[c],
                    &mut self.moves[c],
                ),
                out: &self.out,
                w: &self.w,
            };
            quiesce::quiesce_phase(&mut q, &self.k, rq, quiesce::Phase::Tasks);
            let after = rq.cpu.stats();
            (
                after.context_switches - before.context_switches,
                after.exits - before.exits,
            )
        };
        self.ops_of_step(c, now, switches, teardowns, ops, dir);
        ops.push(Op::Notify(token::QUIESCED));
        self.phase = Phase::Quiesce { turn: usize::MAX };
        Next::Run
    }
}

/// The simulator's part in quiescing CPU `c`: its own doorbell and inbox (filled when a
/// sent wakeup or task arrives in simulated time), the workload. No barrier: each phase
/// runs on every CPU in turn.
struct SimQuiesce<'a, S: Scheme> {
    c: usize,
    mail: Mail<'a, S>,
    out: &'a Outbox<S>,
    w: &'a Any,
}

impl<S: Scheme, A: Arch> Quiescer<S, A, Prog> for SimQuiesce<'_, S> {
    fn deliver(&mut self, k: &Kernel<S, A>, rq: &mut Rq<S, A>) {
        let (doorbell, inbox, moves) = &mut self.mail;
        Sim::deliver(k, self.c, (doorbell, inbox, moves), self.out, rq, false);
    }

    fn release(&mut self, k: &Kernel<S, A>, rq: &mut Rq<S, A>) {
        Behavior::<S>::quiesce(self.w, k, rq);
    }
}

/// The driver the engine calls: the host, plus what must wait for the engine.
struct Drive<'h, 'm, S: Scheme, A: Arch> {
    h: &'h mut Sim<'m, S, A>,
}

impl<S: Scheme, A: Arch> Driver for Drive<'_, '_, S, A> {
    fn next(&mut self, cpu: usize, now: Ps, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        self.h.step(cpu, now, ops, dir)
    }

    fn notify(&mut self, cpu: usize, tok: u32, now: Ps, wake: &mut Vec<(usize, Ps)>) {
        let h = &mut *self.h;
        match tok {
            token::TEARDOWN_BEGIN => h.teardown_begin[cpu] = Some(now),
            token::TEARDOWN_END => {
                if let Some(t0) = h.teardown_begin[cpu].take() {
                    h.teardown_ps += now - t0;
                }
            }
            token::DELIVER => {
                for s in std::mem::take(&mut h.in_flight[cpu]) {
                    let to = match s {
                        Sent::Wake(to, task) => {
                            h.doorbell[to] |= 1 << task;
                            to
                        }
                        Sent::Move(from, task, to) => {
                            let mut rq = h.serial.cpu(from);
                            if rq.cur() == Some(task) {
                                // Still current there (it blocked, and that CPU has not
                                // switched away yet): that CPU hands it over at its next
                                // step, which is already due.
                                h.moves[from].push((task, to));
                                from
                            } else {
                                // Blocked and off its CPU: it goes straight to `to`.
                                let t = rq.take_moving(&h.k, task);
                                h.inbox[to].push(t);
                                to
                            }
                        }
                        Sent::Place(to, t) => {
                            h.inbox[to].push(t);
                            to
                        }
                    };
                    h.out.view.ring(to);
                    if !wake.iter().any(|&(w, _)| w == to) {
                        let latency = h.wake_latency(to, now);
                        wake.push((to, latency));
                    }
                }
            }
            token::IDLE => {
                if let Some((since, _)) = &mut h.idle[cpu].since {
                    *since = now;
                }
            }
            token::QUIESCED => {
                let next = cpu + 1;
                if next < h.doorbell.len() {
                    h.phase = Phase::Quiesce { turn: next };
                    wake.push((next, 0));
                }
            }
            other => unreachable!("notify token {other}"),
        }
    }
}

fn sum_stats<S: Scheme, A: Arch>(serial: &Serial<S, A, Rq<S, A>>) -> Stats {
    let mut s = Stats::default();
    for i in 0..serial.len() {
        s.add(&serial.cpu(i).cpu.stats());
    }
    s
}

fn sum_sched<S: Scheme, A: Arch>(serial: &Serial<S, A, Rq<S, A>>) -> SchedCounts {
    let mut s = SchedCounts::default();
    for i in 0..serial.len() {
        s.add(&serial.cpu(i).sched_counts());
    }
    s
}

/// Ends when the heap is empty; a bound on simulated time keeps a bug from spinning.
const FOREVER: Ps = Ps::MAX / 4;

fn run<S: Scheme, A: Arch>(m: &Machine, spec: &SimSpec, sizing: Sizing) -> SimReport {
    let n = spec.cpus;
    let mut cfg = Config::new(n);
    cfg.profile = spec.profile;
    cfg.arena_capacity = sizing.arena_capacity;
    cfg.nmi_period = NMI_PERIOD;
    let topo = Topology::from_groups(
        format!("{} (first {n} CPUs)", m.file.name),
        (0..n).map(|c| m.group(0, c)).collect(),
        (0..n).map(|c| m.group(1.min(m.levels() - 1), c)).collect(),
    );
    let w = spec.workload.build_on(&topo, spec.pairs, spec.pin);
    let (k, serial) = Serial::<S, A, Rq<S, A>>::boot_with(cfg, |k, cpus| {
        let mut rqs: Vec<Rq<S, A>> = cpus
            .into_iter()
            .map(|mut c| {
                c.seed(spec.seed);
                let id = c.id as u32;
                Runqueue::new(k, c, MAX_TASKS, id << 20, id << 20)
            })
            .collect();
        // The workload's initial tasks, placed with every CPU in hand (as the native
        // engine does before its threads start; setup tears nothing down, so it sends
        // no IPI before the machine is its IPI host).
        Behavior::<S>::setup(&w, k, &mut rqs);
        for rq in &mut rqs {
            rq.cpu.set_recording(true);
        }
        rqs
    });
    let out = Outbox {
        sent: RefCell::new(Vec::new()),
        view: RqView::new(topo.clone()),
        stopping: Cell::new(false),
        passed: Cell::new(0),
    };
    // The initial tasks are runnable before any CPU's first step.
    for i in 0..n {
        serial.cpu(i).publish(&out.view);
    }
    let mut sim = Sim {
        m,
        k,
        serial: serial.clone(),
        w,
        out,
        doorbell: vec![0; n],
        inbox: (0..n).map(|_| Vec::new()).collect(),
        moves: (0..n).map(|_| Vec::new()).collect(),
        in_flight: (0..n).map(|_| Vec::new()).collect(),
        lines: LineMap::default(),
        line_fields: Vec::new(),
        log: Vec::new(),
        other: Vec::new(),
        batch: Vec::new(),
        phase: Phase::Run,
        teardown_begin: vec![None; n],
        teardown_ps: 0,
        idle: vec![IdleCpu::default(); n],
        idle_counts: IdleCounts::default(),
    };
    let mut e = Engine::new(m, n);
    e.run(&mut Drive { h: &mut sim }, spec.warmup);
    let before = sum_stats(&serial);
    let idle_before = sim.idle_counts;
    let sched_before = sum_sched(&serial);
    let t_end = spec.warmup + spec.window;
    e.run(&mut Drive { h: &mut sim }, t_end);
    let measured = sum_stats(&serial).since(&before);
    let idle = sim.idle_counts.since(&idle_before);
    let sched = sum_sched(&serial).since(&sched_before);
    // The run ends: workloads start no new work, every CPU finishes the ops it has (the
    // wakeups and tasks they send arrive), then each CPU in turn exits its tasks.
    sim.out.stopping.set(true);
    sim.phase = Phase::Drain;
    let drained = e.run(&mut Drive { h: &mut sim }, FOREVER);
    sim.phase = Phase::Quiesce { turn: 0 };
    e.wake_cpu(0, drained.max(t_end));
    e.run(&mut Drive { h: &mut sim }, FOREVER);
    // Phases two and three (no time of theirs is charged).
    quiesce::quiesce_each(
        n,
        &[quiesce::Phase::Idle, quiesce::Phase::Oracle],
        |phase, c| {
            if let Some(c) = c {
                let mut q = SimQuiesce {
                    c,
                    mail: (&mut sim.doorbell[c], &mut sim.inbox[c], &mut sim.moves[c]),
                    out: &sim.out,
                    w: &sim.w,
                };
                quiesce::quiesce_phase(&mut q, &sim.k, &mut serial.cpu(c), phase);
            }
        },
    );
    let total = sum_stats(&serial);
    let mut violations = Vec::new();
    for i in 0..n {
        violations.extend(serial.cpu(i).cpu.violations.iter().map(|v| v.to_string()));
    }
    SimReport {
        scheme: registry::scheme(S::NAME).unwrap_or(S::NAME),
        arch: registry::arch(A::NAME).unwrap_or(A::NAME),
        workload: spec.workload,
        pairs: spec.pairs(),
        cpus: n,
        seconds: spec.window as f64 / 1e12,
        measured,
        total,
        sched,
        topology: topo.name().to_string(),
        teardown_ps: sim.teardown_ps,
        counts: e.counts(),
        idle,
        transfers_by_line: by_line(e.line_transfers(), &sim.line_fields),
        profile: spec.profile,
        task_bytes: core::mem::size_of::<Task<S>>(),
        violations,
    }
}

/// Sums each line's transfers under the name of the fields on it; most first.
/// The bit of a line's field mask that marks an idle task's flags line (the simulator's
/// idle path, not a field of the model's): above every [`Field`]'s bit.
const IDLE_FLAGS: u32 = 1 << 31;
const _: () = assert!(Field::ALL.len() < 31);

fn by_line(transfers: impl Iterator<Item = u64>, fields: &[u32]) -> Vec<(String, u64)> {
    let mut sum: std::collections::BTreeMap<u32, u64> = Default::default();
    for (id, t) in transfers.enumerate() {
        if t > 0 {
            *sum.entry(fields.get(id).copied().unwrap_or(0)).or_default() += t;
        }
    }
    let mut v: Vec<(String, u64)> = sum
        .into_iter()
        .map(|(mask, t)| {
            let mut names: Vec<&str> = Field::ALL
                .iter()
                .filter(|f| mask & (1 << **f as u32) != 0)
                .map(|f| f.name())
                .collect();
            if mask & IDLE_FLAGS != 0 {
                names.push("idle->thread_info.flags");
            }
            (names.join("+"), t)
        })
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazymm_engine::registry::SCHEMES;

    fn spec(scheme: &str, workload: Workload, cpus: usize) -> SimSpec {
        SimSpec {
            scheme: scheme.into(),
            arch: "generic".into(),
            workload,
            pairs: None,
            pin: false,
            cpus,
            seed: 7,
            warmup: 20_000_000,
            window: 100_000_000,
            profile: lazymm::Profile::BARE,
        }
    }

    fn machine() -> Machine {
        Machine::load("epyc-zen4-2s").unwrap()
    }

    #[test]
    fn every_registered_scheme_runs_clean_on_every_workload() {
        let m = machine();
        for (s, _) in SCHEMES {
            for &w in Workload::ALL {
                let r = simulate(&m, &spec(s, w, 4)).unwrap();
                assert!(r.violations.is_empty(), "{s} {w:?}: {:?}", r.violations);
                assert!(r.measured.context_switches > 0, "{s} {w:?}");
                assert!(r.total.exits >= 1, "{s} {w:?}: every process is torn down");
            }
        }
    }

    #[test]
    fn every_workload_runs_on_every_arch_and_on_one_cpu() {
        let m = machine();
        for (a, _) in lazymm_engine::registry::ARCHS {
            for &w in Workload::ALL {
                for cpus in [1, 3] {
                    let mut sp = spec("shootdown", w, cpus);
                    sp.arch = a.to_string();
                    let r = simulate(&m, &sp).unwrap();
                    assert!(
                        r.violations.is_empty(),
                        "{a} {w:?} {cpus}: {:?}",
                        r.violations
                    );
                    assert!(r.measured.context_switches > 0, "{a} {w:?} {cpus}");
                }
            }
        }
    }

    #[test]
    fn a_cpu_never_stalls_a_churning_workload() {
        // exit-storm keeps tearing processes down for as long as it runs: twice the
        // window, about twice the exits (a CPU that stopped would stop them).
        let m = machine();
        for cpus in [1, 2] {
            let short = simulate(&m, &spec("refcount", Workload::ExitStorm, cpus)).unwrap();
            let mut long = spec("refcount", Workload::ExitStorm, cpus);
            long.window *= 2;
            let long = simulate(&m, &long).unwrap();
            let ratio = long.measured.exits as f64 / short.measured.exits.max(1) as f64;
            assert!(
                short.measured.exits > 5,
                "{cpus} CPUs: {:?}",
                short.measured
            );
            assert!(
                (1.6..2.4).contains(&ratio),
                "{cpus} CPUs: exits ratio {ratio}"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_prediction() {
        let m = machine();
        for &w in Workload::ALL {
            let a = simulate(&m, &spec("shootdown", w, 8)).unwrap();
            let b = simulate(&m, &spec("shootdown", w, 8)).unwrap();
            assert_eq!(
                format!("{:?}", a.measured),
                format!("{:?}", b.measured),
                "{w:?}"
            );
            assert_eq!(a.counts, b.counts, "{w:?}");
            assert_eq!(a.teardown_ps, b.teardown_ps, "{w:?}");
        }
    }

    #[test]
    fn a_shared_refcount_costs_more_than_none_as_cpus_grow() {
        let m = machine();
        let rate = |s: &str, n: usize| {
            simulate(&m, &spec(s, Workload::Threads, n))
                .unwrap()
                .switches_per_sec()
        };
        let (none, refc) = (rate("none", 64), rate("refcount", 64));
        assert!(none > refc, "none {none} refcount {refc}");
        // One CPU pair: the mm_count line barely moves, so refcount is close to none.
        let (none2, refc2) = (rate("none", 2), rate("refcount", 2));
        assert!(
            refc2 / none2 > refc / none,
            "2 CPUs {} vs 64 CPUs {}",
            refc2 / none2,
            refc / none
        );
    }

    #[test]
    fn pairs_oversubscribe_the_cpus() {
        // 8 pairs on 4 CPUs: every CPU has runnable threads, switches stop going
        // through idle, so lazy switches per switch drop.
        let m = machine();
        let lazy_share = |pairs| {
            let mut sp = spec("refcount", Workload::Threads, 4);
            sp.pairs = Some(pairs);
            let r = simulate(&m, &sp).unwrap();
            assert_eq!(r.pairs, Some(pairs));
            r.measured.lazy_switches as f64 / r.measured.context_switches as f64
        };
        let (fit, over) = (lazy_share(2), lazy_share(8));
        assert!(over < fit / 2.0, "2 pairs {fit}, 8 pairs {over}");
        let mut bad = spec("refcount", Workload::IdleStorm, 4);
        bad.pairs = Some(2);
        assert!(matches!(
            simulate(&m, &bad),
            Err(SimError::Workload(WorkloadError::PairsWorkload(_)))
        ));
    }

    #[test]
    fn an_ipi_costs_send_delivery_and_handler_and_the_sender_waits() {
        let m = machine();
        let r = simulate(&m, &spec("shootdown", Workload::IdleStorm, 16)).unwrap();
        assert!(r.total.ipis_sent >= 15, "{:?}", r.total);
        // The one teardown shoots down 15 lazy CPUs and waits for the slowest handler.
        let floor = m.ipi_send + 15 * m.ipi_per_target + m.ipi_delivery + m.ipi_handler;
        assert!(
            r.teardown_ps > floor,
            "teardown {} ps, floor {floor} ps",
            r.teardown_ps
        );
        let n = simulate(&m, &spec("none", Workload::IdleStorm, 16)).unwrap();
        assert_eq!(n.total.ipis_sent, 0);
        assert!(n.teardown_ps < floor, "none: {} ps", n.teardown_ps);
    }

    #[test]
    fn an_idle_cpu_is_woken_without_an_ipi_only_where_its_state_polls() {
        // One pair on two CPUs: every hand-off goes through idle.
        let run = |machine: &str, vary: &[(String, f64)]| {
            let m = Machine::load_varied(machine, vary).unwrap();
            let mut sp = spec("refcount", Workload::Threads, 2);
            sp.arch = "x86".into();
            sp.window = 1_000_000_000;
            simulate(&m, &sp).unwrap()
        };
        // Skylake's intel_idle states all use MWAIT, and do_idle sets the polling flag
        // before it picks one: no wakeup needs an IPI.
        let skl = run("skl-2s", &[]);
        assert!(skl.idle.entries > 100, "{:?}", skl.idle);
        assert!(skl.idle.polling_wakeups > 100, "{:?}", skl.idle);
        assert_eq!(skl.idle.ipi_wakeups, 0, "{:?}", skl.idle);
        assert!(
            (0.2..=0.6).contains(&skl.idle_fraction()),
            "{}",
            skl.idle_fraction()
        );
        // This host's haltpoll with a zero poll limit halts: every wakeup is an IPI and
        // every idle entry stops the tick (its 14.8 us switches leave the partner time
        // to fall asleep).
        let host = run("host", &[]);
        assert!(host.idle.ipi_wakeups > 20, "{:?}", host.idle);
        assert_eq!(host.idle.polling_wakeups, 0, "{:?}", host.idle);
        assert_eq!(host.idle.tick_stops, host.idle.entries, "{:?}", host.idle);

        // A slower exit from the state the CPUs sleep in slows the ping-pong.
        let key = "idle.state.haltpoll idle.exit_latency_ns".to_string();
        let slow = run("host", &[(key.clone(), 20_000.0)]);
        let fast = run("host", &[(key, 0.0)]);
        assert!(
            slow.switches_per_sec() < 0.8 * fast.switches_per_sec(),
            "slow {} fast {}",
            slow.switches_per_sec(),
            fast.switches_per_sec()
        );
    }
}
