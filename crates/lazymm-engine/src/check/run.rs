//! One checker run: boot a machine, give each simulated CPU a host thread and a program,
//! let the deterministic scheduler interleave them at the model's preemption points,
//! log what happens, and quiesce so the oracle can check for leaks.

use super::case::Case;
use super::pct::{self, Observer, Policy, Sched};
use super::program::Op;
use crate::host::quiesce::{self, Phase, Quiescer};
use crate::host::trace_name;
use crate::host::{Barrier, Host, HostTask, Mailboxes, RqView, Runqueue, Topology};
use crate::registry::{self, Unknown, WithKernel};
use crate::workload::{place_kthread, run_work_in_mm};
use lazymm::task::TaskMm;
use lazymm::tracepoint::Tracepoint;
use lazymm::{Arch, Config, Cpu, Kernel, MmCount, MmId, Scheme, Task, Violation};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// A model tracepoint on this CPU (an IPI sent or handled, a teardown span's start
    /// or end), with the kernel's name for it.
    Trace {
        /// The CPU.
        cpu: usize,
        /// What happened.
        tp: Tracepoint,
        /// The IPI handler's or the span's name.
        name: &'static str,
    },
}

impl Event {
    /// The CPU the event belongs to.
    pub fn cpu(&self) -> usize {
        match self {
            Event::Op { cpu, .. }
            | Event::OpEnd { cpu, .. }
            | Event::Alloc { cpu, .. }
            | Event::Freed { cpu, .. }
            | Event::Trace { cpu, .. } => *cpu,
            Event::Violation(v) => v.cpu,
        }
    }

    /// Whether the event names `mm`.
    pub fn names(&self, mm: MmId) -> bool {
        match self {
            Event::Op { mms, .. } | Event::OpEnd { mms, .. } => mms.contains(&mm),
            Event::Alloc { mm: m, .. } | Event::Freed { mm: m, .. } => *m == mm,
            Event::Violation(v) => v.mm == mm,
            // Of the tracepoints, only the IPIs sent about the mm: they say who was
            // told to leave it, and when.
            Event::Trace { tp, .. } => matches!(tp, Tracepoint::IpiSend { mm: m, .. } if *m == mm),
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
            Event::Trace { cpu, tp, name } => match tp {
                Tracepoint::IpiSend { to, mm, .. } => {
                    write!(f, "cpu {cpu}:     IPI {name}({mm}) to cpu {to}")
                }
                Tracepoint::IpiHandler { from, mm, .. } => {
                    write!(f, "cpu {cpu}:     runs {name}({mm}) from cpu {from}")
                }
                Tracepoint::Begin(_, mm) => write!(f, "cpu {cpu}:     {name}({mm}) begins"),
                Tracepoint::End(_, mm) => write!(f, "cpu {cpu}:     {name}({mm}) ends"),
            },
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

/// A directed search of `case` (programs set up by hand for one race): the runs that
/// violate a property, in seed order, among interleavings `0..tries` of
/// [`Policy::directed`]`(seed, max_depth, horizon)`. Lazy: taking the first stops the
/// search there.
///
/// # Panics
/// If `case` names a scheme or arch that is not registered.
pub fn directed_search(
    case: &Case,
    tries: u64,
    max_depth: u32,
    horizon: u64,
) -> impl Iterator<Item = (u64, Outcome)> + '_ {
    (0..tries).filter_map(move |seed| {
        let out = execute(case, Policy::directed(seed, max_depth, horizon))
            .expect("a directed search of a registered scheme and arch");
        (!out.violations.is_empty()).then_some((seed, out))
    })
}

pub(crate) struct Exec<'a> {
    case: &'a Case,
    policy: Policy,
}

/// One checker run of a registered scheme on the arch named.
type ExecJob = for<'a> fn(&str, Exec<'a>) -> Option<Outcome>;

/// Instantiates the checker for a scheme registered at run time (see [`registry`]).
pub fn register<S: Scheme>(r: &mut registry::Registered) {
    let job: ExecJob = |arch, v| registry::by_arch::<S, _>(arch, v);
    r.add_job(job);
}

