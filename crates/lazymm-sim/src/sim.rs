//! The discrete-event simulator host: one host thread plays N simulated CPUs through the
//! real model code, and the coherence model prices what each step did.
//!
//! Every CPU runs the native engine's scheduler loop one iteration per step (take the
//! wakeups, pick a task or the idle task, `context_switch`, run one step of the task's
//! program), with recording on: the model reports each protocol access it made, and the
//! step becomes a list of [`Op`]s: its loads, stores and RMWs on the lines they touched,
//! its fences, its page-table-root writes, its IPIs, and the machine's context-switch
//! cost for every switch. The [`Engine`] always advances the CPU whose clock is earliest.
//!
//! IPIs: the model waits for the CPUs it sent IPIs to through the host ([`Serial`]),
//! which runs their handlers at once on their own `Cpu`. The sender is charged the send
//! (fixed plus per target) and then waits for the slowest target (delivery, handler
//! entry, and the handler's own accesses); each target's clock is delayed by its
//! handler. No scheme is named here: whatever a scheme does shows up as accesses.

use crate::coherence::{Counts, Directory, Driver, Engine, Kind, LineMap, Next, Op};
use crate::machine::{Machine, Ps};
use lazymm::sync::{Access, AccessKind};
use lazymm::{Arch, Config, Scheme, Stats, Task};
use lazymm_engine::registry::{self, WithKernel};
use lazymm_engine::serial::Serial;
use std::sync::Arc;

/// The workloads the simulator drives.
///
/// TEMPORARY: these drivers mirror the native engine's `threads` and `idle-storm` task
/// programs; they give way to the shared workload trait (crates/lazymm-engine/src/workload/)
/// when it lands on main, and every other workload of the registry arrives with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimWorkload {
    /// `threads` with `pairs` pairs of threads of one process, the two of a pair on
    /// different CPUs, ping-ponging through a blocking wakeup.
    Threads {
        /// Pairs of threads.
        pairs: usize,
    },
    /// `idle-storm`: one thread per CPU blocks and is woken by its CPU's timer.
    IdleStorm,
}

impl SimWorkload {
    /// The registry's name.
    pub fn name(self) -> &'static str {
        match self {
            SimWorkload::Threads { .. } => "threads",
            SimWorkload::IdleStorm => "idle-storm",
        }
    }

    /// The pair count (`None` for workloads without pairs).
    pub fn pairs(self) -> Option<usize> {
        match self {
            SimWorkload::Threads { pairs } => Some(pairs),
            SimWorkload::IdleStorm => None,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// Scheme name.
    pub scheme: String,
    /// Arch name.
    pub arch: String,
    /// The workload.
    pub workload: SimWorkload,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Seed of every CPU's random choices.
    pub seed: u64,
    /// Simulated warm-up before the measured window.
    pub warmup: Ps,
    /// The measured window of simulated time.
    pub window: Ps,
}

/// What one simulation predicted.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// Scheme.
    pub scheme: &'static str,
    /// Arch.
    pub arch: &'static str,
    /// Workload.
    pub workload: SimWorkload,
    /// Simulated CPUs.
    pub cpus: usize,
    /// Simulated seconds of the measured window.
    pub seconds: f64,
    /// Counters of the measured window, summed over CPUs.
    pub measured: Stats,
    /// Counters of the whole run (warm-up and the final exits included).
    pub total: Stats,
    /// Simulated picoseconds of the steps that ran a teardown (`exit_mm` of a last
    /// user: `__mmput`, `__mmdrop`, the IPIs and their waits).
    pub teardown_ps: Ps,
    /// What the coherence model counted over the whole run.
    pub counts: Counts,
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
    /// More CPUs than the machine or the model has.
    #[error("bad cpu count {cpus} (valid: 1 to {max} on this machine)")]
    Cpus {
        /// Asked.
        cpus: usize,
        /// The most.
        max: usize,
    },
    /// A pair count of zero.
    #[error("bad pair count 0 (valid: 1 or more)")]
    Pairs,
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
    if spec.workload.pairs() == Some(0) {
        return Err(SimError::Pairs);
    }
    registry::scheme(&spec.scheme)?;
    registry::arch(&spec.arch)?;
    Ok(registry::dispatch(
        &spec.scheme,
        &spec.arch,
        Sim { m, spec },
    )?)
}

