//! One checker run: boot a machine, give each simulated CPU a host thread and a program,
//! let the deterministic scheduler interleave them at the model's preemption points,
//! log what happens, and quiesce so the oracle can check for leaks.

use super::program::Op;
use super::sched::{self, Observer, Policy, Sched};
use super::Case;
use crate::registry::{self, Unknown, WithKernel};
use crate::workload::{pair_mut, run_work_in_mm};
use lazymm::task::TaskMm;
use lazymm::{Arch, Config, Cpu, Kernel, MmCount, MmId, Scheme, Task, Violation};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Tasks a CPU keeps at most (forks and clones beyond it are skipped).
const MAX_TASKS: usize = 6;
/// Submitted mms waiting for a kernel worker, at most.
const MAX_WORK: usize = 6;
/// Decisions after which a run is declared stalled.
const DECISION_LIMIT: u64 = 400_000;

/// Something that happened, in the order it happened (only one CPU runs at a time).
#[derive(Debug, Clone)]
pub enum Event {
    /// A CPU began an operation of its program.
    Op {
        /// The CPU.
        cpu: usize,
        /// What it did, in words.
        text: String,
        /// The mms the operation names.
        mms: Vec<MmId>,
    },
    /// A CPU finished an operation that other CPUs' events interrupted.
    OpEnd {
        /// The CPU.
        cpu: usize,
        /// What it did, in words.
        text: String,
        /// The mms the operation names.
        mms: Vec<MmId>,
    },
    /// An mm was allocated while this CPU ran.
    Alloc {
        /// The CPU.
        cpu: usize,
        /// The new mm.
        mm: MmId,
    },
    /// An mm was freed while this CPU ran.
    Freed {
        /// The CPU.
        cpu: usize,
        /// The freed mm.
        mm: MmId,
    },
    /// The oracle reported a violation.
    Violation(Violation),
}

impl Event {
    /// The CPU the event belongs to.
    pub fn cpu(&self) -> usize {
        match self {
            Event::Op { cpu, .. }
            | Event::OpEnd { cpu, .. }
            | Event::Alloc { cpu, .. }
            | Event::Freed { cpu, .. } => *cpu,
            Event::Violation(v) => v.cpu,
        }
    }

    /// Whether the event names `mm`.
    pub fn names(&self, mm: MmId) -> bool {
        match self {
            Event::Op { mms, .. } | Event::OpEnd { mms, .. } => mms.contains(&mm),
            Event::Alloc { mm: m, .. } | Event::Freed { mm: m, .. } => *m == mm,
            Event::Violation(v) => v.mm == mm,
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Op { cpu, text, .. } => write!(f, "cpu {cpu}: {text}"),
            Event::OpEnd { cpu, text, .. } => write!(f, "cpu {cpu}: ... {text} (done)"),
            Event::Alloc { cpu, mm } => write!(f, "cpu {cpu}:     allocates {mm}"),
            Event::Freed { cpu, mm } => write!(f, "cpu {cpu}:     frees {mm}"),
            Event::Violation(v) => write!(f, "VIOLATION {v}"),
        }
    }
}

/// What one run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The violations, in the order they were found.
    pub violations: Vec<Violation>,
    /// Everything that happened.
    pub events: Vec<Event>,
    /// The scheduler's decisions (a script that replays this run exactly).
    pub schedule: Vec<u8>,
    /// Whether the run hit the decision limit (a livelock) and ran freely after it.
    pub stalled: bool,
}

impl Outcome {
    /// The first violation, if any.
    pub fn first(&self) -> Option<&Violation> {
        self.violations.first()
    }
}

/// Runs `case` once.
pub fn execute(case: &Case, policy: Policy) -> Result<Outcome, Unknown> {
    registry::dispatch(case.scheme, case.arch, Exec { case, policy })
}

struct Exec<'a> {
    case: &'a Case,
    policy: Policy,
}

impl WithKernel for Exec<'_> {
    type Out = Outcome;
    fn with<S: Scheme, A: Arch>(self) -> Outcome {
        run::<S, A>(self.case, self.policy)
    }
}