impl WithKernel for Exec<'_> {
    type Out = Outcome;
    fn with<S: Scheme, A: Arch>(self) -> Outcome {
        run::<S, A>(self.case, self.policy)
    }
    fn with_registered(self, s: &registry::Registered, arch: &str) -> Option<Outcome> {
        s.job::<ExecJob>()?(arch, self)
    }
}

/// Events with the checker's sequence number ([`seq`]), which orders them across CPUs.
type Log = Arc<Mutex<Vec<(u64, Event)>>>;

/// The next number of the checker's sequence: the clock of the log and of the model's
/// tracepoints. Only one checker CPU runs at a time, so taking numbers in the order
/// things happen orders them (concurrent checks share the counter, which keeps each
/// run's order).
fn seq() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

fn push(log: &Log, e: Event) {
    let s = seq();
    log.lock().unwrap_or_else(|e| e.into_inner()).push((s, e));
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

/// What the CPUs share besides the kernel: the mailboxes through which a clone reaches
/// its CPU, the kernel workers' queue, the quiescing barrier.
struct CheckHost<S: Scheme> {
    mail: Mailboxes<S, ()>,
    work: Mutex<Vec<MmCount>>,
    barrier: Barrier,
    abort: AtomicBool,
}

impl<S: Scheme> Host<S, ()> for CheckHost<S> {
    fn wake(&self, cpu: usize, task: usize) {
        self.mail.wake(cpu, task);
    }

    fn wake_to(&self, cpu: usize, task: usize, to: usize) {
        self.mail.wake_to(cpu, task, to);
    }

    fn view(&self) -> &RqView {
        self.mail.view()
    }

    fn place(&self, cpu: usize, task: HostTask<S, ()>) {
        self.mail.place(cpu, task);
    }

    fn stopping(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Time passing on a CPU that is going or has gone offline: it runs nothing but the
    /// calls already posted to it (a sender may have seen it online just before it
    /// left), and yields the turn twice, so the other CPUs run on meanwhile.
    fn pass_time<A: Arch>(&self, k: &Kernel<S, A>, cpu: &mut Cpu<S, A>, _: Duration) {
        let mut turns = 0u32;
        for _ in 0..2 {
            k.irq_point(cpu);
            lazymm::sync::spin_wait(&mut turns);
        }
    }
}

/// One checker CPU: its runqueue (the programs decide what runs, so no task is ever
/// marked runnable) and what it has logged.
struct Runner<'h, S: Scheme, A: Arch> {
    k: &'h Kernel<S, A>,
    host: &'h CheckHost<S>,
    log: &'h Log,
    /// Slot 0 is this CPU's kernel worker.
    rq: Runqueue<S, A, ()>,
    seen: usize,
}

fn run<S: Scheme, A: Arch>(case: &Case, policy: Policy) -> Outcome {
    let n = case.cpus;
    let mut cfg = Config::new(n);
    cfg.mutant = case.mutant;
    cfg.profile = case.profile;
    cfg.arena_capacity = case.arena;
    cfg.speculative_walk_period = case.walk_period;
    cfg.nmi_period = case.walk_period;
    cfg.preempt = Some(pct::preempt_hook);
    cfg.window_preempt = Some(pct::window_hook);
    let (k, cpus) = Kernel::<S, A>::boot(cfg);
    let k = Arc::new(k);
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let host = CheckHost::<S> {
        mail: Mailboxes::new(Topology::smt2_one_llc(n)),
        work: Mutex::new(Vec::new()),
        barrier: Barrier::new(n),
        abort: AtomicBool::new(false),
    };
    // Boot-time setup runs on this thread, outside the scheduler: each CPU gets its
    // idle task, a kernel worker and one process.
    let runners: Vec<Runner<'_, S, A>> = cpus
        .into_iter()
        .map(|mut cpu| {
            cpu.seed(case.seed);
            cpu.set_tracing(Some(seq));
            let id = cpu.id as u32;
            // Pids read as the CPU that made them: cpu 2 makes 300, 301, ...
            let base = (id + 1) * 100;
            let mut rq = Runqueue::new(&k, cpu, MAX_TASKS, 0, base);
            let worker = HostTask {
                task: Task::kthread(base),
                prog: (),
            };
            let _ = rq.place(worker, false);
            let mut r = Runner {
                k: &k,
                host: &host,
                log: &log,
                rq,
                seen: 0,
            };
            r.fork();
            if let Some(t) =
                r.rq.slots()
                    .last()
                    .and_then(|i| r.rq.task(i))
                    .filter(|t| t.is_user())
            {
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
                    let me = r.rq.cpu.id;
                    pct::enter(sched.clone(), me);
                    sched.start(me);
                    r.run(prog);
                    sched.finish(me);
                    pct::leave();
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
    let mut events = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    // Tracepoints were logged when their CPU next collected: put them where they happened.
    events.sort_by_key(|&(s, _)| s);
    let events: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
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

/// The worker's slot.
const WORKER: usize = 0;

impl<S: Scheme, A: Arch> Runner<'_, S, A> {
    fn fork(&mut self) {
        if self.rq.is_full() {
            return;
        }
        let pid = self.rq.pid();
        if let Some(task) = self.k.fork(&mut self.rq.cpu, pid) {
            let _ = self.rq.place(HostTask { task, prog: () }, false);
        }
    }

    /// The mm the CPU's hardware has loaded, for the timeline.
    fn cr3(&self) -> MmId {
        self.k.oracle_cr3(self.rq.cpu.id)
    }

    /// Logs something this CPU does outside its program (boot, quiescing).
    fn note(&self, text: String, mms: Vec<MmId>) {
        note(self.log, self.rq.cpu.id, text, mms);
    }

    /// The slot operation `run:n` switches to: the `n`-th task (modulo the tasks this
    /// CPU has), in slot order.
    fn nth(&self, n: u8) -> Option<usize> {
        let len = self.rq.len();
        if len == 0 {
            return None;
        }
        self.rq.slots().nth(n as usize % len)
    }

    fn current_user_mm(&self) -> Option<MmId> {
        match self.rq.current().and_then(|t| t.mm.as_ref()) {
            Some(TaskMm::User(u)) => Some(u.id()),
            _ => None,
        }
    }

    /// Adopts the threads cloned onto this CPU (as a remote `wake_up_new_task`).
    fn adopt(&mut self) {
        self.host.mail.deliver(self.k, &mut self.rq, false);
    }

    /// Words and mms for the timeline, before `op` runs.
    fn text(&self, op: Op) -> (String, Vec<MmId>) {
        let cr3 = self.cr3();
        let mut mms = vec![cr3];
        let current = self.rq.current();
        let cur = describe(current);
        if let Some(mm) = current.and_then(|t| t.mm_id()) {
            mms.push(mm);
        }
        let what = match op {
            Op::Run(n) => {
                let next = self.nth(n).and_then(|j| self.rq.task(j));
                if let Some(mm) = next.and_then(|t| t.mm_id()) {
                    mms.push(mm);
                }
                format!("switch {cur} -> {}", describe(next))
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
            Op::Munmap => format!("{cur} unmaps a page (a flush that frees no tables)"),
            Op::Migrate(c) => format!("{cur} migrates to cpu {}", c as usize % self.k.nr_cpus()),
        };
        (format!("[cr3 {cr3}] {what}"), mms)
    }

    fn run(&mut self, prog: &[Op]) {
        let me = self.rq.cpu.id;
        for &op in prog {
            if self.host.abort.load(Ordering::Relaxed) {
                break;
            }
            self.adopt();
            self.k.irq_point(&mut self.rq.cpu);
            self.k.nmi_point(&mut self.rq.cpu);
            let (text, mms) = self.text(op);
            let start = {
                let s = seq();
                let mut l = self.log.lock().unwrap_or_else(|e| e.into_inner());
                l.push((
                    s,
                    Event::Op {
                        cpu: me,
                        text: text.clone(),
                        mms: mms.clone(),
                    },
                ));
                l.len()
            };
            self.op(op);
            let interrupted = self.log.lock().unwrap_or_else(|e| e.into_inner())[start..]
                .iter()
                .any(|(_, e)| e.cpu() != me);
            if interrupted {
                push(self.log, Event::OpEnd { cpu: me, text, mms });
            }
            self.collect();
            // Every property the oracle checks inline; stop at the first violation.
            if self.k.violations() > 0 {
                self.host.abort.store(true, Ordering::Relaxed);
            }
        }
        self.quiesce();
    }

    /// Logs the violations this CPU found since the last call.
    fn collect(&mut self) {
        collect(self.log, &mut self.rq.cpu, &mut self.seen);
    }

    fn op(&mut self, op: Op) {
        let k = self.k;
        let rq = &mut self.rq;
        match op {
            Op::Run(n) => {
                let next = self.nth(n);
                if next.is_some() {
                    self.rq.switch_to(k, next);
                    // Back in user space, the task runs and touches its memory.
                    if let Some(mm) = self.rq.current().and_then(|t| t.mm_id()) {
                        k.user_access(&mut self.rq.cpu, mm, "user access");
                    }
                }
            }
            Op::Idle => rq.switch_to(k, None),
            Op::Fork => self.fork(),
            Op::Clone(c) => {
                let target = c as usize % k.nr_cpus();
                let Some(i) = rq.cur() else { return };
                let pid = rq.pid();
                let (cpu, parent) = rq.parts(i);
                if let Some(task) = k.clone_thread(cpu, &parent.task, pid) {
                    // As a remote wake_up_new_task: the target adopts it at its next step.
                    self.host.place(target, HostTask { task, prog: () });
                }
            }
            Op::Exit => {
                let Some(i) = rq.cur() else { return };
                if i == WORKER || self.current_user_mm().is_none() {
                    return;
                }
                // exit_mm, then do_task_dead(): the last switch away (to idle: no
                // checker task is ever runnable).
                let _ = self.rq.exit(k, i);
            }
            Op::Exec => {
                let cur = rq.cur();
                if cur.is_none() || cur == Some(WORKER) {
                    // The kernel worker starts a user helper (call_usermodehelper): a
                    // new kernel thread that execs into a new process. From idle, the
                    // worker runs first, lazily on whatever mm the CPU has: the helper
                    // execs from that lazy mm, which may be dying elsewhere.
                    if rq.is_full() {
                        return;
                    }
                    if cur.is_none() {
                        rq.switch_to(k, Some(WORKER));
                    }
                    let Ok(j) = place_kthread(rq, (), false) else {
                        return;
                    };
                    rq.switch_to(k, Some(j));
                }
                let Some(mm) = k.mm_alloc(&mut rq.cpu) else {
                    return;
                };
                let i = rq.cur().expect("a task runs");
                let (cpu, t) = rq.parts(i);
                k.exec_mmap(cpu, &mut t.task, mm);
            }
            Op::Submit => {
                let Some(mm) = self.current_user_mm() else {
                    return;
                };
                let mut w = self.host.work.lock().unwrap_or_else(|e| e.into_inner());
                if w.len() < MAX_WORK {
                    drop(w);
                    let r = k.mmgrab(&mut self.rq.cpu, mm);
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
                rq.switch_to(k, Some(WORKER));
                let (cpu, worker) = rq.parts(WORKER);
                run_work_in_mm(k, cpu, &mut worker.task, r);
            }
            Op::Hotplug => {
                if rq.cpu.id == 0 {
                    return;
                }
                rq.offline_cycle(k, self.host, Duration::ZERO, Duration::ZERO);
            }
            Op::Walk => k.speculative_walk(&mut rq.cpu),
            Op::Munmap => {
                if let Some(mm) = self.current_user_mm() {
                    k.zap_page_range(&mut self.rq.cpu, mm);
                }
            }
            Op::Migrate(c) => {
                let target = c as usize % k.nr_cpus();
                let Some(i) = rq.cur() else { return };
                if i == WORKER || self.current_user_mm().is_none() || target == self.rq.cpu.id {
                    return;
                }
                // The task leaves for the target CPU (set_task_cpu), which adopts it at
                // its next step, as a remote wakeup's enqueue.
                self.rq.migrate(k, i, self.host, target);
            }
            Op::Touch => {
                if let Some(mm) = rq.current().and_then(|t| t.mm_id()) {
                    k.user_access(&mut rq.cpu, mm, "user access");
                }
            }
        }
    }

    /// Ends the run: every task exits, every CPU leaves its lazy mm, and CPU 0 asks the
    /// oracle whether anything leaked (the phases of [`crate::host::quiesce`]). After a
    /// violation only the barriers run.
    fn quiesce(&mut self) {
        let Runner {
            k,
            host,
            log,
            rq,
            seen,
        } = self;
        let mut q = CheckQuiesce {
            k,
            host,
            log,
            seen,
            clean: false,
        };
        quiesce::quiesce_cpu(&mut q, k, rq);
        self.collect();
    }
}

/// The checker's part in quiescing one CPU: its barrier (which yields the turn), its
/// mailboxes, CPU 0's deferred work, and a log of each step for the timeline.
struct CheckQuiesce<'a, 'h, S: Scheme, A: Arch> {
    k: &'h Kernel<S, A>,
    host: &'h CheckHost<S>,
    log: &'h Log,
    seen: &'a mut usize,
    /// No violation was found before quiescing (read once, after the first barrier).
    clean: bool,
}

impl<S: Scheme, A: Arch> Quiescer<S, A, ()> for CheckQuiesce<'_, '_, S, A> {
    fn begin(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, ()>, phase: Phase) -> bool {
        let me = rq.cpu.id;
        self.host
            .barrier
            .wait(k, &mut rq.cpu, phase.number(), pct::spin_hook);
        match phase {
            Phase::Tasks => self.clean = !self.host.abort.load(Ordering::Relaxed),
            Phase::Idle if self.clean => {
                let cr3 = k.oracle_cr3(me);
                note(
                    self.log,
                    me,
                    format!("[cr3 {cr3}] quiesce: idle leaves its lazy mm for init_mm"),
                    vec![cr3],
                );
            }
            Phase::Oracle if self.clean && me == 0 => note(
                self.log,
                me,
                "quiesce: the oracle checks that every mm was freed".into(),
                vec![],
            ),
            Phase::Idle | Phase::Oracle => {}
        }
        self.clean
    }

    fn deliver(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, ()>) {
        self.host.mail.deliver(k, rq, false);
    }

    fn exiting(&mut self, rq: &mut Runqueue<S, A, ()>, i: usize) {
        let me = rq.cpu.id;
        let cr3 = self.k.oracle_cr3(me);
        collect(self.log, &mut rq.cpu, self.seen);
        let task = rq.task(i);
        let text = format!(
            "[cr3 {}] quiesce: switch {} -> {}, which exits",
            cr3,
            describe(rq.current()),
            describe(task)
        );
        let mms = std::iter::once(cr3)
            .chain(task.and_then(|t| t.mm_id()))
            .collect();
        note(self.log, me, text, mms);
    }

    fn release(&mut self, k: &Kernel<S, A>, rq: &mut Runqueue<S, A, ()>) {
        collect(self.log, &mut rq.cpu, self.seen);
        if rq.cpu.id == 0 {
            let works =
                std::mem::take(&mut *self.host.work.lock().unwrap_or_else(|e| e.into_inner()));
            for w in works {
                k.mmdrop(&mut rq.cpu, w);
            }
            collect(self.log, &mut rq.cpu, self.seen);
        }
    }

    fn end(&mut self, _k: &Kernel<S, A>, rq: &mut Runqueue<S, A, ()>, phase: Phase) {
        if phase == Phase::Idle {
            collect(self.log, &mut rq.cpu, self.seen);
        }
    }
}

/// Logs an event of CPU `cpu` that is not an operation of its program.
fn note(log: &Log, cpu: usize, text: String, mms: Vec<MmId>) {
    push(log, Event::Op { cpu, text, mms });
}

/// Logs the violations `cpu` found since `seen` of them were logged, and its
/// tracepoints (stamped with [`seq`] as they happened).
fn collect<S: Scheme, A: Arch>(log: &Log, cpu: &mut Cpu<S, A>, seen: &mut usize) {
    let trace = cpu.take_trace();
    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
    for e in trace {
        let name = trace_name::<S, A>(e.tp);
        let (cpu, tp) = (cpu.id, e.tp);
        l.push((e.ts, Event::Trace { cpu, tp, name }));
    }
    drop(l);
    while *seen < cpu.violations.len() {
        push(log, Event::Violation(cpu.violations[*seen].clone()));
        *seen += 1;
    }
}
