//! The replay host: one host thread plays every CPU of a traced machine, in the trace's
//! timestamp order, on the real model, once per scheme × arch.
//!
//! Tasks are values: a `Task<S>` that is not running sits in the host's table, and any
//! CPU's `context_switch` can take it (a switched-out kernel thread holds nothing, so it
//! may migrate freely). A task is created at its fork event, or the first time it
//! appears when the trace shows no fork: a kernel thread as such, a user task with
//! `fork` (a new mm) when its process has no live task yet, or with `clone_thread` (the
//! process's mm) when it has. A task that dies (`prev_state`
//! dead, `sched_process_exit`) leaves its mm with `exit_mm`, then makes its last switch.
//! At the end every CPU switches to its idle task, every task still alive exits, every
//! CPU quiesces and the oracle checks that nothing leaked.
//!
//! # IPIs
//! Teardown under `shootdown` and `hazptr-mathieu` (and `x86`'s freeing flush) sends
//! synchronous IPIs and waits. The machine is booted with the engine's single-thread IPI
//! host ([`Serial`]): while a CPU waits, the targets run their pending calls on their
//! own `Cpu`s. The host therefore holds one CPU's guard at a time.
//!
//! # The hottest line
//! Every CPU records its protocol accesses ([`lazymm::sync::Access`]); after each
//! operation the host drains the logs and charges each RMW on an mm's `mm_count` line
//! to that mm and the CPU that made it. Which line of an arena slot is `mm_count` is
//! learnt once per replay from a scratch machine (the one RMW of an `mmgrab`).
//!
//! # A machine's price (`--machine`)
//! With a machine description ([`Input::machine`]), the same drained accesses are priced
//! on that machine's coherence model (`lazymm_cost::price::Pricer`: each load, store and
//! RMW a hit or a line transfer at the distance between the CPUs, fences, root writes,
//! IPI sends and waits), each charged to the CPU that made it, in the trace's order: the
//! scheme's predicted bookkeeping time, reported per second of trace. Quiescing at the
//! end is not the trace's and is not charged.

use crate::accounting::Accounting;
use crate::row::Row;
use lazymm_engine::report::timeline::TimelineSink;
use lazymm_trace::schedule::{Cause, Op, Schedule};
use lazymm_trace::tasks::{Census, Kind};

use lazymm::sync::Access;
use lazymm::task::TaskMm;
use lazymm::{Arch, Config, Kernel, MmId, Mutant, Scheme, Stats, Task};
use lazymm_cost::machine::Machine;
use lazymm_engine::host::quiesce::{self, Phase};
use lazymm_engine::registry::{self, Unknown, WithKernel};
use lazymm_engine::serial::Serial;
use lazymm_trace::Trace;
use std::collections::HashMap;
use std::sync::Arc;

/// What to replay.
pub struct Input<'a> {
    /// The parsed trace.
    pub trace: &'a Trace,
    /// Who is who.
    pub census: &'a Census,
    /// The schedule to run.
    pub schedule: &'a Schedule,
    /// Whether to record a timeline.
    pub timeline: bool,
    /// The machine to price the bookkeeping on (`--machine`); it must have at least the
    /// schedule's CPUs (check with `Pricer::new`), else no row is priced.
    pub machine: Option<&'a Machine>,
    /// The kernel profile the model runs.
    pub profile: lazymm::Profile,
}

/// What to run a trace on: a scheme, or a mutant of one (accepted wherever a scheme is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The scheme (a mutant's own scheme).
    pub scheme: &'static str,
    /// The mutant, if any.
    pub mutant: Option<Mutant>,
}