type Log = Arc<Mutex<Vec<Event>>>;

fn push(log: &Log, e: Event) {
    log.lock().unwrap_or_else(|e| e.into_inner()).push(e);
}

/// Watches the arena at every preemption point, so each allocation and free is logged
/// against the CPU that ran it.
struct Watch<S: Scheme, A: Arch> {
    k: Arc<Kernel<S, A>>,
    live: Mutex<Vec<MmId>>,
    log: Log,
}

impl<S: Scheme, A: Arch> Observer for Watch<S, A> {
    fn observe(&self, cpu: usize) {
        let now = self.k.arena.live_ids();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if *live == now {
            return;
        }
        for &mm in live.iter().filter(|m| !now.contains(m)) {
            push(&self.log, Event::Freed { cpu, mm });
        }
        for &mm in now.iter().filter(|m| !live.contains(m)) {
            push(&self.log, Event::Alloc { cpu, mm });
        }
        *live = now;
    }
}

/// What the CPUs share besides the kernel.
struct Host<S: Scheme> {
    inbox: Vec<Mutex<Vec<Task<S>>>>,
    work: Mutex<Vec<MmCount>>,
    arrived: AtomicUsize,
    abort: AtomicBool,
}

struct Runner<'h, S: Scheme, A: Arch> {
    k: &'h Kernel<S, A>,
    host: &'h Host<S>,
    log: &'h Log,
    cpu: Cpu<S, A>,
    idle: Task<S>,
    /// Task 0 is this CPU's kernel worker.
    tasks: Vec<Task<S>>,
    cur: Option<usize>,
    next_pid: u32,
    seen: usize,
}

fn run<S: Scheme, A: Arch>(case: &Case, policy: Policy) -> Outcome {
    let n = case.cpus;
    let mut cfg = Config::new(n);
    cfg.mutant = case.mutant;
    cfg.arena_capacity = case.arena;
    cfg.speculative_walk_period = case.walk_period;
    cfg.nmi_period = case.walk_period;
    cfg.preempt = Some(sched::preempt_hook);
    let (k, cpus) = Kernel::<S, A>::boot(cfg);
    let k = Arc::new(k);
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let host = Host::<S> {
        inbox: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
        work: Mutex::new(Vec::new()),
        arrived: AtomicUsize::new(0),
        abort: AtomicBool::new(false),
    };
    // Boot-time setup runs on this thread, outside the scheduler: each CPU gets its
    // idle task, a kernel worker and one process.
    let runners: Vec<Runner<'_, S, A>> = cpus
        .into_iter()
        .map(|mut cpu| {
            cpu.seed(case.seed);
            let id = cpu.id as u32;
            // Pids read as the CPU that made them: cpu 2 makes 300, 301, ...
            let base = (id + 1) * 100;
            let idle = k.idle_task(&mut cpu, 0);
            let mut r = Runner {
                k: &k,
                host: &host,
                log: &log,
                cpu,
                idle,
                tasks: vec![Task::kthread(base)],
                cur: None,
                next_pid: base,
                seen: 0,
            };
            r.fork();
            if let Some(t) = r.tasks.last().filter(|t| t.is_user()) {
                let text = format!("boot: {} waits to run", describe(Some(t)));
                let mms = t.mm_id().into_iter().collect();
                r.note(text, mms);
            }
            r
        })
        .collect();
    let watch = Watch {
        k: k.clone(),
        live: Mutex::new(k.arena.live_ids()),
        log: log.clone(),
    };
    let sched = Sched::new(n, policy, DECISION_LIMIT, Box::new(watch));
    let mut violations: Vec<Violation> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = runners
            .into_iter()
            .zip(case.programs.iter())
            .map(|(mut r, prog)| {
                let sched = sched.clone();
                s.spawn(move || {
                    let me = r.cpu.id;
                    sched::enter(sched.clone(), me);
                    sched.start(me);
                    r.run(prog, n);
                    sched.finish(me);
                    sched::leave();
                })
            })
            .collect();
        for h in handles {
            if h.join().is_err() {
                // A panic in model code is a bug of the model or the checker, not a
                // finding: let it surface.
                panic!("a checker CPU thread panicked");
            }
        }
    });
    let events = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    for e in &events {
        if let Event::Violation(v) = e {
            violations.push(v.clone());
        }
    }
    let (schedule, stalled) = sched.trace();
    Outcome {
        violations,
        events,
        schedule,
        stalled,
    }
}

