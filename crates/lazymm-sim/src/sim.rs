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
use lazymm_cost::machine::{Machine, Ps};
use lazymm_engine::host::{Host, HostTask, Runqueue, Turn, MAX_TASKS};
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
    /// Simulated picoseconds of the steps that ran a teardown (an `exit_mm` of a last
    /// user: `__mmput`, `__mmdrop`, the IPIs and their waits, the switch away), over the
    /// whole run.
    pub teardown_ps: Ps,
    /// What the coherence model counted over the whole run.
    pub counts: Counts,
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
}

/// What a step sent to another CPU.
enum Sent<S: Scheme> {
    /// Wake task `.1` of CPU `.0`.
    Wake(usize, usize),
    /// A new task for CPU `.0`.
    Place(usize, HostTask<S, Prog>),
}

/// The [`Host`] the runqueues and the workload see during one step: what they send to
/// other CPUs waits here until the step's ops have run.
struct Outbox<S: Scheme> {
    sent: RefCell<Vec<Sent<S>>>,
    stopping: Cell<bool>,
    /// Time the step let pass on its CPU (`pass_time`).
    passed: Cell<Ps>,
}

impl<S: Scheme> Host<S, Prog> for Outbox<S> {
    fn wake(&self, cpu: usize, task: usize) {
        self.sent.borrow_mut().push(Sent::Wake(cpu, task));
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
}

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

    fn kind(k: AccessKind) -> Kind {
        match k {
            AccessKind::Load => Kind::Load,
            AccessKind::Store => Kind::Store,
            AccessKind::Rmw => Kind::Rmw,
            other => unreachable!("{other:?} is not a memory access"),
        }
    }