struct Sim<'a> {
    m: &'a Machine,
    spec: &'a SimSpec,
}

impl WithKernel for Sim<'_> {
    type Out = SimReport;
    fn with<S: Scheme, A: Arch>(self) -> SimReport {
        run::<S, A>(self.m, self.spec)
    }
    fn with_registered(self, s: &registry::Registered, arch: &str) -> Option<SimReport> {
        s.job::<SimJob>()?(arch, self)
    }
}

/// A simulation of a registered scheme on the arch named.
type SimJob = for<'a> fn(&str, Sim<'a>) -> Option<SimReport>;

/// Instantiates the simulator for a scheme registered at run time (see
/// `lazymm_engine::registry::Registered`), so that `lazymm predict` can run it.
pub fn register<S: Scheme>(r: &mut registry::Registered) {
    let job: SimJob = |arch, v| registry::by_arch::<S, _>(arch, v);
    r.add_job(job);
}

/// An NMI about once every this many NMI points, as the native engine.
const NMI_PERIOD: u32 = 8;

/// Notify tokens below this are task ids (a wakeup); these mark phases of a step.
const TEARDOWN_BEGIN: u32 = u32::MAX - 1;
/// The CPU whose turn it is to exit its tasks has exited them all.
const EXIT_DONE: u32 = u32::MAX - 2;
const TEARDOWN_END: u32 = u32::MAX;

/// What a task does each time it runs.
#[derive(Debug, Clone, Copy)]
enum Prog {
    /// Wake the partner (a global task id), block.
    Pair { partner: u32 },
    /// Block until this CPU's timer.
    Storm,
}

struct Slot<S: Scheme> {
    task: Task<S>,
    prog: Prog,
    runnable: bool,
    timer: bool,
}

struct Rq<S: Scheme> {
    idle: Task<S>,
    tasks: Vec<Option<Slot<S>>>,
    /// The running task, `None` for idle.
    cur: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Run,
    /// Every task exits, one per step, one CPU after the other (so the last exit's
    /// teardown is timed on a quiet machine, with every other CPU lazy or idle, and not
    /// behind a thousand CPUs' simultaneous `mmput`s).
    Exit,
}

struct Host<'m, S: Scheme, A: Arch> {
    m: &'m Machine,
    k: Arc<lazymm::Kernel<S, A>>,
    serial: Arc<Serial<S, A>>,
    rqs: Vec<Rq<S>>,
    /// Global task id -> (CPU, slot).
    where_is: Vec<(usize, usize)>,
    lines: LineMap<u64>,
    log: Vec<Access>,
    other: Vec<Access>,
    /// The targets of the IPI batch being translated.
    batch: Vec<usize>,
    phase: Phase,
    /// In the exit phase, the CPU whose turn it is.
    exit_turn: usize,
    teardown_begin: Vec<Ps>,
    teardown_ps: Ps,
}