fn describe<S: Scheme>(t: Option<&Task<S>>) -> String {
    match t {
        None => "idle".to_string(),
        Some(t) => match &t.mm {
            Some(TaskMm::User(u)) => format!("pid {} (user of {})", t.pid, u.id()),
            Some(TaskMm::Kthread(c)) => format!("pid {} (kthread using {})", t.pid, c.id()),
            None => format!("pid {} (kthread)", t.pid),
        },
    }
}

impl<S: Scheme, A: Arch> Runner<'_, S, A> {
    fn pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }

    fn fork(&mut self) {
        if self.tasks.len() >= MAX_TASKS {
            return;
        }
        let pid = self.pid();
        if let Some(t) = self.k.fork(&mut self.cpu, pid) {
            self.tasks.push(t);
        }
    }

    /// Logs something this CPU does outside its program (boot, quiescing).
    fn note(&self, text: String, mms: Vec<MmId>) {
        push(
            self.log,
            Event::Op {
                cpu: self.cpu.id,
                text,
                mms,
            },
        );
    }

    fn current(&self) -> Option<&Task<S>> {
        self.cur.map(|i| &self.tasks[i])
    }

    fn current_user_mm(&self) -> Option<MmId> {
        match self.current().and_then(|t| t.mm.as_ref()) {
            Some(TaskMm::User(u)) => Some(u.id()),
            _ => None,
        }
    }

    fn switch_to(&mut self, next: Option<usize>) {
        if next == self.cur {
            return;
        }
        let k = self.k;
        match (self.cur, next) {
            (None, Some(j)) => k.context_switch(&mut self.cpu, &mut self.idle, &mut self.tasks[j]),
            (Some(i), None) => k.context_switch(&mut self.cpu, &mut self.tasks[i], &mut self.idle),
            (Some(i), Some(j)) => {
                let (p, n) = pair_mut(&mut self.tasks, i, j);
                k.context_switch(&mut self.cpu, p, n);
            }
            (None, None) => {}
        }
        self.cur = next;
    }

    fn adopt(&mut self) {
        let new = std::mem::take(
            &mut *self.host.inbox[self.cpu.id]
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for mut t in new {
            if self.tasks.len() < MAX_TASKS {
                self.tasks.push(t);
            } else {
                // No room: the new thread exits before it ever runs here.
                let k = self.k;
                self.switch_to(None);
                k.context_switch(&mut self.cpu, &mut self.idle, &mut t);
                k.exit_mm(&mut self.cpu, &mut t);
                k.context_switch(&mut self.cpu, &mut t, &mut self.idle);
            }
        }
    }

    /// Words and mms for the timeline, before `op` runs.
    fn text(&self, op: Op) -> (String, Vec<MmId>) {
        let cr3 = self.k.oracle_cr3(self.cpu.id);
        let mut mms = vec![cr3];
        let cur = describe(self.current());
        if let Some(mm) = self.current().and_then(|t| t.mm_id()) {
            mms.push(mm);
        }
        let what = match op {
            Op::Run(n) => {
                let j = n as usize % self.tasks.len();
                if let Some(mm) = self.tasks[j].mm_id() {
                    mms.push(mm);
                }
                format!("switch {cur} -> {}", describe(Some(&self.tasks[j])))
            }
            Op::Idle => format!("switch {cur} -> idle"),
            Op::Fork => "fork a new process".to_string(),
            Op::Clone(c) => format!(
                "{cur} clones a thread onto cpu {}",
                c as usize % self.k.nr_cpus()
            ),
            Op::Exit => format!("{cur} exits (exit_mm, then the last switch)"),
            Op::Exec => format!("{cur} execs a new mm"),
            Op::Submit => format!("{cur} submits its mm to the kernel workers"),
            Op::Work => {
                let w = self.host.work.lock().unwrap_or_else(|e| e.into_inner());
                match w.last() {
                    Some(r) => {
                        mms.push(r.id());
                        format!("kworker: kthread_use_mm({}) / kthread_unuse_mm", r.id())
                    }
                    None => "kworker: no work".to_string(),
                }
            }
            Op::Hotplug => "goes offline (cpu_offline) and comes back online".to_string(),
            Op::Walk => "speculative page walk".to_string(),
            Op::Touch => format!("{cur} touches user memory"),
        };
        (format!("[cr3 {cr3}] {what}"), mms)
    }

    fn run(&mut self, prog: &[Op], n: usize) {
        for &op in prog {
            if self.host.abort.load(Ordering::Relaxed) {
                break;
            }
            self.adopt();
            self.k.irq_point(&mut self.cpu);
            self.k.nmi_point(&mut self.cpu);
            let (text, mms) = self.text(op);
            let start = {
                let mut l = self.log.lock().unwrap_or_else(|e| e.into_inner());
                l.push(Event::Op {
                    cpu: self.cpu.id,
                    text: text.clone(),
                    mms: mms.clone(),
                });
                l.len()
            };
            self.op(op);
            let interrupted = self.log.lock().unwrap_or_else(|e| e.into_inner())[start..]
                .iter()
                .any(|e| e.cpu() != self.cpu.id);
            if interrupted {
                push(
                    self.log,
                    Event::OpEnd {
                        cpu: self.cpu.id,
                        text,
                        mms,
                    },
                );
            }
            self.collect();
            // Every property the oracle checks inline; stop at the first violation.
            if self.k.violations() > 0 {
                self.host.abort.store(true, Ordering::Relaxed);
            }
        }
        self.quiesce(n);
    }

    /// Logs the violations this CPU found since the last call.
    fn collect(&mut self) {
        while self.seen < self.cpu.violations.len() {
            push(
                self.log,
                Event::Violation(self.cpu.violations[self.seen].clone()),
            );
            self.seen += 1;
        }
    }

    fn op(&mut self, op: Op) {
        let k = self.k;
        match op {
            Op::Run(n) => {
                let j = n as usize % self.tasks.len();
                self.switch_to(Some(j));
            }
            Op::Idle => self.switch_to(None),
            Op::Fork => self.fork(),
            Op::Clone(c) => {
                let target = c as usize % k.nr_cpus();
                let Some(i) = self.cur else { return };
                let pid = self.pid();
                if let Some(t) = k.clone_thread(&mut self.cpu, &self.tasks[i], pid) {
                    // As a remote wake_up_new_task: the target adopts it at its next step.
                    self.host.inbox[target]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(t);
                }
            }
            Op::Exit => {
                let Some(i) = self.cur else { return };
                if i == 0 || self.current_user_mm().is_none() {
                    return;
                }
                k.exit_mm(&mut self.cpu, &mut self.tasks[i]);
                // do_task_dead(): the last switch away from the dead task.
                self.switch_to(None);
                self.tasks.remove(i);
            }
            Op::Exec => {
                let Some(i) = self.cur else { return };
                if i == 0 {
                    // The kernel worker starts a user helper (call_usermodehelper): a
                    // new kernel thread that execs into a new process.
                    if self.tasks.len() >= MAX_TASKS {
                        return;
                    }
                    let pid = self.pid();
                    self.tasks.push(Task::kthread(pid));
                    let j = self.tasks.len() - 1;
                    self.switch_to(Some(j));
                }
                let Some(mm) = k.mm_alloc(&mut self.cpu) else {
                    return;
                };
                let i = self.cur.expect("a task runs");
                k.exec_mmap(&mut self.cpu, &mut self.tasks[i], mm);
            }
            Op::Submit => {
                let Some(mm) = self.current_user_mm() else {
                    return;
                };
                let mut w = self.host.work.lock().unwrap_or_else(|e| e.into_inner());
                if w.len() < MAX_WORK {
                    drop(w);
                    let r = k.mmgrab(&mut self.cpu, mm);
                    w = self.host.work.lock().unwrap_or_else(|e| e.into_inner());
                    w.push(r);
                }
            }
            Op::Work => {
                let Some(r) = self
                    .host
                    .work
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop()
                else {
                    return;
                };
                self.switch_to(Some(0));
                run_work_in_mm(k, &mut self.cpu, &mut self.tasks[0], r);
            }
            Op::Hotplug => {
                if self.cpu.id == 0 {
                    return;
                }
                self.switch_to(None);
                k.cpu_offline(&mut self.cpu, &mut self.idle, offline_window);
                offline_window(k, &mut self.cpu);
                k.cpu_online(&mut self.cpu);
            }
            Op::Walk => k.speculative_walk(&mut self.cpu),
            Op::Touch => {
                if let Some(mm) = self.current().and_then(|t| t.mm_id()) {
                    let _ = k.mm(&mut self.cpu, mm, "user access");
                }
            }
        }
    }

    /// Waits (answering IPIs, yielding the turn) until every CPU has arrived.
    fn barrier(&mut self, n: usize, phase: usize) {
        // ORDERING: AcqRel, so each arrival both publishes what this CPU did before the
        // barrier and sees what the CPUs that arrived earlier did.
        self.host.arrived.fetch_add(1, Ordering::AcqRel);
        loop {
            self.k.irq_point(&mut self.cpu);
            // ORDERING: Acquire pairs with the other CPUs' AcqRel arrivals.
            if self.host.arrived.load(Ordering::Acquire) >= n * phase {
                break;
            }
            sched::spin_hook();
        }
    }

    /// Ends the run: every task exits, every CPU leaves its lazy mm, and CPU 0 asks the
    /// oracle whether anything leaked. After a violation only the barriers run.
    fn quiesce(&mut self, n: usize) {
        let k = self.k;
        self.barrier(n, 1);
        let clean = !self.host.abort.load(Ordering::Relaxed);
        if clean {
            self.adopt();
            for i in (1..self.tasks.len()).rev() {
                if let Some(mm) = self.tasks[i].mm_id() {
                    let text = format!(
                        "[cr3 {}] quiesce: switch {} -> {}, which exits",
                        self.k.oracle_cr3(self.cpu.id),
                        describe(self.current()),
                        describe(Some(&self.tasks[i]))
                    );
                    self.note(text, vec![self.k.oracle_cr3(self.cpu.id), mm]);
                    self.switch_to(Some(i));
                    k.exit_mm(&mut self.cpu, &mut self.tasks[i]);
                }
                self.switch_to(None);
                self.tasks.remove(i);
                self.collect();
            }
            self.switch_to(None);
            if self.cpu.id == 0 {
                let works =
                    std::mem::take(&mut *self.host.work.lock().unwrap_or_else(|e| e.into_inner()));
                for w in works {
                    k.mmdrop(&mut self.cpu, w);
                }
                self.collect();
            }
        }
        self.barrier(n, 2);
        if clean {
            let cr3 = self.k.oracle_cr3(self.cpu.id);
            self.note(
                format!("[cr3 {cr3}] quiesce: idle leaves its lazy mm for init_mm"),
                vec![cr3],
            );
            k.quiesce_cpu(&mut self.cpu, &mut self.idle);
            self.collect();
        }
        self.barrier(n, 3);
        if clean && self.cpu.id == 0 {
            self.note(
                "quiesce: the oracle checks that every mm was freed".into(),
                vec![],
            );
            k.check_quiescent(&mut self.cpu);
        }
        self.collect();
    }
}

/// Time passing on a CPU that is going or has gone offline: it runs nothing but the
/// calls already posted to it (a sender may have seen it online just before it left),
/// and yields the turn, so the other CPUs run on meanwhile.
fn offline_window<S: Scheme, A: Arch>(k: &Kernel<S, A>, cpu: &mut Cpu<S, A>) {
    let mut turns = 0u32;
    for _ in 0..2 {
        k.irq_point(cpu);
        lazymm::sync::spin_wait(&mut turns);
    }
}