impl Variant {
    /// A scheme or a mutant, by name.
    pub fn by_name(name: &str) -> Result<Variant, Unknown> {
        match (registry::scheme(name), registry::mutant(name)) {
            (Ok(scheme), _) => Ok(Variant {
                scheme,
                mutant: None,
            }),
            (Err(_), Ok(m)) => Ok(Variant {
                scheme: m.scheme(),
                mutant: Some(m),
            }),
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// Every registered scheme, no mutant.
    pub fn every_scheme() -> Vec<Variant> {
        registry::schemes()
            .into_iter()
            .map(|(scheme, _)| Variant {
                scheme,
                mutant: None,
            })
            .collect()
    }
}

/// Replays `input` on `v` and `arch` (names from the registry).
pub fn replay(v: Variant, arch: &str, input: &Input<'_>) -> Result<Row, Unknown> {
    registry::dispatch(
        v.scheme,
        arch,
        Job {
            input,
            mutant: v.mutant,
        },
    )
}

struct Job<'a, 'b> {
    input: &'b Input<'a>,
    mutant: Option<Mutant>,
}

impl WithKernel for Job<'_, '_> {
    type Out = Row;
    fn with<S: Scheme, A: Arch>(self) -> Row {
        Host::<S, A>::new(self.input, self.mutant).run()
    }
    fn with_registered(self, s: &registry::Registered, arch: &str) -> Option<Row> {
        s.job::<ReplayJob>()?(arch, self)
    }
}

/// A replay on a registered scheme on the arch named.
type ReplayJob = for<'a, 'b> fn(&str, Job<'a, 'b>) -> Option<Row>;

/// Instantiates the replayer for a scheme registered at run time (see
/// `lazymm_engine::registry::Registered`), so that `lazymm replay` can run it.
pub fn register<S: Scheme>(r: &mut registry::Registered) {
    let job: ReplayJob = |arch, v| registry::by_arch::<S, _>(arch, v);
    r.add_job(job);
}

struct Snapshot {
    violations: Vec<usize>,
    live: Vec<MmId>,
}

struct Host<'a, S: Scheme, A: Arch> {
    input: &'a Input<'a>,
    k: Kernel<S, A>,
    serial: Arc<Serial<S, A>>,
    idle: Vec<Task<S>>,
    tasks: HashMap<u32, Task<S>>,
    running: Vec<u32>,
    /// Per CPU: it runs lazily since it left a user task (user→kernel or `exit_mm`).
    lazy_from_user: Vec<bool>,
    /// pid → process, for tasks made by fork events or exec (else the census says).
    tgid: HashMap<u32, u32>,
    /// process → the task new threads clone from.
    leader: HashMap<u32, u32>,
    log: Vec<Access>,
    acct: Accounting<'a>,
    row: Row,
    tl: Option<TimelineSink>,
}

impl<'a, S: Scheme, A: Arch> Host<'a, S, A> {
    fn new(input: &'a Input<'a>, mutant: Option<Mutant>) -> Self {
        let n = input.schedule.nr_cpus.max(1);
        let mut cfg = Config::new(n);
        cfg.mutant = mutant;
        cfg.profile = input.profile;
        // NMIs as often as speculative walks (x86's nmi_uaccess_okay, property g).
        cfg.nmi_period = cfg.speculative_walk_period;
        // Room for every mm the trace can make: one per life of each user task (a pid
        // lives again after a dead switch), per fork and per exec, and the few that
        // linger lazily on each CPU. Slots are reused once freed, so this bounds the live
        // mms with room to spare.
        let users = input.census.count(Kind::User);
        let lives_and_makers = input
            .schedule
            .ops
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Op::Exec { .. } | Op::Fork { .. } | Op::Switch { dead: true, .. }
                )
            })
            .count();
        cfg.arena_capacity = users + lives_and_makers + 2 * n + 16;
        let (k, serial) = Serial::<S, A>::boot(cfg);
        let idle = (0..n)
            .map(|i| {
                let mut cpu = serial.cpu(i);
                cpu.set_recording(true);
                k.idle_task(&mut cpu, 0)
            })
            .collect();
        let acct = Accounting::new(n, input.machine);
        Host {
            input,
            k,
            serial,
            idle,
            tasks: HashMap::new(),
            running: vec![0; n],
            lazy_from_user: vec![false; n],
            tgid: HashMap::new(),
            leader: HashMap::new(),
            log: Vec::new(),
            acct,
            row: Row {
                scheme: S::NAME,
                mutant,
                arch: A::NAME,
                cpus: n,
                trace_seconds: input.trace.seconds(),
                measured: Stats::default(),
                total: Stats::default(),
                context_switches: 0,
                initial_switches: 0,
                resync_switches: 0,
                quiesce_switches: 0,
                lazy_round_trips: 0,
                kernel_handovers: 0,
                hottest: None,
                hazptr_scans: 0,
                hazptr_cpus_scanned: 0,
                guessed_tasks: input.census.guessed(),
                census: (
                    input.census.count(Kind::User),
                    input.census.processes(),
                    input.census.count(Kind::Kthread),
                ),
                task_bytes: core::mem::size_of::<Task<S>>(),
                frees_mms: S::FREES_MMS,
                violations: Vec::new(),
                first_violation_at: None,
                timeline: None,
                predicted: None,
            },
            tl: input.timeline.then(|| TimelineSink::new(n)),
        }
    }

    fn run(mut self) -> Row {
        let ops = &self.input.schedule.ops;
        for (i, op) in ops.iter().enumerate() {
            let before = self.k.violations();
            let snap = self.tl.is_some().then(|| self.snapshot());
            {
                // Between two steps the CPU takes interrupts: pending calls run, and the
                // hardware may walk (and an NMI may touch) what its CR3 holds.
                let mut cpu = self.serial.cpu(op.cpu() as usize);
                self.k.irq_point(&mut cpu);
                self.k.nmi_point(&mut cpu);
            }
            self.op(*op);
            self.drain(op.ts_ns());
            if let Some(snap) = snap {
                self.timeline_after(op, snap);
            }
            if self.k.violations() > before && self.row.first_violation_at.is_none() {
                self.row.first_violation_at = Some((i, *op));
            }
        }
        self.row.measured = self.stats();
        self.row.hottest = self.acct.hottest();
        self.row.predicted = self.acct.predicted();
        self.row.hazptr_scans = self.acct.hazptr_scans;
        self.row.hazptr_cpus_scanned = self.acct.hazptr_cpus_scanned;
        let end_ts = ops.last().map_or(0, Op::ts_ns);
        self.quiesce(end_ts);
        self.row.total = self.stats();
        for i in 0..self.serial.len() {
            self.row
                .violations
                .extend(self.serial.cpu(i).violations.iter().cloned());
        }
        self.row.violations.sort_by_key(|v| (v.step, v.cpu));
        self.row.timeline = self.tl.take().map(TimelineSink::finish);
        self.row
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            violations: (0..self.serial.len())
                .map(|i| self.serial.cpu(i).violations.len())
                .collect(),
            live: self.k.arena.live_ids(),
        }
    }

    /// Adds what an operation did besides switching to the timeline: the mms it freed
    /// and the violations found.
    fn timeline_after(&mut self, op: &Op, before: Snapshot) {
        let after = self.snapshot();
        let Some(tl) = &mut self.tl else { return };
        let from = op.cpu() as usize;
        let ts = op.ts_ns();
        for mm in before.live.iter().filter(|m| !after.live.contains(m)) {
            tl.span(from, ts, format!("__mmdrop frees {mm}"), Some(*mm));
        }
        for c in 0..self.serial.len() {
            let cpu = self.serial.cpu(c);
            for v in &cpu.violations[before.violations[c]..after.violations[c]] {
                tl.violation(ts, v);
            }
        }
    }

    fn sum(&self, f: impl Fn(&Stats) -> u64) -> u64 {
        (0..self.serial.len())
            .map(|i| f(&self.serial.cpu(i).stats()))
            .sum()
    }

    fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for i in 0..self.serial.len() {
            s.add(&self.serial.cpu(i).stats());
        }
        s
    }

    /// Drains every CPU's access log after an operation into the accounting; each IPI
    /// sent becomes a flow on the timeline.
    fn drain(&mut self, ts_ns: u64) {
        for i in 0..self.serial.len() {
            self.log.clear();
            self.serial.cpu(i).acct.drain_into(&mut self.log);
            let tl = &mut self.tl;
            self.acct.charge(i, &self.log, |target| {
                if let Some(tl) = tl {
                    tl.ipi(i, target, ts_ns, "IPI");
                }
            });
        }
    }

    fn op(&mut self, op: Op) {
        match op {
            Op::Switch {
                cpu,
                prev,
                next,
                dead,
                cause,
                ts_ns,
                ..
            } => {
                let c = cpu as usize;
                if self.running[c] != prev {
                    // The host itself moved this CPU (it retired a task whose death the
                    // trace lost): put `prev` back first.
                    self.switch(c, prev, Cause::Resync, ts_ns);
                }
                if dead {
                    self.exit_mm(c, prev, ts_ns);
                }
                self.switch(c, next, cause, ts_ns);
                if dead {
                    self.tasks.remove(&prev);
                }
            }
            Op::Exit {
                cpu, pid, ts_ns, ..
            } => self.exit_mm(cpu as usize, pid, ts_ns),
            Op::Exec {
                cpu,
                pid,
                old_pid,
                ts_ns,
                ..
            } => self.exec(cpu as usize, pid, old_pid, ts_ns),
            Op::Fork {
                cpu,
                parent,
                child,
                ts_ns,
                ..
            } => self.fork(cpu as usize, parent, child, ts_ns),
        }
    }

    fn process_of(&self, pid: u32) -> u32 {
        self.tgid
            .get(&pid)
            .copied()
            .or_else(|| self.input.census.get(pid).map(|i| i.tgid))
            .unwrap_or(pid)
    }

    fn kind_of(&self, pid: u32) -> Kind {
        if pid == 0 {
            return Kind::Idle;
        }
        self.input.census.get(pid).map_or(Kind::User, |i| i.kind)
    }

    fn label(&self, pid: u32) -> String {
        let g = self.process_of(pid);
        let comm = self
            .input
            .census
            .get(g)
            .or_else(|| self.input.census.get(pid))
            .map(|i| i.comm.clone())
            .unwrap_or_default();
        format!("{comm} (tgid {g})")
    }

    /// A live task of `tgid` with a user mm, to clone a new thread from.
    fn clone_source(&self, tgid: u32) -> Option<u32> {
        let has_mm = |p: &u32| {
            matches!(
                self.tasks.get(p).map(|t| &t.mm),
                Some(Some(TaskMm::User(_)))
            )
        };
        if let Some(l) = self.leader.get(&tgid).filter(|l| has_mm(l)) {
            return Some(*l);
        }
        let mut members: Vec<u32> = self
            .tasks
            .keys()
            .copied()
            .filter(|p| self.process_of(*p) == tgid && has_mm(p))
            .collect();
        members.sort_unstable();
        members.first().copied()
    }

    /// Makes the task for `pid`, as the trace shows it, on CPU `c`.
    fn create(&mut self, c: usize, pid: u32) {
        let t = match self.kind_of(pid) {
            Kind::Idle | Kind::Kthread => Task::kthread(pid),
            Kind::User => {
                let tgid = self.process_of(pid);
                let mut cpu = self.serial.cpu(c);
                let cloned = self
                    .clone_source(tgid)
                    .and_then(|src| self.k.clone_thread(&mut cpu, &self.tasks[&src], pid));
                match cloned {
                    Some(t) => t,
                    None => {
                        let t = self
                            .k
                            .fork(&mut cpu, pid)
                            .expect("the arena has room for every process of the trace");
                        drop(cpu);
                        if let Some(mm) = t.mm_id() {
                            let label = self.label(pid);
                            self.acct.made(mm, label);
                        }
                        self.leader.insert(tgid, pid);
                        t
                    }
                }
            }
        };
        self.tasks.insert(pid, t);
    }

    /// Switches CPU `c` from what it runs to `next`.
    fn switch(&mut self, c: usize, next: u32, cause: Cause, ts_ns: u64) {
        if next != 0 {
            if let Some(d) = (0..self.running.len()).find(|&d| d != c && self.running[d] == next) {
                // A task runs on one CPU at a time: take it off the other first.
                self.switch(d, 0, Cause::Resync, ts_ns);
            }
        }
        let prev = self.running[c];
        if prev == next {
            return;
        }
        if next != 0 && !self.tasks.contains_key(&next) {
            self.create(c, next);
        }
        let mut p = if prev == 0 {
            None
        } else {
            self.tasks.remove(&prev)
        };
        let mut n = if next == 0 {
            None
        } else {
            self.tasks.remove(&next)
        };
        {
            let mut cpu = self.serial.cpu(c);
            let idle = &mut self.idle[c];
            let (pt, nt): (&mut Task<S>, &mut Task<S>) = match (&mut p, &mut n) {
                (Some(p), Some(n)) => (p, n),
                (Some(p), None) => (p, idle),
                (None, Some(n)) => (idle, n),
                (None, None) => return,
            };
            let from_user = pt.is_user();
            let to_user = nt.is_user();
            self.k.context_switch(&mut cpu, pt, nt);
            let round_trip = !from_user && to_user && self.lazy_from_user[c];
            self.lazy_from_user[c] = !to_user && (from_user || self.lazy_from_user[c]);
            if cause == Cause::Trace {
                self.row.context_switches += 1;
                if round_trip {
                    self.row.lazy_round_trips += 1;
                }
                if !from_user && !to_user {
                    self.row.kernel_handovers += 1;
                }
            }
            if let Some(tl) = &mut self.tl {
                let comm = self.input.census.get(next).map_or("", |i| i.comm.as_str());
                tl.switch(c, ts_ns, (next, comm), nt.mm_id(), self.k.oracle_cr3(c));
            }
        }
        match cause {
            Cause::Trace | Cause::Quiesce => {}
            Cause::Initial => self.row.initial_switches += 1,
            Cause::Resync => self.row.resync_switches += 1,
        }
        if let Some(p) = p {
            self.tasks.insert(prev, p);
        }
        if let Some(n) = n {
            self.tasks.insert(next, n);
        }
        self.running[c] = next;
    }

    /// `do_exit` (`exit_mm` and the profile's exit accesses) of the user task running on
    /// CPU `c`.
    fn exit_mm(&mut self, c: usize, pid: u32, ts_ns: u64) {
        if pid == 0 || self.running[c] != pid {
            return;
        }
        let Some(t) = self.tasks.get_mut(&pid) else {
            return;
        };
        if !matches!(t.mm, Some(TaskMm::User(_))) {
            return;
        }
        let mm = t.mm_id();
        let mut cpu = self.serial.cpu(c);
        self.k.do_exit(&mut cpu, t);
        drop(cpu);
        self.lazy_from_user[c] = true;
        if let (Some(tl), Some(mm)) = (&mut self.tl, mm) {
            tl.exit(c, ts_ns, pid, mm);
        }
    }

    /// A task that should no longer exist (its death was not traced) exits on CPU `c`:
    /// it is switched in, leaves its mm and is switched out again.
    fn retire(&mut self, c: usize, pid: u32, ts_ns: u64) {
        if !self.tasks.contains_key(&pid) {
            return;
        }
        if let Some(d) = self.running.iter().position(|&r| r == pid) {
            self.switch(d, 0, Cause::Resync, ts_ns);
        }
        let back = self.running[c];
        self.switch(c, pid, Cause::Resync, ts_ns);
        self.exit_mm(c, pid, ts_ns);
        self.switch(c, back, Cause::Resync, ts_ns);
        self.tasks.remove(&pid);
    }

    fn exec(&mut self, c: usize, pid: u32, old_pid: u32, ts_ns: u64) {
        if old_pid != pid {
            // A thread execs and takes its leader's pid: the leader is gone.
            if self.running[c] != old_pid {
                return;
            }
            self.retire(c, pid, ts_ns);
            if let Some(t) = self.tasks.remove(&old_pid) {
                self.tasks.insert(pid, t);
            }
            self.running[c] = pid;
        }
        if self.running[c] != pid {
            return;
        }
        if !self.tasks.contains_key(&pid) {
            self.create(c, pid);
        }
        let tgid = self.process_of(pid);
        let mut cpu = self.serial.cpu(c);
        let Some(mm) = self.k.mm_alloc(&mut cpu) else {
            return;
        };
        let id = mm.id();
        let t = self.tasks.get_mut(&pid).expect("the exec'ing task exists");
        self.k.exec_mmap(&mut cpu, t, mm);
        drop(cpu);
        self.leader.insert(tgid, pid);
        let label = self.label(pid);
        self.acct.made(id, label);
        if let Some(tl) = &mut self.tl {
            tl.exec(c, ts_ns, pid, id);
        }
    }

    fn fork(&mut self, c: usize, parent: u32, child: u32, ts_ns: u64) {
        if self.tasks.contains_key(&child) {
            // The pid is reused and its old task's death was lost.
            self.retire(c, child, ts_ns);
        }
        let ptgid = self.process_of(parent);
        let ctgid = self.input.census.get(child).map_or(child, |i| i.tgid);
        let thread = ctgid == ptgid && self.kind_of(child) == Kind::User;
        self.tgid.insert(child, if thread { ptgid } else { ctgid });
        // copy_process(), on the parent's CPU: a kernel thread, a thread of the
        // parent's process (clone_thread: its mm), or a new process (fork: a new mm).
        self.create(c, child);
    }

    /// Ends the replay: the phases of [`lazymm_engine::host::quiesce`], each on every CPU
    /// in turn. This host keeps the trace's task table, not runqueues, so phase one is
    /// its own: each CPU switches to its idle task, then, once every CPU has, every task
    /// left with a user mm is switched to on CPU 0 and exits there.
    fn quiesce(&mut self, ts_ns: u64) {
        let switches_before = self.sum(|s| s.context_switches);
        quiesce::quiesce_each(self.running.len(), &Phase::ALL, |phase, c| {
            match (phase, c) {
                (Phase::Tasks, Some(c)) => {
                    if self.running[c] != 0 {
                        self.switch(c, 0, Cause::Quiesce, ts_ns);
                    }
                }
                (Phase::Tasks, None) => self.exit_left(ts_ns),
                (Phase::Idle, Some(c)) => {
                    let mut cpu = self.serial.cpu(c);
                    self.k.quiesce_cpu(&mut cpu, &mut self.idle[c]);
                }
                (Phase::Idle, None) => {
                    // What quiescing did is not the trace's: its accesses are dropped.
                    for i in 0..self.serial.len() {
                        self.log.clear();
                        self.serial.cpu(i).acct.drain_into(&mut self.log);
                    }
                    self.row.quiesce_switches = self.sum(|s| s.context_switches) - switches_before;
                }
                (Phase::Oracle, Some(0)) => {
                    let mut cpu0 = self.serial.cpu(0);
                    self.k.check_quiescent(&mut cpu0);
                }
                (Phase::Oracle, _) => {}
            }
        });
    }

    /// Quiescing, phase one, once no CPU runs a task: every task left with a user mm is
    /// switched to on CPU 0 and exits; the others are dropped.
    fn exit_left(&mut self, ts_ns: u64) {
        let mut left: Vec<u32> = self.tasks.keys().copied().collect();
        left.sort_unstable();
        for pid in left {
            if matches!(
                self.tasks.get(&pid).map(|t| &t.mm),
                Some(Some(TaskMm::User(_)))
            ) {
                self.switch(0, pid, Cause::Quiesce, ts_ns);
                self.exit_mm(0, pid, ts_ns);
                self.switch(0, 0, Cause::Quiesce, ts_ns);
            }
            self.tasks.remove(&pid);
        }
    }
}

/// The first lines of a counterexample: the violations and where in the trace the
/// first one was found.
pub fn counterexample(row: &Row) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((i, op)) = &row.first_violation_at {
        out.push(format!(
            "first violation during schedule operation {i}, from trace line {} (time {:.6} s, cpu {}): {op:?}",
            op.line(),
            op.ts_ns() as f64 / 1e9,
            op.cpu()
        ));
    }
    for v in row.violations.iter().take(8) {
        out.push(format!("VIOLATION {v}"));
    }
    out
}

/// Every variant × arch row of a trace.
pub fn replay_all(
    variants: &[Variant],
    archs: &[&str],
    input: &Input<'_>,
) -> Result<Vec<Row>, Unknown> {
    let mut rows = Vec::new();
    for a in archs {
        for v in variants {
            rows.push(replay(*v, a, input)?);
        }
    }
    Ok(rows)
}