impl<S: Scheme, A: Arch> Host<'_, S, A> {
    /// A dense id for the 128-byte line of the word at `addr`, in first-seen order
    /// (addresses never order anything, so the same seed gives the same numbers). The
    /// model keeps every shared word on a line whose grouping does not depend on the
    /// allocator (padded fields, and whole-line chunks for masks and mailboxes).
    fn line(&mut self, addr: u64) -> u64 {
        let n = self.lines.len() as u64;
        *self.lines.entry(addr / 128).or_insert(n)
    }

    fn kind(k: AccessKind) -> Option<Kind> {
        match k {
            AccessKind::Load => Some(Kind::Load),
            AccessKind::Store => Some(Kind::Store),
            AccessKind::Rmw => Some(Kind::Rmw),
            _ => None,
        }
    }

    /// Turns CPU `c`'s log of this step into ops; IPI targets' handlers are priced here.
    fn translate(&mut self, c: usize, ops: &mut Vec<Op>, dir: &mut Directory<'_>) {
        let mut log = std::mem::take(&mut self.log);
        self.serial.cpu(c).acct.drain_into(&mut log);
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
                    batch.push(a.addr as usize);
                    // The batch ends at the first access that is not part of posting.
                    let more = log[i..]
                        .iter()
                        .take(3)
                        .any(|x| x.kind == AccessKind::IpiSend);
                    if !more {
                        let wait = self.handlers(&batch, dir);
                        ops.push(Op::Work(wait));
                        batch.clear();
                    }
                }
                k => {
                    let kind = Self::kind(k).expect("a memory access");
                    let line = self.line(a.addr);
                    ops.push(Op::Access { line, kind });
                }
            }
        }
        log.clear();
        self.log = log;
        batch.clear();
        self.batch = batch;
    }

    /// The targets of one IPI batch ran their handlers (the serial host ran them while
    /// the sender waited): price each, delay each target by its own, and return how long
    /// the sender waits (delivery plus the slowest handler).
    fn handlers(&mut self, targets: &[usize], dir: &mut Directory<'_>) -> Ps {
        let m = self.m;
        let mut slowest = 0;
        for &t in targets {
            let mut other = std::mem::take(&mut self.other);
            self.serial.cpu(t).acct.drain_into(&mut other);
            let mut cost = m.ipi_handler;
            for a in &other {
                match a.kind {
                    AccessKind::Fence => cost += m.fence,
                    AccessKind::RootWrite => cost += m.cr3_write,
                    AccessKind::IpiSend => cost += m.ipi_per_target,
                    k => {
                        let kind = Self::kind(k).expect("a memory access");
                        let line = self.line(a.addr);
                        cost += dir.access_direct(t, line, kind);
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

    fn pick(rq: &Rq<S>) -> Option<usize> {
        let n = rq.tasks.len();
        let start = rq.cur.map_or(0, |c| c + 1);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| rq.tasks[i].as_ref().is_some_and(|s| s.runnable))
    }

    /// Switches CPU `c` to `next` (`None`: idle); one context switch's work if it did.
    fn switch_to(&mut self, c: usize, next: Option<usize>, ops: &mut Vec<Op>) {
        let rq = &mut self.rqs[c];
        if rq.cur == next {
            return;
        }
        let k = &self.k;
        let mut cpu = self.serial.cpu(c);
        match (rq.cur, next) {
            (None, Some(j)) => {
                let n = &mut rq.tasks[j].as_mut().expect("runnable task").task;
                k.context_switch(&mut cpu, &mut rq.idle, n);
            }
            (Some(i), None) => {
                let p = &mut rq.tasks[i].as_mut().expect("current task").task;
                k.context_switch(&mut cpu, p, &mut rq.idle);
            }
            (Some(i), Some(j)) => {
                let (p, n) = pair_mut(&mut rq.tasks, i, j);
                let (p, n) = (p.as_mut().expect("current"), n.as_mut().expect("next"));
                k.context_switch(&mut cpu, &mut p.task, &mut n.task);
            }
            (None, None) => {}
        }
        drop(cpu);
        rq.cur = next;
        ops.push(Op::Work(self.m.context_switch));
    }

    /// One scheduler iteration of CPU `c`.
    fn step(&mut self, c: usize, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        if self.phase == Phase::Exit {
            if c != self.exit_turn {
                return Next::Park;
            }
            return self.exit_one(c, ops, dir);
        }
        {
            let mut cpu = self.serial.cpu(c);
            self.k.irq_point(&mut cpu);
            self.k.nmi_point(&mut cpu);
        }
        let next = Self::pick(&self.rqs[c]);
        self.switch_to(c, next, ops);
        match self.rqs[c].cur {
            None => {
                let rq = &mut self.rqs[c];
                let mut fired = false;
                for s in rq.tasks.iter_mut().flatten() {
                    if s.timer {
                        // The local timer fires while the CPU idles.
                        s.timer = false;
                        s.runnable = true;
                        fired = true;
                    }
                }
                self.translate(c, ops, dir);
                if !fired && ops.is_empty() {
                    return Next::Park;
                }
                if !fired {
                    // Ran the step's ops (an IPI, the switch to idle), then idles.
                    return Next::Run;
                }
            }
            Some(i) => {
                let wake = {
                    let rq = &mut self.rqs[c];
                    let s = rq.tasks[i].as_mut().expect("current task");
                    let mut cpu = self.serial.cpu(c);
                    if let Some(mm) = s.task.mm_id() {
                        // A user task touches its own memory while it runs.
                        let _ = self.k.mm(&mut cpu, mm, "user access");
                    }
                    s.runnable = false;
                    match s.prog {
                        Prog::Pair { partner } => Some(partner),
                        Prog::Storm => {
                            s.timer = true;
                            None
                        }
                    }
                };
                // The model's accesses of this iteration come before the wakeup.
                self.translate(c, ops, dir);
                if let Some(partner) = wake {
                    ops.push(Op::Notify(partner));
                }
            }
        }
        Next::Run
    }

    /// Exit phase: CPU `c` runs and exits one of its tasks, or stops when none is left.
    fn exit_one(&mut self, c: usize, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        let Some(i) = self.rqs[c].tasks.iter().position(Option::is_some) else {
            self.switch_to(c, None, ops);
            self.translate(c, ops, dir);
            ops.push(Op::Notify(EXIT_DONE));
            return Next::Run;
        };
        self.switch_to(c, Some(i), ops);
        let exits = self.serial.cpu(c).stats().exits;
        {
            let rq = &mut self.rqs[c];
            let t = &mut rq.tasks[i].as_mut().expect("exiting task").task;
            let mut cpu = self.serial.cpu(c);
            self.k.exit_mm(&mut cpu, t);
            rq.tasks[i].as_mut().expect("exiting task").runnable = false;
        }
        let tore_down = self.serial.cpu(c).stats().exits > exits;
        let mut mine = Vec::new();
        self.translate(c, &mut mine, dir);
        if tore_down {
            ops.push(Op::Notify(TEARDOWN_BEGIN));
            ops.append(&mut mine);
            ops.push(Op::Notify(TEARDOWN_END));
        } else {
            ops.append(&mut mine);
        }
        // do_task_dead(): the last switch away from the dead task.
        let next = Self::pick(&self.rqs[c]);
        self.switch_to(c, next, ops);
        if self.rqs[c].cur == Some(i) {
            self.switch_to(c, None, ops);
        }
        self.rqs[c].tasks[i] = None;
        self.translate(c, ops, dir);
        Next::Run
    }
}

/// Two distinct elements of one slice, both mutable.
fn pair_mut<T>(v: &mut [T], i: usize, j: usize) -> (&mut T, &mut T) {
    assert_ne!(i, j);
    if i < j {
        let (lo, hi) = v.split_at_mut(j);
        (&mut lo[i], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(i);
        (&mut hi[0], &mut lo[j])
    }
}

/// The driver the engine calls: the host, plus what must wait for the engine.
struct Drive<'h, 'm, S: Scheme, A: Arch> {
    h: &'h mut Host<'m, S, A>,
}

impl<S: Scheme, A: Arch> Driver for Drive<'_, '_, S, A> {
    fn next(&mut self, cpu: usize, _now: Ps, ops: &mut Vec<Op>, dir: &mut Directory<'_>) -> Next {
        self.h.step(cpu, ops, dir)
    }

    fn notify(&mut self, _cpu: usize, token: u32, now: Ps, wake: &mut Vec<usize>) {
        match token {
            TEARDOWN_BEGIN => self.h.teardown_begin.push(now),
            EXIT_DONE => {
                self.h.exit_turn += 1;
                if self.h.exit_turn < self.h.rqs.len() {
                    wake.push(self.h.exit_turn);
                }
            }
            TEARDOWN_END => {
                if let Some(t0) = self.h.teardown_begin.pop() {
                    self.h.teardown_ps += now - t0;
                }
            }
            task => {
                let (c, i) = self.h.where_is[task as usize];
                if let Some(s) = self.h.rqs[c].tasks[i].as_mut() {
                    s.runnable = true;
                    wake.push(c);
                }
            }
        }
    }
}

fn total_stats<S: Scheme, A: Arch>(serial: &Serial<S, A>) -> Vec<Stats> {
    (0..serial.len()).map(|i| serial.cpu(i).stats()).collect()
}

fn sum(v: &[Stats]) -> Stats {
    let mut s = Stats::default();
    for x in v {
        s.add(x);
    }
    s
}

fn diff(a: &Stats, b: &Stats) -> Stats {
    Stats {
        context_switches: a.context_switches - b.context_switches,
        lazy_switches: a.lazy_switches - b.lazy_switches,
        shared_rmw: a.shared_rmw - b.shared_rmw,
        full_fences: a.full_fences - b.full_fences,
        ipis_sent: a.ipis_sent - b.ipis_sent,
        ipis_received: a.ipis_received - b.ipis_received,
        mm_created: a.mm_created - b.mm_created,
        mm_freed: a.mm_freed - b.mm_freed,
        exits: a.exits - b.exits,
        teardown_ns: a.teardown_ns - b.teardown_ns,
        ..Stats::default()
    }
}

fn run<S: Scheme, A: Arch>(m: &Machine, spec: &SimSpec) -> SimReport {
    let n = spec.cpus;
    let mut cfg = Config::new(n);
    cfg.nmi_period = NMI_PERIOD;
    let (k, serial) = Serial::<S, A>::boot(cfg);
    let k = Arc::new(k);
    let mut rqs = Vec::with_capacity(n);
    for i in 0..n {
        let mut cpu = serial.cpu(i);
        cpu.seed(spec.seed);
        let idle = k.idle_task(&mut cpu, (i as u32) << 20);
        rqs.push(Rq {
            idle,
            tasks: Vec::new(),
            cur: None,
        });
    }
    let mut where_is = Vec::new();
    let place = |rqs: &mut Vec<Rq<S>>,
                 where_is: &mut Vec<(usize, usize)>,
                 c: usize,
                 task: Task<S>,
                 prog: Prog,
                 runnable: bool| {
        let rq = &mut rqs[c];
        rq.tasks.push(Some(Slot {
            task,
            prog,
            runnable,
            timer: false,
        }));
        where_is.push((c, rq.tasks.len() - 1));
        (where_is.len() - 1) as u32
    };
    let mut pid = 1u32;
    let mut parent = k.fork(&mut serial.cpu(0), pid).expect("arena has room");
    match spec.workload {
        SimWorkload::Threads { pairs } => {
            for p in 0..pairs {
                let (ca, cb) = ((2 * p) % n, (2 * p + 1) % n);
                pid += 2;
                let a = k
                    .clone_thread(&mut serial.cpu(ca), &parent, pid)
                    .expect("parent has an mm");
                let b = k
                    .clone_thread(&mut serial.cpu(cb), &parent, pid + 1)
                    .expect("parent has an mm");
                let ia = place(&mut rqs, &mut where_is, ca, a, Prog::Storm, true);
                let ib = place(&mut rqs, &mut where_is, cb, b, Prog::Storm, false);
                let (ca_, sa) = where_is[ia as usize];
                let (cb_, sb) = where_is[ib as usize];
                rqs[ca_].tasks[sa].as_mut().expect("placed").prog = Prog::Pair { partner: ib };
                rqs[cb_].tasks[sb].as_mut().expect("placed").prog = Prog::Pair { partner: ia };
            }
        }
        SimWorkload::IdleStorm => {
            for c in 0..n {
                pid += 1;
                let t = k
                    .clone_thread(&mut serial.cpu(c), &parent, pid)
                    .expect("parent has an mm");
                place(&mut rqs, &mut where_is, c, t, Prog::Storm, true);
            }
        }
    }
    {
        // The parent only forked the others; it exits at once.
        let mut cpu = serial.cpu(0);
        let idle = &mut rqs[0].idle;
        k.context_switch(&mut cpu, idle, &mut parent);
        k.exit_mm(&mut cpu, &mut parent);
        k.context_switch(&mut cpu, &mut parent, idle);
    }
    for i in 0..n {
        let mut cpu = serial.cpu(i);
        cpu.set_recording(true);
        let mut sink = Vec::new();
        cpu.acct.drain_into(&mut sink);
    }
    let mut host = Host {
        m,
        k: k.clone(),
        serial: serial.clone(),
        rqs,
        where_is,
        lines: LineMap::default(),
        log: Vec::new(),
        other: Vec::new(),
        batch: Vec::new(),
        phase: Phase::Run,
        exit_turn: 0,
        teardown_begin: Vec::new(),
        teardown_ps: 0,
    };
    let mut e = Engine::new(m, n);
    let run_until = |e: &mut Engine<'_>, host: &mut Host<'_, S, A>, until: Ps| {
        e.run(&mut Drive { h: host }, until);
    };
    run_until(&mut e, &mut host, spec.warmup);
    let before = total_stats(&serial);
    run_until(&mut e, &mut host, spec.warmup + spec.window);
    let after = total_stats(&serial);
    let measured = diff(&sum(&after), &sum(&before));
    // Every task exits (teardown is timed here), then the CPUs quiesce.
    host.phase = Phase::Exit;
    let t_end = spec.warmup + spec.window;
    e.wake_cpu(0, t_end);
    let mut until = t_end;
    loop {
        until += 1_000_000_000;
        run_until(&mut e, &mut host, until);
        // Done when the last CPU's ops (its teardown among them) have run.
        let left = host.exit_turn < n;
        if !left || until > t_end + 1_000_000_000_000 {
            break;
        }
    }
    for (i, rq) in host.rqs.iter_mut().enumerate() {
        k.quiesce_cpu(&mut serial.cpu(i), &mut rq.idle);
    }
    k.check_quiescent(&mut serial.cpu(0));
    let total = sum(&total_stats(&serial));
    let mut violations = Vec::new();
    for i in 0..n {
        violations.extend(serial.cpu(i).violations.iter().map(|v| v.to_string()));
    }
    SimReport {
        scheme: registry::scheme(S::NAME).unwrap_or(S::NAME),
        arch: registry::arch(A::NAME).unwrap_or(A::NAME),
        workload: spec.workload,
        cpus: n,
        seconds: spec.window as f64 / 1e12,
        measured,
        total,
        teardown_ps: host.teardown_ps,
        counts: e.counts(),
        task_bytes: core::mem::size_of::<Task<S>>(),
        violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazymm_engine::registry::SCHEMES;

    fn spec(scheme: &str, workload: SimWorkload, cpus: usize) -> SimSpec {
        SimSpec {
            scheme: scheme.into(),
            arch: "generic".into(),
            workload,
            cpus,
            seed: 7,
            warmup: 20_000_000,
            window: 100_000_000,
        }
    }

    fn machine() -> Machine {
        Machine::load("epyc-zen4-2s").unwrap()
    }

    #[test]
    fn every_registered_scheme_runs_clean_on_both_workloads() {
        let m = machine();
        for (s, _) in SCHEMES {
            for w in [SimWorkload::Threads { pairs: 3 }, SimWorkload::IdleStorm] {
                let r = simulate(&m, &spec(s, w, 6)).unwrap();
                assert!(r.violations.is_empty(), "{s} {w:?}: {:?}", r.violations);
                assert!(r.measured.context_switches > 0, "{s} {w:?}");
                assert_eq!(r.total.exits, 1, "{s} {w:?}: one process, one teardown");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_prediction() {
        let m = machine();
        let a = simulate(&m, &spec("shootdown", SimWorkload::Threads { pairs: 4 }, 8)).unwrap();
        let b = simulate(&m, &spec("shootdown", SimWorkload::Threads { pairs: 4 }, 8)).unwrap();
        assert_eq!(format!("{:?}", a.measured), format!("{:?}", b.measured));
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.teardown_ps, b.teardown_ps);
    }

    #[test]
    fn a_shared_refcount_costs_more_than_none_as_cpus_grow() {
        let m = machine();
        let rate = |s: &str, n: usize| {
            simulate(&m, &spec(s, SimWorkload::Threads { pairs: n / 2 }, n))
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
    fn a_shootdown_teardown_sends_ipis_and_is_timed() {
        let m = machine();
        let r = simulate(&m, &spec("shootdown", SimWorkload::IdleStorm, 16)).unwrap();
        assert!(r.total.ipis_sent > 0, "{:?}", r.total);
        assert!(
            r.teardown_ps > m.ipi_delivery,
            "teardown {} ps",
            r.teardown_ps
        );
        let n = simulate(&m, &spec("none", SimWorkload::IdleStorm, 16)).unwrap();
        assert_eq!(n.total.ipis_sent, 0);
    }
}