    /// Turns CPU `c`'s log of this step into ops; IPI targets' handlers are priced here.
    fn translate(&mut self, c: usize, ops: &mut Vec<Op>, dir: &mut Directory<'_>) {
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
                    let wait = self.handlers(&batch, dir);
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
    fn handlers(&mut self, targets: &[usize], dir: &mut Directory<'_>) -> Ps {
        let m = self.m;
        let mut slowest = 0;
        for &t in targets {
            let mut other = std::mem::take(&mut self.other);
            self.serial.cpu(t).cpu.acct.drain_into(&mut other);
            let mut cost = m.ipi_handler;
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
        switches: u64,
        teardowns: u64,
        ops: &mut Vec<Op>,
        dir: &mut Directory<'_>,
    ) {
        if teardowns > 0 {
            ops.push(Op::Notify(token::TEARDOWN_BEGIN));
        }
        self.translate(c, ops, dir);
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
        if !sent.is_empty() {
            debug_assert!(self.in_flight[c].is_empty());
            self.in_flight[c] = sent;
            ops.push(Op::Notify(token::DELIVER));
        }
    }

    /// Takes the wakeups and tasks sent to `rq`'s CPU (new tasks runnable or not), as
    /// the native engine's mailboxes do before each turn.
    fn deliver(
        k: &Kernel<S, A>,
        doorbell: &mut u64,
        inbox: &mut Vec<HostTask<S, Prog>>,
        rq: &mut Rq<S, A>,
        runnable: bool,
    ) {
        let bits = std::mem::take(doorbell);
        if bits != 0 {
            rq.wake_bits(bits);
        }
        for t in inbox.drain(..) {
            rq.adopt(k, t, runnable);
        }
    }

    /// One step of CPU `c`.
    fn step(&mut self, c: usize, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        match self.phase {
            Phase::Run => {}
            Phase::Drain => return Next::Park,
            Phase::Quiesce { turn } if turn != c => return Next::Park,
            Phase::Quiesce { .. } => return self.quiesce_step(c, ops, dir),
        }
        let (switches, teardowns, turn) = {
            let mut guard = self.serial.cpu(c);
            let rq = &mut *guard;
            self.k.irq_point(&mut rq.cpu);
            self.k.nmi_point(&mut rq.cpu);
            Self::deliver(&self.k, &mut self.doorbell[c], &mut self.inbox[c], rq, true);
            let before = rq.cpu.stats();
            let turn = rq.turn(&self.k, &self.w, &self.out);
            let after = rq.cpu.stats();
            (
                after.context_switches - before.context_switches,
                after.exits - before.exits,
                turn,
            )
        };
        self.ops_of_step(c, switches, teardowns, ops, dir);
        if ops.is_empty() {
            if turn == Turn::Idle {
                // Nothing to run until a wakeup.
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
    fn quiesce_step(&mut self, c: usize, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        let (switches, teardowns) = {
            let mut guard = self.serial.cpu(c);
            let rq = &mut *guard;
            let before = rq.cpu.stats();
            Self::deliver(
                &self.k,
                &mut self.doorbell[c],
                &mut self.inbox[c],
                rq,
                false,
            );
            rq.quiesce_tasks(&self.k, |_, _| {});
            Behavior::<S>::quiesce(&self.w, &self.k, rq);
            let after = rq.cpu.stats();
            (
                after.context_switches - before.context_switches,
                after.exits - before.exits,
            )
        };
        self.ops_of_step(c, switches, teardowns, ops, dir);
        ops.push(Op::Notify(token::QUIESCED));
        self.phase = Phase::Quiesce { turn: usize::MAX };
        Next::Run
    }
}

/// The driver the engine calls: the host, plus what must wait for the engine.
struct Drive<'h, 'm, S: Scheme, A: Arch> {
    h: &'h mut Sim<'m, S, A>,
}

impl<S: Scheme, A: Arch> Driver for Drive<'_, '_, S, A> {
    fn next(&mut self, cpu: usize, _now: Ps, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        self.h.step(cpu, ops, dir)
    }

    fn notify(&mut self, cpu: usize, tok: u32, now: Ps, wake: &mut Vec<usize>) {
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
                        Sent::Place(to, t) => {
                            h.inbox[to].push(t);
                            to
                        }
                    };
                    if !wake.contains(&to) {
                        wake.push(to);
                    }
                }
            }
            token::QUIESCED => {
                let next = cpu + 1;
                if next < h.doorbell.len() {
                    h.phase = Phase::Quiesce { turn: next };
                    wake.push(next);
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

/// Ends when the heap is empty; a bound on simulated time keeps a bug from spinning.
const FOREVER: Ps = Ps::MAX / 4;

fn run<S: Scheme, A: Arch>(m: &Machine, spec: &SimSpec, sizing: Sizing) -> SimReport {
    let n = spec.cpus;
    let mut cfg = Config::new(n);
    cfg.profile = spec.profile;
    cfg.arena_capacity = sizing.arena_capacity;
    cfg.nmi_period = NMI_PERIOD;
    let w = spec.workload.build(n, spec.pairs);
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
    let mut sim = Sim {
        m,
        k,
        serial: serial.clone(),
        w,
        out: Outbox {
            sent: RefCell::new(Vec::new()),
            stopping: Cell::new(false),
            passed: Cell::new(0),
        },
        doorbell: vec![0; n],
        inbox: (0..n).map(|_| Vec::new()).collect(),
        in_flight: (0..n).map(|_| Vec::new()).collect(),
        lines: LineMap::default(),
        line_fields: Vec::new(),
        log: Vec::new(),
        other: Vec::new(),
        batch: Vec::new(),
        phase: Phase::Run,
        teardown_begin: vec![None; n],
        teardown_ps: 0,
    };
    let mut e = Engine::new(m, n);
    e.run(&mut Drive { h: &mut sim }, spec.warmup);
    let before = sum_stats(&serial);
    let t_end = spec.warmup + spec.window;
    e.run(&mut Drive { h: &mut sim }, t_end);
    let measured = sum_stats(&serial).since(&before);
    // The run ends: workloads start no new work, every CPU finishes the ops it has (the
    // wakeups and tasks they send arrive), then each CPU in turn exits its tasks.
    sim.out.stopping.set(true);
    sim.phase = Phase::Drain;
    let drained = e.run(&mut Drive { h: &mut sim }, FOREVER);
    sim.phase = Phase::Quiesce { turn: 0 };
    e.wake_cpu(0, drained.max(t_end));
    e.run(&mut Drive { h: &mut sim }, FOREVER);
    // Phases two and three (no time of theirs is charged).
    for i in 0..n {
        let mut g = serial.cpu(i);
        g.quiesce_idle(&sim.k);
    }
    sim.k.check_quiescent(&mut serial.cpu(0).cpu);
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
        teardown_ps: sim.teardown_ps,
        counts: e.counts(),
        transfers_by_line: by_line(e.line_transfers(), &sim.line_fields),
        profile: spec.profile,
        task_bytes: core::mem::size_of::<Task<S>>(),
        violations,
    }
}

/// Sums each line's transfers under the name of the fields on it; most first.
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
            let names: Vec<&str> = Field::ALL
                .iter()
                .filter(|f| mask & (1 << **f as u32) != 0)
                .map(|f| f.name())
                .collect();
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
}
